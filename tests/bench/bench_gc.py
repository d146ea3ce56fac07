#!/usr/bin/env python3
"""bench_gc.py - CPython's half of tickd-bench-gc.

Builds the graph tickd-bench-gc builds, in CPython: N instances of a class
with __slots__ = ('a', 'b') paired into N / 2 two-cycles (x.a = y, y.a = x),
every x held by one root list. Then, like the C side:

  full   after one gc.collect(), REPEAT timed gc.collect() (full collections);
         the median per object.
  young  REPEAT times: 350 more pairs appended to the root, then a timed
         gc.collect(0); the median.

The automatic collector is off while the graph is built and measured (the
C side never collects by itself either). Prints a table, or with --json one
line: python, objects, repeat, full_ms, full_ns_per_object, young_us,
young_objects. tickd-bench-gc runs this script and reads that line.
"""

import argparse
import gc
import json
import platform
import statistics
import sys
import time

YOUNG_PAIRS = 350


class Node:
    __slots__ = ("a", "b")


def add_pair(root):
    x = Node()
    y = Node()
    x.a = y
    y.a = x
    root.append(x)


def measure(nobjects, repeat):
    gc.disable()
    root = []
    for _ in range(nobjects // 2):
        add_pair(root)
    gc.collect()

    full = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        gc.collect()
        full.append(time.perf_counter_ns() - t0)

    young = []
    for _ in range(repeat):
        for _ in range(YOUNG_PAIRS):
            add_pair(root)
        t0 = time.perf_counter_ns()
        gc.collect(0)
        young.append(time.perf_counter_ns() - t0)

    full_ns = statistics.median(full)
    return {
        "python": platform.python_version(),
        "objects": nobjects,
        "repeat": repeat,
        "full_ms": full_ns / 1e6,
        "full_ns_per_object": full_ns / nobjects,
        "young_us": statistics.median(young) / 1e3,
        "young_objects": 2 * YOUNG_PAIRS,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=1000000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.objects < 2 or args.objects % 2 or args.repeat < 1:
        ap.error("--objects wants an even number >= 2, --repeat >= 1")
    r = measure(args.objects, args.repeat)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"CPython {r['python']}: {r['objects']} objects, median of {r['repeat']}")
        print(f"  full collection  {r['full_ns_per_object']:.2f} ns per object "
              f"({r['full_ms']:.2f} ms)")
        print(f"  young collection {r['young_us']:.2f} us ({r['young_objects']} new objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

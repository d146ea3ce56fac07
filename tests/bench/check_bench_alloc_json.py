#!/usr/bin/env python3
"""Checks that tickd-bench-alloc --json output is well-formed.

    check_bench_alloc_json.py BENCH [ARG...]   run BENCH ARG... and check it
    check_bench_alloc_json.py < output.jsonl   check lines read from stdin

Every line must be a JSON object with the documented keys and types, every
workload must be there for every allocator, and the counts must make sense
(times and pair counts positive, tickd's mapped peak positive). When it runs
the benchmark itself, the exit status must be 0, and jemalloc or mimalloc may
be missing only if the benchmark said on stderr that it skipped them. Reading
stdin, an allocator need only cover every workload if it appears at all.
Expects an unfiltered run (no --workload/--allocator). Never checks a timing.
"""

import json
import re
import subprocess
import sys

WORKLOADS = {"lifo": [48, 64], "fifo": [48, 64], "churn": ["32-128"],
             "burst": [48], "space": [48]}
ALLOCATORS = ["tickd", "glibc", "jemalloc", "mimalloc"]
OPTIONAL = {"jemalloc", "mimalloc"}
KEYS = {"workload": str, "size": (int, str), "allocator": str,
        "ns_per_pair": (int, float), "ns_per_pair_first": (int, float),
        "pairs": int, "mapped_bytes_peak": int,
        "rss_peak_bytes": int, "rss_before_bytes": int, "rss_after_free_bytes": int}
SPACE_KEYS = {"requested_bytes": int, "mapped_per_requested": (int, float),
              "rss_per_requested": (int, float)}


def check_line(n, line, errors):
    try:
        obj = json.loads(line)
    except ValueError as e:
        errors.append(f"line {n}: not JSON ({e}): {line!r}")
        return None
    if not isinstance(obj, dict):
        errors.append(f"line {n}: not an object: {line!r}")
        return None
    keys = dict(KEYS)
    if obj.get("workload") == "space":
        keys.update(SPACE_KEYS)
    for key, kind in keys.items():
        if key not in obj:
            errors.append(f"line {n}: no {key!r}: {line!r}")
        elif isinstance(obj[key], bool) or not isinstance(obj[key], kind):
            errors.append(f"line {n}: {key!r} has the wrong type: {line!r}")
    if any(e.startswith(f"line {n}:") for e in errors):
        return None

    def positive(key, strict=True):
        if obj[key] < 0 or (strict and obj[key] == 0):
            errors.append(f"line {n}: {key} = {obj[key]} is not positive")

    if obj["workload"] not in WORKLOADS:
        errors.append(f"line {n}: unknown workload {obj['workload']!r}")
    if obj["allocator"] not in ALLOCATORS:
        errors.append(f"line {n}: unknown allocator {obj['allocator']!r}")
    size = obj["size"]
    if isinstance(size, str):
        m = re.fullmatch(r"(\d+)-(\d+)", size)
        if not m or int(m[1]) >= int(m[2]):
            errors.append(f"line {n}: size {size!r} is not a range lo-hi")
    elif size <= 0:
        errors.append(f"line {n}: size {size} is not positive")
    positive("ns_per_pair")
    positive("ns_per_pair_first")
    positive("pairs")
    positive("mapped_bytes_peak", strict=obj["allocator"] == "tickd")
    positive("rss_peak_bytes", strict=False)
    if obj["workload"] == "space":
        positive("requested_bytes")
        positive("mapped_per_requested")
        positive("rss_per_requested", strict=False)
    return obj


def main():
    skipped = set()
    if len(sys.argv) > 1:
        proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            print(f"FAIL: {sys.argv[1]} exited with {proc.returncode}")
            return 1
        text = proc.stdout
        skipped = {a for a in OPTIONAL if f"note: {a} skipped" in proc.stderr}
    else:
        text = sys.stdin.read()

    errors = []
    seen = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        obj = check_line(n, line, errors)
        if obj is None:
            continue
        key = (obj["workload"], obj["size"], obj["allocator"])
        if key in seen:
            errors.append(f"line {n}: {key} reported twice")
        seen.add(key)

    present = {a for (_, _, a) in seen}
    for alloc in ALLOCATORS:
        if alloc in skipped:
            continue
        if alloc in OPTIONAL and len(sys.argv) == 1 and alloc not in present:
            continue
        for workload, sizes in WORKLOADS.items():
            for size in sizes:
                if (workload, size, alloc) not in seen:
                    errors.append(f"no result for {workload} {size} on {alloc}")

    for e in errors:
        print("FAIL:", e)
    if errors:
        return 1
    print(f"ok: {len(seen)} results, skipped: {', '.join(sorted(skipped)) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

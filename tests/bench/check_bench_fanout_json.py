#!/usr/bin/env python3
"""Checks that tickd-bench-fanout --json output is well-formed.

    check_bench_fanout_json.py BENCH [ARG...]   run BENCH ARG... --json and check it

BENCH must exit 0 (so no server failed and no message was lost) and print
one JSON object per line, one for every (server, K): tickd, redis and the
floor, or those named by --server, and every K of --subscribers (default 1,10,100).
Each object has the documented keys and types; messages, offered_rate and
rounds are what was asked (--messages, --rate, --rounds; the defaults of
--quick when absent); delivered_per_second and the latencies are positive, p50 <= p99 <=
p99.9, and lost is 0. Never checks a timing against a target.
"""

import json
import subprocess
import sys

SERVERS = ["tickd", "redis", "floor"]
KEYS = {"server": str, "subscribers": int, "messages": int,
        "delivered_per_second": (int, float), "p50_us": (int, float),
        "p99_us": (int, float), "p999_us": (int, float), "offered_rate": int,
        "latency_messages": int, "lost": int, "latency_backlog_ms": (int, float),
        "server_cpu": (int, float), "subscriber_cpu": (int, float),
        "publisher_cpu": (int, float), "rounds": int}


def option(argv, name, default):
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return default


def check_line(n, line, want, errors):
    try:
        obj = json.loads(line)
    except ValueError as e:
        errors.append(f"line {n}: not JSON ({e}): {line!r}")
        return None
    if not isinstance(obj, dict):
        errors.append(f"line {n}: not an object: {line!r}")
        return None
    bad = False
    for key, kind in KEYS.items():
        value = obj.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            errors.append(f"line {n}: {key} missing or of the wrong type: {value!r}")
            bad = True
    if bad:
        return None
    if obj["server"] not in SERVERS:
        errors.append(f"line {n}: unknown server {obj['server']!r}")
    for key in ("messages", "offered_rate", "rounds"):
        if obj[key] != want[key]:
            errors.append(f"line {n}: {key} = {obj[key]}, asked for {want[key]}")
    for key in ("delivered_per_second", "p50_us", "p99_us", "p999_us", "latency_messages"):
        if obj[key] <= 0:
            errors.append(f"line {n}: {key} = {obj[key]} is not positive")
    if not obj["p50_us"] <= obj["p99_us"] <= obj["p999_us"]:
        errors.append(f"line {n}: p50 {obj['p50_us']}, p99 {obj['p99_us']}, "
                      f"p99.9 {obj['p999_us']} are not in order")
    if obj["lost"] != 0:
        errors.append(f"line {n}: {obj['lost']} messages lost on {obj['server']}")
    for key in ("server_cpu", "subscriber_cpu", "publisher_cpu"):
        if obj[key] < 0:
            errors.append(f"line {n}: {key} = {obj[key]} is negative")
    return obj


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    argv = sys.argv[1:] + ["--json"]
    quick = "--quick" in argv
    want = {
        "messages": int(option(argv, "--messages", 100000 if quick else 1000000)),
        "offered_rate": int(option(argv, "--rate", 100000)),
        "rounds": int(option(argv, "--rounds", 1 if quick else 3)),
    }
    ks = [int(k) for k in option(argv, "--subscribers", "1,10,100").split(",")]
    servers = option(argv, "--server", ",".join(SERVERS)).split(",")

    run = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    sys.stderr.write(run.stderr)
    errors = []
    if run.returncode != 0:
        errors.append(f"{argv[0]} exited with {run.returncode}")
    seen = set()
    for n, line in enumerate(run.stdout.splitlines(), 1):
        if not line.strip():
            continue
        obj = check_line(n, line, want, errors)
        if obj is None:
            continue
        key = (obj["server"], obj["subscribers"])
        if key in seen:
            errors.append(f"line {n}: {key} reported twice")
        seen.add(key)
    for server in servers:
        for k in ks:
            if (server, k) not in seen:
                errors.append(f"no result for {server} with {k} subscribers")
    extra = seen - {(s, k) for s in servers for k in ks}
    if extra:
        errors.append(f"results nobody asked for: {sorted(extra)}")

    for e in errors:
        print(f"check_bench_fanout_json: {e}", file=sys.stderr)
    if not errors:
        print(run.stdout, end="")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

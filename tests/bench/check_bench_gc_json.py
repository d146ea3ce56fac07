#!/usr/bin/env python3
"""Checks that tickd-bench-gc --json output is well-formed.

    check_bench_gc_json.py BENCH [ARG...]   run BENCH ARG... --json and check it

BENCH must exit 0 and print one JSON object on one line with the documented
keys: objects, repeat, tickd {full_ms, full_ns_per_object, young_us,
young_objects}, python (the same plus version, or null with --no-python) and
full_ratio (a number when python is there, else null). Times must be
positive and full_ns_per_object must be full_ms over objects. Never checks a
timing against a target.
"""

import json
import subprocess
import sys

RESULT_KEYS = {"full_ms": (int, float), "full_ns_per_object": (int, float),
               "young_us": (int, float), "young_objects": int}


def check_result(name, obj, errors):
    if not isinstance(obj, dict):
        errors.append(f"{name} is not an object: {obj!r}")
        return
    for key, kind in RESULT_KEYS.items():
        value = obj.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            errors.append(f"{name}.{key} missing or of the wrong type: {value!r}")
        elif value <= 0:
            errors.append(f"{name}.{key} = {value} is not positive")


def check(out, want_python, errors):
    lines = [line for line in out.splitlines() if line.strip()]
    if len(lines) != 1:
        errors.append(f"expected one line, got {len(lines)}: {out!r}")
        return
    try:
        obj = json.loads(lines[0])
    except ValueError as e:
        errors.append(f"not JSON ({e}): {lines[0]!r}")
        return
    for key in ("objects", "repeat"):
        if isinstance(obj.get(key), bool) or not isinstance(obj.get(key), int) or obj[key] < 1:
            errors.append(f"{key} missing or not a positive integer: {obj.get(key)!r}")
    check_result("tickd", obj.get("tickd"), errors)
    if errors:
        return
    t = obj["tickd"]
    per_object = t["full_ms"] * 1e6 / obj["objects"]
    if abs(t["full_ns_per_object"] - per_object) > 0.01 * per_object + 0.01:
        errors.append(f"full_ns_per_object {t['full_ns_per_object']} is not full_ms "
                      f"{t['full_ms']} over {obj['objects']} objects")
    py = obj.get("python")
    if want_python:
        check_result("python", py, errors)
        if isinstance(py, dict) and not isinstance(py.get("version"), str):
            errors.append(f"python.version missing: {py!r}")
        ratio = obj.get("full_ratio")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
            errors.append(f"full_ratio missing or not positive: {ratio!r}")
    elif py is not None or obj.get("full_ratio") is not None:
        errors.append("python and full_ratio must be null with --no-python")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    argv = sys.argv[1:] + ["--json"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    errors = []
    if run.returncode != 0:
        errors.append(f"{argv[0]} exited with {run.returncode}; stderr:\n{run.stderr}")
    else:
        check(run.stdout, "--no-python" not in argv, errors)
    for e in errors:
        print(f"check_bench_gc_json: {e}", file=sys.stderr)
    if not errors:
        print(run.stdout, end="")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

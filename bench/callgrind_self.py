#!/usr/bin/env python3
"""Instructions per query from callgrind dumps (bench/instructions.sh).

Usage: callgrind_self.py QUERIES_SENT QUERIES_ANSWERED NAME DUMP...
Of the dumps, the one holding the most instructions is the answered query set (the others are
start-up and shutdown). Prints its instructions per query and the functions with the most
instructions of their own (callees excluded). callgrind_annotate is not used: with this
valgrind it puts everything of a Rust binary under `clone`.
"""
import collections
import re
import sys


def self_costs(path):
    """Instructions of each function itself, and their total."""
    names, costs, current, skip, total = {}, collections.Counter(), None, False, 0
    for line in open(path, errors="replace"):
        if skip:  # the inclusive cost of a call, counted where it is spent
            skip = False
            continue
        m = re.match(r"^(c?)fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            if not m.group(1):
                current = m.group(2)
            continue
        if line.startswith("calls="):
            skip = True
            continue
        if line[:1].isdigit() or line[:1] in "+-*":
            parts = line.split()
            if len(parts) > 1 and current is not None and parts[1].isdigit():
                costs[current] += int(parts[1])
                total += int(parts[1])
    return {names.get(k, k): v for k, v in costs.items()}, total


def main():
    sent, answered, name = int(sys.argv[1]), int(sys.argv[2] or 0), sys.argv[3]
    dumps = [self_costs(p) for p in sys.argv[4:]]
    costs, total = max(dumps, key=lambda d: d[1])
    if answered != sent:
        print(f"{name}: answered {answered} of {sent} queries")
    per = total / max(answered, 1)
    print(f"{name:<14} {per:7.0f} instructions per query")
    for fn, c in sorted(costs.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {c / max(answered, 1):7.1f}  {fn[:100]}")


main()

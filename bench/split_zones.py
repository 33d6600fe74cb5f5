#!/usr/bin/env python3
"""Splits `backhaul-dns zone` output into one file per zone plus server config fragments.

Usage: split_zones.py ZONE_TEXT OUTDIR
Prints the nsd.conf zone: clauses and writes OUTDIR/knot-zones.conf (knot.conf zone: list)
and OUTDIR/gdnsd/zones/<zone> (gdnsd reads every file of its zones directory, named by zone).
"""
import os
import sys

text = open(sys.argv[1]).read()
out = sys.argv[2]
origin, lines, zones = None, [], []
for line in text.splitlines() + ["$ORIGIN end."]:
    if line.startswith("$ORIGIN "):
        if origin:
            zones.append((origin, lines))
        origin, lines = line.split()[1], [line]
    elif line and not line.startswith(";"):
        lines.append(line)
knot = ["zone:"]
os.makedirs(f"{out}/gdnsd/zones", exist_ok=True)
for i, (origin, zl) in enumerate(zones):
    if origin == "end.":
        continue
    path = f"{out}/zone{i}.zone"
    with open(path, "w") as f:
        f.write("\n".join(zl) + "\n")
    print(f"zone:\n\tname: \"{origin}\"\n\tzonefile: \"{path}\"\n")
    knot.append(f"  - domain: \"{origin}\"\n    file: \"{path}\"")
    with open(f"{out}/gdnsd/zones/{origin.rstrip('.')}", "w") as f:
        f.write("\n".join(zl) + "\n")
with open(f"{out}/knot-zones.conf", "w") as f:
    f.write("\n".join(knot) + "\n")

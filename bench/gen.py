#!/usr/bin/env python3
"""Generates bench inputs: a Central member list of N members, and a dnsperf query file.

Usage: gen.py N OUTDIR [--shift K]
--shift K moves every member's address by K*N, so two files with different K differ in every
address (the sync-under-load phase flips between them).
Writes OUTDIR/members.json ({"network": ..., "members": [...]}) and OUTDIR/queries.txt with
the issue's mix: 70% existing A, 10% AAAA, 15% NXDOMAIN, 5% other (MX NODATA, PTR).
"""
import json
import random
import sys

n = int(sys.argv[1])
out = sys.argv[2]
shift = int(sys.argv[4]) * n if len(sys.argv) > 4 and sys.argv[3] == "--shift" else 0
rng = random.Random(42)
nwid = "8056c2e21c000001"

def ip(i):
    # 10.128.0.0/9 holds up to 8M members
    return f"10.{128 + (i >> 16)}.{(i >> 8) & 0xff}.{i & 0xff}"

members = []
for i in range(n):
    node = f"{0x1000000000 + i:010x}"
    members.append({
        "nodeId": node, "name": f"host{i}", "networkId": nwid,
        "config": {"authorized": True, "creationTime": 1600000000000 + i,
                   "ipAssignments": [ip(i + 1 + shift)], "noAutoAssignIps": False},
    })
network = {"id": nwid, "config": {
    "routes": [{"target": "10.128.0.0/9", "via": None}],
    "v6AssignMode": {"6plane": False, "rfc4193": True, "zt": False}}}
with open(f"{out}/members.json", "w") as f:
    json.dump({"network": network, "members": members}, f)

lines = []
for _ in range(100000):
    r = rng.random()
    i = rng.randrange(n)
    if r < 0.70:
        lines.append(f"host{i}.backhaul A")
    elif r < 0.80:
        lines.append(f"host{i}.backhaul AAAA")
    elif r < 0.95:
        lines.append(f"nx{rng.randrange(10**9)}.backhaul A")
    elif r < 0.975:
        lines.append(f"host{i}.backhaul MX")
    else:
        a = ip(i + 1).split(".")
        lines.append(f"{a[3]}.{a[2]}.{a[1]}.{a[0]}.in-addr.arpa PTR")
with open(f"{out}/queries.txt", "w") as f:
    f.write("\n".join(lines) + "\n")
with open(f"{out}/queries-nx.txt", "w") as f:
    f.write("\n".join(f"nx{rng.randrange(10**9)}.backhaul A" for _ in range(100000)) + "\n")
with open(f"{out}/queries-a.txt", "w") as f:
    f.write("\n".join(f"host{rng.randrange(n)}.backhaul A" for _ in range(100000)) + "\n")

#!/usr/bin/env python3
"""UDP flood for bench/rrl.sh: sends one kind of query from SOURCE as fast as it can for
SECONDS (never waiting for answers, as a flood with a spoofed source does) and counts what
comes back.

Usage: flood.py SOURCE SERVER PORT SECONDS KIND
KIND: txt (the apex TXT: an answer from our zone), any (ANY at the apex), nxdomain (random
names under the zone), refused (a name that is not ours).
Prints: sent, answered in full, answered truncated (TC=1), per second, and the amplification
(bytes received / bytes sent).
"""
import socket
import struct
import sys
import threading
import time

source, server, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
kind = sys.argv[5] if len(sys.argv) > 5 else "nxdomain"
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((source, 0))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.settimeout(0.5)
counts = {"full": 0, "tc": 0, "bytes": 0}
done = threading.Event()

APEX = b"\x08backhaul\x00"
OPT = b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"


def question(n):
    if kind == "txt":
        return APEX + b"\x00\x10\x00\x01"
    if kind == "any":
        return APEX + b"\x00\xff\x00\x01"
    if kind == "refused":
        return b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    return b"\x0fnothere%08d" % n + APEX + b"\x00\x01\x00\x01"


def receive():
    while True:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            if done.is_set():
                return
            continue
        counts["bytes"] += len(data)
        flags = struct.unpack(">H", data[2:4])[0]
        counts["tc" if flags & 0x0200 else "full"] += 1


reader = threading.Thread(target=receive)
reader.start()
sent = 0
sent_bytes = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    for _ in range(100):
        # With EDNS (4096 bytes), as an amplification attack asks: the largest answers.
        q = struct.pack(">HHHHHH", sent & 0xFFFF, 0x0000, 1, 0, 0, 1) + question(sent) + OPT
        sock.sendto(q, (server, port))
        sent += 1
        sent_bytes += len(q)
done.set()
reader.join()
print(f"{kind:9s} flood sent {sent:8d} ({sent / seconds:7.0f}/s)  full {counts['full']:7d} "
      f"({counts['full'] / seconds:6.0f}/s)  TC=1 {counts['tc']:7d} ({counts['tc'] / seconds:6.0f}/s)  "
      f"amplification {counts['bytes'] / max(sent_bytes, 1):5.2f}x")

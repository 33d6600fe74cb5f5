#!/usr/bin/env python3
"""UDP flood for bench/rrl.sh: sends NXDOMAIN queries from SOURCE as fast as it can for SECONDS
(never waiting for answers, as a flood with a spoofed source does) and counts what comes back.

Usage: flood.py SOURCE SERVER PORT SECONDS
Prints: sent, answered in full, answered truncated (TC=1), per second.
"""
import socket
import struct
import sys
import threading
import time

source, server, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((source, 0))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.settimeout(0.5)
counts = {"full": 0, "tc": 0}
done = threading.Event()


def receive():
    while True:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            if done.is_set():
                return
            continue
        flags = struct.unpack(">H", data[2:4])[0]
        counts["tc" if flags & 0x0200 else "full"] += 1


reader = threading.Thread(target=receive)
reader.start()
sent = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    for _ in range(100):
        name = b"\x0fnothere%08d\x08backhaul\x00" % sent
        sock.sendto(struct.pack(">HHHHHH", sent & 0xFFFF, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01",
                    (server, port))
        sent += 1
done.set()
reader.join()
print(f"flood        sent {sent:8d} ({sent / seconds:8.0f}/s)  answered in full {counts['full']:7d} "
      f"({counts['full'] / seconds:6.0f}/s)  truncated (TC=1) {counts['tc']:7d} ({counts['tc'] / seconds:6.0f}/s)")

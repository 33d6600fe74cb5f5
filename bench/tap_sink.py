#!/usr/bin/env python3
"""A dnstap reader that reads and throws away: listens on a Unix socket (argv[1]), answers the
Frame Streams handshake (READY -> ACCEPT, then START) and discards the data frames in large
reads, so that bench/dnstap.sh measures the writer's cost, not a reader's decoding."""
import os
import socket
import struct
import sys

CONTENT_TYPE = b"protobuf:dnstap.Dnstap"
path = sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(4)
accept = struct.pack(">III", 1, 1, len(CONTENT_TYPE)) + CONTENT_TYPE
while True:
    conn, _ = server.accept()
    head = conn.recv(8, socket.MSG_WAITALL)
    length = struct.unpack(">I", head[4:8])[0]
    conn.recv(length, socket.MSG_WAITALL)  # READY
    conn.sendall(struct.pack(">II", 0, len(accept)) + accept)
    buf = bytearray(1 << 20)
    while conn.recv_into(buf):
        pass
    conn.close()

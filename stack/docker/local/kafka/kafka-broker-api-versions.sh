#!/usr/bin/python3
"""Health probe with the official script's name and flag: one ApiVersions round trip (v0) to the broker."""
import socket
import struct
import sys

host, port = sys.argv[sys.argv.index("--bootstrap-server") + 1].rsplit(":", 1)
client = b"healthcheck"
request = struct.pack(">hhih", 18, 0, 1, len(client)) + client
with socket.create_connection((host, int(port)), timeout=5) as conn:
    conn.sendall(struct.pack(">i", len(request)) + request)
    header = conn.recv(10)
size, correlation, error = struct.unpack(">iih", header[:10])
sys.exit(0 if correlation == 1 and error == 0 else 1)

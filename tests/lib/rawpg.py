#!/usr/bin/env python3
"""Raw PostgreSQL wire-protocol pokes for tests: sends bytes, prints what came back.

usage: rawpg.py PORT CASE
cases: garbage, proto2, truncated, oversized, ssl_then_startup, bad_header, cancel_unknown
Prints one line: the first ErrorResponse's SQLSTATE and message ("E <code> <msg>"),
"N" for an SSLRequest refused, "CLOSED" when the server closed without a word,
"OK" when a login completed (ReadyForQuery).
"""
import socket
import struct
import sys


def startup(params, version=196608):
    body = struct.pack("!I", version)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def read_reply(s):
    data = b""
    s.settimeout(5)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"Z\0\0\0\x05" in data or data.startswith(b"E"):
                # wait for the rest of an ErrorResponse
                if data.startswith(b"E") and len(data) >= 5:
                    n = struct.unpack("!I", data[1:5])[0]
                    if len(data) >= n + 1:
                        break
                else:
                    break
    except socket.timeout:
        return "TIMEOUT"
    if not data:
        return "CLOSED"
    if data[:1] == b"E":
        fields = {}
        for part in data[5:].split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode(errors="replace")
        return "E %s %s" % (fields.get("C", "?"), fields.get("M", "?"))
    if b"Z\0\0\0\x05" in data:
        return "OK"
    return "DATA %r" % data[:40]


def main():
    port, case = int(sys.argv[1]), sys.argv[2]
    db = sys.argv[3] if len(sys.argv) > 3 else "testdb"
    s = socket.create_connection(("127.0.0.1", port))
    good = startup({"user": "app", "database": db})
    if case == "garbage":
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    elif case == "proto2":
        s.sendall(startup({"user": "app", "database": db}, version=0x00020000))
    elif case == "truncated":
        s.sendall(good[: len(good) // 2])
        s.shutdown(socket.SHUT_WR)
    elif case == "oversized":
        s.sendall(struct.pack("!II", 100000, 196608))
    elif case == "bad_terminator":
        body = struct.pack("!I", 196608) + b"user\0app\0database"
        s.sendall(struct.pack("!I", len(body) + 4) + body)
    elif case == "ssl_then_startup":
        s.sendall(struct.pack("!II", 8, 80877103))
        ans = s.recv(1)
        if ans != b"N":
            print("SSL answer %r" % ans)
            return
        s.sendall(good)
    elif case == "bad_header":
        s.sendall(good)
        r = read_reply(s)
        if r != "OK":
            print("login: " + r)
            return
        s.sendall(b"Q\0\0\0\x02")  # length under 4
    elif case == "login":
        s.sendall(good)
    elif case == "proto32":
        # protocol 3.2 with a _pq_ option: NegotiateProtocolVersion, then a login
        s.sendall(startup({"user": "app", "database": db, "_pq_.foo": "1"}, version=196610))
        data = b""
        s.settimeout(5)
        while b"Z\0\0\0\x05" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        if data[:1] == b"v":
            n = struct.unpack("!I", data[1:5])[0]
            minor, nopt = struct.unpack("!II", data[5:13])
            opts = data[13:1 + n].split(b"\0")[:nopt]
            print("v %d %s %s" % (minor, b",".join(opts).decode(), "OK" if b"Z\0\0\0\x05" in data else "NOLOGIN"))
        else:
            print("no NegotiateProtocolVersion: %r" % data[:20])
        return
    elif case == "gssenc":
        s.sendall(struct.pack("!II", 8, 80877104))
        ans = s.recv(1)
        if ans != b"N":
            print("GSSENC answer %r" % ans)
            return
        s.sendall(good)
    elif case == "terminate_first":
        s.sendall(b"X\0\0\0\x04")
    else:
        print("unknown case")
        return
    print(read_reply(s))


main()

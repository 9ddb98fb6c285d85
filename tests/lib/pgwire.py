#!/usr/bin/env python3
"""A small PostgreSQL wire-protocol client for tests that need what psql
cannot send: any startup parameter, a Bind of set_config($1, $2), a
FunctionCall, pipelined requests.

usage: pgwire.py PORT DB [name=value ...] -- STEP [STEP ...]
Startup parameters come first (user defaults to app). Each step prints one
line:
  q:SQL           simple Query: the rows' first columns joined by ',' or
                  "E <sqlstate> <message>"
  x:SQL[|p1|p2]   Parse/Bind/Execute/Sync of SQL with text parameters
  f:OID[|arg]     FunctionCall of the function with that OID (text args)
  p:NAME|SQL      Parse of a named statement, Sync: "" or the error
  e:NAME          Bind/Execute/Sync of the named statement
  sh:CMD          runs CMD in the shell (prints nothing)
A failed login prints "LOGIN E <sqlstate> <message>" (or LOGIN CLOSED) and
stops.
"""
import socket
import subprocess
import struct
import sys


class Wire:
    """Backend messages off a connected socket (plain or TLS): msg() gives
    (type, body) one at a time. tests/lib/pgauth.py uses it too."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def msg(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError()
            self.buf += chunk
        n = struct.unpack("!I", self.buf[1:5])[0]
        t, body = self.buf[:1], self.buf[5:1 + n]
        self.buf = self.buf[1 + n:]
        return t, body

    @staticmethod
    def error(body):
        """ "E SQLSTATE MESSAGE" of an ErrorResponse body."""
        f = {}
        for part in body.split(b"\0"):
            if part:
                f[chr(part[0])] = part[1:].decode(errors="replace")
        return "E %s %s" % (f.get("C", "?"), f.get("M", "?"))


class Conn(Wire):
    def __init__(self, port, params):
        Wire.__init__(self, socket.create_connection(("127.0.0.1", port), timeout=20))
        body = struct.pack("!I", 196608)
        for k, v in params.items():
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        Wire.send(self, struct.pack("!I", len(body) + 4) + body)

    def until_ready(self):
        """Reads to ReadyForQuery: the first columns of the rows, or the first error."""
        rows, err = [], None
        while True:
            t, body = self.msg()
            if t == b"D":
                ncol = struct.unpack("!H", body[:2])[0]
                if ncol:
                    ln = struct.unpack("!i", body[2:6])[0]
                    rows.append("NULL" if ln < 0 else body[6:6 + ln].decode())
            elif t == b"V":
                ln = struct.unpack("!i", body[:4])[0]
                rows.append("NULL" if ln < 0 else body[4:4 + ln].decode())
            elif t == b"E" and err is None:
                err = self.error(body)
            elif t == b"Z":
                return err if err else ",".join(rows)

    def login(self):
        try:
            while True:
                t, body = self.msg()
                if t == b"E":
                    return "LOGIN " + self.error(body)
                if t == b"Z":
                    return None
        except EOFError:
            return "LOGIN CLOSED"

    def send(self, t, body):
        self.s.sendall(t + struct.pack("!I", len(body) + 4) + body)

    def query(self, sql):
        self.send(b"Q", sql.encode() + b"\0")
        return self.until_ready()

    def extended(self, sql, params):
        self.send(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!H", 0))
        bind = b"\0\0" + struct.pack("!HH", 0, len(params))
        for p in params:
            bind += struct.pack("!i", len(p.encode())) + p.encode()
        bind += struct.pack("!H", 0)
        self.send(b"B", bind)
        self.send(b"E", b"\0" + struct.pack("!i", 0))
        self.send(b"S", b"")
        return self.until_ready()

    def prepare(self, name, sql):
        self.send(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!H", 0))
        self.send(b"S", b"")
        return self.until_ready()

    def execute(self, name):
        self.send(b"B", b"\0" + name.encode() + b"\0" + struct.pack("!HHH", 0, 0, 0))
        self.send(b"E", b"\0" + struct.pack("!i", 0))
        self.send(b"S", b"")
        return self.until_ready()

    def function_call(self, oid, args):
        body = struct.pack("!IH", oid, 0) + struct.pack("!H", len(args))
        for a in args:
            body += struct.pack("!i", len(a.encode())) + a.encode()
        body += struct.pack("!H", 0)
        self.send(b"F", body)
        return self.until_ready()


def main():
    port, db = int(sys.argv[1]), sys.argv[2]
    args = sys.argv[3:]
    split = args.index("--") if "--" in args else len(args)
    params = {"user": "app", "database": db}
    for kv in args[:split]:
        k, v = kv.split("=", 1)
        params[k] = v
    c = Conn(port, params)
    err = c.login()
    if err:
        print(err)
        return
    for step in args[split + 1:]:
        kind, rest = step.split(":", 1)
        try:
            if kind == "q":
                print(c.query(rest))
            elif kind == "x":
                parts = rest.split("|")
                print(c.extended(parts[0], parts[1:]))
            elif kind == "p":
                name, sql = rest.split("|", 1)
                print(c.prepare(name, sql))
            elif kind == "e":
                print(c.execute(rest))
            elif kind == "sh":
                subprocess.run(rest, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elif kind == "f":
                parts = rest.split("|")
                print(c.function_call(int(parts[0]), parts[1:]))
        except (EOFError, socket.timeout) as e:
            print("CLOSED %s" % type(e).__name__)
            return
    c.send(b"X", b"")


if __name__ == "__main__":
    main()

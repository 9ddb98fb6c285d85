#!/usr/bin/env python3
"""A PostgreSQL login client written apart from libpq and from pgflip's own
code (Python's hashlib, hmac and ssl), for tests of client authentication:
it shows what a client sees at each step, which psql does not.

usage: pgauth.py [options] PORT DB USER PASSWORD [SQL]
  --host H        (default 127.0.0.1)
  --tls           send SSLRequest and speak TLS (no certificate check
                  unless --ca); --ca FILE, --cert FILE --key FILE
  --mech M        SCRAM mechanism to use: SCRAM-SHA-256 (default; gs2 "y"
                  when -PLUS is offered over TLS, "n" otherwise) or
                  SCRAM-SHA-256-PLUS (tls-server-end-point binding)
  --bad-cbind     send channel-binding data that is not our server's
  --gs2 G         force the gs2 header (e.g. "n,,")
  --show-cert     print "cert SHA256" of the server's certificate (TLS)
  --early DATA    send DATA right behind the SSLRequest, before its answer
Prints, one per line:
  auth CODE [mechanisms]   each Authentication request (3 cleartext, 5 md5,
                           10 SASL, 11 SASLContinue, 12 SASLFinal, 0 ok)
  salt SALT ITER           the SCRAM salt and iteration count offered
  OK [first column]        logged in (and the SQL's first row, if given)
  E SQLSTATE MESSAGE       an ErrorResponse, then the end
  CLOSED                   the server closed the connection
"""
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgwire import Wire  # noqa: E402  (the message reader both tools share)


def parse_args(argv):
    opts = {"host": "127.0.0.1", "tls": False, "ca": None, "cert": None, "key": None,
            "mech": "SCRAM-SHA-256", "bad_cbind": False, "gs2": None,
            "show_cert": False, "early": None}
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--tls":
            opts["tls"] = True
        elif a == "--show-cert":
            opts["show_cert"] = True
        elif a == "--bad-cbind":
            opts["bad_cbind"] = True
        elif a in ("--host", "--ca", "--cert", "--key", "--mech", "--gs2", "--early"):
            opts[a[2:]] = argv[i + 1]
            i += 1
        else:
            rest.append(a)
        i += 1
    return opts, rest


error_text = Wire.error


def password_msg(data):
    return b"p" + struct.pack("!I", len(data) + 4) + data


def end_point_hash(sock):
    """RFC 5929 tls-server-end-point: SHA-256 of the DER certificate (the
    test certificates are signed with SHA-256)."""
    return hashlib.sha256(sock.getpeercert(binary_form=True)).digest()


class Scram:
    def __init__(self, password, opts, offered, sock):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.mech = opts["mech"]
        cbind = b""
        if self.mech.endswith("-PLUS"):
            self.gs2 = "p=tls-server-end-point,,"
            tls = isinstance(sock, ssl.SSLSocket)
            cbind = end_point_hash(sock) if tls and not opts["bad_cbind"] else os.urandom(32)
        elif "SCRAM-SHA-256-PLUS" in offered:
            self.gs2 = "y,,"
        else:
            self.gs2 = "n,,"
        if opts["gs2"] is not None:
            self.gs2 = opts["gs2"]
        self.cbind_input = base64.b64encode(self.gs2.encode() + cbind).decode()
        self.first_bare = "n=,r=" + self.nonce

    def initial(self):
        data = (self.gs2 + self.first_bare).encode()
        return self.mech.encode() + b"\0" + struct.pack("!i", len(data)) + data

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt = base64.b64decode(attrs["s"])
        iters = int(attrs["i"])
        print("salt %s %d" % (attrs["s"], iters))
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iters)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = "c=%s,r=%s" % (self.cbind_input, attrs["r"])
        self.auth_message = ",".join([self.first_bare, server_first, without_proof]).encode()
        sig = hmac.new(stored, self.auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify(self, server_final):
        want = hmac.new(self.server_key, self.auth_message, hashlib.sha256).digest()
        return server_final == "v=" + base64.b64encode(want).decode()


def connect(opts, port):
    s = socket.create_connection((opts["host"], port), timeout=20)
    if not opts["tls"]:
        return s
    s.sendall(struct.pack("!II", 8, 80877103) + (opts["early"] or "").encode())
    answer = s.recv(1)
    if answer != b"S":
        print("TLS refused (%r)" % answer)
        sys.exit(0)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if opts["ca"]:
        ctx.load_verify_locations(opts["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
    if opts["cert"]:
        ctx.load_cert_chain(opts["cert"], opts["key"])
    t = ctx.wrap_socket(s, server_hostname="localhost")
    if opts["show_cert"]:
        print("cert " + hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest())
    return t


def login(w, user, password, opts, sock):
    scram = None
    while True:
        t, body = w.msg()
        if t == b"E":
            print(error_text(body))
            return False
        if t == b"Z":
            return True
        if t != b"R":
            continue
        code = struct.unpack("!I", body[:4])[0]
        rest = body[4:]
        if code == 10:
            mechs = [m.decode() for m in rest.split(b"\0") if m]
            print("auth 10 " + ",".join(mechs))
            scram = Scram(password, opts, mechs, sock)
            w.send(password_msg(scram.initial()))
        elif code == 11:
            print("auth 11")
            w.send(password_msg(scram.final(rest.decode())))
        elif code == 12:
            print("auth 12 " + ("verified" if scram.verify(rest.decode()) else "WRONG SERVER SIGNATURE"))
        elif code == 5:
            print("auth 5")
            inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
            outer = "md5" + hashlib.md5(inner.encode() + rest[:4]).hexdigest()
            w.send(password_msg(outer.encode() + b"\0"))
        elif code == 3:
            print("auth 3")
            w.send(password_msg(password.encode() + b"\0"))
        else:
            print("auth %d" % code)


def query(w, sql):
    w.send(b"Q" + struct.pack("!I", len(sql) + 5) + sql.encode() + b"\0")
    first = None
    while True:
        t, body = w.msg()
        if t == b"D" and first is None:
            n = struct.unpack("!i", body[2:6])[0]
            first = body[6:6 + n].decode() if n >= 0 else ""
        elif t == b"E":
            first = error_text(body)
        elif t == b"Z":
            return first


def main():
    opts, args = parse_args(sys.argv[1:])
    port, db, user, password = int(args[0]), args[1], args[2], args[3]
    sql = args[4] if len(args) > 4 else None
    try:
        sock = connect(opts, port)
    except (EOFError, ConnectionError, ssl.SSLError, OSError) as e:
        print("CLOSED %s" % e)
        return
    w = Wire(sock)
    body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
    w.send(struct.pack("!I", len(body) + 4) + body)
    try:
        if not login(w, user, password, opts, sock):
            return
        print("OK" + (" " + str(query(w, sql)) if sql else ""))
        w.send(b"X\0\0\0\4")
    except (EOFError, ConnectionError, ssl.SSLError) as e:
        print("CLOSED" + (" %s" % e if str(e) else ""))


main()

#!/usr/bin/env python3
"""Captures real PostgreSQL traffic and cuts it into the fuzz seed corpus.

Re-run (as root, from the top of the tree; it replaces the captured seeds):

    python3 tests/fuzz/capture.py [tests/fuzz/corpus]

It starts a throwaway cluster with tests/lib/pg.sh (pg_start DIR PORT: the
server runs as the postgres OS user), puts a relay in front of it on a free
loopback port, and runs psql, pgbench and libpq clients through the relay.
The relay records each connection's client->server and server->client bytes.
Those are then cut per harness (one file per seed, named ORIGIN-WHAT-SHA1):

  startup/   the first packets: StartupMessage (psql, pgbench, a libpq client
             with options), SSLRequest, CancelRequest; one GSSENCRequest is
             written by hand (libpq sends it only with a Kerberos cache)
  framing/   a control byte (see fuzz_framing.c) and a stream of typed
             messages: frontend streams (pgbench -M simple/extended/prepared,
             psql with \\copy) and backend streams, cut at a message boundary
             under STREAM_MAX bytes
  messages/  one message each, type byte and body (the length dropped, as
             fuzz_messages.c reads them): ReadyForQuery, ErrorResponse,
             NoticeResponse, ParameterStatus, CommandComplete, Query, Parse;
             the SQL of the Query messages for proto_quote_literal ('q')
  options/   the options values sent in startup packets, and PGOPTIONS forms
             written by hand (valid and refused ones)
  conf/      tests/data/conf/*.ini and conf/pgflip.ini, plus a few written here

Only the files this script writes are replaced; other harnesses' corpora
(sqlscan/) are left alone. Seeds are deduplicated by content.
"""
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# A seed stream longer than this is cut at a message boundary: the harness
# walks every byte, and libFuzzer's -max_len follows the largest seed.
STREAM_MAX = 4096
# Seeds kept per origin and kind of message: pgbench's queries differ only in
# their random numbers, and a few of each are as good as all of them.
PER_KIND_MAX = 4
SSL_CODE, GSSENC_CODE, CANCEL_CODE = 80877103, 80877104, 80877102
APP_ENV = {"PGPASSWORD": "app_pw", "PGUSER": "app", "PGHOST": "127.0.0.1"}


def sh(script, *args):
    """Runs SCRIPT with sh after sourcing tests/lib/pg.sh, ARGS as $1...;
    returns its stdout."""
    return subprocess.run(["sh", "-c", ". tests/lib/pg.sh\n" + script, "sh", *map(str, args)], cwd=TOP,
                          check=True, stdout=subprocess.PIPE, text=True).stdout


class Relay:
    """A TCP relay 127.0.0.1:port -> 127.0.0.1:upstream that records bytes."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.label = "none"
        self.conns = []  # [label, bytearray c2s, bytearray s2c]
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            rec = [self.label, bytearray(), bytearray()]
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self.pipe, args=(client, server, rec[1]), daemon=True).start()
            threading.Thread(target=self.pipe, args=(server, client, rec[2]), daemon=True).start()

    def pipe(self, src, dst, log):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    log.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self, label, argv, env_extra=None, stdin=None, cancel_after=None):
        """Runs a client with PGPORT set to the relay, labelling its connections."""
        self.label = label
        env = dict(os.environ, **APP_ENV, PGPORT=str(self.port), **(env_extra or {}))
        p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if cancel_after is not None:
            time.sleep(cancel_after)
            p.send_signal(signal.SIGINT)  # psql sends a CancelRequest
        p.communicate(stdin.encode() if stdin is not None else None, timeout=120)
        time.sleep(0.3)  # let the relay threads drain


PSQL_SESSION = r"""
SELECT 1;
SELECT g, 'row ' || g AS label FROM generate_series(1, 3) g;
SET search_path = public;
SET application_name = 'fuzz capture';
SET TimeZone = 'UTC';
BEGIN;
SELECT 1 / 0;
ROLLBACK;
DO $$ BEGIN RAISE NOTICE 'a notice with detail'; END $$;
DO $$ BEGIN RAISE WARNING 'careful' USING DETAIL = 'some detail', HINT = 'a hint'; END $$;
SELECT * FROM no_such_table;
SELEC 1;
;
CREATE TEMP TABLE t (a int, b text);
\copy t from stdin
1	one
2	two, with a tab	inside
\.
\copy t to stdout
COPY t TO STDOUT (FORMAT csv);
LISTEN fuzz_channel;
NOTIFY fuzz_channel, 'payload';
PREPARE q(int) AS SELECT $1 + 1;
EXECUTE q(41);
BEGIN;
SELECT txid_current() > 0;
COMMIT;
"""


def capture(work):
    port = int(sh("free_port").strip())
    sh('pg_start "$1" "$2" && pg_psql -c "CREATE DATABASE fuzzcap OWNER app" >/dev/null &&\n'
       'PGPASSWORD=app_pw pgbench -q -i -s 1 -h 127.0.0.1 -p "$2" -U app fuzzcap >/dev/null 2>&1',
       f"{work}/pg", port)
    try:
        relay = Relay(port)
        pgbench = "pgbench"
        relay.run("psql", ["psql", "-X", "-d", "fuzzcap", "-v", "ON_ERROR_STOP=0"], stdin=PSQL_SESSION)
        relay.run("psql-nossl", ["psql", "-X", "-d", "dbname=fuzzcap sslmode=disable", "-c", "SELECT version()"])
        relay.run("libpq-options", ["psql", "-X", "-d", "fuzzcap", "-c", "SHOW work_mem"],
                  {"PGOPTIONS": r"-c search_path=public -c statement_timeout=5s --work-mem=4MB "
                                r"-c application_name=a\ b", "PGAPPNAME": "fuzz-capture"})
        relay.run("libpq-options", ["psql", "-X", "-d",
                                    "dbname=fuzzcap options='-cgeqo=off -c lock_timeout=1s'", "-c", "SELECT 1"])
        relay.run("psql-cancel", ["psql", "-X", "-d", "fuzzcap", "-c", "SELECT pg_sleep(10)"], cancel_after=1.5)
        for mode in ("simple", "extended", "prepared"):
            relay.run(f"pgbench-{mode}", [pgbench, "-n", "-M", mode, "-t", "5", "-c", "1", "fuzzcap"])
        relay.run("pgbench-select", [pgbench, "-n", "-S", "-M", "extended", "-t", "5", "fuzzcap"])
        return relay.conns
    finally:
        sh('pg_stop "$1"', f"{work}/pg")


def be32(b, at):
    return struct.unpack_from("!I", b, at)[0]


def split_untyped(c2s):
    """The packets a client sends before typed messages, and the rest."""
    packets, off = [], 0
    while off + 8 <= len(c2s):
        n = be32(c2s, off)
        code = be32(c2s, off + 4)
        packets.append(bytes(c2s[off:off + n]))
        off += n
        if code not in (SSL_CODE, GSSENC_CODE):
            break  # a StartupMessage or CancelRequest: what follows is typed
    return packets, bytes(c2s[off:])


def messages(stream):
    """(type, body) of each whole typed message of STREAM."""
    out, off = [], 0
    while off + 5 <= len(stream):
        n = be32(stream, off + 1)
        if n < 4 or off + 1 + n > len(stream):
            break
        out.append((stream[off:off + 1], stream[off + 5:off + 1 + n]))
        off += 1 + n
    return out


def cut(stream, limit):
    """The longest prefix of whole messages under LIMIT bytes."""
    off = 0
    for t, body in messages(stream):
        if off + 5 + len(body) > limit:
            break
        off += 5 + len(body)
    return stream[:off]


class Corpus:
    def __init__(self, root):
        self.root = root
        self.seen = set()
        self.count = {}  # seeds per (harness, origin, what)
        self.files = {}  # seeds per harness

    def add(self, harness, origin, what, data):
        key = (harness, hashlib.sha1(data).hexdigest())
        kind = (harness, origin, what)
        if key in self.seen or self.count.get(kind, 0) >= PER_KIND_MAX:
            return
        self.seen.add(key)
        self.count[kind] = self.count.get(kind, 0) + 1
        self.files[harness] = self.files.get(harness, 0) + 1
        d = os.path.join(self.root, harness)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{origin}-{what}-{key[1][:12]}"), "wb") as f:
            f.write(data)


# Frontend options strings written by hand: each accepted form, escapes, and
# each refusal of proto_options_parse.
OPTIONS = [
    "-c search_path=app_v2",
    "-cwork_mem=64MB",
    "--statement-timeout=5s",
    r"-c application_name=a\ b -c x=C:\\dir",
    "  -c a=1\t-cb=2\n--c=3  -c d=  ",
    "-c lock-timeout=1-2 --x-y=-a-",
    "-d 5",
    "-c",
    "-c foo",
    "--foo",
    "-c =x",
    "mydb",
    "-c a=1 -c b=2 -c c=3 -c d=4 -c e=5 -c f=6 -c g=7 -c h=8 -c i=9",
    "\\",
    "",
]

# Configurations written for the corpus: routes of every kind, a canary,
# per-database pool keys, and a few broken ones.
CONFS = {
    "routes": "[pgflip]\nlisten_port = 6433\npool_mode = transaction\nadmin_users = a, b\n\n"
              "[databases]\napp = host=127.0.0.1 port=5432 dbname=app pool_mode=session pool_size=3\n"
              "other = host=/tmp dbname=o user=u password=p\n\n"
              "[routes]\ndefault = public\napp.web-* = app_v2\nuser.alice = app_v3\n"
              "addr.10.0.0.0/8 = app_v2\naddr.::1/128 = app_v3\ncanary = app_v3 10\n",
    "minimal": "[databases]\nx = dbname=x\n[routes]\ndefault = s\n",
    "canary-key": "[databases]\nx = dbname=x\n[routes]\ndefault = s\ncanary = t 25%\ncanary_key = application_name\n"
                  "canary_key = connection\n",
    "timeouts": "[pgflip]\nserver_connect_timeout = 0.5\nquery_wait_timeout = 0\nmax_packet_size = 1024\n"
                "log_level = warning\nserver_reset_query =\n[databases]\nx = dbname=x\n[routes]\ndefault = s\n",
    "bad-key": "[pgflip]\nno_such_key = 1\n",
    "bad-section": "[nope]\n",
    "bad-cidr": "[databases]\nx = dbname=x\n[routes]\ndefault = s\naddr.10.0.0.0/33 = t\n",
    "addr-pins": "[databases]\n* = host=/tmp\n[routes]\ndefault = s\naddr.192.168.1.77/20 = a\n"
                 "addr.::ffff:10.1.2.3/120 = b\naddr.10.1.2.3 = c\naddr.fe80::1/10 = d\naddr.0.0.0.0/0 = e\n",
    # fuzz_conf.c: INI, "\n%%\n", the userlist, "\n%%\n", the hba file;
    # @USERLIST@ and @HBA@ stand for the paths of the last two
    "tls-keys": "[pgflip]\nclient_tls_sslmode = verify-ca\nclient_tls_cert_file = c.crt\n"
                "client_tls_key_file = c.key\nclient_tls_ca_file = ca.crt\nauth_type = cert\n"
                "client_tls_protocols = all,!tlsv1.0:TLSv1.3\nclient_tls_ciphers = HIGH\n"
                "server_tls_sslmode = verify-full\nserver_tls_cert_file = s.crt\nserver_tls_key_file = s.key\n"
                "unix_socket_mode = 0660\nunix_socket_group = pg\nstats_users = a, b\n"
                "[databases]\nx = dbname=x\n[routes]\ndefault = s\n",
    "auth-userlist": "[pgflip]\nauth_type = md5\nauth_file = @USERLIST@\n"
                     "[databases]\nx = dbname=x\n[routes]\ndefault = s\n"
                     "%%\n; users\n\"admin\" \"md545f2603610af569b6155c45067268c6b\"\n"
                     "\"app\" \"SCRAM-SHA-256$4096:QSXCR+Q6sek8bf92$6v4YTVbOVTWuCqTHNdxCbBlvEoFqkj1hd4bx3bHJhYw=:"
                     "Sq+fEJnuKB0HTpPRIMu8ICNYWZAqDxIxUnyvYsdnbM0=\"\n"
                     "\"say \"\"hi\"\"\" \"pa ss\" ignored\n# comment\n",
    "auth-hba": "[pgflip]\nauth_type = hba\nauth_file = @USERLIST@\nauth_hba_file = @HBA@\n"
                "client_tls_sslmode = verify-full\nclient_tls_cert_file = c\nclient_tls_key_file = k\n"
                "client_tls_ca_file = ca\n[databases]\nx = dbname=x\n[routes]\ndefault = s\n"
                "%%\n\"bob\" \"secret\"\n"
                "%%\n# TYPE DATABASE USER ADDRESS METHOD\nlocal all postgres peer\nlocal sameuser all md5\n"
                "host db1,\"Db Two\" alice,\"bob\" 10.0.0.0/8 scram-sha-256\nhostssl all all ::1/128 cert\n"
                "hostnossl all all 192.168.1.0 255.255.255.0 password\nhost \"all\" all all reject\n"
                "host all all 0.0.0.0/0 trust\nhost all all ::/0 md5\n",
}


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "tests/fuzz/corpus"))
    for h in ("startup", "framing", "messages", "options", "conf"):
        shutil.rmtree(os.path.join(root, h), ignore_errors=True)
    corpus = Corpus(root)
    work = tempfile.mkdtemp(prefix="pgflip-capture.")
    os.chmod(work, 0o755)
    try:
        conns = capture(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    chunk = 0
    for label, c2s, s2c in conns:
        packets, typed = split_untyped(c2s)
        for p in packets:
            if len(p) < 8:
                continue
            code = be32(p, 4)
            kind = {SSL_CODE: "sslrequest", GSSENC_CODE: "gssencrequest", CANCEL_CODE: "cancel"}.get(code, "startup")
            corpus.add("startup", label, kind, p)
            if kind == "startup":
                fields = p[8:].split(b"\0")
                for k, v in zip(fields[0::2], fields[1::2]):
                    if k == b"options":
                        corpus.add("options", label, "sent", v)
        if any(be32(p, 4) == SSL_CODE for p in packets if len(p) >= 8) and s2c[:1] == b"N":
            s2c = s2c[1:]  # the one-byte answer to SSLRequest
        # control byte: direction in bit 0, max length 64 MiB (index 6), read size varied
        for direction, stream in ((0, typed), (1, bytes(s2c))):
            piece = cut(stream, STREAM_MAX)
            if piece:
                ctl = direction | (6 << 1) | ((chunk % 16) << 4)
                chunk += 1
                corpus.add("framing", label, "be" if direction else "fe", bytes([ctl]) + piece)
        for t, body in messages(typed):
            if t in (b"Q", b"P"):
                corpus.add("messages", label, t.decode(), t + body)
            if t == b"Q":
                corpus.add("messages", label, "quote", b"q" + body.rstrip(b"\0"))
        for t, body in messages(bytes(s2c)):
            if t in (b"Z", b"E", b"N", b"S", b"C"):
                corpus.add("messages", label, t.decode(), t + body)

    corpus.add("startup", "hand", "gssencrequest", struct.pack("!II", 8, GSSENC_CODE))
    # protocol 3.2 with a protocol option, as a newer libpq would send it
    body = struct.pack("!I", (3 << 16) | 2) + b"user\0app\0_pq_.x\0y\0replication\0database\0\0"
    corpus.add("startup", "hand", "startup-3.2", struct.pack("!I", 4 + len(body)) + body)
    corpus.add("messages", "hand", "negotiate", b"v\x01_pq_.foo\0_pq_.bar\0")
    corpus.add("messages", "hand", "reader", b"r\x06\x00\x01\x02\x03\x0c\x05\x01\x00\x02\x00\x00\x00\x03ab\0xyz")
    corpus.add("messages", "hand", "quote", b"q" + b"it's a \\ backslash")
    for i, text in enumerate(OPTIONS):
        corpus.add("options", "hand", f"form{i}", text.encode())
    conf_dir = os.path.join(TOP, "tests/data/conf")
    for name in sorted(os.listdir(conf_dir)) + ["../../../conf/pgflip.ini"]:
        if name.endswith(".ini"):
            with open(os.path.join(conf_dir, name), "rb") as f:
                corpus.add("conf", "file", os.path.basename(name)[:-4], f.read())
    for name, text in CONFS.items():
        corpus.add("conf", "hand", name, text.encode())

    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
    print(" ".join(f"{h}: {n}" for h, n in sorted(corpus.files.items())), f"({total} bytes in {root})")


if __name__ == "__main__":
    main()

# Faults one client or one upstream can cause must stay with it: idle
# sockets do not lock logins out, a flood while paused does not grow
# pgflip's memory, a vanished upstream gives clean errors, a silent upstream
# times out. Every load here goes to 127.0.0.1 and stops by itself.
. "$TOP/tests/lib/check.sh"
# under sanitizers, freed memory waits in ASan's quarantine (256 MB by
# default) and would count as pgflip's RSS
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"

make_db faults
port=$(free_port)
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$PGFLIP_PID/status"; }
write_conf "$T_DIR/pgflip.ini" "$port" "pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
client_login_timeout = 2
log_level = info"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }

# 1,000 connections that never send a StartupMessage
python3 - "$port" >"$T_DIR/idle.out" 2>&1 <<'PY' &
import socket, sys, time
socks = []
for i in range(1000):
    try:
        socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
    except OSError as e:
        print("connect %d: %s" % (i, e))
        break
print("open", len(socks))
sys.stdout.flush()
time.sleep(6)
PY
idle=$!
sleep 2
start=$(date +%s%N)
got=$(fpsql "$port" -c "SELECT 'served'" 2>&1)
took=$((($(date +%s%N) - start) / 1000000))
expect_eq "1,000 idle connections: a normal client is served" "$got" "served"
check "... at once (${took} ms)" test "$took" -lt 2000
wait $idle
check "connections that never log in are closed after client_login_timeout" grep -q "client_login_timeout" "$T_DIR/pgflip.log"

# flood: a client logs in, then sends 500 MB of Query messages (50 MB each)
# as fast as pgflip takes them, for 6 s at most
cat >"$T_DIR/flood.py" <<'PY'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = struct.pack("!I", 196608) + b"user\0app\0database\0" + sys.argv[2].encode() + b"\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
while b"Z\0\0\0\x05" not in s.recv(65536):
    pass
s.setblocking(False)
chunk = b"x" * (1 << 20)
sent, deadline = 0, time.time() + 6
msg_left = 0
while sent < 500 * (1 << 20) and time.time() < deadline:
    try:
        if msg_left == 0:
            s.send(b"Q" + struct.pack("!I", 50 * (1 << 20) + 4))
            msg_left = 50 * (1 << 20)
        n = s.send(chunk[: min(len(chunk), msg_left)])
        sent += n
        msg_left -= n
    except BlockingIOError:
        time.sleep(0.01)
print("sent", sent)
s.close()
PY

# 500 MB sent while paused does not grow pgflip's memory
rss0=$(rss_kb)
ctl pause >/dev/null
python3 "$T_DIR/flood.py" "$port" "$T_DB" >"$T_DIR/flood.out" 2>&1
rss1=$(rss_kb)
ctl resume >/dev/null
echo "# RSS before $rss0 kB, after the flood $rss1 kB; $(cat "$T_DIR/flood.out")"
check "a client sending while paused: pgflip's RSS grows by less than 8 MB ($rss0 -> $rss1 kB)" \
	test $((rss1 - rss0)) -lt 8192
expect_eq "pgflip serves after the flood" "$(fpsql "$port" -c "SELECT 'after'")" "after"

# the same while it waits for a server (both held in transactions): a
# waiting client is read, but only up to its input cap
fpsql "$port" -c "BEGIN" -c "SELECT pg_sleep(7)" -c "COMMIT" >/dev/null 2>&1 &
hold1=$!
fpsql "$port" -c "BEGIN" -c "SELECT pg_sleep(7)" -c "COMMIT" >/dev/null 2>&1 &
hold2=$!
sleep 0.5
rss0=$(rss_kb)
python3 "$T_DIR/flood.py" "$port" "$T_DB" >"$T_DIR/flood2.out" 2>&1
rss1=$(rss_kb)
wait $hold1 $hold2
echo "# RSS before $rss0 kB, after the flood $rss1 kB; $(cat "$T_DIR/flood2.out")"
check "a client sending while it waits for a server: RSS grows by less than 8 MB ($rss0 -> $rss1 kB)" \
	test $((rss1 - rss0)) -lt 8192
expect_eq "pgflip serves after that flood" "$(fpsql "$port" -c "SELECT 'after'")" "after"

# five clients each send a 60 MB Query but its last byte: it streams to the
# server instead of piling up in pgflip
pgflip_stop
sed -i 's/^default_pool_size = 2$/default_pool_size = 6/' "$T_DIR/pgflip.ini"
pgflip_start "$T_DIR/pgflip.ini" || not_ok "pgflip restarts (pool of 6)"
rss0=$(rss_kb)
python3 - "$port" "$T_DB" "$T_DIR/rss.now" "$PGFLIP_PID" >"$T_DIR/big.out" 2>&1 <<'PY'
import socket, struct, sys, time
def login():
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    body = struct.pack("!I", 196608) + b"user\0app\0database\0" + sys.argv[2].encode() + b"\0\0"
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    while b"Z\0\0\0\x05" not in s.recv(65536):
        pass
    s.setblocking(False)
    return s
size = 60 * (1 << 20)
socks = [[login(), b"Q" + struct.pack("!I", size + 4) + b"SELECT '", 0] for _ in range(5)]
left = [size - 9] * 5   # all but the closing quote's last byte
deadline = time.time() + 20
chunk = b"x" * (1 << 20)
while any(left) and time.time() < deadline:
    for i, st in enumerate(socks):
        try:
            if st[1]:
                st[1] = st[1][st[0].send(st[1]):]
            elif left[i]:
                n = st[0].send(chunk[: min(len(chunk), left[i])])
                left[i] -= n
                st[2] += n
        except BlockingIOError:
            pass
    time.sleep(0.001)
rss = open("/proc/%s/status" % sys.argv[4]).read().split("VmRSS:")[1].split()[0]
open(sys.argv[3], "w").write(rss)
print("sent", [st[2] for st in socks], "of", size - 9, "each")
PY
rss1=$(cat "$T_DIR/rss.now" 2>/dev/null || echo 999999)
echo "# RSS before $rss0 kB, with five 60 MB Queries in flight $rss1 kB; $(cat "$T_DIR/big.out")"
# ASan's allocator keeps its own per-size caches of what streamed through
case "$PGFLIP" in *san-*) big_limit=49152 ;; *) big_limit=16384 ;; esac
check "five 60 MB Queries but their last byte: pgflip's RSS grows by less than $((big_limit / 1024)) MB ($rss0 -> $rss1 kB)" \
	test $((rss1 - rss0)) -lt "$big_limit"
expect_eq "pgflip serves after them" "$(fpsql "$port" -c "SELECT 'after'")" "after"
pgflip_stop

# an upstream reached through a Unix socket that vanishes under a live pool
relay_dir="$T_DIR/relay"
mkdir -p "$relay_dir"
python3 - "$relay_dir/.s.PGSQL.$PG_PORT" "$PG_PORT" >"$T_DIR/relay.out" 2>&1 <<'PY' &
import os, socket, sys, threading
path, pg_port = sys.argv[1], int(sys.argv[2])
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(64)
srv.settimeout(30)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for x in (a, b):
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
try:
    while True:
        c, _ = srv.accept()
        u = socket.create_connection(("127.0.0.1", pg_port))
        threading.Thread(target=pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
except OSError:
    pass
PY
relay=$!
T_PIDS="$T_PIDS $relay"
sleep 0.5
cat >"$T_DIR/unix.ini" <<CONF
[pgflip]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
admin_socket = $T_DIR/admin.sock
logfile = $T_DIR/pgflip.log
pool_mode = session
default_pool_size = 2
server_login_retry = 0.2
[databases]
$T_DB = host=$relay_dir port=$PG_PORT dbname=$T_DB user=app password=app_pw
[routes]
default = public
CONF
pgflip_start "$T_DIR/unix.ini" || not_ok "pgflip starts (unix upstream)"
expect_eq "through the relayed Unix socket" "$(fpsql "$port" -c "SELECT 'relayed'")" "relayed"
psql -X -q -At -h 127.0.0.1 -p "$port" -d "$T_DB" -c "SELECT pg_sleep(1.5)" >/dev/null 2>&1 &
held=$!
sleep 0.3
kill "$relay"
rm -f "$relay_dir/.s.PGSQL.$PG_PORT"
i=0 errs=0
while [ $i -lt 20 ]; do
	out=$(fpsql "$port" -c "SELECT 1" 2>&1)
	case "$out" in *"No such file"* | *"server login"* | *"connection"*) errs=$((errs + 1)) ;; esac
	i=$((i + 1))
done
wait $held
check "upstream socket removed: each of 20 clients gets a clean error ($errs)" test "$errs" -eq 20
rss=$(rss_kb)
check "... pgflip stays under 50 MB RSS ($rss kB)" test "$rss" -lt 51200
check "... its admin socket answers" ctl status
ids=$(grep -c "login started" "$T_DIR/pgflip.log")
check "... and it does not spin on logins" test "$(grep -c "login failed" "$T_DIR/pgflip.log")" -lt 200
pgflip_stop

# an upstream that accepts TCP and never answers: server_connect_timeout
silent=$(free_port)
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $silent)); s.listen(16)
conns = []
end = time.time() + 8
s.settimeout(1)
while time.time() < end:
    try:
        conns.append(s.accept()[0])
    except OSError:
        pass
" &
silent_pid=$!
T_PIDS="$T_PIDS $silent_pid"
sleep 0.5
# route_db = (none): a route store on the silent database would hold
# clients at start for up to server_connect_timeout too; this times a
# pool's login alone
sed -e "s/^\(\$T_DB\|$T_DB\) = .*/$T_DB = host=127.0.0.1 port=$silent dbname=x user=app/" \
	-e "s/^server_login_retry = .*/server_connect_timeout = 1/" -e "s/^\[databases\]/route_db =\n[databases]/" \
	"$T_DIR/unix.ini" >"$T_DIR/silent.ini"
pgflip_start "$T_DIR/silent.ini" || not_ok "pgflip starts (silent upstream)"
start=$(date +%s%N)
out=$(fpsql "$port" -c "SELECT 1" 2>&1)
took=$((($(date +%s%N) - start) / 1000000))
expect_match "silent upstream: the client gets server_connect_timeout" "$out" "*server_connect_timeout*"
check "... after about 1 s (${took} ms)" test "$took" -ge 900 -a "$took" -lt 3000
pgflip_stop
kill "$silent_pid" 2>/dev/null

# a host name in [databases] is resolved by pgflip (evdns, here from the
# hosts file), and libpq gets the address: the event loop never waits on DNS
write_conf "$T_DIR/dns.ini" "$port" "log_level = debug"
sed -i "s/host=127.0.0.1 port=$PG_PORT/host=localhost port=$PG_PORT/" "$T_DIR/dns.ini"
pgflip_start "$T_DIR/dns.ini" || not_ok "pgflip starts (host=localhost)"
expect_eq "host=localhost: served" "$(fpsql "$port" -c "SELECT 'resolved'")" "resolved"
check "... resolved by pgflip, not by libpq" grep -q "localhost is 127.0.0.1" "$T_DIR/pgflip.log"
pgflip_stop

# file descriptors run out: pgflip stops accepting for a while (no busy
# loop, one log line per pause) and serves again once some are free
write_conf "$T_DIR/fd.ini" "$port" "log_level = info
client_login_timeout = 1.5"
sh -c "ulimit -n 48; exec \"$TOP/$PGFLIP\" serve -c \"$T_DIR/fd.ini\"" >>"$T_DIR/pgflip.log" 2>&1 &
PGFLIP_PID=$!
T_PIDS="$T_PIDS $PGFLIP_PID"
i=0; while [ $i -lt 50 ] && ! ctl status >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
check "fd limit: pgflip warns at start that the limit is below what it may need" grep -q "file descriptor limit (48)" "$T_DIR/pgflip.log"
cpu() { awk '{ print $14 + $15 }' "/proc/$PGFLIP_PID/stat"; }
python3 - "$port" >"$T_DIR/fd.out" 2>&1 <<'PY' &
import socket, sys, time
socks = []
for i in range(80):
    try:
        socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1))
    except OSError:
        pass
print(len(socks))
time.sleep(3)
PY
held=$!
sleep 0.5
t0=$(cpu)
sleep 2
t1=$(cpu)
wait $held
check "fd limit reached: no busy loop (pgflip used $((t1 - t0)) ticks of CPU in 2 s)" test $((t1 - t0)) -lt 50
n=$(grep -c "not accepting for" "$T_DIR/pgflip.log")
check "fd limit reached: logged once per pause ($n lines)" test "$n" -ge 1 -a "$n" -le 5
sleep 1.5
expect_eq "fd limit: served again once descriptors are free" "$(fpsql "$port" -c "SELECT 'again'")" "again"
pgflip_stop

# named prepared statements per client are bounded by max_prepared_statements
write_conf "$T_DIR/ps.ini" "$port" "pool_mode = transaction
log_level = info
max_prepared_statements = 5"
pgflip_start "$T_DIR/ps.ini" || not_ok "pgflip starts (max_prepared_statements = 5)"
got=$(python3 "$TOP/tests/lib/pgwire.py" "$port" "$T_DB" -- "p:s1|SELECT 1" "p:s2|SELECT 2" "p:s3|SELECT 3" \
	"p:s4|SELECT 4" "p:s5|SELECT 5" "p:s6|SELECT 6" "e:s5" "p:s1|SELECT 11" "e:s1" "q:DEALLOCATE s1" "p:s1|SELECT 11" "e:s1" 2>&1 | tr '\n' ' ')
expect_match "the 6th named statement of a client: 53400; the others work; re-preparing a name: 42P05 as in PostgreSQL; after DEALLOCATE it fits" "$got" \
	"     E 53400 too many prepared statements for this client (max_prepared_statements = 5)* 5 E 42P05 prepared statement \"s1\" already exists 1   11 "
rss0=$(rss_kb)
python3 - "$port" "$T_DB" <<'PY'
import sys
sys.argv = [sys.argv[0], sys.argv[1], sys.argv[2]]
exec(open(__import__("os").environ["TOP"] + "/tests/lib/pgwire.py").read().split("\ndef main")[0])
c = Conn(int(sys.argv[1]), {"user": "app", "database": sys.argv[2]})
c.login()
for i in range(10000):
    c.prepare("n%d" % i, "SELECT %d, '%s'" % (i, "x" * 8000))
PY
rss1=$(rss_kb)
check "10,000 named Parses of 8 kB from one client: RSS grows by less than 16 MB ($rss0 -> $rss1 kB)" test $((rss1 - rss0)) -lt 16384
pgflip_stop

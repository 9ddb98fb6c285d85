# The admin socket and `pgflip ctl`: commands, replies, errors, pause/resume,
# reload, shutdown and signals; max_client_conn.
. "$TOP/tests/lib/check.sh"

make_db admin
apsql -c "CREATE SCHEMA v2"
port=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port" "max_client_conn = 3
shutdown_timeout = 5"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }

expect_eq "admin socket is mode 0600" "$(stat -c %a "$T_DIR/admin.sock")" "600"
out=$(ctl --json status)
expect_match "status: JSON with ok true" "$out" '{"ok":true,*"version":"*'
expect_match "status: human output" "$(ctl status)" "*routes.default: public*"
ctl bogus >/dev/null 2>&1
expect_eq "unknown command: exit status 1" "$?" "1"
expect_match "unknown command: ok false with a message" "$(ctl --json bogus)" '{"ok":false,"error":"unknown command*'
expect_match "bad argument: ok false" "$(ctl --json route addr not-a-cidr v2)" '{"ok":false,*invalid address*'
expect_match "bad schema name: ok false" "$(ctl --json route default 'Bad;Name')" '{"ok":false,*invalid schema name*'
expect_match "socket still usable after errors" "$(ctl --json routes)" '{"ok":true,*'
out=$(printf 'status\nroutes\n' | python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
d=b""
while d.count(b"\n")<2:
    c=s.recv(65536)
    if not c: break
    d+=c
print(d.count(b"\n"), d.decode().splitlines()[1][:12])' "$T_DIR/admin.sock")
expect_eq "one JSON line per request line" "$out" '2 {"ok":true,"'
"$TOP/$PGFLIP" ctl -s "$T_DIR/nonexistent.sock" status >/dev/null 2>&1
expect_eq "ctl: unreachable socket exits 2" "$?" "2"

ctl route app 'report-*' v2 >/dev/null
ctl route user app v2 >/dev/null
out=$(ctl routes)
expect_match "routes lists pins" "$out" "*app*report-\**v2*user*app*v2*"
ctl unroute user app >/dev/null
expect_match "unroute of a missing pin: error" "$(ctl --json unroute user nobody)" '{"ok":false,*no user pin*'

# clients and pools while a client sits in a query
PGAPPNAME=report-x fpsql "$port" -c "SELECT pg_sleep(1)" >/dev/null 2>&1 &
bg=$!
sleep 0.4
out=$(ctl --json clients)
expect_match "clients: shows the connected client with its route" "$out" '*"application_name":"report-x","route":"v2","state":"active"*'
expect_match "pools: shows the pool" "$(ctl --json pools)" '*"database":"admin","user":"app"*"servers_active":1*'
wait $bg

# pause: a new transaction waits until resume, then runs
ctl pause >/dev/null
start=$(date +%s%N)
fpsql "$port" -c "SELECT 'after pause'" >"$T_DIR/paused.out" 2>&1 &
bg=$!
sleep 1
check "pause: the client's query waits" test ! -s "$T_DIR/paused.out"
ctl resume >/dev/null
wait $bg
expect_eq "resume: the waiting query completes" "$(cat "$T_DIR/paused.out")" "after pause"

# max_client_conn = 3: the fourth client is refused with 53300
bgs=""
for i in 1 2 3; do fpsql "$port" -c "SELECT pg_sleep(1.5)" >/dev/null 2>&1 & bgs="$bgs $!"; done
sleep 0.5
out=$(psql -X -At -h 127.0.0.1 -p "$port" -d "$T_DB" -c 'SELECT 1' 2>&1)
expect_match "max_client_conn: the client over the cap is refused" "$out" "*no more connections allowed*"
wait $bgs

# reload via ctl: a broken file is refused and the running config kept
cp "$T_DIR/pgflip.ini" "$T_DIR/pgflip.ini.good"
echo "nonsense_key = 1" >>"$T_DIR/pgflip.ini"
sed -i 's/^\[databases\]/nonsense = 1\n[databases]/' "$T_DIR/pgflip.ini"
expect_match "reload of a bad file: error naming FILE:LINE" "$(ctl --json reload)" "*\"ok\":false*pgflip.ini:*"
expect_eq "still serving after a failed reload" "$(fpsql "$port" -c 'SELECT 1')" "1"
cp "$T_DIR/pgflip.ini.good" "$T_DIR/pgflip.ini"
expect_match "reload of a good file" "$(ctl --json reload)" '{"ok":true,*'

# SIGTERM: stops accepting, waits for the connected client, then exits
fpsql "$port" -c "SELECT pg_sleep(1)" -c "SELECT 'finished'" >"$T_DIR/term.out" 2>&1 &
bg=$!
sleep 0.3
kill -TERM "$PGFLIP_PID"
sleep 0.3
out=$(psql -X -At -h 127.0.0.1 -p "$port" -d "$T_DB" -c 'SELECT 1' 2>&1)
expect_match "SIGTERM: new connections refused" "$out" "*refused*"
check "SIGTERM: pgflip still running while a client is connected" kill -0 "$PGFLIP_PID"
wait $bg
expect_eq "SIGTERM: the connected client finishes its work" "$(tail -n 1 "$T_DIR/term.out")" "finished"
i=0; while kill -0 "$PGFLIP_PID" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
check "SIGTERM: pgflip exits once the clients are gone" sh -c "! kill -0 $PGFLIP_PID 2>/dev/null"

# SIGINT: exits at once even with a client connected
pgflip_start "$T_DIR/pgflip.ini" || not_ok "pgflip restarts"
fpsql "$port" -c "SELECT pg_sleep(5)" >/dev/null 2>&1 &
bg=$!
sleep 0.3
kill -INT "$PGFLIP_PID"
sleep 0.5
check "SIGINT: exits at once" sh -c "! kill -0 $PGFLIP_PID 2>/dev/null"
check "SIGINT: sockets removed" test ! -e "$T_DIR/admin.sock"
wait $bg 2>/dev/null || true

# the admin socket shows what clients send, even when it is not UTF-8, and
# refuses routes to system schemas
pgflip_start "$T_DIR/pgflip.ini" || not_ok "pgflip restarts"
python3 - "$port" "$T_DB" <<'PY' &
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = struct.pack("!I", 196608) + b"user\0app\0database\0" + sys.argv[2].encode() + b"\0application_name\0ab\xffc\xc3\xa9\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
s.recv(4096)
time.sleep(2)
PY
bg=$!
sleep 0.5
expect_match "clients: a non-UTF-8 application_name is shown escaped" "$(ctl --json clients)" '*"application_name":"ab\\\\xffcé"*'
for schema in pg_catalog information_schema pg_toast; do
	expect_match "route default $schema: refused" "$(ctl route default $schema 2>&1)" "*system schema*"
done
expect_match "route with a comma (two schemas): refused" "$(ctl route default 'v1,v2' 2>&1)" "*lower-case identifier*"
wait $bg
pgflip_stop

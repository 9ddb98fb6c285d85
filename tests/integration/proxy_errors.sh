# Bad input and failures: each bad client gets an ErrorResponse where it can
# and is closed, while other clients keep working; a bad config exits 2 with
# FILE:LINE; an upstream that is down gives a clean error.
. "$TOP/tests/lib/check.sh"

make_db errs
port=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
raw() { python3 "$TOP/tests/lib/rawpg.py" "$port" "$1" "$T_DB"; }

# a client in the middle of a session while others misbehave
fpsql "$port" -c "SELECT pg_sleep(1.5)" -c "SELECT 'survivor'" >"$T_DIR/survivor.out" 2>&1 &
survivor=$!
sleep 0.3
expect_match "garbage startup packet: ErrorResponse" "$(raw garbage)" "E 08P01 *"
expect_match "protocol 2.0: ErrorResponse 0A000" "$(raw proto2)" "E 0A000 *unsupported frontend protocol*"
expect_eq "protocol 3.2 and a _pq_ option: NegotiateProtocolVersion (3.0 as PostgreSQL writes it, 196608; the option named), then the login" "$(raw proto32)" "v 196608 _pq_.foo OK"
expect_eq "GSSENCRequest: 'N', then a plaintext login" "$(raw gssenc)" "OK"
expect_eq "Terminate before the StartupMessage: closed without a word" "$(raw terminate_first)" "CLOSED"
expect_match "truncated StartupMessage: closed" "$(raw truncated)" "CLOSED"
expect_match "oversized StartupMessage: ErrorResponse" "$(raw oversized)" "E 08P01 *length*"
expect_match "StartupMessage without terminator: ErrorResponse" "$(raw bad_terminator)" "E 08P01 *"
expect_eq "SSLRequest answered N, then a plain login" "$(raw ssl_then_startup)" "OK"
expect_match "message length under 4 after login: ErrorResponse" "$(raw bad_header)" "E 08P01 *bad packet header*"
wait $survivor
expect_eq "a client mid-query is not disturbed by bad clients" "$(tail -n 1 "$T_DIR/survivor.out")" "survivor"
expect_eq "new clients still work" "$(fpsql "$port" -c "SELECT 42")" "42"
out=$(psql -X -At -h 127.0.0.1 -p "$port" -d nosuchdb -c 'SELECT 1' 2>&1)
expect_match "unknown database: clear error" "$out" "*no such database: nosuchdb*"
out=$(PGOPTIONS='-c work_mem=1MB' psql -X -At -h 127.0.0.1 -p "$port" -d "$T_DB" -c 'SELECT 1' 2>&1)
expect_match "a setting in options that pgflip does not carry: refused, named" "$out" "*unsupported startup parameter in options: work_mem*"
check "pgflip still running" kill -0 "$PGFLIP_PID"

# an upstream that does not answer: a clean error, pgflip keeps running
dead=$(free_port)
cat >"$T_DIR/down.ini" <<CONF
[pgflip]
listen_port = $(free_port)
unix_socket_dir =
admin_socket = $T_DIR/down.sock
server_connect_timeout = 2
logfile = $T_DIR/down.log
[databases]
down = host=127.0.0.1 port=$dead dbname=x user=app
[routes]
default = public
CONF
dport=$(sed -n 's/^listen_port = //p' "$T_DIR/down.ini")
"$TOP/$PGFLIP" serve -c "$T_DIR/down.ini" >>"$T_DIR/down.out" 2>&1 &
dpid=$!
T_PIDS="$T_PIDS $dpid"
sleep 0.3
start=$(date +%s)
out=$(psql -X -At -h 127.0.0.1 -p "$dport" -d down -c 'SELECT 1' 2>&1)
took=$(($(date +%s) - start))
expect_match "upstream down: ErrorResponse with the reason" "$out" "*onnection refused*"
check "upstream down: answered within the connect timeout (${took}s)" test "$took" -le 3
out=$(psql -X -At -h 127.0.0.1 -p "$dport" -d down -c 'SELECT 1' 2>&1)
expect_match "upstream down: next client errors too, fast" "$out" "*FATAL*"
check "upstream down: pgflip keeps running" kill -0 "$dpid"

# invalid configs: exit status 2 and FILE:LINE
printf '[pgflip]\nlisten_port = 6432\nbogus_key = 1\n[databases]\nx = dbname=x\n[routes]\ndefault = public\n' >"$T_DIR/bad1.ini"
"$TOP/$PGFLIP" serve -c "$T_DIR/bad1.ini" >"$T_DIR/bad1.out" 2>&1
expect_eq "unknown key: exit status 2" "$?" "2"
expect_match "unknown key: FILE:LINE" "$(cat "$T_DIR/bad1.out")" "$T_DIR/bad1.ini:3: *bogus_key*"
printf '[pgflip]\nlisten_port = many\n[databases]\nx = dbname=x\n[routes]\ndefault = public\n' >"$T_DIR/bad2.ini"
"$TOP/$PGFLIP" serve -c "$T_DIR/bad2.ini" >"$T_DIR/bad2.out" 2>&1
expect_eq "bad value: exit status 2" "$?" "2"
expect_match "bad value: FILE:LINE" "$(cat "$T_DIR/bad2.out")" "$T_DIR/bad2.ini:2: *listen_port*"
printf '[pgflip]\n[databases]\nx = dbname=x\n' >"$T_DIR/bad3.ini"
"$TOP/$PGFLIP" serve -c "$T_DIR/bad3.ini" >"$T_DIR/bad3.out" 2>&1
expect_eq "missing [routes] default: exit status 2" "$?" "2"
expect_match "missing [routes] default: named" "$(cat "$T_DIR/bad3.out")" "$T_DIR/bad3.ini:*default*"
"$TOP/$PGFLIP" serve -c "$T_DIR/nonexistent.ini" >"$T_DIR/bad4.out" 2>&1
expect_eq "missing file: exit status 2" "$?" "2"

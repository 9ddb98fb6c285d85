# Transaction pooling keeps every client on its version: two pgbench runs on
# two routes share a pool of 2 servers with a third client that sets its own
# search_path, and nobody ever sees another's. Plus the settings a client can
# change with SQL, LISTEN, and cancel requests.
. "$TOP/tests/lib/check.sh"

make_db txmode
apsql -f "$TOP/tests/data/items_versions.sql"
pg_psql -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'other') THEN CREATE ROLE other NOLOGIN; END IF; END\$\$" \
	-c "GRANT other TO app" >/dev/null
port=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port" "pool_mode = transaction
default_pool_size = 2
log_level = info" "app.v1-* = v1
app.v2-* = v2"

pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }

# each script fails (division by zero) when it runs under another route
cat >"$T_DIR/v1.sql" <<'SQL'
\set id random(1, 100)
SELECT 1 / (current_setting('search_path') = 'v1')::int;
SELECT name FROM items WHERE id = :id;
SQL
cat >"$T_DIR/v2.sql" <<'SQL'
\set id random(1, 100)
BEGIN;
SELECT 1 / (current_setting('search_path') = 'v2')::int;
SELECT title FROM items WHERE id = :id;
COMMIT;
SQL
cat >"$T_DIR/own.sql" <<'SQL'
BEGIN;
SET search_path = public;
SELECT 1 / (current_setting('search_path') = 'public')::int;
SELECT v1_name, v2_title FROM items WHERE id = 1;
COMMIT;
SQL
bench() { # NAME APP SCRIPT MODE
	PGAPPNAME=$2 pgbench -n -c 3 -j 1 -t 2000 -M "$4" -f "$3" -h 127.0.0.1 -p "$port" "$T_DB" >"$T_DIR/$1.out" 2>&1
	echo $? >"$T_DIR/$1.rc"
}
bench v1 v1-app "$T_DIR/v1.sql" simple &
b1=$!
bench v2 v2-app "$T_DIR/v2.sql" extended &
b2=$!
bench own tool "$T_DIR/own.sql" simple &
b3=$!
wait $b1 $b2 $b3
total=0
for n in v1 v2 own; do
	done_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$T_DIR/$n.out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$T_DIR/$n.out")
	if [ "$(cat "$T_DIR/$n.rc")" = 0 ] && [ "$done_tx" = 6000 ] && [ "$failed" = 0 ]; then
		ok "pgbench $n: 6000 transactions, 0 failed, each under its own search_path"
	else
		not_ok "pgbench $n: 6000 transactions, 0 failed"; sed 's/^/    # /' "$T_DIR/$n.out" | tail -n 15
	fi
	total=$((total + ${done_tx:-0}))
done
check "at least 10000 transactions in all ($total) over a pool of 2" test "$total" -ge 10000
expect_match "pools: 2 servers at most" "$(ctl --json pools)" '*"pool_size":2*'

# settings a client changes with SQL never reach the next client's transaction
one() { fpsql "$port" -c "$1" >/dev/null 2>&1; }
for stmt in "SET search_path = public" "SELECT set_config('search_path', 'public', false)" \
	"RESET ALL" "DISCARD ALL" "SET ROLE other" "SET SESSION AUTHORIZATION app"; do
	# a client runs stmt in a transaction of its own; the pool has 2 servers,
	# so the following checks land on the same backends
	one "$stmt"
	one "$stmt"
	r1=$(PGAPPNAME=v1-x fpsql "$port" -c "SELECT current_setting('search_path') || '/' || current_user")
	r2=$(PGAPPNAME=v1-x fpsql "$port" -c "SELECT current_setting('search_path') || '/' || current_user")
	expect_eq "after \"$stmt\" the next client has its route and role" "$r1 $r2" "v1/app v1/app"
done
got=$(fpsql "$port" -c "BEGIN" -c "SET ROLE other" -c "SELECT current_user" -c "COMMIT" 2>&1 | tr '\n' ' ')
expect_eq "SET ROLE holds within the client's own transaction" "$got" "other "

# pool_mode per database entry: sessdb is in session mode under a global
# transaction mode, so LISTEN works there
pgflip_stop
sed -i "/^\[databases\]/a sessdb = host=127.0.0.1 port=$PG_PORT dbname=$T_DB user=app password=app_pw pool_mode=session" \
	"$T_DIR/pgflip.ini"
pgflip_start "$T_DIR/pgflip.ini" || not_ok "pgflip restarts"
out=$(psql -X -At -h 127.0.0.1 -p "$port" -d sessdb -c "LISTEN chan" -c "SELECT pg_notify('chan', 'x')" -c "SELECT 1" 2>&1)
expect_match "per-database pool_mode=session: LISTEN works there" "$out" '*Asynchronous notification "chan"*'
expect_match "per-database pool_mode shown by pools" "$(ctl --json pools)" '*"database":"sessdb"*"pool_mode":"session"*'

# LISTEN cannot work with transaction pooling: a clear error, the client goes on
out=$(fpsql "$port" -c "LISTEN chan" 2>&1)
expect_match "LISTEN in transaction mode: clear error" "$out" "*LISTEN is not supported in transaction pooling mode*"
expect_eq "client works after the LISTEN error" "$(fpsql "$port" -c "SELECT 'on'")" "on"

# cancel: psql's Ctrl-C (SIGINT) sends a CancelRequest with pgflip's key
start=$(date +%s%N)
psql -X -At -h 127.0.0.1 -p "$port" -d "$T_DB" -c "SELECT pg_sleep(30)" >"$T_DIR/cancel.out" 2>&1 &
bg=$!
sleep 1
kill -INT $bg
wait $bg
took=$((($(date +%s%N) - start) / 1000000))
expect_match "cancel: pg_sleep(30) is cancelled" "$(cat "$T_DIR/cancel.out")" "*canceling statement due to user request*"
check "cancel: within a second of Ctrl-C (${took} ms in all)" test "$took" -lt 2500
expect_eq "after a cancel the pool serves again" "$(fpsql "$port" -c "SELECT 'after cancel'")" "after cancel"
out=$(python3 - "$port" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack("!IIII", 16, 80877102, 12345, 67890))
s.settimeout(3)
print("closed" if s.recv(100) == b"" else "answered")
PY
)
expect_eq "cancel with an unknown key: dropped, connection closed" "$out" "closed"
check "pgflip still running" kill -0 "$PGFLIP_PID"

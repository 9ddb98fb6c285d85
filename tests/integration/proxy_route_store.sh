# The route store (proxy/routestore.c): routes in pgflip's schema of the
# database, shared by every pgflip in front of it. The file's [routes] seed
# an empty table; a restart keeps the last flip; a flip on one instance
# reaches the clients of another within a second; two flips at once
# converge; the store survives a lost connection (routing goes on, a flip
# made meanwhile is published, or dropped when the database moved); each
# instance keeps a row with its clients; route_db = (empty) is memory only.
. "$TOP/tests/lib/check.sh"

make_db rstore
apsql -c "CREATE SCHEMA v1; CREATE SCHEMA v2; CREATE SCHEMA v3"

# A TCP relay to PostgreSQL for instance A's store (entry `store`): killing
# it cuts A off from the database (a network partition), restarting it heals.
relay_port=$(free_port)
cat >"$T_DIR/relay.py" <<'PY'
import socket, sys, threading
port, pg = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(16)
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
while True:
    c, _ = srv.accept()
    try:
        u = socket.create_connection(("127.0.0.1", pg))
    except OSError:
        c.close()  # PostgreSQL is down: so is the relayed connection
        continue
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PY
relay_start() {
	python3 "$T_DIR/relay.py" "$relay_port" "$PG_PORT" >>"$T_DIR/relay.out" 2>&1 &
	relay_pid=$!
	T_PIDS="$T_PIDS $relay_pid"
	i=0; until python3 -c "import socket; socket.create_connection(('127.0.0.1', $relay_port)).close()" 2>/dev/null; do
		[ $i -lt 50 ] || break; sleep 0.1; i=$((i + 1)); done
}
relay_stop() { kill "$relay_pid" 2>/dev/null; wait "$relay_pid" 2>/dev/null; }
relay_start

# inst_conf NAME PORT STORE_PORT DEFAULT: instance NAME's config; clients use
# database rstore (direct), its routes live in entry `store` (STORE_PORT).
inst_conf() {
	cat >"$T_DIR/$1.ini" <<CONF
[pgflip]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
admin_socket = $T_DIR/$1.sock
logfile = $T_DIR/$1.log
log_level = debug
pool_mode = transaction
route_db = store

[databases]
rstore = host=127.0.0.1 port=$PG_PORT dbname=rstore user=app password=app_pw
store = host=127.0.0.1 port=$3 dbname=rstore user=app password=app_pw

[routes]
default = $4
app.pinned-* = v3
CONF
}
a_port=$(free_port)
b_port=$(free_port)
inst_conf a "$a_port" "$relay_port" v1
inst_conf b "$b_port" "$PG_PORT" v3
actl() { "$TOP/$PGFLIP" ctl -s "$T_DIR/a.sock" "$@"; }
bctl() { "$TOP/$PGFLIP" ctl -s "$T_DIR/b.sock" "$@"; }
start_a() { pgflip_start "$T_DIR/a.ini" "$T_DIR/a.sock" && A_PID=$PGFLIP_PID; }
start_b() { pgflip_start "$T_DIR/b.ini" "$T_DIR/b.sock" && B_PID=$PGFLIP_PID; }
stop_a() { PGFLIP_PID=$A_PID; pgflip_stop; }
stop_b() { PGFLIP_PID=$B_PID; pgflip_stop; }
route_of() { psql -X -At -h 127.0.0.1 -p "$1" -d rstore -c 'SHOW search_path' 2>&1; }
db_gen() { apsql -c "SELECT generation FROM pgflip.route_state"; }
db_default() { apsql -c "SELECT schema FROM pgflip.routes WHERE kind = 'default'"; }
# store_field SOCK FIELD: a scalar of status's route_store
store_field() {
	"$TOP/$PGFLIP" ctl -s "$1" --json status | python3 -c "import json,sys; v=json.load(sys.stdin)['route_store'].get('$2'); print('null' if v is None else str(v).lower() if isinstance(v, bool) else v)"
}
# wait_for TENTHS CMD...: runs CMD until it succeeds, at most TENTHS tenths of a second
wait_for() {
	n=$1; shift; i=0
	until "$@" >/dev/null 2>&1; do [ $i -lt "$n" ] || return 1; sleep 0.1; i=$((i + 1)); done
}
# yields WANT CMD...: CMD prints WANT
yields() { _want=$1; shift; [ "$("$@")" = "$_want" ]; }
default_is() { [ "$("$TOP/$PGFLIP" ctl -s "$1" --json routes | python3 -c "import json,sys; print(json.load(sys.stdin)['routes']['default'])")" = "$2" ]; }

# ---- an empty table is seeded with the file's [routes]
start_a || { not_ok "instance A starts"; exit 1; }
ok "instance A starts"
wait_for 30 yields 1 store_field "$T_DIR/a.sock" generation
expect_eq "empty table: seeded with the file's routes (generation 1)" "$(db_gen) $(db_default)" "1 v1"
expect_eq "... the pins too, in file order" \
	"$(apsql -c "SELECT string_agg(kind || ':' || key || '=' || schema, ' ' ORDER BY position) FROM pgflip.routes")" \
	"default:=v1 app:pinned-*=v3"
check "... and the log says so" grep -q "holds no routes: seeding it" "$T_DIR/a.log"
expect_eq "clients of A run on the seeded default" "$(route_of "$a_port")" "v1"
expect_match "status shows the store" "$(actl --json status)" \
	'*"route_store":{"database":"store","state":"*","connected":true,"pending":false,*"generation":1,"last_error":null}*'

# ---- a flip is written to the table; a restart comes back with it
actl route default v2 >/dev/null
wait_for 20 yields 2 db_gen
expect_eq "flip on A: published as generation 2" "$(db_gen) $(db_default)" "2 v2"
stop_a
start_a || not_ok "A restarts"
expect_eq "restarted A: its first client gets the flipped route (the file says v1)" "$(route_of "$a_port")" "v2"
check "... and the log says the table won" grep -q "routes: loaded generation 2 from database store (the file's \[routes\] are only a seed)" "$T_DIR/a.log"

# ---- a second instance in front of the same database
start_b || { not_ok "instance B starts"; exit 1; }
expect_eq "B (its file says v3) serves the table's route" "$(route_of "$b_port")" "v2"
actl route default v3 >/dev/null
wait_for 20 default_is "$T_DIR/b.sock" v3
expect_eq "a flip on A shows on B" "$(route_of "$b_port")" "v3"
actl route default v1 >/dev/null

# a flip on A reaches a client connected to B, measured from the ctl call
out=$(python3 - "$TOP" "$b_port" "$T_DIR/a.sock" "$TOP/$PGFLIP" <<'PY'
import subprocess, sys, time
sys.path.insert(0, sys.argv[1] + "/tests/lib")
from pgwire import Conn
c = Conn(int(sys.argv[2]), {"user": "app", "database": "rstore"})
c.login()
time.sleep(0.3)
before = c.query("SHOW search_path")
t0 = time.monotonic()
p = subprocess.Popen([sys.argv[4], "ctl", "-s", sys.argv[3], "route", "default", "v2"], stdout=subprocess.DEVNULL)
seen, n = None, 0
while time.monotonic() - t0 < 3:
    r = c.query("SHOW search_path")
    n += 1
    if r == "v2":
        seen = time.monotonic()
        break
p.wait()
if seen is None:
    print("before=%s never (%d queries)" % (before, n))
else:
    print("before=%s %d ms (%d queries)" % (before, (seen - t0) * 1000, n))
PY
)
ms=$(echo "$out" | sed -n 's/.* \([0-9]*\) ms.*/\1/p')
echo "# flip on A seen by a client of B: $out"
check "flip on A reaches a connected client of B within 1 s (${ms:-never} ms, ctl's own start included)" \
	test -n "$ms" -a "${ms:-9999}" -lt 1000
case "$out" in before=v1*) ok "... which ran on the old route before" ;; *) not_ok "... which ran on the old route before: $out" ;; esac

# a flip on B reaches A too
bctl route user postgres v1 >/dev/null
check "a pin set on B reaches A" wait_for 10 sh -c "\"$TOP/$PGFLIP\" ctl -s \"$T_DIR/a.sock\" routes | grep -q 'user.*postgres.*v1'"
bctl unroute user postgres >/dev/null
check "... and its removal" wait_for 10 sh -c "! \"$TOP/$PGFLIP\" ctl -s \"$T_DIR/a.sock\" routes | grep -q 'postgres'"

# ---- two flips at once end in the same state: the higher generation
default_of() { "$TOP/$PGFLIP" ctl -s "$1" --json routes | python3 -c "import json,sys; print(json.load(sys.stdin)['routes']['default'])"; }
agreed() {
	da=$(store_field "$T_DIR/a.sock" generation) db=$(store_field "$T_DIR/b.sock" generation)
	ra=$(default_of "$T_DIR/a.sock") rb=$(default_of "$T_DIR/b.sock")
	[ "$ra" = "$rb" ] && [ "$ra" = "$(db_default)" ] && [ "$da" = "$db" ] && [ "$da" = "$(db_gen)" ]
}
agree=0 rounds=5
for r in 1 2 3 4 5; do
	actl route default v1 >/dev/null & w1=$!
	bctl route default v3 >/dev/null & w2=$!
	wait $w1 $w2
	if wait_for 30 agreed; then
		agree=$((agree + 1))
	else
		echo "# round $r: A $ra gen $da, B $rb gen $db, table $(db_default) gen $(db_gen)"
	fi
done
expect_eq "flips on A and B at once: within 3 s both end with the table's route and generation ($rounds rounds)" "$agree" "$rounds"
actl route default v1 >/dev/null
wait_for 20 default_is "$T_DIR/b.sock" v1

# ---- each instance's row counts its clients by route
sleepers=""
for i in 1 2; do psql -X -At -h 127.0.0.1 -p "$a_port" -d rstore -c "SELECT pg_sleep(4)" >/dev/null 2>&1 & sleepers="$sleepers $!"; done
PGAPPNAME=pinned-x psql -X -At -h 127.0.0.1 -p "$b_port" -d rstore -c "SELECT pg_sleep(4)" >/dev/null 2>&1 &
sleepers="$sleepers $!"
row_clients() { apsql -c "SELECT clients::text FROM pgflip.instances WHERE pid = $1"; }
wait_for 25 yields '{"v1": 2}' row_clients "$A_PID"
expect_eq "instances: A's row counts its 2 clients on v1" "$(row_clients "$A_PID")" '{"v1": 2}'
wait_for 25 yields '{"v3": 1}' row_clients "$B_PID"
expect_eq "instances: B's row counts its pinned client on v3" "$(row_clients "$B_PID")" '{"v3": 1}'
b_seen() { actl --json status | grep -q "\"pid\":$B_PID,[^}]*\"clients\":{\"v3\":1},\"self\":false"; }
wait_for 25 b_seen
out=$(actl --json status)
expect_match "A's status lists B's instance with its clients" "$out" "*\"pid\":$B_PID,*\"clients\":{\"v3\":1},\"self\":false*"
expect_match "... and itself, counted now" "$out" "*\"pid\":$A_PID,*\"clients\":{\"v1\":2},\"self\":true*"
wait $sleepers

# ---- the store's backend terminated: it reconnects, LISTEN again
pg_psql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgflip route store (pid $B_PID)'" >/dev/null
sleep 0.1
check "terminated store backend: B connects again" wait_for 30 yields true store_field "$T_DIR/b.sock" connected
check "... once logged as a warning" grep -q "route store (database store): .*routing goes on with the last routes" "$T_DIR/b.log"
actl route default v3 >/dev/null
check "... and hears flips again" wait_for 20 default_is "$T_DIR/b.sock" v3

# ---- A cut off from the database (relay down): routing goes on, a flip
# made meanwhile is published once it is back
relay_stop
check "relay down: A's store is disconnected" wait_for 60 yields false store_field "$T_DIR/a.sock" connected
expect_eq "... A's clients keep the last routes" "$(route_of "$a_port")" "v3"
actl route default v2 >/dev/null
expect_eq "... a flip on A applies to A's clients at once" "$(route_of "$a_port")" "v2"
expect_eq "... and waits to be published" "$(store_field "$T_DIR/a.sock" pending) $(db_default)" "true v3"
relay_start
check "relay back: A connects again (backoff at most 5 s)" wait_for 80 yields true store_field "$T_DIR/a.sock" connected
check "... publishes its flip (the database had not moved)" wait_for 20 yields v2 db_default
check "... which reaches B" wait_for 20 default_is "$T_DIR/b.sock" v2
expect_eq "... and a client of B" "$(route_of "$b_port")" "v2"
check "... A logged the reconnect" grep -q "route store (database store): connected again after" "$T_DIR/a.log"

# the same while B flips too: the database moved, so A's flip is dropped
relay_stop
wait_for 60 yields false store_field "$T_DIR/a.sock" connected
actl route default v1 >/dev/null
bctl route default v3 >/dev/null
expect_eq "partitioned A and connected B flip: each serves its own meanwhile" "$(route_of "$a_port") $(route_of "$b_port")" "v1 v3"
relay_start
check "healed: A takes the database's newer route" wait_for 80 default_is "$T_DIR/a.sock" v3
expect_eq "... B and the table keep it" "$(route_of "$b_port") $(db_default)" "v3 v3"
check "... A logged its dropped change" grep -q "the change made here while database store was out of reach (admin .*route default v1) is dropped" "$T_DIR/a.log"

# ---- a row that breaks the schema-name rule is skipped, never applied
apsql <<'SQL'
BEGIN;
UPDATE pgflip.route_state SET generation = generation + 1, changed_at = now(), changed_by = 'test';
INSERT INTO pgflip.routes VALUES ('app', 'evil-*', 'Bad;Name', NULL, NULL, 5), ('app', 'good-*', 'v1', NULL, NULL, 6);
SELECT pg_notify('pgflip_routes', generation::text) FROM pgflip.route_state;
COMMIT;
SQL
check "bad row: the rest of the table is applied" wait_for 20 sh -c "\"$TOP/$PGFLIP\" ctl -s \"$T_DIR/b.sock\" routes | grep -q 'good-'"
check "... the bad row is not" sh -c "! \"$TOP/$PGFLIP\" ctl -s \"$T_DIR/b.sock\" routes | grep -q 'evil-'"
check "... and the log names it" grep -q 'routes from database store: row (app, "evil-\*") -> Bad;Name skipped' "$T_DIR/b.log"
expect_eq "... clients pinned by the good row follow it" "$(PGAPPNAME=good-1 route_of "$b_port")" "v1"
actl unroute app 'good-*' >/dev/null

# ---- SIGHUP with changed [routes]: a flip by the operator, published
actl route default v1 >/dev/null
wait_for 20 default_is "$T_DIR/b.sock" v1
sed -i 's/^app.pinned-\* = v3/app.pinned-* = v2/' "$T_DIR/b.ini"
kill -HUP "$B_PID"
check "reload of B with a changed [routes]: published, A follows" \
	wait_for 20 sh -c "\"$TOP/$PGFLIP\" ctl -s \"$T_DIR/a.sock\" routes | grep -q 'pinned-.*v2'"
expect_eq "... the file's default (v3) came with it" "$(route_of "$a_port")" "v3"
actl route default v1 >/dev/null
wait_for 20 default_is "$T_DIR/b.sock" v1
kill -HUP "$B_PID"; sleep 0.5
expect_eq "reload with unchanged [routes] keeps the flip" "$(route_of "$b_port") $(db_default)" "v1 v1"

# ---- the database restarts: both reconnect and keep routing
pg_stop "$PG_DIR"
sleep 0.5
pg_start "$PG_DIR" "$PG_PORT" || not_ok "PostgreSQL starts again"
check "database restarted: A connects again" wait_for 80 yields true store_field "$T_DIR/a.sock" connected
check "... B too" wait_for 80 yields true store_field "$T_DIR/b.sock" connected
expect_eq "... clients keep the route" "$(route_of "$a_port") $(route_of "$b_port")" "v1 v1"
actl route default v3 >/dev/null
check "... and flips flow again" wait_for 20 default_is "$T_DIR/b.sock" v3

# ---- an instance killed with SIGKILL expires after MIGRATE_INSTANCE_TTL_S
n=$(apsql -c "SELECT count(*) FROM pgflip.instances WHERE seen_at > now() - interval '5 s'")
expect_eq "two live instance rows" "$n" "2"
kill -9 "$B_PID"
start=$(date +%s)
gone() { ! "$TOP/$PGFLIP" ctl -s "$T_DIR/a.sock" --json status | grep -q "\"pid\":$B_PID,"; }
wait_for 300 gone; gone_rc=$?
took=$(($(date +%s) - start))
expect_eq "SIGKILLed B leaves A's list" "$gone_rc" 0
# the TTL is 5 s; A drops B at its next beat after that, later when A itself
# is in a reconnect backoff or the machine is loaded (17 s seen under a full
# make test beside other work): the bound says "expires", not how fast
check "SIGKILLed B leaves A's list after the TTL ($took s)" test "$took" -ge 3 -a "$took" -le 30
expect_eq "... its row stays, stale" "$(apsql -c "SELECT count(*) FROM pgflip.instances WHERE pid = $B_PID AND seen_at < now() - interval '5 s'")" "1"
rm -f "$T_DIR/b.sock"

# ---- a clean stop deletes the instance's row
stop_a
expect_eq "A stopped cleanly: its row is gone" "$(apsql -c "SELECT count(*) FROM pgflip.instances WHERE pid = $A_PID")" "0"
relay_stop

# ---- route_db = (empty): routes in memory only, as before the store
make_db rstore_mem
apsql -c "CREATE SCHEMA v1; CREATE SCHEMA v2"
m_port=$(free_port)
write_conf "$T_DIR/mem.ini" "$m_port" "route_db ="
sed -i 's/^default = public/default = v1/' "$T_DIR/mem.ini"
pgflip_start "$T_DIR/mem.ini" || not_ok "memory-only pgflip starts"
expect_match "route_db empty: status says memory only" "$(ctl --json status)" '*"route_store":{"database":null,"state":"memory only",*'
ctl route default v2 >/dev/null
expect_eq "... a flip works" "$(fpsql "$m_port" -c 'SHOW search_path')" "v2"
expect_eq "... and touches no database" "$(apsql -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgflip'")" "0"
pgflip_stop
pgflip_start "$T_DIR/mem.ini" || not_ok "memory-only pgflip restarts"
expect_eq "... a restart comes back with the file's routes" "$(fpsql "$m_port" -c 'SHOW search_path')" "v1"
ctl route default v2 >/dev/null
sed -i "s/^route_db =.*/route_db = $T_DB/" "$T_DIR/mem.ini"
ctl reload >/dev/null
mem_db_default() { apsql -c "SELECT schema FROM pgflip.routes WHERE kind = 'default'" 2>/dev/null; }
check "reload that sets route_db: the empty table is seeded with the running routes" wait_for 30 yields v2 mem_db_default
sed -i "s/^route_db =.*/route_db =/" "$T_DIR/mem.ini"
ctl reload >/dev/null
expect_match "reload that empties route_db: memory only again" "$(ctl --json status)" '*"route_store":{"database":null,*'
expect_eq "... the routes stay" "$(fpsql "$m_port" -c 'SHOW search_path')" "v2"
pgflip_stop

# ---- a route_db that names no entry: an error naming FILE:LINE
write_conf "$T_DIR/bad.ini" "$m_port" "route_db = nosuch"
out=$("$TOP/$PGFLIP" serve -c "$T_DIR/bad.ini" 2>&1)
expect_match "route_db naming no entry: refused with FILE:LINE" "$out" "*bad.ini:8: route_db: no [[]databases] entry 'nosuch'*"

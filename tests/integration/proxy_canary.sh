# Per-route stats, the canary share and its automatic rollback, through
# pgflip with real clients (psql): what `pgflip ctl routes` shows after
# known transactions (counts, failed ones, errors by SQLSTATE class,
# latency of known sleeps) in both pool modes; the share of 200
# connections under each canary_key; sticky decisions that move only at a
# transaction boundary; a canary whose schema lacks the clients' table is
# rolled back within its window, its clients on the default at their next
# transaction; a canary as good as the default is not.
. "$TOP/tests/lib/check.sh"

make_db canary
apsql <<'SQL'
CREATE TABLE public.items (id int PRIMARY KEY);
INSERT INTO public.items VALUES (1), (2), (3);
CREATE SCHEMA v1;
CREATE SCHEMA v2;
CREATE SCHEMA v3;
CREATE SCHEMA v4;
CREATE SCHEMA v5;
CREATE SCHEMA v6;
CREATE VIEW v1.items AS SELECT * FROM public.items;
CREATE VIEW v2.items AS SELECT * FROM public.items;
SQL
port=$(free_port)
cat >"$T_DIR/pgflip.ini" <<CONF
[pgflip]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $T_DIR
admin_socket = $T_DIR/admin.sock
logfile = $T_DIR/pgflip.log
log_level = info
pool_mode = transaction
default_pool_size = 20
max_client_conn = 400

[databases]
canary = host=127.0.0.1 port=$PG_PORT dbname=canary user=app password=app_pw
canary_s = host=127.0.0.1 port=$PG_PORT dbname=canary user=app password=app_pw pool_mode=session

[routes]
default = v1
canary_key = application_name
canary = v2 50
app.err-* = v3
app.slow-* = v4
app.sess-* = v5
app.tx-* = v6
app.gone-* = v9
CONF
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
ok "pgflip starts"

# rget PATH: a value of the `routes` reply by a dotted path
# (stats.v1.transactions), JSON for objects, "none" when it is not there
rget() {
	ctl --json routes | python3 -c '
import json, sys
v = json.load(sys.stdin)["routes"]
for k in sys.argv[1].split("."):
    if not isinstance(v, dict) or k not in v:
        print("none"); sys.exit(0)
    v = v[k]
print(json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) or v is None else v)' "$1"
}
# q APP ARGS...: psql through pgflip (database canary) as APP, no stop on errors
q() {
	app=$1; shift
	PGAPPNAME=$app psql -X -q -At -h 127.0.0.1 -p "$port" -d canary "$@"
}

expect_eq "routes: the config's canary_key and canary" "$(rget canary)" \
	'{"key": "application_name", "percent": 50, "rollback": null, "schema": "v2"}'
expect_eq "routes: the file's canary_key" "$(rget canary_key)" "application_name"
expect_eq "routes: no stats before any transaction" "$(rget stats)" "{}"

# --- stats: counts, failed transactions, classes, both pool modes
cat >"$T_DIR/three.sql" <<'SQL'
SELECT 1;
BEGIN;
SELECT 2;
SELECT 3;
COMMIT;
SELECT 4;
SQL
q tx-1 -f "$T_DIR/three.sql" >/dev/null
expect_eq "transaction mode: 3 transactions (one of them BEGIN..COMMIT)" "$(rget stats.v6.transactions)" 3
PGAPPNAME=sess-1 psql -X -q -At -h 127.0.0.1 -p "$port" -d canary_s -f "$T_DIR/three.sql" >/dev/null
expect_eq "session mode: counted per transaction too" "$(rget stats.v5.transactions)" 3
expect_eq "session mode: none failed" "$(rget stats.v5.failed_transactions)" 0
expect_eq "session mode: no errors" "$(rget stats.v5.errors)" "{}"

cat >"$T_DIR/errors.sql" <<'SQL'
SELECT count(*) FROM items;
SELECT count(*) FROM items;
SELECT count(*) FROM items;
BEGIN;
SELECT count(*) FROM items;
ROLLBACK;
SELECT 1;
SELECT 1/0;
SQL
out=$(q err-1 -f "$T_DIR/errors.sql" 2>&1)
expect_match "the client saw 42P01 (v3 has no items)" "$out" '*relation "items" does not exist*'
expect_eq "errors: 6 transactions on v3" "$(rget stats.v3.transactions)" 6
expect_eq "errors: 5 of them failed" "$(rget stats.v3.failed_transactions)" 5
expect_eq "errors: by SQLSTATE class (42P01 x4, 22012 x1)" "$(rget stats.v3.errors)" '{"22": 1, "42": 4}'
out=$(q gone-1 -c "SELECT 1" 2>&1)
expect_match "a route to a missing schema: 3F000" "$out" '*schema "v9" does not exist*'
expect_eq "pgflip's own error counts: 3F on v9" "$(rget stats.v9.errors)" '{"3F": 1}'
expect_eq "pgflip's own error: a failed transaction" "$(rget stats.v9.failed_transactions)" 1

# latency: transactions of a known length
for i in 1 2 3 4 5 6 7 8 9 10; do echo "SELECT pg_sleep(0.05);"; done >"$T_DIR/slow.sql"
q slow-1 -f "$T_DIR/slow.sql" >/dev/null
p50=$(rget stats.v4.p50_us) p99=$(rget stats.v4.p99_us)
check "latency: p50 of pg_sleep(0.05) transactions is 50..200 ms ($p50 us)" test "$p50" -ge 50000 -a "$p50" -le 200000
check "latency: p99 >= p50 ($p99 >= $p50 us)" test "$p99" -ge "$p50"
p50_fast=$(rget stats.v6.p50_us)
check "latency: p50 of SELECT 1 is below that of pg_sleep(0.05) ($p50_fast us)" test "$p50_fast" -lt 50000
# tps: the last 5 full seconds
for i in $(seq 1 200); do echo "SELECT 1;"; done >"$T_DIR/many.sql"
q tx-2 -f "$T_DIR/many.sql" >/dev/null
sleep 1.1
tps=$(rget stats.v6.tps)
check "tps: 200 transactions in the last 5 s read as 40 tps or a little less ($tps)" \
	python3 -c "import sys; t = float(sys.argv[1]); sys.exit(not (30 <= t <= 41))" "$tps"
expect_match "pools keeps transactions_by_route" "$(ctl --json pools)" '*"transactions_by_route":{*"v6":203*'

# --- the canary share
# side APP [HOST]: the route of one new connection
side() { PGAPPNAME=$1 psql -X -q -At -h "${2:-127.0.0.1}" -p "$port" -d canary -c "SHOW search_path" 2>&1; }
# share N PREFIX [HOST]: of N connections with distinct application_names,
# how many land on v2 (the others must land on v1)
share() {
	n=0 other=0
	for i in $(seq 1 "$1"); do
		case $(side "$2-$i" "${3:-}") in v2) n=$((n + 1)) ;; v1) ;; *) other=$((other + 1)) ;; esac
	done
	[ "$other" = 0 ] || echo "# $other connections on neither v1 nor v2" >&2
	echo "$n"
}
n=$(share 200 share)
echo "# canary_key = application_name (file), canary 50: $n of 200 on the canary"
check "application_name key: 200 connections, canary 50 -> 35..65 % on the canary ($n)" test "$n" -ge 70 -a "$n" -le 130

ctl canary v2 50 --key connection >/dev/null
expect_eq "canary --key connection" "$(rget canary.key)" connection
n=$(share 200 conn)
echo "# canary_key = connection, canary 50: $n of 200 on the canary"
check "connection key: 200 connections -> 35..65 % on the canary ($n)" test "$n" -ge 70 -a "$n" -le 130
ctl canary v2 10 --key connection >/dev/null
n=$(share 200 conn10)
echo "# canary_key = connection, canary 10: $n of 200 on the canary"
check "connection key: canary 10 -> 0..20 % ($n)" test "$n" -le 40

ctl canary v2 50 --key addr >/dev/null
n=$(share 40 addr)
echo "# canary_key = addr, canary 50: $n of 40 from 127.0.0.1 on the canary"
check "addr key: every connection from 127.0.0.1 lands on the same side ($n of 40)" test "$n" = 0 -o "$n" = 40
n=$(share 20 unix "$T_DIR")
check "addr key: every Unix socket connection of one uid lands on the same side ($n of 20)" test "$n" = 0 -o "$n" = 20

# sticky: a connection keeps its decision through unrelated flips, and
# moves at a transaction boundary when the canary changes, never inside one
ctl canary v2 50 >/dev/null
expect_eq "canary without --key: the file's key again" "$(rget canary.key)" application_name
cat >"$T_DIR/sticky.sql" <<SQL
SHOW search_path;
\! "$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" route app unrelated-* v1 >/dev/null
SHOW search_path;
\! "$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" unroute app unrelated-* >/dev/null
SHOW search_path;
\! "$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" canary v2 100 >/dev/null
SHOW search_path;
BEGIN;
SHOW search_path;
\! "$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" canary off >/dev/null
SHOW search_path;
COMMIT;
SHOW search_path;
SQL
got=$(q sticky-1 -f "$T_DIR/sticky.sql" | tr '\n' ' ')
case "$got" in
"v1 v1 v1 v2 v2 v2 v1 " | "v2 v2 v2 v2 v2 v2 v1 ") ok "sticky through other flips; canary 100 and off reach it at the next transaction ($got)" ;;
*) not_ok "sticky through other flips; canary 100 and off reach it at the next transaction"; echo "    # got: $got" ;;
esac
expect_eq "canary off" "$(rget canary)" "null"

# --- admin: the canary command's errors and aliases
out=$(ctl canary v2 10 --window 5 2>&1)
expect_match "--window without --max-error-ratio is refused" "$out" '*--max-error-ratio and --window go together*'
out=$(ctl canary v2 10 --key host 2>&1)
expect_match "a bad --key is refused" "$out" '*--key "host" is not one of connection, application_name, addr*'
out=$(ctl canary v2 10 --max-error-ratio 2 --window 61 2>&1)
expect_match "a window over 60 s is refused" "$out" '*window must be 1..60 seconds, not 61*'
out=$(ctl canary v2 10 --max-error-ratio 0.5 --window 5 2>&1)
expect_match "a ratio below 1 is refused" "$out" '*max error ratio must be 1..1000000*'
out=$(ctl canary v2 ten 2>&1)
expect_match "a bad percent is refused" "$out" '*canary percent "ten" is not a number*'
expect_eq "refused commands changed nothing" "$(rget canary)" "null"
ctl route canary v2 30 >/dev/null
expect_eq "route canary is an alias" "$(rget canary.percent)" 30
ctl unroute canary >/dev/null
expect_eq "unroute canary is an alias of canary off" "$(rget canary)" "null"
ctl canary v2 10 --key connection --max-error-ratio 2.5 --window 20 --min-transactions 50 >/dev/null
expect_eq "the verdict options show" "$(rget canary.rollback)" \
	'{"max_error_ratio": 2.5, "min_transactions": 50, "window_s": 20}'
ctl canary off >/dev/null

# --- automatic rollback
# clients NAME SQLFILE COUNT: COUNT psql clients in the background, each
# running SQLFILE; their output in $T_DIR/NAME.I.out and .err
clients() {
	pids=""
	for i in $(seq 1 "$3"); do
		q "$1-$i" -f "$2" >"$T_DIR/$1.$i.out" 2>"$T_DIR/$1.$i.err" &
		pids="$pids $!"
	done
}
for i in $(seq 1 100); do
	echo "SELECT 'tx', current_setting('search_path'), count(*) FROM items;"
	echo "SELECT pg_sleep(0.05);"
done >"$T_DIR/load.sql"
echo "SELECT 'final', current_setting('search_path'), count(*) FROM items;" >>"$T_DIR/load.sql"

: >"$T_DIR/pgflip.log"
t0=$(date +%s%N)
ctl canary v3 50 --key connection --max-error-ratio 2 --window 5 --min-transactions 20 >/dev/null
clients bad "$T_DIR/load.sql" 16
i=0
while [ "$(rget canary)" != null ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
took=$((($(date +%s%N) - t0) / 1000000))
expect_eq "a canary whose schema lacks the table is rolled back" "$(rget canary)" "null"
check "... within its 5 s window ($took ms)" test "$took" -le 7000
line=$(grep 'canary v3 failed' "$T_DIR/pgflip.log" | head -n 1)
expect_match "the log says why, with both rates" "$line" \
	'*canary v3: * of * transactions failed (*%) in the last * s, default v1: 0 of * (0.0 %); limit 2 x max(0.0 %, floor 2.5 %) = 5.0 %*'
echo "# $line"
expect_match "the log says what the rollback did" "$(grep 'canary rollback' "$T_DIR/pgflip.log")" \
	'*route(s) of v3 go to v1*'
expect_eq "the pin that named v3 is flipped too" \
	"$(ctl --json routes | python3 -c 'import json,sys; print([p["schema"] for p in json.load(sys.stdin)["routes"]["pins"] if p["key"] == "err-*"][0])')" v1
n=0
for i in $(seq 1 20); do [ "$(side "after-$i")" = v1 ] && n=$((n + 1)); done
expect_eq "new clients land on the default (20 of 20)" "$n" 20
for p in $pids; do wait "$p"; done
canaried=0 finals=0
for i in $(seq 1 16); do
	grep -q 'relation "items" does not exist' "$T_DIR/bad.$i.err" && canaried=$((canaried + 1))
	[ "$(tail -n 1 "$T_DIR/bad.$i.out")" = "final|v1|3" ] && finals=$((finals + 1))
done
echo "# $canaried of 16 clients were on the canary"
check "some of the 16 clients were on the canary ($canaried)" test "$canaried" -ge 1 -a "$canaried" -le 15
expect_eq "every client, the canary's too, runs on the default at its next transaction" "$finals" 16
n=$(for i in $(seq 1 16); do sed -n 's/^tx|\(v[0-9]*\)|.*/\1/p' "$T_DIR/bad.$i.out" | tail -n 1; done | sort -u | tr '\n' ' ')
expect_eq "their last transactions of the run saw v1 only" "$n" "v1 "

# a canary as good as the default (the same share of failing statements)
for i in $(seq 1 40); do
	echo "SELECT 1;"
	echo "SELECT 2;"
	echo "SELECT 3;"
	echo "SELECT 1/0;"
	echo "SELECT pg_sleep(0.05);"
done >"$T_DIR/even.sql"
: >"$T_DIR/pgflip.log"
ctl canary v2 50 --key connection --max-error-ratio 2 --window 3 --min-transactions 20 >/dev/null
clients even "$T_DIR/even.sql" 16
for p in $pids; do wait "$p"; done
sleep 1.2 # one more verdict after the last transactions
expect_eq "a canary with the default's error rate is not rolled back" "$(rget canary.schema)" v2
check "no verdict failed" sh -c "! grep -q 'canary v2 failed' '$T_DIR/pgflip.log'"
v1e=$(rget stats.v1.errors.22) v2e=$(rget stats.v2.errors.22)
check "both routes saw their division_by_zero errors (v1 $v1e, v2 $v2e)" test "$v1e" -gt 0 -a "$v2e" -gt 0
ctl canary off >/dev/null
pgflip_stop

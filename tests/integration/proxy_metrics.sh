#!/bin/sh
# The Prometheus endpoint (issue 13): metrics_listen serves GET /metrics;
# scraped with curl under real traffic (psql, pgbench through pgflip), the
# numbers move as the traffic says, and `promtool check metrics` accepts
# the text. Other paths are 404; a bad metrics_listen is a FILE:LINE error.
. "$TOP/tests/lib/check.sh"

make_db pmetrics
apsql -c "CREATE SCHEMA v2" -c "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)" \
	-c "INSERT INTO items SELECT g, 'item' || g FROM generate_series(1, 300000) g" -c "ANALYZE items"
port=$(free_port)
mport=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port" "metrics_listen = 127.0.0.1:$mport
default_pool_size = 1
log_level = info"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
url="http://127.0.0.1:$mport/metrics"

# scrape FILE: GET /metrics into FILE; the status code on stdout
scrape() { curl -s -o "$1" -w '%{http_code}' "$url"; }
# val FILE SERIES: the value of the sample whose name and labels are SERIES exactly
val() { awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print "absent" }' "$1"; }
pool='database="pmetrics",user="app"'

expect_eq "GET /metrics: 200" "$(scrape "$T_DIR/m0")" 200
check "promtool check metrics accepts an idle scrape" sh -c "promtool check metrics <'$T_DIR/m0'"
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$url")
expect_eq "Content-Type of the text format 0.0.4" "$ctype" "text/plain; version=0.0.4; charset=utf-8"
expect_eq "another path: 404" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/other")" 404
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url")
check "POST /metrics is refused (4xx/5xx): $code" test "$code" -ge 400
expect_eq "no migration: phase idle is 1" "$(val "$T_DIR/m0" 'pgflip_migration_phase{phase="idle"}')" 1
expect_eq "default route as a label" "$(val "$T_DIR/m0" 'pgflip_route_default{route="public"}')" 1
expect_eq "no canary: no canary share" "$(grep -c '^pgflip_canary_share_ratio' "$T_DIR/m0")" 0

# real traffic: psql, an error, pgbench
fpsql "$port" -c "SELECT count(*) FROM items" >/dev/null
fpsql "$port" -c "SELECT 1/0" >/dev/null 2>&1
fpsql "$port" -c "SELECT * FROM nosuchtable" >/dev/null 2>&1
PGPASSWORD=unused pgbench -n -h 127.0.0.1 -p "$port" -c 2 -t 150 -f /dev/stdin pmetrics >"$T_DIR/pgbench.out" 2>&1 <<'SQL'
\set id random(1, 3000)
SELECT name FROM items WHERE id = :id;
SQL
check "pgbench through pgflip: 300 transactions" grep -q 'number of transactions actually processed: 300' "$T_DIR/pgbench.out"
scrape "$T_DIR/m1" >/dev/null
check "promtool check metrics accepts the scrape under traffic" sh -c "promtool check metrics <'$T_DIR/m1'"

tx=$(val "$T_DIR/m1" "pgflip_transactions_total{$pool}")
check "transactions_total counts pgbench's 300 and psql's 3 (got $tx)" test "$tx" -ge 303
q=$(val "$T_DIR/m1" "pgflip_queries_total{$pool}")
check "queries_total moved (got $q)" test "$q" -ge 303
rx0=$(val "$T_DIR/m0" "pgflip_received_bytes_total{$pool}")
rx=$(val "$T_DIR/m1" "pgflip_received_bytes_total{$pool}")
tx_b=$(val "$T_DIR/m1" "pgflip_sent_bytes_total{$pool}")
# each pgbench SELECT is a Query of 40+ bytes, each answer a row and tags of 60+
check "received_bytes_total: at least 300 queries' worth (got $rx)" test "$rx" -ge 12000
check "sent_bytes_total: at least 300 answers' worth (got $tx_b)" test "$tx_b" -ge 18000
expect_eq "the pool did not exist before traffic" "$rx0" absent
expect_eq "errors by SQLSTATE class: 22 (division by zero)" \
	"$(val "$T_DIR/m1" 'pgflip_route_errors_total{route="public",class="22"}')" 1
expect_eq "errors by SQLSTATE class: 42 (undefined table)" \
	"$(val "$T_DIR/m1" 'pgflip_route_errors_total{route="public",class="42"}')" 1
expect_eq "failed transactions of the route" \
	"$(val "$T_DIR/m1" 'pgflip_route_failed_transactions_total{route="public"}')" 2
rt=$(val "$T_DIR/m1" 'pgflip_route_transactions_total{route="public"}')
expect_eq "the route's transactions equal the pool's" "$rt" "$tx"
expect_eq "pool_route_transactions_total of the route" \
	"$(val "$T_DIR/m1" "pgflip_pool_route_transactions_total{$pool,route=\"public\"}")" "$tx"

# the histogram: cumulative, +Inf = _count = the route's transactions, _sum > 0
h=pgflip_route_transaction_duration_seconds
count=$(val "$T_DIR/m1" "${h}_count{route=\"public\"}")
inf=$(val "$T_DIR/m1" "${h}_bucket{route=\"public\",le=\"+Inf\"}")
expect_eq "histogram: +Inf bucket equals _count" "$inf" "$count"
expect_eq "histogram: _count is the route's transactions" "$count" "$rt"
mono=$(awk -v p="${h}_bucket{route=\"public\"," 'index($1, p) == 1 { if ($2 + 0 < last) bad = 1; last = $2 + 0; n++ }
	END { print (bad ? "no" : "yes") " " n }' "$T_DIR/m1")
expect_eq "histogram: 17 buckets, cumulative" "$mono" "yes 17"
sum=$(val "$T_DIR/m1" "${h}_sum{route=\"public\"}")
check "histogram: _sum is positive and below 30 s for 303 short transactions (got $sum)" \
	awk -v s="$sum" 'BEGIN { exit !(s > 0 && s < 30) }'
le10=$(val "$T_DIR/m1" "${h}_bucket{route=\"public\",le=\"10\"}")
expect_eq "histogram: every transaction took at most 10 s" "$le10" "$count"

# states: one client inside pg_sleep holds the one server, a second waits
fpsql "$port" -c "SELECT pg_sleep(1.5)" >/dev/null 2>&1 &
b1=$!
sleep 0.3
fpsql "$port" -c "SELECT 1" >/dev/null 2>&1 &
b2=$!
sleep 0.5
scrape "$T_DIR/m2" >/dev/null
expect_eq "clients by state: active" "$(val "$T_DIR/m2" "pgflip_clients{$pool,state=\"active\"}")" 1
expect_eq "clients by state: waiting" "$(val "$T_DIR/m2" "pgflip_clients{$pool,state=\"waiting\"}")" 1
expect_eq "servers by state: active" "$(val "$T_DIR/m2" "pgflip_servers{$pool,state=\"active\"}")" 1
expect_eq "clients_waiting" "$(val "$T_DIR/m2" "pgflip_clients_waiting{$pool}")" 1
w=$(val "$T_DIR/m2" "pgflip_client_wait_max_seconds{$pool}")
check "client_wait_max_seconds: the waiting client's 0.3 s or more (got $w)" \
	awk -v s="$w" 'BEGIN { exit !(s >= 0.3 && s < 5) }'
expect_eq "route_clients: both on public" "$(val "$T_DIR/m2" 'pgflip_route_clients{route="public"}')" 2
wait $b1 $b2
# the server runs DISCARD ALL (resetting) before it is idle again: up to 2 s
i=0
while scrape "$T_DIR/m3" >/dev/null && [ "$(val "$T_DIR/m3" "pgflip_servers{$pool,state=\"idle\"}")" != 1 ] && [ $i -lt 20 ]; do
	sleep 0.1; i=$((i + 1))
done
expect_eq "after they end: nobody waits" "$(val "$T_DIR/m3" "pgflip_clients_waiting{$pool}")" 0
expect_eq "after they end: the server is idle" "$(val "$T_DIR/m3" "pgflip_servers{$pool,state=\"idle\"}")" 1

# the route table: a canary moves the generation and shows its share
g0=$(val "$T_DIR/m3" pgflip_routes_generation)
ctl canary v2 25 >/dev/null
scrape "$T_DIR/m4" >/dev/null
expect_eq "canary share of v2" "$(val "$T_DIR/m4" 'pgflip_canary_share_ratio{route="v2"}')" 0.25
g1=$(val "$T_DIR/m4" pgflip_routes_generation)
check "route generation moved with the canary ($g0 -> $g1)" test "$g1" -gt "$g0"
expect_eq "route store connected" "$(val "$T_DIR/m4" pgflip_route_store_connected)" 1
sg=$(val "$T_DIR/m4" pgflip_route_store_generation)
check "route store generation is a number ($sg)" test "$sg" -ge 1
ctl canary off >/dev/null

# a migration in pgflip: phase and backfill rows
cat >"$T_DIR/02_len.yaml" <<'YAML'
operations:
  - add_column:
      table: items
      up: length(name)
      column: {name: name_len, type: integer, nullable: false, default: "0"}
YAML
# scraped every 0.1 s while the backfill of 300000 rows runs (2-4 s)
ctl migrate start "$T_DIR/02_len.yaml" >"$T_DIR/mig.out" 2>&1 &
mig=$!
bf='{migration="02_len",table="items"}'
i=0 first="" last="" total=""
while [ $i -lt 200 ] && kill -0 $mig 2>/dev/null; do
	scrape "$T_DIR/mb" >/dev/null
	if [ "$(val "$T_DIR/mb" 'pgflip_migration_phase{phase="backfill"}')" = 1 ]; then
		d=$(val "$T_DIR/mb" "pgflip_backfill_rows_done$bf")
		[ "$d" != absent ] && [ "$d" -gt 0 ] && { [ -z "$first" ] && first=$d; last=$d; }
		total=$(val "$T_DIR/mb" "pgflip_backfill_rows_expected$bf")
		rate=$(val "$T_DIR/mb" "pgflip_backfill_rows_per_second$bf")
		cp "$T_DIR/mb" "$T_DIR/m_backfill"
	fi
	sleep 0.1; i=$((i + 1))
done
wait $mig
check "migrate start through ctl" grep -q 'done' "$T_DIR/mig.out"
check "backfill rows done moved while it ran ($first -> $last of $total)" test -n "$first" -a "$last" -gt "$first"
check "backfill rows expected: the table's estimate, about 300000 ($total)" test "$total" -ge 250000 -a "$total" -le 350000
check "backfill rows per second during the backfill ($rate)" awk -v r="$rate" 'BEGIN { exit !(r > 0) }'
check "promtool check metrics accepts a scrape during the backfill" sh -c "promtool check metrics <'$T_DIR/m_backfill'"
scrape "$T_DIR/m5" >/dev/null
expect_eq "migration phase done is 1" "$(val "$T_DIR/m5" 'pgflip_migration_phase{phase="done"}')" 1
expect_eq "migration phase idle is 0" "$(val "$T_DIR/m5" 'pgflip_migration_phase{phase="idle"}')" 0
check "promtool check metrics accepts the scrape after a migration" sh -c "promtool check metrics <'$T_DIR/m5'"
pgflip_stop

# bad values: FILE:LINE errors, nothing listens
for bad in "127.0.0.1" "127.0.0.1:0" "::1:9127" "127.0.0.1:99999" ":9127"; do
	write_conf "$T_DIR/bad.ini" "$port" "metrics_listen = $bad"
	out=$("$TOP/$PGFLIP" serve -c "$T_DIR/bad.ini" 2>&1); rc=$?
	expect_match "metrics_listen = $bad: exit 2 with FILE:LINE (rc $rc)" "$rc $out" "2 *bad.ini:[0-9]*: metrics_listen: '$bad' is not HOST:PORT*"
done
# the port already taken: pgflip says so and does not start
# a port some other program listens on (python picks it: no race with free_port)
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(5)' "$T_DIR/busy.port" &
holder=$!
i=0; while [ ! -s "$T_DIR/busy.port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
busy=$(cat "$T_DIR/busy.port")
write_conf "$T_DIR/busy.ini" "$port" "metrics_listen = 127.0.0.1:$busy"
out=$(timeout 10 "$TOP/$PGFLIP" serve -c "$T_DIR/busy.ini" 2>&1); rc=$?
expect_match "metrics port in use: exit 1 naming it (rc $rc)" "$rc $out" "1 *cannot listen on metrics_listen 127.0.0.1:$busy*"
kill "$holder" 2>/dev/null

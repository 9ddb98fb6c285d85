#!/bin/sh
# bench/flip.sh: how long a route flip takes to reach the clients, at the
# pgflip that made it and at a second pgflip that shares its route store
# (route_db: the flip comes by NOTIFY), in front of a table of FLIP_ROWS
# (1,000,000) rows. A flip changes routes, not tables: its time must not
# depend on the table's size (issue 10).
#
#   sh bench/flip.sh                       about a minute
#   FLIP_ROUNDS=10 FLIP_ROWS=100000 sh bench/flip.sh
#
# Two pgflip instances, A and B, in transaction mode, with the same
# [databases] entry (so the same route_db, `bench`). The load generator
# (build/loadgen) runs two unpinned groups at a fixed rate, `on-a` through A
# and `on-b` through B (FLIP_RATE transactions/s each on FLIP_CONNS
# connections: a read by key of the table, and the route it ran on in the
# same pipeline). Every FLIP_EVERY seconds, `pgflip ctl route default`
# flips A's default route between two version schemas, v1 and v2 (views
# over the table), FLIP_ROUNDS times. For each flip and group, from the
# load generator's CSV:
#   switch_ms  from the moment ctl was sent to the first transaction sent
#              after it that ran on the new route
#   late       transactions sent after ctl's reply that still ran on the
#              old route (at A: none may; at B: those before the NOTIFY came)
# with their median and max over the flips. ctl_ms is ctl's own time.
#
#   FLIP_ROWS, FLIP_ROUNDS (20), FLIP_EVERY (1.5 s), FLIP_RATE (200),
#   FLIP_CONNS (4), BENCH_RESULTS, PGFLIP, LOADGEN
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
BENCH_NAME=flip.sh
FLIP_ROWS=${FLIP_ROWS:-1000000}
FLIP_ROUNDS=${FLIP_ROUNDS:-20}
FLIP_EVERY=${FLIP_EVERY:-1.5}
FLIP_RATE=${FLIP_RATE:-200}
FLIP_CONNS=${FLIP_CONNS:-4}
BENCH_POOL_MODE=transaction

. bench/lib.sh
LOADGEN=${LOADGEN:-build/loadgen}
[ -x "$LOADGEN" ] || make -s "$LOADGEN" || die "no load generator at $LOADGEN"

bench_results
bench_pg_start 100
pg_psql -c "CREATE DATABASE bench OWNER app" >/dev/null || die "CREATE DATABASE failed"
bq() { PGPASSWORD=app_pw psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U app -d bench "$@"; }
note "a table of $FLIP_ROWS rows"
bq -c "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL)" \
	-c "INSERT INTO items SELECT g, 'item-' || g, g % 1000 FROM generate_series(1, $FLIP_ROWS) g" \
	-c "ANALYZE items" -c "CREATE SCHEMA v1" -c "CREATE SCHEMA v2" \
	-c "CREATE VIEW v1.items AS SELECT * FROM public.items" -c "CREATE VIEW v2.items AS SELECT * FROM public.items" ||
	die "table setup failed"

FLIP_ROUTES="default = v1"
flip_prepare pgflip-a "$PGFLIP" ""
flip_prepare pgflip-b "$PGFLIP" ""
flip_start pgflip-a || die "pgflip A did not start"
flip_start pgflip-b || die "pgflip B did not start"

us() { echo $(($(date +%s%N) / 1000)); }
dsn() { echo "host=127.0.0.1 port=$(tget port "$1") dbname=bench user=app password=app_pw"; }
"$LOADGEN" --route --keys "$FLIP_ROWS" --csv "$RES/txn.csv" --summary "$RES/loadgen.txt" \
	--stop-file "$work/stop" --duration 3600 \
	--table items --columns id,name,qty --mix 0:0:1 --rate "$FLIP_RATE" \
	--group "on-a:$FLIP_CONNS" --dsn "$(dsn pgflip-a)" \
	--group "on-b:$FLIP_CONNS" --dsn "$(dsn pgflip-b)" >/dev/null 2>"$RES/loadgen.err" &
lg=$!
sleep 3
: >"$RES/flips.txt"
schema=v1
i=0
while [ $i -lt "$FLIP_ROUNDS" ]; do
	i=$((i + 1))
	if [ $schema = v1 ]; then schema=v2; else schema=v1; fi
	t0=$(us)
	flip_ctl pgflip-a route default "$schema" >/dev/null || die "ctl route default $schema failed"
	echo "$i $schema $t0 $(us)" >>"$RES/flips.txt"
	sleep "$FLIP_EVERY"
done
touch "$work/stop"
wait $lg || note "the load generator reported failures: $RES/loadgen.txt"

# per flip and group: switch_ms and late (see the header)
awk -F, -v flips="$RES/flips.txt" '
BEGIN { while ((getline l < flips) > 0) { split(l, f, " "); n++; sch[n] = f[2]; t0[n] = f[3]; t1[n] = f[4] } }
$1 == "group" { next }
{
	send = $6 + $7; g = $1; r = $10
	for (k = 1; k <= n; k++) {
		end = (k < n) ? t0[k + 1] : 9e18
		if (send < t0[k] || send >= end) continue
		if (r == sch[k] && !((k, g) in first)) first[k, g] = send - t0[k]
		if (r != sch[k] && send > t1[k]) late[k, g]++
	}
	groups[g] = 1
}
END {
	for (k = 1; k <= n; k++)
		for (g in groups)
			printf "%d %s %s %.1f %d %.1f\n", k, g, sch[k], ((k, g) in first) ? first[k, g] / 1000 : -1,
				late[k, g] + 0, (t1[k] - t0[k]) / 1000
}' "$RES/txn.csv" | sort -n >"$RES/flips.csv"

# median and max of column COL of group G's rows
stat() {
	awk -v g="$1" -v c="$2" '$2 == g { v[++n] = $c } END {
		if (!n) { print "n/a n/a"; exit }
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		printf "%s %s\n", (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2, v[n] }' "$RES/flips.csv"
}
{
	echo "route flips on a table of $FLIP_ROWS rows: $FLIP_ROUNDS flips of A's default route, load $FLIP_RATE tx/s per instance"
	printf '%-22s %12s %10s %12s %10s\n' instance "switch p50" "max" "late p50" "max"
	for g in on-a on-b; do
		set -- $(stat $g 4) $(stat $g 5)
		case $g in on-a) name="A (made the flip)" ;; *) name="B (same route_db)" ;; esac
		printf '%-22s %10s ms %7s ms %12s %10s\n' "$name" "$1" "$2" "$3" "$4"
	done
	set -- $(stat on-a 6)
	echo "ctl route default: p50 $1 ms, max $2 ms"
	echo "per flip: $RES/flips.csv (flip group schema switch_ms late ctl_ms)"
} | tee "$RES/summary.txt"

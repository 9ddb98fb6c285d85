#!/bin/sh
# A backfill run inside the proxy adapts to the load (issue 11): while the
# p99 latency of the transactions pgflip carries is above
# backfill_max_latency_ratio times its p99 before the migration, batches
# shrink and pause; with the ratio 0 they never do. A load of updates and
# reads by key runs through pgflip all along; the backfill's batches hold
# row locks those updates wait on, so the foreground's p99 rises. The table
# is large enough that the backfill lasts seconds: the ratio compares the
# p99 of the last 3 seconds, and a transaction that waited on a batch counts
# once it ends.
. "$TOP/tests/lib/check.sh"
LOADGEN=${LOADGEN:-build/loadgen}

make_db ppace
ROWS=600000
apsql -c "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL)" \
	-c "INSERT INTO items SELECT g, 'item-' || g, g % 1000 FROM generate_series(1, $ROWS) g" -c "ANALYZE items"
cat >"$T_DIR/02_score.yaml" <<'YAML'
operations:
  - add_column:
      table: items
      up: qty * 10
      column: {name: score, type: integer}
YAML
port=$(free_port)
# pace_conf RATIO: the config, with backfill_max_latency_ratio = RATIO
pace_conf() { txn_conf "$port" 6 "backfill_max_latency_ratio = $1"; }
pace_conf 1.2
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }

"$TOP/$LOADGEN" --dsn "host=127.0.0.1 port=$port dbname=$T_DB user=app password=app_pw" \
	--stop-file "$T_DIR/stop" --duration 120 --keys $ROWS --summary "$T_DIR/summary.txt" \
	--table items --columns id,name,qty --mix 0:3:1 --group app:6 --rate 300 \
	>/dev/null 2>"$T_DIR/loadgen.err" &
lg=$!
T_PIDS="$T_PIDS $lg"
# the baseline: the 10 seconds before the migration
sleep 11

from=$(($(wc -l <"$T_DIR/pgflip.log") + 1))
out=$(ctl migrate start "$T_DIR/02_score.yaml" 2>&1); rc=$?
expect_eq "start under load, ratio 1.2: exit 0" "$rc" 0
log=$(log_since "$from")
expect_match "the backfill slowed down while the foreground's p99 was up" "$log" \
	"*backfill of items slows down: foreground p99 is *x its baseline (limit 1.20x): * rows a batch, pauses of * % of a batch's time*"
expect_match "and it finished" "$log" "*backfilled $ROWS rows of public.items*"
expect_eq "every row filled" "$(apsql -c "SELECT count(*) FROM items WHERE _pgflip_new_score IS DISTINCT FROM qty * 10")" 0

# the same with the ratio 0 (a reload): no adaptation; on two connections
out=$(ctl migrate rollback 2>&1); rc=$?
expect_eq "rollback: exit 0" "$rc" 0
pace_conf 0
kill -HUP "$PGFLIP_PID"
sleep 11
from=$(($(wc -l <"$T_DIR/pgflip.log") + 1))
out=$(ctl migrate start "$T_DIR/02_score.yaml" --backfill-workers 2 2>&1); rc=$?
expect_eq "start under load, ratio 0: exit 0" "$rc" 0
log=$(log_since "$from")
expect_match "--backfill-workers 2 through ctl" "$log" "*backfilling public.items on 2 connections*"
expect_no_match "ratio 0: the backfill never slowed down" "$log" "*slows down*"
expect_match "ratio 0: it finished" "$log" "*backfilled $ROWS rows of public.items*"

touch "$T_DIR/stop"
wait $lg; lrc=$?
expect_eq "the load saw no failed transaction" "$lrc" 0
[ "$lrc" = 0 ] || sed 's/^/    # /' "$T_DIR/summary.txt" "$T_DIR/loadgen.err"
pgflip_stop

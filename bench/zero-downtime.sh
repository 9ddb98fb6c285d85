#!/bin/sh
# bench/zero-downtime.sh: zero downtime, measured (issue 11). For each pgroll
# operation kind that touches an existing table, the whole story of one
# migration under a fixed-rate load through pgflip (transaction mode), beside
# the same load with no migration, and again with an adversary:
#
#   sh bench/zero-downtime.sh                               every operation, 1M rows
#   BENCH_ROWS=100000 BENCH_HOLD=2 BENCH_OPS="add_column rename_table" sh bench/zero-downtime.sh
#
# The story (tests/lib/zdt.sh, which tests/integration/zero_downtime.sh runs
# on 20k rows): app-v1 clients (pinned to public) and unpinned clients
# (app-any: qty by id, SQL that works on both versions) from the start;
# `pgflip ctl migrate start FILE` (expand, backfill: the migration runs on
# pgflip's worker thread); app-v2 clients pinned to the version schema, on
# the new version's columns; canary 50; promote; app-v2 leaves; `pgflip ctl
# rollback` (the instant flip, then the DDL); start again; app-v2-again;
# promote; app-v1 leaves; complete. The load is build/loadgen (bench/loadgen.c,
# libpq in C, one fixed-rate schedule per group; see bench/README.md).
#
# Four runs per operation, each on a new table of BENCH_ROWS rows (VACUUM
# ANALYZE, CHECKPOINT) and a new pgflip process, in this order:
#   migration  the story
#   baseline   no migration: the same groups start and stop at the same
#              moments (v2's groups run v1's SQL: there is no v2)
#   adversary  the story with three sessions straight to PostgreSQL started
#              just before the first start: one idle in transaction holding
#              ACCESS SHARE on the table (ZDT_ADV_IDLE_S), a read holding it
#              while it runs (ZDT_ADV_READ_S), a REPEATABLE READ snapshot on
#              another table, which CREATE INDEX CONCURRENTLY waits for
#              (ZDT_ADV_SNAPSHOT_S)
#   baseline2  the baseline again (BENCH_BASELINES=2): the baseline latency
#              is every transaction of both, and the table shows the p99 of
#              each, and their ratio: how much the machine alone moves it
# With BENCH_ROUNDS=N, N - 1 more pairs of runs follow (migration, then its
# baseline, in OP/round2, OP/round3...), and the table gives each round's
# p99 ratio and their median (zdt_rounds): one pair's ratio moves with the
# machine by more than a tenth.
#
# Environment (defaults in brackets):
#   BENCH_ROWS        rows of the table                                  [1000000]
#   BENCH_OPS         operations (names below, or all)                   [all]
#   BENCH_HOLD        seconds between the story's steps                  [5]
#   BENCH_WARMUP      seconds of load before the first start: the migrator's
#                     baseline is the p99 of the 10 s before its job      [12]
#   BENCH_ADVERSARY   0: no adversary runs                               [1]
#   BENCH_BASELINES   baseline runs, 1 or 2                              [2]
#   BENCH_ROUNDS      rounds of migration and baseline runs              [1]
#   STORY_RATE_V1     app-v1 transactions per second                     [200]
#   STORY_RATE_V2     app-v2 and app-v2-again, each                      [100]
#   STORY_RATE_ANY    app-any (unpinned)                                 [100]
#   STORY_CONNS       connections per group (app-any: STORY_CONNS_ANY, 12) [4]
#   ZDT_ADV_IDLE_S, ZDT_ADV_READ_S, ZDT_ADV_SNAPSHOT_S   the adversary  [10, 30, 20]
#   ZDT_LOCK_TIMEOUT_MS   the migrator's lock_timeout, for the targets   [500]
#   BENCH_POOL        pgflip's default_pool_size                         [20]
#   BENCH_FLIP_KEYS   more lines of pgflip's [pgflip] section, such as
#                     "backfill_max_latency_ratio = 0" (no pacing)         []
#   BENCH_PG_SET      more PostgreSQL settings, NAME=VALUE words; empty for
#                     PostgreSQL's own defaults            [shared_buffers=1GB]
#   BENCH_RESULTS     folder for the results (kept)     [a new /tmp/pgflip-bench-results.XXXXXX]
#   PGFLIP, LOADGEN   the binaries                          [build/pgflip, build/loadgen]
# Operations: add_column alter_type alter_nullable alter_default alter_check
# alter_unique alter_references rename_column drop_column create_index
# create_unique create_check create_foreign_key create_primary_key
# drop_constraint rename_table set_replica_identity (zdt_op in
# tests/lib/zdt.sh says what each does).
#
# Results (the folder is printed first and last): summary.txt (the tables
# as printed), results.csv (op,run,metric,value), series.csv (per second:
# op,run,group,second,commits,failures,p50_ms,p99_ms,max_ms; group "all" is
# every client group together), and per operation OP/: table.txt,
# series.csv, latency.png (p99 and max per second, the baseline's p99, the
# steps marked), and per run the load generator's txn.csv, ledger.csv,
# locks.csv, summary.txt, events, ctl.log, status.jsonl (migrate status
# every 100 ms), pgflip.log, rows, metrics.
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
BENCH_NAME=zero-downtime.sh
BENCH_ROWS=${BENCH_ROWS:-1000000}
BENCH_OPS=${BENCH_OPS:-all}
BENCH_HOLD=${BENCH_HOLD:-5}
BENCH_ADVERSARY=${BENCH_ADVERSARY:-1}
BENCH_BASELINES=${BENCH_BASELINES:-2}
BENCH_WARMUP=${BENCH_WARMUP:-12}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
# as a tuned server would have it (PostgreSQL's docs start at a quarter of
# the RAM): the table, its copies and indexes fit; with the default 128MB
# they do not after a backfill, and reads slow down too (bench/README.md)
BENCH_PG_SET=${BENCH_PG_SET-shared_buffers=1GB}

. bench/lib.sh
. tests/lib/story.sh
. tests/lib/zdt.sh
[ "$BENCH_OPS" = all ] && BENCH_OPS=$ZDT_OPS_ALL
case $BENCH_ROUNDS in '' | *[!0-9]* | 0) die "BENCH_ROUNDS: expected 1 or more, got '$BENCH_ROUNDS'" ;; esac
for op in $BENCH_OPS; do zdt_op "$op" || die "unknown operation $op (see the header of bench/zero-downtime.sh)"; done
command -v gnuplot >/dev/null || note "no gnuplot: no plots"

trap 'zdt_stop_bg; bench_cleanup' EXIT
story_bench_start

zdt_sql() { bq "$@"; }
zdt_ctl() { flip_ctl pgflip "$@"; }
# a new pgflip for each run, after zdt_fresh made the table (a checkpoint
# first, so that no run pays for the last one's writes)
zdt_pgflip_stop() { stop_pid "$(tget pid pgflip)" INT; }
zdt_pgflip_start() {
	pg_psql -d bench -c "CHECKPOINT" >/dev/null
	flip_start pgflip
}
ZDT_LOG=$(flip_file pgflip).log
ZDT_FLIP_DSN="host=127.0.0.1 port=$(tget port pgflip) dbname=bench user=app"
ZDT_LOCK_DSN=$LOCK_DSN
ZDT_ADV_DSN="host=127.0.0.1 port=$pg_port dbname=bench user=app"
ZDT_ROWS=$BENCH_ROWS ZDT_HOLD=$BENCH_HOLD ZDT_WARMUP=$BENCH_WARMUP

# bench_run KIND DIR LABEL: the run KIND of $op in DIR/KIND (a baseline
# replays DIR/migration), its summary on stderr
bench_run() {
	note "$op: $3 ($BENCH_ROWS rows)"
	zdt_run "$1" "$2/$1" "$2/migration"
	sed 's/^/  /' "$2/$1/summary.txt" >&2
}

header() {
	echo "pgflip zero-downtime benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "$BENCH_ROWS rows; rates app-v1 $STORY_RATE_V1, app-v2 $STORY_RATE_V2, app-any $STORY_RATE_ANY, app-v2-again" \
		"$STORY_RATE_V2 tx/s; $STORY_CONNS connections per group (app-any ${STORY_CONNS_ANY:-12}); pool $BENCH_POOL," \
		"transaction mode; steps $BENCH_HOLD s apart after $BENCH_WARMUP s of load; lock_timeout $ZDT_LOCK_TIMEOUT_MS ms"
	echo "PostgreSQL settings: ${BENCH_PG_SET:-its defaults}"
	[ -z "${BENCH_FLIP_KEYS:-}" ] || echo "pgflip settings: $(echo "$BENCH_FLIP_KEYS" | tr '\n' ';')"
	[ "$BENCH_ROUNDS" = 1 ] || echo "$BENCH_ROUNDS rounds of the migration and baseline runs"
	echo "adversary: idle in transaction ${ZDT_ADV_IDLE_S} s, a read of ${ZDT_ADV_READ_S} s, a snapshot of ${ZDT_ADV_SNAPSHOT_S} s"
	echo "pgflip: $(binary_id "$PGFLIP" "$(flip_bin pgflip)"), checkout $(checkout_id "$TOP")"
	echo
}
header | tee "$RES/summary.txt"
echo "op,run,metric,value" >"$RES/results.csv"
echo "op,run,group,second,commits,failures,p50_ms,p99_ms,max_ms" >"$RES/series.csv"

for op in $BENCH_OPS; do
	zdt_op "$op"
	OPD=$RES/$op
	runs="migration baseline"
	[ "$BENCH_ADVERSARY" = 0 ] || runs="$runs adversary"
	[ "$BENCH_BASELINES" = 1 ] || runs="$runs baseline2"
	for run in $runs; do bench_run "$run" "$OPD" "$run run"; done
	r=2
	while [ "$r" -le "$BENCH_ROUNDS" ]; do
		for run in migration baseline; do bench_run "$run" "$OPD/round$r" "round $r of $BENCH_ROUNDS, $run run"; done
		r=$((r + 1))
	done
	echo "run,group,second,commits,failures,p50_ms,p99_ms,max_ms" >"$OPD/series.csv"
	for run in $runs; do
		zdt_series "$run" "$OPD/$run" >>"$OPD/series.csv"
		awk -v op="$op" -v run="$run" '{ k = $1; $1 = ""; sub(/^ /, ""); gsub(/"/, "\"\"")
			printf "%s,%s,%s,\"%s\"\n", op, run, k, $0 }' "$OPD/$run/metrics" >>"$RES/results.csv"
	done
	awk -v op="$op" 'NR > 1 { print op "," $0 }' "$OPD/series.csv" >>"$RES/series.csv"
	{ zdt_table "$OPD"; zdt_rounds "$OPD"; } >"$OPD/table.txt"
	if command -v gnuplot >/dev/null; then
		zdt_plot "$OPD" && echo "  plot: $OPD/latency.png" >>"$OPD/table.txt" ||
			echo "  plot failed: $(head -n 3 "$OPD/gnuplot.err")" >>"$OPD/table.txt"
	fi
	{ cat "$OPD/table.txt"; echo; } | tee -a "$RES/summary.txt"
done

# one line per operation: the targets it missed
{
	echo "== overview: the targets each run missed (FAIL in the tables above)"
	for op in $BENCH_OPS; do
		awk -v op="$op" 'NF >= 3 && ($(NF - 1) == "FAIL" || $NF == "FAIL") {
				v = $0; sub(/ +[A-Za-z/-]+ +[A-Za-z/-]+ *$/, "", v); sub(/^ +/, "", v); split(v, w, "  "); t = w[1]
				if ($(NF - 1) == "FAIL") m = m (m ? "; " : "") t
				if ($NF == "FAIL") a = a (a ? "; " : "") t }
			/^  6 migrate status named/ && $NF == "FAIL" { a = a (a ? "; " : "") "6 migrate status named the adversary" }
			END { printf "%-22s migration: %s\n%-22s adversary: %s\n", op, m ? m : "all met", "", a ? a : "all met" }' \
			"$RES/$op/table.txt"
	done
	echo
	echo "results: $RES (summary.txt, results.csv, series.csv; per operation: table.txt, series.csv, latency.png, and each run's files)"
} | tee -a "$RES/summary.txt"

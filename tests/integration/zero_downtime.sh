#!/bin/sh
# The short version of bench/zero-downtime.sh (issue 11): for a subset of the
# pgroll operation kinds that touch an existing table, one run each of the
# whole story under a fixed-rate load through pgflip (build/loadgen; the
# story and the checks are tests/lib/zdt.sh's): start (expand, backfill) with
# app-v1 clients (pinned to public) and unpinned ones running, app-v2 clients
# on the new version's columns, a canary, promote, the rollback flip, start
# again, complete. One more run has the adversary during the first start (a
# session idle in transaction holding ACCESS SHARE on the table, a long read,
# a held snapshot).
#
# Asserted, per run (what holds on a noisy shared machine): no failed
# transaction and none left unsent; no client waited on a lock of the
# migrator longer than its lock_timeout plus a sampling margin; no second
# without a commit; no row lost or wrong (the ledger against the table at
# the end, every row through both versions while both exist); every step of
# the story succeeded; the final table is as the file says; in the adversary
# run, `migrate status` named the adversary the migrator waited for. The
# latencies against a baseline, and the strong-lock times, are the bench's to
# report, not asserted here.
#
# ZDT_TEST_OPS overrides the operations (a list of tests/lib/zdt.sh's names,
# or "all").
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/lib/story.sh"
. "$TOP/tests/lib/zdt.sh"

export LOADGEN=${LOADGEN:-build/loadgen}
ZDT_ROWS=20000
ZDT_HOLD=0.6
ZDT_ADV_IDLE_S=3 ZDT_ADV_READ_S=4 ZDT_ADV_SNAPSHOT_S=3
LOCK_MARGIN_MS=100 # the sampler sees a wait up to one 10 ms period late, and a loaded machine delays it more
STORY_RATE_V1=80 STORY_RATE_V2=40 STORY_RATE_ANY=40 STORY_CONNS=3 STORY_CONNS_ANY=6
export STORY_RATE_V1 STORY_RATE_V2 STORY_RATE_ANY STORY_CONNS STORY_CONNS_ANY
OPS=${ZDT_TEST_OPS:-add_column alter_type alter_nullable alter_default alter_references rename_column drop_column
create_unique create_check create_primary_key drop_constraint rename_table set_replica_identity}
[ "$OPS" = all ] && OPS=$ZDT_OPS_ALL
ADV_OP=${ZDT_TEST_ADV_OP:-create_index}

make_db zdt
port=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port" "pool_mode = transaction
default_pool_size = 6
log_level = info" "app.app-v1* = public
canary_key = connection"
trap 'zdt_stop_bg; t_cleanup' EXIT INT TERM
zdt_sql() { apsql "$@"; }
zdt_ctl() { ctl "$@"; }
zdt_pgflip_stop() {
	[ -n "${PGFLIP_PID:-}" ] || return 0
	pgflip_stop
	T_PIDS=$(echo " $T_PIDS " | sed "s/ $PGFLIP_PID / /")
	PGFLIP_PID=""
}
zdt_pgflip_start() { pgflip_start "$T_DIR/pgflip.ini"; }
ZDT_LOG=$T_DIR/pgflip.log
ZDT_FLIP_DSN="host=127.0.0.1 port=$port dbname=$T_DB user=app"
ZDT_LOCK_DSN="host=127.0.0.1 port=$PG_PORT dbname=$T_DB user=app password=app_pw"
ZDT_ADV_DSN=$ZDT_LOCK_DSN

# assert_run OP KIND: the robust targets of OP's KIND run in $T_DIR/OP/KIND
assert_run() {
	d=$T_DIR/$1/$2 n="$1 ($2)"
	g() { zdt_get "$d" "$1"; }
	expect_eq "$n: every step of the story succeeded" "$(g steps_failed)" ""
	expect_eq "$n: no failed transaction (SQLSTATEs: $(g sqlstates))" "$(g failed)" 0
	expect_eq "$n: every scheduled transaction was sent" "$(g unsent)" 0
	expect_eq "$n: no second without a commit ($(g zero_groups))" "$(g zero)" 0
	w=$(g lockw_ms)
	check "$n: longest client wait on the migrator ${w} ms <= lock_timeout $ZDT_LOCK_TIMEOUT_MS + $LOCK_MARGIN_MS ms ($(g lockw_detail))" \
		awk -v w="$w" -v m=$((ZDT_LOCK_TIMEOUT_MS + LOCK_MARGIN_MS)) 'BEGIN { exit !(w != "-" && w <= m) }'
	expect_eq "$n: rows checked through both versions and at the end: $(g rows_checks) checks" "$(g rows_checks)" 5
	expect_eq "$n: no row lost, none wrong, none from nowhere" "$(g rows_missing) $(g rows_wrong) $(g rows_extra)" "0 0 0"
	expect_eq "$n: the final table is as the file says" "$(g final)" t
	check "$n: the clients ran (app-v1 $(story_summary "$d" app-v1 ok), app-v2 $(story_summary "$d" app-v2 ok) transactions)" \
		test "$(story_summary "$d" app-v1 ok)" -gt 100 -a "$(story_summary "$d" app-v2 ok)" -gt 20
}

for op in $OPS; do
	zdt_op "$op" || { not_ok "unknown operation $op"; continue; }
	zdt_run migration "$T_DIR/$op/migration"
	assert_run "$op" migration
	sed 's/^/# /' "$T_DIR/$op/migration/summary.txt"
done

zdt_op "$ADV_OP"
zdt_run adversary "$T_DIR/$ADV_OP/adversary"
assert_run "$ADV_OP" adversary
expect_eq "$ADV_OP (adversary): the three adversaries ran" "$(wc -l <"$T_DIR/$ADV_OP/adversary/adversary.pids")" 3
named=$(zdt_get "$T_DIR/$ADV_OP/adversary" named)
expect_match "$ADV_OP (adversary): migrate status named an adversary the migrator waited for ($named)" "$named" "adversary-*"
zdt_table "$T_DIR/$ADV_OP" | sed 's/^/# /'
# the warm-up's p99 of each run, which tells the machine's noise from the
# migrator's cost
d=$T_DIR/$ADV_OP/adversary
pre=$(zdt_jobs_p99 "$d" "$d" | awk '{ print $5, $6 }')
expect_match "$ADV_OP (adversary): the p99 and count of the transactions before the first start ($pre)" "$pre" "[0-9]*.[0-9][0-9] [1-9]*"

# zdt_rounds (bench/zero-downtime.sh's BENCH_ROUNDS) on p99s made up here:
# each round's migration over its own baseline, and the median
r=$T_DIR/rounds
rounds_p99() { mkdir -p "$r$1/migration" "$r$1/baseline"; echo "p99_ms $2" >"$r$1/migration/metrics"; echo "p99_ms $3" >"$r$1/baseline/metrics"; }
rounds_p99 "" 4.40 4.00
expect_eq "zdt_rounds: one round gives no median" "$(zdt_rounds "$r")" ""
rounds_p99 /round2 5.60 4.00
expect_match "zdt_rounds: the median of two rounds is their mean (1.10, 1.40)" "$(zdt_rounds "$r" | head -n 1)" "*median of 2 rounds*1.25 *FAIL*"
rounds_p99 /round3 3.15 3.00
expect_eq "zdt_rounds: three rounds, each round's ratio" "$(zdt_rounds "$r" | sed -n 's/.*baseline): //p')" "1.10 1.40 1.05"
expect_match "zdt_rounds: the median of three rounds (1.10) meets the target" "$(zdt_rounds "$r" | head -n 1)" "*median of 3 rounds*1.10 *PASS*"
zdt_pgflip_stop

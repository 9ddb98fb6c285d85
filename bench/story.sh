#!/bin/sh
# bench/story.sh: the story of issue 10 (tests/lib/story.sh) on a 1M-row
# table under a fixed-rate load (build/loadgen), beside the same load with
# no migration, and what it costs:
#
#   sh bench/story.sh                      defaults below, about 6 minutes
#   STORY_ROWS=100000 STORY_HOLD=2 sh bench/story.sh     a quick smoke run
#
# Four runs, each on a new table of STORY_ROWS rows (VACUUM ANALYZE,
# CHECKPOINT), the load generator's four groups at the same rates in all:
#   story     through pgflip (transaction mode): app-v1 from the start;
#             `migrate start` (expand + backfill of every row); app-v2
#             pinned to the version schema and the unpinned app-any
#             clients start; canary 50; promote; app-v2 leaves; rollback
#             (--no-wait: the flip, then the DDL once no client is on the
#             version schema); start again; app-v2-again; promote; app-v1
#             leaves; complete.
#   baseline  through pgflip, no migration: the same groups started and
#             stopped at the same moments of the run as in `story` (v2's
#             groups run v1's SQL: there is no v2 without a migration).
#   cli-backfill     app-v1 alone through pgflip while `pgflip migrate
#             start` (the CLI, another process) backfills the table.
#   direct-backfill  the same straight to PostgreSQL.
#   direct-idle      the same, at the same moments, with no migration.
# Every run also has the group `probe`: reads by key straight to
# PostgreSQL, from the same load generator, at the same moments. Where the
# groups through pgflip are slow and the probe is not, the time was spent
# in pgflip; where both are, in PostgreSQL or the machine.
#
# So the latency while a backfill runs is given three times, each against
# the same moments of a run without one: through pgflip with the backfill
# on pgflip's worker thread (story against baseline), through pgflip with
# the backfill in another process (cli-backfill against baseline), and
# direct (direct-backfill against direct-idle). The last is PostgreSQL's
# own work (and the machine's); the second adds the proxy's hop under that
# load; what the first adds to the second is the worker thread's.
#
# Flip latency: every transaction of the load generator also reads
# current_setting('search_path') in its own pipeline (--route), so the CSV
# says which route each transaction ran on. For each flip of the unpinned
# clients (canary, promote, rollback, promote again): the time of `ctl` (the
# command sent to its reply), and, per connection, from the command to its
# first transaction on the new route (first: the quickest connection; last:
# the slowest); `stale`: transactions sent after ctl's reply that still ran
# on the old route. A connection's transactions are STORY_CONNS / rate
# apart (40 ms by default), which bounds what these can show.
#
# Environment (defaults in brackets):
#   STORY_ROWS       rows of the table                                [1000000]
#   STORY_RATE_V1    app-v1 transactions per second                   [200]
#   STORY_RATE_V2    app-v2 and app-v2-again, each                    [100]
#   STORY_RATE_ANY   app-any (unpinned)                               [100]
#   STORY_CONNS      connections per group                            [4]
#   STORY_HOLD       seconds between the story's steps                [5]
#   BENCH_POOL       pgflip's default_pool_size                       [20]
#   BENCH_RESULTS    folder for the results (kept)   [a new /tmp/pgflip-bench-results.XXXXXX]
#   PGFLIP, LOADGEN  the binaries                        [build/pgflip, build/loadgen]
#
# Results: summary.txt (what is printed), groups.csv, flips.csv,
# backfill.csv, and per run NAME/ with the load generator's txn.csv,
# ledger.csv, locks.csv, summary.txt, and the ctl/CLI outputs.
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
BENCH_NAME=story.sh
STORY_ROWS=${STORY_ROWS:-1000000}
STORY_HOLD=${STORY_HOLD:-5}

. bench/lib.sh
. tests/lib/story.sh
VS=$STORY_VS

story_bench_start
story_migration "$work"
DIRECT_DSN="host=127.0.0.1 port=$pg_port dbname=bench user=app password=app_pw"
STORY_ERRORS=$RES/events.txt
export STORY_PROBE_DSN="host=127.0.0.1 port=$pg_port dbname=bench user=app"

# ------------------------------------------------------------------ steps ----

us() { story_now_us; }
half() { sleep "$(awk -v s="$STORY_HOLD" 'BEGIN { print s / 2 }')"; }
# ts_lines: each line of stdin with the time it came (us since the epoch)
ts_lines() { while IFS= read -r _l; do echo "$(us) $_l"; done; }
# job_wait: until pgflip's migration job is over; logs "NAME-done T"
job_wait() {
	while flip_ctl pgflip --json migrate status 2>/dev/null | grep -q '"running":true'; do sleep 0.05; done
	echo "$1-done $(us)" >>"$D/events"
}
# migrate_start NAME: ctl migrate start, its lines timed into NAME.log
migrate_start() {
	echo "$1 $(us)" >>"$D/events"
	flip_ctl pgflip migrate start "$work/02_story.yaml" 2>&1 | ts_lines >"$D/$1.log"
	echo "$1-done $(us)" >>"$D/events"
}

# the story through pgflip (run "story")
steps_story() {
	sleep "$STORY_HOLD"
	migrate_start start1
	half
	story_event pin flip_ctl pgflip route app 'app-v2*' "$VS"
	story_go go-v2
	story_go go-any
	sleep "$STORY_HOLD"
	story_event canary flip_ctl pgflip route canary "$VS" 50
	sleep "$STORY_HOLD"
	story_event promote flip_ctl pgflip promote "$VS"
	sleep "$STORY_HOLD"
	story_go stop-v2
	story_wait_stopped "$D" app-v2 60
	story_event rollback flip_ctl pgflip --no-wait rollback
	job_wait rollback
	half
	migrate_start start2
	story_event pin2 flip_ctl pgflip route app 'app-v2*' "$VS"
	story_go go-v2-again
	sleep "$STORY_HOLD"
	story_event promote2 flip_ctl pgflip promote "$VS"
	sleep "$STORY_HOLD"
	story_go stop-v1
	story_wait_stopped "$D" app-v1 60
	# complete contracts public: it waits until no route names it
	flip_ctl pgflip unroute app 'app-v1*' >/dev/null
	story_event complete flip_ctl pgflip migrate complete
	half
	story_go stop
}

# app-v1 alone, a CLI backfill in the middle (runs "cli-backfill",
# "direct-backfill")
steps_direct_backfill() {
	sleep "$STORY_HOLD"
	echo "cli $(us)" >>"$D/events"
	"$PGFLIP" migrate --dsn "$DIRECT_DSN" --no-progress start "$work/02_story.yaml" 2>&1 | ts_lines >"$D/cli.log"
	echo "cli-done $(us)" >>"$D/events"
	sleep "$STORY_HOLD"
	story_go stop
}

# fresh_table: a new table (and no migration state), vacuumed, checkpointed
fresh_table() {
	bq -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS pgflip CASCADE" \
		-c "DROP SCHEMA IF EXISTS $VS CASCADE" -c "DROP TABLE IF EXISTS items CASCADE" \
		-c "$(story_table_sql "$STORY_ROWS")" -c "VACUUM ANALYZE items" || die "the table"
	pg_psql -d bench -c "CHECKPOINT" >/dev/null
}

# run NAME DSN STEPS...: pgflip stopped, a new table, pgflip started (a new
# process for each run), the load generator, then STEPS; waits for the load generator
run() {
	_rn=$1 _rdsn=$2; shift 2
	D=$RES/$_rn STORY_D=$RES/$_rn
	mkdir -p "$D"
	: >"$D/events"
	note "run $_rn: a new table of $STORY_ROWS rows"
	# pgflip first: its route store would publish the last run's routes (to
	# a version schema that is gone) into the new state schema
	stop_pid "$(tget pid pgflip)" INT
	fresh_table
	flip_start pgflip || die "pgflip did not start"
	note "run $_rn: load"
	STORY_LAUNCH=$(us)
	story_loadgen "$D" "$_rdsn" "$LOCK_DSN" --keys "$STORY_ROWS" --duration 1800
	BG_PIDS=$STORY_LG_PID
	"$@"
	wait "$STORY_LG_PID"
	BG_PIDS=""
	flip_ctl pgflip --json status >"$D/status.json" 2>/dev/null # its loop_lag_ms covers this run (pgflip was restarted)
	cp "$(flip_file pgflip).log" "$D/pgflip.log" 2>/dev/null
	sed 's/^/  /' "$D/summary.txt" >&2
}

FLIP_DSN="host=127.0.0.1 port=$(tget port pgflip) dbname=bench user=app"
STORY_V2_SQL=v2
run story "$FLIP_DSN" steps_story
story_ledger bq "$RES/story"
rows_bad=$(story_bad_rows bq app-v1,app-v2,app-any,app-v2-again public title app-v2-again 2>"$RES/story/bad-rows.txt")
rows_untouched=$(story_untouched_bad bq "$STORY_ROWS")
STORY_V2_SQL=v1 # no v2 without a migration: v2's groups run v1's SQL
run baseline "$FLIP_DSN" story_replay "$RES/story"
run cli-backfill "$FLIP_DSN" steps_direct_backfill
run direct-backfill "host=127.0.0.1 port=$pg_port dbname=bench user=app" steps_direct_backfill
run direct-idle "host=127.0.0.1 port=$pg_port dbname=bench user=app" story_replay "$RES/direct-backfill"

# ---------------------------------------------------------------- figures ----

ev() { awk -v n="$2" -v f="${3:-2}" '$1 == n { print $f; exit }' "$RES/$1/events"; } # RUN NAME [FIELD]
# lat_stats RUN GROUP FROM TO: "n p50 p99 max" (ms) of GROUP's transactions
# (every group: *) scheduled from FROM to TO (us since the epoch)
lat_stats() {
	awk -F, -v g="$2" -v a="$3" -v b="$4" 'NR > 1 && ($1 == g || g == "*") && $6 >= a && $6 < b { print $8 }' \
		"$RES/$1/txn.csv" | sort -n | awk '{ v[NR] = $1 }
		END { if (!NR) { print "0 - - -"; exit }
			i = int(NR * 0.5); if (i < NR * 0.5) i++; j = int(NR * 0.99); if (j < NR * 0.99) j++
			printf "%d %.2f %.2f %.2f\n", NR, v[i] / 1000, v[j] / 1000, v[NR] / 1000 }'
}
# flip_stats RUN FLIP OLD NEW UNTIL: "ctl_ms switched eligible first_ms
# last_ms stale" for the unpinned clients (app-any) at FLIP of RUN: of the
# connections on OLD before the command (eligible), those whose
# transactions went to NEW before the step UNTIL (switched), how long after
# the command the first and the last of them did, and how many of their
# transactions sent after ctl's reply still ran on OLD (stale)
flip_stats() {
	_t0=$(ev "$1" "$2") _t1=$(ev "$1" "$2" 3) _t2=$(ev "$1" "$5")
	awk -F, -v t0="$_t0" -v t1="$_t1" -v t2="$_t2" -v old="$3" -v new="$4" '
		NR > 1 && $1 == "app-any" {
			sent = $6 + $7; c = $2
			if (sent < t0) { before[c] = $10; next }
			if (sent >= t2 || before[c] != old || (c in first)) next
			if ($10 == new) { first[c] = sent; stale += pending[c] }
			else if ($10 == old && sent >= t1) pending[c]++
		}
		END {
			for (c in before) if (before[c] == old) eligible++
			for (c in first) { n++; d = first[c] - t0; if (n == 1 || d < lo) lo = d; if (n == 1 || d > hi) hi = d }
			printf "%.1f %d %d %s %s %d\n", (t1 - t0) / 1000, n, eligible, n ? sprintf("%.1f", lo / 1000) : "-",
				n ? sprintf("%.1f", hi / 1000) : "-", stale
		}' "$RES/$1/txn.csv"
}
# log_us FILE WORDS: the time (us) of the first line of pgflip's log with WORDS
log_us() {
	_ll=$(grep -m 1 "$2" "$1" | cut -c1-23)
	[ -n "$_ll" ] && echo $(($(date -d "$_ll UTC" +%s%N) / 1000))
}
# the first backfill: through pgflip from its log, direct from the CLI's lines
bf_p0=$(log_us "$RES/story/pgflip.log" "migrate: backfilling") bf_p1=$(log_us "$RES/story/pgflip.log" "migrate: backfilled")
bf_prate=$(grep -m 1 'migrate: backfilled' "$RES/story/pgflip.log" | sed -n 's/.*(\([0-9]*\) rows\/s).*/\1/p')
# cli_window RUN: "FROM TO ROWS/S" of the CLI's backfill in RUN
cli_window() {
	awk '/backfilling/ && !a { a = $1 } /backfilled/ && !b { b = $1; r = $0; sub(/.*\(/, "", r); sub(/ rows\/s.*/, "", r) }
		END { print a, b, r }' "$RES/$1/cli.log"
}
# the same moments of the runs without a migration
launch() { sed -n 2p "$RES/$1/txn.csv" | cut -d, -f6; } # the first scheduled transaction: the runs' common origin
on_base() { echo $(($1 - $(launch "$2") + $(launch "$3"))); } # T FROM_RUN TO_RUN

summary() {
	echo "pgflip story benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "$STORY_ROWS rows; rates app-v1 $STORY_RATE_V1, app-v2 $STORY_RATE_V2, app-any $STORY_RATE_ANY, app-v2-again $STORY_RATE_V2 tx/s;" \
		"$STORY_CONNS connections per group; pool $BENCH_POOL, transaction mode; steps $STORY_HOLD s apart"
	echo "pgflip: $(binary_id "$PGFLIP" "$(flip_bin pgflip)"), checkout $(checkout_id "$TOP")"
	echo
	echo "1. the story against the same load with no migration (per group: all its transactions)"
	printf '%-13s %-9s %7s %7s %-14s %8s %8s %9s %8s %6s %9s\n' group run sent failed sqlstates p50_ms p99_ms max_ms lag_ms \
		zero_s lockw_ms
	echo "run,group,sent,failed,sqlstates,p50_ms,p99_ms,max_ms,lag_ms,zero_s,lockw_ms" >"$RES/groups.csv"
	for g in app-v1 app-v2 app-any app-v2-again probe; do
		for r in story baseline; do
			set -- $(story_summary "$RES/$r" $g sent) $(story_summary "$RES/$r" $g failed) \
				$(story_summary "$RES/$r" $g errors) $(story_summary "$RES/$r" $g p50) $(story_summary "$RES/$r" $g p99) \
				$(story_summary "$RES/$r" $g max) $(story_summary "$RES/$r" $g lag) $(story_summary "$RES/$r" $g zero) \
				$(story_summary "$RES/$r" $g lockw)
			printf '%-13s %-9s %7s %7s %-14s %8s %8s %9s %8s %6s %9s\n' $g $r "$@"
			echo "$r,$g,$1,$2,$3,$4,$5,$6,$7,$8,$9" >>"$RES/groups.csv"
		done
	done
	echo "(probe: reads straight to PostgreSQL, the control; lag: the longest a due transaction waited to be sent:" \
		"its connection was busy, or the load generator did not run)"
	echo "rows lost or wrong at the end of the story (the ledger against the table): $rows_bad (missing wrong);" \
		"rows nobody wrote that changed, rows from nowhere: $rows_untouched"
	echo
	echo "2. flips of the unpinned clients (app-any, ${STORY_CONNS_ANY:-12} connections, a transaction every" \
		"$(awk -v c="${STORY_CONNS_ANY:-12}" -v r="$STORY_RATE_ANY" 'BEGIN { printf "%.0f", c / r * 1000 }') ms each), on the $STORY_ROWS-row table"
	printf '%-10s %-24s %8s %9s %9s %9s %6s\n' flip "routes" ctl_ms switched first_ms last_ms stale
	echo "flip,from,to,ctl_ms,switched,eligible,first_ms,last_ms,stale" >"$RES/flips.csv"
	for f in "canary public $VS promote" "promote public $VS rollback" "rollback $VS public start2" \
		"promote2 public $VS complete"; do
		set -- $f
		set -- "$1" "$2" "$3" $(flip_stats story "$1" "$2" "$3" "$4")
		printf '%-10s %-24s %8s %9s %9s %9s %6s\n' "$1" "$2 -> $3" "$4" "$5/$6" "$7" "$8" "$9"
		echo "$1,$2,$3,$4,$5,$6,$7,$8,$9" >>"$RES/flips.csv"
	done
	echo "rollback: the flip is ctl's reply (the routes move in the loop, before the DDL); the DDL was done" \
		"$((($(ev story rollback-done) - $(ev story rollback)) / 1000)) ms after the command (it waits for the clients on $VS)"
	echo "complete: $((($(ev story complete 3) - $(ev story complete)) / 1000)) ms;" \
		"start: $((($(ev story start1-done) - $(ev story start1)) / 1000)) ms, again $((($(ev story start2-done) - $(ev story start2)) / 1000)) ms"
	echo
	echo "3. app-v1's latency while the first backfill of $STORY_ROWS rows runs, against the same moments with no migration"
	printf '%-8s %-28s %6s %8s | %-22s | %-22s | %-14s | %s\n' target "backfill by" secs "rows/s" "without: p50/p99/max" \
		"during: p50/p99/max" "p50, p99 ratio" "probe during: p99/max"
	echo "target,window_s,rows_per_s,base_n,base_p50_ms,base_p99_ms,base_max_ms,during_n,during_p50_ms,during_p99_ms,during_max_ms,probe_p99_ms,probe_max_ms" \
		>"$RES/backfill.csv"
	for t in "pgflip story baseline $bf_p0 $bf_p1 ${bf_prate:--} worker-thread" \
		"pgflip cli-backfill baseline $(cli_window cli-backfill) CLI" "direct direct-backfill direct-idle $(cli_window direct-backfill) CLI"; do
		set -- $t
		b=$(lat_stats "$3" app-v1 "$(on_base "$4" "$2" "$3")" "$(on_base "$5" "$2" "$3")")
		d=$(lat_stats "$2" app-v1 "$4" "$5")
		p=$(lat_stats "$2" probe "$4" "$5")
		set -- "$@" $b $d $p
		secs=$(awk -v a="$4" -v b="$5" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
		printf '%-8s %-28s %6s %8s | %-22s | %-22s | %-14s | %s\n' "$1" "$7 (${2})" "$secs" "$6" "$9/${10}/${11}" \
			"${13}/${14}/${15}" "$(awk -v a="$9" -v b="${10}" -v c="${13}" -v d="${14}" 'BEGIN { printf "%.2f, %.2f", c / a, d / b }')" \
			"${18}/${19}"
		echo "$1,$secs,$6,$8,$9,${10},${11},${12},${13},${14},${15},${18},${19}" >>"$RES/backfill.csv"
	done
	echo "(ms; the windows are the backfill's, from the log lines of pgflip and of the CLI; the runs without a" \
		"migration are read at the same moments after their start)"
	echo
	echo "4. pgflip's event loop over each run: how late its 100 ms timer ran at worst (status loop_lag_ms.max;" \
		"pgflip is restarted per run, and the direct runs do not go through it)"
	for r in story baseline cli-backfill; do
		printf '%-14s %s ms\n' "$r" "$(sed -n 's/.*"loop_lag_ms":{"max":\([0-9]*\).*/\1/p' "$RES/$r/status.json" 2>/dev/null)"
	done
	if [ -s "$RES/events.txt" ]; then
		echo
		echo "events:"
		sed 's/^/  /' "$RES/events.txt"
	fi
	echo
	echo "results: $RES (summary.txt, groups.csv, flips.csv, backfill.csv; per run: txn.csv, ledger.csv, locks.csv, summary.txt)"
}
summary | tee "$RES/summary.txt"

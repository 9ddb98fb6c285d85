# The story of issue 10 as shell functions: tests/integration/proxy_story.sh
# and bench/story.sh tell the same story (a table under load through pgflip;
# a migration that renames a column and adds a NOT NULL column; v2 clients,
# a canary, promote, rollback, start again, complete) and check it the
# same way. Source it after the script's own helpers; it needs LOADGEN (the
# load generator binary, default build/loadgen under TOP).
#
#   story_migration DIR          writes DIR/02_story.yaml
#   story_table_sql ROWS         SQL: items(id, name, qty) with ROWS rows
#   story_loadgen DIR DSN LOCK_DSN [ARGS...]   the load generator, in the background
#   story_wait_stopped DIR GROUP [S]           until GROUP's connections are closed
#   story_summary DIR GROUP FIELD              a field of GROUP's summary line
#   story_routes DIR GROUP FROM_US TO_US       the routes of GROUP's transactions then
#   story_ledger SQLFN DIR       loads DIR/ledger.csv into story.ledger
#   story_bad_rows SQLFN GROUPS SCHEMA TEXTCOL PLUS7   rows missing or wrong
#   story_rows_bad SQLFN GROUPS RELATION TEXTCOL INTCOL TEXTGROUPS EXTRA   the same, for any table
#   story_untouched_bad SQLFN ROWS               first rows changed that nobody wrote
#   story_event NAME CMD...      runs a step of run STORY_D, timed into its events
#   story_go FILE                touches STORY_D/FILE, logged for a replay
#   story_replay FROM_DIR        FROM_DIR's touches at the same moments of this run
#   story_bench_start            the benchmarks' load defaults, PostgreSQL, pgflip
#
# SQLFN is the name of a function that runs psql with its arguments against
# the database, tuples only (apsql in the test).

STORY_VS=public_02_story
LOADGEN=${LOADGEN:-build/loadgen}

# Microseconds since the epoch: the clock of the load generator's CSV.
story_now_us() { echo $(($(date +%s%N) / 1000)); }

story_migration() {
	cat >"$1/02_story.yaml" <<'YAML'
# Two operations in one file: a rename, and a NOT NULL column whose `up`
# reads qty (the v2 clients write score as qty * 10 + 7).
operations:
  - rename_column:
      table: items
      from: name
      to: title
  - add_column:
      table: items
      up: qty * 10
      column: {name: score, type: integer, nullable: false}
YAML
}

story_table_sql() {
	echo "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL);
INSERT INTO items SELECT g, 'item-' || g, g % 1000 FROM generate_series(1, $1) g;
ANALYZE items;"
}

# story_loadgen DIR DSN LOCK_DSN [ARGS...]: the load generator in the
# background (STORY_LG_PID), writing DIR/txn.csv, DIR/ledger.csv,
# DIR/locks.csv, DIR/summary.txt and DIR/loadgen.err; ARGS are run options
# (--keys, --duration...). Four groups of STORY_CONNS (4) connections, each
# transaction reading its route:
#   app-v1        STORY_RATE_V1 (100) tx/s from the start, v1 columns (name),
#                 until DIR/stop-v1
#   app-v2        STORY_RATE_V2 (50), v2 columns (title, and score, which
#                 v2 writes itself as qty * 10 + 7), from DIR/go-v2 to DIR/stop-v2
#   app-any       STORY_RATE_ANY (50), unpinned, code that works on both
#                 versions (updates and reads of qty only), from DIR/go-any;
#                 named prepared statements, which cross every route flip
#   app-v2-again  as app-v2, from DIR/go-v2-again (after the second start),
#                 named prepared statements (complete rebuilds their views)
# Every group stops at DIR/stop. With STORY_V2_SQL=v1, the v2 groups run
# v1's SQL (a load of the same shape where there is no v2). With
# STORY_PROBE_DSN, a fifth group, `probe`, reads qty by key there (straight
# to PostgreSQL) at STORY_RATE_PROBE (50) on 2 connections from the start:
# a control for the moments when the others are slow.
# Other migrations (tests/lib/zdt.sh) set the templates: STORY_V1_INS,
# STORY_V1_UPD, STORY_V1_READ (app-v1's; default: items(id, name, qty)),
# STORY_V2_INS, STORY_V2_UPD, STORY_V2_READ (app-v2's and app-v2-again's;
# default: the story's v2, above) and STORY_ANY_TABLE (app-any's table:
# items); STORY_ANY_START=1 starts app-any with the others instead of at
# DIR/go-any.
story_loadgen() {
	_sd=$1 _sdsn=$2 _sldsn=$3
	shift 3
	_sc=${STORY_CONNS:-4}
	_v1_ins=${STORY_V1_INS:-'INSERT INTO items (id, name, qty) VALUES ($1, $2, $3)'}
	_v1_upd=${STORY_V1_UPD:-'UPDATE items SET name = $2, qty = $3 WHERE id = $1'}
	_v1_read=${STORY_V1_READ:-'SELECT name, qty FROM items WHERE id = $1'}
	_v2_ins=${STORY_V2_INS:-'INSERT INTO items (id, title, qty, score) VALUES ($1, $2, $3, $3 * 10 + 7)'}
	_v2_upd=${STORY_V2_UPD:-'UPDATE items SET title = $2, qty = $3, score = $3 * 10 + 7 WHERE id = $1'}
	_v2_read=${STORY_V2_READ:-'SELECT title, qty FROM items WHERE id = $1'}
	if [ "${STORY_V2_SQL:-v2}" = v1 ]; then
		_v2_ins=$_v1_ins _v2_upd=$_v1_upd _v2_read=$_v1_read
	fi
	_sany_start="--start-file $_sd/go-any"
	[ "${STORY_ANY_START:-0}" = 1 ] && _sany_start="--start-after 0"
	[ -z "${STORY_PROBE_DSN:-}" ] ||
		set -- "$@" --group probe:2 --dsn "$STORY_PROBE_DSN" --rate "${STORY_RATE_PROBE:-50}" --columns id,,qty --mix 0:0:1
	rm -f "$_sd"/go-* "$_sd"/stop*
	"$TOP/$LOADGEN" --dsn "$_sdsn" --lock-dsn "$_sldsn" --route --check --stop-file "$_sd/stop" \
		--csv "$_sd/txn.csv" --ledger "$_sd/ledger.csv" --lock-csv "$_sd/locks.csv" --summary "$_sd/summary.txt" \
		--table items --columns id,name,qty \
		--group "app-v1:$_sc" --rate "${STORY_RATE_V1:-100}" --group-stop-file "$_sd/stop-v1" \
		--insert "$_v1_ins" --update "$_v1_upd" --read "$_v1_read" \
		--group "app-v2:$_sc" --rate "${STORY_RATE_V2:-50}" --start-file "$_sd/go-v2" --group-stop-file "$_sd/stop-v2" \
		--insert "$_v2_ins" --update "$_v2_upd" --read "$_v2_read" \
		--group "app-any:${STORY_CONNS_ANY:-12}" --rate "${STORY_RATE_ANY:-50}" $_sany_start \
		--table "${STORY_ANY_TABLE:-items}" --columns id,,qty --mix 0:1:1 --prepared \
		--group "app-v2-again:$_sc" --rate "${STORY_RATE_V2:-50}" --start-file "$_sd/go-v2-again" --prepared \
		--insert "$_v2_ins" --update "$_v2_upd" --read "$_v2_read" "$@" \
		>"$_sd/loadgen.out" 2>"$_sd/loadgen.err" &
	STORY_LG_PID=$!
}

# story_wait_stopped DIR GROUP [SECONDS]: returns once the load generator
# says GROUP stopped (its last transactions done, its ledger lines
# written); 1 after SECONDS (20).
story_wait_stopped() {
	_si=0
	while ! grep -q "^loadgen: group $2 stopped" "$1/loadgen.err" 2>/dev/null; do
		[ $_si -lt $((${3:-20} * 10)) ] || return 1
		sleep 0.1; _si=$((_si + 1))
	done
}

# story_summary DIR GROUP FIELD: FIELD (sent ok failed unsent p50 p99 max
# lag zero lockw errors) of GROUP's line in DIR/summary.txt
story_summary() {
	awk -v g="$2" -v f="$3" '
		BEGIN { split("group conns rate sent ok failed unsent p50 p99 max lag zero lockw errors", n, " "); for (i in n) col[n[i]] = i }
		$1 == g { print $(col[f]); exit }' "$1/summary.txt"
}

# story_routes DIR GROUP FROM_US TO_US: the routes (sorted, one line) of the
# transactions of GROUP that were scheduled from FROM_US to TO_US and
# succeeded
story_routes() {
	awk -F, -v g="$2" -v a="$3" -v b="$4" '$1 == g && $9 == "ok" && $6 >= a && $6 < b { print $10 }' "$1/txn.csv" |
		sort -u | tr '\n' ' ' | sed 's/ $//'
}

# story_ledger SQLFN DIR: (re)loads DIR/ledger.csv into story.ledger
story_ledger() {
	$1 -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS story CASCADE" -c "CREATE SCHEMA story" \
		-c "CREATE TABLE story.ledger (end_us bigint, grp text, conn int, id bigint, op text, txt text, num int, route text, status text)" \
		-c "\\copy story.ledger FROM '$2/ledger.csv' WITH (FORMAT csv, HEADER true)" >/dev/null
}

# story_bad_rows SQLFN GROUPS SCHEMA TEXTCOL PLUS7: for the rows whose last
# write (by the ledger) came from one of GROUPS (a comma list), read through
# SCHEMA.items, prints "MISSING WRONG": rows not there, and rows whose qty,
# TEXTCOL (not for app-any, which does not write it) or score is not what
# was written. score (PLUS7 "-": the version has none) must be qty * 10 (the
# up expression, or the backfill) or, for the groups in PLUS7, qty * 10 + 7
# (what v2 writes). The first wrong rows go to stderr.
story_bad_rows() {
	_spl=$(story_sql_list "$5")
	[ -n "$_spl" ] || _spl="''"
	if [ "$5" = - ]; then _sscore=false; else
		_sscore="l.grp <> 'app-any' AND i.score IS DISTINCT FROM i.qty * 10 + CASE WHEN l.grp IN ($_spl) THEN 7 ELSE 0 END"
	fi
	story_rows_bad "$1" "$2" "$3.items" "$4" qty app-v1,app-v2,app-v2-again "$_sscore"
}

# story_sql_list A,B: 'A','B' (a comma list as SQL literals)
story_sql_list() { echo "$1" | sed "s/[^,][^,]*/'&'/g"; }

# story_rows_bad SQLFN GROUPS RELATION TEXTCOL INTCOL TEXTGROUPS EXTRA: for
# the rows whose last write (by the ledger) came from one of GROUPS, read
# through RELATION (schema.table: a version's view, or the table), prints
# "MISSING WRONG": rows not there, and rows whose INTCOL is not the last
# write's integer, whose TEXTCOL (empty: the version has none) is not its
# text when one of TEXTGROUPS wrote it (the groups whose SQL writes a text),
# or for which EXTRA holds: an SQL condition ("false": none) over i (the
# row) and l (the last write: l.grp, l.op, l.txt, l.num, and l.first_grp,
# l.first_op of the id's first write). The first wrong rows go to stderr.
story_rows_bad() {
	_sq=$1 _sgl=$(story_sql_list "$2") _sr=$3 _st=$4 _si=$5 _stl=$(story_sql_list "$6") _sx=$7
	_swrong="i.$_si IS DISTINCT FROM l.num OR ($_sx)"
	[ -z "$_st" ] || _swrong="$_swrong OR (l.grp IN ($_stl) AND i.$_st IS DISTINCT FROM l.txt)"
	_sfrom="(SELECT DISTINCT ON (id) *, first_value(grp) OVER w AS first_grp, first_value(op) OVER w AS first_op
		FROM story.ledger WHERE grp IN ($_sgl) WINDOW w AS (PARTITION BY id ORDER BY end_us) ORDER BY id, end_us DESC) l
		LEFT JOIN $_sr i USING (id)"
	$_sq -c "SELECT 'ledger says ' || l.grp || ' ' || l.op || ' id ' || l.id || ' = (' || l.txt || ', ' || l.num || ') via ' || l.route
		|| '; the row is ' || coalesce(row(i.*)::text, 'missing') FROM $_sfrom WHERE i.id IS NULL OR $_swrong LIMIT 5" >&2
	$_sq -F ' ' -c "SELECT count(*) FILTER (WHERE i.id IS NULL), count(*) FILTER (WHERE i.id IS NOT NULL AND ($_swrong))
		FROM $_sfrom"
}

# story_untouched_bad SQLFN ROWS: rows of the first ROWS that no write of the
# ledger touched and that are no longer as story_table_sql made them
# (title, qty, and the score the backfill gave), and rows that are in
# neither: prints "CHANGED EXTRA"
story_untouched_bad() {
	$1 -F ' ' -c "SELECT count(*) FILTER (WHERE i.id <= $2 AND (i.title <> 'item-' || i.id OR i.qty <> i.id % 1000
			OR i.score <> i.qty * 10)),
		count(*) FILTER (WHERE i.id > $2)
		FROM public.items i WHERE NOT EXISTS (SELECT FROM story.ledger l WHERE l.id = i.id)"
}

# ---- the steps of a run ----------------------------------------------------
# A run's folder is STORY_D; STORY_LAUNCH is when its load generator started
# (us since the epoch); a step that fails is noted in STORY_ERRORS
# (default STORY_D/errors).

# story_event NAME CMD...: runs CMD (its output to STORY_D/ctl.log), logs
# "NAME T_SENT T_REPLY" to STORY_D/events
story_event() {
	_sen=$1; shift
	_se0=$(story_now_us)
	"$@" >>"$STORY_D/ctl.log" 2>&1 || echo "$_sen: exit $? ($*)" >>"${STORY_ERRORS:-$STORY_D/errors}"
	echo "$_sen $_se0 $(story_now_us)" >>"$STORY_D/events"
}

# story_go FILE: touches the run's control FILE, logged ("touch FILE US",
# US after the launch) for a replay
story_go() { touch "$STORY_D/$1"; echo "touch $1 $(($(story_now_us) - STORY_LAUNCH))" >>"$STORY_D/events"; }

# story_replay FROM_DIR: the touches of the run in FROM_DIR at the same
# moments of this run (a run with no migration beside one with it)
story_replay() {
	awk '$1 == "touch" { print $2, $3 }' "$1/events" | while read -r _sf _sat; do
		_sleft=$((STORY_LAUNCH + _sat - $(story_now_us)))
		[ "$_sleft" -gt 0 ] && sleep "$(awk -v u="$_sleft" 'BEGIN { printf "%.6f", u / 1e6 }')"
		touch "$STORY_D/$_sf"
	done
}

# story_bench_start: for the benchmarks (after bench/lib.sh): the load's
# defaults (STORY_RATE_V1 200, STORY_RATE_V2 100, STORY_RATE_ANY 100 tx/s,
# STORY_CONNS 4), the load generator, the results folder, PostgreSQL with a
# database `bench` owned by app (bq: psql there as app, tuples only), the
# pgflip target `pgflip` (routes: default public, app-v1* pinned to public,
# canary_key = connection; BENCH_FLIP_KEYS: more lines of its [pgflip]
# section), and LOCK_DSN for the lock sampler
story_bench_start() {
	STORY_RATE_V1=${STORY_RATE_V1:-200} STORY_RATE_V2=${STORY_RATE_V2:-100}
	STORY_RATE_ANY=${STORY_RATE_ANY:-100} STORY_CONNS=${STORY_CONNS:-4}
	export STORY_RATE_V1 STORY_RATE_V2 STORY_RATE_ANY STORY_CONNS
	[ -x "$LOADGEN" ] || make -s "$LOADGEN" || die "no load generator at $LOADGEN"
	bench_results
	bench_pg_start 200
	pg_psql -c "CREATE DATABASE bench OWNER app" >/dev/null || die "CREATE DATABASE failed"
	FLIP_ROUTES="default = public
app.app-v1* = public
canary_key = connection"
	flip_prepare pgflip "$PGFLIP" "" "${BENCH_FLIP_KEYS:-}"
	# the lock sampler logs in as the superuser: pg_stat_activity shows other
	# users' backend_type (an autovacuum worker) only to those who may see them
	LOCK_DSN="host=127.0.0.1 port=$pg_port dbname=bench user=postgres password=postgres"
}
bq() { PGPASSWORD=app_pw psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U app -d bench "$@"; }

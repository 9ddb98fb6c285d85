# Zero downtime, measured (issue 11): one run per pgroll operation kind that
# touches an existing table, under a fixed-rate load through pgflip, told as
# shell functions that bench/zero-downtime.sh (1M rows, beside a baseline and
# an adversary run, tables, CSV, plots) and tests/integration/zero_downtime.sh
# (20k rows, assertions) share. The load is tests/lib/story.sh's
# story_loadgen (build/loadgen, libpq), with each operation's SQL.
#
# The caller sources tests/lib/story.sh and this file and defines:
#   zdt_sql ARGS...   psql straight to PostgreSQL as the tables' owner, tuples only
#   zdt_ctl ARGS...   pgflip ctl on the admin socket
#   zdt_pgflip_stop   stops pgflip, if it runs
#   zdt_pgflip_start  starts pgflip on a config with `app.app-v1* = public` and
#                     `canary_key = connection` in [routes]; 1 when it fails
#   ZDT_LOG           pgflip's log file
#   ZDT_FLIP_DSN      libpq conninfo of the database through pgflip
#   ZDT_LOCK_DSN      conninfo straight to PostgreSQL for the lock sampler
#   ZDT_ADV_DSN       conninfo straight to PostgreSQL for the adversary (psql)
#   ZDT_ROWS          rows of the table          ZDT_HOLD   seconds between steps
#   ZDT_WARMUP        seconds of load before the first start (ZDT_HOLD unless set)
#   STORY_RATE_V1, STORY_RATE_V2, STORY_RATE_ANY, STORY_CONNS: the load (story.sh)
# and may set ZDT_LOCK_TIMEOUT_MS (500: the migrator's lock_timeout),
# ZDT_ADV_IDLE_S (10), ZDT_ADV_READ_S (30), ZDT_ADV_SNAPSHOT_S (20).
#
#   zdt_op NAME           sets the ZDT_* description of operation NAME; 1 if unknown
#   zdt_fresh             a new table for it (and no migration state)
#   zdt_run KIND DIR [FROM]   one run: KIND migration (the whole story), adversary
#                         (the same with the adversary during the first start) or
#                         baseline (no migration: FROM's group starts and stops at
#                         the same moments); results in DIR
#   zdt_metrics DIR       DIR/metrics from DIR's files; zdt_get DIR KEY reads one
#   zdt_series RUN DIR    the per-second CSV lines of DIR (labelled RUN)
#   zdt_table OPDIR       the table of one operation (its migration, adversary and
#                         baseline runs in OPDIR/NAME), with a verdict per target
#   zdt_rounds OPDIR      the median p99 ratio of OPDIR's rounds (OPDIR/roundN)
#   zdt_plot OPDIR        OPDIR/latency.png
#   zdt_stop_bg           stops what zdt_run left running (for the caller's trap)
#
# The migrator's sessions are known by their application_name, which starts
# with ZDT_MIGRATOR_APP ('pgflip migrate').

. "${TOP:-.}/tests/lib/awk.sh"

ZDT_LOCK_TIMEOUT_MS=${ZDT_LOCK_TIMEOUT_MS:-500}
ZDT_MIGRATOR_APP=${ZDT_MIGRATOR_APP:-pgflip migrate}
ZDT_ADV_IDLE_S=${ZDT_ADV_IDLE_S:-10}
ZDT_ADV_READ_S=${ZDT_ADV_READ_S:-30}
ZDT_ADV_SNAPSHOT_S=${ZDT_ADV_SNAPSHOT_S:-20}
ZDT_STRONG_LOCK_MS=50 # issue 11's target for a lock stronger than SHARE UPDATE EXCLUSIVE
ZDT_P99_RATIO=1.2     # issue 11's target: p99 at most 1.2 x the baseline's
ZDT_PIDS=""
# every operation kind, in the order the benchmark runs them
ZDT_OPS_ALL="add_column alter_type alter_nullable alter_default alter_check alter_unique alter_references
rename_column drop_column create_index create_unique create_check create_foreign_key create_primary_key
drop_constraint rename_table set_replica_identity"

# ------------------------------------------------------------ operations ----

# zdt_op NAME: what NAME's run needs:
#   ZDT_DESC        one line for the table
#   ZDT_YAML        the operation (a YAML list item of `operations:`)
#   ZDT_VS          its version schema (the file is 02_NAME.yaml)
#   ZDT_V2_TABLE    the table as the new version names it (items)
#   ZDT_V2_TEXT     the text column there (name; empty: none)
#   ZDT_V2_COL, ZDT_V2_VAL   a column the new version also writes, and its value
#   ZDT_EXTRA_V1, ZDT_EXTRA_V2   what else makes a row wrong through each version
#                   (an SQL condition over i and l, see story_rows_bad; @V2LIVE@
#                   stands for the v2 groups whose writes of the new version's
#                   own columns are still there: a rollback drops those columns)
#   ZDT_KEY         how the table's id is unique (PRIMARY KEY)
#   ZDT_PRE_SQL     more SQL on the new table (a constraint to drop)
#   ZDT_ANY         1: unpinned clients (app-any: qty by id) run on both versions
#   ZDT_FINAL       SQL that answers t when the final table is as the file says
zdt_op() {
	ZDT_OP=$1 ZDT_VS=public_02_$1 ZDT_V2_TABLE=items ZDT_V2_TEXT=name ZDT_V2_COL="" ZDT_V2_VAL=""
	ZDT_EXTRA_V1=false ZDT_EXTRA_V2=false ZDT_KEY="PRIMARY KEY" ZDT_PRE_SQL="" ZDT_ANY=1
	_zfk="CASE WHEN owner_id BETWEEN 1 AND 1000 THEN owner_id END" # up of a reference: dangling ones become NULL
	case $1 in
	add_column)
		ZDT_DESC="add_column score integer NOT NULL, up: qty * 10 (v2 writes qty * 10 + 7)"
		ZDT_YAML='add_column: {table: items, up: "qty * 10", column: {name: score, type: integer, nullable: false}}'
		ZDT_V2_COL=score ZDT_V2_VAL='$3 * 10 + 7'
		ZDT_EXTRA_V2="l.grp <> 'app-any' AND i.score IS DISTINCT FROM i.qty * 10 + CASE WHEN l.grp IN (@V2LIVE@) THEN 7 ELSE 0 END"
		ZDT_FINAL="SELECT attnotnull FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'score'" ;;
	alter_type)
		ZDT_DESC="alter_column qty integer -> bigint (up: qty, down: qty::integer)"
		ZDT_YAML='alter_column: {table: items, column: qty, type: bigint, up: qty, down: "qty::integer"}'
		ZDT_EXTRA_V2="pg_typeof(i.qty) <> 'bigint'::regtype"
		ZDT_FINAL="SELECT atttypid = 'bigint'::regtype FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'qty'" ;;
	alter_nullable)
		ZDT_DESC="alter_column name NOT NULL (up: coalesce(name, 'unnamed-' || id); 1 % of the rows are NULL)"
		ZDT_YAML="alter_column: {table: items, column: name, nullable: false, up: \"coalesce(name, 'unnamed-' || id)\", down: name}"
		ZDT_EXTRA_V2="i.name IS NULL"
		ZDT_FINAL="SELECT attnotnull FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'name'" ;;
	alter_default)
		ZDT_DESC="alter_column code DEFAULT 'none' (v2's inserts leave code out)"
		ZDT_YAML="alter_column: {table: items, column: code, default: \"'none'\", up: code, down: code}"
		ZDT_EXTRA_V1="l.first_op = 'insert' AND i.code IS DISTINCT FROM CASE WHEN l.first_grp LIKE 'app-v2%' THEN 'none' END"
		ZDT_EXTRA_V2=$ZDT_EXTRA_V1
		ZDT_FINAL="SELECT pg_get_expr(adbin, adrelid) LIKE '''none''%' FROM pg_attrdef WHERE adrelid = 'public.items'::regclass" ;;
	alter_check)
		ZDT_DESC="alter_column qty CHECK (qty >= 0) (up: greatest(qty, 0))"
		ZDT_YAML='alter_column: {table: items, column: qty, check: {name: items_qty_nonneg, constraint: "qty >= 0"}, up: "greatest(qty, 0)", down: qty}'
		ZDT_EXTRA_V2="i.qty < 0"
		zdt_validated items_qty_nonneg ;;
	alter_unique)
		ZDT_DESC="alter_column name UNIQUE (a copy of name, its unique index built CONCURRENTLY)"
		ZDT_YAML='alter_column: {table: items, column: name, unique: {name: items_name_key}, up: name, down: name}'
		zdt_validated items_name_key ;;
	alter_references)
		ZDT_DESC="alter_column owner_id REFERENCES owners (up: dangling ones NULL; v2 writes owner_id)"
		ZDT_YAML="alter_column: {table: items, column: owner_id, references: {name: items_owner_fk, table: owners, column: id}, up: \"$_zfk\", down: owner_id}"
		zdt_v2_owner
		zdt_validated items_owner_fk ;;
	rename_column)
		ZDT_DESC="rename_column name -> title"
		ZDT_YAML='rename_column: {table: items, from: name, to: title}'
		ZDT_V2_TEXT=title
		ZDT_FINAL="SELECT count(*) = 1 FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'title'" ;;
	drop_column)
		ZDT_DESC="drop_column name (down: 'dropped-' || id; v2 writes no text)"
		ZDT_YAML="drop_column: {table: items, column: name, down: \"'dropped-' || id\"}"
		ZDT_V2_TEXT=""
		ZDT_EXTRA_V1="l.first_op = 'insert' AND l.first_grp LIKE 'app-v2%' AND i.name IS DISTINCT FROM 'dropped-' || i.id"
		ZDT_FINAL="SELECT count(*) = 0 FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'name' AND NOT attisdropped" ;;
	create_index)
		ZDT_DESC="create_index on qty (CREATE INDEX CONCURRENTLY)"
		ZDT_YAML='create_index: {name: idx_items_qty, table: items, columns: [{column: qty}]}'
		ZDT_FINAL="SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.idx_items_qty'::regclass" ;;
	create_unique)
		ZDT_DESC="create_constraint unique on name"
		ZDT_YAML='create_constraint: {table: items, name: items_name_uq, type: unique, columns: [name], up: {name: name}, down: {name: name}}'
		zdt_validated items_name_uq ;;
	create_check)
		ZDT_DESC="create_constraint check qty >= 0"
		ZDT_YAML='create_constraint: {table: items, name: items_qty_chk, type: check, columns: [qty], check: "qty >= 0", up: {qty: "greatest(qty, 0)"}, down: {qty: qty}}'
		ZDT_EXTRA_V2="i.qty < 0"
		zdt_validated items_qty_chk ;;
	create_foreign_key)
		ZDT_DESC="create_constraint foreign_key owner_id -> owners(id) (v2 writes owner_id)"
		ZDT_YAML="create_constraint: {table: items, name: items_owner_fk, type: foreign_key, columns: [owner_id], references: {table: owners, columns: [id]}, up: {owner_id: \"$_zfk\"}, down: {owner_id: owner_id}}"
		zdt_v2_owner
		zdt_validated items_owner_fk ;;
	create_primary_key)
		ZDT_DESC="create_constraint primary_key on id (the table's id: NOT NULL UNIQUE, no primary key)"
		ZDT_YAML='create_constraint: {table: items, name: items_pkey, type: primary_key, columns: [id], up: {}, down: {}}'
		ZDT_KEY="NOT NULL UNIQUE"
		ZDT_FINAL="SELECT contype = 'p' FROM pg_constraint WHERE conname = 'items_pkey'" ;;
	drop_constraint)
		ZDT_DESC="drop_constraint items_qty_check (CHECK (qty >= 0)); down: greatest(qty, 0)"
		ZDT_YAML='drop_constraint: {table: items, name: items_qty_check, up: qty, down: "greatest(qty, 0)"}'
		ZDT_PRE_SQL="ALTER TABLE items ADD CONSTRAINT items_qty_check CHECK (qty >= 0);"
		ZDT_FINAL="SELECT count(*) = 0 FROM pg_constraint WHERE conname = 'items_qty_check'" ;;
	rename_table)
		ZDT_DESC="rename_table items -> products (no SQL runs on both: no unpinned clients)"
		ZDT_YAML='rename_table: {from: items, to: products}'
		ZDT_V2_TABLE=products ZDT_ANY=0
		ZDT_FINAL="SELECT to_regclass('public.products') IS NOT NULL AND to_regclass('public.items') IS NULL" ;;
	set_replica_identity)
		ZDT_DESC="set_replica_identity full"
		ZDT_YAML='set_replica_identity: {table: items, identity: {type: full, index: ""}}'
		ZDT_FINAL="SELECT relreplident = 'f' FROM pg_class WHERE oid = 'public.items'::regclass" ;;
	*) return 1 ;;
	esac
	zdt_v2_templates
}

# zdt_validated NAME: the final table has constraint NAME, validated
zdt_validated() { ZDT_FINAL="SELECT convalidated FROM pg_constraint WHERE conname = '$1'"; }
# zdt_v2_owner: the new version also writes owner_id (a valid owner), and
# every owner_id it sees is one or NULL
zdt_v2_owner() {
	ZDT_V2_COL=owner_id ZDT_V2_VAL='$3 % 1000 + 1'
	ZDT_EXTRA_V2="(l.grp LIKE 'app-v2%' AND i.owner_id IS DISTINCT FROM l.num % 1000 + 1) OR i.owner_id NOT BETWEEN 1 AND 1000"
}

# zdt_v2_templates: STORY_V2_* (the new version's SQL) and STORY_ANY_TABLE
# from ZDT_V2_TABLE, ZDT_V2_TEXT and ZDT_V2_COL/ZDT_V2_VAL
zdt_v2_templates() {
	_zt=$ZDT_V2_TABLE _zc="id" _zv='$1' _zs="" _zr="NULL::text"
	[ -z "$ZDT_V2_TEXT" ] || { _zc="$_zc, $ZDT_V2_TEXT" _zv="$_zv, \$2" _zs="$ZDT_V2_TEXT = \$2, " _zr=$ZDT_V2_TEXT; }
	_zc="$_zc, qty" _zv="$_zv, \$3" _zs="${_zs}qty = \$3"
	[ -z "$ZDT_V2_COL" ] || { _zc="$_zc, $ZDT_V2_COL" _zv="$_zv, $ZDT_V2_VAL" _zs="$_zs, $ZDT_V2_COL = $ZDT_V2_VAL"; }
	STORY_V2_INS="INSERT INTO $_zt ($_zc) VALUES ($_zv)"
	STORY_V2_UPD="UPDATE $_zt SET $_zs WHERE id = \$1"
	STORY_V2_READ="SELECT $_zr, qty FROM $_zt WHERE id = \$1"
	export STORY_V2_INS STORY_V2_UPD STORY_V2_READ
}

# zdt_table_sql ROWS: owners(id) 1..1000, and items(id, name, qty, owner_id,
# code) with ROWS rows: name NULL on 1 % of them, owner_id dangling (1001 to
# 1100) on about 9 %
zdt_table_sql() {
	echo "CREATE TABLE owners (id bigint PRIMARY KEY, label text);
INSERT INTO owners SELECT g, 'owner-' || g FROM generate_series(1, 1000) g;
CREATE TABLE items (id bigint $ZDT_KEY, name text, qty int NOT NULL, owner_id bigint, code text);
INSERT INTO items SELECT g, CASE WHEN g % 100 <> 0 THEN 'item-' || g END, g % 1000, g % 1100 + 1, 'c-' || g
	FROM generate_series(1, $1) g;
$ZDT_PRE_SQL"
}

# zdt_fresh: no migration state, new tables (vacuumed, analyzed)
zdt_fresh() {
	zdt_sql -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS pgflip CASCADE" \
		-c "DROP SCHEMA IF EXISTS $ZDT_VS CASCADE" -c "DROP SCHEMA IF EXISTS story CASCADE" \
		-c "DROP TABLE IF EXISTS items, products, owners CASCADE" -c "$(zdt_table_sql "$ZDT_ROWS")" \
		-c "VACUUM ANALYZE owners" -c "VACUUM ANALYZE items" >/dev/null
}

# ----------------------------------------------------------------- steps ----

zdt_us() { story_now_us; }
zdt_half() { sleep "$(awk -v s="$ZDT_HOLD" 'BEGIN { print s / 2 }')"; }
zdt_stopped() { # GROUP: until the load generator's GROUP stopped
	story_wait_stopped "$STORY_D" "$1" 60 || echo "$1 did not stop" >>"$STORY_D/errors"
}

# zdt_poll: every 100 ms, `migrate status` with the time, into status.jsonl
# (what the migrator waits for, the phases, strong_lock_ms)
zdt_poll() {
	while [ ! -f "$STORY_D/poll-stop" ]; do
		echo "$(zdt_us) $(zdt_ctl --json migrate status 2>/dev/null)"
		sleep 0.1
	done >"$STORY_D/status.jsonl"
}

# zdt_adversary: three sessions straight to PostgreSQL, started just before
# the first start: one idle in transaction holding ACCESS SHARE on the table
# (ZDT_ADV_IDLE_S), a read that holds it while it runs (ZDT_ADV_READ_S), a
# REPEATABLE READ snapshot on another table (ZDT_ADV_SNAPSHOT_S: CREATE
# INDEX CONCURRENTLY waits for it); their pids go to adversary.pids
zdt_adversary() {
	{ echo "BEGIN; SELECT count(*) FROM (SELECT 1 FROM items LIMIT 1) s;"; sleep "$ZDT_ADV_IDLE_S"; echo "COMMIT;"; } |
		PGAPPNAME=adversary-idle psql -X -q "$ZDT_ADV_DSN" >>"$STORY_D/adversary.log" 2>&1 &
	ZDT_PIDS="$ZDT_PIDS $!"
	PGAPPNAME=adversary-read psql -X -q "$ZDT_ADV_DSN" \
		-c "SELECT pg_sleep($ZDT_ADV_READ_S), count(*) FROM items" >>"$STORY_D/adversary.log" 2>&1 &
	ZDT_PIDS="$ZDT_PIDS $!"
	{ echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM owners;"; sleep "$ZDT_ADV_SNAPSHOT_S"; echo "COMMIT;"; } |
		PGAPPNAME=adversary-snapshot psql -X -q "$ZDT_ADV_DSN" >>"$STORY_D/adversary.log" 2>&1 &
	ZDT_PIDS="$ZDT_PIDS $!"
	_zi=0
	while [ $_zi -lt 50 ]; do
		zdt_sql -c "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE 'adversary-%'" \
			>"$STORY_D/adversary.pids"
		[ "$(wc -l <"$STORY_D/adversary.pids")" -ge 3 ] && break
		sleep 0.1; _zi=$((_zi + 1))
	done
	echo "adversary $(zdt_us)" >>"$STORY_D/events"
}

# zdt_start NAME: `migrate start` (ctl waits for the job), logged as NAME
zdt_start() {
	zdt_migration >"$STORY_D/02_$ZDT_OP.yaml"
	story_event "$1" zdt_ctl migrate start "$STORY_D/02_$ZDT_OP.yaml"
}
zdt_migration() { printf 'operations:\n  - %s\n' "$ZDT_YAML"; }

# zdt_ledger: a fresh copy of the run's ledger in story.ledger
zdt_ledger() {
	story_ledger zdt_sql "$STORY_D"
	zdt_sql -c "ANALYZE story.ledger" >/dev/null
}

# zdt_rows NAME GROUPS RELATION TEXTCOL EXTRA [V2LIVE]: story_rows_bad of
# GROUPS' rows through RELATION (story.ledger: zdt_ledger first), with
# EXTRA's @V2LIVE@ the groups of V2LIVE; "NAME MISSING WRONG" into the run's
# rows
zdt_rows() {
	_ztg=app-v1
	[ -z "$ZDT_V2_TEXT" ] || _ztg=app-v1,app-v2,app-v2-again
	_zx=$(echo "$5" | sed "s/@V2LIVE@/$(story_sql_list "${6:-none}")/g")
	_zout=$(story_rows_bad zdt_sql "$2" "$3" "$4" qty "$_ztg" "$_zx" 2>>"$STORY_D/bad-rows.txt")
	case $_zout in
	[0-9]*" "[0-9]*) echo "$1 $_zout" >>"$STORY_D/rows" ;;
	*) echo "$1 - -" >>"$STORY_D/rows"; echo "rows check $1 could not run (see bad-rows.txt)" >>"$STORY_D/errors" ;;
	esac
}

# the whole story of one operation (runs migration, adversary)
zdt_steps() {
	sleep "${ZDT_WARMUP:-$ZDT_HOLD}"
	[ "$1" = adversary ] && zdt_adversary
	zdt_start start1
	story_event pin zdt_ctl route app 'app-v2*' "$ZDT_VS"
	story_go go-v2
	sleep "$ZDT_HOLD"
	story_event canary zdt_ctl route canary "$ZDT_VS" 50
	sleep "$ZDT_HOLD"
	story_event promote zdt_ctl promote "$ZDT_VS"
	sleep "$ZDT_HOLD"
	story_go stop-v2
	zdt_stopped app-v2
	zdt_ledger
	zdt_rows v2-via-v1 app-v2 public.items name "$ZDT_EXTRA_V1"
	zdt_rows v2-via-v2 app-v2 "$ZDT_VS.$ZDT_V2_TABLE" "$ZDT_V2_TEXT" "$ZDT_EXTRA_V2" app-v2
	story_event rollback zdt_ctl rollback
	zdt_half
	zdt_start start2
	story_event pin2 zdt_ctl route app 'app-v2*' "$ZDT_VS"
	story_go go-v2-again
	sleep "$ZDT_HOLD"
	story_event promote2 zdt_ctl promote "$ZDT_VS"
	sleep "$ZDT_HOLD"
	story_go stop-v1
	zdt_stopped app-v1
	# complete contracts public: it waits until no route names it
	story_event unpin-v1 zdt_ctl unroute app 'app-v1*'
	zdt_ledger
	zdt_rows both-via-v1 app-v1,app-v2 public.items name "$ZDT_EXTRA_V1"
	zdt_rows both-via-v2 app-v1,app-v2 "$ZDT_VS.$ZDT_V2_TABLE" "$ZDT_V2_TEXT" "$ZDT_EXTRA_V2" none
	story_event complete zdt_ctl migrate complete
	zdt_half
	story_go stop
}

# zdt_run KIND DIR [FROM]: a new table, a new pgflip, the load, then the
# steps of KIND; waits for the load generator. In DIR: the load generator's
# txn.csv, ledger.csv, locks.csv, summary.txt; events, ctl.log, errors,
# rows, status.jsonl, pgflip.log (this run's part), lg_rc
zdt_run() {
	STORY_D=$2
	rm -rf "$STORY_D"
	mkdir -p "$STORY_D"
	: >"$STORY_D/events"
	: >"$STORY_D/rows"
	: >"$STORY_D/errors"
	# pgflip is stopped first: its route store would publish the last run's
	# routes (to a version schema that is gone) into the new state schema
	zdt_pgflip_stop
	zdt_fresh || { echo "the table could not be made" >>"$STORY_D/errors"; return 1; }
	zdt_pgflip_start || { echo "pgflip did not start" >>"$STORY_D/errors"; return 1; }
	_zlog0=$(wc -c <"$ZDT_LOG" 2>/dev/null || echo 0)
	case $1 in baseline*) STORY_V2_SQL=v1 ;; *) STORY_V2_SQL=v2 ;; esac # no v2 without a migration
	STORY_ANY_START=$ZDT_ANY
	export STORY_V2_SQL STORY_ANY_START
	STORY_ANY_TABLE=items
	[ "$ZDT_ANY" = 1 ] || STORY_ANY_TABLE=nowhere # never started
	export STORY_ANY_TABLE
	zdt_poll &
	ZDT_POLL_PID=$!
	ZDT_PIDS="$ZDT_PIDS $ZDT_POLL_PID"
	STORY_LAUNCH=$(zdt_us)
	echo "$STORY_LAUNCH" >"$STORY_D/launch_us"
	story_loadgen "$STORY_D" "$ZDT_FLIP_DSN" "$ZDT_LOCK_DSN" --keys "$ZDT_ROWS" --duration 3600
	ZDT_PIDS="$ZDT_PIDS $STORY_LG_PID"
	case $1 in
	baseline*) story_replay "$3" ;;
	*) zdt_steps "$1" ;;
	esac
	wait "$STORY_LG_PID"
	echo $? >"$STORY_D/lg_rc"
	if [ "${1#baseline}" = "$1" ]; then
		zdt_ledger
		zdt_rows final-all app-v1,app-v2,app-any,app-v2-again "$ZDT_VS.$ZDT_V2_TABLE" "$ZDT_V2_TEXT" "$ZDT_EXTRA_V2" app-v2-again
		zdt_sql -c "$ZDT_FINAL" >"$STORY_D/final" 2>&1
		zdt_sql -F ' ' -c "SELECT (SELECT count(*) FROM $ZDT_VS.$ZDT_V2_TABLE) - $ZDT_ROWS,
			count(DISTINCT id) FILTER (WHERE op = 'insert' AND status = 'commit'),
			count(DISTINCT id) FILTER (WHERE op = 'insert' AND status = 'unknown') FROM story.ledger" >"$STORY_D/counts" 2>&1
	fi
	touch "$STORY_D/poll-stop"
	wait "$ZDT_POLL_PID"
	ZDT_PIDS=""
	tail -c +"$((_zlog0 + 1))" "$ZDT_LOG" >"$STORY_D/pgflip.log" 2>/dev/null
	zdt_metrics "$STORY_D"
}

zdt_stop_bg() {
	for _zp in $ZDT_PIDS; do kill "$_zp" 2>/dev/null; done
	ZDT_PIDS=""
}

# --------------------------------------------------------------- metrics ----

# zdt_get DIR KEY: KEY's value in DIR/metrics ("-" when it has none)
zdt_get() { awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print; f = 1; exit } END { if (!f) print "-" }' "$1/metrics"; }

# zdt_lat_stats TXN...: "p50 p99 max" (ms) of every finished transaction in
# the load generator's TXN csv files, together
zdt_lat_stats() {
	awk -F, 'FNR > 1 && $8 != "" { print $8 }' "$@" | sort -n | awk '{ v[NR] = $1 }
		END { if (!NR) { print "- - -"; exit }
			i = int(NR * 0.5); if (i < NR * 0.5) i++; j = int(NR * 0.99); if (j < NR * 0.99) j++
			printf "%.2f %.2f %.2f\n", v[i] / 1000, v[j] / 1000, v[NR] / 1000 }'
}

# zdt_jobs_p99 RUN EVENTS: "P99_IN N_IN P99_OUT N_OUT P99_PRE N_PRE": the
# p99 (ms) and count of RUN's transactions scheduled while one of the
# migrator's jobs (start, rollback, complete: from ctl's send to its reply)
# ran in the run in EVENTS, at the same offset from each run's launch, of
# the others, and of those before the first job (the warm-up: the machine's
# own latency in this run, before the migrator did anything); "- 0" for a
# class with no transaction
zdt_jobs_p99() {
	awk -F, -v ev="$2/events" -v l0="$(cat "$2/launch_us")" -v l1="$(cat "$1/launch_us")" '
		BEGIN { while ((getline line < ev) > 0) { split(line, f, " ")
				if (f[1] ~ /^(start|rollback|complete)/ && f[3] ~ /^[0-9]+$/) { a[++n] = f[2] - l0; b[n] = f[3] - l0 } } }
		FNR > 1 && $8 != "" { t = $6 - l1; in_ = 0
			for (i = 1; i <= n; i++) if (t >= a[i] && t <= b[i]) { in_ = 1; break }
			if (n && t < a[1]) print "pre", $8
			print (in_ ? "in" : "out"), $8 }' "$1/txn.csv" | sort -k1,1 -k2,2n | awk '
		function flush() { if (!c) return; j = int(c * 0.99); if (j < c * 0.99) j++; r[k] = sprintf("%.2f %d", v[j] / 1000, c); c = 0 }
		function get(k) { return r[k] ? r[k] : "- 0" }
		$1 != k { flush(); k = $1 } { v[++c] = $2 } END { flush(); print get("in"), get("out"), get("pre") }'
}

# zdt_metrics DIR: DIR/metrics, one "KEY VALUE" a line:
#   failed, unsent, sqlstates    over every group (the summary)
#   zero_s, zero_groups          seconds with no commit, summed over the groups
#   p50_ms p99_ms max_ms         every transaction of every group
#   lockw_ms, lockw_detail       the longest wait of a client on a lock that a
#                                migrator's session held or queued for first
#   lockw_any_ms                 the longest wait of a client on any lock
#   rows_missing rows_wrong      summed over the checks (rows), and rows that
#                                came from nowhere (counts)
#   strong_ms, strong_step       the longest strong lock the executor reports
#   named                        the adversaries that migrate status named
#   status_wait_ms               the longest lock wait migrate status showed
#   steps_failed, final          steps that failed; the final table as planned
zdt_metrics() {
	_zd=$1
	{
		for _zk in failed unsent zero; do
			echo "$_zk $(awk -v f="$_zk" 'BEGIN { split("group conns rate sent ok failed unsent p50 p99 max lag zero lockw errors", n, " ")
				for (i in n) c[n[i]] = i } $1 ~ /^(app-|probe)/ { s += $(c[f]) } END { print s + 0 }' "$_zd/summary.txt")"
		done
		echo "sqlstates $(awk '$1 ~ /^app-/ && $NF != "-" { printf "%s%s=%s", n++ ? " " : "", $1, $NF }' "$_zd/summary.txt")"
		echo "zero_groups $(awk '$1 ~ /^app-/ && $12 > 0 { printf "%s%s:%s", n++ ? " " : "", $1, $12 }' "$_zd/summary.txt")"
		set -- $(zdt_lat_stats "$_zd/txn.csv")
		echo "p50_ms $1"; echo "p99_ms $2"; echo "max_ms $3"
		awk -F, -v m="($ZDT_MIGRATOR_APP" 'NR > 1 && $2 ~ /^app-/ {
				if ($4 > any) any = $4
				if (index($0, m) && $4 > w) { w = $4; d = $0; sub(/^[^,]*,[^,]*,[^,]*,[^,]*,/, "", d); d = $2 " " d } }
			END { printf "lockw_ms %.1f\nlockw_any_ms %.1f\nlockw_detail %s\n", w / 1000, any / 1000, d }' "$_zd/locks.csv"
		awk '$2 == "-" { bad = 1 } { m += $2; w += $3 }
			END { print "rows_missing " (bad ? "-" : m + 0); print "rows_wrong " (bad ? "-" : w + 0); print "rows_checks " NR }' "$_zd/rows"
		[ -s "$_zd/counts" ] && awk '{ x = $1 - $2; print "rows_extra " (x > $3 ? x - $3 : 0) }' "$_zd/counts"
		zdt_strong "$_zd"
		zdt_named "$_zd"
		echo "steps_failed $({ tr '\n' ';' <"$_zd/errors"; } 2>/dev/null)"
		echo "final $({ tr -d '\n' <"$_zd/final"; } 2>/dev/null)"
	} >"$_zd/metrics"
}

# zdt_strong DIR: "strong_ms N" and "strong_step S": the longest time the
# migrator held a lock stronger than SHARE UPDATE EXCLUSIVE, from its log
# lines "... strong lock held N ms ..." and migrate status's strong_lock_ms
# (strong_lock_step); "n/a" when pgflip reports neither
zdt_strong() {
	{
		awk 'match($0, /strong lock held [0-9.]+ ms/) { ms = substr($0, RSTART + 17, RLENGTH - 20); d = $0
				sub(/^.*migrate: /, "", d); print ms, "log: " d }' "$1/pgflip.log" 2>/dev/null
		awk 'match($0, /"strong_lock_ms": *[0-9.]+/) { v = substr($0, RSTART, RLENGTH); sub(/.*: */, "", v); d = "?"
				if (match($0, /"strong_lock_step": *"[^"]*"/)) { d = substr($0, RSTART, RLENGTH); sub(/^[^:]*: *"/, "", d); sub(/"$/, "", d) }
				print v, "migrate status: " d }' "$1/status.jsonl" 2>/dev/null
	} | sort -n -k1,1 | tail -n 1 | awk '{ ms = $1; $1 = ""; sub(/^ /, ""); print "strong_ms " ms; print "strong_step " $0; f = 1 }
		END { if (!f) { print "strong_ms n/a"; print "strong_step -" } }'
}

# zdt_named DIR: "named NAMES" (the adversaries whose pid migrate status
# gave as blocked_by, "none") and "status_wait_ms N"
zdt_named() {
	[ -s "$1/adversary.pids" ] || { echo "named -"; }
	[ -s "$1/adversary.pids" ] && {
		_znamed=""
		while IFS='|' read -r _zpid _zapp; do
			grep -q "\"blocked_by\":{\"pid\":$_zpid[,}]" "$1/status.jsonl" && _znamed="$_znamed${_znamed:+,}$_zapp"
		done <"$1/adversary.pids"
		echo "named ${_znamed:-none}"
	}
	echo "status_wait_ms $(sed -n 's/.*"lock_wait_ms":\([0-9]*\).*/\1/p' "$1/status.jsonl" | sort -n | tail -n 1)"
}

# ---------------------------------------------------------------- series ----

# zdt_series RUN DIR: per group and second since the launch, "RUN,GROUP,
# SECOND,COMMITS,FAILURES,P50_MS,P99_MS,MAX_MS" (by scheduled start), and
# the same over every group as group "all"
zdt_series() {
	awk -F, -v t0="$(cat "$2/launch_us")" 'NR > 1 && $8 != "" {
			s = int(($6 - t0) / 1000000); print $1 "," s "," $8 "," ($9 == "ok"); print "all," s "," $8 "," ($9 == "ok") }' \
		"$2/txn.csv" | sort -t, -k1,1 -k2,2n -k3,3n | awk -F, -v run="$1" '
		function flush(   i, j) {
			if (!n) return
			i = int(n * 0.5); if (i < n * 0.5) i++; j = int(n * 0.99); if (j < n * 0.99) j++
			printf "%s,%s,%d,%d,%d,%.2f,%.2f,%.2f\n", run, g, s, ok, n - ok, v[i] / 1000, v[j] / 1000, v[n] / 1000
			n = 0; ok = 0 }
		$1 != g || $2 != s { flush(); g = $1; s = $2 }
		{ v[++n] = $3; ok += $4 }
		END { flush() }'
}

# ----------------------------------------------------------------- table ----

# zdt_verdict OK: PASS or FAIL (OK: an awk condition), "-" when a value is "-"
zdt_verdict() { awk "BEGIN { exit !($1) }" && echo PASS || echo FAIL; }
zdt_num() { case $1 in "" | - | n/a) return 1 ;; *) return 0 ;; esac; }

# zdt_ratio A B: A / B to two decimals, "-" when either is not a number
zdt_ratio() { zdt_num "$1" && zdt_num "$2" && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }' || echo -; }

# zdt_table_row LABEL LIMIT MIG ADV BASE VERDICT_MIG VERDICT_ADV
zdt_table_row() { printf '  %-44s %-16s %-16s %-12s %-18s %-5s %s\n' "$@"; }

# zdt_check KIND VALUE BASE: the verdict of one target (KIND failed, lockw,
# p99, max, zero, rows, strong, named) for VALUE against BASE (baseline's)
zdt_check() {
	case $1 in
	zero_is_0) zdt_num "$2" || { echo -; return; }; zdt_verdict "$2 == 0" ;;
	lockw) zdt_num "$2" || { echo -; return; }; zdt_verdict "$2 <= $ZDT_LOCK_TIMEOUT_MS" ;;
	p99) zdt_num "$2" && zdt_num "$3" || { echo -; return; }; zdt_verdict "$2 <= $ZDT_P99_RATIO * $3" ;;
	max) zdt_num "$2" && zdt_num "$3" || { echo -; return; }; zdt_verdict "$2 <= $3 + $ZDT_LOCK_TIMEOUT_MS" ;;
	strong) zdt_num "$2" || { echo n/a; return; }; zdt_verdict "$2 <= $ZDT_STRONG_LOCK_MS" ;;
	named) case $2 in - | "") echo - ;; none) echo FAIL ;; *) echo PASS ;; esac ;;
	esac
}

# zdt_table OPDIR: the table of the operation in OPDIR (runs migration,
# adversary, baseline: whichever were run), to stdout
zdt_table() {
	_zm=$1/migration _za=$1/adversary _zb=$1/baseline
	for _zr in "$_zm" "$_za" "$_zb"; do [ -f "$_zr/metrics" ] || { mkdir -p "$_zr"; : >"$_zr/metrics"; }; done
	_zg() { zdt_get "$1" "$2"; }
	echo "== $ZDT_OP: $ZDT_DESC"
	zdt_table_row target limit migration adversary baseline mig adv
	for _zk in "failed:1 failed transactions" "unsent:1 transactions due but not sent"; do
		zdt_table_row "${_zk#*:}" 0 "$(_zg "$_zm" ${_zk%%:*})" "$(_zg "$_za" ${_zk%%:*})" "$(_zg "$_zb" ${_zk%%:*})" \
			"$(zdt_check zero_is_0 "$(_zg "$_zm" ${_zk%%:*})")" "$(zdt_check zero_is_0 "$(_zg "$_za" ${_zk%%:*})")"
	done
	for _zr in "$_zm" "$_za" "$_zb"; do
		[ "$(_zg "$_zr" sqlstates)" = "" ] || [ "$(_zg "$_zr" sqlstates)" = - ] || echo "    SQLSTATEs ($(basename "$_zr")): $(_zg "$_zr" sqlstates)"
	done
	zdt_table_row "2 longest client wait on the migrator (ms)" "<= $ZDT_LOCK_TIMEOUT_MS" "$(_zg "$_zm" lockw_ms)" "$(_zg "$_za" lockw_ms)" \
		"-" "$(zdt_check lockw "$(_zg "$_zm" lockw_ms)")" "$(zdt_check lockw "$(_zg "$_za" lockw_ms)")"
	for _zr in "$_zm" "$_za"; do
		[ "$(_zg "$_zr" lockw_detail)" = "" ] || [ "$(_zg "$_zr" lockw_detail)" = - ] || echo "    longest ($(basename "$_zr")): $(_zg "$_zr" lockw_detail)"
	done
	zdt_table_row "  (any lock, any holder, ms)" "" "$(_zg "$_zm" lockw_any_ms)" "$(_zg "$_za" lockw_any_ms)" "$(_zg "$_zb" lockw_any_ms)" "" ""
	_zbp50=$(_zg "$_zb" p50_ms) _zbp99=$(_zg "$_zb" p99_ms) _zbmax=$(_zg "$_zb" max_ms)
	if [ -s "$1/baseline2/txn.csv" ] && [ -s "$_zb/txn.csv" ]; then
		# two baseline runs (before and after the adversary's): the
		# baseline is every transaction of both, and their p99s side by
		# side show how much the machine alone moves it
		set -- $(zdt_lat_stats "$_zb/txn.csv" "$1/baseline2/txn.csv")
		_zbp50=$1 _zbp99=$2 _zbmax=$3
		set -- $(zdt_lat_stats "$_zb/txn.csv") $(zdt_lat_stats "$(dirname "$_zb")/baseline2/txn.csv")
		zdt_table_row "  (baseline: two runs, p99 of each)" "" "" "" "$2 / $5" "" ""
		zdt_table_row "  (baseline run 2 / run 1, p99)" "" "" "" "$(awk -v a="$2" -v b="$5" 'BEGIN { printf "%.2f", b / a }')" "" ""
	fi
	zdt_table_row "3 p50 latency (ms)" "" "$(_zg "$_zm" p50_ms)" "$(_zg "$_za" p50_ms)" "$_zbp50" "" ""
	zdt_table_row "3 p99 latency (ms)" "<= $ZDT_P99_RATIO x base" "$(_zg "$_zm" p99_ms)" "$(_zg "$_za" p99_ms)" "$_zbp99" \
		"$(zdt_check p99 "$(_zg "$_zm" p99_ms)" "$_zbp99")" "$(zdt_check p99 "$(_zg "$_za" p99_ms)" "$_zbp99")"
	zdt_table_row "  (p99 / baseline's)" "" "$(zdt_ratio "$(_zg "$_zm" p99_ms)" "$_zbp99")" \
		"$(zdt_ratio "$(_zg "$_za" p99_ms)" "$_zbp99")" "" "" ""
	# where the p99 goes: while one of the migrator's jobs ran (start with
	# its backfill, rollback, complete), and the rest of the run; the
	# baseline at the seconds of the migration run's jobs
	if [ -s "$_zm/events" ]; then
		_zj() { [ -s "$1/txn.csv" ] && [ -s "$2/events" ] && zdt_jobs_p99 "$1" "$2" || echo "- 0 - 0 - 0"; }
		set -- $(_zj "$_zm" "$_zm") $(_zj "$_za" "$_za") $(_zj "$_zb" "$_zm")
		zdt_table_row "  (p99 while a job ran / the rest, ms)" "" "$1 / $3" "$7 / $9" "${13} / ${15}" "" ""
		# the warm-up: a run whose p99 is already high here is slow
		# because of the machine, not of the migrator
		zdt_table_row "  (p99 before the first start, ms)" "" "$5" "${11}" "${17}" "" ""
	fi
	zdt_table_row "3 max latency (ms)" "<= base + $ZDT_LOCK_TIMEOUT_MS" "$(_zg "$_zm" max_ms)" "$(_zg "$_za" max_ms)" "$_zbmax" \
		"$(zdt_check max "$(_zg "$_zm" max_ms)" "$_zbmax")" "$(zdt_check max "$(_zg "$_za" max_ms)" "$_zbmax")"
	zdt_table_row "3 seconds with zero commits" 0 "$(_zg "$_zm" zero)" "$(_zg "$_za" zero)" "$(_zg "$_zb" zero)" \
		"$(zdt_check zero_is_0 "$(_zg "$_zm" zero)")" "$(zdt_check zero_is_0 "$(_zg "$_za" zero)")"
	for _zk in missing wrong extra; do
		zdt_table_row "4 rows $_zk" 0 "$(_zg "$_zm" rows_$_zk)" "$(_zg "$_za" rows_$_zk)" "" \
			"$(zdt_check zero_is_0 "$(_zg "$_zm" rows_$_zk)")" "$(zdt_check zero_is_0 "$(_zg "$_za" rows_$_zk)")"
	done
	zdt_table_row "5 longest strong lock (ms)" "<= $ZDT_STRONG_LOCK_MS" "$(_zg "$_zm" strong_ms)" "$(_zg "$_za" strong_ms)" "" \
		"$(zdt_check strong "$(_zg "$_zm" strong_ms)")" "$(zdt_check strong "$(_zg "$_za" strong_ms)")"
	for _zr in "$_zm" "$_za"; do
		[ "$(_zg "$_zr" strong_step)" = - ] || echo "    longest ($(basename "$_zr")): $(_zg "$_zr" strong_step)"
	done
	zdt_table_row "6 migrate status named the adversary" named "" "$(_zg "$_za" named)" "" "" "$(zdt_check named "$(_zg "$_za" named)")"
	zdt_table_row "  (longest lock wait in migrate status, ms)" "" "$(_zg "$_zm" status_wait_ms)" "$(_zg "$_za" status_wait_ms)" "" "" ""
	zdt_table_row "steps that failed" none "$(_zg "$_zm" steps_failed)" "$(_zg "$_za" steps_failed)" "$(_zg "$_zb" steps_failed)" "" ""
	zdt_table_row "final table as planned" t "$(_zg "$_zm" final)" "$(_zg "$_za" final)" "" "" ""
}

# zdt_rounds OPDIR: the table's row of the p99 ratio over rounds: each
# round's migration run over its own baseline run (round 1 in OPDIR, round
# N in OPDIR/roundN, N = 2, 3...), their median (of an even count, the mean
# of the middle two) and its verdict; nothing with fewer than two rounds
# that have both p99s
zdt_rounds() {
	_zrs="" _zd=$1 _zn=1
	while [ -f "$_zd/migration/metrics" ] && [ -f "$_zd/baseline/metrics" ]; do
		_zr=$(zdt_ratio "$(zdt_get "$_zd/migration" p99_ms)" "$(zdt_get "$_zd/baseline" p99_ms)")
		[ "$_zr" = - ] || _zrs="$_zrs $_zr" # a round without both p99s does not count
		_zn=$((_zn + 1)) _zd=$1/round$_zn
	done
	set -- $_zrs
	[ $# -ge 2 ] || return 0
	_zmed=$(awk -v l="$*" "$AWK_MEDIAN"' BEGIN { printf "%.2f", median(l) }')
	zdt_table_row "3 p99 / baseline's, median of $# rounds" "<= $ZDT_P99_RATIO" "$_zmed" "-" "" "$(zdt_check p99 "$_zmed" 1)" "-"
	echo "    per round (migration / its round's baseline): $*"
}

# ------------------------------------------------------------------ plot ----

# zdt_plot OPDIR: OPDIR/latency.png from OPDIR/series.csv: per second, p99
# and max of every group together, of the migration run (top) and the
# adversary run (bottom) against the baseline's p99, with the steps of
# each run marked; 1 when gnuplot fails (its message in OPDIR/gnuplot.err)
zdt_plot() {
	_zo=$1 _zp=""
	for _zr in migration adversary baseline; do
		awk -F, -v r="$_zr" '$1 == r && $2 == "all" { print $3, $7, $8, $4 }' "$_zo/series.csv" >"$_zo/$_zr.dat"
	done
	_zn=0
	for _zr in migration adversary; do [ -s "$_zo/$_zr.dat" ] && _zn=$((_zn + 1)); done
	[ $_zn -gt 0 ] || return 0
	{
		echo "set terminal pngcairo size 1400,$((_zn * 420)) font ',10'"
		echo "set output '$_zo/latency.png'"
		echo "set termoption noenhanced"
		echo "set multiplot layout $_zn,1 title '$ZDT_OP: $(echo "$ZDT_DESC" | tr -d "'") - $ZDT_ROWS rows, latency per second of every client transaction'"
		echo "set logscale y; set grid; set xlabel 'seconds since the load started'; set ylabel 'latency (ms)'"
		echo "set key outside right top vertical"
		for _zr in migration adversary; do
			[ -s "$_zo/$_zr.dat" ] || continue
			echo "unset arrow; unset label; unset object"
			# each step: a dashed line when it was sent; the jobs (start,
			# rollback, complete) shaded until ctl's reply
			awk -v t0="$(cat "$_zo/$_zr/launch_us")" '$1 != "touch" && $2 ~ /^[0-9]+$/ { x = ($2 - t0) / 1e6
				printf "set arrow from %.2f, graph 0 to %.2f, graph 1 nohead lc rgb \"#888888\" dt 2\n", x, x
				printf "set label \"%s\" at %.2f, graph 0.97 rotate by 90 right font \",8\"\n", $1, x + 0.1
				if ($1 ~ /^(start|rollback|complete)/ && $3 ~ /^[0-9]+$/)
					printf "set object rect from %.2f, graph 0 to %.2f, graph 1 fc rgb \"#f0e0c0\" fs solid 0.5 noborder behind\n", x, ($3 - t0) / 1e6 }' \
				"$_zo/$_zr/events"
			echo "set title '$_zr run'"
			_zbase=""
			[ -s "$_zo/baseline.dat" ] && _zbase=", '$_zo/baseline.dat' using 1:2 with lines lw 1 lc rgb '#2ca02c' title 'baseline p99'"
			echo "plot '$_zo/$_zr.dat' using 1:3 with lines lw 1 lc rgb '#d62728' title '$_zr max', '$_zo/$_zr.dat' using 1:2 with lines lw 2 lc rgb '#1f77b4' title '$_zr p99'$_zbase"
		done
		echo "unset multiplot"
	} >"$_zo/latency.gp"
	gnuplot "$_zo/latency.gp" 2>"$_zo/gnuplot.err"
}

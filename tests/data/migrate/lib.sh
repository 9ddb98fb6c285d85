# Helpers for the migration integration tests (tests/integration/migrate_*.sh).
# Sourced after tests/lib/check.sh; uses PG_SOCK, PG_PORT, TOP, PGFLIP, T_DIR.

# mig ARGS...: `pgflip migrate ARGS` (the stand-alone build/tests/it_migrate when
# build/pgflip is missing)
mig() {
	if [ -x "$TOP/$PGFLIP" ]; then
		"$TOP/$PGFLIP" migrate --no-progress "$@"
	else
		"$TOP/${BUILD:-build}/tests/it_migrate" --no-progress "$@"
	fi
}

# mig_bg LOG ARGS...: mig ARGS in the background, output to LOG; MIG_PID is
# the migrator's own pid (so that kill -9 reaches it, not a subshell)
mig_bg() {
	_log=$1; shift
	if [ -x "$TOP/$PGFLIP" ]; then
		"$TOP/$PGFLIP" migrate --no-progress "$@" >"$_log" 2>&1 &
	else
		"$TOP/${BUILD:-build}/tests/it_migrate" --no-progress "$@" >"$_log" 2>&1 &
	fi
	MIG_PID=$!
}

# backfill_done MIGRATION TABLE: rows of TABLE backfilled so far by MIGRATION
backfill_done() {
	q "SELECT coalesce((backfill -> '$2' ->> 'done')::int, (SELECT sum((r ->> 'done')::int) FROM
		jsonb_array_elements(backfill -> '$2' -> 'ranges') r), 0) FROM pgflip.migrations WHERE name = '$1'" 2>/dev/null
}

# mig_kill_after MIGRATION TABLE ROWS: waits (30 s at most) until the
# migrator started by mig_bg has backfilled ROWS rows of TABLE, then kills it
# with -9 (a crash: no cleanup runs)
mig_kill_after() {
	_i=0
	while [ $_i -lt 600 ]; do
		_d=$(backfill_done "$1" "$2"); [ -n "$_d" ] && [ "$_d" -ge "$3" ] && break
		kill -0 "$MIG_PID" 2>/dev/null || break
		sleep 0.05; _i=$((_i + 1))
	done
	kill -9 "$MIG_PID" 2>/dev/null
	wait "$MIG_PID" 2>/dev/null
}

# examples_copy SRC: copies pgroll's examples from SRC to $T_DIR/examples and
# prints that folder. One change: example 35's down names event_name, a
# column of the pgroll versions whose alter_column could rename; its column
# stays name, and start refuses a down that does not resolve.
examples_copy() {
	rm -rf "$T_DIR/examples" && cp -r "$1" "$T_DIR/examples" &&
		sed -i 's/^      down: event_name$/      down: name/' "$T_DIR/examples/35_alter_column_multiple.yaml" &&
		grep -q '^      down: name$' "$T_DIR/examples/35_alter_column_multiple.yaml" &&
		echo "$T_DIR/examples"
}

# mig_db NAME: (re)creates database NAME and points libpq's environment at it
mig_db() {
	pg_psql -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1
	pg_psql -d postgres -c "CREATE DATABASE $1" >/dev/null
	export PGHOST="$PG_SOCK" PGPORT="$PG_PORT" PGUSER=postgres PGDATABASE="$1"
}

# mig_base_t DB ROWS: database DB (mig_db) holding table t (id integer
# primary key, v text), made by migration $T_DIR/m/01_base.yaml and completed
# (version schema public_01_base), with ROWS rows (g, 'v' || g)
mig_base_t() {
	mig_db "$1"
	mkdir -p "$T_DIR/m"
	cat >"$T_DIR/m/01_base.yaml" <<'EOF'
operations:
  - create_table:
      name: t
      columns: [{name: id, type: integer, pk: true}, {name: v, type: text}]
EOF
	step "base" mig start "$T_DIR/m/01_base.yaml" --complete
	q "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, $2) g" >/dev/null
}

mig_drop_db() {
	pg_psql -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1
}

# q SQL: one query, tuples only
q() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$*" 2>&1; }

# qs SCHEMA SQL: SQL with search_path = SCHEMA (as the proxy sets it)
qs() {
	_s=$1; shift
	psql -X -qAt -v ON_ERROR_STOP=1 -c "SET search_path = $_s" -c "$*" 2>&1
}

# fails SCHEMA SQL: true when SQL fails
fails() { ! qs "$@" >/dev/null 2>&1; }

# leftovers: count of pgflip temporary objects (columns, functions, triggers,
# constraints, relations) in the database
leftovers() {
	q "SELECT (SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
	     JOIN pg_namespace n ON n.oid = c.relnamespace
	     WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attname LIKE '\\_pgflip%' AND NOT a.attisdropped)
	 + (SELECT count(*) FROM pg_proc WHERE proname LIKE '\\_pgflip%')
	 + (SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\\_pgflip%')
	 + (SELECT count(*) FROM pg_constraint WHERE conname LIKE '\\_pgflip%')
	 + (SELECT count(*) FROM pg_class WHERE relname LIKE '\\_pgflip%')"
}

# vschemas: the version schemas (and public), comma separated
vschemas() { q "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname LIKE 'public%'"; }

# columns TABLE: physical columns of public.TABLE in order
columns() {
	q "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
	   WHERE attrelid = 'public.$1'::regclass AND attnum > 0 AND NOT attisdropped"
}

# step NAME CMD...: runs a pgflip command as a test
step() {
	_n=$1; shift
	if "$@" >"$T_DIR/step.out" 2>&1; then ok "$_n"; else not_ok "$_n"; sed 's/^/    # /' "$T_DIR/step.out"; fi
}

# cycle SCN FILE: start FILE, run SCN_started, rollback, SCN_rolled_back,
# start again, complete, SCN_completed, then the generic checks
cycle() {
	# (check/step/expect_eq use their own variables; keep ours apart)
	cy_scn=$1 cy_file=$2 cy_name=$(basename "$2" .yaml)
	step "$cy_scn: start $cy_name" mig start "$cy_file"
	# a server WARNING is said (exec.c); none comes from pgflip's own SQL
	expect_no_match "$cy_scn: start got no server WARNING" "$(cat "$T_DIR/step.out")" "*server WARNING*"
	"${cy_scn}_started"
	step "$cy_scn: rollback $cy_name" mig rollback
	expect_eq "$cy_scn: rollback leaves no temporary objects" "$(leftovers)" 0
	"${cy_scn}_rolled_back"
	step "$cy_scn: start $cy_name again" mig start "$cy_file"
	step "$cy_scn: complete $cy_name" mig complete
	expect_no_match "$cy_scn: complete got no server WARNING" "$(cat "$T_DIR/step.out")" "*server WARNING*"
	expect_eq "$cy_scn: complete leaves no temporary objects" "$(leftovers)" 0
	expect_eq "$cy_scn: latest is the new version" "$(mig latest)" "public_$cy_name"
	"${cy_scn}_completed"
}

base() { # base SCN YAML: applies 01_base of scenario SCN
	mkdir -p "$T_DIR/$1"
	cat >"$T_DIR/$1/01_base.yaml"
	mig_db "mig_op_$1"
	step "$1: base migration" mig start "$T_DIR/$1/01_base.yaml" --complete
}

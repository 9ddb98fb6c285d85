#!/bin/sh
# The `pgflip migrate` command line: plan without a database, start --dry-run,
# migrate DIR, status, latest, one active migration at a time, exit statuses
# and one-line reasons.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

EX="$TOP/../shared/pgroll-format/examples"
mkdir -p "$T_DIR/m"
cat >"$T_DIR/m/01_base.yaml" <<'EOF'
operations:
  - create_table:
      name: items
      columns: [{name: id, type: integer, pk: true}, {name: name, type: text}]
EOF
cat >"$T_DIR/m/02_desc.json" <<'EOF'
{"operations": [{"add_column": {"table": "items", "up": "upper(name)",
  "column": {"name": "description", "type": "text", "nullable": true}}}]}
EOF
cat >"$T_DIR/bad.yaml" <<'EOF'
operations:
  - add_column:
      table: items
      column: {name: x, type: [text]}
EOF

# plan: no database needed (libpq pointed at nothing), earlier files give the tables
out=$(PGHOST=/nonexistent PGPORT=1 mig plan "$T_DIR/m/02_desc.json" 2>&1); rc=$?
expect_eq "plan: exit 0 without a database" "$rc" 0
expect_match "plan: start section" "$out" "*-- start*ADD COLUMN \"_pgflip_new_description\" text*"
expect_match "plan: complete and rollback sections" "$out" "*-- complete*RENAME COLUMN \"_pgflip_new_description\" TO \"description\"*-- rollback*DROP COLUMN IF EXISTS \"_pgflip_new_description\"*"
expect_match "plan: chained the earlier file" "$out" "*previous: public_01_base*"
out=$(mig plan "$T_DIR/bad.yaml" 2>&1); rc=$?
expect_eq "plan: bad file exits 1" "$rc" 1
expect_eq "plan: one-line reason with path and line" "$out" "pgflip migrate: $T_DIR/bad.yaml:4: operations[0].add_column.column.type: expected string, got array"
if [ -d "$EX" ]; then
	out=$(mig plan "$EX/35_alter_column_multiple.yaml" 2>/dev/null); rc=$?
	expect_eq "plan: example 35 plans from the earlier examples" "$rc" 0
	expect_match "plan: example 35 copies the column" "$out" "*ADD COLUMN \"_pgflip_new_name\" text*"
fi

# usage errors
mig >/dev/null 2>&1; expect_eq "usage: no command exits 2" "$?" 2
mig frobnicate >/dev/null 2>&1; expect_eq "usage: unknown command exits 2" "$?" 2
mig start >/dev/null 2>&1; expect_eq "usage: start without FILE exits 2" "$?" 2
mig --lock-timeout abc status >/dev/null 2>&1; expect_eq "usage: bad --lock-timeout exits 2" "$?" 2
out=$(PGHOST=/nonexistent PGPORT=1 mig status 2>&1); rc=$?
expect_eq "no server: exit 1" "$rc" 1
expect_eq "no server: one line" "$(echo "$out" | wc -l)" 1

# a version schema that could not be a route (conf_route_schema_check):
# refused before the database is touched, in plan and in start
cat >"$T_DIR/03-Bad.yaml" <<'EOF'
operations:
  - create_table:
      name: t
      columns: [{name: id, type: integer, pk: true}]
EOF
{ echo "version_schema: public"; cat "$T_DIR/03-Bad.yaml"; } >"$T_DIR/04_public.yaml"
why_bad="$T_DIR/03-Bad.yaml: version schema \"public_03-Bad\" (schema \"public\" + \"_\" + migration name \"03-Bad\") cannot be a route: invalid schema name \"public_03-Bad\": a route must be a lower-case identifier ([a-z_][a-z0-9_\$]*, at most 63 bytes); set version_schema or rename the migration"
out=$(mig --no-chain plan "$T_DIR/03-Bad.yaml" 2>&1); rc=$?
expect_eq "plan: version schema not a route" "$rc:$out" "1:pgflip migrate: $why_bad"
mig_db mig_cli_vschema
out=$(mig start "$T_DIR/03-Bad.yaml" 2>&1); rc=$?
expect_eq "start: version schema not a route: refused" "$rc:$out" "1:pgflip migrate: $why_bad"
out=$(mig start "$T_DIR/04_public.yaml" 2>&1); rc=$?
expect_eq "start: version_schema = the tables' schema: refused" "$rc:$out" \
	"1:pgflip migrate: $T_DIR/04_public.yaml: version_schema \"public\" is the schema of the tables: starting the migration would drop it"
expect_eq "start: version schema refused: nothing created" \
	"$(q "SELECT count(*) FROM pg_namespace WHERE nspname IN ('pgflip', 'public_03-Bad')")" 0

mig_db mig_cli
step "init" mig init
step "init is idempotent" mig init
# dry run: prints the plan, changes nothing
out=$(mig start --dry-run "$T_DIR/m/01_base.yaml" 2>&1); rc=$?
expect_eq "dry-run: exit 0" "$rc" 0
expect_match "dry-run: prints SQL" "$out" "*CREATE TABLE \"public\".\"items\"*"
expect_eq "dry-run: created nothing" "$(q "SELECT count(*) FROM pg_class WHERE relname = 'items'")/$(q "SELECT count(*) FROM pgflip.migrations")" "0/0"

step "start base" mig --schema public start "$T_DIR/m/01_base.yaml"
out=$(mig start "$T_DIR/m/02_desc.json" 2>&1); rc=$?
expect_eq "one active migration: second start refused" "$rc" 1
expect_eq "one active migration: reason" "$out" "pgflip migrate: migration 01_base is active in schema public; complete or roll it back first"
expect_match "status: active" "$(mig status)" "01_base	active	version_schema=public_01_base	parent=-*"
step "complete base" mig complete
out=$(mig start "$T_DIR/m/01_base.yaml" 2>&1); rc=$?
expect_eq "completed migration cannot start again" "$rc:$out" "1:pgflip migrate: migration 01_base is already complete in schema public"
out=$(mig complete 2>&1); rc=$?
expect_eq "complete without an active migration" "$rc:$out" "1:pgflip migrate: no active migration in schema public"
step "JSON migration file" mig start --complete "$T_DIR/m/02_desc.json"
expect_match "status: history with parents" "$(mig status)" "*02_desc	complete	version_schema=public_02_desc	parent=01_base*"

# migrate DIR: every pending file, in name order, started and completed
if [ -d "$EX" ]; then
	mig_db mig_cli_dir
	EXC=$(examples_copy "$EX")
	step "migrate DIR applies the examples" mig migrate "$EXC"
	expect_eq "migrate DIR: latest" "$(mig latest)" "public_40_create_enum_type"
	expect_eq "migrate DIR: all complete" "$(q "SELECT count(*) FILTER (WHERE status = 'complete') || '/' || count(*) FROM pgflip.migrations")" "40/40"
	expect_eq "migrate DIR: no temporary objects" "$(leftovers)" 0
	out=$(mig migrate "$EXC" 2>&1); rc=$?
	expect_eq "migrate DIR again: nothing to do" "$rc" 0
	expect_match "migrate DIR again: reports it" "$out" "*0 migration(s) applied, 40 already complete*"
	mig_drop_db mig_cli_dir
fi
mig_drop_db mig_cli

#!/bin/sh
# Wrong up/down expressions are refused before start changes anything: an
# unknown function, a missing column. An event trigger records every DDL
# statement: none may run (pgflip's IF NOT EXISTS check of its own state
# schema aside), no state row is written, and the error names the operation
# and the expression. Expressions that are right must pass: a down written
# against the new column's type, an up using a function that a raw sql
# operation of the same file creates (checked once that SQL ran, before the
# sync trigger goes live; a wrong one there never leaves a trigger behind).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

mig_base_t mig_check_expr 10
q "CREATE TABLE public.ddl_log (tag text, query text);
   CREATE FUNCTION public.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS \$\$
   BEGIN INSERT INTO public.ddl_log VALUES (tg_tag, current_query()); END \$\$;
   CREATE EVENT TRIGGER log_ddl ON ddl_command_start EXECUTE FUNCTION public.log_ddl()" >/dev/null
ddl_statements() { q "SELECT count(*) FROM public.ddl_log WHERE query NOT LIKE '%CREATE SCHEMA IF NOT EXISTS pgflip%'"; }
shape() { echo "$(columns t) $(vschemas) $(leftovers)"; }
before=$(shape)

# refused NAME FILE GLOB: start FILE fails before any change with an error matching GLOB
refused() {
	out=$(mig start "$2" 2>&1); rc=$?
	expect_eq "$1: start fails" "$rc" 1
	expect_match "$1: the error names the operation and the expression" "$out" "$3"
	expect_eq "$1: no DDL ran" "$(ddl_statements)" 0
	expect_eq "$1: tables and schemas unchanged" "$(shape)" "$before"
	expect_eq "$1: no state row" "$(q "SELECT count(*) FROM pgflip.migrations WHERE name = '$(basename "$2" .yaml)'")" 0
}

cat >"$T_DIR/m/02_fn.yaml" <<'EOF'
operations:
  - add_column: {table: t, up: "no_such_function(v)", column: {name: w, type: text}}
EOF
refused "unknown function" "$T_DIR/m/02_fn.yaml" \
	"*02_fn.yaml: operations\[0\].add_column: up expression \"no_such_function(v)\" on table \"t\": ERROR: *function no_such_function(text) does not exist*"

cat >"$T_DIR/m/02_col.yaml" <<'EOF'
operations:
  - add_column: {table: t, up: "upper(v)", column: {name: u, type: text}}
  - drop_column: {table: t, column: v, down: "nope || 'x'"}
EOF
refused "missing column" "$T_DIR/m/02_col.yaml" \
	"*02_col.yaml: operations\[1\].drop_column: down expression \"nope || 'x'\" on table \"t\": ERROR: *column \"nope\" does not exist*"
expect_eq "old-version writes work" "$(qs public_01_base "INSERT INTO t VALUES (11, 'v11') RETURNING id")" 11

# right ones pass: down reads the new column with its new type
cat >"$T_DIR/m/02_type.yaml" <<'EOF'
operations:
  - alter_column: {table: t, column: v, type: integer, up: "length(v)", down: "repeat('x', v)"}
EOF
step "a down on the new type passes" mig start "$T_DIR/m/02_type.yaml"
qs public_02_type "INSERT INTO t VALUES (12, 3)" >/dev/null
expect_eq "down works for new-version writers" "$(qs public_01_base "SELECT v FROM t WHERE id = 12")" "xxx"
step "rollback 02_type" mig rollback

# a function made by a raw sql operation of the same file
cat >"$T_DIR/m/02_sqlfn.yaml" <<'EOF'
operations:
  - sql:
      up: "CREATE FUNCTION public.shout(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper($1) || '!' $$"
      down: "DROP FUNCTION public.shout(text)"
  - add_column: {table: t, up: "shout(v)", column: {name: s, type: text}}
EOF
step "an up using a function of an earlier sql operation passes" mig start "$T_DIR/m/02_sqlfn.yaml"
expect_eq "its backfill used it" "$(qs public_02_sqlfn "SELECT s FROM t WHERE id = 2")" "V2!"
step "rollback 02_sqlfn" mig rollback

# a wrong one after a raw sql operation: found before the sync trigger exists
q "TRUNCATE public.ddl_log" >/dev/null
cat >"$T_DIR/m/02_late.yaml" <<'EOF'
operations:
  - sql: {up: "CREATE TABLE public.side (x int)", down: "DROP TABLE public.side"}
  - add_column: {table: t, up: "no_such_function(v)", column: {name: z, type: text}}
EOF
out=$(mig start "$T_DIR/m/02_late.yaml" 2>&1); rc=$?
expect_eq "after raw sql: start fails" "$rc" 1
expect_match "after raw sql: the error names the operation and the expression" "$out" \
	"*start of 02_late failed: step * (operations\[1\].add_column: up expression \"no_such_function(v)\" on table \"t\"): ERROR: *function no_such_function(text) does not exist*"
expect_eq "after raw sql: no sync trigger was ever created" "$(q "SELECT count(*) FROM public.ddl_log WHERE tag = 'CREATE TRIGGER'")" 0
expect_eq "after raw sql: rolled back to the old shape" "$(shape) $(q "SELECT to_regclass('public.side')")" "$before "
mig_drop_db mig_check_expr

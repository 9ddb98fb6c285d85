#!/bin/sh
# `pgflip migrate lint` on the command line: findings with file, line, rule,
# lock and fix; exit 1 on an error, 0 on warnings only; --format json; a
# folder; pgroll's examples (no error); bad input. Then start: refused on a
# lint error, run with --force, warnings let through. (Each rule's own cases are
# in tests/unit/test_migrate_lint.c.)
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

D="$TOP/tests/data/convert"
EX="$TOP/../shared/pgroll-format/examples"

out=$(mig lint "$D/alembic_0002_profile.sql" 2>&1); rc=$?
expect_eq "lint: raw SQL with errors exits 1" "$rc" 1
expect_match "lint: the index finding with its line, lock and fix" "$out" \
	"*alembic_0002_profile.sql:9: error index-not-concurrent: CREATE INDEX ix_posts_user_id ON posts: CREATE INDEX holds a SHARE lock on the table for the whole build*Fix: CREATE INDEX CONCURRENTLY*"
expect_match "lint: the rename" "$out" "*alembic_0002_profile.sql:11: error raw-rename: ALTER TABLE posts RENAME COLUMN body TO content*"
expect_match "lint: the constraint" "$out" "*alembic_0002_profile.sql:13: error constraint-not-valid:*ACCESS EXCLUSIVE*"
expect_match "lint: the missing lock_timeout" "$out" "*alembic_0002_profile.sql:5: warning lock-timeout: ALTER TABLE users before any SET lock_timeout*"
expect_match "lint: the summary" "$out" "*3 error(s), 1 warning(s)"
out=$(mig lint "$D/alembic_0002_profile.yaml" 2>&1); rc=$?
expect_eq "lint: its conversion has no finding, exit 0" "$rc $out" "0 0 error(s), 0 warning(s)"
out=$(mig lint "$D/django_0001_initial.yaml" 2>&1); rc=$?
expect_eq "lint: warnings only exit 0" "$rc" 0
expect_match "lint: the varchar warning on the type's line" "$out" "*django_0001_initial.yaml:15: warning varchar-length: column library_author.name is varchar(100)*"
out=$(mig lint --format json "$D/type_change.yaml" 2>&1); rc=$?
expect_eq "lint --format json: exit 1 on errors" "$rc" 1
expect_match "lint --format json: findings" "$out" '*"file": "*type_change.yaml",*"line": 8,*"rule": "placeholder",*"severity": "error",*"effect": *"fix": *"errors": 2,*"warnings": 1*'
out=$(mig lint "$D" 2>&1); rc=$?
expect_eq "lint DIR: exit 1 (errors in the ORM files)" "$rc" 1
expect_match "lint DIR: every file, the unparsable one as a finding with its line" "$out" \
	"*alembic_0001_base.sql*bad_syntax.sql:3: error sql-syntax: syntax error at or near \"TABEL\"*type_change.yaml:15*"
if [ -d "$EX" ]; then
	out=$(mig lint "$EX" 2>&1); rc=$?
	expect_eq "lint: pgroll's examples have no error" "$rc" 0
	expect_match "lint: but warnings" "$out" "*01_create_tables.yaml:6: warning int-primary-key: primary key customers.id is integer*"
fi
out=$(mig lint "$T_DIR/none.yaml" 2>&1); rc=$?
expect_eq "lint: a missing file exits 1" "$rc" 1
expect_match "lint: says so" "$out" "*none.yaml: cannot open*"
mkdir -p "$T_DIR/empty"
out=$(mig lint "$T_DIR/empty" 2>&1); rc=$?
expect_match "lint: an empty folder exits 1 and says so" "$rc $out" "1 *empty: no *.yaml, *.yml, *.json or *.sql file"
printf 'operations:\n  - add_column: {table: t\n' >"$T_DIR/broken.yaml"
out=$(mig lint "$T_DIR/broken.yaml" 2>&1); rc=$?
expect_match "lint: a file that does not load exits 1 with its line" "$rc $out" "1 *broken.yaml:*YAML syntax*"
out=$(mig lint 2>&1); rc=$?
expect_eq "lint: no argument is a usage error" "$rc" 2
out=$(mig lint --format xml "$D" 2>&1); rc=$?
expect_match "lint --format xml: usage error" "$rc $out" "2 *--format: expected text or json*"

# ---- start lints first ----
mig_base_t mig_lint 5
cat >"$T_DIR/m/02_idx.yaml" <<'EOF'
operations:
  - sql:
      up: |
        SELECT 1;
        CREATE INDEX t_v_idx ON t (v);
      down: DROP INDEX t_v_idx
EOF
out=$(mig start "$T_DIR/m/02_idx.yaml" 2>&1); rc=$?
expect_eq "start: a lint error refuses" "$rc" 1
expect_match "start: the refusal names file, line and rule" "$out" "*02_idx.yaml:5: lint error index-not-concurrent: CREATE INDEX t_v_idx ON t (1 lint error(s);*--force starts anyway)"
expect_eq "start: refused before anything ran" "$(q "SELECT count(*) FROM pgflip.migrations WHERE name = '02_idx'") $(q "SELECT to_regclass('t_v_idx')")" "0 "
step "start --force runs it" mig start --force "$T_DIR/m/02_idx.yaml"
expect_eq "start --force: the index exists" "$(q "SELECT to_regclass('t_v_idx')")" "t_v_idx"
step "complete" mig complete
cat >"$T_DIR/m/03_pk.yaml" <<'EOF'
operations:
  - create_table:
      name: small
      columns: [{name: id, type: integer, pk: true}]
EOF
out=$(mig start "$T_DIR/m/03_pk.yaml" 2>&1); rc=$?
expect_eq "start: warnings neither refuse nor print" "$rc:$(printf '%s\n' "$out" | grep -c lint)" "0:0"
mig_drop_db mig_lint

# migrate DIR lints each file it starts
mig_db mig_lint_dir
mkdir -p "$T_DIR/dir"
cat >"$T_DIR/dir/01_a.yaml" <<'EOF'
operations:
  - create_table: {name: a, columns: [{name: id, type: bigint, pk: true}, {name: v, type: text}]}
EOF
cat >"$T_DIR/dir/02_b.yaml" <<'EOF'
operations:
  - sql: {up: "ALTER TABLE a RENAME COLUMN v TO w", down: "ALTER TABLE a RENAME COLUMN w TO v"}
EOF
out=$(mig migrate "$T_DIR/dir" 2>&1); rc=$?
expect_match "migrate DIR: stops at a lint error" "$rc $out" "1 *02_b.yaml:2: lint error raw-rename: ALTER TABLE a RENAME COLUMN v TO w*"
expect_eq "migrate DIR: the files before it ran" "$(q "SELECT string_agg(name || ':' || status, ',' ORDER BY name) FROM pgflip.migrations")" "01_a:complete"
step "migrate DIR --force" mig migrate --force "$T_DIR/dir"
expect_eq "migrate DIR --force: ran it" "$(columns a)" "id,w"
mig_drop_db mig_lint_dir

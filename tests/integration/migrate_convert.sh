#!/bin/sh
# `pgflip migrate convert`: what Alembic (--sql), Django (sqlmigrate) and
# drizzle-kit print, in tests/data/convert/*.sql, gives the migration files
# checked in beside them (*.yaml); those files then run with start and
# complete on a real PostgreSQL, with writes through both versions in
# between. Then validate (a placeholder, a missing table, an unknown
# function: refused, and nothing changed) and convert's errors.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

D="$TOP/tests/data/convert"

# ---- the output, as checked in ----
for sql in "$D"/*.sql; do
	b=$(basename "$sql" .sql)
	[ -f "$D/$b.yaml" ] || continue
	out=$(cd "$D" && mig convert "$b.sql" 2>&1)
	expect_eq "convert $b: the migration checked in" "$out" "$(cat "$D/$b.yaml")"
done
# pgroll's own schema.json accepts every conversion (python3's jsonschema)
SCHEMA="$TOP/../shared/pgroll-format/schema.json"
if [ -f "$SCHEMA" ] && python3 -c 'import jsonschema, yaml' 2>/dev/null; then
	out=$(python3 - "$SCHEMA" "$D"/*.yaml <<'EOF' 2>&1
import json, sys, yaml, jsonschema
v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
for f in sys.argv[2:]:
    for e in v.iter_errors(yaml.safe_load(open(f))):
        print(f, e.json_path, e.message[:200])
EOF
)
	expect_eq "convert: every conversion is valid against pgroll's schema.json" "$out" ""
else
	ok "convert: pgroll's schema.json check # SKIP no schema.json or python3 jsonschema/yaml"
fi
out=$(mig convert - <"$D/django_0001_initial.sql" 2>&1)
expect_match "convert -: reads stdin" "$out" "*# converted by pgflip migrate convert from stdin*create_table:*"
mig convert --json "$D/drizzle_0000_init.sql" >"$T_DIR/drizzle.json" 2>"$T_DIR/notes"
expect_match "convert --json: the notes on stderr" "$(cat "$T_DIR/notes")" "*note: operations\\[0\\]: IF NOT EXISTS dropped*"
out=$(PGHOST=/nonexistent mig plan --no-chain "$T_DIR/drizzle.json" 2>&1)
expect_match "convert --json: a file the loader and planner take" "$out" "*CREATE TABLE \"public\".\"users\"*"

# ---- each ORM's files, converted, run by start and complete ----
# run ORM NAME...: database conv_ORM; each tests/data/convert/ORM_NAME.yaml
# is copied to $T_DIR/ORM/NAME.yaml, started and completed in order, and
# ORM_NAME_started / _completed (when defined) check what clients see
run() {
	r_orm=$1; shift
	mig_db "conv_$r_orm"
	mkdir -p "$T_DIR/$r_orm"
	for r_name in "$@"; do
		cp "$D/${r_orm}_$r_name.yaml" "$T_DIR/$r_orm/$r_name.yaml"
		step "$r_orm $r_name: start" mig start "$T_DIR/$r_orm/$r_name.yaml"
		if command -v "${r_orm}_${r_name}_started" >/dev/null; then "${r_orm}_${r_name}_started"; fi
		step "$r_orm $r_name: complete" mig complete
		if command -v "${r_orm}_${r_name}_completed" >/dev/null; then "${r_orm}_${r_name}_completed"; fi
	done
	expect_eq "$r_orm: no temporary object left" "$(leftovers)" 0
}

alembic_0001_base_completed() {
	qs public_0001_base "INSERT INTO users (email, name) VALUES ('a@x.org', 'Ann'); INSERT INTO posts (user_id, title, body) SELECT id, 'hello', 'first' FROM users" >/dev/null
	check "alembic: the foreign key holds" fails public_0001_base "INSERT INTO posts (user_id, title) VALUES (999, 'orphan')"
	check "alembic: the unique email holds" fails public_0001_base "INSERT INTO users (email) VALUES ('a@x.org')"
}
alembic_0002_profile_started() {
	expect_eq "alembic 0002: the new version reads body as content" "$(qs public_0002_profile "SELECT content FROM posts")" "first"
	qs public_0001_base "INSERT INTO posts (user_id, title, body) SELECT id, 'two', 'second' FROM users" >/dev/null
	expect_eq "alembic 0002: an old-version write is seen by the new version" "$(qs public_0002_profile "SELECT content FROM posts WHERE title = 'two'")" "second"
	expect_eq "alembic 0002: is_active filled from its default" "$(qs public_0002_profile "SELECT string_agg(is_active::text, ',') FROM users")" "true"
}
alembic_0002_profile_completed() {
	expect_eq "alembic 0002: posts columns" "$(columns posts)" "id,user_id,title,content"
	expect_eq "alembic 0002: users columns (the check moved email to a new column)" "$(columns users)" "id,name,created_at,bio,is_active,email"
	expect_eq "alembic 0002: the check constraint is validated" "$(q "SELECT convalidated FROM pg_constraint WHERE conname = 'ck_users_email_at'")" "t"
	check "alembic 0002: the check holds" fails public_0002_profile "INSERT INTO users (email) VALUES ('nobody')"
	expect_eq "alembic 0002: the index exists" "$(q "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_posts_user_id'")" 1
}
run alembic 0001_base 0002_profile

django_0001_initial_completed() {
	qs public_0001_initial "INSERT INTO library_author (name) VALUES ('Le Guin'); INSERT INTO library_book (title, author_id) SELECT 'Earthsea', id FROM library_author" >/dev/null
	expect_eq "django 0001: the foreign key is deferrable" "$(q "SELECT condeferrable AND condeferred FROM pg_constraint WHERE contype = 'f'")" "t"
}
django_0002_book_isbn_started() {
	expect_eq "django 0002: existing books get the default as their isbn" "$(qs public_0002_book_isbn "SELECT '[' || isbn || ']' FROM library_book")" "[]"
	expect_eq "django 0002: the new version reads born as birth_date" "$(qs public_0002_book_isbn "SELECT count(birth_date) FROM library_author")" 0
}
django_0002_book_isbn_completed() {
	expect_eq "django 0002: isbn has no default after (Django's idiom)" "$(q "SELECT column_default IS NULL FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'library_book' AND column_name = 'isbn'")" "t"
	expect_eq "django 0002: the _like index has its operator class" "$(q "SELECT indexdef LIKE '%varchar_pattern_ops%' FROM pg_indexes WHERE indexname = 'library_author_name_4e1a2b3c_like'")" "t"
	expect_eq "django 0002: author columns" "$(columns library_author)" "id,name,birth_date"
	check "django 0002: editor_id references authors" fails public_0002_book_isbn "INSERT INTO library_book (title, author_id, isbn, editor_id) SELECT 'x', id, '1', 999 FROM library_author"
}
run django 0001_initial 0002_book_isbn

drizzle_0001_posts_completed() {
	expect_eq "drizzle 0001: published defaults to false" "$(qs public_0001_posts "INSERT INTO posts (title, author_id) SELECT 'p', id FROM users RETURNING published")" "f"
	expect_eq "drizzle 0001: title defaults to untitled" "$(qs public_0001_posts "INSERT INTO posts (author_id) SELECT id FROM users RETURNING title")" "untitled"
	expect_eq "drizzle 0001: email dropped" "$(columns users)" "id,name,created_at"
	expect_eq "drizzle 0001: the partial unique index" "$(q "SELECT indexdef LIKE 'CREATE UNIQUE INDEX%WHERE (published = true)' FROM pg_indexes WHERE indexname = 'posts_title_author_idx'")" "t"
	expect_eq "drizzle 0001: name_idx dropped" "$(q "SELECT count(*) FROM pg_indexes WHERE indexname = 'name_idx'")" 0
	expect_eq "drizzle 0001: the raw SQL ran" "$(q "SELECT count(*) FROM pg_type WHERE typname = 'role'")" 1
}
drizzle_0000_init_completed() {
	qs public_0000_init "INSERT INTO users (name, email) VALUES ('ann', 'a@x.org')" >/dev/null
	check "drizzle 0000: posts.author_id references users" fails public_0000_init "INSERT INTO posts (title, author_id) VALUES ('x', 42)"
}
drizzle_0002_drop_fk_completed() {
	expect_eq "drizzle 0002: the foreign key is gone" "$(q "SELECT count(*) FROM pg_constraint WHERE conname = 'posts_author_id_users_id_fk'")" 0
	check "drizzle 0002: a post of no user is accepted" qs public_0002_drop_fk "INSERT INTO posts (title, author_id) VALUES ('free', 4242)"
	expect_eq "drizzle 0002: created_at has no default" "$(q "SELECT column_default IS NULL FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'created_at'")" "t"
}
run drizzle 0000_init 0001_posts 0002_drop_fk

# ---- validate: refused with reasons, and nothing changed ----
mig_db conv_validate
cp "$D/alembic_0001_base.yaml" "$T_DIR/0001_base.yaml"
# what the catalog holds, to show that validate changes nothing
shape() { q "SELECT md5(string_agg(c.relname || ':' || c.relkind || ':' || a.attname, ',' ORDER BY c.relname, a.attnum))
	FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"; }
before=$(shape)
out=$(mig validate "$T_DIR/0001_base.yaml" 2>&1); rc=$?
expect_eq "validate: a good file exits 0" "$rc" 0
expect_match "validate: says valid" "$out" "*0001_base.yaml: valid*"
expect_eq "validate: nothing changed (no table, no state schema)" "$(shape) $(q "SELECT to_regnamespace('pgflip')")" "$before "
out=$(mig validate "$D/alembic_0002_profile.yaml" 2>&1); rc=$?
expect_eq "validate: a missing table exits 1" "$rc" 1
expect_match "validate: the planner's reason" "$out" '*pgflip migrate:*table \"users\" does not exist*'
cat >"$T_DIR/fn.yaml" <<'EOF'
operations:
  - create_table:
      name: t
      columns: [{name: id, type: bigint, pk: true}]
  - add_column: {table: t, up: "no_such_fn(id)", column: {name: x, type: text}}
EOF
mig start "$T_DIR/0001_base.yaml" --complete >/dev/null 2>&1
before=$(shape)
cat >"$T_DIR/fn2.yaml" <<'EOF'
operations:
  - add_column: {table: users, up: "no_such_fn(email)", column: {name: x, type: text}}
EOF
out=$(mig validate "$T_DIR/fn2.yaml" 2>&1); rc=$?
expect_eq "validate: an unknown function in up exits 1" "$rc" 1
expect_match "validate: the server's reason" "$out" "*no_such_fn*does not exist*"
cp "$D/type_change.yaml" "$T_DIR/0002_type.yaml"
out=$(mig validate "$T_DIR/0002_type.yaml" 2>&1); rc=$?
expect_eq "validate: convert's placeholder exits 1" "$rc" 1
expect_match "validate: the placeholder named with its line" "$out" "*0002_type.yaml:8: error placeholder: alter_column.down: TODO(pgflip convert)*"
out=$(mig validate --format json "$T_DIR/0002_type.yaml" 2>/dev/null); rc=$?
expect_eq "validate --format json: exit 1" "$rc" 1
expect_match "validate --format json: the verdict and findings" "$out" '*"findings": \[*"rule": "placeholder"*"valid": false*'
out=$(mig start "$T_DIR/0002_type.yaml" 2>&1); rc=$?
expect_eq "start: refuses lint errors" "$rc" 1
expect_match "start: says which and how to override" "$out" "*0002_type.yaml:8: lint error placeholder*--force starts anyway*"
expect_eq "validate and the refused start changed nothing" "$(shape) $(q "SELECT count(*) FROM pgflip.migrations")" "$before 1"
out=$(mig validate "$T_DIR/nope.yaml" 2>&1); rc=$?
expect_eq "validate: a missing file exits 1" "$rc" 1
expect_match "validate: says so" "$out" "*nope.yaml: cannot open*"

# ---- convert's errors ----
out=$(mig convert "$D/bad_syntax.sql" 2>&1); rc=$?
expect_eq "convert: unparsable SQL exits 1" "$rc" 1
expect_eq "convert: the parser's message with the line" "$out" "pgflip migrate: $D/bad_syntax.sql:3: syntax error at or near \"TABEL\""
out=$(mig convert "$T_DIR/none.sql" 2>&1); rc=$?
expect_eq "convert: a missing file exits 1" "$rc" 1
expect_match "convert: cannot open" "$out" "*none.sql: cannot open*"
out=$(printf 'BEGIN;\n-- nothing\nCOMMIT;\n' | mig convert 2>&1); rc=$?
expect_eq "convert: nothing to convert exits 1" "$rc" 1
expect_match "convert: says so" "$out" "*stdin: no statement to convert*"
out=$(mig convert a.sql b.sql 2>&1); rc=$?
expect_eq "convert: two files is a usage error" "$rc" 2
out=$(printf 'CREATE TABLE other.t (id bigint PRIMARY KEY);\n' | mig convert 2>&1)
expect_match "convert: a table of another schema stays raw SQL, with why" "$out" "*kept as raw SQL (table other.t is not in schema public)*- sql:*"
mig_drop_db conv_alembic
mig_drop_db conv_django
mig_drop_db conv_drizzle
mig_drop_db conv_validate

#!/bin/sh
# `pgflip migrate` commands beyond the flows: create, baseline (and the
# adoption of a pgroll-managed database), pull, --role; the privileges the
# views of a version schema carry, checked by non-superuser logins; and plan
# and --dry-run printing the statements that run (a backfill batch's UPDATE is
# prepared and executed on the server).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

# ---- create NAME: no database ----
mkdir -p "$T_DIR/c"
out=$(PGHOST=/nonexistent PGPORT=1 mig create --dir "$T_DIR/c" base 2>&1); rc=$?
expect_eq "create: first file is 01_NAME.yaml" "$rc:$out" "0:$T_DIR/c/01_base.yaml"
expect_eq "create: an empty migration" "$(cat "$T_DIR/c/01_base.yaml")" "operations: []"
echo '{"operations": []}' >"$T_DIR/c/02_desc.json"
out=$(mig create --dir "$T_DIR/c" add_label 2>&1)
expect_eq "create: next number after the folder's files" "$out" "$T_DIR/c/03_add_label.yaml"
mkdir -p "$T_DIR/c3" && : >"$T_DIR/c3/009_x.yaml"
expect_eq "create: keeps the folder's width" "$(mig create --dir "$T_DIR/c3" y 2>&1)" "$T_DIR/c3/010_y.yaml"
out=$(mig create --dir "$T_DIR/c" Add-Label 2>&1); rc=$?
expect_match "create: a name that cannot be a version schema is refused" "$rc:$out" \
	"1:pgflip migrate: create: $T_DIR/c/04_Add-Label.yaml: version schema \"public_04_Add-Label\"*cannot be a route*"
expect_eq "create: nothing written on refusal" "$(ls "$T_DIR/c" | tr '\n' ' ')" "01_base.yaml 02_desc.json 03_add_label.yaml "
out=$(mig create --dir "$T_DIR/nonexistent" x 2>&1); rc=$?
expect_eq "create: missing folder" "$rc:$out" "1:pgflip migrate: create: $T_DIR/nonexistent: No such file or directory"
out=$(mig create --dir "$T_DIR/c" a/b 2>&1); rc=$?
expect_eq "create: a path is no name" "$rc:$out" "1:pgflip migrate: create: bad migration name \"a/b\" (a file name, without extension)"
mig create >/dev/null 2>&1; expect_eq "create: no NAME exits 2" "$?" 2

# ---- baseline NAME ----
mig_db mig_cmds
q "CREATE ROLE cmds_reader LOGIN" >/dev/null 2>&1
q "CREATE ROLE cmds_writer LOGIN" >/dev/null 2>&1
q "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, secret text)" >/dev/null
q "INSERT INTO items SELECT g, 'n' || g, 's' || g FROM generate_series(1, 50) g" >/dev/null
q "GRANT SELECT ON items TO cmds_reader" >/dev/null
q "GRANT SELECT, INSERT ON items TO cmds_writer" >/dev/null
q "GRANT UPDATE (name) ON items TO cmds_writer" >/dev/null
out=$(mig baseline 00-Base 2>&1); rc=$?
expect_match "baseline: a name that cannot be a route is refused" "$rc:$out" "1:pgflip migrate: 00-Base.yaml: version schema \"public_00-Base\"*cannot be a route*"
expect_eq "baseline: refused before any change" "$(q "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgflip%' OR nspname LIKE 'public_%'")" 0
mig baseline >/dev/null 2>&1; expect_eq "baseline: no NAME exits 2" "$?" 2
out=$(mig baseline 00_base 2>&1); rc=$?
expect_eq "baseline: exit 0" "$rc" 0
expect_match "baseline: says what it recorded" "$out" "*baseline 00_base recorded: the schema as it is; later migrations chain from version schema public_00_base*"
expect_match "baseline: status shows it complete, origin baseline" "$(mig status)" "00_base	complete	version_schema=public_00_base	parent=-	backfill=-	updated=*	origin=baseline"
expect_eq "baseline: latest" "$(mig latest)" "public_00_base"
expect_eq "baseline: its version schema shows the rows" "$(qs public_00_base "SELECT count(*) FROM items")" 50
out=$(mig baseline again 2>&1); rc=$?
expect_eq "baseline twice: refused" "$rc:$out" "1:pgflip migrate: baseline: schema public already has pgflip migrations (latest: 00_base); baseline is for a database never migrated with pgflip"

# ---- the views carry the tables' privileges ----
# (reader: SELECT; writer: SELECT, INSERT and UPDATE of name only)
as_role() { _r=$1; _s=$2; shift 2; psql -X -qAt -v ON_ERROR_STOP=1 -U "$_r" -c "SET search_path = $_s" -c "$*" 2>&1; }
mkdir -p "$T_DIR/m"
cp "$T_DIR/c/01_base.yaml" "$T_DIR/m/00_base.yaml"
cat >"$T_DIR/m/01_rename.yaml" <<'EOF'
operations:
  - rename_column: {table: items, from: name, to: title}
  - add_column:
      table: items
      up: "upper(name)"
      column: {name: label, type: text, nullable: true}
  - create_table:
      name: notes
      columns: [{name: id, type: integer, pk: true}, {name: body, type: text}]
EOF
out=$(mig start --dry-run "$T_DIR/m/01_rename.yaml" 2>&1)
expect_match "dry-run: prints the grants the views get" "$out" \
	"*CREATE VIEW \"public_01_rename\".\"items\" WITH (security_invoker = true) AS SELECT \"id\", \"name\" AS \"title\", \"secret\", \"_pgflip_new_label\" AS \"label\" FROM \"public\".\"items\";*GRANT SELECT ON \"public_01_rename\".\"items\" TO \"cmds_reader\";*GRANT UPDATE (\"title\") ON \"public_01_rename\".\"items\" TO \"cmds_writer\";*"
expect_match "dry-run: USAGE on the version schema as on the tables' schema" "$out" "*GRANT USAGE ON SCHEMA \"public_01_rename\" TO PUBLIC;*"
step "start with grants on the tables" mig start "$T_DIR/m/01_rename.yaml"
for vs in public_00_base public_01_rename; do
	expect_eq "reader: SELECT through $vs" "$(as_role cmds_reader $vs "SELECT count(*) FROM items")" 50
	out=$(as_role cmds_reader $vs "INSERT INTO items (id, secret) VALUES (1000, 'x')")
	expect_match "reader: no INSERT through $vs" "$out" "*permission denied for view items*"
	out=$(as_role cmds_reader $vs "DELETE FROM items")
	expect_match "reader: no DELETE through $vs" "$out" "*permission denied for view items*"
done
expect_eq "writer: INSERT through the new version" \
	"$(as_role cmds_writer public_01_rename "INSERT INTO items (id, title) VALUES (1001, 'w')")" ""
expect_eq "writer: UPDATE of the column it may update, by its new name" \
	"$(as_role cmds_writer public_01_rename "UPDATE items SET title = 'w2' WHERE id = 1001")" ""
out=$(as_role cmds_writer public_01_rename "UPDATE items SET secret = 'no' WHERE id = 1001")
expect_match "writer: no UPDATE of another column" "$out" "*permission denied for view items*"
out=$(as_role cmds_reader public_01_rename "SELECT count(*) FROM notes")
expect_match "reader: nothing on a table it has no grant on" "$out" "*permission denied for view notes*"
expect_eq "the views grant nothing to PUBLIC" \
	"$(q "SELECT count(*) FROM information_schema.table_privileges WHERE table_schema = 'public_01_rename' AND grantee = 'PUBLIC'")" 0
step "complete with grants" mig complete
expect_eq "reader: SELECT through the rebuilt version schema" "$(as_role cmds_reader public_01_rename "SELECT count(*) FROM items")" 51
out=$(as_role cmds_reader public_01_rename "INSERT INTO items (id, title) VALUES (1002, 'x')")
expect_match "reader: still no INSERT after complete" "$out" "*permission denied for view items*"
expect_eq "writer: the column grant follows the rename at complete" \
	"$(q "SELECT has_column_privilege('cmds_writer', 'public_01_rename.items', 'title', 'UPDATE')")" t
q "REVOKE SELECT ON items FROM cmds_reader" >/dev/null
out=$(as_role cmds_reader public_01_rename "SELECT count(*) FROM items")
expect_match "security_invoker: a REVOKE on the table holds through the view at once" "$out" "*permission denied for table items*"

# ---- --role ----
# a database where the role makes everything, the state schema included
mig_db mig_cmds_role
q "CREATE ROLE cmds_owner NOLOGIN" >/dev/null 2>&1
q "GRANT CREATE ON DATABASE mig_cmds_role TO cmds_owner" >/dev/null
q "GRANT CREATE ON SCHEMA public TO cmds_owner" >/dev/null
cat >"$T_DIR/m/02_tags.yaml" <<'EOF'
operations:
  - create_table:
      name: tags
      columns: [{name: id, type: integer, pk: true}, {name: tag, type: text}]
EOF
out=$(mig --role nosuch start "$T_DIR/m/02_tags.yaml" 2>&1); rc=$?
expect_eq "--role: an unknown role" "$rc:$out" "1:pgflip migrate: cannot SET ROLE \"nosuch\": ERROR:  role \"nosuch\" does not exist"
step "--role: start --complete as another role" mig --role cmds_owner start --complete "$T_DIR/m/02_tags.yaml"
expect_eq "--role: the new table is the role's" "$(q "SELECT tableowner FROM pg_tables WHERE tablename = 'tags'")" cmds_owner
expect_eq "--role: so are the version schema and the state" \
	"$(q "SELECT string_agg(nspname || '=' || nspowner::regrole, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('public_02_tags', 'pgflip')")" \
	"pgflip=cmds_owner,public_02_tags=cmds_owner"
out=$(PGUSER=cmds_reader mig --role cmds_owner status 2>&1); rc=$?
expect_eq "--role: a login that may not take the role" "$rc:$out" "1:pgflip migrate: cannot SET ROLE \"cmds_owner\": ERROR:  permission denied to set role \"cmds_owner\""
mig --role "" status >/dev/null 2>&1; expect_eq "--role: empty is a usage error" "$?" 2
mig_drop_db mig_cmds_role
export PGDATABASE=mig_cmds

# ---- plan and --dry-run: the statements that run ----
cat >"$T_DIR/m/03_upper.yaml" <<'EOF'
operations:
  - alter_column:
      table: items
      column: title
      type: varchar(200)
      up: upper(title)
      down: title
EOF
out=$(mig start --dry-run "$T_DIR/m/03_upper.yaml" 2>&1)
case "$out" in *"last key of"* | *"next block range"*) not_ok "dry-run: no placeholder" ;; *) ok "dry-run: no placeholder" ;; esac
bound=$(echo "$out" | grep '^SELECT json_build_array("id"::text) FROM (SELECT "id" FROM "public"."items" WHERE ("id") > ($2::integer) ORDER BY "id" OFFSET $1::bigint LIMIT 1) AS bound;$')
expect_eq "dry-run: the batch bound query" "$(echo "$bound" | wc -l)" 1
update=$(echo "$out" | grep '^UPDATE "public"."items" SET "_pgflip_new_title" = (upper(title)) WHERE ("id") > ($1::integer) AND ("id") <= ($2::integer);$')
expect_eq "dry-run: the batch UPDATE, parameterised" "$(echo "$update" | wc -l)" 1
expect_match "dry-run: the progress save" "$out" "*UPDATE pgflip.migrations SET backfill = jsonb_set(backfill, ARRAY?\$3?, \$4::jsonb)*"
step "start the type change" mig start "$T_DIR/m/03_upper.yaml"
# the printed statements run as printed: prepare them and execute one batch
got=$(psql -X -qAt -v ON_ERROR_STOP=1 -c "BEGIN" -c "SET LOCAL pgflip.backfill = 'on'" \
	-c "UPDATE items SET _pgflip_new_title = 'x' WHERE id <= 20" -c "PREPARE b AS ${bound%;}" -c "EXECUTE b(9, 0)" -c "PREPARE u AS ${update%;}" -c "EXECUTE u(0, 10)" \
	-c "SELECT count(*) FROM items WHERE id <= 20 AND _pgflip_new_title = upper(title)" -c "ROLLBACK" 2>&1)
expect_eq "the printed bound and UPDATE run on the server" "$(echo "$got" | tr '\n' ' ')" '["10"] 10 '
step "roll back the type change" mig rollback
out=$(PGHOST=/nonexistent PGPORT=1 mig plan --no-chain "$T_DIR/m/03_upper.yaml" 2>&1); rc=$?
expect_eq "plan without the chain: the table is unknown" "$rc" 1
mkdir -p "$T_DIR/p"
cat >"$T_DIR/p/01_t.yaml" <<'EOF'
operations:
  - create_table:
      name: t
      columns: [{name: a, type: integer}, {name: b, type: text}]
EOF
cat >"$T_DIR/p/02_u.yaml" <<'EOF'
operations:
  - add_column: {table: t, up: "upper(b)", column: {name: c, type: text, nullable: true}}
EOF
out=$(PGHOST=/nonexistent PGPORT=1 mig plan "$T_DIR/p/02_u.yaml" 2>&1)
expect_match "plan: a table without a key backfills by heap blocks, printed" "$out" \
	"*UPDATE \"public\".\"t\" SET \"_pgflip_new_c\" = (upper(b)) WHERE ctid >= format('(%s,0)', \$1::bigint)::tid AND ctid < format('(%s,0)', \$1::bigint + \$2::bigint)::tid;*"

# ---- pull DIR: the history back to files, and a round trip ----
out=$(mig pull "$T_DIR/pulled" 2>&1); rc=$?
expect_eq "pull: exit 0" "$rc" 0
expect_match "pull: says what it wrote" "$out" "*wrote $T_DIR/pulled/00_base.json*wrote $T_DIR/pulled/01_rename.json*2 file(s) written, 0 already there*"
expect_eq "pull: one file per migration kept (03 was rolled back)" "$(ls "$T_DIR/pulled" | tr '\n' ' ')" "00_base.json 01_rename.json "
expect_eq "pull: the content as started" \
	"$(q "SELECT migration = '$(tr -d '\n' <"$T_DIR/pulled/01_rename.json" | sed "s/'/''/g")'::jsonb FROM pgflip.migrations WHERE name = '01_rename'")" t
out=$(mig migrate "$T_DIR/pulled" 2>&1); rc=$?
expect_match "pull then migrate DIR: nothing to do" "$rc:$out" "0:*0 migration(s) applied, 2 already complete*"
out=$(mig pull "$T_DIR/pulled" 2>&1); rc=$?
expect_match "pull again: files already there are kept" "$rc:$out" "0:*0 file(s) written, 2 already there*"
echo '{"operations": []}' >"$T_DIR/pulled/01_rename.json"
out=$(mig pull "$T_DIR/pulled" 2>&1); rc=$?
expect_eq "pull: a file with other content is not overwritten" "$rc:$out" \
	"1:pgflip migrate: pull: $T_DIR/pulled/01_rename.json differs from migration 01_rename stored in the database; nothing written (move it away to pull)"
expect_eq "pull: the file is as it was" "$(cat "$T_DIR/pulled/01_rename.json")" '{"operations": []}'
# round trip: a database built by migrate DIR, pulled, rebuilt from the pulled files
mig_db mig_cmds_a
step "round trip: migrate the folder" mig migrate "$T_DIR/p"
step "round trip: pull" mig pull "$T_DIR/rt"
cols_a=$(columns t); hist_a=$(mig status | cut -f1-4)
mig_db mig_cmds_b
step "round trip: migrate the pulled folder" mig migrate "$T_DIR/rt"
expect_eq "round trip: same tables" "$(columns t)" "$cols_a"
expect_eq "round trip: same history" "$(mig status | cut -f1-4)" "$hist_a"
mig_db mig_cmds_empty
out=$(mig pull "$T_DIR/none" 2>&1); rc=$?
expect_eq "pull: no migrations" "$rc:$out" "1:pgflip migrate: pull: no migrations in schema public"
mig pull >/dev/null 2>&1; expect_eq "pull: no DIR exits 2" "$?" 2
mig_drop_db mig_cmds_a
mig_drop_db mig_cmds_b
mig_drop_db mig_cmds_empty

# ---- baseline --from-pgroll: a database pgroll manages ----
# pgroll's state schema as pgroll's pkg/state/init.sql makes it, with the
# rows pgroll leaves after two migrations and a DDL statement it inferred;
# pgroll keeps the latest version schema only.
mig_db mig_cmds_pgroll
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
CREATE SCHEMA pgroll;
CREATE TABLE pgroll.migrations (
    schema name NOT NULL, name text NOT NULL, migration jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT current_timestamp, updated_at timestamptz NOT NULL DEFAULT current_timestamp,
    parent text, done boolean NOT NULL DEFAULT false, resulting_schema jsonb NOT NULL DEFAULT '{}'::jsonb,
    migration_type varchar(32) DEFAULT 'pgroll' CHECK (migration_type IN ('pgroll', 'inferred', 'baseline')),
    PRIMARY KEY (schema, name), FOREIGN KEY (schema, parent) REFERENCES pgroll.migrations (schema, name));
CREATE UNIQUE INDEX history_is_linear ON pgroll.migrations (schema, parent);
CREATE TABLE pgroll.pgroll_version (version text PRIMARY KEY, initialized_at timestamptz NOT NULL DEFAULT current_timestamp);
INSERT INTO pgroll.pgroll_version VALUES ('v0.14.0');
CREATE TABLE users (id serial PRIMARY KEY, name varchar(255) UNIQUE, email text);
CREATE INDEX users_name_idx ON users (name);
INSERT INTO users (name, email) VALUES ('alice', 'a@example.com'), ('bob', NULL);
CREATE SCHEMA public_02_add_email;
CREATE VIEW public_02_add_email.users AS SELECT id, name, email FROM public.users;
INSERT INTO pgroll.migrations (schema, name, migration, created_at, updated_at, parent, done, migration_type) VALUES
 ('public', '01_create_users', '{"name": "01_create_users", "operations": [{"create_table": {"name": "users", "columns": [{"name": "id", "type": "serial", "pk": true}, {"name": "name", "type": "varchar(255)", "unique": true}]}}]}',
  '2026-11-02 10:00:00+00', '2026-11-02 10:00:05+00', NULL, true, 'pgroll'),
 ('public', '01_create_users_20261102100100123456', '{"version_schema": "sql_5f3e2a1b", "operations": [{"sql": {"up": "CREATE INDEX users_name_idx ON users (name)"}}]}',
  '2026-11-02 10:01:00+00', '2026-11-02 10:01:00+00', '01_create_users', true, 'inferred'),
 ('public', '02_add_email', '{"name": "02_add_email", "operations": [{"add_column": {"table": "users", "column": {"name": "email", "type": "text", "nullable": true}}}]}',
  '2026-11-03 09:00:00+00', '2026-11-03 09:00:00+00', '01_create_users_20261102100100123456', false, 'pgroll');
EOF
out=$(mig baseline base 2>&1); rc=$?
expect_eq "baseline NAME on a pgroll database: refused with the way" "$rc:$out" \
	"1:pgflip migrate: baseline: schema public is managed by pgroll (3 migrations in pgroll.migrations); adopt its history with \`pgflip migrate baseline --from-pgroll\`"
out=$(mig baseline --from-pgroll 2>&1); rc=$?
expect_eq "adopt: refused while pgroll's migration is active" "$rc:$out" \
	"1:pgflip migrate: baseline --from-pgroll: pgroll migration 02_add_email is active in schema public: complete or roll it back with pgroll first"
expect_eq "adopt: refused, nothing recorded" "$(q "SELECT count(*) FROM pgflip.migrations")" 0
out=$(mig baseline --from-pgroll --pgroll-schema nosuch 2>&1); rc=$?
expect_eq "adopt: no such pgroll schema" "$rc:$out" "1:pgflip migrate: baseline --from-pgroll: no pgroll history of schema public (nosuch.migrations does not exist)"
mig baseline --from-pgroll extra >/dev/null 2>&1; expect_eq "adopt: takes no NAME" "$?" 2
q "UPDATE pgroll.migrations SET done = true" >/dev/null
out=$(mig baseline --from-pgroll 2>&1); rc=$?
expect_match "adopt: exit 0 and what it took" "$rc:$out" "0:*adopted 3 pgroll migration(s) of schema public; latest version schema public_02_add_email*"
st=$(mig status)
expect_match "adopt: pgroll's history, parents kept" "$st" "01_create_users	complete	version_schema=public_01_create_users	parent=-	*origin=pgroll
01_create_users_20261102100100123456	complete	version_schema=public_01_create_users	parent=01_create_users	*origin=pgroll
02_add_email	complete	version_schema=public_02_add_email	parent=01_create_users_20261102100100123456	backfill=-	updated=*	origin=pgroll"
expect_eq "adopt: latest is pgroll's version schema" "$(mig latest)" "public_02_add_email"
out=$(mig baseline --from-pgroll 2>&1); rc=$?
expect_match "adopt twice: refused" "$rc:$out" "1:pgflip migrate: baseline --from-pgroll: schema public already has pgflip migrations (latest: 02_add_email)*"
cat >"$T_DIR/m/03_add_age.yaml" <<'EOF'
operations:
  - add_column: {table: users, column: {name: age, type: integer, nullable: true}}
EOF
step "adopt: the next migration starts" mig start "$T_DIR/m/03_add_age.yaml"
expect_match "adopt: it chains from pgroll's latest" "$(mig status | tail -n 1)" "03_add_age	active	version_schema=public_03_add_age	parent=02_add_email	*"
expect_eq "adopt: clients of pgroll's version schema keep working" "$(qs public_02_add_email "SELECT string_agg(name, ',' ORDER BY id) FROM users")" "alice,bob"
expect_eq "adopt: the new version has the column" "$(qs public_03_add_age "SELECT count(age) FROM users")" 0
step "adopt: complete" mig complete
expect_eq "adopt: complete dropped pgroll's version schema" "$(vschemas)" "public,public_03_add_age"
expect_eq "adopt: pgroll's own schema is left alone" "$(q "SELECT count(*) FROM pgroll.migrations")" 3
out=$(mig pull "$T_DIR/pgroll_pulled" 2>&1); rc=$?
expect_eq "adopt: pull writes pgroll's migrations too" "$rc:$(ls "$T_DIR/pgroll_pulled" | tr '\n' ' ')" \
	"0:01_create_users.json 01_create_users_20261102100100123456.json 02_add_email.json 03_add_age.json "
mig_drop_db mig_cmds_pgroll
mig_drop_db mig_cmds

#!/bin/sh
# Every operation against the real cluster: start, then writes through the old
# and the new version schema (search_path set to each), each seeing the
# other's rows; rollback (old version intact, nothing lost, nothing left);
# start again; complete (final schema as specified, no temporary columns,
# triggers or schemas left).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"
# the server's log from here on (tests run one at a time): see the end
pg_log0=$(($(wc -l <"$PG_DIR/server.log") + 1))

# ---- add_column ----
base add <<'EOF'
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: text}
EOF
qs public_01_base "INSERT INTO items (name) VALUES ('a'), ('b'), ('c')" >/dev/null
cat >"$T_DIR/add/02_add.yaml" <<'EOF'
operations:
  - add_column:
      table: items
      up: "'d-' || name"
      column: {name: description, type: text, comment: the description}
  - add_column:
      table: items
      column: {name: qty, type: integer, default: "5"}
EOF
add_started() {
	expect_eq "add: new version sees backfilled rows" "$(qs public_02_add "SELECT string_agg(description || qty, ',' ORDER BY id) FROM items")" "d-a5,d-b5,d-c5"
	check "add: old version does not see the new column" fails public_01_base "SELECT description FROM items"
	qs public_01_base "INSERT INTO items (name) VALUES ('old')" >/dev/null
	expect_eq "add: old insert gets up() in the new version" "$(qs public_02_add "SELECT description || qty FROM items WHERE name = 'old'")" "d-old5"
	qs public_02_add "INSERT INTO items (name, description, qty) VALUES ('new', 'mine', 7)" >/dev/null
	expect_eq "add: new insert visible to the old version" "$(qs public_01_base "SELECT count(*) FROM items WHERE name = 'new'")" 1
	expect_eq "add: new writer's value is kept" "$(qs public_02_add "SELECT description FROM items WHERE name = 'new'")" "mine"
	qs public_01_base "UPDATE items SET name = 'a2' WHERE name = 'a'" >/dev/null
	expect_eq "add: old update recomputes up()" "$(qs public_02_add "SELECT description FROM items WHERE id = 1")" "d-a2"
	check "add: NOT NULL enforced for new writers" fails public_02_add "INSERT INTO items (name, description) VALUES ('x', NULL)"
}
add_rolled_back() {
	expect_eq "add: old version intact after rollback" "$(qs public_01_base "SELECT string_agg(name, ',' ORDER BY id) FROM items")" "a2,b,c,old,new"
	expect_eq "add: physical columns back to the old ones" "$(columns items)" "id,name"
	expect_eq "add: new version schema dropped" "$(vschemas)" "public,public_01_base"
}
add_completed() {
	expect_eq "add: final columns" "$(columns items)" "id,name,description,qty"
	expect_eq "add: description NOT NULL" "$(q "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'description'")" "t"
	expect_eq "add: comment set" "$(q "SELECT col_description('items'::regclass, attnum) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'description'")" "the description"
	expect_eq "add: rows after complete" "$(qs public_02_add "SELECT string_agg(name || ':' || description, ',' ORDER BY id) FROM items")" "a2:d-a2,b:d-b,c:d-c,old:d-old,new:d-new"
	expect_eq "add: previous version schema dropped" "$(vschemas)" "public,public_02_add"
	qs public_02_add "INSERT INTO items (name, description) VALUES ('after', 'x')" >/dev/null
	expect_eq "add: writes after complete" "$(qs public_02_add "SELECT qty FROM items WHERE name = 'after'")" 5
}
cycle add "$T_DIR/add/02_add.yaml"
mig_drop_db mig_op_add

# ---- drop_column ----
base drop <<'EOF'
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: text}
        - {name: legacy, type: text}
EOF
qs public_01_base "INSERT INTO items (name, legacy) VALUES ('a', 'LA'), ('b', 'LB')" >/dev/null
cat >"$T_DIR/drop/02_drop.yaml" <<'EOF'
operations:
  - drop_column: {table: items, column: legacy, down: "'x-' || name"}
EOF
drop_started() {
	check "drop: new version does not see the column" fails public_02_drop "SELECT legacy FROM items"
	qs public_02_drop "INSERT INTO items (name) VALUES ('n')" >/dev/null
	expect_eq "drop: new insert gets down() for the old version" "$(qs public_01_base "SELECT legacy FROM items WHERE name = 'n'")" "x-n"
	qs public_01_base "INSERT INTO items (name, legacy) VALUES ('o', 'LO')" >/dev/null
	expect_eq "drop: old insert visible to the new version" "$(qs public_02_drop "SELECT count(*) FROM items WHERE name = 'o'")" 1
	expect_eq "drop: old values untouched" "$(qs public_01_base "SELECT legacy FROM items WHERE name = 'a'")" "LA"
}
drop_rolled_back() {
	expect_eq "drop: old version intact" "$(qs public_01_base "SELECT string_agg(name || legacy, ',' ORDER BY id) FROM items")" "aLA,bLB,nx-n,oLO"
}
drop_completed() {
	expect_eq "drop: column gone" "$(columns items)" "id,name"
	expect_eq "drop: rows kept" "$(qs public_02_drop "SELECT count(*) FROM items")" 4
}
cycle drop "$T_DIR/drop/02_drop.yaml"
mig_drop_db mig_op_drop

# ---- rename_column ----
base rename <<'EOF'
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: text, default: "'anon'"}
EOF
qs public_01_base "INSERT INTO items (name) VALUES ('a')" >/dev/null
cat >"$T_DIR/rename/02_rename.yaml" <<'EOF'
operations:
  - rename_column: {table: items, from: name, to: title}
EOF
rename_started() {
	qs public_01_base "INSERT INTO items (name) VALUES ('o')" >/dev/null
	qs public_02_rename "INSERT INTO items (title) VALUES ('t')" >/dev/null
	qs public_02_rename "INSERT INTO items DEFAULT VALUES" >/dev/null
	expect_eq "rename: new version reads title" "$(qs public_02_rename "SELECT string_agg(title, ',' ORDER BY id) FROM items")" "a,o,t,anon"
	expect_eq "rename: old version reads name" "$(qs public_01_base "SELECT string_agg(name, ',' ORDER BY id) FROM items")" "a,o,t,anon"
}
rename_rolled_back() {
	expect_eq "rename: physical column kept its name" "$(columns items)" "id,name"
}
rename_completed() {
	expect_eq "rename: physical column renamed" "$(columns items)" "id,title"
	expect_eq "rename: default carried" "$(qs public_02_rename "INSERT INTO items DEFAULT VALUES RETURNING title")" "anon"
}
cycle rename "$T_DIR/rename/02_rename.yaml"
mig_drop_db mig_op_rename

# ---- alter_column: type, nullable, default, check, unique, comment ----
base alter <<'EOF'
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: price, type: text, nullable: true}
EOF
qs public_01_base "INSERT INTO items (price) VALUES ('10'), ('20'), (NULL)" >/dev/null
cat >"$T_DIR/alter/02_alter.yaml" <<'EOF'
operations:
  - alter_column:
      table: items
      column: price
      type: integer
      nullable: false
      default: "1"
      comment: in cents
      check: {name: price_nonneg, constraint: price >= 0}
      unique: {name: items_price_key}
      up: COALESCE(CAST(price AS integer), 1000 + id)
      down: CAST(price AS text)
EOF
alter_started() {
	expect_eq "alter: new version sees converted values" "$(qs public_02_alter "SELECT string_agg(price::text, ',' ORDER BY id) FROM items")" "10,20,1003"
	expect_eq "alter: new version type" "$(qs public_02_alter "SELECT pg_typeof(price) FROM items LIMIT 1")" "integer"
	qs public_01_base "INSERT INTO items (price) VALUES ('30')" >/dev/null
	expect_eq "alter: old insert converted by up" "$(qs public_02_alter "SELECT price FROM items WHERE id = 4")" 30
	qs public_02_alter "INSERT INTO items (price) VALUES (40)" >/dev/null
	expect_eq "alter: new insert converted by down" "$(qs public_01_base "SELECT price FROM items WHERE id = 5")" "40"
	qs public_02_alter "INSERT INTO items DEFAULT VALUES" >/dev/null
	expect_eq "alter: new default through the view" "$(qs public_01_base "SELECT price FROM items WHERE id = 6")" "1"
	check "alter: check enforced for new writes" fails public_02_alter "INSERT INTO items (price) VALUES (-5)"
	check "alter: unique enforced for new writes" fails public_02_alter "INSERT INTO items (price) VALUES (10)"
	check "alter: old version may write NULL (up makes it valid)" qs public_01_base "INSERT INTO items (price) VALUES (NULL)"
	expect_eq "alter: ... and the new version sees up()" "$(qs public_02_alter "SELECT price - id FROM items WHERE id = (SELECT max(id) FROM items)")" 1000
	q "DELETE FROM items WHERE id = (SELECT max(id) FROM items)" >/dev/null
}
alter_rolled_back() {
	expect_eq "alter: old values intact" "$(qs public_01_base "SELECT string_agg(coalesce(price, 'null'), ',' ORDER BY id) FROM items")" "10,20,null,30,40,1"
	expect_eq "alter: old type intact" "$(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'price'")" "text"
}
alter_completed() {
	expect_eq "alter: final type and NOT NULL" "$(q "SELECT format_type(atttypid, atttypmod) || attnotnull::int FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'price'")" "integer1"
	expect_eq "alter: final default" "$(q "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'items'::regclass AND adnum = (SELECT attnum FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'price')")" "1"
	expect_eq "alter: constraints validated" "$(q "SELECT string_agg(conname || convalidated, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'items'::regclass")" "items_pkeytrue,items_price_keytrue,price_nonnegtrue"
	expect_eq "alter: comment" "$(q "SELECT col_description('items'::regclass, (SELECT attnum FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'price'))")" "in cents"
	expect_eq "alter: final columns" "$(columns items)" "id,price"
}
cycle alter "$T_DIR/alter/02_alter.yaml"
[ "$(leftovers)" = 0 ] || q "SELECT 'col', attname FROM pg_attribute WHERE attname LIKE '\_pgflip%' UNION ALL SELECT 'con', conname FROM pg_constraint WHERE conname LIKE '\_pgflip%' UNION ALL SELECT 'rel', relname FROM pg_class WHERE relname LIKE '\_pgflip%'" | sed 's/^/    # left: /'
mig_drop_db mig_op_alter

# ---- alter_column: references ----
base fk <<'EOF'
operations:
  - create_table:
      name: users
      columns: [{name: id, type: integer, pk: true}]
  - create_table:
      name: posts
      columns:
        - {name: id, type: serial, pk: true}
        - {name: user_id, type: integer, nullable: true}
EOF
qs public_01_base "INSERT INTO users VALUES (1); INSERT INTO posts (user_id) VALUES (1), (99)" >/dev/null
cat >"$T_DIR/fk/02_fk.yaml" <<'EOF'
operations:
  - alter_column:
      table: posts
      column: user_id
      references: {name: fk_posts_user, table: users, column: id, on_delete: CASCADE}
      up: SELECT CASE WHEN EXISTS (SELECT 1 FROM users WHERE users.id = user_id) THEN user_id ELSE NULL END
      down: user_id
EOF
fk_started() {
	expect_eq "fk: dangling reference nulled for the new version" "$(qs public_02_fk "SELECT string_agg(coalesce(user_id::text, 'null'), ',' ORDER BY id) FROM posts")" "1,null"
	qs public_01_base "INSERT INTO posts (user_id) VALUES (42)" >/dev/null
	expect_eq "fk: old version keeps its value" "$(qs public_01_base "SELECT user_id FROM posts WHERE id = 3")" 42
	check "fk: new version enforces the reference" fails public_02_fk "INSERT INTO posts (user_id) VALUES (42)"
}
fk_rolled_back() {
	expect_eq "fk: old values intact" "$(qs public_01_base "SELECT string_agg(user_id::text, ',' ORDER BY id) FROM posts")" "1,99,42"
}
fk_completed() {
	expect_eq "fk: constraint validated" "$(q "SELECT convalidated FROM pg_constraint WHERE conname = 'fk_posts_user'")" "t"
	q "DELETE FROM users WHERE id = 1" >/dev/null
	expect_eq "fk: on delete cascade" "$(q "SELECT count(*) FROM posts WHERE user_id = 1")" 0
}
cycle fk "$T_DIR/fk/02_fk.yaml"
mig_drop_db mig_op_fk

# ---- create_table, rename_table, drop_table ----
base tables <<'EOF'
operations:
  - create_table:
      name: t1
      columns: [{name: id, type: integer, pk: true}, {name: v, type: text}]
  - create_table:
      name: t2
      columns: [{name: id, type: integer, pk: true}]
EOF
qs public_01_base "INSERT INTO t1 VALUES (1, 'a'); INSERT INTO t2 VALUES (1)" >/dev/null
cat >"$T_DIR/tables/02_tables.yaml" <<'EOF'
operations:
  - create_table:
      name: t3
      comment: new table
      columns:
        - {name: id, type: integer, pk: true}
        - {name: x, type: text, nullable: true, check: {name: x_len, constraint: length(x) < 10}}
      constraints:
        - {name: t3_x_uq, type: unique, columns: [x]}
  - rename_table: {from: t1, to: t1new}
  - drop_table: {name: t2}
EOF
tables_started() {
	qs public_01_base "INSERT INTO t1 VALUES (2, 'old')" >/dev/null
	qs public_02_tables "INSERT INTO t1new VALUES (3, 'new'); INSERT INTO t3 VALUES (1, 'x')" >/dev/null
	expect_eq "tables: renamed table in the new version" "$(qs public_02_tables "SELECT string_agg(v, ',' ORDER BY id) FROM t1new")" "a,old,new"
	expect_eq "tables: old name in the old version" "$(qs public_01_base "SELECT count(*) FROM t1")" 3
	check "tables: dropped table hidden from the new version" fails public_02_tables "SELECT 1 FROM t2"
	check "tables: dropped table still there for the old version" qs public_01_base "SELECT 1 FROM t2"
	check "tables: created table hidden from the old version" fails public_01_base "SELECT 1 FROM t3"
	check "tables: check on the created table" fails public_02_tables "INSERT INTO t3 VALUES (2, 'longer than ten')"
}
tables_rolled_back() {
	expect_eq "tables: physical tables after rollback" "$(q "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'")" "t1,t2"
	expect_eq "tables: rows kept" "$(qs public_01_base "SELECT count(*) FROM t1")" 3
}
tables_completed() {
	expect_eq "tables: physical tables after complete" "$(q "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'")" "t1new,t3"
	expect_eq "tables: table comment" "$(q "SELECT obj_description('t3'::regclass, 'pg_class')")" "new table"
	expect_eq "tables: constraints of the created table" "$(q "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 't3'::regclass")" "t3_pkey,t3_x_uq,x_len"
}
cycle tables "$T_DIR/tables/02_tables.yaml"
mig_drop_db mig_op_tables

# ---- create_index, drop_index ----
base index <<'EOF'
operations:
  - create_table:
      name: items
      columns: [{name: id, type: integer, pk: true}, {name: name, type: text}]
EOF
qs public_01_base "INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 100) g" >/dev/null
cat >"$T_DIR/index/02_index.yaml" <<'EOF'
operations:
  - create_index:
      name: idx_items_name
      table: items
      columns: [{column: name, sort: DESC, nulls: LAST, collate: C}]
      predicate: id > 10
      storage_parameters: fillfactor = 70
  - create_index:
      name: idx_items_hash
      table: items
      method: hash
      columns: [{column: name}]
EOF
index_started() {
	expect_eq "index: built and valid" "$(q "SELECT string_agg(c.relname || i.indisvalid, ',' ORDER BY c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'idx_items%'")" "idx_items_hashtrue,idx_items_nametrue"
	expect_eq "index: definition" "$(q "SELECT pg_get_indexdef('idx_items_name'::regclass)")" 'CREATE INDEX idx_items_name ON public.items USING btree (name COLLATE "C" DESC NULLS LAST) WITH (fillfactor='"'"'70'"'"') WHERE (id > 10)'
	# CREATE INDEX CONCURRENTLY, then views in a schema made anew: their
	# ACCESS EXCLUSIVE on themselves locks no one out, and is not reported
	expect_eq "index: start reports no strong lock" "$(grep -c 'strong lock held' "$T_DIR/step.out")" 0
}
index_rolled_back() {
	expect_eq "index: dropped on rollback" "$(q "SELECT count(*) FROM pg_class WHERE relname LIKE 'idx_items%'")" 0
}
index_completed() {
	expect_eq "index: kept on complete" "$(q "SELECT count(*) FROM pg_class WHERE relname LIKE 'idx_items%'")" 2
	# its views rebuilt: the old ones, which clients of the version may
	# use, are dropped under ACCESS EXCLUSIVE, and that counts
	expect_match "index: complete reports the views it dropped" "$(cat "$T_DIR/step.out")" \
		"*strong lock held * ms: step * (rebuild the version schema over the final tables) (AccessExclusiveLock on dropped relation *"
}
cycle index "$T_DIR/index/02_index.yaml"
cat >"$T_DIR/index/03_drop_index.yaml" <<'EOF'
operations:
  - drop_index: {name: idx_items_name}
EOF
step "index: drop_index start" mig start "$T_DIR/index/03_drop_index.yaml"
expect_eq "index: drop_index keeps the index until complete" "$(q "SELECT count(*) FROM pg_class WHERE relname = 'idx_items_name'")" 1
step "index: drop_index complete" mig complete
expect_eq "index: drop_index dropped it" "$(q "SELECT count(*) FROM pg_class WHERE relname = 'idx_items_name'")" 0
mig_drop_db mig_op_index

# ---- create_constraint, rename_constraint, drop_multicolumn_constraint, drop_constraint ----
base cons <<'EOF'
operations:
  - create_table:
      name: c1
      columns:
        - {name: id, type: integer, pk: true}
        - {name: a, type: integer}
        - {name: b, type: integer}
  - create_table:
      name: c2
      columns:
        - {name: id, type: integer, pk: true}
        - {name: v, type: integer, check: {name: v_pos, constraint: v > 0}}
EOF
qs public_01_base "INSERT INTO c1 VALUES (1, 1, 5), (2, 3, 2); INSERT INTO c2 VALUES (1, 1)" >/dev/null
cat >"$T_DIR/cons/02_create_constraint.yaml" <<'EOF'
operations:
  - create_constraint:
      table: c1
      name: a_lt_b
      type: check
      columns: [a, b]
      check: a < b
      up: {b: "CASE WHEN b <= a THEN a + 1 ELSE b END"}
      down: {}
EOF
cons_started() {
	expect_eq "create_constraint: backfill fixed the rows" "$(qs public_02_create_constraint "SELECT string_agg(a || '<' || b, ',' ORDER BY id) FROM c1")" "1<5,3<4"
	qs public_01_base "INSERT INTO c1 VALUES (3, 5, 1)" >/dev/null
	expect_eq "create_constraint: old insert fixed by up" "$(qs public_02_create_constraint "SELECT b FROM c1 WHERE id = 3")" 6
	check "create_constraint: enforced for new writes" fails public_02_create_constraint "INSERT INTO c1 VALUES (4, 5, 1)"
	qs public_02_create_constraint "INSERT INTO c1 VALUES (5, 1, 2)" >/dev/null
	expect_eq "create_constraint: new insert visible to old" "$(qs public_01_base "SELECT a || ',' || b FROM c1 WHERE id = 5")" "1,2"
}
cons_rolled_back() {
	expect_eq "create_constraint: old values intact" "$(qs public_01_base "SELECT string_agg(a || '<' || b, ',' ORDER BY id) FROM c1")" "1<5,3<2,5<1,1<2"
	q "DELETE FROM c1 WHERE id > 2" >/dev/null
}
cons_completed() {
	expect_eq "create_constraint: validated" "$(q "SELECT convalidated FROM pg_constraint WHERE conname = 'a_lt_b'")" "t"
	expect_eq "create_constraint: columns" "$(columns c1)" "id,a,b"
}
cycle cons "$T_DIR/cons/02_create_constraint.yaml"
cat >"$T_DIR/cons/03_rename_constraint.yaml" <<'EOF'
operations:
  - rename_constraint: {table: c1, from: a_lt_b, to: a_below_b}
EOF
step "rename_constraint: start + complete" mig start "$T_DIR/cons/03_rename_constraint.yaml" --complete
expect_eq "rename_constraint: renamed" "$(q "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'c1'::regclass")" "a_below_b,c1_pkey"
cat >"$T_DIR/cons/04_drop_multi.yaml" <<'EOF'
operations:
  - drop_multicolumn_constraint:
      table: c1
      name: a_below_b
      up: {}
      down: {b: "CASE WHEN b <= a THEN a + 1 ELSE b END"}
EOF
step "drop_multicolumn_constraint: start" mig start "$T_DIR/cons/04_drop_multi.yaml"
check "drop_multicolumn_constraint: new version may break the rule" qs public_04_drop_multi "INSERT INTO c1 VALUES (10, 9, 1)"
expect_eq "drop_multicolumn_constraint: old version sees down()" "$(qs public_03_rename_constraint "SELECT b FROM c1 WHERE id = 10")" 10
check "drop_multicolumn_constraint: old version keeps the rule" fails public_03_rename_constraint "INSERT INTO c1 VALUES (11, 9, 1)"
step "drop_multicolumn_constraint: complete" mig complete
expect_eq "drop_multicolumn_constraint: gone" "$(q "SELECT count(*) FROM pg_constraint WHERE conname = 'a_below_b'")" 0
expect_eq "drop_multicolumn_constraint: leftovers" "$(leftovers)" 0
cat >"$T_DIR/cons/05_drop_constraint.yaml" <<'EOF'
operations:
  - drop_constraint:
      table: c2
      name: v_pos
      up: v
      down: CASE WHEN v <= 0 THEN 1 ELSE v END
EOF
drop_c_started() {
	qs public_05_drop_constraint "INSERT INTO c2 VALUES (2, -1)" >/dev/null
	expect_eq "drop_constraint: new version writes -1" "$(qs public_05_drop_constraint "SELECT v FROM c2 WHERE id = 2")" -1
	expect_eq "drop_constraint: old version sees down()" "$(qs public_04_drop_multi "SELECT v FROM c2 WHERE id = 2")" 1
}
drop_c_rolled_back() {
	expect_eq "drop_constraint: constraint still there" "$(q "SELECT count(*) FROM pg_constraint WHERE conname = 'v_pos'")" 1
}
drop_c_completed() {
	expect_eq "drop_constraint: gone" "$(q "SELECT count(*) FROM pg_constraint WHERE conname = 'v_pos'")" 0
	check "drop_constraint: negative values allowed" qs public_05_drop_constraint "INSERT INTO c2 VALUES (3, -3)"
}
cycle drop_c "$T_DIR/cons/05_drop_constraint.yaml"
mig_drop_db mig_op_cons

# ---- set_replica_identity, sql ----
base misc <<'EOF'
operations:
  - create_table:
      name: items
      columns: [{name: id, type: integer, pk: true}]
EOF
cat >"$T_DIR/misc/02_misc.yaml" <<'EOF'
operations:
  - set_replica_identity: {table: items, identity: {type: full, index: ""}}
  - sql:
      up: CREATE TABLE raw_t (id integer PRIMARY KEY, v text)
      down: DROP TABLE raw_t
EOF
misc_started() {
	expect_eq "replica identity set on start" "$(q "SELECT relreplident FROM pg_class WHERE oid = 'items'::regclass")" "f"
	check "sql: table made by raw SQL is in the new version schema" qs public_02_misc "INSERT INTO raw_t VALUES (1, 'x')"
}
misc_rolled_back() {
	expect_eq "replica identity restored" "$(q "SELECT relreplident FROM pg_class WHERE oid = 'items'::regclass")" "d"
	expect_eq "sql: down ran" "$(q "SELECT count(*) FROM pg_class WHERE relname = 'raw_t' AND relkind = 'r'")" 0
}
misc_completed() {
	expect_eq "replica identity kept" "$(q "SELECT relreplident FROM pg_class WHERE oid = 'items'::regclass")" "f"
	expect_eq "sql: raw table kept" "$(q "SELECT count(*) FROM pg_class WHERE relname = 'raw_t' AND relkind = 'r'")" 1
}
cycle misc "$T_DIR/misc/02_misc.yaml"
cat >"$T_DIR/misc/03_on_complete.yaml" <<'EOF'
operations:
  - sql:
      up: ALTER TABLE raw_t ADD COLUMN w integer
      onComplete: true
EOF
step "sql onComplete: start" mig start "$T_DIR/misc/03_on_complete.yaml"
expect_eq "sql onComplete: not run at start" "$(columns raw_t)" "id,v"
step "sql onComplete: complete" mig complete
expect_eq "sql onComplete: run at complete" "$(columns raw_t)" "id,v,w"
check "sql onComplete: new column in the version schema" qs public_03_on_complete "SELECT w FROM raw_t"
cat >"$T_DIR/misc/04_no_down.yaml" <<'EOF'
operations:
  - sql:
      up: CREATE TYPE fruit_size AS ENUM ('small', 'large')
EOF
step "sql without down: start" mig start "$T_DIR/misc/04_no_down.yaml"
check "sql without down: rollback refused" sh -c '! "$0" "$@"' mig rollback
step "sql without down: complete" mig complete
mig_drop_db mig_op_misc

# ---- up() reading a column without an equality operator (json) ----
base json <<'EOF'
operations:
  - create_table:
      name: j
      columns: [{name: id, type: integer, pk: true}, {name: meta, type: json, nullable: true}]
EOF
qs public_01_base "INSERT INTO j VALUES (1, '{\"k\": \"a\"}')" >/dev/null
cat >"$T_DIR/json/02_key.yaml" <<'EOF'
operations:
  - add_column: {table: j, up: "meta ->> 'k'", column: {name: k, type: text, nullable: true}}
EOF
json_started() {
	expect_eq "json: backfilled from json" "$(qs public_02_key "SELECT k FROM j WHERE id = 1")" "a"
	qs public_01_base "UPDATE j SET meta = '{\"k\": \"b\"}' WHERE id = 1" >/dev/null
	expect_eq "json: old update of the json column fires up()" "$(qs public_02_key "SELECT k FROM j WHERE id = 1")" "b"
}
json_rolled_back() { :; }
json_completed() {
	expect_eq "json: final column" "$(columns j)" "id,meta,k"
}
cycle json "$T_DIR/json/02_key.yaml"
mig_drop_db mig_op_json

# ---- create_constraint unique / foreign_key / primary_key; create_table FK and EXCLUDE; add_column pk ----
base kinds <<'EOF'
operations:
  - create_table:
      name: parent
      columns: [{name: id, type: integer, pk: true}, {name: code, type: text}]
  - create_table:
      name: child
      columns:
        - {name: id, type: integer, pk: true}
        - {name: parent_id, type: integer, nullable: true}
        - {name: tag, type: text, nullable: true}
  - create_table:
      name: nopk
      columns: [{name: a, type: integer}, {name: b, type: text, nullable: true}]
EOF
qs public_01_base "INSERT INTO parent VALUES (1, 'p1'), (2, 'p2'); INSERT INTO child VALUES (1, 1, 'x'), (2, 7, 'x'), (3, 2, 'y');
	INSERT INTO nopk VALUES (1, 'a'), (2, 'b')" >/dev/null
cat >"$T_DIR/kinds/02_kinds.yaml" <<'EOF'
operations:
  - create_constraint:
      table: child
      name: child_parent_fk
      type: foreign_key
      columns: [parent_id]
      references: {table: parent, columns: [id], on_delete: SET NULL}
      up: {parent_id: "CASE WHEN EXISTS (SELECT 1 FROM parent p WHERE p.id = parent_id) THEN parent_id END"}
      down: {}
  - create_constraint:
      table: child
      name: child_tag_uq
      type: unique
      columns: [tag]
      up: {tag: "tag || '-' || id"}
      down: {tag: "split_part(tag, '-', 1)"}
  - create_constraint:
      table: nopk
      name: nopk_pkey
      type: primary_key
      columns: [a]
      up: {}
      down: {}
  - create_table:
      name: other
      columns:
        - {name: id, type: integer}
        - {name: parent_id, type: integer, nullable: true}
        - {name: slot, type: integer}
      constraints:
        - {name: other_pk, type: primary_key, columns: [id]}
        - {name: other_parent_fk, type: foreign_key, columns: [parent_id], references: {table: parent, columns: [id]}}
        - {name: other_slot_excl, type: exclude, exclude: {index_method: btree, elements: slot WITH =}}
  - add_column:
      table: parent
      column: {name: alt_id, type: integer, pk: false, unique: true, nullable: true}
EOF
kinds_started() {
	expect_eq "create_constraint fk: dangling parent nulled for the new version" "$(qs public_02_kinds "SELECT string_agg(coalesce(parent_id::text, 'null'), ',' ORDER BY id) FROM child")" "1,null,2"
	expect_eq "create_constraint unique: up made tags unique" "$(qs public_02_kinds "SELECT string_agg(tag, ',' ORDER BY id) FROM child")" "x-1,x-2,y-3"
	check "create_constraint unique: enforced for new writes" fails public_02_kinds "INSERT INTO child VALUES (9, 1, 'x-1')"
	qs public_02_kinds "INSERT INTO child VALUES (4, 1, 'z-4')" >/dev/null
	expect_eq "create_constraint unique: down for the old version" "$(qs public_01_base "SELECT tag FROM child WHERE id = 4")" "z"
	check "create_table: exclusion constraint" fails public_02_kinds "INSERT INTO other VALUES (1, 1, 5), (2, 2, 5)"
	check "create_table: foreign key" fails public_02_kinds "INSERT INTO other VALUES (3, 99, 6)"
}
kinds_rolled_back() {
	# the three unique indexes start built (child_tag_uq, nopk_pkey, parent's
	# alt_id) are dropped CONCURRENTLY first, as steps 1-3: the transaction
	# that drops the new columns under ACCESS EXCLUSIVE no longer drops them
	# (and unlinks their files) inside its lock
	expect_eq "kinds: rollback drops start's indexes before its strong lock" \
		"$(sed -n 's/^pgflip migrate: strong lock held [0-9]* ms: \(step [0-9]*\) .*/\1/p' "$T_DIR/step.out")" "step 4"
	expect_eq "kinds: old child rows intact" "$(qs public_01_base "SELECT string_agg(parent_id || tag, ',' ORDER BY id) FROM child")" "1x,7x,2y,1z"
	q "DELETE FROM child WHERE id = 4" >/dev/null
}
kinds_completed() {
	expect_eq "kinds: child constraints" "$(q "SELECT string_agg(conname || ':' || contype::text || convalidated::int, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'child'::regclass")" \
		"child_parent_fk:f1,child_pkey:p1,child_tag_uq:u1"
	expect_eq "kinds: primary key added to nopk" "$(q "SELECT string_agg(conname || ':' || contype::text, ',') FROM pg_constraint WHERE conrelid = 'nopk'::regclass")/$(q "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'nopk'::regclass AND attname = 'a'")" "nopk_pkey:p/t"
	expect_eq "kinds: other constraints" "$(q "SELECT string_agg(conname || ':' || contype::text, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'other'::regclass")" \
		"other_parent_fk:f,other_pk:p,other_slot_excl:x"
	expect_eq "kinds: unique added column" "$(q "SELECT string_agg(conname, ',') FROM pg_constraint WHERE conrelid = 'parent'::regclass AND contype = 'u'")" "parent_alt_id_key"
	q "DELETE FROM parent WHERE id = 1" >/dev/null
	expect_eq "kinds: on delete set null" "$(q "SELECT count(*) FROM child WHERE parent_id IS NULL")" 2
}
cycle kinds "$T_DIR/kinds/02_kinds.yaml"
cat >"$T_DIR/kinds/03_default.yaml" <<'EOF'
operations:
  - alter_column: {table: child, column: tag, default: "'none'", up: tag, down: tag}
  - add_column: {table: nopk, column: {name: id2, type: integer, pk: false, nullable: true}}
EOF
step "alter_column default only: start" mig start "$T_DIR/kinds/03_default.yaml"
qs public_03_default "INSERT INTO child (id) VALUES (10)" >/dev/null
qs public_02_kinds "INSERT INTO child (id) VALUES (11)" >/dev/null
expect_eq "alter_column default only: new version gets it, old does not yet" "$(q "SELECT string_agg(coalesce(tag, 'null'), ',' ORDER BY id) FROM child WHERE id >= 10")" "none,null"
expect_eq "alter_column default only: no copied column" "$(columns child)" "id,parent_id,tag"
q "DELETE FROM child WHERE id >= 10" >/dev/null
step "alter_column default only: complete" mig complete
expect_eq "alter_column default only: table default" "$(q "INSERT INTO child (id) VALUES (12) RETURNING tag")" "none"
mig_drop_db mig_op_kinds

# ---- add_column pk on a table without one ----
base addpk <<'EOF'
operations:
  - create_table:
      name: log
      columns: [{name: msg, type: text}]
EOF
qs public_01_base "INSERT INTO log VALUES ('a'), ('b')" >/dev/null
cat >"$T_DIR/addpk/02_pk.yaml" <<'EOF'
operations:
  - add_column:
      table: log
      up: "nextval('log_seq')"
      column: {name: id, type: bigint, pk: true, default: "nextval('log_seq')"}
EOF
q "CREATE SEQUENCE log_seq" >/dev/null
addpk_started() {
	expect_eq "add_column pk: every row has a key" "$(qs public_02_pk "SELECT count(DISTINCT id) FROM log")" 2
	qs public_01_base "INSERT INTO log VALUES ('c')" >/dev/null
	expect_eq "add_column pk: old insert gets a key" "$(qs public_02_pk "SELECT count(*) FROM log WHERE id IS NOT NULL")" 3
}
addpk_rolled_back() { :; }
addpk_completed() {
	expect_eq "add_column pk: primary key" "$(q "SELECT string_agg(conname || ':' || contype::text, ',') FROM pg_constraint WHERE conrelid = 'log'::regclass")" "log_pkey:p"
}
cycle addpk "$T_DIR/addpk/02_pk.yaml"
mig_drop_db mig_op_addpk

# ---- a schema other than public ----
mig_db mig_op_schema
q "CREATE SCHEMA app" >/dev/null
mkdir -p "$T_DIR/schema"
cat >"$T_DIR/schema/01_t.yaml" <<'EOF'
operations:
  - create_table: {name: t, columns: [{name: id, type: integer, pk: true}, {name: v, type: text}]}
EOF
cat >"$T_DIR/schema/02_r.yaml" <<'EOF'
operations:
  - rename_column: {table: t, from: v, to: w}
EOF
step "--schema app: first migration" mig --schema app start --complete "$T_DIR/schema/01_t.yaml"
step "--schema app: second migration started" mig --schema app start "$T_DIR/schema/02_r.yaml"
qs app_01_t "INSERT INTO t VALUES (1, 'x')" >/dev/null
expect_eq "--schema app: version schemas" "$(qs app_02_r "SELECT w FROM t")/$(q "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname LIKE 'app%'")" "x/app,app_01_t,app_02_r"
expect_eq "--schema app: public untouched" "$(mig latest 2>&1)" "pgflip migrate: no migrations in schema public"
step "--schema app: complete" mig --schema app complete
expect_eq "--schema app: table renamed in app" "$(q "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'app.t'::regclass AND attnum > 0")" "id,w"
mig_drop_db mig_op_schema

# ---- semantic errors stop before any DDL ----
mig_db mig_op_err
cat >"$T_DIR/err.yaml" <<'EOF'
operations:
  - create_table:
      name: a
      columns: [{name: id, type: integer, pk: true}]
  - add_column: {table: missing, column: {name: x, type: int, nullable: true}}
EOF
out=$(mig start "$T_DIR/err.yaml" 2>&1); rc=$?
expect_eq "semantic error: exit status" "$rc" 1
expect_match "semantic error: one-line reason" "$out" "*operations\[1\].add_column: table \"missing\" does not exist"
expect_eq "semantic error: nothing created" "$(q "SELECT count(*) FROM pg_class WHERE relname = 'a'")" 0
mig_drop_db mig_op_err

# ---- a server WARNING is said; pgflip's own SQL raises none ----
mig_db mig_op_warn
cat >"$T_DIR/warn.yaml" <<'EOF'
operations:
  - sql: {up: "DO $$ BEGIN RAISE WARNING 'raised by up'; END $$"}
EOF
expect_match "server WARNING: said with its message" "$(mig start --complete "$T_DIR/warn.yaml" 2>&1)" \
	"*pgflip migrate: server WARNING: raised by up*"
mig_drop_db mig_op_warn
# a BEGIN inside a step group's transaction (once: the views step's catalog
# read) warned so, and its COMMIT committed the group's first steps apart
expect_eq "server log: no BEGIN or COMMIT out of place in any migration above" \
	"$(tail -n +"$pg_log0" "$PG_DIR/server.log" | grep -c "there is already a transaction in progress\|there is no transaction in progress")" 0

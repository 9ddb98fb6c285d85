#!/bin/sh
# Migrations whose operations build on each other, as pgroll runs them
# (issue 12): each operation sees the schema as the earlier operations of the
# file left it (renames, then add/alter/drop/index/constraint saying the new
# names, up/down included); constraints over several columns follow a column
# that is copied (unique, primary key, check, foreign key, indexes), holding
# on the final columns after complete and on the old ones after rollback;
# operations on a table or column this migration creates change it in place.
# Each scenario: start, writes through both versions, rollback, start,
# complete (cycle in tests/data/migrate/lib.sh).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

# constraints TABLE: "name=definition;..." of public.TABLE, by name
constraints() {
	q "SELECT string_agg(conname || '=' || pg_get_constraintdef(oid), ';' ORDER BY conname) FROM pg_constraint
	   WHERE conrelid = 'public.$1'::regclass"
}
# refuses NAME GLOB SCHEMA SQL: SQL, run in version SCHEMA, fails with an
# error matching GLOB
refuses() {
	_rn=$1 _rg=$2; shift 2
	expect_match "$_rn" "$(qs "$@")" "$_rg"
}
indexdef() { q "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = '$1'"; }

# ---- multi-column constraints over copied columns ----
base multicol <<'EOF'
operations:
  - create_table:
      name: pair
      columns: [{name: a, type: integer}, {name: b, type: integer}]
      constraints:
        - {name: pair_pk, type: primary_key, columns: [a, b]}
  - create_table:
      name: acct
      columns:
        - {name: id, type: integer, pk: true}
        - {name: org, type: integer}
        - {name: email, type: text}
        - {name: code, type: integer}
        - {name: label, type: text, nullable: true}
      constraints:
        - {name: acct_org_email_uq, type: unique, columns: [org, email]}
        - {name: acct_code_gt_org, type: check, check: "code > org"}
        - {name: acct_org_code_fk, type: foreign_key, columns: [org, code], references: {table: pair, columns: [a, b]}}
  - create_index: {name: acct_org_label_idx, table: acct, columns: [{column: org}, {column: label}]}
  - sql:
      up: CREATE INDEX acct_lower_email_idx ON acct (lower(email)) WHERE label IS NOT NULL
      down: DROP INDEX acct_lower_email_idx
EOF
qs public_01_base "INSERT INTO pair VALUES (1, 10), (1, 11), (2, 20), (2, 21), (5, 3);
	INSERT INTO acct VALUES (1, 1, 'a@x', 10, 'l1'), (2, 1, 'b@x', 11, NULL), (3, 2, 'a@x', 20, 'l3')" >/dev/null
cat >"$T_DIR/multicol/02_multicol.yaml" <<'EOF'
operations:
  - create_constraint:
      table: acct
      name: acct_org_pos
      type: check
      columns: [org]
      check: "org > 0"
      up: {org: "CASE WHEN org > 0 THEN org ELSE 1 END"}
      down: {}
  - create_constraint:
      table: acct
      name: acct_email_lower
      type: check
      columns: [email]
      check: "email = lower(email)"
      up: {email: "lower(email)"}
      down: {}
EOF
MC_OLD="acct_code_gt_org=CHECK ((code > org));acct_org_code_fk=FOREIGN KEY (org, code) REFERENCES pair(a, b);acct_org_email_uq=UNIQUE (org, email);acct_pkey=PRIMARY KEY (id)"
multicol_started() {
	expect_eq "multicol: unique (org, email) copied onto the new columns" "$(indexdef _pgflip_dup_acct_org_email_uq)" \
		"CREATE UNIQUE INDEX _pgflip_dup_acct_org_email_uq ON public.acct USING btree (_pgflip_new_org, _pgflip_new_email)"
	expect_eq "multicol: check over (code, org) copied" "$(q "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = '_pgflip_dup_acct_code_gt_org'")" \
		"CHECK ((code > _pgflip_new_org)) NOT VALID"
	expect_eq "multicol: foreign key over (org, code) copied" "$(q "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = '_pgflip_dup_acct_org_code_fk'")" \
		"FOREIGN KEY (_pgflip_new_org, code) REFERENCES pair(a, b) NOT VALID"
	expect_eq "multicol: index over (org, label) copied" "$(indexdef _pgflip_dup_acct_org_label_idx)" \
		"CREATE INDEX _pgflip_dup_acct_org_label_idx ON public.acct USING btree (_pgflip_new_org, label)"
	expect_eq "multicol: expression index with a predicate copied" "$(indexdef _pgflip_dup_acct_lower_email_idx)" \
		"CREATE INDEX _pgflip_dup_acct_lower_email_idx ON public.acct USING btree (lower(_pgflip_new_email)) WHERE (label IS NOT NULL)"
	expect_eq "multicol: the old version's constraints untouched" "$(q "SELECT string_agg(conname || '=' || pg_get_constraintdef(oid), ';' ORDER BY conname)
		FROM pg_constraint WHERE conrelid = 'acct'::regclass AND conname NOT LIKE '\_pgflip%' AND conname NOT IN ('acct_org_pos', 'acct_email_lower')")" "$MC_OLD"
	qs public_01_base "INSERT INTO acct VALUES (4, 2, 'B@X', 21, NULL)" >/dev/null
	qs public_02_multicol "INSERT INTO acct (id, org, email, code, label) VALUES (5, 1, 'c@x', 11, 'l5')" >/dev/null
	expect_eq "multicol: both versions' rows, backfilled" "$(qs public_02_multicol "SELECT string_agg(id || ':' || org || email, ',' ORDER BY id) FROM acct")" \
		"1:1a@x,2:1b@x,3:2a@x,4:2b@x,5:1c@x"
	expect_eq "multicol: new rows in the old version" "$(qs public_01_base "SELECT string_agg(id || ':' || email, ',' ORDER BY id) FROM acct WHERE id >= 4")" "4:B@X,5:c@x"
	refuses "multicol: new version: the copy alone refuses (old emails differ in case)" '*violates unique constraint "_pgflip_dup_acct_org_email_uq"*' \
		public_02_multicol "INSERT INTO acct (id, org, email, code) VALUES (7, 2, 'b@x', 20)"
	refuses "multicol: new version: unique (org, email) enforced" '*violates unique constraint*acct_org_email_uq"*' public_02_multicol "INSERT INTO acct (id, org, email, code, label) VALUES (6, 1, 'a@x', 10, NULL)"
	refuses "multicol: new version: foreign key (org, code) enforced" '*violates foreign key constraint*acct_org_code_fk"*' public_02_multicol "INSERT INTO acct (id, org, email, code, label) VALUES (6, 2, 'z@x', 99, NULL)"
	refuses "multicol: new version: check (code > org) enforced" '*violates check constraint*acct_code_gt_org"*' public_02_multicol "INSERT INTO acct (id, org, email, code, label) VALUES (6, 5, 'z@x', 3, NULL)"
	refuses "multicol: old version: unique (org, email) enforced" '*violates unique constraint*acct_org_email_uq"*' public_01_base "INSERT INTO acct VALUES (6, 2, 'a@x', 20, NULL)"
}
multicol_rolled_back() {
	expect_eq "multicol: constraints as before" "$(constraints acct)" "$MC_OLD"
	expect_eq "multicol: index as before" "$(indexdef acct_org_label_idx)" "CREATE INDEX acct_org_label_idx ON public.acct USING btree (org, label)"
	expect_eq "multicol: expression index as before" "$(indexdef acct_lower_email_idx)" "CREATE INDEX acct_lower_email_idx ON public.acct USING btree (lower(email)) WHERE (label IS NOT NULL)"
	expect_eq "multicol: old rows intact" "$(qs public_01_base "SELECT string_agg(id || ':' || org || email, ',' ORDER BY id) FROM acct")" \
		"1:1a@x,2:1b@x,3:2a@x,4:2B@X,5:1c@x"
	refuses "multicol: rolled back: unique (org, email) enforced" '*violates unique constraint "acct_org_email_uq"*' public_01_base "INSERT INTO acct VALUES (6, 1, 'a@x', 10, NULL)"
}
multicol_completed() {
	expect_eq "multicol: every constraint on the final columns" "$(constraints acct)" \
		"acct_code_gt_org=CHECK ((code > org));acct_email_lower=CHECK ((email = lower(email)));acct_org_code_fk=FOREIGN KEY (org, code) REFERENCES pair(a, b);acct_org_email_uq=UNIQUE (org, email);acct_org_pos=CHECK ((org > 0));acct_pkey=PRIMARY KEY (id)"
	expect_eq "multicol: index on the final columns" "$(indexdef acct_org_label_idx)" "CREATE INDEX acct_org_label_idx ON public.acct USING btree (org, label)"
	expect_eq "multicol: expression index on the final column" "$(indexdef acct_lower_email_idx)" "CREATE INDEX acct_lower_email_idx ON public.acct USING btree (lower(email)) WHERE (label IS NOT NULL)"
	expect_eq "multicol: columns" "$(columns acct)" "id,code,label,org,email"
	refuses "multicol: completed: unique (org, email) enforced" '*violates unique constraint "acct_org_email_uq"*' public_02_multicol "INSERT INTO acct (id, org, email, code, label) VALUES (6, 1, 'a@x', 10, NULL)"
	refuses "multicol: completed: foreign key enforced" '*violates foreign key constraint "acct_org_code_fk"*' public_02_multicol "INSERT INTO acct (id, org, email, code, label) VALUES (6, 2, 'z@x', 99, NULL)"
	refuses "multicol: completed: check (code > org) enforced" '*violates check constraint "acct_code_gt_org"*' public_02_multicol "INSERT INTO acct (id, org, email, code, label) VALUES (6, 5, 'z@x', 3, NULL)"
	step "multicol: completed: a valid write" qs public_02_multicol "INSERT INTO acct (id, org, email, code) VALUES (6, 2, 'z@x', 21)"
}
cycle multicol "$T_DIR/multicol/02_multicol.yaml"
mig_drop_db mig_op_multicol

# ---- a primary key added to a table with rows, over a column of a multi-column unique ----
base pk <<'EOF'
operations:
  - create_table:
      name: log
      columns: [{name: msg, type: text, nullable: true}, {name: day, type: integer}]
      constraints:
        - {name: log_msg_day_uq, type: unique, columns: [msg, day]}
EOF
qs public_01_base "INSERT INTO log VALUES ('a', 1), ('b', 1), (NULL, 2)" >/dev/null
cat >"$T_DIR/pk/02_pk.yaml" <<'EOF'
operations:
  - create_constraint:
      table: log
      name: log_pkey
      type: primary_key
      columns: [msg]
      up: {msg: "coalesce(msg, 'none')"}
      down: {}
EOF
pk_started() {
	expect_eq "pk: rows backfilled, NULL key filled by up" "$(qs public_02_pk "SELECT string_agg(msg || day, ',' ORDER BY day, msg) FROM log")" "a1,b1,none2"
	refuses "pk: new version: duplicate key refused" '*violates unique constraint "log_pkey"*' public_02_pk "INSERT INTO log (msg, day) VALUES ('a', 5)"
	refuses "pk: new version: NULL key refused" '*violates check constraint "_pgflip_nn_msg"*' public_02_pk "INSERT INTO log (msg, day) VALUES (NULL, 5)"
	qs public_01_base "INSERT INTO log VALUES (NULL, 3)" >/dev/null
	qs public_01_base "INSERT INTO log VALUES ('c', 3)" >/dev/null
	expect_eq "pk: old-version writes get keys" "$(qs public_02_pk "SELECT count(*) FROM log WHERE msg IS NOT NULL")" 4
	refuses "pk: old version: a second NULL key is refused (up makes it 'none')" '*violates unique constraint "log_pkey"*' public_01_base "INSERT INTO log VALUES (NULL, 4)"
	qs public_01_base "DELETE FROM log WHERE msg IS NULL AND day = 3" >/dev/null
	expect_eq "pk: multi-column unique copied" "$(indexdef _pgflip_dup_log_msg_day_uq)" \
		"CREATE UNIQUE INDEX _pgflip_dup_log_msg_day_uq ON public.log USING btree (_pgflip_new_msg, day)"
}
pk_rolled_back() {
	expect_eq "pk: constraints as before" "$(constraints log)" "log_msg_day_uq=UNIQUE (msg, day)"
	expect_eq "pk: rows as before" "$(qs public_01_base "SELECT string_agg(coalesce(msg, '-') || day, ',' ORDER BY day, msg) FROM log")" "a1,b1,-2,c3"
}
pk_completed() {
	expect_eq "pk: primary key and unique on the final column" "$(constraints log)" "log_msg_day_uq=UNIQUE (msg, day);log_pkey=PRIMARY KEY (msg)"
	expect_eq "pk: NOT NULL" "$(q "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'log'::regclass AND attname = 'msg'")" t
	expect_eq "pk: rows" "$(qs public_02_pk "SELECT string_agg(msg || day, ',' ORDER BY day, msg) FROM log")" "a1,b1,none2,c3"
}
cycle pk "$T_DIR/pk/02_pk.yaml"
mig_drop_db mig_op_pk

# ---- operations on a table and a column this migration creates ----
base newobj <<'EOF'
operations:
  - create_table:
      name: items
      columns: [{name: id, type: integer, pk: true}, {name: name, type: text}]
EOF
qs public_01_base "INSERT INTO items VALUES (1, 'a'), (2, 'b')" >/dev/null
cat >"$T_DIR/newobj/02_newobj.yaml" <<'EOF'
operations:
  - create_table:
      name: tags
      columns: [{name: id, type: integer}, {name: name, type: text, nullable: true}]
  - create_constraint: {table: tags, name: tags_pkey, type: primary_key, columns: [id], up: {}, down: {}}
  - create_index: {name: tags_name_idx, table: tags, columns: [{column: name}]}
  - add_column: {table: tags, column: {name: color, type: text, default: "'red'"}}
  - alter_column: {table: tags, column: name, nullable: false, default: "'n'", up: name, down: name}
  - create_constraint: {table: tags, name: tags_name_color_uq, type: unique, columns: [name, color], up: {}, down: {}}
  - add_column: {table: items, up: upper(name), column: {name: nick, type: text, nullable: true}}
  - create_index: {name: items_nick_idx, table: items, columns: [{column: nick}]}
  - create_constraint: {table: items, name: items_nick_key, type: unique, columns: [nick], up: {}, down: {}}
EOF
newobj_started() {
	qs public_02_newobj "INSERT INTO tags (id) VALUES (1)" >/dev/null
	expect_eq "newobj: new table's defaults" "$(qs public_02_newobj "SELECT id || ':' || name || ':' || color FROM tags")" "1:n:red"
	refuses "newobj: new table's primary key enforced" '*violates unique constraint "tags_pkey"*' public_02_newobj "INSERT INTO tags (id, name) VALUES (1, 'x')"
	refuses "newobj: new table's NOT NULL enforced" '*null value in column "id"*' public_02_newobj "INSERT INTO tags (id, name) VALUES (NULL, 'y')"
	refuses "newobj: new table's unique (name, color) enforced" '*violates unique constraint "tags_name_color_uq"*' public_02_newobj "INSERT INTO tags (id, name, color) VALUES (2, 'n', 'red')"
	refuses "newobj: the old version has no new table" '*relation "tags" does not exist*' public_01_base "SELECT * FROM tags"
	expect_eq "newobj: new table's columns, no copies" "$(columns tags)" "id,name,color"
	expect_eq "newobj: index on the new table" "$(indexdef tags_name_idx)" "CREATE INDEX tags_name_idx ON public.tags USING btree (name)"
	expect_eq "newobj: index on the new column" "$(indexdef items_nick_idx)" "CREATE INDEX items_nick_idx ON public.items USING btree (_pgflip_new_nick)"
	qs public_01_base "INSERT INTO items VALUES (3, 'c')" >/dev/null
	expect_eq "newobj: new column backfilled and synced" "$(qs public_02_newobj "SELECT string_agg(nick, ',' ORDER BY id) FROM items")" "A,B,C"
	refuses "newobj: unique on the new column enforced" '*violates unique constraint "items_nick_key"*' public_02_newobj "INSERT INTO items VALUES (4, 'd', 'A')"
}
newobj_rolled_back() {
	expect_eq "newobj: new table gone" "$(q "SELECT to_regclass('public.tags') IS NULL")" t
	expect_eq "newobj: old columns" "$(columns items)" "id,name"
	expect_eq "newobj: old rows" "$(qs public_01_base "SELECT string_agg(name, ',' ORDER BY id) FROM items")" "a,b,c"
}
newobj_completed() {
	expect_eq "newobj: new table's constraints" "$(constraints tags)" "tags_name_color_uq=UNIQUE (name, color);tags_pkey=PRIMARY KEY (id)"
	expect_eq "newobj: new table's NOT NULL and default" "$(q "SELECT attnotnull || ':' || pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = 'tags'::regclass AND attname = 'name'")" "true:'n'::text"
	expect_eq "newobj: new column's constraint" "$(constraints items)" "items_nick_key=UNIQUE (nick);items_pkey=PRIMARY KEY (id)"
	expect_eq "newobj: new column's index" "$(indexdef items_nick_idx)" "CREATE INDEX items_nick_idx ON public.items USING btree (nick)"
	# (rollback dropped tags with its row; the second start made it afresh)
	expect_eq "newobj: rows" "$(qs public_02_newobj "SELECT string_agg(name || nick, ',' ORDER BY id) FROM items")/$(qs public_02_newobj "SELECT count(*) FROM tags")" "aA,bB,cC/0"
}
cycle newobj "$T_DIR/newobj/02_newobj.yaml"
mig_drop_db mig_op_newobj

# ---- renames, then every kind of operation saying the new names ----
base chain <<'EOF'
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: integer, pk: true}
        - {name: name, type: text}
        - {name: price, type: integer, nullable: true}
        - {name: legacy, type: text, nullable: true}
  - create_table:
      name: orders
      columns: [{name: id, type: integer, pk: true}, {name: item_id, type: integer, nullable: true}]
EOF
qs public_01_base "INSERT INTO items VALUES (1, 'apple', 3, 'L1'), (2, 'kiwi', NULL, 'L2'); INSERT INTO orders VALUES (1, 1), (2, 2)" >/dev/null
cat >"$T_DIR/chain/02_chain.yaml" <<'EOF'
operations:
  - rename_table: {from: items, to: products}
  - rename_column: {table: products, from: name, to: full_name}
  - add_column:
      table: products
      up: length(full_name)
      column: {name: name_len, type: integer, nullable: true}
  - alter_column: {table: products, column: full_name, type: varchar(40), up: full_name, down: full_name}
  - rename_column: {table: products, from: price, to: cost}
  - alter_column: {table: products, column: cost, nullable: false, up: "coalesce(cost, 0)", down: cost}
  - create_constraint: {table: products, name: cost_nonneg, type: check, columns: [cost], check: cost >= 0, up: {}, down: {}}
  - create_index: {name: products_full_name_idx, table: products, columns: [{column: full_name}]}
  - create_constraint: {table: products, name: products_full_name_key, type: unique, columns: [full_name], up: {}, down: {}}
  - rename_column: {table: products, from: legacy, to: old_legacy}
  - drop_column: {table: products, column: old_legacy, down: "'x-' || full_name"}
  - add_column: {table: products, column: {name: sku, type: text, nullable: true}}
  - rename_column: {table: products, from: sku, to: code}
  - add_column: {table: products, column: {name: scratch, type: text, nullable: true}}
  - drop_column: {table: products, column: scratch}
  - create_constraint:
      table: orders
      name: orders_item_fk
      type: foreign_key
      columns: [item_id]
      references: {table: products, columns: [id]}
      up: {item_id: item_id}
      down: {}
EOF
chain_started() {
	expect_eq "chain: new version, backfilled with up over renamed columns" \
		"$(qs public_02_chain "SELECT string_agg(id || ':' || full_name || ':' || name_len || ':' || cost, ',' ORDER BY id) FROM products")" "1:apple:5:3,2:kiwi:4:0"
	expect_eq "chain: new version's columns" "$(qs public_02_chain "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'public_02_chain' AND table_name = 'products'")" \
		"id,name_len,full_name,cost,code"
	qs public_01_base "INSERT INTO items VALUES (3, 'fig', 7, 'L3')" >/dev/null
	expect_eq "chain: old write seen by the new version" "$(qs public_02_chain "SELECT full_name || ':' || name_len || ':' || cost FROM products WHERE id = 3")" "fig:3:7"
	qs public_02_chain "INSERT INTO products (id, full_name, cost, code) VALUES (4, 'plum', 2, 'P')" >/dev/null
	expect_eq "chain: new write seen by the old version (down over new names)" "$(qs public_01_base "SELECT name || ':' || price || ':' || legacy FROM items WHERE id = 4")" "plum:2:x-plum"
	refuses "chain: unique on the renamed, retyped column" '*violates unique constraint "products_full_name_key"*' public_02_chain "INSERT INTO products (id, full_name, cost) VALUES (5, 'plum', 1)"
	refuses "chain: check on the renamed column" '*violates check constraint "cost_nonneg"*' public_02_chain "INSERT INTO products (id, full_name, cost) VALUES (5, 'pear', -1)"
	refuses "chain: NOT NULL on the renamed column" '*violates check constraint "_pgflip_nn_cost"*' public_02_chain "INSERT INTO products (id, full_name, cost) VALUES (5, 'pear', NULL)"
	refuses "chain: new type on the renamed column" '*value too long for type character varying(40)*' public_02_chain "INSERT INTO products (id, full_name, cost) VALUES (5, repeat('x', 41), 1)"
	refuses "chain: foreign key to the renamed table" '*violates foreign key constraint "orders_item_fk"*' public_02_chain "INSERT INTO orders VALUES (3, 99)"
	expect_eq "chain: index on the renamed column" "$(indexdef products_full_name_idx)" \
		"CREATE INDEX products_full_name_idx ON public.items USING btree (_pgflip_new_full_name)"
}
chain_rolled_back() {
	expect_eq "chain: old columns" "$(columns items)/$(columns orders)" "id,name,price,legacy/id,item_id"
	expect_eq "chain: old rows" "$(qs public_01_base "SELECT string_agg(id || name || coalesce(price, -1) || legacy, ',' ORDER BY id) FROM items")" \
		"1apple3L1,2kiwi-1L2,3fig7L3,4plum2x-plum"
	qs public_01_base "DELETE FROM items WHERE id = 4" >/dev/null
}
chain_completed() {
	expect_eq "chain: final columns" "$(columns products)" "id,name_len,full_name,cost,code"
	expect_eq "chain: final constraints" "$(constraints products)" \
		"cost_nonneg=CHECK ((cost >= 0));items_pkey=PRIMARY KEY (id);products_full_name_key=UNIQUE (full_name)"
	expect_eq "chain: foreign key to the renamed table" "$(constraints orders)" \
		"orders_item_fk=FOREIGN KEY (item_id) REFERENCES products(id);orders_pkey=PRIMARY KEY (id)"
	expect_eq "chain: type and NOT NULL" "$(q "SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod) || ':' || attnotnull, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'products'::regclass AND attname IN ('full_name', 'cost')")" \
		"full_name:character varying(40):true,cost:integer:true"
	expect_eq "chain: rows" "$(qs public_02_chain "SELECT string_agg(id || full_name || name_len || cost, ',' ORDER BY id) FROM products")" "1apple53,2kiwi40,3fig37"
	expect_eq "chain: index" "$(indexdef products_full_name_idx)" "CREATE INDEX products_full_name_idx ON public.products USING btree (full_name)"
}
cycle chain "$T_DIR/chain/02_chain.yaml"
mig_drop_db mig_op_chain

# ---- renames, then alter_column of each kind, drop_multicolumn_constraint,
# default, and a table created, renamed and dropped ----
base chain2 <<'EOF'
operations:
  - create_table:
      name: cats
      columns: [{name: id, type: integer, pk: true}, {name: label, type: text}]
  - create_table:
      name: items
      columns:
        - {name: id, type: integer, pk: true}
        - {name: name, type: text, nullable: true}
        - {name: cat, type: integer, nullable: true}
        - {name: sku, type: text, nullable: true}
        - {name: a, type: integer, nullable: true}
        - {name: b, type: integer, nullable: true}
        - {name: note, type: text}
        - {name: qty, type: integer, nullable: true}
      constraints:
        - {name: items_ab_uq, type: unique, columns: [a, b]}
EOF
qs public_01_base "INSERT INTO cats VALUES (1, 'c1'), (2, 'c2');
	INSERT INTO items VALUES (1, 'ab', 1, 's1', 1, 1, 'n1', NULL), (2, 'abcd', 7, 's2', 1, 2, 'n2', 3), (3, NULL, 2, 's2', 2, 1, 'n3', NULL)" >/dev/null
cat >"$T_DIR/chain2/02_chain2.yaml" <<'EOF'
operations:
  - rename_table: {from: items, to: goods}
  - rename_table: {from: cats, to: kinds}
  - rename_column: {table: kinds, from: id, to: kind_id}
  - rename_column: {table: goods, from: name, to: title}
  - rename_column: {table: goods, from: cat, to: kind}
  - rename_column: {table: goods, from: sku, to: code}
  - rename_column: {table: goods, from: a, to: x}
  - rename_column: {table: goods, from: note, to: memo}
  - rename_column: {table: goods, from: qty, to: amount}
  - create_constraint:
      table: goods
      name: title_len
      type: check
      columns: [title]
      check: length(title) > 3
      up: {title: "CASE WHEN title IS NULL OR length(title) <= 3 THEN lpad(coalesce(title, ''), 4, '-') ELSE title END"}
      down: {title: title}
  - alter_column:
      table: goods
      column: kind
      references: {name: goods_kind_fk, table: kinds, column: kind_id}
      up: CASE WHEN kind > 2 THEN NULL ELSE kind END
      down: kind
  - alter_column: {table: goods, column: code, unique: {name: goods_code_key}, up: "code || '-' || id", down: "split_part(code, '-', 1)"}
  - alter_column: {table: goods, column: memo, nullable: true, up: memo, down: "coalesce(memo, 'none')"}
  - alter_column: {table: goods, column: memo, default: "'dflt'", up: memo, down: memo}
  - alter_column: {table: goods, column: x, check: {name: x_pos, constraint: x > 0}, up: "greatest(x, 1)", down: x}
  - drop_multicolumn_constraint: {table: goods, name: items_ab_uq, up: {x: x, b: b}, down: {x: x, b: b}}
  - alter_column: {table: goods, column: amount, default: "5", up: amount, down: amount}
  - create_table: {name: tmp_t, columns: [{name: id, type: integer, pk: true}]}
  - rename_table: {from: tmp_t, to: tmp2}
  - drop_table: {name: tmp2}
EOF
C2_NEW="format('%s:%s:%s:%s:%s:%s:%s:%s', id, title, kind, code, memo, x, b, amount)"
C2_OLD="format('%s:%s:%s:%s:%s:%s:%s:%s', id, name, cat, sku, a, b, note, qty)"
chain2_started() {
	expect_eq "chain2: new version, backfilled over renamed columns" "$(qs public_02_chain2 "SELECT string_agg($C2_NEW, ',' ORDER BY id) FROM goods")" \
		"1:--ab:1:s1-1:n1:1:1:,2:abcd::s2-2:n2:1:2:3,3:----:2:s2-3:n3:2:1:"
	expect_eq "chain2: old version untouched" "$(qs public_01_base "SELECT string_agg($C2_OLD, ',' ORDER BY id) FROM items")" \
		"1:ab:1:s1:1:1:n1:,2:abcd:7:s2:1:2:n2:3,3::2:s2:2:1:n3:"
	refuses "chain2: check on a renamed column" '*violates check constraint "title_len"*' public_02_chain2 "INSERT INTO goods (id, title, code, x, b) VALUES (10, 'ab', 'q', 1, 9)"
	refuses "chain2: foreign key from a renamed column to a renamed table and column" '*violates foreign key constraint "goods_kind_fk"*' \
		public_02_chain2 "INSERT INTO goods (id, title, kind, code, x, b) VALUES (10, 'long', 99, 'q', 1, 9)"
	refuses "chain2: unique on a renamed column" '*violates unique constraint "goods_code_key"*' public_02_chain2 "INSERT INTO goods (id, title, code, x, b) VALUES (10, 'long', 's1-1', 1, 9)"
	refuses "chain2: alter_column check on a renamed column" '*violates check constraint "x_pos"*' public_02_chain2 "INSERT INTO goods (id, title, code, x, b) VALUES (10, 'long', 'q', 0, 9)"
	expect_eq "chain2: the dropped multi-column unique is not copied" "$(q "SELECT count(*) FROM pg_class WHERE relname = '_pgflip_dup_items_ab_uq'")" 0
	qs public_02_chain2 "INSERT INTO goods (id, title, code, x, b) VALUES (4, 'pear', 'p4', 3, 3)" >/dev/null
	qs public_02_chain2 "INSERT INTO goods (id, title, code, x, b, memo) VALUES (5, 'plum', 'p5', 4, 4, NULL)" >/dev/null
	qs public_01_base "INSERT INTO items (id, name, cat, sku, a, b, note) VALUES (6, 'x', 2, 's6', 0, 9, 'n6')" >/dev/null
	expect_eq "chain2: new writes (defaults, nullable memo) and the old write, new version" "$(qs public_02_chain2 "SELECT string_agg($C2_NEW, ',' ORDER BY id) FROM goods WHERE id >= 4")" \
		"4:pear::p4:dflt:3:3:5,5:plum::p5::4:4:5,6:---x:2:s6-6:n6:1:9:"
	expect_eq "chain2: the same rows, old version (down over the new names)" "$(qs public_01_base "SELECT string_agg($C2_OLD, ',' ORDER BY id) FROM items WHERE id >= 4")" \
		"4:pear::p4:3:3:dflt:5,5:plum::p5:4:4:none:5,6:x:2:s6:0:9:n6:"
	expect_eq "chain2: the table created, renamed and dropped is not seen" "$(q "SELECT count(*) FROM pg_class WHERE relname IN ('tmp_t', 'tmp2') AND relnamespace = 'public_02_chain2'::regnamespace")" 0
}
chain2_rolled_back() {
	expect_eq "chain2: old columns" "$(columns items)/$(columns cats)" "id,name,cat,sku,a,b,note,qty/id,label"
	expect_eq "chain2: old constraints" "$(constraints items)" "items_ab_uq=UNIQUE (a, b);items_pkey=PRIMARY KEY (id)"
	expect_eq "chain2: rows kept" "$(qs public_01_base "SELECT string_agg($C2_OLD, ',' ORDER BY id) FROM items")" \
		"1:ab:1:s1:1:1:n1:,2:abcd:7:s2:1:2:n2:3,3::2:s2:2:1:n3:,4:pear::p4:3:3:dflt:5,5:plum::p5:4:4:none:5,6:x:2:s6:0:9:n6:"
	expect_eq "chain2: created table gone" "$(q "SELECT to_regclass('public.tmp_t') IS NULL")" t
}
chain2_completed() {
	expect_eq "chain2: final columns" "$(columns goods)/$(columns kinds)" "id,amount,title,kind,code,memo,x,b/kind_id,label"
	expect_eq "chain2: final constraints" "$(constraints goods)" \
		"goods_code_key=UNIQUE (code);goods_kind_fk=FOREIGN KEY (kind) REFERENCES kinds(kind_id);items_pkey=PRIMARY KEY (id);title_len=CHECK ((length(title) > 3));x_pos=CHECK ((x > 0))"
	expect_eq "chain2: memo nullable with its default, amount's default" \
		"$(q "SELECT string_agg(attname || ':' || attnotnull || ':' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-'), ',' ORDER BY attname) FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = 'goods'::regclass AND attname IN ('memo', 'amount')")" \
		"amount:false:5,memo:false:'dflt'::text"
	expect_eq "chain2: rows" "$(qs public_02_chain2 "SELECT string_agg($C2_NEW, ',' ORDER BY id) FROM goods")" \
		"1:--ab:1:s1-1:n1:1:1:,2:abcd::s2-2:n2:1:2:3,3:----:2:s2-3:n3:2:1:,4:pear::p4-4:dflt:3:3:5,5:plum::p5-5:none:4:4:5,6:---x:2:s6-6:n6:1:9:"
	expect_eq "chain2: no created-then-dropped table" "$(q "SELECT count(*) FROM pg_class WHERE relname IN ('tmp_t', 'tmp2')")" 0
}
cycle chain2 "$T_DIR/chain2/02_chain2.yaml"
mig_drop_db mig_op_chain2

# ---- a column changed, then renamed, and its old name taken by a new column ----
base reuse <<'EOF'
operations:
  - create_table:
      name: t
      columns: [{name: id, type: integer, pk: true}, {name: note, type: text, nullable: true}]
EOF
qs public_01_base "INSERT INTO t VALUES (1, 'a'), (2, 'b')" >/dev/null
cat >"$T_DIR/reuse/02_reuse.yaml" <<'EOF'
operations:
  - alter_column: {table: t, column: note, type: varchar(50), up: note, down: "note || '.'"}
  - rename_column: {table: t, from: note, to: memo}
  - add_column: {table: t, up: "'x-' || note", column: {name: note, type: text, nullable: true}}
EOF
reuse_started() {
	expect_eq "reuse: new version: the renamed copy and the new column" "$(qs public_02_reuse "SELECT string_agg(id || memo || note, ',' ORDER BY id) FROM t")" "1ax-a,2bx-b"
	qs public_02_reuse "INSERT INTO t (id, memo, note) VALUES (3, 'c', 'n')" >/dev/null
	expect_eq "reuse: new write, old version: down over the renamed column" "$(qs public_01_base "SELECT note FROM t WHERE id = 3")" "c."
}
reuse_rolled_back() {
	expect_eq "reuse: old columns and rows" "$(columns t)/$(qs public_01_base "SELECT string_agg(id || note, ',' ORDER BY id) FROM t")" "id,note/1a,2b,3c."
}
reuse_completed() {
	expect_eq "reuse: final columns" "$(columns t)" "id,memo,note"
	expect_eq "reuse: rows" "$(qs public_02_reuse "SELECT string_agg(id || memo || note, ',' ORDER BY id) FROM t")" "1ax-a,2bx-b,3c.x-c."
}
cycle reuse "$T_DIR/reuse/02_reuse.yaml"
mig_drop_db mig_op_reuse

# seqs TABLE: "column=sequence" of the serial and identity columns of public.TABLE
seqs() {
	q "SELECT string_agg(attname || '=' || pg_get_serial_sequence('public.$1', attname), ';' ORDER BY attnum)
	   FROM pg_attribute WHERE attrelid = 'public.$1'::regclass AND attnum > 0 AND NOT attisdropped
	   AND pg_get_serial_sequence('public.$1', attname) IS NOT NULL"
}
tmp_table() { q "SELECT to_regclass('public._pgflip_new_$1') IS NOT NULL"; }

# ---- drop_table, then create_table of the same name ----
base recreate <<'EOF'
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: text, unique: true}
        - {name: code, type: text}
        - {name: sku, type: text, nullable: true, unique: true}
      constraints:
        - {name: items_code_uq, type: unique, columns: [code]}
  - create_index: {name: items_code_idx, table: items, columns: [{column: code}]}
EOF
qs public_01_base "INSERT INTO items (name, code) VALUES ('a', 'k1'), ('b', 'k2')" >/dev/null
cat >"$T_DIR/recreate/02_recreate.yaml" <<'EOF'
operations:
  - drop_table: {name: items}
  - create_table:
      name: items
      columns:
        - {name: id, type: bigserial, pk: true}
        - {name: title, type: text, unique: true}
        - {name: code, type: text}
        - {name: n, type: integer, generated: {identity: {user_specified_values: BY DEFAULT}}}
        - {name: sku, type: text, nullable: true}
      constraints:
        - {name: items_code_uq, type: unique, columns: [code]}
  - create_index: {name: items_code_idx, table: items, columns: [{column: code}]}
  - create_constraint: {table: items, name: items_sku_key, type: unique, columns: [sku], up: {}, down: {}}
  - create_table:
      name: notes
      columns:
        - {name: id, type: integer, pk: true}
        - {name: item_id, type: bigint, references: {name: notes_item_fk, table: items, column: id}}
EOF
RC_OLD="items_code_uq=UNIQUE (code);items_name_key=UNIQUE (name);items_pkey=PRIMARY KEY (id);items_sku_key=UNIQUE (sku)"
recreate_started() {
	expect_eq "recreate: new version: the new, empty table" "$(qs public_02_recreate "SELECT count(*) FROM items")" 0
	expect_eq "recreate: new version: a write takes the new sequence" \
		"$(qs public_02_recreate "INSERT INTO items (title, code) VALUES ('t1', 'k1') RETURNING id || ':' || n")" "1:1"
	refuses "recreate: new version: the new table's unique title" '*violates unique constraint*' public_02_recreate "INSERT INTO items (title, code) VALUES ('t1', 'k9')"
	refuses "recreate: new version: the new table's unique code" '*violates unique constraint*' public_02_recreate "INSERT INTO items (title, code) VALUES ('t2', 'k1')"
	refuses "recreate: new version: the old columns are gone" '*column "name" does not exist*' public_02_recreate "SELECT name FROM items"
	qs public_02_recreate "INSERT INTO notes VALUES (1, 1)" >/dev/null
	refuses "recreate: new table referenced by a table of the same file" '*violates foreign key constraint "notes_item_fk"*' public_02_recreate "INSERT INTO notes VALUES (2, 99)"
	expect_eq "recreate: old version: the old rows" "$(qs public_01_base "SELECT string_agg(id || name || code, ',' ORDER BY id) FROM items")" "1ak1,2bk2"
	expect_eq "recreate: old version: a write" "$(qs public_01_base "INSERT INTO items (name, code) VALUES ('c', 'k3') RETURNING id")" 3
	refuses "recreate: old version: its unique code" '*violates unique constraint "items_code_uq"*' public_01_base "INSERT INTO items (name, code) VALUES ('d', 'k3')"
	expect_eq "recreate: the versions' tables are apart" "$(qs public_02_recreate "SELECT string_agg(title, ',') FROM items")" "t1"
	expect_eq "recreate: the old table keeps its constraints" "$(constraints items)" "$RC_OLD"
	expect_eq "recreate: the new table under a temporary name" "$(tmp_table items)" t
	expect_eq "recreate: the old index keeps its name" "$(indexdef items_code_idx)" "CREATE INDEX items_code_idx ON public.items USING btree (code)"
	expect_eq "recreate: the new table's index of the same name waits" "$(indexdef _pgflip_new_items_code_idx)" \
		"CREATE INDEX _pgflip_new_items_code_idx ON public._pgflip_new_items USING btree (code)"
	qs public_02_recreate "INSERT INTO items (title, code, sku) VALUES ('t3', 'k3', 's1')" >/dev/null
	refuses "recreate: new version: unique sku (create_constraint) on the new table" '*violates unique constraint*' public_02_recreate "INSERT INTO items (title, code, sku) VALUES ('t4', 'k4', 's1')"
	step "recreate: old version: the same sku in the old table" qs public_01_base "INSERT INTO items (name, code, sku) VALUES ('e', 'k5', 's1')"
	qs public_01_base "DELETE FROM items WHERE name = 'e'" >/dev/null
}
recreate_rolled_back() {
	expect_eq "recreate: old table, constraints and sequence as before" "$(constraints items)/$(seqs items)" "$RC_OLD/id=public.items_id_seq"
	expect_eq "recreate: old rows" "$(qs public_01_base "SELECT string_agg(id || name || code, ',' ORDER BY id) FROM items")" "1ak1,2bk2,3ck3"
	expect_eq "recreate: no new tables" "$(tmp_table items)$(q "SELECT to_regclass('public.notes') IS NULL")" ft
}
recreate_completed() {
	expect_eq "recreate: the new table under its name" "$(columns items)" "id,title,code,n,sku"
	expect_eq "recreate: its constraints named as on a table made under its name" "$(constraints items)" \
		"items_code_uq=UNIQUE (code);items_pkey=PRIMARY KEY (id);items_sku_key=UNIQUE (sku);items_title_key=UNIQUE (title)"
	expect_eq "recreate: its index under the name the file gave" "$(indexdef items_code_idx)" "CREATE INDEX items_code_idx ON public.items USING btree (code)"
	expect_eq "recreate: its sequences named as on a table made under its name" "$(seqs items)" "id=public.items_id_seq;n=public.items_n_seq"
	expect_eq "recreate: the old rows are gone with the old table" "$(qs public_02_recreate "SELECT count(*) FROM items")" 0
	expect_eq "recreate: a write after complete" "$(qs public_02_recreate "INSERT INTO items (title, code) VALUES ('t1', 'k1') RETURNING id || ':' || n")" "1:1"
	expect_eq "recreate: the foreign key on the final table" "$(constraints notes)" "notes_item_fk=FOREIGN KEY (item_id) REFERENCES items(id);notes_pkey=PRIMARY KEY (id)"
	refuses "recreate: unique title after complete" '*violates unique constraint "items_title_key"*' public_02_recreate "INSERT INTO items (title, code) VALUES ('t1', 'k9')"
}
cycle recreate "$T_DIR/recreate/02_recreate.yaml"
mig_drop_db mig_op_recreate

# ---- create_table, drop_table, create_table of the same name ----
base recycle <<'EOF'
operations:
  - create_table:
      name: t
      columns: [{name: id, type: integer, pk: true}]
EOF
cat >"$T_DIR/recycle/02_recycle.yaml" <<'EOF'
operations:
  - create_table:
      name: items
      columns: [{name: id, type: serial, pk: true}, {name: a, type: text, unique: true}]
  - drop_table: {name: items}
  - create_table:
      name: items
      columns: [{name: id, type: serial, pk: true}, {name: b, type: text, unique: true}]
EOF
recycle_started() {
	expect_eq "recycle: new version: the second table" "$(qs public_02_recycle "INSERT INTO items (b) VALUES ('x') RETURNING id || b")" "1x"
	refuses "recycle: its unique b" '*violates unique constraint*' public_02_recycle "INSERT INTO items (b) VALUES ('x')"
	refuses "recycle: the old version has no items" '*relation "items" does not exist*' public_01_base "SELECT * FROM items"
	expect_eq "recycle: both tables exist until complete" "$(q "SELECT to_regclass('public.items') IS NOT NULL")$(tmp_table items)" tt
}
recycle_rolled_back() {
	expect_eq "recycle: neither table is left" "$(q "SELECT to_regclass('public.items') IS NULL")$(tmp_table items)" tf
}
recycle_completed() {
	expect_eq "recycle: the second table under its name" "$(columns items)" "id,b"
	expect_eq "recycle: its constraints and sequence named as on a table made under its name" "$(constraints items)/$(seqs items)" \
		"items_b_key=UNIQUE (b);items_pkey=PRIMARY KEY (id)/id=public.items_id_seq"
	expect_eq "recycle: a write after complete" "$(qs public_02_recycle "INSERT INTO items (b) VALUES ('y') RETURNING id || b")" "1y"
}
cycle recycle "$T_DIR/recycle/02_recycle.yaml"
mig_drop_db mig_op_recycle

# ---- rename_table, then create_table of the old name (the first migration:
# the old version is the plain schema) ----
mig_db mig_op_rename_create
mkdir -p "$T_DIR/rename_create"
q "CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE); INSERT INTO items (name) VALUES ('a'), ('b')" >/dev/null
cat >"$T_DIR/rename_create/01_rename_create.yaml" <<'EOF'
operations:
  - rename_table: {from: items, to: products}
  - create_table:
      name: items
      columns: [{name: id, type: serial, pk: true}, {name: label, type: text, unique: true}]
EOF
RN_OLD="items_name_key=UNIQUE (name);items_pkey=PRIMARY KEY (id)"
rename_create_started() {
	expect_eq "rename_create: new version: the renamed table has the rows" "$(qs public_01_rename_create "SELECT string_agg(id || name, ',' ORDER BY id) FROM products")" "1a,2b"
	expect_eq "rename_create: new version: the new table" "$(qs public_01_rename_create "INSERT INTO items (label) VALUES ('l1') RETURNING id || label")" "1l1"
	expect_eq "rename_create: old version: the old table" "$(qs public "INSERT INTO items (name) VALUES ('c') RETURNING id")" 3
	expect_eq "rename_create: old-version write seen as products" "$(qs public_01_rename_create "SELECT string_agg(name, ',' ORDER BY id) FROM products")" "a,b,c"
	expect_eq "rename_create: new-version write not in the old table" "$(qs public "SELECT string_agg(name, ',' ORDER BY id) FROM items")" "a,b,c"
	refuses "rename_create: old version has no products" '*relation "products" does not exist*' public "SELECT * FROM products"
	qs public_01_rename_create "INSERT INTO products (name) VALUES ('d')" >/dev/null
	expect_eq "rename_create: new-version write of products in the old table" "$(qs public "SELECT name FROM items WHERE id = 4")" "d"
}
rename_create_rolled_back() {
	expect_eq "rename_create: the old table as before" "$(constraints items)/$(seqs items)/$(columns items)" "$RN_OLD/id=public.items_id_seq/id,name"
	expect_eq "rename_create: old rows" "$(qs public "SELECT string_agg(name, ',' ORDER BY id) FROM items")" "a,b,c,d"
	expect_eq "rename_create: no products, no new table" "$(q "SELECT to_regclass('public.products') IS NULL")$(tmp_table items)" tf
}
rename_create_completed() {
	expect_eq "rename_create: renamed table keeps its constraints and sequence" "$(constraints products)/$(seqs products)" "$RN_OLD/id=public.items_id_seq"
	expect_eq "rename_create: new table's names as PostgreSQL gives them beside products" "$(constraints items)/$(seqs items)" \
		"items_label_key=UNIQUE (label);items_pkey1=PRIMARY KEY (id)/id=public.items_id_seq1"
	expect_eq "rename_create: rows" "$(qs public_01_rename_create "SELECT string_agg(name, ',' ORDER BY id) FROM products")/$(qs public_01_rename_create "SELECT count(*) FROM items")" "a,b,c,d/0"
	expect_eq "rename_create: writes after complete" "$(qs public_01_rename_create "INSERT INTO items (label) VALUES ('l1') RETURNING id; INSERT INTO products (name) VALUES ('e') RETURNING id")" "1
5"
}
cycle rename_create "$T_DIR/rename_create/01_rename_create.yaml"
mig_drop_db mig_op_rename_create

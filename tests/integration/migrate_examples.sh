#!/bin/sh
# pgroll's example migrations, applied in name order to an empty database,
# each with start -> rollback -> start -> complete (example 35 with its down
# fixed: see examples_copy; as shipped it is refused before any change). A few rows are written
# through the latest version schema along the way so that the up expressions
# and backfills of later examples have data to work on.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

EX="$TOP/../shared/pgroll-format/examples"
if [ ! -d "$EX" ]; then
	echo "ok - examples # SKIP $EX not found"
	exit 0
fi
mig_db mig_examples
step "init" mig init

seed() { # rows written by the current version after example $1 completed
	v=public_$1
	case "$1" in
	02_*) qs "$v" "INSERT INTO products (name, price) VALUES ('apple', 1.5), ('pear', 2)" ;;
	05_*) qs "$v" "INSERT INTO users VALUES (1, 'ann'), (2, 'bob')" ;;
	14_*) qs "$v" "INSERT INTO reviews (username, product, review) VALUES ('ann', 'apple', NULL), ('bob', 'pear', 'ok')" ;;
	17_*) qs "$v" "INSERT INTO reviews (username, product, review, rating) VALUES ('cy', 'plum', 'fine', '7')" ;;
	20_*) qs "$v" "INSERT INTO posts (title, user_id) VALUES ('ab', 1), ('long title', 99)" ;;
	25_*) qs "$v" "INSERT INTO people VALUES (1, 'alice')" ;;
	34_*) qs "$v" "INSERT INTO events (name) VALUES (NULL), ('concert')" ;;
	esac
}

EXC=$(examples_copy "$EX")
for f in "$EXC"/*.yaml; do
	n=$(basename "$f" .yaml)
	if [ "$n" = 35_alter_column_multiple ]; then
		out=$(mig start "$EX/$n.yaml" 2>&1); rc=$?
		expect_match "$n as pgroll ships it: refused, its down reads a column that does not exist" "$rc:$out" \
			"1:*operations\[0\].alter_column: down expression \"event_name\" on table \"events\": ERROR: *column \"event_name\" does not exist*"
		expect_eq "$n as pgroll ships it: nothing left" "$(leftovers) $(vschemas)" "0 public,public_34_create_events_table"
	fi
	step "$n: start" mig start "$f"
	if mig rollback >"$T_DIR/rb.out" 2>&1; then
		ok "$n: rollback"
		expect_eq "$n: rollback leaves no temporary objects" "$(leftovers)" 0
		step "$n: start again" mig start "$f"
	elif grep -q 'cannot be rolled back' "$T_DIR/rb.out"; then
		ok "$n: rollback refused: the sql operation has no down"
	else
		not_ok "$n: rollback"; sed 's/^/    # /' "$T_DIR/rb.out"
	fi
	step "$n: complete" mig complete
	expect_eq "$n: no temporary objects" "$(leftovers)" 0
	expect_eq "$n: only the new version schema" "$(vschemas)" "public,public_$n"
	if [ "$n" = 03_add_column ]; then
		expect_eq "$n: up() backfilled, default applied" "$(q "SELECT string_agg(description || '/' || category || '/' || stock, ',' ORDER BY id) FROM products")" \
			"APPLE/apple-category/100,PEAR/pear-category/100"
	fi
	seed "$n" >"$T_DIR/seed.out" 2>&1 || { not_ok "$n: seed rows"; sed 's/^/    # /' "$T_DIR/seed.out"; }
done

expect_eq "final: latest" "$(mig latest)" "public_40_create_enum_type"
expect_eq "final: reviews after 15/16/18" "$(q "SELECT string_agg(product || ':' || (review LIKE 'apple is good%')::text || ':' || rating, ',' ORDER BY id) FROM reviews")" \
	"apple:true:0,pear:false:0,plum:false:7"
expect_eq "final: posts after 21/22/24/31" "$(q "SELECT string_agg(title || ':' || coalesce(user_id::text, 'null'), ',' ORDER BY id) FROM posts")" "--ab:1,long title:null"
expect_eq "final: events after 35" "$(q "SELECT string_agg(name, ',' ORDER BY id) FROM events")" "placeholder,concert"
expect_eq "final: people columns" "$(columns people)" "id,name,age,description,birth_date"
expect_eq "final: people description backfilled" "$(q "SELECT description FROM people")" "temporary-description"
expect_eq "final: constraints" "$(q "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid IN ('people'::regclass, 'events'::regclass, 'reviews'::regclass, 'posts'::regclass)")" \
	"age_check,event_name_length,events_event_name_unique,events_pkey,name_length_check,people_pkey,posts_pkey,reviews_pkey"
expect_eq "final: fruits indexes and replica identity" "$(q "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relkind = 'i' AND relname LIKE 'idx_fruits%'")/$(q "SELECT relreplident FROM pg_class WHERE relname = 'fruits' AND relkind = 'r'")" \
	"idx_fruits_id_gt_10,idx_fruits_name/i"
expect_eq "final: enum type" "$(q "SELECT count(*) FROM pg_type WHERE typname = 'fruit_size'")" 1
mig_drop_db mig_examples

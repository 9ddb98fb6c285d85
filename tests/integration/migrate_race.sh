# Two migrators racing on the same schema are serialised by the advisory
# lock: one starts its migration, the other waits for the lock, then finds
# a migration active and stops, touching nothing.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

mig_db mig_race
mkdir -p "$T_DIR/m"
cat >"$T_DIR/m/01_base.yaml" <<'EOF2'
operations:
  - create_table:
      name: items
      columns: [{name: id, type: integer, pk: true}, {name: name, type: text}]
EOF2
cat >"$T_DIR/m/02_a.yaml" <<'EOF2'
operations:
  - add_column:
      table: items
      up: upper(name)
      column: {name: a_col, type: text, nullable: true}
EOF2
cat >"$T_DIR/m/02_b.yaml" <<'EOF2'
operations:
  - add_column:
      table: items
      up: lower(name)
      column: {name: b_col, type: text, nullable: true}
EOF2
mig init >/dev/null 2>&1
mig start --complete "$T_DIR/m/01_base.yaml" >/dev/null 2>&1
q "INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 20000) g" >/dev/null
# a slow backfill keeps the first migrator busy while the second arrives
mig start --backfill-batch-size 1000 --backfill-batch-delay 100 "$T_DIR/m/02_a.yaml" >"$T_DIR/a.out" 2>&1 &
pa=$!
sleep 0.5
mig start --backfill-batch-size 1000 "$T_DIR/m/02_b.yaml" >"$T_DIR/b.out" 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
expect_eq "race: the first migrator succeeds" "$ra" 0
check "race: the second one fails" test "$rb" != 0
expect_match "race: ... waiting for the lock, then seeing the active migration" "$(cat "$T_DIR/b.out")" \
	"*02_a is active*"
expect_eq "race: exactly one active migration" \
	"$(q "SELECT string_agg(name, ',') FROM pgflip.migrations WHERE status = 'active'")" "02_a"
expect_eq "race: the loser added no column" \
	"$(q "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name LIKE '%b_col%'")" "0"
expect_eq "race: the winner's backfill is complete" \
	"$(q "SELECT count(*) FROM items WHERE _pgflip_new_a_col IS NULL")" "0"
mig_drop_db mig_race

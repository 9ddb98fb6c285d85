#!/bin/sh
# Backfill: killed in the middle (kill -9), then resumed by running the same
# start again: every row is backfilled exactly once. A test trigger counts the
# updates each row receives; keyset batches with progress saved in the same
# transaction as each batch must leave every count at 1.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

ROWS=200000
mig_db mig_backfill
mkdir -p "$T_DIR/m"
cat >"$T_DIR/m/01_base.yaml" <<'EOF'
operations:
  - create_table:
      name: big
      columns:
        - {name: id, type: bigint, pk: true}
        - {name: name, type: text}
        - {name: hits, type: integer, default: "0"}
EOF
cat >"$T_DIR/m/02_upper.yaml" <<'EOF'
operations:
  - add_column:
      table: big
      up: upper(name)
      column: {name: upper_name, type: text}
EOF
step "base" mig start "$T_DIR/m/01_base.yaml" --complete
q "INSERT INTO big (id, name) SELECT g, 'row' || g FROM generate_series(1, $ROWS) g;
   CREATE FUNCTION count_hits() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN NEW.hits := OLD.hits + 1; RETURN NEW; END \$\$;
   CREATE TRIGGER count_hits BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION count_hits()" >/dev/null

done_rows() { backfill_done 02_upper big; }

mig_bg "$T_DIR/run1.log" start "$T_DIR/m/02_upper.yaml" --backfill-batch-size 1000 --backfill-batch-delay 10
mig_kill_after 02_upper big 20000
sleep 0.5
partial=$(done_rows)
expect_match "killed during the backfill" "$partial" "[1-9]*"
left=$(q "SELECT count(*) FROM big WHERE _pgflip_new_upper_name IS NULL")
if [ "$left" -gt 0 ] && [ "$left" -lt $ROWS ]; then ok "backfill was partial when killed ($left rows left)"; else not_ok "backfill was partial when killed"; echo "    # rows left: $left"; fi
expect_match "status shows progress in flight" "$(mig status)" "*02_upper*active*big * rows (in progress)*"

step "start again resumes" mig start "$T_DIR/m/02_upper.yaml" --backfill-batch-size 5000
expect_match "resumed, not restarted" "$(cat "$T_DIR/step.out")" "*resuming start of 02_upper*"
expect_eq "every row backfilled" "$(q "SELECT count(*) FROM big WHERE _pgflip_new_upper_name IS DISTINCT FROM upper(name)")" 0
expect_eq "every row updated exactly once" "$(q "SELECT count(*) FILTER (WHERE hits <> 1) || '/' || count(*) FROM big")" "0/$ROWS"
expect_match "status shows the finished backfill" "$(mig status)" "*02_upper*active*big $ROWS rows (finished)*"
step "complete" mig complete
expect_eq "final column NOT NULL" "$(q "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'upper_name'")" "t"
expect_eq "no temporary objects" "$(leftovers)" 0

# no primary key or usable unique key: ctid batches
q "CREATE TABLE nokey (name text); INSERT INTO nokey SELECT 'n' || g FROM generate_series(1, 5000) g" >/dev/null
cat >"$T_DIR/m/03_nokey.yaml" <<'EOF'
operations:
  - add_column: {table: nokey, up: upper(name), column: {name: u, type: text}}
EOF
step "ctid backfill" mig start "$T_DIR/m/03_nokey.yaml" --backfill-batch-size 500 --complete
expect_eq "ctid backfill filled every row" "$(q "SELECT count(*) FROM nokey WHERE u IS DISTINCT FROM upper(name)")" 0
mig_drop_db mig_backfill

#!/bin/sh
# A parallel backfill (--backfill-workers N): the table's key range is cut
# into N ranges, each filled on its own connection; killed in the middle
# (kill -9) and started again, it resumes each range where its last batch
# ended: every row is backfilled exactly once (a test trigger counts the
# updates each row receives), with a composite key too.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

ROWS=120000
mig_db mig_backfill_workers
mkdir -p "$T_DIR/m"
cat >"$T_DIR/m/01_base.yaml" <<'EOF2'
operations:
  - create_table:
      name: big
      columns:
        - {name: id, type: bigint, pk: true}
        - {name: name, type: text}
        - {name: hits, type: integer, default: "0"}
  - create_table:
      name: pairs
      columns:
        - {name: a, type: integer, pk: true}
        - {name: b, type: text, pk: true}
        - {name: hits, type: integer, default: "0"}
EOF2
cat >"$T_DIR/m/02_upper.yaml" <<'EOF2'
operations:
  - add_column: {table: big, up: upper(name), column: {name: upper_name, type: text}}
  - add_column: {table: pairs, up: "b || a", column: {name: ba, type: text}}
EOF2
step "base" mig start "$T_DIR/m/01_base.yaml" --complete
q "INSERT INTO big (id, name) SELECT g, 'row' || g FROM generate_series(1, $ROWS) g;
   INSERT INTO pairs (a, b) SELECT g % 97, 'k' || g FROM generate_series(1, 30000) g;
   ANALYZE big; ANALYZE pairs;
   CREATE FUNCTION count_hits() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN NEW.hits := OLD.hits + 1; RETURN NEW; END \$\$;
   CREATE TRIGGER count_hits BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION count_hits();
   CREATE TRIGGER count_hits BEFORE UPDATE ON pairs FOR EACH ROW EXECUTE FUNCTION count_hits()" >/dev/null

mig_bg "$T_DIR/run1.log" start "$T_DIR/m/02_upper.yaml" --backfill-workers 3 --backfill-batch-size 1000 \
	--backfill-batch-delay 10
mig_kill_after 02_upper big 15000
sleep 0.3
expect_match "status while killed: a parallel backfill in progress" "$(mig status)" \
	"*02_upper*active*big * rows (in progress, parallel)*"
expect_eq "three ranges saved" "$(q "SELECT jsonb_array_length(backfill -> 'big' -> 'ranges') FROM pgflip.migrations WHERE name = '02_upper'")" 3
left=$(q "SELECT count(*) FROM big WHERE _pgflip_new_upper_name IS NULL")
if [ "$left" -gt 0 ] && [ "$left" -lt $ROWS ]; then ok "backfill was partial when killed ($left rows left)"; else not_ok "backfill was partial when killed"; echo "    # rows left: $left"; fi

step "start again resumes the ranges" mig start "$T_DIR/m/02_upper.yaml" --backfill-workers 3 --backfill-batch-size 4000
expect_match "three connections" "$(cat "$T_DIR/step.out")" "*backfilling public.big on 3 connections*"
expect_match "the composite key too" "$(cat "$T_DIR/step.out")" "*backfilling public.pairs on 3 connections*"
expect_eq "every row backfilled" "$(q "SELECT count(*) FROM big WHERE _pgflip_new_upper_name IS DISTINCT FROM upper(name)")" 0
expect_eq "every row updated exactly once" "$(q "SELECT count(*) FILTER (WHERE hits <> 1) || '/' || count(*) FROM big")" "0/$ROWS"
expect_eq "composite key: every row once" "$(q "SELECT count(*) FILTER (WHERE hits <> 1 OR _pgflip_new_ba IS DISTINCT FROM b || a) || '/' || count(*) FROM pairs")" "0/30000"
expect_match "status: finished, with every row" "$(mig status)" "*02_upper*active*big $ROWS rows (finished)*"
expect_match "--backfill-workers 0 is refused" "$(mig start "$T_DIR/m/02_upper.yaml" --backfill-workers 0 2>&1)" \
	"*--backfill-workers: expected 1..64*"
step "complete" mig complete
expect_eq "no temporary objects" "$(leftovers)" 0
mig_drop_db mig_backfill_workers

#!/bin/sh
# Writes while the backfill is unfinished: a start killed after its first
# batch leaves the sync triggers, the NOT NULL CHECK (NOT VALID) and the new
# version schema live with most rows not backfilled yet. An old-version
# UPDATE of such a row that changes only an unrelated column must succeed
# and fill the new columns (before, it failed with 23514 on _pgflip_nn_*);
# an unrelated update of a backfilled row still runs no PL/pgSQL, and a
# new-version update of an unrelated column leaves the old version's values
# alone. The resumed start and complete then finish.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

mig_db mig_bfwrites
mkdir -p "$T_DIR/m"
cat >"$T_DIR/m/01_base.yaml" <<'EOF'
operations:
  - create_table:
      name: accounts
      columns:
        - {name: id, type: bigint, pk: true}
        - {name: name, type: text}
        - {name: balance, type: integer, default: "0"}
  - create_table:
      name: notes
      columns:
        - {name: id, type: bigint, pk: true}
        - {name: score, type: text, nullable: true}
        - {name: hits, type: integer, default: "0"}
EOF
cat >"$T_DIR/m/02_label.yaml" <<'EOF'
operations:
  - add_column:
      table: accounts
      up: upper(name)
      column: {name: label, type: text}
  - alter_column: {table: notes, column: score, type: integer, up: "score::integer", down: "score::text"}
EOF
step "base" mig start "$T_DIR/m/01_base.yaml" --complete
q "INSERT INTO accounts (id, name) SELECT g, 'n' || g FROM generate_series(1, 100) g;
   INSERT INTO notes (id, score) SELECT g, g::text FROM generate_series(1, 100) g" >/dev/null

done_rows() { backfill_done 02_label accounts; }

# the first batch (10 rows) commits, then the long delay leaves time to kill
mig_bg "$T_DIR/run1.log" start "$T_DIR/m/02_label.yaml" --backfill-batch-size 10 --backfill-batch-delay 5000
mig_kill_after 02_label accounts 10
expect_eq "start killed after its first batch" "$(done_rows)" 10
expect_eq "rows the backfill has not reached" "$(q "SELECT count(*) FROM accounts WHERE _pgflip_new_label IS NULL")" 90

# old version: unrelated column of rows the backfill has not reached
out=$(qs public_01_base "UPDATE accounts SET balance = balance + 1 WHERE id > 50"); rc=$?
expect_eq "old-version UPDATE of an unrelated column succeeds" "$rc:$out" "0:"
expect_eq "that UPDATE filled the new column" \
	"$(qs public_02_label "SELECT count(*) FILTER (WHERE label = upper(name)) || '/' || count(*) FROM accounts WHERE id > 50")" "50/50"
expect_eq "rows nobody wrote still wait for the backfill" "$(q "SELECT count(*) FROM accounts WHERE _pgflip_new_label IS NULL")" 40
out=$(qs public_01_base "UPDATE notes SET hits = hits + 1 WHERE id > 50"); rc=$?
expect_eq "old-version UPDATE of a table with a type change succeeds" "$rc:$out" "0:"
expect_eq "that UPDATE filled the copied column" \
	"$(qs public_02_label "SELECT count(*) FILTER (WHERE score = id) || '/' || count(*) FROM notes WHERE id > 50")" "50/50"

# PL/pgSQL calls of one UPDATE statement through the old version
sync_calls() {
	psql -X -qAt -v ON_ERROR_STOP=1 -c "SET search_path = public_01_base" -c "BEGIN" -c "SET LOCAL track_functions = 'pl'" \
		-c "$1" -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions WHERE funcname LIKE '\\_pgflip%'" -c "COMMIT" 2>&1
}
expect_eq "unrelated update of a backfilled row runs no PL/pgSQL" "$(sync_calls "UPDATE accounts SET balance = balance + 1 WHERE id = 1")" 0
expect_eq "unrelated update of a row not backfilled runs the sync trigger" "$(sync_calls "UPDATE accounts SET balance = balance + 1 WHERE id = 20")" 2
expect_eq "the backfill's progress is untouched by these writes" "$(done_rows)" 10

# new version: an unrelated column of a row not backfilled keeps the old version's value
qs public_02_label "UPDATE notes SET hits = hits + 1 WHERE id = 30" >/dev/null
expect_eq "new-version UPDATE of an unrelated column keeps the old value" "$(qs public_01_base "SELECT score || ':' || hits FROM notes WHERE id = 30")" "30:1"

step "start again resumes the backfill" mig start "$T_DIR/m/02_label.yaml" --backfill-batch-size 10
expect_match "resumed, not restarted" "$(cat "$T_DIR/step.out")" "*resuming start of 02_label*"
step "complete validates NOT NULL" mig complete
expect_eq "every label filled" "$(q "SELECT count(*) FROM accounts WHERE label IS DISTINCT FROM upper(name)")" 0
expect_eq "balances as written" "$(q "SELECT sum(balance) FROM accounts")" 52
expect_eq "scores converted" "$(q "SELECT count(*) FROM notes WHERE score IS DISTINCT FROM id")" 0
expect_eq "no temporary objects" "$(leftovers)" 0
mig_drop_db mig_bfwrites

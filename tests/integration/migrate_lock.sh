#!/bin/sh
# Lock safety: a session holds a lock on the table in an open transaction;
# start's lock-queue guard sees it and waits without queueing behind it
# (logging who it is), so other sessions' reads and writes are not held up
# at all, and start succeeds once the lock is released. A lock the guard
# cannot foresee (the catalog read behind an ACCESS EXCLUSIVE holder) is
# waited for under lock_timeout with retries, its blocker logged.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

mig_base_t mig_lock 1000
cat >"$T_DIR/m/02_add.yaml" <<'EOF'
operations:
  - add_column: {table: t, up: "v || '!'", column: {name: w, type: text, nullable: true}}
EOF

ms() { echo $(($(date +%s%N) / 1000000)); }
HOLD=3
# the blocker: an open transaction that read the table (ACCESS SHARE) and sleeps
psql -X -q -c "BEGIN" -c "SELECT count(*) FROM t" -c "SELECT pg_sleep($HOLD)" -c "COMMIT" >/dev/null 2>&1 &
blocker=$!
sleep 0.3
t0=$(ms)
mig start "$T_DIR/m/02_add.yaml" --lock-timeout 200 --retry-total 20000 >"$T_DIR/start.log" 2>&1 &
starter=$!
# meanwhile other sessions read and write; measure the slowest
max=0 n=0
while kill -0 $starter 2>/dev/null && [ $n -lt 400 ]; do
	a=$(ms)
	psql -X -qAt -c "SET statement_timeout = '10s'" -c "SELECT count(*) FROM t" -c "UPDATE t SET v = v WHERE id = 1" >/dev/null 2>&1
	d=$(($(ms) - a)); [ $d -gt $max ] && max=$d
	n=$((n + 1))
done
wait $starter; rc=$?
t1=$(ms)
wait $blocker
expect_eq "start succeeded after the lock was released" "$rc" 0
took=$((t1 - t0))
if [ $took -ge $(((HOLD - 1) * 1000)) ]; then ok "start waited for the blocker (${took} ms)"; else not_ok "start waited for the blocker"; echo "    # took ${took} ms"; fi
# the guard never queued: a session waited only for its own psql start
if [ $max -lt 600 ]; then ok "other sessions never waited (slowest ${max} ms over $n rounds)"; else not_ok "other sessions never waited"; echo "    # slowest: ${max} ms"; fi
expect_match "the guard named the long transaction and did not queue" "$(cat "$T_DIR/start.log")" \
	"*not queueing step 1 (add new column) behind a long transaction: pid * holds AccessShareLock on t)*"
expect_no_match "no lock_timeout expired" "$(cat "$T_DIR/start.log")" "*lock_timeout on *retrying in*"
expect_eq "migration active" "$(mig latest)" "public_02_add"
expect_eq "backfill ran" "$(qs public_02_add "SELECT w FROM t WHERE id = 2")" "v2!"

# retries give up after --retry-total and leave nothing behind
step "rollback" mig rollback
psql -X -q -c "BEGIN" -c "SELECT count(*) FROM t" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null 2>&1 &
blocker=$!
sleep 0.3
out=$(mig start "$T_DIR/m/02_add.yaml" --lock-timeout 100 --retry-total 800 2>&1); rc=$?
wait $blocker
expect_eq "gives up after the retry budget" "$rc" 1
expect_match "says why" "$out" "*gave up on step 1 (add new column) after * ms: pid * held its lock the whole time*"
expect_eq "nothing left after giving up" "$(leftovers)" 0
expect_eq "state: rolled back" "$(q "SELECT status FROM pgflip.migrations WHERE name = '02_add'")" "rolled_back"
# a session holding the table in ACCESS EXCLUSIVE delays the catalog read
# (it locks what it describes), under lock_timeout with retries, rather
# than stalling the plan until that session ends
psql -X -q -c "BEGIN" -c "LOCK TABLE t IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null 2>&1 &
blocker=$!
sleep 0.3
t0=$(ms)
out=$(mig start "$T_DIR/m/02_add.yaml" --lock-timeout 200 --retry-total 20000 2>&1); rc=$?
t1=$(ms)
wait $blocker
expect_eq "start after an ACCESS EXCLUSIVE holder: exit 0" "$rc" 0
expect_match "the catalog read waited under lock_timeout and retried" "$out" "*lock_timeout on reading the catalog (attempt 1)*"
expect_match "the blocker logged with pg_blocking_pids" "$out" "*waiting for a lock (reading the catalog); blocked by pid * holds AccessExclusiveLock: SELECT pg_sleep*"
if [ $((t1 - t0)) -ge 1200 ]; then ok "it went on once the holder left ($((t1 - t0)) ms)"; else not_ok "it went on once the holder left"; echo "    # took $((t1 - t0)) ms"; fi
# a holder the guard cannot see (a prepared transaction has no session):
# the first attempts time out, one succeeds once it commits, and what the
# failed attempts said is no error of the flow's (the backfill runs)
step "rollback before the prepared holder" mig rollback
psql -X -q -c "ANALYZE t" # a known row count: the backfill does not count (which cleared the error)
psql -X -q -c "BEGIN" -c "LOCK TABLE t IN ACCESS SHARE MODE" -c "PREPARE TRANSACTION 'mig_lock_hold'" >/dev/null
(sleep 1.5; psql -X -q -c "COMMIT PREPARED 'mig_lock_hold'" >/dev/null) &
committer=$!
out=$(mig start "$T_DIR/m/02_add.yaml" --lock-timeout 200 --retry-total 20000 2>&1); rc=$?
wait $committer
expect_eq "after a prepared holder: start succeeds" "$rc" 0
expect_match "its attempts timed out first" "$out" "*lock_timeout on step 1 (add new column) (attempt 2)*"
expect_eq "and the backfill ran" "$(qs public_02_add "SELECT w FROM t WHERE id = 2")" "v2!"
mig_drop_db mig_lock

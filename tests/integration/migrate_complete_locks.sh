#!/bin/sh
# complete under new-version traffic: a client of the new version schema runs
# short transactions back to back (BEGIN; SELECT from the view; 50 ms;
# COMMIT), so it always holds or is about to take the view's lock and then
# the table's. complete must take its locks in the same order (it used to
# hold the table's ACCESS EXCLUSIVE lock while it waited for the views it
# rebuilds: a deadlock that lock_timeout broke every 500 ms, stalling the
# client each time). Then a lock that does make complete wait: the retry
# log names the step that waited.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/data/migrate/lib.sh"

mig_base_t mig_complete_locks 100
cat >"$T_DIR/m/02_w.yaml" <<'EOF'
operations:
  - add_column: {table: t, up: "v || '!'", column: {name: w, type: text}}
EOF
cat >"$T_DIR/m/03_x.yaml" <<'EOF'
operations:
  - add_column: {table: t, up: "length(v)", column: {name: x, type: integer}}
EOF
step "start 02_w" mig start "$T_DIR/m/02_w.yaml"

# the new-version client; \timing gives each statement's time
{
	echo "SET search_path = public_02_w;"
	printf "%s\n" "\\timing on"
	i=0
	while [ $i -lt 400 ]; do
		echo "BEGIN; SELECT count(*) FROM t WHERE w IS NOT NULL; SELECT pg_sleep(0.05); COMMIT;"
		i=$((i + 1))
	done
} >"$T_DIR/client.sql"
psql -X -qAt -f "$T_DIR/client.sql" >"$T_DIR/client.out" 2>&1 &
client=$!
T_PIDS="$T_PIDS $client"
sleep 0.5
mig complete --lock-timeout 500 --retry-total 5000 >"$T_DIR/complete.log" 2>&1; rc=$?
sleep 0.3
kill $client 2>/dev/null
wait $client 2>/dev/null
expect_eq "complete succeeds under new-version traffic" "$rc" 0
log=$(cat "$T_DIR/complete.log")
case "$log" in *lock_timeout*|*deadlock*) not_ok "complete never hit lock_timeout or a deadlock"; echo "$log" | sed 's/^/    # /' ;;
*) ok "complete never hit lock_timeout or a deadlock" ;; esac
expect_eq "the client saw no error" "$(grep -c ERROR "$T_DIR/client.out")" 0
slowest=$(sed -n 's/^Time: \([0-9]*\)\..*/\1/p' "$T_DIR/client.out" | sort -n | tail -n 1)
if [ -n "$slowest" ] && [ "$slowest" -lt 400 ]; then ok "the client never stalled for long (slowest statement ${slowest} ms)"
else not_ok "the client never stalled for long"; echo "    # slowest statement: '${slowest}' ms"; fi
expect_eq "the new version reads the completed table" "$(qs public_02_w "SELECT w FROM t WHERE id = 7")" "v7!"

# a session takes the table's lock again and again (transactions of 0.3 s
# back to back, for 1.5 s). While one is old (over 100 ms), the lock-queue
# guard does not queue complete behind it; an attempt that begins while one
# is young waits in the step that drops the sync trigger (not in the first
# step of its transaction) until lock_timeout, and the retry line says so
step "start 03_x" mig start "$T_DIR/m/03_x.yaml"
{
	i=0
	while [ $i -lt 5 ]; do
		echo "BEGIN; LOCK TABLE public.t IN ACCESS SHARE MODE; SELECT pg_sleep(0.3); COMMIT;"
		i=$((i + 1))
	done
} >"$T_DIR/holder.sql"
psql -X -q -f "$T_DIR/holder.sql" >/dev/null 2>&1 &
blocker=$!
sleep 0.2
mig complete --lock-timeout 200 --retry-total 10000 >"$T_DIR/complete2.log" 2>&1; rc=$?
wait $blocker
expect_eq "complete succeeds once the lock is released" "$rc" 0
expect_match "the guard named the old transaction" "$(cat "$T_DIR/complete2.log")" \
	"*not queueing step [0-9]* behind a long transaction: pid * holds AccessShareLock on t)*"
expect_match "the retry names the step that waited" "$(cat "$T_DIR/complete2.log")" \
	"*lock_timeout on step [0-9]* (drop the sync trigger on t) (attempt *); retrying in*"
expect_eq "the new version reads the completed table" "$(qs public_03_x "SELECT x FROM t WHERE id = 7")" 2
mig_drop_db mig_complete_locks

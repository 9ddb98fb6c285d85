#!/bin/sh
# The drain window (ddl_drain_timeout, issue 11). Ten pgbench clients
# through pgflip (transaction mode) run back-to-back transactions of 200 to
# 500 ms that read the table: nearly always some of them hold its lock
# longer than the lock-queue guard lets a step queue behind, so start's
# ACCESS EXCLUSIVE step gets no moment of its own.
#   - ddl_drain_timeout = 0 (no windows): no window opens; the guard holds
#     the step back until, by chance or at the load's end, it has a moment.
#   - ddl_drain_timeout = 0.6: after the guard held it back a second, the
#     migrator asks for a window, pgflip holds the database's new
#     transactions until those in flight end (at most 500 ms), the step runs,
#     and everything held goes on: start succeeds under the load, no client
#     sees an error, none waits much more than the window.
#   - the session in the way is not pgflip's (psql straight to PostgreSQL):
#     no window opens, no client is held.
. "$TOP/tests/lib/check.sh"

make_db pdrain
apsql -c "CREATE TABLE items (id bigint PRIMARY KEY, qty int NOT NULL)" \
	-c "INSERT INTO items SELECT g, g FROM generate_series(1, 1000) g"
cat >"$T_DIR/02_add.yaml" <<'YAML'
operations:
  - add_column:
      table: items
      up: qty * 2
      column: {name: twice, type: integer}
YAML
cat >"$T_DIR/tx.sql" <<'SQL'
\set k random(1, 1000)
BEGIN;
SELECT qty FROM items WHERE id = :k;
SELECT pg_sleep(0.2 + random() * 0.3);
END;
SQL
port=$(free_port)
drain_conf() { txn_conf "$port" 12 "ddl_drain_timeout = $1"; }
drain_conf 0
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }

ms() { echo $(($(date +%s%N) / 1000000)); }
# load SECONDS NAME: 10 pgbench clients through pgflip, each transaction's
# latency logged (pgbench --log: NAME-tx.*), in the background (pid in lg)
load() {
	(cd "$T_DIR" && exec pgbench -n -h 127.0.0.1 -p "$port" -U app -c 10 -T "$1" -f tx.sql \
		--log --log-prefix="$2-tx" "$T_DB" >"$T_DIR/$2.out" 2>&1) &
	lg=$!
	T_PIDS="$T_PIDS $lg"
}
# slowest NAME: the slowest transaction of that load (ms)
slowest() { cat "$T_DIR/$1"-tx.* | awk '$3 > m { m = $3 } END { printf "%d\n", m / 1000 }'; }
drain_json() { ctl --json status | sed -n 's/.*"drain":{\([^}]*\)}.*/\1/p'; }

# 1. no drain windows: the guard holds the step back, no window opens
load 4 nodrain
sleep 1
t0=$(ms)
out=$(ctl migrate start "$T_DIR/02_add.yaml" 2>&1); rc=$?
took=$(($(ms) - t0))
wait $lg; lrc=$?
expect_eq "without windows: start succeeds in the end" "$rc" 0
echo "# without windows start took $took ms"
expect_match "the guard named the transactions in the way" "$(cat "$T_DIR/pgflip.log")" \
	"*not queueing step 1 (add new column) behind a long transaction: pid * (app, pgbench, *holds AccessShareLock on items)*"
expect_eq "without windows: pgbench ok" "$lrc" 0
expect_no_match "without windows: the migrator asked for none" "$(cat "$T_DIR/pgflip.log")" "*drain window*"
expect_match "status: no window opened" "$(drain_json)" '"open":null,"windows":0,*'

# 2. windows of 600 ms: the step runs under the load
out=$(ctl migrate rollback 2>&1); rc=$?
expect_eq "rollback: exit 0" "$rc" 0
drain_conf 0.6
kill -HUP "$PGFLIP_PID"
sleep 0.5
from=$(($(wc -l <"$T_DIR/pgflip.log") + 1))
load 8 drain
sleep 1
t0=$(ms)
out=$(ctl migrate start "$T_DIR/02_add.yaml" 2>&1); rc=$?
took=$(($(ms) - t0))
running=0; kill -0 $lg 2>/dev/null && running=1
wait $lg; lrc=$?
log=$(log_since "$from")
expect_eq "with windows: start succeeds" "$rc" 0
expect_eq "with windows: while the load still ran" "$running" 1
expect_match "the migrator asked for a window and the step ran in it" "$log" \
	"*drain window: the proxy's transactions in flight ended; step 1 (add new column) runs (* ms of the window left)*"
expect_match "pgflip held the database's new transactions" "$log" "*drain pdrain: holding new transactions for at most 600 ms (* in flight)*"
held=$(printf '%s\n' "$log" | sed -n 's/.*drain pdrain: new transactions held \([0-9]*\)\..*/\1/p' | sort -n | tail -n 1)
if [ -n "$held" ] && [ "$held" -le 650 ]; then ok "no window held clients past ddl_drain_timeout (longest ${held} ms)"; else
	not_ok "no window held clients past ddl_drain_timeout"; echo "    # longest: '$held'"; fi
expect_eq "with windows: pgbench saw no error" "$lrc" 0
expect_match "pgbench: no failed transaction" "$(cat "$T_DIR/drain.out")" "*number of failed transactions: 0 *"
slow=$(slowest drain)
# a transaction is at most 500 ms; held at most 600 ms before it starts
if [ "$slow" -gt 200 ] && [ "$slow" -lt 1300 ]; then ok "the slowest transaction: ${slow} ms (500 ms of its own at most, 600 held)"; else
	not_ok "the slowest transaction waited at most the window"; echo "    # slowest: $slow ms"; fi
expect_match "status counts the window" "$(drain_json)" '"open":null,"windows":[1-9]*,"drained":[1-9]*'
expect_eq "the backfill ran" "$(apsql -c "SELECT count(*) FROM items WHERE _pgflip_new_twice IS DISTINCT FROM qty * 2")" 0

# 3. the session in the way is not pgflip's: no window, no client held
out=$(ctl migrate rollback 2>&1); rc=$?
expect_eq "rollback: exit 0" "$rc" 0
before=$(drain_json)
apsql -c "BEGIN" -c "SELECT count(*) FROM items" -c "SELECT pg_sleep(2.5)" -c "COMMIT" >/dev/null &
blocker=$!
sleep 0.3
from=$(($(wc -l <"$T_DIR/pgflip.log") + 1))
out=$(ctl migrate start "$T_DIR/02_add.yaml" 2>&1); rc=$?
wait $blocker
log=$(log_since "$from")
expect_eq "a direct holder: start succeeds once it ends" "$rc" 0
expect_match "no window: the holder is not pgflip's" "$log" \
	"*no drain window for step 1 (add new column): no session in the way is one of pgflip's servers of pdrain*"
expect_no_match "no client held" "$log" "*holding new transactions*"
w0=$(printf '%s' "$before" | sed -n 's/.*"windows":\([0-9]*\).*/\1/p')
expect_match "status: refused, no new window" "$(drain_json)" "*\"windows\":$w0,*\"refused\":[1-9]*"
pgflip_stop

#!/bin/sh
# Migrations inside the proxy (issue 10): `pgflip ctl migrate start FILE`
# runs the migration on pgflip's worker thread while clients go on; its
# version schema is routable once start is done; `promote` makes it the
# default; `rollback` flips the routes back at once and drops the version
# schema only when no client is still inside a transaction on it; `versions`
# and `migrate status` show where things stand.
. "$TOP/tests/lib/check.sh"

make_db pmig
apsql -c "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)" \
	-c "INSERT INTO items SELECT g, 'item' || g FROM generate_series(1, 5000) g"
cp "$TOP/tests/data/migrate/02_len.yaml" "$T_DIR/02_len.yaml"
port=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port" "pool_mode = transaction
default_pool_size = 4
log_level = info" ""
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }

# mig_wait PATTERN: polls `migrate status` (30 s at most) until its JSON
# matches PATTERN (a case pattern)
mig_wait() {
	i=0
	while [ $i -lt 300 ]; do
		case "$(ctl --json migrate status)" in $1) return 0 ;; esac
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

# a client that keeps working through all of it
( i=0; while [ ! -f "$T_DIR/stop" ]; do
	i=$((i + 1))
	PGAPPNAME=steady fpsql "$port" -c "SELECT name FROM items WHERE id = $((i % 5000 + 1))" >/dev/null 2>>"$T_DIR/steady.err" ||
		echo "failed at $i" >>"$T_DIR/steady.err"
done ) &
steady=$!

out=$(ctl migrate start "$T_DIR/02_len.yaml" 2>&1); rc=$?
expect_eq "migrate start through ctl: exit 0" "$rc" 0
expect_match "ctl waits and says done" "$out" "*done: 02_len*"
vs=$(apsql -c "SELECT version_schema FROM pgflip.migrations WHERE name = '02_len'")
check "the version schema exists" test -n "$vs"
expect_eq "backfill filled every row" "$(apsql -c "SELECT count(*) FROM items WHERE _pgflip_new_name_len IS DISTINCT FROM length(name)" 2>/dev/null || apsql -c "SELECT count(*) FROM $vs.items WHERE name_len <> length(name)")" 0
st=$(ctl --json migrate status)
expect_match "migrate status: done, with the migration" "$st" '*"phase":"done"*"migration":"02_len"*'
v=$(ctl --json versions)
expect_match "versions: the version schema, active, not the default" "$v" "*\"version_schema\":\"$vs\"*\"state\":\"active\"*\"default\":false*"
expect_eq "nothing moved by itself: a plain client still on public" \
	"$(fpsql "$port" -c "SELECT current_setting('search_path')")" public

ctl route app 'v2-*' "$vs" >/dev/null
expect_eq "a v2 client pinned to the new version sees name_len" \
	"$(PGAPPNAME=v2-a fpsql "$port" -c "SELECT name_len FROM items WHERE id = 42")" 6
ctl promote "$vs" >/dev/null
expect_eq "promote: a plain client now runs on $vs" "$(fpsql "$port" -c "SELECT current_setting('search_path')")" "$vs"

# rollback while a client is inside a transaction on the version schema: the
# routes flip at once, the DDL waits for that transaction
PGAPPNAME=v2-long fpsql "$port" -c "BEGIN" -c "SELECT name_len FROM items WHERE id = 1" -c "SELECT pg_sleep(2)" \
	-c "SELECT name_len FROM items WHERE id = 2" -c "COMMIT" >"$T_DIR/long.out" 2>&1 &
long=$!
sleep 0.5
t0=$(date +%s%N)
out=$(ctl rollback 2>&1); rc=$?
t1=$(date +%s%N)
expect_eq "rollback: exit 0" "$rc" 0
expect_match "rollback: routes moved back to public" "$out" "*route(s) moved from $vs to public*done*"
wait $long; lrc=$?
expect_eq "the client inside a transaction on $vs finished it without error" "$lrc:$(tr '\n' ' ' <"$T_DIR/long.out")" "0:5  5 "
check "rollback waited for that transaction (took $(( (t1 - t0) / 1000000 )) ms)" test $(( (t1 - t0) / 1000000 )) -ge 1000
expect_eq "the version schema is gone" "$(apsql -c "SELECT count(*) FROM pg_namespace WHERE nspname = '$vs'")" 0
expect_eq "plain clients are back on public" "$(fpsql "$port" -c "SELECT current_setting('search_path')")" public
expect_eq "so are the pinned ones" "$(PGAPPNAME=v2-a fpsql "$port" -c "SELECT current_setting('search_path')")" public
v=$(ctl --json versions)
expect_match "versions: rolled back" "$v" '*"state":"rolled_back"*'
expect_match "a route to the rolled-back version is refused" "$(ctl route app 'v3-*' "$vs" 2>&1)" \
	"*not routable: its migration 02_len was rolled back*"

# start again, promote, complete
out=$(ctl migrate start "$T_DIR/02_len.yaml" 2>&1); rc=$?
expect_eq "start again: exit 0" "$rc" 0
ctl promote "$vs" >/dev/null
# complete contracts the previous version (public): it waits while a route
# names it (the rollback moved the v2 pin there) or a client is on it
ctl --no-wait migrate complete >/dev/null
mig_wait '*"phase":"wait_unused"*'
expect_match "complete waits while a pin names public" "$(ctl --json migrate status)" '*"phase":"wait_unused"*"note":"routes naming it: app v2-\**'
ctl route app 'v2-*' "$vs" >/dev/null
mig_wait '*"running":false*'
out=$(ctl --json migrate status)
expect_match "complete went on once the pin moved, and finished" "$out" '*"running":false*"result":{"status":"ok"*'
expect_match "the log says what complete waited for" "$(cat "$T_DIR/pgflip.log")" "*waiting until version schema public is unused: routes naming it: app v2-\**"
expect_eq "after complete, the table has name_len" "$(apsql -c "SELECT name_len FROM public.items WHERE id = 7")" 5
expect_eq "clients on $vs still see it" "$(fpsql "$port" -c "SELECT name_len FROM items WHERE id = 7")" 5

# a canary on a new version whose clients fail: the automatic rollback
# flips the routes and rolls the migration back
cat >"$T_DIR/03_flag.yaml" <<'YAML'
operations:
  - add_column:
      table: items
      column: {name: flag, type: boolean, nullable: true}
YAML
out=$(ctl migrate start "$T_DIR/03_flag.yaml" 2>&1); rc=$?
expect_eq "start 03_flag: exit 0 ($out)" "$rc" 0
vs3=$(apsql -c "SELECT version_schema FROM pgflip.migrations WHERE name = '03_flag'")
ctl versions >/dev/null # the history now names 03_flag as active
sleep 0.3
out=$(ctl canary "$vs3" 50 --key connection --max-error-ratio 2 --window 3 --min-transactions 10 2>&1); rc=$?
expect_eq "canary on $vs3 with automatic rollback: exit 0 ($out)" "$rc" 0
# clients that fail on the canary only (division by zero there)
i=0
while [ $i -lt 150 ]; do
	i=$((i + 1))
	fpsql "$port" -c "SELECT 1 / (current_setting('search_path') <> '$vs3')::int" >/dev/null 2>&1
	[ "$(apsql -c "SELECT status FROM pgflip.migrations WHERE name = '03_flag'")" = rolled_back ] && break
done
expect_eq "the failing canary's migration was rolled back" \
	"$(apsql -c "SELECT status FROM pgflip.migrations WHERE name = '03_flag'")" rolled_back
expect_eq "... and its version schema dropped" "$(apsql -c "SELECT count(*) FROM pg_namespace WHERE nspname = '$vs3'")" 0
expect_match "the log says why, with both rates" "$(cat "$T_DIR/pgflip.log")" "*canary $vs3 failed*rolling back its migration*"
expect_eq "the canary is over" "$(ctl --json routes | grep -c "\"canary\":null")" 1
mig_wait '*"running":false*' # the rollback job ends after its state row says so

# the event loop never waits for the worker: a backfill that takes seconds
# (its up expression sleeps 0.5 ms a row) leaves the loop's lag low, and
# clients are served meanwhile
cat >"$T_DIR/05_slow.yaml" <<'YAML'
operations:
  - add_column:
      table: items
      up: length(name) + length(pg_sleep(0.0005)::text)
      column: {name: slow, type: integer, nullable: true}
YAML
t0=$(date +%s%N)
ctl --no-wait migrate start "$T_DIR/05_slow.yaml" >/dev/null
mig_wait '*"phase":"backfill"*'
served=$(fpsql "$port" -c "SELECT count(*) FROM items")
mig_wait '*"running":false*'
t1=$(date +%s%N)
lag=$(ctl --json status | sed -n 's/.*"last_10s":\([0-9]*\).*/\1/p')
check "the slow backfill took seconds ($(( (t1 - t0) / 1000000 )) ms)" test $(( (t1 - t0) / 1000000 )) -ge 2000
expect_eq "a client was served during the backfill" "$served" 5000
check "the event loop's lag stayed low meanwhile (${lag} ms)" test "${lag:-99999}" -lt 1000
ctl rollback >/dev/null 2>&1
# ... and the lag figure does show a loop that stood still
kill -STOP "$PGFLIP_PID"; sleep 1.5; kill -CONT "$PGFLIP_PID"; sleep 0.3
lag=$(ctl --json status | sed -n 's/.*"last_10s":\([0-9]*\).*/\1/p')
check "a loop stopped for 1.5 s shows a lag of over a second (${lag} ms)" test "${lag:-0}" -ge 1000

# errors: a bad file, two jobs at once, a database that is not there
printf 'operations: [{add_column: {table: nope}}]\n' >"$T_DIR/bad.yaml"
out=$(ctl migrate start "$T_DIR/bad.yaml" 2>&1); rc=$?
expect_eq "a bad migration file: exit 1" "$rc" 1
expect_match "... with the loader's reason" "$out" "*error: failed*"
out=$(ctl migrate start "$T_DIR/02_len.yaml" --db nosuch 2>&1); rc=$?
expect_eq "an unknown --db: exit 1" "$rc" 1
expect_match "... naming it" "$out" "*no \[databases\] entry nosuch*"
expect_match "ctl cannot read a missing file" "$(ctl migrate start "$T_DIR/missing.yaml" 2>&1)" "*cannot read*"
out=$(ctl migrate start "$T_DIR/02_len.yaml" --role pmig_nosuch 2>&1); rc=$?
expect_eq "migrate start --role: passed to the migration (an unknown role: exit 1)" "$rc" 1
expect_match "... with the server's refusal" "$out" '*cannot SET ROLE \"pmig_nosuch\": ERROR:  role \"pmig_nosuch\" does not exist*'

touch "$T_DIR/stop"
wait $steady
expect_eq "the steady client saw no error through all of it" "$(cat "$T_DIR/steady.err" 2>/dev/null)" ""
pgflip_stop

#!/bin/sh
# The story of issue 10, end to end, under a fixed-rate load through pgflip
# in transaction mode (build/loadgen; the story itself is tests/lib/story.sh,
# which bench/story.sh tells again on 1M rows):
#   app-v1 clients (pinned: app.app-v1* = public) read and write from the
#   start; `migrate start` renames a column and adds a NOT NULL column with
#   an up expression; app-v2 clients start, pinned to the version schema;
#   unpinned clients (code that works on both versions) under a 50 % canary;
#   promote; the app-v2 clients leave, then rollback (its instant flip moves
#   the default and the app-v2 pin back to public; the DDL runs once no
#   client is on the version schema); start again; app-v2 clients again,
#   promote; the app-v1 clients leave (the rollout is over); complete.
# What a user must see throughout: no failed transaction in any group (each
# failure is printed with its SQLSTATE), every transaction that was due was
# sent, no second without a commit, every route flip reached every client
# of it within half a second, every committed write there with its values
# at the end (the load generator's ledger against the table, and through
# both versions' views while both exist), and no client waiting on a lock
# longer than the migrator's lock_timeout plus a margin.
#
# Lock waits are measured by sampling pg_locks (locks not granted, their
# waitstart, pg_blocking_pids) every 10 ms from a connection straight to
# PostgreSQL (loadgen --lock-dsn), per application_name: pgflip carries each
# client's application_name to its backend. The load generator's max
# latency is printed beside it, not asserted (on this shared 2-core machine
# it also holds CPU starvation).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/lib/story.sh"

ROWS=20000
LOCK_TIMEOUT_MS=500 # the migrator's default (EXEC_LOCK_TIMEOUT_MS), which pgflip's migrations use
LOCK_MARGIN_MS=250
FLIP_MS=500         # a flip reaches each client at its next transaction: every 40 ms at these rates
VS=$STORY_VS
export LOADGEN=${LOADGEN:-build/loadgen}

# jctl: ctl for the commands whose job ctl waits for, bounded
jctl() { timeout 120 "$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" "$@"; }
after() { echo $(($1 + $2 * 1000)); } # US MS: US plus MS milliseconds
# v2_go FILE: pins app-v2* to the version schema, then lets the v2 group
# that waits for FILE start
v2_go() {
	check "route app 'app-v2*' $VS" ctl route app 'app-v2*' "$VS"
	touch "$T_DIR/$1"
	sleep 2
}

make_db pstory
apsql -c "$(story_table_sql $ROWS)"
story_migration "$T_DIR"
port=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port" "pool_mode = transaction
default_pool_size = 6
log_level = info" "app.app-v1* = public
canary_key = connection"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }

story_loadgen "$T_DIR" "host=127.0.0.1 port=$port dbname=$T_DB user=app" \
	"host=127.0.0.1 port=$PG_PORT dbname=$T_DB user=app password=app_pw" --keys $ROWS --duration 150
T_PIDS="$T_PIDS $STORY_LG_PID" # the cleanup stops it (SIGTERM: it ends and writes its summary)
sleep 2

# ---- expand, with app-v1 under load
out=$(jctl migrate start "$T_DIR/02_story.yaml" 2>&1); rc=$?
expect_eq "migrate start (rename_column, add_column NOT NULL with up) under load" "$rc:$(echo "$out" | tail -n 1)" \
	"0:done: 02_story (version schema $VS)"

# ---- app-v2 on the new version, a canary for the unpinned clients, promote
v2_go go-v2
t_canary=$(story_now_us)
check "route canary $VS 50" ctl route canary "$VS" 50
touch "$T_DIR/go-any"
sleep 3
t_promote=$(story_now_us)
check "promote $VS" ctl promote "$VS"
sleep 2

# ---- the app-v2 clients leave; their rows through both versions
t_v2_stop=$(story_now_us)
touch "$T_DIR/stop-v2"
check "the app-v2 clients stopped" story_wait_stopped "$T_DIR" app-v2
story_ledger apsql "$T_DIR"
expect_eq "app-v2 wrote rows (so that the checks below check something)" \
	"$(apsql -c "SELECT count(DISTINCT id) > 100 FROM story.ledger WHERE grp = 'app-v2'")" t
expect_eq "app-v2's rows through v1's view (public): none missing, none wrong" \
	"$(story_bad_rows apsql app-v2 public name -)" "0 0"
expect_eq "app-v2's rows through v2's view ($VS), score as v2 wrote it: none missing, none wrong" \
	"$(story_bad_rows apsql app-v2 "$VS" title app-v2)" "0 0"

# ---- rollback: the instant flip, then the DDL
t_rollback=$(story_now_us)
out=$(jctl rollback 2>&1); rc=$?
expect_eq "rollback: exit 0" "$rc" 0
expect_match "rollback: the default and the app-v2 pin moved back at once, then the DDL ran" "$out" \
	"*2 route(s) moved from $VS to public*done: 02_story*"
expect_eq "rollback dropped the version schema" "$(apsql -c "SELECT count(*) FROM pg_namespace WHERE nspname = '$VS'")" 0
expect_match "routes after the rollback: all on public" "$(ctl --json routes)" \
	'*"default":"public"*"key":"app-v1\*","schema":"public"*"key":"app-v2\*","schema":"public"*'
sleep 2

# ---- start again, app-v2 again, promote; the app-v1 clients leave
t_start2=$(story_now_us)
out=$(jctl migrate start "$T_DIR/02_story.yaml" 2>&1); rc=$?
expect_eq "migrate start again after the rollback" "$rc:$(echo "$out" | tail -n 1)" "0:done: 02_story (version schema $VS)"
v2_go go-v2-again
t_promote2=$(story_now_us)
check "promote $VS again" ctl promote "$VS"
sleep 2
touch "$T_DIR/stop-v1"
check "the app-v1 clients stopped" story_wait_stopped "$T_DIR" app-v1
# complete contracts the previous version, public: it waits until no route
# names it and no client is on it, so v1's pin goes with its clients
check "app-v1's pin removed" ctl unroute app 'app-v1*'
story_ledger apsql "$T_DIR"
expect_eq "app-v1's and app-v2's rows through v1's view (public): none missing, none wrong" \
	"$(story_bad_rows apsql app-v1,app-v2 public name -)" "0 0"
expect_eq "... and through v2's view ($VS), score = qty * 10 (up, and the new backfill): none missing, none wrong" \
	"$(story_bad_rows apsql app-v1,app-v2 "$VS" title "")" "0 0"

# ---- complete, under app-v2-again and the unpinned clients
out=$(jctl migrate complete 2>&1); rc=$?
expect_eq "migrate complete under load" "$rc:$(echo "$out" | tail -n 1)" "0:done: 02_story (version schema $VS)"
sleep 2
t_end=$(story_now_us)
touch "$T_DIR/stop"
wait "$STORY_LG_PID"; lg_rc=$?
T_PIDS=$(echo " $T_PIDS " | sed "s/ $STORY_LG_PID / /")
sed 's/^/# /' "$T_DIR/summary.txt"
expect_eq "the load generator ended with every transaction done (exit 0)" "$lg_rc" 0

# ---- what each group saw
for g in app-v1 app-v2 app-any app-v2-again; do
	errs=$(story_summary "$T_DIR" $g errors)
	expect_eq "$g: no failed transaction (SQLSTATEs: $errs)" "$(story_summary "$T_DIR" $g failed)" 0
	expect_eq "$g: every scheduled transaction was sent" "$(story_summary "$T_DIR" $g unsent)" 0
	check "$g: ran transactions" test "$(story_summary "$T_DIR" $g ok)" -gt 50
	expect_eq "$g: no second without a commit" "$(story_summary "$T_DIR" $g zero)" 0
	w=$(story_summary "$T_DIR" $g lockw)
	check "$g: longest lock wait ${w} ms <= lock_timeout $LOCK_TIMEOUT_MS + $LOCK_MARGIN_MS ms (max latency $(story_summary "$T_DIR" $g max) ms)" \
		awk -v w="$w" -v m=$((LOCK_TIMEOUT_MS + LOCK_MARGIN_MS)) 'BEGIN { exit !(w != "" && w <= m) }'
done

# ---- routes, as each transaction read them
expect_eq "app-v1 ran every transaction on public (its pin)" "$(story_routes "$T_DIR" app-v1 0 "$t_end")" public
expect_eq "app-v2 ran every transaction on $VS (its pin)" "$(story_routes "$T_DIR" app-v2 0 "$t_end")" "$VS"
expect_eq "app-v2-again ran every transaction on $VS" "$(story_routes "$T_DIR" app-v2-again 0 "$t_end")" "$VS"
# canary_key = connection (above): with the default, addr, every connection
# from 127.0.0.1 lands on one side. The 12 unpinned connections all land on
# one side with a chance of 1 in 2048.
expect_eq "canary 50: the unpinned clients ran on both versions" \
	"$(story_routes "$T_DIR" app-any "$t_canary" "$t_promote")" "public $VS"
expect_eq "promote: the unpinned clients were all on $VS within $FLIP_MS ms" \
	"$(story_routes "$T_DIR" app-any "$(after "$t_promote" $FLIP_MS)" "$t_v2_stop")" "$VS"
expect_eq "rollback: the unpinned clients were all back on public within $FLIP_MS ms" \
	"$(story_routes "$T_DIR" app-any "$(after "$t_rollback" $FLIP_MS)" "$t_start2")" public
expect_eq "promote again: the unpinned clients all on $VS within $FLIP_MS ms" \
	"$(story_routes "$T_DIR" app-any "$(after "$t_promote2" $FLIP_MS)" "$t_end")" "$VS"

# ---- the rows at the end
story_ledger apsql "$T_DIR"
expect_eq "every row written by any client is in the final table with its values (score: up, backfill or v2's)" \
	"$(story_bad_rows apsql app-v1,app-v2,app-any,app-v2-again public title app-v2-again)" "0 0"
expect_eq "rows nobody wrote are as they were (title, qty, backfilled score), and no row came from nowhere" \
	"$(story_untouched_bad apsql $ROWS)" "0 0"
expect_eq "the final table: name renamed to title, score NOT NULL" \
	"$(apsql -c "SELECT string_agg(attname || ':' || attnotnull, ' ' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = 'public.items'::regclass AND attnum > 0 AND NOT attisdropped")" "id:true title:true qty:true score:true"
expect_match "versions: $VS complete, the default route" "$(ctl --json versions)" \
	"*\"version_schema\":\"$VS\"*\"state\":\"complete\"*\"default\":true*"
pgflip_stop

#!/bin/sh
# Allocation failure closes connections, never the process: pgflip runs
# under an LD_PRELOAD shim that, while a trigger file exists, fails about one
# malloc/calloc/realloc in 40. Clients run transactions in transaction mode
# (prepared statements on) across the window; after it, pgflip is alive, its
# admin socket answers, and a new client runs on its route.
. "$TOP/tests/lib/check.sh"

shim="$TOP/$BUILD/tests/libfailmalloc.so"
if [ -n "$VALGRIND" ] || ldd "$TOP/$PGFLIP" | grep -q 'libasan'; then
	ok "# SKIP under valgrind or ASan (they own malloc)"
	exit 0
fi
make_db oom
apsql -f "$TOP/tests/data/items_versions.sql"
port=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port" "pool_mode = transaction
default_pool_size = 4
max_prepared_statements = 50
server_login_retry = 1
log_level = info" "app.v1-* = v1
app.v2-* = v2"
trigger="$T_DIR/fail-now"
LD_PRELOAD="$shim" FAILMALLOC_FILE="$trigger" FAILMALLOC_EVERY=40 pgflip_start "$T_DIR/pgflip.ini" ||
	{ not_ok "pgflip starts under the shim"; exit 1; }

cat >"$T_DIR/load.sql" <<'SQL'
\set id random(1, 100)
BEGIN;
SELECT name FROM items WHERE id = :id;
UPDATE items SET name = name WHERE id = :id;
END;
SQL
PGAPPNAME=v1-load pgbench -n -M prepared -c 4 -j 4 -T 6 -f "$T_DIR/load.sql" -h 127.0.0.1 -p "$port" "$T_DB" >"$T_DIR/pgbench.out" 2>&1 &
bench=$!
( i=0; while [ $i -lt 60 ]; do i=$((i + 1)); PGAPPNAME=v2-x fpsql "$port" -c "SELECT title FROM items WHERE id = 1" >/dev/null 2>&1; done ) &
side=$!
sleep 1.5
touch "$trigger"
sleep 2
rm -f "$trigger"
wait $bench
wait $side
# a server login that failed in the window holds new clients off for
# server_login_retry (1 s here, as PgBouncer does): they are served after it
sleep 1.5
check "pgbench ran transactions through pgflip" grep -q "processed: [1-9]" "$T_DIR/pgbench.out"
check "pgflip is still running after the failing window" kill -0 "$PGFLIP_PID"
expect_match "its admin socket answers" "$(ctl --json status)" '*"ok":true*'
expect_eq "a new v1 client runs on its route" "$(PGAPPNAME=v1-after fpsql "$port" -c "SELECT current_setting('search_path')")" v1
expect_eq "a new v2 client runs on its route" "$(PGAPPNAME=v2-after fpsql "$port" -c "SELECT title FROM items WHERE id = 1")" t1
n=$(grep -c "out of memory\|Cannot allocate memory" "$T_DIR/pgflip.log")
check "allocations did fail in the window ($n log lines say so)" test "$n" -gt 0
echo "    # pgbench: $(head -c 800 "$T_DIR/pgbench.out" | tr '\n' ' ')"
pgflip_stop

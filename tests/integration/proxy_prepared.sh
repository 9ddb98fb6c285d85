# Prepared statements in transaction mode: they follow the client across
# server connections, are keyed by route, bounded by max_prepared_statements,
# and pgbench -M prepared runs with no failed transaction.
. "$TOP/tests/lib/check.sh"

make_db prepared
apsql -f "$TOP/tests/data/items_versions.sql"
port=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port" "pool_mode = transaction
default_pool_size = 1
max_prepared_statements = 2
log_level = info" "app.v1-* = v1
app.v2-* = v2"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
"$TOP/$BUILD/tests/it_prepared" "host=127.0.0.1 port=$port dbname=$T_DB user=app"

# pgbench -M prepared in transaction mode, two routes over a pool of 2
sed -i 's/^default_pool_size = 1/default_pool_size = 2/; s/^max_prepared_statements = 2/max_prepared_statements = 100/' "$T_DIR/pgflip.ini"
kill -HUP "$PGFLIP_PID"; sleep 0.3
for v in v1 v2; do
	col=name; [ $v = v2 ] && col=title
	cat >"$T_DIR/$v.sql" <<SQL
\set id random(1, 100)
BEGIN;
SELECT 1 / (current_setting('search_path') = '$v')::int;
SELECT $col FROM items WHERE id = :id;
END;
SQL
done
# -j equals -c: pgbench prepares with blocking calls, which would deadlock a
# thread whose other clients hold the pool's servers (as with any pooler)
PGAPPNAME=v1-bench pgbench -n -M prepared -c 2 -j 2 -t 1500 -f "$T_DIR/v1.sql" -h 127.0.0.1 -p "$port" "$T_DB" >"$T_DIR/p1.out" 2>&1 &
b1=$!
PGAPPNAME=v2-bench pgbench -n -M prepared -c 2 -j 2 -t 1500 -f "$T_DIR/v2.sql" -h 127.0.0.1 -p "$port" "$T_DB" >"$T_DIR/p2.out" 2>&1 &
b2=$!
wait $b1; r1=$?
wait $b2; r2=$?
for n in 1 2; do
	out=$(cat "$T_DIR/p$n.out")
	case "$out" in
	*"actually processed: 3000/3000"*"failed transactions: 0 "*) ok "pgbench -M prepared run $n: 3000 transactions, 0 failed" ;;
	*) not_ok "pgbench -M prepared run $n"; echo "$out" | tail -n 12 | sed 's/^/    # /' ;;
	esac
done
check "pgbench exit status 0" test "$r1$r2" = "00"

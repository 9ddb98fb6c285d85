# Pool limits and failures: query_wait_timeout, FIFO waiting, reserve pool,
# min_pool_size, server_idle_timeout, server_lifetime, max_db_connections,
# a server killed under pgflip, an upstream restart, per-route counters.
. "$TOP/tests/lib/check.sh"

# a cluster of our own: this test restarts it
pg_start "$T_DIR/pg" "$(free_port)" || { not_ok "own cluster starts"; exit 1; }
OWN_PORT=$PG_PORT OWN_SOCK=$PG_SOCK
trap 'pg_stop "$T_DIR/pg"; t_cleanup' EXIT INT TERM
pg_psql -c "CREATE DATABASE pools OWNER app" >/dev/null
T_DB=pools
PGPASSWORD=app_pw psql -X -q -h 127.0.0.1 -p "$OWN_PORT" -U app -d pools -c "CREATE SCHEMA v2"
port=$(free_port)
conf() { # EXTRA_PGFLIP_LINES
	cat >"$T_DIR/pgflip.ini" <<CONF
[pgflip]
listen_port = $port
unix_socket_dir = $T_DIR
admin_socket = $T_DIR/admin.sock
logfile = $T_DIR/pgflip.log
log_level = debug
pool_mode = transaction
$1
[databases]
pools = host=$OWN_SOCK port=$OWN_PORT dbname=pools
[routes]
default = public
app.v2-* = v2
CONF
}
ms() { echo $(($(date +%s%N) / 1000000)); }
# hold SECONDS: a client keeps a server in an open transaction that long (in
# the background, pid in $holder); returns once it has its server
hold() {
	fpsql "$port" -U app -c "BEGIN" -c "SELECT pg_sleep($1)" -c "COMMIT" >/dev/null 2>&1 &
	holder=$!
	sleep 0.3
}
# timed USER SQL: runs SQL through pgflip as USER; $out gets its output,
# $took the milliseconds it took
timed() {
	t0=$(ms)
	out=$(fpsql "$port" -U "$1" -c "$2" 2>&1)
	took=$(($(ms) - t0))
}

# --- query_wait_timeout, FIFO, reserve pool
conf "default_pool_size = 1
query_wait_timeout = 1"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
hold 2.5
timed app "SELECT 1"
expect_match "query_wait_timeout: a waiting client gets an error" "$out" "*query_wait_timeout*"
check "query_wait_timeout: after about 1 s ($took ms)" test $took -ge 800 -a $took -lt 2000
wait $holder
pgflip_stop
conf "default_pool_size = 1"
pgflip_start "$T_DIR/pgflip.ini"
hold 1
pids=""
for n in 1 2 3; do
	(fpsql "$port" -U app -c "SELECT pg_sleep(0.3)" >/dev/null; echo "$n $(ms)" >>"$T_DIR/fifo.out") &
	pids="$pids $!"
	sleep 0.1
done
wait $pids $holder
expect_eq "waiting clients are served in FIFO order" "$(sort -k2 -n "$T_DIR/fifo.out" | cut -d' ' -f1 | tr -d '\n')" "123"
pgflip_stop
conf "default_pool_size = 1
reserve_pool_size = 1
reserve_pool_timeout = 0.5"
pgflip_start "$T_DIR/pgflip.ini"
hold 3
timed app "SELECT 'reserve'"
expect_eq "reserve_pool_size: a client that waited gets a reserve server" "$out" "reserve"
check "reserve_pool_timeout: after about 0.5 s, before the holder ends ($took ms)" test $took -ge 400 -a $took -lt 2500
wait $holder
pgflip_stop

# --- min_pool_size, server_idle_timeout, server_lifetime
conf "default_pool_size = 4
min_pool_size = 2
server_idle_timeout = 1"
pgflip_start "$T_DIR/pgflip.ini"
fpsql "$port" -U app -c "SELECT 1" >/dev/null
pids=""
for i in 1 2 3 4 5 6 7 8 9 10; do fpsql "$port" -U app -c "SELECT pg_sleep(0.2)" >/dev/null & pids="$pids $!"; done
wait $pids
sleep 0.5
expect_match "several servers while busy" "$(ctl --json pools)" '*"servers_idle":[34]*'
sleep 2
expect_match "server_idle_timeout closes idle servers down to min_pool_size" "$(ctl --json pools)" '*"servers_idle":2,*'
pgflip_stop
conf "default_pool_size = 1
server_lifetime = 1"
pgflip_start "$T_DIR/pgflip.ini"
pid1=$(fpsql "$port" -U app -c "SELECT pg_backend_pid()")
sleep 1.5
fpsql "$port" -U app -c "SELECT 1" >/dev/null # the idle server past its lifetime is closed by now
pid2=$(fpsql "$port" -U app -c "SELECT pg_backend_pid()")
check "server_lifetime: the old server is replaced ($pid1 -> $pid2)" test "$pid1" != "$pid2"
pgflip_stop

# --- max_db_connections across two users' pools
conf "default_pool_size = 5
max_db_connections = 1"
pgflip_start "$T_DIR/pgflip.ini"
hold 1.2
timed postgres "SELECT current_user"
wait $holder
expect_eq "max_db_connections: the other user's client gets through" "$out" "postgres"
check "max_db_connections: ... only once the database has a free slot ($took ms)" test $took -ge 600
pgflip_stop

# --- a server killed under pgflip, then an upstream restart
conf "default_pool_size = 2
server_login_retry = 0.2"
pgflip_start "$T_DIR/pgflip.ini"
pid=$(PGAPPNAME=v2-a fpsql "$port" -U app -c "SELECT pg_backend_pid()")
pg_psql -h "$OWN_SOCK" -p "$OWN_PORT" -c "SELECT pg_terminate_backend($pid)" >/dev/null
sleep 0.3
expect_eq "a terminated server is replaced: next query works" "$(PGAPPNAME=v2-a fpsql "$port" -U app -c 'SHOW search_path')" "v2"
cat >"$T_DIR/restart.sql" <<SQL
BEGIN;
SELECT 'in transaction';
\! PG_BINDIR="$PG_BINDIR" sh -c '. "$TOP/tests/lib/pg.sh"; pg_as_owner "\$PG_BINDIR/pg_ctl" -D "$T_DIR/pg/data" -m fast -w restart >/dev/null 2>&1'
SELECT 'cut';
SQL
out=$(psql -X -At -h 127.0.0.1 -p "$port" -U app -d pools -f "$T_DIR/restart.sql" 2>&1 | tr '\n' '|')
expect_match "upstream restart: the cut transaction gets the backend's FATAL, as direct" "$out" "*in transaction|*FATAL:  terminating connection due to administrator command*"
expect_eq "upstream restart: new clients work without restarting pgflip" "$(fpsql "$port" -U app -c "SELECT 'new'")" "new"

# --- per-route transaction counts
for i in 1 2 3; do PGAPPNAME=v2-x fpsql "$port" -U app -c "SELECT 1" >/dev/null; done
expect_match "pools: per-route transaction counts" "$(ctl --json pools)" '*"transactions_by_route":{*"v2":*'
expect_match "clients/pools show waiting clients" "$(ctl --json pools)" '*"clients_waiting":0*'

# Real drivers through pgflip: node-postgres (pg) and postgres.js run the
# cases of tests/node/drivers.js on a direct connection, through pgflip in
# session mode, and in transaction mode over one server connection (two for
# the cases that move a client between servers). Each case is one TAP line.
. "$TOP/tests/lib/check.sh"

command -v node >/dev/null 2>&1 || { not_ok "node is installed (make deps)"; exit 1; }
[ -d "$TOP/tests/node/node_modules/pg" ] && [ -d "$TOP/tests/node/node_modules/postgres" ] ||
	{ not_ok "tests/node/node_modules has pg and postgres (make deps)"; exit 1; }

make_db drivers
port=$(free_port)
entry="host=127.0.0.1 port=$PG_PORT dbname=$T_DB user=app password=app_pw"
cat >"$T_DIR/pgflip.ini" <<CONF
[pgflip]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $T_DIR
admin_socket = $T_DIR/admin.sock
logfile = $T_DIR/pgflip.log
log_level = info

[databases]
drv_session = $entry pool_mode=session
drv_tx = $entry pool_mode=transaction pool_size=1
drv_tx2 = $entry pool_mode=transaction pool_size=2

[routes]
default = public
CONF
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }

DRV_PG_PORT=$PG_PORT DRV_DB=$T_DB DRV_PGFLIP_PORT=$port \
	DRV_DB_SESSION=drv_session DRV_DB_TX=drv_tx DRV_DB_TX2=drv_tx2 \
	timeout 500 node --no-deprecation "$TOP/tests/node/drivers.js"
rc=$?
# drivers.js exits 1 when a case failed (its not-ok lines count); anything
# else means it died before it could say
[ "$rc" -le 1 ] || not_ok "drivers.js exited with status $rc"
check "pgflip still running" kill -0 "$PGFLIP_PID"

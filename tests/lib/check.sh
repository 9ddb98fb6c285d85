# Helpers for integration tests: TAP output, pgflip start/stop, psql wrappers.
# Sourced by tests/integration/*.sh, which run/tests.sh starts with PG_PORT,
# PG_SOCK (a running cluster), PGFLIP (the binary) and T_DIR (a scratch folder).
. "$TOP/tests/lib/pg.sh"

T_PIDS=""
t_cleanup() {
	for p in $T_PIDS; do kill "$p" 2>/dev/null; done
	for p in $T_PIDS; do
		i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -9 "$p" 2>/dev/null
	done
	T_PIDS=""
}
trap t_cleanup EXIT INT TERM

ok() { printf 'ok - %s\n' "$*"; }
not_ok() { printf 'not ok - %s\n' "$*"; }

# check NAME CMD...: passes when CMD exits 0
check() {
	name=$1; shift
	if "$@" >"$T_DIR/last.out" 2>&1; then ok "$name"; else not_ok "$name"; sed 's/^/    # /' "$T_DIR/last.out"; fi
}

# expect_eq NAME GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; echo "    # got:  '$2'"; echo "    # want: '$3'"; fi
}

# expect_match NAME GOT GLOB
expect_match() {
	case "$2" in $3) ok "$1" ;; *) not_ok "$1"; echo "    # got:  '$2'"; echo "    # want: '$3'" ;; esac
}

# pgflip_start CONF: starts `pgflip serve -c CONF` in the background, waits
# until the admin socket answers; sets PGFLIP_PID.
pgflip_start() {
	"$TOP/$PGFLIP" serve -c "$1" >>"$T_DIR/pgflip.log" 2>&1 &
	PGFLIP_PID=$!
	T_PIDS="$T_PIDS $PGFLIP_PID"
	i=0
	while [ $i -lt 100 ]; do
		"$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" status >/dev/null 2>&1 && return 0
		kill -0 "$PGFLIP_PID" 2>/dev/null || { echo "# pgflip died:"; sed 's/^/# /' "$T_DIR/pgflip.log"; return 1; }
		sleep 0.1; i=$((i + 1))
	done
	echo "# pgflip did not come up"; return 1
}

pgflip_stop() {
	kill "$PGFLIP_PID" 2>/dev/null
	i=0; while kill -0 "$PGFLIP_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}

ctl() { "$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" "$@"; }

# write_conf FILE PORT [EXTRA_PGFLIP_LINES] [ROUTES_LINES]: a config for one
# database `testdb` on the test cluster, logging in as app over TCP (SCRAM).
write_conf() {
	cat >"$1" <<CONF
[pgflip]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir = $T_DIR
admin_socket = $T_DIR/admin.sock
logfile = $T_DIR/pgflip.log
log_level = debug
$3

[databases]
$T_DB = host=127.0.0.1 port=$PG_PORT dbname=$T_DB user=app password=app_pw

[routes]
default = public
$4
CONF
}

# fpsql PORT ARGS...: psql through pgflip, tuples only, stop on error
fpsql() {
	port=$1; shift
	psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -d "$T_DB" "$@"
}

# make_db NAME: a fresh database NAME owned by app; sets T_DB.
make_db() {
	T_DB=$1
	pg_psql -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1 OWNER app" >/dev/null
}

# apsql ARGS...: psql straight to PostgreSQL as app over TCP, database T_DB
apsql() {
	PGPASSWORD=app_pw psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U app -d "$T_DB" "$@"
}

# Helpers for integration tests: TAP output, pgflip start/stop, psql wrappers.
# Sourced by tests/integration/*.sh, which run/tests.sh starts with PG_PORT,
# PG_SOCK (a running cluster), PGFLIP (the binary) and T_DIR (a scratch folder).
#
# VALGRIND=1 (make VALGRIND=1 test): pgflip_start runs pgflip under valgrind's
# memcheck, one log per process ($T_DIR/valgrind.PID.log). The log is read
# once that pgflip has ended, at pgflip_stop or at the cleanup when the script
# exits (whoever stopped it): invalid reads or writes, bad frees or definitely
# lost bytes give a "not ok - valgrind: ..." line, a clean log an "ok" line.
. "$TOP/tests/lib/pg.sh"

case "${VALGRIND:-0}" in 0 | "") T_VG="" ;; *) T_VG=1 ;; esac
# Tenths of a second pgflip gets to start and to stop: valgrind runs it some
# twenty times slower, and the leak check at exit takes a moment more.
if [ -n "$T_VG" ]; then T_WAIT=300; else T_WAIT=100; fi
T_VG_PIDS="" # run under valgrind, log not read yet

T_PIDS=""
t_cleanup() {
	for p in $T_PIDS; do kill "$p" 2>/dev/null; done
	for p in $T_PIDS; do
		i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt "$T_WAIT" ]; do sleep 0.1; i=$((i + 1)); done
		kill -9 "$p" 2>/dev/null
	done
	T_PIDS=""
	for p in $T_VG_PIDS; do valgrind_check "$p"; done
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

# expect_no_match NAME GOT GLOB: passes when GOT does not match GLOB
expect_no_match() {
	case "$2" in $3) not_ok "$1"; echo "    # got:  '$2'"; echo "    # must not match: '$3'" ;; *) ok "$1" ;; esac
}

# pgflip_start CONF [SOCKET]: starts `pgflip serve -c CONF` in the background,
# waits until the admin socket (SOCKET, default $T_DIR/admin.sock) answers;
# sets PGFLIP_PID.
pgflip_start() {
	_ps_sock=${2:-$T_DIR/admin.sock}
	if [ -n "$T_VG" ]; then
		set -- valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
			--track-fds=no --log-file="$T_DIR/valgrind.%p.log" "$TOP/$PGFLIP" serve -c "$1"
	else
		set -- "$TOP/$PGFLIP" serve -c "$1"
	fi
	"$@" >>"$T_DIR/pgflip.log" 2>&1 &
	PGFLIP_PID=$!
	T_PIDS="$T_PIDS $PGFLIP_PID"
	[ -n "$T_VG" ] && T_VG_PIDS="$T_VG_PIDS $PGFLIP_PID"
	i=0
	while [ $i -lt "$T_WAIT" ]; do
		"$TOP/$PGFLIP" ctl -s "$_ps_sock" status >/dev/null 2>&1 && return 0
		kill -0 "$PGFLIP_PID" 2>/dev/null || { echo "# pgflip died:"; sed 's/^/# /' "$T_DIR/pgflip.log"; return 1; }
		sleep 0.1; i=$((i + 1))
	done
	echo "# pgflip did not come up"; return 1
}

pgflip_stop() {
	kill "$PGFLIP_PID" 2>/dev/null
	i=0; while kill -0 "$PGFLIP_PID" 2>/dev/null && [ $i -lt "$T_WAIT" ]; do sleep 0.1; i=$((i + 1)); done
	case " $T_VG_PIDS " in *" $PGFLIP_PID "*)
		kill -9 "$PGFLIP_PID" 2>/dev/null
		valgrind_check "$PGFLIP_PID" ;;
	esac
}

# valgrind_check PID: reads the valgrind log of the ended pgflip PID and prints
# one TAP line; the first errors follow as comments.
valgrind_check() {
	vg_log=$T_DIR/valgrind.$1.log
	T_VG_PIDS=$(echo " $T_VG_PIDS " | sed "s/ $1 / /")
	wait "$1" 2>/dev/null
	if [ ! -f "$vg_log" ]; then
		not_ok "valgrind: pgflip $1 left no log ($vg_log)"
		return
	fi
	vg_r=$(grep -c 'Invalid read' "$vg_log") vg_w=$(grep -c 'Invalid write' "$vg_log")
	vg_f=$(grep -c -E 'Invalid free|Mismatched free' "$vg_log")
	vg_lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$vg_log" | tail -n 1 | tr -d ,)
	vg_lost=${vg_lost:-0}
	if [ "$vg_r$vg_w$vg_f" = 000 ] && [ "$vg_lost" = 0 ]; then
		if grep -q -E 'LEAK SUMMARY|All heap blocks were freed' "$vg_log"; then
			ok "valgrind: pgflip $1: no invalid access, no definite leak"
		else
			ok "valgrind: pgflip $1: no invalid access (killed before exit: leaks not checked)"
		fi
		return
	fi
	not_ok "valgrind: pgflip $1: $vg_r invalid reads, $vg_w invalid writes, $vg_f bad frees, $vg_lost bytes definitely lost ($vg_log)"
	awk '/Invalid (read|write|free)|Mismatched free|definitely lost in/ { show = 1 } show { print "    # " $0 }
		/^==[0-9]+== $/ { if (show) n++; show = 0 } n >= 3 { exit }' "$vg_log"
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

# txn_conf PORT POOL_SIZE KEY_LINE: $T_DIR/pgflip.ini by write_conf for a
# transaction-mode pool of POOL_SIZE, log_level info, and KEY_LINE
txn_conf() {
	write_conf "$T_DIR/pgflip.ini" "$1" "pool_mode = transaction
default_pool_size = $2
log_level = info
$3" ""
}

# log_since N: pgflip's log ($T_DIR/pgflip.log) from line N on
log_since() { tail -n +"$1" "$T_DIR/pgflip.log"; }

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

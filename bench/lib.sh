# bench/lib.sh: what the benchmark scripts share. bench/proxy.sh and
# bench/tls.sh source it from the top of the checkout, after `set -u` and
# after setting any default of their own; it reads the common settings at
# once. Then, in order:
#
#   bench_results               RES: the results folder (BENCH_RESULTS or a new one)
#   bench_pg_setup MAX_CONN     a throwaway PostgreSQL in $work/pg with `bench`:
#                               pgbench's tables behind version schemas v1 and v2
#   bench_pg_start MAX_CONN     the same cluster, with no database of its own
#   direct_target NAME ENV      target NAME: PostgreSQL itself
#   flip_prepare NAME BINARY ENV [LINES]   target NAME: a pgflip (private copy of
#                               BINARY; LINES go into its [pgflip] section, FLIP_ROUTES
#                               replace its [routes])
#   flip_start NAME             start it; 1 if it died or did not come up
#   bouncer_start NAME ENV [LINES]         target NAME: a PgBouncer, started
#   bench_tsv_init              runs.tsv, cpu.tsv, events.txt
#   run_warmup TARGETS...       BENCH_WARMUP seconds of -S each, not counted
#   run_rounds                  BENCH_ROUNDS rounds of every mode of BENCH_MODES over
#                               the targets of `mode_targets MODE` (the script's),
#                               the order rotated every round
#   run_one ROUND MODE TARGET SECONDS      one run (run_rounds calls it)
#
# A target is a name (direct, pgflip, pgbouncer-tls...) with fields, read
# with `tget FIELD NAME`: kind (direct, pgflip or pgbouncer), port, pid (a
# proxy's), env (the variable assignments its clients run with, such as
# PGSSLMODE=require; psql and pgbench take them from the environment),
# starts (how many times a pgflip was started).
#
# Each run starts two pgbench processes at once with half the clients each,
# PGAPPNAME=v1-bench and PGAPPNAME=v2-bench, and adds their TPS: pgflip
# routes the halves to the two version schemas, and every target gets the
# same split. A failed or hung run is recorded as FAIL and the benchmark
# goes on. The proxies run in a session of their own (setsid), as under a
# service manager, so that the kernel's autogroup scheduling does not make
# one share one CPU share with the pgbench processes (PostgreSQL's backends
# each have their own session already). A proxy's CPU time (user + system,
# from /proc/PID/stat) is read around each run, for its CPU time per
# transaction (cpu.tsv).
#
# Cleanup at exit: pgbench runs in flight, every proxy, the cluster and
# $work; the logs go to RES.

BENCH_NAME=${BENCH_NAME:-$(basename "$0")}
die() { echo "bench/$BENCH_NAME: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

# ---------------------------------------------------------------- settings ----

BENCH_SCALE=${BENCH_SCALE:-10}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_CLIENTS=${BENCH_CLIENTS:-8}
BENCH_JOBS=${BENCH_JOBS:-2}
BENCH_POOL=${BENCH_POOL:-20}
BENCH_POOL_MODE=${BENCH_POOL_MODE:-transaction}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-$((BENCH_SECONDS + 30))}
BENCH_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
BENCH_PG_AUTH=${BENCH_PG_AUTH:-trust}
BENCH_UPSTREAM=${BENCH_UPSTREAM:-unix}
PGFLIP=${PGFLIP:-build/pgflip}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
PGBENCH=${PGBENCH:-$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)}

case $BENCH_PG_AUTH in trust | scram-sha-256) ;; *) die "BENCH_PG_AUTH must be trust or scram-sha-256" ;; esac
case $BENCH_UPSTREAM in unix | tcp) ;; *) die "BENCH_UPSTREAM must be unix or tcp" ;; esac
case $BENCH_POOL_MODE in transaction | session) ;; *) die "BENCH_POOL_MODE must be transaction or session" ;; esac
[ "$BENCH_CLIENTS" -ge 2 ] || die "BENCH_CLIENTS must be at least 2 (two halves)"
[ -x "$PGFLIP" ] || make -s "$PGFLIP" || die "no pgflip binary at $PGFLIP"
[ -x "$PGBENCH" ] || die "no pgbench at $PGBENCH"

# the two halves of every run: clients and pgbench threads (at least one
# thread per half, and no more threads than clients)
half1=$(((BENCH_CLIENTS + 1) / 2))
half2=$((BENCH_CLIENTS / 2))
jobs1=$(((BENCH_JOBS + 1) / 2)); [ "$jobs1" -ge 1 ] || jobs1=1
jobs2=$((BENCH_JOBS / 2)); [ "$jobs2" -ge 1 ] || jobs2=1
[ "$jobs1" -le "$half1" ] || jobs1=$half1
[ "$jobs2" -le "$half2" ] || jobs2=$half2

# ----------------------------------------------------------------- targets ----

# tvar FIELD NAME: the shell variable that holds FIELD of target NAME (a
# target name may hold '-', a variable name may not)
tvar() { printf '%s_%s' "$1" "$2" | tr -c 'A-Za-z0-9_' _; }
tget() { eval "printf '%s' \"\${$(tvar "$1" "$2"):-}\""; }
tset() { eval "$(tvar "$1" "$2")=\$3"; }

PROXIES=""  # the proxy targets, in the order they were set up
# target_new NAME KIND ENV: registers a target
target_new() {
	tset kind "$1" "$2"
	tset env "$1" "$3"
	[ "$2" = direct ] || PROXIES="$PROXIES $1"
}

# ---------------------------------------------------------------- cleanup ----

BG_PIDS="" # pgbench runs and helpers in flight
work=""
cleaned=""

alive() { # PID: running and not a zombie
	[ -n "$1" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

stop_pid() { # PID SIGNAL: signal, wait up to 5 s, then SIGKILL; reaps
	[ -n "$1" ] || return 0
	kill -s "$2" "$1" 2>/dev/null
	_i=0
	while alive "$1" && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
	alive "$1" && kill -s KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

bench_cleanup() {
	[ -n "$cleaned" ] && return
	cleaned=1
	for p in $BG_PIDS; do stop_pid "$p" TERM; done
	for t in $PROXIES; do
		# SIGINT: pgflip exits at once; SIGTERM: PgBouncer's immediate shutdown
		case $(tget kind "$t") in pgflip) stop_pid "$(tget pid "$t")" INT ;; *) stop_pid "$(tget pid "$t")" TERM ;; esac
	done
	if [ -n "$work" ] && [ -d "$work" ]; then
		for t in $PROXIES; do
			[ "$(tget kind "$t")" = pgbouncer ] && [ -f "$work/$t/pgbouncer.log" ] &&
				cp "$work/$t/pgbouncer.log" "$RES/$t.log" 2>/dev/null
		done
		[ -f "$work/pg/server.log" ] && cp "$work/pg/server.log" "$RES/postgresql.log" 2>/dev/null
		pg_stop "$work/pg" 2>/dev/null
		rm -rf "$work"
	fi
}
trap bench_cleanup EXIT
trap 'note interrupted; exit 130' INT
trap 'note terminated; exit 143' TERM

# ---------------------------------------------------------------- results ----

# bench_results: RES, the results folder (kept), with raw/ for the pgbench
# outputs; prints its path
bench_results() {
	if [ -n "${BENCH_RESULTS:-}" ]; then
		RES=$BENCH_RESULTS
		mkdir -p "$RES" || die "cannot create $RES"
	else
		RES=$(mktemp -d /tmp/pgflip-bench-results.XXXXXX) || die "mktemp failed"
	fi
	mkdir -p "$RES/raw"
	RES=$(cd "$RES" && pwd)
	echo "results: $RES"
}

# ------------------------------------------------------------- PostgreSQL ----

. tests/lib/pg.sh

# bench_pg_start MAX_CONN: a throwaway PostgreSQL in $work/pg (a new mktemp
# folder) with max_connections = MAX_CONN and BENCH_PG_SET's settings, where
# app logs in over TCP to `bench` with BENCH_PG_AUTH. Sets work, pg_port
# and upstream_host (how the proxies reach it).
bench_pg_start() {
	work=$(mktemp -d /tmp/pgflip-bench.XXXXXX) || die "mktemp failed"
	note "starting PostgreSQL ($PG_BINDIR) in $work/pg, max_connections = $1"
	pg_port=$(free_port)
	USED_PORTS=$pg_port
	pg_start "$work/pg" "$pg_port" || die "PostgreSQL did not start"
	pg_psql -c "ALTER SYSTEM SET max_connections = $1" || die "ALTER SYSTEM failed"
	# BENCH_PG_SET: more settings, NAME=VALUE words (shared_buffers=1GB)
	for _kv in ${BENCH_PG_SET:-}; do
		pg_psql -c "ALTER SYSTEM SET ${_kv%%=*} = '${_kv#*=}'" >/dev/null || die "ALTER SYSTEM SET $_kv failed"
	done
	[ -z "${BENCH_PG_SET:-}" ] || note "PostgreSQL settings: $BENCH_PG_SET"
	if [ "$BENCH_PG_AUTH" = trust ]; then
		# app logs in to `bench` over TCP without SCRAM, as clients log in to the
		# proxies (trust); rewritten in place so that the file keeps its owner
		_hba=$work/pg/data/pg_hba.conf
		{ echo "host bench app 127.0.0.1/32 trust"; cat "$_hba"; } >"$work/hba.tmp" && cat "$work/hba.tmp" >"$_hba" ||
			die "cannot edit $_hba"
	fi
	pg_stop "$work/pg"
	pg_start "$work/pg" "$pg_port" || die "PostgreSQL did not restart"
	# how both proxies reach PostgreSQL (direct clients always use TCP)
	if [ "$BENCH_UPSTREAM" = unix ]; then upstream_host=$PG_SOCK; else upstream_host=127.0.0.1; fi
}

# bench_pg_setup MAX_CONN: bench_pg_start, then a database `bench` owned by
# app, filled by `pgbench -i`, with version schemas v1 and v2 over its
# tables.
bench_pg_setup() {
	bench_pg_start "$1"
	pg_psql -c "CREATE DATABASE bench OWNER app" || die "CREATE DATABASE failed"
	note "pgbench -i -s $BENCH_SCALE"
	PGPASSWORD=app_pw "$PGBENCH" -i -q -s "$BENCH_SCALE" -h 127.0.0.1 -p "$pg_port" -U app bench \
		>"$RES/init.log" 2>&1 || { tail -n 20 "$RES/init.log" >&2; die "pgbench -i failed"; }
	# The version schemas: simple views, so pgbench's scripts (UPDATE, INSERT
	# included) run unchanged under search_path v1 or v2.
	{
		for _v in v1 v2; do
			echo "CREATE SCHEMA $_v;"
			for _t in accounts branches tellers history; do
				echo "CREATE VIEW $_v.pgbench_$_t AS SELECT * FROM public.pgbench_$_t;"
			done
		done
		# Direct and PgBouncer clients read through the same views as pgflip's
		# clients do, so all targets run the same SQL; pgflip sets each
		# client's route over this default.
		echo "ALTER ROLE app IN DATABASE bench SET search_path = v1;"
	} | PGPASSWORD=app_pw psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U app bench ||
		die "creating the version schemas failed"
	pg_psql -d bench -c "ANALYZE" || die "ANALYZE failed"
}

# direct_target NAME ENV: PostgreSQL itself, its clients with ENV
direct_target() {
	target_new "$1" direct "$2"
	tset port "$1" "$pg_port"
}

# new_port: sets NEW_PORT to a free port that no other target got
# (free_port asks the kernel for one, and nothing holds it until the target
# starts)
new_port() {
	NEW_PORT=$(free_port) _i=0
	while case " $USED_PORTS " in *" $NEW_PORT "*) [ $_i -lt 20 ] ;; *) false ;; esac; do
		NEW_PORT=$(free_port); _i=$((_i + 1))
	done
	USED_PORTS="$USED_PORTS $NEW_PORT"
}

# ----------------------------------------------------------------- pgflip ----

# Each pgflip target NAME has its own folder $work/NAME (unix_socket_dir,
# admin socket, binary), port, config and logs (flip_file: $RES/NAME.* for
# names that start with pgflip, else $RES/pgflip-NAME.*).
flip_file() { case $1 in pgflip*) echo "$RES/$1" ;; *) echo "$RES/pgflip-$1" ;; esac; }
flip_bin() { echo "$work/$1/pgflip"; }
flip_ctl() { # NAME ARGS...: pgflip ctl on NAME's admin socket
	_fc=$1; shift
	"$(flip_bin "$_fc")" ctl -s "$work/$_fc/admin.sock" "$@"
}

# checkout_id DIR: the commit of the git checkout holding DIR, and whether
# its pgflip sources differ from it
checkout_id() {
	_top=$(git --no-optional-locks -C "$1" rev-parse --show-toplevel 2>/dev/null) &&
		_cid=$(git --no-optional-locks -C "$_top" log -1 --format=%h 2>/dev/null) || { echo "?"; return; }
	git --no-optional-locks -C "$_top" diff --quiet HEAD -- proxy protocol conf 2>/dev/null ||
		_cid="$_cid + uncommitted changes"
	echo "$_cid"
}

# binary_id BINARY COPY: BINARY's path and modification time, and the hash of
# the private COPY that runs, to tell builds apart
binary_id() {
	echo "$1, $(stat -c '%y' "$1" | cut -c1-19), sha256 $(sha256sum "$2" | cut -c1-12)"
}

# flip_prepare NAME BINARY ENV [LINES]: target NAME, a pgflip: the private
# copy of BINARY, the port, the config (LINES: more keys of its [pgflip]
# section, one a line). Run a private copy: a rebuild of the binary during
# the run (the checkout may be shared) must not change what is measured
# halfway.
flip_prepare() {
	target_new "$1" pgflip "$3"
	mkdir -p "$work/$1"
	cp "$2" "$(flip_bin "$1")" || die "cannot copy $2"
	new_port
	tset port "$1" "$NEW_PORT"
	cat >"$(flip_file "$1").ini" <<CONF
[pgflip]
listen_addr = 127.0.0.1
listen_port = $NEW_PORT
unix_socket_dir = $work/$1
admin_socket = $work/$1/admin.sock
pool_mode = $BENCH_POOL_MODE
default_pool_size = $BENCH_POOL
max_client_conn = 2000
shutdown_timeout = 2
log_level = $BENCH_LOG_LEVEL
logfile = $(flip_file "$1").log
${4:-}

[databases]
bench = host=$upstream_host port=$pg_port dbname=bench user=app password=app_pw

[routes]
${FLIP_ROUTES:-default = v1
app.v2-* = v2}
CONF
	chmod 600 "$(flip_file "$1").ini"
}

# flip_start NAME: start it, wait for its admin socket; sets its pid
flip_start() {
	_fb=$(flip_bin "$1") _ff=$(flip_file "$1")
	# setsid execs (this background job is no process group leader), so $!
	# is pgflip itself
	setsid "$_fb" serve -c "$_ff.ini" >>"$_ff.stderr" 2>&1 &
	tset pid "$1" $!
	tset starts "$1" $(($(tget starts "$1") + 1))
	_i=0
	while [ $_i -lt 100 ]; do
		flip_ctl "$1" status >/dev/null 2>&1 && return 0
		alive "$(tget pid "$1")" || { tail -n 20 "$_ff.stderr" "$_ff.log" >&2 2>/dev/null; return 1; }
		sleep 0.1; _i=$((_i + 1))
	done
	return 1
}

# -------------------------------------------------------------- PgBouncer ----

pgbouncer_version() { "$PGBOUNCER" --version 2>/dev/null | head -n 1 | awk '{print $2}'; }

# bouncer_start NAME ENV [LINES]: target NAME, a PgBouncer with the same pool
# as pgflip's, started in $work/NAME (LINES: more keys of its [pgbouncer]
# section); its config is copied to $RES/NAME.ini. Returns once a client
# with ENV gets an answer, 1 if it never does.
bouncer_start() {
	target_new "$1" pgbouncer "$2"
	new_port
	tset port "$1" "$NEW_PORT"
	_pbdir=$work/$1
	mkdir -p "$_pbdir"
	echo '"app" "app_pw"' >"$_pbdir/userlist.txt"
	cat >"$_pbdir/pgbouncer.ini" <<CONF
[databases]
bench = host=$upstream_host port=$pg_port dbname=bench user=app password=app_pw

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $NEW_PORT
unix_socket_dir =
auth_type = trust
auth_file = $_pbdir/userlist.txt
pool_mode = $BENCH_POOL_MODE
default_pool_size = $BENCH_POOL
max_client_conn = 2000
logfile = $_pbdir/pgbouncer.log
pidfile = $_pbdir/pgbouncer.pid
${3:-}
CONF
	cp "$_pbdir/pgbouncer.ini" "$RES/$1.ini"
	# PgBouncer refuses to run as root: as root it runs as postgres (setpriv
	# execs, so $! is PgBouncer itself).
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres "$_pbdir"
		chmod 700 "$_pbdir"
		setsid setpriv --reuid=postgres --regid=postgres --init-groups -- \
			"$PGBOUNCER" "$_pbdir/pgbouncer.ini" >"$RES/$1.stderr" 2>&1 &
	else
		setsid "$PGBOUNCER" "$_pbdir/pgbouncer.ini" >"$RES/$1.stderr" 2>&1 &
	fi
	tset pid "$1" $!
	note "starting $1 (PgBouncer $(pgbouncer_version)) on 127.0.0.1:$NEW_PORT"
	_i=0
	until env $2 psql -X -At -h 127.0.0.1 -p "$NEW_PORT" -U app -d bench -c "SELECT 1" >/dev/null 2>&1; do
		alive "$(tget pid "$1")" && [ $_i -lt 100 ] || {
			cat "$RES/$1.stderr" "$_pbdir/pgbouncer.log" >&2 2>/dev/null
			return 1
		}
		sleep 0.1; _i=$((_i + 1))
	done
}

# ---------------------------------------------------------------- pgbench ----

mode_args() {
	case $1 in
	select-simple) echo "-S -M simple" ;;
	select-extended) echo "-S -M extended" ;;
	select-prepared) echo "-S -M prepared" ;;
	tpcb) echo "-M simple" ;;
	select-connect) echo "-S -C" ;;
	esac
}

# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null
}

status_kb() { # PID FIELD: e.g. VmHWM, in kB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

# run_one ROUND MODE TARGET SECONDS: both halves at once; appends to runs.tsv
# ROUND MODE TARGET HALF RC TPS FAILED ABORTED FILE, and sets RUN_OUT to the summed
# TPS or FAIL. (Not called in $(...): the pids must stay in this shell for the
# trap, and a restarted pgflip's pid too.)
run_one() {
	_round=$1 _mode=$2 _target=$3 _secs=$4
	_port=$(tget port "$_target") _env=$(tget env "$_target") _kind=$(tget kind "$_target")
	_args=$(mode_args "$_mode")
	if [ "$_kind" = pgflip ] && ! alive "$(tget pid "$_target")"; then
		note "$_target is not running (see $(flip_file "$_target").log); restarting it"
		echo "round $_round $_mode: $_target found dead, restarted" >>"$RES/events.txt"
		wait "$(tget pid "$_target")" 2>/dev/null
		flip_start "$_target" || note "$_target did not restart"
	fi
	_ppid=$(tget pid "$_target")
	_t0=""
	[ -n "$_ppid" ] && _t0=$(cpu_ticks "$_ppid")
	_pids=""
	for _h in 1 2; do
		eval "_c=\$half$_h _j=\$jobs$_h"
		_f=$RES/raw/r$_round-$_mode-$_target-v$_h.txt
		echo "${_env:+$_env }PGAPPNAME=v$_h-bench pgbench -n $_args -c $_c -j $_j -T $_secs -h 127.0.0.1 -p $_port -U app bench" >"$_f"
		env $_env PGAPPNAME=v$_h-bench PGPASSWORD=app_pw timeout -k 5 "$BENCH_TIMEOUT" \
			"$PGBENCH" -n $_args -c "$_c" -j "$_j" -T "$_secs" -h 127.0.0.1 -p "$_port" -U app bench \
			>>"$_f" 2>&1 </dev/null &
		_pids="$_pids $!"
	done
	BG_PIDS=$_pids
	_sum=0 _bad=""
	_h=0
	for _p in $_pids; do
		_h=$((_h + 1))
		wait "$_p"; _rc=$?
		_f=$RES/raw/r$_round-$_mode-$_target-v$_h.txt
		_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$_f" | head -n 1)
		_failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$_f" | head -n 1)
		[ -n "$_failed" ] || _failed=0
		_aborted=$(grep -c 'client [0-9]* .*aborted' "$_f")
		[ "$_rc" = 124 ] || [ "$_rc" = 137 ] && echo "round $_round $_mode $_target v$_h: hung, killed after ${BENCH_TIMEOUT}s" >>"$RES/events.txt"
		if [ "$_rc" != 0 ] || [ -z "$_tps" ]; then _bad=1; fi
		printf '%s\t%s\t%s\tv%s\t%s\t%s\t%s\t%s\t%s\n' "$_round" "$_mode" "$_target" "$_h" "$_rc" "${_tps:--}" "$_failed" "$_aborted" "$_f" >>"$RES/runs.tsv"
		_sum=$(awk -v a="$_sum" -v b="${_tps:-0}" 'BEGIN { printf "%.1f", a + b }')
	done
	BG_PIDS=""
	# the proxy's CPU time per transaction (both halves), for cpu.tsv
	if [ -n "$_t0" ] && [ -z "$_bad" ]; then
		_t1=$(cpu_ticks "$_ppid")
		_x=$(cat "$RES/raw/r$_round-$_mode-$_target-v1.txt" "$RES/raw/r$_round-$_mode-$_target-v2.txt" |
			sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
		[ -n "$_t1" ] && [ "$_x" -gt 0 ] &&
			printf '%s\t%s\t%s\t%s\t%s\n' "$_round" "$_mode" "$_target" "$((_t1 - _t0))" "$_x" >>"$RES/cpu.tsv"
	fi
	if [ -n "$_bad" ] && [ "$_kind" = pgflip ]; then
		{ echo "== round $_round $_mode: $_target status after the failure"
			flip_ctl "$_target" status 2>&1; flip_ctl "$_target" pools 2>&1; } >>"$(flip_file "$_target")-failures.txt" 2>&1
	fi
	if [ -n "$_bad" ]; then RUN_OUT=FAIL; else RUN_OUT=$_sum; fi
}

bench_tsv_init() {
	printf 'round\tmode\ttarget\thalf\trc\ttps\tfailed\taborted\tfile\n' >"$RES/runs.tsv"
	printf 'round\tmode\ttarget\tcpu_ticks\ttransactions\n' >"$RES/cpu.tsv"
	: >"$RES/events.txt"
}

# run_warmup TARGETS...: BENCH_WARMUP seconds of -S -M simple each (caches,
# pools), recorded as round 0 and then dropped
run_warmup() {
	[ "$BENCH_WARMUP" -gt 0 ] || return 0
	for _wt in "$@"; do
		note "warm-up: $_wt"
		run_one 0 select-simple "$_wt" "$BENCH_WARMUP"
	done
	for _wf in runs cpu; do
		awk -F '\t' '$1 != "0"' "$RES/$_wf.tsv" >"$RES/$_wf.tmp" && mv "$RES/$_wf.tmp" "$RES/$_wf.tsv"
	done
}

# run_rounds: BENCH_ROUNDS rounds; in each, every mode of BENCH_MODES runs on
# every target that `mode_targets MODE` prints, the order rotated every
# round so that no target always runs first or after the same neighbour
run_rounds() {
	_r=1
	while [ $_r -le "$BENCH_ROUNDS" ]; do
		for _m in $BENCH_MODES; do
			_order=$(mode_targets "$_m" | awk -v r="$_r" '{ k = (r - 1) % NF; for (i = 0; i < NF; i++) printf "%s ", $((i + k) % NF + 1) }')
			for _t in $_order; do
				run_one "$_r" "$_m" "$_t" "$BENCH_SECONDS"
				printf '# round %s/%s  %-16s %-14s %s\n' "$_r" "$BENCH_ROUNDS" "$_m" "$_t" "$RUN_OUT" >&2
			done
		done
		_r=$((_r + 1))
	done
}

# ------------------------------------------------------------------ summary ----

# AWK_MEDIAN (awk's median(list), for the summary tables): tests/lib/awk.sh
. tests/lib/awk.sh

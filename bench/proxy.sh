#!/bin/sh
# bench/proxy.sh: pgbench throughput through pgflip, beside PostgreSQL direct
# and PgBouncer, plus pgflip's memory (peak RSS under load, RSS of 1,000 idle
# clients). `make bench` runs it; bench/README.md tells how to read the output.
#
#   sh bench/proxy.sh                                   defaults below
#   BENCH_SECONDS=3 BENCH_ROUNDS=1 sh bench/proxy.sh    a quick smoke run
#
# One command does everything, on 127.0.0.1 only: a throwaway PostgreSQL
# (tests/lib/pg.sh, in a mktemp folder), `pgbench -i` into a database `bench`
# owned by app, version schemas v1 and v2 holding views over pgbench's four
# tables, then pgflip ([routes] default = v1, app.v2-* = v2) and PgBouncer with
# the same pool_mode, pool size and upstream connection (BENCH_UPSTREAM). Each
# proxy runs in a session of its own (setsid), as under a service manager, so
# that the kernel's autogroup scheduling does not make it share one CPU share
# with the pgbench processes (PostgreSQL's backends each have their own
# session already). Each run starts two pgbench processes at
# once with half the clients each, PGAPPNAME=v1-bench and PGAPPNAME=v2-bench,
# and adds their TPS; all targets get the same split. The targets take
# turns (alternating rounds, the order rotated every round). A failed or hung
# run is recorded as FAIL and the benchmark goes on.
#
# Two more targets compare pgflip with itself in the same run, on the same
# machine minutes apart: `base` is a second pgflip binary (BENCH_PGFLIP_BASE,
# e.g. a build of the code before the change under test) with the same
# config, for before/after figures; `always` is PGFLIP started a second time
# with `server_check_search_path = always`, for the cost of that setting.
# Each runs like pgflip: its own port, admin socket and log, setsid, a
# private copy of its binary, the routing check at start.
#
# Environment (defaults in brackets):
#   BENCH_SCALE        pgbench -i scale factor                          [10]
#   BENCH_ROUNDS       rounds; each mode x target runs once per round   [3]
#   BENCH_SECONDS      length of one run, pgbench -T                    [10]
#   BENCH_CLIENTS      clients per run, split in two halves (v1 and v2) [8]
#   BENCH_JOBS         pgbench threads per run, split between halves    [2]
#   BENCH_POOL         default_pool_size of pgflip and of PgBouncer     [20]
#   BENCH_POOL_MODE    pool_mode of both: transaction or session        [transaction]
#   BENCH_MODES        modes to run, among: select-simple select-extended
#                      select-prepared tpcb select-connect              [all five]
#   BENCH_TARGETS      among: direct pgflip pgbouncer base always
#                      [direct pgflip pgbouncer, + base if BENCH_PGFLIP_BASE is
#                      set, + always if BENCH_ALWAYS=1]
#   BENCH_PGFLIP_BASE  the pgflip binary of target base (pgflip/base ratios) [none]
#   BENCH_ALWAYS       1: add target always to the default targets      [0]
#   BENCH_WARMUP       seconds of -S warm-up per target before round 1  [2]
#   BENCH_IDLE_CLIENTS idle clients for the memory measurement; 0 = skip [1000]
#   BENCH_TIMEOUT      seconds before a run counts as hung               [BENCH_SECONDS + 30]
#   BENCH_RESULTS      folder for raw results (kept)   [a new /tmp/pgflip-bench-results.XXXXXX]
#   BENCH_LOG_LEVEL    pgflip's log_level                               [info]
#   BENCH_UPSTREAM     how both proxies reach PostgreSQL: unix (its
#                      socket, the usual setup of a pooler on the database
#                      host) or tcp (127.0.0.1)                         [unix]
#   BENCH_PG_AUTH      how app logs in to PostgreSQL over TCP: trust, or
#                      scram-sha-256 (then -C direct pays SCRAM per
#                      connection, and the proxies only per server login) [trust]
#   PGFLIP             pgflip binary                                    [build/pgflip]
#   PGBOUNCER          PgBouncer binary                                 [/usr/sbin/pgbouncer]
#   PGBENCH            pgbench binary                     [pgbench on PATH, else PG 15's]
#
# Targets printed beside the figures: pgflip >= 1.15 x PgBouncer's TPS in
# every mode where PgBouncer works; pgflip >= 0.85 x direct in the -S modes;
# 1,000 idle clients cost pgflip <= 32 MB of RSS. pgflip/base and
# always/pgflip are printed without a target.
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)

BENCH_SCALE=${BENCH_SCALE:-10}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_CLIENTS=${BENCH_CLIENTS:-8}
BENCH_JOBS=${BENCH_JOBS:-2}
BENCH_POOL=${BENCH_POOL:-20}
BENCH_POOL_MODE=${BENCH_POOL_MODE:-transaction}
BENCH_MODES=${BENCH_MODES:-"select-simple select-extended select-prepared tpcb select-connect"}
BENCH_PGFLIP_BASE=${BENCH_PGFLIP_BASE:-}
BENCH_ALWAYS=${BENCH_ALWAYS:-0}
if [ -z "${BENCH_TARGETS:-}" ]; then
	BENCH_TARGETS="direct pgflip pgbouncer"
	[ -n "$BENCH_PGFLIP_BASE" ] && BENCH_TARGETS="$BENCH_TARGETS base"
	[ "$BENCH_ALWAYS" = 1 ] && BENCH_TARGETS="$BENCH_TARGETS always"
fi
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_IDLE_CLIENTS=${BENCH_IDLE_CLIENTS:-1000}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-$((BENCH_SECONDS + 30))}
BENCH_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
BENCH_PG_AUTH=${BENCH_PG_AUTH:-trust}
BENCH_UPSTREAM=${BENCH_UPSTREAM:-unix}
PGFLIP=${PGFLIP:-build/pgflip}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
PGBENCH=${PGBENCH:-$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)}

die() { echo "bench/proxy.sh: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

case $BENCH_PG_AUTH in trust | scram-sha-256) ;; *) die "BENCH_PG_AUTH must be trust or scram-sha-256" ;; esac
case $BENCH_UPSTREAM in unix | tcp) ;; *) die "BENCH_UPSTREAM must be unix or tcp" ;; esac
case $BENCH_POOL_MODE in transaction | session) ;; *) die "BENCH_POOL_MODE must be transaction or session" ;; esac
case $BENCH_ALWAYS in 0 | 1) ;; *) die "BENCH_ALWAYS must be 0 or 1" ;; esac
for m in $BENCH_MODES; do
	case $m in select-simple | select-extended | select-prepared | tpcb | select-connect) ;;
	*) die "unknown mode '$m' in BENCH_MODES" ;; esac
done
for t in $BENCH_TARGETS; do
	case $t in direct | pgflip | pgbouncer | base | always) ;; *) die "unknown target '$t' in BENCH_TARGETS" ;; esac
done
has_target() { case " $BENCH_TARGETS " in *" $1 "*) return 0 ;; esac; return 1; }
# the pgflip-like targets to start: pgflip always (the routing check and the
# memory figures need it), base and always when they are run
FLIP_TARGETS=pgflip
for t in base always; do has_target "$t" && FLIP_TARGETS="$FLIP_TARGETS $t"; done
[ "$BENCH_CLIENTS" -ge 2 ] || die "BENCH_CLIENTS must be at least 2 (two halves)"
[ -x "$PGFLIP" ] || make -s "$PGFLIP" || die "no pgflip binary at $PGFLIP"
[ -x "$PGBENCH" ] || die "no pgbench at $PGBENCH"
has_target pgbouncer && { [ -x "$PGBOUNCER" ] || die "no PgBouncer at $PGBOUNCER (or leave it out of BENCH_TARGETS)"; }
if has_target base; then
	[ -n "$BENCH_PGFLIP_BASE" ] || die "target base needs BENCH_PGFLIP_BASE (a pgflip binary)"
	[ -x "$BENCH_PGFLIP_BASE" ] || die "no pgflip binary at BENCH_PGFLIP_BASE=$BENCH_PGFLIP_BASE"
fi

# 1,000 idle clients need 1,000+ descriptors in pgflip (which inherits this).
ulimit -n 8192 2>/dev/null || note "ulimit -n 8192 refused; open files limit is $(ulimit -n)"

# ---------------------------------------------------------------- cleanup ----

BG_PIDS=""      # pgbench runs and helpers in flight
PB_PID=""
# each pgflip-like target NAME (pgflip, base, always) keeps its pid, port
# and number of starts in pid_NAME, port_NAME, starts_NAME
flip_pid() { eval "echo \"\${pid_$1:-}\""; }
flip_port() { eval "echo \"\${port_$1:-}\""; }
flip_starts() { eval "echo \"\${starts_$1:-0}\""; }
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

cleanup() {
	[ -n "$cleaned" ] && return
	cleaned=1
	for p in $BG_PIDS; do stop_pid "$p" TERM; done
	for t in $FLIP_TARGETS; do stop_pid "$(flip_pid "$t")" INT; done   # SIGINT: pgflip exits at once
	stop_pid "$PB_PID" TERM     # SIGTERM: PgBouncer's immediate shutdown
	if [ -n "$work" ] && [ -d "$work" ]; then
		[ -f "$work/bouncer/pgbouncer.log" ] && cp "$work/bouncer/pgbouncer.log" "$RES/pgbouncer.log" 2>/dev/null
		[ -f "$work/pg/server.log" ] && cp "$work/pg/server.log" "$RES/postgresql.log" 2>/dev/null
		pg_stop "$work/pg" 2>/dev/null
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'note interrupted; exit 130' INT
trap 'note terminated; exit 143' TERM

# --------------------------------------------------------------- settings ----

if [ -n "${BENCH_RESULTS:-}" ]; then
	RES=$BENCH_RESULTS
	mkdir -p "$RES" || die "cannot create $RES"
else
	RES=$(mktemp -d /tmp/pgflip-bench-results.XXXXXX) || die "mktemp failed"
fi
mkdir -p "$RES/raw"
RES=$(cd "$RES" && pwd)
echo "results: $RES"

. tests/lib/pg.sh
work=$(mktemp -d /tmp/pgflip-bench.XXXXXX) || die "mktemp failed"

half1=$(((BENCH_CLIENTS + 1) / 2))
half2=$((BENCH_CLIENTS / 2))
jobs1=$(((BENCH_JOBS + 1) / 2)); [ "$jobs1" -ge 1 ] || jobs1=1
jobs2=$((BENCH_JOBS / 2)); [ "$jobs2" -ge 1 ] || jobs2=1
[ "$jobs1" -le "$half1" ] || jobs1=$half1
[ "$jobs2" -le "$half2" ] || jobs2=$half2

# servers: the pools of the pgflip-like targets + PgBouncer's pool + direct
# clients, with room for backends of -C runs that are still exiting
max_conn=$(($(echo $FLIP_TARGETS | wc -w) * BENCH_POOL + BENCH_POOL + 2 * BENCH_CLIENTS + 50))
[ "$max_conn" -ge 200 ] || max_conn=200

# ------------------------------------------------------------- PostgreSQL ----

note "starting PostgreSQL ($PG_BINDIR) in $work/pg, max_connections = $max_conn"
pg_port=$(free_port)
pg_start "$work/pg" "$pg_port" || die "PostgreSQL did not start"
pg_psql -c "ALTER SYSTEM SET max_connections = $max_conn" || die "ALTER SYSTEM failed"
if [ "$BENCH_PG_AUTH" = trust ]; then
	# app logs in to `bench` over TCP without SCRAM, as clients log in to the
	# proxies (trust); rewritten in place so that the file keeps its owner
	hba=$work/pg/data/pg_hba.conf
	{ echo "host bench app 127.0.0.1/32 trust"; cat "$hba"; } >"$work/hba.tmp" && cat "$work/hba.tmp" >"$hba" ||
		die "cannot edit $hba"
fi
pg_stop "$work/pg"
pg_start "$work/pg" "$pg_port" || die "PostgreSQL did not restart"

pg_psql -c "CREATE DATABASE bench OWNER app" || die "CREATE DATABASE failed"
note "pgbench -i -s $BENCH_SCALE"
PGPASSWORD=app_pw "$PGBENCH" -i -q -s "$BENCH_SCALE" -h 127.0.0.1 -p "$pg_port" -U app bench \
	>"$RES/init.log" 2>&1 || { tail -n 20 "$RES/init.log" >&2; die "pgbench -i failed"; }
# The version schemas: simple views, so pgbench's scripts (UPDATE, INSERT
# included) run unchanged under search_path v1 or v2.
{
	for v in v1 v2; do
		echo "CREATE SCHEMA $v;"
		for t in accounts branches tellers history; do
			echo "CREATE VIEW $v.pgbench_$t AS SELECT * FROM public.pgbench_$t;"
		done
	done
	# Direct and PgBouncer clients read through the same views as pgflip's
	# clients do, so the three targets run the same SQL; pgflip sets each
	# client's route over this default.
	echo "ALTER ROLE app IN DATABASE bench SET search_path = v1;"
} | PGPASSWORD=app_pw psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U app bench ||
	die "creating the version schemas failed"
pg_psql -d bench -c "ANALYZE" || die "ANALYZE failed"

# how both proxies reach PostgreSQL (direct clients always use TCP)
if [ "$BENCH_UPSTREAM" = unix ]; then upstream_host=$PG_SOCK; else upstream_host=127.0.0.1; fi

# ----------------------------------------------------- pgflip, base, always ----

# pgflip-like targets: pgflip (PGFLIP), base (BENCH_PGFLIP_BASE, the same
# config) and always (PGFLIP again, with server_check_search_path = always;
# never given to base, which may not know the key). Each has its own folder
# $work/NAME (unix_socket_dir, admin socket, binary), port, config and logs
# ($RES/pgflip*, see flip_file).
flip_file() { case $1 in pgflip) echo "$RES/pgflip" ;; *) echo "$RES/pgflip-$1" ;; esac; }
flip_bin() { case $1 in always) echo "$work/pgflip/pgflip" ;; *) echo "$work/$1/pgflip" ;; esac; }
flip_ctl() { # NAME ARGS...: pgflip ctl on NAME's admin socket
	_fc=$1; shift
	"$(flip_bin "$_fc")" ctl -s "$work/$_fc/admin.sock" "$@"
}

# new_port: sets NEW_PORT to a free port that no other target got
# (free_port asks the kernel for one, and nothing holds it until the target
# starts)
USED_PORTS=$pg_port
new_port() {
	NEW_PORT=$(free_port) _i=0
	while case " $USED_PORTS " in *" $NEW_PORT "*) [ $_i -lt 20 ] ;; *) false ;; esac; do
		NEW_PORT=$(free_port); _i=$((_i + 1))
	done
	USED_PORTS="$USED_PORTS $NEW_PORT"
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

# flip_prepare NAME SOURCE_BINARY: the private copy of the binary, the port,
# the config. Run a private copy: a rebuild of the binary during the run (the
# checkout may be shared) must not change what is measured halfway.
flip_prepare() {
	mkdir -p "$work/$1"
	if [ "$1" != always ]; then
		cp "$2" "$(flip_bin "$1")" || die "cannot copy $2"
	fi
	new_port
	eval "port_$1=\$NEW_PORT"
	{
		echo "[pgflip]"
		[ "$1" = always ] && echo "server_check_search_path = always"
		cat <<CONF
listen_addr = 127.0.0.1
listen_port = $(flip_port "$1")
unix_socket_dir = $work/$1
admin_socket = $work/$1/admin.sock
pool_mode = $BENCH_POOL_MODE
default_pool_size = $BENCH_POOL
max_client_conn = 2000
shutdown_timeout = 2
log_level = $BENCH_LOG_LEVEL
logfile = $(flip_file "$1").log

[databases]
bench = host=$upstream_host port=$pg_port dbname=bench user=app password=app_pw

[routes]
default = v1
app.v2-* = v2
CONF
	} >"$(flip_file "$1").ini"
	chmod 600 "$(flip_file "$1").ini"
}

# flip_start NAME: start it, wait for its admin socket; sets pid_NAME
flip_start() {
	_fb=$(flip_bin "$1") _ff=$(flip_file "$1")
	# setsid execs (this background job is no process group leader), so $!
	# is pgflip itself
	setsid "$_fb" serve -c "$_ff.ini" >>"$_ff.stderr" 2>&1 &
	eval "pid_$1=\$! starts_$1=\$((\${starts_$1:-0} + 1))"
	_i=0
	while [ $_i -lt 100 ]; do
		flip_ctl "$1" status >/dev/null 2>&1 && return 0
		alive "$(flip_pid "$1")" || { tail -n 20 "$_ff.stderr" "$_ff.log" >&2 2>/dev/null; return 1; }
		sleep 0.1; _i=$((_i + 1))
	done
	return 1
}

flip_prepare pgflip "$PGFLIP"
flip_id="$PGFLIP, $(stat -c '%y' "$PGFLIP" | cut -c1-19), sha256 $(sha256sum "$(flip_bin pgflip)" | cut -c1-12)"
git_id=$(checkout_id "$TOP")
echo "pgflip: $flip_id, checkout $git_id"
if has_target base; then
	flip_prepare base "$BENCH_PGFLIP_BASE"
	base_id="$BENCH_PGFLIP_BASE, $(stat -c '%y' "$BENCH_PGFLIP_BASE" | cut -c1-19), sha256 $(sha256sum "$(flip_bin base)" | cut -c1-12)"
	base_id="$base_id, checkout $(checkout_id "$(dirname "$BENCH_PGFLIP_BASE")")"
	echo "base: $base_id"
fi
if has_target always; then
	flip_prepare always
	echo "always: the pgflip binary above, with server_check_search_path = always"
fi

for t in $FLIP_TARGETS; do
	note "starting $t on 127.0.0.1:$(flip_port "$t") ($BENCH_POOL_MODE, pool $BENCH_POOL)"
	flip_start "$t" || die "$t did not start"
	# the split must really reach both version schemas
	r1=$(PGAPPNAME=v1-bench psql -X -At -h 127.0.0.1 -p "$(flip_port "$t")" -U app -d bench -c "SHOW search_path" 2>&1)
	r2=$(PGAPPNAME=v2-bench psql -X -At -h 127.0.0.1 -p "$(flip_port "$t")" -U app -d bench -c "SHOW search_path" 2>&1)
	echo "routing check through $t: v1-bench -> $r1, v2-bench -> $r2"
	[ "$r1" = v1 ] && [ "$r2" = v2 ] || note "WARNING: routing through $t is not as expected (want v1 and v2)"
done

# -------------------------------------------------------------- PgBouncer ----

pb_port=""
if has_target pgbouncer; then
	new_port
	pb_port=$NEW_PORT
	pbdir=$work/bouncer
	mkdir -p "$pbdir"
	echo '"app" "app_pw"' >"$pbdir/userlist.txt"
	cat >"$pbdir/pgbouncer.ini" <<CONF
[databases]
bench = host=$upstream_host port=$pg_port dbname=bench user=app password=app_pw

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pb_port
unix_socket_dir =
auth_type = trust
auth_file = $pbdir/userlist.txt
pool_mode = $BENCH_POOL_MODE
default_pool_size = $BENCH_POOL
max_client_conn = 2000
logfile = $pbdir/pgbouncer.log
pidfile = $pbdir/pgbouncer.pid
CONF
	cp "$pbdir/pgbouncer.ini" "$RES/pgbouncer.ini"
	# PgBouncer refuses to run as root: as root it runs as postgres (setpriv
	# execs, so $! is PgBouncer itself).
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres "$pbdir"
		chmod 700 "$pbdir"
		setsid setpriv --reuid=postgres --regid=postgres --init-groups -- \
			"$PGBOUNCER" "$pbdir/pgbouncer.ini" >"$RES/pgbouncer.stderr" 2>&1 &
	else
		setsid "$PGBOUNCER" "$pbdir/pgbouncer.ini" >"$RES/pgbouncer.stderr" 2>&1 &
	fi
	PB_PID=$!
	note "starting PgBouncer $("$PGBOUNCER" --version 2>/dev/null | head -n 1 | awk '{print $2}') on 127.0.0.1:$pb_port"
	_i=0
	until psql -X -At -h 127.0.0.1 -p "$pb_port" -U app -d bench -c "SELECT 1" >/dev/null 2>&1; do
		alive "$PB_PID" && [ $_i -lt 100 ] || {
			cat "$RES/pgbouncer.stderr" "$pbdir/pgbouncer.log" >&2 2>/dev/null
			die "PgBouncer did not start"
		}
		sleep 0.1; _i=$((_i + 1))
	done
fi

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
is_flip() { case $1 in pgflip | base | always) return 0 ;; esac; return 1; }
target_port() {
	case $1 in direct) echo "$pg_port" ;; pgbouncer) echo "$pb_port" ;; *) flip_port "$1" ;; esac
}

# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null
}
target_pid() { # the proxy's pid; none for direct
	case $1 in direct) ;; pgbouncer) echo "$PB_PID" ;; *) flip_pid "$1" ;; esac
}

# run_one ROUND MODE TARGET SECONDS: both halves at once; appends to runs.tsv
# ROUND MODE TARGET HALF RC TPS FAILED ABORTED FILE, and sets RUN_OUT to the summed
# TPS or FAIL. (Not called in $(...): the pids must stay in this shell for the
# trap, and a restarted pgflip-like target's pid too.)
run_one() {
	_round=$1 _mode=$2 _target=$3 _secs=$4
	_port=$(target_port "$_target")
	_args=$(mode_args "$_mode")
	if is_flip "$_target" && ! alive "$(flip_pid "$_target")"; then
		note "$_target is not running (see $(flip_file "$_target").log); restarting it"
		echo "round $_round $_mode: $_target found dead, restarted" >>"$RES/events.txt"
		wait "$(flip_pid "$_target")" 2>/dev/null
		flip_start "$_target" || note "$_target did not restart"
	fi
	_ppid=$(target_pid "$_target")
	_t0=""
	[ -n "$_ppid" ] && _t0=$(cpu_ticks "$_ppid")
	_pids=""
	for _h in 1 2; do
		eval "_c=\$half$_h _j=\$jobs$_h"
		_f=$RES/raw/r$_round-$_mode-$_target-v$_h.txt
		echo "PGAPPNAME=v$_h-bench pgbench -n $_args -c $_c -j $_j -T $_secs -h 127.0.0.1 -p $_port -U app bench" >"$_f"
		PGAPPNAME=v$_h-bench PGPASSWORD=app_pw timeout -k 5 "$BENCH_TIMEOUT" \
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
	if [ -n "$_bad" ] && is_flip "$_target"; then
		{ echo "== round $_round $_mode: $_target status after the failure"
			flip_ctl "$_target" status 2>&1; flip_ctl "$_target" pools 2>&1; } >>"$(flip_file "$_target")-failures.txt" 2>&1
	fi
	if [ -n "$_bad" ]; then RUN_OUT=FAIL; else RUN_OUT=$_sum; fi
}

printf 'round\tmode\ttarget\thalf\trc\ttps\tfailed\taborted\tfile\n' >"$RES/runs.tsv"
printf 'round\tmode\ttarget\tcpu_ticks\ttransactions\n' >"$RES/cpu.tsv"
: >"$RES/events.txt"

if [ "$BENCH_WARMUP" -gt 0 ]; then
	for t in $BENCH_TARGETS; do
		note "warm-up: $t"
		run_one 0 select-simple "$t" "$BENCH_WARMUP"
	done
	# warm-up runs are not counted
	for _f in runs cpu; do
		awk -F '\t' '$1 != "0"' "$RES/$_f.tsv" >"$RES/$_f.tmp" && mv "$RES/$_f.tmp" "$RES/$_f.tsv"
	done
fi

ntargets=$(echo $BENCH_TARGETS | wc -w)
r=1
while [ $r -le "$BENCH_ROUNDS" ]; do
	# rotate the order of the targets every round
	order=$(echo $BENCH_TARGETS | awk -v k=$(((r - 1) % ntargets)) '{ for (i = 0; i < NF; i++) printf "%s ", $((i + k) % NF + 1) }')
	for m in $BENCH_MODES; do
		for t in $order; do
			run_one "$r" "$m" "$t" "$BENCH_SECONDS"
			printf '# round %s/%s  %-16s %-10s %s\n' "$r" "$BENCH_ROUNDS" "$m" "$t" "$RUN_OUT" >&2
		done
	done
	r=$((r + 1))
done

status_kb() { # PID FIELD: e.g. VmHWM, in kB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}
# flip_hwm PREFIX: sets PREFIX_NAME to the peak RSS (VmHWM, kB) of each
# pgflip-like target NAME, empty if it is not running
flip_hwm() {
	for _t in $FLIP_TARGETS; do
		_k=""
		alive "$(flip_pid "$_t")" && _k=$(status_kb "$(flip_pid "$_t")" VmHWM)
		eval "${1}_$_t=\$_k"
	done
}
flip_hwm hwm    # after the rounds

# ------------------------------------------------------------ idle clients ----

cat >"$work/idle.py" <<'PY'
"""Open N idle clients: StartupMessage (user app, database bench), wait for
ReadyForQuery, print READY, hold until the release file exists."""
import os, selectors, socket, struct, sys, time

port, n, release = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
deadline = time.time() + float(sys.argv[4])
body = struct.pack("!I", 196608) + b"user\0app\0database\0bench\0application_name\0idle-bench\0\0"
startup = struct.pack("!I", len(body) + 4) + body
sel = selectors.DefaultSelector()
buf, ready, failed, errors = {}, [], 0, {}
opened = 0

def finish(s, ok, why=None):
    global failed
    sel.unregister(s)
    if ok:
        ready.append(s)
    else:
        failed += 1
        errors[why] = errors.get(why, 0) + 1
        s.close()

while (opened < n or len(sel.get_map()) > 0) and time.time() < deadline:
    while opened < n and len(sel.get_map()) < 50:   # at most 50 logins in flight
        opened += 1
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(startup)
            s.setblocking(False)
        except OSError as e:
            failed += 1
            errors[str(e)] = errors.get(str(e), 0) + 1
            continue
        buf[s] = b""
        sel.register(s, selectors.EVENT_READ)
    for key, _ in sel.select(timeout=0.5):
        s = key.fileobj
        try:
            chunk = s.recv(65536)
        except OSError as e:
            finish(s, False, str(e)); continue
        if not chunk:
            finish(s, False, "closed by server"); continue
        buf[s] += chunk
        while len(buf[s]) >= 5:
            t, ln = buf[s][:1], struct.unpack("!I", buf[s][1:5])[0]
            if len(buf[s]) < ln + 1:
                break
            msg, buf[s] = buf[s][5:ln + 1], buf[s][ln + 1:]
            if t == b"Z":
                finish(s, True); break
            if t == b"E":
                f = dict((p[:1], p[1:]) for p in msg.split(b"\0") if p)
                finish(s, False, "%s %s" % (f.get(b"C", b"?").decode(), f.get(b"M", b"?").decode(errors="replace"))); break
            if t == b"R" and struct.unpack("!I", msg[:4])[0] != 0:
                finish(s, False, "password asked"); break
pending = len(sel.get_map())
print("READY ok=%d failed=%d pending=%d %s" % (len(ready), failed, pending, errors or ""), flush=True)
while not os.path.exists(release) and time.time() < deadline + 120:
    time.sleep(0.2)
for s in ready:
    try:
        s.sendall(b"X\0\0\0\4")
    except OSError:
        pass
    s.close()
PY

# idle_rss NAME PID PORT: RSS before and with BENCH_IDLE_CLIENTS idle clients;
# sets IDLE_BEFORE IDLE_WITH (kB) and IDLE_OK
idle_rss() {
	IDLE_BEFORE="" IDLE_WITH="" IDLE_OK=""
	alive "$2" || { note "$1 is not running: no idle measurement"; return 1; }
	sleep 1
	IDLE_BEFORE=$(status_kb "$2" VmRSS)
	rm -f "$work/release"
	python3 "$work/idle.py" "$3" "$BENCH_IDLE_CLIENTS" "$work/release" 60 >"$RES/idle-$1.txt" 2>&1 &
	_ip=$!
	BG_PIDS=$_ip
	_i=0
	while ! grep -q '^READY' "$RES/idle-$1.txt" && alive "$_ip" && [ $_i -lt 700 ]; do
		sleep 0.1; _i=$((_i + 1))
	done
	sleep 1
	IDLE_WITH=$(status_kb "$2" VmRSS)
	IDLE_OK=$(sed -n 's/^READY ok=\([0-9]*\).*/\1/p' "$RES/idle-$1.txt")
	[ "$1" = pgflip ] && flip_ctl pgflip status >"$RES/idle-pgflip-status.txt" 2>&1
	touch "$work/release"
	stop_pid "$_ip" TERM
	BG_PIDS=""
	echo "$1: RSS before $IDLE_BEFORE kB, with ${IDLE_OK:-0}/$BENCH_IDLE_CLIENTS idle clients $IDLE_WITH kB" >>"$RES/idle.txt"
}

flip_idle="" pb_idle=""
if [ "$BENCH_IDLE_CLIENTS" -gt 0 ]; then
	if has_target pgflip; then
		note "idle clients: $BENCH_IDLE_CLIENTS to pgflip"
		idle_rss pgflip "$(flip_pid pgflip)" "$(flip_port pgflip)" && flip_idle="$IDLE_BEFORE $IDLE_WITH ${IDLE_OK:-0}"
	fi
	if has_target pgbouncer; then
		note "idle clients: $BENCH_IDLE_CLIENTS to PgBouncer (reference)"
		idle_rss pgbouncer "$PB_PID" "$pb_port" && pb_idle="$IDLE_BEFORE $IDLE_WITH ${IDLE_OK:-0}"
	fi
fi
flip_hwm hwm_end

# ---------------------------------------------------------------- summary ----

# awk's median of a space-separated list of numbers, for both summary tables
AWK_MEDIAN='
function median(list,   a, n, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}'

# the summary's columns: TPS of every target (direct, pgflip and pgbouncer
# always, base and always when they ran), the proxies' CPU time, and the
# extra ratios, as NUMERATOR DENOMINATOR pairs
SUM_COLS="direct pgflip" SUM_EXTRA=""
has_target base && SUM_COLS="$SUM_COLS base" SUM_EXTRA="$SUM_EXTRA pgflip base"
has_target always && SUM_COLS="$SUM_COLS always" SUM_EXTRA="$SUM_EXTRA always pgflip"
SUM_COLS="$SUM_COLS pgbouncer"
CPU_COLS=${SUM_COLS#direct }

summary() {
	echo
	echo "pgflip proxy benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "scale $BENCH_SCALE, $BENCH_CLIENTS clients (2 x $half2..$half1, v1-bench + v2-bench), -j $BENCH_JOBS," \
		"$BENCH_SECONDS s x $BENCH_ROUNDS rounds, pool $BENCH_POOL, pool_mode $BENCH_POOL_MODE, PostgreSQL auth $BENCH_PG_AUTH," \
		"proxies reach PostgreSQL over $BENCH_UPSTREAM"
	echo "pgflip: $flip_id, checkout ${git_id:-?}"
	has_target base && echo "base: $base_id"
	has_target always && echo "always: the pgflip binary above, with server_check_search_path = always"
	echo "$("$PGBENCH" --version 2>/dev/null); PgBouncer $("$PGBOUNCER" --version 2>/dev/null | head -n 1 | awk '{print $2}')"
	echo
	awk -F '\t' -v modes="$BENCH_MODES" -v rounds="$BENCH_ROUNDS" -v cols="$SUM_COLS" -v extra="$SUM_EXTRA" "$AWK_MEDIAN"'
	function label(m) {
		if (m == "select-simple") return "-S -M simple"
		if (m == "select-extended") return "-S -M extended"
		if (m == "select-prepared") return "-S -M prepared"
		if (m == "tpcb") return "tpcb -M simple"
		if (m == "select-connect") return "-S -C"
		return m
	}
	# NUM / DEN within each round where both worked: runs minutes apart see
	# the same machine, so this spread shows the noise
	function per_round(m, num, den,   r, k1, k2, x, list, lo, hi, n) {
		list = ""; n = 0
		for (r = 1; r <= rounds; r++) {
			k1 = r SUBSEP m SUBSEP num; k2 = r SUBSEP m SUBSEP den
			if (!(k1 in seen) || !(k2 in seen) || (k1 in bad) || (k2 in bad) || tps[k2] <= 0) continue
			x = tps[k1] / tps[k2]; list = list " " x; n++
			if (n == 1 || x < lo) lo = x
			if (n == 1 || x > hi) hi = x
		}
		return n ? sprintf("%.2f, %.2f..%.2f", median(list), lo, hi) : "-"
	}
	# NUM / DEN of the medians, given only when neither had a failed round
	function ratio(m, num, den) {
		if (med[m, num] == "" || med[m, den] == "" || nfail[m, num] || nfail[m, den] || med[m, den] <= 0) return "-"
		return sprintf("%.2f", med[m, num] / med[m, den])
	}
	NR > 1 {
		k = $1 SUBSEP $2 SUBSEP $3
		tps[k] += ($6 == "-" ? 0 : $6); failed[$2, $3] += $7; aborted[$2, $3] += $8
		if ($5 != 0 || $6 == "-") bad[k] = 1
		seen[k] = 1
	}
	END {
		nm = split(modes, M, " ")
		nt = split(cols, T, " ")
		nx = split(extra, X, " ")
		for (i = 1; i <= nm; i++) for (j = 1; j <= nt; j++) {
			list = ""; ok = 0; fails = 0
			for (r = 1; r <= rounds; r++) {
				k = r SUBSEP M[i] SUBSEP T[j]
				if (!(k in seen)) continue
				if (k in bad) fails++; else { list = list " " tps[k]; ok++ }
			}
			med[M[i], T[j]] = ok ? median(list) : ""
			cell[M[i], T[j]] = (ok + fails == 0) ? "-" : (ok == 0 ? "FAIL" : sprintf("%.0f%s", med[M[i], T[j]], fails ? "!" : ""))
			nfail[M[i], T[j]] = fails
			if (fails) anyfail = 1
		}
		line = sprintf("%-16s", "mode")
		for (j = 1; j <= nt; j++) line = line sprintf(" %10s", T[j])
		line = line sprintf(" %12s %13s", "pgflip/direct", "pgflip/pgbouncer")
		for (x = 1; x < nx; x += 2) line = line sprintf(" %13s", X[x] "/" X[x + 1])
		print line "  failed xacts/aborted clients"
		for (i = 1; i <= nm; i++) {
			m = M[i]
			rd = ratio(m, "pgflip", "direct"); rb = ratio(m, "pgflip", "pgbouncer")
			ft = ""
			for (j = 1; j <= nt; j++) if (failed[m, T[j]] + aborted[m, T[j]] > 0)
				ft = ft sprintf("%s %d/%d  ", T[j], failed[m, T[j]], aborted[m, T[j]])
			line = sprintf("%-16s", label(m))
			for (j = 1; j <= nt; j++) line = line sprintf(" %10s", cell[m, T[j]])
			line = line sprintf(" %12s %13s", rd, rb)
			for (x = 1; x < nx; x += 2) line = line sprintf(" %13s", ratio(m, X[x], X[x + 1]))
			print line "  " ft
			ratio_d[m] = rd; ratio_b[m] = rb
		}
		print "(TPS: median over rounds of the two halves added; FAIL = every round failed;"
		print " N! = median of the rounds that worked, some failed; last column, all rounds added: pgbench'"'"'s"
		print " \"number of failed transactions\" / clients aborted by an error; only targets with any are listed)"
		if (anyfail) {
			print ""
			print "failed runs (rounds that failed / rounds):"
			for (i = 1; i <= nm; i++) for (j = 1; j <= nt; j++) if (nfail[M[i], T[j]])
				printf "  %-16s %-10s %d/%d\n", label(M[i]), T[j], nfail[M[i], T[j]], rounds
		}
		print ""
		print "targets (ratio of the medians; in brackets, the ratio within each round: median, lowest..highest):"
		for (i = 1; i <= nm; i++) {
			m = M[i]
			if (cell[m, "pgbouncer"] ~ /^[0-9]+$/) {
				if (ratio_b[m] != "-") printf "  %-16s pgflip/pgbouncer %5s  (target >= 1.15)  %-6s  [%s]\n", label(m), ratio_b[m], (ratio_b[m] + 0 >= 1.15 ? "met" : "MISSED"), per_round(m, "pgflip", "pgbouncer")
				else printf "  %-16s pgflip/pgbouncer     -  (target >= 1.15)  MISSED (pgflip failed)\n", label(m)
			} else if (cell[m, "pgbouncer"] != "-")
				printf "  %-16s pgflip/pgbouncer     -  (PgBouncer failed this mode: no target)\n", label(m)
			if (m ~ /^select/ && cell[m, "direct"] != "-" && cell[m, "pgflip"] != "-") {
				if (ratio_d[m] != "-") printf "  %-16s pgflip/direct    %5s  (target >= 0.85)  %-6s  [%s]\n", label(m), ratio_d[m], (ratio_d[m] + 0 >= 0.85 ? "met" : "MISSED"), per_round(m, "pgflip", "direct")
				else printf "  %-16s pgflip/direct        -  (target >= 0.85)  MISSED (pgflip or direct failed)\n", label(m)
			}
		}
		# with base or always: their ratios, and pgflip/direct where it has
		# no target, so that every mode gets every ratio per round
		if (nx) {
			print ""
			print "ratios without a target (ratio of the medians; in brackets, within each round: median, lowest..highest):"
			for (i = 1; i <= nm; i++) {
				m = M[i]
				for (x = 1; x < nx; x += 2)
					printf "  %-16s %-16s %5s  [%s]\n", label(m), X[x] "/" X[x + 1], ratio(m, X[x], X[x + 1]), per_round(m, X[x], X[x + 1])
				if (m !~ /^select/ && cell[m, "direct"] != "-" && cell[m, "pgflip"] != "-")
					printf "  %-16s %-16s %5s  [%s]\n", label(m), "pgflip/direct", ratio_d[m], per_round(m, "pgflip", "direct")
			}
		}
	}' "$RES/runs.tsv"
	echo
	echo "proxy CPU time per transaction (user + system, median over rounds; lower is better):"
	awk -F '\t' -v modes="$BENCH_MODES" -v hz="$(getconf CLK_TCK)" -v cols="$CPU_COLS" -v extra="$SUM_EXTRA" "$AWK_MEDIAN"'
	function ratio(m, a, b) {
		return (us_med[m, a] != "" && us_med[m, b] != "" && us_med[m, b] > 0) ? sprintf("%.2f", us_med[m, a] / us_med[m, b]) : "-"
	}
	NR > 1 && $5 > 0 { us[$2, $3] = us[$2, $3] " " ($4 / hz * 1e6 / $5) }
	END {
		nm = split(modes, M, " ")
		nt = split(cols, T, " ")
		nx = split(extra, X, " ")
		line = sprintf("  %-16s", "mode")
		for (j = 1; j <= nt; j++) line = line sprintf(" %10s", T[j])
		line = line sprintf(" %16s", "pgflip/pgbouncer")
		for (x = 1; x < nx; x += 2) line = line sprintf(" %13s", X[x] "/" X[x + 1])
		print line
		for (i = 1; i <= nm; i++) {
			line = sprintf("  %-16s", M[i])
			for (j = 1; j <= nt; j++) {
				v = (M[i], T[j]) in us ? median(us[M[i], T[j]]) : ""
				us_med[M[i], T[j]] = v
				line = line sprintf(" %10s", v == "" ? "-" : sprintf("%.1f us", v))
			}
			line = line sprintf(" %16s", ratio(M[i], "pgflip", "pgbouncer"))
			for (x = 1; x < nx; x += 2) line = line sprintf(" %13s", ratio(M[i], X[x], X[x + 1]))
			print line
		}
	}' "$RES/cpu.tsv"
	mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
	if [ -n "$flip_idle" ]; then
		set -- $flip_idle
		delta=$(awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1024 }')
		verdict=$(awk -v d="$delta" 'BEGIN { print (d <= 32 ? "met" : "MISSED") }')
		[ "$3" = "$BENCH_IDLE_CLIENTS" ] || verdict="MISSED (only $3 of $BENCH_IDLE_CLIENTS clients logged in)"
		echo "  $BENCH_IDLE_CLIENTS idle clients: pgflip RSS +$delta MB  (target <= 32 MB)  $verdict"
	fi
	echo
	echo "memory (pgflip pid $(flip_pid pgflip), started $(flip_starts pgflip) time(s)):"
	[ -n "$hwm_pgflip" ] && echo "  peak RSS (VmHWM) after the pgbench rounds: $(mb "$hwm_pgflip") MB"
	if [ -n "$flip_idle" ]; then
		set -- $flip_idle
		echo "  $BENCH_IDLE_CLIENTS idle clients to pgflip ($3 reached ReadyForQuery): VmRSS $(mb "$1") MB before," \
			"$(mb "$2") MB with them, delta $(awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1024 }') MB" \
			"($(awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", n ? (b - a) / n : 0 }') kB per client)"
	fi
	[ -n "$hwm_end_pgflip" ] && echo "  peak RSS (VmHWM) at the end: $(mb "$hwm_end_pgflip") MB"
	for t in $FLIP_TARGETS; do
		[ "$t" = pgflip ] && continue
		eval "_a=\$hwm_$t"
		echo "  $t (pid $(flip_pid "$t"), started $(flip_starts "$t") time(s)): peak RSS (VmHWM) after the pgbench rounds:" \
			"$([ -n "$_a" ] && echo "$(mb "$_a") MB" || echo "- (not running)")"
	done
	if [ -n "$pb_idle" ]; then
		set -- $pb_idle
		echo "  reference: PgBouncer, $3 idle clients: VmRSS $(mb "$1") MB before, $(mb "$2") MB with them," \
			"delta $(awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1024 }') MB"
	fi
	if [ -s "$RES/events.txt" ]; then
		echo
		echo "events:"
		sed 's/^/  /' "$RES/events.txt"
	fi
	echo
	echo "raw results: $RES (runs.tsv, raw/*.txt pgbench outputs, pgflip.log, pgbouncer.log, idle-*.txt)"
}
summary | tee "$RES/summary.txt"

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
# What this script shares with bench/tls.sh (settings, the cluster, the
# targets, the pgbench runs and rounds, the cleanup) is in bench/lib.sh.
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

. bench/lib.sh

BENCH_MODES=${BENCH_MODES:-"select-simple select-extended select-prepared tpcb select-connect"}
BENCH_PGFLIP_BASE=${BENCH_PGFLIP_BASE:-}
BENCH_ALWAYS=${BENCH_ALWAYS:-0}
if [ -z "${BENCH_TARGETS:-}" ]; then
	BENCH_TARGETS="direct pgflip pgbouncer"
	[ -n "$BENCH_PGFLIP_BASE" ] && BENCH_TARGETS="$BENCH_TARGETS base"
	[ "$BENCH_ALWAYS" = 1 ] && BENCH_TARGETS="$BENCH_TARGETS always"
fi
BENCH_IDLE_CLIENTS=${BENCH_IDLE_CLIENTS:-1000}

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
has_target pgbouncer && { [ -x "$PGBOUNCER" ] || die "no PgBouncer at $PGBOUNCER (or leave it out of BENCH_TARGETS)"; }
if has_target base; then
	[ -n "$BENCH_PGFLIP_BASE" ] || die "target base needs BENCH_PGFLIP_BASE (a pgflip binary)"
	[ -x "$BENCH_PGFLIP_BASE" ] || die "no pgflip binary at BENCH_PGFLIP_BASE=$BENCH_PGFLIP_BASE"
fi

# 1,000 idle clients need 1,000+ descriptors in pgflip (which inherits this).
ulimit -n 8192 2>/dev/null || note "ulimit -n 8192 refused; open files limit is $(ulimit -n)"

bench_results

# servers: the pools of the pgflip-like targets + PgBouncer's pool + direct
# clients, with room for backends of -C runs that are still exiting
max_conn=$(($(echo $FLIP_TARGETS | wc -w) * BENCH_POOL + BENCH_POOL + 2 * BENCH_CLIENTS + 50))
[ "$max_conn" -ge 200 ] || max_conn=200

bench_pg_setup "$max_conn"
direct_target direct ""

# ----------------------------------------------------- pgflip, base, always ----

# pgflip-like targets: pgflip (PGFLIP), base (BENCH_PGFLIP_BASE, the same
# config) and always (PGFLIP's private copy again, with
# server_check_search_path = always; never given to base, which may not
# know the key). Their files: $RES/pgflip*, see flip_file in bench/lib.sh.
flip_prepare pgflip "$PGFLIP" ""
flip_id=$(binary_id "$PGFLIP" "$(flip_bin pgflip)")
git_id=$(checkout_id "$TOP")
echo "pgflip: $flip_id, checkout $git_id"
if has_target base; then
	flip_prepare base "$BENCH_PGFLIP_BASE" ""
	base_id=$(binary_id "$BENCH_PGFLIP_BASE" "$(flip_bin base)")
	base_id="$base_id, checkout $(checkout_id "$(dirname "$BENCH_PGFLIP_BASE")")"
	echo "base: $base_id"
fi
if has_target always; then
	flip_prepare always "$(flip_bin pgflip)" "" "server_check_search_path = always"
	echo "always: the pgflip binary above, with server_check_search_path = always"
fi

for t in $FLIP_TARGETS; do
	note "starting $t on 127.0.0.1:$(tget port "$t") ($BENCH_POOL_MODE, pool $BENCH_POOL)"
	flip_start "$t" || die "$t did not start"
	# the split must really reach both version schemas
	r1=$(PGAPPNAME=v1-bench psql -X -At -h 127.0.0.1 -p "$(tget port "$t")" -U app -d bench -c "SHOW search_path" 2>&1)
	r2=$(PGAPPNAME=v2-bench psql -X -At -h 127.0.0.1 -p "$(tget port "$t")" -U app -d bench -c "SHOW search_path" 2>&1)
	echo "routing check through $t: v1-bench -> $r1, v2-bench -> $r2"
	[ "$r1" = v1 ] && [ "$r2" = v2 ] || note "WARNING: routing through $t is not as expected (want v1 and v2)"
done

# -------------------------------------------------------------- PgBouncer ----

if has_target pgbouncer; then
	bouncer_start pgbouncer "" || die "PgBouncer did not start"
fi

# ---------------------------------------------------------------- pgbench ----

bench_tsv_init
run_warmup $BENCH_TARGETS
mode_targets() { echo $BENCH_TARGETS; }
run_rounds

# flip_hwm PREFIX: sets PREFIX_NAME to the peak RSS (VmHWM, kB) of each
# pgflip-like target NAME, empty if it is not running
flip_hwm() {
	for _t in $FLIP_TARGETS; do
		_k=""
		alive "$(tget pid "$_t")" && _k=$(status_kb "$(tget pid "$_t")" VmHWM)
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
	: >"$RES/idle-$1.txt" # before the wait below reads it
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
		idle_rss pgflip "$(tget pid pgflip)" "$(tget port pgflip)" && flip_idle="$IDLE_BEFORE $IDLE_WITH ${IDLE_OK:-0}"
	fi
	if has_target pgbouncer; then
		note "idle clients: $BENCH_IDLE_CLIENTS to PgBouncer (reference)"
		idle_rss pgbouncer "$(tget pid pgbouncer)" "$(tget port pgbouncer)" && pb_idle="$IDLE_BEFORE $IDLE_WITH ${IDLE_OK:-0}"
	fi
fi
flip_hwm hwm_end

# ---------------------------------------------------------------- summary ----

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
	echo "$("$PGBENCH" --version 2>/dev/null); PgBouncer $(pgbouncer_version)"
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
	echo "memory (pgflip pid $(tget pid pgflip), started $(tget starts pgflip) time(s)):"
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
		echo "  $t (pid $(tget pid "$t"), started $(tget starts "$t") time(s)): peak RSS (VmHWM) after the pgbench rounds:" \
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

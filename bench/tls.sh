#!/bin/sh
# bench/tls.sh: what client TLS costs in throughput, for PostgreSQL direct,
# PgBouncer and pgflip, each over TLS and in plaintext; what a TLS
# handshake costs the two proxies; and what SCRAM-SHA-256 client
# authentication costs them per connection. bench/README.md ("bench/tls.sh")
# tells how to read the output.
#
#   sh bench/tls.sh                                   defaults below
#   BENCH_SECONDS=5 BENCH_ROUNDS=2 sh bench/tls.sh    a quick run
#   make bench-tls
#
# One throwaway PostgreSQL (bench/lib.sh, as bench/proxy.sh) with ssl = on,
# and eight targets, the TLS ones with the same server certificate and key
# (tests/lib/certs.sh makes them at run time):
#   direct-tls, direct          PostgreSQL itself
#   pgbouncer-tls, pgbouncer    PgBouncer, with client_tls_sslmode = require and
#                               the certificate, or without TLS
#   pgflip-tls, pgflip          pgflip, the same keys as PgBouncer, or without TLS
#   pgbouncer-scram, pgflip-scram   without TLS, clients authenticated with
#                               auth_type = scram-sha-256 from one shared
#                               auth_file that holds app's SCRAM verifier
#                               (PostgreSQL's own, from pg_authid)
# The other proxy targets authenticate clients with trust (as bench/proxy.sh).
# The -tls targets' clients connect with sslmode=require, the others with
# sslmode=disable (so that no SSLRequest is tried first). The proxies reach
# PostgreSQL without TLS (over its Unix socket by default): what is measured
# is the client side.
#
# Modes: pgbench -S -M simple (select-only, simple protocol, persistent
# connections: the cost of TLS on every message) on the six targets without
# -scram, and -S -C (a new connection per transaction: the cost of the
# handshake, and of SCRAM) on the six proxy targets; direct -C would measure
# PostgreSQL's fork per connection. The -scram targets run -S -C only, since
# a login is all that SCRAM adds.
# Each run is two pgbench processes with half the clients each, as in
# bench/proxy.sh; the targets take turns, the order rotated every round.
#
# A target that does not speak TLS does not fail the benchmark: before the
# rounds, a psql with the target's sslmode=require connects to each -tls
# target; one that refuses (a server that answers SSLRequest with 'N', as
# pgflip builds before client TLS did) or did not start (such builds do not
# know the client_tls_* keys) is left out of the rounds, and its rows say
# why: "pgflip: no TLS (SSLRequest refused)". The same holds for a -scram
# target that does not ask for SCRAM-SHA-256, or lets a wrong password in
# ("pgflip: no SCRAM (...)").
#
# Environment (defaults in brackets); bench/proxy.sh's BENCH_SCALE,
# BENCH_CLIENTS, BENCH_JOBS, BENCH_POOL, BENCH_POOL_MODE, BENCH_WARMUP,
# BENCH_TIMEOUT, BENCH_RESULTS, BENCH_LOG_LEVEL, BENCH_UPSTREAM,
# BENCH_PG_AUTH, PGFLIP, PGBOUNCER and PGBENCH mean the same here.
#   BENCH_SECONDS      length of one run, pgbench -T                    [10]
#   BENCH_ROUNDS       rounds; each mode x target runs once per round   [3]
#   BENCH_TARGETS      among: direct-tls pgbouncer-tls pgflip-tls direct
#                      pgbouncer pgflip pgbouncer-scram pgflip-scram    [all eight]
#   BENCH_CONNECT      1: the -S -C runs (handshake and SCRAM cost); 0: skip
#                      them, and the -scram targets with them           [1]
#   BENCH_CERT_KEY     key of the certificates: ec (P-256) or rsa (2048) [ec]
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)

. bench/lib.sh
. tests/lib/certs.sh

BENCH_TARGETS=${BENCH_TARGETS:-"direct-tls pgbouncer-tls pgflip-tls direct pgbouncer pgflip pgbouncer-scram pgflip-scram"}
BENCH_CONNECT=${BENCH_CONNECT:-1}
BENCH_CERT_KEY=${BENCH_CERT_KEY:-ec}
for t in $BENCH_TARGETS; do
	case $t in direct-tls | pgbouncer-tls | pgflip-tls | direct | pgbouncer | pgflip | pgbouncer-scram | pgflip-scram) ;;
	*) die "unknown target '$t' in BENCH_TARGETS" ;; esac
done
case $BENCH_CONNECT in 0 | 1) ;; *) die "BENCH_CONNECT must be 0 or 1" ;; esac
if [ "$BENCH_CONNECT" = 0 ]; then
	# the -scram targets run -S -C only
	_kept=""
	for t in $BENCH_TARGETS; do case $t in *-scram) note "BENCH_CONNECT=0: leaving out $t" ;; *) _kept="$_kept $t" ;; esac; done
	BENCH_TARGETS=${_kept# }
fi
[ -n "$BENCH_TARGETS" ] || die "no targets left"
case $BENCH_CERT_KEY in ec | rsa) ;; *) die "BENCH_CERT_KEY must be ec or rsa" ;; esac
BENCH_MODES=select-simple
[ "$BENCH_CONNECT" = 1 ] && BENCH_MODES="$BENCH_MODES select-connect"
has_target() { case " $BENCH_TARGETS " in *" $1 "*) return 0 ;; esac; return 1; }
has_target pgbouncer || has_target pgbouncer-tls || has_target pgbouncer-scram &&
	{ [ -x "$PGBOUNCER" ] || die "no PgBouncer at $PGBOUNCER"; }
command -v openssl >/dev/null 2>&1 || die "the openssl command is needed for the certificates"

bench_results
# servers: a pool per proxy target, direct clients, and room for backends
# of -C runs that are still exiting
n_proxies=0
for t in $BENCH_TARGETS; do case $t in direct*) ;; *) n_proxies=$((n_proxies + 1)) ;; esac; done
max_conn=$((n_proxies * BENCH_POOL + 2 * BENCH_CLIENTS + 50))
[ "$max_conn" -ge 200 ] || max_conn=200
bench_pg_setup "$max_conn"

certs=$work/certs
CERT_KEY=$BENCH_CERT_KEY make_certs "$certs" || die "make_certs failed"
pg_ssl_on "$certs" || die "PostgreSQL does not serve TLS"

# The clients' settings. Under sslmode=require, libpq verifies the server's
# chain if a root certificate file exists (~/.postgresql/root.crt by
# default), and sends ~/.postgresql/postgresql.crt if PostgreSQL asks for a
# client certificate (pg_ssl_on sets ssl_ca_file): both point at a file
# that does not exist, so that what runs does not depend on the home
# folder. Without the check, pgbench's side of a -C handshake costs less of
# the CPU the proxy under test needs (a root certificate halved PgBouncer's
# -C TPS over TLS here).
nofile=$certs/none
TLS_ENV="PGSSLMODE=require PGSSLROOTCERT=$nofile PGSSLCERT=$nofile"
PLAIN_ENV="PGSSLMODE=disable"
# the [pgflip] and [pgbouncer] keys of the -tls proxies (pgflip follows
# pgbouncer.ini's names)
TLS_KEYS="client_tls_sslmode = require
client_tls_cert_file = $certs/server.crt
client_tls_key_file = $certs/server.key"

# The -scram targets: one auth_file for both proxies, with app's SCRAM
# verifier as PostgreSQL stores it (scram-sha-256, 4096 iterations). With a
# verifier, neither proxy derives a key per login (PgBouncer would, from a
# plain password: PBKDF2 at every login); each runs the server side of the
# exchange, two HMACs and a hash. The client, libpq, runs PBKDF2 with the
# verifier's 4096 iterations at every connection, which bounds the TPS.
# PgBouncer reads its own [pgbouncer] keys last-wins, so the auth keys below
# override bouncer_start's trust.
SCRAM_ENV="PGSSLMODE=disable PGPASSWORD=app_pw"
SCRAM_KEYS=""
if has_target pgflip-scram || has_target pgbouncer-scram; then
	verifier=$(pg_psql -At -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'") ||
		die "cannot read app's password verifier"
	case $verifier in 'SCRAM-SHA-256$'*) ;; *) die "app's password is not stored as a SCRAM verifier (it starts with '$(printf '%.3s' "$verifier")')" ;; esac
	mkdir -p "$work/scram" || die "cannot create $work/scram"
	scram_file=$work/scram/userlist.txt
	printf '"app" "%s"\n' "$verifier" >"$scram_file" || die "cannot write $scram_file"
	chmod 600 "$scram_file"
	# PgBouncer runs as postgres under root (bench/lib.sh), pgflip as the caller
	[ "$(id -u)" = 0 ] && { chown -R postgres "$work/scram"; chmod 700 "$work/scram"; }
	SCRAM_KEYS="auth_type = scram-sha-256
auth_file = $scram_file"
fi

has_target direct-tls && direct_target direct-tls "$TLS_ENV"
has_target direct && direct_target direct "$PLAIN_ENV"

# both pgflip targets run one private copy of PGFLIP (see flip_prepare)
cp "$PGFLIP" "$work/pgflip.bin" || die "cannot copy $PGFLIP"
flip_id=$(binary_id "$PGFLIP" "$work/pgflip.bin")
git_id=$(checkout_id "$TOP")
echo "pgflip: $flip_id, checkout $git_id"
for t in pgflip pgflip-tls pgflip-scram; do
	has_target "$t" || continue
	case $t in *-tls) flip_prepare "$t" "$work/pgflip.bin" "$TLS_ENV" "$TLS_KEYS" ;;
	*-scram) flip_prepare "$t" "$work/pgflip.bin" "$SCRAM_ENV" "$SCRAM_KEYS" ;;
	*) flip_prepare "$t" "$work/pgflip.bin" "$PLAIN_ENV" ;; esac
	note "starting $t on 127.0.0.1:$(tget port "$t") ($BENCH_POOL_MODE, pool $BENCH_POOL)"
	if ! flip_start "$t"; then
		# a build without client TLS: "unknown key 'client_tls_sslmode' in
		# [pgflip]", exit status 2
		why=$(grep -v '^$' "$(flip_file "$t").stderr" 2>/dev/null | tail -n 1 | sed 's|^.*/||')
		[ "$t" = pgflip ] && die "$t did not start: $why"
		tset notls "$t" "${why:-no message}"
	fi
done
has_target pgbouncer && { bouncer_start pgbouncer "$PLAIN_ENV" || die "PgBouncer did not start"; }
has_target pgbouncer-tls && { bouncer_start pgbouncer-tls "$TLS_ENV" "$TLS_KEYS" || die "PgBouncer with TLS did not start"; }
has_target pgbouncer-scram && { bouncer_start pgbouncer-scram "$SCRAM_ENV" "$SCRAM_KEYS" || die "PgBouncer with SCRAM did not start"; }

# sasl_offer PORT: what a raw StartupMessage for app/bench gets first:
# "SASL MECH,MECH..." (AuthenticationSASL), "auth CODE" (another
# Authentication request), "E SQLSTATE MESSAGE", or what went wrong
sasl_offer() {
	python3 - "$1" <<'PY' 2>&1
import socket, struct, sys
def recv_n(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed")
        b += c
    return b
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    body = struct.pack("!I", 196608) + b"user\0app\0database\0bench\0application_name\0scram-check\0\0"
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    t, n = struct.unpack("!cI", recv_n(s, 5))
    msg = recv_n(s, n - 4)
    if t == b"R":
        code = struct.unpack("!I", msg[:4])[0]
        if code == 10:
            print("SASL " + ",".join(m.decode() for m in msg[4:].split(b"\0") if m))
        else:
            print("auth %d" % code)
    elif t == b"E":
        f = dict((p[:1].decode(), p[1:].decode(errors="replace")) for p in msg.split(b"\0") if p)
        print("E %s %s" % (f.get("C", "?"), f.get("M", "?")))
    else:
        print("message %r" % t)
except Exception as e:
    print("error: %s" % e)
PY
}

# conn_check NAME: how a client of NAME, with NAME's env, is connected
# (psql's \conninfo); sets CONN to "TLSv1.3, TLS_AES_256_GCM_SHA384",
# "plaintext" or what went wrong. A -tls target without TLS gets its notls
# field, "KIND: no TLS (WHY)", which its rows of the summary print; CONN
# adds the details. A -scram target must offer SCRAM-SHA-256 to a raw
# StartupMessage, log psql in with the password, and refuse a wrong one;
# else its notls field says "KIND: no SCRAM (WHY)".
conn_check() {
	_cout=$(env $(tget env "$1") psql -X -At -h 127.0.0.1 -p "$(tget port "$1")" -U app -d bench -c '\conninfo' 2>&1)
	_crc=$?
	_tls=$(echo "$_cout" | sed -n 's/^SSL connection (protocol: \([^,]*\), cipher: \([^,]*\),.*/\1, \2/p')
	_first=$(echo "$_cout" | grep -v '^$' | head -n 1)
	case $1 in
	*-tls)
		if [ -n "$_tls" ]; then CONN=$_tls; return; fi
		_start=$(tget notls "$1") # why it did not start, if it did not
		_why="no TLS login: $_first" _more=""
		if [ -n "$_start" ]; then
			_why="did not start" _more="; $1 did not start: $_start"
			if [ "$1" = pgflip-tls ] && has_target pgflip; then
				# then what a client of the pgflip that did start gets
				case $(PGSSLMODE=require psql -X -At -h 127.0.0.1 -p "$(tget port pgflip)" -U app -d bench -c 'SELECT 1' 2>&1) in
				*"does not support SSL"*) _why="SSLRequest refused" _more="$_more; the plaintext pgflip answers SSLRequest with N" ;;
				esac
			fi
		else
			case $_cout in *"does not support SSL"*) _why="SSLRequest refused" ;; esac
		fi
		tset notls "$1" "$(tget kind "$1"): no TLS ($_why)"
		CONN="$(tget notls "$1")$_more" ;;
	*-scram)
		_why=""
		if [ -n "$(tget notls "$1")" ]; then
			_why="did not start: $(tget notls "$1")"
		else
			_offer=$(sasl_offer "$(tget port "$1")")
			_bad=$(PGSSLMODE=disable PGPASSWORD=wrong-pw psql -X -At -h 127.0.0.1 -p "$(tget port "$1")" -U app -d bench -c 'SELECT 1' 2>&1)
			_badrc=$?
			case $_offer in
			"SASL "*SCRAM-SHA-256*) ;;
			*) _why="asks for: $_offer" ;;
			esac
			if [ -n "$_why" ]; then :
			elif [ "$_crc" != 0 ]; then _why="login failed: $_first"
			elif [ -n "$_tls" ]; then _why="TLS ($_tls), not plaintext"
			elif [ "$_badrc" = 0 ]; then _why="a wrong password logged in"
			fi
		fi
		if [ -n "$_why" ]; then
			tset notls "$1" "$(tget kind "$1"): no SCRAM ($_why)"
			CONN=$(tget notls "$1")
		else
			CONN="plaintext, $_offer offered; the password logs in, a wrong one gets: $(echo "$_bad" | grep -v '^$' | head -n 1 | sed 's/^.*FATAL: *//')"
		fi ;;
	*)
		if [ "$_crc" != 0 ]; then CONN="login failed: $_first"
		elif [ -n "$_tls" ]; then CONN="TLS ($_tls), not plaintext"
		else CONN=plaintext; fi ;;
	esac
}

# ACTIVE: the targets that run the rounds (a -tls target without TLS does
# not); connections.tsv: NAME, its notls field, CONN
ACTIVE=""
: >"$RES/connections.tsv"
for t in $BENCH_TARGETS; do
	conn_check "$t"
	printf '%s\t%s\t%s\n' "$t" "$(tget notls "$t")" "$CONN" >>"$RES/connections.tsv"
	echo "connection check, $t: $CONN"
	[ -n "$(tget notls "$t")" ] || ACTIVE="$ACTIVE $t"
done

mode_targets() {
	case $1 in
	select-simple) for _mt in $ACTIVE; do case $_mt in *-scram) ;; *) printf '%s ' "$_mt" ;; esac; done ;;
	select-connect) for _mt in $ACTIVE; do [ "$(tget kind "$_mt")" = direct ] || printf '%s ' "$_mt"; done ;;
	esac
}

bench_tsv_init
run_warmup $ACTIVE
run_rounds

# ---------------------------------------------------------------- summary ----

summary() {
	echo
	echo "pgflip client TLS benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "scale $BENCH_SCALE, $BENCH_CLIENTS clients (2 x $half2..$half1, v1-bench + v2-bench), -j $BENCH_JOBS," \
		"$BENCH_SECONDS s x $BENCH_ROUNDS rounds, pool $BENCH_POOL, pool_mode $BENCH_POOL_MODE," \
		"proxies reach PostgreSQL over $BENCH_UPSTREAM without TLS"
	case $BENCH_CERT_KEY in ec) _key="EC P-256" ;; *) _key="RSA 2048" ;; esac
	echo "certificates: $_key keys (BENCH_CERT_KEY=$BENCH_CERT_KEY, tests/lib/certs.sh); TLS clients: sslmode=require"
	if [ -n "$SCRAM_KEYS" ]; then
		_it=${verifier#*\$}
		echo "client authentication: trust; -scram targets: auth_type = scram-sha-256, auth_file with app's SCRAM verifier (${_it%%:*} iterations), no TLS"
	else
		echo "client authentication: trust"
	fi
	echo "pgflip: $flip_id, checkout ${git_id:-?}"
	echo "$("$PGBENCH" --version 2>/dev/null); PgBouncer $(pgbouncer_version); $(openssl version)"
	echo
	printf '%s\n' "connections (psql's \\conninfo with each target's sslmode, and the -scram targets' checks, before the rounds):"
	awk -F '\t' '{ printf "  %-14s %s\n", $1, $3 }' "$RES/connections.tsv"
	awk -F '\t' -v rounds="$BENCH_ROUNDS" -v targets="$BENCH_TARGETS" -v hz="$(getconf CLK_TCK)" \
		-v connect="$BENCH_CONNECT" "$AWK_MEDIAN"'
	function num(x) { return x ~ /^[0-9.]+$/ }
	# the TPS of target t in round r of mode m: a number, FAIL, or "" (not run)
	function run(r, m, t,   k) {
		k = r SUBSEP m SUBSEP t
		return (k in seen) ? ((k in bad) ? "FAIL" : tps[k]) : ""
	}
	# median over the rounds that worked; "!" when some failed
	function med(m, t,   r, x, list, ok, fails) {
		list = ""; ok = 0; fails = 0
		# (sprintf: a number made a string keeps only the 6 digits of CONVFMT)
		for (r = 1; r <= rounds; r++) { x = run(r, m, t); if (num(x)) { list = list " " sprintf("%.2f", x); ok++ } else if (x != "") fails++ }
		return ok ? sprintf("%.0f%s", median(list), fails ? "!" : "") : (fails ? "FAIL" : "-")
	}
	function cpu(m, t) { return ((m, t) in us) ? median(us[m, t]) : "" }
	function us_str(x) { return x == "" ? "-" : sprintf("%.1f us", x) }
	# a/b of round r, of the medians, of the rounds: "" when a side is missing
	function rr(r, m, a, b,   x, y) { x = run(r, m, a); y = run(r, m, b); return (num(x) && num(y) && y > 0) ? x / y : "" }
	# a/b within each round where both worked: "median, lowest..highest"
	function per_round(m, a, b,   r, x, list, n, lo, hi) {
		list = ""; n = 0
		for (r = 1; r <= rounds; r++) {
			x = rr(r, m, a, b)
			if (x == "") continue
			list = list " " x; n++
			if (n == 1 || x < lo) lo = x
			if (n == 1 || x > hi) hi = x
		}
		return n ? sprintf("%.2f, %.2f..%.2f", median(list), lo, hi) : "-"
	}
	# a/b of the medians, when neither had a failed round
	function of_medians(m, a, b,   ma, mb) {
		ma = med(m, a); mb = med(m, b)
		return (ma ~ /^[0-9]+$/ && mb ~ /^[0-9]+$/ && mb > 0) ? sprintf("%.2f", ma / mb) : "-"
	}
	# one line of ratios a/b: each round, the median of those, and the
	# ratio of the medians; or why there is none
	function ratio_line(label, m, a, b,   r, x, list, line) {
		if (notls[a] != "" || notls[b] != "") { printf "  %-26s -  (%s)\n", label, notls[a] != "" ? notls[a] : notls[b]; return }
		if (!(a in want) || !(b in want)) return
		line = sprintf("  %-26s", label); list = ""
		for (r = 1; r <= rounds; r++) { x = rr(r, m, a, b); line = line sprintf(" %8s", x == "" ? "-" : sprintf("%.2f", x)); if (x != "") list = list " " x }
		print line sprintf(" %10s %10s", list == "" ? "-" : sprintf("%.2f", median(list)), of_medians(m, a, b))
	}
	# the proxy CPU time per transaction of target t in each round
	function cpu_rounds(m, t,   r, s) {
		s = ""
		for (r = 1; r <= rounds; r++) s = s (s == "" ? "" : " ") (((r, m, t) in usr) ? sprintf("%.1f", usr[r, m, t]) : "-")
		return s
	}
	# what variant v (target p SFX) adds to the CPU time per transaction
	# (or connection) of proxy p: "LABEL_V X us [rounds], LABEL_B Y us
	# [rounds] per PER: LABEL_V adds ..."
	function cpu_line(m, p, sfx, lv, lb, per,   a, b, t) {
		t = p sfx
		if (!(p in want) || !(t in want)) return
		if (notls[t] != "") { printf "  %-10s %s; %s %s per %s\n", p, notls[t], lb, us_str(cpu(m, p)), per; return }
		a = cpu(m, t); b = cpu(m, p)
		printf "  %-10s %s %s [%s], %s %s [%s] per %s", p, lv, us_str(a), cpu_rounds(m, t), lb, us_str(b), cpu_rounds(m, p), per
		if (a != "" && b != "" && b > 0) printf ": %s adds %.1f us (x %.2f)", lv, a - b, a / b
		print ""
	}
	# pgflip/PgBouncer of the CPU medians, for the variant SFX
	function cpu_ratio(m, sfx, label,   a, b) {
		if (!(("pgflip" sfx) in want) || !(("pgbouncer" sfx) in want) || notls["pgflip" sfx] != "" || notls["pgbouncer" sfx] != "") return ""
		a = cpu(m, "pgflip" sfx); b = cpu(m, "pgbouncer" sfx)
		return (a != "" && b != "" && b > 0) ? sprintf("  %s %.2f", label, a / b) : ""
	}
	# the table of mode m: TPS of each round, median, proxy CPU per PER
	function table(m, per,   j, t, line, r, x) {
		line = sprintf("  %-16s", "target")
		for (r = 1; r <= rounds; r++) line = line sprintf(" %8s", "round " r)
		print line sprintf(" %8s %10s", "median", "CPU/" per)
		for (j = 1; j <= nt; j++) {
			t = T[j]
			if (m == "select-simple" && t ~ /-scram$/) continue
			if (m == "select-connect" && t ~ /^direct/) continue
			if (notls[t] != "") { printf "  %-16s %s\n", t, notls[t]; continue }
			line = sprintf("  %-16s", t)
			for (r = 1; r <= rounds; r++) { x = run(r, m, t); line = line sprintf(" %8s", x == "" ? "-" : (num(x) ? sprintf("%.0f", x) : x)) }
			print line sprintf(" %8s %10s", med(m, t), t ~ /^direct/ ? "-" : us_str(cpu(m, t)))
		}
		print ""
		line = sprintf("  %-26s", "ratios (TPS)")
		for (r = 1; r <= rounds; r++) line = line sprintf(" %8s", "round " r)
		print line sprintf(" %10s %10s", "median", "of medians")
	}
	FILENAME ~ /connections.tsv$/ { if ($2 != "") notls[$1] = $2; next }
	FNR == 1 { next }
	FILENAME ~ /runs.tsv$/ {
		k = $1 SUBSEP $2 SUBSEP $3
		tps[k] += ($6 == "-" ? 0 : $6); seen[k] = 1
		if ($5 != 0 || $6 == "-") bad[k] = 1
		next
	}
	FILENAME ~ /cpu.tsv$/ && $5 > 0 { x = $4 / hz * 1e6 / $5; us[$2, $3] = us[$2, $3] " " x; usr[$1, $2, $3] = x }
	END {
		nt = split(targets, T, " ")
		for (j = 1; j <= nt; j++) want[T[j]] = 1
		m = "select-simple"
		print ""
		print "-S -M simple: TPS (both halves added) in each round, their median, and the proxy'"'"'s CPU time per"
		print "transaction (user + system, median over rounds):"
		table(m, "tx")
		ratio_line("pgflip/PgBouncer over TLS", m, "pgflip-tls", "pgbouncer-tls")
		ratio_line("pgflip/PgBouncer plaintext", m, "pgflip", "pgbouncer")
		ratio_line("TLS/plaintext direct", m, "direct-tls", "direct")
		ratio_line("TLS/plaintext PgBouncer", m, "pgbouncer-tls", "pgbouncer")
		ratio_line("TLS/plaintext pgflip", m, "pgflip-tls", "pgflip")
		print ""
		print "proxy CPU time per transaction, -S -M simple (median [each round]):"
		cpu_line(m, "pgbouncer", "-tls", "TLS", "plaintext", "transaction")
		cpu_line(m, "pgflip", "-tls", "TLS", "plaintext", "transaction")
		x = cpu_ratio(m, "-tls", "over TLS") cpu_ratio(m, "", "plaintext")
		if (x != "") print "  pgflip/PgBouncer:" x
		if (connect != 1) exit
		m = "select-connect"
		print ""
		print "-S -C (a new connection per transaction: a TLS handshake for the -tls targets, a SCRAM exchange"
		print "for the -scram ones, trust for the others): TPS in each round, their median, and the proxy'"'"'s CPU"
		print "time per connection (user + system, median over rounds):"
		table(m, "conn")
		ratio_line("pgflip/PgBouncer over TLS", m, "pgflip-tls", "pgbouncer-tls")
		ratio_line("pgflip/PgBouncer plaintext", m, "pgflip", "pgbouncer")
		ratio_line("pgflip/PgBouncer SCRAM", m, "pgflip-scram", "pgbouncer-scram")
		ratio_line("TLS/plaintext PgBouncer", m, "pgbouncer-tls", "pgbouncer")
		ratio_line("TLS/plaintext pgflip", m, "pgflip-tls", "pgflip")
		ratio_line("SCRAM/trust PgBouncer", m, "pgbouncer-scram", "pgbouncer")
		ratio_line("SCRAM/trust pgflip", m, "pgflip-scram", "pgflip")
		print ""
		print "proxy CPU time per connection, -S -C (median [each round]):"
		cpu_line(m, "pgbouncer", "-tls", "TLS", "plaintext", "connection")
		cpu_line(m, "pgflip", "-tls", "TLS", "plaintext", "connection")
		cpu_line(m, "pgbouncer", "-scram", "SCRAM", "trust", "connection")
		cpu_line(m, "pgflip", "-scram", "SCRAM", "trust", "connection")
		x = cpu_ratio(m, "-tls", "over TLS") cpu_ratio(m, "", "plaintext") cpu_ratio(m, "-scram", "SCRAM")
		if (x != "") print "  pgflip/PgBouncer:" x
	}
' "$RES/connections.tsv" "$RES/runs.tsv" "$RES/cpu.tsv"
	if [ -s "$RES/events.txt" ]; then
		echo
		echo "events:"
		sed 's/^/  /' "$RES/events.txt"
	fi
	echo
	echo "raw results: $RES (runs.tsv, cpu.tsv, connections.tsv, raw/*.txt pgbench outputs, *.ini, *.log)"
}
summary | tee "$RES/summary.txt"

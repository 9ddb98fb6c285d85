#!/bin/sh
# bench/drivers.sh: the drivers' own test suites, node-postgres
# (packages/pg/test/integration) and postgres.js (tests/index.js), run
# against PostgreSQL directly, through pgflip in session and in transaction
# mode, and through PgBouncer in transaction mode. Prints, per target, how
# many of each suite's tests passed and failed. Not part of `make test`: the
# suites are other projects' code, at whatever commit you give them, and a
# run takes minutes.
#
#   sh bench/drivers.sh NODE_POSTGRES_TREE POSTGRES_JS_TREE
#
# Each TREE is a checkout (or `git archive` extract) of that repository:
# github brianc/node-postgres and github porsager/postgres. Nothing of them
# is built: node-postgres's lib and postgres.js's src are plain JavaScript.
# node-postgres's lib finds its dependencies (pg-protocol, pg-types...) in
# tests/node/node_modules (`make deps`); its test-only dependencies (async,
# bluebird, co, pg-copy-streams, at the versions of its package.json) are
# installed with npm into the scratch folder. The suites are copied there
# too, and two things are changed in the copy of postgres.js's: its harness
# goes on after a failed test (it stops at the first one), and its
# bootstrap's psql/createdb/dropdb reach PostgreSQL directly as postgres
# (small wrappers first on PATH), whatever the target.
#
# How the targets are set up, so that a proxy is asked for what the server
# is asked for (see bench/README.md, "bench/drivers.sh"):
# - PostgreSQL has TLS on (tests/lib/certs.sh) and pg_hba.conf lines like the
#   suites' CI: md5 or SCRAM for their password roles, trust for the rest.
#   The proxies get TLS to clients with the same certificate
#   (client_tls_sslmode = allow) and authenticate clients with the same
#   rules (auth_type = hba, the same host lines) and the server's own
#   secrets (auth_file made from pg_shadow); they log in upstream over the
#   Unix socket, where PostgreSQL trusts them.
# - authentication_timeout and the proxies' client_login_timeout are 10 s:
#   node-postgres's SCRAM file leaves a login half done, and its process
#   exits only when the server closes it.
# - pgflip carries the startup settings the suites send
#   (track_extra_parameters); PgBouncer 1.18 has no such setting and drops
#   `options` (ignore_startup_parameters).
# - Both proxies serve template1 too (a node-postgres test runs psql there),
#   so postgres.js's createdb copies template0.
# - postgres.js runs with --unhandled-rejections=warn: a test that awaits a
#   refused LISTEN inside a Promise executor would otherwise end the whole
#   suite.
#
# Counts: node-postgres runs one process per test file, and a file stops at
# its first failure, so it is counted in files (passed / failed) and in
# tests passed (its ✔ marks). postgres.js is counted in tests: ✅ passed,
# ⛔️ failed or never finished.
#
# Everything runs on 127.0.0.1: a throwaway PostgreSQL (tests/lib/pg.sh), in
# a mktemp folder kept with the logs of every file (DRIVERS_KEEP=1) or
# removed.
#
# Environment (defaults in brackets):
#   DRIVERS_TARGETS   among: direct pgflip-session pgflip-transaction
#                     pgbouncer-transaction                       [all four]
#   DRIVERS_SUITES    among: node-postgres postgres.js             [both]
#   DRIVERS_FILE_TIMEOUT  seconds for one node-postgres file        [60]
#   DRIVERS_SUITE_TIMEOUT seconds for the postgres.js suite         [600]
#   DRIVERS_POOL      default_pool_size of pgflip and PgBouncer     [20]
#   DRIVERS_KEEP      1 = keep the scratch folder                   []
#   PGFLIP            pgflip binary                                 [build/pgflip]
#   PGBOUNCER         PgBouncer binary                              [/usr/sbin/pgbouncer]
set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)

die() { echo "drivers.sh: $*" >&2; exit 2; }
note() { echo "# $*" >&2; }

[ $# -eq 2 ] || die "usage: sh bench/drivers.sh NODE_POSTGRES_TREE POSTGRES_JS_TREE"
NP_TREE=$(cd "$1" && pwd) || die "no folder $1"
PJ_TREE=$(cd "$2" && pwd) || die "no folder $2"
[ -f "$NP_TREE/packages/pg/lib/index.js" ] || die "$NP_TREE is not a node-postgres tree (no packages/pg/lib)"
[ -f "$PJ_TREE/tests/index.js" ] && [ -f "$PJ_TREE/src/index.js" ] || die "$PJ_TREE is not a postgres.js tree"

DRIVERS_TARGETS=${DRIVERS_TARGETS:-"direct pgflip-session pgflip-transaction pgbouncer-transaction"}
DRIVERS_SUITES=${DRIVERS_SUITES:-"node-postgres postgres.js"}
DRIVERS_FILE_TIMEOUT=${DRIVERS_FILE_TIMEOUT:-60}
DRIVERS_SUITE_TIMEOUT=${DRIVERS_SUITE_TIMEOUT:-600}
DRIVERS_POOL=${DRIVERS_POOL:-20}
PGFLIP=${PGFLIP:-build/pgflip}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
for t in $DRIVERS_TARGETS; do
	case $t in direct | pgflip-session | pgflip-transaction | pgbouncer-transaction) ;;
	*) die "unknown target '$t' in DRIVERS_TARGETS" ;; esac
done
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die "node and npm are needed (make deps)"
[ -d tests/node/node_modules/pg-protocol ] || die "tests/node/node_modules is missing (make deps)"
[ -x "$PGFLIP" ] || die "no pgflip at $PGFLIP (make)"
case " $DRIVERS_TARGETS " in *" pgbouncer"*) [ -x "$PGBOUNCER" ] || die "no PgBouncer at $PGBOUNCER" ;; esac

. tests/lib/pg.sh
. tests/lib/certs.sh
work=$(mktemp -d /tmp/pgflip-drivers.XXXXXX)
chmod 755 "$work"
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	pg_stop "$work/pg"
	if [ -n "${DRIVERS_KEEP:-}" ]; then note "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- PostgreSQL
pg_start "$work/pg" "$(free_port)" || die "PostgreSQL did not start"
# both suites try two-phase commit; a login left half done ends after 10 s
printf 'max_prepared_transactions = 10\nauthentication_timeout = 10s\n' >>"$work/pg/data/postgresql.conf"
pg_stop "$work/pg"
pg_start "$work/pg" "$PG_PORT" || die "PostgreSQL did not restart"
# the suites' roles: trust over TCP, but for the ones that test md5/SCRAM;
# the proxies use the same host lines (hba.conf)
cat >"$work/hba.conf" <<HBA
host all postgres_js_test_md5 127.0.0.1/32 md5
host all postgres_js_test_scram 127.0.0.1/32 scram-sha-256
host all scram_test 127.0.0.1/32 scram-sha-256
host all scram_unicode_test 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
HBA
{ echo "local all all trust"; cat "$work/hba.conf"; } >"$work/pg/data/pg_hba.conf"
pg_psql -c "SELECT pg_reload_conf()" \
	-c "SET password_encryption = 'scram-sha-256'" \
	-c "CREATE ROLE scram_test LOGIN PASSWORD 'test4scram'" \
	-c "CREATE ROLE scram_unicode_test LOGIN PASSWORD U&'IX-\\2168'" \
	-c "CREATE DATABASE ci_db_test" >/dev/null || die "cannot set up the suites' roles"
# postgres.js's bootstrap makes its own roles and database; create them now
# too (as it does: md5, then SCRAM), so that the proxies' auth_file has
# their secrets and the proxies can be started before its first run. It
# makes them again with the same passwords: the secrets stay good.
pg_psql -c "CREATE ROLE postgres_js_test LOGIN" -c "CREATE DATABASE postgres_js_test OWNER postgres_js_test" \
	-c "SET password_encryption = 'md5'" \
	-c "CREATE ROLE postgres_js_test_md5 LOGIN PASSWORD 'postgres_js_test_md5'" \
	-c "SET password_encryption = 'scram-sha-256'" \
	-c "CREATE ROLE postgres_js_test_scram LOGIN PASSWORD 'postgres_js_test_scram'" >/dev/null ||
	die "cannot set up postgres.js's roles"
# the proxies' auth_file: every role and its secret as PostgreSQL stores it
# (md5 or SCRAM verifier). A role without one (a trust line only needs the
# name) gets an md5 secret that no password matches: pgflip refuses an
# empty secret, which PgBouncer takes.
pg_psql -At -c "SELECT format('\"%s\" \"%s\"', replace(usename, '\"', '\"\"'), replace(coalesce(passwd, 'md5' || repeat('0', 32)), '\"', '\"\"')) FROM pg_shadow ORDER BY 1" \
	>"$work/userlist.txt" || die "cannot read pg_shadow"
chmod 600 "$work/userlist.txt"
# TLS: the suites' SSL tests (node-postgres's ssl-tests, gh-issues/2085;
# postgres.js's "Connect using SSL"...) connect with rejectUnauthorized: false
make_certs "$work/certs" && pg_ssl_on "$work/certs" || die "cannot turn TLS on in PostgreSQL"

# psql, createdb and dropdb for postgres.js's bootstrap: straight to
# PostgreSQL as postgres; dropdb forces out the proxies' server connections;
# createdb copies template0, as the proxies may hold a server connection to
# template1 (which would make a copy of it fail)
mkdir -p "$work/bin"
for cmd in psql createdb dropdb; do
	extra=""
	[ "$cmd" = psql ] && extra="-d postgres"
	[ "$cmd" = createdb ] && extra="--template=template0"
	[ "$cmd" = dropdb ] && extra="--force"
	cat >"$work/bin/$cmd" <<SH
#!/bin/sh
exec "$PG_BINDIR/$cmd" -h "$PG_SOCK" -p "$PG_PORT" -U postgres $extra "\$@"
SH
	chmod +x "$work/bin/$cmd"
done

# ---------------------------------------------------------------- the suites
npdir=$work/node-postgres
pjdir=$work/postgres.js
case " $DRIVERS_SUITES " in *" node-postgres "*)
	mkdir -p "$npdir" && cp -R "$NP_TREE/packages/pg/lib" "$NP_TREE/packages/pg/test" "$NP_TREE/packages/pg/package.json" "$npdir/"
	note "npm: node-postgres's test dependencies"
	(cd "$work" && npm install --prefix "$work/npm" --no-save --no-audit --no-fund --loglevel=error \
		async@2.6.4 bluebird@3.7.2 co@4.6.0 pg-copy-streams@0.3.0 >/dev/null) || die "npm install failed"
	;;
esac
case " $DRIVERS_SUITES " in *" postgres.js "*)
	mkdir -p "$pjdir" && cp -R "$PJ_TREE/src" "$PJ_TREE/tests" "$PJ_TREE/package.json" "$pjdir/"
	# the harness skips every test after the first failure, reports only
	# the first failure, and waits for the suite's last handles once done:
	# run and report them all, and exit 2 s after the report
	sed -i -e 's/^    failed$/    false/' -e 's/Object.values(tests).every((x) => {/Object.values(tests).forEach((x) => {/' \
		-e 's/(process.exitCode = 1)$/(process.exitCode = 1); setTimeout(() => process.exit(), 2000).unref()/' \
		"$pjdir/tests/test.js"
	grep -q '^    false$' "$pjdir/tests/test.js" && grep -q 'values(tests).forEach' "$pjdir/tests/test.js" ||
		note "postgres.js harness not patched: counts stop at the first failure"
	;;
esac

# ---------------------------------------------------------------- the proxies
flip_port=$(free_port)
pb_port=$(free_port)
proxy_pid=""
stop_proxy() {
	[ -n "$proxy_pid" ] || return 0
	kill "$proxy_pid" 2>/dev/null
	_i=0; while kill -0 "$proxy_pid" 2>/dev/null && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
	kill -9 "$proxy_pid" 2>/dev/null
	proxy_pid=""
}
wait_port() { # PORT PID NAME
	_i=0
	until psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d ci_db_test -c "SELECT 1" >/dev/null 2>&1; do
		kill -0 "$2" 2>/dev/null && [ $_i -lt 100 ] || die "$3 did not start (logs in $work)"
		sleep 0.1; _i=$((_i + 1))
	done
}
dbs="ci_db_test postgres_js_test postgres template1"
start_pgflip() { # MODE
	{
		printf '[pgflip]\nlisten_addr = 127.0.0.1\nlisten_port = %s\nunix_socket_dir = %s\n' "$flip_port" "$work"
		printf 'admin_socket = %s/pgflip.admin\nlogfile = %s/pgflip-%s.log\nlog_level = info\n' "$work" "$work" "$1"
		printf 'pool_mode = %s\ndefault_pool_size = %s\nmax_client_conn = 1000\n' "$1" "$DRIVERS_POOL"
		printf 'auth_type = hba\nauth_hba_file = %s/hba.conf\nauth_file = %s/userlist.txt\nclient_login_timeout = 10\n' "$work" "$work"
		printf 'client_tls_sslmode = allow\nclient_tls_cert_file = %s/certs/server.crt\nclient_tls_key_file = %s/certs/server.key\n' "$work" "$work"
		printf 'track_extra_parameters = statement_timeout, idle_in_transaction_session_timeout, default_transaction_isolation, some.var\n'
		printf '\n[databases]\n'
		for d in $dbs; do printf '%s = host=%s port=%s dbname=%s\n' "$d" "$PG_SOCK" "$PG_PORT" "$d"; done
		printf '\n[routes]\ndefault = public\n'
	} >"$work/pgflip-$1.ini"
	"$PGFLIP" serve -c "$work/pgflip-$1.ini" >>"$work/pgflip-$1.log" 2>&1 &
	proxy_pid=$!
	PIDS="$PIDS $proxy_pid"
	wait_port "$flip_port" "$proxy_pid" pgflip
}
start_pgbouncer() {
	pbdir=$work/bouncer
	mkdir -p "$pbdir"
	cp "$work/userlist.txt" "$work/hba.conf" "$pbdir/"
	{
		printf '[databases]\n'
		for d in $dbs; do printf '%s = host=%s port=%s dbname=%s\n' "$d" "$PG_SOCK" "$PG_PORT" "$d"; done
		printf '\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %s\nunix_socket_dir =\n' "$pb_port"
		printf 'auth_type = hba\nauth_hba_file = %s/hba.conf\nauth_file = %s/userlist.txt\npool_mode = transaction\n' "$pbdir" "$pbdir"
		printf 'client_login_timeout = 10\n'
		printf 'client_tls_sslmode = allow\nclient_tls_cert_file = %s/certs/server.crt\nclient_tls_key_file = %s/certs/server.key\n' "$work" "$work"
		printf 'default_pool_size = %s\nmax_client_conn = 1000\n' "$DRIVERS_POOL"
		printf 'ignore_startup_parameters = extra_float_digits, options\n'
		printf 'logfile = %s/pgbouncer.log\npidfile = %s/pgbouncer.pid\n' "$pbdir" "$pbdir"
	} >"$pbdir/pgbouncer.ini"
	# PgBouncer refuses to run as root: as root it runs as postgres
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres "$pbdir"
		setpriv --reuid=postgres --regid=postgres --init-groups -- "$PGBOUNCER" "$pbdir/pgbouncer.ini" >"$pbdir/stderr" 2>&1 &
	else
		"$PGBOUNCER" "$pbdir/pgbouncer.ini" >"$pbdir/stderr" 2>&1 &
	fi
	proxy_pid=$!
	PIDS="$PIDS $proxy_pid"
	wait_port "$pb_port" "$proxy_pid" PgBouncer
}

# ---------------------------------------------------------------- runs
# run_node_postgres TARGET PORT: prints "files_passed files_failed tests_passed"
run_node_postgres() {
	log=$work/logs/$1/node-postgres
	mkdir -p "$log"
	fp=0 ff=0 tp=0
	for f in $(cd "$npdir" && find test/integration -name '*-tests.js' | sort); do
		out=$log/$(echo "$f" | tr / _).out
		(cd "$npdir" && PGHOST=127.0.0.1 PGPORT=$2 PGUSER=postgres PGPASSWORD=postgres PGDATABASE=ci_db_test \
			SCRAM_TEST_PGUSER=scram_test SCRAM_TEST_PGPASSWORD=test4scram \
			SCRAM_TEST_PGUSER_UNICODE=scram_unicode_test SCRAM_TEST_PGPASSWORD_UNICODE='IX-Ⅸ' \
			NODE_PATH="$work/npm/node_modules:$TOP/tests/node/node_modules" \
			timeout "$DRIVERS_FILE_TIMEOUT" node "$f" >"$out" 2>&1)
		if [ $? = 0 ]; then fp=$((fp + 1)); else ff=$((ff + 1)); echo "$f" >>"$log/failed-files"; fi
		tp=$((tp + $(grep -o '✔' "$out" | wc -l)))
	done
	echo "$fp $ff $tp"
}

# run_postgres_js TARGET PORT: prints "tests_passed tests_failed"
run_postgres_js() {
	log=$work/logs/$1
	mkdir -p "$log"
	(cd "$pjdir/tests" && PATH="$work/bin:$PATH" PGHOST=127.0.0.1 PGPORT=$2 PGUSER=postgres_js_test \
		PGDATABASE=postgres_js_test timeout "$DRIVERS_SUITE_TIMEOUT" node --unhandled-rejections=warn index.js >"$log/postgres.js.out" 2>&1)
	echo "$(grep -o '✅' "$log/postgres.js.out" | wc -l) $(grep -c '⛔️' "$log/postgres.js.out")"
}

results=$work/results
: >"$results"
for t in $DRIVERS_TARGETS; do
	case $t in
	direct) port=$PG_PORT ;;
	pgflip-session) start_pgflip session; port=$flip_port ;;
	pgflip-transaction) start_pgflip transaction; port=$flip_port ;;
	pgbouncer-transaction) start_pgbouncer; port=$pb_port ;;
	esac
	np="- - -" pj="- -"
	case " $DRIVERS_SUITES " in *" node-postgres "*)
		note "$t: node-postgres"
		np=$(run_node_postgres "$t" "$port") ;;
	esac
	case " $DRIVERS_SUITES " in *" postgres.js "*)
		note "$t: postgres.js"
		pj=$(run_postgres_js "$t" "$port") ;;
	esac
	echo "$t $np $pj" >>"$results"
	stop_proxy
done

echo
printf '%-22s %-44s %s\n' "target" "node-postgres files passed/failed (tests ok)" "postgres.js tests passed/failed"
while read -r t fp ff tp pp pf; do
	printf '%-22s %-44s %s\n' "$t" "$fp / $ff ($tp)" "$pp / $pf"
done <"$results"
[ -n "${DRIVERS_KEEP:-}" ] && echo "logs: $work/logs"
exit 0

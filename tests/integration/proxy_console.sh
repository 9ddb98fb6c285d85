# The psql admin console (admin_db): login through the client auth path
# (SCRAM against auth_file), who may do what (admin_users, stats_users,
# anyone else), every command through psql with the columns of PgBouncer
# 1.18's console (compared with the real pgbouncer when it is installed),
# values that follow real traffic, errors with their SQLSTATEs, the
# extended protocol refused; a migration seen from the console (SHOW
# MIGRATION, SHOW VERSIONS, PROMOTE, ROLLBACK); each command through the JSON admin socket
# (pgflip ctl) too, a change through one seen in the other; Debian's
# prometheus-pgbouncer-exporter scraping the console.
. "$TOP/tests/lib/check.sh"

make_db console
apsql -c "CREATE SCHEMA v2"
port=$(free_port)
cat >"$T_DIR/users.txt" <<'U'
"admin" "admin_pw"
"stats" "stats_pw"
"app" "app_pw"
"other" "other_pw"
U
conf() { # AUTH_TYPE EXTRA
	write_conf "$T_DIR/pgflip.ini" "$port" "auth_type = $1
auth_file = $T_DIR/users.txt
admin_users = admin
stats_users = stats
pool_mode = transaction
default_pool_size = 1
stats_period = 1
log_level = info
$2"
}
conf scram-sha-256 ""
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }

# cpsql USER ARGS...: psql to the console as USER (password USER_pw), unaligned,
# '|' between columns, SQLSTATEs in errors
cpsql() {
	u=$1; shift
	PGPASSWORD=${u}_pw psql -X -q -A -F '|' -v VERBOSITY=verbose -h 127.0.0.1 -p "$port" -U "$u" -d pgflip "$@" 2>&1
}
admin() { cpsql admin -t -c "$1"; }
header() { cpsql admin -c "$1" | head -n 1; }
# col TABLE_OUTPUT_WITH_HEADER NAME: the column NAME of the first row
col() {
	printf '%s\n' "$1" | awk -F'|' -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
		c && NR == 2 { print $c; exit }'
}
app() { PGPASSWORD=app_pw psql -X -q -At -h 127.0.0.1 -p "$port" -U app -d console "$@" 2>&1; }

# ---- login and access
expect_eq "admin_users log in to admin_db with SCRAM and read SHOW VERSION" "$(admin "SHOW VERSION")" "pgflip 0.1.0"
expect_match "a wrong password is refused as for any client (28P01)" \
	"$(PGPASSWORD=bad psql -X -At -h 127.0.0.1 -p "$port" -U admin -d pgflip -c "SHOW VERSION" 2>&1)" \
	"*password authentication failed*"
expect_match "a user in neither list is refused at login" "$(cpsql other -c "SHOW VERSION")" \
	"*FATAL:  not allowed: user \"other\" is in neither admin_users nor stats_users*"
expect_match "an application user is refused too" "$(cpsql app -c "SHOW VERSION")" "*FATAL:  not allowed*"
expect_eq "stats_users may SHOW" "$(cpsql stats -t -c "SHOW VERSION")" "pgflip 0.1.0"
expect_match "stats_users may not PAUSE (42501)" "$(cpsql stats -c "PAUSE")" "*ERROR:  42501: permission denied: pause*"
expect_match "stats_users may not ROUTE" "$(cpsql stats -c "ROUTE DEFAULT v2")" "*42501: permission denied: route*"
check "the refusal is logged with the console user" grep -q "permission denied for console user stats" "$T_DIR/pgflip.log"

# ---- parsing
expect_eq "case-insensitive, trailing semicolon and spaces" "$(admin "  show   Version ;  ")" "pgflip 0.1.0"
expect_match "an unknown command: 42601" "$(cpsql admin -c "SELECT 1")" "*ERROR:  42601: unknown command \"select\"*"
expect_match "an unknown SHOW: 42601" "$(cpsql admin -c "SHOW FOO")" "*42601: unknown SHOW \"foo\"*"
expect_match "two commands in one query: 42601" "$(cpsql admin -c "SHOW POOLS; SHOW CLIENTS")" "*42601: one command per query*"
expect_match "an empty query is answered as PostgreSQL does" "$(cpsql admin -c ";")" ""
expect_match "SHOW HELP: a NOTICE listing the commands" "$(cpsql admin -c "SHOW HELP")" "*NOTICE:  00000: Console usage*KILL_CLIENT*"

# ---- columns: PgBouncer 1.18's names and order
want_pools="database|user|cl_active|cl_waiting|cl_active_cancel_req|cl_waiting_cancel_req|sv_active|sv_active_cancel|sv_being_canceled|sv_idle|sv_used|sv_tested|sv_login|maxwait|maxwait_us|pool_mode"
want_socket="type|user|database|state|addr|port|local_addr|local_port|connect_time|request_time|wait|wait_us|close_needed|ptr|link|remote_pid|tls|application_name"
want_dbs="name|host|port|database|force_user|pool_size|min_pool_size|reserve_pool|pool_mode|max_connections|current_connections|paused|disabled"
want_stats="database|total_xact_count|total_query_count|total_received|total_sent|total_xact_time|total_query_time|total_wait_time|avg_xact_count|avg_query_count|avg_recv|avg_sent|avg_xact_time|avg_query_time|avg_wait_time"
want_totals="database|xact_count|query_count|bytes_received|bytes_sent|xact_time|query_time|wait_time"
expect_eq "SHOW POOLS columns" "$(header "SHOW POOLS")" "$want_pools"
expect_match "SHOW CLIENTS columns (pgflip's after them)" "$(header "SHOW CLIENTS")" "$want_socket|id|route|pgflip_state|transactions"
expect_match "SHOW SERVERS columns" "$(header "SHOW SERVERS")" "$want_socket|id|search_path|pgflip_state"
expect_eq "SHOW DATABASES columns" "$(header "SHOW DATABASES")" "$want_dbs"
expect_eq "SHOW STATS columns (total_requests, the pre-1.8 name, last)" "$(header "SHOW STATS")" "$want_stats|total_requests"
expect_eq "SHOW STATS_TOTALS columns" "$(header "SHOW STATS_TOTALS")" "$want_totals"
expect_eq "SHOW STATS_AVERAGES columns" "$(header "SHOW STATS_AVERAGES")" "$want_totals"
expect_eq "SHOW LISTS rows" "$(admin "SHOW LISTS" | cut -d'|' -f1 | tr '\n' ' ')" \
	"databases users pools free_clients used_clients login_clients free_servers used_servers dns_names dns_zones dns_queries dns_pending "
expect_eq "SHOW CONFIG columns" "$(header "SHOW CONFIG")" "key|value|default|changeable"
expect_eq "SHOW VERSION column" "$(header "SHOW VERSION")" "version"

# The same lists from the real PgBouncer of this machine, when it is there.
pgb_dir=""
if command -v pgbouncer >/dev/null 2>&1; then
	pgb_dir=$(mktemp -d /tmp/pgflip-pgb.XXXXXX)
	pgb_port=$(free_port)
	cat >"$pgb_dir/pgb.ini" <<EOF
[databases]
x = host=127.0.0.1 port=$PG_PORT dbname=console
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = trust
auth_file = $pgb_dir/users.txt
admin_users = admin
logfile = $pgb_dir/pgb.log
pidfile = $pgb_dir/pgb.pid
EOF
	echo '"admin" ""' >"$pgb_dir/users.txt"
	if [ "$(id -u)" = 0 ]; then chown -R postgres "$pgb_dir"; runuser -u postgres -- pgbouncer -d -q "$pgb_dir/pgb.ini"
	else pgbouncer -d -q "$pgb_dir/pgb.ini"; fi
	i=0; until [ -s "$pgb_dir/pgb.pid" ] || [ $i -gt 50 ]; do sleep 0.1; i=$((i + 1)); done
	pgb_header() { psql -X -q -A -F '|' -h 127.0.0.1 -p "$pgb_port" -U admin -d pgbouncer -c "$1" 2>&1 | head -n 1; }
	for what in POOLS CLIENTS SERVERS DATABASES STATS STATS_TOTALS STATS_AVERAGES CONFIG VERSION; do
		theirs=$(pgb_header "SHOW $what")
		expect_match "SHOW $what: PgBouncer $(pgbouncer --version | head -n 1 | cut -d' ' -f2)'s columns come first, in its order" \
			"$(header "SHOW $what")" "$theirs*"
	done
	kill "$(cat "$pgb_dir/pgb.pid")" 2>/dev/null
else
	ok "pgbouncer is not installed: its columns not compared # SKIP"
fi
cleanup() { t_cleanup; [ -n "$pgb_dir" ] && rm -rf "$pgb_dir"; [ -n "$exp_pid" ] && kill "$exp_pid" 2>/dev/null; }
trap cleanup EXIT INT TERM

# ---- values that follow traffic
before=$(cpsql admin -c "SHOW STATS_TOTALS")
for i in 1 2 3 4 5; do app -c "SELECT $i" >/dev/null; done
after=$(cpsql admin -c "SHOW STATS_TOTALS")
expect_eq "SHOW STATS_TOTALS: 5 transactions more" "$(($(col "$after" xact_count) - $(col "$before" xact_count)))" 5
expect_eq "SHOW STATS_TOTALS: 5 queries more" "$(($(col "$after" query_count) - $(col "$before" query_count)))" 5
check "SHOW STATS_TOTALS: bytes received from and sent to the clients grew" \
	test "$(col "$after" bytes_received)" -gt "$(col "$before" bytes_received)" -a \
	"$(col "$after" bytes_sent)" -gt "$(col "$before" bytes_sent)"
check "SHOW STATS_TOTALS: query and transaction time grew" \
	test "$(col "$after" query_time)" -gt "$(col "$before" query_time)" -a "$(col "$after" xact_time)" -gt 0
# one server (default_pool_size = 1): a second client waits behind a long one
app -c "SELECT pg_sleep(1.5)" >/dev/null &
first=$!
sleep 0.4
app -c "SELECT 'second'" >"$T_DIR/second.out" &
second=$!
sleep 0.4
pools=$(cpsql admin -c "SHOW POOLS")
expect_eq "SHOW POOLS: the pool of (database, user)" "$(col "$pools" database)/$(col "$pools" user)" "console/app"
expect_eq "SHOW POOLS: one client waits" "$(col "$pools" cl_waiting)" 1
expect_eq "SHOW POOLS: one server active" "$(col "$pools" sv_active)" 1
expect_eq "SHOW POOLS: pool_mode" "$(col "$pools" pool_mode)" "transaction"
check "SHOW POOLS: maxwait_us counts the wait" test "$(col "$pools" maxwait_us)" -gt 100000
servers=$(cpsql admin -c "SHOW SERVERS")
pid=$(apsql -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1.5)%' AND state = 'active'")
expect_eq "SHOW SERVERS: remote_pid is the backend's pid" "$(col "$servers" remote_pid)" "$pid"
expect_eq "SHOW SERVERS: active, linked to a client" "$(col "$servers" state)" "active"
clients=$(cpsql admin -c "SHOW CLIENTS")
check "SHOW CLIENTS: the server's link is a client's ptr" sh -c "printf '%s\n' \"\$1\" | grep -q \"|$(col "$servers" link)|\"" sh "$clients"
expect_match "SHOW CLIENTS: the waiting client" "$clients" "*C|app|console|waiting|127.0.0.1|*"
wait "$first" "$second"
expect_eq "the waiting client ran after the first" "$(cat "$T_DIR/second.out")" "second"
check "SHOW STATS: total_wait_time counted the wait" test "$(col "$(cpsql admin -c "SHOW STATS")" total_wait_time)" -gt 100000
# averages over the last stats_period (1 s): traffic through a full period
t_end=$(($(date +%s) + 2))
while [ "$(date +%s)" -lt "$t_end" ]; do app -c "SELECT 1" >/dev/null; done
avg=$(cpsql admin -c "SHOW STATS_AVERAGES")
check "SHOW STATS_AVERAGES: transactions per second over the last period" test "$(col "$avg" xact_count)" -gt 0
check "SHOW STATS_AVERAGES: microseconds per query" test "$(col "$avg" query_time)" -gt 0
lists=$(admin "SHOW LISTS")
expect_match "SHOW LISTS: one pool, two databases (the console's counts), one server used" \
	"$(echo $lists)" "databases|2 *pools|1 *used_servers|1 *"
expect_eq "SHOW DATABASES: the entry and its pool_size" "$(admin "SHOW DATABASES" | cut -d'|' -f1,3,4,6)" "console|$PG_PORT|console|1"

# ---- PAUSE / RESUME [db], through each front end
admin "PAUSE console" >/dev/null
expect_eq "PAUSE console: SHOW DATABASES says paused" "$(admin "SHOW DATABASES" | cut -d'|' -f12)" 1
app -c "SELECT 'after pause'" >"$T_DIR/paused.out" &
paused=$!
sleep 0.5
check "PAUSE console: a new transaction waits" test ! -s "$T_DIR/paused.out"
expect_match "the JSON socket sees the same pause (show databases)" "$(ctl --json show databases)" '*"console",*,1,0]]}'
expect_match "... and in status" "$(ctl --json status)" '*"paused_databases":\["console"\]*'
expect_match "RESUME through the JSON socket" "$(ctl resume console)" "resumed console"
wait "$paused"
expect_eq "RESUME: the waiting transaction ran" "$(cat "$T_DIR/paused.out")" "after pause"
check "a change is logged with the console user and the command as written" \
	grep -q "admin: console user admin (127.0.0.1:[0-9]*) runs: PAUSE console" "$T_DIR/pgflip.log"
expect_match "PAUSE of an unknown database: 3D000" "$(cpsql admin -c "PAUSE nosuch")" "*3D000: no such database: nosuch*"
expect_match "PAUSE answers with its tag and a NOTICE" "$(cpsql admin -c "PAUSE")" "*NOTICE:  00000: paused*"
expect_match "PAUSE of all shows in status on the socket" "$(ctl status)" "*paused: true*"
expect_match "RESUME" "$(cpsql admin -c "RESUME")" "*resumed*"
expect_match "RESUME shows in status too" "$(ctl status)" "*paused: false*"

# ---- RECONNECT [db]
app -c "SELECT 1" >/dev/null
old=$(admin "SHOW SERVERS" | cut -d'|' -f16)
expect_match "RECONNECT console" "$(cpsql admin -c "RECONNECT console")" "*1 server connection(s) close*"
app -c "SELECT 1" >/dev/null
new=$(admin "SHOW SERVERS" | cut -d'|' -f16)
check "RECONNECT: a new backend serves" test -n "$new" -a "$new" != "$old"
expect_eq "RECONNECT: the old backend has ended" "$(apsql -c "SELECT count(*) FROM pg_stat_activity WHERE pid = $old")" 0
expect_match "reconnect through the JSON socket" "$(ctl reconnect)" "*1 server connection(s) close*"
app -c "SELECT 1" >/dev/null
check "... and it replaced that one too" test "$(admin "SHOW SERVERS" | cut -d'|' -f16)" != "$new"

# ---- KILL_CLIENT id, through each front end
kill_one() { # FRONT: psql | ctl
	app -c "SELECT pg_sleep(10)" >"$T_DIR/killed.$1" &
	kpid=$!
	sleep 0.4
	id=$(admin "SHOW CLIENTS" | awk -F'|' '$2 == "app" { print $19 }')
	if [ "$1" = psql ]; then out=$(cpsql admin -c "KILL_CLIENT $id"); else out=$(ctl kill_client "$id"); fi
	wait "$kpid"
	expect_match "KILL_CLIENT through $1: answered" "$out" "*client closed*"
	expect_match "KILL_CLIENT through $1: the client hears 57P01's message" "$(cat "$T_DIR/killed.$1")" \
		"*terminating connection due to administrator command*"
}
kill_one psql
kill_one ctl
expect_match "KILL_CLIENT of an unknown id" "$(cpsql admin -c "KILL_CLIENT 999999")" "*22023: kill_client: no client with id 999999*"
expect_match "KILL_CLIENT without an id: 42601" "$(cpsql admin -c "KILL_CLIENT")" "*42601: usage: kill_client ID*"

# ---- routes, through each front end: a change of one shows in the other
expect_match "ROUTE DEFAULT v2 on the console" "$(cpsql admin -c "ROUTE DEFAULT v2")" "*route changed*"
expect_match "... shows on the JSON socket" "$(ctl routes)" "*default: v2*"
expect_eq "... and in SHOW ROUTES" "$(admin "SHOW ROUTES" | cut -d'|' -f1,3)" "default|v2"
ctl route default public >/dev/null
expect_eq "a change through ctl shows in SHOW ROUTES" "$(admin "SHOW ROUTES" | cut -d'|' -f1,3)" "default|public"
expect_match "CANARY v2 10" "$(cpsql admin -c "CANARY v2 10")" "*canary set*"
expect_eq "SHOW ROUTES: the canary row and its share" "$(admin "SHOW ROUTES" | grep '^canary' | cut -d'|' -f1-4)" "canary|addr|v2|10"
expect_match "route app with a quoted glob keeps its case" "$(cpsql admin -c "ROUTE APP 'Shop-V2-*' v2")" "*route changed*"
expect_match "SHOW ROUTES: the pin" "$(admin "SHOW ROUTES")" "*app|Shop-V2-\*|v2*"
expect_match "UNROUTE APP" "$(cpsql admin -c "UNROUTE APP 'Shop-V2-*'")" "*route removed*"
expect_match "CANARY OFF" "$(cpsql admin -c "CANARY OFF")" "*canary off*"
app -c "SELECT 1" >/dev/null
check "SHOW ROUTES: the default's transactions" test "$(admin "SHOW ROUTES" | grep '^default' | cut -d'|' -f5)" -gt 0
expect_match "PROMOTE v2" "$(cpsql admin -c "PROMOTE v2")" "*default route changed*"
expect_match "... shows on the JSON socket" "$(ctl routes)" "*default: v2*"
ctl route default public >/dev/null
expect_match "ROLLBACK without an active migration: an error" "$(cpsql admin -c "ROLLBACK")" "*ERROR:  *no active migration*"
expect_match "MIGRATE STATUS: a table" "$(cpsql admin -c "MIGRATE STATUS")" "running|command|database|phase|*"
expect_match "SHOW MIGRATION: not running" "$(admin "SHOW MIGRATION" | cut -d'|' -f1)" "f"
expect_match "SHOW VERSIONS: its columns" "$(header "SHOW VERSIONS")" "database|version_schema|migration|state|default|*"

# ---- a migration seen from the console: SHOW MIGRATION, SHOW VERSIONS, PROMOTE, ROLLBACK
apsql -c "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)" \
	-c "INSERT INTO items SELECT g, 'item' || g FROM generate_series(1, 200) g"
cp "$TOP/tests/data/migrate/02_len.yaml" "$T_DIR/02_len.yaml"
expect_match "migrate start through ctl" "$(ctl migrate start "$T_DIR/02_len.yaml" 2>&1)" "*done: 02_len*"
vs=$(apsql -c "SELECT version_schema FROM pgflip.migrations WHERE name = '02_len'")
mig=$(cpsql admin -c "SHOW MIGRATION")
expect_eq "SHOW MIGRATION: the start is done" "$(col "$mig" command) $(col "$mig" phase) $(col "$mig" migration) $(col "$mig" running)" \
	"start done 02_len f"
check "SHOW MIGRATION: rows done of the backfill" test "$(col "$mig" rows_done)" -ge 0
mig_wait_versions() { # PATTERN: SHOW VERSIONS until its rows match (history refreshes behind)
	i=0; while [ $i -lt 50 ]; do
		case "$(admin "SHOW VERSIONS")" in $1) return 0 ;; esac
		sleep 0.1; i=$((i + 1))
	done; return 1
}
check "SHOW VERSIONS: the version schema, active, not the default" mig_wait_versions "*console|$vs|02_len|active|f|*"
expect_match "PROMOTE it on the console" "$(cpsql admin -c "PROMOTE $vs")" "*default route changed*"
expect_match "... the JSON socket's versions say default" "$(ctl --json versions)" "*\"version_schema\":\"$vs\"*\"default\":true*"
expect_eq "... a client reads the new column" "$(app -c "SELECT name_len FROM items WHERE id = 42")" 6
expect_match "ROLLBACK on the console: the routes move back at once" "$(cpsql admin -c "ROLLBACK")" "*route(s) moved from $vs to public*"
expect_eq "... SHOW ROUTES: the default is public again" "$(admin "SHOW ROUTES" | grep '^default' | cut -d'|' -f3)" "public"
check "... SHOW VERSIONS: rolled back once its job ran" mig_wait_versions "*console|$vs|02_len|rolled_back|f|*"
expect_eq "... SHOW MIGRATION: the rollback job" "$(admin "SHOW MIGRATION" | cut -d'|' -f2,4)" "rollback|done"

# ---- the JSON socket's SHOW: the same table
for what in pools clients servers databases stats stats_totals stats_averages lists config version routes versions migration; do
	cols=$(ctl --json show "$what" | python3 -c 'import json,sys; print("|".join(c["name"] for c in json.load(sys.stdin)["columns"]))')
	expect_eq "show $what: the socket's columns are the console's" "$cols" "$(header "SHOW $what")"
done
expect_eq "show stats_totals: the same values through both" \
	"$(ctl --json show stats_totals | python3 -c 'import json,sys; print("|".join(str(v) for v in json.load(sys.stdin)["rows"][0]))')" \
	"$(admin "SHOW STATS_TOTALS")"

# ---- RELOAD
sed -i 's/^default_pool_size = 1/default_pool_size = 7/' "$T_DIR/pgflip.ini"
expect_match "RELOAD" "$(cpsql admin -c "RELOAD")" "*config reloaded*"
expect_eq "SHOW CONFIG: the reloaded value and its default" "$(admin "SHOW CONFIG" | grep '^default_pool_size|')" "default_pool_size|7|20|yes"
expect_eq "SHOW DATABASES follows" "$(admin "SHOW DATABASES" | cut -d'|' -f6)" 7
sed -i '/^\[databases\]/a nohost = dbname=console' "$T_DIR/pgflip.ini"
admin "RELOAD" >/dev/null
expect_eq "SHOW DATABASES: an entry without host or user= (NULLs, libpq's default port)" \
	"$(admin "SHOW DATABASES" | grep '^nohost|' | cut -d'|' -f1-5)" "nohost||5432|console|"
expect_match "SHOW LISTS counts it" "$(admin "SHOW LISTS" | grep '^databases|')" "databases|3"
sed -i '/^nohost = /d' "$T_DIR/pgflip.ini"
sed -i 's/^default_pool_size = 7/default_pool_size = oops/' "$T_DIR/pgflip.ini"
expect_match "a RELOAD that fails: F0000, the running config kept" "$(cpsql admin -c "RELOAD")" "*F0000: reload failed*"
sed -i 's/^default_pool_size = oops/default_pool_size = 7/' "$T_DIR/pgflip.ini"

# ---- the extended protocol is refused, the connection stays usable
pgflip_stop
conf trust "admin_db = pgbouncer"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts with trust"; exit 1; }
out=$(python3 "$TOP/tests/lib/pgwire.py" "$port" pgbouncer user=admin -- "x:SHOW POOLS" "q:SHOW VERSION" "f:1|x" "q:SHOW VERSION")
expect_eq "extended protocol: 0A000 up to the Sync, then simple queries work; FunctionCall refused" "$out" \
	"E 0A000 the admin console takes the simple query protocol only: send each command as a Query (psql -c, or a driver's simple protocol)
pgflip 0.1.0
E 0A000 the admin console runs no functions
pgflip 0.1.0"
expect_match "a user in neither list: 28000" "$(python3 "$TOP/tests/lib/pgwire.py" "$port" pgbouncer user=other -- "q:SHOW VERSION")" \
	"LOGIN E 28000 not allowed: user \"other\"*"
expect_match "admin_db = pgbouncer: the old name is a normal database no more" \
	"$(psql -X -At -h 127.0.0.1 -p "$port" -U admin -d pgflip -c "SHOW VERSION" 2>&1)" "*no such database: pgflip*"

# ---- prometheus-pgbouncer-exporter against the console
if command -v prometheus-pgbouncer-exporter >/dev/null 2>&1; then
	for i in 1 2 3; do PGPASSWORD=app_pw psql -X -q -At -h 127.0.0.1 -p "$port" -U app -d console -c "SELECT $i" >/dev/null; done
	eport=$(free_port)
	prometheus-pgbouncer-exporter --host 127.0.0.1 --port "$eport" --pgbouncer-host 127.0.0.1 \
		--pgbouncer-port "$port" --pgbouncer-user stats >"$T_DIR/exporter.log" 2>&1 &
	exp_pid=$!
	i=0; until curl -sf "http://127.0.0.1:$eport/metrics" >"$T_DIR/metrics.txt" 2>/dev/null || [ $i -gt 50 ]; do sleep 0.2; i=$((i + 1)); done
	m=$(cat "$T_DIR/metrics.txt")
	expect_match "exporter: requests_total of the database from SHOW STATS" "$m" '*pgbouncer_requests_total{database="console"} [1-9]*'
	expect_match "exporter: bytes received" "$m" '*pgbouncer_received_bytes_total{database="console"} [1-9]*'
	expect_match "exporter: pool gauges from SHOW POOLS" "$m" '*pgbouncer_active_clients{database="console",user="app"} *'
	expect_match "exporter: pool_size from SHOW DATABASES" "$m" '*pgbouncer_pool_size{database="console"} 1.0*'
	expect_match "exporter: SHOW LISTS" "$m" '*pgbouncer_used_clients 1.0*'
	kill "$exp_pid" 2>/dev/null; wait "$exp_pid" 2>/dev/null; exp_pid=""
else
	ok "prometheus-pgbouncer-exporter is not installed # SKIP"
fi

# ---- SHUTDOWN from the console
expect_match "SHUTDOWN is answered" "$(psql -X -h 127.0.0.1 -p "$port" -U admin -d pgbouncer -c "SHUTDOWN" 2>&1)" "*shutting down*"
i=0; while kill -0 "$PGFLIP_PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "SHUTDOWN: pgflip exits (the console closed itself)" sh -c "! kill -0 $PGFLIP_PID 2>/dev/null"

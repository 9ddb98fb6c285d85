# Route integrity: whatever an odd or hostile client sends, every later
# client still runs on exactly its route, with its own settings and nothing
# left from the one before. One server connection (default_pool_size = 1),
# so every client lands on the same backend; both pool modes.
# Tables: who in v1, v2 and public, each saying which it is.
. "$TOP/tests/lib/check.sh"

make_db integrity
apsql <<'SQL'
CREATE SCHEMA v1;
CREATE SCHEMA v2;
CREATE TABLE public.who AS SELECT 'public'::text AS w;
CREATE TABLE v1.who AS SELECT 'v1'::text AS w;
CREATE TABLE v2.who AS SELECT 'v2'::text AS w;
CREATE FUNCTION public.sneaky() RETURNS text LANGUAGE plpgsql AS
  $$BEGIN SET SESSION search_path = v2; RETURN 'done'; END$$;
CREATE FUNCTION public.sneaky_config() RETURNS text LANGUAGE plpgsql AS
  $$BEGIN PERFORM set_config('search_path', 'v2', false); RETURN 'done'; END$$;
SQL
pg_psql -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'other') THEN CREATE ROLE other NOLOGIN; END IF; END\$\$" \
	-c "GRANT other TO app" >/dev/null
port=$(free_port)
wire() { python3 "$TOP/tests/lib/pgwire.py" "$port" "$T_DB" "$@" 2>&1; }
# plain: what a client that sends nothing odd sees: route, settings, role
plain() {
	fpsql "$port" -c "SELECT w || ' ' || current_setting('search_path') || ' ' || current_setting('statement_timeout') || ' ' ||
		current_setting('default_transaction_read_only') || ' ' || current_setting('session_replication_role') || ' ' ||
		current_user FROM who" 2>&1
}
want_plain="v1 v1 0 off origin app"
plain_v2() { PGAPPNAME=v2-x plain; }
want_v2="v2 v2 0 off origin app"
after() { # NAME: every later client still sees exactly its route and the defaults
	expect_eq "$mode: after $1, a plain client sees its route and defaults" "$(plain)" "$want_plain"
	expect_eq "$mode: after $1, a v2 client sees v2" "$(plain_v2)" "$want_v2"
}

for mode in session transaction; do
	write_conf "$T_DIR/pgflip.ini" "$port" "pool_mode = $mode
default_pool_size = 1
log_level = info
track_extra_parameters = statement_timeout, default_transaction_read_only, role, session_replication_role" \
		"default = v1
app.v2-* = v2"
	sed -i 's/^default = public$//' "$T_DIR/pgflip.ini"
	pgflip_start "$T_DIR/pgflip.ini" || { not_ok "$mode: pgflip starts"; continue; }
	expect_eq "$mode: a plain client" "$(plain)" "$want_plain"

	# search_path as a startup parameter (JDBC currentSchema) is never applied
	got=$(wire search_path=v2 -- "q:SELECT w FROM who" "q:SHOW search_path")
	expect_eq "$mode: search_path at startup: the client itself still sees its route" "$(echo $got)" "v1 v1"
	after "search_path at startup"
	got=$(wire "options=-c search_path=v2" -- "q:SELECT w FROM who")
	expect_eq "$mode: search_path in options: ignored" "$got" "v1"
	check "$mode: an ignored startup search_path is logged" grep -q "search_path given at startup is ignored" "$T_DIR/pgflip.log"

	# an unknown startup parameter is refused, naming it
	got=$(wire foo=bar -- "q:SELECT 1")
	expect_match "$mode: unknown startup parameter: FATAL naming it" "$got" "LOGIN E 08P01 unsupported startup parameter: foo*"
	after "an unknown startup parameter"
	got=$(wire "options=-c work_mem=1MB" -- "q:SELECT 1")
	expect_match "$mode: a setting in options pgflip does not carry: refused" "$got" "LOGIN E 08P01 *options: work_mem*"
	got=$(wire "options=-d 5" -- "q:SELECT 1")
	expect_match "$mode: a switch in options other than -c: refused" "$got" "LOGIN E 08P01 invalid options*"

	# options with allowed settings (PGOPTIONS, as deployments use it)
	got=$(PGOPTIONS='-c statement_timeout=5s --default-transaction-read-only=on' fpsql "$port" \
		-c "SELECT current_setting('statement_timeout') || ' ' || current_setting('default_transaction_read_only') || ' ' || w FROM who")
	expect_eq "$mode: PGOPTIONS settings applied, route kept" "$got" "5s on v1"
	got=$(wire "options=-c application_name=v2-opt" -- "q:SELECT current_setting('application_name') || ' ' || w FROM who")
	expect_eq "$mode: application_name from options: shown and routed by" "$got" "v2-opt v2"
	after "PGOPTIONS settings"

	# startup settings stay with their client
	got=$(wire statement_timeout=50 default_transaction_read_only=on -- "q:SHOW statement_timeout" "q:SELECT pg_sleep(0.2)")
	expect_match "$mode: startup statement_timeout applies to its client" "$(echo $got)" "50ms E 57014 *statement timeout*"
	after "startup statement_timeout and default_transaction_read_only"
	got=$(wire role=other -- "q:SELECT current_user")
	expect_eq "$mode: startup role applies to its client" "$got" "other"
	after "a startup role"
	got=$(wire session_replication_role=replica -- "q:SELECT w FROM who")
	expect_match "$mode: a startup setting the server refuses: an error, not a wrong route" "$got" "E 42501 *"
	after "a startup setting the server refused"
	got=$(wire DateStyle=garbage -- "q:SELECT w FROM who" "q:SELECT 1")
	expect_match "$mode: a bad startup value: the request fails with the server's error" "$(echo $got)" "E 22023 *"
	after "a bad startup value"

	# SQL that changes search_path, however it is spelled or sent
	for sql in "SET search_path = v2" "SELECT set_config('search'||'_path', 'v2', false)" \
		"SET U&\"search\\005fpath\" = v2" "SELECT 1; SET search_path = v2; SELECT 2" \
		"/* x */ SET search_path=v2" "UPDATE pg_settings SET setting = 'v2' WHERE name = 'search_path'" \
		"DO \$\$BEGIN SET search_path = v2; END\$\$" "RESET ALL" "SET ROLE other" "SET statement_timeout = 1"; do
		wire -- "q:$sql" >/dev/null
		after "\"$sql\""
	done
	wire -- "x:SET search_path = v2" >/dev/null
	after "SET search_path in a Parse"
	wire -- "x:SELECT set_config(\$1, \$2, false)|search_path|v2" >/dev/null
	after "a Bind of set_config(\$1, \$2, false)"
	oid=$(apsql -c "SELECT 'pg_catalog.set_config(text,text,boolean)'::regprocedure::oid")
	got=$(wire -- "f:$oid|search_path|v2|false")
	expect_eq "$mode: FunctionCall of set_config runs" "$got" "v2"
	after "a FunctionCall of set_config"

	# a named statement whose text calls set_config, executed in a later
	# transaction (maybe on another server): flagged at every Execute
	wire -- "p:sp|SELECT set_config('search_path', 'v2', false)" "q:SELECT 1" "e:sp" >/dev/null
	after "a prepared set_config executed in a later transaction"
	wire -- "p:|SELECT set_config('search_path', 'v2', false)" "q:SELECT 1" "e:" >/dev/null
	after "an unnamed prepared set_config executed in a later transaction"

	# LISTEN, however it is sent: refused in transaction mode
	if [ "$mode" = transaction ]; then
		for how in "q:/* x */ LISTEN chan" "q:SELECT 1; LISTEN chan" "x:LISTEN chan" "q:-- c
listen chan"; do
			got=$(wire -- "$how" "q:SELECT 'still here'")
			expect_match "transaction: LISTEN refused (${how%%:*}: ${how#*:})" "$(echo $got)" "E 0A000 LISTEN is not supported* still here"
		done
		got=$(wire -- "q:SELECT 'listen' AS listen" "q:SELECT pg_listening_channels()")
		expect_eq "transaction: the word listen elsewhere is no LISTEN; no channel is listened to" "$(echo $got)" "listen"
	fi

	# a prepared statement made before a flip and executed after it
	flip() { echo "sh:$TOP/$PGFLIP ctl -s $T_DIR/admin.sock route default $1"; }
	got=$(wire -- "p:who|SELECT w FROM who" "e:who" "$(flip v2)" "e:who" "$(flip v1)" "e:who")
	got=$(echo $got)
	expect_eq "$mode: a statement prepared before a flip runs on the new route after it" "$got" "v1 v2 v1"
	after "a flip and back"

	# ALTER ROLE ... SET search_path for the login role: new server logins
	# start on it; the route still wins
	apsql -c "ALTER ROLE app IN DATABASE $T_DB SET search_path = v2"
	pg_psql -d "$T_DB" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND application_name <> 'psql'" >/dev/null
	sleep 0.3
	after "ALTER ROLE app SET search_path = v2"
	apsql -c "ALTER ROLE app IN DATABASE $T_DB RESET search_path"

	# server_check_search_path = always: a function that changes search_path
	# unseen does not reach the next client
	wire -- "q:SELECT sneaky()" >/dev/null
	if [ "$mode" = transaction ]; then
		got=$(plain)
		# auto cannot see inside a function: documented; always can
		echo "# auto, after sneaky(): $got"
	fi
	pgflip_stop
	sed -i 's/^track_extra_parameters/server_check_search_path = always\ntrack_extra_parameters/' "$T_DIR/pgflip.ini"
	pgflip_start "$T_DIR/pgflip.ini" || { not_ok "$mode: pgflip restarts (always)"; continue; }
	wire -- "q:SELECT sneaky()" >/dev/null
	after "a function that runs SET SESSION search_path (always)"
	wire -- "q:SELECT sneaky_config()" >/dev/null
	after "a function that calls set_config (always)"
	pgflip_stop
done

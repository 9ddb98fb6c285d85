# auth_query with auth_user: a user missing from auth_file gets its secret
# from the database (pg_shadow as a superuser, or PgBouncer's recommended
# SECURITY DEFINER function as an ordinary role), on a connection of its
# own that never blocks the event loop; answers are cached a short time.
. "$TOP/tests/lib/check.sh"

make_db authq
auth=$TOP/tests/lib/pgauth.py
pg_psql -d authq <<'SQL' >/dev/null 2>&1
SET password_encryption = 'scram-sha-256';
DROP ROLE IF EXISTS q_scram; CREATE ROLE q_scram LOGIN PASSWORD 'scrampw';
SET password_encryption = 'md5';
DROP ROLE IF EXISTS q_md5; CREATE ROLE q_md5 LOGIN PASSWORD 'md5pw';
DROP ROLE IF EXISTS q_nopw; CREATE ROLE q_nopw LOGIN;
SET password_encryption = 'scram-sha-256';
DROP ROLE IF EXISTS lookup; CREATE ROLE lookup LOGIN PASSWORD 'lookup_pw';
DROP SCHEMA IF EXISTS pgflip_auth CASCADE; CREATE SCHEMA pgflip_auth;
CREATE FUNCTION pgflip_auth.get_auth(p_usename text, OUT username text, OUT password text)
  RETURNS record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
  AS $$ SELECT usename::text, passwd::text FROM pg_shadow WHERE usename = p_usename $$;
REVOKE ALL ON FUNCTION pgflip_auth.get_auth(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA pgflip_auth TO lookup;
GRANT EXECUTE ON FUNCTION pgflip_auth.get_auth(text) TO lookup;
CREATE FUNCTION pgflip_auth.slow_auth(p_usename text, OUT username text, OUT password text)
  RETURNS record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
  AS $$ SELECT usename::text, passwd::text FROM pg_shadow, pg_sleep(1.5) WHERE usename = p_usename $$;
GRANT EXECUTE ON FUNCTION pgflip_auth.slow_auth(text) TO lookup;
SQL

port=$(free_port)
printf '"postgres" "postgres"\n"lookup" "lookup_pw"\n"filed" "filepw"\n' >"$T_DIR/userlist.txt"
conf() { # AUTH_USER [AUTH_QUERY]
	write_conf "$T_DIR/pgflip.ini" "$port" "log_level = info
auth_type = scram-sha-256
auth_file = $T_DIR/userlist.txt
auth_user = $1
${2:+auth_query = $2}"
	sed -i "s/^$T_DB = .*/authq = host=127.0.0.1 port=$PG_PORT dbname=authq user=app password=app_pw/" "$T_DIR/pgflip.ini"
}
try() { python3 "$auth" "$port" authq "$1" "$2" "SELECT current_user" 2>&1 | tail -n 1; }
fail28p01() { echo "E 28P01 password authentication failed for user \"$1\""; }

# ---- superuser auth_user, the default auth_query (pg_shadow)
conf postgres
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
expect_eq "auth_query: SCRAM verifier from pg_shadow, right password" "$(try q_scram scrampw)" "OK app"
expect_eq "auth_query: wrong password" "$(try q_scram nope)" "$(fail28p01 q_scram)"
expect_eq "auth_query: a role unknown to the database is answered like a wrong password" \
	"$(try nobody_here x)" "$(fail28p01 nobody_here)"
expect_eq "auth_query: a role without a password cannot log in" "$(try q_nopw '')" "$(fail28p01 q_nopw)"
expect_eq "auth_query: an md5 secret cannot serve SCRAM" "$(try q_md5 md5pw)" "$(fail28p01 q_md5)"
expect_eq "auth_file still wins for its users" "$(try filed filepw)" "OK app"
expect_eq "psql through auth_query" \
	"$(PGPASSWORD=scrampw psql -X -At -h 127.0.0.1 -p "$port" -U q_scram -d authq -c 'SELECT 1' 2>&1)" "1"
check "the lookup connection logged in as auth_user" grep -q "auth_query connection for database authq logged in as postgres" "$T_DIR/pgflip.log"
expect_eq "one lookup connection, as auth_user, in pg_stat_activity" \
	"$(pg_psql -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgflip auth_query' AND usename = 'postgres'")" "1"

# a password change shows once the cached answer expires (AUTHQ_CACHE_MS, 5 s)
pg_psql -c "SET password_encryption = 'scram-sha-256'" -c "ALTER ROLE q_scram PASSWORD 'newpw'" >/dev/null
expect_eq "within the cache time the old password still works" "$(try q_scram scrampw)" "OK app"
sleep 5.5
expect_eq "after it, the new password works" "$(try q_scram newpw)" "OK app"
expect_eq "and the old one fails" "$(try q_scram scrampw)" "$(fail28p01 q_scram)"

# the lookup connection's backend is terminated while idle: pgflip notices,
# logs it, and the next lookup opens a new connection
pg_psql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgflip auth_query'" >/dev/null
sleep 0.5
check "pgflip survives the lookup connection's backend being terminated" kill -0 "$PGFLIP_PID"
check "... and logs the backend's words" grep -q "auth_query connection for database authq: FATAL:  terminating connection" "$T_DIR/pgflip.log"
sleep 5 # past the cache
expect_eq "the next lookup opens a new connection" "$(try q_scram newpw)" "OK app"

# ---- an ordinary role running PgBouncer's SECURITY DEFINER function
conf lookup "SELECT username, password FROM pgflip_auth.get_auth(\$1)"
ctl reload >/dev/null
expect_eq "SECURITY DEFINER auth_query as a non-superuser" "$(try q_scram newpw)" "OK app"
conf lookup "SELECT usename, passwd FROM pg_shadow WHERE usename=\$1"
ctl reload >/dev/null
expect_eq "auth_query that auth_user may not run: the client is refused" "$(try q_scram newpw)" \
	"E 28000 authentication failed: the auth_query lookup failed"
check "the log says why" grep -q "auth_query failed: ERROR:  permission denied" "$T_DIR/pgflip.log"

# ---- the event loop does not wait: a slow lookup (1.5 s) beside a logged-in client
conf lookup "SELECT username, password FROM pgflip_auth.slow_auth(\$1)"
ctl reload >/dev/null
python3 "$auth" "$port" authq q_scram newpw "SELECT 1" >"$T_DIR/slow.out" 2>&1 &
slow=$!
sleep 0.3
start=$(date +%s%N)
out=$(PGPASSWORD=filepw psql -X -At -h 127.0.0.1 -p "$port" -U filed -d authq -c 'SELECT 1' 2>&1)
took=$((($(date +%s%N) - start) / 1000000))
wait "$slow"
expect_eq "another client logs in and queries while a lookup runs" "$out" "1"
check "... within 1 s (${took} ms), not after the lookup" test "$took" -lt 1000
expect_eq "the slow lookup's client logs in too" "$(tail -n 1 "$T_DIR/slow.out")" "OK 1"

# ---- the lookup connection cannot log in: clients get a clean refusal
printf '"lookup" "wrong"\n' >"$T_DIR/userlist.txt"
conf lookup "SELECT username, password FROM pgflip_auth.get_auth(\$1)"
ctl reload >/dev/null
expect_eq "auth_user cannot log in: clean refusal" "$(try q_scram newpw)" \
	"E 28000 authentication failed: the auth_query lookup failed"
check "the log names the failed login" grep -q "auth_query for database authq: login as lookup failed" "$T_DIR/pgflip.log"
check "pgflip keeps running" kill -0 "$PGFLIP_PID"

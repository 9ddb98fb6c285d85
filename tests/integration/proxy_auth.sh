# Server logins through libpq: pgflip logs in upstream with whatever method
# the server asks for (SCRAM-SHA-256 is covered by every other test; here
# md5, password and trust), and a wrong password is a clean error.
. "$TOP/tests/lib/check.sh"

make_db auth
pg_psql <<'SQL' >/dev/null
SET password_encryption = 'md5';
DROP ROLE IF EXISTS md5user; CREATE ROLE md5user LOGIN PASSWORD 'md5pw';
DROP ROLE IF EXISTS pwuser; CREATE ROLE pwuser LOGIN PASSWORD 'plainpw';
DROP ROLE IF EXISTS trustuser; CREATE ROLE trustuser LOGIN;
GRANT CONNECT ON DATABASE auth TO md5user, pwuser, trustuser;
SQL
hba="$PG_DIR/data/pg_hba.conf"
cp "$hba" "$T_DIR/pg_hba.conf.orig"
{
	echo "host all md5user 127.0.0.1/32 md5"
	echo "host all pwuser 127.0.0.1/32 password"
	echo "host all trustuser 127.0.0.1/32 trust"
	cat "$T_DIR/pg_hba.conf.orig"
} >"$T_DIR/pg_hba.conf.new"
cat "$T_DIR/pg_hba.conf.new" >"$hba"
pg_psql -c "SELECT pg_reload_conf()" >/dev/null
restore() { cat "$T_DIR/pg_hba.conf.orig" >"$hba"; pg_psql -c "SELECT pg_reload_conf()" >/dev/null; t_cleanup; }
trap restore EXIT INT TERM

port=$(free_port)
cat >"$T_DIR/pgflip.ini" <<CONF
[pgflip]
listen_port = $port
unix_socket_dir = $T_DIR
admin_socket = $T_DIR/admin.sock
logfile = $T_DIR/pgflip.log
[databases]
md5 = host=127.0.0.1 port=$PG_PORT dbname=auth user=md5user password=md5pw
plain = host=127.0.0.1 port=$PG_PORT dbname=auth user=pwuser password=plainpw
trust = host=127.0.0.1 port=$PG_PORT dbname=auth user=trustuser
scram = host=127.0.0.1 port=$PG_PORT dbname=auth user=app password=app_pw
wrong = host=127.0.0.1 port=$PG_PORT dbname=auth user=app password=not-the-password
[routes]
default = public
CONF
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
for db in md5 plain trust scram; do
	out=$(psql -X -At -h 127.0.0.1 -p "$port" -d "$db" -c "SELECT current_user" 2>&1)
	want=md5user; [ $db = plain ] && want=pwuser; [ $db = trust ] && want=trustuser; [ $db = scram ] && want=app
	expect_eq "upstream login with $db authentication" "$out" "$want"
done
out=$(psql -X -At -h 127.0.0.1 -p "$port" -d wrong -c "SELECT 1" 2>&1)
expect_match "wrong upstream password: clean error with the reason" "$out" "*password authentication failed*"
check "pgflip keeps running" kill -0 "$PGFLIP_PID"

# pgflip's server connections over TLS: libpq negotiates it (sslmode=require),
# then pgflip relays on libpq's SSL object. Large results and COPY in check
# the buffered paths (SSL_pending, partial writes).
. "$TOP/tests/lib/check.sh"

command -v openssl >/dev/null || { ok "openssl CLI missing: TLS test skipped # SKIP"; exit 0; }
make_db tls
certdir="$PG_DIR/tls"
mkdir -p "$certdir"
openssl req -x509 -nodes -newkey rsa:2048 -days 2 -subj "/CN=localhost" \
	-keyout "$certdir/server.key" -out "$certdir/server.crt" >/dev/null 2>&1
chmod 600 "$certdir/server.key"
[ "$(id -u)" = 0 ] && chown -R postgres "$certdir"
pg_psql -c "ALTER SYSTEM SET ssl = on" -c "ALTER SYSTEM SET ssl_cert_file = '$certdir/server.crt'" \
	-c "ALTER SYSTEM SET ssl_key_file = '$certdir/server.key'" -c "SELECT pg_reload_conf()" >/dev/null
restore() {
	pg_psql -c "ALTER SYSTEM RESET ssl" -c "ALTER SYSTEM RESET ssl_cert_file" -c "ALTER SYSTEM RESET ssl_key_file" \
		-c "SELECT pg_reload_conf()" >/dev/null
	t_cleanup
}
trap restore EXIT INT TERM
sleep 0.5

port=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port" "log_level = info"
sed -i "s/password=app_pw\$/password=app_pw sslmode=require/" "$T_DIR/pgflip.ini"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
expect_eq "server connection uses TLS (pg_stat_ssl)" \
	"$(fpsql "$port" -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")" "t"
check "pgflip logged the TLS login" grep -q "login done.*(TLS)" "$T_DIR/pgflip.log"
expect_eq "a 20 MB result over TLS" \
	"$(fpsql "$port" -c "COPY (SELECT repeat('x', 1000) FROM generate_series(1, 20000)) TO STDOUT" | wc -c)" "20020000"
fpsql "$port" -c "CREATE TABLE big (v text)"
seq 1 50000 | sed 's/$/-some-padding-to-make-the-rows-longer/' | fpsql "$port" -c "COPY big FROM STDIN"
expect_eq "COPY FROM STDIN over TLS" "$(fpsql "$port" -c "SELECT count(*) FROM big")" "50000"
echo "SELECT 1;" >"$T_DIR/one.sql"
out=$(pgbench -n -t 300 -c 2 -f "$T_DIR/one.sql" -h 127.0.0.1 -p "$port" "$T_DB" 2>&1)
expect_match "many small queries over TLS" "$out" "*processed: 600/600*"

# pgflip's server connections over TLS: libpq negotiates it (sslmode=require),
# then pgflip relays on libpq's SSL object. Large results and COPY in check
# the buffered paths (SSL_pending, partial writes).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/lib/certs.sh"

command -v openssl >/dev/null || { ok "openssl CLI missing: TLS test skipped # SKIP"; exit 0; }
make_db tls
certdir="$PG_DIR/tls"
make_certs "$certdir" || { not_ok "make_certs $certdir"; exit 1; }
restore() {
	pg_ssl_off
	t_cleanup
}
trap restore EXIT INT TERM
pg_ssl_on "$certdir" || { not_ok "PostgreSQL serves TLS"; exit 1; }

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

# TLS between clients and pgflip (client_tls_*), and server_tls_* towards
# PostgreSQL. Certificates are made at run time (tests/lib/certs.sh): a CA, a
# server certificate for localhost, client certificates from that CA and
# from another one.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/lib/certs.sh"

command -v openssl >/dev/null || { ok "openssl CLI missing: TLS test skipped # SKIP"; exit 0; }
make_db ctls
certs=$T_DIR/certs
CERT_USER=app make_certs "$certs" || { not_ok "make_certs"; exit 1; }
auth=$TOP/tests/lib/pgauth.py
port=$(free_port)
conf() { # SSLMODE [EXTRA]
	write_conf "$T_DIR/pgflip.ini" "$port" "log_level = info
client_tls_sslmode = $1
client_tls_cert_file = $certs/server.crt
client_tls_key_file = $certs/server.key
client_tls_ca_file = $certs/ca.crt
$2"
	sed -i "s/^$T_DB = .*/ctls = host=127.0.0.1 port=$PG_PORT dbname=ctls user=app password=app_pw/" "$T_DIR/pgflip.ini"
}
# tpsql CONNINFO_EXTRA: psql through pgflip with libpq's TLS options
tpsql() {
	psql -X -At "host=localhost port=$port dbname=ctls user=app $1" -c "${2:-SELECT 1}" 2>&1
}
vfull="sslmode=verify-full sslrootcert=$certs/ca.crt"

# ---- require
conf require
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
expect_eq "require: psql sslmode=verify-full through pgflip" "$(tpsql "$vfull")" "1"
expect_match "require: a plain-text client gets a clear FATAL" "$(tpsql "sslmode=disable")" "*SSL required*"
expect_eq "require: plain text is refused with 28000" \
	"$(python3 "$auth" "$port" ctls app app_pw | tail -n 1)" "E 28000 SSL required (client_tls_sslmode = require)"
expect_eq "require: a Unix-socket client needs no TLS (as PgBouncer)" \
	"$(psql -X -At -h "$T_DIR" -p "$port" -U app -d ctls -c "SELECT 1" 2>&1)" "1"
expect_match "require: bytes behind the SSLRequest are refused (CVE-2021-23214)" \
	"$(python3 "$auth" --tls --early "$(printf 'Q\0\0\0\rSELECT 1\0')" "$port" ctls app app_pw 2>&1)" "TLS refused (b'E')"
conf require "auth_type = scram-sha-256
auth_file = $T_DIR/userlist.txt"
printf '"app" "app_pw"\n' >"$T_DIR/userlist.txt"
ctl reload >/dev/null
out=$(python3 "$auth" --tls "$port" ctls app app_pw "SELECT 1" 2>&1)
expect_match "SCRAM over TLS offers SCRAM-SHA-256-PLUS" "$out" "auth 10 SCRAM-SHA-256-PLUS,SCRAM-SHA-256*"
expect_match "SCRAM with gs2 'y' while -PLUS was offered is a downgrade: refused" "$out" "*E 08P01 *"
expect_match "SCRAM-SHA-256-PLUS with tls-server-end-point binding" \
	"$(python3 "$auth" --tls --mech SCRAM-SHA-256-PLUS "$port" ctls app app_pw "SELECT 1" 2>&1 | tr '\n' ' ')" \
	"*auth 12 verified auth 0 OK 1 "
expect_match "SCRAM-SHA-256-PLUS with the wrong binding data fails" \
	"$(python3 "$auth" --tls --mech SCRAM-SHA-256-PLUS --bad-cbind "$port" ctls app app_pw 2>&1 | tail -n 1)" "E 08P01 *"
expect_eq "plain SCRAM-SHA-256 ('n' header) over TLS still works" \
	"$(python3 "$auth" --tls --gs2 'n,,' "$port" ctls app app_pw "SELECT 1" | tail -n 1)" "OK 1"
expect_eq "psql channel_binding=require over TLS" \
	"$(PGPASSWORD=app_pw tpsql "$vfull channel_binding=require")" "1"
echo "SELECT 1;" >"$T_DIR/one.sql"
out=$(PGPASSWORD=app_pw PGSSLMODE=verify-full PGSSLROOTCERT="$certs/ca.crt" \
	pgbench -n -C -t 100 -c 2 -f "$T_DIR/one.sql" -h localhost -p "$port" -U app ctls 2>&1)
expect_match "pgbench: SCRAM over TLS, a new connection per transaction" "$out" "*processed: 200/200*"
expect_match "psql, wrong password over TLS" "$(PGPASSWORD=nope tpsql "$vfull")" "*password authentication failed*"

# ---- large transfers and backpressure over TLS
expect_eq "a 20 MB result over client TLS" \
	"$(PGPASSWORD=app_pw tpsql "$vfull" "COPY (SELECT repeat('x', 1000) FROM generate_series(1, 20000)) TO STDOUT" | wc -c)" "20020000"
PGPASSWORD=app_pw tpsql "$vfull" "CREATE TABLE big (v text)" >/dev/null
seq 1 50000 | sed 's/$/-some-padding-to-make-the-rows-longer/' |
	PGPASSWORD=app_pw psql -X -q "host=localhost port=$port dbname=ctls user=app $vfull" -c "COPY big FROM STDIN"
expect_eq "COPY FROM STDIN over client TLS" "$(PGPASSWORD=app_pw tpsql "$vfull" "SELECT count(*) FROM big")" "50000"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PGFLIP_PID/status"; }
before=$(rss)
ctl pause >/dev/null
python3 - "$port" <<'PY' >"$T_DIR/flood.out" 2>&1 &
# a TLS client logs in, then sends 200 MB of a Query while pgflip is paused
import base64, hashlib, hmac, os, socket, ssl, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack("!II", 8, 80877103)); assert s.recv(1) == b"S"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
body = struct.pack("!I", 196608) + b"user\0app\0database\0ctls\0\0"
t.sendall(struct.pack("!I", len(body) + 4) + body)
t.settimeout(20)
total = 200 * 1024 * 1024
t.sendall(b"Q" + struct.pack("!I", total + 4))
chunk = b"-" * 65536
sent = 0
try:
    while sent < total:
        sent += t.send(chunk)
except Exception as e:
    pass
print("sent %d" % sent)
PY
flood=$!
sleep 4
after=$(rss)
kill "$flood" 2>/dev/null; wait "$flood" 2>/dev/null
ctl resume >/dev/null
check "a TLS client sending 200 MB while paused adds under 8 MB to RSS (${before} kB -> ${after} kB)" \
	test $((after - before)) -lt 8192

# ---- verify-ca: a client certificate from our CA is required
conf verify-ca
ctl reload >/dev/null
expect_eq "verify-ca: a client certificate from the CA" \
	"$(tpsql "$vfull sslcert=$certs/client.crt sslkey=$certs/client.key")" "1"
expect_match "verify-ca: no client certificate fails" "$(tpsql "$vfull")" "*certificate*"
expect_match "verify-ca: a certificate from another CA fails" \
	"$(tpsql "$vfull sslcert=$certs/other-client.crt sslkey=$certs/other-client.key")" "*unknown ca*"
check "the handshake failure is logged with OpenSSL's reason" grep -q "TLS error: " "$T_DIR/pgflip.log"

# ---- auth_type = cert: the certificate's CN is the user
conf verify-full "auth_type = cert"
ctl reload >/dev/null
expect_eq "cert: CN = user logs in" "$(tpsql "$vfull sslcert=$certs/client.crt sslkey=$certs/client.key")" "1"
expect_match "cert: CN is another user" \
	"$(psql -X -At "host=localhost port=$port dbname=ctls user=postgres $vfull sslcert=$certs/client.crt sslkey=$certs/client.key" -c 'SELECT 1' 2>&1)" \
	"*certificate authentication failed*"

# ---- reload: a broken certificate is refused and the running one kept; a new one is used
conf require
ctl reload >/dev/null
fp1=$(python3 "$auth" --tls --show-cert "$port" ctls app app_pw | sed -n 's/^cert //p')
cp "$certs/server.crt" "$T_DIR/server.crt.good"
echo "not a certificate" >"$certs/server.crt"
out=$(ctl reload 2>&1)
expect_match "reload with a broken certificate file is refused" "$out" "*client_tls_cert_file*"
expect_eq "the running certificate stays in use" \
	"$(python3 "$auth" --tls --show-cert "$port" ctls app app_pw | sed -n 's/^cert //p')" "$fp1"
expect_eq "TLS logins still work after the refused reload" "$(tpsql "$vfull")" "1"
make_server_cert "$certs" || not_ok "make_server_cert"
ctl reload >/dev/null
fp2=$(python3 "$auth" --tls --show-cert "$port" ctls app app_pw | sed -n 's/^cert //p')
check "SIGHUP/reload picks up a new certificate" test -n "$fp2" -a "$fp2" != "$fp1"
kill -HUP "$PGFLIP_PID"
sleep 0.3
expect_eq "TLS logins work with the new certificate" "$(tpsql "$vfull")" "1"

# ---- server_tls_*: pgflip's upstream connections over TLS
pg_ssl_on "$certs" || not_ok "PostgreSQL with TLS"
trap 'pg_ssl_off; t_cleanup' EXIT INT TERM
pgflip_stop
conf disable "server_tls_sslmode = verify-full
server_tls_ca_file = $certs/ca.crt"
sed -i "s/host=127.0.0.1 port=$PG_PORT/host=localhost port=$PG_PORT/" "$T_DIR/pgflip.ini"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
expect_eq "server_tls_sslmode = verify-full: pg_stat_ssl shows the server side encrypted" \
	"$(psql -X -At -h 127.0.0.1 -p "$port" -U app -d ctls -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)" "t"
pgflip_stop
conf disable "server_tls_sslmode = verify-full
server_tls_ca_file = $certs/other-ca.crt"
sed -i "s/host=127.0.0.1 port=$PG_PORT/host=localhost port=$PG_PORT/" "$T_DIR/pgflip.ini"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
expect_match "server_tls_ca_file of another CA: the upstream login fails cleanly" \
	"$(psql -X -At -h 127.0.0.1 -p "$port" -U app -d ctls -c "SELECT 1" 2>&1)" "*certificate verify failed*"
check "pgflip keeps running" kill -0 "$PGFLIP_PID"

# The test certificates of tests/lib/certs.sh, checked by the TLS stack that
# everything else is measured against: PostgreSQL itself. libpq verifies
# the server's certificate (verify-full, by name and by IP), and
# PostgreSQL's `cert` auth takes the client certificate of the CA and
# refuses the one of the other CA. When a client-TLS test of pgflip fails,
# this says whether the fixtures are to blame.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/lib/certs.sh"

command -v openssl >/dev/null || { ok "openssl CLI missing: certificate test skipped # SKIP"; exit 0; }
make_db tls_certs
certs="$T_DIR/certs"
check "make_certs makes the certificates" make_certs "$certs"

# --- the files
modes=$(cd "$certs" && stat -c '%n %a' ca.key server.key client.key other-ca.key other-client.key | tr '\n' ' ')
expect_eq "private keys are 0600" "$modes" \
	"ca.key 600 server.key 600 client.key 600 other-ca.key 600 other-client.key 600 "
if [ "$(id -u)" = 0 ]; then
	expect_eq "as root, the postgres OS user owns them" "$(stat -c %U "$certs/server.key" "$certs/client.key" | sort -u)" postgres
fi
subject() { openssl x509 -noout -subject -nameopt RFC2253 -in "$certs/$1.crt"; }
expect_eq "client certificate CN" "$(subject client)" "subject=CN=app"
expect_eq "other client certificate CN" "$(subject other-client)" "subject=CN=app"
check "server and client certificates verify against ca.crt" \
	openssl verify -CAfile "$certs/ca.crt" "$certs/server.crt" "$certs/client.crt"
check "the other client certificate verifies against other-ca.crt" \
	openssl verify -CAfile "$certs/other-ca.crt" "$certs/other-client.crt"
check "the other client certificate does not verify against ca.crt" \
	sh -c '! openssl verify -CAfile "$1/ca.crt" "$1/other-client.crt"' - "$certs"

sums() { cat "$certs"/*.crt "$certs"/*.key | cksum; }
before=$(sums)
make_certs "$certs"
expect_eq "make_certs again keeps the certificates" "$(sums)" "$before"
(CERT_USER=reporting; make_certs "$certs")
expect_eq "another CERT_USER makes them again" "$(subject client)" "subject=CN=reporting"
make_certs "$certs"
expect_eq "and back" "$(subject client)" "subject=CN=app"
check "make_certs fails without openssl" sh -c '. "$1"; PATH=/nonexistent; ! make_certs "$2/none"' - \
	"$TOP/tests/lib/certs.sh" "$T_DIR"

# --- PostgreSQL with the server certificate, the CA for client certificates
hba="$PG_DIR/data/pg_hba.conf"
cp "$hba" "$T_DIR/pg_hba.conf.orig"
restore() {
	cat "$T_DIR/pg_hba.conf.orig" >"$hba"
	pg_ssl_off
	t_cleanup
}
trap restore EXIT INT TERM
# rewritten in place, so that the file keeps its owner
{ echo "hostssl $T_DB app 127.0.0.1/32 cert"; cat "$T_DIR/pg_hba.conf.orig"; } >"$T_DIR/pg_hba.conf.new"
cat "$T_DIR/pg_hba.conf.new" >"$hba"
pg_ssl_on "$certs" || { not_ok "PostgreSQL serves TLS with the server certificate"; exit 1; }

# tpsql CONNINFO ARGS...: psql to the test cluster over TCP, without a password
tpsql() {
	ci=$1; shift
	PGPASSWORD= psql -X -q -At -v ON_ERROR_STOP=1 "port=$PG_PORT $ci" "$@"
}
postgres_ci="user=postgres password=postgres dbname=postgres"
expect_eq "verify-full to localhost" \
	"$(tpsql "host=localhost sslmode=verify-full sslrootcert=$certs/ca.crt $postgres_ci" \
		-c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)" "t"
expect_eq "verify-full to 127.0.0.1 (IP subjectAltName)" \
	"$(tpsql "host=127.0.0.1 sslmode=verify-full sslrootcert=$certs/ca.crt $postgres_ci" -c "SELECT 1" 2>&1)" "1"
expect_match "verify-ca with the other CA fails" \
	"$(tpsql "host=localhost sslmode=verify-ca sslrootcert=$certs/other-ca.crt $postgres_ci" -c "SELECT 1" 2>&1)" \
	"*certificate verify failed*"

client_ci="host=localhost sslmode=verify-full sslrootcert=$certs/ca.crt user=app dbname=$T_DB"
expect_eq "cert auth with client.crt logs in as app, no password" \
	"$(tpsql "$client_ci sslcert=$certs/client.crt sslkey=$certs/client.key" \
		-c "SELECT current_user || ' ' || client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)" "app /CN=app"
expect_match "cert auth refuses the other CA's client certificate" \
	"$(tpsql "$client_ci sslcert=$certs/other-client.crt sslkey=$certs/other-client.key" -c "SELECT 1" 2>&1)" \
	"*unknown ca*"
expect_match "cert auth refuses a login without a client certificate" \
	"$(tpsql "$client_ci sslcert=$T_DIR/none.crt sslkey=$T_DIR/none.key" -c "SELECT 1" 2>&1)" \
	"*requires a valid client certificate*"

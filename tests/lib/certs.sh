# Test certificates for TLS, made at run time with the openssl CLI, so that
# the repository holds no private key and nothing in it expires. Sourced by
# tests and benchmarks (POSIX sh). Source this file, then:
#   make_certs DIR   makes in DIR (created if missing):
#     ca.crt, ca.key              a CA ("pgflip test CA")
#     server.crt, server.key      CN=localhost, subjectAltName DNS:localhost and
#                                 IP:127.0.0.1, signed by the CA, for serverAuth
#     client.crt, client.key      CN=$CERT_USER, signed by the CA, for clientAuth
#     other-ca.crt, other-ca.key  a second CA that has nothing to do with the first
#     other-client.crt, other-client.key   CN=$CERT_USER, signed by the other CA
#   make_server_cert DIR   a new server.key/server.crt from the same CA (a renewal)
#   Returns 0 when they are there, 1 with a message on stderr when not (no
#   openssl CLI, openssl failed). Quiet when all goes well.
#
# Environment (defaults in brackets):
#   CERT_USER   the CN of both client certificates: the user name that
#               PostgreSQL's `cert` auth and PgBouncer's auth_type = cert see  [app]
#   CERT_KEY    key type: ec (P-256, fast to make and to sign with) or rsa
#               (2048 bits, the common deployment, dearer TLS handshakes)     [ec]
#   CERT_DAYS   validity in days                                             [30]
#
# Idempotent: a DIR made with the same CERT_USER, CERT_KEY and CERT_DAYS
# (recorded in DIR/.params), whose certificates are valid for another hour
# and still verify against their CAs, is kept as it is; otherwise all of it
# is made again (a partial DIR from an interrupted run fails that check).
# Either way the modes are set again: keys 0600, certificates 0644. As root,
# DIR and its files belong to the postgres OS user, which the test clusters
# and PgBouncer run as (tests/lib/pg.sh); the parent of DIR is opened for
# traversal only (o+x), as pg_start does for its cluster, so that they can
# reach DIR. A root client (psql, pgbench, pgflip) reads them anyway.

# One config for every certificate, so that the result does not depend on
# the system's openssl.cnf (OPENSSL_CONF, distribution defaults).
CERTS_CNF='[req]
distinguished_name = dn
[dn]
[ext_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ext_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
[ext_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
'

# certs_openssl DIR ARGS...: openssl ARGS, quiet; its messages on failure
certs_openssl() {
	_co_dir=$1; shift
	openssl "$@" >"$_co_dir/.openssl.out" 2>&1 && return 0
	echo "make_certs: openssl $1 failed in $_co_dir:" >&2
	sed 's/^/  /' "$_co_dir/.openssl.out" >&2
	return 1
}

# certs_newkey: the openssl req arguments of a new key of type CERT_KEY
certs_newkey() {
	case ${CERT_KEY:-ec} in
	ec) echo "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1" ;;
	rsa) echo "-newkey rsa:2048" ;;
	esac
}

# certs_issue DIR NAME CA SUBJECT EXT: NAME.key and NAME.crt, signed by CA
# (DIR/CA.crt and DIR/CA.key), with the extensions of section EXT. The
# serial is random, so that no serial file is kept beside the CA.
certs_issue() {
	certs_openssl "$1" req -new -config "$1/.certs.cnf" $(certs_newkey) -nodes \
		-keyout "$1/$2.key" -subj "$4" -out "$1/$2.csr" &&
		certs_openssl "$1" x509 -req -in "$1/$2.csr" -CA "$1/$3.crt" -CAkey "$1/$3.key" \
			-set_serial "0x$(openssl rand -hex 12)" -days "${CERT_DAYS:-30}" \
			-extfile "$1/.certs.cnf" -extensions "$5" -out "$1/$2.crt" &&
		rm -f "$1/$2.csr"
}

# certs_new_ca DIR NAME SUBJECT: a self-signed CA, NAME.crt and NAME.key
certs_new_ca() {
	certs_openssl "$1" req -x509 -new -config "$1/.certs.cnf" -extensions ext_ca $(certs_newkey) -nodes \
		-keyout "$1/$2.key" -subj "$3" -days "${CERT_DAYS:-30}" -out "$1/$2.crt"
}

# certs_current DIR PARAMS: DIR holds a complete set made with PARAMS that
# is good for another hour
certs_current() {
	[ "$(cat "$1/.params" 2>/dev/null)" = "$2" ] || return 1
	for _cc in ca server client other-ca other-client; do
		[ -s "$1/$_cc.key" ] && openssl x509 -noout -checkend 3600 -in "$1/$_cc.crt" >/dev/null 2>&1 || return 1
	done
	openssl verify -CAfile "$1/ca.crt" "$1/server.crt" "$1/client.crt" >/dev/null 2>&1 &&
		openssl verify -CAfile "$1/other-ca.crt" "$1/other-client.crt" >/dev/null 2>&1
}

make_certs() {
	[ $# -eq 1 ] && [ -n "$1" ] || { echo "make_certs: usage: make_certs DIR" >&2; return 1; }
	command -v openssl >/dev/null 2>&1 || { echo "make_certs: the openssl command is missing (apt-get install openssl)" >&2; return 1; }
	case ${CERT_KEY:-ec} in ec | rsa) ;; *) echo "make_certs: CERT_KEY must be ec or rsa, not '$CERT_KEY'" >&2; return 1 ;; esac
	mkdir -p "$1" || { echo "make_certs: cannot create $1" >&2; return 1; }
	_mc_params="user=${CERT_USER:-app} key=${CERT_KEY:-ec} days=${CERT_DAYS:-30}"
	if ! certs_current "$1" "$_mc_params"; then
		rm -f "$1/.params"
		printf '%s' "$CERTS_CNF" >"$1/.certs.cnf"
		_mc_cn=${CERT_USER:-app}
		certs_new_ca "$1" ca "/CN=pgflip test CA" &&
			certs_issue "$1" server ca "/CN=localhost" ext_server &&
			certs_issue "$1" client ca "/CN=$_mc_cn" ext_client &&
			certs_new_ca "$1" other-ca "/CN=pgflip other test CA" &&
			certs_issue "$1" other-client other-ca "/CN=$_mc_cn" ext_client || return 1
		rm -f "$1/.certs.cnf" "$1/.openssl.out"
		echo "$_mc_params" >"$1/.params"
	fi
	# libpq and PostgreSQL refuse a key file that others can read
	chmod 600 "$1"/*.key && chmod 644 "$1"/*.crt || return 1
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres "$1" && chmod 755 "$1" && chmod o+x "$(dirname "$1")" || return 1
	fi
}

# make_server_cert DIR: a new server.key and server.crt (same names, a new
# key) signed by DIR's CA, as a certificate renewal does: tests of a reload
# that must pick up the new one.
make_server_cert() {
	printf '%s' "$CERTS_CNF" >"$1/.certs.cnf" &&
		certs_issue "$1" server ca "/CN=localhost" ext_server || return 1
	rm -f "$1/.certs.cnf" "$1/.openssl.out"
	chmod 600 "$1/server.key" && chmod 644 "$1/server.crt" || return 1
	[ "$(id -u)" != 0 ] || chown postgres "$1/server.key" "$1/server.crt"
}

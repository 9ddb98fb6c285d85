# Client authentication at pgflip: auth_type trust, md5, scram-sha-256,
# password and hba (with reject and peer), secrets from auth_file (plain,
# md5, a SCRAM verifier made by PostgreSQL), each with a right and a wrong
# secret, an unknown user answered like a wrong password, and psql (libpq)
# as a real client beside tests/lib/pgauth.py (an independent login client
# that shows each step). The upstream login stays the entry's (user=app).
. "$TOP/tests/lib/check.sh"

make_db cauth
auth=$TOP/tests/lib/pgauth.py
# pgauth.py against PostgreSQL itself first: the tester is right
out=$(python3 "$auth" "$PG_PORT" cauth app app_pw "SELECT current_user" 2>&1)
expect_eq "pgauth.py logs in to PostgreSQL with SCRAM" "$out" "auth 10 SCRAM-SHA-256
auth 11
salt $(echo "$out" | sed -n 's/^salt \([^ ]*\) .*/\1/p') 4096
auth 12 verified
auth 0
OK app"

# a SCRAM verifier made by PostgreSQL for "carolpw"
verifier=$(pg_psql -At -c "SET password_encryption = 'scram-sha-256'" \
	-c "DROP ROLE IF EXISTS verifier_src" -c "CREATE ROLE verifier_src PASSWORD 'carolpw'" \
	-c "SELECT rolpassword FROM pg_authid WHERE rolname = 'verifier_src'" | tail -n 1)
bobmd5=md5$(printf '%s' "bobpwbob" | md5sum | cut -d' ' -f1)
cat >"$T_DIR/userlist.txt" <<EOF
; pgflip auth_file, PgBouncer's format
"alice" "alicepw"
"bob" "$bobmd5"
"carol" "$verifier"
"dave" "da""vepw"
"trusty" "x"
EOF

port=$(free_port)
conf() { # AUTH_TYPE [EXTRA]
	write_conf "$T_DIR/pgflip.ini" "$port" "log_level = info
auth_type = $1
auth_file = $T_DIR/userlist.txt
$2"
}
# try USER PASSWORD: what pgauth.py ends with (its last line)
try() { python3 "$auth" "$port" cauth "$1" "$2" "SELECT current_user" 2>&1 | tail -n 1; }
steps() { python3 "$auth" "$port" cauth "$1" "$2" 2>&1 | grep '^auth' | tr '\n' ' '; }
# lpsql USER PASSWORD: psql (libpq) through pgflip
lpsql() { PGPASSWORD=$2 psql -X -At -h 127.0.0.1 -p "$port" -U "$1" -d cauth -c "SELECT current_user" 2>&1; }
fail28p01() { echo "E 28P01 password authentication failed for user \"$1\""; }

# ---- scram-sha-256
conf scram-sha-256
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
expect_eq "scram: plain secret, right password" "$(try alice alicepw)" "OK app"
expect_eq "scram: the exchange pgflip runs" "$(steps alice alicepw)" "auth 10 SCRAM-SHA-256 auth 11 auth 12 verified auth 0 "
expect_eq "scram: plain secret, wrong password" "$(try alice nope)" "$(fail28p01 alice)"
expect_eq "scram: PostgreSQL's verifier, right password" "$(try carol carolpw)" "OK app"
expect_eq "scram: PostgreSQL's verifier, wrong password" "$(try carol alicepw)" "$(fail28p01 carol)"
expect_eq "scram: an md5 secret cannot serve SCRAM (as PostgreSQL)" "$(try bob bobpw)" "$(fail28p01 bob)"
expect_eq "scram: unknown user answered like a wrong password" "$(try mallory x)" "$(fail28p01 mallory)"
expect_eq "scram: unknown user gets the whole exchange" "$(steps mallory x)" "auth 10 SCRAM-SHA-256 auth 11 "
salt1=$(python3 "$auth" "$port" cauth mallory x | sed -n 's/^salt //p')
salt2=$(python3 "$auth" "$port" cauth mallory y | sed -n 's/^salt //p')
salt3=$(python3 "$auth" "$port" cauth eve x | sed -n 's/^salt //p')
expect_eq "scram: an unknown user's made-up salt is stable (cannot be told from a real one)" "$salt1" "$salt2"
check "scram: another unknown user gets another salt" test "$salt1" != "$salt3" -a -n "$salt3"
expect_eq "scram: psql, right password" "$(lpsql alice alicepw)" "app"
expect_match "scram: psql, wrong password" "$(lpsql alice wrong)" "*password authentication failed for user \"alice\"*"
expect_match "scram: a gs2 header with an authzid is a protocol violation" \
	"$(python3 "$auth" --gs2 "n,a=alice," "$port" cauth alice alicepw | tail -n 1)" "E 08P01 *"
expect_match "scram: channel binding claimed without TLS is refused" \
	"$(python3 "$auth" --mech SCRAM-SHA-256-PLUS "$port" cauth alice alicepw 2>&1 | tail -n 1)" "E 08P01 *"
check "the log says why, never the secret" sh -c "grep -q 'authentication failed: no such user in auth_file' '$T_DIR/pgflip.log' && ! grep -q -e alicepw -e carolpw -e '$bobmd5' '$T_DIR/pgflip.log'"

# ---- md5
conf md5
ctl reload >/dev/null
expect_eq "md5: plain secret, right password" "$(try alice alicepw)" "OK app"
expect_eq "md5: the exchange" "$(steps alice alicepw)" "auth 5 auth 0 "
expect_eq "md5: md5 secret, right password" "$(try bob bobpw)" "OK app"
expect_eq "md5: md5 secret, wrong password" "$(try bob alicepw)" "$(fail28p01 bob)"
expect_eq "md5: a SCRAM verifier runs SCRAM instead (as PostgreSQL)" "$(steps carol carolpw)" \
	"auth 10 SCRAM-SHA-256 auth 11 auth 12 verified auth 0 "
expect_eq "md5: unknown user" "$(try mallory x)" "$(fail28p01 mallory)"
expect_eq "md5: psql with an md5 secret" "$(lpsql bob bobpw)" "app"
expect_match "md5: psql, wrong password" "$(lpsql bob wrong)" "*password authentication failed for user \"bob\"*"
expect_eq "md5: a doubled quote in auth_file is one quote" "$(try dave 'da"vepw')" "OK app"

# ---- trust with an auth_file: the user must be listed (as PgBouncer)
conf trust
ctl reload >/dev/null
expect_eq "trust: a listed user logs in without a password" "$(try alice '')" "OK app"
expect_eq "trust: an unlisted user is refused" "$(try mallory '')" "E 28000 no such user in auth_file"

# ---- hba
cat >"$T_DIR/hba.conf" <<EOF
# pgflip auth_hba_file
local   all     all                     peer
host    all     alice   127.0.0.1/32    scram-sha-256
host    all     bob     127.0.0.1/32    md5
host    cauth   dave    127.0.0.1 255.255.255.255 password
host    all     trusty  127.0.0.1/32    trust
host    all     all     127.0.0.1/32    reject
EOF
conf hba "auth_hba_file = $T_DIR/hba.conf"
ctl reload >/dev/null
expect_eq "hba: scram line" "$(steps alice alicepw)" "auth 10 SCRAM-SHA-256 auth 11 auth 12 verified auth 0 "
expect_eq "hba: md5 line" "$(steps bob bobpw)" "auth 5 auth 0 "
expect_eq "hba: password line (cleartext), right" "$(try dave 'da"vepw')" "OK app"
expect_eq "hba: password line, exchange" "$(steps dave 'da"vepw')" "auth 3 auth 0 "
expect_eq "hba: password line, wrong" "$(try dave x)" "$(fail28p01 dave)"
expect_eq "hba: trust line" "$(try trusty '')" "OK app"
expect_match "hba: reject line names the line" "$(try carol carolpw)" "E 28000 auth_hba_file line 7 rejects host 127.0.0.1:*, user carol, database cauth"
# peer over the Unix socket: the OS user must be the user
out=$(psql -X -At -h "$T_DIR" -p "$port" -U root -d cauth -c "SELECT current_user" 2>&1)
if [ "$(id -u)" = 0 ]; then
	expect_eq "hba: peer, OS user = user" "$out" "app"
	expect_match "hba: peer, OS user is not the user" \
		"$(psql -X -At -h "$T_DIR" -p "$port" -U alice -d cauth -c "SELECT 1" 2>&1)" "*peer authentication failed*"
else
	ok "hba: peer tests need root # SKIP"
fi
ok_lines=$(grep -c "authentication failed" "$T_DIR/pgflip.log")
check "every refusal is logged ($ok_lines lines)" test "$ok_lines" -ge 10

# ---- a client that stops in the middle of the exchange is closed by client_login_timeout
conf scram-sha-256 "client_login_timeout = 1"
ctl reload >/dev/null
python3 - "$port" <<'PY' >"$T_DIR/stall.out" 2>&1
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = struct.pack("!I", 196608) + b"user\0alice\0database\0cauth\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
s.settimeout(5)
first = s.recv(100)
start = time.time()
try:
    while s.recv(100):
        pass
    print("closed after %.1f s" % (time.time() - start))
except socket.timeout:
    print("still open after 5 s")
PY
expect_match "an unfinished SCRAM exchange is closed after client_login_timeout" "$(cat "$T_DIR/stall.out")" "closed after [12].*"
check "pgflip keeps running" kill -0 "$PGFLIP_PID"

# SCRAM passthrough: pgflip logs in upstream with the keys a client proved
# to it (login.c), so that auth_file holds no plain password and no
# [databases] entry names a user or a password. Roles with SCRAM passwords;
# auth_file holds their verifiers from pg_authid. A client that logged in
# with SCRAM runs as itself upstream, over TCP, TLS (require, verify-full)
# (verify-full by address and by name, prefer and allow trying the other
# way as libpq) and the Unix socket, in session and transaction mode with several server
# connections; a wrong password never reaches the server; a verifier that
# is not the server's, an md5 or cleartext demand, a server whose SCRAM
# signature is wrong and a server that never answers are clean errors;
# cancel works; after a restart nothing logs in before a client proved
# itself again.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/lib/certs.sh"

make_db pass
auth=$TOP/tests/lib/pgauth.py
hba="$PG_DIR/data/pg_hba.conf"
cp "$hba" "$T_DIR/pg_hba.conf.orig"
certdir="$PG_DIR/tls"
restore() {
	t_cleanup
	cat "$T_DIR/pg_hba.conf.orig" >"$hba"
	pg_ssl_off
	# the roles go, and the database that holds their grants, for the tests after this one
	pg_psql -c "DROP DATABASE IF EXISTS pass WITH (FORCE)" \
		-c "DROP ROLE IF EXISTS pt_alice, pt_bob, pt_carol, pt_resalted, pt_src, pt_md5, pt_cleartext, pt_plain, pt_tls" \
		>/dev/null
}
trap restore EXIT INT TERM

# Roles: SCRAM verifiers (the default password_encryption), and
# pt_resalted, whose auth_file verifier is another one for the same password
# (made for pt_src: another salt). pt_md5's auth_file verifier is
# the SCRAM one it had before its password was stored as md5.
pg_psql <<'SQL' >/dev/null
SET password_encryption = 'scram-sha-256';
DROP ROLE IF EXISTS pt_alice; CREATE ROLE pt_alice LOGIN PASSWORD 'pt_alice-pw';
DROP ROLE IF EXISTS pt_bob; CREATE ROLE pt_bob LOGIN PASSWORD 'pt_bob-pw';
DROP ROLE IF EXISTS pt_carol; CREATE ROLE pt_carol LOGIN PASSWORD 'pt_carol-pw';
DROP ROLE IF EXISTS pt_resalted; CREATE ROLE pt_resalted LOGIN PASSWORD 'same-pw';
DROP ROLE IF EXISTS pt_src; CREATE ROLE pt_src PASSWORD 'same-pw';
DROP ROLE IF EXISTS pt_md5; CREATE ROLE pt_md5 LOGIN PASSWORD 'md5-pw';
DROP ROLE IF EXISTS pt_cleartext; CREATE ROLE pt_cleartext LOGIN PASSWORD 'cleartext-pw';
DROP ROLE IF EXISTS pt_plain; CREATE ROLE pt_plain LOGIN PASSWORD 'plain-pw';
DROP ROLE IF EXISTS pt_tls; CREATE ROLE pt_tls LOGIN PASSWORD 'tls-pw';
GRANT CONNECT ON DATABASE pass TO pt_alice, pt_bob, pt_carol, pt_resalted, pt_md5, pt_cleartext, pt_plain, pt_tls;
SQL
verifier() { pg_psql -At -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$1'"; }
cat >"$T_DIR/userlist.txt" <<EOF
"pt_alice" "$(verifier pt_alice)"
"pt_bob" "$(verifier pt_bob)"
"pt_carol" "$(verifier pt_carol)"
"pt_resalted" "$(verifier pt_src)"
"pt_md5" "$(verifier pt_md5)"
"pt_cleartext" "$(verifier pt_cleartext)"
"pt_plain" "$(verifier pt_plain)"
"pt_tls" "$(verifier pt_tls)"
EOF
pg_psql -c "SET password_encryption = 'md5'" -c "ALTER ROLE pt_md5 PASSWORD 'md5-pw'" >/dev/null
{
	echo "local pass pt_alice scram-sha-256"
	echo "host all pt_md5 127.0.0.1/32 md5"
	echo "host all pt_cleartext 127.0.0.1/32 password"
	echo "hostssl all pt_plain 127.0.0.1/32 reject"
	echo "hostnossl all pt_tls 127.0.0.1/32 reject"
	cat "$T_DIR/pg_hba.conf.orig"
} >"$T_DIR/pg_hba.conf.new"
cat "$T_DIR/pg_hba.conf.new" >"$hba"
pg_psql -c "SELECT pg_reload_conf()" >/dev/null
tls=1
command -v openssl >/dev/null && make_certs "$certdir" && pg_ssl_on "$certdir" || tls=""

# Fake servers: "silent" accepts and never answers; "forger" runs a SCRAM
# exchange and signs its final message with a key it does not have.
python3 - "$T_DIR/fake.ports" <<'PY' >"$T_DIR/fake.log" 2>&1 &
import base64, os, socket, struct, sys, threading
def listener():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); return s
silent, forger = listener(), listener()
open(sys.argv[1], "w").write("%d %d\n" % (silent.getsockname()[1], forger.getsockname()[1]))
held = []
def hold():
    while True:
        held.append(silent.accept()[0])
def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d: raise EOFError()
        b += d
    return b
def packet(c):  # untyped: startup packets
    n = struct.unpack("!I", recv_exact(c, 4))[0]
    return recv_exact(c, n - 4)
def msg(c):
    t = recv_exact(c, 1); n = struct.unpack("!I", recv_exact(c, 4))[0]
    return t, recv_exact(c, n - 4)
def auth(c, code, data=b""):
    c.sendall(b"R" + struct.pack("!II", 8 + len(data), code) + data)
def forge(c):
    try:
        body = packet(c)
        if struct.unpack("!I", body[:4])[0] == 80877103:  # SSLRequest
            c.sendall(b"N"); body = packet(c)
        auth(c, 10, b"SCRAM-SHA-256\0\0")
        _, body = msg(c)
        first = body[body.index(b"\0") + 5:].decode()
        nonce = first.split("r=", 1)[1]
        salt = base64.b64encode(os.urandom(16)).decode()
        auth(c, 11, ("r=%sforged,s=%s,i=4096" % (nonce, salt)).encode())
        msg(c)
        auth(c, 12, b"v=" + base64.b64encode(os.urandom(32)))
        auth(c, 0)
        c.recv(100)
    except Exception:
        pass
    c.close()
threading.Thread(target=hold, daemon=True).start()
while True:
    conn = forger.accept()[0]
    threading.Thread(target=forge, args=(conn,), daemon=True).start()
PY
fake_pid=$!
T_PIDS="$T_PIDS $fake_pid"
i=0; while [ ! -s "$T_DIR/fake.ports" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
read -r silent_port forger_port <"$T_DIR/fake.ports"

port=$(free_port)
writeconf() { # EXTRA_PGFLIP_LINES
	cat >"$T_DIR/pgflip.ini" <<CONF
[pgflip]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $T_DIR
admin_socket = $T_DIR/admin.sock
logfile = $T_DIR/pgflip.log
log_level = debug
auth_type = scram-sha-256
auth_file = $T_DIR/userlist.txt
server_login_retry = 0.1
server_connect_timeout = 1.5
$1

[databases]
pass = host=127.0.0.1 port=$PG_PORT dbname=pass sslmode=disable
passtx = host=127.0.0.1 port=$PG_PORT dbname=pass sslmode=disable pool_mode=transaction pool_size=3
passtls = host=127.0.0.1 port=$PG_PORT dbname=pass sslmode=require
passfull = host=127.0.0.1 port=$PG_PORT dbname=pass sslmode=verify-full sslrootcert=$certdir/ca.crt
passwrongca = host=127.0.0.1 port=$PG_PORT dbname=pass sslmode=verify-full sslrootcert=$certdir/other-ca.crt
passname = host=localhost hostaddr=127.0.0.1 port=$PG_PORT dbname=pass sslmode=verify-full sslrootcert=$certdir/ca.crt
passbadname = host=pgflip.invalid hostaddr=127.0.0.1 port=$PG_PORT dbname=pass sslmode=verify-full sslrootcert=$certdir/ca.crt
passprefer = host=127.0.0.1 port=$PG_PORT dbname=pass sslmode=prefer
passallow = host=127.0.0.1 port=$PG_PORT dbname=pass sslmode=allow
passunix = host=$PG_SOCK port=$PG_PORT dbname=pass
passforced = host=127.0.0.1 port=$PG_PORT dbname=pass user=app sslmode=disable
silent = host=127.0.0.1 port=$silent_port dbname=pass sslmode=disable
forger = host=127.0.0.1 port=$forger_port dbname=pass sslmode=disable

[routes]
default = public
CONF
}
writeconf ""
check "no plain password anywhere in pgflip's config" sh -c \
	"! grep -q -e pt_alice-pw -e pt_bob-pw -e pt_carol-pw -e same-pw -e md5-pw -e cleartext-pw -e password= '$T_DIR/pgflip.ini' '$T_DIR/userlist.txt'"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }

# q DB USER PASSWORD SQL: psql through pgflip (TCP), tuples only
q() { PGPASSWORD=$3 psql -X -At -h 127.0.0.1 -p "$port" -U "$2" -d "$1" -c "$4" 2>&1; }
try() { python3 "$auth" "$port" "$1" "$2" "$3" "SELECT current_user" 2>&1 | tail -n 1; }
logins() { grep -c "S-[0-9]* $1 pid=[0-9]*: login done.*(SCRAM passthrough)" "$T_DIR/pgflip.log"; }

# ---- over TCP, session mode
expect_eq "a SCRAM client runs as itself upstream" "$(q pass pt_alice pt_alice-pw "SELECT current_user, session_user")" "pt_alice|pt_alice"
check "the server login was pgflip's own, with the client's keys" grep -q "pass/pt_alice pid=[0-9]*: login done.*(SCRAM passthrough)" "$T_DIR/pgflip.log"
expect_eq "another user, another pool, as itself" "$(try pass pt_bob pt_bob-pw)" "OK pt_bob"
expect_eq "the keys stay with the pool: a second client, a reused server" "$(q pass pt_alice pt_alice-pw "SELECT current_user")" "pt_alice"

# ---- a wrong password never reaches the server
before=$(grep -c 'user "pt_carol"' "$PG_DIR/server.log")
expect_eq "wrong password: refused by pgflip" "$(try pass pt_carol nope)" 'E 28P01 password authentication failed for user "pt_carol"'
expect_match "psql with a wrong password: the same" "$(q pass pt_carol wrong "SELECT 1")" '*password authentication failed for user "pt_carol"*'
check "no server login was tried for it" sh -c "! grep -q 'S-[0-9]* pass/pt_carol' '$T_DIR/pgflip.log'"
expect_eq "PostgreSQL saw no login of pt_carol" "$(grep -c 'user "pt_carol"' "$PG_DIR/server.log")" "$before"
expect_eq "pt_carol with her password: logs in" "$(try pass pt_carol pt_carol-pw)" "OK pt_carol"

# ---- several server connections at once, session and transaction mode
# sleepers N DB SECONDS: N clients sleeping at once through DB; the
# number of pt_alice's backends running pg_sleep a moment later
sleepers() {
	pids=""
	for i in $(seq "$1"); do
		q "$2" pt_alice pt_alice-pw "SELECT pg_sleep($3)" >/dev/null &
		pids="$pids $!"
	done
	sleep 0.8
	pg_psql -At -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'pt_alice' AND query LIKE 'SELECT pg_sleep%' AND state = 'active'"
	wait $pids # not a bare wait: pgflip and the fake servers are children too
}
n=$(sleepers 3 pass 1.5)
expect_eq "session mode: three clients, three servers logged in with the keys" "$n" "3"
echo "SELECT current_user;" >"$T_DIR/who.sql"
out=$(PGPASSWORD=pt_alice-pw pgbench -n -t 40 -c 6 -f "$T_DIR/who.sql" -h 127.0.0.1 -p "$port" -U pt_alice passtx 2>&1)
expect_match "transaction mode: 6 clients, 240 transactions" "$out" "*processed: 240/240*"
n=$(sleepers 4 passtx 1.5)
expect_eq "transaction mode: the pool's 3 servers all busy" "$n" "3"
check "transaction mode: several own logins ($(logins passtx/pt_alice))" test "$(logins passtx/pt_alice)" -ge 3
expect_eq "transaction mode: each transaction as the client" \
	"$(q passtx pt_alice pt_alice-pw "SELECT current_user")" "pt_alice"

# ---- over the Unix socket (a local scram-sha-256 line)
expect_eq "Unix socket: as itself" "$(try passunix pt_alice pt_alice-pw)" "OK pt_alice"
check "Unix socket: pgflip's own login" test "$(logins passunix/pt_alice)" -ge 1

# ---- over TLS to the server
if [ -n "$tls" ]; then
	expect_eq "sslmode=require: TLS upstream (pg_stat_ssl)" \
		"$(q passtls pt_alice pt_alice-pw "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")" "t"
	check "the TLS login was pgflip's own" grep -q "passtls/pt_alice pid=[0-9]*: login done.*(TLS) (SCRAM passthrough)" "$T_DIR/pgflip.log"
	expect_eq "sslmode=verify-full against the test CA (IP in subjectAltName)" \
		"$(q passfull pt_alice pt_alice-pw "SELECT ssl::text || ' ' || current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()")" "true pt_alice"
	expect_match "verify-full against another CA: a clean error" "$(q passwrongca pt_alice pt_alice-pw "SELECT 1")" \
		"*certificate verify failed*"
	expect_eq "verify-full with a host name (DNS in subjectAltName)" \
		"$(q passname pt_alice pt_alice-pw "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")" "t"
	expect_match "verify-full with a name the certificate does not have: a clean error" \
		"$(q passbadname pt_alice pt_alice-pw "SELECT 1")" "*certificate verify failed: hostname mismatch*"
	ssl_of() { q "$1" "$2" "$3" "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"; }
	expect_eq "sslmode=prefer: TLS when the server takes it" "$(ssl_of passprefer pt_alice pt_alice-pw)" "t"
	expect_eq "sslmode=prefer: refused over TLS (hostssl reject), tried again in plain text" \
		"$(ssl_of passprefer pt_plain plain-pw)" "f"
	expect_eq "sslmode=allow: plain text first" "$(ssl_of passallow pt_alice pt_alice-pw)" "f"
	expect_eq "sslmode=allow: refused in plain text (hostnossl reject), tried again with TLS" \
		"$(ssl_of passallow pt_tls tls-pw)" "t"
	out=$(dd if=/dev/zero bs=1000 count=5000 2>/dev/null | tr '\0' x | fold -w 1000 |
		PGPASSWORD=pt_alice-pw psql -X -q -At -h 127.0.0.1 -p "$port" -U pt_alice -d passtls \
			-c "CREATE TEMP TABLE t (v text)" -c "COPY t FROM STDIN" -c "SELECT count(*), sum(length(v)) FROM t" 2>&1)
	expect_eq "5 MB through COPY over the own TLS link" "$out" "5000|5000000"
else
	ok "TLS upstream needs the openssl CLI # SKIP"
fi

# ---- a verifier that is not the server's, methods the keys cannot answer
expect_match "auth_file verifier with another salt: clean error with the reason" "$(q pass pt_resalted same-pw "SELECT 1")" \
	'*password authentication failed for user "pt_resalted"*SCRAM passthrough*auth_file*'
expect_match "the server asks for md5: clean error" "$(q pass pt_md5 md5-pw "SELECT 1")" \
	'*the server asks for md5 authentication; pgflip has only the SCRAM keys of user "pt_md5"*'
expect_match "the server asks for a cleartext password: clean error" "$(q pass pt_cleartext cleartext-pw "SELECT 1")" \
	'*the server asks for password (cleartext) authentication*'
expect_match "a server whose SCRAM signature is wrong is not trusted" "$(q forger pt_alice pt_alice-pw "SELECT 1")" \
	"*SCRAM answer does not check out*"
expect_match "the keys of one user never log in another (entry user=app: libpq, no password)" \
	"$(q passforced pt_alice pt_alice-pw "SELECT 1")" "*password*"
check "passforced did not use pt_alice's keys" sh -c "! grep -q 'passforced/app.*SCRAM passthrough' '$T_DIR/pgflip.log'"

# ---- server_connect_timeout against a server that never answers
start=$(date +%s%N)
out=$(q silent pt_alice pt_alice-pw "SELECT 1")
took=$((($(date +%s%N) - start) / 1000000))
expect_match "a server that never answers: server_connect_timeout" "$out" "*server_connect_timeout: no login within 1500 ms*"
check "... after about 1.5 s (${took} ms)" test "$took" -ge 1400 -a "$took" -lt 5000

# ---- cancel: psql's Ctrl-C sends pgflip a CancelRequest; pgflip sends its own to the backend
start=$(date +%s%N)
PGPASSWORD=pt_alice-pw psql -X -At -h 127.0.0.1 -p "$port" -U pt_alice -d pass -c "SELECT pg_sleep(10)" >"$T_DIR/cancel.out" 2>&1 &
bg=$!
sleep 1
kill -INT $bg
wait $bg
took=$((($(date +%s%N) - start) / 1000000))
expect_match "cancel: pg_sleep(10) is cancelled" "$(cat "$T_DIR/cancel.out")" "*canceling statement due to user request*"
check "cancel: soon after the CancelRequest (${took} ms in all)" test "$took" -lt 3000
check "cancel: pgflip forwarded it" grep -q "cancel request forwarded to backend" "$T_DIR/pgflip.log"
PGPASSWORD=pt_alice-pw psql -X -At -h 127.0.0.1 -p "$port" -U pt_alice -d passtx -c "SELECT pg_sleep(10)" >"$T_DIR/cancel2.out" 2>&1 &
bg=$!
sleep 1
kill -INT $bg
wait $bg
expect_match "cancel in transaction mode" "$(cat "$T_DIR/cancel2.out")" "*canceling statement due to user request*"
expect_eq "after the cancels the pools serve again" "$(q pass pt_alice pt_alice-pw "SELECT 'again'")" "again"
check "pgflip keeps running" kill -0 "$PGFLIP_PID"

# ---- restart: the keys are in memory only
pgflip_stop
writeconf "min_pool_size = 2"
echo "---- restart" >>"$T_DIR/pgflip.log"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts again"; exit 1; }
sleep 1
check "after a restart no server logs in by itself (min_pool_size = 2)" sh -c "! sed -n '/^---- restart\$/,\$p' '$T_DIR/pgflip.log' | grep -q 'login started'"
expect_eq "after a restart a wrong password is still refused" "$(try pass pt_alice nope)" 'E 28P01 password authentication failed for user "pt_alice"'
check "... and no server login was tried" sh -c "! sed -n '/^---- restart\$/,\$p' '$T_DIR/pgflip.log' | grep -q 'login started'"
expect_eq "the first client that proves itself brings the keys back" "$(try pass pt_alice pt_alice-pw)" "OK pt_alice"
check "its pool logs in with them" sh -c "sed -n '/^---- restart\$/,\$p' '$T_DIR/pgflip.log' | grep -q 'pass/pt_alice pid=[0-9]*: login done.*(SCRAM passthrough)'"
sleep 0.5
expect_eq "min_pool_size keeps 2 servers once the keys are there" \
	"$(pg_psql -At -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'pt_alice' AND datname = 'pass'")" "2"
check "the log never holds a secret" sh -c "! grep -q -e pt_alice-pw -e pt_bob-pw -e same-pw '$T_DIR/pgflip.log'"
check "pgflip keeps running" kill -0 "$PGFLIP_PID"

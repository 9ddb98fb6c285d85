# Throwaway PostgreSQL clusters for tests, benchmarks and `make run`.
# Source this file, then:
#   pg_start DIR PORT   initdb DIR (if new) and start it on 127.0.0.1:PORT and a Unix
#                       socket in DIR; TCP logins use scram-sha-256, local ones trust.
#                       Sets PG_DIR, PG_PORT, PG_SOCK. Superuser: postgres / postgres;
#                       an ordinary role app / app_pw owns nothing in particular.
#   pg_stop DIR         fast shutdown
#   pg_psql ARGS...     psql as postgres over the Unix socket, quiet, stop on error
#   pg_ssl_on CERTDIR   ssl = on with CERTDIR's server.crt, server.key and ca.crt (the
#                       CA of client certificates; tests/lib/certs.sh makes all three),
#                       by ALTER SYSTEM and a reload; returns once a TLS login works
#   pg_ssl_off          ALTER SYSTEM RESET of the same, and a reload
#   free_port           prints a free loopback TCP port
# The server refuses to run as root: as root, every server command runs as the
# `postgres` OS user, which owns DIR.

PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

pg_as_owner() {
	if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + $$ % 20000))
}

pg_start() {
	PG_DIR=$1 PG_PORT=$2 PG_SOCK=$1
	mkdir -p "$PG_DIR"
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$PG_DIR"
		# the postgres user must reach DIR: open the parent for traversal only
		chmod o+x "$(dirname "$PG_DIR")"
	fi
	if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
		echo postgres > "$PG_DIR/.pw" && chmod 600 "$PG_DIR/.pw"
		[ "$(id -u)" = 0 ] && chown postgres "$PG_DIR/.pw"
		pg_as_owner "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U postgres -A trust \
			--auth-host=scram-sha-256 --pwfile="$PG_DIR/.pw" -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
			{ cat "$PG_DIR/initdb.log" >&2; return 1; }
		cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
max_connections = 200
max_prepared_transactions = 4
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
log_min_messages = warning
CONF
	fi
	pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -o "-p $PG_PORT" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null ||
		{ tail -n 20 "$PG_DIR/server.log" >&2; return 1; }
	pg_psql -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='app') THEN CREATE ROLE app LOGIN PASSWORD 'app_pw'; END IF; END\$\$" >/dev/null
}

pg_stop() {
	[ -f "$1/data/postmaster.pid" ] || return 0
	pg_as_owner "$PG_BINDIR/pg_ctl" -D "$1/data" -m fast -w -t 60 stop >/dev/null 2>&1
}

pg_psql() {
	psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres "$@"
}

pg_ssl_on() {
	pg_psql -c "ALTER SYSTEM SET ssl = on" -c "ALTER SYSTEM SET ssl_cert_file = '$1/server.crt'" \
		-c "ALTER SYSTEM SET ssl_key_file = '$1/server.key'" -c "ALTER SYSTEM SET ssl_ca_file = '$1/ca.crt'" \
		-c "SELECT pg_reload_conf()" >/dev/null || return 1
	# The postmaster rereads its config when it gets to the SIGHUP, and keeps
	# TLS off if it cannot load the files: wait for a login over TLS (over
	# TCP, where postgres logs in with its password, see pg_start).
	_ps_i=0
	until PGPASSWORD=postgres psql -X -q -At -c "SELECT 1" \
		"host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=require" >/dev/null 2>&1; do
		[ $_ps_i -lt 50 ] || { echo "pg_ssl_on: no TLS login after 5 s; see $PG_DIR/server.log" >&2; return 1; }
		sleep 0.1; _ps_i=$((_ps_i + 1))
	done
}

pg_ssl_off() {
	pg_psql -c "ALTER SYSTEM RESET ssl" -c "ALTER SYSTEM RESET ssl_cert_file" -c "ALTER SYSTEM RESET ssl_key_file" \
		-c "ALTER SYSTEM RESET ssl_ca_file" -c "SELECT pg_reload_conf()" >/dev/null
}

#!/bin/sh
# `make run`: a throwaway PostgreSQL cluster under ./run, a demo database with
# two version schemas, and pgflip in the foreground on 127.0.0.1:6432.
# Ctrl-C stops pgflip and the cluster. `make run` again reuses the cluster.
set -e
top=$(pwd)
PGFLIP=${PGFLIP:-build/pgflip}
RUN="$top/run"
PORT=${PGFLIP_PORT:-6432}
. "$top/tests/lib/pg.sh"
mkdir -p "$RUN"
PG_PORT=${DEMO_PG_PORT:-$(free_port)}
pg_start "$RUN/pg" "$PG_PORT"
trap 'pg_stop "$RUN/pg"' EXIT INT TERM

if ! pg_psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'demo'" | grep -q 1; then
	pg_psql -d postgres -c "CREATE DATABASE demo"
	pg_psql -d demo <<'SQL'
CREATE TABLE public.users (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text
);
INSERT INTO public.users (name, email) VALUES
    ('Alice', 'alice@example.com'), ('Bob', 'bob@example.com');
-- version 1 of the application sees id and name
CREATE SCHEMA public_001_init;
CREATE VIEW public_001_init.users WITH (security_invoker = true) AS
    SELECT id, name FROM public.users;
-- version 2 also sees email
CREATE SCHEMA public_002_add_email;
CREATE VIEW public_002_add_email.users WITH (security_invoker = true) AS
    SELECT id, name, email FROM public.users;
SQL
fi

cat >"$RUN/pgflip.ini" <<CONF
; written by \`make run\` (tests/lib/demo.sh)
[pgflip]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir = $RUN
admin_socket = $RUN/pgflip.admin
pool_mode = session
log_level = info

[databases]
demo = host=$RUN/pg port=$PG_PORT dbname=demo user=postgres

[routes]
default = public_001_init
app.v2-* = public_002_add_email
CONF

cat <<MSG

pgflip is serving the demo database on 127.0.0.1:$PORT (upstream: PostgreSQL on port $PG_PORT).

  psql -h 127.0.0.1 -p $PORT demo                      # default route: public_001_init
  psql -h 127.0.0.1 -p $PORT demo -c 'SELECT * FROM users'
  PGAPPNAME=v2-web psql -h 127.0.0.1 -p $PORT demo     # app pin: public_002_add_email

Flip every client to version 2 (takes effect at each client's next transaction):
  $PGFLIP ctl -s $RUN/pgflip.admin route default public_002_add_email
  $PGFLIP ctl -s $RUN/pgflip.admin status
Roll back:
  $PGFLIP ctl -s $RUN/pgflip.admin route default public_001_init

Ctrl-C stops pgflip and the cluster.

MSG
"$top/$PGFLIP" serve -c "$RUN/pgflip.ini"

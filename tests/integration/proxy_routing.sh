# Routing through pgflip: each client sees its own version schema, a flip
# reaches idle clients at their next transaction and never an open one, a
# missing schema is a clean 3F000, both query protocols work.
. "$TOP/tests/lib/check.sh"

make_db routing
apsql <<'SQL'
CREATE SCHEMA v1;
CREATE SCHEMA v2;
CREATE TABLE public.users (id int PRIMARY KEY, name text, full_name text);
INSERT INTO public.users VALUES (1, 'ann', 'Ann Smith');
CREATE VIEW v1.users AS SELECT id, name FROM public.users;
CREATE VIEW v2.users AS SELECT id, full_name FROM public.users;
SQL
port=$(free_port)
write_conf "$T_DIR/pgflip.ini" "$port" "" "app.v2-* = v2
user.postgres = v1"
sed -i 's/^default = public/default = v1/' "$T_DIR/pgflip.ini"
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
ok "pgflip starts"

expect_eq "default route: SHOW search_path" "$(fpsql "$port" -c 'SHOW search_path')" "v1"
expect_eq "default route: v1 columns" "$(fpsql "$port" -c 'SELECT * FROM users')" "1|ann"
expect_eq "app pin: SHOW search_path" "$(PGAPPNAME=v2-web fpsql "$port" -c 'SHOW search_path')" "v2"
expect_eq "app pin: v2 columns" "$(PGAPPNAME=v2-web fpsql "$port" -c 'SELECT * FROM users')" "1|Ann Smith"
expect_eq "current_setting equals the schema name exactly" \
	"$(PGAPPNAME=v2-web fpsql "$port" -c "SELECT current_setting('search_path') = 'v2'")" "t"
expect_eq "unix socket listener" \
	"$(psql -X -At -h "$T_DIR" -p "$port" -d "$T_DB" -c 'SHOW search_path')" "v1"

# two clients at once, each on its own version
PGAPPNAME=v2-worker fpsql "$port" -c "SELECT pg_sleep(0.5); SELECT current_setting('search_path')" \
	>"$T_DIR/v2.out" 2>&1 &
p2=$!
expect_eq "concurrent v1 client" "$(fpsql "$port" -c "SELECT pg_sleep(0.2)" -c 'SHOW search_path' | tail -n 1)" "v1"
wait $p2
expect_eq "concurrent v2 client" "$(tail -n 1 "$T_DIR/v2.out")" "v2"

# extended query protocol (pgbench -M extended / prepared) keeps the route
cat >"$T_DIR/check_v2.sql" <<'SQL'
SELECT 1 / (current_setting('search_path') = 'v2')::int;
SELECT full_name FROM users WHERE id = 1;
SQL
for mode in extended prepared; do
	out=$(PGAPPNAME=v2-bench pgbench -n -M $mode -t 200 -c 2 -f "$T_DIR/check_v2.sql" -h 127.0.0.1 -p "$port" "$T_DB" 2>&1)
	case "$out" in *"number of failed transactions: 0 "*"processed: 400/400"* | *"processed: 400/400"*"failed transactions: 0 "*) ok "pgbench -M $mode through pgflip keeps route v2" ;;
	*) not_ok "pgbench -M $mode through pgflip keeps route v2"; echo "$out" | sed 's/^/    # /' ;; esac
done

# a flip reaches an idle client at its next transaction, never inside one
cat >"$T_DIR/flip.sql" <<SQL
SHOW search_path;
\! "$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" route default v2 >/dev/null
SHOW search_path;
BEGIN;
SHOW search_path;
\! "$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" route default v1 >/dev/null
SHOW search_path;
SELECT * FROM users;
COMMIT;
SHOW search_path;
SELECT * FROM users;
SQL
got=$(fpsql "$port" -f "$T_DIR/flip.sql" | tr '\n' ' ')
expect_eq "flip: idle client follows, open transaction keeps its route" "$got" \
	"v1 v2 v2 v2 1|Ann Smith v1 1|ann "

# a route to a schema that does not exist: ErrorResponse 3F000 naming it
ctl route default v9 >/dev/null
out=$(psql -X -At -h 127.0.0.1 -p "$port" -d "$T_DB" -v VERBOSITY=verbose -c 'SELECT 1' 2>&1)
expect_match "missing route schema gives 3F000 naming it" "$out" '*3F000*v9*'
out=$(PGAPPNAME=v2-x fpsql "$port" -c 'SHOW search_path' 2>&1)
expect_eq "other routes keep working meanwhile" "$out" "v2"
ctl route default v1 >/dev/null
cat >"$T_DIR/missing.sql" <<SQL
\! "$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" route default v9 >/dev/null
SELECT 'not run';
\! "$TOP/$PGFLIP" ctl -s "$T_DIR/admin.sock" route default v1 >/dev/null
SELECT current_setting('search_path');
SQL
out=$(psql -X -At -h 127.0.0.1 -p "$port" -d "$T_DB" -f "$T_DIR/missing.sql" 2>&1 | tr '\n' ' ')
expect_match "connected client: error for its request, then works after the fix" "$out" '*does not exist*v1 '
case "$out" in *"not run"*) not_ok "the request under a missing route did not run" ;; *) ok "the request under a missing route did not run" ;; esac

# a client's own SET search_path lasts its transaction at most
got=$(fpsql "$port" -c "SET search_path = public" -c "SELECT current_setting('search_path')" | tail -n 1)
expect_eq "own SET search_path is replaced at the next transaction" "$got" "v1"

# zero extra work on the hot path: once the server has the route, nothing is
# injected (the debug log shows each swallowed ReadyForQuery)
ctl route default v1 >/dev/null
fpsql "$port" -c "SELECT 1" >/dev/null
sleep 0.3 # that session's reset (after psql left) is not counted below
: >"$T_DIR/pgflip.log"
route_sets() { ctl --json pools | grep -o '"route_sets":[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }'; }
sets0=$(route_sets)
fpsql "$port" -c "SELECT 1" -c "SELECT 2" -c "SELECT 3" -c "SELECT 4" >/dev/null
sets1=$(route_sets)
n=$(grep -c "ReadyForQuery (5 bytes) swallowed" "$T_DIR/pgflip.log")
# one reset (DISCARD ALL) when the session ends, then one injection for the
# next session's first transaction: never one per transaction
check "route already set: nothing injected per transaction ($n swallowed replies for 4 transactions)" test "$n" -le 2
check "pools: route_sets counts that one route change, not one per transaction ($sets0 -> $sets1)" \
	test "$((sets1 - sets0))" -le 1
ctl route default public >/dev/null   # a route no idle server has yet
fpsql "$port" -c "SELECT 1" >/dev/null
sets2=$(route_sets)
ctl route default v1 >/dev/null
check "pools: route_sets counts a route change ($sets1 -> $sets2)" test "$sets2" -gt "$sets1"

# pins by user: postgres is pinned to v1 even when the default moves
ctl route default v2 >/dev/null
expect_eq "user pin wins over default" "$(psql -X -At -h 127.0.0.1 -p "$port" -U postgres -d "$T_DB" -c 'SHOW search_path')" "v1"
expect_eq "app pin wins over user pin" "$(PGAPPNAME=v2-z psql -X -At -h 127.0.0.1 -p "$port" -U postgres -d "$T_DB" -c 'SHOW search_path')" "v2"
ctl route addr 127.0.0.0/8 v1 >/dev/null
expect_eq "addr pin" "$(fpsql "$port" -c 'SHOW search_path')" "v1"
ctl unroute addr 127.0.0.0/8 >/dev/null
expect_eq "unroute addr" "$(fpsql "$port" -c 'SHOW search_path')" "v2"

# SIGHUP reload: the file's routes come back when the file changed
sed -i 's/^default = v1/default = public/' "$T_DIR/pgflip.ini"
kill -HUP "$PGFLIP_PID"; sleep 0.3
expect_eq "SIGHUP reloads routes from the changed file" "$(fpsql "$port" -c 'SHOW search_path')" "public"
ctl route default v2 >/dev/null
kill -HUP "$PGFLIP_PID"; sleep 0.3
expect_eq "SIGHUP with unchanged [routes] keeps a ctl flip" "$(fpsql "$port" -c 'SHOW search_path')" "v2"

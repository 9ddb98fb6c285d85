# Who may use the admin socket (SO_PEERCRED): root and pgflip's own uid
# everything, admin_users everything, stats_users the read-only commands,
# anyone else nothing; changes are logged with the uid and name. Also
# unix_socket_mode and unix_socket_group of the client socket. Needs root
# (to run ctl as other OS users with runuser).
. "$TOP/tests/lib/check.sh"

[ "$(id -u)" = 0 ] || { ok "admin access tests need root # SKIP"; exit 0; }
id nobody >/dev/null 2>&1 && id postgres >/dev/null 2>&1 || { ok "needs the nobody and postgres users # SKIP"; exit 0; }
make_db adminacc
# a place other OS users can reach: the binary and the sockets
pub=$(mktemp -d /tmp/pgflip-admin.XXXXXX)
chmod 755 "$pub"
cp "$TOP/$PGFLIP" "$pub/pgflip" && chmod 755 "$pub/pgflip"
cleanup() { t_cleanup; rm -rf "$pub"; }
trap cleanup EXIT INT TERM
as() { # USER COMMAND...: pgflip ctl as another OS user
	u=$1; shift
	(cd / && runuser -u "$u" -- "$pub/pgflip" ctl -s "$pub/admin.sock" "$@" 2>&1)
}
port=$(free_port)
conf() { # EXTRA lines
	write_conf "$T_DIR/pgflip.ini" "$port" "log_level = info
$1"
	sed -i "s|^admin_socket = .*|admin_socket = $pub/admin.sock|; s|^unix_socket_dir = .*|unix_socket_dir = $pub|" \
		"$T_DIR/pgflip.ini"
}
start() { pgflip_start_sock "$T_DIR/pgflip.ini"; }
pgflip_start_sock() {
	"$TOP/$PGFLIP" serve -c "$1" >>"$T_DIR/pgflip.log" 2>&1 &
	PGFLIP_PID=$!
	T_PIDS="$T_PIDS $PGFLIP_PID"
	i=0
	until "$pub/pgflip" ctl -s "$pub/admin.sock" status >/dev/null 2>&1; do
		[ $i -lt 100 ] || return 1
		sleep 0.1; i=$((i + 1))
	done
}

# ---- defaults: the admin socket is 0600, only root and pgflip's uid
conf ""
start || { not_ok "pgflip starts"; exit 1; }
expect_eq "admin socket is 0600 by default" "$(stat -c %a "$pub/admin.sock")" "600"
expect_eq "client socket has unix_socket_mode's default 0777" "$(stat -c %a "$pub/.s.PGSQL.$port")" "777"
check "root may send commands" "$pub/pgflip" ctl -s "$pub/admin.sock" status
expect_match "another OS user cannot even connect" "$(as nobody status)" "*cannot connect*Permission denied*"
pgflip_stop

# ---- stats_users and admin_users naming other OS users
conf "stats_users = nobody
admin_users = postgres
unix_socket_mode = 0770
unix_socket_group = postgres"
start || { not_ok "pgflip starts"; exit 1; }
expect_eq "admin socket opens to listed OS users (0666; the peer check decides)" \
	"$(stat -c %a "$pub/admin.sock")" "666"
expect_match "stats_users may read (status)" "$(as nobody status)" "*routes.default: public*"
expect_match "stats_users may read (clients)" "$(as nobody clients)" "clients:*"
expect_match "stats_users may not change routes" "$(as nobody route default v9)" "*permission denied: route*"
expect_match "stats_users may not pause" "$(as nobody pause)" "*permission denied: pause*"
pg_psql -d adminacc -c "CREATE SCHEMA v2" >/dev/null
check "admin_users may change routes" sh -c "cd / && runuser -u postgres -- '$pub/pgflip' ctl -s '$pub/admin.sock' route default v2"
expect_match "admin_users' route change went through" "$("$pub/pgflip" ctl -s "$pub/admin.sock" routes)" "*default: v2*"
check "the refusal is logged with the uid and name" \
	grep -q "admin: permission denied for uid $(id -u nobody) (nobody): route" "$T_DIR/pgflip.log"
check "the change is logged with the uid and name" \
	grep -q "admin: uid $(id -u postgres) (postgres) runs: route default v2" "$T_DIR/pgflip.log"
expect_match "a user in neither list gets permission denied" "$(as daemon status)" "*permission denied: status*"
expect_eq "unix_socket_mode = 0770" "$(stat -c %a "$pub/.s.PGSQL.$port")" "770"
expect_eq "unix_socket_group = postgres" "$(stat -c %G "$pub/.s.PGSQL.$port")" "postgres"
expect_eq "a client of that group logs in over the socket" \
	"$(cd / && runuser -u postgres -- psql -X -At -h "$pub" -p "$port" -U app -d adminacc -c "SELECT 1" 2>&1)" "1"
expect_match "a client outside the group cannot" \
	"$(cd / && runuser -u nobody -- psql -X -At -h "$pub" -p "$port" -U app -d adminacc -c "SELECT 1" 2>&1)" "*socket*Permission denied*"
pgflip_stop

conf "unix_socket_group = no-such-group-here"
"$TOP/$PGFLIP" serve -c "$T_DIR/pgflip.ini" >"$T_DIR/bad.out" 2>&1
expect_match "an unknown unix_socket_group stops the start with a clear error" "$(cat "$T_DIR/bad.out")" \
	"*unix_socket_group: no such group: no-such-group-here*"

#!/bin/sh
# Running pgflip as a service (issue 13): the systemd unit passes
# `systemd-analyze verify`; make install puts the binary, the man pages and
# the unit under DESTDIR; sd_notify says READY=1 once pgflip accepts,
# RELOADING=1 then READY=1 around SIGHUP and STOPPING=1 at SIGTERM (to a
# NOTIFY_SOCKET this test listens on); SIGHUP reopens a log file that
# logrotate renamed; log_format = json gives one JSON object a line;
# syslog = 1 sends the lines to /dev/log (a fake one, in a mount namespace
# of its own).
. "$TOP/tests/lib/check.sh"

make_db psvc
port=$(free_port)

# ---- the unit ----
if command -v systemd-analyze >/dev/null 2>&1; then
	# ExecStart must name an executable: the built one; MANPATH lets verify find man:pgflip(1)
	sed "s|/usr/local/bin/pgflip|$TOP/$PGFLIP|" "$TOP/conf/pgflip.service" >"$T_DIR/pgflip.service"
	out=$(MANPATH="$TOP/$BUILD/man" systemd-analyze verify "$T_DIR/pgflip.service" 2>&1); rc=$?
	expect_eq "systemd-analyze verify conf/pgflip.service: exit 0, no warning" "$rc:$out" "0:"
	# the check can fail: a misspelt Type is a warning, a missing binary an error
	sed 's/^Type=notify/Type=notifyy/' "$T_DIR/pgflip.service" >"$T_DIR/bad.service"
	out=$(MANPATH="$TOP/$BUILD/man" systemd-analyze verify "$T_DIR/bad.service" 2>&1)
	expect_match "verify sees a bad Type" "$out" "*Failed to parse service type*"
	sed "s|$TOP/$PGFLIP|/nonexistent/pgflip|" "$T_DIR/pgflip.service" >"$T_DIR/bad.service"
	MANPATH="$TOP/$BUILD/man" systemd-analyze verify "$T_DIR/bad.service" >/dev/null 2>&1
	check "verify refuses a unit whose binary is missing" test $? -ne 0
else
	ok "# SKIP systemd-analyze is not installed"
fi
expect_eq "the unit is Type=notify" "$(grep -c '^Type=notify$' "$TOP/conf/pgflip.service")" 1
expect_eq "ExecReload sends SIGHUP" "$(sed -n 's/^ExecReload=//p' "$TOP/conf/pgflip.service")" '/bin/kill -HUP $MAINPID'
nofile=$(sed -n 's/^LimitNOFILE=//p' "$TOP/conf/pgflip.service")
check "LimitNOFILE ($nofile) covers max_client_conn = 4000 (2 per client + pools)" test "$nofile" -ge 8016

# ---- make install ----
dest=$T_DIR/dest
(cd "$TOP" && make -s install DESTDIR="$dest" PREFIX=/usr BUILD="$BUILD") >"$T_DIR/install.out" 2>&1
check "make install DESTDIR=... PREFIX=/usr" test $? -eq 0
check "installs the binary" test -x "$dest/usr/bin/pgflip"
check "installs pgflip(1) and pgflip.ini(5)" test -s "$dest/usr/share/man/man1/pgflip.1" -a -s "$dest/usr/share/man/man5/pgflip.ini.5"
expect_eq "installs the unit, ExecStart under PREFIX" \
	"$(sed -n 's/^ExecStart=//p' "$dest/usr/lib/systemd/system/pgflip.service")" "/usr/bin/pgflip serve -c /etc/pgflip/pgflip.ini"
expect_match "man finds the installed page" "$(MANPATH="$dest/usr/share/man" man -P cat pgflip.ini 2>/dev/null)" "*metrics_listen*"

# ---- sd_notify, SIGHUP and the log file ----
# a NOTIFY_SOCKET: each datagram appended to notify.log, one line each ("\n" as "|")
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    d = s.recv(4096)
    with open(sys.argv[2], "a") as f:
        f.write(d.decode().replace("\n", "|") + "\n")
' "$T_DIR/notify.sock" "$T_DIR/notify.log" &
listener=$!
i=0; while [ ! -S "$T_DIR/notify.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
write_conf "$T_DIR/pgflip.ini" "$port" "log_level = info"
sed -i "s|^logfile = .*|logfile = $T_DIR/rot.log|" "$T_DIR/pgflip.ini"
NOTIFY_SOCKET=$T_DIR/notify.sock
export NOTIFY_SOCKET
pgflip_start "$T_DIR/pgflip.ini" || { not_ok "pgflip starts"; exit 1; }
unset NOTIFY_SOCKET
# wait_line FILE PATTERN: up to 5 s for a line of FILE matching the grep PATTERN
wait_line() {
	i=0; while [ $i -lt 50 ]; do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; i=$((i + 1)); done; return 1
}
check "READY=1 once accepting" wait_line "$T_DIR/notify.log" '^READY=1'
expect_eq "one READY=1 before any reload" "$(grep -c '^READY=1' "$T_DIR/notify.log")" 1
expect_eq "a client is served after READY=1" "$(fpsql "$port" -c "SELECT 'ready'")" ready

mv "$T_DIR/rot.log" "$T_DIR/rot.log.1" # what logrotate does
sed -i 's/^log_level = info/log_level = debug/' "$T_DIR/pgflip.ini"
kill -HUP "$PGFLIP_PID"
check "SIGHUP: RELOADING=1 with MONOTONIC_USEC" wait_line "$T_DIR/notify.log" '^RELOADING=1|MONOTONIC_USEC=[0-9]*$'
i=0; while [ "$(grep -c '^READY=1' "$T_DIR/notify.log")" -lt 2 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
expect_eq "notifications in order: READY, RELOADING, READY" \
	"$(cut -c1-11 "$T_DIR/notify.log" | sed 's/|.*//' | tr '\n' ' ')" "READY=1 RELOADING=1 READY=1 "
check "SIGHUP: the log file is open again under its name" wait_line "$T_DIR/rot.log" 'SIGHUP: log reopened'
fpsql "$port" -c "SELECT 1" >/dev/null
check "the new file gets the next lines (a login, at the reloaded log_level = debug)" \
	wait_line "$T_DIR/rot.log" 'DEBUG C-.*state'
check "the renamed file got nothing after the rename" sh -c "! grep -q 'log reopened' '$T_DIR/rot.log.1' && grep -q 'started' '$T_DIR/rot.log.1'"
pgflip_stop
check "SIGTERM: STOPPING=1" wait_line "$T_DIR/notify.log" '^STOPPING=1'
kill "$listener" 2>/dev/null

# ---- log_format = json ----
write_conf "$T_DIR/json.ini" "$port" "log_level = info
log_format = json"
sed -i "s|^logfile = .*|logfile = $T_DIR/json.log|" "$T_DIR/json.ini"
pgflip_start "$T_DIR/json.ini" || { not_ok "pgflip starts with log_format = json"; exit 1; }
PGAPPNAME='quote" back\slash' fpsql "$port" -c "SELECT 1" >/dev/null
fpsql "$port" -c "SELECT 1/0" >/dev/null 2>&1
sleep 0.2
out=$(python3 -c '
import json, sys
n = 0; login = None; bad = []
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        bad.append(line); continue
    n += 1
    if not all(k in o for k in ("time", "level", "pid", "message")):
        bad.append(line)
    if o.get("client") and "login" in o.get("message", "") and "quote" in o.get("message", ""):
        login = o
print(n, len(bad), bad[:1])
if login:
    print(login["client"][:2], login["database"], login["user"], login["addr"].startswith("127.0.0.1:"),
          "quote\" back\\slash" in login["message"], login["time"].endswith("Z"), login["level"])
' "$T_DIR/json.log")
n=$(echo "$out" | head -1 | cut -d' ' -f1)
check "json: the log has lines ($n)" test "$n" -ge 5
expect_eq "json: every line parses, with time, level, pid, message" "$(echo "$out" | head -1 | cut -d' ' -f2-)" "0 []"
expect_eq "json: a client's login line has its fields" "$(echo "$out" | sed -n 2p)" "C- psvc $(id -un) True True True LOG"
# a reload to text: the next lines are text again
sed -i 's/^log_format = json/log_format = text/' "$T_DIR/json.ini"
kill -HUP "$PGFLIP_PID"
check "reload to log_format = text: text lines follow" wait_line "$T_DIR/json.log" '^20.*LOG config reloaded'
pgflip_stop

# ---- syslog = 1, to a fake /dev/log in a mount namespace of its own ----
write_conf "$T_DIR/syslog.ini" "$port" "log_level = info
syslog = 1
syslog_ident = pgflip-test
syslog_facility = local3"
if unshare -m true 2>/dev/null; then
	mkdir -p "$T_DIR/fakedev"
	unshare -m sh -c '
		set -e
		d=$1
		for n in null zero random urandom; do touch "$d/$n"; mount --bind "/dev/$n" "$d/$n"; done
		python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(8)
with open(sys.argv[2], \"w\") as f:
    try:
        while True:
            f.write(s.recv(4096).decode(errors=\"replace\") + chr(10)); f.flush()
    except socket.timeout:
        pass
" "$d/log" "$d/../syslog.out" &
		i=0; while [ ! -S "$d/log" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		mount --rbind "$d" /dev
		"$2" serve -c "$3" >/dev/null 2>&1 &
		pid=$!
		sleep 1
		psql -X -q -At -h 127.0.0.1 -p "$4" -d psvc -c "SELECT 1" >/dev/null
		kill -TERM $pid; wait $pid || true
		wait
	' sh "$T_DIR/fakedev" "$TOP/$PGFLIP" "$T_DIR/syslog.ini" "$port" >"$T_DIR/unshare.out" 2>&1
	# local3 = 19, info = 6: <158>
	expect_match "syslog: pgflip's lines reach /dev/log with ident and facility local3.info" \
		"$(grep -m1 'started' "$T_DIR/syslog.out" 2>/dev/null)" "<158>*pgflip-test\[[0-9]*\]: LOG pgflip * started*"
	expect_match "syslog: a client's login line" "$(grep -m1 'C-.*login:' "$T_DIR/syslog.out" 2>/dev/null)" "<158>*LOG C-* psvc/$(id -un): login*"
else
	ok "# SKIP unshare -m is not allowed here: syslog not tested"
fi

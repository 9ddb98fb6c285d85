# Protocol coverage through pgflip, in session and in transaction mode:
# pipelining, COPY both ways, notices, notifications, empty queries, errors
# inside transactions, and bounded memory for a slow reader of a big result.
. "$TOP/tests/lib/check.sh"
# under AddressSanitizer, freed memory waits in a quarantine (256 MB by
# default) before reuse; keep it small so that the memory bound below still
# measures pgflip's buffering
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"

make_db proto
apsql -c "CREATE TABLE t (id int, v text)"
for mode in session transaction; do
	port=$(free_port)
	write_conf "$T_DIR/$mode.ini" "$port" "pool_mode = $mode
default_pool_size = 2
log_level = info"
	sed -i "s|/admin\.sock|/$mode.sock|" "$T_DIR/$mode.ini"
	pgflip_start_sock() { "$TOP/$PGFLIP" serve -c "$1" >>"$T_DIR/pgflip.log" 2>&1 & PGFLIP_PID=$!; T_PIDS="$T_PIDS $PGFLIP_PID"; sleep 0.4; }
	pgflip_start_sock "$T_DIR/$mode.ini"

	# pipelining: several Execute/Sync before reading results
	cat >"$T_DIR/pipe.sql" <<'SQL'
\startpipeline
SELECT 1;
SELECT 2;
SELECT 3;
\endpipeline
SQL
	out=$(pgbench -n -M extended -c 2 -t 200 -f "$T_DIR/pipe.sql" -h 127.0.0.1 -p "$port" "$T_DB" 2>&1)
	expect_match "$mode: pipelined extended queries (pgbench \\startpipeline)" "$out" "*processed: 400/400*failed transactions: 0 *"

	# COPY FROM STDIN and COPY TO STDOUT
	seq 1 20000 | sed 's/$/\tvalue/' | fpsql "$port" -c "COPY t FROM STDIN"
	expect_eq "$mode: COPY FROM STDIN" "$(fpsql "$port" -c 'SELECT count(*) FROM t')" "20000"
	expect_eq "$mode: COPY TO STDOUT" "$(fpsql "$port" -c 'COPY t TO STDOUT' | wc -l)" "20000"
	fpsql "$port" -c "TRUNCATE t"

	# NoticeResponse
	out=$(fpsql "$port" -c "DO \$\$BEGIN RAISE NOTICE 'hello from the server'; END\$\$" 2>&1)
	expect_match "$mode: NoticeResponse reaches the client" "$out" "*NOTICE:  hello from the server*"

	# empty query: EmptyQueryResponse then ReadyForQuery
	out=$(python3 - "$port" "$T_DB" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = struct.pack("!I", 196608) + b"user\0app\0database\0" + sys.argv[2].encode() + b"\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
def until_z():
    data = b""
    while b"Z\0\0\0\x05" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data
until_z()
s.sendall(b"Q\0\0\0\x05\0")
d = until_z()
print("I" if d[:1] == b"I" else repr(d[:20]))
PY
)
	expect_eq "$mode: empty query gets EmptyQueryResponse" "$out" "I"

	# an error inside a transaction (status E), then ROLLBACK
	out=$(psql -X -At -h 127.0.0.1 -p "$port" -d "$T_DB" -c "BEGIN" -c "SELECT 1/0" -c "SELECT 'in failed tx'" \
		-c "ROLLBACK" -c "SELECT 'after rollback'" 2>&1 | tr '\n' '|')
	expect_match "$mode: error in a transaction, then ROLLBACK" "$out" \
		"*division by zero*current transaction is aborted*after rollback|"

	# a slow reader of a big result: pgflip's memory stays bounded (backpressure)
	rss0=$(awk '/VmRSS/ {print $2}' /proc/$PGFLIP_PID/status)
	fpsql "$port" -c "COPY (SELECT repeat('x', 1000) FROM generate_series(1, 300000)) TO STDOUT" |
		(sleep 2; wc -c) >"$T_DIR/big.out"
	hwm=$(awk '/VmHWM/ {print $2}' /proc/$PGFLIP_PID/status)
	expect_eq "$mode: 300 MB result streamed to a slow reader" "$(cat "$T_DIR/big.out")" "300300000"
	check "$mode: pgflip peak RSS stays small (${hwm} kB, ${rss0} kB before)" test "$hwm" -lt 60000
	kill "$PGFLIP_PID"; wait "$PGFLIP_PID" 2>/dev/null
done

# LISTEN/NOTIFY in session mode
port=$(free_port)
write_conf "$T_DIR/listen.ini" "$port" "log_level = info"
pgflip_start "$T_DIR/listen.ini"
out=$(fpsql "$port" -c "LISTEN chan" -c "SELECT pg_notify('chan', 'payload-1')" -c "SELECT 1" 2>&1)
expect_match "session: LISTEN receives a NotificationResponse" "$out" '*Asynchronous notification "chan" with payload "payload-1"*'

#!/bin/sh
# bench/backfill.sh: backfill throughput and sync-trigger write overhead of
# `pgflip migrate`, beside PostgreSQL doing the same work directly.
#
#   sh bench/backfill.sh            sizes 100000 1000000 10000000
#   SIZES="100000 1000000" WORKERS="1 2 4" sh bench/backfill.sh
#
# For each size N, on a table t(id bigint primary key, name text, n int):
#   bare      UPDATE t SET x = upper(name) on a plain copy (one statement)
#   backfill  pgflip migrate start of add_column x, up: upper(name)
#             (keyset batches of --backfill-batch-size through the trigger),
#             once for each --backfill-workers count of WORKERS ("1 2")
# and, at the smallest size, the trigger overhead: UPDATE t SET n = n + 1 with
# the migration active (the sync trigger computes up() per row) against the
# same UPDATE after rollback (no trigger).
# Targets: backfill >= 0.5 x bare rows/s on one connection, >= 1.0 x with
# workers (issue 11); rows/s at the largest size >= 0.8 x
# at the smallest; trigger overhead <= 1.5 x.
# Runs against a throwaway cluster (tests/lib/pg.sh) unless PGHOST is set.
set -e
cd "$(dirname "$0")/.."
TOP=$(pwd)
SIZES=${SIZES:-"100000 1000000 10000000"}
BATCH=${BATCH:-10000}
WORKERS=${WORKERS:-"1 2"}
PGFLIP=${PGFLIP:-build/pgflip}
[ -x "$PGFLIP" ] || make -s "$PGFLIP"

if [ -z "$PGHOST" ]; then
	. tests/lib/pg.sh
	work=$(mktemp -d /tmp/pgflip-bench.XXXXXX)
	trap 'pg_stop "$work/pg"; rm -rf "$work"' EXIT INT TERM
	pg_start "$work/pg" "$(free_port)" || exit 1
	export PGHOST="$PG_SOCK" PGPORT="$PG_PORT" PGUSER=postgres
fi
export PGDATABASE=pgflip_bench PGOPTIONS="-c client_min_messages=warning"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS pgflip_bench" -c "CREATE DATABASE pgflip_bench"

q() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# timed SQL: prints milliseconds
tsql() { a=$(now_ms); q "$1" >/dev/null; echo $(($(now_ms) - a)); }
best_update() { # TABLE: best of 3 timed full-table UPDATEs, each after VACUUM FULL
	best=""
	for _i in 1 2 3; do
		q "VACUUM FULL $1" >/dev/null
		_t=$(tsql "UPDATE $1 SET n = n + 1")
		[ -z "$best" ] || [ "$_t" -lt "$best" ] && best=$_t
	done
	echo "$best"
}
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n / (ms > 0 ? ms : 1) * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

mkdir -p "${work:-/tmp}/m"
M="${work:-/tmp}/m"
cat >"$M/02_upper.yaml" <<'EOF'
operations:
  - add_column:
      table: t
      up: upper(name)
      column: {name: x, type: text, nullable: true}
EOF

make_table() { # NAME N
	q "DROP TABLE IF EXISTS $1; CREATE TABLE $1 (id bigint PRIMARY KEY, name text NOT NULL, n int NOT NULL DEFAULT 0);
	   INSERT INTO $1 (id, name) SELECT g, 'name-' || g FROM generate_series(1, $2) g" >/dev/null
	q "VACUUM ANALYZE $1" >/dev/null
}

printf '%-10s %8s %14s %16s %8s %18s\n' rows workers "bare rows/s" "backfill rows/s" ratio "whole start (ms)"
first_rate=""
for n in $SIZES; do
	make_table bare "$n"
	q "ALTER TABLE bare ADD COLUMN x text" >/dev/null
	bare_ms=$(tsql "UPDATE bare SET x = upper(name)")
	q "DROP TABLE bare" >/dev/null
	for w in $WORKERS; do
		q "DROP SCHEMA IF EXISTS pgflip CASCADE; DROP SCHEMA IF EXISTS public_02_upper CASCADE" >/dev/null
		make_table t "$n"
		a=$(now_ms)
		"$PGFLIP" migrate --no-progress --backfill-batch-size "$BATCH" --backfill-workers "$w" start "$M/02_upper.yaml" \
			2>"$M/start.log"
		cmd_ms=$(($(now_ms) - a))
		# the backfill phase as the executor timed it (the command adds connect,
		# state, catalog reads and DDL: a fixed cost that dominates at small sizes)
		bf_ms=$(sed -n 's/.*backfilled [0-9]* rows of [^ ]* in \([0-9]*\) ms.*/\1/p' "$M/start.log")
		[ -n "$bf_ms" ] || { cat "$M/start.log"; exit 1; }
		left=$(q "SELECT count(*) FROM t WHERE _pgflip_new_x IS NULL")
		[ "$left" = 0 ] || { echo "backfill left $left rows"; exit 1; }
		br=$(rate "$n" "$bare_ms"); fr=$(rate "$n" "$bf_ms")
		printf '%-10s %8s %14s %16s %8s %18s\n' "$n" "$w" "$br" "$fr" "$(ratio "$fr" "$br")" "$cmd_ms"
		if [ "$w" = "${WORKERS%% *}" ]; then
			[ -n "$first_rate" ] || { first_rate=$fr; first_n=$n; }
			last_rate=$fr; last_n=$n
		fi
		if [ "$n" = "$first_n" ] && [ -z "$trig" ]; then
			# trigger overhead on the same rows: each timed UPDATE runs on a
			# freshly compacted table (VACUUM FULL), best of 3
			with_ms=$(best_update t)
			"$PGFLIP" migrate --quiet rollback
			without_ms=$(best_update t)
			trig="$(ratio "$with_ms" "$without_ms") (UPDATE of $n rows: $with_ms ms with the sync trigger, $without_ms ms without)"
		else
			"$PGFLIP" migrate --quiet rollback
		fi
		q "DROP TABLE t; DROP SCHEMA IF EXISTS pgflip CASCADE" >/dev/null
	done
done
echo
echo "scaling: backfill rows/s at $last_n / at $first_n = $(ratio "$last_rate" "$first_rate") (target >= 0.8)"
echo "trigger overhead: $trig (target <= 1.5)"
echo "backfill vs bare UPDATE: see the ratio column (target >= 0.5 on one connection, >= 1.0 with workers)"

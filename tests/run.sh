#!/bin/sh
# Runs every test and prints one summary line: "N passed, N failed".
# Unit tests are cmocka binaries (TAP output); integration tests are
# tests/integration/*.sh scripts that print TAP lines ("ok - name",
# "not ok - name") against one throwaway PostgreSQL cluster started here.
# A test program that dies without reporting counts as one failure.
# TESTS=pattern runs only the files whose name contains the pattern.
# Between the two, a fuzz smoke runs each libFuzzer harness briefly.
BUILD=${BUILD:-build}
PGFLIP=${PGFLIP:-$BUILD/pgflip}
export BUILD PGFLIP
top=$(pwd)
export TOP="$top"
work=$(mktemp -d /tmp/pgflip-test.XXXXXX)
export TEST_WORK="$work"
passed=0 failed=0 failures=""

tally() { # $1 = name, $2 = exit status, $3 = output file
	p=$(grep -c '^ok ' "$3") f=$(grep -c '^not ok ' "$3")
	if [ "$2" != 0 ] && [ "$f" = 0 ]; then
		f=1; echo "not ok - $1 exited with status $2" >>"$3"
	fi
	passed=$((passed + p)) failed=$((failed + f))
	if [ "$f" != 0 ]; then
		failures="$failures $1"
		sed -e "s|^|  [$1] |" "$3"
	else
		echo "  $1: $p passed"
	fi
}

selected() { [ -z "$TESTS" ] || case "$1" in *"$TESTS"*) return 0 ;; *) return 1 ;; esac; }

echo "== unit tests"
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t"); selected "$name" || continue
	CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$work/$name.out" 2>&1
	tally "$name" $? "$work/$name.out"
done

# Each libFuzzer harness (tests/fuzz/fuzz_NAME.c, built by make fuzz-build)
# for FUZZ_SMOKE_SECONDS on its seeds: one TAP line per harness. A crash, a
# harness that did not build or a clang without libFuzzer fails it.
if [ -z "$UNIT_ONLY" ]; then
	names=""
	for f in tests/fuzz/fuzz_*.c; do
		[ -f "$f" ] || continue
		name=$(basename "$f" .c); selected "$name" || continue
		names="$names ${name#fuzz_}"
	done
	if [ -n "$names" ]; then
		echo "== fuzz smoke (${FUZZ_SMOKE_SECONDS:-3} s each)"
		FUZZ_DIR=${FUZZ_DIR:-build/fuzz} sh tests/fuzz/run.sh --tap "${FUZZ_SMOKE_SECONDS:-3}" "$work/fuzz" $names \
			>"$work/fuzz_smoke.out" 2>&1
		tally fuzz_smoke $? "$work/fuzz_smoke.out"
		grep -q '^not ok' "$work/fuzz_smoke.out" || sed 's/^/    /' "$work/fuzz_smoke.out"
	fi
fi

if [ -z "$UNIT_ONLY" ]; then
	echo "== integration tests (PostgreSQL cluster in $work/pg)${VALGRIND:+, pgflip under valgrind (VALGRIND=$VALGRIND)}"
	. tests/lib/pg.sh
	cleanup() { pg_stop "$work/pg"; }
	trap cleanup EXIT INT TERM
	if pg_start "$work/pg" "$(free_port)"; then
		export PG_DIR PG_PORT PG_SOCK PG_BINDIR
		for t in tests/integration/*.sh; do
			[ -f "$t" ] || continue
			name=$(basename "$t" .sh); selected "$name" || continue
			mkdir -p "$work/$name"
			T_DIR="$work/$name" timeout 600 sh "$t" >"$work/$name.out" 2>&1
			tally "$name" $? "$work/$name.out"
		done
	else
		failed=$((failed + 1)); failures="$failures postgres-start"
	fi
fi

[ -n "$failures" ] && echo "failed:$failures"
[ -z "$KEEP" ] || echo "test output kept in $work"
echo "$passed passed, $failed failed"
[ -z "$KEEP" ] && [ "$failed" = 0 ] && { pg_stop "$work/pg" 2>/dev/null; rm -rf "$work"; }
[ "$failed" = 0 ]

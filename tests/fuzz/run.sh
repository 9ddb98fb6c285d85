#!/bin/sh
# Runs libFuzzer harnesses (build/fuzz/fuzz_NAME, built by `make fuzz-build`)
# and prints one line per harness.
#
#   sh tests/fuzz/run.sh [--tap] SECONDS WORKDIR NAME...
#
# Each harness runs for SECONDS (-max_total_time) on a working corpus
# WORKDIR/corpus/NAME, which starts as a copy of the seeds in
# tests/fuzz/corpus/NAME/ and keeps what the runs add (so the repository is
# never written). Crash, leak, timeout and out-of-memory inputs are kept as
# WORKDIR/fuzz_NAME-crash-<sha1> (and so on); the whole output is in
# WORKDIR/fuzz_NAME.log.
#
# Plain mode (make fuzz) prints seconds run, executions, coverage gained and
# whether a crash was found, and exits 1 when any harness found one. --tap
# (tests/run.sh's fuzz smoke) prints "ok - fuzz_NAME: N runs in S s" or
# "not ok - ..." instead. A harness that was not built, or a clang that cannot
# link -fsanitize=fuzzer, is a failure in both modes. FUZZ_FLAGS adds libFuzzer
# flags (FUZZ_FLAGS=-use_value_profile=1, say).
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
FUZZ_CC=${FUZZ_CC:-clang}
tap=
[ "$1" = --tap ] && { tap=1; shift; }
seconds=$1 work=$2
shift 2
mkdir -p "$work" || exit 1

have_libfuzzer() {
	printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' |
		"$FUZZ_CC" -x c -fsanitize=fuzzer -o "$work/.probe" - >/dev/null 2>&1
}

# fz_stat NAME LOG: the value of libFuzzer's final "stat::NAME: V" line
fz_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }
# cov WHAT LOG: the cov: figure of the first INITED (WHAT=INITED) or last status line
cov() {
	if [ "$1" = INITED ]; then
		sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' "$2" | head -n 1
	else
		sed -n 's/.* cov: \([0-9]*\).*/\1/p' "$2" | tail -n 1
	fi
}

report() { # STATUS(ok|fail) NAME TEXT
	if [ -n "$tap" ]; then
		[ "$1" = ok ] && echo "ok - $2: $3" || echo "not ok - $2: $3"
	else
		echo "$2: $3"
	fi
}

failed=0
if ! have_libfuzzer; then
	for name in "$@"; do
		report fail "fuzz_$name" "$FUZZ_CC cannot link -fsanitize=fuzzer (make deps installs clang and libFuzzer)"
	done
	exit 1
fi

for name in "$@"; do
	bin=$FUZZ_DIR/fuzz_$name
	if [ ! -x "$bin" ]; then
		report fail "fuzz_$name" "not built ($bin missing: see make fuzz-build)"
		failed=1; continue
	fi
	corpus=$work/corpus/$name
	mkdir -p "$corpus"
	[ -d "tests/fuzz/corpus/$name" ] && cp -n "tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null
	log=$work/fuzz_$name.log
	rm -f "$work/fuzz_$name"-crash-* "$work/fuzz_$name"-leak-* "$work/fuzz_$name"-timeout-* \
		"$work/fuzz_$name"-oom-* "$work/fuzz_$name"-slow-unit-*
	# -timeout: one input running 10 s is a hang; -rss_limit_mb: half of what
	# libFuzzer allows by default, as two harnesses may share the machine.
	start=$(date +%s)
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
		-artifact_prefix="$work/fuzz_$name-" $FUZZ_FLAGS "$corpus" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	runs=$(fz_stat number_of_executed_units "$log")
	runs=${runs:-0}
	found=$(ls "$work/fuzz_$name"-crash-* "$work/fuzz_$name"-leak-* "$work/fuzz_$name"-timeout-* \
		"$work/fuzz_$name"-oom-* 2>/dev/null | head -n 1)
	if [ "$rc" != 0 ] || [ -n "$found" ]; then
		failed=1
		what=$(grep -m 1 -E '^(==[0-9]+==ERROR|SUMMARY|.*check failed|.*runtime error)' "$log")
		report fail "fuzz_$name" "CRASH after $took s, $runs runs (exit $rc): ${found:-no artifact} ($log${what:+: $what})"
		continue
	fi
	if [ -n "$tap" ]; then
		report ok "fuzz_$name" "$runs runs in $took s"
	else
		c0=$(cov INITED "$log") c1=$(cov last "$log")
		new=$(fz_stat new_units_added "$log")
		report ok "fuzz_$name" "$took s, $runs runs ($(fz_stat average_exec_per_sec "$log")/s), cov ${c0:-?} -> ${c1:-?} edges, ${new:-0} new inputs, corpus $(ls "$corpus" | wc -l) files, no crash"
	fi
done
exit $failed

#!/bin/sh
# The man pages and the program agree (issue 13): every option that
# `pgflip --help`, each command's and each migrate command's --help name is
# in pgflip(1) and the reverse, every command and admin command has its
# entry, every config key the parser accepts is in pgflip.ini(5) and the
# reverse (tests/lib/mancheck.py finds them all, so a new subcommand, option
# or key without its documentation fails here). The pages render without
# groff warnings. Then the check is shown to fail on pages with a gap.
. "$TOP/tests/lib/check.sh"

check_docs() { python3 "$TOP/tests/lib/mancheck.py" "$TOP/$PGFLIP" "$1" "$TOP/conf/conf.c" "$TOP/conf/pgflip.ini"; }

check_docs "$TOP/doc"

for page in man1/pgflip.1 man5/pgflip.ini.5; do
	out=$(MANWIDTH=80 man --warnings -l "$TOP/$BUILD/man/$page" 2>&1 >"$T_DIR/rendered"); rc=$?
	expect_eq "$page renders without warnings" "$rc:$out" "0:"
	check "$page has its NAME section" grep -q '^NAME' "$T_DIR/rendered"
done
check "pgflip --help points at the man pages" sh -c "'$TOP/$PGFLIP' --help | grep -q 'pgflip(1), pgflip.ini(5)'"

# the check can fail: an option, a key and an admin command taken out, an option made up
mkdir -p "$T_DIR/doc"
sed -e 's/\\--json//g' -e 's/^\*\*clients\*\*, \*\*pools\*\*/**pools**/' -e 's/\\--force/\\--forse/g' \
	"$TOP/doc/pgflip.1.md" >"$T_DIR/doc/pgflip.1.md"
sed -e '/^\*\*syslog_ident\*\*/,/^$/d' "$TOP/doc/pgflip.ini.5.md" >"$T_DIR/doc/pgflip.ini.5.md"
check_docs "$T_DIR/doc" >"$T_DIR/gaps.out"
check "pages with gaps fail the check" test $? -ne 0
check "... naming the undocumented option --json" check "... naming --force, no longer documented" grep -q 'not in doc/pgflip.1.md:.*--force' "$T_DIR/gaps.out"
check "... naming the made-up --forse" grep -q 'in no --help output: --forse' "$T_DIR/gaps.out"
check "... naming the admin command clients" grep -q 'missing: clients' "$T_DIR/gaps.out"
check "... naming the config key syslog_ident" grep -q 'not documented:.* syslog_ident\|not documented: syslog_ident' "$T_DIR/gaps.out"

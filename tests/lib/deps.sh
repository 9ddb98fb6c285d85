#!/bin/sh
# Installs the Debian packages pgflip needs to build, test and benchmark.
# As root it runs apt-get; otherwise it prints the command to run.
# clang and libclang-rt-dev (libFuzzer's runtime, only a Recommends of clang
# in Debian 12) build the fuzz harnesses; valgrind serves make VALGRIND=1 test.
pkgs="build-essential pkg-config libevent-dev libssl-dev libpq-dev libinih-dev
libjansson-dev libyaml-dev libcmocka-dev postgresql-15 postgresql-client-15 pgbouncer
clang libclang-rt-dev valgrind"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null || {
		echo "deps: apt-get install failed for:$missing" >&2; exit 1; }
else
	echo "deps: missing packages; run as root:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi

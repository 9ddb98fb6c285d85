#!/bin/sh
# Installs what pgflip needs to build, test and benchmark: Debian packages
# (as root it runs apt-get; otherwise it prints the command to run), then the
# node drivers of tests/node (npm ci, whenever node_modules is missing or
# older than package-lock.json).
# clang and libclang-rt-dev (libFuzzer's runtime, only a Recommends of clang
# in Debian 12) build the fuzz harnesses; valgrind serves make VALGRIND=1 test.
# libpg-query-dev is PostgreSQL's own parser (migrate convert and lint), and
# libprotobuf-c-dev the header its token list (pg_query_scan) needs;
# libsystemd-dev gives sd_notify; pandoc builds the man pages; gnuplot-nox
# draws bench/zero-downtime.sh's plot; prometheus (promtool) and
# prometheus-pgbouncer-exporter check the metrics and the admin console.
pkgs="build-essential pkg-config libevent-dev libssl-dev libpq-dev libinih-dev
libjansson-dev libyaml-dev libcmocka-dev libprotobuf-c-dev postgresql-15 postgresql-client-15 pgbouncer
clang libclang-rt-dev valgrind libpg-query-dev libsystemd-dev pandoc gnuplot-nox
prometheus prometheus-pgbouncer-exporter"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
# node and npm may come from another package source (npm inside its nodejs):
# Debian's packages only when the commands are missing
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
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
fi

# The drivers that tests/integration/proxy_drivers.sh runs, at the versions
# of tests/node/package-lock.json. The stamp is a copy of the lock file that
# was installed, so an edited lock reinstalls.
node_dir=$(dirname "$0")/../node
if ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.pgflip-installed-lock" 2>/dev/null; then
	echo "deps: npm ci in tests/node"
	(cd "$node_dir" && rm -rf node_modules && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
		echo "deps: npm ci failed in tests/node" >&2; exit 1; }
	cp "$node_dir/package-lock.json" "$node_dir/node_modules/.pgflip-installed-lock"
fi

/*
 * proxy/main.c: the pgflip command line.
 *
 *   pgflip serve -c FILE           run the proxy
 *   pgflip ctl [-s SOCKET] CMD...  talk to a running proxy's admin socket
 *   pgflip migrate ...             run migrations (migrate/)
 */
#include <stdio.h>
#include <string.h>

#include "migrate/migrate.h"
#include "proxy/proxy.h"
#include "proxy/admin.h"

static void usage(FILE *f)
{
	fprintf(f, "pgflip %s: a version-routing PostgreSQL proxy with expand/contract migrations\n\n"
		   "usage:\n"
		   "  pgflip serve -c FILE             run the proxy with the config FILE (pgflip serve --help)\n"
		   "  pgflip ctl [-s SOCKET] [--json] COMMAND...\n"
		   "                                   send an admin command (pgflip ctl --help)\n"
		   "  pgflip migrate [--dsn CONNINFO] [--schema NAME] COMMAND...\n"
		   "                                   run migrations (pgflip migrate --help)\n"
		   "  pgflip --help | --version\n"
		   "Manual pages: pgflip(1), pgflip.ini(5).\n",
		PGFLIP_VERSION);
}

static void serve_usage(FILE *f)
{
	fprintf(f, "usage: pgflip serve -c FILE\n"
		   "  -c, --config FILE   the config file (see pgflip.ini(5))\n"
		   "  -h, --help          this help\n"
		   "Signals: SIGHUP reopens the log file and reloads FILE, SIGTERM stops after the\n"
		   "clients (shutdown_timeout), SIGINT stops at once.\n");
}

/* `pgflip serve ARGS` (ARGV[0] = "serve"): the daemon's exit status. */
static int serve_main(int argc, char **argv)
{
	const char *conf = NULL;
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
			conf = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			serve_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "pgflip serve: unexpected argument \"%s\"\n", argv[i]);
			serve_usage(stderr);
			return 2;
		}
	}
	if (!conf) {
		fprintf(stderr, "pgflip serve: -c FILE is required\n");
		return 2;
	}
	return proxy_serve(conf);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("pgflip %s\n", PGFLIP_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "serve"))
		return serve_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "ctl"))
		return ctl_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return migrate_main(argc - 1, argv + 1);
	fprintf(stderr, "pgflip: unknown command \"%s\"\n\n", cmd);
	usage(stderr);
	return 2;
}

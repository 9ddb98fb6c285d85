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
		   "  pgflip serve -c FILE             run the proxy with the config FILE\n"
		   "  pgflip ctl [-s SOCKET] [--json] COMMAND...\n"
		   "                                   send an admin command (pgflip ctl --help)\n"
		   "  pgflip migrate [--dsn CONNINFO] [--schema NAME] COMMAND...\n"
		   "                                   run migrations (pgflip migrate --help)\n"
		   "  pgflip --help | --version\n",
		PGFLIP_VERSION);
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
	if (!strcmp(cmd, "serve")) {
		const char *conf = NULL;
		for (int i = 2; i < argc; i++) {
			if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
				conf = argv[++i];
			else {
				fprintf(stderr, "pgflip serve: unexpected argument \"%s\"\n", argv[i]);
				return 2;
			}
		}
		if (!conf) {
			fprintf(stderr, "pgflip serve: -c FILE is required\n");
			return 2;
		}
		return proxy_serve(conf);
	}
	if (!strcmp(cmd, "ctl"))
		return ctl_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return migrate_main(argc - 1, argv + 1);
	fprintf(stderr, "pgflip: unknown command \"%s\"\n\n", cmd);
	usage(stderr);
	return 2;
}

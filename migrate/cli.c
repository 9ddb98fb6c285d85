/* migrate/cli.c: `pgflip migrate` command line (placeholder until the module lands). */
#include <stdio.h>

#include "migrate/migrate.h"

int migrate_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "pgflip migrate: the migration module is not built yet\n");
	return 2;
}

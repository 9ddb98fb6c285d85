/*
 * tests/integration/it_migrate.c: `pgflip migrate` as a stand-alone binary
 * (build/tests/it_migrate ARGS == pgflip migrate ARGS), so the migration
 * integration tests run even when build/pgflip is not linked yet.
 */
#include "migrate/migrate.h"

int main(int argc, char **argv)
{
	argv[0] = "migrate";
	return migrate_main(argc, argv);
}

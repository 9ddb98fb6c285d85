/*
 * migrate: pgroll-format expand/contract migrations (see DESIGN.md).
 * Entry point of the `pgflip migrate ...` command line.
 */
#ifndef PGFLIP_MIGRATE_H
#define PGFLIP_MIGRATE_H

/*
 * migrate_main: runs `pgflip migrate [--dsn CONNINFO] [--schema NAME] COMMAND ...`.
 * ARGV[0] is "migrate". Returns the process exit status: 0 on success, 1 when
 * the command failed, 2 on a usage error; a one-line reason goes to stderr.
 */
int migrate_main(int argc, char **argv);

#endif

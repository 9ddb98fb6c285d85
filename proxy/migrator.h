/*
 * proxy/migrator.h: migrations inside the daemon (migrator.c). One worker
 * thread runs migrate/api.h's flows with its own libpq connection; the event
 * loop hands it one job at a time and learns of its progress through a pipe
 * the loop reads (DESIGN.md decision 6). The loop never waits for it.
 *
 * Besides the admin commands (`migrate start|status|complete|rollback|
 * cancel`, `versions`, `promote`, `rollback`), it keeps what routing must
 * know of migrations: which version schemas are not routable yet (start
 * still running) and which must not be dropped while routed or used.
 */
#ifndef PGFLIP_MIGRATOR_H
#define PGFLIP_MIGRATOR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct Migrator Migrator;

/* migrator_start: the worker thread and its wake-up pipe, on proxy.base.
 * False with ERR filled (pgflip then does not start). */
bool migrator_start(char *err, size_t errlen);
/* migrator_stop: asks a running flow to stop at its next batch or step
 * boundary (its progress is saved), then joins the thread. Accepts a
 * migrator that never started. */
void migrator_stop(void);

/*
 * migrator_command: the admin commands of migrations and versions. ARGV
 * (ARGC words) starts with the command name: "migrate", "versions",
 * "promote" or "rollback". REQ is the whole JSON request when the command
 * came as one (its "file" and "content" members carry a migration file for
 * `migrate start`), else NULL. Returns the reply object ({"ok": ...}); NULL
 * when ARGV[0] is none of these.
 */
json_t *migrator_command(int argc, char **argv, const json_t *req);
/* migrator_read_only: true for the commands of migrator_command that
 * change nothing (migrate status, versions). */
bool migrator_read_only(int argc, char **argv);
/*
 * migrator_routable: false with ERR filled when SCHEMA is the version schema
 * of a migration whose start (expand) has not finished here: routes must not
 * point at it yet.
 */
bool migrator_routable(const char *schema, char *err, size_t errlen);

#endif

/*
 * proxy/console.h: the psql admin console (console.c), a front end of the
 * admin command layer (admin.h) on the client listeners: a client that logs
 * in to the virtual database admin_db (default "pgflip") talks to pgflip
 * itself, as PgBouncer's console.
 */
#ifndef PGFLIP_CONSOLE_H
#define PGFLIP_CONSOLE_H

#include <stddef.h>

#include "proxy/proxy.h"

/* console_enter: C logged in to admin_db (its authentication passed, as any
 * client's). A user of admin_users gets every command, of stats_users the
 * SHOW ones; C is then CL_CONSOLE, answered AuthenticationOk, pgflip's
 * ParameterStatus and ReadyForQuery. Anyone else is closed with 28000.
 * Returns false when C was closed. */
bool console_enter(Client *c);
/* console_message: the message of header H (AVAIL bytes of input) from the
 * CL_CONSOLE client C: a Query runs one command and is answered (rows and
 * CommandComplete, or ErrorResponse, then ReadyForQuery); extended-protocol
 * messages are refused (0A000) up to their Sync; anything else closes C
 * (08P01). Returns whether the pump can go on (false: it needs more bytes,
 * or C is closing). */
bool console_message(Client *c, const ProtoHeader *h, size_t avail);
/* console_free: NULL-safe; client_free calls it. */
void console_free(Console *con);

#endif

/*
 * proxy/startup.h: which StartupMessage parameters a client may send, and
 * what becomes of each (PgBouncer's tracked parameters,
 * track_extra_parameters and ignore_startup_parameters).
 *
 * A pooled server connection serves many clients, so a client's startup
 * settings cannot go into the server's own StartupMessage: pgflip keeps them
 * per client and sets them on whichever server runs the client's next
 * transaction (and resets them for the next client that lacks them). Only
 * settings that pgflip knows how to carry that way are accepted:
 *
 *   tracked      client_encoding, DateStyle, IntervalStyle, TimeZone,
 *                standard_conforming_strings, application_name,
 *                extra_float_digits, plus track_extra_parameters;
 *   search_path  never applied: the route decides it (logged at info);
 *   ignored      ignore_startup_parameters: accepted and dropped;
 *   options      parsed (-c name=value, --name=value); each setting in it
 *                follows the same rules;
 *   anything else (replication, role, statement_timeout unless listed...)
 *                refused at login with FATAL 08P01 naming it, as
 *                PostgreSQL refuses an unknown setting.
 * user, database and _pq_.* protocol options are the caller's business.
 */
#ifndef PGFLIP_STARTUP_H
#define PGFLIP_STARTUP_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "protocol/protocol.h"
#include "proxy/params.h"

typedef enum {
	STARTUP_APPLY = 0,   /* a tracked setting: carried to the client's servers */
	STARTUP_IGNORE,      /* listed in ignore_startup_parameters: dropped */
	STARTUP_ROUTE,       /* search_path: dropped, the route wins */
	STARTUP_REFUSE,      /* not allowed: the login fails */
} StartupVerdict;

/*
 * startup_verdict: what to do with the setting NAME (case-insensitive, as
 * PostgreSQL's GUC names) under CONF. When the verdict is STARTUP_APPLY,
 * *CANON (if not NULL) gets the name as pgflip carries it (the tracked
 * list's spelling, e.g. "DateStyle" for "datestyle"; for an extra one,
 * its spelling in track_extra_parameters).
 */
StartupVerdict startup_verdict(const Conf *conf, const char *name, const char **canon);

/* startup_carried: NAME is a setting pgflip carries from client to server
 * (the verdict is STARTUP_APPLY): a server that has it for one client gets
 * it set, or reset, for the next. */
bool startup_carried(const Conf *conf, const char *name);

/* The outcome of startup_collect. */
typedef struct StartupResult {
	bool route_ignored;   /* search_path was given (and dropped) */
	char refused[64];     /* the refused parameter (cut), when it returned false */
	char why[256];        /* the error for the client, when it returned false */
} StartupResult;

/*
 * startup_collect: the settings of the StartupMessage ST to carry for the
 * client, added to OUT (application_name among them when given). Parameters
 * user and database, and names starting with "_pq_.", are skipped. The
 * "options" value is parsed with proto_options_parse and read first, as
 * the server does, so that the packet's own parameters win over it; of two
 * "options", the last counts.
 * Returns true, or false with RES->why set (OUT may then hold some settings:
 * the caller closes the client anyway).
 */
bool startup_collect(const Conf *conf, const ProtoStartup *st, ParamList *out, StartupResult *res);

#endif

/*
 * proxy/startup.c: the StartupMessage parameter allowlist (startup.h says
 * what is accepted and why).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/startup.h"

/* Settings pgflip carries for every client. PgBouncer tracks the first
 * five; application_name is shown in pg_stat_activity, and JDBC sends
 * extra_float_digits at every login. */
static const char *const tracked[] = {
	"client_encoding", "DateStyle", "IntervalStyle", "TimeZone", "standard_conforming_strings",
	"application_name", "extra_float_digits",
};

static const char *in_list(char *const *list, const char *name)
{
	for (size_t i = 0; list && list[i]; i++)
		if (strcasecmp(list[i], name) == 0)
			return list[i];
	return NULL;
}

StartupVerdict startup_verdict(const Conf *conf, const char *name, const char **canon)
{
	const char *c = NULL;
	for (size_t i = 0; i < sizeof(tracked) / sizeof(tracked[0]) && !c; i++)
		if (strcasecmp(tracked[i], name) == 0)
			c = tracked[i];
	if (!c && strcasecmp(name, "search_path") == 0)
		return STARTUP_ROUTE;
	if (!c)
		c = in_list(conf->track_extra_parameters, name);
	if (c) {
		if (canon)
			*canon = c;
		return STARTUP_APPLY;
	}
	if (in_list(conf->ignore_startup_parameters, name))
		return STARTUP_IGNORE;
	return STARTUP_REFUSE;
}

bool startup_carried(const Conf *conf, const char *name)
{
	return startup_verdict(conf, name, NULL) == STARTUP_APPLY;
}

/* One setting, from the packet itself or from its options (FROM names
 * which, for the error). */
static bool startup_take(const Conf *conf, const char *name, const char *value, const char *from, ParamList *out,
			 StartupResult *res)
{
	const char *canon = NULL;
	switch (startup_verdict(conf, name, &canon)) {
	case STARTUP_APPLY:
		params_set(out, canon, value);
		return true;
	case STARTUP_IGNORE:
		return true;
	case STARTUP_ROUTE:
		res->route_ignored = true;
		return true;
	case STARTUP_REFUSE:
		break;
	}
	snprintf(res->refused, sizeof(res->refused), "%s", name);
	snprintf(res->why, sizeof(res->why),
		 "unsupported startup parameter%s: %s (pgflip carries only tracked settings; see "
		 "track_extra_parameters and ignore_startup_parameters)",
		 from, res->refused);
	return false;
}

static bool startup_options(const Conf *conf, const char *options, ParamList *out, StartupResult *res)
{
	size_t worklen = PROTO_OPTIONS_WORK_SIZE(strlen(options));
	char *work = malloc(worklen);
	ProtoSetting set[PROTO_STARTUP_MAX_PARAMS];
	size_t n = 0;
	const char *why = "";
	if (!work) {
		snprintf(res->why, sizeof(res->why), "out of memory reading options");
		return false;
	}
	bool ok = proto_options_parse(options, work, worklen, set, sizeof(set) / sizeof(set[0]), &n, &why) ==
		  PROTO_OK;
	if (!ok) {
		snprintf(res->refused, sizeof(res->refused), "options");
		snprintf(res->why, sizeof(res->why), "invalid options startup parameter: %s", why);
	}
	for (size_t i = 0; ok && i < n; i++)
		ok = startup_take(conf, set[i].name, set[i].value, " in options", out, res);
	free(work);
	return ok;
}

/*
 * As the server does (process_startup_options in postinit.c): the options
 * first, then the packet's own settings, so that a setting given both ways
 * gets the packet's value wherever "options" sits in the packet. Given twice,
 * the last "options" is the one read (ProcessStartupPacket keeps the last).
 */
bool startup_collect(const Conf *conf, const ProtoStartup *st, ParamList *out, StartupResult *res)
{
	memset(res, 0, sizeof(*res));
	const char *options = NULL;
	for (size_t i = 0; i < st->n_params; i++)
		if (strcmp(st->names[i], "options") == 0)
			options = st->values[i];
	if (options && !startup_options(conf, options, out, res))
		return false;
	for (size_t i = 0; i < st->n_params; i++) {
		const char *name = st->names[i];
		if (!strcmp(name, "user") || !strcmp(name, "database") || !strcmp(name, "options") ||
		    !strncmp(name, "_pq_.", 5))
			continue;
		if (!startup_take(conf, name, st->values[i], "", out, res))
			return false;
	}
	return true;
}

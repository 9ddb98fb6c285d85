/*
 * tests/unit/test_startup.c: unit tests of the StartupMessage parameter
 * allowlist (proxy/startup.c).
 *
 * startup_verdict is checked name by name under a config loaded from a
 * small file (track_extra_parameters, ignore_startup_parameters);
 * startup_collect on StartupMessages built byte by byte here and parsed
 * with proto_startup_parse, as client.c gets them. Refusals compare the
 * whole text the client is sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/startup.h"
#include "tests/unit/conf_text.h"

static char test_dir[] = "/tmp/pgflip-test-startup-XXXXXX";
static char conf_path[256];
static Conf *conf;       /* with extra and ignored names */
static Conf *plain_conf; /* with neither */

static int group_setup(void **state)
{
	(void)state;
	if (!mkdtemp(test_dir))
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/pgflip.ini", test_dir);
	conf = load_text(conf_path, "[pgflip]\n"
	                            "track_extra_parameters = statement_timeout, Work_Mem, geqo\n"
	                            "ignore_startup_parameters = extra_float_digits, geqo, jit, search_path\n"
	                            "[databases]\ndemo = dbname=demo\n"
	                            "[routes]\ndefault = public\n");
	plain_conf = load_text(conf_path, "[databases]\ndemo = dbname=demo\n[routes]\ndefault = public\n");
	return conf && plain_conf ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	conf_free(conf);
	conf_free(plain_conf);
	unlink(conf_path);
	return rmdir(test_dir);
}

/* ---- startup_verdict ---------------------------------------------------- */

/* The verdict for NAME, and the canonical name when it is STARTUP_APPLY. */
static void assert_verdict(const Conf *c, const char *name, StartupVerdict want, const char *want_canon)
{
	const char *canon = "unset";
	StartupVerdict got = startup_verdict(c, name, &canon);
	if (got != want)
		fail_msg("%s: verdict %d, want %d", name, (int)got, (int)want);
	if (want == STARTUP_APPLY)
		assert_string_equal(canon, want_canon);
	else
		assert_string_equal(canon, "unset");            /* left alone */
	assert_int_equal(startup_verdict(c, name, NULL), want); /* CANON may be NULL */
	assert_int_equal(startup_carried(c, name), want == STARTUP_APPLY);
}

static void test_verdict_tracked(void **state)
{
	(void)state;
	static const char *const tracked[] = {
	        "client_encoding",  "DateStyle",          "IntervalStyle", "TimeZone", "standard_conforming_strings",
	        "application_name", "extra_float_digits",
	};
	for (size_t i = 0; i < sizeof(tracked) / sizeof(tracked[0]); i++) {
		char lower[64], upper[64];
		size_t n = strlen(tracked[i]);
		for (size_t k = 0; k <= n; k++) {
			char ch = tracked[i][k];
			lower[k] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
			upper[k] = (char)(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
		}
		/* any case in, the tracked list's spelling out */
		assert_verdict(plain_conf, tracked[i], STARTUP_APPLY, tracked[i]);
		assert_verdict(plain_conf, lower, STARTUP_APPLY, tracked[i]);
		assert_verdict(plain_conf, upper, STARTUP_APPLY, tracked[i]);
		assert_verdict(conf, lower, STARTUP_APPLY, tracked[i]);
	}
	assert_verdict(plain_conf, "datestyle", STARTUP_APPLY, "DateStyle");
	assert_verdict(plain_conf, "DATESTYLE", STARTUP_APPLY, "DateStyle");
	assert_verdict(plain_conf, "timezone", STARTUP_APPLY, "TimeZone");
	/* tracked beats ignore_startup_parameters (extra_float_digits is listed there) */
	assert_verdict(conf, "extra_float_digits", STARTUP_APPLY, "extra_float_digits");
	/* no prefix or suffix matches */
	assert_verdict(plain_conf, "DateStyl", STARTUP_REFUSE, NULL);
	assert_verdict(plain_conf, "DateStyle2", STARTUP_REFUSE, NULL);
	assert_verdict(plain_conf, "", STARTUP_REFUSE, NULL);
}

static void test_verdict_search_path(void **state)
{
	(void)state;
	assert_verdict(plain_conf, "search_path", STARTUP_ROUTE, NULL);
	assert_verdict(plain_conf, "SEARCH_PATH", STARTUP_ROUTE, NULL);
	assert_verdict(plain_conf, "Search_Path", STARTUP_ROUTE, NULL);
	/* listed in ignore_startup_parameters, it is still the route's business */
	assert_verdict(conf, "search_path", STARTUP_ROUTE, NULL);
	assert_verdict(plain_conf, "search-path", STARTUP_REFUSE, NULL);
}

static void test_verdict_extra_and_ignored(void **state)
{
	(void)state;
	/* track_extra_parameters: carried, under the config's spelling */
	assert_verdict(conf, "statement_timeout", STARTUP_APPLY, "statement_timeout");
	assert_verdict(conf, "STATEMENT_TIMEOUT", STARTUP_APPLY, "statement_timeout");
	assert_verdict(conf, "work_mem", STARTUP_APPLY, "Work_Mem");
	/* listed in both: carried */
	assert_verdict(conf, "geqo", STARTUP_APPLY, "geqo");
	/* ignore_startup_parameters: dropped */
	assert_verdict(conf, "jit", STARTUP_IGNORE, NULL);
	assert_verdict(conf, "JIT", STARTUP_IGNORE, NULL);
	/* without the lists, all of them are refused */
	assert_verdict(plain_conf, "statement_timeout", STARTUP_REFUSE, NULL);
	assert_verdict(plain_conf, "work_mem", STARTUP_REFUSE, NULL);
	assert_verdict(plain_conf, "jit", STARTUP_REFUSE, NULL);
	/* everything else */
	static const char *const refused[] = {"replication",
	                                      "role",
	                                      "session_authorization",
	                                      "lock_timeout",
	                                      "statement_timeout_x",
	                                      "user",
	                                      "database",
	                                      "options",
	                                      "_pq_.x"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_verdict(conf, refused[i], STARTUP_REFUSE, NULL);
}

/* ---- StartupMessage bytes ------------------------------------------------ */

typedef struct Packet {
	uint8_t buf[4096];
	size_t len;
	ProtoStartup st;
} Packet;

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * Builds a StartupMessage (protocol 3.0) of the NULL-terminated name, value
 * pairs in KV, "user" first unless KV names it, and parses it into P->st.
 */
static void packet_build(Packet *p, const char *const *kv)
{
	size_t n = 8;
	bool has_user = false;
	for (size_t i = 0; kv[i]; i += 2)
		has_user |= strcmp(kv[i], "user") == 0;
	memset(p, 0, sizeof(*p));
	put_u32(p->buf + 4, PROTO_VERSION_3_0);
	if (!has_user) {
		memcpy(p->buf + n, "user\0alice", 11);
		n += 11;
	}
	for (size_t i = 0; kv[i]; i += 2) {
		size_t a = strlen(kv[i]) + 1, b = strlen(kv[i + 1]) + 1;
		assert_true(n + a + b + 1 <= sizeof(p->buf));
		memcpy(p->buf + n, kv[i], a);
		memcpy(p->buf + n + a, kv[i + 1], b);
		n += a + b;
	}
	p->buf[n++] = 0;
	put_u32(p->buf, (uint32_t)n);
	p->len = n;
	const char *why = "";
	if (proto_startup_parse(p->buf, p->len, &p->st, &why) != PROTO_OK)
		fail_msg("proto_startup_parse: %s", why);
	assert_int_equal(p->st.kind, PROTO_STARTUP_MESSAGE);
	assert_int_equal(p->st.packet_len, n);
}

/* The settings collected, as "name=value;..." in list order. */
static void params_str(const ParamList *l, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < l->n && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s=%s;", l->items[i].name, l->items[i].value);
}

/* startup_collect of KV under C must succeed with exactly the settings
 * WANT ("name=value;..." in order) and ROUTE_IGNORED. */
static void assert_collect(const Conf *c, const char *const *kv, const char *want, bool route_ignored)
{
	Packet p;
	packet_build(&p, kv);
	ParamList out = {0};
	StartupResult res;
	memset(&res, 0x55, sizeof(res)); /* startup_collect must clear it */
	bool ok = startup_collect(c, &p.st, &out, &res);
	char got[1024];
	params_str(&out, got, sizeof(got));
	if (!ok)
		fail_msg("refused: %s (collected %s)", res.why, got);
	assert_string_equal(got, want);
	assert_int_equal(res.route_ignored, route_ignored);
	assert_string_equal(res.refused, "");
	assert_string_equal(res.why, "");
	params_clear(&out);
}

/* startup_collect of KV under C must fail naming REFUSED with WHY. */
static void assert_refused(const Conf *c, const char *const *kv, const char *refused, const char *why)
{
	Packet p;
	packet_build(&p, kv);
	ParamList out = {0};
	StartupResult res;
	bool ok = startup_collect(c, &p.st, &out, &res);
	params_clear(&out);
	if (ok)
		fail_msg("accepted, want refusal of %s", refused);
	assert_string_equal(res.refused, refused);
	assert_string_equal(res.why, why);
}

#define CARRIES " (pgflip carries only tracked settings; see track_extra_parameters and ignore_startup_parameters)"

/* ---- startup_collect ----------------------------------------------------- */

static void test_collect_packet(void **state)
{
	(void)state;
	/* what libpq sends: user, database, application_name, client_encoding */
	assert_collect(
	        plain_conf,
	        (const char *const[]){"database", "shop", "application_name", "psql", "client_encoding", "UTF8", NULL},
	        "application_name=psql;client_encoding=UTF8;", false);
	/* only user: nothing to carry */
	assert_collect(plain_conf, (const char *const[]){NULL}, "", false);
	/* names in any case, carried under the canonical spelling */
	assert_collect(plain_conf,
	               (const char *const[]){"datestyle", "ISO, DMY", "TIMEZONE", "Europe/Paris", "intervalstyle",
	                                     "iso_8601", NULL},
	               "DateStyle=ISO, DMY;TimeZone=Europe/Paris;IntervalStyle=iso_8601;", false);
	/* empty values are values */
	assert_collect(plain_conf, (const char *const[]){"application_name", "", NULL}, "application_name=;", false);
	/* the same setting twice: the last one wins (as PostgreSQL) */
	assert_collect(plain_conf, (const char *const[]){"TimeZone", "UTC", "timezone", "Asia/Tokyo", NULL},
	               "TimeZone=Asia/Tokyo;", false);
	/* user, database and _pq_.* are the caller's business, whatever their value */
	assert_collect(plain_conf,
	               (const char *const[]){"user", "bob", "database", "db", "_pq_.protocol_managed_params", "x",
	                                     "_pq_.", "", "extra_float_digits", "3", NULL},
	               "extra_float_digits=3;", false);
	/* search_path: dropped, noted */
	assert_collect(plain_conf,
	               (const char *const[]){"search_path", "evil, public", "client_encoding", "UTF8", NULL},
	               "client_encoding=UTF8;", true);
	assert_collect(plain_conf, (const char *const[]){"Search_Path", "x", NULL}, "", true);
	/* extra: carried; ignored: dropped */
	assert_collect(conf, (const char *const[]){"statement_timeout", "5s", "jit", "off", "WORK_MEM", "64MB", NULL},
	               "statement_timeout=5s;Work_Mem=64MB;", false);
}

static void test_collect_packet_refused(void **state)
{
	(void)state;
	assert_refused(plain_conf, (const char *const[]){"replication", "database", NULL}, "replication",
	               "unsupported startup parameter: replication" CARRIES);
	assert_refused(plain_conf, (const char *const[]){"client_encoding", "UTF8", "statement_timeout", "5s", NULL},
	               "statement_timeout", "unsupported startup parameter: statement_timeout" CARRIES);
	/* listed in the other config, not in this one */
	assert_refused(plain_conf, (const char *const[]){"jit", "off", NULL}, "jit",
	               "unsupported startup parameter: jit" CARRIES);
	/* the packet's own spelling, case kept */
	assert_refused(conf, (const char *const[]){"Lock_Timeout", "1s", NULL}, "Lock_Timeout",
	               "unsupported startup parameter: Lock_Timeout" CARRIES);
	/* "options" is only that name, not OPTIONS */
	assert_refused(plain_conf, (const char *const[]){"OPTIONS", "-c geqo=off", NULL}, "OPTIONS",
	               "unsupported startup parameter: OPTIONS" CARRIES);
	/* the first refused name is the one reported */
	assert_refused(plain_conf, (const char *const[]){"role", "admin", "replication", "true", NULL}, "role",
	               "unsupported startup parameter: role" CARRIES);
	/* a long name is cut to 63 bytes, in REFUSED and in the message */
	char name[101], cut[64], why[256];
	memset(name, 'x', 100);
	name[100] = '\0';
	memset(cut, 'x', 63);
	cut[63] = '\0';
	snprintf(why, sizeof(why), "unsupported startup parameter: %s" CARRIES, cut);
	assert_refused(plain_conf, (const char *const[]){name, "1", NULL}, cut, why);
}

static void test_collect_options(void **state)
{
	(void)state;
	/* -c NAME=VALUE, in one word or two, and --NAME=VALUE */
	assert_collect(
	        plain_conf,
	        (const char *const[]){"options", "-c DateStyle=ISO -cTimeZone=UTC --client_encoding=LATIN1", NULL},
	        "DateStyle=ISO;TimeZone=UTC;client_encoding=LATIN1;", false);
	/* '-' in a name becomes '_'; the case is kept, then canonical */
	assert_collect(plain_conf,
	               (const char *const[]){"options", "--client-encoding=UTF8 -c extra-float-digits=2", NULL},
	               "client_encoding=UTF8;extra_float_digits=2;", false);
	assert_collect(plain_conf, (const char *const[]){"options", "--datestyle=SQL", NULL}, "DateStyle=SQL;", false);
	/* backslash escapes: "\ " a space, "\\" a backslash */
	assert_collect(
	        plain_conf,
	        (const char *const[]){"options", "-c application_name=my\\ app\\\\1 -c DateStyle=ISO,\\ MDY", NULL},
	        "application_name=my app\\1;DateStyle=ISO, MDY;", false);
	/* '-' in a value stays */
	assert_collect(plain_conf, (const char *const[]){"options", "-c TimeZone=Etc/GMT-3", NULL},
	               "TimeZone=Etc/GMT-3;", false);
	/* blank or empty: nothing */
	assert_collect(plain_conf, (const char *const[]){"options", "", NULL}, "", false);
	assert_collect(plain_conf, (const char *const[]){"options", " \t ", NULL}, "", false);
	/* search_path in options: dropped, noted; the rest kept */
	assert_collect(plain_conf,
	               (const char *const[]){"options", "-c search_path=evil --search-path=x -c TimeZone=UTC", NULL},
	               "TimeZone=UTC;", true);
	/* extra and ignored names in options follow the same rules */
	assert_collect(conf, (const char *const[]){"options", "-c statement-timeout=1s -c jit=off", NULL},
	               "statement_timeout=1s;", false);
	/* options and the packet's own settings together */
	assert_collect(plain_conf,
	               (const char *const[]){"database", "shop", "options", "-c DateStyle=ISO", "application_name",
	                                     "app", NULL},
	               "DateStyle=ISO;application_name=app;", false);
}

/*
 * A setting given both in options and as a parameter of its own: PostgreSQL
 * applies the options first and the packet's parameters after them
 * (process_startup_options, src/backend/utils/init/postinit.c), so the
 * parameter wins wherever "options" sits in the packet. libpq sends options
 * before client_encoding; pgjdbc sends it last.
 */
static void test_collect_packet_beats_options(void **state)
{
	(void)state;
	assert_collect(plain_conf,
	               (const char *const[]){"options", "-c client_encoding=LATIN1", "client_encoding", "UTF8", NULL},
	               "client_encoding=UTF8;", false);
	assert_collect(plain_conf,
	               (const char *const[]){"TimeZone", "Europe/Paris", "options", "-c TimeZone=UTC", NULL},
	               "TimeZone=Europe/Paris;", false);
}

/* "options" given twice: the last one is read, as the server keeps the
 * last (ProcessStartupPacket, src/backend/tcop/backend_startup.c). */
static void test_collect_options_twice(void **state)
{
	(void)state;
	assert_collect(plain_conf,
	               (const char *const[]){"options", "-c role=admin", "options", "-c DateStyle=ISO", NULL},
	               "DateStyle=ISO;", false);
	assert_refused(plain_conf,
	               (const char *const[]){"options", "-c DateStyle=ISO", "options", "-c role=admin", NULL}, "role",
	               "unsupported startup parameter in options: role" CARRIES);
}

static void test_collect_options_refused(void **state)
{
	(void)state;
	assert_refused(plain_conf, (const char *const[]){"options", "-c statement_timeout=5s", NULL},
	               "statement_timeout", "unsupported startup parameter in options: statement_timeout" CARRIES);
	/* named after the '-' -> '_' change */
	assert_refused(plain_conf, (const char *const[]){"options", "--lock-timeout=5s", NULL}, "lock_timeout",
	               "unsupported startup parameter in options: lock_timeout" CARRIES);
	/* after accepted ones */
	assert_refused(plain_conf, (const char *const[]){"options", "-c DateStyle=ISO -c role=admin -c geqo=off", NULL},
	               "role", "unsupported startup parameter in options: role" CARRIES);
	/* user is no setting */
	assert_refused(plain_conf, (const char *const[]){"options", "-c user=postgres", NULL}, "user",
	               "unsupported startup parameter in options: user" CARRIES);
	/* options that do not parse: refused as a whole, with the parser's reason */
	assert_refused(plain_conf, (const char *const[]){"options", "-d 5", NULL}, "options",
	               "invalid options startup parameter: options: \"-d\" is not a setting (only -c name=value and "
	               "--name=value)");
	assert_refused(plain_conf, (const char *const[]){"options", "-c", NULL}, "options",
	               "invalid options startup parameter: options: \"-c\" needs an argument (-c name=value)");
	assert_refused(plain_conf, (const char *const[]){"options", "-c geqo", NULL}, "options",
	               "invalid options startup parameter: options: \"-c geqo\" has no value (name=value)");
	assert_refused(plain_conf, (const char *const[]){"options", "DateStyle=ISO", NULL}, "options",
	               "invalid options startup parameter: options: \"DateStyle=ISO\" is not a switch (only -c "
	               "name=value and --name=value)");
	/* a bad word after good settings refuses them all */
	assert_refused(plain_conf, (const char *const[]){"options", "-c DateStyle=ISO --=x", NULL}, "options",
	               "invalid options startup parameter: options: \"--=x\" has an empty setting name");
	/* more settings than PROTO_STARTUP_MAX_PARAMS */
	char many[PROTO_STARTUP_MAX_PARAMS * 20 + 32];
	size_t n = 0;
	for (int i = 0; i <= PROTO_STARTUP_MAX_PARAMS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "-c TimeZone=%d ", i);
	assert_refused(plain_conf, (const char *const[]){"options", many, NULL}, "options",
	               "invalid options startup parameter: options: \"-c TimeZone=64\" is past the most settings "
	               "allowed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_verdict_tracked),
	        cmocka_unit_test(test_verdict_search_path),
	        cmocka_unit_test(test_verdict_extra_and_ignored),
	        cmocka_unit_test(test_collect_packet),
	        cmocka_unit_test(test_collect_packet_refused),
	        cmocka_unit_test(test_collect_options),
	        cmocka_unit_test(test_collect_packet_beats_options),
	        cmocka_unit_test(test_collect_options_twice),
	        cmocka_unit_test(test_collect_options_refused),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

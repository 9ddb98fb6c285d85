/*
 * tests/unit/test_router.c: unit tests of the route table (proxy/router.c).
 *
 * Tables come from a real config file (conf_load on a file in a mkdtemp
 * folder) or from a ConfRoutes built here. Routing is checked on the exact
 * schema returned; errors of the admin changes on their whole message, and
 * every change on the generation it must (or must not) bump.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proxy/proxy.h"

static char test_dir[] = "/tmp/pgflip-test-router-XXXXXX";
static int file_count;

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(test_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	char path[256];
	for (int i = 0; i < file_count; i++) {
		snprintf(path, sizeof(path), "%s/%d.ini", test_dir, i);
		unlink(path);
	}
	return rmdir(test_dir);
}

/* Loads TEXT as a config file; fails the test with conf_load's error. */
static Conf *load_text(const char *text)
{
	char path[256], err[512];
	snprintf(path, sizeof(path), "%s/%d.ini", test_dir, file_count++);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	Conf *conf = conf_load(path, err, sizeof(err));
	if (!conf)
		fail_msg("conf_load: %s", err);
	return conf;
}

/* ---- addresses ---------------------------------------------------------- */

typedef union Addr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
	struct sockaddr_un un;
	struct sockaddr_storage ss;
} Addr;

/* TEXT (IPv4 or IPv6) as a socket address, as accept() gives it. */
static const struct sockaddr *addr_of(Addr *a, const char *text)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, &a->in4.sin_addr) == 1) {
		a->in4.sin_family = AF_INET;
		a->in4.sin_port = htons(40000);
	} else if (inet_pton(AF_INET6, text, &a->in6.sin6_addr) == 1) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons(40000);
	} else {
		fail_msg("bad address in test: %s", text);
	}
	return &a->sa;
}

/* The route of a client with APP, USER and ADDR (NULL: a Unix socket),
 * whose canary bucket is BUCKET under every key. */
static const char *route(const Router *r, const char *app, const char *user, const char *addr, uint16_t bucket)
{
	Addr a;
	uint16_t b[CONF_CANARY_KEYS] = {bucket, bucket, bucket};
	return router_route(r, app, user, addr ? addr_of(&a, addr) : NULL, b);
}

/* ---- hand-built tables -------------------------------------------------- */

static ConfPin pin(ConfPinKind kind, const char *key, const char *schema)
{
	ConfPin p;
	memset(&p, 0, sizeof(p));
	p.kind = kind;
	p.key = (char *)key;
	p.schema = (char *)schema;
	if (kind == CONF_PIN_ADDR && !conf_cidr_parse(key, &p.cidr))
		fail_msg("bad CIDR in test: %s", key);
	return p;
}

/* Pins in an order that puts every kind before the kinds that beat it, so
 * that precedence by kind (not by table order) is what the tests see. */
static ConfPin mixed_pins[6];

static ConfRoutes mixed_routes(void)
{
	mixed_pins[0] = pin(CONF_PIN_ADDR, "10.0.0.0/8", "v_net");
	mixed_pins[1] = pin(CONF_PIN_USER, "alice", "v_alice");
	mixed_pins[2] = pin(CONF_PIN_APP, "web-*", "v_web");
	mixed_pins[3] = pin(CONF_PIN_APP, "web-1", "v_web1"); /* shadowed by web-*: first match wins */
	mixed_pins[4] = pin(CONF_PIN_ADDR, "2001:db8::/32", "v_net6");
	mixed_pins[5] = pin(CONF_PIN_ADDR, "10.1.0.0/16", "v_net16"); /* shadowed by 10.0.0.0/8 */
	ConfRoutes r;
	memset(&r, 0, sizeof(r));
	r.default_schema = "v_default";
	r.pins = mixed_pins;
	r.n_pins = 6;
	return r;
}

/* ---- router_load -------------------------------------------------------- */

static void test_load_from_conf(void **state)
{
	(void)state;
	Conf *conf = load_text("[databases]\ndemo = host=127.0.0.1 dbname=demo\n"
	                       "[routes]\n"
	                       "default = public_001_init\n"
	                       "user.alice = public_002_next\n"
	                       "app.batch-* = public_001_init\n"
	                       "addr.192.168.0.0/16 = public_002_next\n"
	                       "addr.::1 = v6\n"
	                       "canary = public_002_next 25%\n");
	Router r;
	router_init(&r);
	assert_int_equal(r.generation, 0);
	assert_true(router_load(&r, &conf->routes));
	assert_int_equal(r.generation, 1);
	assert_string_equal(r.default_schema, "public_001_init");
	assert_ptr_not_equal(r.default_schema, conf->routes.default_schema); /* a copy */
	assert_string_equal(r.canary_schema, "public_002_next");
	assert_int_equal(r.canary_percent, 25);
	assert_int_equal(r.n_pins, 4);
	assert_int_equal(r.pins[0].kind, CONF_PIN_USER);
	assert_string_equal(r.pins[0].key, "alice");
	assert_string_equal(r.pins[0].schema, "public_002_next");
	assert_int_equal(r.pins[1].kind, CONF_PIN_APP);
	assert_string_equal(r.pins[1].key, "batch-*");
	assert_int_equal(r.pins[2].kind, CONF_PIN_ADDR);
	assert_string_equal(r.pins[2].key, "192.168.0.0/16");
	assert_int_equal(r.pins[2].cidr.family, AF_INET);
	assert_int_equal(r.pins[2].cidr.prefix_len, 16);
	assert_int_equal(r.pins[3].cidr.family, AF_INET6);
	assert_int_equal(r.pins[3].cidr.prefix_len, 128);

	/* the loaded table routes */
	assert_string_equal(route(&r, "batch-7", "bob", "8.8.8.8", 1), "public_001_init");
	assert_string_equal(route(&r, "psql", "alice", NULL, 1), "public_002_next");
	assert_string_equal(route(&r, "psql", "bob", "192.168.4.4", 1), "public_002_next");
	assert_string_equal(route(&r, "psql", "bob", "::1", 1), "v6");

	/* the router's copy outlives the snapshot */
	conf_free(conf);
	assert_string_equal(route(&r, "psql", "bob", "::1", 1), "v6");

	/* loading again replaces the whole table */
	ConfRoutes only_default;
	memset(&only_default, 0, sizeof(only_default));
	only_default.default_schema = "solo";
	assert_true(router_load(&r, &only_default));
	assert_int_equal(r.generation, 2);
	assert_int_equal(r.n_pins, 0);
	assert_null(r.canary_schema);
	assert_int_equal(r.canary_percent, 0);
	assert_string_equal(route(&r, "batch-7", "alice", "::1", 1), "solo");
	router_free(&r);
	assert_int_equal(r.generation, 2); /* kept: clients compare against it */
	assert_null(r.default_schema);
	assert_int_equal(r.n_pins, 0);
}

/* ---- router_route ------------------------------------------------------- */

static void test_precedence(void **state)
{
	(void)state;
	ConfRoutes cr = mixed_routes();
	Router r;
	router_init(&r);
	assert_true(router_load(&r, &cr));

	/* app beats user beats addr, whatever the table order */
	assert_string_equal(route(&r, "web-1", "alice", "10.1.2.3", 1), "v_web");
	assert_string_equal(route(&r, "psql", "alice", "10.1.2.3", 1), "v_alice");
	assert_string_equal(route(&r, "psql", "bob", "10.1.2.3", 1), "v_net");
	assert_string_equal(route(&r, "psql", "bob", "192.0.2.1", 1), "v_default");

	/* within a kind, the first pin in table order wins */
	assert_string_equal(route(&r, "web-1", "bob", NULL, 1), "v_web");
	assert_string_equal(route(&r, "psql", "bob", "10.1.0.1", 1), "v_net");

	/* app globs are fnmatch patterns over the whole name */
	assert_string_equal(route(&r, "web-", "bob", NULL, 1), "v_web");
	assert_string_equal(route(&r, "xweb-1", "bob", NULL, 1), "v_default");
	assert_string_equal(route(&r, "WEB-1", "bob", NULL, 1), "v_default"); /* case matters */
	assert_string_equal(route(&r, "", "bob", NULL, 1), "v_default");
	assert_string_equal(route(&r, NULL, "bob", NULL, 1), "v_default");

	/* user names compare exactly */
	assert_string_equal(route(&r, "", "Alice", NULL, 1), "v_default");
	assert_string_equal(route(&r, "", "alice2", NULL, 1), "v_default");
	assert_string_equal(route(&r, "", NULL, NULL, 1), "v_default");

	/* addresses: IPv4, IPv4-mapped IPv6, IPv6, Unix */
	assert_string_equal(route(&r, "", "bob", "10.255.255.255", 1), "v_net");
	assert_string_equal(route(&r, "", "bob", "11.0.0.0", 1), "v_default");
	assert_string_equal(route(&r, "", "bob", "::ffff:10.9.8.7", 1), "v_net");
	assert_string_equal(route(&r, "", "bob", "::ffff:11.9.8.7", 1), "v_default");
	assert_string_equal(route(&r, "", "bob", "::10.9.8.7", 1), "v_default"); /* IPv4-compatible is not mapped */
	assert_string_equal(route(&r, "", "bob", "2001:db8:1::5", 1), "v_net6");
	assert_string_equal(route(&r, "", "bob", "2001:db9::5", 1), "v_default");
	Addr un;
	memset(&un, 0, sizeof(un));
	un.un.sun_family = AF_UNIX;
	assert_string_equal(router_route(&r, "", "bob", &un.sa, NULL), "v_default");
	router_free(&r);
}

/* ---- the canary share -------------------------------------------------- */

/* SipHash-2-4's reference vectors (the paper's appendix, and the
 * reference code's vectors.h): key 00..0f, messages 00..(len-1). */
static void test_hash_vectors(void **state)
{
	(void)state;
	uint8_t key[ROUTER_HASH_KEY_LEN], msg[15];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	RouterHash h;
	assert_true(router_hash_init(&h, key));
	assert_true(router_hash(&h, msg, 15) == 0xa129ca6149be45e5ull);
	assert_true(router_hash(&h, msg, 0) == 0x726fdb47dd0e0e31ull);
	assert_true(router_hash(&h, msg, 1) == 0x74f839c593dc67fdull);
	/* the keyed context is not consumed: the same answer again */
	assert_true(router_hash(&h, msg, 15) == 0xa129ca6149be45e5ull);
	router_hash_free(&h);
	router_hash_free(&h); /* twice is fine */
	assert_null(h.mac);
}

#define CANARY_CLIENTS 10000

/* Keys of client I (0..CANARY_CLIENTS-1), all distinct in kind KIND, the
 * same in the others: consecutive IPv4 addresses, names, nonces. */
static RouterKeys client_keys(int i, ConfCanaryKey kind, Addr *a, char *app, size_t applen)
{
	int n = kind == CONF_CANARY_KEY_ADDR ? i : 0;
	char ip[32];
	snprintf(ip, sizeof(ip), "10.%d.%d.%d", n >> 16, (n >> 8) & 255, n & 255);
	snprintf(app, applen, "app-%d", kind == CONF_CANARY_KEY_APPLICATION_NAME ? i : 0);
	RouterKeys k = {addr_of(a, ip), -1, app, kind == CONF_CANARY_KEY_CONNECTION ? (uint64_t)i + 1 : 1};
	return k;
}

/* The buckets of client I for KIND (see client_keys), drawn twice: the
 * same keys give the same buckets. */
static void client_buckets(const RouterHash *h, int i, ConfCanaryKey kind, uint16_t *b)
{
	Addr a;
	char app[32];
	RouterKeys k = client_keys(i, kind, &a, app, sizeof(app));
	router_canary_draw(h, &k, b);
	uint16_t again[CONF_CANARY_KEYS];
	router_canary_draw(h, &k, again);
	assert_memory_equal(b, again, sizeof(again));
	for (int j = 0; j < CONF_CANARY_KEYS; j++)
		assert_true(b[j] < ROUTER_BUCKETS);
}

/* How many of the CANARY_CLIENTS (distinct in KIND) R sends to "canary";
 * IN[i] says which. Each is asked twice and must get the same answer. */
static int canary_count(const Router *r, const RouterHash *h, ConfCanaryKey kind, bool *in)
{
	int n = 0;
	for (int i = 0; i < CANARY_CLIENTS; i++) {
		uint16_t b[CONF_CANARY_KEYS];
		client_buckets(h, i, kind, b);
		const char *s = router_route(r, "app", "user", NULL, b);
		assert_ptr_equal(s, router_route(r, "app", "user", NULL, b));
		bool c = strcmp(s, "canary") == 0;
		if (!c)
			assert_string_equal(s, "main");
		if (in)
			in[i] = c;
		n += c;
	}
	return n;
}

/* Every share of SHARES (percent) lands within 2 points of its target for
 * 10,000 clients distinct in KIND, and a larger share keeps every client
 * of a smaller one. */
static void check_shares(Router *r, const RouterHash *h, ConfCanaryKey kind)
{
	static const int shares[] = {1, 10, 50, 90};
	static bool prev[CANARY_CLIENTS], in[CANARY_CLIENTS];
	char err[256];
	RouterCanaryOpts opts = {.has_key = true, .key = kind};
	for (size_t i = 0; i < sizeof(shares) / sizeof(shares[0]); i++) {
		assert_true(router_set_canary_opts(r, "canary", shares[i], &opts, err, sizeof(err)));
		int n = canary_count(r, h, kind, in);
		int want = CANARY_CLIENTS * shares[i] / 100, slack = CANARY_CLIENTS * 2 / 100;
		print_message("# canary_key %s, %d%%: %d of %d clients\n", conf_canary_key_to_str(kind), shares[i], n,
			      CANARY_CLIENTS);
		if (n < want - slack || n > want + slack)
			fail_msg("canary_key %s, %d%%: %d of %d clients, want %d +- %d", conf_canary_key_to_str(kind),
				 shares[i], n, CANARY_CLIENTS, want, slack);
		for (size_t c = 0; i > 0 && c < CANARY_CLIENTS; c++)
			if (prev[c] && !in[c])
				fail_msg("canary_key %s: client %zu left the canary when the share grew to %d%%",
					 conf_canary_key_to_str(kind), c, shares[i]);
		memcpy(prev, in, sizeof(in));
	}
}

static void test_canary_share(void **state)
{
	(void)state;
	ConfRoutes cr;
	memset(&cr, 0, sizeof(cr));
	cr.default_schema = "main";
	Router r;
	router_init(&r);
	assert_true(router_load(&r, &cr));
	RouterHash h;
	uint8_t key[ROUTER_HASH_KEY_LEN] = "pgflip test key";
	assert_true(router_hash_init(&h, key));
	char err[256];

	assert_int_equal(canary_count(&r, &h, CONF_CANARY_KEY_CONNECTION, NULL), 0); /* no canary */
	check_shares(&r, &h, CONF_CANARY_KEY_ADDR);
	check_shares(&r, &h, CONF_CANARY_KEY_APPLICATION_NAME);
	check_shares(&r, &h, CONF_CANARY_KEY_CONNECTION);

	/* clients that share the key in effect share the decision, whatever
	 * else differs: at 50%, 200 clients with one address and distinct
	 * names and nonces all land on one side */
	RouterCanaryOpts by_addr = {.has_key = true, .key = CONF_CANARY_KEY_ADDR};
	assert_true(router_set_canary_opts(&r, "canary", 50, &by_addr, err, sizeof(err)));
	uint16_t b[CONF_CANARY_KEYS];
	client_buckets(&h, 0, CONF_CANARY_KEY_APPLICATION_NAME, b);
	const char *side = router_route(&r, "", "u", NULL, b);
	for (int i = 1; i < 200; i++) {
		client_buckets(&h, i, i % 2 ? CONF_CANARY_KEY_APPLICATION_NAME : CONF_CANARY_KEY_CONNECTION, b);
		assert_string_equal(router_route(&r, "", "u", NULL, b), side);
	}

	/* 100% takes everyone, 0% nobody and ends the canary */
	assert_true(router_set_canary(&r, "canary", 100, err, sizeof(err)));
	assert_int_equal(canary_count(&r, &h, CONF_CANARY_KEY_ADDR, NULL), CANARY_CLIENTS);
	assert_true(router_set_canary(&r, "canary", 0, err, sizeof(err)));
	assert_int_equal(canary_count(&r, &h, CONF_CANARY_KEY_ADDR, NULL), 0);
	assert_null(r.canary_schema);

	/* another process key: other buckets, the same share */
	uint8_t key2[ROUTER_HASH_KEY_LEN] = "another process";
	RouterHash h2;
	assert_true(router_hash_init(&h2, key2));
	assert_true(router_set_canary(&r, "canary", 10, err, sizeof(err)));
	int n = canary_count(&r, &h2, CONF_CANARY_KEY_ADDR, NULL);
	if (n < 800 || n > 1200)
		fail_msg("second key: %d of %d", n, CANARY_CLIENTS);
	uint16_t b1[CONF_CANARY_KEYS], b2[CONF_CANARY_KEYS];
	client_buckets(&h, 7, CONF_CANARY_KEY_ADDR, b1);
	client_buckets(&h2, 7, CONF_CANARY_KEY_ADDR, b2);
	assert_true(b1[CONF_CANARY_KEY_ADDR] != b2[CONF_CANARY_KEY_ADDR] ||
		    b1[CONF_CANARY_KEY_CONNECTION] != b2[CONF_CANARY_KEY_CONNECTION]);
	router_hash_free(&h2);

	/* a table loaded with "canary = SCHEMA 0" sends nobody there */
	cr.canary_schema = "canary";
	cr.canary_percent = 0;
	assert_true(router_load(&r, &cr));
	assert_string_equal(r.canary_schema, "canary");
	assert_int_equal(canary_count(&r, &h, CONF_CANARY_KEY_ADDR, NULL), 0);
	cr.canary_percent = 100;
	assert_true(router_load(&r, &cr));
	assert_int_equal(canary_count(&r, &h, CONF_CANARY_KEY_ADDR, NULL), CANARY_CLIENTS);

	/* pins beat the canary, the canary beats the default; no buckets
	 * (NULL) is never the canary */
	assert_true(router_set_canary(&r, "canary", 100, err, sizeof(err)));
	assert_true(router_set_pin(&r, CONF_PIN_USER, "pinned", "elsewhere", err, sizeof(err)));
	uint16_t zero[CONF_CANARY_KEYS] = {0, 0, 0};
	assert_string_equal(router_route(&r, "", "pinned", NULL, zero), "elsewhere");
	assert_string_equal(router_route(&r, "", "other", NULL, zero), "canary");
	assert_string_equal(router_route(&r, "", "other", NULL, NULL), "main");
	router_hash_free(&h);
	router_free(&r);
}

/* Bucket edges: bucket < percent x 100 is on the canary, under the key in
 * effect only. */
static void test_canary_buckets(void **state)
{
	(void)state;
	Router r;
	router_init(&r);
	char err[256];
	assert_true(router_set_default(&r, "main", err, sizeof(err)));
	assert_true(router_set_canary(&r, "canary", 10, err, sizeof(err)));
	assert_int_equal(r.canary_key, CONF_CANARY_KEY_ADDR); /* the file's default */
	assert_string_equal(route(&r, "", "u", NULL, 0), "canary");
	assert_string_equal(route(&r, "", "u", NULL, 999), "canary");
	assert_string_equal(route(&r, "", "u", NULL, 1000), "main");
	assert_string_equal(route(&r, "", "u", NULL, ROUTER_BUCKETS - 1), "main");
	uint16_t b[CONF_CANARY_KEYS] = {5000, 5000, 5000};
	b[CONF_CANARY_KEY_APPLICATION_NAME] = 3;
	assert_string_equal(router_route(&r, "", "u", NULL, b), "main");
	RouterCanaryOpts opts = {.has_key = true, .key = CONF_CANARY_KEY_APPLICATION_NAME};
	assert_true(router_set_canary_opts(&r, "canary", 10, &opts, err, sizeof(err)));
	assert_string_equal(router_route(&r, "", "u", NULL, b), "canary");
	router_free(&r);
}

/* ---- admin changes ------------------------------------------------------ */

typedef struct BadSchema {
	const char *name;
	const char *err;
} BadSchema;

#define RULE "a route must be a lower-case identifier ([a-z_][a-z0-9_$]*, at most 63 bytes)"
#define LONG64 "a123456789012345678901234567890123456789012345678901234567890123"
#define LONG63 "a12345678901234567890123456789012345678901234567890123456789012"

static const BadSchema bad_schemas[] = {
        {"Public", "invalid schema name \"Public\": " RULE},
        {"public_V2", "invalid schema name \"public_V2\": " RULE},
        {"pg_catalog", "schema \"pg_catalog\" is a system schema: it cannot be a route"},
        {"pg_temp", "schema \"pg_temp\" is a system schema: it cannot be a route"},
        {"information_schema", "schema \"information_schema\" is a system schema: it cannot be a route"},
        {"a,b", "invalid schema name \"a,b\": " RULE},
        {"a b", "invalid schema name \"a b\": " RULE},
        {"\"quoted\"", "invalid schema name \"\"quoted\"\": " RULE},
        {"1abc", "invalid schema name \"1abc\": " RULE},
        {"", "invalid schema name \"\": " RULE},
        {LONG64, "invalid schema name \"" LONG64 "\": " RULE},
};

/* Every bad schema is refused by CHANGE with its exact message, and leaves
 * the table and its generation alone. */
static void check_bad_schemas(Router *r, bool (*change)(Router *, const char *, char *, size_t))
{
	for (size_t i = 0; i < sizeof(bad_schemas) / sizeof(bad_schemas[0]); i++) {
		char err[256] = "";
		uint64_t gen = r->generation;
		size_t n_pins = r->n_pins;
		if (change(r, bad_schemas[i].name, err, sizeof(err)))
			fail_msg("schema '%s' was accepted", bad_schemas[i].name);
		assert_string_equal(err, bad_schemas[i].err);
		assert_int_equal(r->generation, gen);
		assert_int_equal(r->n_pins, n_pins);
	}
}

static bool change_default(Router *r, const char *s, char *err, size_t errlen)
{
	return router_set_default(r, s, err, errlen);
}
static bool change_pin_app(Router *r, const char *s, char *err, size_t errlen)
{
	return router_set_pin(r, CONF_PIN_APP, "web", s, err, errlen);
}
static bool change_pin_addr(Router *r, const char *s, char *err, size_t errlen)
{
	return router_set_pin(r, CONF_PIN_ADDR, "10.0.0.0/8", s, err, errlen);
}
static bool change_pin_existing(Router *r, const char *s, char *err, size_t errlen)
{
	return router_set_pin(r, CONF_PIN_USER, "alice", s, err, errlen); /* a pin that exists */
}
static bool change_canary(Router *r, const char *s, char *err, size_t errlen)
{
	return router_set_canary(r, s, 10, err, errlen);
}

static void test_bad_schemas(void **state)
{
	(void)state;
	ConfRoutes cr = mixed_routes();
	Router r;
	router_init(&r);
	assert_true(router_load(&r, &cr));
	check_bad_schemas(&r, change_default);
	check_bad_schemas(&r, change_pin_app);
	check_bad_schemas(&r, change_pin_addr);
	check_bad_schemas(&r, change_pin_existing);
	check_bad_schemas(&r, change_canary);
	char err[256] = "";
	assert_false(router_set_default(&r, NULL, err, sizeof(err)));
	assert_string_equal(err, "invalid schema name \"\": " RULE);
	/* nothing changed */
	assert_string_equal(r.default_schema, "v_default");
	assert_string_equal(r.pins[1].schema, "v_alice");
	assert_null(r.canary_schema);
	assert_int_equal(r.generation, 1);
	/* the longest name and the other allowed characters are fine */
	assert_true(router_set_default(&r, LONG63, err, sizeof(err)));
	assert_true(router_set_default(&r, "_v$2", err, sizeof(err)));
	assert_string_equal(route(&r, "", "bob", NULL, 1), "_v$2");
	assert_true(router_set_default(&r, "pg", err, sizeof(err))); /* only pg_ is reserved */
	assert_true(router_set_default(&r, "pgx_1", err, sizeof(err)));
	router_free(&r);
}

static void test_set_default(void **state)
{
	(void)state;
	Router r;
	router_init(&r);
	char err[256] = "";
	assert_true(router_set_default(&r, "v1", err, sizeof(err)));
	assert_int_equal(r.generation, 1);
	assert_string_equal(route(&r, "", "u", NULL, 1), "v1");
	assert_true(router_set_default(&r, "v2", err, sizeof(err)));
	assert_int_equal(r.generation, 2);
	assert_string_equal(route(&r, "", "u", NULL, 1), "v2");
	/* the same value again is still a change the clients recompute for */
	assert_true(router_set_default(&r, "v2", err, sizeof(err)));
	assert_int_equal(r.generation, 3);
	router_free(&r);
}

static void test_set_pin(void **state)
{
	(void)state;
	Router r;
	router_init(&r);
	char err[256] = "";
	assert_true(router_set_default(&r, "main", err, sizeof(err)));
	uint64_t gen = r.generation;

	assert_true(router_set_pin(&r, CONF_PIN_USER, "alice", "v_alice", err, sizeof(err)));
	assert_int_equal(r.generation, ++gen);
	assert_true(router_set_pin(&r, CONF_PIN_APP, "web*", "v_web", err, sizeof(err)));
	assert_int_equal(r.generation, ++gen);
	assert_true(router_set_pin(&r, CONF_PIN_ADDR, "10.0.0.0/8", "v_net", err, sizeof(err)));
	assert_int_equal(r.generation, ++gen);
	assert_true(router_set_pin(&r, CONF_PIN_ADDR, "::1", "v_lo6", err, sizeof(err)));
	assert_int_equal(r.generation, ++gen);
	assert_int_equal(r.n_pins, 4);
	assert_int_equal(r.pins[2].cidr.family, AF_INET);
	assert_int_equal(r.pins[2].cidr.prefix_len, 8);
	assert_string_equal(route(&r, "web1", "alice", "10.0.0.1", 1), "v_web");
	assert_string_equal(route(&r, "x", "alice", "10.0.0.1", 1), "v_alice");
	assert_string_equal(route(&r, "x", "bob", "::ffff:10.0.0.1", 1), "v_net");
	assert_string_equal(route(&r, "x", "bob", "::1", 1), "v_lo6");
	assert_string_equal(route(&r, "x", "bob", "::2", 1), "main");

	/* the same kind and key again replaces the schema in place */
	assert_true(router_set_pin(&r, CONF_PIN_USER, "alice", "v_alice2", err, sizeof(err)));
	assert_int_equal(r.generation, ++gen);
	assert_int_equal(r.n_pins, 4);
	assert_string_equal(r.pins[0].schema, "v_alice2");
	assert_string_equal(route(&r, "x", "alice", NULL, 1), "v_alice2");
	/* the same key under another kind is another pin */
	assert_true(router_set_pin(&r, CONF_PIN_APP, "alice", "v_app_alice", err, sizeof(err)));
	assert_int_equal(r.n_pins, 5);
	gen++;

	/* errors leave table and generation alone */
	assert_false(router_set_pin(&r, CONF_PIN_USER, "", "v1", err, sizeof(err)));
	assert_string_equal(err, "empty user key");
	assert_false(router_set_pin(&r, CONF_PIN_APP, "", "v1", err, sizeof(err)));
	assert_string_equal(err, "empty app key");
	assert_false(router_set_pin(&r, CONF_PIN_ADDR, "", "v1", err, sizeof(err)));
	assert_string_equal(err, "empty addr key");
	assert_false(router_set_pin(&r, CONF_PIN_ADDR, "10.0.0.300/8", "v1", err, sizeof(err)));
	assert_string_equal(err, "invalid address or CIDR \"10.0.0.300/8\"");
	assert_false(router_set_pin(&r, CONF_PIN_ADDR, "10.0.0.0/33", "v1", err, sizeof(err)));
	assert_string_equal(err, "invalid address or CIDR \"10.0.0.0/33\"");
	assert_false(router_set_pin(&r, CONF_PIN_ADDR, "localhost", "v1", err, sizeof(err)));
	assert_string_equal(err, "invalid address or CIDR \"localhost\"");
	/* a bad CIDR is reported before a bad schema */
	assert_false(router_set_pin(&r, CONF_PIN_ADDR, "nope", "Bad", err, sizeof(err)));
	assert_string_equal(err, "invalid address or CIDR \"nope\"");
	assert_int_equal(r.generation, gen);
	assert_int_equal(r.n_pins, 5);

	/* unset */
	assert_false(router_unset_pin(&r, CONF_PIN_USER, "bob", err, sizeof(err)));
	assert_string_equal(err, "no user pin \"bob\"");
	assert_false(router_unset_pin(&r, CONF_PIN_ADDR, "web*", err, sizeof(err))); /* kind matters */
	assert_string_equal(err, "no addr pin \"web*\"");
	assert_false(router_unset_pin(&r, CONF_PIN_ADDR, "10.0.0.0/08", err, sizeof(err))); /* key text matters */
	assert_string_equal(err, "no addr pin \"10.0.0.0/08\"");
	assert_int_equal(r.generation, gen);
	assert_true(router_unset_pin(&r, CONF_PIN_APP, "web*", err, sizeof(err)));
	assert_int_equal(r.generation, ++gen);
	assert_int_equal(r.n_pins, 4);
	assert_string_equal(route(&r, "web1", "alice", "10.0.0.1", 1), "v_alice2");
	/* the pins after the removed one kept their order and contents */
	assert_int_equal(r.pins[1].kind, CONF_PIN_ADDR);
	assert_string_equal(r.pins[1].key, "10.0.0.0/8");
	assert_string_equal(r.pins[2].key, "::1");
	assert_string_equal(r.pins[3].key, "alice");
	assert_int_equal(r.pins[3].kind, CONF_PIN_APP);
	assert_true(router_unset_pin(&r, CONF_PIN_USER, "alice", err, sizeof(err)));
	assert_true(router_unset_pin(&r, CONF_PIN_ADDR, "10.0.0.0/8", err, sizeof(err)));
	assert_true(router_unset_pin(&r, CONF_PIN_ADDR, "::1", err, sizeof(err)));
	assert_true(router_unset_pin(&r, CONF_PIN_APP, "alice", err, sizeof(err)));
	gen += 4;
	assert_int_equal(r.generation, gen);
	assert_int_equal(r.n_pins, 0);
	assert_string_equal(route(&r, "web1", "alice", "10.0.0.1", 1), "main");
	assert_false(router_unset_pin(&r, CONF_PIN_USER, "alice", err, sizeof(err)));
	assert_string_equal(err, "no user pin \"alice\"");

	/* many pins: the table grows */
	for (int i = 0; i < 40; i++) {
		char key[16];
		snprintf(key, sizeof(key), "u%d", i);
		assert_true(router_set_pin(&r, CONF_PIN_USER, key, "many", err, sizeof(err)));
	}
	assert_int_equal(r.n_pins, 40);
	assert_string_equal(route(&r, "", "u39", NULL, 1), "many");
	assert_string_equal(route(&r, "", "u40", NULL, 1), "main");
	router_free(&r);
}

static void test_set_canary(void **state)
{
	(void)state;
	Router r;
	router_init(&r);
	char err[256] = "";
	assert_true(router_set_default(&r, "main", err, sizeof(err)));
	uint64_t gen = r.generation;

	assert_false(router_set_canary(&r, "c", -1, err, sizeof(err)));
	assert_string_equal(err, "canary percent must be 0..100, not -1");
	assert_false(router_set_canary(&r, "c", 101, err, sizeof(err)));
	assert_string_equal(err, "canary percent must be 0..100, not 101");
	/* the percent is checked before the schema */
	assert_false(router_set_canary(&r, "Bad", 101, err, sizeof(err)));
	assert_string_equal(err, "canary percent must be 0..100, not 101");
	assert_int_equal(r.generation, gen);

	assert_true(router_set_canary(&r, "c", 40, err, sizeof(err)));
	assert_int_equal(r.generation, ++gen);
	assert_string_equal(r.canary_schema, "c");
	assert_int_equal(r.canary_percent, 40);
	/* a bad change leaves the canary as it was */
	assert_false(router_set_canary(&r, "pg_toast", 20, err, sizeof(err)));
	assert_string_equal(err, "schema \"pg_toast\" is a system schema: it cannot be a route");
	assert_string_equal(r.canary_schema, "c");
	assert_int_equal(r.canary_percent, 40);
	assert_int_equal(r.generation, gen);

	/* 0% or no schema: no canary */
	assert_true(router_set_canary(&r, "c", 0, err, sizeof(err)));
	assert_int_equal(r.generation, ++gen);
	assert_null(r.canary_schema);
	assert_int_equal(r.canary_percent, 0);
	assert_true(router_set_canary(&r, "c", 100, err, sizeof(err)));
	assert_true(router_set_canary(&r, NULL, 100, err, sizeof(err)));
	gen += 2;
	assert_int_equal(r.generation, gen);
	assert_null(r.canary_schema);
	assert_int_equal(r.canary_percent, 0);
	assert_string_equal(route(&r, "", "u", NULL, 3), "main");
	router_free(&r);
}

/* The options of a canary command: checked, kept with the canary, dropped
 * with it. */
static void test_set_canary_opts(void **state)
{
	(void)state;
	ConfRoutes cr;
	memset(&cr, 0, sizeof(cr));
	cr.default_schema = "main";
	cr.canary_key = CONF_CANARY_KEY_CONNECTION;
	Router r;
	router_init(&r);
	assert_true(router_load(&r, &cr));
	assert_int_equal(r.canary_key, CONF_CANARY_KEY_CONNECTION);
	assert_int_equal(r.file_canary_key, CONF_CANARY_KEY_CONNECTION);
	char err[256] = "";
	uint64_t gen = r.generation;

	RouterCanaryOpts o = {.has_key = true, .key = CONF_CANARY_KEY_APPLICATION_NAME,
			      .check = {.max_error_ratio = 2, .window_s = 30, .min_transactions = 20}};
	assert_true(router_set_canary_opts(&r, "c", 10, &o, err, sizeof(err)));
	assert_int_equal(r.generation, ++gen);
	assert_string_equal(r.canary_schema, "c");
	assert_int_equal(r.canary_key, CONF_CANARY_KEY_APPLICATION_NAME);
	assert_true(r.canary_check.max_error_ratio == 2);
	assert_int_equal(r.canary_check.window_s, 30);
	assert_int_equal(r.canary_check.min_transactions, 20);

	/* bad options, each with its message; nothing changes */
	static const struct {
		RouterCanaryCheck check;
		const char *err;
	} bad[] = {
		{{0.5, 30, 20}, "max error ratio must be 1..1000000, not 0.5"},
		{{-1, 30, 20}, "max error ratio must be 1..1000000, not -1"},
		{{2e6, 30, 20}, "max error ratio must be 1..1000000, not 2e+06"},
		{{2, 0, 20}, "window must be 1..60 seconds, not 0"},
		{{2, 61, 20}, "window must be 1..60 seconds, not 61"},
		{{2, 30, 0}, "min transactions must be at least 1, not 0"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		RouterCanaryOpts b = {.check = bad[i].check};
		assert_false(router_set_canary_opts(&r, "d", 20, &b, err, sizeof(err)));
		assert_string_equal(err, bad[i].err);
	}
	assert_false(router_set_canary_opts(&r, "Bad", 20, &o, err, sizeof(err)));
	assert_int_equal(r.generation, gen);
	assert_string_equal(r.canary_schema, "c");
	assert_int_equal(r.canary_percent, 10);

	/* a canary command without options: the file's key, no verdict */
	assert_true(router_set_canary(&r, "c", 20, err, sizeof(err)));
	assert_int_equal(r.canary_key, CONF_CANARY_KEY_CONNECTION);
	assert_true(r.canary_check.max_error_ratio == 0);
	/* the end of a canary drops its options */
	assert_true(router_set_canary_opts(&r, "c", 20, &o, err, sizeof(err)));
	assert_true(router_set_canary_opts(&r, "c", 0, &o, err, sizeof(err)));
	assert_null(r.canary_schema);
	assert_int_equal(r.canary_key, CONF_CANARY_KEY_CONNECTION);
	assert_true(r.canary_check.max_error_ratio == 0);
	router_free(&r);
}

/* ---- router_flip ---------------------------------------------------------- */

static void test_flip(void **state)
{
	(void)state;
	Router r;
	router_init(&r);
	char err[256] = "";
	assert_true(router_set_default(&r, "v1", err, sizeof(err)));
	assert_true(router_set_pin(&r, CONF_PIN_APP, "web-*", "v2", err, sizeof(err)));
	assert_true(router_set_pin(&r, CONF_PIN_USER, "alice", "v3", err, sizeof(err)));
	assert_true(router_set_pin(&r, CONF_PIN_ADDR, "10.0.0.0/8", "v2", err, sizeof(err)));
	RouterCanaryOpts o = {.has_key = true, .key = CONF_CANARY_KEY_CONNECTION,
			      .check = {.max_error_ratio = 2, .window_s = 10, .min_transactions = 5}};
	assert_true(router_set_canary_opts(&r, "v2", 30, &o, err, sizeof(err)));
	uint64_t gen = r.generation;

	/* nothing names FROM, FROM is TO, TO is no route: no change at all */
	assert_int_equal(router_flip(&r, "v9", "v1"), 0);
	assert_int_equal(router_flip(&r, "v2", "v2"), 0);
	assert_int_equal(router_flip(&r, "v2", "Bad"), 0);
	assert_int_equal(router_flip(&r, "v2", "pg_catalog"), 0);
	assert_int_equal(router_flip(&r, NULL, "v1"), 0);
	assert_int_equal(r.generation, gen);
	assert_string_equal(r.pins[0].schema, "v2");

	/* the canary's rollback: its pins and the canary go back to the
	 * default, and a canary on the default's schema ends */
	assert_int_equal(router_flip(&r, "v2", "v1"), 4);
	assert_int_equal(r.generation, gen + 1);
	assert_string_equal(r.default_schema, "v1");
	assert_string_equal(r.pins[0].schema, "v1");
	assert_string_equal(r.pins[1].schema, "v3");
	assert_string_equal(r.pins[2].schema, "v1");
	assert_null(r.canary_schema);
	assert_int_equal(r.canary_percent, 0);
	assert_int_equal(r.canary_key, CONF_CANARY_KEY_ADDR);
	assert_true(r.canary_check.max_error_ratio == 0);
	assert_string_equal(route(&r, "web-1", "bob", "10.1.1.1", 0), "v1");
	assert_string_equal(route(&r, "x", "alice", NULL, 0), "v3");

	/* the default moves too; a canary elsewhere stays, with its options */
	assert_true(router_set_canary_opts(&r, "v4", 30, &o, err, sizeof(err)));
	assert_int_equal(router_flip(&r, "v1", "v5"), 3);
	assert_string_equal(r.default_schema, "v5");
	assert_string_equal(r.pins[0].schema, "v5");
	assert_string_equal(r.canary_schema, "v4");
	assert_int_equal(r.canary_key, CONF_CANARY_KEY_CONNECTION);
	/* flipping the default onto the canary's schema ends the canary */
	assert_int_equal(router_flip(&r, "v5", "v4"), 4);
	assert_string_equal(r.default_schema, "v4");
	assert_null(r.canary_schema);
	assert_string_equal(route(&r, "", "bob", NULL, 0), "v4");
	router_free(&r);
}

/* ---- router_equal_conf -------------------------------------------------- */

static void test_equal_conf(void **state)
{
	(void)state;
	ConfPin pa[2], pb[2];
	pa[0] = pin(CONF_PIN_USER, "alice", "v1");
	pa[1] = pin(CONF_PIN_ADDR, "10.0.0.0/8", "v2");
	memcpy(pb, pa, sizeof(pa));
	ConfRoutes a, b;
	memset(&a, 0, sizeof(a));
	a.default_schema = "main";
	a.pins = pa;
	a.n_pins = 2;
	a.canary_schema = "c";
	a.canary_percent = 5;
	b = a;
	b.pins = pb;
	b.default_schema = (char[]){"main"}; /* equal text, other storage */
	assert_true(router_equal_conf(&a, &b));
	assert_true(router_equal_conf(&a, &a));

	b.default_schema = "other";
	assert_false(router_equal_conf(&a, &b));
	b.default_schema = "main";
	b.canary_percent = 6;
	assert_false(router_equal_conf(&a, &b));
	b.canary_percent = 5;
	b.canary_schema = NULL;
	assert_false(router_equal_conf(&a, &b));
	assert_false(router_equal_conf(&b, &a));
	b.canary_schema = "d";
	assert_false(router_equal_conf(&a, &b));
	b.canary_schema = "c";
	b.n_pins = 1;
	assert_false(router_equal_conf(&a, &b));
	b.n_pins = 2;
	pb[1].schema = "v3";
	assert_false(router_equal_conf(&a, &b));
	pb[1].schema = "v2";
	pb[1].key = "10.0.0.0/9";
	assert_false(router_equal_conf(&a, &b));
	pb[1].key = "10.0.0.0/8";
	pb[0].kind = CONF_PIN_APP;
	assert_false(router_equal_conf(&a, &b));
	pb[0].kind = CONF_PIN_USER;
	/* pin order is part of the table (first match wins) */
	pb[0] = pa[1];
	pb[1] = pa[0];
	assert_false(router_equal_conf(&a, &b));
	pb[0] = pa[0];
	pb[1] = pa[1];
	assert_true(router_equal_conf(&a, &b));

	/* the canary key is part of the table */
	b.canary_key = CONF_CANARY_KEY_CONNECTION;
	assert_false(router_equal_conf(&a, &b));
	b.canary_key = a.canary_key;

	/* no canary on either side */
	a.canary_schema = b.canary_schema = NULL;
	a.canary_percent = b.canary_percent = 0;
	assert_true(router_equal_conf(&a, &b));

	/* two loads of the same file are equal; a changed line is not */
	Conf *c1 = load_text("[databases]\nd = dbname=d\n[routes]\ndefault = v1\nuser.a = v2\ncanary = v3 7\n");
	Conf *c2 = load_text("[databases]\nd = dbname=d\n[routes]\ndefault = v1\nuser.a = v2\ncanary = v3 7%\n");
	Conf *c3 = load_text("[databases]\nd = dbname=d\n[routes]\ndefault = v1\nuser.a = v2\ncanary = v3 8\n");
	assert_true(router_equal_conf(&c1->routes, &c2->routes));
	assert_false(router_equal_conf(&c1->routes, &c3->routes));
	conf_free(c1);
	conf_free(c2);
	conf_free(c3);
}

/* ---- rows (the route store's shape) ------------------------------------ */

static void test_rows_round_trip(void **state)
{
	(void)state;
	ConfRoutes cr = mixed_routes();
	cr.canary_schema = "v_canary";
	cr.canary_percent = 7;
	Router r, back;
	router_init(&r);
	assert_true(router_load(&r, &cr));
	size_t n = 0;
	RouteRow *rows = router_to_rows(&r, &n);
	assert_int_equal(n, 8);
	assert_string_equal(rows[0].kind, "default");
	assert_string_equal(rows[0].key, "");
	assert_string_equal(rows[0].schema, "v_default");
	assert_string_equal(rows[1].kind, "addr");
	assert_string_equal(rows[1].key, "10.0.0.0/8");
	assert_string_equal(rows[3].kind, "app");
	assert_string_equal(rows[7].kind, "canary");
	assert_int_equal(rows[7].percent, 7);
	char err[256];
	assert_true(router_from_rows(&back, rows, n, "test", err, sizeof(err)));
	assert_true(router_equal(&r, &back));
	/* the same table routes alike: the shadowed pins keep their order */
	struct sockaddr_in a4;
	memset(&a4, 0, sizeof(a4));
	a4.sin_family = AF_INET;
	inet_pton(AF_INET, "10.1.2.3", &a4.sin_addr);
	assert_string_equal(router_route(&back, "web-1", "bob", (struct sockaddr *)&a4, NULL), "v_web");
	assert_string_equal(router_route(&back, "x", "bob", (struct sockaddr *)&a4, NULL), "v_net");
	free(rows);

	/* router_replace: the content moves, the generation goes up by one */
	uint64_t gen = r.generation;
	Router other;
	router_init(&other);
	assert_true(router_set_default(&other, "v_other", err, sizeof(err)));
	assert_false(router_equal(&r, &other));
	router_replace(&r, &other);
	assert_int_equal(r.generation, gen + 1);
	assert_string_equal(r.default_schema, "v_other");
	assert_int_equal(r.n_pins, 0);
	assert_null(other.default_schema);
	router_free(&r);
	router_free(&back);
	router_free(&other);
}

static void test_rows_bad(void **state)
{
	(void)state;
	Router r;
	char err[256];
	/* bad rows are skipped, the rest is applied */
	const RouteRow rows[] = {
		{"default", "", "v1", 0, NULL},
		{"app", "web-*", "Bad;Name", 0, NULL},     /* the schema-name rule */
		{"app", "ok-*", "v2", 0, NULL},
		{"addr", "not-a-cidr", "v2", 0, NULL},
		{"user", "", "v2", 0, NULL},               /* empty key */
		{"nonsense", "x", "v2", 0, NULL},          /* unknown kind */
		{"app", "ok-*", "v3", 0, NULL},            /* a second row for one pin */
		{"default", "", "v9", 0, NULL},            /* a second default */
		{"canary", "", "v2", 0, NULL},             /* percent 0 */
		{"canary", "x", "v2", 5, NULL},            /* canary with a key */
		{"user", "bob", "pg_catalog", 0, NULL},    /* a system schema */
		{"user", "ann", NULL, 0, NULL},            /* NULL schema */
		{"canary", "", "v3", 20, NULL},
	};
	assert_true(router_from_rows(&r, rows, sizeof(rows) / sizeof(rows[0]), "test", err, sizeof(err)));
	assert_string_equal(r.default_schema, "v1");
	assert_int_equal(r.n_pins, 1);
	assert_string_equal(r.pins[0].key, "ok-*");
	assert_string_equal(r.pins[0].schema, "v2");
	assert_string_equal(r.canary_schema, "v3");
	assert_int_equal(r.canary_percent, 20);
	router_free(&r);
	/* no valid default: nothing */
	const RouteRow nodefault[] = {{"default", "", "Nope", 0, NULL}, {"app", "a", "v1", 0, NULL}};
	assert_false(router_from_rows(&r, nodefault, 2, "database shop", err, sizeof(err)));
	assert_string_equal(err, "routes from database shop have no valid default row");
	assert_null(r.default_schema);
	assert_int_equal(r.n_pins, 0);
	router_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_load_from_conf), cmocka_unit_test(test_precedence),
	        cmocka_unit_test(test_canary_share),   cmocka_unit_test(test_bad_schemas),
	        cmocka_unit_test(test_set_default),    cmocka_unit_test(test_set_pin),
	        cmocka_unit_test(test_set_canary),     cmocka_unit_test(test_equal_conf),
	        cmocka_unit_test(test_hash_vectors),   cmocka_unit_test(test_canary_buckets),
	        cmocka_unit_test(test_set_canary_opts), cmocka_unit_test(test_flip),
	        cmocka_unit_test(test_rows_round_trip), cmocka_unit_test(test_rows_bad),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * proxy/router.c: which version schema a client sees.
 *
 * Order of matching: app.GLOB pins (fnmatch on application_name), user.NAME
 * pins, addr.CIDR pins, then the canary share, then the default. Within a
 * kind, the first pin in table order wins. Every change bumps `generation`;
 * clients compare it with the generation their route was computed at and
 * recompute at their next transaction boundary, so a flip costs nothing until
 * then and never lands inside a transaction.
 *
 * The canary share. Each client gets, at login, one bucket per canary_key
 * (router_canary_draw): a keyed hash (SipHash-2-4, a key random per
 * process) of its address, of its application_name and of a random value
 * drawn at accept, modulo ROUTER_BUCKETS. It is on the canary when its
 * bucket under the key in effect is below percent x 100. So the decision is
 * a function of the key: sticky for the connection, the same for every
 * connection with the same key (with addr, every connection of a host), a
 * larger share keeps everyone the smaller one had, and a smaller share, a
 * new canary schema or its end move clients at their next transaction
 * boundary like every other flip. Another pgflip process draws other
 * buckets (its own key): the share holds, the sides of one host may differ.
 * The route store (routestore.c) writes the table as rows (router_to_rows)
 * and reads rows back (router_from_rows) under the same checks as the
 * admin changes: a row that breaks them is skipped and logged, never
 * applied; router_replace swaps a table in with one generation bump.
 *
 * Route names must be plain lower-case identifiers: the proxy sets
 * search_path to the name verbatim and the sync triggers compare
 * current_setting('search_path') with it literally, so a name that would need
 * quoting could not be both.
 */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "proxy/proxy.h"
#include "proxy/router.h"

void router_init(Router *r) { memset(r, 0, sizeof(*r)); }

static void pins_free(Router *r)
{
	for (size_t i = 0; i < r->n_pins; i++) {
		free(r->pins[i].key);
		free(r->pins[i].schema);
	}
	free(r->pins);
	r->pins = NULL;
	r->n_pins = 0;
	r->cap_pins = 0;
}

void router_free(Router *r)
{
	pins_free(r);
	free(r->default_schema);
	free(r->canary_schema);
	uint64_t gen = r->generation;
	memset(r, 0, sizeof(*r));
	r->generation = gen;
}

static bool router_oom(char *err, size_t errlen);

bool router_load(Router *r, const ConfRoutes *routes)
{
	/* built aside with the admin setters, swapped in whole: out of
	 * memory, R stays as it was */
	Router t;
	router_init(&t);
	char err[256];
	bool ok = router_set_default(&t, routes->default_schema, err, sizeof(err));
	for (size_t i = 0; ok && i < routes->n_pins; i++)
		ok = router_set_pin(&t, routes->pins[i].kind, routes->pins[i].key, routes->pins[i].schema, err,
				    sizeof(err));
	if (ok && routes->canary_schema) {
		/* kept as the file has it, a share of 0 included */
		t.canary_schema = strdup(routes->canary_schema);
		t.canary_percent = routes->canary_percent;
		ok = t.canary_schema != NULL || router_oom(err, sizeof(err));
	}
	if (!ok) {
		log_error("routes: %s", err);
		router_free(&t);
		return false;
	}
	t.canary_key = t.file_canary_key = routes->canary_key;
	router_replace(r, &t);
	return true;
}

static bool str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

bool router_equal_conf(const ConfRoutes *a, const ConfRoutes *b)
{
	if (!str_eq(a->default_schema, b->default_schema) || !str_eq(a->canary_schema, b->canary_schema) ||
	    a->canary_percent != b->canary_percent || a->canary_key != b->canary_key || a->n_pins != b->n_pins)
		return false;
	for (size_t i = 0; i < a->n_pins; i++)
		if (a->pins[i].kind != b->pins[i].kind || strcmp(a->pins[i].key, b->pins[i].key) != 0 ||
		    strcmp(a->pins[i].schema, b->pins[i].schema) != 0)
			return false;
	return true;
}

static bool addr_match(const ConfCidr *cidr, const struct sockaddr *addr)
{
	if (!addr)
		return false;
	if (addr->sa_family == AF_INET)
		return conf_cidr_match(cidr, AF_INET, (const uint8_t *)&((const struct sockaddr_in *)addr)->sin_addr);
	if (addr->sa_family == AF_INET6)
		return conf_cidr_match(cidr, AF_INET6,
				       (const uint8_t *)&((const struct sockaddr_in6 *)addr)->sin6_addr);
	return false;
}

const char *router_route(const Router *r, const char *app, const char *user, const struct sockaddr *addr,
			 const uint16_t *buckets)
{
	static const ConfPinKind order[] = {CONF_PIN_APP, CONF_PIN_USER, CONF_PIN_ADDR};
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		for (size_t i = 0; i < r->n_pins; i++) {
			const RoutePin *p = &r->pins[i];
			if (p->kind != order[k])
				continue;
			bool hit = false;
			switch (p->kind) {
			case CONF_PIN_APP: hit = fnmatch(p->key, app ? app : "", 0) == 0; break;
			case CONF_PIN_USER: hit = user && strcmp(p->key, user) == 0; break;
			case CONF_PIN_ADDR: hit = addr_match(&p->cidr, addr); break;
			}
			if (hit)
				return p->schema;
		}
	}
	if (r->canary_schema && buckets && buckets[r->canary_key] < r->canary_percent * (ROUTER_BUCKETS / 100))
		return r->canary_schema;
	return r->default_schema;
}

const char *router_pin_kind_to_str(ConfPinKind kind)
{
	switch (kind) {
	case CONF_PIN_APP: return "app";
	case CONF_PIN_USER: return "user";
	case CONF_PIN_ADDR: return "addr";
	}
	return "?";
}

/* An admin change that could not get its memory: refused, nothing changed. */
static bool router_oom(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory: the route table is unchanged");
	return false;
}

bool router_set_default(Router *r, const char *schema, char *err, size_t errlen)
{
	if (!conf_route_schema_check(schema, err, errlen))
		return false;
	char *copy = strdup(schema);
	if (!copy)
		return router_oom(err, errlen);
	free(r->default_schema);
	r->default_schema = copy;
	r->generation++;
	return true;
}

static RoutePin *find_pin(Router *r, ConfPinKind kind, const char *key)
{
	for (size_t i = 0; i < r->n_pins; i++)
		if (r->pins[i].kind == kind && strcmp(r->pins[i].key, key) == 0)
			return &r->pins[i];
	return NULL;
}

bool router_set_pin(Router *r, ConfPinKind kind, const char *key, const char *schema, char *err, size_t errlen)
{
	ConfCidr cidr;
	memset(&cidr, 0, sizeof(cidr));
	if (!*key) {
		snprintf(err, errlen, "empty %s key", router_pin_kind_to_str(kind));
		return false;
	}
	if (kind == CONF_PIN_ADDR && !conf_cidr_parse(key, &cidr)) {
		snprintf(err, errlen, "invalid address or CIDR \"%s\"", key);
		return false;
	}
	if (!conf_route_schema_check(schema, err, errlen))
		return false;
	RoutePin *p = find_pin(r, kind, key);
	char *copy = strdup(schema);
	if (!copy)
		return router_oom(err, errlen);
	if (p) {
		free(p->schema);
		p->schema = copy;
	} else {
		RoutePin *grown = proxy_grow_try(r->pins, r->n_pins, &r->cap_pins, sizeof(RoutePin));
		char *key_copy = grown ? strdup(key) : NULL;
		if (!key_copy) {
			free(copy);
			return router_oom(err, errlen);
		}
		r->pins = grown;
		p = &r->pins[r->n_pins++];
		p->kind = kind;
		p->key = key_copy;
		p->schema = copy;
		p->cidr = cidr;
	}
	r->generation++;
	return true;
}

bool router_unset_pin(Router *r, ConfPinKind kind, const char *key, char *err, size_t errlen)
{
	RoutePin *p = find_pin(r, kind, key);
	if (!p) {
		snprintf(err, errlen, "no %s pin \"%s\"", router_pin_kind_to_str(kind), key);
		return false;
	}
	free(p->key);
	free(p->schema);
	size_t i = (size_t)(p - r->pins);
	memmove(&r->pins[i], &r->pins[i + 1], (r->n_pins - i - 1) * sizeof(RoutePin));
	r->n_pins--;
	r->generation++;
	return true;
}

/* The verdict options of a canary command: false with ERR on a bad one. */
static bool canary_check_ok(const RouterCanaryCheck *c, char *err, size_t errlen)
{
	if (c->max_error_ratio == 0)
		return true;
	if (!(c->max_error_ratio >= 1 && c->max_error_ratio <= 1e6)) {
		snprintf(err, errlen, "max error ratio must be 1..1000000, not %g", c->max_error_ratio);
		return false;
	}
	if (c->window_s < 1 || c->window_s > ROUTER_MAX_WINDOW_S) {
		snprintf(err, errlen, "window must be 1..%d seconds, not %d", ROUTER_MAX_WINDOW_S, c->window_s);
		return false;
	}
	if (c->min_transactions < 1) {
		snprintf(err, errlen, "min transactions must be at least 1, not %d", c->min_transactions);
		return false;
	}
	return true;
}

/* No canary any more: its schema, share, key override and verdict go. */
static void canary_end(Router *r)
{
	free(r->canary_schema);
	r->canary_schema = NULL;
	r->canary_percent = 0;
	r->canary_key = r->file_canary_key;
	memset(&r->canary_check, 0, sizeof(r->canary_check));
}

bool router_set_canary_opts(Router *r, const char *schema, int percent, const RouterCanaryOpts *opts, char *err,
			    size_t errlen)
{
	if (percent < 0 || percent > 100) {
		snprintf(err, errlen, "canary percent must be 0..100, not %d", percent);
		return false;
	}
	if (schema && !conf_route_schema_check(schema, err, errlen))
		return false;
	if (opts && !canary_check_ok(&opts->check, err, errlen))
		return false;
	char *copy = schema && percent > 0 ? strdup(schema) : NULL;
	if (schema && percent > 0 && !copy)
		return router_oom(err, errlen);
	canary_end(r);
	if (copy) {
		r->canary_schema = copy;
		r->canary_percent = percent;
		if (opts && opts->has_key)
			r->canary_key = opts->key;
		if (opts)
			r->canary_check = opts->check;
	}
	r->generation++;
	return true;
}

bool router_set_canary(Router *r, const char *schema, int percent, char *err, size_t errlen)
{
	return router_set_canary_opts(r, schema, percent, NULL, err, errlen);
}

/* *SLOT names FROM: it names TO instead. Returns 1 when it changed, else 0. */
static size_t flip_one(char **slot, const char *from, const char *to)
{
	if (!*slot || strcmp(*slot, from) != 0)
		return 0;
	char *copy = strdup(to);
	if (!copy)
		return 0; /* out of memory: this route stays; the caller logs how many moved */
	free(*slot);
	*slot = copy;
	return 1;
}

size_t router_flip(Router *r, const char *from, const char *to)
{
	char err[256];
	if (!from || !to || strcmp(from, to) == 0 || !conf_route_schema_check(to, err, sizeof(err)))
		return 0;
	size_t n = flip_one(&r->default_schema, from, to);
	for (size_t i = 0; i < r->n_pins; i++)
		n += flip_one(&r->pins[i].schema, from, to);
	n += flip_one(&r->canary_schema, from, to);
	if (r->canary_schema && r->default_schema && strcmp(r->canary_schema, r->default_schema) == 0) {
		canary_end(r);
		n++;
	}
	if (n > 0)
		r->generation++;
	return n;
}

/* ---- the canary hash ---------------------------------------------------- */

bool router_hash_init(RouterHash *h, const uint8_t *key)
{
	h->mac = NULL;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac); /* the context holds its own reference */
	size_t size = 8;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_END};
	if (!ctx || EVP_MAC_init(ctx, key, ROUTER_HASH_KEY_LEN, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return false;
	}
	h->mac = ctx;
	return true;
}

void router_hash_free(RouterHash *h)
{
	if (!h)
		return;
	EVP_MAC_CTX_free(h->mac);
	h->mac = NULL;
}

uint64_t router_hash(const RouterHash *h, const void *data, size_t len)
{
	EVP_MAC_CTX *ctx = h->mac ? EVP_MAC_CTX_dup(h->mac) : NULL;
	uint8_t out[8];
	size_t outlen = 0;
	bool ok = ctx && EVP_MAC_update(ctx, data, len) == 1 && EVP_MAC_final(ctx, out, &outlen, sizeof(out)) == 1 &&
		  outlen == sizeof(out);
	EVP_MAC_CTX_free(ctx);
	if (!ok)
		return 0;
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | out[i];
	return v;
}

/* The text of a client's addr key into BUF (see router_canary_draw). */
static void addr_key_text(const RouterKeys *k, char *buf, size_t n)
{
	const struct sockaddr *sa = k->addr;
	if (sa && sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6))
			inet_ntop(AF_INET, &a6->s6_addr[12], buf, (socklen_t)n);
		else
			inet_ntop(AF_INET6, a6, buf, (socklen_t)n);
	} else if (sa && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
	} else if (k->peer_uid >= 0) {
		snprintf(buf, n, "uid %ld", k->peer_uid);
	} else {
		snprintf(buf, n, "unix");
	}
}

void router_canary_draw(const RouterHash *h, const RouterKeys *k, uint16_t *buckets)
{
	char text[INET6_ADDRSTRLEN + 32] = "";
	addr_key_text(k, text, sizeof(text));
	uint8_t nonce[8];
	for (int i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(k->nonce >> (8 * i));
	const char *app = k->app ? k->app : "";
	buckets[CONF_CANARY_KEY_ADDR] = (uint16_t)(router_hash(h, text, strlen(text)) % ROUTER_BUCKETS);
	buckets[CONF_CANARY_KEY_APPLICATION_NAME] = (uint16_t)(router_hash(h, app, strlen(app)) % ROUTER_BUCKETS);
	buckets[CONF_CANARY_KEY_CONNECTION] = (uint16_t)(router_hash(h, nonce, sizeof(nonce)) % ROUTER_BUCKETS);
}

/* ---- the table as rows (the route store's shape) ------------------------ */

RouteRow *router_to_rows(const Router *r, size_t *n)
{
	RouteRow *rows = calloc(r->n_pins + 2, sizeof(RouteRow));
	*n = 0;
	if (!rows)
		return NULL; /* out of memory */
	size_t k = 0;
	if (r->default_schema)
		rows[k++] = (RouteRow){"default", "", r->default_schema, 0, NULL};
	for (size_t i = 0; i < r->n_pins; i++)
		rows[k++] = (RouteRow){router_pin_kind_to_str(r->pins[i].kind), r->pins[i].key, r->pins[i].schema, 0, NULL};
	if (r->canary_schema)
		rows[k++] = (RouteRow){"canary", "", r->canary_schema, r->canary_percent,
				       conf_canary_key_to_str(r->canary_key)};
	*n = k;
	return rows;
}

static bool pin_kind_from_str(const char *s, ConfPinKind *kind)
{
	static const ConfPinKind kinds[] = {CONF_PIN_APP, CONF_PIN_USER, CONF_PIN_ADDR};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(s, router_pin_kind_to_str(kinds[i]))) {
			*kind = kinds[i];
			return true;
		}
	return false;
}

/* One row into OUT (checked as an admin change is), or false with WHY. */
static bool router_add_row(Router *out, const RouteRow *row, char *why, size_t n)
{
	ConfPinKind kind;
	if (!row->kind || !row->key || !row->schema) {
		snprintf(why, n, "a NULL kind, key or schema");
		return false;
	}
	if (!strcmp(row->kind, "default") || !strcmp(row->kind, "canary")) {
		bool is_default = row->kind[0] == 'd';
		if (row->key[0]) {
			snprintf(why, n, "%s takes an empty key", row->kind);
			return false;
		}
		if (is_default ? out->default_schema != NULL : out->canary_schema != NULL) {
			snprintf(why, n, "a second %s row", row->kind);
			return false;
		}
		if (is_default)
			return router_set_default(out, row->schema, why, n);
		if (row->percent < 1 || row->percent > 100) {
			snprintf(why, n, "canary percent must be 1..100, not %d", row->percent);
			return false;
		}
		RouterCanaryOpts opts = {0};
		opts.has_key = row->canary_key && conf_canary_key_parse(row->canary_key, &opts.key);
		return router_set_canary_opts(out, row->schema, row->percent, &opts, why, n);
	}
	if (!pin_kind_from_str(row->kind, &kind)) {
		snprintf(why, n, "unknown kind (expected default, app, user, addr or canary)");
		return false;
	}
	if (find_pin(out, kind, row->key)) {
		snprintf(why, n, "a second %s pin for the same key", row->kind);
		return false;
	}
	return router_set_pin(out, kind, row->key, row->schema, why, n);
}

bool router_from_rows(Router *out, const RouteRow *rows, size_t n, const char *source, char *err, size_t errlen)
{
	router_init(out);
	for (size_t i = 0; i < n; i++) {
		char why[256];
		if (!router_add_row(out, &rows[i], why, sizeof(why)))
			log_warning("routes from %s: row (%s, \"%s\") -> %s skipped: %s", source,
				    rows[i].kind ? rows[i].kind : "NULL", rows[i].key ? rows[i].key : "NULL",
				    rows[i].schema ? rows[i].schema : "NULL", why);
	}
	if (!out->default_schema) {
		snprintf(err, errlen, "routes from %s have no valid default row", source);
		router_free(out);
		router_init(out);
		return false;
	}
	out->generation = 0;
	return true;
}

bool router_equal(const Router *a, const Router *b)
{
	if (!str_eq(a->default_schema, b->default_schema) || !str_eq(a->canary_schema, b->canary_schema) ||
	    a->canary_percent != b->canary_percent || a->canary_key != b->canary_key || a->n_pins != b->n_pins)
		return false;
	for (size_t i = 0; i < a->n_pins; i++)
		if (a->pins[i].kind != b->pins[i].kind || strcmp(a->pins[i].key, b->pins[i].key) != 0 ||
		    strcmp(a->pins[i].schema, b->pins[i].schema) != 0)
			return false;
	return true;
}

void router_replace(Router *r, Router *with)
{
	uint64_t gen = r->generation + 1;
	router_free(r);
	*r = *with;
	r->generation = gen;
	router_init(with);
}

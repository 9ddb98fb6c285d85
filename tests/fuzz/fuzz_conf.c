/*
 * tests/fuzz/fuzz_conf.c: conf_load on arbitrary file contents, the auth
 * files it reads included.
 *
 * Input: INI [ "\n%%\n" USERLIST [ "\n%%\n" HBA ] ]. Each part goes to its
 * own memfd, made once per process (truncated and rewritten for each input)
 * and read through /proc/self/fd/N: no file per input, no disk. In the INI
 * part, @USERLIST@ and @HBA@ are replaced by the paths of the other two, so
 * "auth_file = @USERLIST@" makes conf_load read the second part (seeds do).
 * libFuzzer's leak check (ASan's LeakSanitizer, on by default) runs after
 * inputs that allocated, so a Conf or a half-built one that is not freed on
 * some path is a finding.
 * Checked besides memory safety: NULL comes with a "PATH:LINE: " error; a
 * file holding a NUL byte is refused; a snapshot has what conf.h promises (a
 * default route, one database at least, a NULL-terminated admin_users of
 * non-empty names, pins with keys and schemas, keyword arrays; the keys that
 * need each other; users sorted, unique, of the kind their secret's shape
 * says and found by conf_find_user; hba rules whose method suits their type,
 * each matched by conf_hba_match for a client made to fit it, at its own line
 * or an earlier one).
 * Seeds: tests/fuzz/corpus/conf/ (every .ini of tests/data/conf/,
 * conf/pgflip.ini and a few written for the routes and the auth files).
 */
#include "tests/fuzz/fuzz.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"

/* The three files: the INI, the userlist, the hba file. */
enum { FUZZ_INI, FUZZ_USERS, FUZZ_HBA, FUZZ_FILES };
static int memfd[FUZZ_FILES] = {-1, -1, -1};
static char paths[FUZZ_FILES][64];

/* An addr. pin's network: host bits clear, its own address inside it, the
 * IPv4-mapped form of an IPv4 address matching as the address does, the text
 * of the network parsing back to the same network; and every other pin's
 * address tried against it. */
static void check_cidr(const ConfCidr *cidr, const Conf *c)
{
	int max = cidr->family == AF_INET ? 32 : 128;
	FUZZ_CHECK(cidr->family == AF_INET || cidr->family == AF_INET6);
	FUZZ_CHECK(cidr->prefix_len >= 0 && cidr->prefix_len <= max);
	for (int bit = cidr->prefix_len; bit < max; bit++)
		FUZZ_CHECK(!(cidr->addr[bit / 8] & (0x80u >> (bit % 8))));
	FUZZ_CHECK(conf_cidr_match(cidr, cidr->family, cidr->addr));

	char text[INET6_ADDRSTRLEN + 8];
	FUZZ_CHECK(inet_ntop(cidr->family, cidr->addr, text, INET6_ADDRSTRLEN) != NULL);
	snprintf(text + strlen(text), 8, "/%d", cidr->prefix_len);
	ConfCidr again;
	FUZZ_CHECK(conf_cidr_parse(text, &again));
	FUZZ_CHECK(again.family == cidr->family && again.prefix_len == cidr->prefix_len);
	FUZZ_CHECK(memcmp(again.addr, cidr->addr, (size_t)max / 8) == 0);

	for (size_t i = 0; i < c->routes.n_pins; i++) {
		const ConfPin *other = &c->routes.pins[i];
		if (other->kind != CONF_PIN_ADDR)
			continue;
		const ConfCidr *o = &other->cidr;
		bool m = conf_cidr_match(cidr, o->family, o->addr);
		if (o->family != cidr->family && !(cidr->family == AF_INET && o->family == AF_INET6))
			FUZZ_CHECK(!m);
		if (o->family == AF_INET) {
			uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
			memcpy(mapped + 12, o->addr, 4);
			if (cidr->family == AF_INET)
				FUZZ_CHECK(conf_cidr_match(cidr, AF_INET6, mapped) == m);
		}
	}
}

/* The [pgflip] keys of TLS and authentication, and the checks between them. */
static void check_keys(const Conf *c)
{
	bool verify = c->client_tls_sslmode >= CONF_TLS_VERIFY_CA;
	FUZZ_CHECK(c->auth_type <= CONF_AUTH_HBA);
	FUZZ_CHECK(c->client_tls_sslmode <= CONF_TLS_VERIFY_FULL);
	FUZZ_CHECK(c->server_tls_sslmode <= CONF_TLS_VERIFY_FULL);
	FUZZ_CHECK(strcmp(conf_tls_mode_to_str(c->client_tls_sslmode), "unknown") != 0);
	FUZZ_CHECK(c->client_tls_sslmode == CONF_TLS_DISABLE ||
		   (c->client_tls_cert_file && c->client_tls_key_file));
	FUZZ_CHECK(!verify || c->client_tls_ca_file);
	FUZZ_CHECK(c->auth_type != CONF_AUTH_CERT || verify);
	FUZZ_CHECK(c->auth_type != CONF_AUTH_HBA || c->auth_hba_file);
	FUZZ_CHECK(c->auth_type == CONF_AUTH_TRUST || c->auth_type == CONF_AUTH_CERT || c->auth_file ||
		   c->auth_user);
	FUZZ_CHECK(!c->server_tls_cert_file == !c->server_tls_key_file);
	FUZZ_CHECK(c->client_tls_protocols != 0 && (c->client_tls_protocols & ~CONF_TLS_ALL) == 0);
	FUZZ_CHECK(c->unix_socket_mode >= 0 && c->unix_socket_mode <= 0777);
	FUZZ_CHECK(c->auth_query && c->client_tls_ciphers && c->stats_users);
	for (size_t i = 0; c->stats_users[i]; i++)
		FUZZ_CHECK(c->stats_users[i][0] != '\0');
}

/* auth_file: sorted, unique, each secret of the kind its shape says. */
static void check_users(const Conf *c)
{
	FUZZ_CHECK(c->have_auth_file == (c->auth_file != NULL));
	FUZZ_CHECK(c->have_auth_file || c->n_users == 0);
	for (size_t i = 0; i < c->n_users; i++) {
		const ConfUser *u = &c->users[i];
		size_t len = strlen(u->name);
		FUZZ_CHECK(len > 0 && len <= CONF_MAX_IDENT && u->secret[0] != '\0' && u->line > 0);
		FUZZ_CHECK(i == 0 || strcmp(c->users[i - 1].name, u->name) < 0);
		FUZZ_CHECK(conf_find_user(c, u->name) == u);
		bool scram = strncmp(u->secret, "SCRAM-SHA-256$", 14) == 0;
		if (u->kind == CONF_SECRET_MD5)
			FUZZ_CHECK(strlen(u->secret) == 35 && strncmp(u->secret, "md5", 3) == 0);
		else
			FUZZ_CHECK(u->kind == (scram ? CONF_SECRET_SCRAM : CONF_SECRET_PLAIN));
	}
}

/* The method of the rule at LINE. */
static ConfAuthType method_at(const Conf *c, int line)
{
	for (size_t i = 0; i < c->n_hba; i++) {
		if (c->hba[i].line == line)
			return c->hba[i].method;
	}
	FUZZ_CHECK(!"a line conf_hba_match returned has no rule");
	return CONF_AUTH_REJECT;
}

/* auth_hba_file: each rule's method suits its type, and a client made to
 * fit it is decided by it or by an earlier rule. */
static void check_hba(const Conf *c)
{
	static const uint8_t any_v4[16] = {192, 0, 2, 1};
	FUZZ_CHECK(!c->auth_hba_file || c->n_hba > 0);
	for (size_t i = 0; i < c->n_hba; i++) {
		const ConfHbaRule *r = &c->hba[i];
		FUZZ_CHECK(r->databases && r->users && r->line > 0);
		FUZZ_CHECK(i == 0 || c->hba[i - 1].line < r->line);
		FUZZ_CHECK(r->method != CONF_AUTH_HBA && r->method <= CONF_AUTH_PEER);
		FUZZ_CHECK(r->method != CONF_AUTH_PEER || r->type == CONF_HBA_LOCAL);
		FUZZ_CHECK(r->method != CONF_AUTH_CERT || r->type == CONF_HBA_HOSTSSL);
		FUZZ_CHECK(r->type != CONF_HBA_HOSTSSL || c->client_tls_sslmode != CONF_TLS_DISABLE);
		if (!r->all_addresses)
			check_cidr(&r->address, c);
		const char *user = r->users[0] ? r->users[0] : "fuzz_user";
		const char *db = r->databases[0] ? r->databases[0] : r->sameuser ? user : "fuzz_db";
		bool tls = r->type == CONF_HBA_HOSTSSL || (r->type == CONF_HBA_HOST && (i & 1));
		int family = r->all_addresses ? AF_INET : r->address.family;
		const uint8_t *addr = r->all_addresses ? any_v4 : r->address.addr;
		int line = -1;
		ConfAuthType m = conf_hba_match(c, r->type == CONF_HBA_LOCAL, tls, db, user, family,
						addr, &line);
		FUZZ_CHECK(line > 0 && line <= r->line && m == method_at(c, line));
	}
}

static bool route_ok(const char *schema)
{
	char why[256];
	return conf_route_schema_check(schema, why, sizeof(why));
}

static void check_conf(const Conf *c)
{
	FUZZ_CHECK(c->path && strcmp(c->path, paths[FUZZ_INI]) == 0);
	FUZZ_CHECK(c->routes.default_schema && route_ok(c->routes.default_schema));
	FUZZ_CHECK(c->n_databases > 0 && c->databases);
	for (size_t i = 0; i < c->n_databases; i++) {
		const ConfDatabase *db = &c->databases[i];
		FUZZ_CHECK(db->name && db->conninfo && db->keywords && db->values);
		for (size_t k = 0; db->keywords[k]; k++)
			FUZZ_CHECK(db->values[k] != NULL);
		FUZZ_CHECK(conf_find_database(c, db->name) != NULL);
	}
	FUZZ_CHECK(c->admin_users != NULL);
	for (size_t i = 0; c->admin_users[i]; i++)
		FUZZ_CHECK(c->admin_users[i][0] != '\0' && strlen(c->admin_users[i]) <= CONF_MAX_IDENT);
	for (size_t i = 0; i < c->routes.n_pins; i++) {
		const ConfPin *pin = &c->routes.pins[i];
		FUZZ_CHECK(pin->key && pin->schema && route_ok(pin->schema));
		if (pin->kind == CONF_PIN_ADDR)
			check_cidr(&pin->cidr, c);
	}
	FUZZ_CHECK(c->routes.canary_percent >= 0 && c->routes.canary_percent <= 100);
	FUZZ_CHECK(!c->routes.canary_schema || route_ok(c->routes.canary_schema));
	FUZZ_CHECK((int)c->routes.canary_key >= 0 && (int)c->routes.canary_key < CONF_CANARY_KEYS &&
		   strcmp(conf_canary_key_to_str(c->routes.canary_key), "unknown") != 0);
	FUZZ_CHECK(c->max_packet_size >= 1024 && c->max_packet_size <= 1024u * 1024u * 1024u);
	check_keys(c);
	check_users(c);
	check_hba(c);
}

/* Writes the N bytes at P to memfd I. */
static void put_file(int i, const uint8_t *p, size_t n)
{
	FUZZ_CHECK(ftruncate(memfd[i], 0) == 0);
	FUZZ_CHECK(pwrite(memfd[i], p, n, 0) == (ssize_t)n);
}

/* The INI part with @USERLIST@ and @HBA@ replaced by the memfd paths, into
 * OUT (size * 4 + 1 bytes is room enough: a path is shorter than 4 times a
 * placeholder). Returns the length. */
static size_t expand_ini(const uint8_t *p, size_t n, char *out)
{
	static const char *const marks[] = {"@USERLIST@", "@HBA@"};
	size_t len = 0;
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		while (k < 2 && !(n - i >= strlen(marks[k]) && memcmp(p + i, marks[k], strlen(marks[k])) == 0))
			k++;
		if (k < 2) {
			len += (size_t)sprintf(out + len, "%s", paths[FUZZ_USERS + k]);
			i += strlen(marks[k]);
		} else {
			out[len++] = (char)p[i++];
		}
	}
	return len;
}

/* True when ERR reads "PATH:LINE: " for one of our files, or has the
 * ":LINE: " shape after a path the input named. */
static bool error_shape_ok(const char *err)
{
	for (int i = 0; i < FUZZ_FILES; i++) {
		size_t n = strlen(paths[i]);
		if (strncmp(err, paths[i], n) == 0 && err[n] == ':' && err[n + 1] >= '0' && err[n + 1] <= '9')
			return true;
	}
	for (const char *p = strchr(err, ':'); p; p = strchr(p + 1, ':')) {
		size_t digits = strspn(p + 1, "0123456789");
		if (digits > 0 && p[1 + digits] == ':' && p[2 + digits] == ' ')
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memfd[0] < 0) {
		for (int i = 0; i < FUZZ_FILES; i++) {
			memfd[i] = memfd_create("fuzz_conf", MFD_CLOEXEC);
			FUZZ_CHECK(memfd[i] >= 0);
			snprintf(paths[i], sizeof(paths[i]), "/proc/self/fd/%d", memfd[i]);
		}
	}
	/* split at "\n%%\n": INI, USERLIST, HBA (the rest) */
	const uint8_t *part[FUZZ_FILES] = {data, NULL, NULL};
	size_t len[FUZZ_FILES] = {size, 0, 0};
	for (int i = 0; i + 1 < FUZZ_FILES; i++) {
		const uint8_t *sep = memmem(part[i], len[i], "\n%%\n", 4);
		if (!sep)
			break;
		part[i + 1] = sep + 4;
		len[i + 1] = len[i] - (size_t)(sep + 4 - part[i]);
		len[i] = (size_t)(sep + 1 - part[i]);
	}
	char *ini = malloc(len[FUZZ_INI] * 4 + 1);
	FUZZ_CHECK(ini != NULL);
	put_file(FUZZ_INI, (const uint8_t *)ini, expand_ini(part[FUZZ_INI], len[FUZZ_INI], ini));
	free(ini);
	put_file(FUZZ_USERS, part[FUZZ_USERS] ? part[FUZZ_USERS] : data, len[FUZZ_USERS]);
	put_file(FUZZ_HBA, part[FUZZ_HBA] ? part[FUZZ_HBA] : data, len[FUZZ_HBA]);

	char err[512];
	Conf *conf = conf_load(paths[FUZZ_INI], err, sizeof(err));
	/* a NUL byte makes no text file: refused wherever it is, even in a
	 * comment (the reader cannot see past it) */
	if (memchr(part[FUZZ_INI], '\0', len[FUZZ_INI]))
		FUZZ_CHECK(conf == NULL);
	if (!conf) {
		FUZZ_CHECK(strnlen(err, sizeof(err)) < sizeof(err));
		FUZZ_CHECK(error_shape_ok(err));
		return 0;
	}
	if (conf->auth_file && strcmp(conf->auth_file, paths[FUZZ_USERS]) == 0)
		FUZZ_CHECK(!memchr(part[FUZZ_USERS] ? part[FUZZ_USERS] : data, '\0', len[FUZZ_USERS]));
	if (conf->auth_hba_file && strcmp(conf->auth_hba_file, paths[FUZZ_HBA]) == 0)
		FUZZ_CHECK(!memchr(part[FUZZ_HBA] ? part[FUZZ_HBA] : data, '\0', len[FUZZ_HBA]));
	check_conf(conf);
	conf_free(conf);
	return 0;
}

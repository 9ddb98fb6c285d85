/*
 * tests/fuzz/fuzz_conf.c: conf_load on arbitrary file contents.
 *
 * conf_load takes a path, so the input is written to one memfd made once
 * per process (truncated and rewritten for each input) and loaded through
 * /proc/self/fd/N: no file per input, no disk. libFuzzer's leak check
 * (ASan's LeakSanitizer, on by default) runs after inputs that allocated, so
 * a Conf or a half-built one that is not freed on some path is a finding.
 * Checked besides memory safety: NULL comes with a "PATH:LINE: " error; a
 * file holding a NUL byte is refused; a snapshot has what conf.h promises (a
 * default route, one database at least, a NULL-terminated admin_users of
 * non-empty names, pins with keys and schemas, keyword arrays).
 * Seeds: tests/fuzz/corpus/conf/ (every .ini of tests/data/conf/,
 * conf/pgflip.ini and a few written for the routes).
 */
#include "tests/fuzz/fuzz.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"

static int memfd = -1;
static char path[64];

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

static bool route_ok(const char *schema)
{
	char why[256];
	return conf_route_schema_check(schema, why, sizeof(why));
}

static void check_conf(const Conf *c)
{
	FUZZ_CHECK(c->path && strcmp(c->path, path) == 0);
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
	FUZZ_CHECK(c->max_packet_size >= 1024 && c->max_packet_size <= 1024u * 1024u * 1024u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memfd < 0) {
		memfd = memfd_create("fuzz_conf", MFD_CLOEXEC);
		FUZZ_CHECK(memfd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	FUZZ_CHECK(ftruncate(memfd, 0) == 0);
	FUZZ_CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);

	char err[512];
	Conf *conf = conf_load(path, err, sizeof(err));
	/* a NUL byte makes no text file: refused wherever it is, even in a
	 * comment (the reader cannot see past it) */
	if (memchr(data, '\0', size))
		FUZZ_CHECK(conf == NULL);
	if (!conf) {
		FUZZ_CHECK(strnlen(err, sizeof(err)) < sizeof(err));
		FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':');
		return 0;
	}
	check_conf(conf);
	conf_free(conf);
	return 0;
}

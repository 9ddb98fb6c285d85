/*
 * test_conf_auth.c: unit tests of the TLS and client-authentication half of
 * conf/: the [pgflip] keys auth_*, stats_users, unix_socket_*, client_tls_*
 * and server_tls_*, the checks between them, and the files auth_file
 * (userlist.txt) and auth_hba_file (pg_hba.conf subset) that conf_load reads
 * (conf/auth.c): conf_find_user and conf_hba_match.
 *
 * Every file is written at run time into a mkdtemp folder (write_text of
 * tests/unit/conf_text.h). Error cases compare the whole message,
 * "FILE:LINE: what", FILE being the config or the auth file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "tests/unit/conf_text.h"

#define DATABASES "[databases]\ndemo = host=127.0.0.1 dbname=demo\n"
#define ROUTES "[routes]\ndefault = public\n"
/* What hostssl and cert lines need (the files are not read by conf). */
#define TLS_VERIFY                                                                                 \
	"client_tls_sslmode = verify-full\nclient_tls_cert_file = /etc/pgflip/server.crt\n"         \
	"client_tls_key_file = /etc/pgflip/server.key\nclient_tls_ca_file = /etc/pgflip/ca.crt\n"

static char test_dir[] = "/tmp/pgflip-test-conf-auth-XXXXXX";
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
		snprintf(path, sizeof(path), "%s/%d", test_dir, i);
		unlink(path);
	}
	return rmdir(test_dir);
}

/* A new file of the test folder holding the LEN bytes of TEXT; its path
 * goes to PATH (256 bytes). */
static void new_file_bytes(char *path, const char *text, size_t len)
{
	snprintf(path, 256, "%s/%d", test_dir, file_count++);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void new_file(char *path, const char *text)
{
	snprintf(path, 256, "%s/%d", test_dir, file_count++);
	assert_true(write_text(path, text));
}

/* Writes a config whose [pgflip] section holds PGFLIP (so its first line is
 * line 2) into PATH and loads it; ERR gets the error. */
static Conf *try_load(char *path, const char *pgflip, char *err, size_t errlen)
{
	char text[4096];
	snprintf(text, sizeof(text), "[pgflip]\n%s\n" DATABASES ROUTES, pgflip);
	new_file(path, text);
	return conf_load(path, err, errlen);
}

static Conf *load_ok(const char *pgflip)
{
	char path[256], err[512];
	Conf *conf = try_load(path, pgflip, err, sizeof(err));
	if (!conf)
		fail_msg("conf_load: %s", err);
	return conf;
}

/* Checks that PGFLIP fails with "FILE:" + EXPECTED, FILE being WHERE or, when
 * WHERE is NULL, the config itself. */
static void expect_error(const char *pgflip, const char *where, const char *expected)
{
	char path[256], err[600], want[900];
	Conf *conf = try_load(path, pgflip, err, sizeof(err));
	if (conf) {
		conf_free(conf);
		fail_msg("loaded, expected error %s", expected);
	}
	snprintf(want, sizeof(want), "%s:%s", where ? where : path, expected);
	assert_string_equal(err, want);
}

/* A config whose auth_file holds USERLIST (and whose [pgflip] holds EXTRA too). */
static Conf *load_users(const char *userlist, const char *extra)
{
	char users[256], pgflip[1024];
	new_file(users, userlist);
	snprintf(pgflip, sizeof(pgflip), "auth_file = %s\n%s", users, extra);
	return load_ok(pgflip);
}

static void expect_users_error(const char *userlist, const char *expected)
{
	char users[256], pgflip[1024];
	new_file(users, userlist);
	snprintf(pgflip, sizeof(pgflip), "auth_file = %s", users);
	expect_error(pgflip, users, expected);
}

/* A config whose auth_hba_file holds HBA, with TLS_VERIFY unless EXTRA says
 * something else. */
static Conf *load_hba(const char *hba, const char *extra)
{
	char path[256], pgflip[1024];
	new_file(path, hba);
	snprintf(pgflip, sizeof(pgflip), "auth_hba_file = %s\n%s", path, extra ? extra : TLS_VERIFY);
	return load_ok(pgflip);
}

static void expect_hba_error_with(const char *hba, const char *extra, const char *expected)
{
	char path[256], pgflip[1024];
	new_file(path, hba);
	snprintf(pgflip, sizeof(pgflip), "auth_hba_file = %s\n%s", path, extra);
	expect_error(pgflip, path, expected);
}

static void expect_hba_error(const char *hba, const char *expected)
{
	expect_hba_error_with(hba, TLS_VERIFY, expected);
}

/* ---- [pgflip] keys ---- */

static void test_defaults(void **state)
{
	(void)state;
	Conf *conf = load_ok("");
	assert_int_equal(conf->auth_type, CONF_AUTH_TRUST);
	assert_null(conf->auth_file);
	assert_null(conf->auth_hba_file);
	assert_string_equal(conf->auth_query, "SELECT usename, passwd FROM pg_shadow WHERE usename=$1");
	assert_null(conf->auth_user);
	assert_non_null(conf->stats_users);
	assert_null(conf->stats_users[0]);
	assert_int_equal(conf->unix_socket_mode, 0777);
	assert_null(conf->unix_socket_group);
	assert_int_equal(conf->client_tls_sslmode, CONF_TLS_DISABLE);
	assert_null(conf->client_tls_cert_file);
	assert_null(conf->client_tls_key_file);
	assert_null(conf->client_tls_ca_file);
	assert_int_equal(conf->client_tls_protocols, CONF_TLS_V1_2 | CONF_TLS_V1_3);
	assert_string_equal(conf->client_tls_ciphers, "default");
	assert_int_equal(conf->server_tls_sslmode, CONF_TLS_PREFER);
	assert_null(conf->server_tls_ca_file);
	assert_null(conf->server_tls_cert_file);
	assert_null(conf->server_tls_key_file);
	assert_false(conf->have_auth_file);
	assert_null(conf->users);
	assert_int_equal(conf->n_users, 0);
	assert_null(conf->hba);
	assert_int_equal(conf->n_hba, 0);
	assert_null(conf_find_user(conf, "postgres"));
	int line = -1;
	uint8_t addr[16] = {127, 0, 0, 1};
	assert_int_equal(conf_hba_match(conf, false, false, "demo", "app", AF_INET, addr, &line),
			 CONF_AUTH_REJECT);
	assert_int_equal(line, 0);
	conf_free(conf);
}

static void test_string_keys(void **state)
{
	(void)state;
	Conf *conf = load_ok("auth_query = SELECT u, p FROM pgflip.lookup($1)\n"
			     "auth_user = pgflip_auth\n"
			     "stats_users = grafana, ,nagios\n"
			     "unix_socket_group = postgres\n"
			     "client_tls_ciphers = HIGH:!aNULL\n"
			     "server_tls_ca_file = /etc/ssl/root.crt\n"
			     "server_tls_cert_file = /etc/ssl/pgflip.crt\n"
			     "server_tls_key_file = /etc/ssl/pgflip.key\n");
	assert_string_equal(conf->auth_query, "SELECT u, p FROM pgflip.lookup($1)");
	assert_string_equal(conf->auth_user, "pgflip_auth");
	assert_string_equal(conf->stats_users[0], "grafana");
	assert_string_equal(conf->stats_users[1], "nagios");
	assert_null(conf->stats_users[2]);
	assert_string_equal(conf->unix_socket_group, "postgres");
	assert_string_equal(conf->client_tls_ciphers, "HIGH:!aNULL");
	assert_string_equal(conf->server_tls_ca_file, "/etc/ssl/root.crt");
	assert_string_equal(conf->server_tls_cert_file, "/etc/ssl/pgflip.crt");
	assert_string_equal(conf->server_tls_key_file, "/etc/ssl/pgflip.key");
	conf_free(conf);

	/* empty = not set, for the optional ones */
	conf = load_ok("auth_user =\nunix_socket_group =\nauth_file =\nserver_tls_ca_file =\n");
	assert_null(conf->auth_user);
	assert_null(conf->unix_socket_group);
	assert_null(conf->auth_file);
	assert_null(conf->server_tls_ca_file);
	assert_false(conf->have_auth_file);
	conf_free(conf);

	expect_error("stats_users = ok, "
		     "a234567890123456789012345678901234567890123456789012345678901234",
		     NULL,
		     "2: stats_users: "
		     "'a234567890123456789012345678901234567890123456789012345678901234' is longer "
		     "than 63 bytes");
}

static void test_auth_type(void **state)
{
	(void)state;
	static const struct {
		const char *lines;
		ConfAuthType type;
	} ok[] = {
		{"auth_type = trust", CONF_AUTH_TRUST},
		{"auth_type = md5\nauth_user = pgflip", CONF_AUTH_MD5},
		{"auth_type = scram-sha-256\nauth_user = pgflip", CONF_AUTH_SCRAM},
		{"auth_type = cert\n" TLS_VERIFY, CONF_AUTH_CERT},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		Conf *conf = load_ok(ok[i].lines);
		assert_int_equal(conf->auth_type, ok[i].type);
		conf_free(conf);
	}
	Conf *conf = load_hba("local all all trust\n", "auth_type = hba\nauth_user = pgflip");
	assert_int_equal(conf->auth_type, CONF_AUTH_HBA);
	conf_free(conf);

	static const char *const words[] = {"password", "reject", "peer", "MD5", "Trust", ""};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		char line[64], want[200];
		snprintf(line, sizeof(line), "auth_type = %s", words[i]);
		/* inih drops the blanks around a value */
		snprintf(want, sizeof(want),
			 "2: auth_type: '%.*s' is not one of trust, md5, scram-sha-256, cert, hba",
			 (int)strcspn(words[i], " "), words[i]);
		expect_error(line, NULL, want);
	}
	expect_error("auth_type = plain", NULL, "2: auth_type plain is not supported yet");
	expect_error("auth_type = any", NULL, "2: auth_type any is not supported yet");
	expect_error("auth_type = pam", NULL, "2: auth_type pam is not supported yet");
}

static void test_tls_modes(void **state)
{
	(void)state;
	static const struct {
		const char *word;
		ConfTlsMode mode;
	} modes[] = {
		{"disable", CONF_TLS_DISABLE},     {"allow", CONF_TLS_ALLOW},
		{"prefer", CONF_TLS_PREFER},       {"require", CONF_TLS_REQUIRE},
		{"verify-ca", CONF_TLS_VERIFY_CA}, {"verify-full", CONF_TLS_VERIFY_FULL},
	};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char lines[512];
		snprintf(lines, sizeof(lines),
			 "client_tls_sslmode = %s\nclient_tls_cert_file = c.crt\n"
			 "client_tls_key_file = c.key\nclient_tls_ca_file = ca.crt\n"
			 "server_tls_sslmode = %s",
			 modes[i].word, modes[i].word);
		Conf *conf = load_ok(lines);
		assert_int_equal(conf->client_tls_sslmode, modes[i].mode);
		assert_int_equal(conf->server_tls_sslmode, modes[i].mode);
		assert_string_equal(conf_tls_mode_to_str(conf->client_tls_sslmode), modes[i].word);
		assert_string_equal(conf->client_tls_cert_file, "c.crt");
		assert_string_equal(conf->client_tls_key_file, "c.key");
		assert_string_equal(conf->client_tls_ca_file, "ca.crt");
		conf_free(conf);
	}
	assert_string_equal(conf_tls_mode_to_str((ConfTlsMode)99), "unknown");
	expect_error("client_tls_sslmode = on", NULL,
		     "2: client_tls_sslmode: 'on' is not one of disable, allow, prefer, require, "
		     "verify-ca, verify-full");
	expect_error("server_tls_sslmode = Require", NULL,
		     "2: server_tls_sslmode: 'Require' is not one of disable, allow, prefer, "
		     "require, verify-ca, verify-full");
	expect_error("server_tls_sslmode =", NULL,
		     "2: server_tls_sslmode: '' is not one of disable, allow, prefer, require, "
		     "verify-ca, verify-full");
}

static void test_tls_protocols(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		unsigned bits;
	} ok[] = {
		{"secure", CONF_TLS_V1_2 | CONF_TLS_V1_3},
		{"default", CONF_TLS_V1_2 | CONF_TLS_V1_3},
		{"all", CONF_TLS_ALL},
		{"legacy", CONF_TLS_V1_0 | CONF_TLS_V1_1 | CONF_TLS_V1_2 | CONF_TLS_V1_3},
		{"tlsv1.3", CONF_TLS_V1_3},
		{"tlsv1.0", CONF_TLS_V1_0},
		{"tlsv1.1,tlsv1.2", CONF_TLS_V1_1 | CONF_TLS_V1_2},
		{"TLSv1.2 : TLSv1.3", CONF_TLS_V1_2 | CONF_TLS_V1_3},
		{"tlsv1.2,,tlsv1.3,", CONF_TLS_V1_2 | CONF_TLS_V1_3},
		{"all,!tlsv1.0", CONF_TLS_V1_1 | CONF_TLS_V1_2 | CONF_TLS_V1_3},
		{"!tlsv1.0:!tlsv1.1", CONF_TLS_SECURE},
		{"secure, tlsv1.1", CONF_TLS_V1_1 | CONF_TLS_V1_2 | CONF_TLS_V1_3},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char line[128];
		snprintf(line, sizeof(line), "client_tls_protocols = %s", ok[i].value);
		Conf *conf = load_ok(line);
		if (conf->client_tls_protocols != ok[i].bits)
			fail_msg("%s: 0x%x, expected 0x%x", ok[i].value, conf->client_tls_protocols,
				 ok[i].bits);
		conf_free(conf);
	}
	expect_error("client_tls_protocols = tlsv1.4", NULL,
		     "2: client_tls_protocols: 'tlsv1.4' is not a TLS protocol (tlsv1.0, tlsv1.1, "
		     "tlsv1.2, tlsv1.3, all, secure or legacy)");
	expect_error("client_tls_protocols = tlsv1.2 tlsv1.3", NULL,
		     "2: client_tls_protocols: 'tlsv1.2 tlsv1.3' is not a TLS protocol (tlsv1.0, "
		     "tlsv1.1, tlsv1.2, tlsv1.3, all, secure or legacy)");
	expect_error("client_tls_protocols = secure,!", NULL,
		     "2: client_tls_protocols: '' is not a TLS protocol (tlsv1.0, tlsv1.1, "
		     "tlsv1.2, tlsv1.3, all, secure or legacy)");
	expect_error("client_tls_protocols =", NULL,
		     "2: client_tls_protocols: '' leaves no TLS protocol");
	expect_error("client_tls_protocols = ,", NULL,
		     "2: client_tls_protocols: ',' leaves no TLS protocol");
	expect_error("client_tls_protocols = all,!legacy", NULL,
		     "2: client_tls_protocols: 'all,!legacy' leaves no TLS protocol");
}

static void test_unix_socket_mode(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		int mode;
	} ok[] = {
		{"0777", 0777}, {"0660", 0660}, {"0600", 0600}, {"0", 0}, {"00", 0}, {"0007", 07},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "unix_socket_mode = %s", ok[i].value);
		Conf *conf = load_ok(line);
		assert_int_equal(conf->unix_socket_mode, ok[i].mode);
		conf_free(conf);
	}
	static const char *const not_octal[] = {"777", "660", "0x1ff", "0778", "-0777", "+0777",
						"0777 ", "rw", ""};
	for (size_t i = 0; i < sizeof(not_octal) / sizeof(not_octal[0]); i++) {
		char line[64], want[200];
		snprintf(line, sizeof(line), "unix_socket_mode = %s", not_octal[i]);
		if (strcmp(not_octal[i], "0777 ") == 0) /* inih drops the blank: fine */
			continue;
		snprintf(want, sizeof(want),
			 "2: unix_socket_mode: '%s' is not an octal mode (write it with a leading 0, "
			 "such as 0660)",
			 not_octal[i]);
		expect_error(line, NULL, want);
	}
	expect_error("unix_socket_mode = 01000", NULL,
		     "2: unix_socket_mode: 01000 is out of range (0..0777)");
	expect_error("unix_socket_mode = 04777", NULL,
		     "2: unix_socket_mode: 04777 is out of range (0..0777)");
	expect_error("unix_socket_mode = 0777777777777777777777777", NULL,
		     "2: unix_socket_mode: 0777777777777777777777777 is out of range (0..0777)");
}

/* The keys that need each other: errors of the config as a whole (line 0). */
static void test_cross_key_errors(void **state)
{
	(void)state;
	expect_error("client_tls_sslmode = require", NULL,
		     "0: client_tls_sslmode = require needs client_tls_cert_file");
	expect_error("client_tls_sslmode = allow\nclient_tls_cert_file = a.crt", NULL,
		     "0: client_tls_sslmode = allow needs client_tls_key_file");
	expect_error("client_tls_sslmode = prefer\nclient_tls_key_file = a.key", NULL,
		     "0: client_tls_sslmode = prefer needs client_tls_cert_file");
	expect_error("client_tls_sslmode = verify-ca\nclient_tls_cert_file = a.crt\n"
		     "client_tls_key_file = a.key",
		     NULL,
		     "0: client_tls_sslmode = verify-ca needs client_tls_ca_file (to verify client "
		     "certificates)");
	expect_error("client_tls_sslmode = verify-full\nclient_tls_cert_file = a.crt\n"
		     "client_tls_key_file = a.key\nclient_tls_ca_file =",
		     NULL,
		     "0: client_tls_sslmode = verify-full needs client_tls_ca_file (to verify client "
		     "certificates)");
	expect_error("auth_type = cert", NULL,
		     "0: auth_type = cert needs client_tls_sslmode = verify-ca or verify-full (only "
		     "then is a client certificate asked for and verified), not disable");
	expect_error("auth_type = cert\nclient_tls_sslmode = require\nclient_tls_cert_file = a.crt\n"
		     "client_tls_key_file = a.key\nclient_tls_ca_file = ca.crt",
		     NULL,
		     "0: auth_type = cert needs client_tls_sslmode = verify-ca or verify-full (only "
		     "then is a client certificate asked for and verified), not require");
	expect_error("auth_type = md5", NULL,
		     "0: auth_type = md5 needs auth_file or auth_user (where the users' secrets come "
		     "from)");
	expect_error("auth_type = scram-sha-256\nauth_user =", NULL,
		     "0: auth_type = scram-sha-256 needs auth_file or auth_user (where the users' "
		     "secrets come from)");
	expect_error("auth_type = hba", NULL, "0: auth_type = hba needs auth_hba_file");
	char hba[256], lines[512];
	new_file(hba, "local all all trust\n");
	snprintf(lines, sizeof(lines), "auth_type = hba\nauth_hba_file = %s", hba);
	expect_error(lines, NULL,
		     "0: auth_type = hba needs auth_file or auth_user (where the users' secrets come "
		     "from)");
	expect_error("server_tls_cert_file = a.crt", NULL,
		     "0: server_tls_cert_file needs server_tls_key_file");
	expect_error("server_tls_key_file = a.key", NULL,
		     "0: server_tls_key_file needs server_tls_cert_file");

	/* the order of the keys does not matter; the last value counts */
	Conf *conf = load_ok("auth_type = cert\nclient_tls_ca_file = ca.crt\n"
			     "client_tls_sslmode = verify-ca\nclient_tls_key_file = k\n"
			     "client_tls_cert_file = c\n");
	assert_int_equal(conf->client_tls_sslmode, CONF_TLS_VERIFY_CA);
	conf_free(conf);
	expect_error("client_tls_sslmode = require\nclient_tls_cert_file = c\n"
		     "client_tls_key_file = k\nclient_tls_sslmode = verify-ca",
		     NULL,
		     "0: client_tls_sslmode = verify-ca needs client_tls_ca_file (to verify client "
		     "certificates)");
}

static void test_to_str(void **state)
{
	(void)state;
	static const char *const names[] = {"trust",  "md5",      "scram-sha-256", "cert",
					    "hba",    "reject",   "password",      "peer"};
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		assert_string_equal(conf_auth_type_to_str((ConfAuthType)i), names[i]);
	assert_int_equal(CONF_AUTH_PEER, 7);
	assert_string_equal(conf_auth_type_to_str((ConfAuthType)8), "unknown");
	assert_string_equal(conf_auth_type_to_str((ConfAuthType)-1), "unknown");
	assert_string_equal(conf_tls_mode_to_str(CONF_TLS_DISABLE), "disable");
	assert_string_equal(conf_tls_mode_to_str(CONF_TLS_VERIFY_FULL), "verify-full");
}

/* ---- auth_file ---- */

#define MD5_SECRET "md545f2603610af569b6155c45067268c6b" /* admin / 1234, PgBouncer's example */
#define SCRAM_SECRET                                                                               \
	"SCRAM-SHA-256$4096:QSXCR+Q6sek8bf92$6v4YTVbOVTWuCqTHNdxCbBlvEoFqkj1hd4bx3bHJhYw=:"         \
	"Sq+fEJnuKB0HTpPRIMu8ICNYWZAqDxIxUnyvYsdnbM0="

static void test_userlist(void **state)
{
	(void)state;
	Conf *conf = load_users("; PgBouncer's userlist.txt\n"
				"# another comment\n"
				"\n"
				"\"zoe\" \"" MD5_SECRET "\"\n"
				"   \"alice\"\t\"" SCRAM_SECRET "\"   \"ignored\" field\n"
				"\"say \"\"hi\"\"\" \"pa ss\"\"word\"\n"
				"\"bob\" \"plain secret # not a comment\" # a comment\n"
				"\"carol\" \"md5NotAHash\"\r\n"
				"\"dave\" \"md545F2603610AF569B6155C45067268C6B\"\n"
				"\"ed\" \"md545f2603610af569b6155c45067268c6\"\n"
				"\"élodie\" \"SCRAM-SHA-1$x\"\n"
				"\"; not a comment\" \"x\"\n",
				"");
	assert_true(conf->have_auth_file);
	assert_int_equal(conf->n_users, 9);
	/* sorted by name, bytewise */
	for (size_t i = 1; i < conf->n_users; i++)
		assert_true(strcmp(conf->users[i - 1].name, conf->users[i].name) < 0);

	const ConfUser *u = conf_find_user(conf, "zoe");
	assert_non_null(u);
	assert_string_equal(u->secret, MD5_SECRET);
	assert_int_equal(u->kind, CONF_SECRET_MD5);
	assert_int_equal(u->line, 4);
	u = conf_find_user(conf, "alice");
	assert_string_equal(u->secret, SCRAM_SECRET);
	assert_int_equal(u->kind, CONF_SECRET_SCRAM);
	assert_int_equal(u->line, 5);
	u = conf_find_user(conf, "say \"hi\"");
	assert_non_null(u);
	assert_string_equal(u->secret, "pa ss\"word");
	assert_int_equal(u->kind, CONF_SECRET_PLAIN);
	u = conf_find_user(conf, "bob");
	assert_string_equal(u->secret, "plain secret # not a comment");
	assert_int_equal(u->kind, CONF_SECRET_PLAIN);
	/* not quite md5: plain passwords, as PostgreSQL's get_password_type */
	assert_int_equal(conf_find_user(conf, "carol")->kind, CONF_SECRET_PLAIN);
	assert_string_equal(conf_find_user(conf, "carol")->secret, "md5NotAHash");
	assert_int_equal(conf_find_user(conf, "dave")->kind, CONF_SECRET_PLAIN);
	assert_int_equal(conf_find_user(conf, "ed")->kind, CONF_SECRET_PLAIN);
	assert_int_equal(conf_find_user(conf, "élodie")->kind, CONF_SECRET_PLAIN);
	assert_non_null(conf_find_user(conf, "; not a comment"));

	assert_null(conf_find_user(conf, "Bob"));
	assert_null(conf_find_user(conf, "bo"));
	assert_null(conf_find_user(conf, ""));
	assert_null(conf_find_user(conf, NULL));
	assert_null(conf_find_user(NULL, "bob"));
	conf_free(conf);

	/* an empty file is an empty list (users may come from auth_query) */
	conf = load_users("", "auth_type = md5");
	assert_true(conf->have_auth_file);
	assert_int_equal(conf->n_users, 0);
	assert_null(conf_find_user(conf, "bob"));
	conf_free(conf);

	/* a 63-byte name is fine, the SCRAM shape with minimal parts too */
	conf = load_users("\"a23456789012345678901234567890123456789012345678901234567890123\" \"x\"\n"
			  "\"s\" \"SCRAM-SHA-256$1:AAAA$AA==:AAA=\"\n",
			  "");
	assert_int_equal(conf->n_users, 2);
	assert_int_equal(conf_find_user(conf, "s")->kind, CONF_SECRET_SCRAM);
	conf_free(conf);
}

static void test_userlist_errors(void **state)
{
	(void)state;
	expect_users_error("\"bob\" \"a\"\n\"alice\" \"b\"\n\"bob\" \"c\"\n\"alice\" \"d\"\n"
			   "\"bob\" \"e\"\n",
			   "3: user 'bob' is already listed at line 1");
	expect_users_error("\"x\" \"1\"\n\"zed\" \"a\"\n\"ann\" \"b\"\n\"zed\" \"c\"\n"
			   "\"ann\" \"d\"\n",
			   "4: user 'zed' is already listed at line 2");
	expect_users_error("\"bob\" \"\"\n", "1: user 'bob': empty secret");
	expect_users_error("\"ok\" \"x\"\n\"bob\" \"secr", "2: unterminated quoted string");
	expect_users_error("\"bob \"secret\"\n", "1: unterminated quoted string");
	expect_users_error("\"bob\" \"x\"\"\n", "1: unterminated quoted string");
	expect_users_error("bob secret\n",
			   "1: expected \"NAME\" \"SECRET\" (each in double quotes)");
	expect_users_error("\"bob\" secret\n",
			   "1: expected \"NAME\" \"SECRET\" (each in double quotes)");
	expect_users_error("\"bob\"\n", "1: expected \"NAME\" \"SECRET\" (each in double quotes)");
	expect_users_error("\"bob\" # \"secret\"\n",
			   "1: expected \"NAME\" \"SECRET\" (each in double quotes)");
	expect_users_error("\"bob\"x \"secret\"\n",
			   "1: expected \"NAME\" \"SECRET\" (each in double quotes)");
	expect_users_error("\"bob\",\"secret\"\n",
			   "1: expected \"NAME\" \"SECRET\" (each in double quotes)");
	expect_users_error("\"\" \"secret\"\n", "1: user name '' is not 1 to 63 bytes");
	expect_users_error("\"a234567890123456789012345678901234567890123456789012345678901234\" \"x\"\n",
			   "1: user name "
			   "'a234567890123456789012345678901234567890123456789012345678901234' is not 1 "
			   "to 63 bytes");
	expect_users_error("\"bob\" \"se\x01t\"\n", "1: control character 0x01");

	/* a SCRAM secret of another shape is an error, and its text is not shown */
	static const char *const bad_scram[] = {
		"SCRAM-SHA-256$",
		"SCRAM-SHA-256$4096:c2FsdA==$AAAA",             /* no server key */
		"SCRAM-SHA-256$4096:c2FsdA==$AAAA:",            /* empty server key */
		"SCRAM-SHA-256$:c2FsdA==$AAAA:AAAA",            /* no iterations */
		"SCRAM-SHA-256$0:c2FsdA==$AAAA:AAAA",           /* zero */
		"SCRAM-SHA-256$-1:c2FsdA==$AAAA:AAAA",          /* a sign */
		"SCRAM-SHA-256$99999999999:c2FsdA==$AAAA:AAAA", /* past INT_MAX */
		"SCRAM-SHA-256$4096:c2Fsd$AAAA:AAAA",           /* not a multiple of 4 */
		"SCRAM-SHA-256$4096:c2F*dA==$AAAA:AAAA",        /* not base64 */
		"SCRAM-SHA-256$4096:c2FsdA==$AA=A:AAAA",        /* '=' not at the end */
		"SCRAM-SHA-256$4096:c2Fs====$AAAA:AAAA",        /* three '=' */
		"SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA:AAAA",   /* an extra part */
		"SCRAM-SHA-256$4096$c2FsdA==$AAAA:AAAA",        /* wrong separator */
	};
	for (size_t i = 0; i < sizeof(bad_scram) / sizeof(bad_scram[0]); i++) {
		char users[256], pgflip[512], err[600], want[900], text[256];
		snprintf(text, sizeof(text), "\"u%zu\" \"%s\"\n", i, bad_scram[i]);
		new_file(users, text);
		snprintf(pgflip, sizeof(pgflip), "auth_file = %s", users);
		char path[256];
		Conf *conf = try_load(path, pgflip, err, sizeof(err));
		if (conf)
			fail_msg("%s accepted", bad_scram[i]);
		snprintf(want, sizeof(want),
			 "%s:1: user 'u%zu': malformed SCRAM-SHA-256 secret (expected "
			 "SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>, base64 parts)",
			 users, i);
		assert_string_equal(err, want);
	}

}

/* The exact length limit, NUL bytes, a missing file, a BOM, a reload. */
static void test_userlist_file(void **state)
{
	(void)state;
	char line[9000], users[256], pgflip[512], err[600], want[900], path[256];
	/* "bob" "xxx...x": 8192 bytes fit, 8193 do not */
	for (int len = 8192; len <= 8193; len++) {
		memset(line, 'x', (size_t)len);
		memcpy(line, "\"bob\" \"", 7);
		line[len - 1] = '"';
		line[len] = '\n';
		line[len + 1] = '\0';
		new_file(users, line);
		snprintf(pgflip, sizeof(pgflip), "auth_file = %s", users);
		Conf *conf = try_load(path, pgflip, err, sizeof(err));
		if (len == 8192) {
			if (!conf)
				fail_msg("%s", err);
			assert_int_equal(strlen(conf_find_user(conf, "bob")->secret), 8192 - 8);
			conf_free(conf);
		} else {
			assert_null(conf);
			snprintf(want, sizeof(want), "%s:1: line too long (max 8192 bytes)", users);
			assert_string_equal(err, want);
		}
	}
	/* a long comment is skipped whole */
	memset(line, '-', 8500);
	line[0] = '#';
	memcpy(line + 8500, "\n\"bob\" \"x\"\n", 12);
	Conf *conf = load_users(line, "");
	assert_int_equal(conf_find_user(conf, "bob")->line, 2);
	conf_free(conf);

	static const char nul[] = "\"a\" \"x\"\n\"bob\" \"se\0cret\"\n";
	new_file_bytes(users, nul, sizeof(nul) - 1);
	snprintf(pgflip, sizeof(pgflip), "auth_file = %s", users);
	expect_error(pgflip, users, "2: NUL byte (an auth file is text)");
	static const char nul_comment[] = "# \0\n\"bob\" \"x\"\n";
	new_file_bytes(users, nul_comment, sizeof(nul_comment) - 1);
	snprintf(pgflip, sizeof(pgflip), "auth_file = %s", users);
	expect_error(pgflip, users, "1: NUL byte (an auth file is text)");

	snprintf(users, sizeof(users), "%s/no-such-userlist.txt", test_dir);
	snprintf(pgflip, sizeof(pgflip), "auth_file = %s", users);
	expect_error(pgflip, users, "0: cannot open: No such file or directory");
	snprintf(pgflip, sizeof(pgflip), "auth_file = %s", test_dir);
	expect_error(pgflip, test_dir, "0: not a regular file");
	snprintf(pgflip, sizeof(pgflip), "auth_file = /dev/null");
	expect_error(pgflip, "/dev/null", "0: not a regular file");
	/* a FIFO is refused at once, not waited on (a reload runs on the event loop) */
	snprintf(users, sizeof(users), "%s/%d", test_dir, file_count++);
	assert_int_equal(mkfifo(users, 0600), 0);
	snprintf(pgflip, sizeof(pgflip), "auth_hba_file = %s", users);
	expect_error(pgflip, users, "0: not a regular file");

	conf = load_users("\xEF\xBB\xBF\"bob\" \"x\"\n", "");
	assert_non_null(conf_find_user(conf, "bob"));
	conf_free(conf);

	/* a reload (a new conf_load) reads the file again */
	new_file(users, "\"bob\" \"one\"\n");
	snprintf(pgflip, sizeof(pgflip), "auth_file = %s", users);
	Conf *first = load_ok(pgflip);
	assert_true(write_text(users, "\"bob\" \"two\"\n\"new\" \"x\"\n"));
	Conf *second = load_ok(pgflip);
	assert_string_equal(conf_find_user(first, "bob")->secret, "one");
	assert_null(conf_find_user(first, "new"));
	assert_string_equal(conf_find_user(second, "bob")->secret, "two");
	assert_non_null(conf_find_user(second, "new"));
	conf_free(first);
	conf_free(second);
}

/* ---- auth_hba_file ---- */

static const char hba_example[] =
	"# TYPE   DATABASE        USER            ADDRESS                 METHOD\n"
	"local    all             postgres                                peer\n"
	"local    sameuser        all                                     md5\n"
	"host     db1,\"Db Two\"    alice,\"bob smith\" 10.0.0.0/8            scram-sha-256 # a comment\n"
	"hostssl  all             all             ::1/128                 cert\n"
	"hostnossl all            all             192.168.1.0 255.255.255.0 password\n"
	"host     \"all\"           all             all                     reject\n"
	"\n"
	"host     all             all             0.0.0.0/0               trust\n"
	"host     all,db1         \"all\",carol     ::/0                    md5\n"
	"\thost    \"sameuser\",x   all             2001:db8::1 ffff:ffff:ffff:ffff:: trust\n";

static void test_hba_parse(void **state)
{
	(void)state;
	Conf *conf = load_hba(hba_example, NULL);
	assert_int_equal(conf->n_hba, 9);
	const ConfHbaRule *r = conf->hba;
	assert_int_equal(r[0].type, CONF_HBA_LOCAL);
	assert_true(r[0].all_databases);
	assert_false(r[0].all_users);
	assert_string_equal(r[0].users[0], "postgres");
	assert_null(r[0].users[1]);
	assert_null(r[0].databases[0]);
	assert_true(r[0].all_addresses);
	assert_int_equal(r[0].method, CONF_AUTH_PEER);
	assert_int_equal(r[0].line, 2);

	assert_true(r[1].sameuser);
	assert_false(r[1].all_databases);
	assert_true(r[1].all_users);
	assert_int_equal(r[1].method, CONF_AUTH_MD5);

	assert_int_equal(r[2].type, CONF_HBA_HOST);
	assert_string_equal(r[2].databases[0], "db1");
	assert_string_equal(r[2].databases[1], "Db Two");
	assert_null(r[2].databases[2]);
	assert_string_equal(r[2].users[0], "alice");
	assert_string_equal(r[2].users[1], "bob smith");
	assert_false(r[2].all_addresses);
	assert_int_equal(r[2].address.family, AF_INET);
	assert_int_equal(r[2].address.prefix_len, 8);
	assert_int_equal(r[2].method, CONF_AUTH_SCRAM);

	assert_int_equal(r[3].type, CONF_HBA_HOSTSSL);
	assert_int_equal(r[3].address.family, AF_INET6);
	assert_int_equal(r[3].address.prefix_len, 128);
	assert_int_equal(r[3].method, CONF_AUTH_CERT);

	assert_int_equal(r[4].type, CONF_HBA_HOSTNOSSL);
	assert_int_equal(r[4].address.prefix_len, 24);
	assert_int_equal(r[4].address.addr[2], 1);
	assert_int_equal(r[4].method, CONF_AUTH_PASSWORD);

	/* a quoted keyword is a name */
	assert_false(r[5].all_databases);
	assert_string_equal(r[5].databases[0], "all");
	assert_true(r[5].all_addresses);
	assert_int_equal(r[5].method, CONF_AUTH_REJECT);
	assert_int_equal(r[6].line, 9);
	assert_int_equal(r[6].address.prefix_len, 0);

	assert_true(r[7].all_databases);
	assert_string_equal(r[7].databases[0], "db1");
	assert_false(r[7].all_users);
	assert_string_equal(r[7].users[0], "all");
	assert_string_equal(r[7].users[1], "carol");
	assert_int_equal(r[7].address.family, AF_INET6);
	assert_int_equal(r[7].address.prefix_len, 0);

	assert_false(r[8].sameuser);
	assert_true(r[8].all_users);
	assert_string_equal(r[8].databases[0], "sameuser");
	assert_string_equal(r[8].databases[1], "x");
	assert_int_equal(r[8].address.prefix_len, 64);
	assert_int_equal(r[8].line, 11);
	conf_free(conf);

	/* blanks around commas, CRLF, host bits beyond the mask dropped (as PostgreSQL) */
	conf = load_hba("host a , b c,d 10.1.2.3 255.0.0.0 md5\r\n"
			"host all all 10.1.2.3/8 md5\n"
			"host all all 127.0.0.1 255.255.255.255 trust\n"
			"host all all ::1 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff trust\n"
			"host all all 0.0.0.0 0.0.0.0 trust\n",
			"");
	assert_int_equal(conf->n_hba, 5);
	assert_string_equal(conf->hba[0].databases[1], "b");
	assert_string_equal(conf->hba[0].users[1], "d");
	assert_int_equal(conf->hba[0].address.prefix_len, 8);
	assert_memory_equal(conf->hba[0].address.addr, "\x0a\0\0\0", 4);
	assert_memory_equal(conf->hba[1].address.addr, "\x0a\0\0\0", 4);
	assert_int_equal(conf->hba[2].address.prefix_len, 32);
	assert_int_equal(conf->hba[3].address.prefix_len, 128);
	assert_int_equal(conf->hba[4].address.prefix_len, 0);
	conf_free(conf);
}

/* conf_hba_match for a client: HOW is "unix", "tcp" or "tls"; ADDR its
 * address (NULL: none). */
static ConfAuthType match(const Conf *conf, const char *how, const char *database,
			  const char *user, const char *addr_text, int *line)
{
	uint8_t addr[16] = {0};
	int family = 0;
	if (addr_text && inet_pton(AF_INET, addr_text, addr) == 1)
		family = AF_INET;
	else if (addr_text && inet_pton(AF_INET6, addr_text, addr) == 1)
		family = AF_INET6;
	else if (addr_text)
		fail_msg("bad address %s", addr_text);
	return conf_hba_match(conf, strcmp(how, "unix") == 0, strcmp(how, "tls") == 0, database,
			      user, family, addr_text ? addr : NULL, line);
}

static void test_hba_match(void **state)
{
	(void)state;
	Conf *conf = load_hba(hba_example, NULL);
	static const struct {
		const char *how, *database, *user, *addr;
		ConfAuthType method;
		int line;
	} cases[] = {
		/* local lines: only for Unix clients, address ignored */
		{"unix", "x", "postgres", NULL, CONF_AUTH_PEER, 2},
		{"unix", "x", "postgres", "10.1.1.1", CONF_AUTH_PEER, 2},
		{"unix", "alice", "alice", NULL, CONF_AUTH_MD5, 3},           /* sameuser */
		{"unix", "alice", "bob", NULL, CONF_AUTH_REJECT, 0},          /* no local line */
		{"tls", "alice", "alice", NULL, CONF_AUTH_REJECT, 0},         /* no address: "all" only */
		/* host: lists, quoted names with blanks */
		{"tcp", "db1", "alice", "10.1.2.3", CONF_AUTH_SCRAM, 4},
		{"tls", "Db Two", "bob smith", "10.255.255.255", CONF_AUTH_SCRAM, 4},
		{"tcp", "db two", "bob smith", "10.1.2.3", CONF_AUTH_TRUST, 9}, /* names are exact */
		{"tcp", "db1", "carol", "10.1.2.3", CONF_AUTH_TRUST, 9},
		{"tcp", "db1", "alice", "11.0.0.1", CONF_AUTH_TRUST, 9},
		{"tcp", "db1", "alice", "::ffff:10.0.0.1", CONF_AUTH_SCRAM, 4}, /* IPv4-mapped */
		/* hostssl vs hostnossl vs the tls flag */
		{"tls", "x", "y", "::1", CONF_AUTH_CERT, 5},
		{"tcp", "x", "y", "::1", CONF_AUTH_REJECT, 0},                /* ::/0 wants "all" or carol */
		{"tcp", "x", "carol", "::1", CONF_AUTH_MD5, 10},
		{"tcp", "x", "all", "::2", CONF_AUTH_MD5, 10},                /* a user named "all" */
		{"tcp", "x", "y", "192.168.1.200", CONF_AUTH_PASSWORD, 6},
		{"tls", "x", "y", "192.168.1.200", CONF_AUTH_TRUST, 9},
		{"tcp", "x", "y", "::ffff:192.168.1.5", CONF_AUTH_PASSWORD, 6},
		{"tcp", "x", "y", "192.168.2.1", CONF_AUTH_TRUST, 9},
		/* a database named "all", then the address all */
		{"tcp", "all", "y", "172.16.0.1", CONF_AUTH_REJECT, 7},
		{"tcp", "all", "y", "2001:db8::1", CONF_AUTH_REJECT, 7},
		/* IPv6 with a netmask; "sameuser" quoted is a database name */
		{"tcp", "y", "y", "2001:db8::5", CONF_AUTH_REJECT, 0},
		{"tcp", "sameuser", "z", "2001:db8::ffff", CONF_AUTH_TRUST, 11},
		{"tcp", "x", "z", "2001:db8:0:0:ffff::1", CONF_AUTH_TRUST, 11},
		{"tcp", "x", "z", "2001:db8:0:1::1", CONF_AUTH_REJECT, 0},
		{"tcp", "x", "x", NULL, CONF_AUTH_REJECT, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int line = -1;
		ConfAuthType m = match(conf, cases[i].how, cases[i].database, cases[i].user,
				       cases[i].addr, &line);
		if (m != cases[i].method || line != cases[i].line)
			fail_msg("case %zu (%s %s %s %s): %s at line %d, expected %s at line %d", i,
				 cases[i].how, cases[i].database, cases[i].user,
				 cases[i].addr ? cases[i].addr : "-", conf_auth_type_to_str(m), line,
				 conf_auth_type_to_str(cases[i].method), cases[i].line);
	}
	assert_int_equal(match(conf, "tcp", "db1", "alice", "10.0.0.1", NULL), CONF_AUTH_SCRAM);
	int line = -1;
	assert_int_equal(conf_hba_match(conf, false, false, NULL, "x", AF_INET, NULL, &line),
			 CONF_AUTH_REJECT);
	assert_int_equal(line, 0);
	assert_int_equal(conf_hba_match(NULL, true, false, "x", "x", 0, NULL, &line),
			 CONF_AUTH_REJECT);
	conf_free(conf);

	/* the first line that matches wins, even a reject before a trust */
	conf = load_hba("host all bob 10.0.0.0/8 reject\n"
			"host all all 10.1.0.0/16 trust\n"
			"host all bob 10.1.0.0/16 trust\n"
			"local all all trust\n"
			"local all all reject\n",
			"");
	assert_int_equal(match(conf, "tcp", "d", "bob", "10.1.2.3", &line), CONF_AUTH_REJECT);
	assert_int_equal(line, 1);
	assert_int_equal(match(conf, "tcp", "d", "eve", "10.1.2.3", &line), CONF_AUTH_TRUST);
	assert_int_equal(line, 2);
	assert_int_equal(match(conf, "unix", "d", "bob", NULL, &line), CONF_AUTH_TRUST);
	assert_int_equal(line, 4);
	assert_int_equal(match(conf, "tcp", "d", "eve", "10.2.0.1", &line), CONF_AUTH_REJECT);
	assert_int_equal(line, 0);
	conf_free(conf);
}

static void test_hba_errors(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		const char *error;
	} cases[] = {
		{"host all +admins all md5", "'+admins': +group is not supported in the user field"},
		{"host @dbs.txt all all md5", "'@dbs.txt': @file is not supported in the database field"},
		{"host all @users.txt all md5", "'@users.txt': @file is not supported in the user field"},
		{"host samerole all all md5", "'samerole': samerole is not supported in the database field"},
		{"host samegroup all all md5", "'samegroup': samegroup is not supported in the database field"},
		{"host replication all all md5",
		 "'replication': replication is not supported in the database field"},
		{"host db,replication all all md5",
		 "'replication': replication is not supported in the database field"},
		{"host all all samehost md5", "'samehost' is not supported"},
		{"host all all samenet md5", "'samenet' is not supported"},
		{"host all all db.example.com md5",
		 "'db.example.com' is not an IP address, a CIDR or all (host names are not supported)"},
		{"host all all .example.com md5",
		 "'.example.com' is not an IP address, a CIDR or all (host names are not supported)"},
		{"host all all localhost md5",
		 "'localhost' is not an IP address, a CIDR or all (host names are not supported)"},
		{"host all all \"all\" md5",
		 "'all' is not an IP address, a CIDR or all (host names are not supported)"},
		{"host all all 10.0.0.0/33 md5",
		 "'10.0.0.0/33' is not an IP address, a CIDR or all (host names are not supported)"},
		{"host all all 10.0.0.0/8,10.1.0.0/16 md5",
		 "'10.0.0.0/8' is not an IP address, a CIDR or all (host names are not supported)"},
		{"host all all 10.0.0.1 md5", "'md5' is not a netmask for 10.0.0.1 (such as 255.255.255.0)"},
		{"host all all 10.0.0.1 255.0.255.0 md5",
		 "'255.0.255.0' is not a netmask for 10.0.0.1 (such as 255.255.255.0)"},
		{"host all all 10.0.0.1 ffff:: md5",
		 "'ffff::' is not a netmask for 10.0.0.1 (such as 255.255.255.0)"},
		{"host all all 10.0.0.1 255.0.0.0/8 md5",
		 "'255.0.0.0/8' is not a netmask for 10.0.0.1 (such as 255.255.255.0)"},
		{"host all all 10.0.0.1", "the line ends before its netmask field"},
		{"include other.conf", "'include' is not supported"},
		{"include_if_exists other.conf", "'include_if_exists' is not supported"},
		{"include_dir conf.d", "'include_dir' is not supported"},
		{"hostgssenc all all all md5", "'hostgssenc' is not supported"},
		{"hostnogssenc all all all md5", "'hostnogssenc' is not supported"},
		{"hots all all all md5",
		 "'hots' is not a connection type (expected local, host, hostssl or hostnossl)"},
		{"Host all all all md5",
		 "'Host' is not a connection type (expected local, host, hostssl or hostnossl)"},
		{"host all all all gss",
		 "authentication method 'gss' is not supported (expected trust, reject, md5, password, "
		 "scram-sha-256, cert or peer)"},
		{"host all all all ldap ldapserver=x",
		 "authentication method 'ldap' is not supported (expected trust, reject, md5, password, "
		 "scram-sha-256, cert or peer)"},
		{"local all all ident",
		 "authentication method 'ident' is not supported (expected trust, reject, md5, password, "
		 "scram-sha-256, cert or peer)"},
		{"host all all all hba",
		 "authentication method 'hba' is not supported (expected trust, reject, md5, password, "
		 "scram-sha-256, cert or peer)"},
		{"host all all all any",
		 "authentication method 'any' is not supported (expected trust, reject, md5, password, "
		 "scram-sha-256, cert or peer)"},
		{"host all all all MD5",
		 "authentication method 'MD5' is not supported (expected trust, reject, md5, password, "
		 "scram-sha-256, cert or peer)"},
		{"host all all all md5 map=omicron", "'map=omicron': options after the method are not supported"},
		{"hostssl all all all cert clientcert=verify-full",
		 "'clientcert=verify-full': options after the method are not supported"},
		{"local all all md5 extra", "'extra': options after the method are not supported"},
		{"host all all all peer", "peer is only supported on local lines"},
		{"host all all all cert", "cert is only supported on hostssl lines"},
		{"local all all cert", "cert is only supported on hostssl lines"},
		{"host all all all md5 \\", "a line continued with '\\' is not supported: write the record on one line"},
		{"# a comment \\", "a line continued with '\\' is not supported: write the record on one line"},
		{"local", "the line ends before its database field"},
		{"local all", "the line ends before its user field"},
		{"local all all", "the line ends before its method field"},
		{"host all all", "the line ends before its address field"},
		{"host all all 10.0.0.0/8", "the line ends before its method field"},
		{"host all all 10.0.0.0/8 # md5", "the line ends before its method field"},
		{"host \"all all all md5", "unterminated quoted string"},
		{"host all all all md5 \"x", "unterminated quoted string"},
		{"host \"\" all all md5", "empty name in the database field"},
		{"host all a,,b all md5", "empty name in the user field"},
		{"host all all all\x01 md5", "control character 0x01"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512], want[600];
		/* a good line first, so that the error is on line 2 */
		snprintf(text, sizeof(text), "local all all trust\n%s\n", cases[i].line);
		snprintf(want, sizeof(want), "2: %s", cases[i].error);
		expect_hba_error(text, want);
	}
	/* "db, all" is the list db,all (blanks after a ',' are allowed, as in
	 * PostgreSQL), so a list ending with ',' takes the next field in */
	Conf *conf = load_hba("host db, all all 10.0.0.0/8 md5\n", "");
	assert_string_equal(conf->hba[0].databases[0], "db");
	assert_true(conf->hba[0].all_databases);
	assert_true(conf->hba[0].all_users);
	conf_free(conf);
	expect_hba_error("host db, all 10.0.0.0/8 md5\n",
			 "1: 'md5' is not an IP address, a CIDR or all (host names are not supported)");

	/* what TLS mode the lines need */
	expect_hba_error_with("hostssl all all all md5\n", "",
			      "1: hostssl never matches: client_tls_sslmode is disable");
	expect_hba_error_with("hostssl all all all cert\n",
			      "client_tls_sslmode = require\nclient_tls_cert_file = c\n"
			      "client_tls_key_file = k",
			      "1: cert needs client_tls_sslmode = verify-ca or verify-full (a client "
			      "certificate is verified only then)");
	conf = load_hba("hostssl all all all md5\n",
			"client_tls_sslmode = allow\nclient_tls_cert_file = c\nclient_tls_key_file = k");
	assert_int_equal(conf->hba[0].type, CONF_HBA_HOSTSSL);
	conf_free(conf);

	/* the file as a whole */
	expect_hba_error("# only comments\n\n", "0: no rules (every client would be refused)");
	expect_hba_error("", "0: no rules (every client would be refused)");
	char path[256], pgflip[1024];
	snprintf(path, sizeof(path), "%s/no-such-hba.conf", test_dir);
	snprintf(pgflip, sizeof(pgflip), "auth_hba_file = %s", path);
	expect_error(pgflip, path, "0: cannot open: No such file or directory");
	static const char nul[] = "local all all trust\nlocal all\0 all trust\n";
	new_file_bytes(path, nul, sizeof(nul) - 1);
	snprintf(pgflip, sizeof(pgflip), "auth_hba_file = %s", path);
	expect_error(pgflip, path, "2: NUL byte (an auth file is text)");

	/* the first error of the files is reported: auth_file is read first */
	char users[256];
	new_file(users, "\"bob\" \"\"\n");
	new_file(path, "bogus\n");
	snprintf(pgflip, sizeof(pgflip), "auth_file = %s\nauth_hba_file = %s", users, path);
	expect_error(pgflip, users, "1: user 'bob': empty secret");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_string_keys),
		cmocka_unit_test(test_auth_type),
		cmocka_unit_test(test_tls_modes),
		cmocka_unit_test(test_tls_protocols),
		cmocka_unit_test(test_unix_socket_mode),
		cmocka_unit_test(test_cross_key_errors),
		cmocka_unit_test(test_to_str),
		cmocka_unit_test(test_userlist),
		cmocka_unit_test(test_userlist_errors),
		cmocka_unit_test(test_userlist_file),
		cmocka_unit_test(test_hba_parse),
		cmocka_unit_test(test_hba_match),
		cmocka_unit_test(test_hba_errors),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * test_conf.c: unit tests of conf/ (conf.h). Config files are written into a
 * mkdtemp folder; tests/data/conf/ holds the fixtures read from the repo root.
 * Error cases compare the whole message, "FILE:LINE: what", so a wrong line
 * number or a changed wording fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"

/* The smallest valid file is these two sections. */
#define DATABASES "[databases]\ndemo = host=127.0.0.1 dbname=demo\n"
#define ROUTES "[routes]\ndefault = public\n"

static char test_dir[] = "/tmp/pgflip-test-conf-XXXXXX";
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
	snprintf(path, sizeof(path), "%s/sub", test_dir);
	rmdir(path);
	return rmdir(test_dir);
}

/* Writes LEN bytes of TEXT to a new file; its path goes to PATH. */
static void write_bytes(char *path, size_t pathlen, const char *text, size_t len)
{
	snprintf(path, pathlen, "%s/%d.ini", test_dir, file_count++);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_conf(char *path, size_t pathlen, const char *text)
{
	write_bytes(path, pathlen, text, strlen(text));
}

/* Loads TEXT; fails the test with the error message if it does not load. */
static Conf *load_text(const char *text)
{
	char path[256], err[512];
	write_conf(path, sizeof(path), text);
	Conf *conf = conf_load(path, err, sizeof(err));
	if (!conf)
		fail_msg("conf_load: %s", err);
	return conf;
}

/* Loads TEXT and checks that it fails with "PATH:" followed by EXPECTED. */
static void assert_load_error(const char *text, const char *expected)
{
	char path[256], err[512], want[800];
	write_conf(path, sizeof(path), text);
	Conf *conf = conf_load(path, err, sizeof(err));
	if (conf) {
		conf_free(conf);
		fail_msg("loaded, expected error %s", expected);
	}
	snprintf(want, sizeof(want), "%s:%s", path, expected);
	assert_string_equal(err, want);
}

/* A [pgflip] section holding LINE, plus the required sections; errors are
 * then on line 2. */
static void assert_setting_error(const char *line, const char *expected)
{
	char text[1024];
	snprintf(text, sizeof(text), "[pgflip]\n%s\n" DATABASES ROUTES, line);
	assert_load_error(text, expected);
}

static Conf *load_setting(const char *line)
{
	char text[1024];
	snprintf(text, sizeof(text), "[pgflip]\n%s\n" DATABASES ROUTES, line);
	return load_text(text);
}

/* Value of KEYWORD in DB's keyword/value arrays, or NULL. */
static const char *db_option(const ConfDatabase *db, const char *keyword)
{
	for (size_t i = 0; db->keywords[i]; i++) {
		if (strcmp(db->keywords[i], keyword) == 0)
			return db->values[i];
	}
	return NULL;
}

static size_t db_option_count(const ConfDatabase *db)
{
	size_t n = 0;
	while (db->keywords[n]) {
		assert_non_null(db->values[n]);
		n++;
	}
	assert_null(db->values[n]);
	return n;
}

/* ---- the example file ---- */

static void test_example_loads(void **state)
{
	(void)state;
	char err[512];
	Conf *conf = conf_load("conf/pgflip.ini", err, sizeof(err));
	if (!conf)
		fail_msg("conf/pgflip.ini: %s", err);
	assert_string_equal(conf->path, "conf/pgflip.ini");
	assert_int_equal(conf->listen_port, 6432);
	assert_string_equal(conf->admin_socket, "/tmp/pgflip-6432.admin");
	assert_int_equal(conf->max_packet_size, 64u * 1024 * 1024);
	assert_int_equal(conf->n_databases, 1);
	const ConfDatabase *demo = conf_find_database(conf, "demo");
	assert_non_null(demo);
	assert_string_equal(db_option(demo, "host"), "127.0.0.1");
	assert_string_equal(demo->dbname, "demo");
	assert_string_equal(demo->user, "postgres");
	assert_string_equal(conf->routes.default_schema, "public");
	assert_int_equal(conf->routes.n_pins, 0);
	assert_null(conf->routes.canary_schema);
	conf_free(conf);
}

/* Every commented-out example line of conf/pgflip.ini (";key = value") must
 * load too once uncommented: the documentation shows valid syntax. */
static void test_example_commented_lines_load(void **state)
{
	(void)state;
	FILE *f = fopen("conf/pgflip.ini", "r");
	assert_non_null(f);
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	assert_non_null(out);
	char line[512];
	int uncommented = 0;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == ';' && line[1] != ';' && strchr(line, '=')) {
			fputs(line + 1, out);
			uncommented++;
		} else {
			fputs(line, out);
		}
	}
	fclose(f);
	fclose(out);
	Conf *conf = load_text(text);
	free(text);
	assert_true(uncommented >= 10);
	assert_string_equal(conf->admin_users[0], "postgres");
	assert_string_equal(conf->admin_users[1], "admin");
	assert_null(conf->admin_users[2]);
	assert_non_null(conf->logfile);
	assert_non_null(conf->pidfile);
	assert_int_equal(conf->n_databases, 3);
	assert_int_equal(conf_find_database(conf, "shop")->pool_size, 40);
	assert_int_equal(conf_find_database(conf, "shop")->pool_mode, CONF_POOL_TRANSACTION);
	assert_int_equal(conf_find_database(conf, "report")->pool_size, 5);
	assert_string_equal(conf_find_database(conf, "report")->user, "report");
	assert_int_equal(conf->routes.n_pins, 6);
	assert_string_equal(conf->routes.canary_schema, "public_002");
	assert_int_equal(conf->routes.canary_percent, 5);
	conf_free(conf);
}

/* ---- [pgflip] ---- */

static void test_defaults(void **state)
{
	(void)state;
	Conf *conf = load_text(DATABASES ROUTES);
	assert_string_equal(conf->listen_addr, "127.0.0.1");
	assert_int_equal(conf->listen_port, 6432);
	assert_string_equal(conf->unix_socket_dir, "/tmp");
	assert_string_equal(conf->admin_socket, "/tmp/pgflip-6432.admin");
	assert_int_equal(conf->pool_mode, CONF_POOL_SESSION);
	assert_int_equal(conf->default_pool_size, 20);
	assert_int_equal(conf->min_pool_size, 0);
	assert_int_equal(conf->reserve_pool_size, 0);
	assert_int_equal(conf->max_client_conn, 100);
	assert_int_equal(conf->max_db_connections, 0);
	assert_int_equal(conf->max_prepared_statements, 200);
	assert_null(conf->logfile);
	assert_null(conf->pidfile);
	assert_non_null(conf->admin_users);
	assert_null(conf->admin_users[0]);
	assert_int_equal(conf->log_level, CONF_LOG_INFO);
	assert_int_equal(conf->auth_type, CONF_AUTH_TRUST);
	assert_int_equal(conf->server_connect_timeout_ms, 15000);
	assert_int_equal(conf->server_login_retry_ms, 15000);
	assert_int_equal(conf->server_idle_timeout_ms, 600000);
	assert_int_equal(conf->server_lifetime_ms, 3600000);
	assert_int_equal(conf->query_wait_timeout_ms, 120000);
	assert_int_equal(conf->shutdown_timeout_ms, 30000);
	assert_int_equal(conf->max_packet_size, 67108864);
	assert_string_equal(conf->server_reset_query, "DISCARD ALL");
	assert_null(conf->routes.canary_schema);
	assert_int_equal(conf->routes.canary_percent, 0);
	assert_int_equal(conf->routes.n_pins, 0);
	conf_free(conf);
}

static void test_every_key(void **state)
{
	(void)state;
	char err[512];
	Conf *conf = conf_load("tests/data/conf/all_keys.ini", err, sizeof(err));
	if (!conf)
		fail_msg("%s", err);
	assert_string_equal(conf->listen_addr, "*");
	assert_int_equal(conf->listen_port, 7432);
	assert_string_equal(conf->unix_socket_dir, "/var/run/pgflip");
	assert_string_equal(conf->admin_socket, "/var/run/pgflip/admin.sock");
	assert_int_equal(conf->pool_mode, CONF_POOL_TRANSACTION);
	assert_int_equal(conf->default_pool_size, 40);
	assert_int_equal(conf->min_pool_size, 5);
	assert_int_equal(conf->reserve_pool_size, 3);
	assert_int_equal(conf->max_client_conn, 5000);
	assert_int_equal(conf->max_db_connections, 80);
	assert_int_equal(conf->max_prepared_statements, 0);
	assert_string_equal(conf->logfile, "/var/log/pgflip.log");
	assert_string_equal(conf->pidfile, "/run/pgflip.pid");
	assert_string_equal(conf->admin_users[0], "postgres");
	assert_string_equal(conf->admin_users[1], "ops");
	assert_string_equal(conf->admin_users[2], "admin");
	assert_null(conf->admin_users[3]);
	assert_int_equal(conf->log_level, CONF_LOG_DEBUG);
	assert_int_equal(conf->server_connect_timeout_ms, 2500);
	assert_int_equal(conf->server_login_retry_ms, 250);
	assert_int_equal(conf->server_idle_timeout_ms, 0);
	assert_int_equal(conf->server_lifetime_ms, 7200000);
	assert_int_equal(conf->query_wait_timeout_ms, 0);
	assert_int_equal(conf->shutdown_timeout_ms, 1001);
	assert_int_equal(conf->max_packet_size, 1048576);
	assert_string_equal(conf->server_reset_query, "RESET ALL");
	assert_int_equal(conf->client_login_timeout_ms, 5000);
	assert_int_equal(conf->client_idle_timeout_ms, 300000);
	assert_string_equal(conf->track_extra_parameters[0], "statement_timeout");
	assert_string_equal(conf->track_extra_parameters[1], "lock_timeout");
	assert_null(conf->track_extra_parameters[2]);
	assert_string_equal(conf->ignore_startup_parameters[0], "extra_float_digits");
	assert_null(conf->ignore_startup_parameters[1]);
	assert_int_equal(conf->server_check_search_path, CONF_CHECK_ALWAYS);
	assert_int_equal(conf->auth_type, CONF_AUTH_HBA);
	assert_string_equal(conf->auth_file, "tests/data/conf/userlist.txt");
	assert_string_equal(conf->auth_hba_file, "tests/data/conf/pg_hba.conf");
	assert_string_equal(conf->auth_query, "SELECT usename, passwd FROM pgflip.user_lookup($1)");
	assert_string_equal(conf->auth_user, "pgflip_auth");
	assert_string_equal(conf->stats_users[0], "grafana");
	assert_string_equal(conf->stats_users[1], "nagios");
	assert_null(conf->stats_users[2]);
	assert_int_equal(conf->unix_socket_mode, 0660);
	assert_string_equal(conf->unix_socket_group, "pgflip");
	assert_int_equal(conf->client_tls_sslmode, CONF_TLS_VERIFY_FULL);
	assert_string_equal(conf->client_tls_cert_file, "/etc/pgflip/server.crt");
	assert_string_equal(conf->client_tls_key_file, "/etc/pgflip/server.key");
	assert_string_equal(conf->client_tls_ca_file, "/etc/pgflip/client-ca.crt");
	assert_int_equal(conf->client_tls_protocols, CONF_TLS_V1_3);
	assert_string_equal(conf->client_tls_ciphers, "HIGH:!aNULL");
	assert_int_equal(conf->server_tls_sslmode, CONF_TLS_VERIFY_CA);
	assert_string_equal(conf->server_tls_ca_file, "/etc/pgflip/server-ca.crt");
	assert_string_equal(conf->server_tls_cert_file, "/etc/pgflip/pgflip.crt");
	assert_string_equal(conf->server_tls_key_file, "/etc/pgflip/pgflip.key");
	/* the fixtures it names (test_conf_auth.c tests the formats) */
	assert_true(conf->have_auth_file);
	assert_int_equal(conf->n_users, 3);
	assert_int_equal(conf_find_user(conf, "pgflip_auth")->kind, CONF_SECRET_MD5);
	assert_int_equal(conf_find_user(conf, "app")->kind, CONF_SECRET_SCRAM);
	assert_int_equal(conf_find_user(conf, "report")->kind, CONF_SECRET_PLAIN);
	assert_int_equal(conf->n_hba, 4);
	uint8_t addr[16] = {10, 1, 2, 3};
	int line;
	assert_int_equal(conf_hba_match(conf, false, true, "main", "app", AF_INET, addr, &line),
			 CONF_AUTH_CERT);
	assert_int_equal(line, 4);
	assert_int_equal(conf_hba_match(conf, false, false, "main", "app", AF_INET, addr, &line),
			 CONF_AUTH_SCRAM);
	assert_int_equal(line, 6);
	assert_string_equal(conf->routes.default_schema, "public_001");
	conf_free(conf);
}

static void test_last_value_wins(void **state)
{
	(void)state;
	Conf *conf = load_text("[pgflip]\nlisten_port = 7000\nadmin_users = a, b\n"
			       "listen_port = 7001\nadmin_users = c\n" DATABASES ROUTES
			       "[routes]\ndefault = public_009\n");
	assert_int_equal(conf->listen_port, 7001);
	assert_string_equal(conf->admin_users[0], "c");
	assert_null(conf->admin_users[1]);
	assert_string_equal(conf->routes.default_schema, "public_009");
	conf_free(conf);
}

static void test_seconds_to_ms(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		int ms;
	} ok[] = {
		{"server_connect_timeout = 7", 7000},
		{"server_connect_timeout = 0.5", 500},
		{"server_connect_timeout = 1.25", 1250},
		{"server_connect_timeout = 2.001", 2001},
		{"server_connect_timeout = 0.001", 1},
		{"server_connect_timeout = 007.10", 7100},
		{"server_connect_timeout = 2147483", 2147483000},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		Conf *conf = load_setting(ok[i].line);
		assert_int_equal(conf->server_connect_timeout_ms, ok[i].ms);
		conf_free(conf);
	}
	Conf *conf = load_setting("server_lifetime = 0");
	assert_int_equal(conf->server_lifetime_ms, 0);
	conf_free(conf);

	assert_setting_error("server_connect_timeout = 0",
			     "2: server_connect_timeout: 0 is out of range (0.001..2147483 seconds)");
	assert_setting_error("shutdown_timeout = 0.000",
			     "2: shutdown_timeout: 0.000 is out of range (0.001..2147483 seconds)");
	assert_setting_error("server_idle_timeout = 2147484",
			     "2: server_idle_timeout: 2147484 is out of range (0..2147483 seconds)");
	assert_setting_error("server_lifetime = 1.0005",
			     "2: server_lifetime: '1.0005' has more than 3 decimals (milliseconds)");
	assert_setting_error("query_wait_timeout = -1",
			     "2: query_wait_timeout: '-1' is not a number of seconds");
	assert_setting_error("query_wait_timeout = 1.",
			     "2: query_wait_timeout: '1.' is not a number of seconds");
	assert_setting_error("query_wait_timeout = .5",
			     "2: query_wait_timeout: '.5' is not a number of seconds");
	assert_setting_error("query_wait_timeout = 1e3",
			     "2: query_wait_timeout: '1e3' is not a number of seconds");
	assert_setting_error("query_wait_timeout = 10s",
			     "2: query_wait_timeout: '10s' is not a number of seconds");
	assert_setting_error("query_wait_timeout =",
			     "2: query_wait_timeout: '' is not a number of seconds");
}

static void test_integer_errors(void **state)
{
	(void)state;
	assert_setting_error("listen_port = abc", "2: listen_port: 'abc' is not a number");
	assert_setting_error("listen_port = 64x", "2: listen_port: '64x' is not a number");
	assert_setting_error("listen_port = +64", "2: listen_port: '+64' is not a number");
	assert_setting_error("listen_port = 6.5", "2: listen_port: '6.5' is not a number");
	assert_setting_error("listen_port =", "2: listen_port: '' is not a number");
	assert_setting_error("listen_port = 0", "2: listen_port: 0 is out of range (1..65535)");
	assert_setting_error("listen_port = 65536", "2: listen_port: 65536 is out of range (1..65535)");
	assert_setting_error("listen_port = -1", "2: listen_port: -1 is out of range (1..65535)");
	assert_setting_error("listen_port = 99999999999999999999999",
			     "2: listen_port: 99999999999999999999999 is out of range (1..65535)");
	assert_setting_error("default_pool_size = 0",
			     "2: default_pool_size: 0 is out of range (1..10000)");
	assert_setting_error("default_pool_size = 10001",
			     "2: default_pool_size: 10001 is out of range (1..10000)");
	assert_setting_error("max_client_conn = 1000001",
			     "2: max_client_conn: 1000001 is out of range (1..1000000)");
	assert_setting_error("max_prepared_statements = 100001",
			     "2: max_prepared_statements: 100001 is out of range (0..100000)");
	assert_setting_error("min_pool_size = -1", "2: min_pool_size: -1 is out of range (0..10000)");

	Conf *conf = load_setting("listen_port = 65535");
	assert_int_equal(conf->listen_port, 65535);
	conf_free(conf);
	conf = load_setting("max_client_conn = 1000000");
	assert_int_equal(conf->max_client_conn, 1000000);
	conf_free(conf);
}

static void test_enum_keys(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		size_t offset;
		int value;
	} ok[] = {
		{"pool_mode = session", offsetof(Conf, pool_mode), CONF_POOL_SESSION},
		{"pool_mode = transaction", offsetof(Conf, pool_mode), CONF_POOL_TRANSACTION},
		{"log_level = error", offsetof(Conf, log_level), CONF_LOG_ERROR},
		{"log_level = warning", offsetof(Conf, log_level), CONF_LOG_WARNING},
		{"log_level = info", offsetof(Conf, log_level), CONF_LOG_INFO},
		{"log_level = debug", offsetof(Conf, log_level), CONF_LOG_DEBUG},
		{"auth_type = trust", offsetof(Conf, auth_type), CONF_AUTH_TRUST},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		Conf *conf = load_setting(ok[i].line);
		int v;
		memcpy(&v, (char *)conf + ok[i].offset, sizeof(v));
		assert_int_equal(v, ok[i].value);
		conf_free(conf);
	}
	assert_setting_error("pool_mode = Session",
			     "2: pool_mode: 'Session' is not one of session, transaction");
	assert_setting_error("pool_mode = statement", "2: pool_mode statement is not supported yet");
	assert_setting_error("log_level = verbose",
			     "2: log_level: 'verbose' is not one of error, warning, info, debug");
	/* the other auth_type values and the TLS modes: test_conf_auth.c */
	assert_setting_error("auth_type = plain", "2: auth_type plain is not supported yet");
	assert_setting_error("auth_type = password",
			     "2: auth_type: 'password' is not one of trust, md5, scram-sha-256, cert, "
			     "hba");
}

static void test_max_packet_size(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		uint32_t bytes;
	} ok[] = {
		{"1024", 1024},         {"1kB", 1024},           {"64MB", 64u << 20},
		{"64 MB", 64u << 20},   {"1GB", 1u << 30},       {"1073741824", 1u << 30},
		{"2048B", 2048},        {"100000", 100000},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "max_packet_size = %s", ok[i].value);
		Conf *conf = load_setting(line);
		assert_int_equal(conf->max_packet_size, ok[i].bytes);
		conf_free(conf);
	}
	assert_setting_error("max_packet_size = 1023",
			     "2: max_packet_size: 1023 is out of range (1024..1073741824 bytes)");
	assert_setting_error("max_packet_size = 2GB",
			     "2: max_packet_size: 2GB is out of range (1024..1073741824 bytes)");
	assert_setting_error("max_packet_size = 1073741825",
			     "2: max_packet_size: 1073741825 is out of range (1024..1073741824 bytes)");
	assert_setting_error("max_packet_size = 99999999999999999999999",
			     "2: max_packet_size: 99999999999999999999999 is out of range "
			     "(1024..1073741824 bytes)");
	assert_setting_error("max_packet_size = 64mb",
			     "2: max_packet_size: '64mb' is not a size (bytes, or a number followed by "
			     "kB, MB or GB)");
	assert_setting_error("max_packet_size = 1TB",
			     "2: max_packet_size: '1TB' is not a size (bytes, or a number followed by "
			     "kB, MB or GB)");
	assert_setting_error("max_packet_size = -5",
			     "2: max_packet_size: '-5' is not a size (bytes, or a number followed by "
			     "kB, MB or GB)");
}

static void test_strings_and_lists(void **state)
{
	(void)state;
	Conf *conf = load_text("[pgflip]\nlisten_addr =\nlogfile =\npidfile =\n"
			       "server_reset_query =\nadmin_users = ,alice,, bob ,\n" DATABASES ROUTES);
	assert_string_equal(conf->listen_addr, "");
	assert_null(conf->logfile);
	assert_null(conf->pidfile);
	assert_string_equal(conf->server_reset_query, "");
	assert_string_equal(conf->admin_users[0], "alice");
	assert_string_equal(conf->admin_users[1], "bob");
	assert_null(conf->admin_users[2]);
	conf_free(conf);

	conf = load_setting("admin_users =");
	assert_null(conf->admin_users[0]);
	conf_free(conf);

	assert_setting_error("admin_users = ok, "
			     "a234567890123456789012345678901234567890123456789012345678901234",
			     "2: admin_users: "
			     "'a234567890123456789012345678901234567890123456789012345678901234' is "
			     "longer than 63 bytes");
}

static void test_admin_socket(void **state)
{
	(void)state;
	Conf *conf = load_setting("unix_socket_dir = /run/pgflip/\nlisten_port = 7000");
	assert_string_equal(conf->admin_socket, "/run/pgflip/pgflip-7000.admin");
	conf_free(conf);

	/* No Unix sockets: no admin socket unless one is given. */
	conf = load_setting("unix_socket_dir =");
	assert_string_equal(conf->unix_socket_dir, "");
	assert_string_equal(conf->admin_socket, "");
	conf_free(conf);
	conf = load_setting("unix_socket_dir =\nadmin_socket = /run/a.sock");
	assert_string_equal(conf->admin_socket, "/run/a.sock");
	conf_free(conf);
	conf = load_setting("admin_socket =");
	assert_string_equal(conf->admin_socket, "");
	conf_free(conf);
	conf = load_setting("unix_socket_dir = /");
	assert_string_equal(conf->admin_socket, "/pgflip-6432.admin");
	conf_free(conf);

	char line[300];
	char dir[120];
	memset(dir, 'd', sizeof(dir) - 1);
	dir[0] = '/';
	dir[sizeof(dir) - 1] = '\0';
	snprintf(line, sizeof(line), "unix_socket_dir = %s", dir);
	char want[400];
	snprintf(want, sizeof(want),
		 "2: admin_socket: '%s/pgflip-6432.admin' is longer than a Unix socket path may be "
		 "(107 bytes)",
		 dir);
	assert_setting_error(line, want);
}

/* ---- file-level errors and syntax ---- */

static void test_file_errors(void **state)
{
	(void)state;
	char err[512], want[512];
	Conf *conf = conf_load("/nonexistent/pgflip.ini", err, sizeof(err));
	assert_null(conf);
	assert_string_equal(err, "/nonexistent/pgflip.ini:0: cannot open: No such file or directory");

	char dir[256];
	snprintf(dir, sizeof(dir), "%s/sub", test_dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	conf = conf_load(dir, err, sizeof(err));
	assert_null(conf);
	snprintf(want, sizeof(want), "%s:0: cannot read: Is a directory", dir);
	assert_string_equal(err, want);

	/* A small buffer still gets a NUL-terminated prefix. */
	char small[8];
	conf = conf_load("/nonexistent/pgflip.ini", small, sizeof(small));
	assert_null(conf);
	assert_string_equal(small, "/nonexi");

	assert_load_error("", "0: [databases] has no entry");
	assert_load_error("[databases]\n" ROUTES, "0: [databases] has no entry");
	assert_load_error(DATABASES, "0: [routes] default is required");
	assert_load_error(DATABASES "[routes]\n", "0: [routes] default is required");
	assert_load_error(DATABASES "[routes]\napp.x = public_002\n", "0: [routes] default is required");
}

static void test_unknown_names(void **state)
{
	(void)state;
	assert_load_error("; comment\n\n[pgflip]\nlisten_port = 1\nlisten_prot = 2\n" DATABASES ROUTES,
			  "5: unknown key 'listen_prot' in [pgflip]");
	assert_load_error("[pgflip]\nLISTEN_PORT = 2\n" DATABASES ROUTES,
			  "2: unknown key 'LISTEN_PORT' in [pgflip]");
	assert_load_error(DATABASES "\n[users]\nbob = pool_mode=session\n" ROUTES,
			  "4: unknown section [users] (expected [pgflip], [databases] or [routes])");
	/* An empty unknown section is caught at its header too. */
	assert_load_error(DATABASES ROUTES "[Routes]\n",
			  "5: unknown section [Routes] (expected [pgflip], [databases] or [routes])");
	assert_load_error("listen_port = 1\n" DATABASES ROUTES, "1: key 'listen_port' before any [section]");
	assert_load_error(DATABASES ROUTES "oops = 1\n",
			  "5: unknown key 'oops' in [routes] (expected default, canary, canary_key, "
			  "app.*, user.* or addr.*)");
}

static void test_syntax(void **state)
{
	(void)state;
	assert_load_error("[pgflip]\nlisten_port 6432\n" DATABASES ROUTES,
			  "2: syntax error (expected [section] or KEY = VALUE)");
	/* ':' does not separate a key from its value (pgbouncer.ini has only '='). */
	assert_load_error("[pgflip]\nlisten_port: 6432\n" DATABASES ROUTES,
			  "2: syntax error (expected [section] or KEY = VALUE)");
	assert_load_error("[pgflip\n" DATABASES ROUTES,
			  "1: syntax error (expected [section] or KEY = VALUE)");
	/* A syntax error before a bad value is the one reported. */
	assert_load_error("[pgflip]\nnonsense\nlisten_port = x\n" DATABASES ROUTES,
			  "2: syntax error (expected [section] or KEY = VALUE)");
	assert_load_error("[pgflip]\nlisten_port = 1\x01\n" DATABASES ROUTES,
			  "2: control character 0x01");

	/* Indented lines are ordinary lines, not continuations of the key above;
	 * " ;" starts a comment; CRLF line ends and a UTF-8 BOM are fine. */
	Conf *conf = load_text("\xEF\xBB\xBF[pgflip]\r\n"
			       "listen_port = 7000 ; was 6432\r\n"
			       "\t  max_client_conn = 50\r\n"
			       "    # an indented comment\r\n" DATABASES ROUTES);
	assert_int_equal(conf->listen_port, 7000);
	assert_int_equal(conf->max_client_conn, 50);
	conf_free(conf);
}

static void test_line_too_long(void **state)
{
	(void)state;
	/* Debian's libinih reads lines into a 200-byte buffer: 199 bytes of text
	 * and the NUL. "x = " plus padding makes lines of exact lengths. */
	char text[1024], line[256], path[256], err[512], want[600];
	for (int len = 198; len <= 200; len++) {
		/* "demo = dbname=" is 14 bytes */
		snprintf(line, sizeof(line), "demo = dbname=%0*d", len - 14, 0);
		assert_int_equal(strlen(line), (size_t)len);
		snprintf(text, sizeof(text), "[routes]\ndefault = public\n\n[databases]\n%s\n", line);
		write_conf(path, sizeof(path), text);
		Conf *conf = conf_load(path, err, sizeof(err));
		if (len <= 199) {
			if (!conf)
				fail_msg("a %d-byte line: %s", len, err);
			assert_int_equal(strlen(conf->databases[0].dbname), (size_t)len - 14);
			conf_free(conf);
		} else {
			assert_null(conf);
			snprintf(want, sizeof(want), "%s:5: line too long (max 199 bytes)", path);
			assert_string_equal(err, want);
		}
	}
	/* The same line last in the file without its '\n'. */
	snprintf(line, sizeof(line), "demo = dbname=%0*d", 199 - 14, 0);
	snprintf(text, sizeof(text), ROUTES "[databases]\n%s", line);
	Conf *conf2 = load_text(text);
	conf_free(conf2);

	/* CRLF: the '\r' counts, as it is part of the line inih sees. */
	snprintf(line, sizeof(line), "demo = dbname=%0*d\r\n", 198 - 14, 0);
	snprintf(text, sizeof(text), ROUTES "[databases]\n%s", line);
	conf2 = load_text(text);
	conf_free(conf2);

	/* A long comment line is skipped whole. */
	memset(line, '-', 250);
	line[0] = ';';
	line[250] = '\0';
	snprintf(text, sizeof(text), "%s\n" DATABASES "%s\n" ROUTES, line, line);
	conf2 = load_text(text);
	assert_int_equal(conf2->n_databases, 1);
	conf_free(conf2);
}

/* ---- [databases] ---- */

static void test_databases(void **state)
{
	(void)state;
	Conf *conf = load_text(
		"[databases]\n"
		"main = host=db1 port=5433 dbname=app user=app password=secret pool_size=7\n"
		"tx = host=db2 pool_mode=transaction dbname=tx2\n"
		"both=pool_mode = session pool_size= 3 host=db3\n"
		"quoted = host=db4 password='a pool_size=3 \\' b' application_name=x\\ y\n"
		"empty =\n"
		"uri = postgresql://u@db5:6000/d?sslmode=disable pool_size=9 pool_mode=transaction\n"
		"* = host=fallback\n"
		"blank = host='' dbname=b user=\n" ROUTES);
	assert_int_equal(conf->n_databases, 8);

	const ConfDatabase *db = conf_find_database(conf, "main");
	assert_ptr_equal(db, &conf->databases[0]);
	assert_int_equal(db->line, 2);
	assert_string_equal(db->conninfo,
			    "host=db1 port=5433 dbname=app user=app password=secret pool_size=7");
	assert_int_equal(db->pool_size, 7);
	assert_int_equal(db->pool_mode, -1);
	assert_string_equal(db->user, "app");
	assert_string_equal(db->dbname, "app");
	assert_int_equal(db_option_count(db), 5);
	assert_string_equal(db_option(db, "host"), "db1");
	assert_string_equal(db_option(db, "port"), "5433");
	assert_string_equal(db_option(db, "dbname"), "app");
	assert_string_equal(db_option(db, "user"), "app");
	assert_string_equal(db_option(db, "password"), "secret");
	assert_null(db_option(db, "pool_size"));

	db = conf_find_database(conf, "tx");
	assert_int_equal(db->line, 3);
	assert_int_equal(db->pool_mode, CONF_POOL_TRANSACTION);
	assert_int_equal(db->pool_size, 0);
	assert_null(db->user);
	assert_string_equal(db->dbname, "tx2");
	assert_int_equal(db_option_count(db), 2);
	assert_null(db_option(db, "pool_mode"));

	db = conf_find_database(conf, "both");
	assert_int_equal(db->pool_mode, CONF_POOL_SESSION);
	assert_int_equal(db->pool_size, 3);
	assert_int_equal(db_option_count(db), 1);
	assert_string_equal(db_option(db, "host"), "db3");
	assert_null(db->dbname);

	/* pool_size= inside a quoted value is the value's, not a pool key. */
	db = conf_find_database(conf, "quoted");
	assert_int_equal(db->pool_size, 0);
	assert_string_equal(db_option(db, "password"), "a pool_size=3 ' b");
	assert_string_equal(db_option(db, "application_name"), "x y");

	db = conf_find_database(conf, "empty");
	assert_string_equal(db->conninfo, "");
	assert_int_equal(db_option_count(db), 0);
	assert_null(db->user);
	assert_null(db->dbname);

	db = conf_find_database(conf, "uri");
	assert_int_equal(db->pool_size, 9);
	assert_int_equal(db->pool_mode, CONF_POOL_TRANSACTION);
	assert_string_equal(db->user, "u");
	assert_string_equal(db->dbname, "d");
	assert_string_equal(db_option(db, "host"), "db5");
	assert_string_equal(db_option(db, "port"), "6000");
	assert_string_equal(db_option(db, "sslmode"), "disable");

	/* Options given empty are left out, as if not given. */
	db = conf_find_database(conf, "blank");
	assert_int_equal(db_option_count(db), 1);
	assert_string_equal(db_option(db, "dbname"), "b");
	assert_null(db_option(db, "host"));
	assert_null(db->user);

	/* "*" is the fallback for names not listed. */
	assert_string_equal(conf_find_database(conf, "nothere")->name, "*");
	assert_string_equal(conf_find_database(conf, "*")->name, "*");
	assert_null(conf_find_database(NULL, "main"));
	conf_free(conf);

	conf = load_text(DATABASES ROUTES);
	assert_null(conf_find_database(conf, "nothere"));
	assert_null(conf_find_database(conf, "Demo"));
	assert_non_null(conf_find_database(conf, "demo"));
	conf_free(conf);

	/* A 63-byte name is fine. */
	conf = load_text("[databases]\n"
			 "a23456789012345678901234567890123456789012345678901234567890123 =\n" ROUTES);
	assert_non_null(conf_find_database(conf,
					   "a23456789012345678901234567890123456789012345678901234567890123"));
	conf_free(conf);
}

static void test_database_errors(void **state)
{
	(void)state;
	assert_load_error("[databases]\nok = host=x\nbad = host=x port\n" ROUTES,
			  "3: database 'bad': missing \"=\" after \"port\" in connection info string");
	assert_load_error("[databases]\nbad = hots=x\n" ROUTES,
			  "2: database 'bad': invalid connection option \"hots\"");
	assert_load_error("[databases]\nbad = host='x\n" ROUTES,
			  "2: database 'bad': unterminated quoted string in connection info string");
	assert_load_error("[databases]\nbad = postgresql://h/d?nope=1\n" ROUTES,
			  "2: database 'bad': invalid URI query parameter: \"nope\"");
	assert_load_error("[databases]\nbad = postgresql://h/d port=5\n" ROUTES,
			  "2: database 'bad': only pool_mode= and pool_size= may follow a URI, not "
			  "'port=5'");
	assert_load_error("[databases]\nbad = host=x pool_size=abc\n" ROUTES,
			  "2: pool_size: 'abc' is not a number");
	assert_load_error("[databases]\nbad = host=x pool_size=0\n" ROUTES,
			  "2: pool_size: 0 is out of range (1..10000)");
	assert_load_error("[databases]\nbad = pool_mode=statement\n" ROUTES,
			  "2: pool_mode statement is not supported yet");
	assert_load_error("[databases]\nbad = pool_mode=tx\n" ROUTES,
			  "2: pool_mode: 'tx' is not one of session, transaction");
	assert_load_error("[databases]\ndemo = host=a\n\ndemo = host=b\n" ROUTES,
			  "4: database 'demo' is already defined at line 2");
	assert_load_error("[databases]\n= host=a\n" ROUTES,
			  "2: database name '' is not 1 to 63 bytes");
	assert_load_error("[databases]\n"
			  "a234567890123456789012345678901234567890123456789012345678901234 =\n" ROUTES,
			  "2: database name "
			  "'a234567890123456789012345678901234567890123456789012345678901234' is not 1 "
			  "to 63 bytes");
}

/* ---- [routes] ---- */

static void test_routes(void **state)
{
	(void)state;
	Conf *conf = load_text(DATABASES
			       "[routes]\n"
			       "app.v2-* = public_002\n"
			       "user.qa = public_003\n"
			       "addr.10.0.0.0/8 = public_004\n"
			       "addr.::1/128 = public_005\n"
			       "app.report?[0-9] = public_006\n"
			       "addr.fd00::1:2/16 = public_007\n"
			       "addr.192.168.1.7 = public_008\n"
			       "default = public_001\n"
			       "canary = public_002 10\n");
	ConfRoutes *r = &conf->routes;
	assert_string_equal(r->default_schema, "public_001");
	assert_string_equal(r->canary_schema, "public_002");
	assert_int_equal(r->canary_percent, 10);
	assert_int_equal(r->n_pins, 7);

	static const struct {
		ConfPinKind kind;
		const char *key;
		const char *schema;
	} want[] = {
		{CONF_PIN_APP, "v2-*", "public_002"},
		{CONF_PIN_USER, "qa", "public_003"},
		{CONF_PIN_ADDR, "10.0.0.0/8", "public_004"},
		{CONF_PIN_ADDR, "::1/128", "public_005"},
		{CONF_PIN_APP, "report?[0-9]", "public_006"},
		{CONF_PIN_ADDR, "fd00::1:2/16", "public_007"},
		{CONF_PIN_ADDR, "192.168.1.7", "public_008"},
	};
	for (size_t i = 0; i < r->n_pins; i++) {
		assert_int_equal(r->pins[i].kind, want[i].kind);
		assert_string_equal(r->pins[i].key, want[i].key);
		assert_string_equal(r->pins[i].schema, want[i].schema);
		assert_int_equal(r->pins[i].line, (int)i + 4);
	}
	assert_int_equal(r->pins[2].cidr.family, AF_INET);
	assert_int_equal(r->pins[2].cidr.prefix_len, 8);
	assert_int_equal(r->pins[3].cidr.family, AF_INET6);
	assert_int_equal(r->pins[3].cidr.prefix_len, 128);
	assert_int_equal(r->pins[3].cidr.addr[15], 1);
	/* fd00::1:2/16 keeps only fd00:: */
	assert_int_equal(r->pins[5].cidr.prefix_len, 16);
	assert_int_equal(r->pins[5].cidr.addr[0], 0xfd);
	assert_int_equal(r->pins[5].cidr.addr[13], 0);
	assert_int_equal(r->pins[5].cidr.addr[15], 0);
	assert_int_equal(r->pins[6].cidr.prefix_len, 32);
	conf_free(conf);
}

static void test_route_errors(void **state)
{
	(void)state;
	assert_load_error(DATABASES "[routes]\ndefault = public\naddr.10.0.0.0/33 = x\n",
			  "5: addr.10.0.0.0/33: '10.0.0.0/33' is not an address or CIDR (such as "
			  "10.0.0.0/8 or ::1/128)");
	assert_load_error(DATABASES "[routes]\naddr.::1/129 = x\ndefault = public\n",
			  "4: addr.::1/129: '::1/129' is not an address or CIDR (such as 10.0.0.0/8 or "
			  "::1/128)");
	assert_load_error(DATABASES "[routes]\naddr.[::1]/128 = x\ndefault = public\n",
			  "4: addr.[::1]/128: '[::1]/128' is not an address or CIDR (such as "
			  "10.0.0.0/8 or ::1/128)");
	assert_load_error(DATABASES "[routes]\ndefault =\n",
			  "4: default: invalid schema name \"\": a route must be a lower-case identifier ([a-z_][a-z0-9_$]*, at most 63 bytes)");
	assert_load_error(DATABASES "[routes]\ndefault = public\n"
				    "user.bob = s234567890123456789012345678901234567890123456789012345678901234\n",
			  "5: user.bob: invalid schema name \"s234567890123456789012345678901234567890123456789012345678901234\": "
			  "a route must be a lower-case identifier ([a-z_][a-z0-9_$]*, at most 63 bytes)");
	assert_load_error(DATABASES "[routes]\ndefault = pg_catalog\n",
			  "4: default: schema \"pg_catalog\" is a system schema: it cannot be a route");
	assert_load_error(DATABASES "[routes]\ndefault = public\napp. = x\n",
			  "5: app.: nothing after the '.'");
	assert_load_error(DATABASES "[routes]\ndefault = public\napp.a* = x\nuser.a* = y\napp.a* = z\n",
			  "7: app.a* is already routed at line 5");
	/* The same network written twice, differently. */
	assert_load_error(DATABASES "[routes]\ndefault = public\naddr.10.1.2.3/8 = x\naddr.10.0.0.0/8 = y\n",
			  "6: addr.10.0.0.0/8 is already routed at line 5");
	assert_load_error(DATABASES "[routes]\ndefault = public\nApp.x = y\n",
			  "5: unknown key 'App.x' in [routes] (expected default, canary, canary_key, "
			  "app.*, user.* or addr.*)");
}

static void test_canary(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		const char *schema;
		int percent;
	} ok[] = {
		{"public_002 5", "public_002", 5},
		{"public_002\t 0", "public_002", 0},
		{"v3 100", "v3", 100},
		{"v3 25%", "v3", 25},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), DATABASES ROUTES "canary = %s\n", ok[i].value);
		Conf *conf = load_text(text);
		assert_string_equal(conf->routes.canary_schema, ok[i].schema);
		assert_int_equal(conf->routes.canary_percent, ok[i].percent);
		conf_free(conf);
	}
	assert_load_error(DATABASES ROUTES "canary = v3\n", "5: canary: expected SCHEMA PERCENT, got 'v3'");
	assert_load_error(DATABASES ROUTES "canary =\n", "5: canary: expected SCHEMA PERCENT, got ''");
	assert_load_error(DATABASES ROUTES "canary = v3 5 6\n",
			  "5: canary: expected SCHEMA PERCENT, got 'v3 5 6'");
	assert_load_error(DATABASES ROUTES "canary = v3 101\n", "5: canary: 101 is out of range (0..100)");
	assert_load_error(DATABASES ROUTES "canary = v3 -1\n", "5: canary: -1 is out of range (0..100)");
	assert_load_error(DATABASES ROUTES "canary = v3 ten\n", "5: canary: 'ten' is not a number");
	assert_load_error(DATABASES ROUTES "canary = v3 5.5\n", "5: canary: '5.5' is not a number");
	assert_load_error(DATABASES ROUTES
			  "canary = s234567890123456789012345678901234567890123456789012345678901234 5\n",
			  "5: canary: invalid schema name \"s234567890123456789012345678901234567890123456789012345678901234\": "
			  "a route must be a lower-case identifier ([a-z_][a-z0-9_$]*, at most 63 bytes)");
}

static void test_canary_key(void **state)
{
	(void)state;
	Conf *conf = load_text(DATABASES ROUTES);
	assert_int_equal(conf->routes.canary_key, CONF_CANARY_KEY_ADDR); /* the default */
	conf_free(conf);
	static const struct {
		const char *word;
		ConfCanaryKey key;
	} ok[] = {
		{"addr", CONF_CANARY_KEY_ADDR},
		{"application_name", CONF_CANARY_KEY_APPLICATION_NAME},
		{"connection", CONF_CANARY_KEY_CONNECTION},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), DATABASES ROUTES "canary = v3 5\ncanary_key = %s\n", ok[i].word);
		conf = load_text(text);
		assert_int_equal(conf->routes.canary_key, ok[i].key);
		assert_string_equal(conf_canary_key_to_str(ok[i].key), ok[i].word);
		ConfCanaryKey parsed = CONF_CANARY_KEY_ADDR;
		assert_true(conf_canary_key_parse(ok[i].word, &parsed));
		assert_int_equal(parsed, ok[i].key);
		conf_free(conf);
	}
	/* without a canary line too: the key waits for a canary command */
	conf = load_text(DATABASES ROUTES "canary_key = connection\n");
	assert_int_equal(conf->routes.canary_key, CONF_CANARY_KEY_CONNECTION);
	assert_null(conf->routes.canary_schema);
	conf_free(conf);
	assert_load_error(DATABASES ROUTES "canary_key = host\n", "5: canary_key: 'host' is not one of addr, "
							       "application_name, connection");
	assert_load_error(DATABASES ROUTES "\ncanary_key = Addr\n", "6: canary_key: 'Addr' is not one of addr, "
								   "application_name, connection");
	assert_load_error(DATABASES ROUTES "canary_key =\n", "5: canary_key: '' is not one of addr, "
							   "application_name, connection");
	ConfCanaryKey untouched = CONF_CANARY_KEY_CONNECTION;
	assert_false(conf_canary_key_parse("ADDR", &untouched));
	assert_false(conf_canary_key_parse("", &untouched));
	assert_int_equal(untouched, CONF_CANARY_KEY_CONNECTION);
	assert_string_equal(conf_canary_key_to_str((ConfCanaryKey)7), "unknown");
}

/* ---- addresses and names ---- */

static void test_cidr_parse(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int family;
		int prefix_len;
		const char *network; /* the address after masking, as text */
	} ok[] = {
		{"10.0.0.0/8", AF_INET, 8, "10.0.0.0"},
		{"10.1.2.3/8", AF_INET, 8, "10.0.0.0"},
		{"192.168.1.77/26", AF_INET, 26, "192.168.1.64"},
		{"192.168.1.77", AF_INET, 32, "192.168.1.77"},
		{"192.168.1.77/32", AF_INET, 32, "192.168.1.77"},
		{"255.255.255.255/0", AF_INET, 0, "0.0.0.0"},
		{"0.0.0.0/0", AF_INET, 0, "0.0.0.0"},
		{"::1", AF_INET6, 128, "::1"},
		{"::1/128", AF_INET6, 128, "::1"},
		{"::/0", AF_INET6, 0, "::"},
		{"ffff::ffff/0", AF_INET6, 0, "::"},
		{"2001:db8:abcd:12::1/64", AF_INET6, 64, "2001:db8:abcd:12::"},
		{"2001:db8::ff/121", AF_INET6, 121, "2001:db8::80"},
		{"::ffff:10.1.2.3/104", AF_INET6, 104, "::ffff:10.0.0.0"},
		{"10.0.0.0/008", AF_INET, 8, "10.0.0.0"},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ConfCidr c;
		memset(&c, 0xaa, sizeof(c));
		if (!conf_cidr_parse(ok[i].text, &c))
			fail_msg("conf_cidr_parse(%s) failed", ok[i].text);
		assert_int_equal(c.family, ok[i].family);
		assert_int_equal(c.prefix_len, ok[i].prefix_len);
		char buf[INET6_ADDRSTRLEN];
		assert_non_null(inet_ntop(c.family, c.addr, buf, sizeof(buf)));
		assert_string_equal(buf, ok[i].network);
		if (c.family == AF_INET) {
			static const uint8_t zero[12];
			assert_memory_equal(c.addr + 4, zero, 12);
		}
	}
	static const char *const bad[] = {
		"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8x",
		"10.0.0.0/ 8", "10.0.0.0 /8", " 10.0.0.0", "10.0.0.0/8/8", "10.0.0/8", "10/8",
		"256.0.0.0/8", "::1/129", "::1/1000", "[::1]/128", "fe80::1%eth0", "::g", "localhost",
		"10.0.0.0/0x8", "1:2:3:4:5:6:7:8:9/64",
		"0000:0000:0000:0000:0000:0000:0000:0000:0000/1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ConfCidr c;
		if (conf_cidr_parse(bad[i], &c))
			fail_msg("conf_cidr_parse(\"%s\") accepted", bad[i]);
	}
	ConfCidr c;
	assert_false(conf_cidr_parse(NULL, &c));
}

/* Parses TEXT as a host address into FAMILY/ADDR for conf_cidr_match. */
static int host(const char *text, uint8_t *addr)
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, text, addr) == 1)
		return AF_INET;
	assert_int_equal(inet_pton(AF_INET6, text, addr), 1);
	return AF_INET6;
}

static bool match(const char *cidr_text, const char *addr_text)
{
	ConfCidr cidr;
	uint8_t addr[16];
	if (!conf_cidr_parse(cidr_text, &cidr))
		fail_msg("bad cidr %s", cidr_text);
	int family = host(addr_text, addr);
	return conf_cidr_match(&cidr, family, addr);
}

static void test_cidr_match(void **state)
{
	(void)state;
	static const struct {
		const char *cidr;
		const char *addr;
		bool match;
	} cases[] = {
		{"10.0.0.0/8", "10.255.1.2", true},
		{"10.0.0.0/8", "11.0.0.1", false},
		{"10.0.0.0/8", "9.255.255.255", false},
		{"192.168.1.64/26", "192.168.1.64", true},
		{"192.168.1.64/26", "192.168.1.127", true},
		{"192.168.1.64/26", "192.168.1.128", false},
		{"192.168.1.64/26", "192.168.1.63", false},
		{"192.168.1.7", "192.168.1.7", true},
		{"192.168.1.7", "192.168.1.6", false},
		{"0.0.0.0/0", "1.2.3.4", true},
		{"0.0.0.0/0", "255.255.255.255", true},
		{"10.0.0.0/9", "10.127.0.1", true},
		{"10.0.0.0/9", "10.128.0.1", false},
		/* IPv6 */
		{"::1/128", "::1", true},
		{"::1", "::2", false},
		{"::/0", "2001:db8::1", true},
		{"fd00::/8", "fdff:1::1", true},
		{"fd00::/8", "fc00::1", false},
		{"2001:db8::/33", "2001:db8:7fff::1", true},
		{"2001:db8::/33", "2001:db8:8000::1", false},
		/* IPv4-mapped IPv6 clients match IPv4 networks... */
		{"10.0.0.0/8", "::ffff:10.1.2.3", true},
		{"10.0.0.0/8", "::ffff:11.1.2.3", false},
		{"0.0.0.0/0", "::ffff:1.2.3.4", true},
		{"127.0.0.1", "::ffff:127.0.0.1", true},
		/* ...but other IPv6 addresses holding those bytes do not. */
		{"10.0.0.0/8", "::10.1.2.3", false},
		{"10.0.0.0/8", "64:ff9b::10.1.2.3", false},
		{"0.0.0.0/0", "::1", false},
		/* IPv6 networks never match IPv4 clients, even ::/0 (as in pg_hba.conf). */
		{"::/0", "10.1.2.3", false},
		{"::ffff:10.0.0.0/104", "10.1.2.3", false},
		{"::ffff:10.0.0.0/104", "::ffff:10.1.2.3", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (match(cases[i].cidr, cases[i].addr) != cases[i].match)
			fail_msg("conf_cidr_match(%s, %s) should be %s", cases[i].cidr, cases[i].addr,
				 cases[i].match ? "true" : "false");
	}
	ConfCidr cidr;
	uint8_t addr[16] = {10, 0, 0, 1};
	assert_true(conf_cidr_parse("10.0.0.0/8", &cidr));
	assert_true(conf_cidr_match(&cidr, AF_INET, addr));
	assert_false(conf_cidr_match(&cidr, AF_UNIX, addr));
	assert_false(conf_cidr_match(&cidr, AF_INET, NULL));
	assert_false(conf_cidr_match(NULL, AF_INET, addr));
}

static void test_schema_name_ok(void **state)
{
	(void)state;
	char why[200];
	assert_true(conf_route_schema_check("public", why, sizeof(why)));
	assert_true(conf_route_schema_check("public_002_rename", why, sizeof(why)));
	assert_true(conf_route_schema_check("_x$1", why, sizeof(why)));
	assert_true(conf_route_schema_check("a23456789012345678901234567890123456789012345678901234567890123", why, sizeof(why)));
	assert_false(conf_route_schema_check("a234567890123456789012345678901234567890123456789012345678901234", why, sizeof(why)));
	assert_false(conf_route_schema_check("", why, sizeof(why)));
	assert_false(conf_route_schema_check(NULL, why, sizeof(why)));
	assert_false(conf_route_schema_check("Mixed", why, sizeof(why)));
	assert_false(conf_route_schema_check("a-b", why, sizeof(why)));
	assert_false(conf_route_schema_check("1abc", why, sizeof(why)));
	assert_false(conf_route_schema_check("v1,v2", why, sizeof(why)));
	assert_false(conf_route_schema_check("\xc3\xa9t\xc3\xa9", why, sizeof(why)));
	assert_false(conf_route_schema_check("pg_catalog", why, sizeof(why)));
	assert_non_null(strstr(why, "system schema"));
	assert_false(conf_route_schema_check("pg_toast", why, sizeof(why)));
	assert_false(conf_route_schema_check("information_schema", why, sizeof(why)));
	assert_true(conf_name_ok("Mixed Case-and spaces"));
	assert_false(conf_name_ok("tab\there"));
	assert_false(conf_name_ok(""));
}

static void test_free_null(void **state)
{
	(void)state;
	conf_free(NULL);
}

/* Loads the LEN bytes of TEXT (NULs included) and checks that it fails with
 * "PATH:" followed by EXPECTED. */
static void assert_bytes_error(const char *text, size_t len, const char *expected)
{
	char path[256], err[512], want[800];
	write_bytes(path, sizeof(path), text, len);
	Conf *conf = conf_load(path, err, sizeof(err));
	if (conf) {
		conf_free(conf);
		fail_msg("loaded, expected error %s", expected);
	}
	snprintf(want, sizeof(want), "%s:%s", path, expected);
	assert_string_equal(err, want);
}

/* Found by fuzz_conf: fgets hides what follows a NUL byte, so a NUL in a
 * comment made the reader skip the next line as the comment's rest (here
 * listen_port, silently), and a NUL in the last line, with no newline after
 * it, cut the line there. A NUL is refused wherever it is, in the part of a
 * long comment that is skipped too. */
static void test_nul_byte_refused(void **state)
{
	(void)state;
	static const char in_comment[] = "[pgflip]\n; a comment\0x\nlisten_port = 1\n" DATABASES ROUTES;
	assert_bytes_error(in_comment, sizeof(in_comment) - 1, "2: NUL byte (a config file is text)");
	static const char last_line[] = DATABASES "[routes]\ndefault = s\0junk";
	assert_bytes_error(last_line, sizeof(last_line) - 1, "4: NUL byte (a config file is text)");
	static const char line_start[] = "[pgflip]\n\0listen_port = 1\n" DATABASES ROUTES;
	assert_bytes_error(line_start, sizeof(line_start) - 1, "2: NUL byte (a config file is text)");
	/* a comment longer than the reader's buffer, the NUL in the part skipped */
	static const char tail[] = "\0\nlisten_port = 1\n" DATABASES ROUTES;
	char long_comment[512];
	size_t n = (size_t)snprintf(long_comment, sizeof(long_comment), "[pgflip]\n; %0300d", 0);
	assert_true(n + sizeof(tail) <= sizeof(long_comment));
	memcpy(long_comment + n, tail, sizeof(tail));
	assert_bytes_error(long_comment, n + sizeof(tail) - 1, "2: NUL byte (a config file is text)");
	/* and the same files without the NUL load, the line after the comment included */
	Conf *conf = load_text("[pgflip]\n; a commentx\nlisten_port = 1\n" DATABASES ROUTES);
	assert_int_equal(conf->listen_port, 1);
	conf_free(conf);
}

/* ---- logging and metrics keys (issue 13) ---- */

static void test_ops_keys(void **state)
{
	(void)state;
	Conf *conf = load_text(DATABASES ROUTES);
	assert_int_equal(conf->log_format, CONF_LOG_TEXT);
	assert_int_equal(conf->syslog, 0);
	assert_string_equal(conf->syslog_ident, "pgflip");
	assert_int_equal(conf->syslog_facility, LOG_DAEMON);
	assert_null(conf->metrics_listen);
	conf_free(conf);
	conf = load_text("[pgflip]\nlog_format = json\nsyslog = 1\nsyslog_ident = pgf\nsyslog_facility = local7\n"
			 "metrics_listen = [::1]:9127\n" DATABASES ROUTES);
	assert_int_equal(conf->log_format, CONF_LOG_JSON);
	assert_int_equal(conf->syslog, 1);
	assert_string_equal(conf->syslog_ident, "pgf");
	assert_int_equal(conf->syslog_facility, LOG_LOCAL7);
	assert_string_equal(conf->metrics_listen, "[::1]:9127");
	conf_free(conf);
	conf = load_setting("metrics_listen =");
	assert_null(conf->metrics_listen);
	conf_free(conf);
	assert_setting_error("log_format = xml", "2: log_format: 'xml' is not one of text, json");
	assert_setting_error("syslog = 2", "2: syslog: 2 is out of range (0..1)");
	assert_setting_error("metrics_listen = 9127",
			     "2: metrics_listen: '9127' is not HOST:PORT (such as 127.0.0.1:9127 or [::1]:9127)");

	char host[CONF_MAX_HOST + 1];
	int port = 0;
	assert_true(conf_hostport_parse("127.0.0.1:9127", host, sizeof(host), &port));
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9127);
	assert_true(conf_hostport_parse("[fd00::1]:1", host, sizeof(host), &port));
	assert_string_equal(host, "fd00::1");
	assert_int_equal(port, 1);
	assert_true(conf_hostport_parse("localhost:65535", host, sizeof(host), &port));
	const char *bad[] = {"", ":1", "h:", "h:0", "h:65536", "h:1x", "h: 1", "h:-1", "::1:80", "[::1]", "[::1]80",
			     "[]:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(conf_hostport_parse(bad[i], host, sizeof(host), &port));
	char tiny[4];
	assert_false(conf_hostport_parse("abcd:80", tiny, sizeof(tiny), &port));
	assert_true(conf_hostport_parse("abc:80", tiny, sizeof(tiny), &port));
}

/* ---- route_db ---- */

static void test_route_db(void **state)
{
	(void)state;
	/* unset: the first entry that is not the fallback "*" */
	Conf *conf = load_text("[databases]\n* = host=x\nshop = dbname=s\nother = dbname=o\n" ROUTES);
	assert_string_equal(conf->route_db, "shop");
	conf_free(conf);
	conf = load_text("[databases]\n* = host=x\n" ROUTES);
	assert_null(conf->route_db);
	conf_free(conf);
	/* empty: memory only */
	conf = load_text("[pgflip]\nroute_db =\n" DATABASES ROUTES);
	assert_null(conf->route_db);
	conf_free(conf);
	/* named; before or after [databases], the last one wins */
	conf = load_text("[pgflip]\nroute_db = demo\n" DATABASES ROUTES);
	assert_string_equal(conf->route_db, "demo");
	conf_free(conf);
	conf = load_text("[databases]\na = dbname=a\nb = dbname=b\n[pgflip]\nroute_db = a\nroute_db = b\n" ROUTES);
	assert_string_equal(conf->route_db, "b");
	conf_free(conf);
	assert_load_error("[pgflip]\nlisten_port = 1\nroute_db = nosuch\n" DATABASES ROUTES,
			  "3: route_db: no [databases] entry 'nosuch'");
	assert_load_error("[pgflip]\nroute_db = *\n[databases]\n* = host=x\n" ROUTES,
			  "2: route_db: '*' is the fallback entry, it names no database of its own");
}

/* ---- admin_db, stats_period, SHOW CONFIG ---- */

static void test_admin_db(void **state)
{
	(void)state;
	Conf *conf = load_text(DATABASES ROUTES);
	assert_string_equal(conf->admin_db, "pgflip");
	assert_int_equal(conf->stats_period, 60);
	conf_free(conf);
	conf = load_text("[pgflip]\nadmin_db = pgbouncer\nstats_period = 1\n" DATABASES ROUTES);
	assert_string_equal(conf->admin_db, "pgbouncer");
	assert_int_equal(conf->stats_period, 1);
	conf_free(conf);
	conf = load_text("[pgflip]\nadmin_db =\n" DATABASES ROUTES);
	assert_string_equal(conf->admin_db, "");
	conf_free(conf);
	/* the fallback "*" does not make every name an entry */
	conf = load_text("[databases]\n* = host=x\n" ROUTES);
	assert_string_equal(conf->admin_db, "pgflip");
	conf_free(conf);
	assert_load_error("[pgflip]\nlisten_port = 1\nadmin_db = demo\n" DATABASES ROUTES,
			  "3: admin_db: 'demo' is also a [databases] entry (the admin console would hide it)");
	assert_load_error("[databases]\npgflip = dbname=x\n" ROUTES,
			  "2: admin_db: 'pgflip' is also a [databases] entry (the admin console would hide it)");
	assert_load_error("[pgflip]\nadmin_db = *\n" DATABASES ROUTES, "2: admin_db: '*' is not a database name");
	assert_load_error("[pgflip]\nstats_period = 0\n" DATABASES ROUTES, "2: stats_period: 0 is out of range (1..86400)");
}

/* SHOW CONFIG's rows: every key in order, values as the file writes them. */
static void test_setting_show(void **state)
{
	(void)state;
	Conf *conf = load_text("[pgflip]\nlisten_port = 7000\nserver_idle_timeout = 1.5\nunix_socket_mode = 0700\n"
			       "admin_users = a, b\nclient_tls_protocols = tlsv1.3\n" DATABASES ROUTES);
	const char *name;
	char value[256], deflt[256];
	bool changeable;
	size_t n = 0;
	bool seen_port = false, seen_idle = false, seen_mode = false, seen_users = false, seen_tls = false;
	while (conf_setting_show(conf, n, &name, value, deflt, sizeof(value), &changeable)) {
		if (!strcmp(name, "listen_port")) {
			assert_string_equal(value, "7000");
			assert_string_equal(deflt, "6432");
			assert_false(changeable);
			seen_port = true;
		} else if (!strcmp(name, "server_idle_timeout")) {
			assert_string_equal(value, "1.500");
			assert_string_equal(deflt, "600");
			assert_true(changeable);
			seen_idle = true;
		} else if (!strcmp(name, "unix_socket_mode")) {
			assert_string_equal(value, "0700");
			seen_mode = true;
		} else if (!strcmp(name, "admin_users")) {
			assert_string_equal(value, "a,b");
			assert_string_equal(deflt, "");
			seen_users = true;
		} else if (!strcmp(name, "client_tls_protocols")) {
			assert_string_equal(value, "tlsv1.3");
			assert_string_equal(deflt, "secure");
			seen_tls = true;
		}
		n++;
	}
	assert_true(seen_port && seen_idle && seen_mode && seen_users && seen_tls);
	assert_true(n > 40);
	assert_false(conf_setting_show(conf, n, &name, value, deflt, sizeof(value), &changeable));
	conf_free(conf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_loads),
		cmocka_unit_test(test_example_commented_lines_load),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_last_value_wins),
		cmocka_unit_test(test_seconds_to_ms),
		cmocka_unit_test(test_integer_errors),
		cmocka_unit_test(test_enum_keys),
		cmocka_unit_test(test_max_packet_size),
		cmocka_unit_test(test_strings_and_lists),
		cmocka_unit_test(test_admin_socket),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_unknown_names),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_databases),
		cmocka_unit_test(test_database_errors),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_route_errors),
		cmocka_unit_test(test_canary),
		cmocka_unit_test(test_canary_key),
		cmocka_unit_test(test_route_db),
		cmocka_unit_test(test_ops_keys),
		cmocka_unit_test(test_admin_db),
		cmocka_unit_test(test_setting_show),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_schema_name_ok),
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_nul_byte_refused),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

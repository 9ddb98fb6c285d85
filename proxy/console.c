/*
 * proxy/console.c: the psql admin console, a front end of the admin
 * command layer (admin.h), as PgBouncer's console.
 *
 * A client that logs in to the virtual database admin_db through the
 * normal listeners, authenticated as any client is (auth_type, auth_file,
 * auth_hba_file, TLS), gets no pool: client.c hands it here in CL_CONSOLE.
 * Who may use it is decided by its database user name, as PgBouncer does:
 * admin_users may send every command, stats_users the SHOW ones; anyone
 * else is refused at login (28000). (On the admin socket the same lists name
 * OS users, checked with SO_PEERCRED: one list, two identities, documented
 * in the README.)
 *
 * Each Query is one command: case-insensitive, a trailing semicolon
 * allowed, words separated by white space, a word may be quoted ('v2-*' or
 * "v2-*"). Its words go to admin_execute, the same function the admin
 * socket calls, and the JSON reply becomes PostgreSQL messages: a table
 * (SHOW ...) becomes RowDescription, DataRow..., CommandComplete "SHOW";
 * another success a NoticeResponse with its message and CommandComplete
 * with the command's name ("PAUSE"); a failure an ErrorResponse with its
 * SQLSTATE. ReadyForQuery 'I' follows each. The extended query protocol
 * is refused (0A000), as by PgBouncer's console: its messages are dropped
 * up to the Sync, which is answered ReadyForQuery.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "proxy/proxy.h"
#include "proxy/admin.h"
#include "proxy/client.h"
#include "proxy/console.h"

/* Words of one command: the admin socket's bound (ADMIN_MAX_ARGS). */
#define CONSOLE_MAX_WORDS 16
/* A command longer than this is refused: commands are short, and a table
 * name or a glob fits many times over. */
#define CONSOLE_MAX_QUERY 4096

struct Console {
	AdminPeer peer;    /* who, what it may do, its label for the log */
	bool skip_to_sync; /* an extended-protocol message was refused: drop the rest up to its Sync */
};

void console_free(Console *con)
{
	free(con);
}

/* The answer to the login: AuthenticationOk, the settings a client reads
 * (psql, libpq and psycopg2 look at these), ReadyForQuery. */
static void console_login_reply(Client *c)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_auth_ok(&b);
	static const char *const params[][2] = {
	        {"server_version", PGFLIP_VERSION "/pgflip"},
	        {"server_encoding", "UTF8"},
	        {"client_encoding", "UTF8"},
	        {"DateStyle", "ISO, MDY"},
	        {"TimeZone", "UTC"},
	        {"integer_datetimes", "on"},
	        {"standard_conforming_strings", "on"},
	};
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		proto_put_parameter_status(&b, params[i][0], params[i][1]);
	proto_put_parameter_status(&b, "application_name", c->app_name);
	proto_put_ready_for_query(&b, 'I');
	if (protobuf_ok(&b))
		sock_write(&c->sock, b.data, b.len);
	else
		client_close(c, NULL, "out of memory answering the admin console login");
	protobuf_free(&b);
}

bool console_enter(Client *c)
{
	AdminAccess access = admin_access_user(c->user);
	if (access == ADMIN_ACCESS_NONE) {
		client_close(c, "28000",
		             "not allowed: user \"%s\" is in neither admin_users nor stats_users (admin console %s)",
		             c->user, c->database);
		return false;
	}
	Console *con = calloc(1, sizeof(*con));
	if (!con) {
		client_close(c, "53200", "out of memory");
		return false;
	}
	con->peer.uid = (uid_t)-1;
	con->peer.access = access;
	snprintf(con->peer.name, sizeof(con->peer.name), "%s", c->user);
	snprintf(con->peer.label, sizeof(con->peer.label), "console user %s (%s)", c->user, c->addr_str);
	c->console = con;
	clog_info(c, "admin console login (%s)", access == ADMIN_ACCESS_ALL ? "admin_users" : "stats_users");
	console_login_reply(c);
	if (c->state == CL_CLOSING)
		return false;
	client_set_state(c, CL_CONSOLE);
	return true;
}

/* ---- a Query: words ------------------------------------------------------ */

/*
 * The words of SQL into ARGV (pointing into SQL, which is changed):
 * separated by white space, a trailing ';' (and white space after it)
 * dropped, '...' and "..." quote a word (a doubled quote inside is one).
 * Returns the count, 0 for an empty query, or -1 with *WHY.
 */
static int console_words(char *sql, char **argv, const char **why)
{
	size_t n = strlen(sql);
	while (n > 0 && (isspace((unsigned char)sql[n - 1]) || sql[n - 1] == ';'))
		sql[--n] = '\0';
	int argc = 0;
	char *p = sql;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			return argc;
		if (argc == CONSOLE_MAX_WORDS) {
			*why = "too many words in one command";
			return -1;
		}
		char *out = p, q = (*p == '\'' || *p == '"') ? *p++ : 0;
		argv[argc++] = out;
		while (*p && (q || !isspace((unsigned char)*p))) {
			if (q && *p == q && p[1] == q) {
				*out++ = q;
				p += 2;
			} else if (q && *p == q) {
				q = 0;
				p++;
			} else if (!q && *p == ';') {
				*why = "one command per query (a ';' inside it)";
				return -1;
			} else {
				*out++ = *p++;
			}
		}
		if (q) {
			*why = "unterminated quoted word";
			return -1;
		}
		bool end = !*p;
		*out = '\0';
		if (end)
			return argc;
		p++;
	}
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* The command and subcommand words are case-insensitive (SHOW POOLS,
 * ROUTE DEFAULT, MIGRATE STATUS, CANARY OFF); arguments stay as written
 * (an application_name glob). */
static void console_fold(int argc, char **argv)
{
	static const char *const two_words[] = {"show", "route", "unroute", "migrate", "canary"};
	lower(argv[0]);
	for (size_t i = 0; argc > 1 && i < sizeof(two_words) / sizeof(two_words[0]); i++)
		if (!strcmp(argv[0], two_words[i]))
			lower(argv[1]);
}

/* ---- the reply as messages ----------------------------------------------- */

static uint32_t type_oid(const char *type)
{
	static const struct {
		const char *name;
		uint32_t oid;
	} types[] = {{"int4", PROTO_OID_INT4},
	             {"int8", PROTO_OID_INT8},
	             {"numeric", PROTO_OID_NUMERIC},
	             {"bool", PROTO_OID_BOOL}};
	for (size_t i = 0; type && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(types[i].name, type))
			return types[i].oid;
	return PROTO_OID_TEXT;
}

/* V as the text of a column: a malloc'd string (caller frees), or NULL
 * for SQL NULL (JSON null) and when out of memory (*OOM set). */
static char *value_text(const json_t *v, bool *oom)
{
	char *s = NULL;
	if (!v || json_is_null(v))
		return NULL;
	if (json_is_string(v))
		s = strdup(json_string_value(v));
	else if (json_is_integer(v) && asprintf(&s, "%lld", (long long)json_integer_value(v)) < 0)
		s = NULL;
	else if (json_is_real(v) && asprintf(&s, "%.15g", json_real_value(v)) < 0)
		s = NULL;
	else if (json_is_integer(v) || json_is_real(v))
		; /* written by asprintf */
	else if (json_is_boolean(v))
		s = strdup(json_is_true(v) ? "t" : "f");
	else
		s = json_dumps(v, JSON_COMPACT);
	if (!s)
		*oom = true;
	return s;
}

/* A table reply (columns, rows) as RowDescription and DataRows into B. */
static bool put_table(ProtoBuf *b, const json_t *cols, const json_t *rows)
{
	size_t n = json_array_size(cols);
	const char **names = calloc(n ? n : 1, sizeof(*names));
	uint32_t *types = calloc(n ? n : 1, sizeof(*types));
	char **texts = calloc(n ? n : 1, sizeof(*texts));
	int32_t *lens = calloc(n ? n : 1, sizeof(*lens));
	bool oom = !names || !types || !texts || !lens;
	for (size_t i = 0; !oom && i < n; i++) {
		const json_t *col = json_array_get(cols, i);
		names[i] = json_string_value(json_object_get(col, "name"));
		types[i] = type_oid(json_string_value(json_object_get(col, "type")));
		if (!names[i])
			names[i] = "?";
	}
	if (!oom)
		proto_put_row_description(b, n, names, types);
	size_t r;
	const json_t *row;
	json_array_foreach(rows, r, row)
	{
		for (size_t i = 0; !oom && i < n; i++) {
			texts[i] = value_text(json_array_get(row, i), &oom);
			lens[i] = texts[i] ? (int32_t)strlen(texts[i]) : -1;
		}
		if (!oom)
			proto_put_data_row(b, n, (const char *const *)texts, lens);
		for (size_t i = 0; texts && i < n; i++) {
			free(texts[i]);
			texts[i] = NULL;
		}
		if (oom)
			break;
	}
	free(names);
	free(types);
	free(texts);
	free(lens);
	return !oom;
}

/* REPLY of the command whose first word is CMD as messages into B, up to
 * (not with) ReadyForQuery. */
static void put_reply(ProtoBuf *b, const json_t *reply, const char *cmd)
{
	if (!reply) {
		proto_put_error(b, "ERROR", "53200", "out of memory building the reply");
		return;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *state = json_string_value(json_object_get(reply, "sqlstate"));
		const char *text = json_string_value(json_object_get(reply, "error"));
		proto_put_error(b, "ERROR", state && strlen(state) == 5 ? state : "XX000", "%s",
		                text ? text : "failed");
		return;
	}
	const json_t *cols = json_object_get(reply, "columns");
	if (cols) {
		if (!put_table(b, cols, json_object_get(reply, "rows"))) {
			protobuf_reset(b);
			proto_put_error(b, "ERROR", "53200", "out of memory building the rows");
			return;
		}
		proto_put_command_complete(b, "SHOW");
		return;
	}
	const char *message = json_string_value(json_object_get(reply, "message"));
	if (message)
		proto_put_notice_detail(b, "NOTICE", "00000", message,
		                        json_string_value(json_object_get(reply, "detail")));
	char tag[64];
	snprintf(tag, sizeof(tag), "%s", cmd);
	for (char *p = tag; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	proto_put_command_complete(b, !strcmp(cmd, "show") ? "SHOW" : tag);
}

/* The admin socket's bare read commands, on the console: their SHOW
 * (WORDS may point to SHOW and MIGRATION, the caller's "show" and
 * "migration"). */
static int console_alias(int argc, char **argv, char **words, char *show, char *migration)
{
	static const char *const bare[] = {"routes", "clients", "pools", "versions"};
	for (size_t i = 0; argc == 1 && i < sizeof(bare) / sizeof(bare[0]); i++)
		if (!strcmp(argv[0], bare[i])) {
			words[0] = show;
			words[1] = argv[0];
			return 2;
		}
	if (argc == 2 && !strcmp(argv[0], "migrate") && !strcmp(argv[1], "status")) {
		words[0] = show;
		words[1] = migration;
		return 2;
	}
	for (int i = 0; i < argc; i++)
		words[i] = argv[i];
	return argc;
}

/* One Query's text SQL (NUL-terminated, changed) from C: the answer into B. */
static void console_query(Client *c, char *sql, ProtoBuf *b)
{
	char line[CONSOLE_MAX_QUERY + 1];
	char *argv[CONSOLE_MAX_WORDS], *words[CONSOLE_MAX_WORDS];
	const char *why = "";
	if (strlen(sql) > CONSOLE_MAX_QUERY) {
		proto_put_error(b, "ERROR", "54000", "command too long (%d bytes at most)", CONSOLE_MAX_QUERY);
		return;
	}
	snprintf(line, sizeof(line), "%s", sql);
	int argc = console_words(sql, argv, &why);
	if (argc == 0) {
		proto_put_empty_query_response(b);
		return;
	}
	if (argc < 0) {
		proto_put_error(b, "ERROR", "42601", "%s: %s", why, line);
		return;
	}
	console_fold(argc, argv);
	if (argc == 1 && !strcmp(argv[0], "status")) {
		proto_put_error(b, "ERROR", "42601",
		                "status is a command of the admin socket (pgflip ctl status); here: SHOW VERSION, SHOW "
		                "POOLS, SHOW STATS, SHOW ROUTES, SHOW MIGRATION");
		return;
	}
	char show[] = "show", migration[] = "migration";
	argc = console_alias(argc, argv, words, show, migration);
	json_t *reply = admin_execute(&c->console->peer, argc, words, NULL, line);
	if (c->state != CL_CLOSING)
		put_reply(b, reply, words[0]);
	json_decref(reply);
}

/* ---- messages ------------------------------------------------------------ */

/* Extended-protocol messages: refused once, then dropped up to the Sync. */
static bool console_extended(uint8_t type)
{
	return type == PROTO_FE_PARSE || type == PROTO_FE_BIND || type == PROTO_FE_DESCRIBE ||
	       type == PROTO_FE_EXECUTE || type == PROTO_FE_CLOSE || type == PROTO_FE_FLUSH;
}

/* The answer to message TYPE with body BODY (LEN bytes) into B; false
 * when C must be closed (with *WHY). */
static bool console_answer(Client *c, uint8_t type, const uint8_t *body, size_t len, ProtoBuf *b, const char **why)
{
	Console *con = c->console;
	if (type == PROTO_FE_SYNC) {
		con->skip_to_sync = false;
		proto_put_ready_for_query(b, 'I');
	} else if (console_extended(type)) {
		if (!con->skip_to_sync)
			proto_put_error(b, "ERROR", "0A000",
			                "the admin console takes the simple query protocol only: send each command as "
			                "a Query (psql -c, or a driver's simple protocol)");
		con->skip_to_sync = true;
	} else if (type == PROTO_FE_QUERY && con->skip_to_sync) {
		/* dropped, as PostgreSQL drops messages after an error up to Sync */
	} else if (type == PROTO_FE_QUERY || type == PROTO_FE_FUNCTION_CALL) {
		if (type == PROTO_FE_QUERY &&
		    (len == 0 || body[len - 1] != '\0' || memchr(body, '\0', len) != body + len - 1)) {
			*why = "malformed Query: its text is not one NUL-terminated string";
			return false;
		}
		char *sql = type == PROTO_FE_QUERY ? strdup((const char *)body) : NULL;
		if (type == PROTO_FE_FUNCTION_CALL)
			proto_put_error(b, "ERROR", "0A000", "the admin console runs no functions");
		else if (!sql)
			proto_put_error(b, "ERROR", "53200", "out of memory reading the command");
		else
			console_query(c, sql, b);
		free(sql);
		proto_put_ready_for_query(b, 'I');
	} else {
		*why = "unexpected message on the admin console";
		return false;
	}
	return true;
}

bool console_message(Client *c, const ProtoHeader *h, size_t avail)
{
	size_t total = (size_t)h->len + 1;
	if (avail < total) {
		c->need = total; /* bounded by max_packet_size: proto_header_parse checked it */
		return false;
	}
	const uint8_t *msg = evbuffer_pullup(c->sock.in, (ev_ssize_t)total);
	if (!msg) {
		client_close(c, "53200", "out of memory reading a console command");
		return false;
	}
	ProtoBuf b;
	protobuf_init(&b);
	const char *why = NULL;
	bool ok = console_answer(c, h->type, msg + PROTO_HEADER_SIZE, total - PROTO_HEADER_SIZE, &b, &why);
	if (c->state != CL_CLOSING)
		evbuffer_drain(c->sock.in, total);
	if (!ok)
		client_close(c, "08P01", "%s: %s", why, proto_fe_type_to_str(h->type));
	else if (c->state != CL_CLOSING && !protobuf_ok(&b))
		client_close(c, "53200", "out of memory building the answer");
	else if (c->state != CL_CLOSING)
		sock_write(&c->sock, b.data, b.len);
	protobuf_free(&b);
	if (ok && c->state != CL_CLOSING && proxy.shutting_down)
		client_close(c, NULL, "pgflip is shutting down: the admin console closes after its answer");
	return c->state != CL_CLOSING;
}

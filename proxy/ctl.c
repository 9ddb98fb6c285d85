/*
 * proxy/ctl.c: `pgflip ctl`, the admin socket's command-line client.
 *
 * Sends its arguments as one command line, reads the one-line JSON reply and
 * prints it for humans (scalars as "key: value", lists of rows as a psql-like
 * table), or raw with --json. Exit status: 0 when the reply says ok, 1 when
 * it is an error, 2 when the socket cannot be reached or the reply is not
 * JSON.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "proxy/proxy.h"
#include "proxy/admin.h"

/* Replies are one line; this bounds what we accept from the socket. */
#define CTL_MAX_REPLY (8 * 1024 * 1024)
#define CTL_DEFAULT_SOCKET "/tmp/pgflip-6432.admin"
/* A migration file sent by `migrate start` is at most this long. */
#define CTL_MAX_FILE (16 * 1024 * 1024 - 4096)
/* How often a waiting ctl asks for the job's status (ms). */
#define CTL_POLL_MS 200

static void ctl_usage(FILE *f)
{
	fprintf(f, "usage: pgflip ctl [-s SOCKET] [--json] COMMAND [ARG...]\n"
		   "  -s SOCKET   admin socket (default $PGFLIP_ADMIN_SOCKET or " CTL_DEFAULT_SOCKET ")\n"
		   "  --json      print the raw JSON reply\n"
		   "commands: status, routes, route default SCHEMA, route app GLOB SCHEMA,\n"
		   "  route user NAME SCHEMA, route addr CIDR SCHEMA, unroute app|user|addr KEY,\n"
		   "  canary SCHEMA PERCENT [--key connection|application_name|addr]\n"
		   "         [--max-error-ratio R --window S [--min-transactions N]],\n"
		   "  canary off (route canary ... and unroute canary: the same), clients, pools,\n"
		   "  show help|pools|clients|servers|databases|stats|stats_totals|stats_averages|lists|\n"
		   "       config|version|routes|versions|migration (the psql console's tables),\n"
		   "  pause [DB], resume [DB], reconnect [DB], kill_client ID, reload, shutdown,\n"
		   "  migrate start FILE [--db NAME] [--schema NAME] [--complete] [--role ROLE]\n"
		   "         [--backfill-workers N], migrate status,\n"
		   "  migrate complete|rollback [--db NAME] [--force], migrate cancel, versions [--db NAME],\n"
		   "  promote SCHEMA, rollback [--db NAME]\n"
		   "  --no-wait   do not wait for a migration job to end (it runs on in pgflip)\n"
		   "  (words after COMMAND go to pgflip as they are: -s, --json and --no-wait come first)\n");
}

static char *value_text(const json_t *v)
{
	char *s;
	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (json_is_null(v))
		return strdup("");
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	return s ? s : strdup("?");
}

/* A list of objects as a psql-style table. */
static void print_table(const json_t *rows)
{
	size_t n = json_array_size(rows);
	const json_t *first = json_array_get(rows, 0);
	if (!json_is_object(first)) {
		for (size_t i = 0; i < n; i++) {
			char *t = value_text(json_array_get(rows, i));
			printf("  %s\n", t);
			free(t);
		}
		return;
	}
	size_t ncol = json_object_size(first);
	const char **cols = calloc(ncol, sizeof(char *));
	size_t *width = calloc(ncol, sizeof(size_t));
	if (!cols || !width) {
		free(cols);
		free(width);
		return;
	}
	size_t k = 0;
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)first, key, v) {
		cols[k] = key;
		width[k] = strlen(key);
		k++;
	}
	for (size_t i = 0; i < n; i++)
		for (k = 0; k < ncol; k++) {
			char *t = value_text(json_object_get(json_array_get(rows, i), cols[k]));
			if (strlen(t) > width[k])
				width[k] = strlen(t);
			free(t);
		}
	for (k = 0; k < ncol; k++)
		printf("%s %-*s ", k ? "|" : "", (int)width[k], cols[k]);
	printf("\n");
	for (k = 0; k < ncol; k++) {
		printf("%s", k ? "+" : "");
		for (size_t w = 0; w < width[k] + 2; w++)
			putchar('-');
	}
	printf("\n");
	for (size_t i = 0; i < n; i++) {
		for (k = 0; k < ncol; k++) {
			char *t = value_text(json_object_get(json_array_get(rows, i), cols[k]));
			printf("%s %-*s ", k ? "|" : "", (int)width[k], t);
			free(t);
		}
		printf("\n");
	}
	printf("(%zu row%s)\n", n, n == 1 ? "" : "s");
	free(cols);
	free(width);
}

/* A table reply ({"columns", "rows"}, admin.h) as psql prints it: its
 * rows as objects of the columns' names, in order. */
static void print_columns(const json_t *o)
{
	const json_t *cols = json_object_get(o, "columns"), *rows = json_object_get(o, "rows");
	json_t *objs = json_array();
	size_t r, i;
	const json_t *row, *col;
	json_array_foreach(rows, r, row) {
		json_t *obj = json_object();
		json_array_foreach(cols, i, col)
			json_object_set(obj, json_string_value(json_object_get(col, "name")), json_array_get(row, i));
		json_array_append_new(objs, obj);
	}
	if (json_array_size(objs) == 0)
		printf("(0 rows)\n");
	else
		print_table(objs);
	json_decref(objs);
}

static void print_object(const json_t *o, const char *prefix)
{
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)o, key, v) {
		if (!strcmp(key, "ok") || !strcmp(key, "message") || !strcmp(key, "error") || !strcmp(key, "sqlstate"))
			continue;
		if (json_is_object(v)) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%s%s.", prefix, key);
			print_object(v, sub);
		} else if (json_is_array(v)) {
			printf("%s%s:\n", prefix, key);
			if (json_array_size(v) > 0)
				print_table(v);
			else
				printf("  (none)\n");
		} else {
			char *t = value_text(v);
			printf("%s%s: %s\n", prefix, key, t);
			free(t);
		}
	}
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "pgflip ctl: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "pgflip ctl: cannot connect to %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Sends LINE (ending in a newline) and reads the one-line reply: the JSON
 * object, *TEXT the reply as read (caller frees both); NULL when the socket
 * cannot be reached or the reply is not a JSON object (said on stderr). */
static json_t *ctl_request(const char *path, const char *line, char **text)
{
	*text = NULL;
	int fd = ctl_connect(path);
	if (fd < 0)
		return NULL;
	size_t off = 0, n = strlen(line);
	while (off < n) {
		ssize_t w = write(fd, line + off, n - off);
		if (w <= 0) {
			fprintf(stderr, "pgflip ctl: write: %s\n", strerror(errno));
			close(fd);
			return NULL;
		}
		off += (size_t)w;
	}
	size_t cap = 4096, got = 0;
	char *reply = malloc(cap);
	while (reply) {
		if (got + 1 >= cap) {
			if (cap >= CTL_MAX_REPLY)
				break;
			char *more = realloc(reply, cap * 2);
			if (!more)
				break;
			reply = more;
			cap *= 2;
		}
		ssize_t r = read(fd, reply + got, cap - got - 1);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (memchr(reply + got - (size_t)r, '\n', (size_t)r))
			break;
	}
	close(fd);
	if (!reply)
		return NULL;
	reply[got] = '\0';
	json_error_t jerr;
	json_t *o = json_loads(reply, JSON_DISABLE_EOF_CHECK, &jerr);
	if (!o || !json_is_object(o)) {
		fprintf(stderr, "pgflip ctl: bad reply from %s: %s\n", path, got ? reply : "(nothing)");
		free(reply);
		json_decref(o);
		return NULL;
	}
	*text = reply;
	return o;
}

/* The words ARGV[0..ARGC) as one command line (with its newline), or NULL
 * (said on stderr) when a word holds white space. */
static char *ctl_line(int argc, char **argv)
{
	size_t len = 2;
	for (int j = 0; j < argc; j++)
		len += strlen(argv[j]) + 1;
	char *line = malloc(len);
	if (!line)
		return NULL;
	line[0] = '\0';
	for (int j = 0; j < argc; j++) {
		if (strpbrk(argv[j], " \t\r\n")) {
			fprintf(stderr, "pgflip ctl: arguments cannot contain white space: \"%s\"\n", argv[j]);
			free(line);
			return NULL;
		}
		strcat(line, argv[j]);
		strcat(line, j + 1 < argc ? " " : "\n");
	}
	return line;
}

/* `migrate start FILE [OPTION...]`: the request carries the file. */
static char *ctl_migrate_start(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "pgflip ctl: usage: migrate start FILE [--db NAME] [--schema NAME] [--complete] [--role ROLE]\n");
		return NULL;
	}
	const char *path = argv[2];
	json_error_t jerr;
	FILE *f = fopen(path, "rb");
	char *content = NULL;
	size_t n = 0;
	if (f) {
		content = malloc(CTL_MAX_FILE + 1);
		n = content ? fread(content, 1, CTL_MAX_FILE + 1, f) : 0;
		fclose(f);
	}
	if (!content || n > CTL_MAX_FILE) {
		fprintf(stderr, "pgflip ctl: cannot read %s: %s\n", path, !f ? strerror(errno) : "too large (16 MiB at most)");
		free(content);
		return NULL;
	}
	const char *base = strrchr(path, '/');
	json_t *words = json_array();
	for (int j = 0; j < argc; j++)
		if (j != 2)
			json_array_append_new(words, json_string(argv[j]));
	json_t *req = json_pack("{s:o, s:s, s:s%}", "command", words, "file", base ? base + 1 : path, "content", content, n);
	free(content);
	(void)jerr;
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!text) {
		fprintf(stderr, "pgflip ctl: %s is not UTF-8 text\n", path);
		return NULL;
	}
	char *line = malloc(strlen(text) + 2);
	if (line)
		sprintf(line, "%s\n", text);
	free(text);
	return line;
}

/* Is this a command whose job runs on (migrate start|complete|rollback,
 * rollback), so that ctl waits for it? */
static bool ctl_is_job(int argc, char **argv)
{
	if (!strcmp(argv[0], "rollback"))
		return true;
	return argc > 1 && !strcmp(argv[0], "migrate") &&
	       (!strcmp(argv[1], "start") || !strcmp(argv[1], "complete") || !strcmp(argv[1], "rollback"));
}

/* Polls `migrate status` until the job ends, printing each change of phase
 * or step on stdout. Returns 0 when it succeeded, 1 when it failed or was
 * cancelled, 2 when the socket went away. */
static int ctl_wait_job(const char *path)
{
	char last[1024] = "";
	for (;;) {
		char *text;
		json_t *o = ctl_request(path, "migrate status\n", &text);
		if (!o)
			return 2;
		free(text);
		json_t *mg = json_object_get(o, "migration");
		if (!json_is_true(json_object_get(mg, "running"))) {
			json_t *res = json_object_get(mg, "result");
			const char *st = json_string_value(json_object_get(res, "status"));
			const char *err = json_string_value(json_object_get(res, "error"));
			int rc = st && !strcmp(st, "ok") ? 0 : 1;
			if (rc)
				fprintf(stderr, "error: %s%s%s\n", st ? st : "unknown", err && *err ? ": " : "", err ? err : "");
			else
				printf("done: %s (version schema %s)\n", json_string_value(json_object_get(res, "migration")),
				       json_string_value(json_object_get(res, "version_schema")));
			json_decref(o);
			return rc;
		}
		char now[1024];
		const char *table = json_string_value(json_object_get(mg, "table"));
		snprintf(now, sizeof(now), "%s step %lld/%lld%s%s%s", json_string_value(json_object_get(mg, "phase")),
			 (long long)json_integer_value(json_object_get(mg, "step")),
			 (long long)json_integer_value(json_object_get(mg, "steps")), table ? " " : "", table ? table : "",
			 json_object_get(mg, "blocked_by") ? " (waiting on a lock)" : "");
		if (strcmp(now, last) != 0) {
			printf("%s\n", now);
			fflush(stdout);
			snprintf(last, sizeof(last), "%s", now);
		}
		json_decref(o);
		usleep(CTL_POLL_MS * 1000);
	}
}

int ctl_main(int argc, char **argv)
{
	const char *path = getenv("PGFLIP_ADMIN_SOCKET");
	bool raw = false, wait = true;
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "-s") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			raw = true;
		else if (!strcmp(argv[i], "--no-wait"))
			wait = false;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			ctl_usage(stdout);
			return 0;
		} else
			break;
	}
	if (i >= argc) {
		ctl_usage(stderr);
		return 2;
	}
	if (!path)
		path = CTL_DEFAULT_SOCKET;
	int n = argc - i;
	char **words = argv + i;
	bool start = n > 1 && !strcmp(words[0], "migrate") && !strcmp(words[1], "start");
	char *line = start ? ctl_migrate_start(n, words) : ctl_line(n, words);
	if (!line)
		return 2;
	char *reply;
	json_t *o = ctl_request(path, line, &reply);
	free(line);
	if (!o)
		return 2;
	bool ok = json_is_true(json_object_get(o, "ok"));
	size_t got = strlen(reply);
	if (raw) {
		fputs(reply, stdout);
		if (got == 0 || reply[got - 1] != '\n')
			putchar('\n');
	} else if (!ok) {
		fprintf(stderr, "error: %s\n", json_string_value(json_object_get(o, "error")));
	} else {
		const char *msg = json_string_value(json_object_get(o, "message"));
		if (msg)
			printf("%s\n", msg);
		if (json_object_get(o, "columns"))
			print_columns(o);
		else
			print_object(o, "");
	}
	free(reply);
	json_decref(o);
	if (ok && wait && !raw && ctl_is_job(n, words)) {
		fflush(stdout);
		return ctl_wait_job(path);
	}
	return ok ? 0 : 1;
}

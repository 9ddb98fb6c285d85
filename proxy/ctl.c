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
		   "  pause, resume, reload, shutdown\n"
		   "  (words after COMMAND go to pgflip as they are: -s and --json come first)\n");
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

static void print_object(const json_t *o, const char *prefix)
{
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)o, key, v) {
		if (!strcmp(key, "ok") || !strcmp(key, "message") || !strcmp(key, "error"))
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

int ctl_main(int argc, char **argv)
{
	const char *path = getenv("PGFLIP_ADMIN_SOCKET");
	bool raw = false;
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "-s") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			raw = true;
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
	size_t len = 1;
	for (int j = i; j < argc; j++)
		len += strlen(argv[j]) + 1;
	char *line = malloc(len + 1);
	if (!line)
		return 2;
	line[0] = '\0';
	for (int j = i; j < argc; j++) {
		if (strpbrk(argv[j], " \t\r\n")) {
			fprintf(stderr, "pgflip ctl: arguments cannot contain white space: \"%s\"\n", argv[j]);
			free(line);
			return 2;
		}
		strcat(line, argv[j]);
		strcat(line, j + 1 < argc ? " " : "\n");
	}
	int fd = ctl_connect(path);
	if (fd < 0) {
		free(line);
		return 2;
	}
	size_t off = 0, n = strlen(line);
	while (off < n) {
		ssize_t w = write(fd, line + off, n - off);
		if (w <= 0) {
			fprintf(stderr, "pgflip ctl: write: %s\n", strerror(errno));
			close(fd);
			free(line);
			return 2;
		}
		off += (size_t)w;
	}
	free(line);
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
		return 2;
	reply[got] = '\0';
	json_error_t jerr;
	json_t *o = json_loads(reply, JSON_DISABLE_EOF_CHECK, &jerr);
	if (!o || !json_is_object(o)) {
		fprintf(stderr, "pgflip ctl: bad reply from %s: %s\n", path, got ? reply : "(nothing)");
		free(reply);
		json_decref(o);
		return 2;
	}
	bool ok = json_is_true(json_object_get(o, "ok"));
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
		print_object(o, "");
	}
	free(reply);
	json_decref(o);
	return ok ? 0 : 1;
}

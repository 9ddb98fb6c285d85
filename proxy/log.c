/*
 * proxy/log.c: line-oriented log with a level and a connection prefix.
 * Each line is built in one buffer and reaches the file in one write(2),
 * so lines never interleave and a crash loses none that were logged. Only
 * the event loop thread logs.
 *
 * A busy pooler logs two lines per client connection (login, closing), so
 * the fixed parts are copied, not formatted: the timestamp is made once per
 * second, the pid once, and only the message goes through vsnprintf.
 *
 * Each line is described once (LogWho: whose it is) and written in the
 * format of log_format: text as above, or a JSON object built with jansson
 * (strings through admin_text, so that an application_name that is
 * not UTF-8 still gives valid JSON). syslog = 1 hands the text line,
 * without time and pid, to syslog(3) as well. The format and the syslog
 * settings live in proxy (Proxy.log_*), set by log_configure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "proxy/proxy.h"
#include "proxy/log.h"
#include "proxy/client.h"
#include "proxy/server.h"
#include "proxy/admin.h"

ConfLogLevel log_current_level = CONF_LOG_INFO;
static int log_fd = STDERR_FILENO;

/* One log line is cut at this many bytes: enough for any message we make,
 * and a bound on what a hostile application_name can add. */
#define LOG_LINE_MAX 2048

bool log_open(const char *path)
{
	int fd = STDERR_FILENO;
	if (path && *path) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666); /* as fopen "a" */
		if (fd < 0)
			return false;
	}
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	return true;
}

void log_set_level(ConfLogLevel level) { log_current_level = level; }

void log_configure(const Conf *conf)
{
	log_set_level(conf->log_level);
	proxy.log_json = conf->log_format == CONF_LOG_JSON;
	bool same = proxy.log_syslog && conf->syslog && proxy.log_facility == conf->syslog_facility &&
		    proxy.log_ident && strcmp(proxy.log_ident, conf->syslog_ident) == 0;
	if (same)
		return;
	log_close();
	if (!conf->syslog)
		return;
	/* openlog keeps the pointer: the copy lives until log_close */
	proxy.log_ident = strdup(conf->syslog_ident);
	proxy.log_facility = conf->syslog_facility;
	proxy.log_syslog = true;
	openlog(proxy.log_ident ? proxy.log_ident : "pgflip", LOG_PID | LOG_NDELAY, conf->syslog_facility);
}

void log_close(void)
{
	if (proxy.log_syslog)
		closelog();
	proxy.log_syslog = false;
	free(proxy.log_ident);
	proxy.log_ident = NULL;
}

static const char *level_str(ConfLogLevel level)
{
	switch (level) {
	case CONF_LOG_ERROR: return "ERROR";
	case CONF_LOG_WARNING: return "WARNING";
	case CONF_LOG_INFO: return "LOG";
	case CONF_LOG_DEBUG: return "DEBUG";
	default: return "?";
	}
}

static int level_priority(ConfLogLevel level)
{
	switch (level) {
	case CONF_LOG_ERROR: return LOG_ERR;
	case CONF_LOG_WARNING: return LOG_WARNING;
	case CONF_LOG_INFO: return LOG_INFO;
	default: return LOG_DEBUG;
	}
}

/* Whose a line is: a client, a server, a free-form prefix, or nobody. */
typedef struct LogWho {
	const char *kind;       /* "client", "server" or NULL */
	char tag;               /* 'C' or 'S' */
	uint64_t id;
	const char *addr;       /* clients */
	const char *database;
	const char *user;
	int backend_pid;        /* servers; 0 = none yet */
	const char *prefix;     /* log_write's PREFIX, or NULL */
} LogWho;

/* A line being built; the last byte is kept for the newline. */
typedef struct LogLine {
	char buf[LOG_LINE_MAX];
	size_t n;
} LogLine;

static void line_put(LogLine *l, const char *s)
{
	size_t room = sizeof(l->buf) - 1 - l->n;
	size_t len = strlen(s);
	if (len > room)
		len = room;
	memcpy(l->buf + l->n, s, len);
	l->n += len;
}

static void line_put_u64(LogLine *l, uint64_t v)
{
	char digits[24];
	line_put(l, proxy_u64_str(digits, v));
}

/* The wall clock of a line (SEC: "2026-11-21 05:50:14.", formatted once a
 * second) and the pid as text. */
typedef struct LogStamp {
	struct timeval tv;
	const char *sec;        /* "YYYY-MM-DD HH:MM:SS." */
	const char *pid;
} LogStamp;

static void stamp_now(LogStamp *st)
{
	static time_t stamp_sec = -1; /* a cache of the formatted second, event loop thread only */
	static char stamp[32];
	static char pid[16];
	gettimeofday(&st->tv, NULL);
	if (st->tv.tv_sec != stamp_sec) {
		struct tm tm;
		gmtime_r(&st->tv.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S.", &tm);
		stamp_sec = st->tv.tv_sec;
		/* once a second is often enough to notice a fork */
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
	}
	st->sec = stamp;
	st->pid = pid;
}

/* "LEVEL WHO: " of a text line: "LOG C-17 ADDR DB/USER: ", "LOG S-3 DB/USER
 * pid=N: ", "LOG PREFIX: " or "LOG " */
static void line_who(LogLine *l, ConfLogLevel level, const LogWho *w)
{
	line_put(l, level_str(level));
	line_put(l, " ");
	if (w->kind) {
		char tag[3] = {w->tag, '-', '\0'};
		line_put(l, tag);
		line_put_u64(l, w->id);
		line_put(l, " ");
		if (w->addr) {
			line_put(l, w->addr);
			line_put(l, " ");
		}
		line_put(l, w->database ? w->database : "?");
		line_put(l, "/");
		line_put(l, w->user ? w->user : "?");
		if (w->tag == 'S') {
			line_put(l, " pid=");
			line_put_u64(l, (uint64_t)(w->backend_pid > 0 ? w->backend_pid : 0));
		}
		line_put(l, ": ");
	} else if (w->prefix) {
		line_put(l, w->prefix);
		line_put(l, ": ");
	}
}

static void fd_write_all(const char *p, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t w = write(log_fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere to report a failing log */
		off += (size_t)w;
	}
}

/* The JSON object of a line, written with its newline. */
static void emit_json(ConfLogLevel level, const LogWho *w, const LogStamp *st, const char *msg)
{
	char when[40];
	snprintf(when, sizeof(when), "%.10sT%.8s.%03dZ", st->sec, st->sec + 11, (int)(st->tv.tv_usec / 1000));
	json_t *o = json_pack("{s:s, s:s, s:i}", "time", when, "level", level_str(level), "pid", (int)getpid());
	if (!o)
		return;
	if (w->kind) {
		char id[32];
		snprintf(id, sizeof(id), "%c-%llu", w->tag, (unsigned long long)w->id);
		json_object_set_new(o, w->kind, json_string(id));
		if (w->addr)
			json_object_set_new(o, "addr", admin_text(w->addr));
		json_object_set_new(o, "database", w->database ? admin_text(w->database) : json_null());
		json_object_set_new(o, "user", w->user ? admin_text(w->user) : json_null());
		if (w->tag == 'S')
			json_object_set_new(o, "backend_pid", json_integer(w->backend_pid > 0 ? w->backend_pid : 0));
	} else if (w->prefix) {
		json_object_set_new(o, "context", admin_text(w->prefix));
	}
	json_object_set_new(o, "message", admin_text(msg));
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text)
		return;
	size_t n = strlen(text);
	text[n] = '\n'; /* over its NUL: written by length */
	fd_write_all(text, n + 1);
	free(text);
}

/* Formats the message of a line of W and writes it: to the log file or
 * stderr in log_format, and to syslog when syslog = 1. */
static void log_emit(ConfLogLevel level, const LogWho *w, const char *fmt, va_list ap)
{
	LogStamp st;
	stamp_now(&st);
	LogLine l;
	l.n = 0;
	line_put(&l, st.sec);
	int ms = (int)(st.tv.tv_usec / 1000);
	char msd[5] = {(char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), ' ', '\0'};
	line_put(&l, msd);
	line_put(&l, "UTC [");
	line_put(&l, st.pid);
	line_put(&l, "] ");
	size_t who_at = l.n;
	line_who(&l, level, w);
	size_t msg_at = l.n;
	size_t room = sizeof(l.buf) - l.n;
	int m = vsnprintf(l.buf + l.n, room, fmt, ap);
	if (m > 0)
		l.n += (size_t)m < room ? (size_t)m : room - 1;
	l.buf[l.n] = '\0';
	if (proxy.log_syslog)
		syslog(level_priority(level), "%s", l.buf + who_at);
	if (proxy.log_json) {
		emit_json(level, w, &st, l.buf + msg_at);
		return;
	}
	l.buf[l.n++] = '\n';
	fd_write_all(l.buf, l.n);
}

void log_write(ConfLogLevel level, const char *prefix, const char *fmt, ...)
{
	LogWho w = {.prefix = prefix};
	va_list ap;
	va_start(ap, fmt);
	log_emit(level, &w, fmt, ap);
	va_end(ap);
}

void log_client_write(ConfLogLevel level, const Client *c, const char *fmt, ...)
{
	LogWho w = {.kind = "client", .tag = 'C', .id = c->id, .addr = c->addr_str, .database = c->database,
		    .user = c->user};
	va_list ap;
	va_start(ap, fmt);
	log_emit(level, &w, fmt, ap);
	va_end(ap);
}

void log_server_write(ConfLogLevel level, const Server *s, const char *fmt, ...)
{
	LogWho w = {.kind = "server", .tag = 'S', .id = s->id, .database = s->pool->database, .user = s->pool->user,
		    .backend_pid = s->backend_pid};
	va_list ap;
	va_start(ap, fmt);
	log_emit(level, &w, fmt, ap);
	va_end(ap);
}

/*
 * proxy/log.c: line-oriented log with a level and a connection prefix.
 * Each line is built in one buffer and reaches the file in one write(2),
 * so lines never interleave and a crash loses none that were logged. Only
 * the event loop thread logs.
 *
 * A busy pooler logs two lines per client connection (login, closing), so
 * the fixed parts are copied, not formatted: the timestamp is made once per
 * second, the pid once, and only the message goes through vsnprintf.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proxy/proxy.h"
#include "proxy/log.h"
#include "proxy/client.h"
#include "proxy/server.h"

ConfLogLevel log_current_level = CONF_LOG_INFO;
static int log_fd = STDERR_FILENO;

/* One log line is cut at this many bytes: enough for any message we make,
 * and a bound on what a hostile application_name can add. */
#define LOG_LINE_MAX 2048

bool log_open(const char *path)
{
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
	if (!path || !*path)
		return true;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666); /* as fopen "a" */
	if (fd < 0)
		return false;
	log_fd = fd;
	return true;
}

void log_set_level(ConfLogLevel level) { log_current_level = level; }

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

/* "2026-11-21 05:50:14.123 UTC [PID] LEVEL " */
static void line_begin(LogLine *l, ConfLogLevel level)
{
	static time_t stamp_sec = -1;
	static char stamp[32];
	static char pid[16];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	if (tv.tv_sec != stamp_sec) {
		struct tm tm;
		gmtime_r(&tv.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S.", &tm);
		stamp_sec = tv.tv_sec;
		/* once a second is often enough to notice a fork */
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
	}
	l->n = 0;
	line_put(l, stamp);
	int ms = (int)(tv.tv_usec / 1000);
	char msd[5] = {(char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), ' ', '\0'};
	line_put(l, msd);
	line_put(l, "UTC [");
	line_put(l, pid);
	line_put(l, "] ");
	line_put(l, level_str(level));
	line_put(l, " ");
}

/* Formats the message, ends the line and writes it. */
static void line_end(LogLine *l, const char *fmt, va_list ap)
{
	size_t room = sizeof(l->buf) - l->n;
	int m = vsnprintf(l->buf + l->n, room, fmt, ap);
	if (m > 0)
		l->n += (size_t)m < room ? (size_t)m : room - 1;
	l->buf[l->n++] = '\n';
	for (size_t off = 0; off < l->n;) {
		ssize_t w = write(log_fd, l->buf + off, l->n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere to report a failing log */
		off += (size_t)w;
	}
}

void log_write(ConfLogLevel level, const char *prefix, const char *fmt, ...)
{
	LogLine l;
	line_begin(&l, level);
	if (prefix) {
		line_put(&l, prefix);
		line_put(&l, ": ");
	}
	va_list ap;
	va_start(ap, fmt);
	line_end(&l, fmt, ap);
	va_end(ap);
}

void log_client_write(ConfLogLevel level, const Client *c, const char *fmt, ...)
{
	LogLine l;
	line_begin(&l, level);
	line_put(&l, "C-");
	line_put_u64(&l, c->id);
	line_put(&l, " ");
	line_put(&l, c->addr_str);
	line_put(&l, " ");
	line_put(&l, c->database ? c->database : "?");
	line_put(&l, "/");
	line_put(&l, c->user ? c->user : "?");
	line_put(&l, ": ");
	va_list ap;
	va_start(ap, fmt);
	line_end(&l, fmt, ap);
	va_end(ap);
}

void log_server_write(ConfLogLevel level, const Server *s, const char *fmt, ...)
{
	LogLine l;
	line_begin(&l, level);
	line_put(&l, "S-");
	line_put_u64(&l, s->id);
	line_put(&l, " ");
	line_put(&l, s->pool->database);
	line_put(&l, "/");
	line_put(&l, s->pool->user);
	line_put(&l, " pid=");
	line_put_u64(&l, (uint64_t)(s->backend_pid > 0 ? s->backend_pid : 0));
	line_put(&l, ": ");
	va_list ap;
	va_start(ap, fmt);
	line_end(&l, fmt, ap);
	va_end(ap);
}

/*
 * proxy/log.c: line-oriented log with a level and a connection prefix.
 * Each line is one fprintf call on a line-buffered stream, so it reaches
 * the file in one write. Only the event loop thread logs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proxy/proxy.h"

ConfLogLevel log_current_level = CONF_LOG_INFO;
static FILE *log_file;

/* One log line is cut at this many bytes: enough for any message we make,
 * and a bound on what a hostile application_name can add. */
#define LOG_LINE_MAX 2048

bool log_open(const char *path)
{
	if (log_file && log_file != stderr)
		fclose(log_file);
	log_file = stderr;
	if (!path || !*path)
		return true;
	FILE *f = fopen(path, "a");
	if (!f)
		return false;
	setvbuf(f, NULL, _IOLBF, 0);
	log_file = f;
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

static void log_vwrite(ConfLogLevel level, const char *prefix, const char *fmt, va_list ap)
{
	/* the date and time to the second, formatted once per second: busy
	 * servers log several lines per connection */
	static time_t stamp_sec = -1;
	static char stamp[32];
	char line[LOG_LINE_MAX];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	if (tv.tv_sec != stamp_sec) {
		struct tm tm;
		gmtime_r(&tv.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
		stamp_sec = tv.tv_sec;
	}
	int n = (int)strlen(stamp);
	memcpy(line, stamp, (size_t)n + 1);
	n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03d UTC [%d] %s %s%s", (int)(tv.tv_usec / 1000),
		      (int)getpid(), level_str(level), prefix ? prefix : "", prefix ? ": " : "");
	if (n < (int)sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	fprintf(log_file ? log_file : stderr, "%s\n", line);
}

void log_write(ConfLogLevel level, const char *prefix, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, prefix, fmt, ap);
	va_end(ap);
}

void log_client_write(ConfLogLevel level, const Client *c, const char *fmt, ...)
{
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "C-%llu %s %s/%s", (unsigned long long)c->id, c->addr_str,
		 c->database ? c->database : "?", c->user ? c->user : "?");
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, prefix, fmt, ap);
	va_end(ap);
}

void log_server_write(ConfLogLevel level, const Server *s, const char *fmt, ...)
{
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "S-%llu %s/%s pid=%d", (unsigned long long)s->id, s->pool->database,
		 s->pool->user, s->backend_pid);
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, prefix, fmt, ap);
	va_end(ap);
}

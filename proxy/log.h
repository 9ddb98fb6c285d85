/*
 * log: one line per event, with the connection it concerns.
 *
 *   2026-11-21 04:12:33.120 UTC [4242] LOG C-17 127.0.0.1:51514 testdb/app: login, route public_002
 *
 * or, with log_format = json, one JSON object a line with the same facts
 * as members (time, level, pid, message, and client/server, addr,
 * database, user, backend_pid where the line concerns a connection):
 *
 *   {"time":"2026-11-21T04:12:33.120Z","level":"LOG","pid":4242,"client":"C-17",
 *    "addr":"127.0.0.1:51514","database":"testdb","user":"app","message":"login, route public_002"}
 *
 * With syslog = 1 every line also goes to syslog(3) (without the time and
 * pid, which syslog adds), at the priority of its level.
 *
 * The macros test the level before any formatting work, so debug lines cost
 * one comparison when debug is off.
 */
#ifndef PGFLIP_LOG_H
#define PGFLIP_LOG_H

#include <stdbool.h>

#include "conf/conf.h"

extern ConfLogLevel log_current_level;

/* log_open: sends lines to PATH (appended) or, when NULL or "", stderr.
 * Called again with the same PATH, it reopens the file: after logrotate
 * renamed it, SIGHUP makes pgflip write to a new file of that name. False
 * when the file cannot be opened: lines then go where they went before
 * (stderr at start). */
bool log_open(const char *path);
void log_set_level(ConfLogLevel level);
/* log_configure: the level, log_format and syslog keys of CONF take effect
 * (at start and at each reload): syslog is opened (openlog with its own copy
 * of syslog_ident and the facility), reopened when they changed, or
 * closed. The log file is log_open's. */
void log_configure(const Conf *conf);
/* log_close: closes syslog and frees what log_configure kept. */
void log_close(void);
void log_write(ConfLogLevel level, const char *prefix, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

struct Client;
struct Server;
void log_client_write(ConfLogLevel level, const struct Client *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_server_write(ConfLogLevel level, const struct Server *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_enabled(level) ((level) <= log_current_level)
#define log_error(...) do { if (log_enabled(CONF_LOG_ERROR)) log_write(CONF_LOG_ERROR, NULL, __VA_ARGS__); } while (0)
#define log_warning(...) do { if (log_enabled(CONF_LOG_WARNING)) log_write(CONF_LOG_WARNING, NULL, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_enabled(CONF_LOG_INFO)) log_write(CONF_LOG_INFO, NULL, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_enabled(CONF_LOG_DEBUG)) log_write(CONF_LOG_DEBUG, NULL, __VA_ARGS__); } while (0)

#define slog(level, s, ...) do { if (log_enabled(level)) log_server_write(level, s, __VA_ARGS__); } while (0)
#define clog(level, c, ...) do { if (log_enabled(level)) log_client_write(level, c, __VA_ARGS__); } while (0)
#define clog_info(c, ...) clog(CONF_LOG_INFO, c, __VA_ARGS__)
#define clog_debug(c, ...) clog(CONF_LOG_DEBUG, c, __VA_ARGS__)
#define clog_warning(c, ...) clog(CONF_LOG_WARNING, c, __VA_ARGS__)
#define slog_info(s, ...) slog(CONF_LOG_INFO, s, __VA_ARGS__)
#define slog_debug(s, ...) slog(CONF_LOG_DEBUG, s, __VA_ARGS__)
#define slog_warning(s, ...) slog(CONF_LOG_WARNING, s, __VA_ARGS__)

#endif

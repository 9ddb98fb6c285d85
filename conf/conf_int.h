/*
 * conf/conf_int.h: what conf.c (pgflip.ini) and auth.c (auth_file,
 * auth_hba_file) share. Internal to conf/: nothing outside it includes this.
 *
 * Both read their files with one line reader (conf_line_read), which is where
 * the checks every config file gets live: a NUL byte anywhere is an error, a
 * line that does not fit the caller's buffer is reported rather than cut.
 */
#ifndef PGFLIP_CONF_INT_H
#define PGFLIP_CONF_INT_H

#include <stdarg.h>
#include <stdio.h>

#include "conf/conf.h"

typedef enum {
	CONF_LINE_OK = 0, /* BUF holds one whole line, its '\n' kept when it had one */
	CONF_LINE_LONG,   /* BUF holds the first SIZE - 1 bytes; the rest is still unread */
	CONF_LINE_NUL,    /* the line holds a NUL byte (a config file is text) */
	CONF_LINE_EOF,    /* nothing more to read */
	CONF_LINE_ERROR,  /* a read error; errno says which */
} ConfLineStatus;

/*
 * conf_line_read: reads one line of F into BUF (SIZE bytes, SIZE >= 2),
 * NUL-terminated, its length in *LEN. fgets, plus what fgets cannot tell: a
 * NUL byte inside the line, and whether a full buffer ended the line. After
 * CONF_LINE_LONG, conf_line_skip drops the rest of the line.
 */
ConfLineStatus conf_line_read(FILE *f, char *buf, int size, size_t *len);

/* conf_line_skip: drops the rest of a line after CONF_LINE_LONG. Returns
 * CONF_LINE_OK, CONF_LINE_NUL when the part dropped holds a NUL byte, or
 * CONF_LINE_ERROR. */
ConfLineStatus conf_line_skip(FILE *f);

/* True for the ASCII control characters (0x00..0x1f and 0x7f). */
bool conf_is_control(unsigned char c);

/* Frees a NULL-terminated array of strings and the strings; NULL is fine. */
void conf_strv_free(char **v);

/* Writes "FILE:LINE: " and the formatted message into ERR (ERRLEN bytes,
 * always NUL-terminated when ERRLEN > 0). */
void conf_error_v(char *err, size_t errlen, const char *file, int line, const char *fmt,
		  va_list ap) __attribute__((format(printf, 5, 0)));

/*
 * conf_auth_load (auth.c): reads CONF->auth_file into users and
 * CONF->auth_hba_file into hba, for whichever is set; the other keys of CONF
 * are final by then (hba lines are checked against client_tls_sslmode).
 * Returns false with ERR holding "AUTHFILE:LINE: what" on the first error;
 * what was read so far stays in CONF for conf_auth_clear.
 */
bool conf_auth_load(Conf *conf, char *err, size_t errlen) CONF_MUSTCHECK;

/* conf_auth_clear (auth.c): frees CONF's users and hba rules. */
void conf_auth_clear(Conf *conf);

#endif

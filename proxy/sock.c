/*
 * proxy/sock.c: buffered non-blocking sockets (see sock.h for the why).
 *
 * Flushing: sock_write() puts the socket on a dirty list. A read callback
 * flushes the list when it returns; writes from anywhere else (timers, the
 * admin socket) activate one flush event, which libevent runs after the
 * callback that wrote. Either way the bytes a callback queued leave in one
 * writev() per socket.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>

#include "proxy/sock.h"

/*
 * Read buffers: every read reserves SOCK_READ_CHUNK bytes in the input
 * evbuffer, whose chain then moves whole to the peer's output and is freed
 * once written; that is one 16 KiB malloc/free pair per message each way.
 * libevent takes its allocator from event_set_mem_functions, so blocks of
 * that one size class are kept on a small free list instead (the event loop
 * is single-threaded, and so is every libevent call of the proxy).
 */
#define MEM_CLASS 16384       /* what libevent allocates for one read chunk */
#define MEM_CACHE_MAX 256     /* blocks kept: 4 MiB at most */

typedef union MemHeader {
	size_t size;
	max_align_t align;
} MemHeader;

static MemHeader *mem_cache[MEM_CACHE_MAX];
static int mem_cached;

static void *mem_malloc(size_t size)
{
	if (size == MEM_CLASS && mem_cached > 0)
		return mem_cache[--mem_cached] + 1;
	MemHeader *h = malloc(sizeof(MemHeader) + size);
	if (!h)
		return NULL;
	h->size = size;
	return h + 1;
}

static void mem_free(void *p)
{
	if (!p)
		return;
	MemHeader *h = (MemHeader *)p - 1;
	if (h->size == MEM_CLASS && mem_cached < MEM_CACHE_MAX) {
		mem_cache[mem_cached++] = h;
		return;
	}
	free(h);
}

static void *mem_realloc(void *p, size_t size)
{
	if (!p)
		return mem_malloc(size);
	MemHeader *h = realloc((MemHeader *)p - 1, sizeof(MemHeader) + size);
	if (!h)
		return NULL;
	h->size = size;
	return h + 1;
}

void sock_mem_init(void) { event_set_mem_functions(mem_malloc, mem_realloc, mem_free); }

void sock_mem_free(void *p) { mem_free(p); }

static struct event *flush_ev;
static Sock *dirty_head;
/* Inside a socket callback: its end flushes, no flush event needed. */
static bool in_callback;

static void sock_fail(Sock *s, int err)
{
	if (s->failed)
		return;
	s->failed = true;
	sock_read(s, false);
	if (s->write_waiting) {
		event_del(s->wev);
		s->write_waiting = false;
	}
	s->cb->on_close(s->arg, err);
}

/* One read into VEC: bytes read (> 0), 0 at the peer's end, or -1 with
 * *ERR (EAGAIN when nothing is there yet). */
static ssize_t sock_read_some(Sock *s, struct evbuffer_iovec *vec, int *err)
{
	if (!s->ssl) {
		ssize_t n = read(s->fd, vec->iov_base, vec->iov_len);
		*err = errno;
		return n;
	}
	ERR_clear_error();
	int r = SSL_read(s->ssl, vec->iov_base, (int)vec->iov_len);
	if (r > 0)
		return r;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_READ:
		*err = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		/* the handshake has bytes for a full kernel buffer: read again
		 * once the socket is writable */
		s->read_wants_write = true;
		if (!s->write_waiting && event_add(s->wev, NULL) == 0)
			s->write_waiting = true;
		*err = EAGAIN;
		return -1;
	case SSL_ERROR_SYSCALL:
		s->ssl_error = ERR_peek_error();
		*err = errno ? errno : EPROTO;
		return r == 0 ? 0 : -1;
	default:
		s->ssl_error = ERR_peek_error();
		*err = EPROTO;
		return -1;
	}
}

static void sock_do_write(Sock *s);

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	Sock *s = arg;
	(void)fd;
	(void)what;
	if (s->failed)
		return;
	if (s->write_wants_read) {
		s->write_wants_read = false;
		sock_do_write(s);
		if (s->failed)
			return;
	}
	for (;;) {
		struct evbuffer_iovec vec;
		size_t have = evbuffer_get_length(s->in);
		if (s->in_cap && have >= s->in_cap) {
			sock_read(s, false); /* the owner turns it on again once it consumed */
			break;
		}
		if (evbuffer_reserve_space(s->in, SOCK_READ_CHUNK, &vec, 1) < 1) {
			sock_fail(s, ENOMEM);
			return;
		}
		int err = 0;
		ssize_t n = sock_read_some(s, &vec, &err);
		if (n > 0) {
			vec.iov_len = (size_t)n;
			evbuffer_commit_space(s->in, &vec, 1);
			if (s->count_in)
				*s->count_in += (uint64_t)n;
			/* TLS may hold decrypted bytes the kernel no longer signals */
			if (s->ssl && SSL_pending(s->ssl) > 0)
				continue;
			break;
		}
		evbuffer_commit_space(s->in, &vec, 0);
		if (n == 0) {
			sock_fail(s, 0);
			return;
		}
		if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
			if (evbuffer_get_length(s->in) > have)
				break; /* what TLS gave before it ran dry */
			return;
		}
		sock_fail(s, err);
		return;
	}
	in_callback = true;
	s->cb->on_read(s->arg);
	in_callback = false;
	sock_flush_all();
}

/* Writes as much as the kernel takes. */
static void sock_do_write(Sock *s)
{
	while (evbuffer_get_length(s->out) > 0 && !s->failed) {
		ssize_t n;
		int err = 0;
		if (s->ssl) {
			/* small pieces go as one record, up to a record's size:
			 * an answer queued as rows + ReadyForQuery would
			 * otherwise cost two records and two writes; bulk
			 * chunks go as they are (no copy) */
			struct evbuffer_iovec vec;
			if (evbuffer_peek(s->out, -1, NULL, &vec, 1) < 1)
				break;
			size_t len = evbuffer_get_length(s->out);
			size_t take = vec.iov_len;
			unsigned char *p = vec.iov_base;
			if (take < SOCK_TLS_COALESCE && len > take) {
				take = len < SOCK_TLS_RECORD ? len : SOCK_TLS_RECORD;
				p = evbuffer_pullup(s->out, (ev_ssize_t)take);
			}
			if (!p) {
				sock_fail(s, ENOMEM);
				return;
			}
			ERR_clear_error();
			int r = SSL_write(s->ssl, p, (int)take);
			if (r > 0) {
				n = r;
			} else {
				int e = SSL_get_error(s->ssl, r);
				n = -1;
				err = e == SSL_ERROR_WANT_WRITE ? EAGAIN : EPIPE;
				if (e == SSL_ERROR_WANT_READ) {
					/* renegotiation is off, so only a handshake
					 * still running needs this: the next read
					 * event writes again */
					s->write_wants_read = true;
					return;
				}
				if (err == EPIPE)
					s->ssl_error = ERR_peek_error();
			}
			if (n > 0)
				evbuffer_drain(s->out, (size_t)n);
		} else {
			n = evbuffer_write(s->out, s->fd);
			err = errno;
		}
		if (n > 0) {
			if (s->count_out)
				*s->count_out += (uint64_t)n;
			continue;
		}
		if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) {
			if (!s->write_waiting) {
				if (event_add(s->wev, NULL) != 0) {
					sock_fail(s, ENOMEM);
					return;
				}
				s->write_waiting = true;
			}
			return;
		}
		sock_fail(s, n == 0 ? EPIPE : err);
		return;
	}
	if (s->write_waiting && !s->read_wants_write) {
		event_del(s->wev);
		s->write_waiting = false;
	}
	if (s->want_drain && evbuffer_get_length(s->out) <= SOCK_LOW_WATERMARK) {
		s->want_drain = false;
		s->cb->on_drain(s->arg);
	}
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	Sock *s = arg;
	sock_do_write(s);
	if (s->read_wants_write && !s->failed) {
		s->read_wants_write = false;
		read_cb(fd, what, s);
	}
}

void sock_flush(Sock *s)
{
	if (!s->failed && !s->write_waiting)
		sock_do_write(s);
}

void sock_flush_all(void)
{
	while (dirty_head) {
		Sock *s = dirty_head;
		dirty_head = s->next_dirty;
		s->next_dirty = NULL;
		s->dirty = false;
		sock_flush(s);
	}
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sock_flush_all();
}

bool sock_module_init(struct event_base *base)
{
	flush_ev = event_new(base, -1, 0, flush_cb, NULL);
	return flush_ev != NULL;
}

void sock_module_free(void)
{
	if (flush_ev)
		event_free(flush_ev);
	flush_ev = NULL;
	dirty_head = NULL;
}

static void mark_dirty(Sock *s)
{
	if (s->dirty || s->failed)
		return;
	s->dirty = true;
	s->next_dirty = dirty_head;
	if (!dirty_head && flush_ev && !in_callback)
		event_active(flush_ev, 0, 0);
	dirty_head = s;
}

void sock_write(Sock *s, const void *p, size_t n)
{
	if (n == 0 || s->failed)
		return;
	if (evbuffer_add(s->out, p, n) != 0) {
		sock_fail(s, ENOMEM); /* the owner closes the connection, with the reason */
		return;
	}
	mark_dirty(s);
}

void sock_write_buffer(Sock *s, struct evbuffer *buf, size_t n)
{
	if (n == 0)
		return;
	if (s->failed) {
		evbuffer_drain(buf, n);
		return;
	}
	if (evbuffer_remove_buffer(buf, s->out, n) != (int)n) {
		sock_fail(s, ENOMEM);
		return;
	}
	mark_dirty(s);
}

void sock_want_drain(Sock *s) { s->want_drain = true; }

void sock_read(Sock *s, bool on)
{
	if (!s->rev || on == s->reading || (on && s->failed))
		return;
	if (on && event_add(s->rev, NULL) != 0) {
		sock_fail(s, ENOMEM);
		return;
	}
	if (!on)
		event_del(s->rev);
	s->reading = on;
	/* decrypted bytes OpenSSL holds raise no read event of their own */
	if (on && s->ssl && SSL_pending(s->ssl) > 0)
		event_active(s->rev, EV_READ, 0);
}

void sock_start_tls(Sock *s, SSL *ssl)
{
	s->ssl = ssl;
	s->own_ssl = true;
	SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
}

bool sock_open(Sock *s, struct event_base *base, evutil_socket_t fd, SSL *ssl, bool own_fd,
	       const SockCallbacks *cb, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->ssl = ssl;
	s->own_fd = own_fd;
	s->cb = cb;
	s->arg = arg;
	if (ssl)
		SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	s->rev = event_new(base, fd, EV_READ | EV_PERSIST, read_cb, s);
	s->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, write_cb, s);
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	if (!s->rev || !s->wev || !s->in || !s->out) {
		s->failed = true;
		return false;
	}
	return true;
}

void sock_set_callbacks(Sock *s, const SockCallbacks *cb, void *arg)
{
	s->cb = cb;
	s->arg = arg;
}

void sock_close(Sock *s)
{
	if (s->dirty) {
		/* unlink from the flush list */
		Sock **pp = &dirty_head;
		while (*pp && *pp != s)
			pp = &(*pp)->next_dirty;
		if (*pp)
			*pp = s->next_dirty;
		s->dirty = false;
	}
	if (s->rev)
		event_free(s->rev);
	if (s->wev)
		event_free(s->wev);
	if (s->in)
		evbuffer_free(s->in);
	if (s->out)
		evbuffer_free(s->out);
	if (s->own_ssl && s->ssl) {
		if (!s->failed && SSL_is_init_finished(s->ssl)) {
			ERR_clear_error();
			(void)SSL_shutdown(s->ssl); /* close_notify, if the kernel takes it now */
		}
		SSL_free(s->ssl);
		ERR_clear_error();
	}
	if (s->own_fd && s->fd >= 0)
		evutil_closesocket(s->fd);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

bool sock_peer_uid(evutil_socket_t fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	*uid = cred.uid;
	return true;
}

int sock_peer_user(evutil_socket_t fd, uid_t *uid, char *name, size_t n)
{
	name[0] = '\0';
	if (!sock_peer_uid(fd, uid))
		return -1;
	char buf[4096];
	struct passwd pw, *found = NULL;
	if (getpwuid_r(*uid, &pw, buf, sizeof(buf), &found) != 0 || !found)
		return 0;
	snprintf(name, n, "%s", found->pw_name);
	return 1;
}

/*
 * sock: a buffered, non-blocking socket on the libevent loop, for the hot
 * path of the proxy (client and server connections).
 *
 * Why not bufferevent: a bufferevent defers every write to the next loop
 * turn and adds and removes its write event around it (two epoll_ctl calls
 * per write), and each read asks the kernel how much is pending (an ioctl).
 * A pooler moves small messages, so those calls cost as much as the work.
 * Here the read event stays registered (level-triggered); writes are queued
 * in an evbuffer and flushed once per loop turn, straight with writev(), and
 * a write event is registered only while the kernel refuses bytes.
 *
 * The socket may carry TLS: an OpenSSL SSL* already connected (libpq's, on
 * server connections libpq logged in; not owned), or one whose handshake is
 * still to come (sock_start_tls, on client connections and on pgflip's own
 * server logins, login.c; owned): reads and writes then go
 * through SSL_read/SSL_write, which run the handshake first. The input cap
 * holds for TLS as for plain sockets: it is checked before every SSL_read, so
 * TLS can overrun it by one read (SOCK_READ_CHUNK) at most; decrypted bytes
 * that OpenSSL still holds when reading stops are read as soon as it resumes.
 */
#ifndef PGFLIP_SOCK_H
#define PGFLIP_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

typedef struct Sock Sock;

/* Callbacks get the Sock's ARG. on_read: new bytes in sock->in. on_drain:
 * the output fell to the low watermark after sock_want_drain(). on_close:
 * the peer closed (ERR 0) or the socket failed (ERR = errno). */
typedef struct SockCallbacks {
	void (*on_read)(void *arg);
	void (*on_drain)(void *arg);
	void (*on_close)(void *arg, int err);
} SockCallbacks;

struct Sock {
	evutil_socket_t fd;
	SSL *ssl;                 /* owned only when own_ssl */
	unsigned long ssl_error;  /* OpenSSL's error code when TLS failed (on_close got EPROTO), else 0 */
	struct event *rev;
	struct event *wev;
	struct evbuffer *in;
	struct evbuffer *out;
	size_t in_cap;            /* bytes of input above which nothing is read, 0 = no cap */
	const SockCallbacks *cb;
	void *arg;
	Sock *next_dirty;         /* on the flush list */
	bool dirty;
	bool reading;
	bool write_waiting;       /* wev registered: the kernel buffer was full */
	bool want_drain;
	bool failed;
	bool own_fd;
	bool own_ssl;
	bool read_wants_write;    /* SSL_read needs the socket writable (TLS handshake) */
	bool write_wants_read;    /* SSL_write needs the socket readable */
	uint64_t *count_in;       /* where the bytes read are added (a pool's stats), or NULL */
	uint64_t *count_out;      /* where the bytes written are added, or NULL */
};

/* sock_open: sets up S on FD, which must be non-blocking already (accept4
 * with SOCK_NONBLOCK, or libpq's socket). OWN_FD: close it
 * at sock_close. SSL may be NULL. Reading starts disabled. False when
 * libevent cannot allocate (S is then left closed and safe to sock_close). */
bool sock_open(Sock *s, struct event_base *base, evutil_socket_t fd, SSL *ssl, bool own_fd,
	       const SockCallbacks *cb, void *arg) __attribute__((warn_unused_result));
/* sock_start_tls: from now on S speaks TLS through SSL (set up by the caller
 * on S's fd, in accept or connect state, with no bytes exchanged yet); S owns
 * it: sock_close sends a close_notify if it can, then frees it. Nothing may
 * be queued in S's output (flush the plain-text answer first). */
void sock_start_tls(Sock *s, SSL *ssl);
/* sock_set_callbacks: S's events go to CB with ARG from now on (pgflip's
 * own server login hands the link it made to the server). */
void sock_set_callbacks(Sock *s, const SockCallbacks *cb, void *arg);
/* sock_close: frees events and buffers, closes the fd if owned. Pending
 * output is dropped: flush first if it matters. Safe on a zeroed Sock. */
void sock_close(Sock *s);
/* sock_read: reading on or off. Even on, nothing is read while the input
 * holds in_cap bytes or more (set by the owner; the owner turns reading off
 * then, or the level-triggered read event would spin). */
void sock_read(Sock *s, bool on);
/* sock_write / sock_write_buffer: queue bytes (copy / move from BUF); they
 * leave in this loop turn's flush. */
void sock_write(Sock *s, const void *p, size_t n);
void sock_write_buffer(Sock *s, struct evbuffer *buf, size_t n);
/* sock_flush: write what is queued now. */
void sock_flush(Sock *s);
static inline size_t sock_out_len(const Sock *s) { return evbuffer_get_length(s->out); }
/* sock_want_drain: call on_drain once the output is down to LOW bytes. */
void sock_want_drain(Sock *s);
/* sock_flush_all: flush every socket with queued output (the loop does it
 * by itself once per turn; exposed for shutdown paths). */
void sock_flush_all(void);
/* sock_module_init: the per-loop flush event. */
bool sock_module_init(struct event_base *base) __attribute__((warn_unused_result));
void sock_module_free(void);

/* sock_peer_user: the OS user at the other end of the Unix socket FD
 * (SO_PEERCRED): 1 with *UID and its NAME (N bytes), 0 with *UID only (a
 * uid without a user name; NAME is ""), -1 when the peer is unknown. */
int sock_peer_user(evutil_socket_t fd, uid_t *uid, char *name, size_t n);
/* sock_peer_uid: the uid at the other end of the Unix socket FD
 * (SO_PEERCRED) into *UID; false when the peer is unknown. */
bool sock_peer_uid(evutil_socket_t fd, uid_t *uid) __attribute__((warn_unused_result));

/* sock_mem_init: libevent's allocator with a free list for read chunks;
 * call before any other libevent call (sock.c says why). */
void sock_mem_init(void);
/* sock_mem_free: frees what libevent allocated for the caller (the line of
 * evbuffer_readln), which plain free() must not see. */
void sock_mem_free(void *p);

/* Bytes given to one SSL_write: TLS's largest record (RFC 8446, 5.1). */
#define SOCK_TLS_RECORD 16384
/* Queued pieces shorter than this are copied together into one record; a
 * longer one is a record of its own, without a copy. */
#define SOCK_TLS_COALESCE 4096

/* Output level at which a paused peer may send again (bytes). */
#define SOCK_LOW_WATERMARK (64 * 1024)
/* Bytes read per read call: a few TCP segments' worth of small messages.
 * With libevent's chain header the allocation is exactly 16 KiB (a larger
 * request would round up to 32 KiB). */
#define SOCK_READ_CHUNK (16 * 1024 - 128)

#endif

/*
 * proxy/daemon.c: the pgflip daemon's life cycle: config, listeners, signals,
 * the janitor (timeouts, and once a second the canary's verdict) and the
 * reaper (deferred frees).
 *
 *   SIGHUP   reopen the log file (logrotate), reload the config file;
 *            [routes] replace the live routes only
 *            when the file's routes changed (a flip by the operator, then
 *            published to the route store like any other), so a reload for
 *            another reason does not undo a flip made with `pgflip ctl
 *            route ...` or by another instance
 *   SIGTERM  stop accepting, wait for clients up to shutdown_timeout, exit
 *   SIGINT   exit at once
 *
 * Under systemd (Type=notify, conf/pgflip.service) the daemon tells its
 * state with sd_notify(3): READY=1 when it first accepts clients (the
 * listeners are bound and the stored routes read), RELOADING=1 then
 * READY=1 around each SIGHUP, STOPPING=1 when it begins to stop. Without
 * NOTIFY_SOCKET in the environment these calls do nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <systemd/sd-daemon.h>

#include "proxy/proxy.h"
#include "proxy/client.h"
#include "proxy/server.h"
#include "proxy/pool.h"
#include "proxy/admin.h"
#include "proxy/auth.h"
#include "proxy/authq.h"
#include "proxy/routestore.h"
#include "proxy/tls.h"
#include "proxy/migrator.h"
#include "proxy/metrics.h"

Proxy proxy;

uint64_t proxy_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t proxy_now_ms(void) { return proxy_now_us() / 1000; }

void proxy_canary_rollback(const char *canary_schema, const char *why)
{
	char to[CONF_MAX_IDENT + 1];
	snprintf(to, sizeof(to), "%s", proxy.router.default_schema);
	size_t n = router_flip(&proxy.router, canary_schema, to);
	if (proxy.router.canary_schema && strcmp(proxy.router.canary_schema, canary_schema) == 0) {
		char err[256]; /* not flipped (it was the default's schema): it ends all the same */
		if (router_set_canary(&proxy.router, NULL, 0, err, sizeof(err)))
			n++;
	}
	log_warning("canary rollback: %zu route(s) of %s go to %s at each client's next transaction (%s)", n,
		    canary_schema, to, why);
	char who[700];
	snprintf(who, sizeof(who), "canary rollback of %s: %s", canary_schema, why);
	routestore_publish(who);
}

/* Once a second: the canary's verdict, when its command asked for one. */
static void canary_check(uint64_t now_us)
{
	uint64_t second = now_us / 1000000;
	const Router *r = &proxy.router;
	if (second == proxy.canary_check_s || !r->canary_schema || r->canary_check.max_error_ratio <= 0)
		return;
	proxy.canary_check_s = second;
	char why[600];
	if (!routestats_canary_verdict(&proxy.rstats, r, proxy.canary_since_s, second, why, sizeof(why)))
		return;
	char schema[CONF_MAX_IDENT + 1];
	snprintf(schema, sizeof(schema), "%s", r->canary_schema);
	log_warning("canary %s failed: %s", schema, why);
	if (proxy.on_canary_failed)
		proxy.on_canary_failed(schema, why);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	uint64_t now = proxy_now_ms();
	Client *c, *cnext;
	for (c = TAILQ_FIRST(&proxy.graveyard); c; c = cnext) {
		cnext = TAILQ_NEXT(c, link);
		/* let the last bytes (a FATAL error) reach the client first */
		if (sock_out_len(&c->sock) > 0 && !c->sock.failed && now - c->close_start_ms < PROXY_CLOSE_FLUSH_MS)
			continue;
		TAILQ_REMOVE(&proxy.graveyard, c, link);
		client_free(c);
	}
	Server *s;
	while ((s = TAILQ_FIRST(&proxy.server_graveyard))) {
		TAILQ_REMOVE(&proxy.server_graveyard, s, link);
		server_free(s);
	}
}

void proxy_reap_soon(void)
{
	if (proxy.reaper)
		event_active(proxy.reaper, 0, 0);
}

/* How late the janitor runs, against PROXY_JANITOR_MS after its last run. */
static void loop_lag_note(uint64_t now)
{
	if (proxy.janitor_last_ms) {
		uint64_t due = proxy.janitor_last_ms + PROXY_JANITOR_MS;
		uint64_t lag = now > due ? now - due : 0;
		size_t slot = (size_t)((now / 1000) % PROXY_LAG_SLOTS);
		if (proxy.lag_slot_s[slot] != now / 1000) {
			proxy.lag_slot_s[slot] = now / 1000;
			proxy.lag_slot_ms[slot] = 0;
		}
		if (lag > proxy.lag_slot_ms[slot])
			proxy.lag_slot_ms[slot] = lag;
		if (lag > proxy.loop_lag_max_ms)
			proxy.loop_lag_max_ms = lag;
	}
	proxy.janitor_last_ms = now;
}

uint64_t proxy_loop_lag_recent_ms(void)
{
	uint64_t now_s = proxy_now_ms() / 1000, worst = 0;
	for (size_t i = 0; i < PROXY_LAG_SLOTS; i++)
		if (proxy.lag_slot_s[i] + PROXY_LAG_SLOTS > now_s && proxy.lag_slot_ms[i] > worst)
			worst = proxy.lag_slot_ms[i];
	return worst;
}

static void janitor_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	uint64_t now = proxy_now_ms();
	loop_lag_note(now);
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
		pool_janitor(p, now);
	authq_janitor(now);
	routestore_janitor(now);
	Client *c, *cnext;
	for (c = TAILQ_FIRST(&proxy.clients); c; c = cnext) {
		cnext = TAILQ_NEXT(c, link);
		client_janitor(c, now);
	}
	if (!TAILQ_EMPTY(&proxy.graveyard))
		proxy_reap_soon();
	canary_check(proxy_now_us());
	if (proxy.shutting_down) {
		if (proxy.n_clients == 0) {
			log_info("shutdown: no clients left");
			event_base_loopexit(proxy.base, NULL);
		} else if (now >= proxy.shutdown_deadline_ms) {
			log_info("shutdown: shutdown_timeout reached with %d clients connected", proxy.n_clients);
			event_base_loopexit(proxy.base, NULL);
		}
	}
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int socklen, void *arg)
{
	(void)l;
	client_accept(fd, addr, socklen, arg != NULL);
}

/* How long accepting pauses when file descriptors run out (ms): as
 * PgBouncer, wait for some to be freed instead of spinning on accept. */
#define PROXY_ACCEPT_PAUSE_MS 1000

/* STATE to systemd (sd_notify: "READY=1", "STOPPING=1"...); a failure is
 * only logged at debug: without NOTIFY_SOCKET nobody listens. */
static void proxy_notify(const char *state)
{
	int rc = sd_notify(0, state);
	if (rc < 0)
		log_debug("sd_notify(%s): %s", state, strerror(-rc));
}

void proxy_accept_update(void)
{
	bool on = !proxy.shutting_down && !proxy.accept_paused && !routestore_holding();
	for (int i = 0; i < proxy.n_listeners; i++) {
		if (on)
			evconnlistener_enable(proxy.listeners[i]);
		else
			evconnlistener_disable(proxy.listeners[i]);
	}
	if (on && !proxy.ready_notified && proxy.started) {
		proxy.ready_notified = true;
		proxy_notify("READY=1\nSTATUS=accepting clients");
	}
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	proxy.accept_paused = false;
	proxy_accept_update();
	log_info("accepting connections again");
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	int err = EVUTIL_SOCKET_ERROR();
	if ((err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) && proxy.accept_resume) {
		if (proxy.accept_paused)
			return;
		proxy.accept_paused = true;
		proxy_accept_update();
		struct timeval tv = {PROXY_ACCEPT_PAUSE_MS / 1000, (PROXY_ACCEPT_PAUSE_MS % 1000) * 1000};
		event_add(proxy.accept_resume, &tv);
		log_warning("accept failed: %s; not accepting for %d ms (%d clients connected)",
			    evutil_socket_error_to_string(err), PROXY_ACCEPT_PAUSE_MS, proxy.n_clients);
		return;
	}
	log_warning("accept failed: %s", evutil_socket_error_to_string(err));
}

/* Descriptors pgflip may need: a socket per client (logged in, plus as many
 * logging in), one per server of every database's pool and reserve, and a
 * few for listeners, the log and the admin socket. */
static void check_fd_limit(const Conf *conf)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	long long need = 2LL * conf->max_client_conn + 16;
	for (size_t i = 0; i < conf->n_databases; i++) {
		int size = conf->databases[i].pool_size > 0 ? conf->databases[i].pool_size : conf->default_pool_size;
		need += size + conf->reserve_pool_size;
	}
	if ((long long)rl.rlim_cur < need)
		log_warning("the file descriptor limit (%llu) is below what max_client_conn and the pools may "
			    "need (%lld): raise it (ulimit -n, LimitNOFILE=)",
			    (unsigned long long)rl.rlim_cur, need);
}

/* Backlog of the listening sockets: PgBouncer's default listen_backlog. */
#define PROXY_LISTEN_BACKLOG 128

static bool listen_on(const struct sockaddr *sa, int salen, bool is_unix, const char *what)
{
	if (proxy.n_listeners == (int)(sizeof(proxy.listeners) / sizeof(proxy.listeners[0])))
		return false;
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	struct evconnlistener *l = evconnlistener_new_bind(proxy.base, accept_cb, is_unix ? (void *)1 : NULL, flags,
							    PROXY_LISTEN_BACKLOG, sa, salen);
	if (!l) {
		fprintf(stderr, "pgflip: cannot listen on %s: %s\n", what, strerror(errno));
		log_error("cannot listen on %s: %s", what, strerror(errno));
		return false;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	proxy.listeners[proxy.n_listeners++] = l;
	log_info("listening on %s", what);
	return true;
}

static bool listen_tcp(const Conf *conf)
{
	if (!conf->listen_addr || !*conf->listen_addr)
		return true;
	char what[300];
	const char *addrs[2] = {conf->listen_addr, NULL};
	if (strcmp(conf->listen_addr, "*") == 0) {
		addrs[0] = "0.0.0.0";
		addrs[1] = "::";
	}
	for (int i = 0; i < 2 && addrs[i]; i++) {
		struct sockaddr_storage ss;
		int len = (int)sizeof(ss);
		snprintf(what, sizeof(what), strchr(addrs[i], ':') ? "[%s]:%d" : "%s:%d", addrs[i], conf->listen_port);
		if (evutil_parse_sockaddr_port(what, (struct sockaddr *)&ss, &len) != 0) {
			fprintf(stderr, "pgflip: %s: listen_addr \"%s\" is not an IP address\n", conf->path, addrs[i]);
			return false;
		}
		if (!listen_on((struct sockaddr *)&ss, len, false, what))
			return false;
	}
	return true;
}

static bool listen_unix(const Conf *conf)
{
	if (!conf->unix_socket_dir || !*conf->unix_socket_dir)
		return true;
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", conf->unix_socket_dir, conf->listen_port);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		fprintf(stderr, "pgflip: unix_socket_dir is too long for a socket path\n");
		return false;
	}
	unlink(sun.sun_path); /* a stale socket of an earlier run */
	/* created with no permission for anyone, then given unix_socket_mode
	 * and unix_socket_group: no window with wider access */
	mode_t old = umask(0777);
	bool ok = listen_on((struct sockaddr *)&sun, (int)sizeof(sun), true, sun.sun_path);
	umask(old);
	if (!ok)
		return false;
	proxy.unix_path = strdup(sun.sun_path);
	if (conf->unix_socket_group) {
		char buf[4096];
		struct group gr, *found = NULL;
		if (getgrnam_r(conf->unix_socket_group, &gr, buf, sizeof(buf), &found) != 0 || !found) {
			fprintf(stderr, "pgflip: unix_socket_group: no such group: %s\n", conf->unix_socket_group);
			return false;
		}
		if (chown(sun.sun_path, (uid_t)-1, found->gr_gid) != 0) {
			fprintf(stderr, "pgflip: unix_socket_group %s: %s\n", conf->unix_socket_group, strerror(errno));
			return false;
		}
	}
	if (chmod(sun.sun_path, (mode_t)conf->unix_socket_mode) != 0) {
		fprintf(stderr, "pgflip: unix_socket_mode: %s\n", strerror(errno));
		return false;
	}
	return true;
}

/* The client TLS context of CONF into proxy.tls: kept as it is when CONF's
 * files cannot be used (false, ERR says why). */
static bool proxy_load_tls(const Conf *conf, char *err, size_t errlen)
{
	TlsServer *t = tls_server_new(conf, err, errlen);
	if (!t && err[0])
		return false;
	tls_server_free(proxy.tls);
	proxy.tls = t;
	return true;
}

static void write_pidfile(const char *path)
{
	if (!path || !*path)
		return;
	FILE *f = fopen(path, "w");
	if (!f) {
		log_warning("cannot write pidfile %s: %s", path, strerror(errno));
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

bool proxy_reload(char *err, size_t errlen)
{
	Conf *conf = conf_load(proxy.conf->path, err, errlen);
	if (!conf) {
		log_error("reload failed, keeping the running config: %s", err);
		return false;
	}
	if (!proxy_load_tls(conf, err, errlen)) {
		log_error("reload failed, keeping the running config and certificates: %s", err);
		conf_free(conf);
		return false;
	}
	Conf *old = proxy.conf;
	if (strcmp(old->listen_addr ? old->listen_addr : "", conf->listen_addr ? conf->listen_addr : "") != 0 ||
	    old->listen_port != conf->listen_port)
		log_warning("reload: listen_addr/listen_port changes take effect at restart");
	/* [routes] that changed in the file are a flip by the operator: applied
	 * here, and published (below, once the new config runs) */
	bool routes_changed = !router_equal_conf(&old->routes, &conf->routes);
	if (routes_changed && router_load(&proxy.router, &conf->routes))
		log_info("reload: routes replaced by the file's (default %s)", proxy.router.default_schema);
	else if (routes_changed)
		log_warning("reload: the file's routes could not be loaded; the running routes are kept");
	if (strcmp(old->metrics_listen ? old->metrics_listen : "", conf->metrics_listen ? conf->metrics_listen : "") != 0)
		log_warning("reload: metrics_listen changes take effect at restart");
	if (strcmp(old->logfile ? old->logfile : "", conf->logfile ? conf->logfile : "") != 0 &&
	    !log_open(conf->logfile))
		log_warning("reload: cannot open logfile %s, the log goes where it went", conf->logfile);
	log_configure(conf);
	auth_verifiers_free(proxy.auth_verifiers);
	proxy.auth_verifiers = auth_verifiers_new(conf);
	proxy.conf = conf;
	if (old->client_idle_timeout_ms == 0 && conf->client_idle_timeout_ms > 0) {
		/* activity was not timed while the timeout was off: count from now */
		uint64_t now = proxy_now_ms();
		Client *c;
		TAILQ_FOREACH(c, &proxy.clients, link)
			c->active_ms = now;
	}
	authq_reset(); /* auth_user, auth_query or the entries may have changed */
	routestore_reconfigure();
	if (routes_changed)
		routestore_publish("reload: the file's [routes] changed");
	conf_free(old);
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link) {
		pool_refresh_conf(p);
		pool_dispatch_soon(p);
	}
	log_info("config reloaded from %s", conf->path);
	return true;
}

void proxy_begin_shutdown(void)
{
	if (proxy.shutting_down)
		return;
	proxy.shutting_down = true;
	proxy_notify("STOPPING=1");
	proxy.shutdown_deadline_ms = proxy_now_ms() + (uint64_t)proxy.conf->shutdown_timeout_ms;
	/* close the listening sockets, so that new connections are refused at
	 * once rather than queued in the backlog */
	for (int i = 0; i < proxy.n_listeners; i++)
		evconnlistener_free(proxy.listeners[i]);
	proxy.n_listeners = 0;
	if (proxy.unix_path)
		unlink(proxy.unix_path);
	log_info("shutdown: not accepting; waiting up to %d ms for %d clients", proxy.conf->shutdown_timeout_ms,
		 proxy.n_clients);
}

void proxy_update_clients(bool pump)
{
	Client *c, *next;
	for (c = TAILQ_FIRST(&proxy.clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (pump && (c->state == CL_ACTIVE || c->state == CL_IDLE))
			client_pump(c);
		else
			client_update_read(c);
	}
	if (!pump)
		return;
	Pool *p; /* clients that waited for a server while held get one now */
	TAILQ_FOREACH(p, &proxy.pools, link)
		if (!TAILQ_EMPTY(&p->waiting))
			pool_dispatch_soon(p);
}

/* The pause flag of every pool follows proxy.paused_dbs. */
static void proxy_update_pools(void)
{
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
		p->paused = params_get(&proxy.paused_dbs, p->database) != NULL;
}

void proxy_pause(const char *database)
{
	if (database) {
		params_set(&proxy.paused_dbs, database, "1");
		proxy_update_pools();
	} else {
		proxy.paused = true;
	}
	proxy_update_clients(false);
	log_info("paused%s%s: new transactions wait", database ? " " : "", database ? database : "");
}

void proxy_resume(const char *database)
{
	if (database) {
		params_remove(&proxy.paused_dbs, database);
		proxy_update_pools();
	} else {
		proxy.paused = false;
	}
	log_info("resumed%s%s", database ? " " : "", database ? database : "");
	proxy_update_clients(true);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	char err[512];
	switch (sig) {
	case SIGHUP: {
		/* RELOADING=1 carries the monotonic clock, as systemd 253's
		 * Type=notify-reload asks; older systemd ignores it */
		char state[64];
		snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)proxy_now_us());
		proxy_notify(state);
		/* the log file first, whatever the config says: logrotate renamed it */
		if (!log_open(proxy.conf->logfile))
			log_warning("SIGHUP: cannot reopen logfile %s: %s", proxy.conf->logfile, strerror(errno));
		log_info("SIGHUP: log reopened, reloading");
		if (!proxy_reload(err, sizeof(err)))
			log_warning("SIGHUP: reload failed, the running config stays"); /* proxy_reload logged why */
		proxy_notify("READY=1\nSTATUS=accepting clients");
		break;
	}
	case SIGTERM:
		log_info("SIGTERM: shutting down");
		proxy_begin_shutdown();
		break;
	case SIGINT:
		log_info("SIGINT: exiting now");
		proxy_notify("STOPPING=1");
		event_base_loopexit(proxy.base, NULL);
		break;
	default:
		break;
	}
}

static void proxy_cleanup(void)
{
	migrator_stop(); /* a running job stops at its next boundary */
	routestore_stop(); /* deletes this instance's row while its clients still count nothing */
	authq_reset(); /* its waiting clients are closed, then freed below */
	Client *c;
	while ((c = TAILQ_FIRST(&proxy.clients))) {
		TAILQ_REMOVE(&proxy.clients, c, link);
		client_free(c);
	}
	while ((c = TAILQ_FIRST(&proxy.graveyard))) {
		TAILQ_REMOVE(&proxy.graveyard, c, link);
		client_free(c);
	}
	Pool *p;
	while ((p = TAILQ_FIRST(&proxy.pools))) {
		Server *s;
		while ((s = TAILQ_FIRST(&p->servers))) {
			TAILQ_REMOVE(&p->servers, s, link);
			server_free(s);
		}
		TAILQ_REMOVE(&proxy.pools, p, link);
		pool_free(p);
	}
	Server *s;
	while ((s = TAILQ_FIRST(&proxy.server_graveyard))) {
		TAILQ_REMOVE(&proxy.server_graveyard, s, link);
		server_free(s);
	}
	for (int i = 0; i < proxy.n_listeners; i++)
		evconnlistener_free(proxy.listeners[i]);
	admin_close();
	metrics_stop();
	if (proxy.unix_path) {
		unlink(proxy.unix_path);
		free(proxy.unix_path);
	}
	if (proxy.conf->pidfile && *proxy.conf->pidfile)
		unlink(proxy.conf->pidfile);
	event_free(proxy.janitor);
	if (proxy.accept_resume)
		event_free(proxy.accept_resume);
	event_free(proxy.reaper);
	event_free(proxy.sig_hup);
	event_free(proxy.sig_term);
	event_free(proxy.sig_int);
	router_free(&proxy.router);
	router_hash_free(&proxy.canary_hash);
	routestats_free(&proxy.rstats);
	tls_server_free(proxy.tls);
	proxy.tls = NULL;
	auth_verifiers_free(proxy.auth_verifiers);
	proxy.auth_verifiers = NULL;
	login_cancel_free_all();
	if (proxy.dns)
		evdns_base_free(proxy.dns, 0);
	sock_module_free();
	event_base_free(proxy.base);
	conf_free(proxy.conf);
	log_close();
}

/* The per-process secrets: the salt key of made-up SCRAM verifiers and the
 * canary hash's key, from RAND_bytes. False with ERR when either fails. */
static bool proxy_secrets_init(char *err, size_t errlen)
{
	uint8_t hash_key[ROUTER_HASH_KEY_LEN];
	if (RAND_bytes(proxy.auth_mock_key, sizeof(proxy.auth_mock_key)) != 1 ||
	    RAND_bytes(hash_key, sizeof(hash_key)) != 1) {
		snprintf(err, errlen, "no random bytes");
		return false;
	}
	bool keyed = router_hash_init(&proxy.canary_hash, hash_key);
	OPENSSL_cleanse(hash_key, sizeof(hash_key));
	if (!keyed)
		snprintf(err, errlen, "OpenSSL has no SipHash (EVP_MAC \"SIPHASH\") for the canary share");
	return keyed;
}

/* The event loop, with epoll's changelist: a read event turned off and on
 * again within one loop turn (a client that waits for a server and gets
 * one in the same turn, the reading predicate at each state change) costs
 * no epoll_ctl at all. Its one caveat, fds cloned with dup(), does not
 * apply. NULL when libevent cannot make one. */
static struct event_base *proxy_base_new(void)
{
	struct event_config *cfg = event_config_new();
	if (cfg)
		event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	struct event_base *base = cfg ? event_base_new_with_config(cfg) : NULL;
	if (cfg)
		event_config_free(cfg);
	return base ? base : event_base_new();
}

int proxy_serve(const char *conf_path)
{
	char err[1024];
	memset(&proxy, 0, sizeof(proxy));
	TAILQ_INIT(&proxy.clients);
	TAILQ_INIT(&proxy.graveyard);
	TAILQ_INIT(&proxy.server_graveyard);
	TAILQ_INIT(&proxy.pools);
	TAILQ_INIT(&proxy.lookups);
	proxy.conf = conf_load(conf_path, err, sizeof(err));
	if (!proxy.conf) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	const Conf *conf = proxy.conf;
	if (!log_open(conf->logfile)) {
		fprintf(stderr, "pgflip: cannot open logfile %s: %s\n", conf->logfile, strerror(errno));
		conf_free(proxy.conf);
		return 2;
	}
	log_configure(conf);
	if (!proxy_load_tls(conf, err, sizeof(err)) || !proxy_secrets_init(err, sizeof(err))) {
		fprintf(stderr, "pgflip: %s\n", err);
		log_error("%s", err);
		conf_free(proxy.conf);
		return 2;
	}
	routestats_init(&proxy.rstats);
	proxy.on_canary_failed = proxy_canary_rollback;
	proxy.auth_verifiers = auth_verifiers_new(conf);
	signal(SIGPIPE, SIG_IGN);
	proxy.start_time = time(NULL);
	sock_mem_init();
	proxy.base = proxy_base_new();
	if (!proxy.base) {
		fprintf(stderr, "pgflip: cannot create the event loop\n");
		return 1;
	}
	if (!sock_module_init(proxy.base)) {
		fprintf(stderr, "pgflip: cannot create the flush event\n");
		return 1;
	}
	router_init(&proxy.router);
	if (!router_load(&proxy.router, &conf->routes)) {
		fprintf(stderr, "pgflip: cannot load the routes\n");
		return 1;
	}

	proxy.reaper = event_new(proxy.base, -1, 0, reap_cb, NULL);
	proxy.accept_resume = evtimer_new(proxy.base, accept_resume_cb, NULL);
	proxy.dns = evdns_base_new(proxy.base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!proxy.dns && (proxy.dns = evdns_base_new(proxy.base, EVDNS_BASE_DISABLE_WHEN_INACTIVE)))
		evdns_base_load_hosts(proxy.dns, NULL); /* no resolv.conf: the hosts file still answers */
	if (!proxy.dns)
		log_warning("no DNS resolver: host names of [databases] are resolved by libpq (blocking)");
	proxy.janitor = event_new(proxy.base, -1, EV_PERSIST, janitor_cb, NULL);
	struct timeval tick = {0, PROXY_JANITOR_MS * 1000};
	event_add(proxy.janitor, &tick);
	proxy.sig_hup = evsignal_new(proxy.base, SIGHUP, signal_cb, NULL);
	proxy.sig_term = evsignal_new(proxy.base, SIGTERM, signal_cb, NULL);
	proxy.sig_int = evsignal_new(proxy.base, SIGINT, signal_cb, NULL);
	event_add(proxy.sig_hup, NULL);
	event_add(proxy.sig_term, NULL);
	event_add(proxy.sig_int, NULL);

	bool ok = listen_tcp(conf) && listen_unix(conf);
	if (ok && conf->admin_socket && *conf->admin_socket && !admin_listen(conf->admin_socket, err, sizeof(err))) {
		fprintf(stderr, "pgflip: %s\n", err);
		log_error("%s", err);
		ok = false;
	}
	if (ok && !metrics_start(err, sizeof(err))) {
		fprintf(stderr, "pgflip: %s\n", err);
		log_error("%s", err);
		ok = false;
	}
	if (ok && !migrator_start(err, sizeof(err))) {
		fprintf(stderr, "pgflip: %s\n", err);
		log_error("%s", err);
		ok = false;
	}
	if (ok && !routestore_start()) {
		fprintf(stderr, "pgflip: cannot set up the route store\n");
		log_error("cannot set up the route store");
		ok = false;
	}
	if (!ok) {
		proxy_cleanup();
		return 1;
	}
	proxy.started = true;
	proxy_accept_update(); /* held until the stored routes are read; READY=1 once accepting */
	check_fd_limit(conf);
	write_pidfile(conf->pidfile);
	log_info("pgflip %s started, pid %d, default route %s", PGFLIP_VERSION, (int)getpid(),
		 proxy.router.default_schema);
	event_base_dispatch(proxy.base);
	log_info("pgflip stopped");
	proxy_cleanup();
	return 0;
}

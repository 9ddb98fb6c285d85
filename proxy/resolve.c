/*
 * proxy/resolve.c: host names of [databases] entries, resolved without
 * blocking the event loop.
 *
 * libpq resolves a host name with getaddrinfo() inside PQconnectPoll, which
 * blocks the whole proxy for as long as DNS takes. So when an entry names
 * one host by name, pgflip resolves it with libevent's evdns first and
 * gives libpq the address as hostaddr (host stays, for TLS verification and
 * the password file). The answer is kept per pool and forgotten when a
 * login fails, so a moved database is found again at the next login.
 * Entries with several hosts (host=a,b) are left to libpq.
 */
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <netinet/in.h>

#include "proxy/proxy.h"
#include "proxy/resolve.h"
#include "proxy/pool.h"

static const char *entry_value(const ConfDatabase *db, const char *key)
{
	for (size_t i = 0; db->keywords[i]; i++)
		if (strcmp(db->keywords[i], key) == 0)
			return db->values[i];
	return NULL;
}

const char *resolve_host(const ConfDatabase *db)
{
	const char *host = entry_value(db, "host");
	if (!host || !*host || entry_value(db, "hostaddr") || host[0] == '/' || host[0] == '@' ||
	    strchr(host, ',') || strchr(host, ':'))
		return NULL; /* none, a socket directory, several hosts, an IPv6 literal */
	struct in_addr a4;
	if (evutil_inet_pton(AF_INET, host, &a4) == 1)
		return NULL;
	return host;
}

void resolve_answer(int result, struct evutil_addrinfo *res, char *out, size_t n)
{
	out[0] = '\0';
	if (result == 0 && res) {
		const void *sa = res->ai_family == AF_INET6
					 ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
					 : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
		if (!evutil_inet_ntop(res->ai_family, sa, out, n))
			out[0] = '\0';
	}
	if (res)
		evutil_freeaddrinfo(res);
}

static void resolve_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	if (result == EVUTIL_EAI_CANCEL)
		return; /* the pool is going away */
	Pool *p = arg;
	p->dns_req = NULL;
	char addr[INET6_ADDRSTRLEN] = "";
	resolve_answer(result, res, addr, sizeof(addr));
	if (!addr[0]) {
		char msg[300];
		snprintf(msg, sizeof(msg), "could not resolve host name \"%s\": %s", p->dns_host,
			 result ? evutil_gai_strerror(result) : "no address");
		log_warning("pool %s/%s: %s", p->database, p->user, msg);
		pool_login_failed(p, msg);
		pool_dispatch_soon(p);
		return;
	}
	log_debug("pool %s/%s: %s is %s", p->database, p->user, p->dns_host, addr);
	free(p->dns_addr);
	p->dns_addr = strdup(addr);
	if (!p->dns_addr)
		pool_login_failed(p, "out of memory keeping a resolved address");
	pool_dispatch_soon(p);
}

bool resolve_start(Pool *p, const char *host)
{
	if (p->dns_req)
		return true;
	if (!proxy.dns)
		return false;
	free(p->dns_host);
	p->dns_host = strdup(host);
	if (!p->dns_host)
		return false;
	struct evutil_addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	proxy.n_dns_queries++;
	struct evdns_getaddrinfo_request *req = evdns_getaddrinfo(proxy.dns, host, NULL, &hints, resolve_cb, p);
	/* an answer known at once (the hosts file) came through resolve_cb already */
	if (req)
		p->dns_req = req;
	return true;
}

void resolve_forget(Pool *p)
{
	free(p->dns_addr);
	p->dns_addr = NULL;
}

void resolve_cancel(Pool *p)
{
	if (p->dns_req)
		evdns_getaddrinfo_cancel(p->dns_req);
	p->dns_req = NULL;
	free(p->dns_addr);
	free(p->dns_host);
	p->dns_addr = p->dns_host = NULL;
}

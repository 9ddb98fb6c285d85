/*
 * proxy/resolve.h: [databases] host names resolved without blocking (resolve.c).
 */
#ifndef PGFLIP_RESOLVE_H
#define PGFLIP_RESOLVE_H

#include "proxy/proxy.h"

struct evdns_getaddrinfo_request;
struct evdns_base;
/* resolve_host: the host name of DB that pgflip resolves itself before a
 * login (one host given by name, no hostaddr), or NULL (libpq's business). */
const char *resolve_host(const ConfDatabase *db);
/* resolve_start: looks HOST up for P without blocking; the answer sets
 * P->dns_addr (or fails P's waiting logins) and schedules a dispatch. False
 * when there is no resolver. */
bool resolve_start(Pool *p, const char *host);
/* resolve_answer: the first address of an evdns_getaddrinfo answer (RESULT,
 * RES) as text into OUT (N bytes; "" when there is none), and RES freed. */
struct evutil_addrinfo;
void resolve_answer(int result, struct evutil_addrinfo *res, char *out, size_t n);
/* resolve_forget: the address is stale (a login failed): look it up again. */
void resolve_forget(Pool *p);
/* resolve_cancel: P goes away. */
void resolve_cancel(Pool *p);

#endif

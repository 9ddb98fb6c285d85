/*
 * proxy/metrics.h: the Prometheus endpoint (metrics.c): metrics_listen =
 * HOST:PORT serves GET /metrics in the Prometheus text exposition format
 * (version 0.0.4), with libevent's evhttp.
 */
#ifndef PGFLIP_METRICS_H
#define PGFLIP_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

#include "proxy/params.h"

/* metrics_start: listens on the running config's metrics_listen, on
 * proxy.base (proxy.metrics_http); nothing when it is not set. False with
 * ERR (ERRLEN bytes) when it cannot listen: pgflip then does not start. */
bool metrics_start(char *err, size_t errlen) PROXY_MUSTCHECK;
/* metrics_stop: closes the endpoint; fine when it never started. */
void metrics_stop(void);
/*
 * metrics_write: every metric, as GET /metrics answers it, appended to OUT:
 * a # HELP and # TYPE line per family, then its samples. False when memory
 * ran out (OUT then holds part of it).
 */
bool metrics_write(struct evbuffer *out) PROXY_MUSTCHECK;

#endif

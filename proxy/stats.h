/*
 * proxy/stats.h: the traffic counters of one pool (Pool.stats), the ones
 * PgBouncer's SHOW STATS shows, for every reader: the console and the
 * admin socket (`show stats`, proxy/show.c), and the metrics endpoint.
 *
 * Counters only grow, from the pool's creation on; they are written on the
 * event loop only (no lock: a reader on another thread must copy them on
 * the loop). Who adds what:
 *   xact_count, xact_time_us  client_tx_end (client.c), at every end of a
 *                             client's transaction (its latency from the
 *                             first message to the ReadyForQuery 'I' when
 *                             it ended with one);
 *   query_count, query_time_us  server_ready (server.c), at every
 *                             ReadyForQuery that answers a client request
 *                             (Query, Sync, FunctionCall): from when the
 *                             request went out (or the previous answer)
 *                             to its ReadyForQuery;
 *   bytes_received, bytes_sent  sock.c, for every read from and write to a
 *                             client of the pool once it logged in
 *                             (Sock.count_in / count_out);
 *   wait_time_us              client_set_state, when a client stops
 *                             waiting for a server (CL_WAITING,
 *                             CL_WAIT_LOGIN).
 *
 * Averages: every stats_period seconds the janitor keeps the difference
 * over the last period (Pool.stats_delta, over Pool.stats_delta_us), which
 * stats_averages turns into PgBouncer's per-second rates and per-item
 * times.
 */
#ifndef PGFLIP_STATS_H
#define PGFLIP_STATS_H

#include <stdint.h>

typedef struct PoolStats {
	uint64_t xact_count;
	uint64_t query_count;
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t xact_time_us;
	uint64_t query_time_us;
	uint64_t wait_time_us;
} PoolStats;

/* stats_add: *TO += FROM, field by field (a database's sum of its pools). */
static inline void stats_add(PoolStats *to, const PoolStats *from)
{
	to->xact_count += from->xact_count;
	to->query_count += from->query_count;
	to->bytes_received += from->bytes_received;
	to->bytes_sent += from->bytes_sent;
	to->xact_time_us += from->xact_time_us;
	to->query_time_us += from->query_time_us;
	to->wait_time_us += from->wait_time_us;
}

/* stats_diff: NOW - THEN, field by field (counters only grow). */
static inline PoolStats stats_diff(const PoolStats *now, const PoolStats *then)
{
	PoolStats d = {
	        now->xact_count - then->xact_count,         now->query_count - then->query_count,
	        now->bytes_received - then->bytes_received, now->bytes_sent - then->bytes_sent,
	        now->xact_time_us - then->xact_time_us,     now->query_time_us - then->query_time_us,
	        now->wait_time_us - then->wait_time_us,
	};
	return d;
}

/*
 * stats_averages: DELTA, the counters' growth over PERIOD_US microseconds,
 * as PgBouncer 1.18 averages them (SHOW STATS_AVERAGES): xact_count,
 * query_count, bytes_received, bytes_sent and wait_time_us per second;
 * xact_time_us per transaction and query_time_us per query (0 when there
 * was none). A PERIOD_US of 0 (no period ended yet) gives all zeros.
 */
static inline PoolStats stats_averages(const PoolStats *delta, uint64_t period_us)
{
	PoolStats a = {0};
	if (period_us == 0)
		return a;
	a.xact_count = delta->xact_count * 1000000 / period_us;
	a.query_count = delta->query_count * 1000000 / period_us;
	a.bytes_received = delta->bytes_received * 1000000 / period_us;
	a.bytes_sent = delta->bytes_sent * 1000000 / period_us;
	a.wait_time_us = delta->wait_time_us * 1000000 / period_us;
	a.xact_time_us = delta->xact_count ? delta->xact_time_us / delta->xact_count : 0;
	a.query_time_us = delta->query_count ? delta->query_time_us / delta->query_count : 0;
	return a;
}

#endif

/*
 * pubsub.h - the subscriber side: a RESP2/RESP3 pub/sub server on the daemon's
 * loop.
 *
 * Stock Redis clients (redis-cli, hiredis, redis-py, node-redis, ioredis, in
 * RESP2 or, after HELLO 3, RESP3) connect and SUBSCRIBE to trade.<SYMBOL> /
 * quote.<SYMBOL> (and bar.<interval>.<SYMBOL>: pubsub_bar()), or PSUBSCRIBE
 * with Redis glob patterns; INFO and PUBSUB
 * CHANNELS/NUMSUB/NUMPAT answer as Redis does. Every tick the market makes is handed to
 * pubsub_tick(): it is encoded once (JSON or CSV payload, per pubsub.payload) and its frames are
 * appended to the fan-out stream (fanout.h), pooled chunks of the heap that every subscriber's
 * queue references; consecutive frames for one subscriber share one queue entry. pubsub_flush()
 * (once per batch) writes each subscriber's queue out, one contiguous buffer per stream span. A
 * subscriber over the hard output limit, or over the soft limit for longer than soft_seconds, is
 * cut off and counted; the others never wait for it. PUBLISH <channel> <csv tick line> is an ingest
 * path: the line goes to the on_publish callback (the daemon parses, validates, journals and fans
 * it out like any other tick).
 *
 * Never blocks; never allocates from the system allocator per tick.
 */
#ifndef TICKD_SRC_PUBSUB_H
#define TICKD_SRC_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "src/config.h"
#include "feed/bars.h"
#include "feed/market.h"
#include "src/histogram.h"

typedef struct pubsub pubsub_t;

typedef struct pubsub_stats {
    uint64_t clients;             /* connected now */
    uint64_t connections_total;   /* accepted over the daemon's life */
    uint64_t rejected_total;      /* refused: max_clients reached */
    uint64_t messages_sent_total; /* messages queued to subscribers (one per subscriber) */
    uint64_t output_buffer_bytes; /* bytes queued now, over all clients */
    uint64_t slow_consumer_disconnects_total;
    uint64_t protocol_errors_total; /* clients closed for bad RESP or limits */
    uint64_t publish_total;         /* PUBLISH commands accepted */
    uint64_t subscriptions;         /* channels + patterns subscribed now */
    uint64_t encode_errors_total;   /* ticks not sent: no memory, or not expressible as CSV */
    uint64_t commands_total;        /* commands run (INFO's total_commands_processed) */
    uint64_t publish_journal_errors_total; /* PUBLISHes pubsub answered with a journal error:
                                              held replies not made durable, waits for room
                                              that timed out */
    uint64_t publish_symbol_limit_total;   /* PUBLISH refused: its symbol would pass the limit */
    uint64_t auth_failures_total;          /* AUTH and HELLO AUTH refused (pubsub_acl.c) */
    uint64_t conflations_total; /* times a subscriber past the soft limit entered conflation
                                   (pubsub.slow_consumer: conflate) */
    uint64_t conflated_clients; /* subscribers in conflation now */
    uint64_t conflate_flush_ns; /* loop thread CPU time spent in conflated channels' interval
                                   flushes, writes to the sockets included */
} pubsub_stats_t;

/* What INFO reports that the daemon knows; pubsub knows the rest. */
typedef struct pubsub_info {
    const char *version;   /* tickd's version */
    int64_t start_time_ns; /* CLOCK_REALTIME when the daemon started */
    uint64_t trades_total; /* trade ticks over the daemon's life */
    uint64_t quotes_total; /* quote ticks over the daemon's life */
} pubsub_info_t;

/* Fills *out (which holds pubsub's own defaults: an empty version, the time
 * pubsub_start() ran, no ticks) when a client asks for INFO. */
typedef void (*pubsub_info_fn)(void *arg, pubsub_info_t *out);

/* PUBLISH ingest: channel and payload (a CSV tick line) as received, and
 * recv_ns, the CLOCK_REALTIME of the read that brought it (one clock read
 * per read, as the feeds take it). Returns 0, or a negative errno with
 * *reason set to a short text for the client's -ERR reply: -EBADMSG when the
 * payload is not a CSV tick line (the reply then says what a tick line looks
 * like and quotes the start of the payload, safely escaped, before the
 * reason), -ENOSPC for a tick whose new symbol the day's limit refuses (counted in
 * publish_symbol_limit_total), any other for a tick that is refused (the reply is the reason).
 * *durable_at (0 on entry) may be set to the tick's position in the journal (from 1): the reply is
 * then held until pubsub_durable() decides that position, and is ":<n>" only if the tick was
 * synced, otherwise
 * "-ERR journal: <why>; the tick was not made durable" (journal.fsync: always). A reply held
 * for 10 s becomes that error too. A client with 16384 replies held is not read until the journal
 * decides some: publishers are slowed to the disk's pace. -EAGAIN, when nothing was done with
 * the tick, means the journal cannot take it now: the client is not read and the PUBLISH runs
 * again at pubsub_journal_ready(); after 10 s of waiting its reply is the error with *reason. */
typedef int (*pubsub_publish_fn)(void *arg, const char *channel, size_t chlen, const char *payload,
                                 size_t len, int64_t recv_ns, const char **reason,
                                 uint64_t *durable_at);

/* Binds cfg->pubsub.listen on loop and starts accepting. On failure returns
 * a negative errno with a message in err. */
int pubsub_start(uv_loop_t *loop, heap_t *heap, market_t *market, const config_t *cfg,
                 pubsub_publish_fn on_publish, void *arg, pubsub_t **out, char *err, size_t errlen);

/* Where INFO takes the daemon's figures from (NULL: pubsub's defaults). */
void pubsub_set_info_source(pubsub_t *ps, pubsub_info_fn fn, void *arg);

/* Points snapshots and PUBLISH at a new market (end of day). The old market
 * must still be alive: what pub/sub kept on its symbols (symbol_slot_t) is
 * freed here, before the caller destroys it. */
void pubsub_set_market(pubsub_t *ps, market_t *market);

/* The journal decided every position up to upto: synced when err is 0,
 * else not made durable (err, a negative errno, says why). Replies held
 * for those positions go out, acknowledgements or journal errors, at the
 * next pubsub_flush(). Every change of journal, policy or file must decide
 * what it leaves behind, so that no reply waits for a journal that is gone.
 * ps may be NULL. */
void pubsub_durable(pubsub_t *ps, uint64_t upto, int err);

/* The journal has room again (a batch came back, a journal was opened or
 * closed): the PUBLISHes that waited for it run now, and what followed them
 * on their connections. Call it from the loop, never from inside pub/sub's
 * own callbacks (on_publish). ps may be NULL. */
void pubsub_journal_ready(pubsub_t *ps);

/* Fans one tick out to the matching subscribers (queues only). */
void pubsub_tick(pubsub_t *ps, tick_t *tick);

/* The same, with the tick already encoded: text[0..n) in the format of
 * pubsub.payload (another consumer of the tick, the NATS sink, encoded it),
 * or text NULL for pub/sub to encode it. */
void pubsub_tick_text(pubsub_t *ps, tick_t *tick, const char *text, size_t n);

/* Fans one closed bar out on its channel, bar.<interval>.<SYMBOL>, to the
 * channel's and matching patterns' subscribers (queues only), encoded in
 * the format of pubsub.payload (tick_format.h). */
void pubsub_bar(pubsub_t *ps, const bar_t *bar);

/* Where GET bar.<interval>.<SYMBOL> and the snapshot of a bar channel read
 * the last bars from (NULL: none; bar keys are then nil). The daemon points
 * it at its builder, and again whenever it makes a new one. */
void pubsub_set_bars(pubsub_t *ps, const bars_t *bars);

/* Writes queued output to every subscriber that has some; observes the tick
 * latency (ts_recv until written to the socket) for what was written. */
void pubsub_flush(pubsub_t *ps);

/* New limits, password, users, payload format and listen address
 * (rebinding if it changed) without dropping subscribers, but for those
 * whose rights the new users narrowed (pubsub_acl.c): they are closed, and
 * logged. 0 or -errno with a message. */
int pubsub_reconfigure(pubsub_t *ps, const config_t *cfg, char *err, size_t errlen);

/* Stops accepting, gives every client up to drain_ns to take its queued
 * output, closes them, then calls done(arg). ps may be NULL (pubsub_start()
 * failed): done is called at once. */
void pubsub_stop(pubsub_t *ps, uint64_t drain_ns, void (*done)(void *arg), void *arg);

/* Frees what is left after pubsub_stop() finished (done was called), with
 * what it kept on the market's symbols: call it before market_destroy(). */
void pubsub_free(pubsub_t *ps);

void pubsub_get_stats(const pubsub_t *ps, pubsub_stats_t *out);

/* The port the listener is bound to (useful when pubsub.listen asked for
 * port 0), or a negative errno (-EBADF once stopped). */
int pubsub_port(const pubsub_t *ps);

/* tickd_tick_latency_seconds. */
const histogram_t *pubsub_latency(const pubsub_t *ps);

#endif

/*
 * nats_feed.h - the nats feed type: tickd's ticks from NATS into a market.
 *
 * Subscribes to feeds[].subject, on core NATS or, with feeds[].stream, as a
 * JetStream durable pull consumer (feeds[].durable, deliver all, new or
 * by_start_time), on a thread of its own (nats_conn.h). Messages reach the
 * loop through a bounded queue: at most NATS_FEED_WINDOW of them are between
 * NATS and their acknowledgement at any time, and the thread fetches no
 * more until the loop gives some back, so a fast stream cannot flood the
 * heap. On the loop each payload is decoded (nats_decode.h) and applied to
 * the market; bad ones are counted as decode errors and skipped, refused
 * ones as rejected. Then the owner's batch_done hook runs, as for any feed.
 *
 * Acknowledgement (JetStream): a message is acknowledged only once its tick
 * is in the market and, when the owner journals, the journal batch holding
 * it is written: the owner's durable_mark hook says which journal position
 * the batch's ticks reach, and nats_feed_durable() says when the journal
 * got there. A JetStream message that is never acknowledged (tickd stopped
 * first) is delivered again to the durable consumer: a restart loses
 * nothing, and applies such messages ahead of those after them in the
 * stream (the order holds across a restart). A redelivery of a message
 * whose tick was applied (its acknowledgement was lost with a server) is
 * skipped: applied exactly once. A restart holds back what it fetches until
 * the consumer's pending messages came again, at most feeds[].hold_timeout
 * (nats_feed.c's essay).
 */
#ifndef TICKD_SRC_NATS_FEED_H
#define TICKD_SRC_NATS_FEED_H

#include <stdint.h>

#include <uv.h>

#include "feed/ingest.h"
#include "feed/market.h"
#include "src/config.h"

#define NATS_FEED_WINDOW 4096

typedef struct nats_feed nats_feed_t;

/* What a nats feed calls on its owner (feeds.c), on the loop. */
typedef struct nats_feed_hooks {
    void (*batch_done)(void *arg);
    void (*input_error)(void *arg, uint64_t where, const char *reason);
    /* the journal position the ticks made so far reach; 0: nothing to wait for */
    uint64_t (*durable_mark)(void *arg);
    void *arg;
} nats_feed_hooks_t;

/* Starts the feed fc with the connection settings nc; ticks go to market.
 * 0, or -errno with the reason in err. */
int nats_feed_start(uv_loop_t *loop, market_t *market, const config_feed_t *fc,
                    const config_nats_t *nc, const nats_feed_hooks_t *hooks, nats_feed_t **out,
                    char *err, size_t errlen);

/* Stops the feed: messages not acknowledged yet stay unacknowledged. */
void nats_feed_stop(nats_feed_t *f);

/* The journal reached upto: messages waiting for it are acknowledged. */
void nats_feed_durable(nats_feed_t *f, uint64_t upto);

void nats_feed_set_market(nats_feed_t *f, market_t *m);

/* Its counters: messages, decode errors, rejected; and JetStream
 * redeliveries of ticks applied already (skipped). */
void nats_feed_stats(const nats_feed_t *f, ingest_stats_t *out, uint64_t *duplicates);

/* Times the hold-back at a bind gave up on pending messages that did not
 * come within hold_timeout (counted when the loop takes what it held). */
uint64_t nats_feed_hold_timeouts(const nats_feed_t *f);

/* CLOCK_REALTIME since which the feed holds back what it fetches, waiting
 * for the consumer's pending messages; 0 when it does not. */
int64_t nats_feed_holding_since(const nats_feed_t *f);

/* Subscribed (the subscription or consumer exists) and connected now. */
int nats_feed_up(const nats_feed_t *f);
int nats_feed_connected(const nats_feed_t *f);

/* CLOCK_REALTIME of the last batch that applied a message; 0 none. */
int64_t nats_feed_last_ns(const nats_feed_t *f);

/* Why the feed is not up (the last connection or subscription error), or
 * NULL; lives as long as the feed. */
const char *nats_feed_error(const nats_feed_t *f);

#endif

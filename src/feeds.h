/*
 * feeds.h - the ways in, on a libuv loop: file replay, TCP streams and
 * MoldUDP64 datagrams, each feeding an ingest (feed/ingest.h) that updates a
 * market; and tickd's own ticks from NATS (nats_feed.h).
 *
 * A feed knows nothing of the daemon: what it needs from its owner comes in
 * feed_hooks_t, and what it has seen goes out through feed_get_stats() and
 * feed_get_health().
 */
#ifndef TICKD_SRC_FEEDS_H
#define TICKD_SRC_FEEDS_H

#include <stdint.h>

#include <uv.h>

#include "src/config.h"
#include "feed/market.h"
#include "src/health.h"

typedef struct feed feed_t;

/* What a feed calls back, always on its loop, never from inside a decode. */
typedef struct feed_hooks {
    /* The end of a batch of input (a decoded slice, a read, a datagram, the
     * withdrawal of a looping file's orders): the market's ticks of the batch
     * are made; the owner flushes them on (subscribers, journal). */
    void (*batch_done)(void *arg);
    /* An input of feed `feed` at `where` (line, message or offset) could not
     * be decoded or was refused: the counters keep the count, the owner
     * decides what to log. reason is a constant or lives until return. */
    void (*input_error)(void *arg, const char *feed, uint64_t where, const char *reason);
    /* nats feeds: the journal position the ticks made so far reach (0 when
     * the owner does not journal); a JetStream message is acknowledged once
     * feed_durable() reaches its position. */
    uint64_t (*durable_mark)(void *arg);
    /* A looping file feed starts its file again, within the day: exchange
     * times go back to the file's start (after the withdrawal's batch).
     * NULL: nothing to do. */
    void (*rewound)(void *arg);
    void *arg; /* passed to all */
} feed_hooks_t;

/* What one configured feed has seen over its life. */
typedef struct feed_stats {
    uint64_t messages;        /* inputs decoded and applied */
    uint64_t decode_errors;   /* inputs that could not be decoded */
    uint64_t sequence_gaps;   /* MoldUDP64 messages missed */
    uint64_t sequence_jumps;  /* MoldUDP64 packets ignored: an implausible jump (feed/mold.h) */
    uint64_t duplicates;      /* MoldUDP64 messages skipped as already delivered */
    uint64_t session_changes; /* MoldUDP64 session name changes */
    uint64_t rejected;        /* decoded but refused by the market */
    uint64_t hold_timeouts;   /* nats (JetStream): holds given up on hold_timeout */
    uint64_t connections;     /* tcp: connected sources now */
    int up;                   /* file open / listener bound */
} feed_stats_t;

/* Starts the feed described by cfg on loop (opens the file, binds the
 * socket, starts a nats feed's thread with the connection settings nats);
 * its ingests apply to market. hooks is copied. On failure returns -errno
 * with a message in err, and nothing is left running. */
int feed_start(uv_loop_t *loop, market_t *market, const config_feed_t *cfg,
               const config_nats_t *nats, const feed_hooks_t *hooks, feed_t **out, char *err,
               size_t errlen);

/* The owner's journal has written everything up to position upto (see
 * durable_mark): a nats feed acknowledges the messages waiting for it. */
void feed_durable(feed_t *f, uint64_t upto);

/* Closes every handle of the feed; the feed frees itself once they are
 * closed (run the loop). Its counters are gone with it. */
void feed_stop(feed_t *f);

/* The feed's name and configuration; they live as long as the feed. */
const char *feed_name(const feed_t *f);
const config_feed_t *feed_config(const feed_t *f);

/* Its counters: those of ingests gone (connections closed, passes over a
 * looping file) plus those running now. */
void feed_get_stats(const feed_t *f, feed_stats_t *out);

/* A reload changed only the feed's staleness limit: applied in place, its
 * sources stay connected. */
void feed_set_stale_after(feed_t *f, uint64_t stale_after_ns);

/* The market changed (end of day): ingests feed the new one. */
void feed_set_market(feed_t *f, market_t *m);

/* The feed as /healthz judges it; out->name lives as long as the feed. */
void feed_get_health(const feed_t *f, health_feed_t *out);

/* A bound TCP or UDP feed's local port (0 for a file feed). */
int feed_port(const feed_t *f);

#endif

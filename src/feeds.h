/*
 * feeds.h - the ways in, on the daemon's loop: file replay, TCP streams and
 * MoldUDP64 datagrams, each feeding an ingest (feed/ingest.h) that updates
 * the daemon's market.
 */
#ifndef TICKD_SRC_FEEDS_H
#define TICKD_SRC_FEEDS_H

#include "daemon.h"
#include "health.h"

/* Starts the feed described by cfg (opens the file, binds the socket). On
 * failure returns -errno with a message in err. */
int feed_start(daemon_t *d, const config_feed_t *cfg, feed_t **out, char *err, size_t errlen);

/* Closes every handle of the feed; the feed frees itself once they are
 * closed. Its counters are gone with it. */
void feed_stop(feed_t *f);

const config_feed_t *feed_config(const feed_t *f);

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

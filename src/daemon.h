/*
 * daemon.h - the running daemon: one libuv loop, one heap, and everything
 * wired to them.
 *
 * daemon.c owns start-up, the timers (cycle sweep, watchdog, status, journal
 * fsync, end of day, loop lag), signals (SIGTERM/SIGINT drain and exit,
 * SIGHUP reload) and the tick sink that sends every tick to the journal and
 * to the subscribers; journaling.c owns the journal pipeline, feeds.c the
 * ways in. No module calls into the daemon: it hands them hooks
 * (feed_hooks_t, journaling_hooks_t, pubsub's callbacks) and fills their
 * snapshots (metrics_snapshot_t for /metrics, health_feed_t for /healthz).
 */
#ifndef TICKD_SRC_DAEMON_H
#define TICKD_SRC_DAEMON_H

#include <stdint.h>

#include <uv.h>

#include "alloc/object.h"
#include "src/config.h"
#include "feed/market.h"
#include "src/feeds.h"
#include "src/histogram.h"
#include "src/http_server.h"
#include "src/journaling.h"
#include "src/nats_sink.h"
#include "src/pubsub.h"

typedef struct daemon {
    uv_loop_t *loop;
    config_t cfg;     /* the configuration in force */
    heap_t *heap;     /* the one heap; every object comes from it */
    market_t *market; /* today's symbols, books and orders */
    bars_t *bars;     /* the bar builder (bars.intervals), NULL when there are none */
    pubsub_t *pubsub;
    http_server_t *http;
    journaling_t journal;        /* the journal pipeline, its file (NULL when off) and figures */
    nats_sink_t *nats;           /* NULL unless nats.servers is set and nats.publish true */
    nats_sink_stats_t nats_gone; /* the counters of sinks a reload or stop replaced */
    feed_t *feeds[CONFIG_MAX_FEEDS];
    size_t nfeeds;

    histogram_t loop_lag;           /* tickd_loop_lag_seconds */
    uint64_t ticks_total[2];        /* [0] trades, [1] quotes, over the daemon's life */
    uint64_t sessions_rolled;       /* end-of-day rolls */
    bars_stats_t bars_gone;         /* the counters of bar builders a reload replaced */
    uint64_t reloads_total;         /* SIGHUP reloads applied in full */
    uint64_t reload_failures_total; /* SIGHUP reloads that failed in part or whole */
    int last_reload_ok;             /* the last reload (or the start) applied in full */
    int64_t last_reload_ns;         /* CLOCK_REALTIME of the last reload; 0 none */
    char last_reload_error[CONFIG_ERR_LEN + 64]; /* when not last_reload_ok: what was kept */
    int64_t start_time_ns;                       /* CLOCK_REALTIME when the daemon started */
    int stopping;                                /* SIGTERM/SIGINT received: draining */
} daemon_t;

/* Runs the daemon with the configuration at config_path until SIGTERM or
 * SIGINT; returns the exit status: 0 after a clean stop, else the code of
 * what failed (cli.h's EX_*_CODE), its reason logged. */
int daemon_run(const char *config_path);

#endif

/*
 * metrics.h - the /metrics page: the daemon's state in the Prometheus text
 * exposition format 0.0.4, every family with # HELP and # TYPE.
 *
 * Families (all counters end in _total, sizes in bytes, times in seconds):
 *
 *   tickd_alloc_*        the heap: arenas, pools, blocks and traffic per size
 *                        class, large blocks
 *   tickd_objects*       live and created objects per type
 *   tickd_gc_*           the cycle collector per generation, pause histogram
 *   tickd_feed_*         per configured feed (label feed): counters, up,
 *                        connected, last message time; tickd_ticks_total
 *   tickd_pubsub_*       subscribers, messages, output buffers, cut-offs
 *   tickd_*_seconds      tick latency, loop lag, journal fsync histograms
 *   tickd_journal_*      records and errors
 *   process_*            CPU, memory, descriptors, start time
 *   tickd_build_info     the version, as a label
 */
#ifndef TICKD_SRC_METRICS_H
#define TICKD_SRC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/object.h"
#include "src/feeds.h"
#include "src/histogram.h"
#include "src/http.h"
#include "src/nats_sink.h"
#include "src/pubsub.h"

/* One feed as the page shows it. */
typedef struct metrics_feed {
    const char *name;        /* the label value; lives until metrics_render returns */
    feed_stats_t stats;      /* feed_get_stats() */
    int connected;           /* health_feed_t.connected */
    int64_t last_message_ns; /* health_feed_t.last_message_ns; 0 before the first */
} metrics_feed_t;

/* What the page shows, filled by its owner (the daemon) at scrape time, on
 * the loop. Plain values and pointers the caller keeps alive until
 * metrics_render returns; nothing in it is allocated. */
typedef struct metrics_snapshot {
    heap_t *heap;                /* read through alloc's stats calls; NULL: its
                                  * tickd_alloc/objects/gc families are left out */
    const metrics_feed_t *feeds; /* nfeeds of them; 0: the per-feed families are left out */
    size_t nfeeds;
    uint64_t ticks_total[2];           /* [0] trades, [1] quotes */
    pubsub_stats_t pubsub;             /* zeros without a pub/sub server */
    int has_nats;                      /* 0: the tickd_nats_* families are left out */
    nats_sink_stats_t nats;            /* the NATS sink's figures */
    int has_market;                    /* 0: the tickd_market_* families are left out */
    uint64_t market_symbols;           /* the day's symbols now ... */
    uint64_t market_published_symbols; /* ... of them made by PUBLISH */
    uint64_t market_broken_trades;     /* ITCH B messages the market counted */
    const histogram_t *tick_latency;   /* NULL: the latency buckets, all 0 */
    const histogram_t *loop_lag;       /* NULL: only an empty +Inf bucket */
    const histogram_t *journal_fsync;  /* NULL: only an empty +Inf bucket */
    uint64_t journal_records_total;
    uint64_t journal_written_total;
    uint64_t journal_durable_total;
    uint64_t journal_dropped_total;
    uint64_t journal_errors_total;
    uint64_t journal_refused_total; /* PUBLISHes the daemon refused (pubsub counts its own) */
    uint64_t sessions_rolled;
    uint64_t bars_total;             /* bars closed and published (feed/bars.h) */
    uint64_t bars_late_trades_total; /* trades the bars dropped: their interval had closed */
    uint64_t reloads_total;
    uint64_t reload_failures_total;
    int last_reload_ok;
    int64_t start_time_ns; /* CLOCK_REALTIME */
    const char *version;   /* tickd_build_info's label */
} metrics_snapshot_t;

/* Appends the page to body. Reads s only. 0 or -ENOMEM. */
int metrics_render(const metrics_snapshot_t *s, http_body_t *body);

#endif

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

#include "daemon.h"
#include "http.h"

/* Appends the page to body. Reads d only (d->heap, d->pubsub and the feeds
 * may be absent: their families are left out, or read zero). 0 or -ENOMEM. */
int metrics_render(const daemon_t *d, http_body_t *body);

#endif

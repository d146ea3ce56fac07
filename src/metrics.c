/*
 * metrics.c - renders the daemon for Prometheus (text format 0.0.4).
 *
 * Everything is read at scrape time, on the loop: from the snapshot its owner
 * fills (metrics_snapshot_t: the feeds', pub/sub's and the daemon's
 * counters), from the heap below through alloc's stats calls
 * (heap_get_stats, obj_type_foreach, gc_get_stats) and from
 * process_get_stats. No counter is kept here, so nothing can drift, and
 * nothing here calls up into the modules that fill the snapshot. Each family is written whole, #
 * HELP and # TYPE first, then its samples; a family with no sample (no feed configured, no object
 * type registered yet, no heap) is left out.
 *
 * Label values are escaped as the format wants (backslash, double quote and
 * line feed); HELP texts are constants with none of those. Floating-point
 * values are printed with the fewest digits that read back exactly. A write
 * that fails (no memory) makes every later one a no-op, and the error comes
 * back once, at the end.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/metrics.h"
#include "src/process.h"

_Static_assert(GC_PAUSE_NBUCKETS <= HISTOGRAM_MAX_BOUNDS, "pause buckets fit a histogram view");

/* The page being written, with its first error. */
typedef struct out {
    http_body_t *b;
    int err;
} out_t;

typedef struct label {
    const char *name;
    const char *value;
} label_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_t *o, const char *fmt, ...)
{
    if (o->err != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    o->err = http_body_vprintf(o->b, fmt, ap);
    va_end(ap);
}

static void put_escaped(out_t *o, const char *s)
{
    while (o->err == 0 && *s != '\0') {
        size_t run = strcspn(s, "\\\"\n");
        o->err = http_body_append(o->b, s, run);
        s += run;
        if (*s == '\0' || o->err != 0)
            break;
        put(o, "%s", *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : "\\n");
        s++;
    }
}

static void family(out_t *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name[suffix]{labels} value */
static void sample(out_t *o, const char *name, const char *suffix, const label_t *labels,
                   size_t nlabels, const char *value)
{
    put(o, "%s%s", name, suffix);
    for (size_t i = 0; i < nlabels; i++) {
        put(o, "%c%s=\"", i == 0 ? '{' : ',', labels[i].name);
        put_escaped(o, labels[i].value);
        put(o, "\"");
    }
    put(o, "%s %s\n", nlabels > 0 ? "}" : "", value);
}

static void sample_u64(out_t *o, const char *name, const label_t *labels, size_t nlabels,
                       uint64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, v);
    sample(o, name, "", labels, nlabels, text);
}

/* The shortest decimal that reads back as v; +Inf, -Inf, NaN as the format
 * spells them. */
static void format_double(char buf[32], double v)
{
    if (isnan(v)) {
        strcpy(buf, "NaN");
    } else if (isinf(v)) {
        strcpy(buf, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(buf, 32, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, 32, "%.17g", v);
    }
}

static void sample_double(out_t *o, const char *name, double v)
{
    char text[32];
    format_double(text, v);
    sample(o, name, "", NULL, 0, text);
}

/* A single unlabelled sample, with its family. */
static void metric_u64(out_t *o, const char *name, const char *type, const char *help, uint64_t v)
{
    family(o, name, type, help);
    sample_u64(o, name, NULL, 0, v);
}

/* ---- histograms ---- */

/* A histogram as the format shows it: cumulative buckets by upper bound
 * (seconds), then +Inf (the count), the sum and the count. */
typedef struct hist_view {
    size_t n;
    double le[HISTOGRAM_MAX_BOUNDS];
    uint64_t cumulative[HISTOGRAM_MAX_BOUNDS];
    uint64_t count;
    double sum;
} hist_view_t;

static void view_histogram(const histogram_t *h, hist_view_t *v)
{
    uint64_t acc = 0;
    v->n = h->nbounds;
    for (size_t i = 0; i < h->nbounds; i++) {
        acc += h->buckets[i];
        v->le[i] = h->bounds[i];
        v->cumulative[i] = acc;
    }
    v->count = h->count;
    v->sum = h->sum;
}

static void view_pauses(const gc_generation_stats_t *g, hist_view_t *v)
{
    v->n = GC_PAUSE_NBUCKETS;
    for (size_t i = 0; i < GC_PAUSE_NBUCKETS; i++) {
        v->le[i] = (double)gc_pause_bounds_ns[i] / 1e9;
        v->cumulative[i] = g->pause_buckets[i];
    }
    v->count = g->pause_count;
    v->sum = (double)g->pause_sum_ns / 1e9;
}

/* The samples of one histogram; by is its own label (NULL for none). */
static void histogram_samples(out_t *o, const char *name, const label_t *by, const hist_view_t *v)
{
    label_t labels[2];
    size_t n = 0;
    if (by != NULL)
        labels[n++] = *by;
    char le[32], text[32];
    labels[n].name = "le";
    labels[n].value = le;
    for (size_t i = 0; i <= v->n; i++) {
        if (i < v->n)
            format_double(le, v->le[i]);
        else
            strcpy(le, "+Inf");
        snprintf(text, sizeof(text), "%" PRIu64, i < v->n ? v->cumulative[i] : v->count);
        sample(o, name, "_bucket", labels, n + 1, text);
    }
    format_double(text, v->sum);
    sample(o, name, "_sum", labels, n, text);
    snprintf(text, sizeof(text), "%" PRIu64, v->count);
    sample(o, name, "_count", labels, n, text);
}

/* h NULL: a histogram with no observation and no bound but +Inf. */
static void metric_histogram(out_t *o, const char *name, const char *help, const histogram_t *h)
{
    static const histogram_t none;
    hist_view_t v;
    view_histogram(h != NULL ? h : &none, &v);
    family(o, name, "histogram", help);
    histogram_samples(o, name, NULL, &v);
}

/* ---- the allocator ---- */

static void render_alloc(out_t *o, const heap_stats_t *s)
{
    metric_u64(o, "tickd_alloc_arenas", "gauge", "Arenas mapped now, the spare included.",
               s->arenas);
    metric_u64(o, "tickd_alloc_arenas_highwater", "gauge", "Most arenas mapped at once.",
               s->arenas_highwater);
    metric_u64(o, "tickd_alloc_arenas_allocated_total", "counter",
               "Arenas mapped from the OS over the heap's life.", s->arenas_allocated);
    metric_u64(o, "tickd_alloc_arenas_released_total", "counter",
               "Arenas given back to the OS over the heap's life.", s->arenas_released);
    metric_u64(o, "tickd_alloc_mapped_bytes", "gauge", "Bytes of arenas mapped now.",
               s->mapped_bytes);
    metric_u64(o, "tickd_alloc_used_bytes", "gauge", "Bytes of live blocks in pools.",
               s->used_bytes);
    metric_u64(o, "tickd_alloc_available_bytes", "gauge",
               "Bytes of free blocks in pools that have live ones.", s->available_bytes);

    family(o, "tickd_alloc_pools", "gauge",
           "Pools by state: used (some blocks free), full, empty.");
    sample_u64(o, "tickd_alloc_pools", (label_t[]){{"state", "used"}}, 1, s->pools_used);
    sample_u64(o, "tickd_alloc_pools", (label_t[]){{"state", "full"}}, 1, s->pools_full);
    sample_u64(o, "tickd_alloc_pools", (label_t[]){{"state", "empty"}}, 1, s->pools_empty);

    char sz[HEAP_NCLASSES][8];
    for (unsigned i = 0; i < HEAP_NCLASSES; i++)
        snprintf(sz[i], sizeof(sz[i]), "%zu", s->classes[i].block_size);
    family(o, "tickd_alloc_blocks", "gauge",
           "Blocks in the pools of each size class (block size in bytes), used or free.");
    for (unsigned i = 0; i < HEAP_NCLASSES; i++) {
        label_t used[] = {{"size_class", sz[i]}, {"state", "used"}};
        label_t avail[] = {{"size_class", sz[i]}, {"state", "free"}};
        sample_u64(o, "tickd_alloc_blocks", used, 2, s->classes[i].used_blocks);
        sample_u64(o, "tickd_alloc_blocks", avail, 2, s->classes[i].free_blocks);
    }
    family(o, "tickd_alloc_allocations_total", "counter",
           "Blocks handed out per size class (block size in bytes).");
    for (unsigned i = 0; i < HEAP_NCLASSES; i++)
        sample_u64(o, "tickd_alloc_allocations_total", (label_t[]){{"size_class", sz[i]}}, 1,
                   s->classes[i].allocs);
    family(o, "tickd_alloc_frees_total", "counter",
           "Blocks given back per size class (block size in bytes).");
    for (unsigned i = 0; i < HEAP_NCLASSES; i++)
        sample_u64(o, "tickd_alloc_frees_total", (label_t[]){{"size_class", sz[i]}}, 1,
                   s->classes[i].frees);

    metric_u64(o, "tickd_alloc_large_bytes", "gauge",
               "Requested bytes of live large blocks (over 512 bytes, from the system "
               "allocator).",
               s->large_bytes);
    metric_u64(o, "tickd_alloc_large_allocations_total", "counter",
               "Large blocks allocated over the heap's life.", s->large_allocs);
    metric_u64(o, "tickd_alloc_large_frees_total", "counter",
               "Large blocks freed over the heap's life.", s->large_frees);
}

/* ---- objects ---- */

typedef struct type_walk {
    out_t *o;
    const char *name;
    int created; /* created over the heap's life, else live now */
    unsigned ntypes;
} type_walk_t;

static int count_type(const obj_type_stats_t *st, void *arg)
{
    (void)st;
    ((type_walk_t *)arg)->ntypes++;
    return 0;
}

static int type_sample(const obj_type_stats_t *st, void *arg)
{
    type_walk_t *w = arg;
    label_t type[] = {{"type", st->type->name}};
    sample_u64(w->o, w->name, type, 1, w->created ? st->created : st->live);
    return 0;
}

static void render_objects(out_t *o, const heap_t *heap)
{
    type_walk_t w = {o, "tickd_objects", 0, 0};
    obj_type_foreach(heap, count_type, &w);
    if (w.ntypes == 0)
        return;
    family(o, w.name, "gauge", "Live objects per type.");
    obj_type_foreach(heap, type_sample, &w);
    w.name = "tickd_objects_created_total";
    w.created = 1;
    family(o, w.name, "counter", "Objects created per type over the heap's life.");
    obj_type_foreach(heap, type_sample, &w);
}

/* ---- the cycle collector ---- */

static const char *const generation_names[GC_NGENERATIONS] = {"0", "1", "2"};

static void gc_family(out_t *o, const gc_stats_t *s, const char *name, const char *type,
                      const char *help, size_t field)
{
    family(o, name, type, help);
    for (int g = 0; g < GC_NGENERATIONS; g++) {
        const char *at = (const char *)&s->generations[g] + field;
        uint64_t v;
        memcpy(&v, at, sizeof(v));
        sample_u64(o, name, (label_t[]){{"generation", generation_names[g]}}, 1, v);
    }
}

static void render_gc(out_t *o, const gc_stats_t *s)
{
    gc_family(o, s, "tickd_gc_collections_total", "counter",
              "Collections of each generation (a collection covers the younger ones too).",
              offsetof(gc_generation_stats_t, collections));
    gc_family(o, s, "tickd_gc_objects_collected_total", "counter",
              "Unreachable objects freed by collections of each generation.",
              offsetof(gc_generation_stats_t, collected));
    gc_family(o, s, "tickd_gc_objects_uncollectable_total", "counter",
              "Unreachable objects that collections of each generation could not free.",
              offsetof(gc_generation_stats_t, uncollectable));
    gc_family(o, s, "tickd_gc_tracked_objects", "gauge", "Containers in each generation now.",
              offsetof(gc_generation_stats_t, tracked));
    metric_u64(o, "tickd_gc_frozen_objects", "gauge",
               "Containers moved out of the collector's reach by a freeze.", s->frozen);

    family(o, "tickd_gc_pause_seconds", "histogram",
           "Duration of collections of each generation (the loop is paused meanwhile).");
    for (int g = 0; g < GC_NGENERATIONS; g++) {
        hist_view_t v;
        view_pauses(&s->generations[g], &v);
        label_t by = {"generation", generation_names[g]};
        histogram_samples(o, "tickd_gc_pause_seconds", &by, &v);
    }
}

/* ---- feeds and ticks ---- */

/* A per-feed family of one of the uint64_t fields of feed_stats_t. */
static void feed_family(out_t *o, const metrics_feed_t *fs, size_t n, const char *name,
                        const char *type, const char *help, size_t field)
{
    family(o, name, type, help);
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&fs[i].stats + field, sizeof(v));
        sample_u64(o, name, (label_t[]){{"feed", fs[i].name}}, 1, v);
    }
}

/* What /healthz judges, for alerts of Prometheus's own: connected, and the
 * time of the last message (0 before the first, so that the series exists
 * from the start). */
static void render_feed_health(out_t *o, const metrics_feed_t *fs, size_t n)
{
    family(o, "tickd_feed_connected", "gauge",
           "1 while the feed has a source: a TCP source connected, a UDP message or current "
           "heartbeat received, a file open; else 0.");
    for (size_t i = 0; i < n; i++)
        sample_u64(o, "tickd_feed_connected", (label_t[]){{"feed", fs[i].name}}, 1,
                   fs[i].connected != 0);
    family(o, "tickd_feed_last_message_timestamp_seconds", "gauge",
           "Unix time of the feed's last message (UDP: or heartbeat), 0 before the first.");
    for (size_t i = 0; i < n; i++) {
        char text[32];
        format_double(text, (double)fs[i].last_message_ns / 1e9);
        sample(o, "tickd_feed_last_message_timestamp_seconds", "",
               (label_t[]){{"feed", fs[i].name}}, 1, text);
    }
}

static void render_feeds(out_t *o, const metrics_snapshot_t *d)
{
    const metrics_feed_t *st = d->feeds;
    size_t n = d->nfeeds;
    if (n > 0) {
        feed_family(o, st, n, "tickd_feed_messages_total", "counter",
                    "Inputs decoded and applied, per feed.", offsetof(feed_stats_t, messages));
        feed_family(o, st, n, "tickd_feed_decode_errors_total", "counter",
                    "Inputs that could not be decoded, per feed.",
                    offsetof(feed_stats_t, decode_errors));
        feed_family(o, st, n, "tickd_feed_sequence_gaps_total", "counter",
                    "MoldUDP64 messages missed, per feed.", offsetof(feed_stats_t, sequence_gaps));
        feed_family(o, st, n, "tickd_feed_sequence_jumps_total", "counter",
                    "MoldUDP64 packets ignored for a sequence number implausibly far ahead, per "
                    "feed.",
                    offsetof(feed_stats_t, sequence_jumps));
        feed_family(o, st, n, "tickd_feed_duplicate_messages_total", "counter",
                    "MoldUDP64 messages skipped as already delivered, per feed.",
                    offsetof(feed_stats_t, duplicates));
        feed_family(o, st, n, "tickd_feed_session_changes_total", "counter",
                    "MoldUDP64 session name changes, per feed.",
                    offsetof(feed_stats_t, session_changes));
        feed_family(o, st, n, "tickd_feed_rejected_total", "counter",
                    "Inputs decoded but refused by the market, per feed.",
                    offsetof(feed_stats_t, rejected));
        feed_family(o, st, n, "tickd_feed_hold_timeouts_total", "counter",
                    "JetStream nats feeds: restarts that stopped holding back for the consumer's "
                    "pending messages when hold_timeout passed, per feed.",
                    offsetof(feed_stats_t, hold_timeouts));
        feed_family(o, st, n, "tickd_feed_connections", "gauge",
                    "Sources connected now (TCP feeds), per feed.",
                    offsetof(feed_stats_t, connections));
        family(o, "tickd_feed_up", "gauge",
               "1 while the feed's file is open or its socket bound, else 0.");
        for (size_t i = 0; i < n; i++)
            sample_u64(o, "tickd_feed_up", (label_t[]){{"feed", st[i].name}}, 1,
                       st[i].stats.up != 0);
        render_feed_health(o, st, n);
    }
    family(o, "tickd_ticks_total", "counter", "Ticks made, by kind, over the daemon's life.");
    sample_u64(o, "tickd_ticks_total", (label_t[]){{"kind", "trade"}}, 1, d->ticks_total[0]);
    sample_u64(o, "tickd_ticks_total", (label_t[]){{"kind", "quote"}}, 1, d->ticks_total[1]);
}

/* ---- pub/sub and latencies ---- */

static void render_pubsub(out_t *o, const metrics_snapshot_t *d)
{
    const pubsub_stats_t *ps = &d->pubsub;
    histogram_t none;
    const histogram_t *latency = d->tick_latency;
    if (latency == NULL) {
        histogram_init(&none, histogram_latency_bounds, histogram_latency_nbounds);
        latency = &none;
    }
    metric_u64(o, "tickd_pubsub_clients", "gauge", "Pub/sub clients connected now.", ps->clients);
    metric_u64(o, "tickd_pubsub_connections_total", "counter",
               "Pub/sub connections accepted over the daemon's life.", ps->connections_total);
    metric_u64(o, "tickd_pubsub_rejected_connections_total", "counter",
               "Pub/sub connections refused at pubsub.max_clients.", ps->rejected_total);
    metric_u64(o, "tickd_pubsub_subscriptions", "gauge",
               "Channels and patterns subscribed now, over all clients.", ps->subscriptions);
    metric_u64(o, "tickd_pubsub_messages_sent_total", "counter",
               "Messages queued to subscribers (one per subscriber).", ps->messages_sent_total);
    metric_u64(o, "tickd_pubsub_output_buffer_bytes", "gauge",
               "Bytes queued to subscribers now, over all clients.", ps->output_buffer_bytes);
    metric_u64(o, "tickd_pubsub_slow_consumer_disconnects_total", "counter",
               "Subscribers cut off for not keeping up with their output.",
               ps->slow_consumer_disconnects_total);
    metric_u64(o, "tickd_pubsub_conflations_total", "counter",
               "Times a subscriber past the soft limit had its quotes conflated instead of being "
               "cut (pubsub.slow_consumer: conflate).",
               ps->conflations_total);
    metric_u64(o, "tickd_pubsub_conflated_clients", "gauge",
               "Subscribers whose quotes are conflated now, until they catch up.",
               ps->conflated_clients);
    family(o, "tickd_pubsub_conflation_flush_seconds_total", "counter",
           "Loop thread CPU time spent sending conflated channels' messages at their intervals' "
           "ends.");
    sample_double(o, "tickd_pubsub_conflation_flush_seconds_total",
                  (double)ps->conflate_flush_ns / 1e9);
    metric_u64(o, "tickd_pubsub_protocol_errors_total", "counter",
               "Clients closed for bad RESP or over a limit.", ps->protocol_errors_total);
    metric_u64(o, "tickd_pubsub_publish_total", "counter", "PUBLISH commands accepted.",
               ps->publish_total);
    metric_u64(o, "tickd_pubsub_publish_symbol_limit_hits_total", "counter",
               "PUBLISH refused: its new symbol would pass pubsub.max_publish_symbols.",
               ps->publish_symbol_limit_total);
    metric_u64(o, "tickd_pubsub_auth_failures_total", "counter",
               "AUTH and HELLO AUTH refused: a wrong password or no such user.",
               ps->auth_failures_total);
    if (d->has_market) {
        family(o, "tickd_market_symbols", "gauge",
               "Symbols the trading day has now, by the way in that made them.");
        sample_u64(o, "tickd_market_symbols", (label_t[]){{"source", "feed"}}, 1,
                   d->market_symbols - d->market_published_symbols);
        sample_u64(o, "tickd_market_symbols", (label_t[]){{"source", "publish"}}, 1,
                   d->market_published_symbols);
        metric_u64(o, "tickd_market_broken_trades_total", "counter",
                   "ITCH broken trade (B) messages: counted, never published.",
                   d->market_broken_trades);
    }
    metric_histogram(o, "tickd_tick_latency_seconds",
                     "Time from a tick's receipt until it was written to a subscriber's socket.",
                     latency);
    metric_histogram(o, "tickd_loop_lag_seconds",
                     "How late the loop ran a periodic timer: time the loop was busy.",
                     d->loop_lag);
}

/* ---- journal, daemon, process ---- */

static void render_journal(out_t *o, const metrics_snapshot_t *d)
{
    metric_u64(o, "tickd_journal_records_total", "counter",
               "Tick records appended to the journal (buffered for a worker to write).",
               d->journal_records_total);
    metric_u64(o, "tickd_journal_written_records_total", "counter",
               "Journal records written to the file.", d->journal_written_total);
    metric_u64(o, "tickd_journal_durable_records", "gauge",
               "Journal records written and synced to disk (fsync always or interval).",
               d->journal_durable_total);
    metric_u64(o, "tickd_journal_dropped_records_total", "counter",
               "Journal records lost to write errors or a journal that could not keep up.",
               d->journal_dropped_total);
    metric_u64(o, "tickd_journal_errors_total", "counter",
               "Journal writes or syncs that failed (disk full, I/O error).",
               d->journal_errors_total);
    metric_histogram(o, "tickd_journal_fsync_seconds", "Duration of journal syncs to disk.",
                     d->journal_fsync);
    metric_u64(o, "tickd_journal_publish_errors_total", "counter",
               "PUBLISHes answered with a journal error, never acknowledged: the journal not "
               "open, its buffers full for 10 s, a failed write or sync, or no sync within 10 s.",
               d->journal_refused_total + d->pubsub.publish_journal_errors_total);
}

static void render_nats(out_t *o, const metrics_snapshot_t *d)
{
    const nats_sink_stats_t *n = &d->nats;
    metric_u64(o, "tickd_nats_connected", "gauge",
               "1 when the NATS sink is connected to a server, else 0.", (uint64_t)n->connected);
    metric_u64(o, "tickd_nats_published_total", "counter", "Ticks the NATS sink published.",
               n->published_total);
    metric_u64(o, "tickd_nats_dropped_total", "counter",
               "Ticks dropped for NATS only: nats.max_pending was full (NATS away or slow).",
               n->dropped_total);
    metric_u64(o, "tickd_nats_pending_bytes", "gauge",
               "Bytes of nats.max_pending holding ticks not yet published (with JetStream: not "
               "yet acknowledged).",
               n->pending_bytes);
    metric_u64(o, "tickd_nats_reconnects_total", "counter",
               "Reconnections of the NATS sink to a server.", n->reconnects_total);
    metric_u64(o, "tickd_nats_js_acks_total", "counter",
               "JetStream publishes acknowledged by the stream.", n->js_acks_total);
    metric_u64(o, "tickd_nats_js_ack_failures_total", "counter",
               "JetStream publishes refused, or not acknowledged after the retries.",
               n->js_ack_failures_total);
    metric_histogram(o, "tickd_nats_js_ack_seconds",
                     "From a JetStream publish to its acknowledgement.", &n->js_ack);
}

static void render_daemon(out_t *o, const metrics_snapshot_t *d)
{
    metric_u64(o, "tickd_sessions_rolled_total", "counter",
               "Trading days rolled over (session.roll_at).", d->sessions_rolled);
    metric_u64(o, "tickd_bars_total", "counter", "OHLCV bars closed and published.", d->bars_total);
    metric_u64(o, "tickd_bars_late_trades_total", "counter",
               "Trades left out of the bars: their interval had closed already.",
               d->bars_late_trades_total);
    metric_u64(o, "tickd_config_reloads_total", "counter",
               "Configuration reloads applied in full (SIGHUP).", d->reloads_total);
    metric_u64(o, "tickd_config_reload_failures_total", "counter",
               "Configuration reloads (SIGHUP) that failed in whole or in part; what could not "
               "change kept running as it was.",
               d->reload_failures_total);
    metric_u64(o, "tickd_config_last_reload_successful", "gauge",
               "1 when the last reload (or the start) applied the whole configuration, else 0.",
               (uint64_t)d->last_reload_ok);
    family(o, "tickd_build_info", "gauge", "The running tickd: its version as a label, value 1.");
    sample_u64(o, "tickd_build_info", (label_t[]){{"version", d->version}}, 1, 1);
}

static void render_process(out_t *o, const metrics_snapshot_t *d)
{
    process_stats_t p;
    if (process_get_stats(&p) == 0) {
        family(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
        sample_double(o, "process_cpu_seconds_total", p.cpu_seconds);
        metric_u64(o, "process_resident_memory_bytes", "gauge", "Resident memory size.",
                   p.resident_bytes);
        metric_u64(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size.",
                   p.virtual_bytes);
        metric_u64(o, "process_open_fds", "gauge", "Open file descriptors.", p.open_fds);
        metric_u64(o, "process_max_fds", "gauge", "Limit of open file descriptors.", p.max_fds);
    }
    family(o, "process_start_time_seconds", "gauge",
           "Start time of the process since the Unix epoch.");
    /* Whole seconds and the fraction apart: ns / 1e9 in one division would
     * round 1700000000.25 to 1700000000.2499998. */
    sample_double(o, "process_start_time_seconds",
                  (double)(d->start_time_ns / 1000000000) +
                      (double)(d->start_time_ns % 1000000000) / 1e9);
}

int metrics_render(const metrics_snapshot_t *d, http_body_t *body)
{
    out_t o = {body, 0};
    if (d->heap != NULL) {
        heap_stats_t hs;
        gc_stats_t gs;
        heap_get_stats(d->heap, &hs);
        gc_get_stats(d->heap, &gs);
        render_alloc(&o, &hs);
        render_objects(&o, d->heap);
        render_gc(&o, &gs);
    }
    render_feeds(&o, d);
    render_pubsub(&o, d);
    render_journal(&o, d);
    if (d->has_nats)
        render_nats(&o, d);
    render_daemon(&o, d);
    render_process(&o, d);
    return o.err;
}

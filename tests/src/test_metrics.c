/*
 * test_metrics.c - src/metrics.c: the page a metrics_snapshot_t renders to. Every
 * family has # HELP and # TYPE ahead of its samples, the required names are
 * there with their types, values match what the modules report, histograms
 * are cumulative with +Inf equal to the count, label values are escaped, and
 * `promtool check metrics` accepts the page.
 *
 * The snapshot is built here as the daemon fills it: a real heap with live
 * ticks and symbols and a finished collection (so pauses were recorded),
 * histograms with observations, and the counters the feeds and the pub/sub
 * server would report. metrics.c reads nothing else: the test links no
 * feed or pub/sub code it would call.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "feed/market.h"
#include "src/metrics.h"

/* ---- the snapshot under test ---- */

#define VERSION "9.8.7-test"

typedef struct fixture {
    metrics_snapshot_t s;
    metrics_feed_t feeds[2];
    histogram_t loop_lag, journal_fsync, latency;
    market_t *market;
} fixture_t;

/* A name that needs every escape of the format: quote, backslash, line feed. */
#define ODD_FEED         "we\"ird\\na\nme"
#define ODD_FEED_ESCAPED "we\\\"ird\\\\na\\nme"

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    metrics_snapshot_t *d = &f->s;
    assert_int_equal(heap_create(NULL, &d->heap), 0);
    assert_int_equal(obj_runtime_create(d->heap), 0);

    /* Yesterday: ticks and symbols left in Symbol <-> Tick cycles, then
     * reclaimed by a full collection. */
    market_t *old;
    assert_int_equal(market_create(d->heap, 0, NULL, NULL, &old), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(market_trade(old, "OLD", 3, 1000000 + i, 100, 'B', 0, i, i), 0);
    market_destroy(old);
    assert_true(gc_collect(d->heap, 2) > 0);

    /* Today: live objects. */
    assert_int_equal(market_create(d->heap, 0, NULL, NULL, &f->market), 0);
    assert_int_equal(market_trade(f->market, "AAPL", 4, 1890000, 100, 'B', 0, 1, 2), 0);
    assert_int_equal(market_quote(f->market, "MSFT", 4, 4100000, 10, 4101000, 20, 0, 3, 4), 0);

    histogram_init(&f->loop_lag, histogram_latency_bounds, histogram_latency_nbounds);
    histogram_observe(&f->loop_lag, 0.5e-6);
    histogram_observe(&f->loop_lag, 0.003);
    histogram_observe(&f->loop_lag, 20);
    d->loop_lag = &f->loop_lag;
    histogram_init(&f->journal_fsync, histogram_latency_bounds, histogram_latency_nbounds);
    histogram_observe(&f->journal_fsync, 0.002);
    d->journal_fsync = &f->journal_fsync;

    f->feeds[0] = (metrics_feed_t){.name = "nasdaq",
                                   .stats = {.messages = 5,
                                             .decode_errors = 1,
                                             .sequence_gaps = 2,
                                             .sequence_jumps = 4,
                                             .duplicates = 6,
                                             .session_changes = 8,
                                             .rejected = 3,
                                             .hold_timeouts = 9,
                                             .connections = 0,
                                             .up = 1},
                                   .connected = 1,
                                   .last_message_ns = 1700000001500000000};
    f->feeds[1] = (metrics_feed_t){.name = ODD_FEED, .stats = {.messages = 7, .up = 0}};
    d->feeds = f->feeds;
    d->nfeeds = 2;

    d->pubsub = (pubsub_stats_t){.clients = 3,
                                 .connections_total = 9,
                                 .messages_sent_total = 1234,
                                 .output_buffer_bytes = 4096,
                                 .slow_consumer_disconnects_total = 1};
    histogram_init(&f->latency, histogram_latency_bounds, histogram_latency_nbounds);
    histogram_observe(&f->latency, 30e-6);
    d->tick_latency = &f->latency;

    d->ticks_total[0] = 7;
    d->ticks_total[1] = 11;
    d->journal_records_total = 18;
    d->journal_errors_total = 1;
    d->start_time_ns = 1700000000250000000;
    d->version = VERSION;
    d->has_nats = 1;
    d->nats = (nats_sink_stats_t){.published_total = 41,
                                  .dropped_total = 2,
                                  .pending_bytes = 560,
                                  .reconnects_total = 1,
                                  .connected = 1,
                                  .js_acks_total = 40,
                                  .js_ack_failures_total = 1};
    histogram_init(&d->nats.js_ack, histogram_latency_bounds, histogram_latency_nbounds);
    histogram_observe(&d->nats.js_ack, 0.0004);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    market_destroy(f->market);
    obj_runtime_destroy(f->s.heap);
    heap_destroy(f->s.heap);
    free(f);
    return 0;
}

/* The page, NUL terminated; free() it. */
static char *render(const metrics_snapshot_t *d)
{
    http_body_t b = {0};
    assert_int_equal(metrics_render(d, &b), 0);
    assert_int_equal(http_body_append(&b, "", 1), 0);
    return b.data;
}

/* The value of the sample series ("name{labels}"), or NULL. */
static const char *value_of(const char *page, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = page; *line != '\0';) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return line + n + 1;
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return NULL;
}

static void assert_sample(const char *page, const char *series, const char *value)
{
    const char *v = value_of(page, series);
    if (v == NULL)
        fail_msg("no sample %s", series);
    size_t n = strcspn(v, "\n");
    if (strlen(value) != n || strncmp(v, value, n) != 0)
        fail_msg("%s is %.*s, want %s", series, (int)n, v, value);
}

static void assert_sample_u64(const char *page, const char *series, uint64_t want)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, want);
    assert_sample(page, series, text);
}

static uint64_t sample_u64(const char *page, const char *series)
{
    const char *v = value_of(page, series);
    if (v == NULL)
        fail_msg("no sample %s", series);
    return strtoull(v, NULL, 10);
}

/* ---- tests ---- */

static void every_family_has_help_and_type_before_its_samples_all_together(void **state)
{
    fixture_t *f = *state;
    char *page = render(&f->s);
    char family[128] = "", help[128] = "", type[32] = "";
    char done[512][128]; /* families already finished */
    size_t ndone = 0, nsamples = 0;
    for (char *line = strtok(page, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[128];
        if (sscanf(line, "# HELP %127s", name) == 1) {
            for (size_t i = 0; i < ndone; i++)
                if (strcmp(done[i], name) == 0)
                    fail_msg("family %s appears twice", name);
            if (family[0] != '\0' && ndone < 512)
                snprintf(done[ndone++], sizeof(done[0]), "%s", family);
            strcpy(help, name);
            family[0] = '\0';
            continue;
        }
        if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
            if (strcmp(name, help) != 0)
                fail_msg("# TYPE %s without its # HELP first", name);
            strcpy(family, name);
            continue;
        }
        assert_true(line[0] != '#');
        size_t n = strcspn(line, "{ ");
        assert_true(n < sizeof(name));
        memcpy(name, line, n);
        name[n] = '\0';
        size_t fl = strlen(family);
        int ok = strcmp(name, family) == 0;
        if (!ok && strcmp(type, "histogram") == 0 && strncmp(name, family, fl) == 0)
            ok = strcmp(name + fl, "_bucket") == 0 || strcmp(name + fl, "_sum") == 0 ||
                 strcmp(name + fl, "_count") == 0;
        if (!ok)
            fail_msg("sample %s outside its family (in %s)", line, family);
        nsamples++;
    }
    assert_true(nsamples > 200);
    free(page);
}

static void required_families_are_there_with_their_types(void **state)
{
    fixture_t *f = *state;
    static const char *const want[][2] = {
        {"tickd_alloc_arenas", "gauge"},
        {"tickd_alloc_arenas_allocated_total", "counter"},
        {"tickd_alloc_arenas_released_total", "counter"},
        {"tickd_alloc_mapped_bytes", "gauge"},
        {"tickd_alloc_used_bytes", "gauge"},
        {"tickd_alloc_pools", "gauge"},
        {"tickd_alloc_blocks", "gauge"},
        {"tickd_alloc_allocations_total", "counter"},
        {"tickd_alloc_frees_total", "counter"},
        {"tickd_alloc_large_bytes", "gauge"},
        {"tickd_objects", "gauge"},
        {"tickd_objects_created_total", "counter"},
        {"tickd_gc_collections_total", "counter"},
        {"tickd_gc_objects_collected_total", "counter"},
        {"tickd_gc_objects_uncollectable_total", "counter"},
        {"tickd_gc_tracked_objects", "gauge"},
        {"tickd_gc_pause_seconds", "histogram"},
        {"tickd_feed_messages_total", "counter"},
        {"tickd_feed_decode_errors_total", "counter"},
        {"tickd_feed_sequence_gaps_total", "counter"},
        {"tickd_feed_sequence_jumps_total", "counter"},
        {"tickd_feed_duplicate_messages_total", "counter"},
        {"tickd_feed_session_changes_total", "counter"},
        {"tickd_feed_hold_timeouts_total", "counter"},
        {"tickd_feed_up", "gauge"},
        {"tickd_feed_connected", "gauge"},
        {"tickd_feed_last_message_timestamp_seconds", "gauge"},
        {"tickd_ticks_total", "counter"},
        {"tickd_pubsub_clients", "gauge"},
        {"tickd_pubsub_messages_sent_total", "counter"},
        {"tickd_pubsub_output_buffer_bytes", "gauge"},
        {"tickd_pubsub_slow_consumer_disconnects_total", "counter"},
        {"tickd_tick_latency_seconds", "histogram"},
        {"tickd_loop_lag_seconds", "histogram"},
        {"tickd_journal_records_total", "counter"},
        {"tickd_journal_fsync_seconds", "histogram"},
        {"tickd_journal_errors_total", "counter"},
        {"process_cpu_seconds_total", "counter"},
        {"process_resident_memory_bytes", "gauge"},
        {"process_virtual_memory_bytes", "gauge"},
        {"process_open_fds", "gauge"},
        {"process_max_fds", "gauge"},
        {"process_start_time_seconds", "gauge"},
        {"tickd_build_info", "gauge"},
    };
    char *page = render(&f->s);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char line[160];
        snprintf(line, sizeof(line), "\n# TYPE %s %s\n", want[i][0], want[i][1]);
        if (strstr(page, line) == NULL)
            fail_msg("missing # TYPE %s %s", want[i][0], want[i][1]);
        snprintf(line, sizeof(line), "# HELP %s ", want[i][0]);
        if (strstr(page, line) == NULL)
            fail_msg("missing # HELP %s", want[i][0]);
    }
    free(page);
}

static void allocator_samples_match_the_heap_stats(void **state)
{
    fixture_t *f = *state;
    heap_stats_t hs;
    heap_get_stats(f->s.heap, &hs);
    char *page = render(&f->s);
    assert_sample_u64(page, "tickd_alloc_arenas", hs.arenas);
    assert_sample_u64(page, "tickd_alloc_arenas_allocated_total", hs.arenas_allocated);
    assert_sample_u64(page, "tickd_alloc_arenas_released_total", hs.arenas_released);
    assert_sample_u64(page, "tickd_alloc_mapped_bytes", hs.mapped_bytes);
    assert_sample_u64(page, "tickd_alloc_used_bytes", hs.used_bytes);
    assert_sample_u64(page, "tickd_alloc_large_bytes", hs.large_bytes);
    assert_sample_u64(page, "tickd_alloc_pools{state=\"used\"}", hs.pools_used);
    assert_sample_u64(page, "tickd_alloc_pools{state=\"full\"}", hs.pools_full);
    assert_sample_u64(page, "tickd_alloc_pools{state=\"empty\"}", hs.pools_empty);
    assert_true(hs.used_bytes > 0);
    for (unsigned i = 0; i < HEAP_NCLASSES; i++) {
        const heap_class_stats_t *c = &hs.classes[i];
        char series[128];
        snprintf(series, sizeof(series), "tickd_alloc_blocks{size_class=\"%zu\",state=\"used\"}",
                 c->block_size);
        assert_sample_u64(page, series, c->used_blocks);
        snprintf(series, sizeof(series), "tickd_alloc_blocks{size_class=\"%zu\",state=\"free\"}",
                 c->block_size);
        assert_sample_u64(page, series, c->free_blocks);
        snprintf(series, sizeof(series), "tickd_alloc_allocations_total{size_class=\"%zu\"}",
                 c->block_size);
        assert_sample_u64(page, series, c->allocs);
        snprintf(series, sizeof(series), "tickd_alloc_frees_total{size_class=\"%zu\"}",
                 c->block_size);
        assert_sample_u64(page, series, c->frees);
    }
    assert_non_null(value_of(page, "tickd_alloc_blocks{size_class=\"48\",state=\"used\"}"));
    free(page);
}

static void objects_per_type_match_the_type_counters(void **state)
{
    fixture_t *f = *state;
    char *page = render(&f->s);
    const obj_type_t *types[] = {&tick_type, &symbol_type};
    for (size_t i = 0; i < 2; i++) {
        obj_type_stats_t st;
        assert_int_equal(obj_type_get_stats(f->s.heap, types[i], &st), 0);
        assert_true(st.live > 0);
        assert_true(st.created > st.live);
        char series[128];
        snprintf(series, sizeof(series), "tickd_objects{type=\"%s\"}", types[i]->name);
        assert_sample_u64(page, series, st.live);
        snprintf(series, sizeof(series), "tickd_objects_created_total{type=\"%s\"}",
                 types[i]->name);
        assert_sample_u64(page, series, st.created);
    }
    free(page);
}

static void collector_samples_and_pause_histogram_per_generation(void **state)
{
    fixture_t *f = *state;
    gc_stats_t gs;
    gc_get_stats(f->s.heap, &gs);
    char *page = render(&f->s);
    for (int g = 0; g < GC_NGENERATIONS; g++) {
        const gc_generation_stats_t *s = &gs.generations[g];
        char series[128];
        snprintf(series, sizeof(series), "tickd_gc_collections_total{generation=\"%d\"}", g);
        assert_sample_u64(page, series, s->collections);
        snprintf(series, sizeof(series), "tickd_gc_objects_collected_total{generation=\"%d\"}", g);
        assert_sample_u64(page, series, s->collected);
        snprintf(series, sizeof(series), "tickd_gc_objects_uncollectable_total{generation=\"%d\"}",
                 g);
        assert_sample_u64(page, series, s->uncollectable);
        snprintf(series, sizeof(series), "tickd_gc_tracked_objects{generation=\"%d\"}", g);
        assert_sample_u64(page, series, s->tracked);
        snprintf(series, sizeof(series), "tickd_gc_pause_seconds_count{generation=\"%d\"}", g);
        assert_sample_u64(page, series, s->pause_count);
        snprintf(series, sizeof(series),
                 "tickd_gc_pause_seconds_bucket{generation=\"%d\",le=\"+Inf\"}", g);
        assert_sample_u64(page, series, s->pause_count);
        /* 1 us and 1 s bounds, in seconds. */
        snprintf(series, sizeof(series),
                 "tickd_gc_pause_seconds_bucket{generation=\"%d\",le=\"1e-06\"}", g);
        assert_sample_u64(page, series, s->pause_buckets[0]);
        snprintf(series, sizeof(series),
                 "tickd_gc_pause_seconds_bucket{generation=\"%d\",le=\"1\"}", g);
        assert_sample_u64(page, series, s->pause_buckets[GC_PAUSE_NBUCKETS - 1]);
    }
    assert_true(gs.generations[2].collections >= 1);
    assert_true(gs.generations[2].collected > 0);
    assert_true(gs.generations[2].pause_count >= 1);
    free(page);
}

static void histograms_are_cumulative_with_inf_equal_to_count(void **state)
{
    fixture_t *f = *state;
    char *page = render(&f->s);
    /* Observations 0.5 us, 3 ms, 20 s (beyond the last bound, 10 s). */
    assert_sample(page, "tickd_loop_lag_seconds_bucket{le=\"1e-06\"}", "1");
    assert_sample(page, "tickd_loop_lag_seconds_bucket{le=\"0.0025\"}", "1");
    assert_sample(page, "tickd_loop_lag_seconds_bucket{le=\"0.005\"}", "2");
    assert_sample(page, "tickd_loop_lag_seconds_bucket{le=\"10\"}", "2");
    assert_sample(page, "tickd_loop_lag_seconds_bucket{le=\"+Inf\"}", "3");
    assert_sample(page, "tickd_loop_lag_seconds_count", "3");
    assert_true(strtod(value_of(page, "tickd_loop_lag_seconds_sum"), NULL) == f->loop_lag.sum);
    assert_sample(page, "tickd_tick_latency_seconds_bucket{le=\"2.5e-05\"}", "0");
    assert_sample(page, "tickd_tick_latency_seconds_bucket{le=\"5e-05\"}", "1");
    assert_sample(page, "tickd_tick_latency_seconds_count", "1");
    assert_sample(page, "tickd_journal_fsync_seconds_bucket{le=\"0.0025\"}", "1");
    assert_sample(page, "tickd_journal_fsync_seconds_sum", "0.002");

    /* Every histogram's buckets never decrease, and +Inf is the count. */
    const char *names[] = {"tickd_loop_lag_seconds", "tickd_tick_latency_seconds",
                           "tickd_journal_fsync_seconds"};
    for (size_t i = 0; i < 3; i++) {
        char prefix[96];
        snprintf(prefix, sizeof(prefix), "%s_bucket{le=\"", names[i]);
        uint64_t last = 0;
        size_t buckets = 0;
        for (const char *p = strstr(page, prefix); p != NULL; p = strstr(p + 1, prefix)) {
            uint64_t v = strtoull(strchr(p, ' ') + 1, NULL, 10);
            assert_true(v >= last);
            last = v;
            buckets++;
        }
        assert_int_equal(buckets, histogram_latency_nbounds + 1);
        char count[96];
        snprintf(count, sizeof(count), "%s_count", names[i]);
        assert_int_equal(last, sample_u64(page, count));
    }
    free(page);
}

static void feed_labels_are_escaped_and_values_are_the_feeds(void **state)
{
    fixture_t *f = *state;
    char *page = render(&f->s);
    assert_sample(page, "tickd_feed_messages_total{feed=\"nasdaq\"}", "5");
    assert_sample(page, "tickd_feed_decode_errors_total{feed=\"nasdaq\"}", "1");
    assert_sample(page, "tickd_feed_sequence_gaps_total{feed=\"nasdaq\"}", "2");
    assert_sample(page, "tickd_feed_sequence_jumps_total{feed=\"nasdaq\"}", "4");
    assert_sample(page, "tickd_feed_duplicate_messages_total{feed=\"nasdaq\"}", "6");
    assert_sample(page, "tickd_feed_session_changes_total{feed=\"nasdaq\"}", "8");
    assert_sample(page, "tickd_feed_sequence_jumps_total{feed=\"" ODD_FEED_ESCAPED "\"}", "0");
    assert_sample(page, "tickd_feed_rejected_total{feed=\"nasdaq\"}", "3");
    assert_sample(page, "tickd_feed_hold_timeouts_total{feed=\"nasdaq\"}", "9");
    assert_sample(page, "tickd_feed_hold_timeouts_total{feed=\"" ODD_FEED_ESCAPED "\"}", "0");
    assert_sample(page, "tickd_feed_up{feed=\"nasdaq\"}", "1");
    assert_sample(page, "tickd_feed_messages_total{feed=\"" ODD_FEED_ESCAPED "\"}", "7");
    assert_sample(page, "tickd_feed_up{feed=\"" ODD_FEED_ESCAPED "\"}", "0");
    assert_sample(page, "tickd_feed_connected{feed=\"nasdaq\"}", "1");
    assert_sample(page, "tickd_feed_connected{feed=\"" ODD_FEED_ESCAPED "\"}", "0");
    assert_sample(page, "tickd_feed_last_message_timestamp_seconds{feed=\"nasdaq\"}",
                  "1700000001.5");
    assert_sample(page, "tickd_feed_last_message_timestamp_seconds{feed=\"" ODD_FEED_ESCAPED "\"}",
                  "0");
    assert_sample(page, "tickd_ticks_total{kind=\"trade\"}", "7");
    assert_sample(page, "tickd_ticks_total{kind=\"quote\"}", "11");
    free(page);
}

static void pubsub_journal_and_build_samples(void **state)
{
    fixture_t *f = *state;
    char *page = render(&f->s);
    assert_sample(page, "tickd_pubsub_clients", "3");
    assert_sample(page, "tickd_pubsub_connections_total", "9");
    assert_sample(page, "tickd_pubsub_messages_sent_total", "1234");
    assert_sample(page, "tickd_pubsub_output_buffer_bytes", "4096");
    assert_sample(page, "tickd_pubsub_slow_consumer_disconnects_total", "1");
    assert_sample(page, "tickd_journal_records_total", "18");
    assert_sample(page, "tickd_journal_errors_total", "1");
    assert_sample(page, "tickd_build_info{version=\"" VERSION "\"}", "1");
    free(page);
}

static void market_samples_are_the_market_stats_and_absent_without_a_market(void **state)
{
    fixture_t *f = *state;
    char *page = render(&f->s);
    assert_null(value_of(page, "tickd_market_broken_trades_total"));
    free(page);
    f->s.has_market = 1;
    f->s.market_symbols = 5;
    f->s.market_published_symbols = 2;
    f->s.market_broken_trades = 4;
    page = render(&f->s);
    assert_sample(page, "tickd_market_symbols{source=\"feed\"}", "3");
    assert_sample(page, "tickd_market_symbols{source=\"publish\"}", "2");
    assert_non_null(strstr(page, "# TYPE tickd_market_broken_trades_total counter\n"));
    assert_sample(page, "tickd_market_broken_trades_total", "4");
    free(page);
}

static void process_samples_describe_this_process(void **state)
{
    fixture_t *f = *state;
    char *page = render(&f->s);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    assert_sample_u64(page, "process_max_fds", rl.rlim_cur);
    uint64_t fds = sample_u64(page, "process_open_fds");
    assert_true(fds >= 3 && fds < rl.rlim_cur);
    assert_true(sample_u64(page, "process_resident_memory_bytes") > 1000000);
    assert_true(sample_u64(page, "process_virtual_memory_bytes") >
                sample_u64(page, "process_resident_memory_bytes"));
    assert_true(strtod(value_of(page, "process_cpu_seconds_total"), NULL) >= 0);
    assert_sample(page, "process_start_time_seconds", "1700000000.25");
    free(page);
}

static void without_pubsub_feeds_or_heap_the_page_reads_zero_or_leaves_them_out(void **state)
{
    fixture_t *f = *state;
    metrics_snapshot_t bare = {.loop_lag = &f->loop_lag, .version = VERSION};
    char *page = render(&bare);
    assert_sample(page, "tickd_pubsub_clients", "0");
    assert_sample(page, "tickd_tick_latency_seconds_bucket{le=\"+Inf\"}", "0");
    assert_sample(page, "tickd_tick_latency_seconds_count", "0");
    assert_null(strstr(page, "tickd_alloc_"));
    assert_null(strstr(page, "tickd_objects"));
    assert_null(strstr(page, "tickd_feed_"));
    assert_sample(page, "tickd_ticks_total{kind=\"trade\"}", "0");
    /* An uninitialised histogram is only its +Inf bucket. */
    assert_sample(page, "tickd_journal_fsync_seconds_bucket{le=\"+Inf\"}", "0");
    free(page);
}

/* Runs promtool check metrics on page; its exit status, output in out. */
static int promtool_check(const char *page, char *out, size_t outlen)
{
    char path[] = "/tmp/tickd-test-metrics.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(page);
    assert_int_equal(write(fd, page, len), (ssize_t)len);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void nats_sink_figures_are_shown_and_only_with_a_sink(void **state)
{
    fixture_t *f = *state;
    char *page = render(&f->s);
    assert_sample(page, "tickd_nats_connected", "1");
    assert_sample(page, "tickd_nats_published_total", "41");
    assert_sample(page, "tickd_nats_dropped_total", "2");
    assert_sample(page, "tickd_nats_pending_bytes", "560");
    assert_sample(page, "tickd_nats_reconnects_total", "1");
    assert_sample(page, "tickd_nats_js_acks_total", "40");
    assert_sample(page, "tickd_nats_js_ack_failures_total", "1");
    assert_sample(page, "tickd_nats_js_ack_seconds_bucket{le=\"0.0005\"}", "1");
    assert_sample(page, "tickd_nats_js_ack_seconds_count", "1");
    free(page);
    f->s.has_nats = 0;
    page = render(&f->s);
    assert_null(strstr(page, "tickd_nats_"));
    free(page);
}

static void promtool_check_metrics_accepts_the_page(void **state)
{
    fixture_t *f = *state;
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        print_message("SKIPPED: promtool not found (Debian package prometheus; "
                      "deploy/setup.sh installs it)\n");
        skip();
    }
    char out[8192];
    char *page = render(&f->s);
    int status = promtool_check(page, out, sizeof(out));
    if (status != 0)
        fail_msg("promtool check metrics exited %d:\n%s", status, out);
    free(page);

    metrics_snapshot_t bare = {.version = VERSION};
    page = render(&bare);
    status = promtool_check(page, out, sizeof(out));
    if (status != 0)
        fail_msg("promtool check metrics (bare snapshot) exited %d:\n%s", status, out);
    free(page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            every_family_has_help_and_type_before_its_samples_all_together, setup, teardown),
        cmocka_unit_test_setup_teardown(required_families_are_there_with_their_types, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(allocator_samples_match_the_heap_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(objects_per_type_match_the_type_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(collector_samples_and_pause_histogram_per_generation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(histograms_are_cumulative_with_inf_equal_to_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(feed_labels_are_escaped_and_values_are_the_feeds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pubsub_journal_and_build_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(
            market_samples_are_the_market_stats_and_absent_without_a_market, setup, teardown),
        cmocka_unit_test_setup_teardown(process_samples_describe_this_process, setup, teardown),
        cmocka_unit_test_setup_teardown(
            without_pubsub_feeds_or_heap_the_page_reads_zero_or_leaves_them_out, setup, teardown),
        cmocka_unit_test_setup_teardown(nats_sink_figures_are_shown_and_only_with_a_sink, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(promtool_check_metrics_accepts_the_page, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

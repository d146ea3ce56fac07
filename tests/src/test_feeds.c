/*
 * test_feeds.c - src/feeds.c: file replay and TCP streams on a real libuv
 * loop, seen only through what a feed gives its owner: the ticks its market
 * makes, the hooks it calls (feed_hooks_t) and its stats and health.
 *
 * Each test has its own loop, a real heap and a market whose sink counts the
 * ticks. The loop runs with UV_RUN_NOWAIT until what the test waits for has
 * happened, with a generous guard against hanging; no timing is asserted.
 * Every test ends by stopping its feeds and running the loop until their
 * handles are closed: uv_loop_close() must then succeed (the feed closed
 * everything it opened), and once the market is gone and a collection has
 * run the heap must be empty.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc/object.h"
#include "feed/ingest.h"
#include "src/clock.h"
#include "src/feeds.h"

#define GUARD_NS (20ll * 1000000000) /* a wait that takes longer is a hang */

typedef struct fixture {
    uv_loop_t loop;
    heap_t *heap;
    market_t *market;
    feed_hooks_t hooks;
    feed_t *feeds[2];
    char path[64]; /* a temporary file, "" when none */

    /* what reached the market's sink */
    uint64_t trades, quotes;
    int64_t last_price, last_ts_recv;
    /* what reached the hooks */
    uint64_t batches;
    uint64_t ticks_at_last_batch; /* ticks the market had made when a batch last ended */
    uint64_t input_errors;
    char error_feed[64];
    uint64_t error_where;
    char error_reason[128];
} fixture_t;

/* ---- the owner's part: the sink and the hooks ---- */

static void sink(void *arg, tick_t *t)
{
    fixture_t *f = arg;
    if (t->kind == TICK_TRADE)
        f->trades++;
    else
        f->quotes++;
    f->last_price = t->price;
    f->last_ts_recv = t->ts_recv;
}

static void on_batch_done(void *arg)
{
    fixture_t *f = arg;
    f->batches++;
    f->ticks_at_last_batch = f->trades + f->quotes;
}

static void on_input_error(void *arg, const char *feed, uint64_t where, const char *reason)
{
    fixture_t *f = arg;
    f->input_errors++;
    snprintf(f->error_feed, sizeof(f->error_feed), "%s", feed);
    f->error_where = where;
    snprintf(f->error_reason, sizeof(f->error_reason), "%s", reason);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(heap_create(NULL, &f->heap), 0);
    assert_int_equal(obj_runtime_create(f->heap), 0);
    assert_int_equal(market_create(f->heap, 0, sink, f, &f->market), 0);
    f->hooks = (feed_hooks_t){.batch_done = on_batch_done, .input_error = on_input_error, .arg = f};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (size_t i = 0; i < sizeof(f->feeds) / sizeof(f->feeds[0]); i++)
        if (f->feeds[i] != NULL)
            feed_stop(f->feeds[i]);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    if (f->path[0] != '\0')
        unlink(f->path);
    market_destroy(f->market);
    gc_collect(f->heap, GC_NGENERATIONS - 1);
    heap_stats_t hs;
    heap_get_stats(f->heap, &hs);
    assert_int_equal(hs.used_bytes, 0);
    obj_runtime_destroy(f->heap);
    heap_destroy(f->heap);
    free(f);
    return 0;
}

/* ---- helpers ---- */

/* A temporary file holding text; its path in f->path. */
static void write_file(fixture_t *f, const char *text)
{
    snprintf(f->path, sizeof(f->path), "/tmp/tickd-test-feeds.XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static config_feed_t file_config(const char *name, const char *path, int loop)
{
    config_feed_t c = {.kind = FEED_FILE, .format = INGEST_CSV, .loop = loop};
    snprintf(c.name, sizeof(c.name), "%s", name);
    snprintf(c.path, sizeof(c.path), "%s", path);
    return c;
}

static config_feed_t tcp_config(const char *name, const char *listen)
{
    config_feed_t c = {.kind = FEED_TCP, .format = INGEST_CSV};
    snprintf(c.name, sizeof(c.name), "%s", name);
    snprintf(c.listen, sizeof(c.listen), "%s", listen);
    return c;
}

static void start(fixture_t *f, int i, const config_feed_t *cfg)
{
    char err[256] = "";
    int r = feed_start(&f->loop, f->market, cfg, NULL, &f->hooks, &f->feeds[i], err, sizeof(err));
    if (r != 0)
        fail_msg("feed_start: %d: %s", r, err);
}

static uint64_t messages_of(const feed_t *feed)
{
    feed_stats_t st;
    feed_get_stats(feed, &st);
    return st.messages;
}

static uint64_t connections_of(const feed_t *feed)
{
    feed_stats_t st;
    feed_get_stats(feed, &st);
    return st.connections;
}

static int finished(const feed_t *feed)
{
    health_feed_t h;
    feed_get_health(feed, &h);
    return h.finished;
}

/* Runs the loop until expr holds. */
#define RUN_UNTIL(f, expr)                                                                         \
    do {                                                                                           \
        int64_t deadline_ = clock_monotonic_ns() + GUARD_NS;                                       \
        while (!(expr)) {                                                                          \
            if (clock_monotonic_ns() > deadline_)                                                  \
                fail_msg("timed out waiting for %s", #expr);                                       \
            uv_run(&(f)->loop, UV_RUN_NOWAIT);                                                     \
        }                                                                                          \
    } while (0)

/* A blocking client connected to 127.0.0.1:port. */
static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_text(int fd, const char *text)
{
    size_t len = strlen(text);
    assert_int_equal(send(fd, text, len, 0), (ssize_t)len);
}

/* ---- file replay ---- */

static void a_file_feed_replays_its_lines_into_the_market_and_ends_every_batch(void **state)
{
    fixture_t *f = *state;
    write_file(f, "T,1000,AAPL,189.5000,100,B\n"
                  "Q,2000,MSFT,410.0000,10,410.1000,20\n"
                  "T,3000,AAPL,not-a-price,100,B\n"
                  "T,4000,AAPL,190.2500,50,S\n");
    config_feed_t cfg = file_config("day", f->path, 0);
    int64_t before = clock_realtime_ns();
    start(f, 0, &cfg);
    RUN_UNTIL(f, finished(f->feeds[0]));

    assert_int_equal(f->trades, 2);
    assert_int_equal(f->quotes, 1);
    assert_int_equal(f->last_price, 1902500);
    assert_true(f->last_ts_recv >= before); /* stamped with the real-time clock */
    /* Every tick was followed by the end of a batch: none is left unflushed. */
    assert_true(f->batches >= 1);
    assert_int_equal(f->ticks_at_last_batch, 3);
    /* The bad line went to the input_error hook, named by feed and line. */
    assert_int_equal(f->input_errors, 1);
    assert_string_equal(f->error_feed, "day");
    assert_int_equal(f->error_where, 3);
    assert_true(f->error_reason[0] != '\0');

    feed_stats_t st;
    feed_get_stats(f->feeds[0], &st);
    assert_int_equal(st.messages, 3);
    assert_int_equal(st.decode_errors, 1);
    assert_int_equal(st.up, 1);
    health_feed_t h;
    feed_get_health(f->feeds[0], &h);
    assert_string_equal(h.name, "day");
    assert_string_equal(h.type, "file");
    assert_null(h.error);
    assert_true(h.last_message_ns >= before);
    assert_string_equal(feed_name(f->feeds[0]), "day");
    assert_int_equal(feed_port(f->feeds[0]), 0);
}

static void a_looping_file_feed_replays_its_file_again_and_keeps_counting(void **state)
{
    fixture_t *f = *state;
    write_file(f, "T,1000,AAPL,189.5000,100,B\nT,2000,AAPL,189.6000,100,S\n");
    config_feed_t cfg = file_config("loop", f->path, 1);
    start(f, 0, &cfg);
    RUN_UNTIL(f, messages_of(f->feeds[0]) >= 6);
    assert_true(f->trades >= 6);
    assert_false(finished(f->feeds[0]));
    assert_int_equal(f->input_errors, 0);
}

static void a_looping_file_feed_with_nothing_to_replay_is_in_error_with_its_reason(void **state)
{
    fixture_t *f = *state;
    write_file(f, "# only a comment\n");
    config_feed_t cfg = file_config("empty", f->path, 1);
    start(f, 0, &cfg);
    health_feed_t h;
    RUN_UNTIL(f, (feed_get_health(f->feeds[0], &h), h.error != NULL));
    assert_non_null(strstr(h.error, "no message in"));
    assert_non_null(strstr(h.error, f->path));
    assert_int_equal(h.up, 0);
    assert_int_equal(f->trades + f->quotes, 0);
}

static void a_file_feed_whose_file_cannot_be_opened_does_not_start_and_says_why(void **state)
{
    fixture_t *f = *state;
    config_feed_t cfg = file_config("gone", "/nonexistent/tickd/day.csv", 0);
    char err[256] = "";
    feed_t *feed = NULL;
    assert_int_equal(
        feed_start(&f->loop, f->market, &cfg, NULL, &f->hooks, &feed, err, sizeof(err)), -ENOENT);
    assert_null(feed);
    assert_non_null(strstr(err, "feed gone: cannot open /nonexistent/tickd/day.csv"));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->batches, 0);
}

/* ---- TCP streams ---- */

static void a_tcp_feed_takes_lines_from_each_source_and_counts_its_connections(void **state)
{
    fixture_t *f = *state;
    config_feed_t cfg = tcp_config("live", "127.0.0.1:0");
    start(f, 0, &cfg);
    int port = feed_port(f->feeds[0]);
    assert_true(port > 0);

    int a = connect_to(port), b = connect_to(port);
    RUN_UNTIL(f, connections_of(f->feeds[0]) == 2);
    /* Each source has its own framing: a line split across sends, and
     * another source in between, still read as whole lines. */
    send_text(a, "T,1000,AAPL,189.50");
    send_text(b, "Q,2000,MSFT,410.0000,10,410.1000,20\n");
    RUN_UNTIL(f, f->quotes == 1);
    send_text(a, "00,100,B\nT,3000,AAPL,bad,1,B\n");
    RUN_UNTIL(f, f->trades == 1 && f->input_errors == 1);
    assert_int_equal(f->last_price, 1895000);
    assert_int_equal(f->ticks_at_last_batch, 2);
    assert_string_equal(f->error_feed, "live");

    /* A source that leaves takes its connection away, not its counts. */
    close(a);
    RUN_UNTIL(f, connections_of(f->feeds[0]) == 1);
    feed_stats_t st;
    feed_get_stats(f->feeds[0], &st);
    assert_int_equal(st.messages, 2);
    assert_int_equal(st.decode_errors, 1);
    assert_int_equal(st.up, 1);
    health_feed_t h;
    feed_get_health(f->feeds[0], &h);
    assert_string_equal(h.type, "tcp");
    assert_int_equal(h.connected, 1);
    close(b);
    RUN_UNTIL(f, connections_of(f->feeds[0]) == 0);
    feed_get_health(f->feeds[0], &h);
    assert_int_equal(h.connected, 0);
}

static void a_tcp_feed_whose_address_is_taken_does_not_start_and_says_why(void **state)
{
    fixture_t *f = *state;
    config_feed_t first = tcp_config("first", "127.0.0.1:0");
    start(f, 0, &first);
    char taken[64];
    snprintf(taken, sizeof(taken), "127.0.0.1:%d", feed_port(f->feeds[0]));
    config_feed_t second = tcp_config("second", taken);
    char err[256] = "";
    feed_t *feed = NULL;
    assert_int_equal(
        feed_start(&f->loop, f->market, &second, NULL, &f->hooks, &feed, err, sizeof(err)),
        UV_EADDRINUSE);
    assert_null(feed);
    assert_non_null(strstr(err, "feed second: cannot listen on"));
    assert_non_null(strstr(err, taken));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_file_feed_replays_its_lines_into_the_market_and_ends_every_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_looping_file_feed_replays_its_file_again_and_keeps_counting, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_looping_file_feed_with_nothing_to_replay_is_in_error_with_its_reason, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            a_file_feed_whose_file_cannot_be_opened_does_not_start_and_says_why, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_tcp_feed_takes_lines_from_each_source_and_counts_its_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_tcp_feed_whose_address_is_taken_does_not_start_and_says_why, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

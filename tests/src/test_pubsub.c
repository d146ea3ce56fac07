/*
 * test_pubsub.c - the pub/sub server (src/pubsub*.c, src/payload.c) over
 * real loopback sockets.
 *
 * Each test starts the server on 127.0.0.1 port 0 on its own loop, with a
 * real heap and a market whose sink is pubsub_tick(). Clients are plain
 * non-blocking sockets; between their sends and receives the loop runs with
 * UV_RUN_NOWAIT, so the test is single-threaded and deterministic. Expected
 * bytes are Redis 7's own (checked against redis-server), so redis-cli and
 * hiredis read them as they read Redis. No timing is asserted: waits are
 * loops with a generous guard against hanging.
 *
 * Every test ends by stopping the server, closing the loop, destroying the
 * market and collecting: the heap must then be empty, so a buffer, a
 * subscription or a client that leaks fails the test that leaked it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "alloc/object.h"
#include "feed/bars.h"
#include "feed/csv.h"
#include "feed/itch.h"
#include "src/fanout.h"
#include "src/pubsub.h"

#define GUARD_NS (20ll * 1000000000) /* a wait that takes longer is a hang */

typedef struct fixture {
    uv_loop_t loop;
    heap_t *heap;
    market_t *market;
    bars_t *bars; /* NULL unless the test starts a builder (start_bars()) */
    pubsub_t *ps;
    config_t *cfg;
    int port;
    int stopped;
    int fds[16];
    size_t nfds;
    uint64_t publish_hold; /* journal position on_publish asks replies to wait for */
    int journal_full;      /* on_publish answers -EAGAIN: the journal has no room */
} fixture_t;

/* ---- the daemon's part: the sink and PUBLISH ---- */

/* As the daemon: the bars first, so a trade that closes a bar comes after
 * it on every channel. */
static void sink(void *arg, tick_t *t)
{
    fixture_t *f = arg;
    if (f->bars != NULL) {
        if (t->kind == TICK_TRADE)
            bars_symbol_trade(f->bars, t->sym, t->price, t->size, t->ts_exch, t->ts_recv);
        else
            bars_clock(f->bars, t->ts_exch, t->ts_recv);
    }
    if (f->ps != NULL)
        pubsub_tick(f->ps, t);
}

static void bar_sink(void *arg, bar_t *bar)
{
    fixture_t *f = arg;
    if (f->ps != NULL)
        pubsub_bar(f->ps, bar);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int on_publish(void *arg, const char *channel, size_t chlen, const char *payload, size_t len,
                      int64_t recv_ns, const char **reason, uint64_t *durable_at)
{
    fixture_t *f = arg;
    csv_tick_t t;
    (void)channel;
    (void)chlen;
    *durable_at = f->publish_hold;
    if (f->journal_full) {
        *reason = "journal: buffers full; the tick was not made durable";
        return -EAGAIN;
    }
    int r = csv_parse_line(payload, len, &t, reason);
    if (r <= 0) {
        if (r == 0)
            *reason = "empty or a comment";
        return -EBADMSG;
    }
    if (t.symbol[0] == 'Z') {
        *reason = "the tick was refused";
        return -EINVAL;
    }
    if (t.kind == CSV_TRADE)
        return market_trade(f->market, t.symbol, strlen(t.symbol), t.trade.price, t.trade.size,
                            t.trade.side, 0, (int64_t)t.ts_ns, recv_ns);
    return market_quote(f->market, t.symbol, strlen(t.symbol), t.quote.bid, t.quote.bid_size,
                        t.quote.ask, t.quote.ask_size, 0, (int64_t)t.ts_ns, recv_ns);
}

/* ---- set-up and tear-down ---- */

static void default_config(config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->pubsub.listen, sizeof cfg->pubsub.listen, "127.0.0.1:0");
    cfg->pubsub.payload = 0;
    cfg->pubsub.max_clients = 100;
    cfg->pubsub.max_request = 64 * 1024;
    cfg->pubsub.hard_limit = 32u << 20;
    cfg->pubsub.soft_limit = 8u << 20;
    cfg->pubsub.soft_ns = 60ull * 1000000000;
    cfg->pubsub.snapshot = 1;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->cfg = calloc(1, sizeof *f->cfg);
    default_config(f->cfg);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(heap_create(NULL, &f->heap), 0);
    assert_int_equal(obj_runtime_create(f->heap), 0);
    assert_int_equal(market_create(f->heap, 0, sink, f, &f->market), 0);
    *state = f;
    return 0;
}

/* Starts the server with f->cfg as the test left it. */
static void start(fixture_t *f)
{
    char err[CONFIG_ERR_LEN];
    int r =
        pubsub_start(&f->loop, f->heap, f->market, f->cfg, on_publish, f, &f->ps, err, sizeof err);
    if (r != 0)
        fail_msg("pubsub_start: %s", err);
    f->port = pubsub_port(f->ps);
    assert_true(f->port > 0);
}

/* A bar builder of 1s and 1m bars, closing by the exchange clock with no
 * grace, aligned to the market's day (0), that the server reads its last
 * bars from. After start(). */
static void start_bars(fixture_t *f)
{
    static const int64_t intervals[2] = {1000000000ll, 60000000000ll};
    assert_int_equal(bars_create(f->heap, intervals, 2, 0, 0, bar_sink, f, &f->bars), 0);
    pubsub_set_bars(f->ps, f->bars);
}

static void on_stopped(void *arg)
{
    ((fixture_t *)arg)->stopped = 1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (size_t i = 0; i < f->nfds; i++)
        if (f->fds[i] >= 0)
            close(f->fds[i]);
    if (f->ps != NULL) {
        pubsub_stop(f->ps, 0, on_stopped, f);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        assert_true(f->stopped);
        pubsub_free(f->ps);
    }
    bars_destroy(f->bars);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    market_destroy(f->market);
    gc_collect(f->heap, GC_NGENERATIONS - 1);
    heap_stats_t hs;
    heap_get_stats(f->heap, &hs);
    assert_int_equal(hs.used_bytes, 0);
    obj_runtime_destroy(f->heap);
    heap_destroy(f->heap);
    free(f->cfg);
    free(f);
    return 0;
}

/* ---- clients ---- */

static void pump(fixture_t *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
    pubsub_flush(f->ps);
}

static pubsub_stats_t stats(fixture_t *f)
{
    pubsub_stats_t st;
    pubsub_get_stats(f->ps, &st);
    return st;
}

/* A connected client socket, non-blocking; rcvbuf > 0 shrinks its receive
 * buffer (before connecting, so that the window stays small). */
static int connect_client_rcvbuf(fixture_t *f, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    f->fds[f->nfds++] = fd;
    uint64_t before = stats(f).connections_total + stats(f).rejected_total;
    int64_t deadline = mono_ns() + GUARD_NS;
    while (stats(f).connections_total + stats(f).rejected_total == before) {
        assert_true(mono_ns() < deadline);
        pump(f);
    }
    return fd;
}

static int connect_client(fixture_t *f)
{
    return connect_client_rcvbuf(f, 0);
}

static void send_bytes(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_bytes(fd, s, strlen(s));
}

/* Receives exactly n bytes into buf, running the loop in between. */
static void recv_n(fixture_t *f, int fd, char *buf, size_t n)
{
    size_t got = 0;
    int64_t deadline = mono_ns() + GUARD_NS;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0)
            fail_msg("connection closed after %zu of %zu bytes", got, n);
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        assert_true(mono_ns() < deadline);
        pump(f);
    }
}

/* Asserts that the next bytes from fd are exactly want[0..n). */
static void expect_n(fixture_t *f, int fd, const char *want, size_t n)
{
    char *got = malloc(n + 1);
    recv_n(f, fd, got, n);
    got[n] = '\0';
    if (memcmp(got, want, n) != 0)
        fail_msg("expected \"%.*s\", got \"%s\"", (int)n, want, got);
    free(got);
}

static void expect(fixture_t *f, int fd, const char *want)
{
    expect_n(f, fd, want, strlen(want));
}

/* Sends cmd and expects reply. */
static void roundtrip(fixture_t *f, int fd, const char *cmd, const char *reply)
{
    send_str(fd, cmd);
    expect(f, fd, reply);
}

/* Asserts that fd reaches end of file (or a reset) with no more bytes. */
static void expect_closed(fixture_t *f, int fd)
{
    int64_t deadline = mono_ns() + GUARD_NS;
    for (;;) {
        char c;
        ssize_t r = recv(fd, &c, 1, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return;
        if (r > 0)
            fail_msg("unexpected byte 0x%02x before the close", (unsigned char)c);
        assert_true(mono_ns() < deadline);
        pump(f);
    }
}

/* Asserts that nothing is waiting on fd, by a PING round trip: the PONG
 * must be the very next thing read. */
static void expect_nothing_before_pong(fixture_t *f, int fd, int subscribed)
{
    send_str(fd, "PING\r\n");
    expect(f, fd, subscribed ? "*2\r\n$4\r\npong\r\n$0\r\n\r\n" : "+PONG\r\n");
}

/* ---- (p)(un)subscribe replies ---- */

enum { RESP2, RESP3 };

/* Asserts that the next bytes from fd are Redis' reply to a
 * (P)(UN)SUBSCRIBE of kind ("subscribe", "punsubscribe"...): *3, or the
 * push frame >3 in RESP3, the kind, the name (NULL: the null of an
 * UNSUBSCRIBE with nothing to drop, $-1 or _ in RESP3) and the count of
 * subscriptions the client holds after it. */
static void expect_sub_reply(fixture_t *f, int fd, int proto, const char *kind, const char *name,
                             long count)
{
    char want[1024], head[64];
    snprintf(head, sizeof head, "%c3\r\n$%zu\r\n%s\r\n", proto == RESP3 ? '>' : '*', strlen(kind),
             kind);
    if (name != NULL)
        snprintf(want, sizeof want, "%s$%zu\r\n%s\r\n:%ld\r\n", head, strlen(name), name, count);
    else
        snprintf(want, sizeof want, "%s%s\r\n:%ld\r\n", head, proto == RESP3 ? "_" : "$-1", count);
    expect(f, fd, want);
}

static void expect_subscribed(fixture_t *f, int fd, const char *channel, long count)
{
    expect_sub_reply(f, fd, RESP2, "subscribe", channel, count);
}

static void expect_psubscribed(fixture_t *f, int fd, const char *pattern, long count)
{
    expect_sub_reply(f, fd, RESP2, "psubscribe", pattern, count);
}

static void expect_unsubscribed(fixture_t *f, int fd, const char *channel, long count)
{
    expect_sub_reply(f, fd, RESP2, "unsubscribe", channel, count);
}

static void expect_punsubscribed(fixture_t *f, int fd, const char *pattern, long count)
{
    expect_sub_reply(f, fd, RESP2, "punsubscribe", pattern, count);
}

/* ---- ticks ---- */

static void trade(fixture_t *f, const char *sym, int64_t price, uint32_t size, char side,
                  int64_t ts)
{
    assert_int_equal(market_trade(f->market, sym, strlen(sym), price, size, side, 0, ts, now_ns()),
                     0);
}

static void quote(fixture_t *f, const char *sym, int64_t bid, uint32_t bs, int64_t ask, uint32_t as,
                  int64_t ts)
{
    assert_int_equal(market_quote(f->market, sym, strlen(sym), bid, bs, ask, as, 0, ts, now_ns()),
                     0);
}

/* The message frame Redis would send for payload on channel. */
static char *frame(const char *channel, const char *payload)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "*3\r\n$7\r\nmessage\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
             strlen(channel), channel, strlen(payload), payload);
    return buf;
}

static char *pframe(const char *pattern, const char *channel, const char *payload)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "*4\r\n$8\r\npmessage\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
             strlen(pattern), pattern, strlen(channel), channel, strlen(payload), payload);
    return buf;
}

/* The same frames as RESP3 push frames: '>' in place of the first '*'. */
static char *push(char *frame)
{
    frame[0] = '>';
    return frame;
}

/* HELLO's reply, as Redis 7 writes it, for a client of id in proto 2 or 3. */
static char *hello_reply(int proto, int id)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "%s\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
             "$5\r\nproto\r\n:%d\r\n$2\r\nid\r\n:%d\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n"
             "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
             proto == 3 ? "%7" : "*14", proto, id);
    return buf;
}

/* Reads one bulk (RESP2 $) or verbatim (RESP3 =, its "txt:" dropped)
 * string reply into a malloc'd NUL-terminated string. */
static char *read_text_reply(fixture_t *f, int fd)
{
    char line[32], c = 0;
    size_t n = 0;
    while (c != '\n') {
        recv_n(f, fd, &c, 1);
        assert_true(n < sizeof line - 1);
        line[n++] = c;
    }
    line[n] = '\0';
    assert_true(line[0] == '$' || line[0] == '=');
    size_t len = strtoul(line + 1, NULL, 10);
    char *text = malloc(len + 3);
    recv_n(f, fd, text, len + 2);
    assert_memory_equal(text + len, "\r\n", 2);
    text[len] = '\0';
    if (line[0] == '=') {
        assert_memory_equal(text, "txt:", 4);
        memmove(text, text + 4, len - 3);
    }
    return text;
}

#define AAPL_TRADE_JSON                                                                            \
    "{\"sym\":\"AAPL\",\"kind\":\"trade\",\"price\":\"101.2500\",\"size\":100,\"side\":\"B\","     \
    "\"ts\":123456789,\"seq\":1}"

/* ---- the tests ---- */

static void test_subscribe_replies_are_redis_bytes(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    /* Spelled out here, byte for byte, as Redis 7 sends them: every other
     * test expects them through expect_sub_reply(), which writes the same. */
    roundtrip(f, c, "SUBSCRIBE trade.AAPL quote.AAPL\r\n",
              "*3\r\n$9\r\nsubscribe\r\n$10\r\ntrade.AAPL\r\n:1\r\n"
              "*3\r\n$9\r\nsubscribe\r\n$10\r\nquote.AAPL\r\n:2\r\n");
    roundtrip(f, c, "*2\r\n$10\r\nPSUBSCRIBE\r\n$7\r\ntrade.*\r\n",
              "*3\r\n$10\r\npsubscribe\r\n$7\r\ntrade.*\r\n:3\r\n");
    roundtrip(f, c, "SUBSCRIBE trade.AAPL\r\n",
              "*3\r\n$9\r\nsubscribe\r\n$10\r\ntrade.AAPL\r\n:3\r\n");
    send_str(c, "UNSUBSCRIBE trade.AAPL nope\r\nUNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nPUNSUBSCRIBE\r\n");
    expect(f, c,
           "*3\r\n$11\r\nunsubscribe\r\n$10\r\ntrade.AAPL\r\n:2\r\n"
           "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnope\r\n:2\r\n"
           "*3\r\n$11\r\nunsubscribe\r\n$10\r\nquote.AAPL\r\n:1\r\n"
           "*3\r\n$12\r\npunsubscribe\r\n$7\r\ntrade.*\r\n:0\r\n"
           "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");
    assert_int_equal(stats(f).subscriptions, 0);
}

static void test_trade_arrives_as_message_frame_with_json_payload(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 1);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    trade(f, "MSFT", 3000000, 5, 'S', 1);
    pubsub_flush(f->ps);
    expect(f, c, frame("trade.AAPL", AAPL_TRADE_JSON));
    expect_nothing_before_pong(f, c, 1);
    assert_int_equal(stats(f).messages_sent_total, 1);
}

static void test_quote_json_has_both_sides_and_a_trade_without_side_has_no_side_key(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE quote.IBM trade.IBM\r\n");
    expect_subscribed(f, c, "quote.IBM", 1);
    expect_subscribed(f, c, "trade.IBM", 2);
    quote(f, "IBM", 1500000, 300, 1500100, 0, 42);
    trade(f, "IBM", 1, 1, 0, -5);
    pubsub_flush(f->ps);
    expect(f, c,
           frame("quote.IBM", "{\"sym\":\"IBM\",\"kind\":\"quote\",\"bid\":\"150.0000\","
                              "\"bid_size\":300,\"ask\":\"150.0100\",\"ask_size\":0,\"ts\":42,"
                              "\"seq\":1}"));
    expect(f, c,
           frame("trade.IBM", "{\"sym\":\"IBM\",\"kind\":\"trade\",\"price\":\"0.0001\","
                              "\"size\":1,\"ts\":-5,\"seq\":2}"));
}

static void test_csv_payload_is_the_csv_line_without_newline_or_unknown_side(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.payload = 1;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.AAPL quote.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 1);
    expect_subscribed(f, c, "quote.AAPL", 2);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    quote(f, "AAPL", 1012400, 200, 1012600, 300, 123456790);
    trade(f, "AAPL", 1012500, 7, 0, 123456791);
    pubsub_flush(f->ps);
    expect(f, c, frame("trade.AAPL", "T,123456789,AAPL,101.2500,100,B"));
    expect(f, c, frame("quote.AAPL", "Q,123456790,AAPL,101.2400,200,101.2600,300"));
    expect(f, c, frame("trade.AAPL", "T,123456791,AAPL,101.2500,7"));
}

static void test_psubscribe_gets_pmessage_frames_for_matching_channels_only(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "PSUBSCRIBE trade.*\r\n");
    expect_psubscribed(f, c, "trade.*", 1);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    quote(f, "AAPL", 1, 1, 2, 2, 1);
    pubsub_flush(f->ps);
    expect(f, c, pframe("trade.*", "trade.AAPL", AAPL_TRADE_JSON));
    expect_nothing_before_pong(f, c, 1);
}

static void test_channel_and_pattern_subscriber_gets_both_frames(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.AAPL\r\nPSUBSCRIBE *.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 1);
    expect_psubscribed(f, c, "*.AAPL", 2);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    pubsub_flush(f->ps);
    expect(f, c, frame("trade.AAPL", AAPL_TRADE_JSON));
    expect(f, c, pframe("*.AAPL", "trade.AAPL", AAPL_TRADE_JSON));
    assert_int_equal(stats(f).messages_sent_total, 2);
}

/* A pattern too long to copy into every frame is sent as its own head and
 * the message frame's tail: the same bytes, in the same order. */
static void test_a_long_pattern_gets_the_same_pmessage_frames(void **state)
{
    fixture_t *f = *state;
    char pattern[256], cmd[512];
    snprintf(pattern, sizeof pattern, "trade.%0200d", 0);
    memset(pattern + 6, '*', 200); /* "trade.****...": matches every trade channel */
    start(f);
    int only = connect_client(f), both = connect_client(f);
    snprintf(cmd, sizeof cmd, "PSUBSCRIBE %s\r\n", pattern);
    send_str(only, cmd);
    expect_psubscribed(f, only, pattern, 1);
    send_str(both, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, both, "trade.AAPL", 1);
    send_str(both, cmd);
    expect_psubscribed(f, both, pattern, 2);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    pubsub_flush(f->ps);
    const char *second = "{\"sym\":\"AAPL\",\"kind\":\"trade\",\"price\":\"101.2500\",\"size\":100,"
                         "\"side\":\"B\",\"ts\":123456789,\"seq\":2}";
    expect(f, only, pframe(pattern, "trade.AAPL", AAPL_TRADE_JSON));
    expect(f, only, pframe(pattern, "trade.AAPL", second));
    expect_nothing_before_pong(f, only, 1);
    expect(f, both, frame("trade.AAPL", AAPL_TRADE_JSON));
    expect(f, both, pframe(pattern, "trade.AAPL", AAPL_TRADE_JSON));
    expect(f, both, frame("trade.AAPL", second));
    expect(f, both, pframe(pattern, "trade.AAPL", second));
    expect_nothing_before_pong(f, both, 1);
}

/* Appends s to want[0..*len). */
static void append_str(char *want, size_t *len, const char *s)
{
    size_t n = strlen(s);
    memcpy(want + *len, s, n);
    *len += n;
}

/* One flush that fills several chunks of the fan-out stream reaches a
 * channel subscriber, a pattern subscriber and one with both, byte for byte
 * and in order. */
static void test_a_flush_over_many_stream_chunks_arrives_whole_and_in_order(void **state)
{
    fixture_t *f = *state;
    enum { TICKS = 3000 };      /* some 400 KB of frames: several chunks */
    f->cfg->pubsub.payload = 1; /* CSV: the expected bytes are easy to spell */
    start(f);
    int fds[3] = {connect_client(f), connect_client(f), connect_client(f)};
    send_str(fds[0], "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, fds[0], "trade.AAPL", 1);
    send_str(fds[1], "PSUBSCRIBE trade.*\r\n");
    expect_psubscribed(f, fds[1], "trade.*", 1);
    send_str(fds[2], "SUBSCRIBE trade.AAPL\r\nPSUBSCRIBE trade.*\r\n");
    expect_subscribed(f, fds[2], "trade.AAPL", 1);
    expect_psubscribed(f, fds[2], "trade.*", 2);
    char *want[3];
    size_t len[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
        want[i] = malloc(TICKS * 160);
    for (int i = 1; i <= TICKS; i++) {
        char line[64];
        trade(f, "AAPL", 1012500, 100, 'B', i);
        snprintf(line, sizeof line, "T,%d,AAPL,101.2500,100,B", i);
        append_str(want[0], &len[0], frame("trade.AAPL", line));
        append_str(want[2], &len[2], frame("trade.AAPL", line));
        append_str(want[1], &len[1], pframe("trade.*", "trade.AAPL", line));
        append_str(want[2], &len[2], pframe("trade.*", "trade.AAPL", line));
    }
    assert_true(len[2] > 4 * FANOUT_CHUNK_SIZE);
    pubsub_flush(f->ps);
    for (int i = 0; i < 3; i++) {
        expect_n(f, fds[i], want[i], len[i]);
        expect_nothing_before_pong(f, fds[i], 1);
        free(want[i]);
    }
    assert_int_equal(stats(f).messages_sent_total, 4 * TICKS);
    assert_int_equal(pubsub_latency(f->ps)->count, TICKS);
}

static void test_unsubscribe_stops_delivery_and_counts_down(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.A trade.B\r\n");
    expect_subscribed(f, c, "trade.A", 1);
    expect_subscribed(f, c, "trade.B", 2);
    send_str(c, "UNSUBSCRIBE trade.A trade.Z\r\n");
    expect_unsubscribed(f, c, "trade.A", 1);
    expect_unsubscribed(f, c, "trade.Z", 1);
    trade(f, "A", 10000, 1, 'B', 1);
    pubsub_flush(f->ps);
    expect_nothing_before_pong(f, c, 1);
    send_str(c, "UNSUBSCRIBE\r\n");
    expect_unsubscribed(f, c, "trade.B", 0);
    send_str(c, "UNSUBSCRIBE\r\n");
    expect_unsubscribed(f, c, NULL, 0);
    send_str(c, "PSUBSCRIBE a* b*\r\nPUNSUBSCRIBE\r\n");
    expect_psubscribed(f, c, "a*", 1);
    expect_psubscribed(f, c, "b*", 2);
    expect_punsubscribed(f, c, "b*", 1);
    expect_punsubscribed(f, c, "a*", 0);
    send_str(c, "PUNSUBSCRIBE\r\n");
    expect_punsubscribed(f, c, NULL, 0);
    expect_nothing_before_pong(f, c, 0); /* back in normal mode */
    assert_int_equal(stats(f).subscriptions, 0);
}

/* A tick finds its channel's topic through its symbol's cache; the cache
 * follows the channel as its topic comes, goes and comes back between ticks,
 * a kind at a time: a subscriber made after a tick gets the next one, one
 * who left gets nothing, and one who came after the topic was freed and made
 * again gets every tick. */
static void test_a_channel_topic_that_comes_and_goes_between_ticks_is_followed(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.payload = 1;
    f->cfg->pubsub.snapshot = 0; /* only the ticks made after a SUBSCRIBE */
    start(f);
    int c = connect_client(f), d = connect_client(f);
    send_str(c, "SUBSCRIBE trade.OTHER\r\n");
    expect_subscribed(f, c, "trade.OTHER", 1);
    trade(f, "AAPL", 1012500, 1, 'B', 1); /* trade.AAPL has no topic yet */
    quote(f, "AAPL", 1012400, 2, 1012600, 3, 2);
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 2);
    trade(f, "AAPL", 1012500, 4, 'B', 3);
    quote(f, "AAPL", 1012400, 5, 1012600, 6, 4); /* quote.AAPL still has none */
    pubsub_flush(f->ps);
    expect(f, c, frame("trade.AAPL", "T,3,AAPL,101.2500,4,B"));
    expect_nothing_before_pong(f, c, 1);

    send_str(c, "UNSUBSCRIBE trade.AAPL\r\n");
    expect_unsubscribed(f, c, "trade.AAPL", 1);
    trade(f, "AAPL", 1012500, 7, 'S', 5);
    send_str(d, "SUBSCRIBE trade.AAPL quote.AAPL\r\n");
    expect_subscribed(f, d, "trade.AAPL", 1);
    expect_subscribed(f, d, "quote.AAPL", 2);
    trade(f, "AAPL", 1012500, 8, 'S', 6);
    quote(f, "AAPL", 1012400, 9, 1012600, 10, 7);
    pubsub_flush(f->ps);
    expect(f, d, frame("trade.AAPL", "T,6,AAPL,101.2500,8,S"));
    expect(f, d, frame("quote.AAPL", "Q,7,AAPL,101.2400,9,101.2600,10"));
    expect_nothing_before_pong(f, d, 1);
    expect_nothing_before_pong(f, c, 1);
}

/* A tick's symbol remembers that its channel had no topic; a pattern that
 * comes later and matches the channel is not missed for it. */
static void test_a_pattern_that_comes_after_a_channel_had_no_topic_gets_its_ticks(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.payload = 1;
    f->cfg->pubsub.snapshot = 0;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.OTHER\r\n");
    expect_subscribed(f, c, "trade.OTHER", 1);
    quote(f, "AAPL", 1012400, 2, 1012600, 3, 1); /* quote.AAPL has no topic, nor a pattern */
    send_str(c, "PSUBSCRIBE quote.*\r\n");
    expect_psubscribed(f, c, "quote.*", 2);
    quote(f, "AAPL", 1012400, 5, 1012600, 6, 2);
    pubsub_flush(f->ps);
    expect(f, c, pframe("quote.*", "quote.AAPL", "Q,2,AAPL,101.2400,5,101.2600,6"));
    expect_nothing_before_pong(f, c, 1);
}

static void test_ping_answers_in_both_modes(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "*1\r\n$4\r\nPING\r\n", "+PONG\r\n");
    roundtrip(f, c, "*2\r\n$4\r\nping\r\n$5\r\nhello\r\n", "$5\r\nhello\r\n");
    roundtrip(f, c, "PING a b\r\n", "-ERR wrong number of arguments for 'ping' command\r\n");
    send_str(c, "SUBSCRIBE x\r\n");
    expect_subscribed(f, c, "x", 1);
    roundtrip(f, c, "PING\r\n", "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    roundtrip(f, c, "PING hi\r\n", "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
}

static void test_inline_commands_are_case_insensitive_and_pipelined(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "PING\r\nping\npInG \"a b\"\r\n", "+PONG\r\n+PONG\r\n$3\r\na b\r\n");
    /* A request split across many reads. */
    const char *req = "*2\r\n$4\r\nPING\r\n$3\r\nabc\r\n";
    for (size_t i = 0; req[i] != '\0'; i++) {
        send_bytes(c, req + i, 1);
        pump(f);
    }
    expect(f, c, "$3\r\nabc\r\n");
}

/* Two clients whose requests are cut at every place, their pieces read in
 * turn: each unfinished request goes on with its own client's bytes (every
 * read lands in one shared buffer, behind the request it finishes). */
static void test_requests_cut_anywhere_in_two_clients_at_once_are_each_served(void **state)
{
    fixture_t *f = *state;
    start(f);
    int a = connect_client(f), b = connect_client(f);
    const char *ra = "*2\r\n$4\r\nPING\r\n$5\r\naaaaa\r\n",
               *rb = "*2\r\n$4\r\nPING\r\n$3\r\nbbb\r\n";
    size_t na = strlen(ra), nb = strlen(rb);
    for (size_t i = 1; i < na; i++) {
        size_t j = i < nb ? i : nb - 1;
        send_bytes(a, ra, i);
        pump(f);
        send_bytes(b, rb, j);
        pump(f);
        send_bytes(a, ra + i, na - i);
        pump(f);
        send_bytes(b, rb + j, nb - j);
        expect(f, a, "$5\r\naaaaa\r\n");
        expect(f, b, "$3\r\nbbb\r\n");
    }
}

static void test_large_and_many_replies_keep_their_order(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    size_t big = 40000;
    char *cmd = malloc(big + 64), *want = malloc(big + 64);
    int n = snprintf(cmd, 64, "*2\r\n$4\r\nPING\r\n$%zu\r\n", big);
    memset(cmd + n, 'x', big);
    memcpy(cmd + n + big, "\r\n", 2);
    int w = snprintf(want, 64, "+PONG\r\n$%zu\r\n", big);
    memset(want + w, 'x', big);
    memcpy(want + w + big, "\r\n+PONG\r\n", 9);
    send_str(c, "PING\r\n");
    send_bytes(c, cmd, (size_t)n + big + 2);
    send_str(c, "PING\r\n");
    expect_n(f, c, want, (size_t)w + big + 9);
    free(cmd);
    free(want);

    char pings[6 * 3000 + 1] = "";
    for (int i = 0; i < 3000; i++)
        memcpy(pings + 6 * i, "PING\r\n", 6);
    send_bytes(c, pings, 6 * 3000);
    for (int i = 0; i < 3000; i++)
        expect(f, c, "+PONG\r\n");
}

static void test_client_and_command_answers_let_clients_connect(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "CLIENT SETNAME me\r\n", "+OK\r\n");
    roundtrip(f, c, "CLIENT SETNAME \"a b\"\r\n",
              "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    roundtrip(f, c, "client setinfo lib-name redis-py\r\n", "+OK\r\n");
    roundtrip(f, c, "CLIENT FOO\r\n", "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n");
    roundtrip(f, c, "CLIENT\r\n", "-ERR wrong number of arguments for 'client' command\r\n");
    roundtrip(f, c, "CLIENT SETNAME\r\n",
              "-ERR wrong number of arguments for 'client|setname' command\r\n");
    roundtrip(f, c, "COMMAND DOCS\r\n", "*0\r\n");
    roundtrip(f, c, "COMMAND\r\n", "*0\r\n");
    roundtrip(f, c, "COMMAND COUNT\r\n", ":0\r\n");
    roundtrip(f, c, "SET a b\r\n",
              "-ERR unknown command 'SET', with args beginning with: 'a' 'b' \r\n");
    roundtrip(f, c, "PUBLISH x\r\n", "-ERR wrong number of arguments for 'publish' command\r\n");
    /* A name matches in any case and only whole: a prefix or a longer word is unknown. */
    roundtrip(f, c, "PUBLIS x y\r\n",
              "-ERR unknown command 'PUBLIS', with args beginning with: 'x' 'y' \r\n");
    roundtrip(f, c, "PUBLISHX x y\r\n",
              "-ERR unknown command 'PUBLISHX', with args beginning with: 'x' 'y' \r\n");
    roundtrip(f, c, "pUbLiSh x\r\n", "-ERR wrong number of arguments for 'publish' command\r\n");
}

/* A byte wrong at any place of a command's name, in the middle of a long
 * name too, makes it unknown. */
static void test_a_command_name_with_any_byte_wrong_is_unknown(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    static const char *const names[] = {"GET",        "MGET",        "QUIT",
                                        "RESET",      "PUBLISH",     "SUBSCRIBE",
                                        "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        size_t n = strlen(names[k]);
        for (size_t i = 0; i < n; i++) {
            char name[16], req[64], want[160];
            memcpy(name, names[k], n + 1);
            name[i] = (char)(name[i] + 1); /* a neighbour: no other command's name */
            snprintf(req, sizeof req, "%s a\r\n", name);
            snprintf(want, sizeof want,
                     "-ERR unknown command '%s', with args beginning with: 'a' \r\n", name);
            roundtrip(f, c, req, want);
        }
    }
}

static void test_hello_without_a_version_or_with_2_answers_the_resp2_array(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "HELLO\r\n", hello_reply(2, 1));
    roundtrip(f, c, "hello 2\r\n", hello_reply(2, 1));
    send_str(c, "SUBSCRIBE trade.A\r\n");
    expect_subscribed(f, c, "trade.A", 1);
    expect_nothing_before_pong(f, c, 1);
}

static void test_hello_3_answers_a_map_and_switches_the_connection_to_resp3(void **state)
{
    fixture_t *f = *state;
    start(f);
    connect_client(f);
    int c = connect_client(f);
    roundtrip(f, c, "HELLO 3\r\n", hello_reply(3, 2));
    /* RESP3 spelled out: push frames, and "_" for the null (the bytes
     * expect_sub_reply() writes for RESP3 everywhere else). */
    roundtrip(f, c, "UNSUBSCRIBE\r\n", ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
    roundtrip(f, c, "PUNSUBSCRIBE\r\n", ">3\r\n$12\r\npunsubscribe\r\n_\r\n:0\r\n");
    roundtrip(f, c, "SUBSCRIBE a\r\n", ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    roundtrip(f, c, "UNSUBSCRIBE\r\n", ">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n");
    roundtrip(f, c, "COMMAND DOCS\r\n", "%0\r\n");
    /* HELLO without a version answers in the protocol in force. */
    roundtrip(f, c, "HELLO\r\n", hello_reply(3, 2));
    roundtrip(f, c, "HELLO 2\r\n", hello_reply(2, 2));
    send_str(c, "UNSUBSCRIBE\r\n");
    expect_unsubscribed(f, c, NULL, 0);
}

static void test_hello_refuses_bad_versions_and_options_in_redis_words(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "HELLO 4\r\n", "-NOPROTO unsupported protocol version\r\n");
    roundtrip(f, c, "HELLO 1\r\n", "-NOPROTO unsupported protocol version\r\n");
    roundtrip(f, c, "HELLO -3\r\n", "-NOPROTO unsupported protocol version\r\n");
    roundtrip(f, c, "HELLO x\r\n", "-ERR Protocol version is not an integer or out of range\r\n");
    roundtrip(f, c, "HELLO 03\r\n", "-ERR Protocol version is not an integer or out of range\r\n");
    roundtrip(f, c, "HELLO 99999999999999999999\r\n",
              "-ERR Protocol version is not an integer or out of range\r\n");
    roundtrip(f, c, "HELLO 3 BOGUS\r\n", "-ERR Syntax error in HELLO option 'BOGUS'\r\n");
    roundtrip(f, c, "HELLO 3 AUTH default\r\n", "-ERR Syntax error in HELLO option 'AUTH'\r\n");
    roundtrip(f, c, "HELLO 3 SETNAME\r\n", "-ERR Syntax error in HELLO option 'SETNAME'\r\n");
    roundtrip(f, c, "HELLO 3 SETNAME \"a b\"\r\n",
              "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    /* None of them switched the protocol. */
    send_str(c, "UNSUBSCRIBE\r\n");
    expect_unsubscribed(f, c, NULL, 0);
    roundtrip(f, c, "HELLO 3 SETNAME me\r\n", hello_reply(3, 1));
    roundtrip(f, c, "HELLO 2 setname me AUTH default anything\r\n", hello_reply(2, 1));
}

static void test_hello_auth_authenticates_and_no_error_ever_shows_the_password(void **state)
{
    fixture_t *f = *state;
    snprintf(f->cfg->pubsub.password, sizeof f->cfg->pubsub.password, "s3cret");
    start(f);
    int c = connect_client(f);
    const char *noauth =
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO AUTH <user> <pass> option can be used to authenticate the client and select the "
        "RESP protocol version at the same time\r\n";
    const char *wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    roundtrip(f, c, "HELLO 3\r\n", noauth);
    roundtrip(f, c, "HELLO\r\n", noauth);
    roundtrip(f, c, "HELLO 3 AUTH default s3cretX\r\n", wrongpass);
    roundtrip(f, c, "HELLO 3 AUTH bob s3cret\r\n", wrongpass); /* one user: "default" */
    roundtrip(f, c, "HELLO 2 AUTH default wrong SETNAME me\r\n", wrongpass);
    roundtrip(f, c, "AUTH default wrong\r\n", wrongpass);
    roundtrip(f, c, "AUTH s3cret x\r\n", wrongpass);
    roundtrip(f, c, "AUTH s3cretX\r\n", wrongpass);
    roundtrip(f, c, "HELLO 3 AUTH s3cret\r\n", "-ERR Syntax error in HELLO option 'AUTH'\r\n");
    roundtrip(f, c, "PING\r\n", "-NOAUTH Authentication required.\r\n");
    roundtrip(f, c, "HELLO 3 SETNAME me AUTH default s3cret\r\n", hello_reply(3, 1));
    roundtrip(f, c, "PING\r\n", "+PONG\r\n");
    /* A failed HELLO AUTH leaves an authenticated client as it was. */
    roundtrip(f, c, "HELLO 3 AUTH default wrong\r\n", wrongpass);
    roundtrip(f, c, "HELLO 2\r\n", hello_reply(2, 1));
}

static void test_resp3_subscriber_gets_push_frames_for_replies_messages_and_pmessages(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "HELLO 3\r\n", hello_reply(3, 1));
    send_str(c, "SUBSCRIBE trade.AAPL trade.B\r\n");
    expect_sub_reply(f, c, RESP3, "subscribe", "trade.AAPL", 1);
    expect_sub_reply(f, c, RESP3, "subscribe", "trade.B", 2);
    send_str(c, "PSUBSCRIBE trade.*\r\n");
    expect_sub_reply(f, c, RESP3, "psubscribe", "trade.*", 3);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    pubsub_flush(f->ps);
    expect(f, c, push(frame("trade.AAPL", AAPL_TRADE_JSON)));
    expect(f, c, push(pframe("trade.*", "trade.AAPL", AAPL_TRADE_JSON)));
    /* A RESP3 subscriber may run any command; PING answers as it would
     * unsubscribed. */
    roundtrip(f, c, "PING\r\n", "+PONG\r\n");
    roundtrip(f, c, "PING hi\r\n", "$2\r\nhi\r\n");
    roundtrip(f, c, "PUBSUB NUMPAT\r\n", ":1\r\n");
    send_str(c, "UNSUBSCRIBE trade.B trade.Z\r\n");
    expect_sub_reply(f, c, RESP3, "unsubscribe", "trade.B", 2);
    expect_sub_reply(f, c, RESP3, "unsubscribe", "trade.Z", 2);
    send_str(c, "PUNSUBSCRIBE\r\n");
    expect_sub_reply(f, c, RESP3, "punsubscribe", "trade.*", 1);
    send_str(c, "UNSUBSCRIBE\r\n");
    expect_sub_reply(f, c, RESP3, "unsubscribe", "trade.AAPL", 0);
}

static void
test_resp2_and_resp3_subscribers_of_a_channel_and_patterns_each_get_their_framing(void **state)
{
    fixture_t *f = *state;
    char longpat[256], cmd[512];
    snprintf(longpat, sizeof longpat, "trade.%0200d", 0);
    memset(longpat + 6, '*', 200); /* over PATTERN_COPY_MAX: head and tail are sent apart */
    start(f);
    int two = connect_client(f), three = connect_client(f);
    roundtrip(f, three, "HELLO 3\r\n", hello_reply(3, 2));
    const int fds[2] = {two, three};
    for (int i = 0; i < 2; i++) {
        const int proto = i == 0 ? RESP2 : RESP3;
        send_str(fds[i], "SUBSCRIBE trade.AAPL\r\n");
        expect_sub_reply(f, fds[i], proto, "subscribe", "trade.AAPL", 1);
        send_str(fds[i], "PSUBSCRIBE trade.A*\r\n");
        expect_sub_reply(f, fds[i], proto, "psubscribe", "trade.A*", 2);
        snprintf(cmd, sizeof cmd, "PSUBSCRIBE %s\r\n", longpat);
        send_str(fds[i], cmd);
        expect_sub_reply(f, fds[i], proto, "psubscribe", longpat, 3);
    }
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    pubsub_flush(f->ps);
    const char *second = "{\"sym\":\"AAPL\",\"kind\":\"trade\",\"price\":\"101.2500\",\"size\":100,"
                         "\"side\":\"B\",\"ts\":123456789,\"seq\":2}";
    const char *payloads[2] = {AAPL_TRADE_JSON, second};
    for (int i = 0; i < 2; i++) {
        for (int t = 0; t < 2; t++) {
            char *m = frame("trade.AAPL", payloads[t]);
            expect(f, fds[i], i == 0 ? m : push(m));
            /* Pattern order is the server's; accept either. */
            char a[1024], b[1024], got[2048];
            snprintf(a, sizeof a, "%s", pframe("trade.A*", "trade.AAPL", payloads[t]));
            snprintf(b, sizeof b, "%s", pframe(longpat, "trade.AAPL", payloads[t]));
            if (i == 1) {
                push(a);
                push(b);
            }
            recv_n(f, fds[i], got, strlen(a) + strlen(b));
            assert_true(
                (memcmp(got, a, strlen(a)) == 0 && memcmp(got + strlen(a), b, strlen(b)) == 0) ||
                (memcmp(got, b, strlen(b)) == 0 && memcmp(got + strlen(b), a, strlen(a)) == 0));
        }
    }
    expect_nothing_before_pong(f, two, 1);
    roundtrip(f, three, "PING\r\n", "+PONG\r\n");
    assert_int_equal(stats(f).messages_sent_total, 12);
    /* Each tick's latency is observed once, not once per protocol. */
    assert_int_equal(pubsub_latency(f->ps)->count, 2);
}

static void test_hello_2_while_subscribed_turns_messages_back_into_arrays(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f), other = connect_client(f);
    roundtrip(f, c, "HELLO 3\r\n", hello_reply(3, 1));
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_sub_reply(f, c, RESP3, "subscribe", "trade.AAPL", 1);
    send_str(other, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, other, "trade.AAPL", 1);
    roundtrip(f, c, "HELLO 2\r\n", hello_reply(2, 1));
    /* Back in RESP2, subscribed mode allows only the pub/sub commands. */
    roundtrip(f, c, "HELLO 3\r\n",
              "-ERR Can't execute 'hello': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT "
              "/ RESET are allowed in this context\r\n");
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    pubsub_flush(f->ps);
    expect(f, c, frame("trade.AAPL", AAPL_TRADE_JSON));
    expect(f, other, frame("trade.AAPL", AAPL_TRADE_JSON));
    expect_nothing_before_pong(f, c, 1);
    expect_nothing_before_pong(f, other, 1);
}

static void test_reset_returns_the_connection_to_resp2(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "HELLO 3\r\n", hello_reply(3, 1));
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_sub_reply(f, c, RESP3, "subscribe", "trade.AAPL", 1);
    roundtrip(f, c, "RESET\r\n", "+RESET\r\n");
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 1);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    pubsub_flush(f->ps);
    expect(f, c, frame("trade.AAPL", AAPL_TRADE_JSON));
}

static void test_snapshot_on_subscribe_is_a_push_frame_in_resp3(void **state)
{
    fixture_t *f = *state;
    start(f);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    int c = connect_client(f);
    roundtrip(f, c, "HELLO 3\r\n", hello_reply(3, 1));
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_sub_reply(f, c, RESP3, "subscribe", "trade.AAPL", 1);
    expect(f, c, push(frame("trade.AAPL", AAPL_TRADE_JSON)));
    send_str(c, "PSUBSCRIBE trade.*\r\n");
    expect_sub_reply(f, c, RESP3, "psubscribe", "trade.*", 2);
    expect(f, c, push(pframe("trade.*", "trade.AAPL", AAPL_TRADE_JSON)));
    roundtrip(f, c, "PING\r\n", "+PONG\r\n");
}

static void fill_info(void *arg, pubsub_info_t *out)
{
    (void)arg;
    out->version = "9.8.7";
    out->start_time_ns = now_ns() - 2 * 86400 * 1000000000ll - 5000000000ll;
    out->trades_total = 41;
    out->quotes_total = 42;
}

static void test_info_reports_its_sections_in_redis_format(void **state)
{
    fixture_t *f = *state;
    start(f);
    pubsub_set_info_source(f->ps, fill_info, NULL);
    int c = connect_client(f), sub = connect_client(f);
    send_str(sub, "SUBSCRIBE trade.A trade.B\r\nPSUBSCRIBE q*\r\n");
    expect_subscribed(f, sub, "trade.A", 1);
    expect_subscribed(f, sub, "trade.B", 2);
    expect_psubscribed(f, sub, "q*", 3);
    quote(f, "QQQ", 1, 1, 2, 2, 1); /* a channel created only to cache its patterns */
    pubsub_flush(f->ps);

    send_str(c, "INFO\r\n");
    char *all = read_text_reply(f, c);
    char want[128];
    snprintf(want, sizeof want, "process_id:%ld\r\ntcp_port:%d\r\n", (long)getpid(), f->port);
    assert_true(strncmp(all, "# Server\r\nredis_version:7.0.0\r\ntickd_version:9.8.7\r\n", 52) ==
                0);
    assert_non_null(strstr(all, want));
    assert_non_null(strstr(all, "\r\nuptime_in_seconds:172805\r\nuptime_in_days:2\r\n"));
    assert_non_null(strstr(all, "\r\n\r\n# Clients\r\nconnected_clients:2\r\nmaxclients:100\r\n"));
    assert_non_null(strstr(all, "\r\n\r\n# Memory\r\nused_memory:"));
    assert_non_null(strstr(all, "\r\n\r\n# Persistence\r\nloading:0\r\n"));
    assert_non_null(strstr(all, "\r\n\r\n# Stats\r\ntotal_connections_received:2\r\n"));
    assert_non_null(strstr(all, "\r\npubsub_channels:2\r\npubsub_patterns:1\r\n"));
    assert_non_null(strstr(all, "\r\ntotal_trades_received:41\r\ntotal_quotes_received:42\r\n"));
    assert_non_null(strstr(all, "\r\ntotal_messages_sent:1\r\n"));
    /* Every line is "# Section", "key:value" or the blank line between sections. */
    for (char *line = all; *line != '\0';) {
        char *end = strstr(line, "\r\n");
        assert_non_null(end);
        assert_true(end == line || line[0] == '#' || memchr(line, ':', (size_t)(end - line)));
        line = end + 2;
    }
    assert_true(strtoull(strstr(all, "used_memory:") + 12, NULL, 10) > 0);
    free(all);

    send_str(c, "info ClIeNtS persistence\r\n");
    char *two = read_text_reply(f, c);
    assert_string_equal(two, "# Clients\r\nconnected_clients:2\r\nmaxclients:100\r\n"
                             "output_buffer_bytes:0\r\nconflated_clients:0\r\n\r\n"
                             "# Persistence\r\nloading:0\r\nasync_loading:0\r\n");
    free(two);
    roundtrip(f, c, "INFO nosuch\r\n", "$0\r\n\r\n");
    roundtrip(f, c, "HELLO 3\r\n", hello_reply(3, 1));
    roundtrip(f, c, "INFO nosuch\r\n", "=4\r\ntxt:\r\n");
    send_str(c, "INFO persistence\r\n");
    expect(f, c, "=47\r\ntxt:# Persistence\r\nloading:0\r\nasync_loading:0\r\n\r\n");
    const char *sections[] = {"default", "all", "everything"};
    for (size_t i = 0; i < 3; i++) {
        char cmd[32];
        snprintf(cmd, sizeof cmd, "INFO %s\r\n", sections[i]);
        send_str(c, cmd);
        char *text = read_text_reply(f, c);
        assert_non_null(strstr(text, "# Server\r\n"));
        assert_non_null(strstr(text, "# Stats\r\n"));
        free(text);
    }
    assert_int_equal(stats(f).commands_total, 11); /* 2 by sub, 9 by c */
}

static void test_pubsub_channels_numsub_and_numpat_answer_as_redis(void **state)
{
    fixture_t *f = *state;
    start(f);
    int a = connect_client(f), b = connect_client(f), c = connect_client(f);
    roundtrip(f, c, "PUBSUB CHANNELS\r\n", "*0\r\n");
    roundtrip(f, c, "PUBSUB NUMPAT\r\n", ":0\r\n");
    send_str(a, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, a, "trade.AAPL", 1);
    send_str(b, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, b, "trade.AAPL", 1);
    send_str(b, "PSUBSCRIBE quote.* trade.*\r\n");
    expect_psubscribed(f, b, "quote.*", 2);
    expect_psubscribed(f, b, "trade.*", 3);
    send_str(a, "PSUBSCRIBE trade.*\r\n");
    expect_psubscribed(f, a, "trade.*", 2);
    quote(f, "MSFT", 1, 1, 2, 2, 1); /* quote.MSFT: a pattern cache, no subscriber */
    pubsub_flush(f->ps);
    roundtrip(f, c, "PUBSUB CHANNELS\r\n", "*1\r\n$10\r\ntrade.AAPL\r\n");
    roundtrip(f, c, "PUBSUB CHANNELS quote.*\r\n", "*0\r\n");
    roundtrip(f, c, "PUBSUB CHANNELS t?ade.[A]*\r\n", "*1\r\n$10\r\ntrade.AAPL\r\n");
    roundtrip(f, c, "PUBSUB NUMSUB trade.AAPL quote.MSFT nope\r\n",
              "*6\r\n$10\r\ntrade.AAPL\r\n:2\r\n$10\r\nquote.MSFT\r\n:0\r\n$4\r\nnope\r\n:0\r\n");
    roundtrip(f, c, "PUBSUB NUMSUB\r\n", "*0\r\n");
    roundtrip(f, c, "PUBSUB NUMPAT\r\n", ":2\r\n"); /* patterns, each counted once */
    roundtrip(f, c, "PUBSUB FOO\r\n", "-ERR unknown subcommand 'FOO'. Try PUBSUB HELP.\r\n");
    roundtrip(f, c, "PUBSUB\r\n", "-ERR wrong number of arguments for 'pubsub' command\r\n");
    roundtrip(f, c, "PUBSUB NUMPAT x\r\n",
              "-ERR wrong number of arguments for 'pubsub|numpat' command\r\n");
    roundtrip(f, c, "PUBSUB channels a b\r\n",
              "-ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB "
              "HELP.\r\n");
    send_str(c, "PUBSUB HELP\r\n");
    expect(f, c, "*10\r\n+PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n");
    roundtrip(f, a, "PUBSUB NUMPAT\r\n",
              "-ERR Can't execute 'pubsub|numpat': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING "
              "/ QUIT / RESET are allowed in this context\r\n");
}

static void test_publish_of_a_payload_that_is_not_a_tick_says_what_was_expected(void **state)
{
    fixture_t *f = *state;
    start(f);
    int pub = connect_client(f);
    const char *expected = "-ERR payload: expected a CSV tick line "
                           "\"T,<ts>,<sym>,<price>,<size>[,<side>]\" or "
                           "\"Q,<ts>,<sym>,<bid>,<bid_size>,<ask>,<ask_size>\", got ";
    char want[1024];
    snprintf(want, sizeof want,
             "%s\"{\\\"sym\\\":\\\"A\\\"}\" (unknown record type (want T or Q))\r\n", expected);
    roundtrip(f, pub, "*3\r\n$7\r\nPUBLISH\r\n$10\r\ntrade.AAPL\r\n$11\r\n{\"sym\":\"A\"}\r\n",
              want);
    /* Control bytes and bytes past ASCII are escaped; a long payload is cut. */
    snprintf(want, sizeof want,
             "%s\"a\\x0d\\x0a\\x00\\xff\\\\ 0123456789012345678901234\"... (unknown record type "
             "(want T or Q))\r\n",
             expected);
    static const char payload[] = "a\r\n\0\xff\\ 0123456789012345678901234567890";
    char req[256];
    int n = snprintf(req, sizeof req, "*3\r\n$7\r\nPUBLISH\r\n$10\r\ntrade.AAPL\r\n$%zu\r\n",
                     sizeof payload - 1);
    memcpy(req + n, payload, sizeof payload - 1);
    memcpy(req + n + sizeof payload - 1, "\r\n", 2);
    send_bytes(pub, req, (size_t)n + sizeof payload + 1);
    expect(f, pub, want);
    snprintf(want, sizeof want, "%s\"T,x,AAPL,1,1\" (malformed timestamp)\r\n", expected);
    roundtrip(f, pub, "PUBLISH trade.AAPL T,x,AAPL,1,1\r\n", want);
    snprintf(want, sizeof want, "%s\"\" (empty or a comment)\r\n", expected);
    roundtrip(f, pub, "PUBLISH trade.AAPL \"\"\r\n", want);
    assert_int_equal(stats(f).publish_total, 0);
}

static void test_subscribed_mode_allows_only_the_pubsub_commands(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE a\r\n");
    expect_subscribed(f, c, "a", 1);
    roundtrip(f, c, "PUBLISH trade.A x\r\n",
              "-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
              "QUIT / RESET are allowed in this context\r\n");
    roundtrip(f, c, "COMMAND DOCS\r\n",
              "-ERR Can't execute 'command|docs': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
              "QUIT / RESET are allowed in this context\r\n");
    roundtrip(f, c, "FOO\r\n", "-ERR unknown command 'FOO', with args beginning with: \r\n");
    roundtrip(f, c, "RESET\r\n", "+RESET\r\n");
    expect_nothing_before_pong(f, c, 0);
}

static void test_auth_is_required_when_a_password_is_set(void **state)
{
    fixture_t *f = *state;
    snprintf(f->cfg->pubsub.password, sizeof f->cfg->pubsub.password, "secret");
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "PING\r\n", "-NOAUTH Authentication required.\r\n");
    roundtrip(f, c, "SUBSCRIBE trade.A\r\n", "-NOAUTH Authentication required.\r\n");
    roundtrip(f, c, "AUTH wrong\r\n",
              "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    roundtrip(f, c, "AUTH bob secret\r\n",
              "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    roundtrip(f, c, "AUTH a b c\r\n", "-ERR syntax error\r\n");
    roundtrip(f, c, "AUTH secret\r\n", "+OK\r\n");
    roundtrip(f, c, "PING\r\n", "+PONG\r\n");
    roundtrip(f, c, "RESET\r\n", "+RESET\r\n");
    roundtrip(f, c, "PING\r\n", "-NOAUTH Authentication required.\r\n");
    roundtrip(f, c, "AUTH default secret\r\n", "+OK\r\n");
    roundtrip(f, c, "PING\r\n", "+PONG\r\n");

    /* Before AUTH, Redis' tighter limits apply (and close the connection). */
    int d = connect_client(f);
    roundtrip(f, d, "*11\r\n", "-ERR Protocol error: unauthenticated multibulk length\r\n");
    expect_closed(f, d);
}

static void test_auth_without_a_password_is_an_error(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "AUTH x\r\n",
              "-ERR AUTH <password> called without any password configured for the default "
              "user. Are you sure your configuration is correct?\r\n");
    roundtrip(f, c, "AUTH default x\r\n", "+OK\r\n");
}

static void test_publish_ingests_and_replies_with_the_receiver_count(void **state)
{
    fixture_t *f = *state;
    start(f);
    int sub = connect_client(f), pat = connect_client(f), pub = connect_client(f);
    send_str(sub, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, sub, "trade.AAPL", 1);
    send_str(pat, "PSUBSCRIBE trade.* *.AAPL\r\n");
    expect_psubscribed(f, pat, "trade.*", 1);
    expect_psubscribed(f, pat, "*.AAPL", 2);
    roundtrip(f, pub, "PUBLISH trade.AAPL T,123456789,AAPL,101.25,100,B\r\n", ":3\r\n");
    expect(f, sub, frame("trade.AAPL", AAPL_TRADE_JSON));
    /* Pattern order is the server's; accept either. */
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s", pframe("trade.*", "trade.AAPL", AAPL_TRADE_JSON));
    snprintf(b, sizeof b, "%s", pframe("*.AAPL", "trade.AAPL", AAPL_TRADE_JSON));
    char got[2048];
    recv_n(f, pat, got, strlen(a) + strlen(b));
    assert_true((memcmp(got, a, strlen(a)) == 0 && memcmp(got + strlen(a), b, strlen(b)) == 0) ||
                (memcmp(got, b, strlen(b)) == 0 && memcmp(got + strlen(b), a, strlen(a)) == 0));
    roundtrip(f, pub, "PUBLISH quote.MSFT Q,1,MSFT,1,1,2,2\r\n", ":0\r\n");
    roundtrip(f, pub, "PUBLISH trade.ZZ T,1,ZZ,1,1\r\n", "-ERR the tick was refused\r\n");
    assert_int_equal(stats(f).publish_total, 2);
}

/* With fsync always, a PUBLISH is acknowledged only once its tick is on
 * disk: the reply waits for pubsub_durable() to reach the position. */
static void test_publish_reply_waits_until_the_journal_is_durable(void **state)
{
    fixture_t *f = *state;
    start(f);
    int pub = connect_client(f);
    f->publish_hold = 7;
    send_str(pub, "PUBLISH trade.AAPL T,1,AAPL,1,1,B\r\n");
    char c;
    for (int i = 0; i < 50; i++)
        pump(f);
    assert_int_equal(recv(pub, &c, 1, 0), -1); /* held */
    pubsub_durable(f->ps, 6, 0);
    for (int i = 0; i < 50; i++)
        pump(f);
    assert_int_equal(recv(pub, &c, 1, 0), -1); /* still short of 7 */
    pubsub_durable(f->ps, 7, 0);
    expect(f, pub, ":0\r\n");
    f->publish_hold = 0;
    roundtrip(f, pub, "PUBLISH trade.AAPL T,2,AAPL,1,1,B\r\n", ":0\r\n");
}

/* A sync that fails turns the held reply into a journal error, never an
 * acknowledgement; the commands after it are answered after it, in order. */
static void test_publish_reply_becomes_a_journal_error_when_the_sync_fails(void **state)
{
    fixture_t *f = *state;
    start(f);
    int pub = connect_client(f);
    f->publish_hold = 7;
    send_str(pub, "PUBLISH trade.AAPL T,1,AAPL,1,1,B\r\nPING\r\n");
    char c;
    for (int i = 0; i < 50; i++)
        pump(f);
    assert_int_equal(recv(pub, &c, 1, 0), -1); /* held, and the PONG behind it */
    pubsub_durable(f->ps, 7, -ENOSPC);
    expect(f, pub,
           "-ERR journal: write or sync failed (No space left on device); the tick was not made "
           "durable\r\n+PONG\r\n");
    assert_int_equal(stats(f).publish_journal_errors_total, 1);
    f->publish_hold = 0;
    roundtrip(f, pub, "PING\r\n", "+PONG\r\n");
}

/* Each held reply gets the outcome of its own position: a failed sync up
 * to 7 fails the first PUBLISH only, the sync up to 8 acknowledges the
 * second, and nothing is written until both are decided. */
static void test_held_replies_are_decided_by_their_own_journal_positions(void **state)
{
    fixture_t *f = *state;
    start(f);
    int pub = connect_client(f);
    f->publish_hold = 7;
    send_str(pub, "PUBLISH trade.AAPL T,1,AAPL,1,1,B\r\n");
    for (int i = 0; i < 50; i++)
        pump(f);
    f->publish_hold = 8;
    send_str(pub, "PUBLISH trade.AAPL T,2,AAPL,1,1,B\r\n");
    for (int i = 0; i < 50; i++)
        pump(f);
    pubsub_durable(f->ps, 7, -EIO);
    for (int i = 0; i < 50; i++)
        pump(f);
    char c;
    assert_int_equal(recv(pub, &c, 1, 0), -1); /* the second still waits: so does the first */
    pubsub_durable(f->ps, 8, 0);
    expect(f, pub,
           "-ERR journal: write or sync failed (Input/output error); the tick was not made "
           "durable\r\n:0\r\n");
    assert_int_equal(stats(f).publish_journal_errors_total, 1);
    assert_int_equal(stats(f).publish_total, 2);
}

/* Sends what the socket takes of buf[*off, len) without blocking; pumps
 * the loop once. Returns whether anything went. */
static int send_some(fixture_t *f, int fd, const char *buf, size_t len, size_t *off)
{
    ssize_t w = *off < len ? send(fd, buf + *off, len - *off, MSG_NOSIGNAL) : 0;
    if (w > 0)
        *off += (size_t)w;
    pump(f);
    return w > 0;
}

/* A publisher with 16384 replies held is not read until the journal decides
 * some: it cannot make tickd hold more than that, and one read, for it. */
static void
test_a_publisher_with_16384_held_replies_is_not_read_until_they_are_decided(void **state)
{
    fixture_t *f = *state;
    start(f);
    int pub = connect_client(f);
    f->publish_hold = 1;
    enum { N = 24000 };
    static const char cmd[] = "PUBLISH trade.A T,1,A,1,1\r\n";
    size_t len = (sizeof cmd - 1) * N, off = 0;
    char *buf = malloc(len);
    for (size_t i = 0; i < N; i++)
        memcpy(buf + i * (sizeof cmd - 1), cmd, sizeof cmd - 1);
    int64_t quiet_since = mono_ns();
    while (off < len && mono_ns() - quiet_since < 500000000)
        if (send_some(f, pub, buf, len, &off))
            quiet_since = mono_ns();
    for (int i = 0; i < 50; i++)
        pump(f);
    uint64_t read = stats(f).publish_total;
    assert_true(read >= 16384);
    assert_true(read <= 16384 + 65536 / (sizeof cmd - 1)); /* the read that reached 16384 */
    assert_true(read < N);
    char c;
    assert_int_equal(recv(pub, &c, 1, 0), -1); /* all held */
    pubsub_durable(f->ps, 1, 0);
    f->publish_hold = 0;
    while (off < len) {
        assert_true(mono_ns() - quiet_since < GUARD_NS);
        send_some(f, pub, buf, len, &off);
    }
    char *want = malloc(4 * N + 1);
    for (size_t i = 0; i < N; i++)
        memcpy(want + 4 * i, ":0\r\n", 4);
    expect_n(f, pub, want, 4 * N);
    assert_int_equal(stats(f).publish_total, N);
    free(want);
    free(buf);
}

/* A PUBLISH the journal has no room for waits, and so does everything the
 * publisher sent after it: nothing is answered until pubsub_journal_ready(),
 * then all of it in order. The publisher is slowed, not refused. */
static void test_a_publish_the_journal_has_no_room_for_waits_until_it_has(void **state)
{
    fixture_t *f = *state;
    start(f);
    int pub = connect_client(f);
    roundtrip(f, pub, "PUBLISH trade.AAPL T,1,AAPL,1,1,B\r\n", ":0\r\n");
    f->journal_full = 1;
    send_str(pub, "PUBLISH trade.AAPL T,2,AAPL,1,1,B\r\nPING\r\n");
    char c;
    for (int i = 0; i < 50; i++)
        pump(f);
    assert_int_equal(recv(pub, &c, 1, 0), -1);
    send_str(pub, "PUBLISH trade.AAPL T,3,AAPL,1,1,B\r\n"); /* not read meanwhile */
    for (int i = 0; i < 50; i++)
        pump(f);
    assert_int_equal(recv(pub, &c, 1, 0), -1);
    assert_int_equal(stats(f).publish_total, 1);
    pubsub_journal_ready(f->ps); /* still full: they wait on */
    for (int i = 0; i < 50; i++)
        pump(f);
    assert_int_equal(recv(pub, &c, 1, 0), -1);
    f->journal_full = 0;
    pubsub_journal_ready(f->ps);
    expect(f, pub, ":0\r\n+PONG\r\n:0\r\n");
    assert_int_equal(stats(f).publish_total, 3);
    assert_int_equal(stats(f).publish_journal_errors_total, 0);
}

/* A PUBLISH that waits 10 s for room gets the journal's error, and the
 * commands after it run then: the wait is bounded. */
static void test_a_publish_that_waits_10_seconds_for_room_gets_the_journal_error(void **state)
{
    fixture_t *f = *state;
    start(f);
    int pub = connect_client(f);
    f->journal_full = 1;
    send_str(pub, "PUBLISH trade.AAPL T,1,AAPL,1,1,B\r\nPING\r\n");
    int64_t sent = mono_ns();
    expect(f, pub, "-ERR journal: buffers full; the tick was not made durable\r\n+PONG\r\n");
    int64_t waited = mono_ns() - sent;
    assert_true(waited >= 10ll * 1000000000 - 100000000);
    assert_true(waited < 13ll * 1000000000);
    assert_int_equal(stats(f).publish_journal_errors_total, 1);
    f->journal_full = 0;
    roundtrip(f, pub, "PUBLISH trade.AAPL T,2,AAPL,1,1,B\r\n", ":0\r\n");
}

/* A reply the journal leaves undecided for 10 s becomes a journal error: a
 * publisher never waits forever. */
static void test_a_reply_held_for_10_seconds_becomes_a_journal_error(void **state)
{
    fixture_t *f = *state;
    start(f);
    int pub = connect_client(f);
    f->publish_hold = 3;
    send_str(pub, "PUBLISH trade.AAPL T,1,AAPL,1,1,B\r\nPING\r\n");
    int64_t sent = mono_ns();
    expect(f, pub,
           "-ERR journal: not synced within 10 s; the tick was not made durable\r\n+PONG\r\n");
    int64_t waited = mono_ns() - sent;
    assert_true(waited >= 10ll * 1000000000 - 100000000);
    assert_true(waited < 13ll * 1000000000);
    pubsub_durable(f->ps, 3, 0); /* too late: decided already */
    f->publish_hold = 0;
    roundtrip(f, pub, "PING\r\n", "+PONG\r\n");
}

static void test_snapshot_on_subscribe_sends_the_last_ticks(void **state)
{
    fixture_t *f = *state;
    start(f);
    trade(f, "AAPL", 1000000, 1, 'S', 1);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    quote(f, "AAPL", 1012400, 200, 1012600, 300, 7);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.AAPL trade.NONE\r\n");
    expect_subscribed(f, c, "trade.AAPL", 1);
    expect(f, c,
           frame("trade.AAPL", "{\"sym\":\"AAPL\",\"kind\":\"trade\",\"price\":\"101.2500\","
                               "\"size\":100,\"side\":\"B\",\"ts\":123456789,\"seq\":2}"));
    expect_subscribed(f, c, "trade.NONE", 2);
    send_str(c, "PSUBSCRIBE quote.AA*\r\n");
    expect_psubscribed(f, c, "quote.AA*", 3);
    expect(f, c,
           pframe("quote.AA*", "quote.AAPL",
                  "{\"sym\":\"AAPL\",\"kind\":\"quote\",\"bid\":\"101.2400\",\"bid_size\":200,"
                  "\"ask\":\"101.2600\",\"ask_size\":300,\"ts\":7,\"seq\":3}"));
    /* Subscribing again to the same channel sends no second snapshot. */
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 3);
    expect_nothing_before_pong(f, c, 1);
}

static void test_snapshot_can_be_turned_off(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.snapshot = 0;
    start(f);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 1);
    expect_nothing_before_pong(f, c, 1);
}

/* Reads what is there; returns the bytes added to *buf. */
static size_t drain_into(int fd, char **buf, size_t *len, size_t *cap)
{
    size_t added = 0;
    for (;;) {
        if (*cap - *len < 65536) {
            *cap = *cap * 2 + 65536;
            *buf = realloc(*buf, *cap);
        }
        ssize_t r = recv(fd, *buf + *len, *cap - *len, 0);
        if (r <= 0)
            return added;
        *len += (size_t)r;
        added += (size_t)r;
    }
}

/* Every complete trade frame in buf[0..len), in order, has seq first,
 * first + 1, ...; returns how many (a frame cut short at the end is not
 * counted). */
static uint64_t count_in_order_from(const char *buf, size_t len, uint64_t first)
{
    uint64_t next = first;
    if (buf == NULL)
        return 0;
    const char *p = buf, *end = buf + len;
    while ((p = memmem(p, (size_t)(end - p), "\"seq\":", 6)) != NULL) {
        uint64_t seq = 0;
        for (p += 6; p < end && *p >= '0' && *p <= '9'; p++)
            seq = seq * 10 + (uint64_t)(*p - '0');
        if (p == end || *p != '}')
            break;
        assert_int_equal(seq, next);
        next++;
    }
    return next - first;
}

static uint64_t count_in_order(const char *buf, size_t len)
{
    return count_in_order_from(buf, len, 1);
}

/* Publishes AAPL trades 100 at a time, flushing and reading fd into *buf,
 * until a slow consumer has been cut. Returns the trades published. */
static uint64_t publish_until_a_cut(fixture_t *f, int fd, char **buf, size_t *len, size_t *cap,
                                    int64_t deadline)
{
    uint64_t sent = 0;
    while (stats(f).slow_consumer_disconnects_total == 0) {
        assert_true(mono_ns() < deadline);
        for (int i = 0; i < 100; i++, sent++)
            trade(f, "AAPL", 1012500, 100, 'B', (int64_t)sent);
        pubsub_flush(f->ps);
        pump(f);
        drain_into(fd, buf, len, cap);
    }
    return sent;
}

/* Reads fd into *buf until it holds want trades in order from seq first. */
static void read_until_in_order(fixture_t *f, int fd, char **buf, size_t *len, size_t *cap,
                                uint64_t first, uint64_t want, int64_t deadline)
{
    while (count_in_order_from(*buf, *len, first) < want) {
        assert_true(mono_ns() < deadline);
        pump(f);
        drain_into(fd, buf, len, cap);
    }
}

static void test_slow_consumer_is_cut_at_the_hard_limit_while_others_get_every_tick(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.hard_limit = 256 * 1024;
    f->cfg->pubsub.soft_limit = 0;
    start(f);
    int slow = connect_client_rcvbuf(f, 4096);
    int fast = connect_client(f);
    send_str(slow, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, slow, "trade.AAPL", 1);
    send_str(fast, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, fast, "trade.AAPL", 1);

    char *got = NULL;
    size_t len = 0, cap = 0;
    int64_t deadline = mono_ns() + GUARD_NS;
    uint64_t sent = publish_until_a_cut(f, fast, &got, &len, &cap, deadline);
    assert_int_equal(stats(f).clients, 1);
    for (int i = 0; i < 100; i++, sent++)
        trade(f, "AAPL", 1012500, 100, 'B', (int64_t)sent);
    pubsub_flush(f->ps);
    read_until_in_order(f, fast, &got, &len, &cap, 1, sent, deadline);
    assert_int_equal(count_in_order(got, len), sent);
    free(got);

    /* The slow one gets what the kernel held, then the end. */
    char sink_buf[65536];
    for (;;) {
        ssize_t r = recv(slow, sink_buf, sizeof sink_buf, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            break;
        assert_true(mono_ns() < deadline);
        pump(f);
    }
    assert_int_equal(stats(f).slow_consumer_disconnects_total, 1);
    assert_int_equal(stats(f).subscriptions, 1);
}

static void test_a_batch_bigger_than_the_hard_limit_does_not_cut_a_reader(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.hard_limit = 64 * 1024;
    start(f);
    /* A receive window that takes the whole batch at once, as a reading
     * client's grows to on loopback. */
    int c = connect_client_rcvbuf(f, 1 << 20);
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 1);
    uint64_t sent = 0;
    for (; sent < 2000; sent++) /* some 300 KB queued before the flush */
        trade(f, "AAPL", 1012500, 100, 'B', (int64_t)sent);
    assert_true(stats(f).output_buffer_bytes > 64 * 1024);
    pubsub_flush(f->ps);
    char *got = NULL;
    size_t len = 0, cap = 0;
    read_until_in_order(f, c, &got, &len, &cap, 1, sent, mono_ns() + GUARD_NS);
    free(got);
    assert_int_equal(stats(f).slow_consumer_disconnects_total, 0);
}

/* Queued ticks share the stream's chunks: a subscriber of a quiet channel
 * that stops reading keeps every chunk since its oldest queued tick alive,
 * and is cut once that is more than the hard limit, while the busy
 * channel's reader gets every tick. */
static void test_a_stalled_quiet_subscriber_is_cut_once_it_pins_the_hard_limit(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.hard_limit = 256 * 1024;
    f->cfg->pubsub.soft_limit = 0;
    start(f);
    int stalled = connect_client_rcvbuf(f, 4096);
    int fast = connect_client(f);
    send_str(stalled, "SUBSCRIBE trade.QUIET\r\n");
    expect_subscribed(f, stalled, "trade.QUIET", 1);
    send_str(fast, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, fast, "trade.AAPL", 1);
    /* Enough quiet ticks that its socket is full and tickd holds some, far
     * less than the hard limit. */
    int64_t deadline = mono_ns() + GUARD_NS;
    uint64_t quiet = 0; /* the market numbers every tick: AAPL's come after */
    while (stats(f).output_buffer_bytes == 0) {
        assert_true(mono_ns() < deadline);
        for (int i = 0; i < 50; i++, quiet++)
            trade(f, "QUIET", 10000, 1, 'B', i);
        pump(f);
    }
    assert_true(stats(f).output_buffer_bytes < 64 * 1024);

    char *got = NULL;
    size_t len = 0, cap = 0;
    uint64_t sent = publish_until_a_cut(f, fast, &got, &len, &cap, deadline);
    assert_true(sent * 150 > 256 * 1024); /* not before the limit's worth went by */
    read_until_in_order(f, fast, &got, &len, &cap, quiet + 1, sent, deadline);
    free(got);
    assert_int_equal(stats(f).clients, 1);
    assert_int_equal(stats(f).output_buffer_bytes, 0);
}

static void test_slow_consumer_is_cut_after_staying_over_the_soft_limit(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.hard_limit = 0;
    f->cfg->pubsub.soft_limit = 64 * 1024;
    f->cfg->pubsub.soft_ns = 1000000; /* 1 ms */
    start(f);
    int slow = connect_client_rcvbuf(f, 4096);
    send_str(slow, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, slow, "trade.AAPL", 1);
    int64_t deadline = mono_ns() + GUARD_NS;
    while (stats(f).slow_consumer_disconnects_total == 0) {
        assert_true(mono_ns() < deadline);
        for (int i = 0; i < 100; i++)
            trade(f, "AAPL", 1012500, 100, 'B', i);
        pump(f);
    }
    assert_int_equal(stats(f).clients, 0);
}

static void test_malformed_resp_gets_the_error_and_a_close(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "*1\r\nx\r\n", "-ERR Protocol error: expected '$', got 'x'\r\n");
    expect_closed(f, c);
    int d = connect_client(f);
    roundtrip(f, d, "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    expect_closed(f, d);
    assert_int_equal(stats(f).protocol_errors_total, 2);
}

static void test_request_over_max_request_gets_the_error_and_a_close(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.max_request = 1024;
    start(f);
    int c = connect_client(f);
    char line[2000];
    memset(line, 'a', sizeof line);
    send_bytes(c, line, sizeof line);
    expect(f, c, "-ERR Protocol error: too big inline request\r\n");
    expect_closed(f, c);
    int d = connect_client(f);
    roundtrip(f, d, "*1\r\n$2000\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    expect_closed(f, d);
}

static void test_max_clients_refuses_the_extra_connection(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.max_clients = 2;
    start(f);
    int a = connect_client(f), b = connect_client(f);
    int c = connect_client(f);
    expect(f, c, "-ERR max number of clients reached\r\n");
    expect_closed(f, c);
    assert_int_equal(stats(f).rejected_total, 1);
    assert_int_equal(stats(f).clients, 2);
    roundtrip(f, a, "PING\r\n", "+PONG\r\n");
    roundtrip(f, b, "PING\r\n", "+PONG\r\n");
}

static void test_client_closing_mid_frame_is_cleaned_up(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.A\r\n");
    expect_subscribed(f, c, "trade.A", 1);
    send_str(c, "*2\r\n$9\r\nSUBSC");
    pump(f);
    close(c);
    f->fds[f->nfds - 1] = -1;
    int64_t deadline = mono_ns() + GUARD_NS;
    while (stats(f).clients != 0) {
        assert_true(mono_ns() < deadline);
        pump(f);
    }
    assert_int_equal(stats(f).subscriptions, 0);
    trade(f, "A", 1, 1, 'B', 1); /* nobody left to send to */
    pubsub_flush(f->ps);
}

static void test_quit_replies_ok_and_closes(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE a\r\nQUIT\r\nPING\r\n");
    expect_subscribed(f, c, "a", 1);
    expect(f, c, "+OK\r\n");
    expect_closed(f, c);
    assert_int_equal(stats(f).subscriptions, 0);
}

static void test_idle_clients_are_closed_but_subscribers_are_not(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.idle_timeout_ns = 300000000; /* 300 ms */
    start(f);
    int idle = connect_client(f), sub = connect_client(f);
    send_str(sub, "SUBSCRIBE trade.A\r\n");
    expect_subscribed(f, sub, "trade.A", 1);
    expect_closed(f, idle);
    assert_int_equal(stats(f).clients, 1);
    trade(f, "A", 10000, 1, 'B', 1);
    pubsub_flush(f->ps);
    expect(f, sub,
           frame("trade.A", "{\"sym\":\"A\",\"kind\":\"trade\",\"price\":\"1.0000\",\"size\":1,"
                            "\"side\":\"B\",\"ts\":1,\"seq\":1}"));
}

static void test_latency_is_observed_once_per_tick_written_to_every_subscriber(void **state)
{
    fixture_t *f = *state;
    start(f);
    int a = connect_client(f), b = connect_client(f);
    send_str(a, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, a, "trade.AAPL", 1);
    send_str(b, "PSUBSCRIBE trade.*\r\n");
    expect_psubscribed(f, b, "trade.*", 1);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    assert_int_equal(pubsub_latency(f->ps)->count, 0);
    pubsub_flush(f->ps);
    pump(f);
    assert_int_equal(pubsub_latency(f->ps)->count, 2);
    assert_true(pubsub_latency(f->ps)->sum >= 0);
    /* A tick nobody receives is not observed. */
    quote(f, "MSFT", 1, 1, 2, 2, 1);
    pubsub_flush(f->ps);
    assert_int_equal(pubsub_latency(f->ps)->count, 2);
}

/* One round: n trades, a flush, and every subscriber reads all of it (up
 * to the PONG of a PING sent after the flush; resp3[i] says fds[i] is a
 * RESP3 subscriber, whose PONG is +PONG; resp3 NULL: none is). */
static void fan_out_round(fixture_t *f, const int *fds, const int *resp3, size_t nfds, int n,
                          uint64_t *seq)
{
    for (int i = 0; i < n; i++)
        trade(f, "AAPL", 1012500, 100, 'B', (int64_t)++ * seq);
    pubsub_flush(f->ps);
    for (size_t i = 0; i < nfds; i++) {
        const char *pong =
            resp3 != NULL && resp3[i] ? "+PONG\r\n" : "*2\r\n$4\r\npong\r\n$0\r\n\r\n";
        size_t plen = strlen(pong);
        char *got = NULL;
        size_t len = 0, cap = 0;
        int64_t deadline = mono_ns() + GUARD_NS;
        send_str(fds[i], "PING\r\n");
        while (len < plen || memcmp(got + len - plen, pong, plen) != 0) {
            assert_true(mono_ns() < deadline);
            pump(f);
            drain_into(fds[i], &got, &len, &cap);
        }
        free(got);
    }
}

static void test_steady_fan_out_takes_nothing_from_the_system_allocator(void **state)
{
    fixture_t *f = *state;
    start(f);
    int fds[3] = {connect_client(f), connect_client(f), connect_client(f)};
    send_str(fds[0], "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, fds[0], "trade.AAPL", 1);
    send_str(fds[1], "PSUBSCRIBE trade.*\r\n");
    expect_psubscribed(f, fds[1], "trade.*", 1);
    send_str(fds[2], "SUBSCRIBE trade.AAPL\r\nPSUBSCRIBE *\r\n");
    expect_subscribed(f, fds[2], "trade.AAPL", 1);
    expect_psubscribed(f, fds[2], "*", 2);
    uint64_t seq = 0;
    /* Warm-up: rings and caches reach their size, and the fan-out stream
     * its working set of chunks (some 45 KB a round: a few chunks fill). */
    for (int round = 0; round < 5; round++)
        fan_out_round(f, fds, NULL, 3, 100, &seq);
    heap_stats_t before, after;
    heap_get_stats(f->heap, &before);
    for (int round = 0; round < 50; round++)
        fan_out_round(f, fds, NULL, 3, 100, &seq);
    heap_get_stats(f->heap, &after);
    assert_int_equal(after.large_allocs, before.large_allocs);
    assert_int_equal(stats(f).messages_sent_total, 4 * seq);
    assert_int_equal(pubsub_latency(f->ps)->count, seq);
}

/* RESP2 and RESP3 subscribers of the same channel and patterns: each
 * protocol's frames follow on in a stream of their own, so every
 * subscriber still takes one queue entry a flush, and the steady state
 * takes nothing from the system allocator either. */
static void
test_steady_mixed_resp2_and_resp3_fan_out_takes_nothing_from_the_system_allocator(void **state)
{
    fixture_t *f = *state;
    start(f);
    int fds[4] = {connect_client(f), connect_client(f), connect_client(f), connect_client(f)};
    const int resp3[4] = {0, 1, 0, 1};
    for (int i = 0; i < 4; i++) {
        if (resp3[i])
            roundtrip(f, fds[i], "HELLO 3\r\n", hello_reply(3, i + 1));
        send_str(fds[i], "SUBSCRIBE trade.AAPL\r\n");
        expect_sub_reply(f, fds[i], resp3[i] ? RESP3 : RESP2, "subscribe", "trade.AAPL", 1);
    }
    send_str(fds[2], "PSUBSCRIBE trade.*\r\n");
    expect_psubscribed(f, fds[2], "trade.*", 2);
    send_str(fds[3], "PSUBSCRIBE trade.*\r\n");
    expect_sub_reply(f, fds[3], RESP3, "psubscribe", "trade.*", 2);
    uint64_t seq = 0;
    for (int round = 0; round < 5; round++)
        fan_out_round(f, fds, resp3, 4, 100, &seq);
    heap_stats_t before, after;
    heap_get_stats(f->heap, &before);
    for (int round = 0; round < 50; round++)
        fan_out_round(f, fds, resp3, 4, 100, &seq);
    heap_get_stats(f->heap, &after);
    assert_int_equal(after.large_allocs, before.large_allocs);
    assert_int_equal(stats(f).messages_sent_total, 6 * seq);
    assert_int_equal(pubsub_latency(f->ps)->count, seq);
}

static void test_reconfigure_rebinds_and_keeps_subscribers(void **state)
{
    fixture_t *f = *state;
    start(f);
    int sub = connect_client(f);
    send_str(sub, "SUBSCRIBE trade.A\r\n");
    expect_subscribed(f, sub, "trade.A", 1);
    int old_port = f->port;

    config_t *cfg = calloc(1, sizeof *cfg);
    *cfg = *f->cfg;
    snprintf(cfg->pubsub.listen, sizeof cfg->pubsub.listen, "localhost:0");
    cfg->pubsub.payload = 1;
    snprintf(cfg->pubsub.password, sizeof cfg->pubsub.password, "pw");
    char err[CONFIG_ERR_LEN];
    assert_int_equal(pubsub_reconfigure(f->ps, cfg, err, sizeof err), 0);
    f->port = pubsub_port(f->ps);
    assert_true(f->port > 0 && f->port != old_port);

    trade(f, "A", 10000, 1, 'B', 1);
    pubsub_flush(f->ps);
    expect(f, sub, frame("trade.A", "T,1,A,1.0000,1,B"));
    roundtrip(f, sub, "PING\r\n", "*2\r\n$4\r\npong\r\n$0\r\n\r\n"); /* still authenticated */
    int fresh = connect_client(f);
    roundtrip(f, fresh, "PING\r\n", "-NOAUTH Authentication required.\r\n");

    snprintf(cfg->pubsub.listen, sizeof cfg->pubsub.listen, "999.1.1.1:0");
    assert_int_equal(pubsub_reconfigure(f->ps, cfg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "pubsub.listen"));
    assert_int_equal(pubsub_port(f->ps), f->port);
    free(cfg);
}

static void test_start_reports_a_bad_listen_address(void **state)
{
    fixture_t *f = *state;
    char err[CONFIG_ERR_LEN];
    snprintf(f->cfg->pubsub.listen, sizeof f->cfg->pubsub.listen, "nowhere");
    assert_int_equal(
        pubsub_start(&f->loop, f->heap, f->market, f->cfg, on_publish, f, &f->ps, err, sizeof err),
        -EINVAL);
    assert_null(f->ps);
    assert_non_null(strstr(err, "pubsub.listen"));

    /* A port in use. */
    snprintf(f->cfg->pubsub.listen, sizeof f->cfg->pubsub.listen, "127.0.0.1:0");
    start(f);
    pubsub_t *second = NULL;
    snprintf(f->cfg->pubsub.listen, sizeof f->cfg->pubsub.listen, "127.0.0.1:%d", f->port);
    assert_int_equal(
        pubsub_start(&f->loop, f->heap, f->market, f->cfg, on_publish, f, &second, err, sizeof err),
        -EADDRINUSE);
    assert_null(second);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* lets the failed listener close */
}

static void test_stop_drains_queued_output_then_closes(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 1);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    pubsub_stop(f->ps, 5000000000ull, on_stopped, f);
    expect(f, c, frame("trade.AAPL", AAPL_TRADE_JSON));
    expect_closed(f, c);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->stopped);
    assert_int_equal(pubsub_port(f->ps), -EBADF);
    pubsub_free(f->ps);
    f->ps = NULL;
}

static void test_stop_closes_clients_that_do_not_drain_in_time(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.hard_limit = 0;
    f->cfg->pubsub.soft_limit = 0;
    start(f);
    int c = connect_client_rcvbuf(f, 4096);
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 1);
    for (int i = 0; i < 100000; i++)
        trade(f, "AAPL", 1012500, 100, 'B', i);
    pubsub_flush(f->ps);
    assert_true(stats(f).output_buffer_bytes > 0);
    pubsub_stop(f->ps, 1000000, on_stopped, f); /* 1 ms */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->stopped);
    assert_int_equal(stats(f).output_buffer_bytes, 0);
    pubsub_free(f->ps);
    f->ps = NULL;
}

/* ---- what one request or a pattern churn may cost ---- */

/* A request of pattern snapshots is held to the hard limit while it is
 * built: a client that never reads is cut, and tickd never held much more
 * than the limit for it, however many patterns the request named. */
static void test_snapshots_of_a_request_stop_at_the_hard_limit(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.hard_limit = 256u << 10;
    start(f);
    char sym[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(sym, sizeof sym, "S%d", i);
        trade(f, sym, 1000000 + i, 100, 'B', i + 1);
        quote(f, sym, 999900, 100, 1000100, 100, i + 1);
    }
    heap_stats_t before;
    heap_get_stats(f->heap, &before);

    /* 400 patterns that each match all 4,000 channels: 1.6 M frames, some
     * 250 MB of snapshots had they all been built. */
    size_t cap = 400 * 420, len = 0;
    char *req = malloc(cap);
    len += (size_t)snprintf(req, cap, "PSUBSCRIBE");
    for (int i = 1; i <= 400; i++) {
        req[len++] = ' ';
        for (int k = 0; k < i % 200 + 1; k++)
            req[len++] = '*';
        req[len++] = i > 200 ? '?' : '*';
        req[len++] = '*';
    }
    memcpy(req + len, "\r\n", 2);
    len += 2;
    int c = connect_client_rcvbuf(f, 4096);
    send_bytes(c, req, len);
    free(req);
    int64_t deadline = mono_ns() + GUARD_NS;
    while (stats(f).slow_consumer_disconnects_total == 0) {
        assert_true(mono_ns() < deadline);
        pump(f);
    }
    heap_stats_t after;
    heap_get_stats(f->heap, &after);
    size_t grew = (after.mapped_bytes_peak - before.mapped_bytes_peak) +
                  (after.large_bytes_peak - before.large_bytes_peak);
    assert_true(grew < (size_t)8 << 20);
    assert_int_equal(stats(f).subscriptions, 0);
}

/* A pattern snapshot of a big market is sent in steps, as its client takes
 * it: another client is answered before it is done, and it arrives whole,
 * each symbol once. */
static void test_a_big_pattern_snapshot_is_sent_in_steps_as_the_client_reads(void **state)
{
    fixture_t *f = *state;
    start(f);
    char sym[16];
    const int nsym = 60000;
    for (int i = 0; i < nsym; i++) {
        snprintf(sym, sizeof sym, "S%d", i);
        trade(f, sym, 1000000, 100, 'B', i + 1);
    }
    int a = connect_client_rcvbuf(f, 4096);
    int b = connect_client(f);
    send_str(a, "PSUBSCRIBE trade.*\r\n");
    roundtrip(f, b, "PING\r\n", "+PONG\r\n");

    size_t len = 0, cap = 0, frames = 0, pos = 0;
    char *buf = NULL;
    int64_t deadline = mono_ns() + GUARD_NS;
    /* When B had its answer, tickd held a part only of A's 9 MB. */
    assert_true(stats(f).output_buffer_bytes < (size_t)1 << 20);
    while (frames < (size_t)nsym) {
        assert_true(mono_ns() < deadline);
        pump(f);
        drain_into(a, &buf, &len, &cap);
        const char *p;
        while ((p = memmem(buf + pos, len - pos, "$8\r\npmessage\r\n", 14)) != NULL) {
            frames++;
            pos = (size_t)(p - buf) + 14;
        }
    }
    free(buf);
    assert_int_equal(frames, nsym);
    expect_nothing_before_pong(f, a, 1);
}

/* Sends cmd, then takes n bytes of replies without looking at them. */
static void send_and_take(fixture_t *f, int fd, const char *cmd, size_t cmdlen, size_t n)
{
    char *buf = malloc(n);
    send_bytes(fd, cmd, cmdlen);
    recv_n(f, fd, buf, n);
    free(buf);
}

/* The bytes of "*3 $<kind> $<name> :<count>". */
static size_t subscription_reply_len(const char *kind, const char *name, unsigned count)
{
    char buf[256];
    return (size_t)snprintf(buf, sizeof buf, "*3\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n:%u\r\n",
                            strlen(kind), kind, strlen(name), name, count);
}

/* Subscribes (or, with drop, unsubscribes) fd to patterns "<tag>.<i>.*"
 * for i in [from, to), n per request, taking the replies; held counts the
 * patterns fd holds before and after. After each request, when ticks is
 * set, every one of 50 symbols trades once: their last values, which live
 * on, are made among the patterns' blocks. */
static void patterns_cycle(fixture_t *f, int fd, const char *tag, unsigned from, unsigned to,
                           int drop, unsigned *held, int ticks)
{
    const char *kind = drop ? "punsubscribe" : "psubscribe";
    size_t cap = 64 * 1024;
    char *req = malloc(cap);
    char name[64];
    for (unsigned i = from; i < to;) {
        size_t len = (size_t)snprintf(req, cap, "%s", kind), want = 0;
        for (unsigned k = 0; k < 1000 && i < to; k++, i++) {
            snprintf(name, sizeof name, "%s.%u.*", tag, i);
            len += (size_t)snprintf(req + len, cap - len, " %s", name);
            *held = drop ? *held - 1 : *held + 1;
            want += subscription_reply_len(kind, name, *held);
        }
        len += (size_t)snprintf(req + len, cap - len, "\r\n");
        send_and_take(f, fd, req, len, want);
        for (int s = 0; ticks && s < 50; s++) {
            snprintf(name, sizeof name, "S%d", s);
            trade(f, name, 1000000, 1, 'B', i);
        }
    }
    free(req);
}

/* A channel's ticks reach its pattern subscribers the same way whatever
 * came and went: links are made and dropped with the patterns. */
static void test_pattern_links_follow_patterns_as_they_come_and_go(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.snapshot = 0;
    start(f);
    int c = connect_client(f);
    unsigned held = 0;
    patterns_cycle(f, c, "none", 0, 3000, 0, &held, 0);
    trade(f, "AAPL", 1000000, 1, 'B', 1); /* the channel topic, linked to nothing */
    send_str(c, "PSUBSCRIBE trade.AA* *.AAPL trade.[AB]APL\r\n");
    expect_psubscribed(f, c, "trade.AA*", 3001);
    expect_psubscribed(f, c, "*.AAPL", 3002);
    expect_psubscribed(f, c, "trade.[AB]APL", 3003);
    held += 3;
    patterns_cycle(f, c, "none", 0, 3000, 1, &held, 0);
    send_str(c, "PUNSUBSCRIBE *.AAPL\r\n");
    expect_punsubscribed(f, c, "*.AAPL", 2);
    trade(f, "AAPL", 1000000, 2, 'B', 2);
    trade(f, "MSFT", 1000000, 3, 'B', 3); /* a new channel: linked to its patterns, none */
    const char *p2 = "{\"sym\":\"AAPL\",\"kind\":\"trade\",\"price\":\"100.0000\",\"size\":2,"
                     "\"side\":\"B\",\"ts\":2,\"seq\":2}";
    char want[2048];
    snprintf(want, sizeof want, "%s", pframe("trade.AA*", "trade.AAPL", p2));
    snprintf(want + strlen(want), sizeof want - strlen(want), "%s",
             pframe("trade.[AB]APL", "trade.AAPL", p2));
    expect(f, c, want);
    expect_nothing_before_pong(f, c, 1);
    send_str(c, "PUNSUBSCRIBE\r\n");
    expect_punsubscribed(f, c, "trade.AA*", 1);
    expect_punsubscribed(f, c, "trade.[AB]APL", 0);
    trade(f, "AAPL", 1000000, 4, 'B', 4);
    roundtrip(f, c, "PING\r\n", "+PONG\r\n");
}

/* After 100,000 patterns came and went while ticks flowed, heap_trim()
 * leaves mapped no more than two arenas beyond what the live blocks need:
 * the ticks that outlive the patterns are not scattered among them. */
static void test_pattern_churn_leaves_no_mapped_memory_after_trim(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.snapshot = 0;
    start(f);
    int c = connect_client(f);
    unsigned held = 0;
    patterns_cycle(f, c, "churn", 0, 100000, 0, &held, 1);
    patterns_cycle(f, c, "churn", 0, 100000, 1, &held, 0);
    assert_int_equal(stats(f).subscriptions, 0);
    heap_trim(f->heap);
    heap_stats_t hs;
    heap_get_stats(f->heap, &hs);
    size_t live_arenas = (hs.used_bytes + hs.arena_size - 1) / hs.arena_size;
    if (hs.mapped_bytes > (live_arenas + 2) * hs.arena_size)
        fail_msg("%zu bytes mapped for %zu in use (arena %zu)", hs.mapped_bytes, hs.used_bytes,
                 hs.arena_size);
}

/* ---- GET, MGET, KEYS, SCAN (pubsub_query.c) ---- */

/* An ITCH add order (A) of ref for sym, at ts ns after midnight. */
static void itch_add(fixture_t *f, const char *sym, uint64_t ref, char side, uint32_t shares,
                     uint32_t price, uint64_t ts)
{
    itch_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = ITCH_ADD_ORDER;
    m.timestamp = ts;
    m.add.order_ref = ref;
    m.add.side = side;
    m.add.shares = shares;
    m.add.price = price;
    memset(m.add.stock, ' ', sizeof m.add.stock);
    memcpy(m.add.stock, sym, strlen(sym));
    assert_int_equal(market_itch(f->market, &m, now_ns()), 0);
}

/* ITCH X (shares > 0) or D (shares 0) of order ref at ts. */
static void itch_cancel(fixture_t *f, uint64_t ref, uint32_t shares, uint64_t ts)
{
    itch_msg_t m;
    memset(&m, 0, sizeof m);
    m.timestamp = ts;
    if (shares > 0) {
        m.type = ITCH_ORDER_CANCEL;
        m.cancel.order_ref = ref;
        m.cancel.shares = shares;
    } else {
        m.type = ITCH_ORDER_DELETE;
        m.del.order_ref = ref;
    }
    assert_int_equal(market_itch(f->market, &m, now_ns()), 0);
}

/* The bulk reply of text. */
static char *bulk(const char *text)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "$%zu\r\n%s\r\n", strlen(text), text);
    return buf;
}

#define AAPL_QUOTE_JSON                                                                            \
    "{\"sym\":\"AAPL\",\"kind\":\"quote\",\"bid\":\"101.0000\",\"bid_size\":200,\"ask\":"          \
    "\"101.5000\",\"ask_size\":300,\"ts\":123456790,\"seq\":2}"

static void test_get_answers_the_last_trade_and_quote_as_a_subscriber_reads_them(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "GET trade.AAPL\r\n", "$-1\r\n"); /* no symbol yet */
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    roundtrip(f, c, "GET quote.AAPL\r\n", "$-1\r\n"); /* a symbol with no quote */
    quote(f, "AAPL", 1010000, 200, 1015000, 300, 123456790);
    pubsub_flush(f->ps);
    roundtrip(f, c, "GET trade.AAPL\r\n", bulk(AAPL_TRADE_JSON));
    roundtrip(f, c, "get quote.AAPL\r\n", bulk(AAPL_QUOTE_JSON));
    trade(f, "AAPL", 1013000, 7, 'S', 123456791);
    roundtrip(f, c, "GET trade.AAPL\r\n",
              bulk("{\"sym\":\"AAPL\",\"kind\":\"trade\",\"price\":\"101.3000\",\"size\":7,"
                   "\"side\":\"S\",\"ts\":123456791,\"seq\":3}"));
    /* Keys of no known form, and symbols the market lacks, are missing. */
    roundtrip(f, c, "GET AAPL\r\n", "$-1\r\n");
    roundtrip(f, c, "GET trade.\r\n", "$-1\r\n");
    roundtrip(f, c, "GET trade.AAPL.X\r\n", "$-1\r\n");
    roundtrip(f, c, "GET book.NOPE\r\n", "$-1\r\n");
}

static void test_get_answers_csv_when_the_payload_is_csv(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.payload = PAYLOAD_CSV;
    start(f);
    int c = connect_client(f);
    trade(f, "IBM", 1500000, 10, 'S', 42);
    roundtrip(f, c, "GET trade.IBM\r\n", bulk("T,42,IBM,150.0000,10,S"));
}

static void test_get_in_resp3_answers_null_and_works_while_subscribed(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "HELLO 3\r\n", hello_reply(3, 1));
    roundtrip(f, c, "GET trade.AAPL\r\n", "_\r\n");
    send_str(c, "SUBSCRIBE trade.MSFT\r\n");
    expect_sub_reply(f, c, RESP3, "subscribe", "trade.MSFT", 1);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    roundtrip(f, c, "GET trade.AAPL\r\n", bulk(AAPL_TRADE_JSON));
    char want[512];
    snprintf(want, sizeof want, "*2\r\n$%zu\r\n%s\r\n_\r\n", strlen(AAPL_TRADE_JSON),
             AAPL_TRADE_JSON);
    roundtrip(f, c, "MGET trade.AAPL quote.AAPL\r\n", want);
}

static void test_query_commands_are_refused_in_resp2_subscribed_mode_as_redis_does(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.MSFT\r\n");
    expect_subscribed(f, c, "trade.MSFT", 1);
    roundtrip(f, c, "GET trade.AAPL\r\n",
              "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
              "RESET are allowed in this context\r\n");
    roundtrip(f, c, "SCAN 0\r\n",
              "-ERR Can't execute 'scan': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
              "RESET are allowed in this context\r\n");
}

static void test_query_commands_answer_wrong_arity_in_redis_words(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "GET\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    roundtrip(f, c, "GET a b\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    roundtrip(f, c, "MGET\r\n", "-ERR wrong number of arguments for 'mget' command\r\n");
    roundtrip(f, c, "KEYS\r\n", "-ERR wrong number of arguments for 'keys' command\r\n");
    roundtrip(f, c, "KEYS a b\r\n", "-ERR wrong number of arguments for 'keys' command\r\n");
    roundtrip(f, c, "SCAN\r\n", "-ERR wrong number of arguments for 'scan' command\r\n");
}

static void test_mget_answers_each_key_in_order_with_nils_for_the_missing(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    trade(f, "AAPL", 1012500, 100, 'B', 123456789);
    quote(f, "AAPL", 1010000, 200, 1015000, 300, 123456790);
    char want[1024];
    snprintf(want, sizeof want, "*4\r\n$-1\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n$-1\r\n",
             strlen(AAPL_QUOTE_JSON), AAPL_QUOTE_JSON, strlen(AAPL_TRADE_JSON), AAPL_TRADE_JSON);
    roundtrip(f, c, "MGET nope quote.AAPL trade.AAPL book.AAPL:0\r\n", want);
}

static void test_keys_lists_the_channels_with_a_last_value_that_match(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "KEYS *\r\n", "*0\r\n");
    trade(f, "AAPL", 1012500, 100, 'B', 1);
    quote(f, "MSFT", 3000000, 1, 3000100, 1, 2);
    roundtrip(f, c, "KEYS trade.*\r\n", "*1\r\n$10\r\ntrade.AAPL\r\n");
    roundtrip(f, c, "KEYS quote.?SFT\r\n", "*1\r\n$10\r\nquote.MSFT\r\n");
    roundtrip(f, c, "KEYS book.*\r\n", "*0\r\n");
    send_str(c, "KEYS *\r\n");
    char reply[128];
    recv_n(f, c, reply, 4);
    assert_memory_equal(reply, "*2\r\n", 4);
    recv_n(f, c, reply, 2 * 17);
    reply[34] = '\0';
    assert_non_null(strstr(reply, "$10\r\ntrade.AAPL\r\n"));
    assert_non_null(strstr(reply, "$10\r\nquote.MSFT\r\n"));
}

/* Reads an array of bulk strings (a KEYS reply, the keys of a SCAN
 * reply), appending each to keys with a space after it. Returns how many
 * it read. */
static long read_keys(fixture_t *f, int fd, char *keys, size_t cap)
{
    char line[64];
    size_t n = 0;
    char ch = 0;
    while (ch != '\n') {
        recv_n(f, fd, &ch, 1);
        assert_true(n < sizeof line - 1);
        line[n++] = ch;
    }
    line[n] = '\0';
    assert_int_equal(line[0], '*');
    long count = strtol(line + 1, NULL, 10);
    for (long k = count; k > 0; k--) {
        char *key = read_text_reply(f, fd);
        assert_true(strlen(keys) + strlen(key) + 2 < cap);
        strcat(keys, key);
        strcat(keys, " ");
        free(key);
    }
    return count;
}

/* Reads a SCAN reply: the next cursor, and the keys appended to keys
 * (space separated). Returns the cursor. */
static unsigned long long read_scan_reply(fixture_t *f, int fd, char *keys, size_t cap)
{
    char line[4];
    recv_n(f, fd, line, 4);
    assert_memory_equal(line, "*2\r\n", 4);
    char *cursor = read_text_reply(f, fd);
    unsigned long long next = strtoull(cursor, NULL, 10);
    free(cursor);
    read_keys(f, fd, keys, cap);
    return next;
}

/* How many times key is one of the space-separated keys. */
static int key_count(const char *keys, const char *key)
{
    size_t n = strlen(key);
    int count = 0;
    for (const char *at = keys; (at = strstr(at, key)) != NULL; at += n)
        if ((at == keys || at[-1] == ' ') && at[n] == ' ')
            count++;
    return count;
}

/* The reply of KEYS pattern, its keys space separated into keys. Returns
 * how many. */
static long keys_of(fixture_t *f, int fd, const char *pattern, char *keys, size_t cap)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "KEYS %s\r\n", pattern);
    send_str(fd, cmd);
    keys[0] = '\0';
    return read_keys(f, fd, keys, cap);
}

/* Whether GET key answers a value (1) or nil (0), the value read. */
static int get_has_value(fixture_t *f, int fd, const char *key)
{
    char cmd[64], line[32];
    size_t n = 0;
    snprintf(cmd, sizeof cmd, "GET %s\r\n", key);
    send_str(fd, cmd);
    do {
        assert_true(n < sizeof line - 1);
        recv_n(f, fd, &line[n], 1);
    } while (line[n++] != '\n');
    line[n] = '\0';
    assert_int_equal(line[0], '$');
    if (strcmp(line, "$-1\r\n") == 0)
        return 0;
    size_t len = strtoul(line + 1, NULL, 10);
    char *body = malloc(len + 2);
    recv_n(f, fd, body, len + 2);
    free(body);
    return 1;
}

#define SEC 1000000000ll

static void test_keys_lists_a_bar_key_exactly_when_its_get_answers_a_bar(void **state)
{
    fixture_t *f = *state;
    start(f);
    start_bars(f);
    int c = connect_client(f);
    char keys[1024];
    trade(f, "AAPL", 1012500, 100, 'B', SEC / 10);
    trade(f, "MSFT", 3000000, 5, 'S', SEC / 5);
    quote(f, "IBM", 1500000, 1, 1500100, 1, SEC / 4);
    /* Open bars are no last value yet. */
    assert_int_equal(keys_of(f, c, "bar.*", keys, sizeof keys), 0);
    /* MSFT's trade at 1.5s moves the clock past AAPL's and its own first
     * 1s bar: those close; the 1m bars stay open. */
    trade(f, "MSFT", 3000100, 5, 'S', 3 * SEC / 2);
    assert_int_equal(keys_of(f, c, "bar.*", keys, sizeof keys), 2);
    assert_int_equal(key_count(keys, "bar.1s.AAPL"), 1);
    assert_int_equal(key_count(keys, "bar.1s.MSFT"), 1);
    /* A quote at 61s closes every bar still open; IBM never traded. */
    quote(f, "IBM", 1500000, 1, 1500100, 1, 61 * SEC);
    assert_int_equal(keys_of(f, c, "bar.*", keys, sizeof keys), 4);
    static const char *const candidates[] = {
        "bar.1s.AAPL", "bar.1s.MSFT", "bar.1s.IBM",  "bar.1s.NOPE", "bar.1m.AAPL",
        "bar.1m.MSFT", "bar.1m.IBM",  "bar.1m.NOPE", "bar.5m.AAPL", "bar.1m.",
    };
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        int has_value = get_has_value(f, c, candidates[i]);
        if (key_count(keys, candidates[i]) != has_value)
            fail_msg("%s: listed %d times, GET %s", candidates[i], key_count(keys, candidates[i]),
                     has_value ? "answers a bar" : "answers nil");
    }
    assert_int_equal(keys_of(f, c, "bar.1m.*", keys, sizeof keys), 2);
    assert_int_equal(key_count(keys, "bar.1m.AAPL") + key_count(keys, "bar.1m.MSFT"), 2);
    assert_int_equal(keys_of(f, c, "*AAPL", keys, sizeof keys), 3);
    assert_int_equal(key_count(keys, "trade.AAPL") + key_count(keys, "bar.1s.AAPL") +
                         key_count(keys, "bar.1m.AAPL"),
                     3);
    assert_int_equal(keys_of(f, c, "*", keys, sizeof keys), 7); /* + trade.MSFT, quote.IBM */
}

static void test_scan_visits_every_bar_key_once_and_a_call_stays_bounded(void **state)
{
    fixture_t *f = *state;
    start(f);
    start_bars(f);
    int c = connect_client(f);
    char sym[16], keys[16384] = "", cmd[128];
    for (int i = 0; i < 100; i++) {
        snprintf(sym, sizeof sym, "S%d", i);
        trade(f, sym, 10000 + i, 1, 'B', i + 1);
    }
    quote(f, "S0", 10000, 1, 10100, 1, 61 * SEC); /* closes every bar */
    /* All keys, COUNT 1: each call answers the keys of the one symbol that
     * reaches COUNT, at most its trade, quote and two bars. */
    unsigned long long cursor = 0;
    int calls = 0;
    do {
        snprintf(cmd, sizeof cmd, "SCAN %llu COUNT 1\r\n", cursor);
        send_str(c, cmd);
        size_t before = strlen(keys);
        cursor = read_scan_reply(f, c, keys, sizeof keys);
        int got = 0;
        for (size_t i = before; keys[i] != '\0'; i++)
            got += keys[i] == ' ';
        assert_true(got <= 4);
        assert_true(++calls < 100000);
    } while (cursor != 0);
    for (int i = 0; i < 100; i++) {
        static const char *const kinds[] = {"trade", "bar.1s", "bar.1m"};
        for (size_t k = 0; k < 3; k++) {
            char want[32];
            snprintf(want, sizeof want, "%s.S%d", kinds[k], i);
            if (key_count(keys, want) != 1)
                fail_msg("%s came %d times", want, key_count(keys, want));
        }
    }
    assert_int_equal(key_count(keys, "quote.S0"), 1);
    /* 301 keys and nothing else. */
    int total = 0;
    for (size_t i = 0; keys[i] != '\0'; i++)
        total += keys[i] == ' ';
    assert_int_equal(total, 301);
    /* Only bar keys, by MATCH, COUNT 7: each once, over several calls. */
    keys[0] = '\0';
    cursor = 0;
    calls = 0;
    do {
        snprintf(cmd, sizeof cmd, "SCAN %llu MATCH bar.* COUNT 7\r\n", cursor);
        send_str(c, cmd);
        cursor = read_scan_reply(f, c, keys, sizeof keys);
        assert_true(++calls < 100000);
    } while (cursor != 0);
    assert_true(calls > 1);
    total = 0;
    for (size_t i = 0; keys[i] != '\0'; i++)
        total += keys[i] == ' ';
    assert_int_equal(total, 200);
    for (int i = 0; i < 100; i++) {
        char want[32];
        snprintf(want, sizeof want, "bar.1s.S%d", i);
        assert_int_equal(key_count(keys, want), 1);
        snprintf(want, sizeof want, "bar.1m.S%d", i);
        assert_int_equal(key_count(keys, want), 1);
    }
}

static void test_scan_visits_every_key_once_over_a_full_iteration_and_ends_at_zero(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    char sym[16], keys[8192] = "", cmd[128];
    for (int i = 0; i < 100; i++) {
        snprintf(sym, sizeof sym, "S%d", i);
        trade(f, sym, 10000 + i, 1, 'B', i + 1);
    }
    unsigned long long cursor = 0;
    int calls = 0;
    do {
        snprintf(cmd, sizeof cmd, "SCAN %llu MATCH trade.S* COUNT 7\r\n", cursor);
        send_str(c, cmd);
        cursor = read_scan_reply(f, c, keys, sizeof keys);
        assert_true(++calls < 10000);
    } while (cursor != 0);
    assert_true(calls > 1); /* COUNT 7 cannot take 100 keys in one call */
    for (int i = 0; i < 100; i++) {
        char want[32];
        snprintf(want, sizeof want, "trade.S%d ", i);
        char *at = strstr(keys, want);
        while (at != NULL && at != keys && at[-1] != ' ')
            at = strstr(at + 1, want); /* "trade.S1 " inside "trade.S11 " is not it */
        assert_non_null(at);
    }
    /* 100 keys of 8 or 9 bytes and a space each: each came once. */
    assert_int_equal(strlen(keys), 10 * 9 + 90 * 10);
    keys[0] = '\0';
    send_str(c, "SCAN 0 COUNT 100000 TYPE hash\r\n");
    assert_int_equal(read_scan_reply(f, c, keys, sizeof keys), 0);
    assert_string_equal(keys, "");
}

static void test_scan_refuses_bad_cursors_and_options_in_redis_words(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    trade(f, "AAPL", 1012500, 100, 'B', 1);
    roundtrip(f, c, "SCAN x\r\n", "-ERR invalid cursor\r\n");
    roundtrip(f, c, "SCAN -1\r\n", "-ERR invalid cursor\r\n");
    roundtrip(f, c, "SCAN 99999999999999999999\r\n", "-ERR invalid cursor\r\n");
    roundtrip(f, c, "SCAN 0 COUNT\r\n", "-ERR syntax error\r\n");
    roundtrip(f, c, "SCAN 0 COUNT x\r\n", "-ERR value is not an integer or out of range\r\n");
    roundtrip(f, c, "SCAN 0 COUNT 0\r\n", "-ERR syntax error\r\n");
    roundtrip(f, c, "SCAN 0 FOO bar\r\n", "-ERR syntax error\r\n");
    /* A cursor of this table's generation (the bits above 32 of one SCAN
     * hands out) but a slot past its end: the iteration is over, nothing
     * is read beyond the table. */
    char keys[64] = "", cmd[64];
    send_str(c, "SCAN 0 COUNT 1\r\n");
    unsigned long long next = read_scan_reply(f, c, keys, sizeof keys);
    assert_true(next != 0);
    snprintf(cmd, sizeof cmd, "SCAN %llu\r\n", (next & ~0xffffffffull) | 0xffffffffull);
    roundtrip(f, c, cmd, "*2\r\n$1\r\n0\r\n*0\r\n");
}

static void test_get_book_answers_the_top_levels_of_each_side_from_itch_orders(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    itch_add(f, "AAPL", 1, 'B', 100, 1000000, 1000);
    itch_add(f, "AAPL", 2, 'B', 50, 1000000, 2000);
    itch_add(f, "AAPL", 3, 'B', 10, 999900, 3000);
    itch_add(f, "AAPL", 4, 'S', 70, 1000500, 4000);
    itch_add(f, "AAPL", 5, 'S', 30, 1001000, 5000);
    itch_add(f, "AAPL", 6, 'B', 5, 990000, 6000); /* fourth best bid: quote unchanged */
    /* ts is the last change at the top: the ask at 4000 (5000 and 6000
     * added below the best). */
    const char *full = "{\"sym\":\"AAPL\",\"ts\":4000,\"bids\":["
                       "{\"price\":\"100.0000\",\"shares\":150,\"orders\":2},"
                       "{\"price\":\"99.9900\",\"shares\":10,\"orders\":1},"
                       "{\"price\":\"99.0000\",\"shares\":5,\"orders\":1}],\"asks\":["
                       "{\"price\":\"100.0500\",\"shares\":70,\"orders\":1},"
                       "{\"price\":\"100.1000\",\"shares\":30,\"orders\":1}]}";
    roundtrip(f, c, "GET book.AAPL\r\n", bulk(full));
    roundtrip(f, c, "GET book.AAPL:50\r\n", bulk(full));
    roundtrip(f, c, "GET book.AAPL:1\r\n",
              bulk("{\"sym\":\"AAPL\",\"ts\":4000,\"bids\":["
                   "{\"price\":\"100.0000\",\"shares\":150,\"orders\":2}],\"asks\":["
                   "{\"price\":\"100.0500\",\"shares\":70,\"orders\":1}]}"));
    trade(f, "IBM", 1500000, 10, 'S', 42); /* a symbol with no ITCH book */
    roundtrip(f, c, "GET book.IBM\r\n",
              bulk("{\"sym\":\"IBM\",\"ts\":42,\"bids\":[],\"asks\":[]}"));
}

/* GET keeps the book it rendered on the symbol and answers it again while
 * the book stands; every change since shows in the next GET: a level deeper
 * than the top (the book's version; ts stays), a trade (ts only), a
 * partial cancel and a delete at the top, a level that leaves, and the
 * depth asked. The kept copies are freed with the server (teardown checks
 * the heap is empty). */
static void test_get_book_after_a_change_shows_it_and_a_repeat_shows_the_same(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    itch_add(f, "AAPL", 1, 'B', 100, 1000000, 1000);
    itch_add(f, "AAPL", 2, 'S', 70, 1000500, 2000);
    const char *one = "{\"sym\":\"AAPL\",\"ts\":2000,\"bids\":["
                      "{\"price\":\"100.0000\",\"shares\":100,\"orders\":1}],\"asks\":["
                      "{\"price\":\"100.0500\",\"shares\":70,\"orders\":1}]}";
    roundtrip(f, c, "GET book.AAPL\r\n", bulk(one));
    char twice[1024];
    snprintf(twice, sizeof twice, "%s%s", bulk(one), bulk(one));
    roundtrip(f, c, "GET book.AAPL\r\nGET book.AAPL\r\n", twice);

    itch_add(f, "AAPL", 3, 'B', 10, 999900, 3000); /* below the best bid: no quote, ts stays */
    const char *two = "{\"sym\":\"AAPL\",\"ts\":2000,\"bids\":["
                      "{\"price\":\"100.0000\",\"shares\":100,\"orders\":1},"
                      "{\"price\":\"99.9900\",\"shares\":10,\"orders\":1}],\"asks\":["
                      "{\"price\":\"100.0500\",\"shares\":70,\"orders\":1}]}";
    roundtrip(f, c, "GET book.AAPL\r\n", bulk(two));

    trade(f, "AAPL", 1000500, 5, 'B', 4000); /* a PUBLISHed trade: the book stands, ts moves */
    const char *three = "{\"sym\":\"AAPL\",\"ts\":4000,\"bids\":["
                        "{\"price\":\"100.0000\",\"shares\":100,\"orders\":1},"
                        "{\"price\":\"99.9900\",\"shares\":10,\"orders\":1}],\"asks\":["
                        "{\"price\":\"100.0500\",\"shares\":70,\"orders\":1}]}";
    roundtrip(f, c, "GET book.AAPL\r\n", bulk(three));

    itch_cancel(f, 1, 40, 5000); /* 60 left at the best bid */
    itch_cancel(f, 2, 0, 6000);  /* the only ask leaves */
    const char *four = "{\"sym\":\"AAPL\",\"ts\":6000,\"bids\":["
                       "{\"price\":\"100.0000\",\"shares\":60,\"orders\":1},"
                       "{\"price\":\"99.9900\",\"shares\":10,\"orders\":1}],\"asks\":[]}";
    roundtrip(f, c, "GET book.AAPL\r\n", bulk(four));
    roundtrip(f, c, "GET book.AAPL:1\r\n",
              bulk("{\"sym\":\"AAPL\",\"ts\":6000,\"bids\":["
                   "{\"price\":\"100.0000\",\"shares\":60,\"orders\":1}],\"asks\":[]}"));
    roundtrip(f, c, "GET book.AAPL\r\n", bulk(four));
}

/* A new day (pubsub_set_market(), then the old market destroyed, as the
 * daemon rolls it) frees the books GET kept on the old day's symbols and the
 * channel topics cached there (teardown checks the heap is empty); the new
 * day's symbols start with nothing kept, and a tick on them still reaches
 * its subscriber. */
static void test_a_new_day_frees_what_the_last_days_symbols_kept(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.payload = 1;
    f->cfg->pubsub.snapshot = 0;
    start(f);
    int c = connect_client(f), s = connect_client(f);
    send_str(s, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, s, "trade.AAPL", 1);
    itch_add(f, "AAPL", 1, 'B', 100, 1000000, 1000);
    trade(f, "AAPL", 1000000, 5, 'S', 2000);
    pubsub_flush(f->ps);
    expect(f, s, frame("trade.AAPL", "T,2000,AAPL,100.0000,5,S"));
    send_str(c, "GET book.AAPL\r\n");
    free(read_text_reply(f, c));

    market_t *old = f->market;
    assert_int_equal(market_create(f->heap, 0, sink, f, &f->market), 0);
    pubsub_set_market(f->ps, f->market);
    market_destroy(old);
    roundtrip(f, c, "GET book.AAPL\r\n", "$-1\r\n");
    trade(f, "AAPL", 1000100, 6, 'B', 3000);
    pubsub_flush(f->ps);
    expect(f, s, frame("trade.AAPL", "T,3000,AAPL,100.0100,6,B"));
    roundtrip(f, c, "GET book.AAPL\r\n",
              bulk("{\"sym\":\"AAPL\",\"ts\":3000,\"bids\":[],\"asks\":[]}"));
}

static void test_get_book_depth_is_ten_by_default_and_reaches_a_thousand(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    for (uint32_t i = 0; i < 1200; i++)
        itch_add(f, "DEEP", i + 1, 'B', 1, 1000000 - i * 100, 1000 + i);
    send_str(c, "GET book.DEEP\r\n");
    char *text = read_text_reply(f, c);
    int n = 0;
    for (char *p = text; (p = strstr(p, "\"orders\"")) != NULL; p++)
        n++;
    assert_int_equal(n, 10);
    assert_non_null(strstr(text, "{\"price\":\"99.9100\",\"shares\":1,\"orders\":1}]"));
    free(text);
    send_str(c, "GET book.DEEP:1000\r\n");
    text = read_text_reply(f, c);
    n = 0;
    for (char *p = text; (p = strstr(p, "\"orders\"")) != NULL; p++)
        n++;
    assert_int_equal(n, 1000);
    assert_non_null(strstr(text, "{\"price\":\"90.0100\",\"shares\":1,\"orders\":1}]"));
    free(text);
    roundtrip(f, c, "PING\r\n", "+PONG\r\n"); /* the stream is still in step */
}

static void test_get_book_refuses_a_bad_depth_in_redis_words(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    itch_add(f, "AAPL", 1, 'B', 100, 1000000, 1000);
    roundtrip(f, c, "GET book.AAPL:x\r\n", "-ERR value is not an integer or out of range\r\n");
    roundtrip(f, c, "GET book.AAPL:\r\n", "-ERR value is not an integer or out of range\r\n");
    roundtrip(f, c, "GET book.AAPL:007\r\n", "-ERR value is not an integer or out of range\r\n");
    roundtrip(f, c, "GET book.AAPL:0\r\n",
              "-ERR book depth is out of range, must be between 1 and 1000\r\n");
    roundtrip(f, c, "GET book.AAPL:1001\r\n",
              "-ERR book depth is out of range, must be between 1 and 1000\r\n");
    roundtrip(f, c, "GET book.AAPL:-3\r\n",
              "-ERR book depth is out of range, must be between 1 and 1000\r\n");
}

/* ---- entitlements (pubsub_acl.c) ---- */

#define NOPERM_CHANNEL                                                                             \
    "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"
#define NOPERM_KEY                                                                                 \
    "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
#define WRONGPASS "-WRONGPASS invalid username-password pair or user is disabled.\r\n"

/* Appends patterns (NULL-terminated) to cfg's user text. */
static config_patterns_t user_patterns(config_t *cfg, const char *const *patterns)
{
    config_patterns_t ps = {cfg->pubsub.user_text_len, 0};
    for (; patterns != NULL && *patterns != NULL; patterns++, ps.n++) {
        size_t n = strlen(*patterns) + 1;
        memcpy(cfg->pubsub.user_text + cfg->pubsub.user_text_len, *patterns, n);
        cfg->pubsub.user_text_len += (uint32_t)n;
    }
    return ps;
}

/* A user of cfg, as the config loader makes one. */
static void add_user(config_t *cfg, const char *name, const char *password,
                     const char *const *subscribe, const char *const *publish)
{
    config_user_t *u = &cfg->pubsub.users[cfg->pubsub.nusers++];
    unsigned int n = 0;
    snprintf(u->name, sizeof u->name, "%s", name);
    assert_int_equal(
        EVP_Digest(password, strlen(password), u->password_sha256, &n, EVP_sha256(), NULL), 1);
    u->subscribe = user_patterns(cfg, subscribe);
    u->publish = user_patterns(cfg, publish);
}

/* alice may read trade.A* and trade.IBM and publish trade.A*; bob may read
 * every trade channel and publish nothing. */
static void add_alice_and_bob(config_t *cfg)
{
    add_user(cfg, "alice", "pw-alice", (const char *const[]){"trade.A*", "trade.IBM", NULL},
             (const char *const[]){"trade.A*", NULL});
    add_user(cfg, "bob", "pw-bob", (const char *const[]){"trade.*", NULL}, NULL);
}

static void
test_users_authenticate_as_redis_7_and_the_default_user_is_off_without_a_password(void **state)
{
    fixture_t *f = *state;
    add_alice_and_bob(f->cfg);
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "PING\r\n", "-NOAUTH Authentication required.\r\n");
    roundtrip(f, c, "AUTH pw-alice\r\n", WRONGPASS);     /* the default user is off */
    roundtrip(f, c, "AUTH alice pw-bob\r\n", WRONGPASS); /* another user's password */
    int d = connect_client(f);
    roundtrip(f, d, "AUTH nobody pw-alice\r\n", WRONGPASS); /* no such user */
    roundtrip(f, d, "AUTH default pw-alice\r\n", WRONGPASS);
    roundtrip(f, c, "AUTH alice pw-alice\r\n", "+OK\r\n");
    roundtrip(f, c, "PING\r\n", "+PONG\r\n");
    roundtrip(f, d, "HELLO 3 AUTH bob pw-bob\r\n", hello_reply(3, 2));
    roundtrip(f, d, "PING\r\n", "+PONG\r\n");
    /* RESET goes back to the default user, who is off. */
    roundtrip(f, d, "RESET\r\n", "+RESET\r\n");
    roundtrip(f, d, "PING\r\n", "-NOAUTH Authentication required.\r\n");
    assert_int_equal(stats(f).auth_failures_total, 4);
}

static void test_the_default_user_of_pubsub_password_keeps_every_right_beside_users(void **state)
{
    fixture_t *f = *state;
    add_alice_and_bob(f->cfg);
    snprintf(f->cfg->pubsub.password, sizeof f->cfg->pubsub.password, "pw-default");
    f->cfg->pubsub.payload = PAYLOAD_CSV;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "AUTH pw-default\r\n", "+OK\r\n");
    send_str(c, "SUBSCRIBE quote.MSFT\r\n");
    expect_subscribed(f, c, "quote.MSFT", 1);
    send_str(c, "PSUBSCRIBE *\r\n");
    expect_psubscribed(f, c, "*", 2);
}

static void test_subscribe_psubscribe_publish_and_get_outside_the_rights_answer_noperm(void **state)
{
    fixture_t *f = *state;
    add_alice_and_bob(f->cfg);
    f->cfg->pubsub.payload = PAYLOAD_CSV;
    start(f);
    trade(f, "MSFT", 10000, 1, 'B', 1);
    trade(f, "AAPL", 20000, 2, 'B', 2);
    int c = connect_client(f);
    roundtrip(f, c, "AUTH alice pw-alice\r\n", "+OK\r\n");
    roundtrip(f, c, "PUBLISH trade.MSFT T,3,MSFT,1.0000,1,B\r\n", NOPERM_CHANNEL);
    roundtrip(f, c, "PUBLISH trade.AAPL T,3,AAPL,1.0000,1,B\r\n", ":0\r\n");
    roundtrip(f, c, "GET trade.MSFT\r\n", NOPERM_KEY);
    roundtrip(f, c, "GET book.MSFT:5\r\n", NOPERM_KEY); /* read through quote.MSFT */
    roundtrip(f, c, "MGET trade.AAPL trade.MSFT\r\n", NOPERM_KEY);
    roundtrip(f, c, "GET trade.AAPL\r\n", bulk("T,3,AAPL,1.0000,1,B"));
    /* One forbidden channel refuses the whole command: nothing is
     * subscribed (PING answers unsubscribed). */
    roundtrip(f, c, "SUBSCRIBE trade.AAPL trade.MSFT\r\n", NOPERM_CHANNEL);
    roundtrip(f, c, "PSUBSCRIBE trade.*\r\n", NOPERM_CHANNEL);
    roundtrip(f, c, "PSUBSCRIBE trade.A\r\n", NOPERM_CHANNEL); /* not one of its patterns */
    roundtrip(f, c, "PING\r\n", "+PONG\r\n");
    assert_int_equal(stats(f).subscriptions, 0);
    /* A channel its pattern allows, and its own pattern, are fine. */
    send_str(c, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, c, "trade.AAPL", 1);
    expect(f, c, frame("trade.AAPL", "T,3,AAPL,1.0000,1,B")); /* its snapshot */
    send_str(c, "PSUBSCRIBE trade.A*\r\n");
    expect_psubscribed(f, c, "trade.A*", 2);
    expect(f, c, pframe("trade.A*", "trade.AAPL", "T,3,AAPL,1.0000,1,B"));
    roundtrip(f, c, "SUBSCRIBE trade.MSFT\r\n", NOPERM_CHANNEL);
    expect_nothing_before_pong(f, c, 1);
}

static void test_keys_and_scan_list_only_the_bar_keys_a_user_may_read(void **state)
{
    fixture_t *f = *state;
    add_user(f->cfg, "carol", "pw-carol", (const char *const[]){"bar.1m.A*", NULL}, NULL);
    add_user(f->cfg, "bob", "pw-bob", (const char *const[]){"trade.*", NULL}, NULL);
    start(f);
    start_bars(f);
    int c = connect_client(f), b = connect_client(f);
    roundtrip(f, c, "AUTH carol pw-carol\r\n", "+OK\r\n");
    roundtrip(f, b, "AUTH bob pw-bob\r\n", "+OK\r\n");
    trade(f, "AAPL", 10000, 1, 'B', SEC / 10);
    trade(f, "AMZN", 20000, 2, 'B', SEC / 5);
    trade(f, "MSFT", 30000, 3, 'B', SEC / 4);
    quote(f, "MSFT", 30000, 1, 30100, 1, 61 * SEC); /* closes every bar */
    char keys[1024];
    assert_int_equal(keys_of(f, c, "*", keys, sizeof keys), 2);
    assert_int_equal(key_count(keys, "bar.1m.AAPL"), 1);
    assert_int_equal(key_count(keys, "bar.1m.AMZN"), 1);
    keys[0] = '\0';
    send_str(c, "SCAN 0 COUNT 1000\r\n");
    assert_int_equal(read_scan_reply(f, c, keys, sizeof keys), 0);
    assert_int_equal(key_count(keys, "bar.1m.AAPL") + key_count(keys, "bar.1m.AMZN"), 2);
    assert_int_equal(strlen(keys), 2 * strlen("bar.1m.AAPL "));
    roundtrip(f, c, "SCAN 0 MATCH bar.1s.* COUNT 1000\r\n", "*2\r\n$1\r\n0\r\n*0\r\n");
    roundtrip(f, c, "GET bar.1s.AAPL\r\n", NOPERM_KEY); /* as KEYS left it out */
    assert_int_equal(get_has_value(f, c, "bar.1m.AAPL"), 1);
    /* bob reads the trade channels and no bar. */
    assert_int_equal(keys_of(f, b, "*", keys, sizeof keys), 3);
    assert_int_equal(keys_of(f, b, "bar.*", keys, sizeof keys), 0);
}

static void test_no_way_in_delivers_a_forbidden_channel_to_a_restricted_user(void **state)
{
    fixture_t *f = *state;
    add_alice_and_bob(f->cfg);
    f->cfg->pubsub.payload = PAYLOAD_CSV;
    start(f);
    int c = connect_client(f), b = connect_client(f);
    roundtrip(f, c, "AUTH alice pw-alice\r\n", "+OK\r\n");
    roundtrip(f, b, "AUTH bob pw-bob\r\n", "+OK\r\n");
    trade(f, "AMZN", 10000, 1, 'B', 1);
    trade(f, "MSFT", 10000, 2, 'B', 2);
    /* KEYS and SCAN list only what alice may read; bob reads them all. */
    roundtrip(f, c, "KEYS *\r\n", "*1\r\n$10\r\ntrade.AMZN\r\n");
    roundtrip(f, c, "KEYS trade.M*\r\n", "*0\r\n");
    roundtrip(f, c, "SCAN 0 COUNT 1000\r\n", "*2\r\n$1\r\n0\r\n*1\r\n$10\r\ntrade.AMZN\r\n");
    roundtrip(f, c, "SCAN 0 MATCH *MSFT COUNT 1000\r\n", "*2\r\n$1\r\n0\r\n*0\r\n");
    roundtrip(f, b, "KEYS trade.M*\r\n", "*1\r\n$10\r\ntrade.MSFT\r\n");
    /* trade.* would cover MSFT: refused. trade.A* and its snapshot carry
     * only what it allows, now and as ticks come. */
    roundtrip(f, c, "PSUBSCRIBE trade.*\r\n", NOPERM_CHANNEL);
    send_str(c, "PSUBSCRIBE trade.A*\r\n");
    expect_psubscribed(f, c, "trade.A*", 1);
    expect(f, c, pframe("trade.A*", "trade.AMZN", "T,1,AMZN,1.0000,1,B"));
    expect_nothing_before_pong(f, c, 1);
    trade(f, "MSFT", 10000, 3, 'B', 3);
    trade(f, "ATX", 10000, 4, 'B', 4);
    pubsub_flush(f->ps);
    expect(f, c, pframe("trade.A*", "trade.ATX", "T,4,ATX,1.0000,4,B"));
    expect_nothing_before_pong(f, c, 1);
}

static void test_a_reload_that_narrows_rights_disconnects_exactly_the_affected_clients(void **state)
{
    fixture_t *f = *state;
    add_alice_and_bob(f->cfg);
    add_user(f->cfg, "carol", "pw-carol", (const char *const[]){"trade.*", NULL}, NULL);
    add_user(f->cfg, "dave", "pw-dave", (const char *const[]){"trade.*", NULL}, NULL);
    snprintf(f->cfg->pubsub.password, sizeof f->cfg->pubsub.password, "pw-default");
    f->cfg->pubsub.payload = PAYLOAD_CSV;
    start(f);
    int a = connect_client(f), b = connect_client(f), c = connect_client(f), d = connect_client(f),
        e = connect_client(f);
    const char *auth[] = {"AUTH alice pw-alice\r\n", "AUTH bob pw-bob\r\n",
                          "AUTH carol pw-carol\r\n", "AUTH dave pw-dave\r\n",
                          "AUTH pw-default\r\n"};
    int fds[] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++) {
        roundtrip(f, fds[i], auth[i], "+OK\r\n");
        send_str(fds[i], i == 1 ? "PSUBSCRIBE trade.*\r\n" : "SUBSCRIBE trade.AAPL\r\n");
        if (i == 1)
            expect_psubscribed(f, fds[i], "trade.*", 1);
        else
            expect_subscribed(f, fds[i], "trade.AAPL", 1);
    }
    trade(f, "AAPL", 10000, 1, 'B', 1);
    pubsub_flush(f->ps);
    for (int i = 0; i < 5; i++)
        expect(f, fds[i],
               i == 1 ? pframe("trade.*", "trade.AAPL", "T,1,AAPL,1.0000,1,B")
                      : frame("trade.AAPL", "T,1,AAPL,1.0000,1,B"));

    /* alice loses trade.A* (keeps trade.IBM), bob keeps trade.* as written
     * plus more, carol's password changes, dave is gone; the default user
     * stays. */
    config_t *cfg = calloc(1, sizeof *cfg);
    *cfg = *f->cfg;
    cfg->pubsub.nusers = 0;
    cfg->pubsub.user_text_len = 0;
    add_user(cfg, "alice", "pw-alice", (const char *const[]){"trade.IBM", NULL}, NULL);
    add_user(cfg, "bob", "pw-bob", (const char *const[]){"quote.*", "trade.*", NULL}, NULL);
    add_user(cfg, "carol", "pw-carol2", (const char *const[]){"trade.*", NULL}, NULL);
    char err[CONFIG_ERR_LEN];
    assert_int_equal(pubsub_reconfigure(f->ps, cfg, err, sizeof err), 0);
    trade(f, "AAPL", 10000, 2, 'B', 2);
    pubsub_flush(f->ps);
    expect_closed(f, a);
    expect_closed(f, c);
    expect_closed(f, d);
    expect(f, b, pframe("trade.*", "trade.AAPL", "T,2,AAPL,1.0000,2,B"));
    expect(f, e, frame("trade.AAPL", "T,2,AAPL,1.0000,2,B"));
    assert_int_equal(stats(f).clients, 2);

    /* Users and no password any more: the default user is off, and its
     * client goes too. */
    cfg->pubsub.password[0] = '\0';
    assert_int_equal(pubsub_reconfigure(f->ps, cfg, err, sizeof err), 0);
    expect_closed(f, e);
    expect_nothing_before_pong(f, b, 1);
    free(cfg);
}

/* A conflated name is judged by its base (quote.AAPL@1s is quote.AAPL's
 * data): a user whose literal pattern is trade.IBM may have trade.IBM@1s,
 * and PSUBSCRIBE trade.A*@1s is its own pattern trade.A* as written; what
 * the base may not have is refused with a suffix too; and a reload that
 * keeps the rights keeps the conflated subscriptions. */
static void test_a_conflated_name_is_entitled_by_its_base_name(void **state)
{
    fixture_t *f = *state;
    add_alice_and_bob(f->cfg);
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "AUTH alice pw-alice\r\n", "+OK\r\n");
    roundtrip(f, c, "SUBSCRIBE trade.MSFT@1s\r\n", NOPERM_CHANNEL);
    roundtrip(f, c, "PSUBSCRIBE trade.*@1s\r\n", NOPERM_CHANNEL);
    roundtrip(f, c, "PSUBSCRIBE trade.A@1s\r\n", NOPERM_CHANNEL);
    send_str(c, "SUBSCRIBE trade.IBM@1s\r\n");
    expect_subscribed(f, c, "trade.IBM@1s", 1);
    send_str(c, "PSUBSCRIBE trade.A*@250ms\r\n");
    expect_psubscribed(f, c, "trade.A*@250ms", 2);

    config_t *cfg = calloc(1, sizeof *cfg);
    *cfg = *f->cfg;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(pubsub_reconfigure(f->ps, cfg, err, sizeof err), 0);
    expect_nothing_before_pong(f, c, 1);
    assert_int_equal(stats(f).clients, 1);
    free(cfg);
}

static void test_auth_as_a_user_who_may_not_hold_the_subscriptions_closes_the_client(void **state)
{
    fixture_t *f = *state;
    add_alice_and_bob(f->cfg);
    snprintf(f->cfg->pubsub.password, sizeof f->cfg->pubsub.password, "pw-default");
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "HELLO 3 AUTH default pw-default\r\n", hello_reply(3, 1));
    send_str(c, "SUBSCRIBE trade.MSFT\r\n");
    expect_sub_reply(f, c, RESP3, "subscribe", "trade.MSFT", 1);
    roundtrip(f, c, "AUTH alice pw-alice\r\n", NOPERM_CHANNEL);
    expect_closed(f, c);
}

static void
test_failed_auth_is_counted_answered_later_each_time_and_closed_at_the_tenth(void **state)
{
    fixture_t *f = *state;
    add_alice_and_bob(f->cfg);
    start(f);
    int c = connect_client(f);
    int64_t waited[10];
    for (int i = 0; i < 9; i++) {
        int64_t t0 = mono_ns();
        roundtrip(f, c, i % 2 ? "AUTH alice nope\r\n" : "HELLO 3 AUTH alice nope\r\n", WRONGPASS);
        waited[i] = mono_ns() - t0;
    }
    assert_true(waited[0] < 100000000 && waited[1] < 100000000);
    for (int i = 2; i < 9; i++) /* 100 ms, 200 ms, ... (uv_now() is in whole ms) */
        assert_true(waited[i] >= (int64_t)(i - 1) * 100000000 - 5000000);
    /* The tenth is answered at once, and closes: what followed is not run. */
    send_str(c, "AUTH alice nope\r\nPING\r\n");
    expect(f, c, WRONGPASS);
    expect_closed(f, c);
    assert_int_equal(stats(f).auth_failures_total, 10);
    /* A success starts the count again. */
    int d = connect_client(f);
    for (int i = 0; i < 2; i++)
        roundtrip(f, d, "AUTH alice nope\r\n", WRONGPASS);
    roundtrip(f, d, "AUTH alice pw-alice\r\n", "+OK\r\n");
    int64_t t0 = mono_ns();
    roundtrip(f, d, "AUTH alice nope\r\n", WRONGPASS);
    assert_true(mono_ns() - t0 < 100000000);
}

static void
test_a_delayed_auth_answer_waits_on_a_timer_and_pipelined_requests_wait_for_it(void **state)
{
    fixture_t *f = *state;
    add_alice_and_bob(f->cfg);
    start(f);
    int g = connect_client(f);
    roundtrip(f, g, "AUTH bob pw-bob\r\n", "+OK\r\n");
    int c = connect_client(f);
    for (int i = 0; i < 2; i++)
        roundtrip(f, c, "AUTH alice nope\r\n", WRONGPASS);
    int64_t t0 = mono_ns();
    /* 100 + 200 + ... + 500 ms of answers, then a PING in its turn. */
    send_str(c, "AUTH alice nope\r\nAUTH alice nope\r\nAUTH alice nope\r\nAUTH alice "
                "nope\r\nAUTH alice nope\r\nPING\r\n");
    roundtrip(f, g, "PING\r\n", "+PONG\r\n"); /* others are served meanwhile */
    assert_true(mono_ns() - t0 < 100000000);
    for (int i = 0; i < 5; i++)
        expect(f, c, WRONGPASS);
    expect(f, c, "-NOAUTH Authentication required.\r\n");
    assert_true(mono_ns() - t0 >= 1500000000 - 5000000);
}

/* ---- conflation ---- */

/* Runs the loop for ms milliseconds of wall time. */
static void pump_for(fixture_t *f, int64_t ms)
{
    int64_t until = mono_ns() + ms * 1000000;
    while (mono_ns() < until) {
        pump(f);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Tick objects alive now: what the market's last values and any conflation
 * slot still hold. */
static uint64_t live_ticks(fixture_t *f)
{
    obj_type_stats_t st;
    assert_int_equal(obj_type_get_stats(f->heap, &tick_type, &st), 0);
    return st.live;
}

#define QUOTE_JSON(bid, ts, seq)                                                                   \
    "{\"sym\":\"AAPL\",\"kind\":\"quote\",\"bid\":\"" bid "\",\"bid_size\":1,\"ask\":\"2.0000\","  \
    "\"ask_size\":1,\"ts\":" ts ",\"seq\":" seq "}"

static void
test_conflated_channel_sends_the_latest_quote_once_per_interval_and_nothing_unchanged(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    int plain = connect_client(f);
    send_str(c, "SUBSCRIBE quote.AAPL@50ms\r\n");
    expect_subscribed(f, c, "quote.AAPL@50ms", 1);
    send_str(plain, "SUBSCRIBE quote.AAPL\r\n");
    expect_subscribed(f, plain, "quote.AAPL", 1);
    for (int i = 1; i <= 100; i++)
        quote(f, "AAPL", 10000 + i, 1, 20000, 1, i);
    quote(f, "MSFT", 1, 1, 2, 1, 1);
    pubsub_flush(f->ps);
    expect(f, c, frame("quote.AAPL@50ms", QUOTE_JSON("1.0100", "100", "100")));
    pump_for(f, 150); /* three intervals without a quote: nothing */
    expect_nothing_before_pong(f, c, 1);
    quote(f, "AAPL", 10001, 1, 20000, 1, 200);
    expect(f, c, frame("quote.AAPL@50ms", QUOTE_JSON("1.0001", "200", "102")));
    expect_nothing_before_pong(f, c, 1);
    /* The plain subscriber got every tick. */
    for (int i = 1; i <= 100; i++) {
        char bid[16], ts[16], seq[16], json[256];
        snprintf(bid, sizeof bid, "1.%04d", i);
        snprintf(ts, sizeof ts, "%d", i);
        snprintf(seq, sizeof seq, "%d", i);
        snprintf(json, sizeof json,
                 "{\"sym\":\"AAPL\",\"kind\":\"quote\",\"bid\":\"%s\",\"bid_size\":1,\"ask\":"
                 "\"2.0000\",\"ask_size\":1,\"ts\":%s,\"seq\":%s}",
                 bid, ts, seq);
        expect(f, plain, frame("quote.AAPL", json));
    }
}

static void test_conflated_pattern_sends_pmessages_named_as_subscribed_for_each_symbol(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.payload = 1;
    start(f);
    int c = connect_client(f);
    send_str(c, "PSUBSCRIBE quote.*@20ms\r\n");
    expect_psubscribed(f, c, "quote.*@20ms", 1);
    quote(f, "AAPL", 10000, 1, 20000, 1, 1);
    quote(f, "AAPL", 10100, 1, 20000, 1, 2);
    trade(f, "AAPL", 10000, 5, 'B', 3);
    pubsub_flush(f->ps);
    expect(f, c, pframe("quote.*@20ms", "quote.AAPL@20ms", "Q,2,AAPL,1.0100,1,2.0000,1"));
    quote(f, "IBM", 30000, 2, 40000, 3, 4);
    expect(f, c, pframe("quote.*@20ms", "quote.IBM@20ms", "Q,4,IBM,3.0000,2,4.0000,3"));
    expect_nothing_before_pong(f, c, 1);
}

static void test_conflated_trade_channel_sends_one_summary_per_interval(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    send_str(c, "SUBSCRIBE trade.AAPL@20ms\r\n");
    expect_subscribed(f, c, "trade.AAPL@20ms", 1);
    trade(f, "AAPL", 1012500, 100, 'B', 10);
    trade(f, "AAPL", 1012600, 250, 'S', 11);
    trade(f, "AAPL", 1012400, 7, 0, 12);
    quote(f, "AAPL", 1, 1, 2, 1, 13);
    expect(f, c,
           frame("trade.AAPL@20ms", "{\"sym\":\"AAPL\",\"kind\":\"trade_summary\",\"price\":"
                                    "\"101.2400\",\"size\":357,\"count\":3,\"ts\":12,\"seq\":3}"));
    trade(f, "AAPL", 1000000, 1, 'B', 20);
    expect(f, c,
           frame("trade.AAPL@20ms", "{\"sym\":\"AAPL\",\"kind\":\"trade_summary\",\"price\":"
                                    "\"100.0000\",\"size\":1,\"count\":1,\"ts\":20,\"seq\":5}"));
    expect_nothing_before_pong(f, c, 1);
}

static void test_a_resp3_client_gets_conflated_messages_as_push_frames(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.payload = 1;
    start(f);
    int c = connect_client(f);
    roundtrip(f, c, "HELLO 3\r\n", hello_reply(3, 1));
    send_str(c, "SUBSCRIBE quote.AAPL@10ms\r\n");
    expect_sub_reply(f, c, RESP3, "subscribe", "quote.AAPL@10ms", 1);
    quote(f, "AAPL", 10000, 1, 20000, 1, 1);
    quote(f, "AAPL", 10100, 2, 20000, 1, 2);
    expect(f, c, push(frame("quote.AAPL@10ms", "Q,2,AAPL,1.0100,2,2.0000,1")));
}

static void test_conflated_trade_summary_in_csv_is_an_s_line(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.payload = 1;
    start(f);
    int c = connect_client(f);
    send_str(c, "PSUBSCRIBE trade.*@10ms\r\n");
    expect_psubscribed(f, c, "trade.*@10ms", 1);
    trade(f, "MSFT", 3000000, 5, 'S', 7);
    trade(f, "MSFT", 3000100, 6, 'B', 8);
    expect(f, c, pframe("trade.*@10ms", "trade.MSFT@10ms", "S,8,MSFT,300.0100,11,2"));
}

static void test_a_bad_conflation_suffix_is_an_error_and_subscribes_nothing(void **state)
{
    fixture_t *f = *state;
    start(f);
    int c = connect_client(f);
    const char *bad[] = {"quote.AAPL@0ms", "quote.AAPL@5ms",  "quote.AAPL@2h",
                         "quote.AAPL@abc", "quote.AAPL@",     "@1s",
                         "quote.AAPL@1d",  "quote.AAPL@61m",  "quote.AAPL@1 s",
                         "quote.AAPL@ms",  "quote.AAPL@1s@x", "quote.AAPL@99999999999h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[128], want[512];
        snprintf(cmd, sizeof cmd, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n", strlen(bad[i]),
                 bad[i]);
        snprintf(want, sizeof want,
                 "-ERR bad conflation interval in '%s': the suffix is @<n>ms, @<n>s, @<n>m or "
                 "@<n>h, from 10ms to 1h, after a channel name\r\n",
                 bad[i]);
        roundtrip(f, c, cmd, want);
    }
    send_str(c, "PSUBSCRIBE quote.*@10ms quote.*@5ms\r\n"); /* one bad: none is made */
    expect(f, c,
           "-ERR bad conflation interval in 'quote.*@5ms': the suffix is @<n>ms, @<n>s, @<n>m or "
           "@<n>h, from 10ms to 1h, after a channel name\r\n");
    assert_int_equal(stats(f).subscriptions, 0);
    expect_nothing_before_pong(f, c, 0);
    send_str(c, "PSUBSCRIBE quote.*@10ms\r\n");
    expect_psubscribed(f, c, "quote.*@10ms", 1);
    send_str(c, "SUBSCRIBE quote.AAPL@1h quote.AAPL@60m quote.AAPL@3600s quote.AAPL@10ms\r\n");
    expect_subscribed(f, c, "quote.AAPL@1h", 2);
    expect_subscribed(f, c, "quote.AAPL@60m", 3);
    expect_subscribed(f, c, "quote.AAPL@3600s", 4);
    expect_subscribed(f, c, "quote.AAPL@10ms", 5);
}

static void test_unsubscribe_reset_and_disconnect_leave_no_conflation_behind(void **state)
{
    fixture_t *f = *state;
    start(f);
    int a = connect_client(f), b = connect_client(f), d = connect_client(f);
    send_str(a, "SUBSCRIBE quote.AAPL@1h\r\n");
    expect_subscribed(f, a, "quote.AAPL@1h", 1);
    send_str(b, "PSUBSCRIBE quote.*@1h\r\n");
    expect_psubscribed(f, b, "quote.*@1h", 1);
    send_str(d, "SUBSCRIBE trade.AAPL@1h\r\n");
    expect_subscribed(f, d, "trade.AAPL@1h", 1);
    quote(f, "AAPL", 1, 1, 2, 1, 1);
    quote(f, "AAPL", 1, 1, 3, 1, 2);
    trade(f, "AAPL", 1, 1, 'B', 3);
    /* The market holds the last trade and quote; the conflations hold the
     * last quote (once more, in two slots) and the last trade. */
    assert_int_equal(live_ticks(f), 2);
    quote(f, "AAPL", 1, 1, 4, 1, 4);
    assert_int_equal(live_ticks(f), 2);
    send_str(a, "UNSUBSCRIBE quote.AAPL@1h\r\n");
    expect_unsubscribed(f, a, "quote.AAPL@1h", 0);
    send_str(b, "RESET\r\n");
    expect(f, b, "+RESET\r\n");
    quote(f, "AAPL", 1, 1, 5, 1, 5); /* the old quote is released by all */
    trade(f, "AAPL", 1, 1, 'B', 6);  /* ... and d's slot holds the new trade */
    assert_int_equal(live_ticks(f), 2);
    close(d);
    f->fds[2] = -1;
    int64_t deadline = mono_ns() + GUARD_NS;
    while (stats(f).subscriptions != 0) {
        assert_true(mono_ns() < deadline);
        pump(f);
    }
    trade(f, "AAPL", 1, 1, 'B', 7);
    assert_int_equal(live_ticks(f), 2);
}

/* A tick finds the conflations it belongs to on its channel's topic: the
 * links follow the topics as conflated and plain subscriptions, patterns
 * and channel topics come and go in any order, so every conflated
 * subscriber gets what it asked for and nothing else. */
static void test_conflations_follow_channel_topics_as_they_come_and_go(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.payload = 1;
    f->cfg->pubsub.snapshot = 0;
    start(f);
    int other = connect_client(f), pat = connect_client(f), chan = connect_client(f),
        plain = connect_client(f);
    send_str(other, "SUBSCRIBE trade.OTHER\r\n");
    expect_subscribed(f, other, "trade.OTHER", 1);
    quote(f, "AAPL", 1, 1, 2, 1, 1); /* quote.AAPL: no topic, and the slot says so */
    send_str(pat, "PSUBSCRIBE quote.A*@10ms\r\n");
    expect_psubscribed(f, pat, "quote.A*@10ms", 1);
    quote(f, "AAPL", 2, 1, 3, 1, 2);
    quote(f, "IBM", 3, 1, 4, 1, 3); /* the pattern's base does not match it */
    expect(f, pat, pframe("quote.A*@10ms", "quote.AAPL@10ms", "Q,2,AAPL,0.0002,1,0.0003,1"));

    /* A conflated channel on a topic a pattern's link made; a plain
     * subscriber of the channel that comes and goes takes neither away. */
    send_str(chan, "SUBSCRIBE quote.AAPL@10ms\r\n");
    expect_subscribed(f, chan, "quote.AAPL@10ms", 1);
    send_str(plain, "SUBSCRIBE quote.AAPL\r\n");
    expect_subscribed(f, plain, "quote.AAPL", 1);
    quote(f, "AAPL", 4, 1, 5, 1, 4);
    pubsub_flush(f->ps);
    expect(f, plain, frame("quote.AAPL", "Q,4,AAPL,0.0004,1,0.0005,1"));
    send_str(plain, "UNSUBSCRIBE quote.AAPL\r\n");
    expect_unsubscribed(f, plain, "quote.AAPL", 0);
    expect(f, chan, frame("quote.AAPL@10ms", "Q,4,AAPL,0.0004,1,0.0005,1"));
    expect(f, pat, pframe("quote.A*@10ms", "quote.AAPL@10ms", "Q,4,AAPL,0.0004,1,0.0005,1"));

    /* The last pattern goes (the channel topics only patterns held go with
     * it): the conflated channel still gets its quotes, the pattern none. */
    send_str(pat, "PUNSUBSCRIBE quote.A*@10ms\r\n");
    expect_punsubscribed(f, pat, "quote.A*@10ms", 0);
    quote(f, "AAPL", 5, 1, 6, 1, 5);
    expect(f, chan, frame("quote.AAPL@10ms", "Q,5,AAPL,0.0005,1,0.0006,1"));
    /* A pattern that comes now is linked to the topic the channel holds. */
    send_str(pat, "PSUBSCRIBE quote.*@10ms\r\n");
    expect_psubscribed(f, pat, "quote.*@10ms", 1);
    quote(f, "AAPL", 6, 1, 7, 1, 6);
    expect(f, chan, frame("quote.AAPL@10ms", "Q,6,AAPL,0.0006,1,0.0007,1"));
    expect(f, pat, pframe("quote.*@10ms", "quote.AAPL@10ms", "Q,6,AAPL,0.0006,1,0.0007,1"));
    send_str(chan, "UNSUBSCRIBE quote.AAPL@10ms\r\n");
    expect_unsubscribed(f, chan, "quote.AAPL@10ms", 0);
    send_str(pat, "PUNSUBSCRIBE quote.*@10ms\r\n");
    expect_punsubscribed(f, pat, "quote.*@10ms", 0);
    quote(f, "AAPL", 7, 1, 8, 1, 7);
    pump_for(f, 30);
    expect_nothing_before_pong(f, chan, 0);
    expect_nothing_before_pong(f, pat, 0);
    expect_nothing_before_pong(f, plain, 0);
    assert_int_equal(live_ticks(f), 2); /* the market's last trade and quote: no slot holds one */
}

/* ---- slow consumers: conflation instead of a cut ---- */

#define CONFLATE_SYMBOLS 10

/* Publishes rounds quotes of CONFLATE_SYMBOLS symbols (S0..S9; quote i of
 * symbol k has bid i + 1 and timestamp i), flushing every round. */
static void publish_quote_rounds(fixture_t *f, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        for (int k = 0; k < CONFLATE_SYMBOLS; k++) {
            char sym[8];
            snprintf(sym, sizeof sym, "S%d", k);
            quote(f, sym, i + 1, 1, 1000000, 1, i);
        }
        pubsub_flush(f->ps);
        pump(f);
    }
}

static size_t count_of(const char *buf, size_t len, const char *s)
{
    size_t n = 0, sl = strlen(s);
    for (const char *p = buf; p != NULL && (p = memmem(p, (size_t)(buf + len - p), s, sl)) != NULL;
         p += sl)
        n++;
    return n;
}

static void
test_slow_consumer_with_conflate_is_not_cut_and_ends_with_the_latest_quotes(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.hard_limit = 256 * 1024;
    f->cfg->pubsub.soft_limit = 64 * 1024;
    f->cfg->pubsub.soft_ns = 0; /* conflated as soon as it is over */
    f->cfg->pubsub.slow_consumer = CONFIG_SLOW_CONFLATE;
    f->cfg->pubsub.snapshot = 0;
    start(f);
    int slow = connect_client_rcvbuf(f, 4096);
    send_str(slow, "PSUBSCRIBE quote.*\r\n");
    expect_psubscribed(f, slow, "quote.*", 1);
    const int rounds = 20000; /* about 30 MiB of frames: a hundred times the hard limit */
    publish_quote_rounds(f, rounds);
    assert_int_equal(stats(f).slow_consumer_disconnects_total, 0);
    assert_int_equal(stats(f).conflations_total, 1);
    assert_int_equal(stats(f).conflated_clients, 1);
    assert_true(stats(f).output_buffer_bytes < 64 * 1024);

    /* It reads again: it gets the latest quote of every symbol, and far
     * fewer than every quote, then leaves conflation. */
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char last[CONFLATE_SYMBOLS][128];
    for (int k = 0; k < CONFLATE_SYMBOLS; k++)
        snprintf(last[k], sizeof last[k], "\"sym\":\"S%d\",\"kind\":\"quote\",\"bid\":\"%d.%04d\"",
                 k, rounds / 10000, rounds % 10000);
    int64_t deadline = mono_ns() + GUARD_NS;
    for (int k = 0; k < CONFLATE_SYMBOLS;) {
        assert_true(mono_ns() < deadline);
        pump(f);
        drain_into(slow, &buf, &len, &cap);
        if (buf != NULL && memmem(buf, len, last[k], strlen(last[k])) != NULL)
            k++;
    }
    while (stats(f).conflated_clients != 0) {
        assert_true(mono_ns() < deadline);
        pump(f);
        drain_into(slow, &buf, &len, &cap);
    }
    assert_true(count_of(buf, len, "pmessage") < (size_t)rounds * CONFLATE_SYMBOLS / 10);
    free(buf);
    assert_int_equal(stats(f).slow_consumer_disconnects_total, 0);
    /* Caught up, it gets every quote again. */
    quote(f, "S1", 77, 1, 1000000, 1, 1);
    pubsub_flush(f->ps);
    expect(f, slow,
           pframe("quote.*", "quote.S1",
                  "{\"sym\":\"S1\",\"kind\":\"quote\",\"bid\":\"0.0077\",\"bid_size\":1,\"ask\":"
                  "\"100.0000\",\"ask_size\":1,\"ts\":1,\"seq\":200001}"));
    expect_nothing_before_pong(f, slow, 1);
}

/* As the disconnect policy cuts, conflation takes a subscriber only once
 * it has been over the soft limit for output_soft_seconds: one that reads
 * its backlog sooner gets every quote, one that does not is conflated, and
 * not before. */
static void test_conflation_waits_output_soft_seconds_over_the_soft_limit(void **state)
{
    fixture_t *f = *state;
    const int64_t soft_ms = 2000;
    f->cfg->pubsub.hard_limit = 64u << 20;
    f->cfg->pubsub.soft_limit = 64 * 1024;
    f->cfg->pubsub.soft_ns = (uint64_t)soft_ms * 1000000;
    f->cfg->pubsub.slow_consumer = CONFIG_SLOW_CONFLATE;
    f->cfg->pubsub.snapshot = 0;
    start(f);
    int brief = connect_client_rcvbuf(f, 4096), slow = connect_client_rcvbuf(f, 4096);
    send_str(brief, "PSUBSCRIBE quote.*\r\n");
    expect_psubscribed(f, brief, "quote.*", 1);
    send_str(slow, "PSUBSCRIBE quote.*\r\n");
    expect_psubscribed(f, slow, "quote.*", 1);
    const int rounds = 4000; /* about 6 MiB of frames each: more than the kernel takes */
    int64_t t0 = mono_ns();
    publish_quote_rounds(f, rounds);
    uint64_t conflations = stats(f).conflations_total;
    assert_true(mono_ns() - t0 < soft_ms * 1000000); /* the test's premise: a short burst */
    assert_int_equal(conflations, 0);                /* both over, neither for long */

    /* brief reads its backlog at once: every quote, the last one last. */
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char last[128];
    snprintf(last, sizeof last, "\"sym\":\"S%d\",\"kind\":\"quote\",\"bid\":\"%d.%04d\"",
             CONFLATE_SYMBOLS - 1, rounds / 10000, rounds % 10000);
    int64_t deadline = mono_ns() + GUARD_NS;
    while (len < 512 || memmem(buf + len - 512, 512, last, strlen(last)) == NULL ||
           memcmp(buf + len - 3, "}\r\n", 3) != 0) {
        assert_true(mono_ns() < deadline);
        pump(f);
        drain_into(brief, &buf, &len, &cap);
    }
    assert_true(mono_ns() - t0 < soft_ms * 1000000); /* the test's premise: brief was brief */
    assert_int_equal(count_of(buf, len, "pmessage"), (size_t)rounds * CONFLATE_SYMBOLS);
    free(buf);

    /* slow never reads: conflated, once it has been over for soft_ms. */
    while (stats(f).conflations_total == 0) {
        assert_true(mono_ns() < deadline);
        pump(f);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(mono_ns() - t0 >= (soft_ms - 20) * 1000000); /* loop time is in whole ms */
    pump_for(f, soft_ms / 2); /* a housekeeping pass, at least: brief stays as it is */
    assert_int_equal(stats(f).conflations_total, 1);
    assert_int_equal(stats(f).conflated_clients, 1);
    assert_int_equal(stats(f).slow_consumer_disconnects_total, 0);
    quote(f, "S1", 77, 1, 1000000, 1, 1);
    pubsub_flush(f->ps);
    expect(f, brief,
           pframe("quote.*", "quote.S1",
                  "{\"sym\":\"S1\",\"kind\":\"quote\",\"bid\":\"0.0077\",\"bid_size\":1,\"ask\":"
                  "\"100.0000\",\"ask_size\":1,\"ts\":1,\"seq\":40001}"));
    expect_nothing_before_pong(f, brief, 1);

    /* slow reads and catches up: out of conflation, under the limit, its
     * clock starts again, so a new stall waits soft_ms again too. */
    buf = NULL;
    len = cap = 0;
    while (stats(f).conflated_clients != 0) {
        assert_true(mono_ns() < deadline);
        pump(f);
        drain_into(slow, &buf, &len, &cap);
    }
    free(buf);
    buf = NULL; /* brief's, from here: it reads all along */
    len = cap = 0;
    int64_t t1 = mono_ns();
    publish_quote_rounds(f, rounds);
    conflations = stats(f).conflations_total;
    assert_true(mono_ns() - t1 < soft_ms * 1000000);
    assert_int_equal(conflations, 1);
    while (stats(f).conflations_total == 1) {
        assert_true(mono_ns() < deadline + GUARD_NS);
        pump(f);
        drain_into(brief, &buf, &len, &cap);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    free(buf);
    assert_true(mono_ns() - t1 >= (soft_ms - 20) * 1000000);
}

static void test_slow_consumer_with_disconnect_is_cut_by_the_same_quotes(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.hard_limit = 256 * 1024;
    f->cfg->pubsub.soft_limit = 64 * 1024;
    f->cfg->pubsub.soft_ns = 1000000;
    f->cfg->pubsub.snapshot = 0;
    start(f);
    int slow = connect_client_rcvbuf(f, 4096);
    send_str(slow, "PSUBSCRIBE quote.*\r\n");
    expect_psubscribed(f, slow, "quote.*", 1);
    publish_quote_rounds(f, 20000);
    assert_int_equal(stats(f).slow_consumer_disconnects_total, 1);
    assert_int_equal(stats(f).conflations_total, 0);
}

static void
test_a_conflated_slow_consumer_keeps_its_trades_until_the_hard_limit_cuts_it(void **state)
{
    fixture_t *f = *state;
    f->cfg->pubsub.hard_limit = 256 * 1024;
    f->cfg->pubsub.soft_limit = 64 * 1024;
    f->cfg->pubsub.soft_ns = 0; /* conflated as soon as it is over */
    f->cfg->pubsub.slow_consumer = CONFIG_SLOW_CONFLATE;
    start(f);
    int slow = connect_client_rcvbuf(f, 4096);
    send_str(slow, "SUBSCRIBE trade.AAPL\r\n");
    expect_subscribed(f, slow, "trade.AAPL", 1);
    int64_t deadline = mono_ns() + GUARD_NS;
    uint64_t sent = 0;
    while (stats(f).slow_consumer_disconnects_total == 0) {
        assert_true(mono_ns() < deadline);
        for (int i = 0; i < 100; i++, sent++)
            trade(f, "AAPL", 1012500, 100, 'B', (int64_t)sent);
        pubsub_flush(f->ps);
        pump(f);
        if (stats(f).conflations_total == 1 && stats(f).slow_consumer_disconnects_total == 0)
            assert_true(stats(f).output_buffer_bytes <= 256 * 1024 + 64 * 1024);
    }
    assert_int_equal(stats(f).conflations_total, 1);
    assert_int_equal(stats(f).conflated_clients, 0);
    /* What it received before the cut is every trade, in order, from the first. */
    char *buf = NULL;
    size_t len = 0, cap = 0;
    while (drain_into(slow, &buf, &len, &cap) > 0 || (buf == NULL))
        if (mono_ns() > deadline)
            break;
    assert_true(count_in_order_from(buf, len, 1) > 0);
    free(buf);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a peer's close is an error, not a signal */
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_subscribe_replies_are_redis_bytes),
        T(test_conflated_channel_sends_the_latest_quote_once_per_interval_and_nothing_unchanged),
        T(test_conflated_pattern_sends_pmessages_named_as_subscribed_for_each_symbol),
        T(test_conflated_trade_channel_sends_one_summary_per_interval),
        T(test_conflated_trade_summary_in_csv_is_an_s_line),
        T(test_a_resp3_client_gets_conflated_messages_as_push_frames),
        T(test_a_bad_conflation_suffix_is_an_error_and_subscribes_nothing),
        T(test_unsubscribe_reset_and_disconnect_leave_no_conflation_behind),
        T(test_conflations_follow_channel_topics_as_they_come_and_go),
        T(test_slow_consumer_with_conflate_is_not_cut_and_ends_with_the_latest_quotes),
        T(test_conflation_waits_output_soft_seconds_over_the_soft_limit),
        T(test_slow_consumer_with_disconnect_is_cut_by_the_same_quotes),
        T(test_a_conflated_slow_consumer_keeps_its_trades_until_the_hard_limit_cuts_it),
        T(test_get_answers_the_last_trade_and_quote_as_a_subscriber_reads_them),
        T(test_get_answers_csv_when_the_payload_is_csv),
        T(test_get_in_resp3_answers_null_and_works_while_subscribed),
        T(test_query_commands_are_refused_in_resp2_subscribed_mode_as_redis_does),
        T(test_query_commands_answer_wrong_arity_in_redis_words),
        T(test_mget_answers_each_key_in_order_with_nils_for_the_missing),
        T(test_keys_lists_the_channels_with_a_last_value_that_match),
        T(test_scan_visits_every_key_once_over_a_full_iteration_and_ends_at_zero),
        T(test_scan_refuses_bad_cursors_and_options_in_redis_words),
        T(test_keys_lists_a_bar_key_exactly_when_its_get_answers_a_bar),
        T(test_scan_visits_every_bar_key_once_and_a_call_stays_bounded),
        T(test_get_book_answers_the_top_levels_of_each_side_from_itch_orders),
        T(test_get_book_after_a_change_shows_it_and_a_repeat_shows_the_same),
        T(test_a_new_day_frees_what_the_last_days_symbols_kept),
        T(test_get_book_depth_is_ten_by_default_and_reaches_a_thousand),
        T(test_get_book_refuses_a_bad_depth_in_redis_words),
        T(test_trade_arrives_as_message_frame_with_json_payload),
        T(test_quote_json_has_both_sides_and_a_trade_without_side_has_no_side_key),
        T(test_csv_payload_is_the_csv_line_without_newline_or_unknown_side),
        T(test_psubscribe_gets_pmessage_frames_for_matching_channels_only),
        T(test_channel_and_pattern_subscriber_gets_both_frames),
        T(test_a_long_pattern_gets_the_same_pmessage_frames),
        T(test_a_flush_over_many_stream_chunks_arrives_whole_and_in_order),
        T(test_unsubscribe_stops_delivery_and_counts_down),
        T(test_a_channel_topic_that_comes_and_goes_between_ticks_is_followed),
        T(test_a_pattern_that_comes_after_a_channel_had_no_topic_gets_its_ticks),
        T(test_ping_answers_in_both_modes),
        T(test_inline_commands_are_case_insensitive_and_pipelined),
        T(test_requests_cut_anywhere_in_two_clients_at_once_are_each_served),
        T(test_large_and_many_replies_keep_their_order),
        T(test_client_and_command_answers_let_clients_connect),
        T(test_a_command_name_with_any_byte_wrong_is_unknown),
        T(test_hello_without_a_version_or_with_2_answers_the_resp2_array),
        T(test_hello_3_answers_a_map_and_switches_the_connection_to_resp3),
        T(test_hello_refuses_bad_versions_and_options_in_redis_words),
        T(test_hello_auth_authenticates_and_no_error_ever_shows_the_password),
        T(test_resp3_subscriber_gets_push_frames_for_replies_messages_and_pmessages),
        T(test_resp2_and_resp3_subscribers_of_a_channel_and_patterns_each_get_their_framing),
        T(test_hello_2_while_subscribed_turns_messages_back_into_arrays),
        T(test_reset_returns_the_connection_to_resp2),
        T(test_snapshot_on_subscribe_is_a_push_frame_in_resp3),
        T(test_info_reports_its_sections_in_redis_format),
        T(test_pubsub_channels_numsub_and_numpat_answer_as_redis),
        T(test_publish_of_a_payload_that_is_not_a_tick_says_what_was_expected),
        T(test_subscribed_mode_allows_only_the_pubsub_commands),
        T(test_auth_is_required_when_a_password_is_set),
        T(test_auth_without_a_password_is_an_error),
        T(test_publish_ingests_and_replies_with_the_receiver_count),
        T(test_publish_reply_waits_until_the_journal_is_durable),
        T(test_publish_reply_becomes_a_journal_error_when_the_sync_fails),
        T(test_held_replies_are_decided_by_their_own_journal_positions),
        T(test_a_publisher_with_16384_held_replies_is_not_read_until_they_are_decided),
        T(test_a_reply_held_for_10_seconds_becomes_a_journal_error),
        T(test_a_publish_the_journal_has_no_room_for_waits_until_it_has),
        T(test_a_publish_that_waits_10_seconds_for_room_gets_the_journal_error),
        T(test_snapshot_on_subscribe_sends_the_last_ticks),
        T(test_snapshot_can_be_turned_off),
        T(test_slow_consumer_is_cut_at_the_hard_limit_while_others_get_every_tick),
        T(test_a_batch_bigger_than_the_hard_limit_does_not_cut_a_reader),
        T(test_a_stalled_quiet_subscriber_is_cut_once_it_pins_the_hard_limit),
        T(test_slow_consumer_is_cut_after_staying_over_the_soft_limit),
        T(test_malformed_resp_gets_the_error_and_a_close),
        T(test_request_over_max_request_gets_the_error_and_a_close),
        T(test_max_clients_refuses_the_extra_connection),
        T(test_client_closing_mid_frame_is_cleaned_up),
        T(test_quit_replies_ok_and_closes),
        T(test_idle_clients_are_closed_but_subscribers_are_not),
        T(test_latency_is_observed_once_per_tick_written_to_every_subscriber),
        T(test_steady_fan_out_takes_nothing_from_the_system_allocator),
        T(test_steady_mixed_resp2_and_resp3_fan_out_takes_nothing_from_the_system_allocator),
        T(test_reconfigure_rebinds_and_keeps_subscribers),
        T(test_start_reports_a_bad_listen_address),
        T(test_stop_drains_queued_output_then_closes),
        T(test_stop_closes_clients_that_do_not_drain_in_time),
        T(test_snapshots_of_a_request_stop_at_the_hard_limit),
        T(test_pattern_links_follow_patterns_as_they_come_and_go),
        T(test_a_big_pattern_snapshot_is_sent_in_steps_as_the_client_reads),
        T(test_pattern_churn_leaves_no_mapped_memory_after_trim),
        T(test_users_authenticate_as_redis_7_and_the_default_user_is_off_without_a_password),
        T(test_the_default_user_of_pubsub_password_keeps_every_right_beside_users),
        T(test_subscribe_psubscribe_publish_and_get_outside_the_rights_answer_noperm),
        T(test_a_conflated_name_is_entitled_by_its_base_name),
        T(test_keys_and_scan_list_only_the_bar_keys_a_user_may_read),
        T(test_no_way_in_delivers_a_forbidden_channel_to_a_restricted_user),
        T(test_a_reload_that_narrows_rights_disconnects_exactly_the_affected_clients),
        T(test_auth_as_a_user_who_may_not_hold_the_subscriptions_closes_the_client),
        T(test_failed_auth_is_counted_answered_later_each_time_and_closed_at_the_tenth),
        T(test_a_delayed_auth_answer_waits_on_a_timer_and_pipelined_requests_wait_for_it),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

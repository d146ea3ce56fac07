/*
 * test_http.c - src/http.c: the HTTP/1.1 protocol engine on its own, with
 * no socket and no loop (the server over TCP is test_http_server.c).
 *
 * The tests drive http_conn_feed() directly: whole streams, byte by byte,
 * past the output high-water mark, a limit changed between requests, and
 * random and mutated input that must never crash it (the shape the fuzz
 * harness, tests/fuzz/fuzz_http.c, takes). The routes are test routes: a
 * short Prometheus page (or a failing one, or a big one), a fixed allocator
 * report, and a health route that says healthy or not and which form, text
 * or JSON, it was asked for.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "src/http.h"

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_PAGE "# HELP t_up Test.\n# TYPE t_up gauge\nt_up 1\n"
#define MALLOCSTATS  "Small block threshold = 512, in 32 size classes.\n"

typedef struct fixture {
    http_routes_t routes;
    int healthy;
    int asked_json; /* the form the health route was last asked for */
    int fail;       /* the metrics route fails */
    size_t big;     /* the metrics page is this many bytes (0: METRICS_PAGE) */
} fixture_t;

/* ---- routes ---- */

static int route_metrics(void *arg, http_body_t *body)
{
    fixture_t *f = arg;
    if (f->fail)
        return -EIO;
    if (f->big == 0)
        return http_body_printf(body, "%s", METRICS_PAGE);
    int err = http_body_reserve(body, f->big);
    if (err != 0)
        return err;
    for (size_t i = 0; i < f->big; i++)
        body->data[body->len + i] = i % 64 == 63 ? '\n' : (char)('a' + i % 26);
    body->len += f->big;
    return 0;
}

static int route_mallocstats(void *arg, http_body_t *body)
{
    (void)arg;
    return http_body_append(body, MALLOCSTATS, strlen(MALLOCSTATS));
}

static int route_health(void *arg, int json, http_body_t *body)
{
    fixture_t *f = arg;
    f->asked_json = json;
    int err =
        json ? http_body_printf(body, "{\"status\":\"%s\"}\n", f->healthy ? "ok" : "unhealthy")
             : http_body_printf(body, "%s", f->healthy ? "ok\n" : "unhealthy\nfeed x: stale\n");
    return err != 0 ? err : f->healthy;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->routes = (http_routes_t){
        .metrics = route_metrics,
        .mallocstats = route_mallocstats,
        .health = route_health,
        .arg = f,
    };
    f->healthy = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* ---- the engine ---- */

/* Feeds all of data in chunks of at most step bytes (0: all at once),
 * collecting the output, as the server does. Returns what closing says. */
static int engine_run(const http_routes_t *routes, size_t max_header, const char *data, size_t len,
                      size_t step, http_body_t *out)
{
    http_conn_t *c;
    assert_int_equal(http_conn_new(routes, max_header, &c), 0);
    size_t off = 0;
    while (off < len && !http_conn_closing(c)) {
        size_t n = step == 0 || len - off < step ? len - off : step;
        size_t used = http_conn_feed(c, data + off, n, out);
        assert_true(used <= n);
        off += used;
    }
    int closing = http_conn_closing(c);
    http_conn_free(c);
    return closing;
}

/* The output with the Date header lines taken out (they follow the clock). */
static void strip_dates(http_body_t *b)
{
    char *p;
    assert_int_equal(http_body_append(b, "", 1), 0);
    while ((p = strstr(b->data, "Date: ")) != NULL) {
        char *end = strstr(p, "\r\n") + 2;
        memmove(p, end, strlen(end) + 1);
    }
    b->len = strlen(b->data);
}

static void healthz_without_a_route_is_always_ok(void **state)
{
    fixture_t *f = *state;
    http_routes_t none = f->routes;
    none.health = NULL;
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /healthz?verbose HTTP/1.1\r\nHost: x\r\n\r\n";
    http_body_t out = {0};
    assert_false(engine_run(&none, 1024, req, strlen(req), 0, &out));
    strip_dates(&out);
    assert_string_equal(out.data, "HTTP/1.1 200 OK\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Length: 3\r\n\r\nok\n"
                                  "HTTP/1.1 200 OK\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Content-Length: 44\r\n\r\n"
                                  "{\"status\":\"ok\",\"stopping\":false,\"feeds\":[]}\n");
    http_body_free(&out);
}

static void engine_reads_an_accept_header_that_arrives_a_byte_at_a_time(void **state)
{
    fixture_t *f = *state;
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=0.5, "
                      "application/json\r\n\r\n";
    http_body_t out = {0};
    assert_false(engine_run(&f->routes, 1024, req, strlen(req), 1, &out));
    assert_int_equal(f->asked_json, 1);
    assert_int_equal(http_body_append(&out, "", 1), 0);
    assert_non_null(strstr(out.data, "Content-Type: application/json\r\n"));
    http_body_free(&out);
}

static void engine_answers_the_same_fed_whole_or_byte_by_byte(void **state)
{
    fixture_t *f = *state;
    const char *stream = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                         "\r\nHEAD /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
                         "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                         "GET /metrics HTTP/1.1\r\nhOsT: x\r\n\r\n"
                         "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                         "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    http_body_t whole = {0}, bytes = {0};
    assert_true(engine_run(&f->routes, 1024, stream, strlen(stream), 0, &whole));
    assert_true(engine_run(&f->routes, 1024, stream, strlen(stream), 1, &bytes));
    strip_dates(&whole);
    strip_dates(&bytes);
    assert_string_equal(whole.data, bytes.data);
    const char *want = "HTTP/1.1 200 OK\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Length: 3\r\n\r\nok\n"
                       "HTTP/1.1 200 OK\r\n"
                       "Content-Type: " METRICS_TYPE "\r\n"
                       "Content-Length: 43\r\n\r\n"
                       "HTTP/1.1 405 Method Not Allowed\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Length: 23\r\n"
                       "Allow: GET, HEAD\r\n\r\n405 Method Not Allowed\n"
                       "HTTP/1.1 200 OK\r\n"
                       "Content-Type: " METRICS_TYPE "\r\n"
                       "Content-Length: 43\r\n\r\n" METRICS_PAGE "HTTP/1.1 404 Not Found\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Length: 14\r\n"
                       "Connection: close\r\n\r\n404 Not Found\n";
    assert_int_equal(strlen(METRICS_PAGE), 43);
    assert_string_equal(whole.data, want);
    http_body_free(&whole);
    http_body_free(&bytes);
}

static void engine_pauses_past_the_high_water_mark_and_resumes(void **state)
{
    fixture_t *f = *state;
    f->big = 200000;
    char stream[10 * 40];
    size_t len = 0;
    for (int i = 0; i < 10; i++)
        len += (size_t)snprintf(stream + len, sizeof(stream) - len,
                                "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    http_conn_t *c;
    http_body_t out = {0};
    assert_int_equal(http_conn_new(&f->routes, 1024, &c), 0);
    size_t off = 0, feeds = 0, responses = 0;
    while (off < len) {
        size_t used = http_conn_feed(c, stream + off, len - off, &out);
        assert_true(out.len < 2 * 200000 + 4096); /* at most a page past the mark */
        for (const char *p = out.data; p != NULL && p < out.data + out.len;
             p = memmem(p + 1, out.len - (size_t)(p + 1 - out.data), "HTTP/1.1 200", 12))
            responses++;
        out.len = 0;
        off += used;
        feeds++;
    }
    assert_false(http_conn_closing(c));
    assert_true(feeds > 1);
    assert_int_equal(responses, 10);
    http_conn_free(c);
    http_body_free(&out);
}

static void engine_answers_upgrade_requests_then_closes(void **state)
{
    fixture_t *f = *state;
    const char *stream = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                         "Upgrade: websocket\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    http_body_t out = {0};
    assert_true(engine_run(&f->routes, 1024, stream, strlen(stream), 0, &out));
    assert_int_equal(http_body_append(&out, "", 1), 0);
    assert_non_null(strstr(out.data, "Connection: close\r\n"));
    assert_null(strstr(strstr(out.data, "ok\n"), "HTTP/1.1")); /* one response only */
    http_body_free(&out);
}

static void engine_awaits_a_head_at_the_start_and_after_any_byte_past_a_complete_one(void **state)
{
    fixture_t *f = *state;
    http_conn_t *c;
    http_body_t out = {0};
    assert_int_equal(http_conn_new(&f->routes, 1024, &c), 0);
    assert_true(http_conn_awaiting_head(c)); /* nothing sent yet */
    const char *head = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    assert_int_equal(http_conn_feed(c, head, strlen(head), &out), strlen(head));
    assert_true(http_conn_awaiting_head(c));
    assert_int_equal(http_conn_feed(c, "\r\n", 2, &out), 2);
    assert_false(http_conn_awaiting_head(c)); /* answered; idle */
    assert_true(out.len > 0);
    assert_int_equal(http_conn_feed(c, "\r\n", 2, &out), 2); /* an empty line before a request */
    assert_true(http_conn_awaiting_head(c));
    const char *more = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\n";
    assert_int_equal(http_conn_feed(c, more, strlen(more), &out), strlen(more));
    assert_true(http_conn_awaiting_head(c)); /* the second, pipelined, is half there */
    const char *last = "Host: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(http_conn_feed(c, last, strlen(last), &out), strlen(last));
    assert_true(http_conn_closing(c));
    assert_false(http_conn_awaiting_head(c));
    http_conn_free(c);

    assert_int_equal(http_conn_new(&f->routes, 1024, &c), 0);
    const char *partial = "GET / HTTP/1.1\r\nHost";
    assert_int_equal(http_conn_feed(c, partial, strlen(partial), &out), strlen(partial));
    assert_true(http_conn_awaiting_head(c));
    assert_int_equal(http_conn_feed(c, "\x01\r\n", 3, &out), 3); /* garbage: 400, closing */
    assert_true(http_conn_closing(c));
    assert_false(http_conn_awaiting_head(c));
    http_conn_free(c);
    http_body_free(&out);
}

/* A reload's new http.max_header reaches an open connection: the request
 * after the change is held to it, the one before was not. */
static void engine_holds_the_next_request_to_a_new_max_header(void **state)
{
    fixture_t *f = *state;
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: "
                      "a-client-with-a-name-of-some-length/1.0\r\n\r\n";
    http_conn_t *c;
    http_body_t out = {0};
    assert_int_equal(http_conn_new(&f->routes, 1024, &c), 0);
    assert_int_equal(http_conn_feed(c, req, strlen(req), &out), strlen(req));
    assert_false(http_conn_closing(c));
    assert_int_equal(http_body_append(&out, "", 1), 0);
    assert_memory_equal(out.data, "HTTP/1.1 200 OK\r\n", 17);
    out.len = 0;
    http_conn_set_max_header(c, 64);
    assert_int_equal(http_conn_feed(c, req, strlen(req), &out), strlen(req));
    assert_true(http_conn_closing(c));
    assert_int_equal(http_body_append(&out, "", 1), 0);
    assert_memory_equal(out.data, "HTTP/1.1 431 ", 13);
    assert_non_null(strstr(out.data, "Connection: close\r\n"));
    http_conn_free(c);
    http_body_free(&out);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Checks that out is a sequence of whole responses. */
static void assert_responses(const http_body_t *out)
{
    size_t off = 0;
    while (off < out->len) {
        const char *p = out->data + off;
        assert_true(out->len - off > 12);
        assert_memory_equal(p, "HTTP/1.1 ", 9);
        const char *end = memmem(p, out->len - off, "\r\n\r\n", 4);
        assert_non_null(end);
        const char *cl = memmem(p, (size_t)(end - p), "Content-Length: ", 16);
        assert_non_null(cl);
        size_t blen = strtoul(cl + 16, NULL, 10);
        size_t hlen = (size_t)(end - p) + 4;
        /* HEAD responses carry no body: then the next response follows. */
        if (off + hlen + blen > out->len ||
            (off + hlen < out->len && memcmp(p + hlen, "HTTP/1.1 ", 9) == 0))
            blen = 0;
        off += hlen + blen;
    }
}

static void engine_survives_random_and_mutated_input(void **state)
{
    fixture_t *f = *state;
    static const char *const seeds[] = {
        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        "HEAD /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET /debug/mallocstats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET http://h:1/healthz?q#f HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    };
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    char buf[2048];
    http_body_t out = {0};
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0;
        if (iter % 4 == 0) { /* random bytes */
            len = rng_next(&rng) % 300;
            for (size_t i = 0; i < len; i++)
                buf[i] = (char)rng_next(&rng);
        } else { /* a few requests, then mutations */
            int n = 1 + (int)(rng_next(&rng) % 4);
            for (int k = 0; k < n; k++) {
                const char *s = seeds[rng_next(&rng) % (sizeof(seeds) / sizeof(seeds[0]))];
                size_t sl = strlen(s);
                if (len + sl < sizeof(buf) / 2) {
                    memcpy(buf + len, s, sl);
                    len += sl;
                }
            }
            int muts = (int)(rng_next(&rng) % 4);
            for (int m = 0; m < muts && len > 0; m++) {
                size_t at = rng_next(&rng) % len;
                switch (rng_next(&rng) % 4) {
                case 0:
                    buf[at] ^= (char)(1u << (rng_next(&rng) % 8));
                    break;
                case 1:
                    buf[at] = (char)rng_next(&rng);
                    break;
                case 2:
                    len = at;
                    break;
                default:
                    if (len + 64 < sizeof(buf)) {
                        memmove(buf + at + 64, buf + at, len - at);
                        memset(buf + at, "a:\r\n /0"[rng_next(&rng) % 7], 64);
                        len += 64;
                    }
                }
            }
        }
        out.len = 0;
        size_t step = 1 + rng_next(&rng) % 40;
        engine_run(&f->routes, 256 + rng_next(&rng) % 512, buf, len, rng_next(&rng) % 2 ? step : 0,
                   &out);
        assert_responses(&out);
    }
    http_body_free(&out);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(healthz_without_a_route_is_always_ok),
        T(engine_reads_an_accept_header_that_arrives_a_byte_at_a_time),
        T(engine_answers_the_same_fed_whole_or_byte_by_byte),
        T(engine_pauses_past_the_high_water_mark_and_resumes),
        T(engine_answers_upgrade_requests_then_closes),
        T(engine_awaits_a_head_at_the_start_and_after_any_byte_past_a_complete_one),
        T(engine_holds_the_next_request_to_a_new_max_header),
        T(engine_survives_random_and_mutated_input),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

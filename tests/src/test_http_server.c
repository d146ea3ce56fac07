/*
 * test_http_server.c - src/http_server.c: the operations server over real
 * TCP, on a real loop, answering with the real engine (src/http.c, whose
 * own tests, without sockets, are test_http.c).
 *
 * The server runs on a libuv loop owned by the test; the client is a plain
 * non-blocking socket, and the test turns the loop (UV_RUN_NOWAIT) while it
 * waits for bytes, so both ends run on this one thread. The routes are test
 * routes: a short Prometheus page (or a failing one, or a big one), the real
 * allocator report of a heap made here, and a health route that says
 * healthy or not (or fails) and which form, text or JSON, it was asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc/alloc.h"
#include "src/http_server.h"

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_PAGE "# HELP t_up Test.\n# TYPE t_up gauge\nt_up 1\n"

typedef struct fixture {
    uv_loop_t loop;
    config_t *cfg;
    http_server_t *srv;
    http_routes_t routes;
    heap_t *heap;
    int healthy;
    int health_fail; /* the health route fails */
    int asked_json;  /* the form the health route was last asked for */
    int fail;        /* the metrics route fails */
    size_t big;      /* the metrics page is this many bytes (0: METRICS_PAGE) */
    int stopped;
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
    fixture_t *f = arg;
    size_t need = heap_format_stats(f->heap, NULL, 0);
    int err = http_body_reserve(body, need + 1);
    if (err != 0)
        return err;
    body->len += heap_format_stats(f->heap, body->data + body->len, need + 1);
    return 0;
}

static int route_health(void *arg, int json, http_body_t *body)
{
    fixture_t *f = arg;
    f->asked_json = json;
    if (f->health_fail)
        return -ENOMEM;
    int err =
        json ? http_body_printf(body, "{\"status\":\"%s\"}\n", f->healthy ? "ok" : "unhealthy")
             : http_body_printf(body, "%s", f->healthy ? "ok\n" : "unhealthy\nfeed x: stale\n");
    return err != 0 ? err : f->healthy;
}

/* ---- the server ---- */

static void start(fixture_t *f)
{
    char err[CONFIG_ERR_LEN];
    int r = http_start(&f->loop, f->cfg, &f->routes, &f->srv, err, sizeof(err));
    if (r != 0)
        fail_msg("http_start: %s", err);
    assert_true(http_port(f->srv) > 0);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->cfg = calloc(1, sizeof(*f->cfg));
    assert_non_null(f->cfg);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(heap_create(NULL, &f->heap), 0);
    void *p = heap_alloc(f->heap, 48);
    assert_non_null(p);
    strcpy(f->cfg->http.listen, "127.0.0.1:0");
    f->cfg->http.max_connections = 8;
    f->cfg->http.max_header = 1024;
    f->cfg->http.idle_timeout_ns = 10ull * 1000000000;
    f->cfg->http.header_timeout_ns = 10ull * 1000000000;
    f->routes = (http_routes_t){
        .metrics = route_metrics,
        .mallocstats = route_mallocstats,
        .health = route_health,
        .arg = f,
    };
    f->healthy = 1;
    start(f);
    *state = f;
    return 0;
}

static void on_stopped(void *arg)
{
    ((fixture_t *)arg)->stopped++;
}

/* Stops the server and turns the loop until every handle is closed. */
static void stop(fixture_t *f)
{
    http_stop(f->srv, on_stopped, f);
    for (int i = 0; i < 1000 && !f->stopped; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->stopped, 1);
    http_free(f->srv);
    f->srv = NULL;
    f->stopped = 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->srv != NULL)
        stop(f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* no handle left behind */
    heap_destroy(f->heap);
    free(f->cfg);
    free(f);
    return 0;
}

/* Restarts the server with other limits. */
static void restart(fixture_t *f, uint32_t max_connections, size_t max_header, uint64_t idle_ns)
{
    stop(f);
    f->cfg->http.max_connections = max_connections;
    f->cfg->http.max_header = max_header;
    f->cfg->http.idle_timeout_ns = idle_ns;
    start(f);
}

/* ---- the client ---- */

typedef struct client {
    int fd;
    char *buf; /* received, not yet taken as a response */
    size_t len, cap;
    int eof; /* the server closed (EOF or reset) */
} client_t;

typedef struct response {
    int status;
    char head[4096]; /* status line and headers */
    char *body;
    size_t body_len;
} response_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_connect_port(client_t *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
}

static void client_connect(fixture_t *f, client_t *c)
{
    client_connect_port(c, http_port(f->srv));
}

static void client_close(client_t *c)
{
    close(c->fd);
    free(c->buf);
}

/* One turn: the server's loop, then whatever the client can read. */
static void pump(fixture_t *f, client_t *c)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (c == NULL || c->eof) {
        poll(NULL, 0, 1);
        return;
    }
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    poll(&p, 1, 1);
    for (;;) {
        if (c->cap - c->len < 65536) {
            c->cap = c->cap * 2 + 65536;
            c->buf = realloc(c->buf, c->cap);
            assert_non_null(c->buf);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            c->eof = 1;
        return;
    }
}

/* Sends all of data, turning the loop while the socket is full. */
static void client_send_len(fixture_t *f, client_t *c, const char *data, size_t len)
{
    int64_t deadline = now_ms() + 5000;
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        assert_true(n < 0 && errno == EAGAIN);
        assert_true(now_ms() < deadline);
        pump(f, c);
    }
}

static void client_send(fixture_t *f, client_t *c, const char *data)
{
    client_send_len(f, c, data, strlen(data));
}

/* A complete response at the start of c->buf: its length, else 0. */
static size_t response_length(const client_t *c, int head)
{
    if (c->len < 4)
        return 0;
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t hlen = (size_t)(end - c->buf) + 4;
    size_t blen = 0;
    for (const char *p = c->buf; p < end; p++) {
        if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0) {
            blen = strtoul(p + 15, NULL, 10);
            break;
        }
    }
    if (head)
        blen = 0;
    return c->len >= hlen + blen ? hlen + blen : 0;
}

/* Reads the next response (HEAD: no body). Fails after 5 seconds or when
 * the server closes first. */
static void read_response(fixture_t *f, client_t *c, int head, response_t *r)
{
    int64_t deadline = now_ms() + 5000;
    size_t total;
    while ((total = response_length(c, head)) == 0) {
        if (c->eof)
            fail_msg("connection closed before a whole response (%zu bytes: %.*s)", c->len,
                     (int)(c->len < 200 ? c->len : 200), c->buf);
        if (now_ms() > deadline)
            fail_msg("no whole response in 5 s (%zu bytes: %.*s)", c->len,
                     (int)(c->len < 200 ? c->len : 200), c->buf);
        pump(f, c);
    }
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    size_t hlen = (size_t)(end - c->buf) + 4;
    assert_true(hlen < sizeof(r->head));
    memcpy(r->head, c->buf, hlen);
    r->head[hlen] = '\0';
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    r->body_len = total - hlen;
    r->body = malloc(r->body_len + 1);
    assert_non_null(r->body);
    memcpy(r->body, c->buf + hlen, r->body_len);
    r->body[r->body_len] = '\0';
    memmove(c->buf, c->buf + total, c->len - total);
    c->len -= total;
}

static void response_free(response_t *r)
{
    free(r->body);
    r->body = NULL;
}

/* The value of header name in r (without CRLF) in a static buffer, or NULL. */
static const char *header(const response_t *r, const char *name)
{
    static char value[512];
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r");
            if (len >= sizeof(value))
                len = sizeof(value) - 1;
            memcpy(value, v, len);
            value[len] = '\0';
            return value;
        }
    }
    return NULL;
}

/* Does the server close the connection within ms, with nothing more sent? */
static int closed_within(fixture_t *f, client_t *c, int64_t ms)
{
    int64_t deadline = now_ms() + ms;
    while (!c->eof && now_ms() < deadline)
        pump(f, c);
    return c->eof && c->len == 0;
}

/* Is the connection still open after ms of turning the loop? */
static int open_after(fixture_t *f, client_t *c, int64_t ms)
{
    int64_t deadline = now_ms() + ms;
    while (!c->eof && now_ms() < deadline)
        pump(f, c);
    return !c->eof;
}

/* One request on a new connection, one response. */
static void request(fixture_t *f, const char *req, int head, response_t *r)
{
    client_t c;
    client_connect(f, &c);
    client_send(f, &c, req);
    read_response(f, &c, head, r);
    client_close(&c);
}

static void assert_content_length(const response_t *r, size_t len)
{
    const char *v = header(r, "Content-Length");
    assert_non_null(v);
    assert_int_equal(strtoul(v, NULL, 10), len);
}

/* ---- the routes over TCP ---- */

static void metrics_is_200_with_the_exact_prometheus_content_type(void **state)
{
    fixture_t *f = *state;
    response_t r;
    request(f, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), METRICS_TYPE);
    assert_content_length(&r, strlen(METRICS_PAGE));
    assert_string_equal(r.body, METRICS_PAGE);
    assert_non_null(header(&r, "Date"));
    response_free(&r);
}

static void mallocstats_is_the_allocator_report_as_plain_text(void **state)
{
    fixture_t *f = *state;
    response_t r;
    request(f, "GET /debug/mallocstats HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "text/plain; charset=utf-8");
    char report[65536];
    size_t n = heap_format_stats(f->heap, report, sizeof(report));
    assert_true(n > 100 && n < sizeof(report));
    assert_int_equal(r.body_len, n);
    assert_string_equal(r.body, report);
    response_free(&r);
}

static void healthz_is_200_while_healthy_and_503_with_the_routes_text_when_not(void **state)
{
    fixture_t *f = *state;
    response_t r;
    request(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    assert_string_equal(header(&r, "Content-Type"), "text/plain; charset=utf-8");
    assert_int_equal(f->asked_json, 0);
    response_free(&r);
    f->healthy = 0;
    request(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "unhealthy\nfeed x: stale\n");
    assert_content_length(&r, 24);
    response_free(&r);
}

/* GET /healthz with target and extra header lines: is it answered as JSON? */
static int healthz_is_json(fixture_t *f, const char *target, const char *headers)
{
    char req[1024];
    response_t r;
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", target, headers);
    f->asked_json = -1;
    request(f, req, 0, &r);
    assert_int_equal(r.status, 503);
    assert_int_not_equal(f->asked_json, -1);
    const char *type = header(&r, "Content-Type");
    assert_non_null(type);
    if (f->asked_json) {
        assert_string_equal(type, "application/json");
        assert_string_equal(r.body, "{\"status\":\"unhealthy\"}\n");
    } else {
        assert_string_equal(type, "text/plain; charset=utf-8");
        assert_string_equal(r.body, "unhealthy\nfeed x: stale\n");
    }
    response_free(&r);
    return f->asked_json;
}

static void healthz_is_json_for_verbose_or_an_accept_naming_application_json(void **state)
{
    fixture_t *f = *state;
    f->healthy = 0;
    assert_true(healthz_is_json(f, "/healthz?verbose", ""));
    assert_true(healthz_is_json(f, "/healthz?verbose=1", ""));
    assert_true(healthz_is_json(f, "/healthz?a=b&verbose&c", ""));
    assert_true(healthz_is_json(f, "/healthz", "Accept: application/json\r\n"));
    assert_true(healthz_is_json(f, "/healthz", "Accept: text/html, Application/JSON;q=0.9\r\n"));
    assert_true(
        healthz_is_json(f, "/healthz", "Accept: text/plain\r\naccept: application/json\r\n"));

    assert_false(healthz_is_json(f, "/healthz", ""));
    assert_false(healthz_is_json(f, "/healthz?verbose=0", ""));
    assert_false(healthz_is_json(f, "/healthz?verbose=false", ""));
    assert_false(healthz_is_json(f, "/healthz?verbosity", ""));
    assert_false(healthz_is_json(f, "/healthz", "Accept: */*\r\n"));
    assert_false(healthz_is_json(f, "/healthz", "Accept: application/jsonl\r\n"));
    assert_false(healthz_is_json(f, "/healthz", "Accept-Language: application/json\r\n"));
    /* Accept on one request does not carry over to the next on the connection. */
    client_t c;
    response_t r;
    client_connect(f, &c);
    client_send(f, &c,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n"
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &c, 0, &r);
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    response_free(&r);
    read_response(f, &c, 0, &r);
    assert_string_equal(header(&r, "Content-Type"), "text/plain; charset=utf-8");
    response_free(&r);
    client_close(&c);
}

static void healthz_route_failure_is_500(void **state)
{
    fixture_t *f = *state;
    response_t r;
    f->health_fail = 1;
    request(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 500);
    response_free(&r);
}

static void unknown_paths_are_404(void **state)
{
    fixture_t *f = *state;
    const char *paths[] = {"/", "/metricsx", "/metrics/", "/debug", "/HEALTHZ", "/favicon.ico"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char req[128];
        response_t r;
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
        request(f, req, 0, &r);
        if (r.status != 404)
            fail_msg("GET %s: %d", paths[i], r.status);
        response_free(&r);
    }
}

static void query_and_absolute_form_targets_reach_their_route(void **state)
{
    fixture_t *f = *state;
    response_t r;
    request(f, "GET /metrics?name[]=x HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    request(f, "GET http://localhost:9108/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    response_free(&r);
}

static void other_methods_are_405_with_allow_get_head_and_keep_the_connection(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;
    client_connect(f, &c);
    client_send(f, &c, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(header(&r, "Allow"), "GET, HEAD");
    response_free(&r);
    client_send(f, &c, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 405);
    response_free(&r);
    client_send(f, &c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(&c);
}

static void post_with_a_body_is_405_and_closes(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;
    client_connect(f, &c);
    client_send(f, &c, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(header(&r, "Allow"), "GET, HEAD");
    assert_string_equal(header(&r, "Connection"), "close");
    response_free(&r);
    assert_true(closed_within(f, &c, 3000));
    client_close(&c);
}

static void garbage_is_400_and_the_connection_closes(void **state)
{
    fixture_t *f = *state;
    const char *garbage[] = {
        "HELLO\r\n\r\n", "GET /metrics HTTP/1.1\r\nHost x\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHo\x01st: x\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        client_t c;
        response_t r;
        client_connect(f, &c);
        client_send(f, &c, garbage[i]);
        read_response(f, &c, 0, &r);
        if (r.status != 400)
            fail_msg("garbage %zu: %d", i, r.status);
        assert_string_equal(header(&r, "Connection"), "close");
        response_free(&r);
        assert_true(closed_within(f, &c, 3000));
        client_close(&c);
    }
}

static void http11_without_exactly_one_host_is_400(void **state)
{
    fixture_t *f = *state;
    response_t r;
    request(f, "GET /healthz HTTP/1.1\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 400);
    response_free(&r);
    request(f, "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 400);
    response_free(&r);
    request(f, "GET /healthz HTTP/1.0\r\n\r\n", 0, &r); /* HTTP/1.0 needs none */
    assert_int_equal(r.status, 200);
    response_free(&r);
}

static void headers_over_max_header_are_431_and_close(void **state)
{
    fixture_t *f = *state;
    char req[4096];
    char big[2000];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", big);
    client_t c;
    response_t r;
    client_connect(f, &c);
    client_send(f, &c, req);
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 431);
    assert_string_equal(header(&r, "Connection"), "close");
    response_free(&r);
    assert_true(closed_within(f, &c, 3000));
    client_close(&c);

    /* Many small headers count too; just under the limit passes. */
    size_t len = (size_t)snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(req + len, sizeof(req) - len, "X-%02d: 123456789\r\n", i);
    snprintf(req + len, sizeof(req) - len, "\r\n");
    request(f, req, 0, &r);
    assert_int_equal(r.status, 431);
    response_free(&r);
    snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: %.900s\r\n\r\n", big);
    request(f, req, 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
}

static void long_request_targets_are_414(void **state)
{
    fixture_t *f = *state;
    char req[1024];
    char path[600];
    memset(path, 'p', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    response_t r;
    request(f, req, 0, &r);
    assert_int_equal(r.status, 414);
    response_free(&r);
}

static void requests_with_a_body_are_413_and_close(void **state)
{
    fixture_t *f = *state;
    const char *reqs[] = {
        "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
        "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++) {
        client_t c;
        response_t r;
        client_connect(f, &c);
        client_send(f, &c, reqs[i]);
        read_response(f, &c, 0, &r);
        assert_int_equal(r.status, 413);
        assert_string_equal(header(&r, "Connection"), "close");
        response_free(&r);
        assert_true(closed_within(f, &c, 3000));
        client_close(&c);
    }
}

static void other_http_versions_are_505(void **state)
{
    fixture_t *f = *state;
    response_t r;
    request(f, "GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 505);
    response_free(&r);
    request(f, "GET /metrics\r\n\r\n", 0, &r); /* HTTP/0.9: a request line alone */
    assert_int_equal(r.status, 505);
    response_free(&r);
}

static void route_failure_is_500(void **state)
{
    fixture_t *f = *state;
    f->fail = 1;
    response_t r;
    request(f, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 500);
    response_free(&r);
}

/* ---- connection handling over TCP ---- */

static void keep_alive_serves_two_requests_on_one_connection(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;
    client_connect(f, &c);
    for (int i = 0; i < 2; i++) {
        client_send(f, &c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        read_response(f, &c, 0, &r);
        assert_int_equal(r.status, 200);
        assert_null(header(&r, "Connection"));
        assert_string_equal(r.body, METRICS_PAGE);
        response_free(&r);
    }
    assert_true(open_after(f, &c, 50));
    client_close(&c);
}

static void pipelined_requests_are_answered_in_order(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;
    client_connect(f, &c);
    client_send(f, &c,
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    response_free(&r);
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 404);
    response_free(&r);
    read_response(f, &c, 1, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    response_free(&r);
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, METRICS_PAGE);
    response_free(&r);
    client_close(&c);
}

static void a_pipelined_flood_of_big_pages_arrives_whole_and_in_order(void **state)
{
    fixture_t *f = *state;
    f->big = 100000; /* 60 of them: far past the output high-water mark */
    static char reqs[60 * 64];
    size_t len = 0;
    for (int i = 0; i < 59; i++)
        len += (size_t)snprintf(reqs + len, sizeof(reqs) - len,
                                "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    len += (size_t)snprintf(reqs + len, sizeof(reqs) - len,
                            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    client_t c;
    response_t r;
    client_connect(f, &c);
    client_send_len(f, &c, reqs, len);
    for (int i = 0; i < 59; i++) {
        read_response(f, &c, 0, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, f->big);
        assert_int_equal(r.body[63], '\n');
        response_free(&r);
    }
    read_response(f, &c, 0, &r);
    assert_string_equal(r.body, "ok\n");
    response_free(&r);
    assert_true(closed_within(f, &c, 3000));
    client_close(&c);
}

static void connection_close_is_honoured(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;
    client_connect(f, &c);
    client_send(f, &c,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Connection"), "close");
    response_free(&r);
    assert_true(closed_within(f, &c, 3000)); /* the second request is not answered */
    client_close(&c);
}

static void http10_closes_unless_keep_alive_is_asked(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;
    client_connect(f, &c);
    client_send(f, &c, "GET /healthz HTTP/1.0\r\n\r\n");
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Connection"), "close");
    response_free(&r);
    assert_true(closed_within(f, &c, 3000));
    client_close(&c);

    client_connect(f, &c);
    for (int i = 0; i < 2; i++) {
        client_send(f, &c, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        read_response(f, &c, 0, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Connection"), "keep-alive");
        response_free(&r);
    }
    assert_true(open_after(f, &c, 50));
    client_close(&c);
}

static void head_has_content_length_but_no_body(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;
    client_connect(f, &c);
    const char *paths[] = {"/metrics", "/healthz", "/nope"};
    size_t lens[] = {strlen(METRICS_PAGE), 3, strlen("404 Not Found\n")};
    for (size_t i = 0; i < 3; i++) {
        char req[128];
        snprintf(req, sizeof(req), "HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
        client_send(f, &c, req);
        read_response(f, &c, 1, &r);
        assert_content_length(&r, lens[i]);
        response_free(&r);
    }
    assert_string_equal(header(&r, "Content-Type"), "text/plain; charset=utf-8");
    /* Nothing followed the headers: the next bytes are the next response. */
    client_send(f, &c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    response_free(&r);
    client_close(&c);
}

static void connections_over_the_limit_get_503_when_none_is_sending_a_head(void **state)
{
    fixture_t *f = *state;
    restart(f, 2, 1024, 10ull * 1000000000);
    client_t a, b, extra;
    response_t r;
    client_connect(f, &a);
    client_connect(f, &b);
    client_send(f, &a, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    client_send(f, &b, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &a, 0, &r);
    response_free(&r);
    read_response(f, &b, 0, &r);
    response_free(&r);

    client_connect(f, &extra);
    read_response(f, &extra, 0, &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(header(&r, "Connection"), "close");
    assert_content_length(&r, r.body_len);
    response_free(&r);
    assert_true(closed_within(f, &extra, 3000));
    client_close(&extra);

    /* The two connections in the limit still work; once one goes, a new one
     * is served. */
    client_send(f, &a, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &a, 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(&b);
    for (int i = 0; i < 50; i++)
        pump(f, NULL);
    client_connect(f, &extra);
    client_send(f, &extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &extra, 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(&extra);
    client_close(&a);
}

/* Turns the loop for ms, reading on every client in cs (n of them). */
static void pump_all(fixture_t *f, client_t *cs[], size_t n, int64_t ms)
{
    int64_t until = now_ms() + ms;
    do {
        for (size_t i = 0; i < n; i++)
            pump(f, cs[i]);
    } while (now_ms() < until);
}

static void at_the_limit_a_new_connection_evicts_the_oldest_one_still_sending_its_head(void **state)
{
    fixture_t *f = *state;
    restart(f, 3, 1024, 10ull * 1000000000);
    client_t done, slow, silent, new1, new2, extra;
    client_t *all[] = {&done, &slow, &silent, &new1, &new2};
    response_t r;
    /* In accept order: done has had its answer and idles, slow is halfway
     * through a head, silent has sent nothing. */
    client_connect(f, &done);
    client_send(f, &done, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &done, 0, &r);
    response_free(&r);
    client_connect(f, &slow);
    client_send(f, &slow, "GET /metrics HTTP/1.1\r\nX-a:");
    pump_all(f, all, 2, 50);
    client_connect(f, &silent);
    pump_all(f, all, 3, 50);

    /* The fourth takes slow's place, the oldest awaiting a head. */
    client_connect(f, &new1);
    client_send(f, &new1, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &new1, 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_true(closed_within(f, &slow, 3000));
    pump_all(f, all, 3, 100);
    assert_false(done.eof);
    assert_false(silent.eof);

    /* The fifth takes silent's: done and new1 have had their answers. */
    client_connect(f, &new2);
    client_send(f, &new2, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &new2, 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_true(closed_within(f, &silent, 3000));
    pump_all(f, all, 5, 100);
    assert_false(done.eof);
    assert_false(new1.eof);

    /* Now none awaits a head: a sixth is refused, and the three still work. */
    client_connect(f, &extra);
    read_response(f, &extra, 0, &r);
    assert_int_equal(r.status, 503);
    response_free(&r);
    client_close(&extra);
    client_t *kept[] = {&done, &new1, &new2};
    for (size_t i = 0; i < 3; i++) {
        client_send(f, kept[i], "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        read_response(f, kept[i], 0, &r);
        assert_int_equal(r.status, 200);
        response_free(&r);
    }
    for (size_t i = 0; i < 5; i++)
        client_close(all[i]);
}

/* Sends bytes one at a time, one every every_ms, until the server closes
 * (then returns the ms since the first one) or max_ms pass (then -1). A
 * send that fails because the server closed is not an error here. */
static int64_t trickle_until_closed(fixture_t *f, client_t *c, const char *bytes, int64_t every_ms,
                                    int64_t max_ms)
{
    int64_t t0 = now_ms(), next = t0;
    size_t i = 0;
    while (!c->eof) {
        int64_t now = now_ms();
        if (now - t0 > max_ms)
            return -1;
        if (now >= next && bytes[i] != '\0') {
            send(c->fd, &bytes[i++], 1, MSG_NOSIGNAL);
            next = now + every_ms;
        }
        pump(f, c);
    }
    return now_ms() - t0;
}

static void
a_head_not_complete_within_the_header_timeout_is_closed_however_it_trickles(void **state)
{
    fixture_t *f = *state;
    f->cfg->http.header_timeout_ns = 300ull * 1000000; /* 300 ms */
    restart(f, 8, 1024, 10ull * 1000000000);
    client_t answered, silent, slow;
    response_t r;
    client_connect(f, &answered);
    client_send(f, &answered, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &answered, 0, &r);
    response_free(&r);
    client_connect(f, &silent);
    client_connect(f, &slow);
    /* A byte every 40 ms keeps the idle timeout (10 s) away, not the head's. */
    int64_t took = trickle_until_closed(
        f, &slow, "GET /metrics HTTP/1.1\r\nX-a: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40,
        3000);
    assert_true(took >= 250 && took < 3000);
    assert_int_equal(slow.len, 0); /* closed without an answer */
    assert_true(closed_within(f, &silent, 1000));
    assert_int_equal(silent.len, 0);
    assert_true(open_after(f, &answered, 200)); /* idle after an answer: idle_timeout's */
    client_send(f, &answered, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(f, &answered, 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(&answered);
    client_close(&silent);
    client_close(&slow);
}

static void the_head_deadline_of_a_keep_alive_request_starts_at_its_first_byte(void **state)
{
    fixture_t *f = *state;
    f->cfg->http.header_timeout_ns = 300ull * 1000000; /* 300 ms */
    restart(f, 8, 1024, 10ull * 1000000000);
    client_t c;
    response_t r;
    client_connect(f, &c);
    /* A head sent in pieces within the deadline is answered. */
    const char *pieces[] = {"GET /healthz HTTP/1.1\r\n", "Host: x\r\n", "\r\n"};
    for (size_t i = 0; i < 3; i++) {
        client_send(f, &c, pieces[i]);
        pump_all(f, (client_t *[]){&c}, 1, 50);
    }
    read_response(f, &c, 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    /* Idle after the answer for longer than the head deadline: still open. */
    assert_true(open_after(f, &c, 500));
    /* The next head's deadline runs from its first byte. */
    int64_t took = trickle_until_closed(
        f, &c, "GET /healthz HTTP/1.1\r\nX-a: aaaaaaaaaaaaaaaaaaaaaa", 40, 3000);
    assert_true(took >= 250 && took < 3000);
    assert_int_equal(c.len, 0);
    client_close(&c);
}

static void idle_connections_are_closed_after_the_timeout(void **state)
{
    fixture_t *f = *state;
    restart(f, 8, 1024, 300ull * 1000000); /* 300 ms */
    client_t idle, busy;
    response_t r;
    client_connect(f, &idle);
    client_connect(f, &busy);
    int64_t t0 = now_ms();
    /* busy sends a request every 100 ms: never idle for 300 ms. */
    for (int i = 0; i < 6; i++) {
        client_send(f, &busy, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        read_response(f, &busy, 0, &r);
        response_free(&r);
        int64_t until = now_ms() + 100;
        while (now_ms() < until)
            pump(f, &idle);
    }
    assert_true(closed_within(f, &idle, 3000));
    assert_true(now_ms() - t0 >= 290);
    assert_false(busy.eof);
    /* Idle from now on, busy goes too. */
    assert_true(closed_within(f, &busy, 3000));
    client_close(&idle);
    client_close(&busy);
}

static void stop_closes_every_connection_then_calls_done(void **state)
{
    fixture_t *f = *state;
    client_t a, b;
    client_connect(f, &a);
    client_connect(f, &b);
    client_send(f, &b, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    for (int i = 0; i < 20; i++)
        pump(f, &b);
    int port = http_port(f->srv);
    stop(f);
    assert_true(closed_within(f, &a, 3000));
    client_close(&a);
    client_close(&b);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(fd);
}

static void stop_of_a_server_never_started_calls_done_at_once(void **state)
{
    fixture_t *f = *state;
    http_stop(NULL, on_stopped, f);
    assert_int_equal(f->stopped, 1);
    f->stopped = 0;
}

static void reconfigure_moves_the_listener_and_keeps_it_on_error(void **state)
{
    fixture_t *f = *state;
    char err[CONFIG_ERR_LEN] = "";
    int old = http_port(f->srv);
    strcpy(f->cfg->http.listen, "127.0.0.1:00"); /* another string: a new ephemeral port */
    assert_int_equal(http_reconfigure(f->srv, f->cfg, err, sizeof(err)), 0);
    int now = http_port(f->srv);
    assert_true(now > 0 && now != old);
    response_t r;
    request(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);

    strcpy(f->cfg->http.listen, "127.0.0.1:notaport");
    assert_true(http_reconfigure(f->srv, f->cfg, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "http.listen"));
    assert_int_equal(http_port(f->srv), now);
    request(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
}

static void start_on_a_taken_port_fails_with_a_message(void **state)
{
    fixture_t *f = *state;
    config_t *cfg = calloc(1, sizeof(*cfg));
    assert_non_null(cfg);
    *cfg = *f->cfg;
    snprintf(cfg->http.listen, sizeof(cfg->http.listen), "127.0.0.1:%d", http_port(f->srv));
    http_server_t *other = NULL;
    char err[CONFIG_ERR_LEN] = "";
    int r = http_start(&f->loop, cfg, &f->routes, &other, err, sizeof(err));
    assert_int_equal(r, UV_EADDRINUSE);
    assert_null(other);
    assert_non_null(strstr(err, "http.listen"));
    free(cfg);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(metrics_is_200_with_the_exact_prometheus_content_type),
        T(mallocstats_is_the_allocator_report_as_plain_text),
        T(healthz_is_200_while_healthy_and_503_with_the_routes_text_when_not),
        T(healthz_is_json_for_verbose_or_an_accept_naming_application_json),
        T(healthz_route_failure_is_500),
        T(unknown_paths_are_404),
        T(query_and_absolute_form_targets_reach_their_route),
        T(other_methods_are_405_with_allow_get_head_and_keep_the_connection),
        T(post_with_a_body_is_405_and_closes),
        T(garbage_is_400_and_the_connection_closes),
        T(http11_without_exactly_one_host_is_400),
        T(headers_over_max_header_are_431_and_close),
        T(long_request_targets_are_414),
        T(requests_with_a_body_are_413_and_close),
        T(other_http_versions_are_505),
        T(route_failure_is_500),
        T(keep_alive_serves_two_requests_on_one_connection),
        T(pipelined_requests_are_answered_in_order),
        T(a_pipelined_flood_of_big_pages_arrives_whole_and_in_order),
        T(connection_close_is_honoured),
        T(http10_closes_unless_keep_alive_is_asked),
        T(head_has_content_length_but_no_body),
        T(connections_over_the_limit_get_503_when_none_is_sending_a_head),
        T(at_the_limit_a_new_connection_evicts_the_oldest_one_still_sending_its_head),
        T(a_head_not_complete_within_the_header_timeout_is_closed_however_it_trickles),
        T(the_head_deadline_of_a_keep_alive_request_starts_at_its_first_byte),
        T(idle_connections_are_closed_after_the_timeout),
        T(stop_closes_every_connection_then_calls_done),
        T(stop_of_a_server_never_started_calls_done_at_once),
        T(reconfigure_moves_the_listener_and_keeps_it_on_error),
        T(start_on_a_taken_port_fails_with_a_message),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * http.c - the operations HTTP/1.1 server: a protocol engine that turns
 * request bytes into response bytes, and the libuv server that drives one
 * engine per connection.
 *
 * The engine (http_conn_*) wraps http-parser. It keeps no request bytes: the
 * parser streams, and the engine keeps only what routing needs (the target,
 * up to HTTP_TARGET_MAX bytes, the count of Host headers and the first
 * HTTP_ACCEPT_MAX bytes of Accept, which picks the /healthz page) and a running
 * count of header bytes for the http.max_header limit. Each completed request
 * is answered at once, appended to the caller's output buffer, so pipelined
 * requests are answered in order. Anything the engine refuses to parse
 * further (garbage, headers too large, a body, an HTTP version other than
 * 1.x) gets one error response with Connection: close, and the rest of the
 * input is ignored. It never allocates per byte, never recurses on input, and
 * bounds what it buffers: a fuzzer drives it with no socket at all.
 *
 * The server reads into one buffer shared by all connections (read callbacks
 * run one at a time and the engine consumes the bytes before returning), and
 * while a connection's responses are being written it stops reading from it:
 * a client that pipelines requests without reading the answers stalls itself,
 * it cannot grow our buffers. When the engine pauses at its high-water mark
 * the unparsed rest of the read is kept on the connection and fed again after
 * the write. A connection that must close is shut down for writing once its
 * last response is out, and what the peer still sends is read and dropped
 * until it closes or HTTP_LINGER_MS pass, so that a response to a bad request
 * is not lost to a reset.
 *
 * A client must not be able to hold connections by sending slowly (the
 * slowloris attack): every byte restarts the idle timeout, but a request head
 * has a deadline of its own, http.header_timeout from the accept, or from the
 * first byte after the last complete head, to the blank line that ends it.
 * One timer per connection serves both, set to the nearer. The open
 * connections sit on a list in accept order; at http.max_connections a new
 * connection closes the oldest one still awaiting a head and not being
 * written to, and takes its place. Only when every connection is being
 * answered or idle after a complete request is the newcomer refused with a
 * 503. So /metrics and /healthz answer however many slow clients there are:
 * each holds a place for at most the head deadline, and loses it sooner to
 * newer connections.
 *
 * Never logs, never blocks the loop (a host name in http.listen is resolved
 * at start and reload only), never crashes on input.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

#include "src/http.h"

#define HTTP_READ_SIZE  (64 * 1024)  /* one read, shared by every connection */
#define HTTP_OUT_HIGH   (256 * 1024) /* pause parsing while this much output waits */
#define HTTP_TARGET_MAX 256          /* longer request targets are answered 414 */
#define HTTP_ACCEPT_MAX 256          /* the Accept header's first bytes, all that is read of it */
#define HTTP_LINGER_MS  2000         /* how long a closing connection drains input */
#define HTTP_BACKLOG    128
#define HTTP_DATE_LEN   80 /* an IMF-fixdate is 29; room for any int the compiler imagines */

/* ---- bodies ---- */

int http_body_reserve(http_body_t *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap - b->len < n)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return -ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

int http_body_append(http_body_t *b, const void *data, size_t len)
{
    int err = http_body_reserve(b, len);
    if (err != 0)
        return err;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int http_body_vprintf(http_body_t *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    char *at = b->cap > b->len ? b->data + b->len : NULL;
    int n = vsnprintf(at, at != NULL ? b->cap - b->len : 0, fmt, ap);
    int err = n < 0 ? -EINVAL : 0;
    if (err == 0 && (size_t)n >= b->cap - b->len) { /* did not fit: grow, write again */
        err = http_body_reserve(b, (size_t)n + 1);
        if (err == 0)
            vsnprintf(b->data + b->len, b->cap - b->len, fmt, again);
    }
    va_end(again);
    if (err == 0)
        b->len += (size_t)n;
    return err;
}

int http_body_printf(http_body_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int err = http_body_vprintf(b, fmt, ap);
    va_end(ap);
    return err;
}

void http_body_free(http_body_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- the protocol engine ---- */

struct http_conn {
    http_parser parser;
    const http_routes_t *routes;
    size_t max_header;
    http_body_t *out; /* the caller's output buffer, during http_conn_feed() */
    http_body_t page; /* scratch: a route renders its body here */
    /* The request being parsed. */
    size_t header_bytes;          /* request target, header names and values, 4 per header */
    char target[HTTP_TARGET_MAX]; /* the request target, while it fits */
    size_t target_len;            /* its full length (may exceed the buffer) */
    char field[8];                /* the start of the current header name */
    size_t field_len;             /* its full length */
    int in_field;                 /* the parser is inside a header name */
    unsigned hosts;               /* Host headers seen */
    char accept[HTTP_ACCEPT_MAX]; /* Accept headers' values, joined by commas, while they fit */
    size_t accept_len;            /* bytes in accept */
    int in_accept;                /* the current header value is an Accept */
    int reject;                   /* status to answer with instead of parsing on, or 0 */
    int headers_done;             /* on_headers_complete ran for this message */
    int in_head;                  /* a request head is owed: none completed yet, or a byte
                                     came after the last complete one (RFC 9112's leading
                                     empty lines included); cleared by on_headers_complete */
    int closing;                  /* answered for the last time */
};

enum http_page_kind {
    PAGE_TEXT,    /* text/plain; charset=utf-8 */
    PAGE_METRICS, /* Prometheus text 0.0.4 */
    PAGE_JSON,    /* application/json */
    PAGE_HTML,    /* text/html; charset=utf-8 */
};

static const char *const page_types[] = {
    [PAGE_TEXT] = "text/plain; charset=utf-8",
    [PAGE_METRICS] = "text/plain; version=0.0.4; charset=utf-8",
    [PAGE_JSON] = "application/json",
    [PAGE_HTML] = "text/html; charset=utf-8",
};

static http_conn_t *conn_of(http_parser *p)
{
    return p->data;
}

/* The IMF-fixdate of now, for the Date header (locale independent). */
static void http_date(char buf[HTTP_DATE_LEN])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(buf, HTTP_DATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

/*
 * Appends one whole response to c->out, or nothing: on failure (no memory)
 * the buffer is put back as it was. keep says whether the connection stays
 * open; http10 whether the request was HTTP/1.0 (which closes by default,
 * so keeping it open has to be said).
 */
static int respond(http_conn_t *c, int status, enum http_page_kind kind, const char *body,
                   size_t len, int head, int keep, int http10)
{
    http_body_t *out = c->out;
    size_t start = out->len;
    char date[HTTP_DATE_LEN];
    http_date(date);
    const char *connection = !keep    ? "Connection: close\r\n"
                             : http10 ? "Connection: keep-alive\r\n"
                                      : "";
    int err =
        http_body_printf(out,
                         "HTTP/1.1 %d %s\r\n"
                         "Date: %s\r\n"
                         "Content-Type: %s\r\n"
                         "Content-Length: %zu\r\n"
                         "%s%s\r\n",
                         status, http_status_str((enum http_status)status), date, page_types[kind],
                         len, status == 405 ? "Allow: GET, HEAD\r\n" : "", connection);
    if (err == 0 && !head)
        err = http_body_append(out, body, len);
    if (err != 0)
        out->len = start;
    return err;
}

/* An error page: "404 Not Found\n". */
static int respond_error(http_conn_t *c, int status, int head, int keep, int http10)
{
    char text[64];
    int n =
        snprintf(text, sizeof(text), "%d %s\n", status, http_status_str((enum http_status)status));
    return respond(c, status, PAGE_TEXT, text, (size_t)n, head, keep, http10);
}

/* Renders a page with route into c->page and answers with it (500 when the
 * route fails). */
static int respond_route(http_conn_t *c, int (*route)(void *arg, http_body_t *body),
                         enum http_page_kind kind, int head, int keep, int http10)
{
    c->page.len = 0;
    if (route(c->routes->arg, &c->page) != 0)
        return respond_error(c, 500, head, keep, http10);
    return respond(c, 200, kind, c->page.data, c->page.len, head, keep, http10);
}

/* A piece of the request target. */
typedef struct span {
    const char *at;
    size_t len;
} span_t;

/* The path and query of the request target ("/metrics" and "x=1" of
 * "/metrics?x=1" or of "http://host/metrics?x=1"; the query is empty when
 * there is none), or -1 when the target does not parse. */
static int target_parts(http_conn_t *c, span_t *path, span_t *query)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(c->target, c->target_len, 0, &u) != 0)
        return -1;
    *path = (span_t){"/", 1};
    *query = (span_t){"", 0};
    if (u.field_set & (1u << UF_PATH))
        *path = (span_t){c->target + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len};
    if (u.field_set & (1u << UF_QUERY))
        *query = (span_t){c->target + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len};
    return 0;
}

static int path_is(span_t path, const char *want)
{
    return path.len == strlen(want) && memcmp(path.at, want, path.len) == 0;
}

static int span_is(const char *at, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(at, want, len) == 0;
}

/* Does the query ask for the verbose page: "verbose", "verbose=1", "a=b&verbose"
 * (not "verbose=0" or "verbose=false")? */
static int query_verbose(span_t q)
{
    for (size_t i = 0; i < q.len;) {
        size_t end = i;
        while (end < q.len && q.at[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && q.at[eq] != '=')
            eq++;
        if (span_is(q.at + i, eq - i, "verbose")) {
            const char *v = q.at + eq + (eq < end);
            size_t vlen = end - eq - (eq < end);
            return !span_is(v, vlen, "0") && !span_is(v, vlen, "false");
        }
        i = end + 1;
    }
    return 0;
}

/* Does one of the Accept header's media ranges name application/json
 * (parameters and case aside)? */
static int accepts_json(const http_conn_t *c)
{
    const char *a = c->accept, *end = c->accept + c->accept_len;
    while (a < end) {
        const char *stop = a;
        while (stop < end && *stop != ',')
            stop++;
        const char *type = a;
        while (type < stop && (*type == ' ' || *type == '\t'))
            type++;
        size_t len = 0;
        while (type + len < stop && type[len] != ';' && type[len] != ' ' && type[len] != '\t')
            len++;
        if (len == 16 && strncasecmp(type, "application/json", 16) == 0)
            return 1;
        a = stop + 1;
    }
    return 0;
}

/* /healthz: the route says healthy (200) or not (503), and writes the page
 * in the form asked for. */
static int respond_health(http_conn_t *c, int json, int head, int keep, int http10)
{
    const http_routes_t *r = c->routes;
    static const char all_well[] = "{\"status\":\"ok\",\"stopping\":false,\"feeds\":[]}\n";
    if (r->health == NULL)
        return json ? respond(c, 200, PAGE_JSON, all_well, sizeof(all_well) - 1, head, keep, http10)
                    : respond(c, 200, PAGE_TEXT, "ok\n", 3, head, keep, http10);
    c->page.len = 0;
    int healthy = r->health(r->arg, json, &c->page);
    if (healthy < 0)
        return respond_error(c, 500, head, keep, http10);
    return respond(c, healthy ? 200 : 503, json ? PAGE_JSON : PAGE_TEXT, c->page.data, c->page.len,
                   head, keep, http10);
}

/* Answers the request the parser just completed. */
static int answer(http_conn_t *c, int keep)
{
    const http_parser *p = &c->parser;
    int head = p->method == HTTP_HEAD;
    int http10 = p->http_minor == 0;
    span_t path, query;

    if (p->method != HTTP_GET && p->method != HTTP_HEAD)
        return respond_error(c, 405, 0, keep, http10);
    if (!http10 && c->hosts != 1) /* RFC 9112 3.2: exactly one Host in HTTP/1.1 */
        return respond_error(c, 400, head, keep, http10);
    if (c->target_len > sizeof(c->target))
        return respond_error(c, 414, head, keep, http10);
    if (target_parts(c, &path, &query) != 0)
        return respond_error(c, 400, head, keep, http10);

    const http_routes_t *r = c->routes;
    if (path_is(path, "/metrics") && r->metrics != NULL)
        return respond_route(c, r->metrics, PAGE_METRICS, head, keep, http10);
    if (path_is(path, "/debug/mallocstats") && r->mallocstats != NULL)
        return respond_route(c, r->mallocstats, PAGE_TEXT, head, keep, http10);
    if (path_is(path, "/debug/heap") && r->heap_page != NULL)
        return respond_route(c, r->heap_page, PAGE_HTML, head, keep, http10);
    if (path_is(path, "/debug/heap.json") && r->heap_json != NULL)
        return respond_route(c, r->heap_json, PAGE_JSON, head, keep, http10);
    if (path_is(path, "/healthz"))
        return respond_health(c, query_verbose(query) || accepts_json(c), head, keep, http10);
    return respond_error(c, 404, head, keep, http10);
}

/* Counts n more header bytes; over the limit the request is refused (431). */
static int count_header(http_conn_t *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->max_header) {
        c->reject = 431;
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_conn_t *c = conn_of(p);
    c->in_head = 1;
    c->header_bytes = 0;
    c->target_len = 0;
    c->field_len = 0;
    c->in_field = 0;
    c->hosts = 0;
    c->accept_len = 0;
    c->in_accept = 0;
    c->headers_done = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = conn_of(p);
    if (c->target_len < sizeof(c->target)) {
        size_t room = sizeof(c->target) - c->target_len;
        memcpy(c->target + c->target_len, at, n < room ? n : room);
    }
    c->target_len += n;
    return count_header(c, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = conn_of(p);
    if (!c->in_field) {
        c->in_field = 1;
        c->field_len = 0;
        if (count_header(c, 4) != 0) /* ": " and CRLF */
            return -1;
    }
    if (c->field_len < sizeof(c->field)) {
        size_t room = sizeof(c->field) - c->field_len;
        memcpy(c->field + c->field_len, at, n < room ? n : room);
    }
    c->field_len += n;
    return count_header(c, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = conn_of(p);
    if (c->in_field) {
        c->in_field = 0;
        if (c->field_len == 4 && strncasecmp(c->field, "host", 4) == 0)
            c->hosts++;
        c->in_accept = c->field_len == 6 && strncasecmp(c->field, "accept", 6) == 0;
        if (c->in_accept && c->accept_len > 0 && c->accept_len < sizeof(c->accept))
            c->accept[c->accept_len++] = ',';
    }
    if (c->in_accept && c->accept_len < sizeof(c->accept)) {
        size_t room = sizeof(c->accept) - c->accept_len;
        memcpy(c->accept + c->accept_len, at, n < room ? n : room);
        c->accept_len += n < room ? n : room;
    }
    return count_header(c, n);
}

static int on_headers_complete(http_parser *p)
{
    http_conn_t *c = conn_of(p);
    c->headers_done = 1;
    c->in_head = 0;
    if (p->http_major != 1) {
        c->reject = 505;
        return -1;
    }
    /* No route takes a body: refuse rather than read and drop it. */
    int body = (p->flags & F_CHUNKED) || p->uses_transfer_encoding ||
               (p->content_length > 0 && p->content_length != ULLONG_MAX);
    if (body) {
        c->reject = (p->method == HTTP_GET || p->method == HTTP_HEAD) ? 413 : 405;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn_t *c = conn_of(p);
    int keep = http_should_keep_alive(p) && !p->upgrade;
    if (answer(c, keep) != 0 || !keep) {
        c->closing = 1;
        return -1;
    }
    if (c->out->len >= HTTP_OUT_HIGH)
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings conn_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

static void conn_init(http_conn_t *c, const http_routes_t *routes, size_t max_header)
{
    memset(c, 0, sizeof(*c));
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->routes = routes;
    c->max_header = max_header;
    c->in_head = 1;
}

static void conn_release(http_conn_t *c)
{
    http_body_free(&c->page);
}

int http_conn_new(const http_routes_t *routes, size_t max_header, http_conn_t **out)
{
    http_conn_t *c = malloc(sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    conn_init(c, routes, max_header);
    *out = c;
    return 0;
}

void http_conn_free(http_conn_t *c)
{
    if (c == NULL)
        return;
    conn_release(c);
    free(c);
}

int http_conn_closing(const http_conn_t *c)
{
    return c->closing;
}

int http_conn_awaiting_head(const http_conn_t *c)
{
    return c->in_head && !c->closing;
}

size_t http_conn_feed(http_conn_t *c, const char *data, size_t len, http_body_t *out)
{
    if (c->closing)
        return len;
    if (len == 0) /* http-parser reads a zero length as the end of the stream */
        return 0;
    c->in_head = 1;
    c->out = out;
    size_t n = http_parser_execute(&c->parser, &conn_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (!c->closing && e == HPE_PAUSED) { /* out reached the high-water mark */
        http_parser_pause(&c->parser, 0);
        c->out = NULL;
        return n;
    }
    if (!c->closing && e != HPE_OK) {
        int status = c->reject != 0 ? c->reject : e == HPE_HEADER_OVERFLOW ? 431 : 400;
        int head = c->headers_done && c->parser.method == HTTP_HEAD;
        respond_error(c, status, head, 0, 0);
    }
    /* Past an Upgrade or CONNECT request the parser stops early: it was
     * answered with Connection: close, we speak nothing else. */
    if (e != HPE_OK || n < len || c->parser.upgrade)
        c->closing = 1;
    c->out = NULL;
    return len;
}

/* ---- the server ---- */

typedef struct http_client http_client_t;

struct http_client {
    uv_tcp_t tcp;
    uv_timer_t timer; /* the nearer of the idle and head deadlines, then the linger timeout */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    http_server_t *srv;
    http_client_t *next, *prev; /* the server's open connections, oldest accepted first */
    uint64_t head_since;        /* loop time (ms) the head being awaited began: the accept,
                                   or the read that brought its first byte */
    int in_head;                /* a head is awaited (http_conn_awaiting_head, as of the
                                   last feed); head_since is valid */
    http_conn_t conn;
    http_body_t out; /* responses; being written while writing */
    http_body_t in;  /* received, not yet parsed (the engine paused) */
    int handles;     /* open libuv handles; freed at 0 */
    int reading, writing;
    int lingering; /* shut down for writing; dropping input until EOF */
    int closed;    /* uv_close() called */
    int rejected;  /* over the connection limit: tcp only, not on the list */
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t *listener;
    http_routes_t routes;
    char listen[256];
    int port;
    uint32_t max_connections;
    size_t max_header;
    uint64_t idle_ms;                /* 0: no idle timeout */
    uint64_t header_ms;              /* 0: no head deadline */
    http_client_t *clients, *newest; /* the open connections in accept order; both ends */
    uint32_t nclients;
    unsigned pending; /* listeners and clients not yet freed */
    char *rbuf;       /* HTTP_READ_SIZE bytes, for every read */
    int stopping;
    void (*done)(void *arg);
    void *done_arg;
};

/* The answer past http.max_connections; the body is 25 bytes. */
static const char reject_503[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                 "Content-Type: text/plain; charset=utf-8\r\n"
                                 "Content-Length: 25\r\n"
                                 "Connection: close\r\n"
                                 "\r\n"
                                 "503 too many connections\n";

static void server_settle(http_server_t *srv)
{
    if (srv->stopping && srv->pending == 0 && srv->done != NULL) {
        void (*done)(void *) = srv->done;
        srv->done = NULL;
        done(srv->done_arg);
    }
}

static void apply_limits(http_server_t *srv, const config_t *cfg)
{
    srv->max_connections = cfg->http.max_connections;
    srv->max_header = cfg->http.max_header;
    srv->idle_ms = (cfg->http.idle_timeout_ns + 999999) / 1000000;
    srv->header_ms = (cfg->http.header_timeout_ns + 999999) / 1000000;
}

static void on_client_closed(uv_handle_t *h)
{
    http_client_t *c = h->data;
    if (--c->handles > 0)
        return;
    http_server_t *srv = c->srv;
    conn_release(&c->conn);
    http_body_free(&c->out);
    http_body_free(&c->in);
    free(c);
    srv->pending--;
    server_settle(srv);
}

static void client_close(http_client_t *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    if (!c->rejected) {
        if (c->next != NULL)
            c->next->prev = c->prev;
        else
            c->srv->newest = c->prev;
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            c->srv->clients = c->next;
        c->srv->nclients--;
        uv_close((uv_handle_t *)&c->timer, on_client_closed);
    }
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static void on_timer(uv_timer_t *t)
{
    client_close(t->data);
}

static void client_touch(http_client_t *c, uint64_t ms)
{
    if (ms > 0)
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* Something was read or written: the idle timeout starts again, but a head
 * being awaited keeps its deadline, so the timer is the nearer of the two. */
static void client_arm(http_client_t *c)
{
    const http_server_t *srv = c->srv;
    uint64_t ms = srv->idle_ms;
    if (c->in_head && srv->header_ms > 0) {
        uint64_t due = c->head_since + srv->header_ms, now = uv_now(srv->loop);
        uint64_t left = due > now ? due - now : 1;
        if (ms == 0 || left < ms)
            ms = left;
    }
    if (ms > 0)
        client_touch(c, ms);
    else
        uv_timer_stop(&c->timer);
}

/* Notes whether the engine now awaits a head, and since when. */
static void client_note_head(http_client_t *c)
{
    int in_head = http_conn_awaiting_head(&c->conn);
    if (in_head && !c->in_head)
        c->head_since = uv_now(c->srv->loop);
    c->in_head = in_head;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_client_t *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->srv->rbuf, HTTP_READ_SIZE);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void client_read_start(http_client_t *c)
{
    if (c->reading)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        client_close(c);
        return;
    }
    c->reading = 1;
}

static void client_read_stop(http_client_t *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    http_client_t *c = req->data;
    if (status != 0 || c->closed) {
        client_close(c);
        return;
    }
    c->lingering = 1;
    client_touch(c, c->srv->idle_ms > 0 && c->srv->idle_ms < HTTP_LINGER_MS ? c->srv->idle_ms
                                                                            : HTTP_LINGER_MS);
    client_read_start(c);
}

/* The last response is out: stop sending, drain what the peer still sends. */
static void client_linger(http_client_t *c)
{
    client_read_stop(c);
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        client_close(c);
}

static void on_write(uv_write_t *req, int status);

/* Sends what the engine produced; with nothing to send, either lingers
 * (closing) or reads on. */
static void client_flush(http_client_t *c)
{
    if (c->out.len > 0) {
        client_read_stop(c);
        uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
            client_close(c);
            return;
        }
        c->writing = 1;
        return;
    }
    if (http_conn_closing(&c->conn)) {
        client_linger(c);
        return;
    }
    client_read_start(c);
}

/* Hands len received bytes to the engine; keeps what it did not take. */
static void client_take(http_client_t *c, const char *data, size_t len)
{
    size_t used = http_conn_feed(&c->conn, data, len, &c->out);
    client_note_head(c);
    client_arm(c);
    if (used >= len) {
        c->in.len = 0;
    } else if (data == c->in.data) {
        memmove(c->in.data, c->in.data + used, len - used);
        c->in.len = len - used;
    } else if (http_body_append(&c->in, data + used, len - used) != 0) {
        client_close(c);
        return;
    }
    client_flush(c);
}

static void on_write(uv_write_t *req, int status)
{
    http_client_t *c = req->data;
    c->writing = 0;
    if (status != 0 || c->closed) {
        client_close(c);
        return;
    }
    c->out.len = 0;
    if (c->out.cap > HTTP_OUT_HIGH) /* a flood's worth: give it back */
        http_body_free(&c->out);
    client_arm(c);
    if (c->in.len > 0 && !http_conn_closing(&c->conn))
        client_take(c, c->in.data, c->in.len);
    else
        client_flush(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    http_client_t *c = s->data;
    if (nread < 0) {
        client_close(c);
        return;
    }
    if (nread == 0 || c->lingering)
        return;
    client_take(c, buf->base, (size_t)nread);
}

/* Over the connection limit: a 503 if the socket takes it now, then close. */
static void client_reject(http_client_t *c)
{
    uv_buf_t b = uv_buf_init((char *)reject_503, sizeof(reject_503) - 1);
    c->rejected = 1;
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    client_close(c);
}

/* May c be closed to make room for a new connection? Only while it owes a
 * head: one being answered, or idle after a complete request, stays. */
static int client_evictable(const http_client_t *c)
{
    return c->in_head && !c->writing;
}

/* At the limit: the oldest evictable connection, or NULL. */
static http_client_t *oldest_evictable(const http_server_t *srv)
{
    for (http_client_t *c = srv->clients; c != NULL; c = c->next)
        if (client_evictable(c))
            return c;
    return NULL;
}

static void on_connection(uv_stream_t *listener, int status)
{
    http_server_t *srv = listener->data;
    if (status != 0)
        return;
    http_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    c->handles = 1;
    srv->pending++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->rejected = 1;
        client_close(c);
        return;
    }
    if (srv->nclients >= srv->max_connections) {
        http_client_t *victim = oldest_evictable(srv);
        if (victim == NULL) {
            client_reject(c);
            return;
        }
        client_close(victim);
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    conn_init(&c->conn, &srv->routes, srv->max_header);
    c->prev = srv->newest;
    if (c->prev != NULL)
        c->prev->next = c;
    else
        srv->clients = c;
    srv->newest = c;
    srv->nclients++;
    client_note_head(c);
    client_arm(c);
    client_read_start(c);
}

static void on_listener_closed(uv_handle_t *h)
{
    http_server_t *srv = h->data;
    free(h);
    srv->pending--;
    server_settle(srv);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* Resolves "host:port" / "[v6]:port" into res (freeaddrinfo it). */
static int resolve(const char *listen, struct addrinfo **res, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hlen = colon != NULL ? (size_t)(colon - listen) : 0;
    if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (colon == NULL || colon[1] == '\0' || hlen >= sizeof(host)) {
        snprintf(err, errlen, "http.listen: expected host:port, got \"%s\"", listen);
        return -EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    };
    int r = getaddrinfo(hlen > 0 ? host : NULL, colon + 1, &hints, res);
    if (r != 0) {
        snprintf(err, errlen, "http.listen: cannot resolve \"%s\": %s", listen,
                 r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
        return r == EAI_MEMORY ? -ENOMEM : -EINVAL;
    }
    return 0;
}

/* A new listener on listen, accepting for srv. */
static int server_bind(http_server_t *srv, const char *listen, uv_tcp_t **out, int *port, char *err,
                       size_t errlen)
{
    struct addrinfo *res;
    int r = resolve(listen, &res, err, errlen);
    if (r != 0)
        return r;
    uv_tcp_t *l = malloc(sizeof(*l));
    if (l == NULL) {
        freeaddrinfo(res);
        snprintf(err, errlen, "http.listen: out of memory");
        return -ENOMEM;
    }
    uv_tcp_init(srv->loop, l);
    l->data = srv;
    r = uv_tcp_bind(l, res->ai_addr, 0);
    freeaddrinfo(res);
    if (r == 0)
        r = uv_listen((uv_stream_t *)l, HTTP_BACKLOG, on_connection);
    if (r != 0) {
        snprintf(err, errlen,
                 "http.listen: cannot listen on %s: %s (is another process using it? "
                 "change http.listen)",
                 listen, uv_strerror(r));
        uv_close((uv_handle_t *)l, free_handle);
        return r;
    }
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    *port = 0;
    if (uv_tcp_getsockname(l, (struct sockaddr *)&ss, &sslen) == 0)
        *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *out = l;
    return 0;
}

int http_start(uv_loop_t *loop, const config_t *cfg, const http_routes_t *routes,
               http_server_t **out, char *err, size_t errlen)
{
    http_server_t *srv = calloc(1, sizeof(*srv));
    if (srv != NULL)
        srv->rbuf = malloc(HTTP_READ_SIZE);
    if (srv == NULL || srv->rbuf == NULL) {
        free(srv);
        snprintf(err, errlen, "http: out of memory");
        return -ENOMEM;
    }
    srv->loop = loop;
    srv->routes = *routes;
    apply_limits(srv, cfg);
    snprintf(srv->listen, sizeof(srv->listen), "%s", cfg->http.listen);
    int r = server_bind(srv, srv->listen, &srv->listener, &srv->port, err, errlen);
    if (r != 0) {
        free(srv->rbuf);
        free(srv);
        return r;
    }
    srv->pending = 1;
    *out = srv;
    return 0;
}

int http_reconfigure(http_server_t *srv, const config_t *cfg, char *err, size_t errlen)
{
    if (srv->stopping)
        return 0;
    apply_limits(srv, cfg);
    for (http_client_t *c = srv->clients; c != NULL; c = c->next)
        c->conn.max_header = srv->max_header;
    if (strcmp(cfg->http.listen, srv->listen) == 0)
        return 0;
    uv_tcp_t *l;
    int port;
    int r = server_bind(srv, cfg->http.listen, &l, &port, err, errlen);
    if (r != 0)
        return r;
    uv_close((uv_handle_t *)srv->listener, on_listener_closed);
    srv->listener = l;
    srv->port = port;
    srv->pending++;
    snprintf(srv->listen, sizeof(srv->listen), "%s", cfg->http.listen);
    return 0;
}

int http_port(const http_server_t *srv)
{
    return srv->port;
}

void http_stop(http_server_t *srv, void (*done)(void *arg), void *arg)
{
    if (srv == NULL) {
        if (done != NULL)
            done(arg);
        return;
    }
    if (srv->stopping)
        return;
    srv->stopping = 1;
    srv->done = done;
    srv->done_arg = arg;
    uv_close((uv_handle_t *)srv->listener, on_listener_closed);
    srv->listener = NULL;
    while (srv->clients != NULL)
        client_close(srv->clients);
}

void http_free(http_server_t *srv)
{
    if (srv == NULL)
        return;
    free(srv->rbuf);
    free(srv);
}

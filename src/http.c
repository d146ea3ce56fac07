/*
 * http.c - the operations HTTP/1.1 protocol: a pure engine that turns request
 * bytes into response bytes, and the growable bodies the routes write.
 *
 * The engine (http_conn_*) wraps http-parser. It keeps no request bytes: the
 * parser streams, and the engine keeps only what routing needs (the target,
 * up to HTTP_TARGET_MAX bytes, the count of Host headers and the first
 * HTTP_ACCEPT_MAX bytes of Accept, which picks the /healthz page) and a running
 * count of header bytes for the http.max_header limit. Each completed request
 * is answered at once, appended to the caller's output buffer, so pipelined
 * requests are answered in order; past HTTP_OUT_HIGH bytes of output the
 * engine pauses and hands the unparsed rest back to its caller. Anything the
 * engine refuses to parse further (garbage, headers too large, a body, an
 * HTTP version other than 1.x) gets one error response with Connection:
 * close, and the rest of the input is ignored.
 *
 * It never allocates per byte, never recurses on input, and bounds what it
 * buffers. It knows no socket, no loop and no clock but the Date header's:
 * the libuv server (http_server.c) drives one engine per connection, and a
 * fuzzer or a test drives one directly. Never logs, never crashes on input.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

#include "src/http.h"

#define HTTP_TARGET_MAX 256 /* longer request targets are answered 414 */
#define HTTP_ACCEPT_MAX 256 /* the Accept header's first bytes, all that is read of it */
#define HTTP_DATE_LEN   80  /* an IMF-fixdate is 29; room for any int the compiler imagines */

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

int http_conn_new(const http_routes_t *routes, size_t max_header, http_conn_t **out)
{
    http_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->routes = routes;
    c->max_header = max_header;
    c->in_head = 1;
    *out = c;
    return 0;
}

void http_conn_free(http_conn_t *c)
{
    if (c == NULL)
        return;
    http_body_free(&c->page);
    free(c);
}

void http_conn_set_max_header(http_conn_t *c, size_t max_header)
{
    c->max_header = max_header;
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

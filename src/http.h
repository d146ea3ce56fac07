/*
 * http.h - the operations HTTP/1.1 protocol, for a server on the loop
 * (http_server.h), a fuzzer or a test:
 *
 *   GET /metrics            Prometheus text format 0.0.4
 *   GET /debug/mallocstats  the allocator's report (heap_format_stats)
 *   GET /healthz            200 while every feed is healthy, else 503 naming
 *                           the faulty ones; JSON for /healthz?verbose or
 *                           Accept: application/json
 *   GET /debug/heap         the heap picture (HTML; src/heapview.h)
 *   GET /debug/heap.json    the data it draws (JSON)
 *
 * Requests are parsed with http-parser (Debian libhttp-parser-dev). 400 for a
 * malformed request, 404 for another path, 405 for a method other than GET or
 * HEAD, 431 for headers over http.max_header; keep-alive and pipelining.
 *
 * The protocol itself (bytes in, responses out) is a pure engine, the
 * http_conn_* functions below, with no socket, loop or allocation per byte
 * in sight: the server drives one per connection, and a fuzzer or a test can
 * drive one directly. The routes fill an http_body_t, a growable buffer that
 * the page renderers (metrics.c, health.c) write into too.
 */
#ifndef TICKD_SRC_HTTP_H
#define TICKD_SRC_HTTP_H

#include <stdarg.h>
#include <stddef.h>

/* A growable text buffer the routes write their body into. Zero-initialise
 * it ({0}); release it with http_body_free(). */
typedef struct http_body {
    char *data;
    size_t len, cap;
} http_body_t;

/* Appends printf-formatted text; 0 or -ENOMEM. */
int http_body_printf(http_body_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int http_body_vprintf(http_body_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Makes room for n more bytes after len (cap - len >= n); 0 or -ENOMEM. */
int http_body_reserve(http_body_t *b, size_t n);

/* Appends len bytes; 0 or -ENOMEM. */
int http_body_append(http_body_t *b, const void *data, size_t len);

/* Frees the buffer and leaves b empty ({0}). */
void http_body_free(http_body_t *b);

typedef struct http_routes {
    /* Fill body with the page; 0 or -errno (then a 500). NULL: 404. */
    int (*metrics)(void *arg, http_body_t *body);
    int (*mallocstats)(void *arg, http_body_t *body);
    /* Fill body with the health report, as JSON when json is non-zero (the
     * query has verbose, or Accept names application/json), else as text;
     * return 1 when healthy (200), 0 when not (503), -errno on failure
     * (500). NULL: always 200 "ok". */
    int (*health)(void *arg, int json, http_body_t *body);
    /* /debug/heap (text/html) and /debug/heap.json (application/json): fill
     * body; 0 or -errno (500). NULL: 404. */
    int (*heap_page)(void *arg, http_body_t *body);
    int (*heap_json)(void *arg, http_body_t *body);
    void *arg;
} http_routes_t;

/* ---- the protocol engine, without sockets ---- */

/* The output high-water mark: http_conn_feed() stops parsing once this many
 * bytes of responses wait in its output buffer. */
#define HTTP_OUT_HIGH (256 * 1024)

typedef struct http_conn http_conn_t;

/* A connection's protocol state: requests are answered with routes (which
 * must outlive it), headers limited to max_header bytes. 0 or -ENOMEM. */
int http_conn_new(const http_routes_t *routes, size_t max_header, http_conn_t **out);
void http_conn_free(http_conn_t *c);

/* Limits headers to max_header bytes from the next byte fed on (a reload's
 * new http.max_header, for the connections already open). */
void http_conn_set_max_header(http_conn_t *c, size_t max_header);

/*
 * Parses len bytes received on the connection and appends the response to
 * every request completed, in order, to out. Returns the bytes consumed:
 * all of them, except when out has grown past HTTP_OUT_HIGH (pipelined
 * responses): then the caller sends out and feeds the rest later. Once the connection is done (a
 * request asked to close, an error was answered, memory ran out) the remaining input is discarded
 * and http_conn_closing() turns true: send out, then close.
 */
size_t http_conn_feed(http_conn_t *c, const char *data, size_t len, http_body_t *out);

/* Non-zero once the connection must close after its output is sent. */
int http_conn_closing(const http_conn_t *c);

/*
 * Non-zero while the connection owes a complete request head: from its start
 * until the blank line that ends its first head, and again from any byte fed
 * after a complete head (an empty line before a request line counts) until
 * the end of that next head. Zero once the connection is closing. The server
 * times a head by it (http.header_timeout) and picks whom to evict by it.
 */
int http_conn_awaiting_head(const http_conn_t *c);

#endif

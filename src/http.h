/*
 * http.h - a small HTTP/1.1 server on the daemon's loop, for operations:
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
 * HEAD, 431 for headers over http.max_header; keep-alive; at most
 * http.max_connections connections, the oldest still sending a request head
 * giving way to a new one; a head not complete within http.header_timeout,
 * and a connection idle for http.idle_timeout, closed.
 *
 * The protocol itself (bytes in, responses out) is a pure engine, the
 * http_conn_* functions below, with no socket in sight: the server drives one
 * per connection, and a fuzzer or a test can drive one directly.
 */
#ifndef TICKD_SRC_HTTP_H
#define TICKD_SRC_HTTP_H

#include <stdarg.h>
#include <stddef.h>

#include <uv.h>

#include "src/config.h"

typedef struct http_server http_server_t;

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

/*
 * Binds cfg->http.listen ("host:port", "[v6]:port"; a name is resolved once,
 * here) on loop and starts accepting. routes is copied. On failure returns a
 * negative errno with a message in err, and nothing is left behind.
 *
 * Connections are kept in the order they were accepted. A connection over
 * http.max_connections takes the place of the oldest open one that is
 * awaiting a request head (http_conn_awaiting_head) and is not being written
 * to; that one is closed. When there is none (every connection is answering
 * or idle after a complete request) the new one is sent a 503 (if the socket
 * takes it at once) and closed on the spot: it never holds a buffer or a
 * timer. A connection whose request head is not complete http.header_timeout
 * after it was accepted, or after the first byte of its next request, is
 * closed without an answer; so is one that sends nothing for
 * http.idle_timeout (0: no limit, for either).
 */
int http_start(uv_loop_t *loop, const config_t *cfg, const http_routes_t *routes,
               http_server_t **out, char *err, size_t errlen);

/* Applies new limits (to the open connections' next requests too) and, when
 * http.listen changed, binds the new address before letting the old one go.
 * On failure keeps the old address and returns -errno with a message. */
int http_reconfigure(http_server_t *srv, const config_t *cfg, char *err, size_t errlen);

/* The local port the listener is bound to (useful with port 0). */
int http_port(const http_server_t *srv);

/* Closes the listener and every connection, then calls done(arg) from a
 * close callback. srv NULL (never started): calls done(arg) at once. */
void http_stop(http_server_t *srv, void (*done)(void *arg), void *arg);

/* Frees a server that http_stop() finished with (done was called). */
void http_free(http_server_t *srv);

/* ---- the protocol engine, without sockets ---- */

typedef struct http_conn http_conn_t;

/* A connection's protocol state: requests are answered with routes (which
 * must outlive it), headers limited to max_header bytes. 0 or -ENOMEM. */
int http_conn_new(const http_routes_t *routes, size_t max_header, http_conn_t **out);
void http_conn_free(http_conn_t *c);

/*
 * Parses len bytes received on the connection and appends the response to
 * every request completed, in order, to out. Returns the bytes consumed:
 * all of them, except when out has grown past a high-water mark (some
 * hundreds of KiB of pipelined responses): then the caller sends out and
 * feeds the rest later. Once the connection is done (a request asked to
 * close, an error was answered, memory ran out) the remaining input is
 * discarded and http_conn_closing() turns true: send out, then close.
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

/*
 * http_server.h - the operations HTTP/1.1 server on the daemon's loop: it
 * binds http.listen and answers every connection with the protocol engine of
 * http.h, within http.max_connections, http.header_timeout and
 * http.idle_timeout (http_start() says how).
 */
#ifndef TICKD_SRC_HTTP_SERVER_H
#define TICKD_SRC_HTTP_SERVER_H

#include <stddef.h>

#include <uv.h>

#include "src/config.h"
#include "src/http.h"

typedef struct http_server http_server_t;

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

#endif

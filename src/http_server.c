/*
 * http_server.c - the operations HTTP/1.1 server on the daemon's loop: the
 * listener, the connections, their timers and limits. What the bytes mean is
 * the engine's (http.c): the server drives one http_conn_t per connection.
 *
 * The server reads into one buffer shared by all connections (read callbacks
 * run one at a time and the engine consumes the bytes before returning), and
 * while a connection's responses are being written it stops reading from it:
 * a client that pipelines requests without reading the answers stalls itself,
 * it cannot grow our buffers. When the engine pauses at its high-water mark
 * (HTTP_OUT_HIGH) the unparsed rest of the read is kept on the connection and
 * fed again after the write. A connection that must close is shut down for
 * writing once its last response is out, and what the peer still sends is
 * read and dropped until it closes or HTTP_LINGER_MS pass, so that a response
 * to a bad request is not lost to a reset.
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
 * at start and reload only). Every failure to start or rebind is returned
 * with its reason, and leaves nothing behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/http_server.h"

#define HTTP_READ_SIZE (64 * 1024) /* one read, shared by every connection */
#define HTTP_LINGER_MS 2000        /* how long a closing connection drains input */
#define HTTP_BACKLOG   128

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
    http_conn_t *conn;          /* the protocol engine; NULL only on a rejected connection */
    http_body_t out;            /* responses; being written while writing */
    http_body_t in;             /* received, not yet parsed (the engine paused) */
    int handles;                /* open libuv handles; freed at 0 */
    int reading, writing;
    int lingering; /* shut down for writing; dropping input until EOF */
    int closed;    /* uv_close() called */
    int rejected;  /* refused (over the limit, no memory): tcp only, not on the list */
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
    http_conn_free(c->conn);
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
    int in_head = http_conn_awaiting_head(c->conn);
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
    if (http_conn_closing(c->conn)) {
        client_linger(c);
        return;
    }
    client_read_start(c);
}

/* Hands len received bytes to the engine; keeps what it did not take. */
static void client_take(http_client_t *c, const char *data, size_t len)
{
    size_t used = http_conn_feed(c->conn, data, len, &c->out);
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
    if (c->in.len > 0 && !http_conn_closing(c->conn))
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
    http_client_t *victim = NULL;
    if (srv->nclients >= srv->max_connections) {
        victim = oldest_evictable(srv);
        if (victim == NULL) {
            client_reject(c);
            return;
        }
    }
    if (http_conn_new(&srv->routes, srv->max_header, &c->conn) != 0) {
        c->rejected = 1; /* out of memory: closed like one over the limit, the victim kept */
        client_close(c);
        return;
    }
    if (victim != NULL)
        client_close(victim);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
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
        http_conn_set_max_header(c->conn, srv->max_header);
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

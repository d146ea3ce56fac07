/*
 * pubsub.c - the RESP2/RESP3 pub/sub server's core: reading requests,
 * clients, housekeeping, listening, settings, and the public interface.
 * pubsub_internal.h maps the other files: topics and subscriptions, the
 * fan-out and output queues, snapshots, commands, PUBLISH, INFO and PUBSUB.
 *
 * Clients. Each connection is a client_t on the loop. Bytes read go through
 * resp_parse(); a request cut short by the end of a read waits in the
 * client's input buffer (never more than pubsub.max_request bytes). Every
 * read lands in one shared buffer and is parsed by one shared parser: one
 * client is served at a time. pubsub__serve() runs the whole requests, keeps the
 * rest, and writes what they made: the ticks a read's PUBLISHes fanned out
 * first (one flush), then the publisher's replies. A client that is closed
 * is unlinked at once (pubsub__client_close()) and freed in its handle's close
 * callback, its ring's references released there.
 *
 * Housekeeping. A timer (at most every second, more often when idle_timeout
 * or output_soft_seconds is short) closes idle clients (never subscribers),
 * samples the soft limit (a cut, or with slow_consumer: conflate, conflation),
 * trims output rings, and expires PUBLISH replies
 * the journal has not decided in time.
 *
 * Stopping. pubsub_stop() stops listening, asks every client to close once
 * its output is out, and closes the rest at the drain deadline; done is
 * called once every handle is closed.
 *
 * Never blocks, never allocates from the system allocator per tick; every
 * buffer, table and client comes from the daemon's heap.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/sockios.h>

#include "src/clock.h"
#include "src/pubsub_internal.h"

#define LISTEN_BACKLOG  511
#define INPUT_KEEP      (16 * 1024) /* an emptied input buffer bigger than this is freed */
#define READ_HEADROOM   4096        /* room before a read for the request it finishes */
#define HOUSEKEEPING_MS 1000        /* at most; shorter when idle_timeout or soft_seconds is */

static const char max_clients_error[] = "-ERR max number of clients reached\r\n";

/* ---- reading ---- */

/* Runs the complete requests at the start of data[0..len); returns the
 * bytes used (the rest is an unfinished request). */
static size_t process(client_t *c, const char *data, size_t len)
{
    pubsub_t *ps = c->ps;
    resp_parser_t *p = &ps->parser;
    size_t pos = 0;

    while (pos < len && !(c->flags & (CLIENT_CLOSING | CLIENT_CLOSED | CLIENT_SLOW |
                                      CLIENT_WAITING | CLIENT_AUTH_WAIT))) {
        p->unauthenticated = pubsub__auth_required(c);
        int r = resp_parse(p, data + pos, len - pos);
        if (r == RESP_NEED_MORE)
            break;
        if (r == RESP_ERROR) {
            pubsub__reply_error(c, "ERR %s", p->err);
            ps->stats.protocol_errors_total++;
            pubsub__begin_closing(c);
            return len;
        }
        size_t start = pos;
        pos += p->consumed;
        if (p->argc > 0)
            pubsub__dispatch(c, p->argc, p->argv);
        if (HEAP_UNLIKELY(c->flags & CLIENT_WAITING))
            pos = start; /* a PUBLISH the journal cannot take yet: it stays in the input */
    }
    return pos;
}

/* Makes room for n bytes of unfinished request in c->in, keeping what it
 * holds. 0 or -ENOMEM. */
static int input_reserve(client_t *c, size_t n)
{
    if (n <= c->in_cap)
        return 0;
    size_t cap = c->in_cap != 0 ? c->in_cap : 512;
    while (cap < n)
        cap *= 2;
    char *in = heap_alloc(c->ps->heap, cap);
    if (in == NULL)
        return -ENOMEM;
    if (c->in_len > 0)
        memcpy(in, c->in, c->in_len);
    heap_free(c->ps->heap, c->in);
    c->in = in;
    c->in_cap = cap;
    return 0;
}

/* Every read lands READ_HEADROOM bytes into the shared buffer. A client with
 * an unfinished request that fits the headroom has it copied there, right
 * before where the read lands, so that the two are one run of bytes for
 * on_read(): the unfinished request is copied, never the read. libuv calls
 * on_read() for this read before any other client's on_alloc(). */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client_t *c = h->data;
    char *at = c->ps->rbuf + READ_HEADROOM;
    (void)suggested;
    if (c->in_len > 0 && c->in_len <= READ_HEADROOM)
        memcpy(at - c->in_len, c->in, c->in_len);
    *buf = uv_buf_init(at, READ_BUF_SIZE);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    client_t *c = stream->data;
    pubsub_t *ps = c->ps;
    const char *data = buf->base;
    size_t len = (size_t)nread;

    if (nread == 0)
        return;
    if (nread < 0) { /* EOF or error, mid-request or not */
        pubsub__client_close(c);
        return;
    }
    ps->read_ns = -1; /* taken by the read's first PUBLISH */
    ps->snapshot_budget = SNAPSHOT_READ;
    if (c->flags & (CLIENT_CLOSING | CLIENT_CLOSED))
        return;
    c->last_active_ms = uv_now(ps->loop);
    if (c->in_len > 0) {
        /* An unfinished inline line with no newline in sight needs no
         * re-parse: just keep the bytes. */
        int skip = c->in[0] != '*' && memchr(data, '\n', len) == NULL &&
                   c->in_len + len < ps->opt.max_request;
        if (!skip && c->in_len <= READ_HEADROOM) { /* on_alloc() put it before the read */
            data -= c->in_len;
            len += c->in_len;
            c->in_len = 0;
            pubsub__serve(c, data, len);
            return;
        }
        if (input_reserve(c, c->in_len + len) != 0) {
            pubsub__client_close(c);
            return;
        }
        memcpy(c->in + c->in_len, data, len);
        c->in_len += len;
        if (skip)
            return;
        data = c->in;
        len = c->in_len;
    }
    pubsub__serve(c, data, len);
}

int pubsub__read_start(client_t *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Runs the whole requests in data (c->in, or a read's bytes that follow
 * it), keeps the unfinished rest in c->in, and sends what they made. */
void pubsub__serve(client_t *c, const char *data, size_t len)
{
    pubsub_t *ps = c->ps;
    size_t used = process(c, data, len);
    if (!(c->flags & (CLIENT_CLOSING | CLIENT_CLOSED))) {
        size_t rest = len - used;
        if (data == c->in) {
            memmove(c->in, c->in + used, rest);
            c->in_len = rest;
        } else if (rest > 0) {
            if (input_reserve(c, rest) != 0) {
                pubsub__client_close(c);
            } else {
                memcpy(c->in, data + used, rest);
                c->in_len = rest;
            }
        }
        if (c->in_len == 0 && c->in_cap > INPUT_KEEP) {
            heap_free(ps->heap, c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
    }
    pubsub__reply_seal(ps);
    pubsub__reap_slow(ps);
    pubsub__dirty_remove(c);
    if (ps->published) {
        /* One write per subscriber for all the read published, ahead of
         * the publisher's replies: a reply can wait for the fan-out's few
         * writes, the ticks' readers should not wait for the reply's. */
        ps->published = 0;
        pubsub_flush(ps);
    }
    pubsub__client_write(c);
}

/* ---- clients ---- */

static void maybe_done(pubsub_t *ps)
{
    if (ps->stopping && ps->handles == 0 && ps->done != NULL) {
        void (*done)(void *) = ps->done;
        ps->done = NULL;
        done(ps->done_arg);
    }
}

static void on_drain_timer(uv_timer_t *t);

static void on_handle_closed(uv_handle_t *h)
{
    pubsub_t *ps = h->data;
    ps->handles--;
    maybe_done(ps);
}

static void on_client_closed(uv_handle_t *h)
{
    client_t *c = h->data;
    pubsub_t *ps = c->ps;

    while (c->ring_count > 0) {
        out_entry_t *e = &c->ring[c->ring_head];
        c->queued -= e->end - e->off;
        ps->stats.output_buffer_bytes -= e->end - e->off;
        payload_release(ps->heap, &ps->latency, e->p);
        c->ring_head = (c->ring_head + 1) & (c->ring_cap - 1);
        c->ring_count--;
    }
    TICKD_ASSERT(c->queued == 0);
    pubsub__conflate_client_free(c);
    heap_free(ps->heap, c->ring);
    heap_free(ps->heap, c->in);
    heap_free(ps->heap, c->subs);
    heap_free(ps->heap, c->held_replies);
    heap_free(ps->heap, c);
    ps->handles--;
    maybe_done(ps);
}

void pubsub__client_close(client_t *c)
{
    pubsub_t *ps = c->ps;

    if (c->flags & CLIENT_CLOSED)
        return;
    if (c->flags & CLIENT_SLOW) { /* closing for another reason first */
        client_t **pp = &ps->doomed;
        while (*pp != c)
            pp = &(*pp)->doomed_next;
        *pp = c->doomed_next;
        c->flags &= ~CLIENT_SLOW;
    }
    pubsub__unsubscribe_quietly(c);
    pubsub__dirty_remove(c);
    pubsub__held_remove(c);
    pubsub__acl_client_gone(c);
    c->nheld = 0; /* a publisher that is gone is told nothing */
    if (ps->reply_client == c) {
        ps->reply_client = NULL;
        ps->reply_len = 0;
    }
    if (c->flags & CLIENT_COUNTED) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            ps->clients = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
        ps->stats.clients--;
    }
    c->flags |= CLIENT_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
    if (ps->stopping && ps->clients == NULL && uv_is_active((uv_handle_t *)&ps->drain))
        on_drain_timer(&ps->drain);
}

static void on_connection(uv_stream_t *server, int status)
{
    listener_t *l = server->data;
    pubsub_t *ps = l->ps;

    if (status < 0 || ps == NULL || ps->stopping)
        return;
    client_t *c = pubsub__zalloc(ps->heap, sizeof(client_t));
    if (c == NULL)
        return; /* the connection waits in the backlog for better times */
    c->ps = ps;
    uv_tcp_init(ps->loop, &c->tcp);
    c->tcp.data = c;
    ps->handles++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->flags |= CLIENT_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
        return;
    }
    if (ps->stats.clients >= ps->opt.max_clients) {
        /* Redis' answer: a fresh socket takes these few bytes at once. */
        uv_buf_t b = uv_buf_init((char *)max_clients_error, sizeof max_clients_error - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        ps->stats.rejected_total++;
        c->flags |= CLIENT_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
        return;
    }
    c->ring = heap_alloc(ps->heap, RING_INITIAL * sizeof(out_entry_t));
    if (c->ring == NULL) {
        c->flags |= CLIENT_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
        return;
    }
    c->ring_cap = RING_INITIAL;
    c->flags =
        CLIENT_COUNTED | (ps->opt.password[0] == '\0' && ps->acl == NULL ? CLIENT_AUTHED : 0);
    c->last_active_ms = uv_now(ps->loop);
    c->next = ps->clients;
    if (ps->clients != NULL)
        ps->clients->prev = c;
    ps->clients = c;
    ps->stats.clients++;
    ps->stats.connections_total++;
    c->id = ps->stats.connections_total;
    uv_tcp_nodelay(&c->tcp, 1);
    if (pubsub__read_start(c) != 0)
        pubsub__client_close(c);
}

/* ---- housekeeping ---- */

/* Bytes the kernel holds for c that the client has not received yet (sent
 * but not acknowledged, or not sent at all); 0 when it cannot tell. */
size_t pubsub__kernel_backlog(const client_t *c)
{
    uv_os_fd_t fd;
    int n;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &n) != 0 || n < 0)
        return 0;
    return (size_t)n;
}

/* The soft limit, sampled: a client whose output not yet received (tickd's
 * queue and the kernel's) is over the limit at every pass for soft_ns is
 * marked for disconnection, or with slow_consumer: conflate put in
 * conflation. Sampling lets a burst that the client reads through pass,
 * however big; a client that stops reading stays over. */
static void check_soft_limit(client_t *c, uint64_t now)
{
    const settings_t *o = &c->ps->opt;
    if (o->soft_limit == 0 || c->queued + pubsub__kernel_backlog(c) <= o->soft_limit) {
        c->flags &= ~CLIENT_SOFT;
    } else if (pubsub__soft_expired(c, now)) {
        if (!o->slow_conflate)
            pubsub__doom(c);
        else if (!(c->flags & CLIENT_CONFLATED))
            pubsub__conflate_client_enter(c);
    }
}

static void on_housekeeping(uv_timer_t *t)
{
    pubsub_t *ps = t->data;
    uint64_t now = uv_now(ps->loop);
    client_t *next;

    for (client_t *c = ps->clients; c != NULL; c = next) {
        next = c->next;
        if (ps->opt.idle_timeout_ns != 0 && c->nsubs == 0 &&
            (now - c->last_active_ms) * 1000000 >= ps->opt.idle_timeout_ns) {
            pubsub__client_close(c);
        } else {
            if (c->flags & CLIENT_WRITING)
                pubsub__over_hard_limit(c);
            else if (c->flags & CLIENT_CONFLATED)
                pubsub__client_write(c); /* caught up since its last write? */
            check_soft_limit(c, now);
            pubsub__ring_shrink(c);
        }
    }
    pubsub__held_expire(ps, now);
    pubsub__reap_slow(ps);
}

/* Half the shortest time limit in force, between 1 ms and HOUSEKEEPING_MS. */
static uint64_t housekeeping_ms(const settings_t *o)
{
    uint64_t ns = (uint64_t)HOUSEKEEPING_MS * 2000000;
    if (o->idle_timeout_ns != 0 && o->idle_timeout_ns < ns)
        ns = o->idle_timeout_ns;
    if (o->soft_limit != 0 && o->soft_ns < ns)
        ns = o->soft_ns;
    uint64_t ms = ns / 2000000;
    return ms < 1 ? 1 : ms;
}

static void housekeeping_start(pubsub_t *ps)
{
    uint64_t ms = housekeeping_ms(&ps->opt);
    uv_timer_start(&ps->housekeeping, on_housekeeping, ms, ms);
}

/* ---- listening ---- */

/* "host:port", "[v6]:port" or "localhost:port" into addr. */
static int parse_listen(const char *s, struct sockaddr_storage *addr)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t hlen = colon != NULL ? (size_t)(colon - s) : 0;
    char *end;

    if (colon == NULL || colon[1] == '\0')
        return -EINVAL;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return -EINVAL;
    int v6 = hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']';
    if (v6) {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof host)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (v6)
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr);
    if (strcmp(host, "localhost") == 0)
        return uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)addr);
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr);
}

static void on_listener_closed(uv_handle_t *h)
{
    listener_t *l = h->data;
    pubsub_t *ps = l->ps;
    heap_free(l->heap, l);
    if (ps != NULL) {
        ps->handles--;
        maybe_done(ps);
    }
}

static void listener_close(listener_t *l)
{
    if (l != NULL)
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
}

static int listener_open(pubsub_t *ps, const char *listen, listener_t **out, char *err,
                         size_t errlen)
{
    struct sockaddr_storage addr;
    int r = parse_listen(listen, &addr);

    if (r != 0) {
        snprintf(err, errlen, "pubsub.listen: expected host:port, got \"%s\"", listen);
        return -EINVAL;
    }
    listener_t *l = heap_alloc(ps->heap, sizeof(listener_t));
    if (l == NULL) {
        snprintf(err, errlen, "pubsub: out of memory");
        return -ENOMEM;
    }
    l->ps = ps;
    l->heap = ps->heap;
    uv_tcp_init(ps->loop, &l->tcp);
    l->tcp.data = l;
    ps->handles++;
    r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
    if (r != 0) {
        snprintf(err, errlen,
                 "pubsub.listen: cannot listen on %s: %s (is another process using it? change "
                 "pubsub.listen)",
                 listen, uv_strerror(r));
        ps->handles--;
        l->ps = NULL;
        listener_close(l);
        return r;
    }
    *out = l;
    return 0;
}

/* ---- settings ---- */

static void settings_from(settings_t *o, const config_t *cfg)
{
    snprintf(o->listen, sizeof o->listen, "%s", cfg->pubsub.listen);
    o->payload = cfg->pubsub.payload;
    snprintf(o->password, sizeof o->password, "%s", cfg->pubsub.password);
    o->max_clients = cfg->pubsub.max_clients;
    o->max_request = cfg->pubsub.max_request;
    o->idle_timeout_ns = cfg->pubsub.idle_timeout_ns;
    o->hard_limit = cfg->pubsub.hard_limit;
    o->soft_limit = cfg->pubsub.soft_limit;
    o->soft_ns = cfg->pubsub.soft_ns;
    o->snapshot = cfg->pubsub.snapshot;
    o->slow_conflate = cfg->pubsub.slow_consumer == CONFIG_SLOW_CONFLATE;
}

/* Points the parser at a scratch of at least max_request bytes. */
static int parser_setup(pubsub_t *ps, size_t max_request)
{
    if (max_request > ps->scratch_cap) {
        char *s = heap_alloc(ps->heap, max_request);
        if (s == NULL)
            return -ENOMEM;
        heap_free(ps->heap, ps->scratch);
        ps->scratch = s;
        ps->scratch_cap = max_request;
    }
    ps->parser.max_request = max_request;
    ps->parser.max_args = RESP_MAX_ARGS;
    ps->parser.argv = ps->argv;
    ps->parser.scratch = ps->scratch;
    return 0;
}

/* ---- the public interface ---- */

void pubsub_free(pubsub_t *ps)
{
    if (ps == NULL)
        return;
    pubsub__slots_release(ps);
    pubsub__topics_free(ps);
    pubsub__acl_free(ps->heap, ps->acl);
    for (int v = 0; v < PAYLOAD_NPROTO; v++)
        fanout_free(&ps->stream[v]);
    heap_free(ps->heap, ps->scratch);
    heap_free(ps->heap, ps->rbuf);
    heap_free(ps->heap, ps);
}

int pubsub_start(uv_loop_t *loop, heap_t *heap, market_t *market, const config_t *cfg,
                 pubsub_publish_fn on_publish, void *arg, pubsub_t **out, char *err, size_t errlen)
{
    pubsub_t *ps = pubsub__zalloc(heap, sizeof(pubsub_t));
    int r;

    if (ps == NULL) {
        snprintf(err, errlen, "pubsub: out of memory");
        return -ENOMEM;
    }
    ps->loop = loop;
    ps->heap = heap;
    ps->market = market;
    ps->channels_version = 1; /* a zeroed symbol slot holds version 0 */
    ps->on_publish = on_publish;
    ps->publish_arg = arg;
    settings_from(&ps->opt, cfg);
    histogram_init(&ps->latency, histogram_latency_bounds, histogram_latency_nbounds);
    for (int v = 0; v < PAYLOAD_NPROTO; v++)
        fanout_init(&ps->stream[v], heap, &ps->latency);
    ps->start_ns = clock_realtime_ns();
    ps->rbuf = heap_alloc(heap, READ_HEADROOM + READ_BUF_SIZE);
    if (ps->rbuf == NULL || pubsub__topics_init(ps) != 0 ||
        parser_setup(ps, ps->opt.max_request) != 0 || pubsub__acl_build(heap, cfg, &ps->acl) != 0) {
        pubsub_free(ps);
        snprintf(err, errlen, "pubsub: out of memory");
        return -ENOMEM;
    }
    r = listener_open(ps, ps->opt.listen, &ps->listener, err, errlen);
    if (r != 0) {
        pubsub_free(ps);
        return r;
    }
    uv_timer_init(loop, &ps->housekeeping);
    uv_timer_init(loop, &ps->drain);
    uv_idle_init(loop, &ps->snapshots);
    uv_timer_init(loop, &ps->auth_timer);
    ps->housekeeping.data = ps;
    ps->drain.data = ps;
    ps->snapshots.data = ps;
    ps->auth_timer.data = ps;
    ps->handles += 4;
    pubsub__conflate_init(ps);
    housekeeping_start(ps);
    uv_unref((uv_handle_t *)&ps->housekeeping);
    *out = ps;
    return 0;
}

void pubsub_set_info_source(pubsub_t *ps, pubsub_info_fn fn, void *arg)
{
    ps->info_fn = fn;
    ps->info_arg = arg;
}

void pubsub_set_bars(pubsub_t *ps, const bars_t *bars)
{
    ps->bars = bars;
}

void pubsub_set_market(pubsub_t *ps, market_t *market)
{
    pubsub__slots_release(ps);
    ps->market = market;
    for (client_t *c = ps->clients; c != NULL; c = c->next)
        for (snapshot_job_t *j = c->jobs; j != NULL; j = j->next) {
            j->cursor = 0; /* the new day's symbols, from the start */
            j->generation = 0;
        }
}

int pubsub_reconfigure(pubsub_t *ps, const config_t *cfg, char *err, size_t errlen)
{
    int r;

    if ((strcmp(cfg->pubsub.listen, ps->opt.listen) != 0 || ps->listener == NULL) &&
        !ps->stopping) {
        listener_t *l;
        r = listener_open(ps, cfg->pubsub.listen, &l, err, errlen);
        if (r == UV_EADDRINUSE) {
            /* Same port on another address of this host: let go of the old
             * socket first (uv_close() closes it at once), and take it
             * back if the new one still cannot bind. */
            char ignored[CONFIG_ERR_LEN];
            listener_close(ps->listener);
            ps->listener = NULL;
            r = listener_open(ps, cfg->pubsub.listen, &l, err, errlen);
            if (r != 0)
                listener_open(ps, ps->opt.listen, &ps->listener, ignored, sizeof ignored);
        }
        if (r != 0)
            return r;
        listener_close(ps->listener);
        ps->listener = l;
    }
    r = parser_setup(ps, cfg->pubsub.max_request);
    if (r != 0) {
        snprintf(err, errlen, "pubsub: out of memory");
        return r;
    }
    r = pubsub__acl_reconfigure(ps, cfg, err, errlen);
    if (r != 0)
        return r;
    settings_from(&ps->opt, cfg);
    if (!ps->stopping)
        housekeeping_start(ps);
    return 0;
}

static void on_drain_timer(uv_timer_t *t)
{
    pubsub_t *ps = t->data;
    client_t *c;

    uv_timer_stop(t);
    while ((c = ps->clients) != NULL)
        pubsub__client_close(c);
    if (!uv_is_closing((uv_handle_t *)t))
        uv_close((uv_handle_t *)t, on_handle_closed);
}

void pubsub_stop(pubsub_t *ps, uint64_t drain_ns, void (*done)(void *arg), void *arg)
{
    if (ps == NULL || ps->stopping) {
        if (ps == NULL && done != NULL)
            done(arg);
        return;
    }
    ps->stopping = 1;
    ps->done = done;
    ps->done_arg = arg;
    listener_close(ps->listener);
    ps->listener = NULL;
    uv_timer_stop(&ps->housekeeping);
    uv_close((uv_handle_t *)&ps->housekeeping, on_handle_closed);
    pubsub__conflate_close(ps, on_handle_closed);
    uv_idle_stop(&ps->snapshots);
    uv_close((uv_handle_t *)&ps->snapshots, on_handle_closed);
    uv_timer_stop(&ps->auth_timer);
    uv_close((uv_handle_t *)&ps->auth_timer, on_handle_closed);
    for (client_t *c = ps->clients; c != NULL; c = c->next) {
        pubsub__begin_closing(c);
        pubsub__dirty_add(c);
    }
    uv_timer_start(&ps->drain, on_drain_timer, (drain_ns + 999999) / 1000000, 0);
    pubsub_flush(ps); /* closes the clients that had nothing left to send */
    if (ps->clients == NULL && uv_is_active((uv_handle_t *)&ps->drain))
        on_drain_timer(&ps->drain);
}

void pubsub_get_stats(const pubsub_t *ps, pubsub_stats_t *out)
{
    *out = ps->stats;
}

int pubsub_port(const pubsub_t *ps)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;

    if (ps->listener == NULL)
        return -EBADF;
    int r = uv_tcp_getsockname(&ps->listener->tcp, (struct sockaddr *)&ss, &len);
    if (r != 0)
        return r;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

const histogram_t *pubsub_latency(const pubsub_t *ps)
{
    return &ps->latency;
}

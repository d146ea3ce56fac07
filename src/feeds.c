/*
 * feeds.c - file replay, TCP streams and MoldUDP64 datagrams on the loop.
 *
 * A file feed reads its file with libuv's asynchronous file reads into two
 * 1 MiB buffers (one being decoded, one being read) and decodes in slices of
 * at most FEED_SLICE messages, yielding to the loop between slices, so a
 * replay at full speed never starves the subscribers. At --speed N a timer
 * moves the pacing limit forward with the clock, skipping any stretch of
 * more than a second without a message. Each slice's ticks are stamped
 * received when the slice is released to the market (one clock read per
 * slice), never when their chunk was read ahead: a paced tick's latency
 * starts when it is due. At the end of the file a non-looping feed is
 * finished. A looping feed opens its path again and replays it within the
 * same trading day (only session.roll_at rolls the day): before the new pass
 * it withdraws the ITCH orders the last pass left on the books (they carry
 * its market source, market_withdraw()), so the same references can be added
 * again, and its decoder starts afresh. Exchange times go back to the start
 * of the file; the market's sequence numbers go on.
 *
 * A pass that applies no message (the file is empty, or nothing in it
 * decodes), a path that cannot be opened and a read that fails put the feed
 * in error: not up, the reason in /healthz, logged once (again only when the
 * reason changes), and retried after FEED_RETRY_MIN_MS, doubling up to
 * FEED_RETRY_MAX_MS. The first message applied ends the error, with a log
 * line. A non-looping feed whose read fails stays in error: its replay is
 * not started again.
 *
 * A TCP feed accepts any number of sources; each connection gets its own
 * ingest (its own framing state) and 64 KiB read buffer, allocated when it
 * connects. A UDP feed has one ingest (one MoldUDP64 session) and joins its
 * multicast group if it has one.
 *
 * After every slice, read or datagram the owner's batch_done hook runs (the
 * daemon flushes the subscribers and hands the journal its batch): that is
 * the end of a batch. Bad inputs go to its input_error hook. A feed calls
 * nothing else of its owner (feeds.h).
 *
 * For /healthz (health.h) each feed keeps when it started, when a batch last
 * applied a message (for UDP: when a datagram last delivered one, or was a
 * heartbeat at the next expected number; duplicates, ignored jumps and
 * garbage do not count, so a feed that delivers nothing goes stale) and, for
 * TCP, when a source last connected or left. These times are the
 * clock read the batch makes anyway, so health costs no call per tick.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/clock.h"
#include "src/config.h"
#include "feed/ingest.h"
#include "src/feeds.h"
#include "src/log.h"
#include "src/nats_feed.h"

#define FEED_CHUNK      (1u << 20)
#define FEED_SLICE      65536
#define FEED_TCP_BUFFER (64u << 10)
#define FEED_UDP_BUFFER (64u << 10)
/* Paced replay skips a stretch with no message longer than this (in replay
 * time): the hours before the open, a halt. */
#define FEED_MAX_QUIET_NS 1e9
/* A file feed in error tries again after this long, doubling up to the max. */
#define FEED_RETRY_MIN_MS 1000
#define FEED_RETRY_MAX_MS 60000

typedef struct feed_conn {
    uv_tcp_t handle;
    feed_t *feed;
    ingest_t ing;
    struct feed_conn *next, *prev;
    unsigned char buf[FEED_TCP_BUFFER];
} feed_conn_t;

struct feed {
    uv_loop_t *loop;
    feed_hooks_t hooks;
    config_feed_t cfg;
    market_t *market;
    feed_stats_t done; /* counters of ingests that are gone */
    int up;
    int closing;
    int handles; /* handles still open; the feed is freed at 0 */

    /* health (health.h): CLOCK_REALTIME, read once per batch, never per tick */
    int64_t started_ns; /* when the feed started */
    int64_t last_ns;    /* the last batch that applied a message (udp: see above); 0 none */
    int64_t changed_ns; /* tcp: the last source's connect or disconnect; 0 none */
    int finished;       /* a non-looping file feed has reached its end */

    /* file */
    ingest_t ing; /* file and udp */
    uv_file fd;
    uv_fs_t read_req;
    int reading; /* a read is in flight */
    unsigned char *buf[2];
    size_t len[2]; /* bytes in buf[i]; buf[cur] is being decoded */
    int cur;
    int have_chunk; /* buf[cur] was pushed and is not used up */
    int ready;      /* buf[!cur] holds a chunk read ahead */
    int eof;
    int64_t offset;  /* next read position */
    uv_timer_t pump; /* the next slice; in error, the next try */
    int64_t t0;      /* exchange time of the first message */
    uint64_t wall0;  /* uv_hrtime() when it was applied */
    int have_t0;
    uint16_t source;   /* a looping feed's name for its orders in the market; 0 none */
    int failing;       /* in error: error says why, the pump timer retries */
    uint64_t retry_ms; /* the wait before the next try; 0 when not failing */
    char error[sizeof(((config_feed_t *)0)->path) + 128]; /* what went wrong, for the log
                                                           * and /healthz */

    /* tcp */
    uv_tcp_t server;
    feed_conn_t *conns;
    uint64_t nconns;

    /* udp */
    uv_udp_t udp;
    unsigned char *udp_buf;

    /* nats */
    nats_feed_t *nats;
};

static void feed_error(void *arg, uint64_t where, const char *reason)
{
    feed_t *f = arg;
    f->hooks.input_error(f->hooks.arg, f->cfg.name, where, reason);
}

static void batch_done(feed_t *f)
{
    f->hooks.batch_done(f->hooks.arg);
}

static void add_stats(feed_stats_t *to, const ingest_stats_t *s)
{
    to->messages += s->messages;
    to->decode_errors += s->decode_errors;
    to->sequence_gaps += s->sequence_gaps;
    to->rejected += s->rejected;
}

/* The MoldUDP64 session's own counters (one session per UDP feed). */
static void udp_stats(const feed_t *f, feed_stats_t *out)
{
    const mold_stats_t *m = &f->ing.mold.stats;
    out->sequence_jumps = m->implausible;
    out->duplicates = m->duplicates;
    out->session_changes = m->session_changes;
}

const char *feed_name(const feed_t *f)
{
    return f->cfg.name;
}

const config_feed_t *feed_config(const feed_t *f)
{
    return &f->cfg;
}

void feed_get_stats(const feed_t *f, feed_stats_t *out)
{
    *out = f->done;
    if (f->cfg.kind != FEED_TCP)
        add_stats(out, &f->ing.stats);
    if (f->nats != NULL) {
        ingest_stats_t ns;
        nats_feed_stats(f->nats, &ns, &out->duplicates);
        add_stats(out, &ns);
        out->hold_timeouts += nats_feed_hold_timeouts(f->nats);
    }
    if (f->cfg.kind == FEED_UDP)
        udp_stats(f, out);
    for (const feed_conn_t *c = f->conns; c != NULL; c = c->next)
        add_stats(out, &c->ing.stats);
    out->connections = f->nconns;
    out->up = f->cfg.kind == FEED_NATS ? f->nats != NULL && nats_feed_up(f->nats) : f->up;
}

void feed_set_stale_after(feed_t *f, uint64_t stale_after_ns)
{
    f->cfg.stale_after_ns = stale_after_ns;
}

void feed_set_market(feed_t *f, market_t *m)
{
    f->market = m;
    f->ing.market = m;
    if (f->nats != NULL)
        nats_feed_set_market(f->nats, m);
    for (feed_conn_t *c = f->conns; c != NULL; c = c->next)
        c->ing.market = m;
}

static void feed_free(feed_t *f)
{
    free(f->buf[0]);
    free(f->buf[1]);
    free(f->udp_buf);
    free(f);
}

/* A handle of the feed closed (or a read it waited for returned). */
static void handle_closed(uv_handle_t *h)
{
    feed_t *f = h->data;
    if (--f->handles == 0)
        feed_free(f);
}

static void close_handle(feed_t *f, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, handle_closed);
    else
        f->handles--;
}

/* ---- file replay ---- */

static void file_read(feed_t *f);
static void file_pump(uv_timer_t *t);

/* Hands the read-ahead chunk to the ingest and reads the next one. */
static void file_next_chunk(feed_t *f)
{
    f->cur = !f->cur;
    f->ready = 0;
    f->have_chunk = 1;
    ingest_push(&f->ing, f->buf[f->cur], f->len[f->cur], clock_realtime_ns());
    if (!f->eof)
        file_read(f);
    uv_timer_start(&f->pump, file_pump, 0, 0);
}

static void file_retry(uv_timer_t *t);

/* Puts the feed in error (see the top of the file): logged when the reason is
 * new, and for a looping feed a retry once the backoff has passed. */
static void file_fail(feed_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void file_fail(feed_t *f, const char *fmt, ...)
{
    char why[sizeof(f->error)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    f->up = 0;
    f->retry_ms = f->retry_ms == 0
                      ? FEED_RETRY_MIN_MS
                      : (f->retry_ms * 2 < FEED_RETRY_MAX_MS ? f->retry_ms * 2 : FEED_RETRY_MAX_MS);
    if (!f->failing || strcmp(why, f->error) != 0) {
        if (f->cfg.loop)
            log_msg(LOG_ERR, "feed %s: %s; trying again in %llu s, then less often (up to %d s)",
                    f->cfg.name, why, (unsigned long long)(f->retry_ms / 1000),
                    FEED_RETRY_MAX_MS / 1000);
        else
            log_msg(LOG_ERR, "feed %s: %s; the replay has stopped", f->cfg.name, why);
    }
    f->failing = 1;
    memcpy(f->error, why, sizeof(why));
    if (f->cfg.loop)
        uv_timer_start(&f->pump, file_retry, f->retry_ms, 0);
}

/* A message was applied: an error the feed was in is over. */
static void file_recovered(feed_t *f)
{
    log_msg(LOG_INFO, "feed %s: replaying %s again (it was: %s)", f->cfg.name, f->cfg.path,
            f->error);
    f->failing = 0;
    f->retry_ms = 0;
    f->error[0] = '\0';
    f->up = 1;
}

static int file_open(feed_t *f, char *err, size_t errlen)
{
    uv_fs_t req;
    int fd = uv_fs_open(NULL, &req, f->cfg.path, O_RDONLY | O_CLOEXEC, 0, NULL);
    uv_fs_req_cleanup(&req);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", f->cfg.path, uv_strerror(fd));
        return fd;
    }
    if (f->fd >= 0) {
        uv_fs_close(NULL, &req, f->fd, NULL);
        uv_fs_req_cleanup(&req);
    }
    f->fd = fd;
    return 0;
}

/* A new pass over the file, from its path again (it may have been replaced),
 * with a fresh decoder. 0, or -errno with why the path cannot be opened. */
static int file_pass(feed_t *f, char *err, size_t errlen)
{
    int r = file_open(f, err, errlen);
    if (r != 0)
        return r;
    ingest_init(&f->ing, f->cfg.format, f->market, feed_error, f);
    f->ing.source = f->source;
    f->cur = 1; /* the first read goes into buf[0] */
    f->have_chunk = 0;
    f->ready = 0;
    f->eof = 0;
    f->offset = 0;
    f->have_t0 = 0;
    file_read(f);
    return 0;
}

/* Another pass; a path that cannot be opened is an error of the feed. */
static void file_again(feed_t *f)
{
    char why[sizeof(f->error)];
    if (file_pass(f, why, sizeof(why)) != 0)
        file_fail(f, "%s", why);
}

static void file_retry(uv_timer_t *t)
{
    feed_t *f = t->data;
    if (!f->closing)
        file_again(f);
}

/* The end of the file: a looping feed takes back its orders and starts again
 * in the same day, unless the pass applied nothing. */
static void file_end(feed_t *f)
{
    int64_t now = clock_realtime_ns();
    uint64_t before = f->ing.stats.messages;
    ingest_stamp(&f->ing, now); /* a last line without a newline goes now */
    ingest_finish(&f->ing);
    if (f->ing.stats.messages != before) {
        f->last_ns = now;
        if (f->failing)
            file_recovered(f);
    }
    if (!f->cfg.loop) {
        f->finished = 1;
        log_msg(LOG_INFO, "feed %s: end of %s after %llu messages", f->cfg.name, f->cfg.path,
                (unsigned long long)f->ing.stats.messages);
        return;
    }
    int applied = f->ing.stats.messages != 0;
    add_stats(&f->done, &f->ing.stats);
    memset(&f->ing.stats, 0, sizeof(f->ing.stats));
    if (market_withdraw(f->market, f->source, now, now) != 0)
        batch_done(f); /* the quotes of the emptied books go out */
    if (!applied) {
        file_fail(f, "no message in %s (it is empty, or nothing in it decodes)", f->cfg.path);
        return;
    }
    if (f->hooks.rewound != NULL)
        f->hooks.rewound(f->hooks.arg);
    file_again(f);
}

static void file_pump(uv_timer_t *t)
{
    feed_t *f = t->data;
    if (f->closing || !f->have_chunk)
        return;
    int64_t limit = INT64_MAX, next = 0;
    if (f->cfg.speed > 0) {
        if (!f->have_t0) {
            if (ingest_run(&f->ing, INT64_MIN, FEED_SLICE, &next) == 1) {
                f->t0 = next;
                f->wall0 = uv_hrtime();
                f->have_t0 = 1;
            }
        }
        if (f->have_t0)
            limit = f->t0 + (int64_t)((double)(uv_hrtime() - f->wall0) * f->cfg.speed);
    }
    /* The slice is released now: that is when its ticks are received, however
     * long ago their chunk was read ahead. */
    int64_t now = clock_realtime_ns();
    uint64_t before = f->ing.stats.messages;
    ingest_stamp(&f->ing, now);
    int more = ingest_run(&f->ing, limit, FEED_SLICE, &next);
    if (f->ing.stats.messages != before) {
        f->last_ns = now;
        if (HEAP_UNLIKELY(f->failing))
            file_recovered(f);
    }
    batch_done(f);
    if (more) {
        uint64_t ms = 0;
        if (next > limit) { /* paced: sleep until the next message is due */
            double wait_ns = (double)(next - limit) / f->cfg.speed;
            if (wait_ns > FEED_MAX_QUIET_NS)
                f->have_t0 = 0; /* a quiet stretch (before the open, a halt): skip it */
            else
                ms = wait_ns > 100e6 ? 100 : (uint64_t)(wait_ns / 1e6);
        }
        uv_timer_start(&f->pump, file_pump, ms, 0);
        return;
    }
    f->have_chunk = 0;
    if (f->ready)
        file_next_chunk(f);
    else if (f->eof && !f->reading)
        file_end(f);
}

static void file_read_done(uv_fs_t *req)
{
    feed_t *f = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    f->reading = 0;
    if (f->closing) {
        handle_closed((uv_handle_t *)&f->pump); /* the read held a reference */
        return;
    }
    f->handles--;
    if (n < 0) {
        if (f->cfg.loop) {
            add_stats(&f->done, &f->ing.stats);
            memset(&f->ing.stats, 0, sizeof(f->ing.stats));
        }
        uv_timer_stop(&f->pump); /* the slices of this pass are abandoned */
        file_fail(f, "reading %s: %s", f->cfg.path, uv_strerror((int)n));
        return;
    }
    if (n == 0) {
        f->eof = 1;
        if (!f->have_chunk && !f->ready)
            file_end(f);
        return;
    }
    f->offset += n;
    f->len[!f->cur] = (size_t)n;
    f->ready = 1;
    if (!f->have_chunk)
        file_next_chunk(f);
}

static void file_read(feed_t *f)
{
    uv_buf_t b = uv_buf_init((char *)f->buf[!f->cur], FEED_CHUNK);
    f->read_req.data = f;
    int r = uv_fs_read(f->loop, &f->read_req, f->fd, &b, 1, f->offset, file_read_done);
    if (r == 0) {
        f->reading = 1;
        f->handles++; /* keeps the feed alive until the read returns */
    } else {
        file_fail(f, "reading %s: %s", f->cfg.path, uv_strerror(r));
    }
}

static int file_start(feed_t *f, char *err, size_t errlen)
{
    f->buf[0] = malloc(FEED_CHUNK);
    f->buf[1] = malloc(FEED_CHUNK);
    if (f->buf[0] == NULL || f->buf[1] == NULL) {
        snprintf(err, errlen, "feed %s: out of memory", f->cfg.name);
        return -ENOMEM;
    }
    if (f->cfg.loop) {
        static uint16_t last_source;
        if (++last_source == 0)
            last_source = 1;
        f->source = last_source;
    }
    uv_timer_init(f->loop, &f->pump);
    f->pump.data = f;
    f->handles = 1;
    char why[sizeof(f->error)];
    int r = file_pass(f, why, sizeof(why));
    if (r != 0) {
        snprintf(err, errlen, "feed %s: %s", f->cfg.name, why);
        return r;
    }
    f->up = !f->failing;
    return 0;
}

/* ---- TCP streams ---- */

static void conn_closed(uv_handle_t *h)
{
    feed_conn_t *c = h->data;
    feed_t *f = c->feed;
    free(c);
    handle_closed((uv_handle_t *)&f->server);
}

static void conn_close(feed_conn_t *c)
{
    feed_t *f = c->feed;
    ingest_finish(&c->ing);
    add_stats(&f->done, &c->ing.stats);
    memset(&c->ing.stats, 0, sizeof(c->ing.stats));
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        f->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    f->nconns--;
    f->changed_ns = clock_realtime_ns();
    c->handle.data = c;
    uv_close((uv_handle_t *)&c->handle, conn_closed);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    feed_conn_t *c = h->data;
    *buf = uv_buf_init((char *)c->buf, sizeof(c->buf));
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    feed_conn_t *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    int64_t now = clock_realtime_ns();
    uint64_t before = c->ing.stats.messages;
    ingest_push(&c->ing, buf->base, (size_t)n, now);
    ingest_run(&c->ing, INT64_MAX, UINT64_MAX, NULL);
    if (c->ing.stats.messages != before)
        c->feed->last_ns = now;
    batch_done(c->feed);
}

static void conn_refused(uv_handle_t *h)
{
    free(h->data);
}

static void tcp_accept(uv_stream_t *server, int status)
{
    feed_t *f = server->data;
    if (status < 0)
        return;
    feed_conn_t *c = malloc(sizeof(*c));
    if (c == NULL)
        return;
    uv_tcp_init(f->loop, &c->handle);
    c->handle.data = c;
    c->feed = f;
    if (uv_accept(server, (uv_stream_t *)&c->handle) != 0) {
        uv_close((uv_handle_t *)&c->handle, conn_refused);
        return;
    }
    ingest_init(&c->ing, f->cfg.format, f->market, feed_error, f);
    c->prev = NULL;
    c->next = f->conns;
    if (f->conns != NULL)
        f->conns->prev = c;
    f->conns = c;
    f->nconns++;
    f->handles++;
    f->changed_ns = clock_realtime_ns();
    uv_read_start((uv_stream_t *)&c->handle, conn_alloc, conn_read);
}

static int resolve(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen,
                   const char *name)
{
    char host[256];
    int port, r;
    if (config_parse_hostport(listen, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "feed %s: bad listen address %s", name, listen);
        return -EINVAL;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    r = strchr(host, ':') != NULL ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss)
                                  : uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
    if (r != 0)
        snprintf(err, errlen, "feed %s: bad address %s: %s", name, listen, uv_strerror(r));
    return r;
}

static int tcp_start(feed_t *f, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int r = resolve(f->cfg.listen, &ss, err, errlen, f->cfg.name);
    if (r != 0)
        return r;
    uv_tcp_init(f->loop, &f->server);
    f->server.data = f;
    f->handles = 1;
    r = uv_tcp_bind(&f->server, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&f->server, 128, tcp_accept);
    if (r != 0) {
        snprintf(err, errlen, "feed %s: cannot listen on %s: %s", f->cfg.name, f->cfg.listen,
                 uv_strerror(r));
        return r;
    }
    f->up = 1;
    return 0;
}

/* ---- MoldUDP64 ---- */

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    feed_t *f = h->data;
    *buf = uv_buf_init((char *)f->udp_buf, FEED_UDP_BUFFER);
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    feed_t *f = h->data;
    (void)from;
    if (n <= 0 || (flags & UV_UDP_PARTIAL)) {
        if (flags & UV_UDP_PARTIAL)
            f->ing.stats.decode_errors++; /* a datagram larger than any MoldUDP64 packet */
        return;
    }
    int64_t now = clock_realtime_ns();
    if (ingest_packet(&f->ing, buf->base, (size_t)n, now)) /* it delivered, or a live heartbeat */
        f->last_ns = now;
    batch_done(f);
}

static int udp_start(feed_t *f, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int r = resolve(f->cfg.listen, &ss, err, errlen, f->cfg.name);
    if (r != 0)
        return r;
    f->udp_buf = malloc(FEED_UDP_BUFFER);
    if (f->udp_buf == NULL)
        return -ENOMEM;
    ingest_init(&f->ing, INGEST_MOLD, f->market, feed_error, f);
    uv_udp_init(f->loop, &f->udp);
    f->udp.data = f;
    f->handles = 1;
    r = uv_udp_bind(&f->udp, (const struct sockaddr *)&ss, UV_UDP_REUSEADDR);
    if (r == 0 && f->cfg.group[0] != '\0')
        r = uv_udp_set_membership(&f->udp, f->cfg.group,
                                  f->cfg.interface[0] != '\0' ? f->cfg.interface : NULL,
                                  UV_JOIN_GROUP);
    if (r == 0)
        r = uv_udp_recv_start(&f->udp, udp_alloc, udp_recv);
    if (r != 0) {
        snprintf(err, errlen, "feed %s: cannot receive on %s%s%s: %s", f->cfg.name, f->cfg.listen,
                 f->cfg.group[0] ? " group " : "", f->cfg.group, uv_strerror(r));
        return r;
    }
    f->up = 1;
    return 0;
}

/* ---- nats ---- */

static void nats_batch_done(void *arg)
{
    batch_done(arg);
}

static void nats_input_error(void *arg, uint64_t where, const char *reason)
{
    feed_error(arg, where, reason);
}

static uint64_t nats_durable_mark(void *arg)
{
    feed_t *f = arg;
    return f->hooks.durable_mark != NULL ? f->hooks.durable_mark(f->hooks.arg) : 0;
}

static int nats_start(feed_t *f, const config_nats_t *nats, char *err, size_t errlen)
{
    nats_feed_hooks_t hooks = {nats_batch_done, nats_input_error, nats_durable_mark, f};
    if (nats == NULL || nats->nservers == 0) {
        snprintf(err, errlen, "feed %s: a nats feed needs nats.servers", f->cfg.name);
        return -EINVAL;
    }
    return nats_feed_start(f->loop, f->market, &f->cfg, nats, &hooks, &f->nats, err, errlen);
}

void feed_durable(feed_t *f, uint64_t upto)
{
    if (f->nats != NULL)
        nats_feed_durable(f->nats, upto);
}

/* ---- start and stop ---- */

int feed_start(uv_loop_t *loop, market_t *market, const config_feed_t *cfg,
               const config_nats_t *nats, const feed_hooks_t *hooks, feed_t **out, char *err,
               size_t errlen)
{
    feed_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->loop = loop;
    f->hooks = *hooks;
    f->cfg = *cfg;
    f->market = market;
    f->fd = -1;
    f->started_ns = clock_realtime_ns();
    int r;
    switch (cfg->kind) {
    case FEED_FILE:
        r = file_start(f, err, errlen);
        break;
    case FEED_TCP:
        r = tcp_start(f, err, errlen);
        break;
    case FEED_NATS:
        r = nats_start(f, nats, err, errlen);
        break;
    default:
        r = udp_start(f, err, errlen);
        break;
    }
    if (r != 0) {
        feed_stop(f);
        return r;
    }
    *out = f;
    return 0;
}

void feed_stop(feed_t *f)
{
    f->closing = 1;
    f->up = 0;
    if (f->nats != NULL) {
        nats_feed_stop(f->nats);
        f->nats = NULL;
    }
    if (f->fd >= 0) {
        uv_fs_t req;
        uv_fs_close(NULL, &req, f->fd, NULL);
        uv_fs_req_cleanup(&req);
        f->fd = -1;
    }
    if (f->handles == 0) { /* nothing was opened */
        feed_free(f);
        return;
    }
    switch (f->cfg.kind) {
    case FEED_FILE:
        if (f->reading)
            uv_cancel((uv_req_t *)&f->read_req);
        close_handle(f, (uv_handle_t *)&f->pump);
        break;
    case FEED_TCP:
        while (f->conns != NULL)
            conn_close(f->conns);
        close_handle(f, (uv_handle_t *)&f->server);
        break;
    default:
        close_handle(f, (uv_handle_t *)&f->udp);
        break;
    }
}

void feed_get_health(const feed_t *f, health_feed_t *out)
{
    static const char *const types[] = {
        [FEED_FILE] = "file", [FEED_TCP] = "tcp", [FEED_UDP] = "udp", [FEED_NATS] = "nats"};
    int64_t quiet = f->started_ns;
    if (f->last_ns > quiet)
        quiet = f->last_ns;
    if (f->changed_ns > quiet)
        quiet = f->changed_ns;
    if (f->nats != NULL && nats_feed_last_ns(f->nats) > quiet)
        quiet = nats_feed_last_ns(f->nats);
    if (f->cfg.kind == FEED_NATS) {
        *out = (health_feed_t){
            .name = f->cfg.name,
            .type = types[f->cfg.kind],
            .up = f->nats != NULL && nats_feed_up(f->nats),
            .error = f->nats != NULL ? nats_feed_error(f->nats) : NULL,
            .connected = f->nats != NULL && nats_feed_connected(f->nats),
            .last_message_ns = f->nats != NULL ? nats_feed_last_ns(f->nats) : 0,
            .quiet_since_ns = quiet,
            .hold_since_ns = f->nats != NULL ? nats_feed_holding_since(f->nats) : 0,
            .stale_after_ns = f->cfg.stale_after_ns,
        };
        return;
    }
    *out = (health_feed_t){
        .name = f->cfg.name,
        .type = types[f->cfg.kind],
        .up = f->up,
        .error = f->failing ? f->error : NULL,
        .connected = f->cfg.kind == FEED_TCP   ? f->nconns > 0
                     : f->cfg.kind == FEED_UDP ? f->last_ns != 0
                                               : f->up,
        .finished = f->finished,
        .last_message_ns = f->last_ns,
        .quiet_since_ns = quiet,
        .stale_after_ns = f->cfg.stale_after_ns,
    };
}

int feed_port(const feed_t *f)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int r = f->cfg.kind == FEED_TCP   ? uv_tcp_getsockname(&f->server, (struct sockaddr *)&ss, &len)
            : f->cfg.kind == FEED_UDP ? uv_udp_getsockname(&f->udp, (struct sockaddr *)&ss, &len)
                                      : -EINVAL;
    if (r != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/*
 * pubsub_queue.c - the subscribers' output: a tick fanned out onto their
 * rings, the rings written to the sockets, the output limits, and command
 * replies.
 *
 * Fan-out. pubsub_tick() returns at once when nothing at all is subscribed,
 * and after finding the channel's topic when nobody subscribed to the tick's
 * channel and there are no patterns: the topic is kept on the tick's symbol
 * (pubsub__channel_of()), so the name is hashed only after the channel
 * table changed. Otherwise the tick is encoded once and its frames
 * are written at the end of the fan-out stream (fanout.h): the message frame,
 * and a whole pmessage frame for each matching pattern (the pattern's head
 * copied in front of the tick's channel and text; a pattern longer than
 * PATTERN_COPY_MAX is sent as its precomputed head plus the message frame's
 * tail instead). Each subscriber's output ring gets a reference to its frame
 * in the open span, and a reference that follows on from the ring's last
 * entry just extends it: a subscriber of one channel or one pattern holds
 * one entry per flush, written as one contiguous buffer. pubsub_flush()
 * seals the span once the writes are done.
 *
 * There is one stream per protocol. Every topic counts its RESP3
 * subscribers (nsubs3), and a tick's frames go into the RESP3 stream only
 * when a RESP3 client subscribes to its channel or a matching pattern: the
 * same frames with '>' first, written once for all of them. Interleaving
 * both variants in one stream would break every subscriber's run of frames
 * into one queue entry per tick; with a stream each, a RESP3 subscriber's
 * frames follow on just as a RESP2 subscriber's do. A RESP2-only fan-out
 * pays a sum of counts, nothing more (a channel's subscribers are asked
 * their protocol one by one only when its counts say they are mixed; a
 * pattern's always are); the RESP3 stream then takes no chunk at all. A tick's latency is observed
 * once, in the first stream it went to (the RESP2 one when it has
 * subscribers in both).
 *
 * Output. A client's output is a ring of (payload, byte range) entries,
 * ring[(ring_head + i) & (ring_cap - 1)] for i < ring_count, ring_cap a
 * power of two; the first inflight entries belong to the uv_write() in
 * flight and are never extended. The ring doubles when full (rare: a ring
 * only grows past the size its client's batches need while the client lags)
 * and is cut back by the housekeeping timer once it has used a quarter or
 * less of itself for a whole pass. Command replies are gathered in one
 * scratch buffer per read and queued as one payload. pubsub_flush() walks
 * the clients with pending output (an intrusive list, never all the
 * clients) and writes each with one uv_try_write() of up to TRY_WRITE_BUFS
 * buffers; what the socket does not take is handed to uv_write() (at most
 * WRITE_BUFS buffers, which libuv keeps without allocating) and the client
 * is skipped until its callback, which resumes writing.
 *
 * Limits. They judge what a client fails to take, not what a batch puts in
 * front of it: a feed read can make a batch far bigger than the hard limit,
 * and a subscriber that reads must not be cut for it. So the hard limit
 * applies to what tickd still holds for a client once the socket has been
 * offered the output (after every write attempt, at every flush for a
 * client whose socket is full, and at every housekeeping pass): that is
 * tickd's memory at stake. Queued ticks share the stream's chunks, and a
 * chunk lives while anyone's entry points into it, so what a client holds
 * is its queued bytes or, when its oldest entry is in the stream,
 * everything the stream wrote since, whichever is more: a subscriber of a
 * quiet channel that stops reading cannot pin the busy channels' chunks
 * for longer than the hard limit's worth of fan-out. Snapshots are judged
 * while they are made (pubsub_snapshot.c). The soft limit asks whether the
 * client keeps up at all: the housekeeping timer samples what it has not
 * received yet, tickd's queue plus the kernel's (SIOCOUTQ), and a client
 * over the limit at every pass for output_soft_seconds is cut; one that
 * reads through a burst is not. Either way the client is marked (pubsub__doom())
 * and disconnected once the work at hand is over (pubsub__reap_slow()): nobody
 * ever waits for it. With pubsub.slow_consumer: conflate, a client over
 * the soft limit for output_soft_seconds is put in conflation instead of
 * being cut (pubsub_conflate.c), on the same clock: started when it is
 * first seen over (sampled, or, under this policy, after a write attempt
 * too), stopped when a sample finds it under, and judged at both. In
 * conflation its quotes collapse, its other frames are copied out of the
 * stream, and the hard limit then judges its queued bytes alone, which
 * only its trades grow. Until then the hard limit applies as to anyone: a
 * client that falls that far behind sooner is cut. The flag that marks it is one
 * more bit in the enqueue's fast-path test, so nobody else pays for it.
 *
 * Never blocks, never allocates from the system allocator per tick: a ring
 * entry is a reference to a span of the stream or a payload block, and the
 * rings and payloads come from the daemon's heap.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "feed/digits.h"
#include "src/clock.h"
#include "src/pubsub_internal.h"

#define TRY_WRITE_BUFS   128 /* buffers per uv_try_write() */
#define WRITE_BUFS       4   /* buffers per uv_write(): libuv keeps four without allocating */
#define PATTERN_COPY_MAX 128 /* pmessage heads up to this long are copied into each frame */

/* ---- fan-out ---- */

/* Whether pattern pat's pmessage frame (f bytes) goes whole into the
 * stream, *used bytes of whole frames being there already: its head is
 * short, and the tick's frames stay within FANOUT_TICK_MAX with the message
 * frame (msg bytes). Counts it in *used. Calling it again from *used = 0
 * over the same patterns gives the same answers. */
static int pmessage_whole(const payload_t *head, size_t f, size_t msg, size_t *used)
{
    if (head->len > PATTERN_COPY_MAX || *used + f + msg > FANOUT_TICK_MAX)
        return 0;
    *used += f;
    return 1;
}

/* Writes one tick's frames in protocol proto at the end of that protocol's
 * stream, for the subscribers of channel ch and its npat matching patterns
 * who speak proto, and queues them there; returns the messages queued. The
 * stream takes the tick's receipt time ts_recv, or FANOUT_UNTIMED when the
 * other stream observes its latency. */
static uint64_t fan_out(pubsub_t *ps, const topic_t *ch, uint32_t npat, int proto, const char *name,
                        size_t n, const char *text, size_t len, int64_t ts_recv)
{
    size_t msg = payload_frame_size(PAYLOAD_MESSAGE_HEAD, n, len);
    size_t whole = 0;
    int tails = 0;
    for (uint32_t j = 0; j < npat; j++) {
        const topic_t *pat = ch->matches[j]->pattern;
        const payload_t *h = pat->head[proto];
        if (pubsub__subs_in(pat, proto) > 0)
            tails |= !pmessage_whole(h, payload_frame_size(h->len, n, len), msg, &whole);
    }
    int with_msg = pubsub__subs_in(ch, proto) > 0 || tails;
    fanout_t *b = &ps->stream[proto];
    payload_t *span = fanout_reserve(b, whole + (with_msg ? msg : 0));
    if (span == NULL) {
        ps->stats.encode_errors_total++;
        return 0;
    }

    uint32_t at = span->len, msg_at = at;
    uint64_t sent = 0;
    if (with_msg)
        at += (uint32_t)payload_put_frame(span->data + at, payload_message_head(proto),
                                          PAYLOAD_MESSAGE_HEAD, name, n, text, len);
    /* Every subscriber speaks proto (the usual: one protocol in use), or
     * each is asked. */
    int all_proto = pubsub__subs_in(ch, proto) == ch->nsubs;
    for (uint32_t i = 0; i < ch->nsubs; i++) {
        client_t *c = ch->subs[i]->client;
        if (all_proto || pubsub__client_proto(c) == proto)
            sent += pubsub__enqueue(c, span, msg_at, msg_at + (uint32_t)msg) == 0;
    }
    whole = 0;
    for (uint32_t j = 0; j < npat; j++) {
        const topic_t *pat = ch->matches[j]->pattern;
        payload_t *h = pat->head[proto];
        if (pubsub__subs_in(pat, proto) == 0)
            continue;
        if (pmessage_whole(h, payload_frame_size(h->len, n, len), msg, &whole)) {
            uint32_t from = at;
            at += (uint32_t)payload_put_frame(span->data + at, h->data, h->len, name, n, text, len);
            for (uint32_t i = 0; i < pat->nsubs; i++) {
                client_t *c = pat->subs[i]->client;
                if (pubsub__client_proto(c) == proto)
                    sent += pubsub__enqueue(c, span, from, at) == 0;
            }
        } else {
            for (uint32_t i = 0; i < pat->nsubs; i++) {
                client_t *c = pat->subs[i]->client;
                if (pubsub__client_proto(c) == proto)
                    sent += pubsub__enqueue(c, h, 0, h->len) == 0 &&
                            pubsub__enqueue(c, span, msg_at + PAYLOAD_MESSAGE_HEAD,
                                            msg_at + (uint32_t)msg) == 0;
            }
        }
    }
    fanout_commit(b, at - span->len, ts_recv);
    return sent;
}

void pubsub_tick(pubsub_t *ps, tick_t *tick)
{
    pubsub_tick_text(ps, tick, NULL, 0);
}

/* A bar's channel name[0..n), with at least one subscriber through the
 * channel or a pattern, or NULL (a tick finds its channel through its
 * symbol's slot instead: pubsub__channel_of()). While patterns exist, a
 * channel's first message makes its topic, linked to the patterns that
 * match it, once: later messages find it. */
static inline __attribute__((always_inline)) topic_t *channel_to_send(pubsub_t *ps,
                                                                      const char *name, size_t n)
{
    uint32_t hash = pubsub__hash_name(name, n);
    topic_t *ch = pubsub__table_find(&ps->channels, name, n, hash);
    if (ch == NULL &&
        (ps->patterns.count == 0 || pubsub__topic_create(ps, 0, name, n, hash, &ch) != 0))
        return NULL;
    return ch->nsubs == 0 && ch->nmatches == 0 ? NULL : ch;
}

/* Queues text[0..tn) on channel ch for its subscribers and its patterns',
 * in each protocol they speak; returns the messages queued. Inlined, as
 * channel_to_send(), so that a tick's path has no call more than before
 * bars shared it. */
static inline __attribute__((always_inline)) uint64_t send_text(pubsub_t *ps, topic_t *ch,
                                                                const char *name, size_t n,
                                                                const char *text, size_t tn,
                                                                int64_t ts_recv)
{
    uint32_t npat = ch->nmatches;
    uint32_t all = ch->nsubs, resp3 = ch->nsubs3;
    for (uint32_t j = 0; j < npat; j++) {
        all += ch->matches[j]->pattern->nsubs;
        resp3 += ch->matches[j]->pattern->nsubs3;
    }
    uint64_t sent = 0;
    if (HEAP_LIKELY(all > resp3)) {
        sent += fan_out(ps, ch, npat, PAYLOAD_RESP2, name, n, text, tn, ts_recv);
        ts_recv = FANOUT_UNTIMED;
    }
    if (resp3 > 0)
        sent += fan_out(ps, ch, npat, PAYLOAD_RESP3, name, n, text, tn, ts_recv);
    ps->stats.messages_sent_total += sent;
    if (HEAP_UNLIKELY(ps->doomed != NULL))
        pubsub__reap_slow(ps);
    return sent;
}

void pubsub_tick_text(pubsub_t *ps, tick_t *tick, const char *given, size_t given_len)
{
    if (HEAP_LIKELY(ps->stats.subscriptions == 0))
        return;

    char name[PAYLOAD_CHANNEL_MAX];
    size_t n = payload_channel(tick, name);
    /* While patterns exist, a channel's first tick makes its topic, linked
     * to the patterns that match it, once: later ticks find it. */
    topic_t *ch = pubsub__channel_of(ps, tick, name, n);
    if (ch == NULL)
        return;
    if (HEAP_UNLIKELY(ch->ncf_links != 0))
        pubsub__conflate_tick(ps, ch, tick);
    if (ch->nsubs == 0 && ch->nmatches == 0)
        return;

    char buf[PAYLOAD_TEXT_MAX];
    const char *text = given;
    int tn = (int)given_len;
    if (given == NULL) {
        text = buf;
        tn = payload_format_tick(tick, ps->opt.payload, buf, sizeof buf);
    }
    if (tn < 0) {
        ps->stats.encode_errors_total++;
        return;
    }
    uint64_t sent = send_text(ps, ch, name, n, text, (size_t)tn, tick->ts_recv);
    if (ps->publishing)
        ps->publish_receivers += sent;
}

void pubsub_bar(pubsub_t *ps, const bar_t *bar)
{
    if (HEAP_LIKELY(ps->stats.subscriptions == 0))
        return;

    char name[PAYLOAD_BAR_CHANNEL_MAX];
    size_t n = payload_bar_channel(bar, name);
    topic_t *ch = channel_to_send(ps, name, n);
    if (ch == NULL)
        return;
    char text[PAYLOAD_BAR_TEXT_MAX];
    int tn = payload_format_bar(bar, ps->opt.payload, text, sizeof text);
    if (tn < 0) {
        ps->stats.encode_errors_total++;
        return;
    }
    /* Not a tick: no latency observed; and not the PUBLISHed message a
     * trade closing the bar is, so not counted in PUBLISH's reply. */
    send_text(ps, ch, name, n, text, (size_t)tn, FANOUT_UNTIMED);
}

void pubsub_flush(pubsub_t *ps)
{
    client_t *c;
    while ((c = ps->dirty) != NULL) {
        pubsub__dirty_remove(c);
        pubsub__client_write(c);
    }
    for (int v = 0; v < PAYLOAD_NPROTO; v++)
        fanout_seal(&ps->stream[v]);
    pubsub__reap_slow(ps);
}

/* ---- output queue ---- */

void pubsub__dirty_remove(client_t *c)
{
    if (!(c->flags & CLIENT_DIRTY))
        return;
    c->flags &= ~CLIENT_DIRTY;
    if (c->dirty_prev != NULL)
        c->dirty_prev->dirty_next = c->dirty_next;
    else
        c->ps->dirty = c->dirty_next;
    if (c->dirty_next != NULL)
        c->dirty_next->dirty_prev = c->dirty_prev;
}

/* Marks c to be disconnected as a slow consumer once the work at hand (a
 * fan-out, a command) is over. */
void pubsub__doom(client_t *c)
{
    if (c->flags & (CLIENT_SLOW | CLIENT_CLOSED))
        return;
    c->flags |= CLIENT_SLOW;
    c->doomed_next = c->ps->doomed;
    c->ps->doomed = c;
}

void pubsub__reap_slow(pubsub_t *ps)
{
    client_t *c;
    while ((c = ps->doomed) != NULL) {
        ps->doomed = c->doomed_next;
        c->flags &= ~CLIENT_SLOW;
        ps->stats.slow_consumer_disconnects_total++;
        pubsub__client_close(c);
    }
}

/* Doubles the ring, keeping the entries in order from index 0. */
static int ring_grow(client_t *c)
{
    heap_t *heap = c->ps->heap;
    uint32_t ncap = c->ring_cap * 2;
    out_entry_t *n = heap_alloc(heap, (size_t)ncap * sizeof(out_entry_t));
    if (n == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < c->ring_count; i++)
        n[i] = c->ring[(c->ring_head + i) & (c->ring_cap - 1)];
    heap_free(heap, c->ring);
    c->ring = n;
    c->ring_cap = ncap;
    c->ring_head = 0;
    TICKD_ASSERT(pubsub__ring_ok(c));
    return 0;
}

/* Gives back most of a ring that a burst grew and that has been using a
 * quarter of it or less since the last pass: growing stays rare for a client
 * whose batches are regularly big, and a lull frees the memory. */
void pubsub__ring_shrink(client_t *c)
{
    TICKD_ASSERT(pubsub__ring_ok(c) && pubsub__ring_bytes(c) == c->queued);
    uint32_t cap = RING_INITIAL;
    while (cap < 2 * c->ring_peak)
        cap *= 2;
    if (c->ring_count == 0 && !(c->flags & CLIENT_WRITING) && cap * 4 <= c->ring_cap) {
        out_entry_t *small = heap_alloc(c->ps->heap, cap * sizeof(out_entry_t));
        if (small != NULL) {
            heap_free(c->ps->heap, c->ring);
            c->ring = small;
            c->ring_cap = cap;
            c->ring_head = 0;
        }
    }
    c->ring_peak = c->ring_count;
}

/* pubsub__enqueue() for bytes that do not continue c's last entry: a new entry, and
 * the checks that come with one. */
int pubsub__enqueue_entry(client_t *c, payload_t *p, uint32_t off, uint32_t end)
{
    pubsub_t *ps = c->ps;

    if (HEAP_UNLIKELY(c->flags & (CLIENT_SLOW | CLIENT_CLOSED)))
        return -EPIPE;
    if (HEAP_UNLIKELY(ps->reply_client == c))
        pubsub__reply_seal(ps); /* replies gathered so far go first */
    if (HEAP_UNLIKELY(c->flags & CLIENT_CONFLATED) && p->chunk != NULL)
        return pubsub__conflate_client_enqueue(c, p, off, end);
    return pubsub__ring_push(c, p, off, end);
}

int pubsub__ring_push(client_t *c, payload_t *p, uint32_t off, uint32_t end)
{
    pubsub_t *ps = c->ps;

    if (HEAP_UNLIKELY(c->ring_count == c->ring_cap) && ring_grow(c) != 0) {
        pubsub__doom(c);
        return -EPIPE;
    }
    out_entry_t *e = &c->ring[(c->ring_head + c->ring_count) & (c->ring_cap - 1)];
    e->p = p;
    e->off = off;
    e->end = end;
    payload_incref(p);
    if (++c->ring_count > c->ring_peak)
        c->ring_peak = c->ring_count;
    TICKD_ASSERT(pubsub__ring_ok(c));
    c->queued += end - off;
    ps->stats.output_buffer_bytes += end - off;
    pubsub__dirty_add(c);
    return 0;
}

/* Takes bytes written off the front of c's ring; fully written entries are
 * released, a tick's buffer first stamped with the time of the write. */
static void consume(client_t *c, size_t bytes, int64_t *now)
{
    pubsub_t *ps = c->ps;

    TICKD_ASSERT(bytes <= c->queued && pubsub__ring_ok(c));
    if (HEAP_UNLIKELY(c->jobs != NULL) && c->queued - bytes <= SNAPSHOT_PAUSE)
        pubsub__snapshots_wake(ps); /* its socket drains: its snapshots may go on */
    c->queued -= bytes;
    ps->stats.output_buffer_bytes -= bytes;
    while (bytes > 0) {
        out_entry_t *e = &c->ring[c->ring_head];
        size_t n = e->end - e->off;
        if (bytes < n) {
            e->off += (uint32_t)bytes;
            break;
        }
        bytes -= n;
        if (e->p->flags & PAYLOAD_TICK) {
            if (*now < 0)
                *now = clock_realtime_ns();
            e->p->ts_written = *now;
            e->p->flags |= PAYLOAD_WRITTEN;
        }
        payload_release(ps->heap, &ps->latency, e->p);
        c->ring_head = (c->ring_head + 1) & (c->ring_cap - 1);
        c->ring_count--;
    }
}

/* Fills iov with up to max entries from the front of c's ring. Returns the
 * number of buffers; *bytes gets their total. */
static unsigned fill_iov(const client_t *c, uv_buf_t *iov, unsigned max, size_t *bytes)
{
    unsigned n = c->ring_count < max ? c->ring_count : max;
    *bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        const out_entry_t *e = &c->ring[(c->ring_head + i) & (c->ring_cap - 1)];
        iov[i] = uv_buf_init(e->p->data + e->off, e->end - e->off);
        *bytes += e->end - e->off;
    }
    return n;
}

static void on_write(uv_write_t *req, int status)
{
    client_t *c = req->data;
    int64_t now = -1;
    size_t bytes = 0;

    c->flags &= ~CLIENT_WRITING;
    if (status < 0) {
        pubsub__client_close(c); /* no-op when the write was cancelled by a close */
        return;
    }
    for (uint32_t i = 0; i < c->inflight; i++) {
        const out_entry_t *e = &c->ring[(c->ring_head + i) & (c->ring_cap - 1)];
        bytes += e->end - e->off;
    }
    c->inflight = 0;
    consume(c, bytes, &now);
    pubsub__client_write(c);
    pubsub__reap_slow(c->ps);
}

/* What tickd holds for c: its queued bytes or, when the oldest of them is
 * in the stream, all that the stream wrote since (every chunk from there on
 * lives while c's entry does), whichever is more. */
size_t pubsub__held_bytes(const client_t *c)
{
    size_t held = c->queued;
    if (c->ring_count == 0 || (c->flags & CLIENT_CONFLATED))
        return held;
    const out_entry_t *e = &c->ring[c->ring_head];
    if (e->p->chunk != NULL) {
        uint64_t since = fanout_position(e->p->chunk->owner) - (e->p->pos + e->off);
        if (since > held)
            held = (size_t)since;
    }
    return held;
}

int pubsub__soft_expired(client_t *c, uint64_t now)
{
    if (!(c->flags & CLIENT_SOFT)) {
        c->flags |= CLIENT_SOFT;
        c->soft_since_ms = now;
    }
    return (now - c->soft_since_ms) * 1000000 >= c->ps->opt.soft_ns;
}

/* The hard limit, on what tickd still holds for c after offering it to the
 * socket: over it, c is marked for disconnection. With slow_consumer:
 * conflate, holding more than the soft limit starts the soft limit's clock
 * too (pubsub__soft_expired()), and a client over it for soft_ns enters
 * conflation here, at once, rather than at the next housekeeping pass: a
 * burst would otherwise meet the hard limit first. */
void pubsub__over_hard_limit(client_t *c)
{
    const settings_t *o = &c->ps->opt;
    size_t held = pubsub__held_bytes(c);
    if (HEAP_UNLIKELY(o->slow_conflate) && o->soft_limit != 0 && held > o->soft_limit &&
        !(c->flags & CLIENT_CONFLATED) && pubsub__soft_expired(c, uv_now(c->ps->loop))) {
        pubsub__conflate_client_enter(c);
        held = pubsub__held_bytes(c);
    }
    if (o->hard_limit != 0 && held > o->hard_limit)
        pubsub__doom(c);
}

/* Writes as much of c's output as the socket takes now; the rest goes to a
 * uv_write() and counts against the hard limit. Closes c once a closing
 * client's output is out. */
void pubsub__client_write(client_t *c)
{
    uv_buf_t iov[TRY_WRITE_BUFS];
    int64_t now = -1;
    size_t total;

    if (c->flags & CLIENT_CLOSED)
        return;
    if (c->nheld != 0)
        return; /* a PUBLISH reply waits for the journal: so does what follows it */
    if (c->flags & CLIENT_WRITING) {
        pubsub__over_hard_limit(c);
        return;
    }
    while (c->ring_count > 0 ||
           (HEAP_UNLIKELY(c->flags & CLIENT_CONFLATED) && pubsub__conflate_client_drained(c))) {
        unsigned n = fill_iov(c, iov, TRY_WRITE_BUFS, &total);
        int r = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
        if (r == UV_EAGAIN) {
            r = 0;
        } else if (r < 0) {
            pubsub__client_close(c);
            return;
        }
        consume(c, (size_t)r, &now);
        if ((size_t)r < total) {
            n = fill_iov(c, iov, WRITE_BUFS, &total);
            c->wreq.data = c;
            if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, iov, n, on_write) != 0) {
                pubsub__client_close(c);
                return;
            }
            c->inflight = n;
            c->flags |= CLIENT_WRITING;
            pubsub__over_hard_limit(c);
            return;
        }
    }
    if (c->flags & CLIENT_CLOSING)
        pubsub__client_close(c);
}

/* ---- replies ---- */

/* Queues the replies gathered in the scratch as one payload. */
void pubsub__reply_seal(pubsub_t *ps)
{
    client_t *c = ps->reply_client;
    size_t n = ps->reply_len;

    ps->reply_client = NULL;
    ps->reply_len = 0;
    if (c == NULL || n == 0)
        return;
    payload_t *p = payload_alloc(ps->heap, n);
    if (p == NULL) {
        pubsub__doom(c); /* a reply lost would desynchronise the client */
        return;
    }
    memcpy(p->data, ps->reply, n);
    p->len = (uint32_t)n;
    pubsub__enqueue(c, p, 0, p->len);
    payload_release(ps->heap, &ps->latency, p);
}

void pubsub__reply_raw(client_t *c, const char *s, size_t n)
{
    pubsub_t *ps = c->ps;

    if (ps->reply_client != c) {
        pubsub__reply_seal(ps);
        ps->reply_client = c;
    }
    if (ps->reply_len + n > REPLY_SCRATCH) {
        pubsub__reply_seal(ps);
        if (n > REPLY_SCRATCH) {
            payload_t *p = payload_alloc(ps->heap, n);
            if (p == NULL) {
                pubsub__doom(c);
                return;
            }
            memcpy(p->data, s, n);
            p->len = (uint32_t)n;
            pubsub__enqueue(c, p, 0, p->len);
            payload_release(ps->heap, &ps->latency, p);
            return;
        }
        ps->reply_client = c;
    }
    memcpy(ps->reply + ps->reply_len, s, n);
    ps->reply_len += n;
}

void pubsub__reply_str(client_t *c, const char *s)
{
    pubsub__reply_raw(c, s, strlen(s));
}

/* "<prefix><n>\r\n": ":5", "$3", "*2" into buf (NUMBER_MAX bytes); returns
 * its length. Digits by hand: every PUBLISH replies with one. */
size_t pubsub__format_number(char *buf, char prefix, long long n)
{
    char *w = buf;
    *w++ = prefix;
    if (n < 0)
        *w++ = '-';
    w = digits_u64(w, n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n);
    *w++ = '\r';
    *w++ = '\n';
    return (size_t)(w - buf);
}

void pubsub__reply_number(client_t *c, char prefix, long long n)
{
    char buf[NUMBER_MAX];
    pubsub__reply_raw(c, buf, pubsub__format_number(buf, prefix, n));
}

void pubsub__reply_bulk(client_t *c, const char *s, size_t n)
{
    pubsub__reply_number(c, '$', (long long)n);
    pubsub__reply_raw(c, s, n);
    pubsub__reply_raw(c, "\r\n", 2);
}

/* "-<text>\r\n", with any CR or LF in the text turned into spaces as Redis
 * does, so that an echoed argument cannot break the framing. */
void pubsub__reply_error(client_t *c, const char *fmt, ...)
{
    char buf[ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + 1, sizeof buf - 3, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof buf - 3 ? (size_t)n : sizeof buf - 4;
    buf[0] = '-';
    for (size_t i = 1; i <= len; i++)
        if (buf[i] == '\r' || buf[i] == '\n')
            buf[i] = ' ';
    buf[len + 1] = '\r';
    buf[len + 2] = '\n';
    pubsub__reply_raw(c, buf, len + 3);
}

/* The head of a reply to (P)(UN)SUBSCRIBE: *3 $<kind>, or >3 (a push
 * frame) in RESP3. */
void pubsub__reply_subscription_head(client_t *c, const char *kind)
{
    pubsub__reply_raw(c, pubsub__client_proto(c) == PAYLOAD_RESP3 ? ">3\r\n" : "*3\r\n", 4);
    pubsub__reply_bulk(c, kind, strlen(kind));
}

/* *3 $<kind> $<name> :<count>, the reply to (P)(UN)SUBSCRIBE; name NULL
 * for the null of an UNSUBSCRIBE with nothing to drop ($-1, or _ in RESP3). */
void pubsub__reply_subscription(client_t *c, const char *kind, const char *name, size_t len)
{
    pubsub__reply_subscription_head(c, kind);
    if (name != NULL)
        pubsub__reply_bulk(c, name, len);
    else if (pubsub__client_proto(c) == PAYLOAD_RESP3)
        pubsub__reply_raw(c, "_\r\n", 3);
    else
        pubsub__reply_raw(c, "$-1\r\n", 5);
    pubsub__reply_number(c, ':', c->nsubs);
}

/*
 * pubsub_snapshot.c - the last values a new subscriber is sent
 * (pubsub.snapshot): SUBSCRIBE trade.AAPL gets the last trade of AAPL,
 * SUBSCRIBE bar.1m.AAPL its last 1m bar, PSUBSCRIBE trade.* the last tick of
 * every channel the pattern matches (ticks only: a pattern's snapshot walks
 * the market's symbols, and bars are the bar builder's).
 *
 * A snapshot's frames are blocks of their own, framed for the subscriber's
 * protocol, queued after the reply that subscribed. They are judged
 * against the hard limit while they are made: once the client holds more
 * than the limit, the socket is offered its output, and a client still over
 * the limit is cut and the rest of its request dropped. A pattern's
 * snapshot walks the market in steps: what the read that asked for it may
 * spend (SNAPSHOT_READ symbol slots), then a step a loop turn (an idle
 * handle) while the client holds less than SNAPSHOT_PAUSE, so no request
 * stalls the loop or piles up output however many patterns it names. A
 * pattern's unfinished walk is a snapshot_job_t on its client's list,
 * dropped with its subscription.
 *
 * Never blocks; the market is read, never changed.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "src/glob.h"
#include "src/pubsub_internal.h"

/* ---- snapshots ---- */

static void on_snapshots(uv_idle_t *h);

/* Has the snapshot runner look at the clients with snapshot work. */
void pubsub__snapshots_wake(pubsub_t *ps)
{
    if (!ps->stopping && !uv_is_active((uv_handle_t *)&ps->snapshots))
        uv_idle_start(&ps->snapshots, on_snapshots);
}

/* Queues the message frame of tick t on c: whole for a channel subscriber,
 * after the pattern's head for a pattern subscriber. */
static void send_tick(client_t *c, const tick_t *t, const topic_t *pattern)
{
    pubsub_t *ps = c->ps;
    char name[PAYLOAD_CHANNEL_MAX];
    size_t n = payload_channel(t, name);
    int proto = pubsub__client_proto(c);
    payload_t *p;

    if (payload_message(ps->heap, t, ps->opt.payload, proto, name, n, &p) != 0) {
        ps->stats.encode_errors_total++;
        return;
    }
    if (pattern == NULL)
        pubsub__enqueue(c, p, 0, p->len);
    else if (pubsub__enqueue(c, pattern->head[proto], 0, pattern->head[proto]->len) == 0)
        pubsub__enqueue(c, p, PAYLOAD_MESSAGE_HEAD, p->len);
    payload_release(ps->heap, &ps->latency, p);
}

/* The output limit while a snapshot is built: once c holds more than the
 * hard limit, the socket is offered what it has, and if tickd still holds
 * more than the limit for c, c is marked as a slow consumer. A snapshot
 * stops as soon as its client is marked, so what one request can make
 * tickd hold is the hard limit plus one frame, however many patterns it
 * names. Returns whether c takes no more output. */
static int snapshot_stopped(client_t *c)
{
    size_t hard = c->ps->opt.hard_limit;
    if (hard != 0 && c->queued > hard && !(c->flags & (CLIENT_SLOW | CLIENT_CLOSED))) {
        pubsub__reply_seal(c->ps);
        pubsub__client_write(c);
        if (!(c->flags & CLIENT_CLOSED) && pubsub__held_bytes(c) > hard)
            pubsub__doom(c);
    }
    return (c->flags & (CLIENT_SLOW | CLIENT_CLOSED)) != 0;
}

/* SUBSCRIBE bar.1m.AAPL: the last 1m bar of AAPL, if any, as a message
 * frame in a block of its own. */
static void snapshot_bar(client_t *c, const topic_t *t)
{
    pubsub_t *ps = c->ps;
    const bar_t *bar = pubsub__bar_of(ps, t->name, t->len);
    char text[PAYLOAD_BAR_TEXT_MAX];
    int n = bar != NULL ? payload_format_bar(bar, ps->opt.payload, text, sizeof text) : -ENOENT;
    if (n < 0)
        return;
    size_t size = payload_frame_size(PAYLOAD_MESSAGE_HEAD, t->len, (size_t)n);
    payload_t *p = payload_alloc(ps->heap, size);
    if (p == NULL) {
        ps->stats.encode_errors_total++;
        return;
    }
    p->len = (uint32_t)payload_put_frame(p->data, payload_message_head(pubsub__client_proto(c)),
                                         PAYLOAD_MESSAGE_HEAD, t->name, t->len, text, (size_t)n);
    pubsub__enqueue(c, p, 0, p->len);
    payload_release(ps->heap, &ps->latency, p);
    snapshot_stopped(c);
}

/* SUBSCRIBE trade.AAPL: the last trade of AAPL, if any. */
void pubsub__snapshot_channel(client_t *c, const topic_t *t)
{
    market_t *m = c->ps->market;
    if (t->len > 4 && memcmp(t->name, "bar.", 4) == 0) {
        snapshot_bar(c, t);
        return;
    }
    int trade = t->len > 6 && memcmp(t->name, "trade.", 6) == 0;
    int quote = t->len > 6 && memcmp(t->name, "quote.", 6) == 0;

    if (m == NULL || !(trade || quote))
        return;
    symbol_t *sym = market_find(m, t->name + 6, t->len - 6);
    if (sym == NULL)
        return;
    const tick_t *last = trade ? sym->last_trade : sym->last_quote;
    if (last != NULL) {
        send_tick(c, last, NULL);
        snapshot_stopped(c);
    }
}

struct snapshot_walk {
    client_t *client;
    topic_t *pattern;
    size_t prefix; /* the pattern's literal prefix: a channel not starting with it cannot match */
};

static int snapshot_symbol(symbol_t *sym, void *arg)
{
    struct snapshot_walk *w = arg;
    topic_t *pat = w->pattern;
    const tick_t *ticks[2] = {sym->last_trade, sym->last_quote};
    char name[PAYLOAD_CHANNEL_MAX];

    for (int i = 0; i < 2; i++) {
        if (ticks[i] == NULL)
            continue;
        size_t n = payload_channel(ticks[i], name);
        if (n < w->prefix || memcmp(name, pat->name, w->prefix) != 0 ||
            !glob_match(pat->name, pat->len, name, n))
            continue;
        if (pubsub__pattern_heads(w->client->ps, pat) != 0) {
            w->client->ps->stats.encode_errors_total++;
            return 1;
        }
        send_tick(w->client, ticks[i], pat);
        if (snapshot_stopped(w->client))
            return 1;
    }
    return 0;
}

/* Walks c's snapshot jobs, oldest first, for up to *budget symbol table
 * slots, a step at a time. Returns whether work is left. */
static int snapshots_run(client_t *c, size_t *budget)
{
    pubsub_t *ps = c->ps;
    snapshot_job_t *j;

    while ((j = c->jobs) != NULL && *budget > 0 && !(c->flags & (CLIENT_SLOW | CLIENT_CLOSED))) {
        size_t step = *budget < SNAPSHOT_STEP ? *budget : SNAPSHOT_STEP;
        topic_t *pat = j->sub->topic;
        struct snapshot_walk w = {c, pat, pubsub__literal_prefix(pat->name, pat->len)};
        *budget -= step;
        int r = ps->market == NULL ? 1
                                   : market_foreach_step(ps->market, &j->cursor, &j->generation,
                                                         step, snapshot_symbol, &w);
        if (c->flags & CLIENT_CLOSED)
            return 0; /* the close dropped every job, j with them */
        if (r != 0 || j->cursor == SIZE_MAX)
            pubsub__job_drop(c, j);
    }
    return c->jobs != NULL && !(c->flags & (CLIENT_SLOW | CLIENT_CLOSED));
}

/* PSUBSCRIBE trade.*: the last tick of every channel the pattern matches.
 * A market of many symbols is walked in steps: what the read that asked
 * for it may spend (SNAPSHOT_READ slots, over all its commands) now, and
 * the rest a step a loop turn while the client takes its output
 * (on_snapshots()), so that no request stalls the loop however many
 * patterns it names. The frames are pmessages, which a subscriber takes at
 * any point, so replies to later commands may come before them; none comes
 * after the reply that unsubscribes its pattern. */
void pubsub__snapshot_pattern(client_t *c, sub_t *s)
{
    pubsub_t *ps = c->ps;
    if (ps->market == NULL)
        return;
    snapshot_job_t *j = heap_alloc(ps->heap, sizeof(snapshot_job_t));
    if (j == NULL) {
        ps->stats.encode_errors_total++;
        return;
    }
    j->prev = c->jobs_tail;
    j->next = NULL;
    j->sub = s;
    j->cursor = 0;
    j->generation = 0;
    if (c->jobs_tail != NULL)
        c->jobs_tail->next = j;
    else
        c->jobs = j;
    c->jobs_tail = j;
    s->job = j;
    if (snapshots_run(c, &ps->snapshot_budget))
        pubsub__snapshots_wake(ps);
}

/* The snapshot runner: a step of each client's snapshot work per loop turn,
 * for the clients whose output is under SNAPSHOT_PAUSE (the others are
 * woken by their socket draining, consume()). Stops when none is left. */
static void on_snapshots(uv_idle_t *h)
{
    pubsub_t *ps = h->data;
    int more = 0;

    for (client_t *c = ps->clients; c != NULL; c = c->next) {
        if (c->jobs == NULL || c->queued > SNAPSHOT_PAUSE)
            continue;
        size_t budget = SNAPSHOT_STEP;
        more |= snapshots_run(c, &budget);
    }
    if (!more)
        uv_idle_stop(h);
    pubsub__reap_slow(ps);
    pubsub_flush(ps);
}

/*
 * nats_feed.c - tickd's ticks from NATS into a market (nats_feed.h).
 *
 * Three queues of message pointers, each a ring of NATS_FEED_WINDOW slots
 * allocated at start, and one count keep the thread and the loop apart:
 *
 *   in      the thread's fetched messages, for the loop (conn.mu)
 *   parked  the loop's applied messages waiting for the journal (the loop's)
 *   done    messages the loop is finished with, for the thread to
 *           acknowledge (or not) and destroy (conn.mu)
 *   held    messages fetched and not yet destroyed (conn.mu): the thread
 *           fetches only while held < NATS_FEED_WINDOW, so no ring overflows
 *
 * Exactly once (JetStream). An acknowledgement lost with a server that died
 * makes JetStream deliver the message again after the consumer's ack wait,
 * though its tick is in the market already. So the loop remembers which
 * stream sequence numbers it applied: all up to applied_upto, and a window
 * of DEDUP_WINDOW bits above it for those applied out of order (a
 * redelivery of one that was lost on its way, after later ones came). A
 * message it has applied already is acknowledged again and counted as a
 * duplicate, never applied twice. The window opens at the consumer's ack
 * floor, read when the thread binds to it (below).
 *
 * In stream order across a restart (JetStream). A consumer hands out each
 * message in stream order once, but one it handed out and never had
 * acknowledged comes again later: when it was nak'ed, ahead of anything
 * new but slowly (a few hundred a second); when it was lost (it reached
 * the subscription as the last run closed, or the run died), only after
 * the consumer's ack wait. By then the consumer has handed out later ones.
 * So when the thread binds to the consumer it reads the consumer's state:
 * if messages are pending (delivered before, never acknowledged), the gate
 * is closed, and the thread holds back every message it fetches, keeps
 * them from the ack wait (in progress) and drops a second delivery of one
 * it holds, until the consumer has no pending message the thread does not
 * hold (NumAckPending equals what it holds: the rest have all come). Then
 * it hands what it holds to the loop in stream order and opens the gate
 * for good. Nothing is acknowledged while the gate is closed, so the count
 * is exact, and the hold needs no room of its own: everything held is one
 * of the NATS_FEED_WINDOW messages between NATS and their acknowledgement
 * (the consumer's max_ack_pending).
 *
 * The hold is bounded. A pending message that never comes (another process
 * bound to the same consumer keeps it in progress, or the consumer's ack
 * wait is long) would hold the feed forever; so the gate also opens when
 * feeds[].hold_timeout has passed since it closed (default three times the
 * consumer's ack wait, read at the bind). The thread then hands what it
 * holds to the loop in stream order, as above, and the loop logs one line
 * (the feed, the consumer, how many it held and how many it waited for)
 * and counts it (nats_feed_hold_timeouts()). A message the server removed
 * from the stream (a purge, the stream's limits, a deleted message) needs
 * no timeout: nats-server drops it from the consumer's pending messages,
 * so NumAckPending falls and the gate opens at the next check. What the
 * gate gave up on and still comes later (the other process lets it go) is
 * applied when it comes, out of stream order: per-symbol order breaks for
 * those messages only. It is applied once: the loop's window (below) knows
 * it was never applied, as long as fewer than DEDUP_WINDOW later stream
 * sequences were applied first; one later still is taken as applied,
 * acknowledged and counted as a duplicate, not applied. The journal keeps
 * no stream sequences: it records ticks in the order the loop applied them.
 *
 * The loop never calls libnats but to read a message's bytes (memory the
 * message owns) and never frees one: every natsMsg is created and destroyed
 * on libnats's side of the queues. On stop the loop hands its parked
 * messages back unacknowledged; the thread acknowledges what it was given
 * to acknowledge, naks what it holds (in stream order) and what the loop
 * never took (JetStream delivers them again first), and closes.
 */
#include "src/nats_feed.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/clock.h"
#include "src/log.h"
#include "src/nats_conn.h"
#include "src/nats_decode.h"

#define FETCH_BATCH    256
#define FETCH_WAIT_MS  100
#define RETRY_WAIT_MS  50
#define DEDUP_WINDOW   (4 * NATS_FEED_WINDOW) /* bits: stream sequences above applied_upto */
#define ACK_WAIT_NS    (5LL * 1000000000LL)   /* JetStream delivers again after this */
#define GATE_CHECK_NS  (200LL * 1000000LL)    /* the consumer's state, read while holding */
#define GATE_KEEP_NS   (ACK_WAIT_NS / 3)      /* held messages marked in progress this often */
#define HOLD_ACK_WAITS 3                      /* hold_timeout by default: this many ack waits */

/* A fetched message and its stream sequence number (0 on core NATS). */
typedef struct in_msg {
    natsMsg *msg;
    uint64_t seq;
} in_msg_t;

/* A message the loop is finished with. */
typedef struct done_msg {
    natsMsg *msg;
    int ack; /* acknowledge it (JetStream), else just destroy it */
} done_msg_t;

/* The gate opened on hold_timeout: what the loop logs. */
typedef struct gave_up {
    int due;            /* the thread gave up and the loop has not logged it yet */
    size_t held;        /* messages it held, handed on in stream order ... */
    int64_t missing;    /* ... and pending messages it did not hold, not waited for longer;
                         * -1: unknown (the consumer's state could not be read) */
    int64_t waited_ns;  /* how long it held */
    int64_t timeout_ns; /* the limit that passed */
} gave_up_t;

/* A message applied, waiting for the journal to reach mark. */
typedef struct parked_msg {
    natsMsg *msg;
    uint64_t mark;
} parked_msg_t;

struct nats_feed {
    nats_conn_t conn; /* first: the thread and the connection */
    config_feed_t cfg;
    market_t *market;
    nats_feed_hooks_t hooks;
    int jetstream;

    /* conn.mu */
    in_msg_t *in;
    size_t in_head, in_count;
    done_msg_t *done;
    size_t done_head, done_count;
    size_t held;
    uint64_t floor;   /* the consumer's ack floor at the bind ... */
    uint64_t pending; /* ... and its pending messages then ... */
    int floor_new;    /* ... not read by the loop yet */
    gave_up_t gave_up;

    /* the loop's */
    in_msg_t *taken;        /* scratch: the messages taken from in */
    natsMsg **batch;        /* scratch: messages to hand back */
    uint64_t applied_upto;  /* JetStream: every stream sequence up to here applied */
    uint64_t *applied;      /* DEDUP_WINDOW bits: applied_upto + 1 + i applied */
    uint64_t duplicates;    /* redeliveries of ticks applied already */
    uint64_t hold_timeouts; /* times the gate opened on hold_timeout */
    parked_msg_t *parked;
    size_t parked_head, parked_count;
    ingest_stats_t stats;
    uint64_t received; /* messages seen, for input_error's where */
    int64_t last_ns;

    /* the thread's */
    natsSubscription *sub;
    jsCtx *js;
    atomic_int subscribed;
    int gate_closed;            /* holding back until the consumer's pending messages came */
    atomic_llong holding_since; /* CLOCK_REALTIME the gate closed; 0 open (the loop reads it) */
    int64_t gate_since;         /* CLOCK_MONOTONIC the gate closed */
    int64_t hold_timeout;       /* ns: the gate opens after this long, whatever is missing */
    in_msg_t *hold;             /* what it holds, hold_count of them, each stream sequence once */
    size_t hold_count;
    int64_t gate_checked; /* CLOCK_MONOTONIC: the consumer's state last read */
    int64_t gate_kept;    /* CLOCK_MONOTONIC: the held messages last marked in progress */
};

static nats_feed_t *feed_of(nats_conn_t *c)
{
    return (nats_feed_t *)c;
}

/* ---- the loop ---- */

/* Hands msgs[0..n) to the thread (conn.mu held). */
static void give_back_locked(nats_feed_t *f, natsMsg *const *msgs, size_t n, int ack)
{
    for (size_t i = 0; i < n; i++) {
        f->done[(f->done_head + f->done_count) % NATS_FEED_WINDOW] = (done_msg_t){msgs[i], ack};
        f->done_count++;
    }
}

/* Applies one message's tick; 0, or -EINVAL with why. */
static int apply(nats_feed_t *f, natsMsg *m, int64_t now, const char **why)
{
    struct csv_tick t;
    const char *data = natsMsg_GetData(m);
    int len = natsMsg_GetDataLength(m);
    if (data == NULL || len <= 0) {
        *why = "an empty payload";
        f->stats.decode_errors++;
        return -EINVAL;
    }
    if (nats_decode_tick(data, (size_t)len, &t, why) != 0) {
        f->stats.decode_errors++;
        return -EINVAL;
    }
    size_t slen = strlen(t.symbol);
    int r = t.kind == CSV_TRADE
                ? market_trade(f->market, t.symbol, slen, t.trade.price, t.trade.size, t.trade.side,
                               0, (int64_t)t.ts_ns, now)
                : market_quote(f->market, t.symbol, slen, t.quote.bid, t.quote.bid_size,
                               t.quote.ask, t.quote.ask_size, 0, (int64_t)t.ts_ns, now);
    if (r != 0) {
        *why = "refused by the market";
        f->stats.rejected++;
        return r;
    }
    f->stats.messages++;
    return 0;
}

/* Whether stream sequence seq comes for the first time; notes it applied. */
static int first_time(nats_feed_t *f, uint64_t seq)
{
    if (seq == 0) /* no metadata: nothing to tell it by */
        return 1;
    if (seq <= f->applied_upto)
        return 0;
    if (seq - f->applied_upto > DEDUP_WINDOW) {
        /* Too far ahead to keep the gap: the window moves up to it, and a
         * sequence below it that still comes is taken as seen. */
        uint64_t shift = seq - f->applied_upto - DEDUP_WINDOW;
        for (uint64_t k = 0; k < shift && k < DEDUP_WINDOW; k++) {
            uint64_t bit = (f->applied_upto + 1 + k) % DEDUP_WINDOW;
            f->applied[bit / 64] &= ~(1ull << (bit % 64));
        }
        f->applied_upto += shift;
    }
    uint64_t bit = seq % DEDUP_WINDOW;
    if (f->applied[bit / 64] & (1ull << (bit % 64)))
        return 0;
    f->applied[bit / 64] |= 1ull << (bit % 64);
    for (;;) { /* move up over what is contiguous */
        uint64_t next = (f->applied_upto + 1) % DEDUP_WINDOW;
        if (!(f->applied[next / 64] & (1ull << (next % 64))))
            break;
        f->applied[next / 64] &= ~(1ull << (next % 64));
        f->applied_upto++;
    }
    return 1;
}

static void on_wake(nats_conn_t *c)
{
    nats_feed_t *f = feed_of(c);
    nats_conn_log_events(c);
    pthread_mutex_lock(&c->mu);
    size_t n = f->in_count;
    for (size_t i = 0; i < n; i++)
        f->taken[i] = f->in[(f->in_head + i) % NATS_FEED_WINDOW];
    f->in_head = (f->in_head + n) % NATS_FEED_WINDOW;
    f->in_count = 0;
    int bound = f->floor_new;
    uint64_t floor = f->floor, pending = f->pending;
    f->floor_new = 0;
    gave_up_t gave_up = f->gave_up;
    f->gave_up.due = 0;
    pthread_mutex_unlock(&c->mu);
    if (bound) {
        f->applied_upto = floor;
        memset(f->applied, 0, DEDUP_WINDOW / 8);
        if (pending > 0)
            log_msg(LOG_INFO,
                    "feed %s: %llu messages delivered before and never acknowledged come "
                    "again; later ones wait for them, to keep the stream's order",
                    f->cfg.name, (unsigned long long)pending);
    }
    if (gave_up.due) {
        char missing[64] = "messages (how many: NATS did not answer)";
        if (gave_up.missing >= 0)
            snprintf(missing, sizeof(missing), "%lld messages", (long long)gave_up.missing);
        f->hold_timeouts++;
        log_msg(LOG_WARNING,
                "feed %s: consumer %s of stream %s: stopped holding after %.1fs (hold_timeout "
                "%gs) with %s delivered before and never acknowledged still missing; the %zu "
                "held go on in stream order, and a missing one that comes later is applied "
                "then, out of order",
                f->cfg.name, f->cfg.durable, f->cfg.stream, (double)gave_up.waited_ns / 1e9,
                (double)gave_up.timeout_ns / 1e9, missing, gave_up.held);
    }

    if (n == 0)
        return;

    int64_t now = clock_realtime_ns();
    uint64_t applied_before = f->stats.messages;
    for (size_t i = 0; i < n; i++) {
        const char *why;
        f->received++;
        f->batch[i] = f->taken[i].msg;
        if (f->jetstream && !first_time(f, f->taken[i].seq)) {
            f->duplicates++;
            continue;
        }
        if (apply(f, f->taken[i].msg, now, &why) != 0)
            f->hooks.input_error(f->hooks.arg, f->received, why);
    }
    if (f->stats.messages != applied_before)
        f->last_ns = now;
    f->hooks.batch_done(f->hooks.arg);

    /* Bad and refused messages are acknowledged too: sent again they would
     * be just as bad. */
    uint64_t mark = f->jetstream ? f->hooks.durable_mark(f->hooks.arg) : 0;
    if (mark == 0) {
        pthread_mutex_lock(&c->mu);
        give_back_locked(f, f->batch, n, f->jetstream);
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        f->parked[(f->parked_head + f->parked_count) % NATS_FEED_WINDOW] =
            (parked_msg_t){f->batch[i], mark};
        f->parked_count++;
    }
}

void nats_feed_durable(nats_feed_t *f, uint64_t upto)
{
    size_t n = 0;
    while (n < f->parked_count && f->parked[(f->parked_head + n) % NATS_FEED_WINDOW].mark <= upto) {
        f->batch[n] = f->parked[(f->parked_head + n) % NATS_FEED_WINDOW].msg;
        n++;
    }
    if (n == 0)
        return;
    f->parked_head = (f->parked_head + n) % NATS_FEED_WINDOW;
    f->parked_count -= n;
    pthread_mutex_lock(&f->conn.mu);
    give_back_locked(f, f->batch, n, 1);
    pthread_cond_signal(&f->conn.cond);
    pthread_mutex_unlock(&f->conn.mu);
}

void nats_feed_set_market(nats_feed_t *f, market_t *m)
{
    f->market = m;
}

void nats_feed_stats(const nats_feed_t *f, ingest_stats_t *out, uint64_t *duplicates)
{
    *out = f->stats;
    *duplicates = f->duplicates;
}

uint64_t nats_feed_hold_timeouts(const nats_feed_t *f)
{
    return f->hold_timeouts;
}

int64_t nats_feed_holding_since(const nats_feed_t *f)
{
    return atomic_load(&f->holding_since);
}

int nats_feed_up(const nats_feed_t *f)
{
    return atomic_load(&f->subscribed);
}

int nats_feed_connected(const nats_feed_t *f)
{
    return atomic_load(&f->conn.connected) && atomic_load(&f->subscribed);
}

int64_t nats_feed_last_ns(const nats_feed_t *f)
{
    return f->last_ns;
}

const char *nats_feed_error(const nats_feed_t *f)
{
    return f->conn.loop_error[0] != '\0' ? f->conn.loop_error : NULL;
}

/* ---- the thread ---- */

/* The consumer's state as the thread binds to it: the loop's applied
 * window starts at its ack floor, and the gate closes while messages are
 * pending. */
static natsStatus read_consumer(nats_feed_t *f, jsOptions *jo)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, f->js, f->cfg.stream, f->cfg.durable, jo, &jerr);
    if (s != NATS_OK)
        return s;
    uint64_t pending = ci->NumAckPending > 0 ? (uint64_t)ci->NumAckPending : 0;
    f->hold_timeout = f->cfg.hold_timeout_ns != 0 ? f->cfg.hold_timeout_ns
                      : ci->Config != NULL && ci->Config->AckWait > 0
                          ? HOLD_ACK_WAITS * ci->Config->AckWait
                          : HOLD_ACK_WAITS * ACK_WAIT_NS;
    pthread_mutex_lock(&f->conn.mu);
    f->floor = ci->AckFloor.Stream;
    f->pending = pending;
    f->floor_new = 1;
    pthread_mutex_unlock(&f->conn.mu);
    jsConsumerInfo_Destroy(ci);
    f->gate_closed = pending > 0;
    f->gate_since = f->gate_checked = f->gate_kept = clock_monotonic_ns();
    atomic_store(&f->holding_since, f->gate_closed ? clock_realtime_ns() : 0);
    return NATS_OK;
}

static natsStatus subscribe(nats_feed_t *f)
{
    nats_conn_t *c = &f->conn;
    natsStatus s;
    char doing[600];
    if (!f->jetstream) {
        s = natsConnection_SubscribeSync(&f->sub, c->nc, f->cfg.subject);
        if (s == NATS_OK)
            s = natsSubscription_SetPendingLimits(f->sub, 4 * NATS_FEED_WINDOW, 64 << 20);
        snprintf(doing, sizeof(doing), "subscribing to %s", f->cfg.subject);
    } else {
        jsOptions jo;
        jsSubOptions so;
        jsErrCode jerr = 0;
        jsOptions_Init(&jo);
        jsSubOptions_Init(&so);
        so.Stream = f->cfg.stream;
        so.Config.Durable = f->cfg.durable;
        so.Config.AckPolicy = js_AckExplicit;
        so.Config.MaxAckPending = NATS_FEED_WINDOW;
        so.Config.AckWait = ACK_WAIT_NS;
        so.Config.DeliverPolicy = f->cfg.deliver == NATS_DELIVER_NEW ? js_DeliverNew
                                  : f->cfg.deliver == NATS_DELIVER_BY_START_TIME
                                      ? js_DeliverByStartTime
                                      : js_DeliverAll;
        so.Config.OptStartTime = f->cfg.start_time_ns;
        s = NATS_OK;
        if (f->js == NULL)
            s = natsConnection_JetStream(&f->js, c->nc, &jo);
        if (s == NATS_OK)
            s = js_PullSubscribe(&f->sub, f->js, f->cfg.subject, f->cfg.durable, &jo, &so, &jerr);
        if (s == NATS_OK)
            s = read_consumer(f, &jo);
        snprintf(doing, sizeof(doing), "consumer %s of stream %s (subject %s)", f->cfg.durable,
                 f->cfg.stream, f->cfg.subject);
    }
    if (s != NATS_OK) {
        natsSubscription_Destroy(f->sub);
        f->sub = NULL;
        nats_conn_fail(c, doing, s);
        return s;
    }
    atomic_store(&f->subscribed, 1);
    nats_conn_ok(c);
    return NATS_OK;
}

/* Acknowledges and destroys what the loop gave back. */
static void settle(nats_feed_t *f)
{
    done_msg_t todo[FETCH_BATCH];
    for (;;) {
        pthread_mutex_lock(&f->conn.mu);
        size_t n = f->done_count < FETCH_BATCH ? f->done_count : FETCH_BATCH;
        for (size_t i = 0; i < n; i++)
            todo[i] = f->done[(f->done_head + i) % NATS_FEED_WINDOW];
        f->done_head = (f->done_head + n) % NATS_FEED_WINDOW;
        f->done_count -= n;
        f->held -= n;
        pthread_mutex_unlock(&f->conn.mu);
        if (n == 0)
            return;
        for (size_t i = 0; i < n; i++) {
            if (todo[i].ack)
                natsMsg_Ack(todo[i].msg, NULL);
            natsMsg_Destroy(todo[i].msg);
        }
    }
}

/* The stream sequence number of a JetStream message; 0 when it has none. */
static uint64_t stream_seq(natsMsg *m)
{
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, m) != NATS_OK)
        return 0;
    uint64_t seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    return seq;
}

/* Up to max messages, waiting at most FETCH_WAIT_MS for the first. */
static size_t fetch(nats_feed_t *f, in_msg_t *msgs, size_t max)
{
    size_t n = 0;
    if (f->jetstream) {
        /* libnats 3.4's Fetch, started while messages of an earlier pull
         * wait in the subscription (they came after that Fetch gave up),
         * can collect more than the batch it was given, past the end of its
         * own array. So those are fetched first, in a batch of exactly
         * their number, which Fetch takes from the subscription alone. */
        int waiting = 0, bytes = 0;
        if (natsSubscription_GetPending(f->sub, &waiting, &bytes) == NATS_OK && waiting > 0 &&
            (size_t)waiting < max)
            max = (size_t)waiting;
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus s = natsSubscription_Fetch(&list, f->sub, (int)max, FETCH_WAIT_MS, &jerr);
        if (s == NATS_OK) {
            for (int i = 0; i < list.Count && n < max; i++) {
                msgs[n++] = (in_msg_t){list.Msgs[i], stream_seq(list.Msgs[i])};
                list.Msgs[i] = NULL;
            }
        } else if (s != NATS_TIMEOUT) {
            nats_conn_wait(&f->conn, RETRY_WAIT_MS); /* disconnected: libnats reconnects */
        }
        natsMsgList_Destroy(&list);
        return n;
    }
    natsMsg *m = NULL;
    if (natsSubscription_NextMsg(&m, f->sub, FETCH_WAIT_MS) != NATS_OK)
        return 0;
    msgs[n++] = (in_msg_t){m, 0};
    int pending = 0, bytes = 0;
    while (n < max && natsSubscription_GetPending(f->sub, &pending, &bytes) == NATS_OK &&
           pending > 0 && natsSubscription_NextMsg(&m, f->sub, FETCH_WAIT_MS) == NATS_OK)
        msgs[n++] = (in_msg_t){m, 0};
    return n;
}

/* Puts msgs[0..n) in the loop's queue and wakes it; fresh of them were
 * fetched just now (the others were held and counted then). */
static void hand_over(nats_feed_t *f, const in_msg_t *msgs, size_t n, size_t fresh)
{
    nats_conn_t *c = &f->conn;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++)
        f->in[(f->in_head + f->in_count + i) % NATS_FEED_WINDOW] = msgs[i];
    f->in_count += n;
    f->held += fresh;
    if (c->async_open)
        uv_async_send(&c->async);
    pthread_mutex_unlock(&c->mu);
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = ((const in_msg_t *)a)->seq, y = ((const in_msg_t *)b)->seq;
    return (x > y) - (x < y);
}

static int holding(const nats_feed_t *f, uint64_t seq)
{
    for (size_t i = 0; i < f->hold_count; i++)
        if (f->hold[i].seq == seq)
            return 1;
    return 0;
}

/* The gate is closed: got[0..n) is held back (a second delivery of one
 * held is destroyed); the held messages are kept from the ack wait; and
 * once the consumer has no pending message but those held, or once
 * hold_timeout has passed, they go to the loop in stream order and the
 * gate opens. */
static void gate_hold(nats_feed_t *f, const in_msg_t *got, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (holding(f, got[i].seq)) {
            natsMsg_Destroy(got[i].msg);
            continue;
        }
        f->hold[f->hold_count++] = got[i];
        kept++;
    }
    pthread_mutex_lock(&f->conn.mu);
    f->held += kept;
    pthread_mutex_unlock(&f->conn.mu);

    int64_t now = clock_monotonic_ns();
    if (now - f->gate_kept >= GATE_KEEP_NS) {
        for (size_t i = 0; i < f->hold_count; i++)
            natsMsg_InProgress(f->hold[i].msg, NULL);
        f->gate_kept = now;
    }
    if (now - f->gate_checked < GATE_CHECK_NS)
        return;
    f->gate_checked = now;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    int64_t pending = -1; /* unknown: disconnected */
    if (js_GetConsumerInfo(&ci, f->js, f->cfg.stream, f->cfg.durable, NULL, &jerr) == NATS_OK) {
        pending = ci->NumAckPending;
        jsConsumerInfo_Destroy(ci);
    }
    int complete = pending >= 0 && pending <= (int64_t)f->hold_count;
    if (!complete && now - f->gate_since < f->hold_timeout)
        return; /* again next time */
    qsort(f->hold, f->hold_count, sizeof(*f->hold), by_seq);
    pthread_mutex_lock(&f->conn.mu);
    if (!complete)
        f->gave_up = (gave_up_t){
            .due = 1,
            .held = f->hold_count,
            .missing = pending < 0 ? -1 : pending - (int64_t)f->hold_count,
            .waited_ns = now - f->gate_since,
            .timeout_ns = f->hold_timeout,
        };
    pthread_mutex_unlock(&f->conn.mu);
    hand_over(f, f->hold, f->hold_count, 0);
    f->hold_count = 0;
    f->gate_closed = 0;
    atomic_store(&f->holding_since, 0);
}

static void feed_run(nats_conn_t *c)
{
    nats_feed_t *f = feed_of(c);
    in_msg_t got[FETCH_BATCH];
    while (!nats_conn_stopping(c)) {
        settle(f);
        if (f->sub == NULL) {
            if (!atomic_load(&c->connected))
                nats_conn_wait(c, RETRY_WAIT_MS);
            else if (subscribe(f) != NATS_OK)
                nats_conn_wait(c, (int)(c->cfg.reconnect_wait_ns / 1000000));
            continue;
        }
        pthread_mutex_lock(&c->mu);
        size_t room = NATS_FEED_WINDOW - f->held;
        pthread_mutex_unlock(&c->mu);
        size_t n = room == 0 ? 0 : fetch(f, got, room < FETCH_BATCH ? room : FETCH_BATCH);
        if (f->gate_closed)
            gate_hold(f, got, n);
        else if (n > 0)
            hand_over(f, got, n, n);
        if (room == 0)
            nats_conn_wait(c, RETRY_WAIT_MS);
    }
    /* The loop is gone: what it gave back is settled; what the thread holds
     * and what the loop never took are refused, in stream order (a
     * JetStream nak: delivered again first, rather than after the
     * consumer's ack wait). */
    settle(f);
    qsort(f->hold, f->hold_count, sizeof(*f->hold), by_seq);
    for (size_t i = 0; i < f->hold_count; i++) {
        natsMsg_Nak(f->hold[i].msg, NULL);
        natsMsg_Destroy(f->hold[i].msg);
    }
    f->hold_count = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < f->in_count; i++) {
        natsMsg *m = f->in[(f->in_head + i) % NATS_FEED_WINDOW].msg;
        if (f->jetstream)
            natsMsg_Nak(m, NULL);
        natsMsg_Destroy(m);
    }
    f->in_count = 0;
    pthread_mutex_unlock(&c->mu);
    natsSubscription_Destroy(f->sub);
    f->sub = NULL;
}

static void feed_release(nats_conn_t *c)
{
    nats_feed_t *f = feed_of(c);
    if (f->js != NULL)
        jsCtx_Destroy(f->js);
    free(f->in);
    free(f->done);
    free(f->taken);
    free(f->applied);
    free(f->batch);
    free(f->parked);
    free(f->hold);
    free(f);
}

/* ---- start and stop ---- */

int nats_feed_start(uv_loop_t *loop, market_t *market, const config_feed_t *fc,
                    const config_nats_t *nc, const nats_feed_hooks_t *hooks, nats_feed_t **out,
                    char *err, size_t errlen)
{
    nats_feed_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->cfg = *fc;
    f->market = market;
    f->hooks = *hooks;
    f->jetstream = fc->stream[0] != '\0';
    f->in = calloc(NATS_FEED_WINDOW, sizeof(*f->in));
    f->done = calloc(NATS_FEED_WINDOW, sizeof(*f->done));
    f->batch = calloc(NATS_FEED_WINDOW, sizeof(*f->batch));
    f->taken = calloc(NATS_FEED_WINDOW, sizeof(*f->taken));
    f->applied = calloc(DEDUP_WINDOW / 64, sizeof(uint64_t));
    f->parked = calloc(NATS_FEED_WINDOW, sizeof(*f->parked));
    f->hold = calloc(NATS_FEED_WINDOW, sizeof(*f->hold));
    snprintf(f->conn.what, sizeof(f->conn.what), "feed %s", fc->name);
    f->conn.run = feed_run;
    f->conn.on_wake = on_wake;
    f->conn.release = feed_release;
    if (f->in == NULL || f->done == NULL || f->batch == NULL || f->parked == NULL ||
        f->taken == NULL || f->applied == NULL || f->hold == NULL) {
        feed_release(&f->conn);
        snprintf(err, errlen, "feed %s: out of memory", fc->name);
        return -ENOMEM;
    }
    int r = nats_conn_start(loop, &f->conn, nc, err, errlen);
    if (r != 0) {
        if (f->conn.refs == 0)
            feed_release(&f->conn);
        return r;
    }
    *out = f;
    return 0;
}

void nats_feed_stop(nats_feed_t *f)
{
    size_t n = 0;
    while (f->parked_count > 0) {
        f->batch[n++] = f->parked[f->parked_head].msg;
        f->parked_head = (f->parked_head + 1) % NATS_FEED_WINDOW;
        f->parked_count--;
    }
    pthread_mutex_lock(&f->conn.mu);
    give_back_locked(f, f->batch, n, 0);
    pthread_mutex_unlock(&f->conn.mu);
    nats_conn_stop(&f->conn);
}

/*
 * nats_sink.c - every tick, published once to NATS (nats_sink.h).
 *
 * The ring. nslots fixed-size slots (a power of two, as many as fit in
 * nats.max_pending), one producer (the loop) and one consumer (the sink's
 * thread). head and tail count slots from the start, never wrap: the loop
 * writes slot head & mask and then publishes head (release); the thread
 * reads slot tail & mask once it has seen head (acquire), and gives the slot
 * back by publishing tail (release) only once NATS took the tick, so a tick
 * that meets a lost connection stays in the ring and goes out, with the
 * same message id, once the connection is back. head - tail == nslots is a
 * full ring: the tick is dropped and counted, on the loop.
 *
 * Waking the thread. The thread, finding the ring empty, sets sleeping and
 * looks at head again under the connection's mutex before it waits on the
 * condition (at most 100 ms). The loop, after publishing head, signals the
 * condition only when it finds sleeping set (and clears it): a mutex and a
 * futex wake at most once per wait of the thread, not per tick. Both use
 * sequentially consistent atomics on head and sleeping, so one of them
 * always sees the other: no wake is lost.
 *
 * JetStream. With nats.jetstream.stream the thread, once connected, looks up
 * the stream and creates it if it is not there (subjects <prefix>.>,
 * max_age, max_bytes, replicas, storage, a two-minute duplicate window for
 * the message ids), then publishes with js_PublishMsgAsync, at most
 * JS_WINDOW unacknowledged: libnats makes the thread wait beyond that, never
 * the loop. A slot is given back (tail) only once the stream acknowledged
 * it, in order; sent is the next slot to publish. libnats's acknowledgement
 * handler marks the slot acknowledged (acked[], by the position in its
 * Nats-Msg-Id) and observes the latency from the send. A publish that timed
 * out or found no stream leader (an election after a node died), and every
 * unacknowledged one after a reconnection, is sent again from the oldest:
 * the thread moves sent back to it (resend_from) and publishes from there
 * in order, with the same ids, waiting 100 ms before the first resend and
 * twice as long before each next one without progress (at most 2 s).
 * JetStream keeps each id once, so a tick lands in the stream once and in
 * the order of its symbol however often it was sent. A publish the stream
 * refuses for good (a JetStream error) is counted as a failure and skipped.
 * The handler never publishes: it runs on libnats's thread, which alone
 * frees the window.
 */
#include "src/nats_sink.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "src/histogram.h"
#include "src/log.h"
#include "src/nats_conn.h"
#include "src/payload.h"

#define JS_WINDOW      1024         /* JetStream publishes in flight, unacknowledged */
#define JS_ACK_WAIT_MS 5000         /* a publish not acknowledged by then has failed */
#define RESEND_MIN_MS  100          /* the wait before resending, doubling ... */
#define RESEND_MAX_MS  2000         /* ... up to this */
#define ACK_FAILED     (1ull << 63) /* acked[]: the stream refused it for good */
#define STOP_DRAIN_MS  2000         /* at stop, the thread publishes what it holds for this long */
#define IDLE_WAIT_MS   100
#define RETRY_WAIT_MS  50
#define DROP_LOG_EVERY 1000 /* ms between two log lines about drops */

/* One tick waiting to be published. */
typedef struct sink_slot {
    uint64_t seq;   /* the tick's sequence number (Tickd-Seq) */
    uint16_t len;   /* bytes of text */
    uint8_t kind;   /* enum tick_kind */
    uint8_t symlen; /* bytes of sym */
    char sym[SYMBOL_MAX_LEN];
    char text[PAYLOAD_TEXT_MAX]; /* the payload, json or csv */
} sink_slot_t;

struct nats_sink {
    nats_conn_t conn; /* first: the thread and the connection */
    uv_loop_t *loop;
    sink_slot_t *slots;
    uint64_t nslots, mask;
    /* Each index on a cache line of its own, with what only its writer
     * reads beside it: the loop and the thread never write the same line. */
    _Alignas(64) atomic_ullong head; /* slots written by the loop */
    uint64_t tail_seen;              /* the loop's last look at tail */
    _Alignas(64) atomic_ullong tail; /* slots published (JetStream: acknowledged) */
    _Alignas(64) atomic_int sleeping;
    _Alignas(64) int payload; /* enum payload_format */
    char instance[17];        /* hex, random at start: the Nats-Msg-Id prefix */

    /* the loop's */
    uint64_t dropped_total;
    uint64_t drops_unlogged;
    uint64_t drop_logged_ms;

    /* the thread's, read by the loop */
    atomic_ullong published_total;
    atomic_ullong js_acks_total, js_ack_failures_total;

    /* JetStream (the thread's; the ack handler's under conn.mu) */
    jsCtx *js;
    int64_t *sent_ns;          /* nslots send times, by slot, for the ack latency */
    atomic_ullong *acked;      /* nslots: position + 1 once acknowledged (| ACK_FAILED) */
    atomic_ullong resend_from; /* the oldest position to send again; UINT64_MAX none */
    uint64_t sent;             /* the next position to publish */
    uint64_t sent_max;         /* positions below this were sent at least once */
    int64_t resend_at;         /* mono_ns(): resend not before this */
    int64_t resend_wait_ms;    /* the next wait before a resend */
    uint64_t reconnects_seen;  /* conn.reconnects at the last look */
    histogram_t js_ack;        /* conn.mu */
    int js_ready;              /* the stream is bound */
};

static nats_sink_t *sink_of(nats_conn_t *c)
{
    return (nats_sink_t *)c;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the loop ---- */

static void log_drops(nats_sink_t *s)
{
    uint64_t now = uv_now(s->loop);
    if (now - s->drop_logged_ms < DROP_LOG_EVERY && s->drop_logged_ms != 0)
        return;
    log_msg(LOG_WARNING,
            "nats sink: %llu ticks dropped for NATS (nats.max_pending is full: NATS is away or "
            "slower than the ticks; local subscribers are not affected; "
            "tickd_nats_dropped_total counts them)",
            (unsigned long long)s->drops_unlogged);
    s->drops_unlogged = 0;
    s->drop_logged_ms = now;
}

size_t nats_sink_tick(nats_sink_t *s, const tick_t *t, const char **text)
{
    uint64_t h = atomic_load_explicit(&s->head, memory_order_relaxed);
    if (HEAP_UNLIKELY(h - s->tail_seen >= s->nslots) &&
        h - (s->tail_seen = atomic_load_explicit(&s->tail, memory_order_acquire)) >= s->nslots) {
        s->dropped_total++;
        s->drops_unlogged++;
        log_drops(s);
        return 0;
    }
    sink_slot_t *slot = &s->slots[h & s->mask];
    int n = payload_format_tick(t, s->payload, slot->text, sizeof(slot->text));
    if (HEAP_UNLIKELY(n < 0)) {
        s->dropped_total++; /* a tick the CSV format cannot express */
        return 0;
    }
    slot->len = (uint16_t)n;
    slot->seq = t->seq;
    slot->kind = t->kind;
    slot->symlen = t->sym->len;
    memcpy(slot->sym, t->sym->name, SYMBOL_MAX_LEN);
    atomic_store(&s->head, h + 1);
    if (HEAP_UNLIKELY(atomic_load_explicit(&s->sleeping, memory_order_seq_cst)) &&
        atomic_exchange(&s->sleeping, 0))
        nats_conn_signal(&s->conn);
    /* The thread only reads a slot; only the loop writes one, and not
     * before its next call: the text stays as it is until then. */
    *text = slot->text;
    return (size_t)n;
}

static void on_wake(nats_conn_t *c)
{
    nats_conn_log_events(c);
}

void nats_sink_get_stats(nats_sink_t *s, nats_sink_stats_t *out)
{
    uint64_t h = atomic_load(&s->head), t = atomic_load(&s->tail);
    *out = (nats_sink_stats_t){
        .published_total = atomic_load(&s->published_total),
        .dropped_total = s->dropped_total,
        .pending_bytes = (h - t) * sizeof(sink_slot_t),
        .reconnects_total = atomic_load(&s->conn.reconnects),
        .connected = atomic_load(&s->conn.connected),
        .js_acks_total = atomic_load(&s->js_acks_total),
        .js_ack_failures_total = atomic_load(&s->js_ack_failures_total),
    };
    pthread_mutex_lock(&s->conn.mu);
    out->js_ack = s->js_ack;
    pthread_mutex_unlock(&s->conn.mu);
}

const char *nats_sink_error(const nats_sink_t *s)
{
    return s->conn.loop_error[0] != '\0' ? s->conn.loop_error : NULL;
}

/* ---- the thread ---- */

/* The message of slot number pos: subject, headers, payload. */
static natsStatus make_msg(nats_sink_t *s, uint64_t pos, natsMsg **out)
{
    const sink_slot_t *slot = &s->slots[pos & s->mask];
    char subject[sizeof(s->conn.cfg.prefix) + 16 + SYMBOL_MAX_LEN], id[48], seq[24];
    snprintf(subject, sizeof(subject), "%s.%s.%.*s", s->conn.cfg.prefix,
             slot->kind == TICK_TRADE ? "trade" : "quote", (int)slot->symlen, slot->sym);
    snprintf(id, sizeof(id), "%s-%llu", s->instance, (unsigned long long)pos);
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)slot->seq);
    natsMsg *m = NULL;
    natsStatus st = natsMsg_Create(&m, subject, NULL, slot->text, slot->len);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, "Tickd-Seq", seq);
    if (st != NATS_OK) {
        natsMsg_Destroy(m);
        return st;
    }
    *out = m;
    return NATS_OK;
}

/* The slot a message came from, by its Nats-Msg-Id; 0 when not ours. */
static int msg_pos(nats_sink_t *s, natsMsg *m, uint64_t *pos)
{
    const char *id = NULL;
    size_t n = strlen(s->instance);
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || strncmp(id, s->instance, n) != 0 ||
        id[n] != '-')
        return 0;
    *pos = strtoull(id + n + 1, NULL, 10);
    return 1;
}

/* Lowers resend_from to pos (any thread). */
static void resend_from(nats_sink_t *s, uint64_t pos)
{
    unsigned long long cur = atomic_load(&s->resend_from);
    while (pos < cur && !atomic_compare_exchange_weak(&s->resend_from, &cur, pos))
        ;
}

/* JetStream's answer to a publish (libnats's thread). */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    nats_sink_t *s = closure;
    uint64_t pos;
    (void)js;
    if (!msg_pos(s, msg, &pos)) {
        natsMsg_Destroy(msg);
        return;
    }
    if (pa != NULL) {
        atomic_store(&s->acked[pos & s->mask], pos + 1);
        if (!pa->Duplicate) {
            double secs = (double)(mono_ns() - s->sent_ns[pos & s->mask]) / 1e9;
            pthread_mutex_lock(&s->conn.mu);
            histogram_observe(&s->js_ack, secs);
            pthread_mutex_unlock(&s->conn.mu);
        }
    } else if (pae != NULL) {
        int transient = pae->Err == NATS_TIMEOUT || pae->Err == NATS_NO_RESPONDERS ||
                        pae->Err == NATS_CONNECTION_CLOSED ||
                        pae->Err == NATS_CONNECTION_DISCONNECTED || pae->ErrCode == 0;
        if (transient) {
            resend_from(s, pos);
        } else {
            char why[200];
            snprintf(why, sizeof(why), "the JetStream stream refused a tick: %s%s%s",
                     natsStatus_GetText(pae->Err), pae->ErrText != NULL ? ": " : "",
                     pae->ErrText != NULL ? pae->ErrText : "");
            nats_conn_fail_text(&s->conn, why);
            atomic_store(&s->acked[pos & s->mask], (pos + 1) | ACK_FAILED);
        }
    }
    natsMsg_Destroy(msg);
    nats_conn_signal(&s->conn);
}

/* Binds to the stream, creating it when it is not there. NATS_OK, or the
 * status with the error noted. */
static natsStatus bind_stream(nats_sink_t *s)
{
    const config_nats_t *n = &s->conn.cfg;
    jsOptions jo;
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = JS_WINDOW;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = s;
    natsStatus st = NATS_OK;
    if (s->js == NULL)
        st = natsConnection_JetStream(&s->js, s->conn.nc, &jo);
    if (st == NATS_OK)
        st = js_GetStreamInfo(&si, s->js, n->jetstream.stream, NULL, &jerr);
    if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        char subject[sizeof(n->prefix) + 4];
        const char *subjects[1] = {subject};
        snprintf(subject, sizeof(subject), "%s.>", n->prefix);
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        sc.Name = n->jetstream.stream;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.MaxAge = (int64_t)n->jetstream.max_age_ns;
        sc.MaxBytes = n->jetstream.max_bytes > 0 ? (int64_t)n->jetstream.max_bytes : -1;
        sc.Replicas = n->jetstream.replicas;
        sc.Storage =
            n->jetstream.storage == NATS_STORAGE_MEMORY ? js_MemoryStorage : js_FileStorage;
        sc.Duplicates = 120LL * 1000000000LL;
        jerr = 0;
        st = js_AddStream(&si, s->js, &sc, NULL, &jerr);
        if (st == NATS_OK)
            log_msg(LOG_DEBUG, "nats sink: created stream %s", n->jetstream.stream);
    }
    if (st != NATS_OK) {
        char doing[160];
        snprintf(doing, sizeof(doing), "JetStream stream %s (nats.jetstream)", n->jetstream.stream);
        nats_conn_fail(&s->conn, doing, st);
        return st;
    }
    jsStreamInfo_Destroy(si);
    s->js_ready = 1;
    return NATS_OK;
}

/* Gives back the slots acknowledged from tail on, counting them. */
static void release_acked(nats_sink_t *s)
{
    uint64_t t = atomic_load_explicit(&s->tail, memory_order_relaxed), from = t;
    while (t < s->sent) {
        uint64_t a = atomic_load(&s->acked[t & s->mask]);
        if ((a & ~ACK_FAILED) != t + 1)
            break;
        atomic_fetch_add(a & ACK_FAILED ? &s->js_ack_failures_total : &s->js_acks_total, 1);
        t++;
    }
    if (t != from) {
        atomic_store_explicit(&s->tail, t, memory_order_release);
        s->resend_wait_ms = RESEND_MIN_MS; /* progress */
    }
}

/* A resend asked for (a failure, a reconnection): sent moves back to it,
 * not before the wait. */
static void take_resend(nats_sink_t *s)
{
    uint64_t from = atomic_exchange(&s->resend_from, UINT64_MAX);
    uint64_t t = atomic_load_explicit(&s->tail, memory_order_relaxed);
    if (from == UINT64_MAX || from >= s->sent)
        return;
    s->sent = from > t ? from : t;
    s->resend_at = mono_ns() + s->resend_wait_ms * 1000000;
    s->resend_wait_ms =
        s->resend_wait_ms * 2 < RESEND_MAX_MS ? s->resend_wait_ms * 2 : RESEND_MAX_MS;
}

/* Waits for a tick, a stop, or IDLE_WAIT_MS. */
static void wait_for_ticks(nats_sink_t *s, uint64_t t)
{
    atomic_store(&s->sleeping, 1);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += IDLE_WAIT_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->conn.mu);
    if (atomic_load(&s->head) == t && !s->conn.stop)
        pthread_cond_timedwait(&s->conn.cond, &s->conn.mu, &until);
    pthread_mutex_unlock(&s->conn.mu);
    atomic_store(&s->sleeping, 0);
}

/* Core NATS: publishes slot tail and gives it back once NATS took it. */
static void publish_core(nats_sink_t *s, uint64_t t)
{
    natsMsg *m = NULL;
    natsStatus st = make_msg(s, t, &m);
    if (st == NATS_OK)
        st = natsConnection_PublishMsg(s->conn.nc, m);
    natsMsg_Destroy(m);
    if (st == NATS_OK) {
        atomic_fetch_add(&s->published_total, 1);
        atomic_store_explicit(&s->tail, t + 1, memory_order_release);
    } else if (st == NATS_CONNECTION_CLOSED || st == NATS_CONNECTION_DISCONNECTED ||
               st == NATS_NOT_YET_CONNECTED || st == NATS_INSUFFICIENT_BUFFER ||
               st == NATS_TIMEOUT) {
        nats_conn_wait(&s->conn, RETRY_WAIT_MS); /* kept: it goes out once NATS is back */
    } else {
        nats_conn_fail(&s->conn, "publishing", st);
        atomic_store_explicit(&s->tail, t + 1, memory_order_release); /* dropped */
    }
}

/* JetStream: publishes slot sent, within the window. 0, or -1 when NATS did
 * not take it (the caller waits). */
static int publish_js(nats_sink_t *s)
{
    if (atomic_load(&s->acked[s->sent & s->mask]) == s->sent + 1) {
        s->sent++; /* resending from an older one: this one is in already */
        return 0;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = JS_ACK_WAIT_MS;
    natsMsg *m = NULL;
    natsStatus st = make_msg(s, s->sent, &m);
    if (st == NATS_OK) {
        s->sent_ns[s->sent & s->mask] = mono_ns();
        st = js_PublishMsgAsync(s->js, &m, &po); /* takes m when it succeeds */
    }
    natsMsg_Destroy(m);
    if (st != NATS_OK)
        return -1;
    if (s->sent >= s->sent_max) { /* its first send */
        atomic_fetch_add(&s->published_total, 1);
        s->sent_max = s->sent + 1;
    }
    s->sent++;
    return 0;
}

static void sink_run(nats_conn_t *c)
{
    nats_sink_t *s = sink_of(c);
    int js = c->cfg.jetstream.stream[0] != '\0';
    int64_t deadline = 0;
    s->resend_wait_ms = RESEND_MIN_MS;
    for (;;) {
        if (deadline == 0 && nats_conn_stopping(c))
            deadline = mono_ns() + STOP_DRAIN_MS * 1000000LL;
        if (deadline != 0 && mono_ns() > deadline)
            break;
        int connected = atomic_load(&c->connected);
        uint64_t reconnects = atomic_load(&c->reconnects);
        if (js && reconnects != s->reconnects_seen)
            resend_from(s, atomic_load(&s->tail)); /* back: what was in flight may be lost */
        s->reconnects_seen = reconnects;
        if (js && !s->js_ready && deadline == 0 && connected && bind_stream(s) != NATS_OK) {
            nats_conn_wait(c, (int)(c->cfg.reconnect_wait_ns / 1000000));
            continue;
        }
        if (js && s->js_ready) {
            release_acked(s);
            take_resend(s);
        }
        uint64_t t = atomic_load_explicit(&s->tail, memory_order_relaxed);
        uint64_t next = js ? s->sent : t;
        if (atomic_load(&s->head) == next && next == t) {
            if (deadline != 0)
                break;
            wait_for_ticks(s, t);
            continue;
        }
        if (!connected || (js && !s->js_ready)) {
            if (deadline != 0)
                break;
            nats_conn_wait(c, RETRY_WAIT_MS);
            continue;
        }
        if (!js) {
            publish_core(s, t);
            continue;
        }
        if (atomic_load(&s->head) == next || next - t >= JS_WINDOW || mono_ns() < s->resend_at ||
            publish_js(s) != 0)
            nats_conn_wait(c, 10); /* for acknowledgements, the window, a resend's time */
    }
    if (s->js != NULL) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = STOP_DRAIN_MS;
        js_PublishAsyncComplete(s->js, &po);
    }
}

static void sink_release(nats_conn_t *c)
{
    nats_sink_t *s = sink_of(c);
    free(s->acked);
    if (s->js != NULL)
        jsCtx_Destroy(s->js);
    free(s->slots);
    free(s->sent_ns);
    free(s);
}

/* ---- start and stop ---- */

int nats_sink_start(uv_loop_t *loop, const config_nats_t *cfg, nats_sink_t **out, char *err,
                    size_t errlen)
{
    size_t size = (sizeof(nats_sink_t) + 63) / 64 * 64;
    nats_sink_t *s = aligned_alloc(64, size); /* its indexes sit on lines of their own */
    if (s == NULL)
        return -ENOMEM;
    memset(s, 0, size);
    s->nslots = 1;
    while (s->nslots * 2 * sizeof(sink_slot_t) <= cfg->max_pending)
        s->nslots *= 2;
    s->mask = s->nslots - 1;
    s->slots = malloc(s->nslots * sizeof(sink_slot_t));
    if (s->slots != NULL) /* touched now, not page by page on the loop's hot path */
        memset(s->slots, 0, s->nslots * sizeof(sink_slot_t));
    s->sent_ns = calloc(s->nslots, sizeof(int64_t));
    s->acked = calloc(s->nslots, sizeof(atomic_ullong));
    if (s->slots == NULL || s->sent_ns == NULL || s->acked == NULL) {
        free(s->slots);
        free(s->sent_ns);
        free(s->acked);
        free(s);
        snprintf(err, errlen, "nats sink: no memory for nats.max_pending");
        return -ENOMEM;
    }
    uint64_t id;
    if (getrandom(&id, sizeof(id), 0) != sizeof(id))
        id = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32);
    snprintf(s->instance, sizeof(s->instance), "%016llx", (unsigned long long)id);
    s->loop = loop;
    s->payload = cfg->payload;
    atomic_init(&s->resend_from, UINT64_MAX);
    histogram_init(&s->js_ack, histogram_latency_bounds, histogram_latency_nbounds);
    snprintf(s->conn.what, sizeof(s->conn.what), "nats sink");
    s->conn.run = sink_run;
    s->conn.on_wake = on_wake;
    s->conn.release = sink_release;
    int r = nats_conn_start(loop, &s->conn, cfg, err, errlen);
    if (r != 0) {
        if (s->conn.refs == 0)
            sink_release(&s->conn);
        return r;
    }
    *out = s;
    return 0;
}

void nats_sink_stop(nats_sink_t *s)
{
    nats_conn_stop(&s->conn);
}

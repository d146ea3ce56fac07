/*
 * pubsub_conflate.c - conflated channels and patterns: at most one message
 * per symbol per interval, carrying the latest.
 *
 * A client asks for it by name, so stock Redis clients need nothing new:
 * SUBSCRIBE quote.AAPL@250ms, PSUBSCRIBE quote.*@1s. The name is a base (a
 * channel or pattern as usual) and a suffix @<n>ms, @<n>s, @<n>m or @<n>h
 * from 10 ms to 1 h (pubsub__conflate_suffix()); a bad suffix is an error
 * reply and no subscription. The conflated name is a topic of its own in
 * the channel or pattern table (pubsub_topics.c), so that UNSUBSCRIBE,
 * RESET, a disconnect and PUBSUB NUMSUB treat it as any other; no tick's
 * channel ever has an '@', so the ordinary fan-out never reaches it. The
 * topic points to its conflation_t, made with the topic and freed with it.
 *
 * What is sent. A quote channel sends, at the end of each interval, the
 * latest quote of the symbol if a quote came during the interval, nothing
 * otherwise: the same JSON or CSV text as the plain channel. A trade
 * channel sends one summary of the interval's trades, none when there were
 * none:
 *
 *   JSON {"sym":"AAPL","kind":"trade_summary","price":"101.2500",
 *         "size":1200,"count":7,"ts":<ns>,"seq":<n>}
 *   CSV  S,<ts_ns>,<symbol>,<price>,<size>,<count>
 *
 * price, ts and seq are the interval's last trade's, size the sum of its
 * sizes, count the number of trades. Plain trade. channels are never
 * conflated. A message on a conflated channel carries the name the client
 * subscribed to ("quote.AAPL@250ms"); a pmessage carries the pattern as
 * subscribed ("quote.*@1s") and the tick's channel with the suffix
 * ("quote.AAPL@1s"), so clients route them as they would any other.
 *
 * State. A conflation keeps one slot per (symbol, kind) it has seen: the
 * latest tick since the last flush (a reference) and, for trades, the
 * summed size and count; an open-addressed table, grown when a new symbol
 * comes (never per tick otherwise). Slots stay after a flush, empty, so the
 * next interval allocates nothing. A slot's key is the symbol's address,
 * compared only.
 *
 * Links. A conflated topic is linked to each channel topic whose ticks it
 * takes, as a pattern is to the channels it matches (match_t, on the
 * topics' cf_links; pubsub_topics.c): a conflated channel to the topic of
 * its base, made if there is none and kept while the link lasts; a
 * conflated pattern to every channel topic its base matches, found in one
 * pass at PSUBSCRIBE, and to each channel topic made later when it is made
 * (pubsub__conflate_channel_new(): while patterns exist, every tick's
 * channel gets a topic on its first tick).
 *
 * Cost. A tick finds its channel topic through its symbol's slot
 * (pubsub__channel_of()) and its conflations on that topic: a tick on a
 * channel nobody conflates pays one test of a count it reads beside the
 * topic's subscribers, no hash and no glob, whatever others conflate; a
 * tick that belongs to conflations pays a slot update (a reference
 * swapped) for each. The fan-out to subscribers happens at the
 * flush, never per tick: one timer for the whole server, armed for the
 * earliest due among the distinct intervals in use; each interval flushes
 * all its conflations when due and is due again one interval later (an
 * interval the loop fell behind on is skipped, not run twice). A flush
 * writes each frame once per protocol into the fan-out stream (fanout.h),
 * as a tick's frames are, and every subscriber of the topic references it.
 *
 * Never blocks; every table comes from the daemon's heap; the timer is
 * stopped when no interval is left and closed by pubsub_stop().
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "feed/digits.h"
#include "feed/price.h"
#include "src/glob.h"
#include "src/pubsub_internal.h"

#define SLOTS_INITIAL 4 /* slots of a new conflation; a power of two */
#define SUMMARY_KIND  "trade_summary"

/* One symbol and kind of a conflation. */
typedef struct conflate_slot {
    const symbol_t *sym; /* the key (its address, compared only); NULL for a free slot */
    uint8_t kind;        /* enum tick_kind, the rest of the key */
    tick_t *tick;        /* the latest tick since the last flush (a reference), or NULL */
    uint64_t size_sum;   /* trades: the sizes since the last flush, summed */
    uint32_t count;      /* trades: how many since the last flush */
} conflate_slot_t;

struct conflation {
    topic_t *topic;                  /* the conflated channel or pattern */
    conflate_interval_t *iv;         /* its interval */
    conflation_t *iv_prev, *iv_next; /* the interval's conflations */
    conflation_t *prev, *next;       /* patterns: the server's list (cf_patterns) */
    uint32_t base_len;               /* topic->name[0..base_len) is the base */
    conflate_slot_t *slots;          /* cap slots, a power of two */
    uint32_t cap, used;              /* used <= cap * 3 / 4 */
};

struct conflate_interval {
    conflate_interval_t *next;
    uint64_t ms;         /* the interval */
    uint64_t due;        /* loop time (uv_now) of its next flush */
    conflation_t *first; /* its conflations */
};

/* ---- names ---- */

int pubsub__conflate_suffix(const char *name, size_t len, size_t *base_len, uint64_t *interval_ms)
{
    const char *at = NULL;
    for (size_t i = len; i-- > 0;)
        if (name[i] == '@') {
            at = name + i;
            break;
        }
    *base_len = len;
    if (at == NULL)
        return 0;
    const char *p = at + 1, *end = name + len;
    uint64_t n = 0;
    size_t digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 8) {
        n = n * 10 + (uint64_t)(*p++ - '0');
        digits++;
    }
    uint64_t unit = 0;
    size_t rest = (size_t)(end - p);
    if (rest == 2 && p[0] == 'm' && p[1] == 's')
        unit = 1;
    else if (rest == 1 && p[0] == 's')
        unit = 1000;
    else if (rest == 1 && p[0] == 'm')
        unit = 60000;
    else if (rest == 1 && p[0] == 'h')
        unit = 3600000;
    if (at == name || digits == 0 || unit == 0 || n * unit < CONFLATE_MIN_MS ||
        n * unit > CONFLATE_MAX_MS)
        return -EINVAL;
    *base_len = (size_t)(at - name);
    *interval_ms = n * unit;
    return 1;
}

/* ---- the timer ---- */

static void on_timer(uv_timer_t *timer);

/* Arms the timer for the earliest due interval, or stops it. */
static void timer_arm(pubsub_t *ps)
{
    if (ps->stopping)
        return;
    if (ps->cf_intervals == NULL) {
        uv_timer_stop(&ps->cf_timer);
        return;
    }
    uint64_t now = uv_now(ps->loop), due = UINT64_MAX;
    for (const conflate_interval_t *iv = ps->cf_intervals; iv != NULL; iv = iv->next)
        if (iv->due < due)
            due = iv->due;
    uv_timer_start(&ps->cf_timer, on_timer, due > now ? due - now : 0, 0);
}

void pubsub__conflate_init(pubsub_t *ps)
{
    uv_timer_init(ps->loop, &ps->cf_timer);
    ps->cf_timer.data = ps;
    uv_unref((uv_handle_t *)&ps->cf_timer);
    ps->handles++;
}

void pubsub__conflate_close(pubsub_t *ps, uv_close_cb close_cb)
{
    uv_timer_stop(&ps->cf_timer);
    uv_close((uv_handle_t *)&ps->cf_timer, close_cb);
}

/* ---- slots ---- */

static uint32_t slot_hash(const symbol_t *sym, uint8_t kind)
{
    uint64_t h = ((uint64_t)(uintptr_t)sym >> 4) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32) ^ kind;
}

/* Rehashes cf's slots into a table of ncap; 0 or -ENOMEM. */
static int slots_resize(pubsub_t *ps, conflation_t *cf, uint32_t ncap)
{
    conflate_slot_t *n = pubsub__zalloc(ps->heap, (size_t)ncap * sizeof(conflate_slot_t));
    if (n == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < cf->cap; i++) {
        const conflate_slot_t *s = &cf->slots[i];
        if (s->sym == NULL)
            continue;
        uint32_t j = slot_hash(s->sym, s->kind) & (ncap - 1);
        while (n[j].sym != NULL)
            j = (j + 1) & (ncap - 1);
        n[j] = *s;
    }
    heap_free(ps->heap, cf->slots);
    cf->slots = n;
    cf->cap = ncap;
    return 0;
}

/* The slot of (sym, kind), made if new; NULL when memory runs out. */
static conflate_slot_t *slot_get(pubsub_t *ps, conflation_t *cf, const symbol_t *sym, uint8_t kind)
{
    uint32_t mask = cf->cap - 1;
    uint32_t j = slot_hash(sym, kind) & mask;
    for (; cf->slots[j].sym != NULL; j = (j + 1) & mask)
        if (cf->slots[j].sym == sym && cf->slots[j].kind == kind)
            return &cf->slots[j];
    if ((cf->used + 1) * 4 > cf->cap * 3) {
        if (slots_resize(ps, cf, cf->cap * 2) != 0)
            return NULL;
        return slot_get(ps, cf, sym, kind);
    }
    cf->used++;
    cf->slots[j].sym = sym;
    cf->slots[j].kind = kind;
    return &cf->slots[j];
}

static void note(pubsub_t *ps, conflation_t *cf, tick_t *tick)
{
    conflate_slot_t *s = slot_get(ps, cf, tick->sym, tick->kind);
    if (HEAP_UNLIKELY(s == NULL)) {
        ps->stats.encode_errors_total++;
        return;
    }
    if (tick->kind == TICK_TRADE) {
        s->size_sum += tick->size;
        s->count++;
    }
    obj_incref(&tick->ob);
    if (s->tick != NULL)
        obj_decref(ps->heap, &s->tick->ob);
    s->tick = tick;
}

void pubsub__conflate_tick(pubsub_t *ps, const topic_t *ch, tick_t *tick)
{
    for (uint32_t i = 0; i < ch->ncf_links; i++)
        note(ps, ch->cf_links[i]->pattern->conflate, tick);
}

int pubsub__conflate_channel_new(pubsub_t *ps, topic_t *ch)
{
    for (conflation_t *cf = ps->cf_patterns; cf != NULL; cf = cf->next)
        if (glob_match(cf->topic->name, cf->base_len, ch->name, ch->len) &&
            pubsub__cf_link(ps, cf->topic, ch) != 0)
            return -ENOMEM;
    return 0;
}

/* ---- the flush ---- */

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* The summary of slot s's trades in format, into buf (PAYLOAD_TEXT_MAX);
 * returns its length. */
static int format_summary(const conflate_slot_t *s, int format, char *buf)
{
    const tick_t *t = s->tick;
    char *p = buf;
    if (format == PAYLOAD_CSV) {
        p = put_str(p, "S,");
        p = digits_u64(p, (uint64_t)t->ts_exch);
        *p++ = ',';
        memcpy(p, t->sym->name, t->sym->len);
        p += t->sym->len;
        *p++ = ',';
        p = price_put(p, t->price);
        *p++ = ',';
        p = digits_u64(p, s->size_sum);
        *p++ = ',';
        p = digits_u64(p, s->count);
        return (int)(p - buf);
    }
    p = put_str(p, "{\"sym\":\"");
    memcpy(p, t->sym->name, t->sym->len);
    p += t->sym->len;
    p = put_str(p, "\",\"kind\":\"" SUMMARY_KIND "\",\"price\":\"");
    p = price_put(p, t->price);
    p = put_str(p, "\",\"size\":");
    p = digits_u64(p, s->size_sum);
    p = put_str(p, ",\"count\":");
    p = digits_u64(p, s->count);
    p = put_str(p, ",\"ts\":");
    if (t->ts_exch < 0) {
        *p++ = '-';
        p = digits_u64(p, 0 - (uint64_t)t->ts_exch);
    } else {
        p = digits_u64(p, (uint64_t)t->ts_exch);
    }
    p = put_str(p, ",\"seq\":");
    p = digits_u64(p, t->seq);
    *p++ = '}';
    return (int)(p - buf);
}

/* Queues bytes [off, end) of p on every subscriber of t speaking proto;
 * returns how many took them. */
static uint64_t queue_on_subs(const topic_t *t, int proto, payload_t *p, uint32_t off, uint32_t end)
{
    uint64_t sent = 0;
    for (uint32_t i = 0; i < t->nsubs; i++) {
        client_t *c = t->subs[i]->client;
        if (pubsub__client_proto(c) == proto)
            sent += pubsub__enqueue(c, p, off, end) == 0;
    }
    return sent;
}

/* One frame to t's subscribers of proto: in the fan-out stream, or in a
 * block of its own when a long pattern makes it bigger than a tick's
 * frames may be. */
static uint64_t send_frame(pubsub_t *ps, topic_t *t, int proto, const char *head, size_t hlen,
                           const char *chan, size_t chlen, const char *text, size_t tn)
{
    size_t size = payload_frame_size(hlen, chlen, tn);
    uint64_t sent;
    if (size <= FANOUT_TICK_MAX) {
        fanout_t *b = &ps->stream[proto];
        payload_t *span = fanout_reserve(b, size);
        if (span == NULL) {
            ps->stats.encode_errors_total++;
            return 0;
        }
        uint32_t at = span->len;
        payload_put_frame(span->data + at, head, hlen, chan, chlen, text, tn);
        sent = queue_on_subs(t, proto, span, at, at + (uint32_t)size);
        fanout_commit(b, size, FANOUT_UNTIMED);
        return sent;
    }
    payload_t *p = payload_alloc(ps->heap, size);
    if (p == NULL) {
        ps->stats.encode_errors_total++;
        return 0;
    }
    p->len = (uint32_t)payload_put_frame(p->data, head, hlen, chan, chlen, text, tn);
    sent = queue_on_subs(t, proto, p, 0, p->len);
    payload_release(ps->heap, &ps->latency, p);
    return sent;
}

/* Sends what changed in cf since its last flush and empties its slots. */
static uint64_t flush_one(pubsub_t *ps, conflation_t *cf)
{
    topic_t *t = cf->topic;
    const char *suffix = t->name + cf->base_len;
    size_t slen = t->len - cf->base_len;
    uint64_t sent = 0;

    if (t->is_pattern && pubsub__pattern_heads(ps, t) != 0) {
        ps->stats.encode_errors_total++;
        return 0;
    }
    for (uint32_t i = 0; i < cf->cap; i++) {
        conflate_slot_t *s = &cf->slots[i];
        if (s->tick == NULL)
            continue;
        char text[PAYLOAD_TEXT_MAX];
        int tn = s->tick->kind == TICK_TRADE
                     ? format_summary(s, ps->opt.payload, text)
                     : payload_format_tick(s->tick, ps->opt.payload, text, sizeof text);
        if (tn < 0) {
            ps->stats.encode_errors_total++;
        } else if (t->is_pattern) {
            char chan[PAYLOAD_CHANNEL_MAX + 32];
            size_t chlen = payload_channel(s->tick, chan);
            memcpy(chan + chlen, suffix, slen); /* a valid suffix is at most 11 bytes */
            chlen += slen;
            for (int v = 0; v < PAYLOAD_NPROTO; v++)
                if (pubsub__subs_in(t, v) > 0)
                    sent += send_frame(ps, t, v, t->head[v]->data, t->head[v]->len, chan, chlen,
                                       text, (size_t)tn);
        } else {
            for (int v = 0; v < PAYLOAD_NPROTO; v++)
                if (pubsub__subs_in(t, v) > 0)
                    sent += send_frame(ps, t, v, payload_message_head(v), PAYLOAD_MESSAGE_HEAD,
                                       t->name, t->len, text, (size_t)tn);
        }
        obj_decref(ps->heap, &s->tick->ob);
        s->tick = NULL;
        s->size_sum = 0;
        s->count = 0;
    }
    return sent;
}

/* The loop thread's CPU time, ns: what a flush costs the loop, whatever
 * else the machine runs meanwhile. Read twice a flush, never per tick. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_timer(uv_timer_t *timer)
{
    pubsub_t *ps = timer->data;
    uint64_t now = uv_now(ps->loop), sent = 0, t0 = cpu_ns();

    for (conflate_interval_t *iv = ps->cf_intervals; iv != NULL; iv = iv->next) {
        if (iv->due > now)
            continue;
        for (conflation_t *cf = iv->first; cf != NULL; cf = cf->iv_next)
            sent += flush_one(ps, cf);
        iv->due += iv->ms;
        if (iv->due <= now)
            iv->due = now + iv->ms;
    }
    ps->stats.messages_sent_total += sent;
    pubsub_flush(ps);
    timer_arm(ps);
    ps->stats.conflate_flush_ns += cpu_ns() - t0;
}

/* ---- a conflated topic's life ---- */

int pubsub__conflate_attach(pubsub_t *ps, topic_t *t, size_t base_len, uint64_t interval_ms)
{
    conflation_t *cf = pubsub__zalloc(ps->heap, sizeof(conflation_t));
    conflate_slot_t *slots = pubsub__zalloc(ps->heap, SLOTS_INITIAL * sizeof(conflate_slot_t));
    conflate_interval_t *iv = ps->cf_intervals;
    while (iv != NULL && iv->ms != interval_ms)
        iv = iv->next;
    int new_iv = iv == NULL;
    if (new_iv)
        iv = pubsub__zalloc(ps->heap, sizeof(conflate_interval_t));
    if (cf == NULL || slots == NULL || iv == NULL) {
        heap_free(ps->heap, cf);
        heap_free(ps->heap, slots);
        if (new_iv)
            heap_free(ps->heap, iv);
        return -ENOMEM;
    }
    if (new_iv) {
        iv->ms = interval_ms;
        iv->due = uv_now(ps->loop) + interval_ms;
        iv->next = ps->cf_intervals;
        ps->cf_intervals = iv;
    }
    cf->topic = t;
    cf->iv = iv;
    cf->iv_next = iv->first;
    if (iv->first != NULL)
        iv->first->iv_prev = cf;
    iv->first = cf;
    cf->base_len = (uint32_t)base_len;
    cf->slots = slots;
    cf->cap = SLOTS_INITIAL;
    if (t->is_pattern) {
        cf->next = ps->cf_patterns;
        if (ps->cf_patterns != NULL)
            ps->cf_patterns->prev = cf;
        ps->cf_patterns = cf;
    }
    t->conflate = cf;
    if (new_iv)
        timer_arm(ps);
    int r = t->is_pattern ? pubsub__cf_link_pattern(ps, t, base_len)
                          : pubsub__cf_link_channel(ps, t, base_len);
    if (r != 0) {
        pubsub__cf_unlink(ps, t);
        pubsub__conflate_detach(ps, t);
        return -ENOMEM;
    }
    return 0;
}

void pubsub__conflate_detach(pubsub_t *ps, topic_t *t)
{
    conflation_t *cf = t->conflate;
    conflate_interval_t *iv = cf->iv;

    for (uint32_t i = 0; i < cf->cap; i++)
        if (cf->slots[i].tick != NULL)
            obj_decref(ps->heap, &cf->slots[i].tick->ob);
    heap_free(ps->heap, cf->slots);

    if (cf->prev != NULL)
        cf->prev->next = cf->next;
    else if (t->is_pattern)
        ps->cf_patterns = cf->next;
    if (cf->next != NULL)
        cf->next->prev = cf->prev;

    if (cf->iv_prev != NULL)
        cf->iv_prev->iv_next = cf->iv_next;
    else
        iv->first = cf->iv_next;
    if (cf->iv_next != NULL)
        cf->iv_next->iv_prev = cf->iv_prev;
    if (iv->first == NULL) {
        conflate_interval_t **pp = &ps->cf_intervals;
        while (*pp != iv)
            pp = &(*pp)->next;
        *pp = iv->next;
        heap_free(ps->heap, iv);
        timer_arm(ps);
    }
    heap_free(ps->heap, cf);
    t->conflate = NULL;
}

/* ---- slow consumers: conflation instead of a cut ---- */

/* With pubsub.slow_consumer: conflate, a subscriber over the soft limit
 * for output_soft_seconds is not cut (pubsub_queue.c's
 * pubsub__over_hard_limit() after a write attempt, and housekeeping's soft
 * check, on the soft limit's one clock, call
 * pubsub__conflate_client_enter()); before that the hard limit applies to
 * it as to anyone. What it
 * has queued, beyond the write in flight, is taken out of the fan-out
 * stream: each whole frame is parsed (the frames are tickd's own, so this
 * is a walk of lengths), a quote frame (its channel starts "quote.") goes
 * to the client's slot for its key (the frame up to its text: head,
 * pattern, channel), replacing what was there, and any other frame
 * (trades, and bytes that are not a whole frame, such as a long pattern's
 * message tail) is copied, in order, into blocks of the client's own. From
 * then on every frame of the stream queued on it goes the same way (the
 * enqueue's fast path already fails on the flag, so other clients pay
 * nothing). Replies and snapshots, blocks of their own, are queued as
 * usual. The client so holds no reference into the stream beyond the
 * write in flight, and its queue grows only by its trades: the hard limit
 * judges its queued bytes alone and cuts it, as before, once trades fill it.
 * When its ring is empty (the socket took everything), the pending quotes
 * go out as one block, the latest of each channel; when it is empty again
 * with nothing pending and what the kernel holds for it is under the soft
 * limit, it has caught up and leaves conflation (asked again at each
 * housekeeping pass, for a client that has read the kernel's backlog
 * since its last write).
 * Counted in stats.conflations_total (entries) and conflated_clients. */

#define COPY_BLOCK   (16 * 1024) /* other frames are copied into blocks of this size */
#define CQ_SLOTS     8           /* slots of a client entering conflation; a power of two */
#define CQ_FRAME_MIN 256         /* a slot's buffer is at least this */

typedef struct cq_slot {
    char *buf;        /* the latest frame of its key (heap), or NULL: a free slot */
    uint32_t len;     /* bytes of the frame */
    uint32_t cap;     /* bytes of buf */
    uint32_t key_len; /* buf[0..key_len): the frame up to its text */
    uint32_t hash;    /* of the key */
    uint32_t pending; /* not queued yet */
} cq_slot_t;

struct client_conflation {
    cq_slot_t *slots; /* cap, a power of two; used <= cap * 3 / 4 */
    uint32_t cap, used, npending;
    size_t pending_bytes;
    payload_t *copy; /* the block other frames are copied into (a reference), or NULL */
    uint32_t copy_cap;
};

/* "<c><digits>\r\n" at s, before end: the number into *n; the byte after
 * it, or NULL. */
static const char *read_len(const char *s, const char *end, char c, uint64_t *n)
{
    if (s >= end || *s != c)
        return NULL;
    s++;
    uint64_t v = 0;
    int d = 0;
    while (s < end && *s >= '0' && *s <= '9' && d < 10) {
        v = v * 10 + (uint64_t)(*s++ - '0');
        d++;
    }
    if (d == 0 || end - s < 2 || s[0] != '\r' || s[1] != '\n')
        return NULL;
    *n = v;
    return s + 2;
}

/* The message or pmessage frame at s[0..len): its length, or 0 when s does
 * not start a whole one. *key_len is its length up to its last bulk (the
 * text), *quote whether its channel starts "quote.". */
static size_t frame_parse(const char *s, size_t len, size_t *key_len, int *quote)
{
    const char *p = s, *end = s + len, *chan = NULL;
    uint64_t k, chlen = 0;
    if (len == 0 || (*p != '*' && *p != '>'))
        return 0;
    p = read_len(p, end, *p, &k);
    if (p == NULL || k < 3 || k > 4)
        return 0;
    for (uint64_t i = 0; i < k; i++) {
        uint64_t n;
        const char *b = read_len(p, end, '$', &n);
        if (b == NULL || (uint64_t)(end - b) < n + 2 || b[n] != '\r' || b[n + 1] != '\n')
            return 0;
        if (i == k - 2) {
            chan = b;
            chlen = n;
        } else if (i == k - 1) {
            *key_len = (size_t)(p - s);
        }
        p = b + n + 2;
    }
    *quote = chlen > 6 && memcmp(chan, "quote.", 6) == 0;
    return (size_t)(p - s);
}

/* Appends s[0..n) to c's output, in its copy block when the ring ends
 * with it and it has room, else in a new block. 0 or -ENOMEM. */
static int copy_out(client_t *c, const char *s, size_t n)
{
    pubsub_t *ps = c->ps;
    client_conflation_t *q = c->cq;
    out_entry_t *e = c->ring_count > c->inflight
                         ? &c->ring[(c->ring_head + c->ring_count - 1) & (c->ring_cap - 1)]
                         : NULL;
    if (q->copy != NULL && e != NULL && e->p == q->copy && e->end == q->copy->len &&
        q->copy->len + n <= q->copy_cap) {
        memcpy(q->copy->data + q->copy->len, s, n);
        q->copy->len += (uint32_t)n;
        e->end += (uint32_t)n;
        c->queued += n;
        ps->stats.output_buffer_bytes += n;
        return 0;
    }
    size_t cap = n > COPY_BLOCK ? n : COPY_BLOCK;
    payload_t *b = payload_alloc(ps->heap, cap);
    if (b == NULL)
        return -ENOMEM;
    memcpy(b->data, s, n);
    b->len = (uint32_t)n;
    int r = pubsub__ring_push(c, b, 0, b->len);
    if (q->copy != NULL)
        payload_release(ps->heap, &ps->latency, q->copy);
    q->copy = b; /* keeps payload_alloc()'s reference */
    q->copy_cap = (uint32_t)cap;
    return r;
}

static int cq_resize(pubsub_t *ps, client_conflation_t *q, uint32_t ncap)
{
    cq_slot_t *n = pubsub__zalloc(ps->heap, (size_t)ncap * sizeof(cq_slot_t));
    if (n == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < q->cap; i++) {
        if (q->slots[i].buf == NULL)
            continue;
        uint32_t j = q->slots[i].hash & (ncap - 1);
        while (n[j].buf != NULL)
            j = (j + 1) & (ncap - 1);
        n[j] = q->slots[i];
    }
    heap_free(ps->heap, q->slots);
    q->slots = n;
    q->cap = ncap;
    return 0;
}

/* The quote frame s[0..n) (key s[0..key_len)) replaces the one pending
 * for its key. 0 or -ENOMEM. */
static int slot_put(client_t *c, const char *s, size_t n, size_t key_len)
{
    pubsub_t *ps = c->ps;
    client_conflation_t *q = c->cq;
    uint32_t h = pubsub__hash_name(s, key_len);
    uint32_t j = h & (q->cap - 1);
    cq_slot_t *sl;

    for (;; j = (j + 1) & (q->cap - 1)) {
        sl = &q->slots[j];
        if (sl->buf == NULL ||
            (sl->hash == h && sl->key_len == key_len && memcmp(sl->buf, s, key_len) == 0))
            break;
    }
    if (sl->buf == NULL && (q->used + 1) * 4 > q->cap * 3) {
        if (cq_resize(ps, q, q->cap * 2) != 0)
            return -ENOMEM;
        return slot_put(c, s, n, key_len);
    }
    if (sl->buf == NULL || sl->cap < n) {
        uint32_t cap = n > CQ_FRAME_MIN ? (uint32_t)n : CQ_FRAME_MIN;
        char *buf = heap_alloc(ps->heap, cap);
        if (buf == NULL)
            return -ENOMEM;
        if (sl->buf == NULL)
            q->used++;
        heap_free(ps->heap, sl->buf);
        sl->buf = buf;
        sl->cap = cap;
    }
    if (sl->pending)
        q->pending_bytes -= sl->len;
    else
        q->npending++;
    memcpy(sl->buf, s, n);
    sl->len = (uint32_t)n;
    sl->key_len = (uint32_t)key_len;
    sl->hash = h;
    sl->pending = 1;
    q->pending_bytes += n;
    return 0;
}

int pubsub__conflate_client_enqueue(client_t *c, payload_t *p, uint32_t off, uint32_t end)
{
    const char *s = p->data + off;
    size_t n = end - off;
    int r = 0;

    while (n > 0 && r == 0) {
        size_t key_len = 0, f;
        int quote = 0;
        f = frame_parse(s, n, &key_len, &quote);
        if (f == 0)
            f = n; /* not a whole frame: copied as it is */
        r = quote ? slot_put(c, s, f, key_len) : copy_out(c, s, f);
        s += f;
        n -= f;
    }
    if (r != 0) {
        pubsub__doom(c);
        return -EPIPE;
    }
    pubsub__dirty_add(c);
    return 0;
}

void pubsub__conflate_client_enter(client_t *c)
{
    pubsub_t *ps = c->ps;
    uint32_t n = c->ring_count - c->inflight;
    client_conflation_t *q = pubsub__zalloc(ps->heap, sizeof *q);
    cq_slot_t *slots = pubsub__zalloc(ps->heap, CQ_SLOTS * sizeof(cq_slot_t));
    out_entry_t *saved = n > 0 ? heap_alloc(ps->heap, n * sizeof(out_entry_t)) : NULL;

    if (q == NULL || slots == NULL || (n > 0 && saved == NULL)) {
        heap_free(ps->heap, q);
        heap_free(ps->heap, slots);
        heap_free(ps->heap, saved);
        pubsub__doom(c);
        return;
    }
    q->slots = slots;
    q->cap = CQ_SLOTS;
    c->cq = q;
    c->flags |= CLIENT_CONFLATED;
    ps->stats.conflations_total++;
    ps->stats.conflated_clients++;

    /* Take the entries after the write in flight off the ring, and queue
     * them again through conflation. */
    for (uint32_t i = 0; i < n; i++) {
        saved[i] = c->ring[(c->ring_head + c->inflight + i) & (c->ring_cap - 1)];
        c->queued -= saved[i].end - saved[i].off;
        ps->stats.output_buffer_bytes -= saved[i].end - saved[i].off;
    }
    c->ring_count = c->inflight;
    for (uint32_t i = 0; i < n; i++) {
        out_entry_t *e = &saved[i];
        if (!(c->flags & (CLIENT_SLOW | CLIENT_CLOSED))) {
            if (e->p->chunk != NULL)
                pubsub__conflate_client_enqueue(c, e->p, e->off, e->end);
            else if (pubsub__ring_push(c, e->p, e->off, e->end) != 0)
                pubsub__doom(c);
        }
        payload_release(ps->heap, &ps->latency, e->p);
    }
    heap_free(ps->heap, saved);
    pubsub__dirty_add(c);
}

void pubsub__conflate_client_free(client_t *c)
{
    pubsub_t *ps = c->ps;
    client_conflation_t *q = c->cq;

    if (q == NULL)
        return;
    for (uint32_t i = 0; i < q->cap; i++)
        heap_free(ps->heap, q->slots[i].buf);
    heap_free(ps->heap, q->slots);
    if (q->copy != NULL)
        payload_release(ps->heap, &ps->latency, q->copy);
    heap_free(ps->heap, q);
    c->cq = NULL;
    c->flags &= ~CLIENT_CONFLATED;
    ps->stats.conflated_clients--;
}

int pubsub__conflate_client_drained(client_t *c)
{
    pubsub_t *ps = c->ps;
    client_conflation_t *q = c->cq;

    if (q->npending == 0) {
        size_t soft = ps->opt.soft_limit;
        if (soft == 0 || pubsub__kernel_backlog(c) <= soft) {
            pubsub__conflate_client_free(c); /* caught up: under the soft limit, */
            c->flags &= ~CLIENT_SOFT;        /* so its clock starts again when it is next over */
        }
        return 0;
    }
    payload_t *b = payload_alloc(ps->heap, q->pending_bytes);
    if (b == NULL) {
        pubsub__doom(c);
        return 0;
    }
    for (uint32_t i = 0; i < q->cap; i++) {
        cq_slot_t *sl = &q->slots[i];
        if (sl->buf == NULL || !sl->pending)
            continue;
        memcpy(b->data + b->len, sl->buf, sl->len);
        b->len += sl->len;
        sl->pending = 0;
    }
    q->npending = 0;
    q->pending_bytes = 0;
    int r = pubsub__ring_push(c, b, 0, b->len);
    payload_release(ps->heap, &ps->latency, b);
    return r == 0;
}

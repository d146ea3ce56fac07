/*
 * pubsub_topics.c - the registry: channels and patterns, the subscriptions
 * that link them to clients, and the links between a pattern and the
 * channels it matches.
 *
 * A channel or a pattern is a topic_t; channels and patterns each have a
 * hash table by name. A subscription (sub_t) links one client and one
 * topic and is listed on both sides, each list remembering its index in the
 * other, so SUBSCRIBE and UNSUBSCRIBE are O(1) apart from the duplicate check
 * (a scan of the shorter of the two lists). A pattern and each channel topic
 * it matches are linked the same way (match_t, listed on both), so a tick
 * reads its channel's patterns off a list and what a pattern costs is
 * proportional to what it matches. The links are made when the second of
 * the two topics comes: a new pattern makes one pass over the channel
 * topics (a byte compare of its literal prefix, the bytes before any
 * wildcard, before any glob); a new channel looks up only the patterns whose
 * literal prefix starts its name (patterns are grouped by that prefix, one
 * hash lookup per prefix length in use). Dropping either drops its links
 * and nothing else: adding or removing a pattern never rescans the other
 * patterns, nor any channel's. While patterns exist, a tick on a channel
 * nobody subscribed to creates its (empty) channel topic once, to hold those
 * links; when the last pattern goes, such topics are dropped. Every table
 * entry is allocated at (P)SUBSCRIBE time or on a channel's first tick:
 * never per tick in the steady state. Tables whose entries fall to a quarter
 * of their buckets give the buckets back, so a burst of topics leaves no
 * mapped memory behind once it is gone.
 *
 * Every topic also counts its RESP3 subscribers (nsubs3, kept by
 * (un)subscribe and HELLO), so that the fan-out knows which protocol's
 * stream a tick needs (pubsub_queue.c).
 *
 * A conflated channel or pattern (quote.AAPL@250ms) is a topic like any
 * other, with its conflation state (pubsub_conflate.c) made with it and
 * freed with it; its channel topic goes with its last subscriber even while
 * patterns exist, as no tick ever looks it up. It is neither linked to
 * patterns nor grouped as one; instead it is linked to the channel topics
 * whose ticks it takes (cf_links, the same match_t), so a tick finds its
 * conflations on its channel's topic as it finds its patterns. A channel
 * topic so linked stays while the link does, subscribed or not, patterns
 * or not (topic_unheld()).
 *
 * A tick finds its channel's topic without the table: each symbol has a
 * slot (symbol_slot_t, feed/market.h) where this server keeps the topic of
 * the symbol's trade and quote channels (or that there is none) with the
 * channel table's version when it looked; making or freeing a channel
 * topic bumps the version, and so does making a pattern (a channel that
 * had no topic gets one on its next tick now), and the next tick of each
 * kind looks again.
 * The slots this server filled are cleared before it leaves the market
 * (pubsub__slots_release()), the book copies GET kept there freed with them.
 *
 * Never blocks; every table and entry comes from the daemon's heap.
 */
#include <errno.h>
#include <string.h>

#include "src/glob.h"
#include "src/pubsub_internal.h"

/* ---- memory ---- */

void *pubsub__zalloc(heap_t *heap, size_t size)
{
    void *p = heap_alloc(heap, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

/* Makes room for need elements of size elem in *arr (capacity *cap),
 * doubling. 0 or -ENOMEM. */
static int grow(heap_t *heap, void **arr, uint32_t *cap, size_t elem, uint32_t need)
{
    if (need <= *cap)
        return 0;
    uint32_t ncap = *cap != 0 ? *cap : 4;
    while (ncap < need)
        ncap *= 2;
    void *n = heap_alloc(heap, (size_t)ncap * elem);
    if (n == NULL)
        return -ENOMEM;
    if (*arr != NULL) {
        memcpy(n, *arr, (size_t)*cap * elem);
        heap_free(heap, *arr);
    }
    *arr = n;
    *cap = ncap;
    return 0;
}

/* ---- topics ---- */

static int table_init(heap_t *heap, topic_table_t *t)
{
    t->buckets = pubsub__zalloc(heap, TABLE_INITIAL * sizeof(topic_t *));
    t->mask = TABLE_INITIAL - 1;
    t->count = 0;
    return t->buckets != NULL ? 0 : -ENOMEM;
}

/* Rehashes t into nmask + 1 buckets. 0 or -ENOMEM (t unchanged). */
static int table_resize(heap_t *heap, topic_table_t *t, uint32_t nmask)
{
    topic_t **nb = pubsub__zalloc(heap, ((size_t)nmask + 1) * sizeof(topic_t *));
    if (nb == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i <= t->mask; i++) {
        topic_t *x = t->buckets[i];
        while (x != NULL) {
            topic_t *next = x->next;
            x->next = nb[x->hash & nmask];
            nb[x->hash & nmask] = x;
            x = next;
        }
    }
    heap_free(heap, t->buckets);
    t->buckets = nb;
    t->mask = nmask;
    return 0;
}

static int table_insert(heap_t *heap, topic_table_t *t, topic_t *e)
{
    if (t->count > t->mask && table_resize(heap, t, t->mask * 2 + 1) != 0)
        return -ENOMEM;
    e->next = t->buckets[e->hash & t->mask];
    t->buckets[e->hash & t->mask] = e;
    t->count++;
    return 0;
}

/* Never resizes: the callers may be walking the buckets. */
static void table_remove(topic_table_t *t, topic_t *e)
{
    topic_t **pp = &t->buckets[e->hash & t->mask];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    t->count--;
}

/* Gives back the buckets of a table that has fallen to a quarter of them
 * (what a burst of topics grew stays mapped otherwise). Called where no
 * one walks the table; on no memory the table keeps its size. */
static void table_shrink(heap_t *heap, topic_table_t *t)
{
    uint32_t nmask = t->mask;
    while (nmask + 1 > TABLE_INITIAL && (uint64_t)t->count * 4 <= nmask)
        nmask /= 2;
    if (nmask != t->mask)
        table_resize(heap, t, nmask);
}

/* ---- pattern prefix groups ---- */

/* The literal prefix of a pattern: the bytes before its first * ? [ or \. */
size_t pubsub__literal_prefix(const char *pat, size_t len)
{
    size_t i = 0;
    while (i < len && pat[i] != '*' && pat[i] != '?' && pat[i] != '[' && pat[i] != '\\')
        i++;
    return i;
}

static inline uint32_t prefix_slot(size_t len)
{
    return len < PREFIX_LENS ? (uint32_t)len : PREFIX_LENS - 1;
}

static prefix_group_t *group_find(const group_table_t *g, const char *name, size_t len,
                                  uint32_t hash)
{
    for (prefix_group_t *e = g->buckets[hash & g->mask]; e != NULL; e = e->next)
        if (e->hash == hash && e->len == len && memcmp(e->name, name, len) == 0)
            return e;
    return NULL;
}

/* Rehashes g into nmask + 1 buckets. 0 or -ENOMEM (g unchanged). */
static int group_resize(heap_t *heap, group_table_t *g, uint32_t nmask)
{
    prefix_group_t **nb = pubsub__zalloc(heap, ((size_t)nmask + 1) * sizeof(prefix_group_t *));
    if (nb == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; g->buckets != NULL && i <= g->mask; i++) {
        prefix_group_t *x = g->buckets[i];
        while (x != NULL) {
            prefix_group_t *next = x->next;
            x->next = nb[x->hash & nmask];
            nb[x->hash & nmask] = x;
            x = next;
        }
    }
    heap_free(heap, g->buckets);
    g->buckets = nb;
    g->mask = nmask;
    return 0;
}

/* Puts pattern p in the group of its literal prefix, making the group if
 * it is the first. 0 or -ENOMEM. */
static int group_add(pubsub_t *ps, topic_t *p)
{
    group_table_t *g = &ps->groups;
    size_t len = pubsub__literal_prefix(p->name, p->len);
    uint32_t hash = pubsub__hash_name(p->name, len);
    prefix_group_t *e = group_find(g, p->name, len, hash);

    if (e == NULL) {
        if (g->count > g->mask && group_resize(ps->heap, g, g->mask * 2 + 1) != 0)
            return -ENOMEM;
        e = heap_alloc(ps->heap, sizeof(prefix_group_t) + len);
        if (e == NULL)
            return -ENOMEM;
        memcpy(e->name, p->name, len);
        e->len = (uint32_t)len;
        e->hash = hash;
        e->first = NULL;
        e->next = g->buckets[hash & g->mask];
        g->buckets[hash & g->mask] = e;
        g->count++;
        g->lens[prefix_slot(len)]++;
    }
    p->group = e;
    p->group_prev = NULL;
    p->group_next = e->first;
    if (e->first != NULL)
        e->first->group_prev = p;
    e->first = p;
    return 0;
}

/* Takes pattern p out of its group, dropping the group when it empties and
 * the table's buckets when they fall to a quarter. */
static void group_remove(pubsub_t *ps, topic_t *p)
{
    group_table_t *g = &ps->groups;
    prefix_group_t *e = p->group;

    if (e == NULL)
        return;
    if (p->group_prev != NULL)
        p->group_prev->group_next = p->group_next;
    else
        e->first = p->group_next;
    if (p->group_next != NULL)
        p->group_next->group_prev = p->group_prev;
    p->group = NULL;
    if (e->first != NULL)
        return;
    prefix_group_t **pp = &g->buckets[e->hash & g->mask];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    g->count--;
    g->lens[prefix_slot(e->len)]--;
    heap_free(ps->heap, e);
    uint32_t nmask = g->mask;
    while (nmask + 1 > TABLE_INITIAL && (uint64_t)g->count * 4 <= nmask)
        nmask /= 2;
    if (nmask != g->mask)
        group_resize(ps->heap, g, nmask);
}

/* ---- matches ---- */

/* Makes pattern p's pmessage heads, the first time it has a frame to send
 * (a channel it matches, a snapshot): a pattern that matches nothing has
 * none. Besides their cost, heads made for every pattern at PSUBSCRIBE
 * would share pools with the ticks of their size made meanwhile, and a
 * tick that outlives the patterns as a last value would then keep one of
 * their pools, and its arena, mapped each. 0 or -ENOMEM. */
int pubsub__pattern_heads(pubsub_t *ps, topic_t *p)
{
    for (int v = 0; v < PAYLOAD_NPROTO; v++)
        if (p->head[v] == NULL &&
            payload_pattern_head(ps->heap, p->name, p->len, v, &p->head[v]) != 0)
            return -ENOMEM;
    return 0;
}

/* A pattern's matches and a conflated topic's links (cf_links) are the same
 * two-sided link, a match_t held in an array on each of its two topics; a
 * link_list_t names one topic's array of one kind. */
typedef enum { LINK_MATCH, LINK_CONFLATE } link_kind_t;

typedef struct link_list {
    match_t ***v;
    uint32_t *n, *cap;
} link_list_t;

static link_list_t links_of(topic_t *t, link_kind_t kind)
{
    if (kind == LINK_MATCH)
        return (link_list_t){&t->matches, &t->nmatches, &t->matches_cap};
    return (link_list_t){&t->cf_links, &t->ncf_links, &t->cf_links_cap};
}

/* Links topic a (a pattern, or a conflated topic) to channel topic ch. 0 or
 * -ENOMEM, with nothing linked. */
static int link_add(pubsub_t *ps, link_kind_t kind, topic_t *a, topic_t *ch)
{
    link_list_t la = links_of(a, kind), lc = links_of(ch, kind);
    match_t *m = heap_alloc(ps->heap, sizeof(match_t));
    if (m == NULL || grow(ps->heap, (void **)la.v, la.cap, sizeof(match_t *), *la.n + 1) != 0 ||
        grow(ps->heap, (void **)lc.v, lc.cap, sizeof(match_t *), *lc.n + 1) != 0) {
        heap_free(ps->heap, m);
        return -ENOMEM;
    }
    m->pattern = a;
    m->channel = ch;
    m->pattern_idx = *la.n;
    m->channel_idx = *lc.n;
    (*la.v)[(*la.n)++] = m;
    (*lc.v)[(*lc.n)++] = m;
    return 0;
}

static void link_remove(pubsub_t *ps, link_kind_t kind, match_t *m)
{
    link_list_t la = links_of(m->pattern, kind), lc = links_of(m->channel, kind);

    (*la.v)[m->pattern_idx] = (*la.v)[--*la.n];
    (*la.v)[m->pattern_idx]->pattern_idx = m->pattern_idx;
    (*lc.v)[m->channel_idx] = (*lc.v)[--*lc.n];
    (*lc.v)[m->channel_idx]->channel_idx = m->channel_idx;
    heap_free(ps->heap, m);
}

/* Records that pattern p matches channel ch. 0 or -ENOMEM. */
static int match_add(pubsub_t *ps, topic_t *p, topic_t *ch)
{
    if (pubsub__pattern_heads(ps, p) != 0)
        return -ENOMEM;
    return link_add(ps, LINK_MATCH, p, ch);
}

/* Links a new pattern to the channel topics it matches: one pass over the
 * channels, at PSUBSCRIBE, with a byte compare of the literal prefix before
 * any glob. 0 or -ENOMEM (the caller frees the pattern and its links). */
static int pattern_link(pubsub_t *ps, topic_t *p)
{
    size_t pre = pubsub__literal_prefix(p->name, p->len);
    for (uint32_t i = 0; i <= ps->channels.mask; i++)
        for (topic_t *ch = ps->channels.buckets[i]; ch != NULL; ch = ch->next)
            if (ch->len >= pre && memcmp(ch->name, p->name, pre) == 0 &&
                glob_match(p->name, p->len, ch->name, ch->len) && match_add(ps, p, ch) != 0)
                return -ENOMEM;
    return 0;
}

/* Links a new channel topic to the patterns matching its name: only those
 * whose literal prefix starts the name are tried, found by looking up each
 * of the name's prefixes that some group has the length of. 0 or -ENOMEM
 * (the caller frees the channel and its links). */
static int channel_link(pubsub_t *ps, topic_t *ch)
{
    const group_table_t *g = &ps->groups;
    uint32_t h = 2166136261u; /* pubsub__hash_name() of the first k bytes, as k grows */

    for (size_t k = 0; k <= ch->len; k++) {
        if (k > 0)
            h = (h ^ (unsigned char)ch->name[k - 1]) * 16777619u;
        if (g->lens[prefix_slot(k)] == 0)
            continue;
        prefix_group_t *e = group_find(g, ch->name, k, h);
        for (topic_t *p = e != NULL ? e->first : NULL; p != NULL; p = p->group_next)
            if (glob_match(p->name, p->len, ch->name, ch->len) && match_add(ps, p, ch) != 0)
                return -ENOMEM;
    }
    return 0;
}

/* ---- conflation links ---- */

int pubsub__cf_link(pubsub_t *ps, topic_t *t, topic_t *ch)
{
    return link_add(ps, LINK_CONFLATE, t, ch);
}

/* Whether nothing holds topic t any more: no subscriber and, for a plain
 * channel, no conflation taking its ticks and no pattern that would make it
 * again on its next tick. */
static int topic_unheld(const pubsub_t *ps, const topic_t *t)
{
    return t->nsubs == 0 &&
           (t->is_pattern || t->is_conflated || (ps->patterns.count == 0 && t->ncf_links == 0));
}

static void topic_free(pubsub_t *ps, topic_t *e);

void pubsub__cf_unlink(pubsub_t *ps, topic_t *t)
{
    while (t->ncf_links > 0) {
        match_t *m = t->cf_links[t->ncf_links - 1];
        topic_t *ch = m->channel;
        link_remove(ps, LINK_CONFLATE, m);
        if (ch != t && topic_unheld(ps, ch))
            topic_free(ps, ch);
    }
}

int pubsub__cf_link_channel(pubsub_t *ps, topic_t *t, size_t base_len)
{
    if (memchr(t->name, '@', base_len) != NULL)
        return 0; /* no tick's channel has one: a symbol is A-Z, 0-9, '.' and '-' */
    uint32_t hash = pubsub__hash_name(t->name, base_len);
    topic_t *ch = pubsub__table_find(&ps->channels, t->name, base_len, hash);
    if (ch == NULL && pubsub__topic_create(ps, 0, t->name, base_len, hash, &ch) != 0)
        return -ENOMEM;
    if (pubsub__cf_link(ps, t, ch) != 0) {
        if (topic_unheld(ps, ch))
            topic_free(ps, ch);
        return -ENOMEM;
    }
    return 0;
}

/* One pass over the channel topics, as pattern_link() makes for a plain
 * pattern: a byte compare of the base's literal prefix before any glob. */
int pubsub__cf_link_pattern(pubsub_t *ps, topic_t *t, size_t base_len)
{
    size_t pre = pubsub__literal_prefix(t->name, base_len);
    for (uint32_t i = 0; i <= ps->channels.mask; i++)
        for (topic_t *ch = ps->channels.buckets[i]; ch != NULL; ch = ch->next)
            if (!ch->is_conflated && ch->len >= pre && memcmp(ch->name, t->name, pre) == 0 &&
                glob_match(t->name, base_len, ch->name, ch->len) && pubsub__cf_link(ps, t, ch) != 0)
                return -ENOMEM;
    return 0;
}

/* ---- freeing a topic ---- */

static void topic_free(pubsub_t *ps, topic_t *e)
{
    table_remove(e->is_pattern ? &ps->patterns : &ps->channels, e);
    if (e->conflate != NULL)
        pubsub__conflate_detach(ps, e);
    if (!e->is_pattern)
        ps->channels_version++;
    while (e->nmatches > 0)
        link_remove(ps, LINK_MATCH, e->matches[e->nmatches - 1]);
    pubsub__cf_unlink(ps, e);
    if (e->is_pattern) {
        group_remove(ps, e);
        for (int v = 0; v < PAYLOAD_NPROTO; v++)
            if (e->head[v] != NULL)
                payload_release(ps->heap, &ps->latency, e->head[v]);
    }
    heap_free(ps->heap, e->subs);
    heap_free(ps->heap, e->matches);
    heap_free(ps->heap, e->cf_links);
    heap_free(ps->heap, e);
}

/* A new channel or pattern topic, in its table and linked to the topics of
 * the other kind that it matches. 0 or -ENOMEM. */
int pubsub__topic_create(pubsub_t *ps, int is_pattern, const char *name, size_t len, uint32_t hash,
                         topic_t **out)
{
    topic_t *e = pubsub__zalloc(ps->heap, sizeof(topic_t) + len + 1);
    if (e == NULL)
        return -ENOMEM;
    memcpy(e->name, name, len);
    e->len = (uint32_t)len;
    e->hash = hash;
    e->is_pattern = (uint8_t)is_pattern;
    size_t base_len;
    uint64_t interval_ms;
    e->is_conflated = pubsub__conflate_suffix(name, len, &base_len, &interval_ms) > 0;
    if (table_insert(ps->heap, is_pattern ? &ps->patterns : &ps->channels, e) != 0) {
        heap_free(ps->heap, e);
        return -ENOMEM;
    }
    /* A new channel topic, or a new pattern that makes a channel's first
     * tick create its topic: a slot that found none must look again. */
    ps->channels_version++;
    /* A conflated topic is linked to the channels whose ticks it takes by
     * pubsub__conflate_attach(), never as a pattern or a channel of ticks. */
    int r = 0;
    if (is_pattern && !e->is_conflated) {
        r = group_add(ps, e);
        if (r == 0)
            r = pattern_link(ps, e);
    } else if (!e->is_conflated && ps->patterns.count > 0) {
        r = channel_link(ps, e);
        if (r == 0 && ps->cf_patterns != NULL)
            r = pubsub__conflate_channel_new(ps, e);
    }
    if (r != 0) {
        topic_free(ps, e);
        return -ENOMEM;
    }
    *out = e;
    return 0;
}

topic_t *pubsub__channel_lookup(pubsub_t *ps, tick_t *tick, const char *name, size_t n)
{
    uint32_t hash = pubsub__hash_name(name, n);
    topic_t *ch = pubsub__table_find(&ps->channels, name, n, hash);
    if (ch == NULL && ps->patterns.count > 0 &&
        pubsub__topic_create(ps, 0, name, n, hash, &ch) != 0)
        return NULL;
    symbol_slot_t *s = &tick->sym->slot;
    unsigned k = tick->kind - 1u;
    if (s->owner != ps) {
        if (s->book != NULL)
            return ch; /* another server's book copy: its slot stays its own */
        s->owner = ps;
        s->version[0] = s->version[1] = 0;
    }
    s->ref[k] = ch;
    s->version[k] = ps->channels_version;
    return ch;
}

static int slot_release(symbol_t *sym, void *arg)
{
    pubsub_t *ps = arg;
    if (sym->slot.owner == ps) {
        pubsub__book_copy_free(ps, sym->slot.book);
        memset(&sym->slot, 0, sizeof sym->slot);
    }
    return 0;
}

void pubsub__slots_release(pubsub_t *ps)
{
    if (ps->market != NULL)
        market_foreach(ps->market, slot_release, ps);
}

/* Drops the channel topics that only held a pattern cache: called when the
 * last pattern went away. */
static void sweep_channels(pubsub_t *ps)
{
    for (uint32_t i = 0; i <= ps->channels.mask; i++) {
        topic_t *e = ps->channels.buckets[i];
        while (e != NULL) {
            topic_t *next = e->next;
            if (topic_unheld(ps, e))
                topic_free(ps, e);
            e = next;
        }
    }
    table_shrink(ps->heap, &ps->channels);
}

/* ---- subscriptions ---- */

sub_t *pubsub__sub_find(const client_t *c, const topic_t *t)
{
    if (c->nsubs <= t->nsubs) {
        for (uint32_t i = 0; i < c->nsubs; i++)
            if (c->subs[i]->topic == t)
                return c->subs[i];
    } else {
        for (uint32_t i = 0; i < t->nsubs; i++)
            if (t->subs[i]->client == c)
                return t->subs[i];
    }
    return NULL;
}

/* Subscribes c to the channel or pattern name. 1 if new, 0 if c already
 * was, -ENOMEM. *topic is the topic either way. */
int pubsub__sub_add(client_t *c, int is_pattern, const char *name, size_t len, topic_t **topic)
{
    pubsub_t *ps = c->ps;
    uint32_t hash = pubsub__hash_name(name, len);
    topic_t *t = pubsub__table_find(is_pattern ? &ps->patterns : &ps->channels, name, len, hash);
    int created = 0;

    if (t == NULL) {
        if (pubsub__topic_create(ps, is_pattern, name, len, hash, &t) != 0)
            return -ENOMEM;
        created = 1;
    } else if (pubsub__sub_find(c, t) != NULL) {
        *topic = t;
        return 0;
    }
    sub_t *s = heap_alloc(ps->heap, sizeof(sub_t));
    if (s == NULL ||
        grow(ps->heap, (void **)&c->subs, &c->subs_cap, sizeof(sub_t *), c->nsubs + 1) != 0 ||
        grow(ps->heap, (void **)&t->subs, &t->subs_cap, sizeof(sub_t *), t->nsubs + 1) != 0) {
        heap_free(ps->heap, s);
        if (created)
            topic_free(ps, t);
        return -ENOMEM;
    }
    s->client = c;
    s->topic = t;
    s->job = NULL;
    s->client_idx = c->nsubs;
    s->topic_idx = t->nsubs;
    c->subs[c->nsubs++] = s;
    t->subs[t->nsubs++] = s;
    t->nsubs3 += pubsub__client_proto(c) == PAYLOAD_RESP3;
    ps->stats.subscriptions++;
    *topic = t;
    return 1;
}

/* Takes job j off its client's list and frees it. */
void pubsub__job_drop(client_t *c, snapshot_job_t *j)
{
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        c->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    else
        c->jobs_tail = j->prev;
    j->sub->job = NULL;
    heap_free(c->ps->heap, j);
}

void pubsub__sub_remove(pubsub_t *ps, sub_t *s)
{
    client_t *c = s->client;
    topic_t *t = s->topic;

    if (HEAP_UNLIKELY(s->job != NULL))
        pubsub__job_drop(c, s->job); /* no pmessage of it after the reply that ends it */
    c->subs[s->client_idx] = c->subs[--c->nsubs];
    c->subs[s->client_idx]->client_idx = s->client_idx;
    t->subs[s->topic_idx] = t->subs[--t->nsubs];
    t->subs[s->topic_idx]->topic_idx = s->topic_idx;
    t->nsubs3 -= pubsub__client_proto(c) == PAYLOAD_RESP3;
    heap_free(ps->heap, s);
    ps->stats.subscriptions--;
    if (topic_unheld(ps, t)) {
        topic_table_t *table = t->is_pattern ? &ps->patterns : &ps->channels;
        int was_pattern = t->is_pattern;
        topic_free(ps, t);
        table_shrink(ps->heap, table);
        if (was_pattern && ps->patterns.count == 0)
            sweep_channels(ps);
    }
}

uint32_t pubsub__client_count_subs(const client_t *c, int is_pattern)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->nsubs; i++)
        n += c->subs[i]->topic->is_pattern == is_pattern;
    return n;
}

/* Switches c to protocol proto (HELLO), moving its subscriptions between
 * their topics' counts of RESP2 and RESP3 subscribers. */
void pubsub__client_set_proto(client_t *c, int proto)
{
    if (pubsub__client_proto(c) == proto)
        return;
    for (uint32_t i = 0; i < c->nsubs; i++) {
        topic_t *t = c->subs[i]->topic;
        if (proto == PAYLOAD_RESP3)
            t->nsubs3++;
        else
            t->nsubs3--;
    }
    if (proto == PAYLOAD_RESP3)
        c->flags |= CLIENT_RESP3;
    else
        c->flags &= ~CLIENT_RESP3;
}

/* Drops every subscription of c, without replies. */
void pubsub__unsubscribe_quietly(client_t *c)
{
    while (c->nsubs > 0)
        pubsub__sub_remove(c->ps, c->subs[c->nsubs - 1]);
}

/* ---- the registry's life ---- */

int pubsub__topics_init(pubsub_t *ps)
{
    if (table_init(ps->heap, &ps->channels) != 0 || table_init(ps->heap, &ps->patterns) != 0 ||
        group_resize(ps->heap, &ps->groups, TABLE_INITIAL - 1) != 0)
        return -ENOMEM;
    return 0;
}

void pubsub__topics_free(pubsub_t *ps)
{
    topic_table_t *tables[2] = {&ps->patterns, &ps->channels};
    for (int t = 0; t < 2; t++) {
        if (tables[t]->buckets == NULL)
            continue;
        for (uint32_t i = 0; i <= tables[t]->mask; i++)
            while (tables[t]->buckets[i] != NULL)
                topic_free(ps, tables[t]->buckets[i]);
        heap_free(ps->heap, tables[t]->buckets);
    }
    heap_free(ps->heap, ps->groups.buckets);
}

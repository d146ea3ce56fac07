/*
 * fuzz_market.c - the rig the feed harnesses share (see fuzz_market.h): a
 * market on a heap of its own, chunked or datagram delivery, safe-point
 * collections, the checks of the books while the market lives, and the
 * empty-heap check at the end.
 *
 * The books are checked through feed/book.h, internal to feed/: a white-box
 * check that every level is sorted, holds at least one order and one share,
 * and that the levels together hold exactly the market's live orders.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/object.h"
#include "feed/book.h"
#include "tests/fuzz/fuzz_market.h"

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *fuzz_dup(const void *data, size_t len)
{
    void *p = malloc(len > 0 ? len : 1);
    if (p == NULL)
        fuzz_fail("out of memory copying %zu bytes", len);
    if (len > 0)
        memcpy(p, data, len);
    return p;
}

/* Keeps the last FUZZ_KEEP ticks, dropping the oldest from inside the
 * dispatch, as a subscriber queue does; and digests every tick. */
static void sink(void *arg, tick_t *t)
{
    fuzz_rig_t *r = arg;
    if (t->sym == NULL || t->ob.refcnt < 1)
        fuzz_fail("tick %llu handed to the sink without a symbol or a reference",
                  (unsigned long long)r->ticks);
    uint64_t h = r->digest;
    const uint64_t fields[] = {t->kind,
                               (uint64_t)(unsigned char)t->side,
                               t->size,
                               (uint64_t)t->price,
                               (uint64_t)t->ask,
                               t->ask_size,
                               t->seq,
                               (uint64_t)t->ts_exch,
                               (uint64_t)t->ts_recv,
                               t->sym->len};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        h = (h ^ fields[i]) * 0x100000001b3ull;
    for (size_t i = 0; i < t->sym->len; i++)
        h = (h ^ (unsigned char)t->sym->name[i]) * 0x100000001b3ull;
    r->digest = h;
    r->ticks++;

    obj_incref(&t->ob);
    tick_t *old = r->kept[r->next_keep];
    r->kept[r->next_keep] = t;
    r->next_keep = (r->next_keep + 1) % FUZZ_KEEP;
    if (old != NULL)
        obj_decref(r->heap, &old->ob);
}

static const size_t max_chunks[8] = {0, 1, 2, 3, 8, 64, 512, 4096};
static const uint64_t per_runs[4] = {UINT64_MAX, 1, 3, 64};

void fuzz_rig_open(fuzz_rig_t *r, enum ingest_format fmt, uint8_t ctl, uint64_t seed)
{
    memset(r, 0, sizeof(*r));
    r->ctl = ctl;
    r->collect = (ctl >> 1) & 1;
    r->per_run = per_runs[(ctl >> 2) & 3];
    r->pacing = (ctl >> 4) & 1;
    r->until = r->pacing ? INT64_MIN : INT64_MAX;
    r->max_chunk = max_chunks[ctl >> 5];
    r->rng = seed * 0x9e3779b97f4a7c15ull + 1;

    heap_options_t opts;
    heap_options_init(&opts);
    opts.debug = (ctl & 1) ? HEAP_DEBUG_ON : HEAP_DEBUG_OFF;
    if (heap_create(&opts, &r->heap) != 0 || obj_runtime_create(r->heap) != 0)
        fuzz_fail("heap_create or obj_runtime_create failed");
    if (r->collect)
        gc_set_thresholds(r->heap, 5, 2, 2);
    /* A day start like the daemon's: a midnight in nanoseconds since 1970. */
    if (market_create(r->heap, 1700006400000000000ll, sink, r, &r->market) != 0)
        fuzz_fail("market_create failed");
    ingest_init(&r->ing, fmt, r->market, NULL, NULL);
}

void fuzz_rig_safe_point(fuzz_rig_t *r)
{
    if (!r->collect)
        return;
    int gen = gc_should_collect(r->heap);
    if (gen >= 0 && gc_collect(r->heap, gen) < 0)
        fuzz_fail("gc_collect(%d) failed at a safe point", gen);
}

/* Runs the pushed chunk to its end, a batch at a time. */
static void run_chunk(fuzz_rig_t *r)
{
    int64_t next = 0;
    while (ingest_run(&r->ing, r->until, r->per_run, &next) == 1) {
        fuzz_rig_safe_point(r);
        if (r->pacing && next > r->until)
            r->until = next;
    }
}

static size_t next_chunk_len(fuzz_rig_t *r, size_t left)
{
    if (r->max_chunk == 0)
        return left;
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    size_t n = 1 + (size_t)(r->rng % r->max_chunk);
    return n < left ? n : left;
}

void fuzz_rig_stream(fuzz_rig_t *r, const uint8_t *data, size_t len)
{
    for (size_t off = 0; off < len;) {
        size_t n = next_chunk_len(r, len - off);
        void *chunk = fuzz_dup(data + off, n);
        ingest_push(&r->ing, chunk, n, 1);
        run_chunk(r);
        free(chunk);
        off += n;
    }
    ingest_finish(&r->ing);
    fuzz_rig_safe_point(r);
}

void fuzz_rig_packet(fuzz_rig_t *r, const uint8_t *pkt, size_t len)
{
    void *copy = fuzz_dup(pkt, len);
    ingest_packet(&r->ing, copy, len, 1);
    free(copy);
    fuzz_rig_safe_point(r);
}

/* Checks one side of a book; returns its orders. */
static uint64_t check_side(const symbol_t *sym, const book_side_t *s, const char *which)
{
    uint64_t orders = 0;
    if (s->n > s->cap)
        fuzz_fail("%s %s: %u levels in a side of %u", sym->name, which, s->n, s->cap);
    for (uint32_t i = 0; i < s->n; i++) {
        const book_level_t *l = &s->levels[i];
        if (l->orders == 0 || l->shares < l->orders)
            fuzz_fail("%s %s level %u: %u orders, %llu shares", sym->name, which, i, l->orders,
                      (unsigned long long)l->shares);
        if (i > 0 &&
            (s->ask ? l->price >= s->levels[i - 1].price : l->price <= s->levels[i - 1].price))
            fuzz_fail("%s %s levels %u and %u out of order", sym->name, which, i - 1, i);
        orders += l->orders;
    }
    return orders;
}

static int check_symbol(symbol_t *sym, void *arg)
{
    uint64_t *orders = arg;
    if (sym->len == 0 || sym->len > SYMBOL_MAX_LEN || sym->name[sym->len] != '\0' ||
        !symbol_valid(sym->name, sym->len))
        fuzz_fail("symbol with a bad name interned (len %u)", sym->len);
    if (sym->book == NULL)
        return 0;
    *orders += check_side(sym, &sym->book->bid, "bid");
    *orders += check_side(sym, &sym->book->ask, "ask");
    return 0;
}

static void check_books(const fuzz_rig_t *r)
{
    uint64_t orders = 0;
    market_foreach(r->market, check_symbol, &orders);
    const market_stats_t *st = market_stats(r->market);
    if (orders != st->orders_live)
        fuzz_fail("the books hold %llu orders, the market %llu live", (unsigned long long)orders,
                  (unsigned long long)st->orders_live);
}

static uint64_t live(const heap_t *heap, const obj_type_t *type)
{
    obj_type_stats_t st;
    return obj_type_get_stats(heap, type, &st) == 0 ? st.live : 0;
}

void fuzz_rig_close(fuzz_rig_t *r)
{
    check_books(r);
    /* Control bit 3: the kept ticks outlive the market, so that their
     * symbols are left to the collector. */
    int keep_past_market = (r->ctl >> 3) & 1;
    if (!keep_past_market)
        for (unsigned i = 0; i < FUZZ_KEEP; i++)
            if (r->kept[i] != NULL)
                obj_decref(r->heap, &r->kept[i]->ob);
    market_destroy(r->market);
    r->market = NULL;
    if (keep_past_market)
        for (unsigned i = 0; i < FUZZ_KEEP; i++)
            if (r->kept[i] != NULL)
                obj_decref(r->heap, &r->kept[i]->ob);
    memset(r->kept, 0, sizeof(r->kept));
    if (gc_collect(r->heap, GC_NGENERATIONS - 1) < 0)
        fuzz_fail("the final gc_collect failed");

    uint64_t ticks = live(r->heap, &tick_type), symbols = live(r->heap, &symbol_type),
             orders = live(r->heap, &order_type);
    if (ticks != 0 || symbols != 0 || orders != 0)
        fuzz_fail("after the market: %llu ticks, %llu symbols, %llu orders alive",
                  (unsigned long long)ticks, (unsigned long long)symbols,
                  (unsigned long long)orders);
    heap_stats_t hs;
    heap_get_stats(r->heap, &hs);
    if (hs.used_bytes != 0 || hs.large_bytes != 0)
        fuzz_fail("after the market: %zu bytes in blocks, %zu in large blocks", hs.used_bytes,
                  hs.large_bytes);
    char why[256];
    if (heap_check(r->heap, why, sizeof(why)) != 0)
        fuzz_fail("heap_check: %s", why);
    obj_runtime_destroy(r->heap);
    heap_destroy(r->heap);
    r->heap = NULL;
}

void fuzz_rig_compare(const fuzz_rig_t *a, const fuzz_rig_t *b)
{
    const ingest_stats_t *x = &a->ing.stats, *y = &b->ing.stats;
    if (a->ticks != b->ticks || a->digest != b->digest)
        fuzz_fail("control byte 0x%02x: %llu ticks (digest %016llx), one chunk made %llu (%016llx)",
                  b->ctl, (unsigned long long)b->ticks, (unsigned long long)b->digest,
                  (unsigned long long)a->ticks, (unsigned long long)a->digest);
    if (x->messages != y->messages || x->decode_errors != y->decode_errors ||
        x->sequence_gaps != y->sequence_gaps || x->rejected != y->rejected)
        fuzz_fail("control byte 0x%02x: messages %llu, errors %llu, gaps %llu, rejected %llu; "
                  "one chunk: %llu, %llu, %llu, %llu",
                  b->ctl, (unsigned long long)y->messages, (unsigned long long)y->decode_errors,
                  (unsigned long long)y->sequence_gaps, (unsigned long long)y->rejected,
                  (unsigned long long)x->messages, (unsigned long long)x->decode_errors,
                  (unsigned long long)x->sequence_gaps, (unsigned long long)x->rejected);
}

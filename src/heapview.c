/*
 * heapview.c - /debug/heap and /debug/heap.json: the memory system as a
 * picture an operator can watch.
 *
 * The page (src/heap_page.html, turned into the C array heapview_page by
 * src/embed.cmake at build time) is static: inline CSS and JavaScript, no
 * external resource, at most HEAPVIEW_PAGE_MAX bytes (the build fails past
 * it). About once a second it fetches /debug/heap.json and redraws; rates
 * (allocations and ticks per second) and the sparkline of mapped and used
 * bytes are the page's own, from the difference of two answers and time_ms.
 *
 * The JSON is written here, on the loop, from the snapshot the daemon fills
 * for /metrics and from alloc's public reads: heap_get_stats() and
 * heap_walk() for the heap (one pool header per carved pool), gc_get_stats()
 * and obj_type_foreach() for the objects above it. Numbers are written with a
 * digit loop, not printf: 64 arenas of 64 pools is 4096 pool entries, and the
 * whole answer must cost the loop well under a millisecond
 * (tests/bench/bench_heapview.c measures it). Nothing is kept between
 * requests, nothing here calls up into the daemon.
 *
 * The fields of /debug/heap.json (integers unless said; _total fields are
 * counters over the daemon's life, the rest are now):
 *
 *   version                  tickd's version (string)
 *   time_ms                  CLOCK_REALTIME of the answer, milliseconds
 *   heap                     the heap as heap_get_stats() sums it up:
 *     arena_size, pool_size    bytes of one arena, of one pool
 *     arenas                   arenas mapped now, the spare included (the
 *                              same figure as tickd_alloc_arenas)
 *     arenas_highwater         most arenas mapped at once
 *     arenas_allocated_total, arenas_released_total   maps and unmaps
 *     mapped_bytes, mapped_bytes_peak                 arenas * arena_size
 *     used_bytes               live blocks * their block size
 *     available_bytes          free blocks in pools that have live ones
 *     empty_pool_bytes         pools with no live block, whole
 *     overhead_bytes           pool headers, alignment and quantization: with
 *                              the three above, adds up to mapped_bytes
 *     pools_used, pools_full, pools_empty   pools by state, over all arenas
 *     large_bytes              requested bytes of live blocks over 512 bytes
 *     large_allocations_total, large_frees_total
 *   classes                  32 objects, size class 0 (16 bytes) to 31 (512):
 *     block_size               bytes
 *     pools, full_pools        pools of the class (USED, FULL or CACHED), FULL ones
 *     used_blocks, free_blocks live blocks, free ones in the class's pools
 *     used_bytes               used_blocks * block_size
 *     allocations_total, frees_total
 *   arenas                   one object per mapped arena, in the heap's order:
 *     base                     address of the mapping (string, "0x...")
 *     spare                    true for the empty arena kept mapped
 *     free_pools               pools with no live block
 *     pools                    one array per pool, lowest address first:
 *                              [state, class, used, capacity]; state 0 empty
 *                              (never carved, or given back to the arena),
 *                              1 in use with free blocks, 2 full, 3 emptied
 *                              and kept by its class for reuse; class the
 *                              size class index (0 when empty); used its live
 *                              blocks; capacity the blocks it holds (0 when
 *                              empty). The used of a class's pools add up to
 *                              its used_blocks.
 *   gc                       the cycle collector:
 *     generations              3 objects, 0 (young) to 2:
 *       count, threshold         the threshold counter and its threshold
 *       tracked                  containers in the generation
 *       collections_total, collected_total, uncollectable_total
 *       pause_count, pause_sum_ns   collections timed, their total pause
 *       last_pauses_ns           the latest pauses (ns), newest first, at most 8
 *       pause_le_ns              the histogram's upper bounds (ns), 1 us .. 1 s
 *       pause_buckets            cumulative counts per bound (pause_count is +Inf)
 *     frozen                   containers out of the collector's reach
 *     long_lived_total, long_lived_pending   the oldest generation's heuristic
 *   objects                  per registered type: type (string), live,
 *                            created_total, destroyed_total
 *   ticks                    trade_total, quote_total: ticks made
 *   pubsub                   clients (connected now), subscriptions (channels
 *                            and patterns now), messages_sent_total,
 *                            output_buffer_bytes, slow_consumer_disconnects_total
 */
#include <errno.h>
#include <string.h>

#include "src/heapview.h"

/* The answer being written, with its first error. */
typedef struct out {
    http_body_t *b;
    int err;
} out_t;

static void put_raw(out_t *o, const char *s, size_t len)
{
    if (o->err == 0)
        o->err = http_body_append(o->b, s, len);
}

static void put_str(out_t *o, const char *s)
{
    put_raw(o, s, strlen(s));
}

static void put_u64(out_t *o, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof(digits) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put_raw(o, digits + sizeof(digits) - n, n);
}

/* "name": v, with a comma in front unless first. */
static void field_u64(out_t *o, const char *name, uint64_t v, int first)
{
    put_str(o, first ? "\"" : ",\"");
    put_str(o, name);
    put_raw(o, "\":", 2);
    put_u64(o, v);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_json_string(out_t *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put_raw(o, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put_raw(o, esc, 2);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put_raw(o, esc, 6);
        } else {
            put_raw(o, s, 1);
        }
    }
    put_raw(o, "\"", 1);
}

/* ---- the heap ---- */

static void render_heap(out_t *o, const heap_stats_t *s)
{
    put_str(o, ",\"heap\":{");
    field_u64(o, "arena_size", s->arena_size, 1);
    field_u64(o, "pool_size", s->pool_size, 0);
    field_u64(o, "arenas", s->arenas, 0);
    field_u64(o, "arenas_highwater", s->arenas_highwater, 0);
    field_u64(o, "arenas_allocated_total", s->arenas_allocated, 0);
    field_u64(o, "arenas_released_total", s->arenas_released, 0);
    field_u64(o, "mapped_bytes", s->mapped_bytes, 0);
    field_u64(o, "mapped_bytes_peak", s->mapped_bytes_peak, 0);
    field_u64(o, "used_bytes", s->used_bytes, 0);
    field_u64(o, "available_bytes", s->available_bytes, 0);
    field_u64(o, "empty_pool_bytes", s->empty_pool_bytes, 0);
    field_u64(o, "overhead_bytes",
              s->pool_header_bytes + s->alignment_bytes + s->quantization_bytes, 0);
    field_u64(o, "pools_used", s->pools_used, 0);
    field_u64(o, "pools_full", s->pools_full, 0);
    field_u64(o, "pools_empty", s->pools_empty, 0);
    field_u64(o, "large_bytes", s->large_bytes, 0);
    field_u64(o, "large_allocations_total", s->large_allocs, 0);
    field_u64(o, "large_frees_total", s->large_frees, 0);
    put_str(o, "},\"classes\":[");
    for (unsigned i = 0; i < HEAP_NCLASSES; i++) {
        const heap_class_stats_t *c = &s->classes[i];
        put_str(o, i == 0 ? "{" : ",{");
        field_u64(o, "block_size", c->block_size, 1);
        field_u64(o, "pools", c->pools, 0);
        field_u64(o, "full_pools", c->full_pools, 0);
        field_u64(o, "used_blocks", c->used_blocks, 0);
        field_u64(o, "free_blocks", c->free_blocks, 0);
        field_u64(o, "used_bytes", c->used_blocks * c->block_size, 0);
        field_u64(o, "allocations_total", c->allocs, 0);
        field_u64(o, "frees_total", c->frees, 0);
        put_raw(o, "}", 1);
    }
    put_raw(o, "]", 1);
}

/* The longest pool entry: ",[3,31,4294967295,4294967295]" (the counts are
 * at most 4,092 blocks in fact). */
#define POOL_ENTRY_MAX 32

/* The arenas walk: where the separators go. */
typedef struct arena_walk {
    out_t *o;
    int arenas; /* arenas written */
    int pools;  /* pools written in the current arena */
} arena_walk_t;

static int arena_entry(void *arg, const heap_arena_info_t *a)
{
    arena_walk_t *w = arg;
    out_t *o = w->o;
    static const char hex[] = "0123456789abcdef";
    char base[2 + 2 * sizeof(uintptr_t)];
    size_t n = sizeof(base);
    uintptr_t v = a->base;
    do {
        base[--n] = hex[v & 15];
        v >>= 4;
    } while (v != 0);
    base[--n] = 'x';
    base[--n] = '0';
    put_str(o, w->arenas++ == 0 ? "{\"base\":\"" : "]},{\"base\":\"");
    put_raw(o, base + n, sizeof(base) - n);
    put_str(o, a->spare ? "\",\"spare\":true" : "\",\"spare\":false");
    field_u64(o, "free_pools", a->free_pools, 0);
    put_str(o, ",\"pools\":[");
    w->pools = 0;
    /* pool_entry writes unchecked: room for the longest entry of each pool */
    if (o->err == 0)
        o->err = http_body_reserve(o->b, (size_t)a->pools * POOL_ENTRY_MAX);
    return o->err;
}

/* Writes v in decimal at at; returns the end. */
static char *write_u32(char *at, uint32_t v)
{
    char digits[10];
    size_t n = 0;
    do {
        digits[sizeof(digits) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    memcpy(at, digits + sizeof(digits) - n, n);
    return at + n;
}

/* One pool entry, written straight into the room arena_entry reserved. */
static int pool_entry(void *arg, const heap_pool_info_t *p)
{
    arena_walk_t *w = arg;
    http_body_t *b = w->o->b;
    if (w->o->err != 0)
        return w->o->err;
    char *at = b->data + b->len;
    if (w->pools++ != 0)
        *at++ = ',';
    *at++ = '[';
    *at++ = (char)('0' + p->state);
    *at++ = ',';
    at = write_u32(at, p->size_class);
    *at++ = ',';
    at = write_u32(at, p->used);
    *at++ = ',';
    at = write_u32(at, p->capacity);
    *at++ = ']';
    b->len = (size_t)(at - b->data);
    return 0;
}

static void render_arenas(out_t *o, const heap_t *heap, const heap_stats_t *s)
{
    /* Room for every entry up front, so that the buffer grows once. */
    size_t pools = (size_t)s->arenas * (s->arena_size / s->pool_size);
    if (o->err == 0)
        o->err = http_body_reserve(o->b, pools * POOL_ENTRY_MAX + (size_t)s->arenas * 80 + 64);
    put_str(o, ",\"arenas\":[");
    arena_walk_t w = {o, 0, 0};
    heap_walk(heap, arena_entry, pool_entry, &w);
    put_str(o, w.arenas > 0 ? "]}]" : "]");
}

/* ---- the collector and the objects ---- */

static void render_gc(out_t *o, const gc_stats_t *s)
{
    put_str(o, ",\"gc\":{\"generations\":[");
    for (unsigned g = 0; g < GC_NGENERATIONS; g++) {
        const gc_generation_stats_t *st = &s->generations[g];
        put_str(o, g == 0 ? "{" : ",{");
        field_u64(o, "count", st->count, 1);
        field_u64(o, "threshold", st->threshold, 0);
        field_u64(o, "tracked", st->tracked, 0);
        field_u64(o, "collections_total", st->collections, 0);
        field_u64(o, "collected_total", st->collected, 0);
        field_u64(o, "uncollectable_total", st->uncollectable, 0);
        field_u64(o, "pause_count", st->pause_count, 0);
        field_u64(o, "pause_sum_ns", st->pause_sum_ns, 0);
        put_str(o, ",\"last_pauses_ns\":[");
        uint64_t nlast = st->pause_count < GC_LAST_PAUSES ? st->pause_count : GC_LAST_PAUSES;
        for (uint64_t i = 0; i < nlast; i++) {
            if (i > 0)
                put_raw(o, ",", 1);
            put_u64(o, st->last_pauses_ns[i]);
        }
        put_str(o, "],\"pause_le_ns\":[");
        for (unsigned i = 0; i < GC_PAUSE_NBUCKETS; i++) {
            if (i > 0)
                put_raw(o, ",", 1);
            put_u64(o, gc_pause_bounds_ns[i]);
        }
        put_str(o, "],\"pause_buckets\":[");
        for (unsigned i = 0; i < GC_PAUSE_NBUCKETS; i++) {
            if (i > 0)
                put_raw(o, ",", 1);
            put_u64(o, st->pause_buckets[i]);
        }
        put_str(o, "]}");
    }
    put_raw(o, "]", 1);
    field_u64(o, "frozen", s->frozen, 0);
    field_u64(o, "long_lived_total", s->long_lived_total, 0);
    field_u64(o, "long_lived_pending", s->long_lived_pending, 0);
    put_raw(o, "}", 1);
}

typedef struct type_walk {
    out_t *o;
    unsigned ntypes;
} type_walk_t;

static int type_entry(const obj_type_stats_t *st, void *arg)
{
    type_walk_t *w = arg;
    out_t *o = w->o;
    put_str(o, w->ntypes++ == 0 ? "{\"type\":" : ",{\"type\":");
    put_json_string(o, st->type->name);
    field_u64(o, "live", st->live, 0);
    field_u64(o, "created_total", st->created, 0);
    field_u64(o, "destroyed_total", st->destroyed, 0);
    put_raw(o, "}", 1);
    return 0;
}

/* ---- the page and the answer ---- */

int heapview_render_page(http_body_t *body)
{
    return http_body_append(body, heapview_page, heapview_page_len);
}

int heapview_render_json(const metrics_snapshot_t *s, int64_t now_ms, http_body_t *body)
{
    if (s->heap == NULL)
        return -EINVAL;
    out_t o = {body, 0};
    heap_stats_t hs;
    heap_get_stats(s->heap, &hs);
    gc_stats_t gs;
    gc_get_stats(s->heap, &gs);

    put_str(&o, "{\"version\":");
    put_json_string(&o, s->version != NULL ? s->version : "");
    field_u64(&o, "time_ms", now_ms > 0 ? (uint64_t)now_ms : 0, 0);
    render_heap(&o, &hs);
    render_arenas(&o, s->heap, &hs);
    render_gc(&o, &gs);
    put_str(&o, ",\"objects\":[");
    type_walk_t tw = {&o, 0};
    obj_type_foreach(s->heap, type_entry, &tw);
    put_str(&o, "],\"ticks\":{");
    field_u64(&o, "trade_total", s->ticks_total[0], 1);
    field_u64(&o, "quote_total", s->ticks_total[1], 0);
    put_str(&o, "},\"pubsub\":{");
    field_u64(&o, "clients", s->pubsub.clients, 1);
    field_u64(&o, "subscriptions", s->pubsub.subscriptions, 0);
    field_u64(&o, "messages_sent_total", s->pubsub.messages_sent_total, 0);
    field_u64(&o, "output_buffer_bytes", s->pubsub.output_buffer_bytes, 0);
    field_u64(&o, "slow_consumer_disconnects_total", s->pubsub.slow_consumer_disconnects_total, 0);
    put_str(&o, "}}\n");
    return o.err;
}

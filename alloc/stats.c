/*
 * stats.c - what the heap reports about itself.
 *
 * heap_get_stats() derives everything from counters the slow paths keep
 * (per class: pools, full pools; per heap: arenas and large blocks), the
 * allocation count of each class, and the `used` count in the header of
 * every pool in use: one cache line per pool, never a walk of the blocks.
 * The free path counts nothing: a block in its class's free cache is still
 * in its pool's `used`, so the class's live blocks are those counts less the
 * cache's depth.
 *
 * heap_walk() reports the same picture arena by arena and pool by pool (for
 * the /debug/heap page): each pool's live count is its header's, less the
 * head pool's bias and the blocks of it in its class's free cache (counted
 * per pool in a small table first, so that a pool costs one probe).
 *
 * heap_format_stats() prints the report in the spirit of CPython's
 * sys._debugmallocstats(): the size-class table, the arena counts, and the
 * byte breakdown whose lines add up exactly to the mapped total.
 *
 * heap_check() is the opposite of cheap: it walks every pool and free list
 * and checks that the counters tell the truth. Tests call it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc/internal.h"

void heap_get_stats(const heap_t *heap, heap_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->arena_size = heap->arena_size;
    out->pool_size = heap->pool_size;
    out->arenas = heap->narenas;
    out->arenas_highwater = heap->narenas_highwater;
    out->arenas_allocated = heap->arenas_allocated;
    out->arenas_released = heap->arenas_released;
    out->mapped_bytes = (size_t)heap->narenas * heap->arena_size;
    out->mapped_bytes_peak = heap->mapped_peak;
    out->large_allocs = heap->large_allocs;
    out->large_frees = heap->large_frees;
    out->large_bytes = heap->large_bytes;
    out->large_bytes_peak = heap->large_bytes_peak;

    /* Live blocks per class, from the header of every pool in use (the
     * head's count includes its bias). */
    uint64_t live[HEAP_NCLASSES] = {0};
    for (const heap_arena_t *a = heap->all; a != NULL; a = a->all_next) {
        if (a == heap->spare)
            continue;
        for (uint32_t i = 0; i < a->ncarved; i++) {
            const heap_pool_t *p = (const heap_pool_t *)(a->base + (uintptr_t)i * heap->pool_size);
            if (p->state != HEAP_POOL_EMPTY)
                live[p->szidx] += p->used - (heap->classes[p->szidx].pool == p);
        }
    }

    size_t pools_in_use = 0;
    for (unsigned i = 0; i < HEAP_NCLASSES; i++) {
        const heap_class_t *cls = &heap->classes[i];
        heap_class_stats_t *cs = &out->classes[i];
        cs->block_size = cls->block_size;
        cs->allocs = cls->allocs;
        cs->used_blocks = live[i] - heap__cached(cls); /* cached blocks are free */
        cs->frees = cls->allocs - cs->used_blocks;
        cs->free_blocks = (uint64_t)cls->npools * cls->blocks_per_pool - cs->used_blocks;
        cs->pools = cls->npools;
        cs->full_pools = cls->nfull;
        out->pools_used += cls->npools - cls->nfull;
        out->pools_full += cls->nfull;
        out->used_bytes += cs->used_blocks * cls->block_size;
        out->available_bytes += cs->free_blocks * cls->block_size;
        out->quantization_bytes +=
            (size_t)cls->npools *
            (heap->pool_size - HEAP_POOL_FIRST - (size_t)cls->blocks_per_pool * cls->block_size);
        pools_in_use += cls->npools;
    }
    for (const heap_arena_t *a = heap->all; a != NULL; a = a->all_next)
        out->pools_empty += a == heap->spare ? a->ntotalpools : a->nfreepools;
    out->empty_pool_bytes = (size_t)out->pools_empty * heap->pool_size;
    out->pool_header_bytes = pools_in_use * sizeof(heap_pool_t);
    out->alignment_bytes = pools_in_use * (HEAP_POOL_FIRST - sizeof(heap_pool_t));
}

/* The free caches' blocks counted per pool, for heap_walk(): an
 * open-addressing table keyed by pool address, filled once per walk, so that
 * each pool costs one probe. It holds at most HEAP_NCLASSES *
 * (1 + HEAP_STACK_SLOTS) pools (2,080: about half full), and lives on the
 * walker's stack (36 KiB). */
#define CACHE_TABLE_SLOTS 4096
_Static_assert(CACHE_TABLE_SLOTS > HEAP_NCLASSES * (1 + HEAP_STACK_SLOTS),
               "every cached block's pool has a slot");
_Static_assert(1 + HEAP_STACK_SLOTS <= UINT8_MAX, "a pool's cached blocks fit a byte");

typedef struct cache_table {
    uintptr_t pool[CACHE_TABLE_SLOTS]; /* 0: empty */
    uint8_t n[CACHE_TABLE_SLOTS];      /* blocks of that pool in its class's cache */
} cache_table_t;

static size_t cache_slot(const cache_table_t *t, uintptr_t pool, size_t pool_size)
{
    size_t i = (size_t)((pool / pool_size) * 0x9e3779b97f4a7c15u >> 52) & (CACHE_TABLE_SLOTS - 1);
    while (t->pool[i] != 0 && t->pool[i] != pool)
        i = (i + 1) & (CACHE_TABLE_SLOTS - 1);
    return i;
}

static void cache_count(cache_table_t *t, const heap_t *heap, const void *block)
{
    uintptr_t pool = (uintptr_t)block & heap->pool_mask;
    size_t i = cache_slot(t, pool, heap->pool_size);
    t->pool[i] = pool;
    t->n[i]++;
}

static heap_pool_info_t pool_info(const heap_t *heap, const cache_table_t *cache,
                                  const heap_arena_t *a, uint32_t i)
{
    heap_pool_info_t info = {.index = i, .state = HEAP_POOL_EMPTY};
    if (a == heap->spare || i >= a->ncarved)
        return info;
    const heap_pool_t *p = (const heap_pool_t *)(a->base + (uintptr_t)i * heap->pool_size);
    if (p->state == HEAP_POOL_EMPTY)
        return info;
    const heap_class_t *cls = &heap->classes[p->szidx];
    info.state = p->state;
    info.size_class = p->szidx;
    info.capacity = cls->blocks_per_pool;
    info.used = p->used - (cls->pool == p);
    if (cls->bottom != NULL)
        info.used -= cache->n[cache_slot(cache, (uintptr_t)p, heap->pool_size)];
    return info;
}

int heap_walk(const heap_t *heap, int (*arena)(void *arg, const heap_arena_info_t *a),
              int (*pool)(void *arg, const heap_pool_info_t *p), void *arg)
{
    cache_table_t table;
    cache_table_t *cache = &table;
    memset(cache, 0, sizeof(*cache));
    for (unsigned c = 0; pool != NULL && c < HEAP_NCLASSES; c++) {
        const heap_class_t *cls = &heap->classes[c];
        if (cls->bottom == NULL)
            continue;
        cache_count(cache, heap, cls->bottom);
        for (uint32_t i = 0; i < cls->nstack; i++)
            cache_count(cache, heap, heap->stack[c][i]);
    }
    for (const heap_arena_t *a = heap->all; a != NULL; a = a->all_next) {
        int spare = a == heap->spare;
        heap_arena_info_t ai = {
            .base = a->base,
            .pools = a->ntotalpools,
            .free_pools = spare ? a->ntotalpools : a->nfreepools,
            .spare = spare,
        };
        int r = arena != NULL ? arena(arg, &ai) : 0;
        for (uint32_t i = 0; r == 0 && pool != NULL && i < a->ntotalpools; i++) {
            heap_pool_info_t pi = pool_info(heap, cache, a, i);
            r = pool(arg, &pi);
        }
        if (r != 0)
            return r;
    }
    return 0;
}

/* snprintf into a bounded buffer, remembering the length a full report
 * needs. */
typedef struct out {
    char *buf;
    size_t len;
    size_t need;
} out_t;

__attribute__((format(printf, 2, 3))) static void put(out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->need < o->len ? o->len - o->need : 0;
    int n = vsnprintf(room ? o->buf + o->need : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->need += (size_t)n;
}

/* v with thousands separators, CPython style. */
static const char *commas(char *dst, size_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%zu", v);
    int j = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            dst[j++] = ',';
        dst[j++] = tmp[i];
    }
    dst[j] = '\0';
    return dst;
}

static void put_line(out_t *o, const char *label, size_t v)
{
    char num[40];
    put(o, "%-40s= %21s\n", label, commas(num, v));
}

size_t heap_format_stats(const heap_t *heap, char *buf, size_t len)
{
    out_t o = {buf, len, 0};
    heap_stats_t s;
    heap_get_stats(heap, &s);
    char label[64];

    if (len > 0)
        buf[0] = '\0';
    put(&o, "Small block threshold = %d, in %d size classes.\n\n", HEAP_SMALL_MAX,
        (int)HEAP_NCLASSES);
    put(&o, "class   size   num pools   full pools   blocks in use   avail blocks   "
            "allocations total\n");
    put(&o, "-----   ----   ---------   ----------   -------------   ------------   "
            "-----------------\n");
    for (unsigned i = 0; i < HEAP_NCLASSES; i++) {
        const heap_class_stats_t *c = &s.classes[i];
        if (c->pools == 0 && c->allocs == 0)
            continue;
        put(&o, "%5u %6zu %11u %12u %15llu %14llu %19llu\n", i, c->block_size, c->pools,
            c->full_pools, (unsigned long long)c->used_blocks, (unsigned long long)c->free_blocks,
            (unsigned long long)c->allocs);
    }
    put(&o, "\n");
    put_line(&o, "# arenas allocated total", s.arenas_allocated);
    put_line(&o, "# arenas released total", s.arenas_released);
    put_line(&o, "# arenas highwater mark", s.arenas_highwater);
    put_line(&o, "# arenas allocated current", s.arenas);
    snprintf(label, sizeof(label), "%u arenas * %zu bytes/arena", s.arenas, s.arena_size);
    put_line(&o, label, s.mapped_bytes);
    put(&o, "\n");
    put_line(&o, "# bytes in allocated blocks", s.used_bytes);
    put_line(&o, "# bytes in available blocks", s.available_bytes);
    snprintf(label, sizeof(label), "%u unused pools * %zu bytes", s.pools_empty, s.pool_size);
    put_line(&o, label, s.empty_pool_bytes);
    put_line(&o, "# bytes lost to pool headers", s.pool_header_bytes);
    put_line(&o, "# bytes lost to alignment", s.alignment_bytes);
    put_line(&o, "# bytes lost to quantization", s.quantization_bytes);
    put_line(&o, "Total",
             s.used_bytes + s.available_bytes + s.empty_pool_bytes + s.pool_header_bytes +
                 s.alignment_bytes + s.quantization_bytes);
    put(&o, "\n");
    put_line(&o, "# pools used", s.pools_used);
    put_line(&o, "# pools full", s.pools_full);
    put_line(&o, "# pools empty", s.pools_empty);
    put(&o, "\n");
    put_line(&o, "# large blocks allocated total", s.large_allocs);
    put_line(&o, "# large blocks freed total", s.large_frees);
    put_line(&o, "# bytes in large blocks", s.large_bytes);
    put_line(&o, "# bytes in large blocks, peak", s.large_bytes_peak);

    put(&o, "\narena               pools in use   free pools\n");
    for (const heap_arena_t *a = heap->all; a != NULL; a = a->all_next) {
        if (a == heap->spare)
            put(&o, "%#-18lx  %12s %12u   (spare)\n", (unsigned long)a->base, "-", a->ntotalpools);
        else
            put(&o, "%#-18lx  %12u %12u\n", (unsigned long)a->base, a->ntotalpools - a->nfreepools,
                a->nfreepools);
    }
    return o.need;
}

/* heap_check */

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t whylen, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (whylen > 0)
        vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -EFAULT;
}

/* Length of pool's free list, reading the links under ASan's poison. */
static size_t free_list_length(const heap_pool_t *pool, size_t limit)
{
    size_t n = 0;
    size_t bsize = heap_class_size(pool->szidx);
    for (heap_block_t *b = pool->freeblock; b != NULL && n <= limit; n++) {
        heap__unpoison(b, sizeof(*b));
        heap_block_t *next = b->next;
        heap__poison(b, bsize);
        b = next;
    }
    return n;
}

/* What the walk finds, per size class. */
typedef struct found {
    uint32_t full[HEAP_NCLASSES];   /* FULL pools */
    uint32_t used[HEAP_NCLASSES];   /* USED and CACHED pools */
    uint32_t cached[HEAP_NCLASSES]; /* CACHED pools */
    uint64_t live[HEAP_NCLASSES];   /* live blocks */
} found_t;

static int check_pool(const heap_t *heap, const heap_pool_t *pool, found_t *n, char *why,
                      size_t whylen)
{
    if (pool->szidx >= HEAP_NCLASSES)
        return fail(why, whylen, "pool %p: size class %u", (const void *)pool, pool->szidx);
    const heap_class_t *cls = &heap->classes[pool->szidx];
    if (pool->cls != cls)
        return fail(why, whylen, "pool %p: class pointer %p, yet size class %u", (const void *)pool,
                    (const void *)pool->cls, pool->szidx);
    size_t carved = (pool->nextoffset - HEAP_POOL_FIRST) / cls->block_size;
    size_t nfree = free_list_length(pool, cls->blocks_per_pool);
    uint32_t bias = cls->pool == pool; /* the head counts one extra */
    if (pool->used < bias || (!bias && pool->used == 0 && pool->state != HEAP_POOL_CACHED))
        return fail(why, whylen, "pool %p: not EMPTY, yet no block in use", (const void *)pool);
    if (carved > cls->blocks_per_pool || pool->used - bias + nfree != carved)
        return fail(why, whylen, "pool %p: %u used + %zu free != %zu carved (of %u)",
                    (const void *)pool, pool->used - bias, nfree, carved, cls->blocks_per_pool);
    n->live[pool->szidx] += pool->used - bias;
    if (pool->state == HEAP_POOL_CACHED) {
        if (pool->used != 0 || heap->classes[pool->szidx].cached != pool)
            return fail(why, whylen, "pool %p: CACHED but not its class's cache, or in use",
                        (const void *)pool);
        n->used[pool->szidx]++;
        n->cached[pool->szidx]++;
    } else if (pool->state == HEAP_POOL_FULL) {
        if (pool->freeblock != NULL || carved != cls->blocks_per_pool)
            return fail(why, whylen, "pool %p: FULL with free blocks", (const void *)pool);
        n->full[pool->szidx]++;
    } else if (pool->freeblock == NULL) {
        return fail(why, whylen, "pool %p: USED with an empty free list", (const void *)pool);
    } else {
        n->used[pool->szidx]++;
    }
    return 0;
}

static int check_arena(const heap_t *heap, const heap_arena_t *a, found_t *n, char *why,
                       size_t whylen)
{
    if (!heap_owns(heap, (const void *)a->base))
        return fail(why, whylen, "arena %#lx: not in the arena map", (unsigned long)a->base);
    size_t nempty = a->ntotalpools - a->ncarved;
    for (const heap_pool_t *p = a->freepools; p != NULL; p = p->nextpool) {
        if (p->state != HEAP_POOL_EMPTY || p->arena != a)
            return fail(why, whylen, "arena %#lx: free pool %p is not EMPTY",
                        (unsigned long)a->base, (const void *)p);
        if (++nempty > a->ntotalpools)
            return fail(why, whylen, "arena %#lx: free pool list loops", (unsigned long)a->base);
    }
    if (nempty != a->nfreepools)
        return fail(why, whylen, "arena %#lx: nfreepools %u, counted %zu", (unsigned long)a->base,
                    a->nfreepools, nempty);
    for (uint32_t i = 0; i < a->ncarved; i++) {
        const heap_pool_t *p = (const heap_pool_t *)(a->base + (uintptr_t)i * heap->pool_size);
        if (p->state == HEAP_POOL_EMPTY)
            continue;
        if (p->arena != a)
            return fail(why, whylen, "pool %p: wrong arena", (const void *)p);
        int err = check_pool(heap, p, n, why, whylen);
        if (err != 0)
            return err;
    }
    return 0;
}

/* Is b a block of class idx in a pool that counts it in use? */
static int is_cachable(const heap_t *heap, unsigned idx, const heap_block_t *b)
{
    const heap_pool_t *pool = (const heap_pool_t *)((uintptr_t)b & heap->pool_mask);
    return heap_owns(heap, b) && pool->szidx == idx &&
           (pool->state == HEAP_POOL_USED || pool->state == HEAP_POOL_FULL) &&
           ((uintptr_t)b - (uintptr_t)pool - HEAP_POOL_FIRST) % heap->classes[idx].block_size == 0;
}

/* Every block in class idx's free cache is in a pool of that class that
 * counts it in use, and is there once; the stack stands on the bottom. */
static int check_cache(const heap_t *heap, unsigned idx, char *why, size_t whylen)
{
    const heap_class_t *cls = &heap->classes[idx];
    if (cls->nstack > HEAP_STACK_SLOTS)
        return fail(why, whylen, "class %u: %u blocks on a stack of %d", idx, cls->nstack,
                    HEAP_STACK_SLOTS);
    if (cls->bottom == NULL) {
        if (cls->nstack != 0)
            return fail(why, whylen, "class %u: %u blocks on the free stack, none at the bottom",
                        idx, cls->nstack);
        return 0;
    }
    if (!is_cachable(heap, idx, cls->bottom))
        return fail(why, whylen, "class %u: cached block %p is not a block in use of the class",
                    idx, (const void *)cls->bottom);
    for (uint32_t i = 0; i < cls->nstack; i++) {
        const heap_block_t *b = heap->stack[idx][i];
        if (!is_cachable(heap, idx, b))
            return fail(why, whylen, "class %u: cached block %p is not a block in use of the class",
                        idx, (const void *)b);
        if (b == cls->bottom)
            return fail(why, whylen, "class %u: block %p is in the free cache twice", idx,
                        (const void *)b);
        for (uint32_t j = 0; j < i; j++)
            if (heap->stack[idx][j] == b)
                return fail(why, whylen, "class %u: block %p is in the free cache twice", idx,
                            (const void *)b);
    }
    return 0;
}

static int check_order(const heap_t *heap, char *why, size_t whylen)
{
    uint32_t prev = 0;
    for (const heap_arena_t *a = heap->usable; a != NULL; a = a->next) {
        if (a->nfreepools == 0 || a->nfreepools < prev)
            return fail(why, whylen, "usable arenas out of order at %#lx (%u after %u)",
                        (unsigned long)a->base, a->nfreepools, prev);
        if ((a->next == NULL || a->next->nfreepools != a->nfreepools) &&
            heap->nfp2last[a->nfreepools] != a)
            return fail(why, whylen, "nfp2last[%u] is not arena %#lx", a->nfreepools,
                        (unsigned long)a->base);
        prev = a->nfreepools;
    }
    return 0;
}

int heap_check(const heap_t *heap, char *why, size_t whylen)
{
    static const found_t zero;
    found_t n = zero;
    uint32_t narenas = 0;
    for (const heap_arena_t *a = heap->all; a != NULL; a = a->all_next) {
        narenas++;
        if (a == heap->spare)
            continue;
        int err = check_arena(heap, a, &n, why, whylen);
        if (err != 0)
            return err;
    }
    if (narenas != heap->narenas)
        return fail(why, whylen, "%u arenas listed, %u counted", narenas, heap->narenas);
    for (unsigned i = 0; i < HEAP_NCLASSES; i++) {
        const heap_class_t *cls = &heap->classes[i];
        uint32_t listed = 0;
        const heap_pool_t *p = cls->pool == &heap->sentinel ? NULL : cls->pool;
        for (; p != NULL && listed <= n.used[i]; p = p->nextpool) {
            if (p->state != HEAP_POOL_USED || p->szidx != i)
                return fail(why, whylen, "class %u: pool %p on its list is not USED", i,
                            (const void *)p);
            listed++;
        }
        int err = check_cache(heap, i, why, whylen);
        if (err != 0)
            return err;
        uint64_t cached = heap__cached(cls);
        if (n.live[i] < cached || n.live[i] - cached > cls->allocs)
            return fail(why, whylen,
                        "class %u: pools count %llu blocks in use, %u of them cached, and only "
                        "%llu were ever allocated",
                        i, (unsigned long long)n.live[i], (unsigned)cached,
                        (unsigned long long)cls->allocs);
        if (n.full[i] != cls->nfull || n.used[i] + n.full[i] != cls->npools ||
            listed + n.cached[i] != n.used[i])
            return fail(why, whylen,
                        "class %u: %u used (%u listed) + %u full pools found, counters say "
                        "%u pools, %u full",
                        i, n.used[i], listed, n.full[i], cls->npools, cls->nfull);
    }
    return check_order(heap, why, whylen);
}

int heap__is_valid(const heap_t *heap)
{
    char why[256];
    if (heap_check(heap, why, sizeof(why)) == 0)
        return 1;
    fprintf(stderr, "tickd: heap: heap_check: %s\n", why);
    return 0;
}

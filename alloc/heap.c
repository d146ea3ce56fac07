/*
 * heap.c - the heap object, and the paths the inline fast paths fall to.
 *
 * The design, in the manner of CPython's Objects/obmalloc.c:
 *
 * Market data is millions of small, short-lived objects of a few sizes
 * (ticks, orders, encoded payloads). The system allocator is general; we are
 * not. A heap serves requests of 1..512 bytes from *blocks* of 32 size
 * classes, 16 bytes apart. Blocks of one class live in a *pool*, a 16 KiB
 * page with a 64-byte header; pools live in *arenas*, 1 MiB regions mapped
 * from the OS and aligned to their own size. Because pools are aligned to
 * their size, the pool of any block is `block & ~(pool_size - 1)`: free needs
 * no size and no search.
 *
 * Allocation pops the class's free cache (below) when it holds a block, and
 * otherwise looks at one place: the first non-full pool of the class. It
 * pops the head of that pool's free list, a LIFO of blocks given back (the
 * most recently freed block is the one still in cache). When the free list
 * runs dry the pool carves the next never-used block from its tail (blocks
 * are only touched when first needed), and when nothing is left to carve the
 * pool is FULL and leaves the class list. A class with no pool takes an
 * empty one from an arena.
 *
 * A freed block goes on its class's *free cache*, 65 pointers in the heap
 * object, which allocation pops, newest first, before it looks at a pool. A
 * tick queue or an order book frees a block and soon asks for one of the
 * same size: it gets the block it gave back last, still in cache, and
 * neither call reads more of a pool header than its class pointer or writes
 * into a free block (the cache holds the pointers). The cache's bottom entry has a
 * slot of its own beside the class's counters, and the other 64 are a stack
 * with a count: a free followed at once by an allocation, the commonest
 * pattern, keeps the cache one deep and touches that slot alone, so neither
 * call waits on a count the other just wrote (types.h, heap_class_t). When
 * the stack fills, the oldest half of the cache goes home, to the pools'
 * free lists, in one batch; heap_flush() and heap_trim() send everything
 * home. A cached block is free for every report (stats.c), though its pool
 * still counts it in `used`: a pool goes back to its arena only once its
 * blocks have left the cache, so at most 65 blocks per class stand between
 * a burst's free and the memory's return.
 *
 * Going home, a block is pushed on its pool's free list. A FULL pool that gets a
 * block back rejoins its class list right behind the head; a pool whose last block
 * comes back is EMPTY and returns to its arena, unless it is the head of its
 * class list, the pool allocation pops from (pool.c explains the bias that
 * keeps a block allocated and freed in a loop on the fast path). A class also
 * keeps one emptied pool, free list intact, to take up again when its list
 * runs out: a queue of blocks that crosses pool boundaries then costs no
 * arena work. Those two idle pools per class, and the pools of the blocks in
 * its free cache, are all a heap keeps of a burst once it is freed; heap_trim()
 * gives them back too (the daemon calls it on every cycle-sweep tick), and
 * then nothing but the spare stays mapped.
 *
 * Arenas with empty pools are kept sorted by how many they have, fewest
 * first, and new pools come from the front: allocation packs into the
 * fullest arenas and leaves the nearly empty ones to drain. This is where
 * tickd differs from CPython in effect, not idea: an arena whose last pool
 * comes back is returned to the OS at once, except one spare that is kept
 * mapped (its pages released with madvise) so that a workload hovering at an
 * arena boundary does not map and unmap on every swing. After a burst and a
 * heap_trim() the resident size falls back to within about an arena of where
 * it was.
 *
 * Requests over 512 bytes go to malloc and are recorded in a small hash set,
 * so they can be counted, listed and told apart from foreign pointers. A pointer is ours if
 * its arena's bit is set in a bitmap indexed by `ptr >> HEAP_MAP_SHIFT`;
 * anything else must be in the large-block set, or it is foreign and fatal;
 * neither test reads the memory the pointer points at.
 *
 * Debug mode (heap option or TICKD_ALLOC_DEBUG=1) routes every request
 * through debug.c: blocks get guard bytes and fill patterns and every free is
 * checked. Under AddressSanitizer free blocks are poisoned in every mode.
 *
 * A heap belongs to one thread (one event loop); nothing here locks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/internal.h"

void heap__fatal(const char *fmt, ...)
{
    va_list ap;
    fputs("tickd: heap: fatal: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

static int is_pow2_in(size_t v, size_t lo, size_t hi)
{
    return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

void heap_options_init(heap_options_t *opts)
{
    opts->arena_size = HEAP_ARENA_SIZE_DEFAULT;
    opts->pool_size = HEAP_POOL_SIZE_DEFAULT;
    opts->debug = HEAP_DEBUG_FROM_ENV;
}

static int debug_from_env(void)
{
    const char *v = getenv(HEAP_DEBUG_ENV);
    return v != NULL && strcmp(v, "1") == 0;
}

int heap_create(const heap_options_t *opts, heap_t **out)
{
    heap_options_t o;
    heap_options_init(&o);
    if (opts != NULL) {
        if (opts->arena_size != 0)
            o.arena_size = opts->arena_size;
        if (opts->pool_size != 0)
            o.pool_size = opts->pool_size;
        o.debug = opts->debug;
    }
    if (!is_pow2_in(o.arena_size, HEAP_ARENA_SIZE_MIN, HEAP_ARENA_SIZE_MAX) ||
        !is_pow2_in(o.pool_size, HEAP_POOL_SIZE_MIN, HEAP_POOL_SIZE_MAX))
        return -EINVAL;

    heap_t *heap;
    if (posix_memalign((void **)&heap, 64, sizeof(*heap)) != 0)
        return -ENOMEM;
    memset(heap, 0, sizeof(*heap));
    heap->arena_size = o.arena_size;
    heap->pool_size = o.pool_size;
    heap->pool_mask = ~(uintptr_t)(o.pool_size - 1);
    heap->debug = o.debug == HEAP_DEBUG_FROM_ENV ? debug_from_env() : o.debug != 0;
    heap->fast_limit = heap->debug ? 0 : HEAP_SMALL_MAX;
    for (unsigned i = 0; i < HEAP_NCLASSES; i++) {
        heap_class_t *cls = &heap->classes[i];
        cls->pool = &heap->sentinel;
        cls->block_size = (uint32_t)heap_class_size(i);
        cls->blocks_per_pool = (uint32_t)((o.pool_size - HEAP_POOL_FIRST) / cls->block_size);
    }
    size_t npools = o.arena_size / o.pool_size;
    heap->nfp2last = calloc(npools + 1, sizeof(*heap->nfp2last));
    int err = heap->nfp2last == NULL ? -ENOMEM : arena__map_init(heap);
    if (err != 0) {
        arena__release_all(heap);
        free(heap->nfp2last);
        free(heap);
        return err;
    }
    *out = heap;
    return 0;
}

void heap_destroy(heap_t *heap)
{
    if (heap == NULL)
        return;
    TICKD_ASSERT(heap->rt == NULL && "obj_runtime_destroy() comes before heap_destroy()");
    for (size_t i = 0; i < heap->large_cap; i++)
        free((void *)heap->large[i].addr);
    free(heap->large);
    arena__release_all(heap);
    free(heap->nfp2last);
    free(heap);
}

/* Puts a block from a free cache on its pool's free list, as a free
 * without the cache would have (heap__free_block, state changes included). */
static void block_home(heap_t *heap, heap_block_t *block)
{
    heap__unpoison(block, sizeof(*block));
    heap__free_block(heap, (heap_pool_t *)((uintptr_t)block & heap->pool_mask), block);
}

/* Sends the count oldest blocks of class idx's free cache home, the bottom
 * first; the oldest block left, if any, becomes the bottom. count is at
 * least 1 and at most the blocks cached. */
static void cache_drain(heap_t *heap, unsigned idx, uint32_t count)
{
    heap_class_t *cls = &heap->classes[idx];
    TICKD_ASSERT(cls->bottom != NULL && count >= 1 && count <= heap__cached(cls));
    heap_block_t **stack = heap->stack[idx];
    block_home(heap, cls->bottom);
    for (uint32_t i = 0; i + 1 < count; i++)
        block_home(heap, stack[i]);
    uint32_t left = cls->nstack - (count - 1);
    if (left == 0) {
        cls->bottom = NULL;
        cls->nstack = 0;
        return;
    }
    cls->bottom = stack[count - 1];
    cls->nstack = left - 1;
    memmove(stack, stack + count, cls->nstack * sizeof(*stack));
}

uint32_t heap__stack_spill(heap_t *heap, unsigned idx)
{
    cache_drain(heap, idx, HEAP_STACK_SLOTS / 2);
    return heap->classes[idx].nstack;
}

void heap_flush(heap_t *heap)
{
    for (unsigned i = 0; i < HEAP_NCLASSES; i++) {
        const heap_class_t *cls = &heap->classes[i];
        if (cls->bottom != NULL)
            cache_drain(heap, i, cls->nstack + 1);
    }
}

void *heap__alloc_small(heap_t *heap, unsigned idx)
{
    heap_class_t *cls = &heap->classes[idx];
    heap_pool_t *pool = cls->pool;
    if (pool->freeblock == NULL) {
        pool = pool__new_head(heap, idx);
        if (pool == NULL)
            return NULL;
    }
    TICKD_ASSERT(pool->state == HEAP_POOL_USED && pool->freeblock != NULL);
    heap_block_t *block = pool->freeblock;
    heap__unpoison(block, cls->block_size);
    heap_block_t *next = block->next;
    pool->freeblock = next;
    pool->used++;
    cls->allocs++;
    if (next == NULL)
        heap__pool_refill(heap, pool);
    return block;
}

void heap_trim(heap_t *heap)
{
    heap_flush(heap);
    for (unsigned i = 0; i < HEAP_NCLASSES; i++)
        pool__trim(heap, i);
    TICKD_ASSERT(heap__is_valid(heap));
}

void *heap_alloc_generic(heap_t *heap, size_t size)
{
    if (heap->debug)
        return debug__alloc(heap, size);
    if (size == 0)
        return heap_alloc(heap, 1); /* the fast path, free cache first */
    if (size > HEAP_SMALL_MAX)
        return heap__large_alloc(heap, size, 0);
    return heap__alloc_small(heap, heap_size_class(size));
}

static size_t large_slot(uintptr_t addr, size_t cap)
{
    return (size_t)(((addr >> 4) * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static int large_grow(heap_t *heap)
{
    size_t cap = heap->large_cap ? heap->large_cap * 2 : 64;
    heap_large_t *table = calloc(cap, sizeof(*table));
    if (table == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < heap->large_cap; i++) {
        if (heap->large[i].addr == 0)
            continue;
        size_t j = large_slot(heap->large[i].addr, cap);
        while (table[j].addr != 0)
            j = (j + 1) & (cap - 1);
        table[j] = heap->large[i];
    }
    free(heap->large);
    heap->large = table;
    heap->large_cap = cap;
    return 0;
}

void *heap__large_alloc(heap_t *heap, size_t size, size_t extra)
{
    if (size > SIZE_MAX - extra)
        return NULL;
    if ((heap->large_count + 1) * 2 > heap->large_cap && large_grow(heap) != 0)
        return NULL;
    void *p = malloc(size + extra);
    if (p == NULL)
        return NULL;
    size_t i = large_slot((uintptr_t)p, heap->large_cap);
    while (heap->large[i].addr != 0)
        i = (i + 1) & (heap->large_cap - 1);
    heap->large[i].addr = (uintptr_t)p;
    heap->large[i].size = size;
    heap->large_count++;
    heap->large_allocs++;
    heap->large_bytes += size;
    if (heap->large_bytes > heap->large_bytes_peak)
        heap->large_bytes_peak = heap->large_bytes;
    return p;
}

heap_large_t *heap__large_find(const heap_t *heap, const void *ptr)
{
    if (heap->large_count == 0 || ptr == NULL)
        return NULL;
    size_t mask = heap->large_cap - 1;
    for (size_t i = large_slot((uintptr_t)ptr, heap->large_cap);; i = (i + 1) & mask) {
        if (heap->large[i].addr == (uintptr_t)ptr)
            return &heap->large[i];
        if (heap->large[i].addr == 0)
            return NULL;
    }
}

void heap__large_free(heap_t *heap, heap_large_t *slot)
{
    size_t mask = heap->large_cap - 1;
    size_t i = (size_t)(slot - heap->large), j = i;
    free((void *)slot->addr);
    heap->large_frees++;
    heap->large_bytes -= slot->size;
    heap->large_count--;
    /* Backward-shift deletion: later members of the probe run move up, so
     * lookups never meet a tombstone. */
    for (;;) {
        heap->large[i].addr = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (heap->large[j].addr == 0)
                return;
            size_t home = large_slot(heap->large[j].addr, heap->large_cap);
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
                break;
        }
        heap->large[i] = heap->large[j];
        i = j;
    }
}

void heap_free_generic(heap_t *heap, void *ptr)
{
    if (ptr == NULL)
        return;
    if (heap->debug) {
        debug__free(heap, ptr);
        return;
    }
    heap_large_t *large = heap__large_find(heap, ptr);
    if (large == NULL)
        heap__fatal("free of foreign pointer %p: not allocated by this heap (%p), or "
                    "already freed",
                    ptr, (void *)heap);
    heap__large_free(heap, large);
}

size_t heap_usable_size(const heap_t *heap, const void *ptr)
{
    if (heap->debug)
        return debug__usable_size(heap, ptr);
    if (heap_owns(heap, ptr)) {
        const heap_pool_t *pool = (const heap_pool_t *)((uintptr_t)ptr & heap->pool_mask);
        return heap_class_size(pool->szidx);
    }
    const heap_large_t *large = heap__large_find(heap, ptr);
    if (large == NULL)
        heap__fatal("usable size of foreign pointer %p", ptr);
    return large->size;
}

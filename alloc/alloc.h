/*
 * alloc.h - tickd's private heap: the public interface of alloc/.
 *
 * A heap is a pymalloc-style small-object allocator owned by one event loop
 * (no global state, no locks). Requests of 1..512 bytes are served from
 * fixed-size blocks in pools of one size class; pools live in arenas mapped
 * from the OS; larger requests go to the system allocator and are counted.
 * alloc/heap.c opens with the design essay; alloc/types.h documents every
 * structure field by field.
 *
 * heap_alloc() and heap_free() are inline: their fast paths are a handful of
 * instructions that fall through to out-of-line *_generic() slow paths for
 * everything else (a class with no usable pool, pool state transitions, large
 * blocks, debug mode, foreign pointers).
 *
 * This is the lower of alloc/'s two layers (the CMake target tickd_heap):
 * refcounted objects and their collector (alloc/object.h, tickd_alloc) sit
 * on top of it, and nothing here calls up into them.
 *
 * Errors are negative errno values. Corruption that debug mode detects
 * (double free, overrun, foreign pointer) is fatal: it prints what happened
 * and where, then aborts.
 */
#ifndef TICKD_ALLOC_H
#define TICKD_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/types.h"

/* Environment variable that turns debug mode on for heaps created with
 * debug = HEAP_DEBUG_FROM_ENV ("1" on, anything else off). */
#define HEAP_DEBUG_ENV "TICKD_ALLOC_DEBUG"

enum heap_debug_mode {
    HEAP_DEBUG_FROM_ENV = -1, /* read HEAP_DEBUG_ENV at heap_create() */
    HEAP_DEBUG_OFF = 0,
    HEAP_DEBUG_ON = 1,
};

typedef struct heap_options {
    size_t arena_size; /* power of two, 256 KiB .. 16 MiB; 0 = 1 MiB */
    size_t pool_size;  /* power of two, 4 KiB .. 64 KiB; 0 = 16 KiB */
    int debug;         /* enum heap_debug_mode */
} heap_options_t;

/* Fills opts with the defaults (1 MiB arenas, 16 KiB pools, debug from env). */
void heap_options_init(heap_options_t *opts);

/* Creates a heap. opts may be NULL for the defaults. Returns 0, -EINVAL for a
 * size that is not a power of two in range, or -ENOMEM. */
int heap_create(const heap_options_t *opts, heap_t **out);

/* Unmaps every arena and frees every large block, live or not. A heap that
 * carries objects has its runtime destroyed first (obj_runtime_destroy(),
 * alloc/object.h): the heap knows nothing of objects. */
void heap_destroy(heap_t *heap);

/* Size class index serving a request of size bytes (1..HEAP_SMALL_MAX). */
static inline unsigned heap_size_class(size_t size)
{
    return (unsigned)((size - 1) >> HEAP_ALIGN_SHIFT);
}

/* Block size of size class idx. */
static inline size_t heap_class_size(unsigned idx)
{
    return ((size_t)idx + 1) << HEAP_ALIGN_SHIFT;
}

void *heap_alloc_generic(heap_t *heap, size_t size);
void heap_free_generic(heap_t *heap, void *ptr);
void heap__pool_refill(heap_t *heap, heap_pool_t *pool);
uint32_t heap__stack_spill(heap_t *heap, unsigned idx);

/* Allocates size bytes, 16-byte aligned. size 0 is served as 1. Returns NULL
 * only when the OS refuses memory. The class's free cache comes first,
 * newest block first (the stack's top, then its bottom slot), then the head
 * pool's free list. */
static inline void *heap_alloc(heap_t *heap, size_t size)
{
    if (HEAP_LIKELY(size - 1 < HEAP_SMALL_MAX && size - 1 < heap->fast_limit)) {
        unsigned idx = heap_size_class(size);
        heap_class_t *cls = &heap->classes[idx];
        heap_block_t *block;
        uint32_t n = cls->nstack;
        if (n != 0) {
            block = heap->stack[idx][n - 1];
            cls->nstack = n - 1;
            cls->allocs++;
            heap__unpoison(block, cls->block_size);
            return block;
        }
        block = cls->bottom;
        if (HEAP_LIKELY(block != NULL)) {
            cls->bottom = NULL;
            cls->allocs++;
            heap__unpoison(block, cls->block_size);
            return block;
        }
        heap_pool_t *pool = cls->pool;
        block = pool->freeblock;
        if (HEAP_LIKELY(block != NULL)) {
            heap__unpoison(block, cls->block_size);
            heap_block_t *next = block->next;
            pool->freeblock = next;
            pool->used++;
            cls->allocs++;
            if (HEAP_UNLIKELY(next == NULL))
                heap__pool_refill(heap, pool);
            return block;
        }
    }
    return heap_alloc_generic(heap, size);
}

/* Is ptr inside one of this heap's arenas in use? One bit test. */
static inline int heap_owns(const heap_t *heap, const void *ptr)
{
    uintptr_t idx = (uintptr_t)ptr >> HEAP_MAP_SHIFT;
    return idx < heap->arena_map_bits && ((heap->arena_map[idx >> 6] >> (idx & 63)) & 1);
}

/* Frees a block from heap_alloc(). NULL is ignored. A pointer this heap does
 * not own is fatal. (The ownership test is heap_owns(), with fast_map_bits
 * as the bound so that debug mode takes the checked path.) The block goes
 * on its class's free cache: into the bottom slot if the cache is empty,
 * else on the stack, a full stack first sending its oldest half home
 * (heap__stack_spill). The free writes nothing into the block and reads
 * nothing of its pool but the class pointer. A block in the bottom slot is
 * the one the class's next allocation hands out, and its caller writes it at
 * once: the free prefetches its line for writing, so that a block freed
 * cold (the oldest of a queue) is in cache by then. */
static inline void heap_free(heap_t *heap, void *ptr)
{
    uintptr_t idx = (uintptr_t)ptr >> HEAP_MAP_SHIFT;
    if (HEAP_LIKELY(idx < heap->fast_map_bits && ((heap->arena_map[idx >> 6] >> (idx & 63)) & 1))) {
        heap_pool_t *pool = (heap_pool_t *)((uintptr_t)ptr & heap->pool_mask);
        heap_class_t *cls = pool->cls;
        heap__poison(ptr, cls->block_size);
        if (HEAP_LIKELY(cls->bottom == NULL)) {
            cls->bottom = (heap_block_t *)ptr;
            __builtin_prefetch(ptr, 1);
            return;
        }
        unsigned szidx = pool->szidx;
        uint32_t n = cls->nstack;
        if (HEAP_UNLIKELY(n == HEAP_STACK_SLOTS))
            n = heap__stack_spill(heap, szidx);
        heap->stack[szidx][n] = (heap_block_t *)ptr;
        cls->nstack = n + 1;
        return;
    }
    heap_free_generic(heap, ptr);
}

/* Sends every block in the free caches back to its pool's free list; a pool
 * whose last live block was cached goes back to its arena then. After it the
 * pools are as the frees would have left them without the caches.
 * heap_trim() starts with it. */
void heap_flush(heap_t *heap);

/* Gives back to the arenas what the size classes keep for reuse (the blocks
 * in each class's free cache, its cached empty pool, and a head pool with no
 * live block), so that arenas left with nothing in use return to the OS.
 * For a quiet moment (a timer, the end of a burst); the next allocation of a
 * class pays for a new pool. A build with TICKD_ASSERTS (alloc/assert.h)
 * runs heap_check() after it and aborts with what it found wrong. */
void heap_trim(heap_t *heap);

/* Usable size of a live block (its size class, or the large request). */
size_t heap_usable_size(const heap_t *heap, const void *ptr);

/* Whole-heap statistics, from counters and the headers of the pools in use
 * (O(pools in use), one cache line each): cheap enough for every metrics
 * scrape. */
void heap_get_stats(const heap_t *heap, heap_stats_t *out);

/* Calls arena(arg, a) for every mapped arena (the spare included), in the
 * heap's own order, each followed by pool(arg, p) for each of its pools from
 * the base up; either may be NULL. A nonzero return from either stops the
 * walk and is returned; 0 when every arena was visited. Reads one pool
 * header per carved pool and nothing of the spare (its pages stay released):
 * O(pools mapped), plus the class's free cache for a pool whose class caches
 * blocks. The used counts add up to heap_get_stats()'s used_blocks per class.
 * The callbacks must not allocate from or free to this heap. */
int heap_walk(const heap_t *heap, int (*arena)(void *arg, const heap_arena_info_t *a),
              int (*pool)(void *arg, const heap_pool_info_t *p), void *arg);

/* Writes the sys._debugmallocstats()-style report into buf (NUL-terminated,
 * truncated to len). Returns the length the full report needs, excluding the
 * NUL, like snprintf. */
size_t heap_format_stats(const heap_t *heap, char *buf, size_t len);

/* Walks every arena and pool and checks the invariants the counters promise
 * (free-list lengths, pool states, class lists). Returns 0, or -EFAULT and
 * writes what is wrong into why. For tests and debug tooling; O(heap). */
int heap_check(const heap_t *heap, char *why, size_t whylen);

#endif

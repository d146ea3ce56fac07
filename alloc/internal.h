/*
 * internal.h - names shared between the files of alloc/ and nothing else.
 *
 * heap.c owns the heap object and the generic paths; pool.c the pool state
 * machine; arena.c the mappings, the arena map and the arena order;
 * debug.c the checked paths of debug mode; stats.c the reports. The object
 * layer on top (object.c, objtype.c, gc*.c, with runtime.h) uses them too;
 * nothing here uses it.
 */
#ifndef TICKD_ALLOC_INTERNAL_H
#define TICKD_ALLOC_INTERNAL_H

#include "alloc/alloc.h"
#include "alloc/assert.h"

/* Bytes from a pool's start to its first block: the header, rounded up to
 * the block alignment. */
#define HEAP_POOL_FIRST ((sizeof(heap_pool_t) + HEAP_ALIGN - 1) & ~(HEAP_ALIGN - 1))

/* Carving granularity: a refill carves the never-used blocks that start
 * before the next boundary of this many bytes. */
#define HEAP_CARVE_PAGE 4096u

/* Blocks in a class's free cache: the bottom slot and the stack above it. */
static inline uint32_t heap__cached(const heap_class_t *cls)
{
    return (cls->bottom != NULL) + cls->nstack;
}

/* pool.c: the state changes of a pool that got a block back: FULL -> USED
 * when oldhead, its free list before, was NULL; then, if nothing in it is
 * live, back to its arena (or kept as its class's cached pool). */
void heap__pool_transition(heap_t *heap, heap_pool_t *pool, heap_block_t *oldhead);

/* Pushes block on its pool's free list; hands pool state changes (full ->
 * used, used -> empty) to the slow path. A block's way home from a free
 * cache, and the debug path's free. */
static inline void heap__free_block(heap_t *heap, heap_pool_t *pool, heap_block_t *block)
{
    heap_block_t *head = pool->freeblock;
    block->next = head;
    pool->freeblock = block;
    heap__poison(block, heap->classes[pool->szidx].block_size);
    if (HEAP_UNLIKELY(--pool->used == 0 || head == NULL))
        heap__pool_transition(heap, pool, head);
}

/* Prints "tickd: heap: fatal: <message>" on stderr and aborts. */
__attribute__((noreturn, format(printf, 1, 2))) void heap__fatal(const char *fmt, ...);

/* heap.c: pops a block of class idx, taking a new pool when the class has
 * none. NULL when the OS refuses memory. */
void *heap__alloc_small(heap_t *heap, unsigned idx);
/* heap.c: the system-allocator path for requests over HEAP_SMALL_MAX:
 * malloc(size + extra), recorded as a large block of size bytes. */
void *heap__large_alloc(heap_t *heap, size_t size, size_t extra);
/* heap.c: the large-block record of ptr, or NULL when ptr is not a live
 * large block of this heap. Does not touch *ptr. */
heap_large_t *heap__large_find(const heap_t *heap, const void *ptr);
/* heap.c: frees the block and forgets it. */
void heap__large_free(heap_t *heap, heap_large_t *large);

/* pool.c: prepares pool (fresh from its arena) to serve class idx and puts
 * it at the head of the class list. */
void pool__init(heap_t *heap, heap_pool_t *pool, heap_arena_t *arena, unsigned idx);
/* pool.c: a new head for class idx, which has none: its cached pool, or a
 * pool from the arenas. NULL when the OS refuses memory. */
heap_pool_t *pool__new_head(heap_t *heap, unsigned idx);
/* pool.c: gives class idx's cached pool, and its head if nothing in it is
 * live, back to their arenas. */
void pool__trim(heap_t *heap, unsigned idx);

/* arena.c */
/* Takes an empty pool from the fullest usable arena, mapping a new arena
 * when none has one. NULL when the OS refuses memory. */
heap_pool_t *arena__take_pool(heap_t *heap);
/* Gives an emptied pool back to its arena; an arena left with no pool in use
 * becomes the spare or is unmapped. */
void arena__give_pool(heap_t *heap, heap_pool_t *pool);
/* Unmaps every arena, the spare included, and the arena map. */
void arena__release_all(heap_t *heap);

/* heap_check(), printing what it found wrong on stderr: 1 when the heap is
 * sound, else 0. For TICKD_ASSERT after heap_trim() (stats.c). */
int heap__is_valid(const heap_t *heap);
/* Reserves the arena map (ownership bitmap); needs debug. */
int arena__map_init(heap_t *heap);

/* debug.c */
void *debug__alloc(heap_t *heap, size_t size);
void debug__free(heap_t *heap, void *ptr);
size_t debug__usable_size(const heap_t *heap, const void *ptr);

#endif

/*
 * debug.c - debug mode: fill patterns, guard bytes, and checked frees.
 *
 * In debug mode the inline fast paths step aside (fast_limit is 0 and
 * heap_free() tests heap->debug) and every request comes here. A small
 * request is served from a pool block big enough for the payload plus a
 * 16-byte front and at least 8 bytes of rear guard:
 *
 *   offset 0   requested size while live (the free-list link while free)
 *   offset 8   state: DEBUG_LIVE or DEBUG_DEAD
 *   offset 12  4 guard bytes, 0xFD
 *   offset 16  payload, filled with 0xCD when handed out
 *   ...        0xFD up to the end of the block (>= 8 bytes)
 *
 * A freed block is filled with 0xDD from offset 12 on, and checked to still
 * be so when it is handed out again: a write after free is reported there.
 * Large requests get the same fills and an 8-byte rear guard.
 *
 * Every problem is fatal with a message that names it: double free, free of
 * a foreign pointer or of a pointer that is not a block start, underrun,
 * overrun, write after free.
 */
#include <string.h>

#include "alloc/internal.h"

#define DEBUG_LIVE  0x4c495645u /* "LIVE" */
#define DEBUG_DEAD  0x44454144u /* "DEAD" */
#define DEBUG_FRONT 16
#define DEBUG_REAR  8
#define FILL_NEW    0xCD
#define FILL_DEAD   0xDD
#define FILL_GUARD  0xFD

typedef struct debug_head {
    uint64_t size;  /* requested bytes; the free-list link while free */
    uint32_t state; /* DEBUG_LIVE or DEBUG_DEAD */
    uint8_t guard[4];
} debug_head_t;

/* First offset in [from, to) of p whose byte is not val, or to. */
static size_t first_not(const unsigned char *p, size_t from, size_t to, unsigned char val)
{
    for (size_t i = from; i < to; i++)
        if (p[i] != val)
            return i;
    return to;
}

static void *debug_small(heap_t *heap, size_t size)
{
    unsigned idx = heap_size_class(size + DEBUG_FRONT + DEBUG_REAR);
    size_t bsize = heap_class_size(idx);
    unsigned char *block = heap__alloc_small(heap, idx);
    if (block == NULL)
        return NULL;
    debug_head_t *head = (debug_head_t *)block;
    if (head->state == DEBUG_DEAD) {
        size_t bad = first_not(block, offsetof(debug_head_t, guard), bsize, FILL_DEAD);
        if (bad != bsize)
            heap__fatal("write after free: %zu-byte block %p was changed at offset %zu "
                        "(0x%02x, expected 0x%02x) while it was free",
                        bsize, (void *)(block + DEBUG_FRONT), bad - DEBUG_FRONT, block[bad],
                        FILL_DEAD);
    }
    head->size = size;
    head->state = DEBUG_LIVE;
    memset(head->guard, FILL_GUARD, sizeof(head->guard));
    memset(block + DEBUG_FRONT, FILL_NEW, size);
    memset(block + DEBUG_FRONT + size, FILL_GUARD, bsize - DEBUG_FRONT - size);
    return block + DEBUG_FRONT;
}

static void *debug_large(heap_t *heap, size_t size)
{
    unsigned char *p = heap__large_alloc(heap, size, DEBUG_REAR);
    if (p == NULL)
        return NULL;
    memset(p, FILL_NEW, size);
    memset(p + size, FILL_GUARD, DEBUG_REAR);
    return p;
}

void *debug__alloc(heap_t *heap, size_t size)
{
    if (size == 0)
        size = 1;
    if (size <= HEAP_SMALL_MAX - DEBUG_FRONT - DEBUG_REAR)
        return debug_small(heap, size);
    return debug_large(heap, size);
}

/* The block header of a small debug pointer, after checking that ptr is a
 * block start in a live pool of this heap. */
static debug_head_t *debug_block_of(const heap_t *heap, const void *ptr, const char *what)
{
    const heap_pool_t *pool = (const heap_pool_t *)((uintptr_t)ptr & heap->pool_mask);
    uintptr_t off = (uintptr_t)ptr - DEBUG_FRONT - (uintptr_t)pool;
    if (pool->state == HEAP_POOL_EMPTY)
        heap__fatal("%s of %p: it points into an empty pool (double free, or a stale "
                    "pointer)",
                    what, ptr);
    size_t bsize = heap_class_size(pool->szidx);
    if ((uintptr_t)ptr < (uintptr_t)pool + DEBUG_FRONT || off < HEAP_POOL_FIRST ||
        (off - HEAP_POOL_FIRST) % bsize != 0 || off >= pool->nextoffset)
        heap__fatal("%s of %p: not the start of a block (pool %p, %zu-byte blocks)", what, ptr,
                    (const void *)pool, bsize);
    return (debug_head_t *)((uintptr_t)pool + off);
}

void debug__free(heap_t *heap, void *ptr)
{
    if (!heap_owns(heap, ptr)) {
        heap_large_t *large = heap__large_find(heap, ptr);
        if (large == NULL)
            heap__fatal("free of foreign pointer %p: not allocated by this heap (%p), or "
                        "already freed",
                        ptr, (void *)heap);
        unsigned char *p = ptr;
        size_t bad = first_not(p, large->size, large->size + DEBUG_REAR, FILL_GUARD);
        if (bad != large->size + DEBUG_REAR)
            heap__fatal("overrun: %zu-byte block %p was written past its end (guard byte at "
                        "offset %zu is 0x%02x)",
                        large->size, ptr, bad, p[bad]);
        memset(p, FILL_DEAD, large->size + DEBUG_REAR);
        heap__large_free(heap, large);
        return;
    }

    debug_head_t *head = debug_block_of(heap, ptr, "free");
    heap_pool_t *pool = (heap_pool_t *)((uintptr_t)ptr & heap->pool_mask);
    size_t bsize = heap_class_size(pool->szidx);
    unsigned char *block = (unsigned char *)head;
    heap__unpoison(block, bsize); /* a block freed before is poisoned: look anyway */
    if (head->state == DEBUG_DEAD)
        heap__fatal("double free of %p (%zu-byte block)", ptr, bsize);
    if (head->state != DEBUG_LIVE)
        heap__fatal("underrun or corrupt header: block %p's header was overwritten", ptr);
    size_t bad = first_not(block, offsetof(debug_head_t, guard), DEBUG_FRONT, FILL_GUARD);
    if (bad != DEBUG_FRONT)
        heap__fatal("underrun: block %p was written before its start (guard byte at offset "
                    "%d is 0x%02x)",
                    ptr, (int)bad - DEBUG_FRONT, block[bad]);
    size_t size = head->size;
    bad = first_not(block, DEBUG_FRONT + size, bsize, FILL_GUARD);
    if (bad != bsize)
        heap__fatal("overrun: %zu-byte block %p was written past its end (guard byte at "
                    "offset %zu is 0x%02x)",
                    size, ptr, bad - DEBUG_FRONT, block[bad]);
    head->state = DEBUG_DEAD;
    memset(head->guard, FILL_DEAD, bsize - offsetof(debug_head_t, guard));
    heap__free_block(heap, pool, (heap_block_t *)block);
}

size_t debug__usable_size(const heap_t *heap, const void *ptr)
{
    if (!heap_owns(heap, ptr)) {
        const heap_large_t *large = heap__large_find(heap, ptr);
        if (large == NULL)
            heap__fatal("usable size of foreign pointer %p", ptr);
        return large->size;
    }
    const debug_head_t *head = debug_block_of(heap, ptr, "usable size");
    if (head->state != DEBUG_LIVE)
        heap__fatal("usable size of %p: the block is not live", ptr);
    return head->size;
}

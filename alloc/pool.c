/*
 * pool.c - the pool state machine: EMPTY -> USED <-> FULL -> EMPTY.
 *
 * A pool serves one size class. While USED it sits on its class list and its
 * free list is never empty (the fast path relies on that: it pops without
 * looking at carving state). These functions run only when a pool changes
 * state: the last free block was popped (refill), a FULL pool got a block
 * back, or the last live block came home.
 *
 * The head bias: the head of a class list (the pool allocation pops from)
 * counts one extra in `used`. So the fast path's `--used == 0` never fires
 * for the head, and a block allocated and freed in a loop never leaves the
 * fast path, while every other pool still goes back to its arena the moment
 * its last block does. The bias moves with the head, in the functions below
 * and nowhere else.
 */
#include <string.h>

#include "alloc/internal.h"

static heap_pool_t *class_head(const heap_t *heap, const heap_class_t *cls)
{
    return cls->pool == &heap->sentinel ? NULL : cls->pool;
}

static void pool_to_arena(heap_t *heap, heap_class_t *cls, heap_pool_t *pool)
{
    pool->state = HEAP_POOL_EMPTY;
    cls->npools--;
    arena__give_pool(heap, pool);
}

/* An emptied pool that is not the class head leaves the list: the class
 * keeps it if it has no pool cached yet, otherwise it goes back to its
 * arena. */
static void pool_release(heap_t *heap, heap_class_t *cls, heap_pool_t *pool)
{
    if (pool->prevpool != NULL)
        pool->prevpool->nextpool = pool->nextpool;
    if (pool->nextpool != NULL)
        pool->nextpool->prevpool = pool->prevpool;
    if (cls->cached == NULL) {
        pool->state = HEAP_POOL_CACHED;
        pool->nextpool = pool->prevpool = NULL;
        cls->cached = pool;
        return;
    }
    pool_to_arena(heap, cls, pool);
}

/* Puts pool at the front of its class list: it becomes the head and takes
 * the bias; the old head gives its bias up, and goes back to its arena if
 * that was all it held. */
static void class_push_head(heap_t *heap, heap_class_t *cls, heap_pool_t *pool)
{
    heap_pool_t *old = class_head(heap, cls);
    pool->prevpool = NULL;
    pool->nextpool = old;
    pool->used++;
    cls->pool = pool;
    if (old == NULL)
        return;
    old->prevpool = pool;
    if (--old->used == 0)
        pool_release(heap, cls, old);
}

/* Puts a pool that was FULL on its class list right behind the head, so the
 * head keeps serving: made the head, the pool would hand out the one block
 * it just got back and go FULL again at once, and a queue of frees would
 * bounce every pool in and out of the list. Behind the head it gathers free
 * blocks until the head fills up. */
static void class_push_second(heap_t *heap, heap_class_t *cls, heap_pool_t *pool)
{
    heap_pool_t *head = class_head(heap, cls);
    if (head == NULL) {
        class_push_head(heap, cls, pool);
        return;
    }
    pool->prevpool = head;
    pool->nextpool = head->nextpool;
    if (head->nextpool != NULL)
        head->nextpool->prevpool = pool;
    head->nextpool = pool;
}

/* Takes the head (just gone FULL) off the list; the next pool, if any, is
 * the new head and takes the bias. */
static void class_pop_head(heap_t *heap, heap_class_t *cls, heap_pool_t *pool)
{
    heap_pool_t *next = pool->nextpool;
    pool->used--;
    pool->nextpool = NULL;
    if (next == NULL) {
        cls->pool = &heap->sentinel;
        return;
    }
    next->prevpool = NULL;
    next->used++;
    cls->pool = next;
}

void pool__init(heap_t *heap, heap_pool_t *pool, heap_arena_t *arena, unsigned idx)
{
    heap_class_t *cls = &heap->classes[idx];
    size_t size = cls->block_size;
    heap_block_t *first = (heap_block_t *)((char *)pool + HEAP_POOL_FIRST);

    /* Debug mode recognises a free block by its fill; a pool that served
     * another class before must not show that class's stale fills. */
    if (heap->debug) {
        heap__unpoison(first, heap->pool_size - HEAP_POOL_FIRST);
        memset(first, 0, heap->pool_size - HEAP_POOL_FIRST);
    }
    heap__unpoison(first, sizeof(*first));
    first->next = NULL;
    heap__poison((char *)pool + HEAP_POOL_FIRST, heap->pool_size - HEAP_POOL_FIRST);
    pool->freeblock = first;
    pool->used = 0;
    pool->szidx = (uint8_t)idx;
    pool->cls = &heap->classes[idx];
    pool->state = HEAP_POOL_USED;
    pool->nextoffset = (uint32_t)(HEAP_POOL_FIRST + size);
    pool->maxnextoffset = (uint32_t)(heap->pool_size - size);
    pool->arena = arena;
    cls->npools++;
    class_push_head(heap, cls, pool);
}

/* The pool's free list just ran dry: carve never-used blocks, or the pool is
 * FULL and leaves its class list. The pool is the class head (the only pool
 * allocation pops from). Carving takes the blocks that start before the next
 * page boundary (at least one), so memory is still touched a page at a time,
 * as it is needed, without a trip here for every block. */
void heap__pool_refill(heap_t *heap, heap_pool_t *pool)
{
    heap_class_t *cls = &heap->classes[pool->szidx];
    TICKD_ASSERT(pool == cls->pool && pool->state == HEAP_POOL_USED && pool->freeblock == NULL);
    if (pool->nextoffset <= pool->maxnextoffset) {
        uint32_t size = cls->block_size;
        uint32_t end = (pool->nextoffset | (HEAP_CARVE_PAGE - 1)) + 1;
        if (end > pool->maxnextoffset + 1)
            end = pool->maxnextoffset + 1;
        char *base = (char *)pool;
        heap_block_t *first = (heap_block_t *)(base + pool->nextoffset), *last = first;
        heap__unpoison(first, sizeof(*first));
        for (uint32_t off = pool->nextoffset + size; off < end; off += size) {
            heap_block_t *b = (heap_block_t *)(base + off);
            heap__unpoison(b, sizeof(*b));
            last->next = b;
            heap__poison(last, size);
            last = b;
        }
        last->next = NULL;
        heap__poison(last, size);
        pool->nextoffset = (uint32_t)((char *)last - base) + size;
        pool->freeblock = first;
        return;
    }
    pool->state = HEAP_POOL_FULL;
    cls->nfull++;
    class_pop_head(heap, cls, pool);
}

/* A block was just pushed on pool. oldhead is the free list before the push:
 * NULL means the pool was FULL. pool->used == 0 means it is now empty (never
 * the head: the head's bias keeps it above zero). */
void heap__pool_transition(heap_t *heap, heap_pool_t *pool, heap_block_t *oldhead)
{
    heap_class_t *cls = &heap->classes[pool->szidx];
    /* A pool's free list is empty exactly when it is FULL. */
    TICKD_ASSERT((oldhead == NULL) == (pool->state == HEAP_POOL_FULL));
    if (oldhead == NULL) {
        pool->state = HEAP_POOL_USED;
        cls->nfull--;
        class_push_second(heap, cls, pool);
    }
    if (pool->used == 0)
        pool_release(heap, cls, pool);
}

heap_pool_t *pool__new_head(heap_t *heap, unsigned idx)
{
    heap_class_t *cls = &heap->classes[idx];
    heap_pool_t *pool = cls->cached;
    if (pool != NULL) { /* its free list is intact: no carving, no arena */
        TICKD_ASSERT(pool->state == HEAP_POOL_CACHED && pool->freeblock != NULL);
        cls->cached = NULL;
        pool->state = HEAP_POOL_USED;
        class_push_head(heap, cls, pool);
        return pool;
    }
    pool = arena__take_pool(heap);
    if (pool != NULL)
        pool__init(heap, pool, pool->arena, idx);
    return pool;
}

void pool__trim(heap_t *heap, unsigned idx)
{
    heap_class_t *cls = &heap->classes[idx];
    heap_pool_t *head = class_head(heap, cls);
    if (cls->cached != NULL) {
        heap_pool_t *pool = cls->cached;
        cls->cached = NULL;
        pool_to_arena(heap, cls, pool);
    }
    if (head != NULL && head->used == 1) { /* the bias alone: nothing live */
        class_pop_head(heap, cls, head);
        pool_to_arena(heap, cls, head);
    }
}

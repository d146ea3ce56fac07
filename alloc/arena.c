/*
 * arena.c - arenas: the mappings, the ownership map, and the arena order.
 *
 * An arena is arena_size bytes mapped from the OS and aligned to arena_size
 * (we map twice the size and trim both ends), cut into arena_size/pool_size
 * pools. Its bookkeeping lives outside the mapping, so all of it is pools.
 *
 * Usable arenas (those with at least one EMPTY pool) form a list sorted by
 * nfreepools, fewest first; new pools come from the head, so allocation fills
 * the fullest arenas and lets the emptiest drain. nfp2last[n] points at the
 * last usable arena with n free pools, which makes every reorder O(1) (the
 * same device as CPython's nfp2lasta). An arena whose last pool comes back
 * leaves the list: it becomes the spare (pages released, mapping kept) or is
 * unmapped when there is a spare already.
 *
 * Ownership: the bits (base >> HEAP_MAP_SHIFT) of the heap's arena map, one
 * per 256 KiB of the arena, are set while an arena is in use. They are clear
 * for the spare, so a stale pointer into the spare is foreign, not a silent
 * write into a dead pool.
 *
 * Never called on the fast path except through a pool state change.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "alloc/internal.h"

/* User-space addresses fit in 48 bits on the platforms we run on. */
#define HEAP_ADDRESS_BITS 48

int arena__map_init(heap_t *heap)
{
    size_t bits = (size_t)1 << (HEAP_ADDRESS_BITS - HEAP_MAP_SHIFT);
    void *map = mmap(NULL, bits / 8, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED)
        return -ENOMEM;
    heap->arena_map = map;
    heap->arena_map_bits = bits;
    heap->fast_map_bits = heap->debug ? 0 : bits;
    return 0;
}

static void map_set(heap_t *heap, uintptr_t base, int on)
{
    uintptr_t first = base >> HEAP_MAP_SHIFT;
    uintptr_t end = first + (heap->arena_size >> HEAP_MAP_SHIFT);
    for (uintptr_t idx = first; idx < end; idx++) {
        if (on)
            heap->arena_map[idx >> 6] |= (uint64_t)1 << (idx & 63);
        else
            heap->arena_map[idx >> 6] &= ~((uint64_t)1 << (idx & 63));
    }
}

static void *map_aligned(size_t size)
{
    char *raw = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    char *base = (char *)(((uintptr_t)raw + size - 1) & ~(uintptr_t)(size - 1));
    if (base > raw)
        munmap(raw, (size_t)(base - raw));
    if (raw + 2 * size > base + size)
        munmap(base + size, (size_t)(raw + 2 * size - (base + size)));
    return base;
}

static void arena_reset(heap_t *heap, heap_arena_t *arena)
{
    arena->ntotalpools = (uint32_t)(heap->arena_size / heap->pool_size);
    arena->nfreepools = arena->ntotalpools;
    arena->ncarved = 0;
    arena->freepools = NULL;
    arena->next = arena->prev = NULL;
}

/* A new arena (the spare if there is one), in use and owned; on no list but
 * the all-arenas list. */
static heap_arena_t *arena_new(heap_t *heap)
{
    heap_arena_t *arena = heap->spare;
    if (arena != NULL) {
        heap->spare = NULL;
    } else {
        arena = malloc(sizeof(*arena));
        if (arena == NULL)
            return NULL;
        void *base = map_aligned(heap->arena_size);
        if (base == NULL ||
            ((uintptr_t)base + heap->arena_size - 1) >> HEAP_MAP_SHIFT >= heap->arena_map_bits) {
            if (base != NULL)
                munmap(base, heap->arena_size);
            free(arena);
            return NULL;
        }
        arena->base = (uintptr_t)base;
        arena->all_prev = NULL;
        arena->all_next = heap->all;
        if (heap->all != NULL)
            heap->all->all_prev = arena;
        heap->all = arena;
        heap->narenas++;
        heap->arenas_allocated++;
        if (heap->narenas > heap->narenas_highwater)
            heap->narenas_highwater = heap->narenas;
        if ((size_t)heap->narenas * heap->arena_size > heap->mapped_peak)
            heap->mapped_peak = (size_t)heap->narenas * heap->arena_size;
    }
    arena_reset(heap, arena);
    map_set(heap, arena->base, 1);
    return arena;
}

static void arena_unmap(heap_t *heap, heap_arena_t *arena)
{
    if (arena->all_prev != NULL)
        arena->all_prev->all_next = arena->all_next;
    else
        heap->all = arena->all_next;
    if (arena->all_next != NULL)
        arena->all_next->all_prev = arena->all_prev;
    heap__unpoison((void *)arena->base, heap->arena_size); /* what maps here next is not ours */
    munmap((void *)arena->base, heap->arena_size);
    heap->narenas--;
    heap->arenas_released++;
    free(arena);
}

/* arena has no pool in use any more and is on no list: keep it as the spare,
 * or give it back. */
static void arena_retire(heap_t *heap, heap_arena_t *arena)
{
    map_set(heap, arena->base, 0);
    if (heap->spare == NULL) {
        madvise((void *)arena->base, heap->arena_size, MADV_DONTNEED);
        heap->spare = arena;
    } else {
        arena_unmap(heap, arena);
    }
}

static void usable_unlink(heap_t *heap, heap_arena_t *arena)
{
    if (arena->prev != NULL)
        arena->prev->next = arena->next;
    else
        heap->usable = arena->next;
    if (arena->next != NULL)
        arena->next->prev = arena->prev;
}

heap_pool_t *arena__take_pool(heap_t *heap)
{
    heap_arena_t *arena = heap->usable;
    if (arena == NULL) {
        arena = arena_new(heap);
        if (arena == NULL)
            return NULL;
        arena->next = arena->prev = NULL;
        heap->usable = arena;
        heap->nfp2last[arena->nfreepools] = arena;
    }

    /* The head has the fewest free pools; losing one keeps it the head. */
    uint32_t nf = arena->nfreepools;
    if (heap->nfp2last[nf] == arena)
        heap->nfp2last[nf] = NULL;
    arena->nfreepools = --nf;
    if (nf > 0)
        heap->nfp2last[nf] = arena;
    else
        usable_unlink(heap, arena);

    heap_pool_t *pool = arena->freepools;
    if (pool != NULL) {
        arena->freepools = pool->nextpool;
    } else {
        pool = (heap_pool_t *)(arena->base + (uintptr_t)arena->ncarved * heap->pool_size);
        arena->ncarved++;
    }
    pool->arena = arena;
    return pool;
}

void arena__give_pool(heap_t *heap, heap_pool_t *pool)
{
    heap_arena_t *arena = pool->arena;
    pool->nextpool = arena->freepools;
    arena->freepools = pool;
    uint32_t nf = arena->nfreepools;

    if (nf == 0) {
        /* Was full, so on no list; one free pool is the fewest there is. */
        arena->nfreepools = 1;
        arena->prev = NULL;
        arena->next = heap->usable;
        if (heap->usable != NULL)
            heap->usable->prev = arena;
        heap->usable = arena;
        if (heap->nfp2last[1] == NULL)
            heap->nfp2last[1] = arena;
        return; /* an arena has at least 4 pools, so it is not empty yet */
    }

    /* Leaves the run of arenas with nf free pools ... */
    heap_arena_t *lastnf = heap->nfp2last[nf];
    if (lastnf == arena) {
        heap_arena_t *p = arena->prev;
        heap->nfp2last[nf] = p != NULL && p->nfreepools == nf ? p : NULL;
    }
    arena->nfreepools = ++nf;

    if (nf == arena->ntotalpools) {
        usable_unlink(heap, arena);
        arena_retire(heap, arena);
        return;
    }

    /* ... and goes to the end of that run, which keeps the list sorted:
     * everything after lastnf has at least nf free pools. */
    if (heap->nfp2last[nf] == NULL)
        heap->nfp2last[nf] = arena;
    if (lastnf == arena)
        return;
    usable_unlink(heap, arena);
    arena->prev = lastnf;
    arena->next = lastnf->next;
    if (lastnf->next != NULL)
        lastnf->next->prev = arena;
    lastnf->next = arena;
}

void arena__release_all(heap_t *heap)
{
    while (heap->all != NULL)
        arena_unmap(heap, heap->all);
    heap->spare = NULL;
    heap->usable = NULL;
    if (heap->arena_map != NULL) {
        munmap(heap->arena_map, heap->arena_map_bits / 8);
        heap->arena_map = NULL;
    }
}

/*
 * gcgen.c - the generations: tracking, thresholds, when to collect which
 * generation, and freezing.
 *
 * The lists themselves and the inline track/untrack used by obj_new() and
 * object death live in runtime.h; gc.c moves objects between generations
 * during a collection. This file owns the policy around them, CPython's:
 *
 *  - generation 0's count is container allocations minus container deaths
 *    since its last collection; generation 1's count is generation-0
 *    collections since its last collection; generation 2's is generation-1
 *    collections;
 *  - a collection is due once generation 0's count passes its threshold; it
 *    covers the oldest generation whose count passes its threshold;
 *  - the long-lived heuristic: a full (generation 2) collection waits until
 *    the objects promoted into generation 2 since the last full collection
 *    reach 25% of those that survived it, so that full collections stay
 *    proportional to the growth of the heap rather than to its size.
 *
 * Nothing here runs a collection: the owner of the heap asks
 * gc_should_collect() at a safe point and calls gc_collect().
 */
#include <errno.h>

#include "alloc/runtime.h"

/* Sets the generation bits of every member of list (O(list)). */
static void gc_list_set_gen(gc_head_t *list, unsigned gen)
{
    for (gc_head_t *gc = gc__next(list); gc != list; gc = gc__next(gc))
        gc->prev = (gc->prev & ~GC_GEN_MASK) | ((uintptr_t)gen << GC_GEN_SHIFT);
}

void gc__init(struct obj_runtime *rt)
{
    static const uint32_t defaults[GC_NGENERATIONS] = {700, 10, 10};
    for (unsigned i = 0; i < GC_NGENERATIONS; i++) {
        gc__list_init(&rt->gens[i].head);
        rt->gens[i].threshold = defaults[i];
    }
    gc__list_init(&rt->permanent);
}

void gc_set_thresholds(heap_t *heap, uint32_t gen0, uint32_t gen1, uint32_t gen2)
{
    struct obj_runtime *rt = heap->rt;
    rt->gens[0].threshold = gen0;
    rt->gens[1].threshold = gen1;
    rt->gens[2].threshold = gen2;
}

void gc_get_thresholds(const heap_t *heap, uint32_t out[GC_NGENERATIONS])
{
    for (unsigned i = 0; i < GC_NGENERATIONS; i++)
        out[i] = heap->rt->gens[i].threshold;
}

int gc_should_collect(const heap_t *heap)
{
    const struct obj_runtime *rt = heap->rt;
    if (rt->gens[0].threshold == 0 || rt->gens[0].count <= rt->gens[0].threshold)
        return -1;
    for (int i = GC_NGENERATIONS - 1; i > 0; i--) {
        if (rt->gens[i].count <= rt->gens[i].threshold)
            continue;
        if (i == GC_NGENERATIONS - 1 && rt->long_lived_pending < rt->long_lived_total / 4)
            continue;
        return i;
    }
    return 0;
}

int gc_freeze(heap_t *heap)
{
    struct obj_runtime *rt = heap->rt;
    if (rt->collecting)
        return -EBUSY;
    for (unsigned i = 0; i < GC_NGENERATIONS; i++) {
        gc_list_set_gen(&rt->gens[i].head, GC_GEN_OUTSIDE);
        gc__list_merge(&rt->gens[i].head, &rt->permanent);
        rt->tracked[GC_GEN_OUTSIDE] += rt->tracked[i];
        rt->tracked[i] = 0;
    }
    rt->gens[0].count = 0;
    return 0;
}

int gc_unfreeze(heap_t *heap)
{
    struct obj_runtime *rt = heap->rt;
    if (rt->collecting)
        return -EBUSY;
    unsigned oldest = GC_NGENERATIONS - 1;
    gc_list_set_gen(&rt->permanent, oldest);
    gc__list_merge(&rt->permanent, &rt->gens[oldest].head);
    rt->tracked[oldest] += rt->tracked[GC_GEN_OUTSIDE];
    rt->tracked[GC_GEN_OUTSIDE] = 0;
    return 0;
}

void gc_track(heap_t *heap, obj_t *obj)
{
    if (obj__is_container(obj) && gc__head(obj)->next == 0)
        gc__track(heap->rt, gc__head(obj));
}

void gc_untrack(heap_t *heap, obj_t *obj)
{
    if (obj__is_container(obj) && gc__head(obj)->next != 0)
        gc__untrack(heap->rt, gc__head(obj));
}

int gc_is_tracked(const obj_t *obj)
{
    return obj__is_container(obj) && gc__head(obj)->next != 0;
}

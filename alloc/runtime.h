/*
 * runtime.h - private state of the object runtime: the GC header, the
 * generation lists, the per-type counters.
 *
 * One struct obj_runtime per heap (heap->rt), allocated by
 * obj_runtime_create() and freed by obj_runtime_destroy() (object.c); nothing
 * in it is allocated per object or per collection. Shared by object.c, objtype.c, gc.c, gcgen.c and
 * gcstats.c; nothing outside alloc/ includes it.
 *
 * Block layout of a container (a type with traverse):
 *
 *   [gc_head_t: next, prev|flags][obj_t: type, refcnt][payload ...]
 *    ^ heap_alloc() block         ^ the obj_t * everyone holds
 *
 * A plain object is the same without the GC header.
 */
#ifndef TICKD_ALLOC_RUNTIME_H
#define TICKD_ALLOC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/alloc.h"
#include "alloc/object.h"

/*
 * GC header: 16 bytes in front of every container, CPython's PyGC_Head
 * layout. Both words are 16-byte aligned pointers when used as links, which
 * leaves their low four bits for flags.
 */
typedef struct gc_head {
    /* Next header in the generation list, 0 when the object is untracked.
     * During a collection bit 0 (GC_NEXT_UNREACHABLE) marks the members of
     * the tentatively unreachable list. */
    uintptr_t next;
    /* Previous header in the list | flags. While a collection computes
     * reachability the pointer bits hold the scratch count instead
     * (gc_refs << GC_REFS_SHIFT); the pass that ends the computation
     * restores the pointers. The flag bits always survive. */
    uintptr_t prev;
} gc_head_t;

/* Flags in the low bits of prev. */
#define GC_FINALIZED  ((uintptr_t)1) /* finalize has run (or is running) */
#define GC_COLLECTING ((uintptr_t)2) /* in the set the collection examines */
/* Bits 2-3: the generation the object is counted in, or GC_GEN_OUTSIDE for
 * untracked and frozen objects (which no collection ever examines). */
#define GC_GEN_SHIFT   2
#define GC_GEN_MASK    ((uintptr_t)3 << GC_GEN_SHIFT)
#define GC_GEN_OUTSIDE 3
#define GC_FLAGS_MASK  ((uintptr_t)15)
#define GC_REFS_SHIFT  4
#define GC_REFS_ONE    ((uintptr_t)1 << GC_REFS_SHIFT)

/* Flag in the low bit of next (tentatively unreachable list only). */
#define GC_NEXT_UNREACHABLE ((uintptr_t)1)

/* Nested deallocs that run on the stack before the rest are queued. */
#define OBJ_DEALLOC_DEPTH_MAX 64

/* One generation. */
typedef struct gc_generation {
    /* List head: a gc_head_t that belongs to no object (flag bits 0). An
     * empty list points at itself both ways. */
    _Alignas(16) gc_head_t head;
    /* Threshold counter (see gc_should_collect() in object.h). */
    uint64_t count;
    uint32_t threshold;
} gc_generation_t;

/* Totals of the collections of one generation. */
typedef struct gc_gen_totals {
    uint64_t collections;
    uint64_t collected;
    uint64_t uncollectable;
    /* Non-cumulative: pauses[i] counts pauses in
     * (gc_pause_bounds_ns[i-1], gc_pause_bounds_ns[i]]; pauses above the last
     * bound are only in pause_count. */
    uint64_t pauses[GC_PAUSE_NBUCKETS];
    uint64_t pause_count;
    uint64_t pause_sum_ns;
    /* The latest pauses, a ring: pause number k (from 0) is in
     * last_ns[k % GC_LAST_PAUSES]. */
    uint64_t last_ns[GC_LAST_PAUSES];
} gc_gen_totals_t;

struct obj_runtime {
    /* The type table, first: the inline paths of alloc/object.h reach it
     * through obj__type_slots(). */
    obj_type_slot_t types[OBJ_TYPE_SLOTS];
    /* Generations 0 (young) .. 2 (oldest). */
    gc_generation_t gens[GC_NGENERATIONS];
    /* Frozen containers: tracked, never examined (gc_freeze()). */
    _Alignas(16) gc_head_t permanent;
    /* Tracked containers per generation bits: [0..2] the generations, [3]
     * (GC_GEN_OUTSIDE) the frozen ones. */
    uint64_t tracked[GC_NGENERATIONS + 1];
    /* Survivors of the last full collection, and objects promoted into the
     * oldest generation since: the long-lived heuristic. */
    uint64_t long_lived_total;
    uint64_t long_lived_pending;
    /* A collection is running (gc_collect() is not reentrant). */
    int collecting;
    /* Deallocs running on the stack now; at OBJ_DEALLOC_DEPTH_MAX further
     * dead objects are queued on deferred, linked through their refcnt
     * field, and destroyed when the depth is back to zero. */
    unsigned dealloc_depth;
    obj_t *deferred;
    gc_gen_totals_t totals[GC_NGENERATIONS];
};
_Static_assert(offsetof(struct obj_runtime, types) == 0,
               "obj__type_slots() reads the type table at the runtime's start");

static inline gc_head_t *gc__head(const obj_t *obj)
{
    return (gc_head_t *)obj - 1;
}

static inline obj_t *gc__obj(const gc_head_t *gc)
{
    return (obj_t *)(gc + 1);
}

static inline int obj__is_container(const obj_t *obj)
{
    return obj->type->traverse != NULL;
}

static inline gc_head_t *gc__next(const gc_head_t *gc)
{
    return (gc_head_t *)gc->next;
}

static inline gc_head_t *gc__prev(const gc_head_t *gc)
{
    return (gc_head_t *)(gc->prev & ~GC_FLAGS_MASK);
}

static inline unsigned gc__gen(const gc_head_t *gc)
{
    return (unsigned)((gc->prev & GC_GEN_MASK) >> GC_GEN_SHIFT);
}

static inline void gc__list_init(gc_head_t *list)
{
    list->next = (uintptr_t)list;
    list->prev = (uintptr_t)list;
}

static inline int gc__list_is_empty(const gc_head_t *list)
{
    return list->next == (uintptr_t)list;
}

/* Links gc at the tail of list, keeping gc's flags. */
static inline void gc__list_append(gc_head_t *gc, gc_head_t *list)
{
    gc_head_t *last = (gc_head_t *)list->prev;
    last->next = (uintptr_t)gc;
    gc->prev = (uintptr_t)last | (gc->prev & GC_FLAGS_MASK);
    gc->next = (uintptr_t)list;
    list->prev = (uintptr_t)gc;
}

/* Unlinks gc from whatever list holds it; its links are left stale. */
static inline void gc__list_unlink(gc_head_t *gc)
{
    gc_head_t *prev = gc__prev(gc);
    gc_head_t *next = gc__next(gc);
    prev->next = (uintptr_t)next;
    next->prev = (uintptr_t)prev | (next->prev & GC_FLAGS_MASK);
}

/* Moves every member of from to the tail of to; from ends empty. */
static inline void gc__list_merge(gc_head_t *from, gc_head_t *to)
{
    if (gc__list_is_empty(from))
        return;
    gc_head_t *to_last = (gc_head_t *)to->prev;
    gc_head_t *first = gc__next(from);
    gc_head_t *last = (gc_head_t *)from->prev;
    to_last->next = (uintptr_t)first;
    first->prev = (uintptr_t)to_last | (first->prev & GC_FLAGS_MASK);
    last->next = (uintptr_t)to;
    to->prev = (uintptr_t)last;
    gc__list_init(from);
}

/* Tracks gc (untracked) at the tail of generation 0. */
static inline void gc__track(struct obj_runtime *rt, gc_head_t *gc)
{
    gc->prev &= GC_FINALIZED;
    gc__list_append(gc, &rt->gens[0].head);
    rt->tracked[0]++;
}

/* Untracks gc (tracked). */
static inline void gc__untrack(struct obj_runtime *rt, gc_head_t *gc)
{
    gc__list_unlink(gc);
    rt->tracked[gc__gen(gc)]--;
    gc->next = 0;
    gc->prev = (gc->prev & GC_FINALIZED) | ((uintptr_t)GC_GEN_OUTSIDE << GC_GEN_SHIFT);
}

/* Registers type for obj_new(), or aborts with a message when the type is
 * malformed or its slot is taken (a programming error). */
void obj__type_require(heap_t *heap, const obj_type_t *type);

/* Sets the default thresholds and empty generations; called once by
 * obj_runtime_create(). */
void gc__init(struct obj_runtime *rt);

/* Adds one pause of ns nanoseconds to a generation's histogram. */
void gc__record_pause(gc_gen_totals_t *totals, uint64_t ns);

#endif

/*
 * gc.c - the cycle collector: one collection, gc_collect().
 *
 * Reference counting frees everything except cycles: objects that keep each
 * other's counts above zero after the last outside reference went. The
 * collector finds them with CPython's algorithm, on containers only (types
 * with traverse; plain objects cannot close a cycle).
 *
 * Every container is tracked on one of three generation lists (runtime.h);
 * new ones go to generation 0, the survivors of a collection move one
 * generation up. Collecting generation g merges generations 0..g into g (the
 * "young" set) and then:
 *
 *  1. subtract_refs: every member gets a scratch count gc_refs = refcnt, and
 *     every reference from one member to another, reported by traverse,
 *     takes one off its target. What stays above zero is referenced from
 *     outside the set: a root. Both steps run in one walk: a member gets its
 *     gc_refs (and the COLLECTING flag) when it is first touched, by the walk
 *     or as a child, and members are recognised by their generation bits
 *     (<= g) without touching anything outside the set.
 *  2. move_unreachable: walk the set once more. A member with gc_refs > 0 is
 *     reachable: traverse it and give each child still in the set gc_refs 1
 *     (if the walk had already parked the child on the tentatively
 *     unreachable list, move it back to the tail of the young list; the walk
 *     will get to it). A member with gc_refs == 0 is parked on the
 *     unreachable list. When the walk ends, the young list holds exactly the
 *     objects reachable from outside, their prev links rebuilt, COLLECTING
 *     cleared and generation bits set to their new generation; they are
 *     merged into generation g + 1.
 *  3. finalize: the unreachable objects whose type has finalize and that were
 *     not finalized before get it called, once (PEP 442). If any finalizer
 *     ran it may have made an object reachable again, so steps 1-2 run again
 *     on the unreachable set alone; what is reachable now is resurrected and
 *     joins generation g + 1 too.
 *  4. delete_garbage: clear each remaining unreachable object (holding a
 *     reference of our own across the call). Clearing drops the references
 *     inside the cycles, counts fall to zero and the objects die by
 *     refcounting. An object still alive after clear is uncollectable (its
 *     type has no clear, or clear kept the cycle) and goes to g + 1 as well.
 *
 * The generation-0 count is container allocations minus container deaths;
 * gc_should_collect() (gcgen.c) turns the counts into a generation to collect.
 *
 * Speed: no allocation (the lists are intrusive, the scratch count lives in
 * the GC header's prev word, the temporary list heads are on the stack);
 * two walks over the set, each one traverse per object; visit callbacks
 * check a flag or the generation bits in the child's header and write
 * nothing outside the set, so a young collection costs O(young objects and
 * their references) however big the old generations are. Types that list
 * their reference fields (obj_traverse_fields) are traversed inline, with
 * the visit inlined too: no indirect call per object or per reference. A
 * full collection is then bound by memory traffic: each walk streams the
 * whole set through the cache, and a container with many children (a root
 * list) streams its children once more per walk.
 *
 * Must never run by itself: only gc_collect(), called at a safe point. User
 * code runs inside a collection only as finalize, clear and dealloc hooks,
 * and only in steps 3-4, when the lists are well formed again.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "runtime.h"

__attribute__((noreturn, cold)) static void gc_refs_too_small(const obj_t *obj)
{
    heap__fatal("gc: object %p of type %s has more references from tracked objects than its "
                "count (%" PRIdPTR "): a traverse reports a reference its object does not "
                "own, or an incref is missing",
                (const void *)obj, obj->type->name, obj->refcnt);
}

/* Scratch word of a member entering the set: gc_refs = refcnt, COLLECTING,
 * generation bits gen_bits, FINALIZED kept. */
static inline uintptr_t gc_refs_init(const obj_t *obj, uintptr_t prev, uintptr_t gen_bits)
{
    return ((uintptr_t)obj->refcnt << GC_REFS_SHIFT) | (prev & GC_FINALIZED) | GC_COLLECTING |
           gen_bits;
}

static inline void gc_refs_decrement(gc_head_t *gc, uintptr_t prev)
{
    if (HEAP_UNLIKELY(prev < GC_REFS_ONE))
        gc_refs_too_small(gc__obj(gc));
    gc->prev = prev - GC_REFS_ONE;
}

/* Calls visit on every reference obj holds. For a type that lists its
 * reference fields the fields are read here, with visit inlined (it is a
 * constant at every call site); other types get their traverse called. */
__attribute__((always_inline)) static inline void gc_traverse(obj_t *obj, obj_visit_fn visit,
                                                              void *arg)
{
    const obj_type_t *type = obj->type;
    if (HEAP_LIKELY(type->traverse == obj_traverse_fields)) {
        for (unsigned i = 0; i < type->nfields; i++) {
            obj_t *child;
            memcpy(&child, (char *)obj + type->fields[i], sizeof(child));
            if (child != NULL)
                visit(child, arg);
        }
    } else {
        type->traverse(obj, visit, arg);
    }
}

/* Step 1 visit: arg is the generation bits of the collected generation. */
__attribute__((always_inline)) static inline int visit_subtract(obj_t *child, void *arg)
{
    if (!obj__is_container(child))
        return 0;
    gc_head_t *gc = gc__head(child);
    uintptr_t prev = gc->prev;
    uintptr_t gen_bits = (uintptr_t)arg;
    if ((prev & GC_GEN_MASK) > gen_bits)
        return 0;
    if (!(prev & GC_COLLECTING))
        prev = gc_refs_init(child, prev, gen_bits);
    gc_refs_decrement(gc, prev);
    return 0;
}

static void subtract_refs(gc_head_t *young, unsigned gen)
{
    uintptr_t gen_bits = (uintptr_t)gen << GC_GEN_SHIFT;
    for (gc_head_t *gc = gc__next(young); gc != young; gc = gc__next(gc)) {
        obj_t *obj = gc__obj(gc);
        if (!(gc->prev & GC_COLLECTING))
            gc->prev = gc_refs_init(obj, gc->prev, gen_bits);
        gc_traverse(obj, visit_subtract, (void *)gen_bits);
    }
}

/* Step 1 for the resurrection check: the set is a list whose members all
 * carry COLLECTING already (and objects outside it do not), so the counts
 * are set in a walk of their own before the subtraction. */
static void update_refs_marked(gc_head_t *list)
{
    for (gc_head_t *gc = gc__next(list); gc != list; gc = gc__next(gc))
        gc->prev = gc_refs_init(gc__obj(gc), gc->prev, gc->prev & GC_GEN_MASK);
}

__attribute__((always_inline)) static inline int visit_subtract_marked(obj_t *child, void *arg)
{
    (void)arg;
    if (!obj__is_container(child))
        return 0;
    gc_head_t *gc = gc__head(child);
    uintptr_t prev = gc->prev;
    if (prev & GC_COLLECTING)
        gc_refs_decrement(gc, prev);
    return 0;
}

static void subtract_refs_marked(gc_head_t *list)
{
    for (gc_head_t *gc = gc__next(list); gc != list; gc = gc__next(gc))
        gc_traverse(gc__obj(gc), visit_subtract_marked, NULL);
}

/* Step 2 visit: arg is the young list. */
__attribute__((always_inline)) static inline int visit_reachable(obj_t *child, void *arg)
{
    if (!obj__is_container(child))
        return 0;
    gc_head_t *gc = gc__head(child);
    uintptr_t prev = gc->prev;
    /* Outside the set, or already scanned by move_unreachable. */
    if (!(prev & GC_COLLECTING))
        return 0;
    if (gc->next & GC_NEXT_UNREACHABLE) {
        /* Parked as unreachable, reachable after all: unlink it by hand (the
         * flags in next confuse the list helpers) and queue it at the tail
         * of young with gc_refs 1; the walk will scan it. */
        gc_head_t *young = arg;
        gc_head_t *p = gc__prev(gc);
        gc_head_t *n = (gc_head_t *)(gc->next & ~GC_NEXT_UNREACHABLE);
        p->next = gc->next;
        n->prev = (uintptr_t)p | (n->prev & GC_FLAGS_MASK);
        gc_head_t *last = (gc_head_t *)young->prev;
        last->next = (uintptr_t)gc;
        gc->next = (uintptr_t)young;
        young->prev = (uintptr_t)gc;
        gc->prev = GC_REFS_ONE | (prev & GC_FLAGS_MASK);
    } else if (prev < GC_REFS_ONE) {
        /* Ahead of the walk with gc_refs 0: tell the walk it is reachable. */
        gc->prev = prev | GC_REFS_ONE;
    }
    return 0;
}

/* Step 2. Splits young (scratch counts in prev) into the reachable members,
 * left in young with proper links and generation bits new_gen, and the
 * others, moved to unreachable (every next link there carries
 * GC_NEXT_UNREACHABLE until clear_unreachable_mask()). Returns the number of
 * reachable members. */
static uint64_t move_unreachable(gc_head_t *young, gc_head_t *unreachable, unsigned new_gen)
{
    uintptr_t keep_bits = ((uintptr_t)new_gen << GC_GEN_SHIFT);
    uint64_t reachable = 0;
    gc_head_t *prev = young;
    gc_head_t *gc = gc__next(young);
    while (gc != young) {
        if (gc->prev >= GC_REFS_ONE) {
            /* May append to young, and so change gc->next: read it after. */
            gc_traverse(gc__obj(gc), visit_reachable, young);
            gc->prev = (uintptr_t)prev | (gc->prev & GC_FINALIZED) | keep_bits;
            prev = gc;
            reachable++;
        } else {
            prev->next = gc->next;
            gc_head_t *last = (gc_head_t *)unreachable->prev;
            last->next = GC_NEXT_UNREACHABLE | (uintptr_t)gc;
            gc->prev = (uintptr_t)last | (gc->prev & GC_FLAGS_MASK);
            gc->next = GC_NEXT_UNREACHABLE | (uintptr_t)unreachable;
            unreachable->prev = (uintptr_t)gc;
        }
        gc = gc__next(prev);
    }
    young->prev = (uintptr_t)prev;
    /* The head's next picked up the flag with the first member parked. */
    unreachable->next &= ~GC_NEXT_UNREACHABLE;
    return reachable;
}

/* Makes list an ordinary list again; returns its length. */
static uint64_t clear_unreachable_mask(gc_head_t *list)
{
    uint64_t n = 0;
    for (gc_head_t *gc = gc__next(list); gc != list; gc = gc__next(gc)) {
        gc->next &= ~GC_NEXT_UNREACHABLE;
        n++;
    }
    return n;
}

static int gc_wants_finalize(const gc_head_t *gc)
{
    return gc__obj(gc)->type->finalize != NULL && !(gc->prev & GC_FINALIZED);
}

/* Step 3: runs the finalizers due in list. A finalizer may free any object,
 * so each object moves to a private list before its turn and the loop only
 * ever looks at the head of list. Returns the number run. */
static uint64_t finalize_garbage(heap_t *heap, gc_head_t *list)
{
    gc_head_t *gc = gc__next(list);
    while (gc != list && !gc_wants_finalize(gc))
        gc = gc__next(gc);
    if (gc == list)
        return 0;

    _Alignas(16) gc_head_t seen;
    gc__list_init(&seen);
    uint64_t n = 0;
    while (!gc__list_is_empty(list)) {
        gc = gc__next(list);
        gc__list_unlink(gc);
        gc__list_append(gc, &seen);
        if (gc_wants_finalize(gc)) {
            obj_t *obj = gc__obj(gc);
            gc->prev |= GC_FINALIZED;
            obj_incref(obj);
            obj->type->finalize(heap, obj);
            obj_decref(heap, obj);
            n++;
        }
    }
    gc__list_merge(&seen, list);
    return n;
}

/* Step 3, after finalizers ran: steps 1-2 again on list (the remaining
 * unreachable objects, COLLECTING set, generation bits gen). The objects
 * reachable now go to old as generation new_gen; list keeps the rest.
 * Returns the number resurrected. */
static uint64_t handle_resurrected(struct obj_runtime *rt, gc_head_t *list, gc_head_t *old,
                                   unsigned gen, unsigned new_gen)
{
    _Alignas(16) gc_head_t still;
    gc__list_init(&still);
    update_refs_marked(list);
    subtract_refs_marked(list);
    uint64_t n = move_unreachable(list, &still, new_gen);
    clear_unreachable_mask(&still);
    gc__list_merge(list, old);
    gc__list_merge(&still, list);
    rt->tracked[gen] -= n;
    rt->tracked[new_gen] += n;
    return n;
}

/* Step 4: clears every object of list (generation bits gen); the ones still
 * alive at the end go to old as generation new_gen. Returns their number. */
static uint64_t delete_garbage(heap_t *heap, struct obj_runtime *rt, gc_head_t *list,
                               gc_head_t *old, unsigned gen, unsigned new_gen)
{
    _Alignas(16) gc_head_t alive;
    gc__list_init(&alive);
    while (!gc__list_is_empty(list)) {
        gc_head_t *gc = gc__next(list);
        obj_t *obj = gc__obj(gc);
        if (obj->type->clear != NULL) {
            obj_incref(obj);
            obj->type->clear(heap, obj);
            obj_decref(heap, obj);
        }
        if (gc__next(list) == gc) {
            gc__list_unlink(gc);
            gc->prev =
                (gc->prev & ~(GC_COLLECTING | GC_GEN_MASK)) | ((uintptr_t)new_gen << GC_GEN_SHIFT);
            gc__list_append(gc, &alive);
            rt->tracked[gen]--;
            rt->tracked[new_gen]++;
        }
    }
    uint64_t n = 0;
    for (gc_head_t *gc = gc__next(&alive); gc != &alive; gc = gc__next(gc))
        n++;
    gc__list_merge(&alive, old);
    return n;
}

static uint64_t gc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t gc_collect(heap_t *heap, int generation)
{
    struct obj_runtime *rt = heap->rt;
    if (generation < 0 || generation >= GC_NGENERATIONS)
        return -EINVAL;
    if (rt->collecting || rt->dealloc_depth != 0)
        return -EBUSY;

    uint64_t start = gc_now_ns();
    rt->collecting = 1;
    unsigned gen = (unsigned)generation;
    unsigned new_gen = gen + 1 < GC_NGENERATIONS ? gen + 1 : gen;
    gc_head_t *young = &rt->gens[gen].head;
    gc_head_t *old = &rt->gens[new_gen].head;

    if (new_gen != gen)
        rt->gens[new_gen].count++;
    for (unsigned i = 0; i <= gen; i++)
        rt->gens[i].count = 0;
    for (unsigned i = 0; i < gen; i++) {
        gc__list_merge(&rt->gens[i].head, young);
        rt->tracked[gen] += rt->tracked[i];
        rt->tracked[i] = 0;
    }

    _Alignas(16) gc_head_t unreachable;
    gc__list_init(&unreachable);
    subtract_refs(young, gen);
    uint64_t survivors = move_unreachable(young, &unreachable, new_gen);
    rt->tracked[gen] -= survivors;
    rt->tracked[new_gen] += survivors;
    if (young != old) {
        if (new_gen == GC_NGENERATIONS - 1)
            rt->long_lived_pending += survivors;
        gc__list_merge(young, old);
    } else {
        rt->long_lived_pending = 0;
        rt->long_lived_total = survivors;
    }

    uint64_t found = clear_unreachable_mask(&unreachable);
    uint64_t resurrected = 0;
    uint64_t uncollectable = 0;
    if (found != 0) {
        if (finalize_garbage(heap, &unreachable) != 0)
            resurrected = handle_resurrected(rt, &unreachable, old, gen, new_gen);
        uncollectable = delete_garbage(heap, rt, &unreachable, old, gen, new_gen);
    }
    uint64_t collected = found - resurrected - uncollectable;

    gc_gen_totals_t *totals = &rt->totals[gen];
    totals->collections++;
    totals->collected += collected;
    totals->uncollectable += uncollectable;
    rt->collecting = 0;
    gc__record_pause(totals, gc_now_ns() - start);
    return (int64_t)collected;
}

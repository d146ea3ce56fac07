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
 *     Wide containers (GC_WIDE_REFS references or more: a root list, a
 *     table of everything) are set aside by the walk instead of traversed,
 *     up to GC_WIDE_MAX of them: their references are not subtracted yet.
 *     Once the walk is over, the references among the wide containers
 *     themselves are subtracted (found by comparing pointers, without
 *     touching the targets), which makes the wide containers' own gc_refs
 *     exact. A wide container left at zero goes back to the ordinary
 *     members: its other references are subtracted now, and step 2 treats
 *     it like any other. One above zero is a root, so everything it refers
 *     to is reachable: its references are never subtracted, which leaves
 *     each target in the set at least one count above zero, a root in
 *     step 2 by itself, and so the wide container needs no traversal in
 *     step 2 either (the wide containers it refers to that went back at zero
 *     are told they are reachable). Both walks thus skip the targets of a
 *     wide root, which would otherwise be fetched from memory once more per
 *     walk, far from where the walk is.
 *  2. move_unreachable: walk the set once more. A member with gc_refs > 0 is
 *     reachable: traverse it and give each child still in the set gc_refs 1
 *     (if the walk had already parked the child on the tentatively
 *     unreachable list, move it back to the tail of the young list; the walk
 *     will get to it). A member with gc_refs == 0 is parked on the
 *     unreachable list. When the walk ends, the young list holds exactly the
 *     objects reachable from outside, their prev links rebuilt, COLLECTING
 *     cleared and generation bits set to their new generation; the wide
 *     roots join them, and they are all merged into generation g + 1.
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
 * the GC header's prev word, the temporary list heads and the wide set are
 * on the stack); two walks over the set, each one traverse per object;
 * visit callbacks check a flag or the generation bits in the child's header
 * and write nothing outside the set, so a young collection costs O(young
 * objects and their references) however big the old generations are. Types
 * that list their reference fields (obj_traverse_fields) or return their
 * reference array (obj_traverse_items) are traversed inline, with the visit
 * inlined too: no indirect call per object or per reference. A wide root
 * costs one more read of its pointers, not their targets; telling whether a
 * container is wide costs nothing for an array, and for a container with a
 * traverse of its own the first traverse stops after GC_PROBE_REFS
 * references, which is the whole of a small one.
 *
 * A full collection is then bound by memory: each walk streams the whole
 * set through the cache. The walk is a chain of dependent loads (next),
 * which the hardware prefetcher alone does not run far enough ahead of, so
 * both walks prefetch the memory GC_PREFETCH_AHEAD bytes past the current
 * header: the list is in allocation order, and objects allocated one after
 * the other mostly sit one after the other in their pools. Where they do
 * not, the prefetch fetches a useless line (it never faults) and the walk
 * runs at the speed it would without it.
 *
 * Must never run by itself: only gc_collect(), called at a safe point. User
 * code runs inside a collection only as finalize, clear and dealloc hooks,
 * and only in steps 3-4, when the lists are well formed again.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "alloc/internal.h"
#include "alloc/runtime.h"

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
    /* A live member's count is above zero and fits the scratch word. */
    TICKD_ASSERT(obj->refcnt > 0 && (uintptr_t)obj->refcnt <= UINTPTR_MAX >> GC_REFS_SHIFT);
    return ((uintptr_t)obj->refcnt << GC_REFS_SHIFT) | (prev & GC_FINALIZED) | GC_COLLECTING |
           gen_bits;
}

static inline void gc_refs_decrement(gc_head_t *gc, uintptr_t prev)
{
    if (HEAP_UNLIKELY(prev < GC_REFS_ONE))
        gc_refs_too_small(gc__obj(gc));
    gc->prev = prev - GC_REFS_ONE;
}

/* Bytes past the current header that a walk prefetches (see the essay): a
 * few dozen objects ahead, about what covers the latency of the last-level
 * cache. */
#define GC_PREFETCH_AHEAD 2048

/* For the two walks: a function of its own, starting on a cache line, so
 * that where its loop falls (which moves their speed by a tenth or more)
 * does not depend on the code around it. */
#define GC_WALK __attribute__((noinline, aligned(64)))

/* The wide containers set aside by step 1. */
typedef struct gc_wide {
    /* Members, in the order the walk met them; out of every list. */
    gc_head_t *member[GC_WIDE_MAX];
    unsigned n;
    /* Bit (address / 16) % 64 of each member's obj_t: a child whose bit is
     * clear is no member, without a look at the array. */
    uint64_t filter;
    /* referrers[j]: bit i set when member i refers to member j. */
    uint32_t referrers[GC_WIDE_MAX];
    /* Bit i set when member i went back to the ordinary members. */
    uint32_t returned;
    /* The member being traversed, and the generation bits of the set. */
    unsigned current;
    uintptr_t gen_bits;
} gc_wide_t;

_Static_assert(GC_WIDE_MAX <= 32, "gc_wide_t keeps members in 32-bit masks");

/* Calls visit on every reference obj holds, for a type that lists its
 * reference fields: they are read here, with visit inlined (it is a
 * constant at every call site). */
__attribute__((always_inline)) static inline void gc_traverse_fields(obj_t *obj, obj_visit_fn visit,
                                                                     void *arg)
{
    const obj_type_t *type = obj->type;
    for (unsigned i = 0; i < type->nfields; i++) {
        obj_t *child;
        memcpy(&child, (char *)obj + type->fields[i], sizeof(child));
        if (child != NULL)
            visit(child, arg);
    }
}

/* The same for a type without reference fields: one that returns its
 * reference array has it read here, visit inlined again; any other gets its
 * traverse called. */
__attribute__((always_inline)) static inline void gc_traverse_other(obj_t *obj, obj_visit_fn visit,
                                                                    void *arg)
{
    const obj_type_t *type = obj->type;
    if (type->traverse == obj_traverse_items) {
        size_t len;
        obj_t *const *items = type->items(obj, &len);
        for (size_t i = 0; i < len; i++)
            if (items[i] != NULL)
                visit(items[i], arg);
    } else {
        type->traverse(obj, visit, arg);
    }
}

__attribute__((always_inline)) static inline void gc_traverse(obj_t *obj, obj_visit_fn visit,
                                                              void *arg)
{
    if (HEAP_LIKELY(obj->type->traverse == obj_traverse_fields))
        gc_traverse_fields(obj, visit, arg);
    else
        gc_traverse_other(obj, visit, arg);
}

/* Step 1 for one reference: when child is a member (generation bits at
 * most gen_bits), gives it its gc_refs if this is its first touch and takes
 * one off; returns its header then, NULL otherwise. */
__attribute__((always_inline)) static inline gc_head_t *gc_subtract(obj_t *child,
                                                                    uintptr_t gen_bits)
{
    if (!obj__is_container(child))
        return NULL;
    gc_head_t *gc = gc__head(child);
    uintptr_t prev = gc->prev;
    if ((prev & GC_GEN_MASK) > gen_bits)
        return NULL;
    if (!(prev & GC_COLLECTING))
        prev = gc_refs_init(child, prev, gen_bits);
    gc_refs_decrement(gc, prev);
    return gc;
}

/* Step 1 visit: arg is the generation bits of the collected generation. */
__attribute__((always_inline)) static inline int visit_subtract(obj_t *child, void *arg)
{
    gc_subtract(child, (uintptr_t)arg);
    return 0;
}

/* Index of child among the wide members, or -1. */
static inline int gc_wide_find(const gc_wide_t *wide, const obj_t *child)
{
    if (HEAP_LIKELY(!(wide->filter & (uint64_t)1 << (((uintptr_t)child >> 4) & 63))))
        return -1;
    for (unsigned i = 0; i < wide->n; i++)
        if (gc__obj(wide->member[i]) == child)
            return (int)i;
    return -1;
}

/* References step 1 subtracts from a container with a traverse of its own
 * while it finds out whether the container is wide: the many small ones
 * are done in that one traverse. */
#define GC_PROBE_REFS 64

/* A traverse that subtracts the first GC_PROBE_REFS references and stops. */
typedef struct gc_probe {
    uintptr_t gen_bits;
    unsigned visits;
    unsigned nseen;
    /* The members whose gc_refs it took one off, once per reference. */
    gc_head_t *seen[GC_PROBE_REFS];
} gc_probe_t;

static int visit_probe(obj_t *child, void *arg)
{
    gc_probe_t *probe = arg;
    if (++probe->visits > GC_PROBE_REFS)
        return 1;
    gc_head_t *gc = gc_subtract(child, probe->gen_bits);
    if (gc != NULL)
        probe->seen[probe->nseen++] = gc;
    return 0;
}

static int visit_count(obj_t *child, void *arg)
{
    (void)child;
    unsigned *n = arg;
    return ++*n >= GC_WIDE_REFS;
}

/* Whether obj, a container with a traverse of its own and more than
 * GC_PROBE_REFS references, is wide. */
static int gc_is_wide_traverse(obj_t *obj)
{
    unsigned n = 0;
    obj->type->traverse(obj, visit_count, &n);
    return n >= GC_WIDE_REFS;
}

static void gc_wide_add(gc_wide_t *wide, gc_head_t *gc)
{
    wide->member[wide->n++] = gc;
    wide->filter |= (uint64_t)1 << (((uintptr_t)gc__obj(gc) >> 4) & 63);
}

/* Step 1 for a member without reference fields: sets it aside in wide if
 * it is wide and there is room (returns 1; the caller unlinks it), else
 * subtracts its references (returns 0). An array's length tells at once;
 * any other container is first traversed by visit_probe, which is all a
 * small one needs, and a bigger one gets those references back before it
 * is counted. Out of line: the walk's loop stays short. */
__attribute__((noinline)) static int subtract_refs_other(gc_head_t *gc, uintptr_t gen_bits,
                                                         gc_wide_t *wide)
{
    obj_t *obj = gc__obj(gc);
    const obj_type_t *type = obj->type;
    if (wide->n == GC_WIDE_MAX) {
        gc_traverse_other(obj, visit_subtract, (void *)gen_bits);
        return 0;
    }
    if (type->traverse == obj_traverse_items) {
        size_t len;
        type->items(obj, &len);
        if (len >= GC_WIDE_REFS) {
            gc_wide_add(wide, gc);
            return 1;
        }
        gc_traverse_other(obj, visit_subtract, (void *)gen_bits);
        return 0;
    }
    gc_probe_t probe = {.gen_bits = gen_bits, .visits = 0, .nseen = 0};
    type->traverse(obj, visit_probe, &probe);
    if (HEAP_LIKELY(probe.visits <= GC_PROBE_REFS))
        return 0;
    for (unsigned i = 0; i < probe.nseen; i++)
        probe.seen[i]->prev += GC_REFS_ONE;
    if (gc_is_wide_traverse(obj)) {
        gc_wide_add(wide, gc);
        return 1;
    }
    type->traverse(obj, visit_subtract, (void *)gen_bits);
    return 0;
}

/* Step 1. Gives every member of young its gc_refs and subtracts the
 * references from members to members, except those of the wide containers,
 * which leave young for wide. young's prev links are scratch afterwards,
 * apart from the head's, which points at the last member. */
GC_WALK static void subtract_refs(gc_head_t *young, unsigned gen, gc_wide_t *wide)
{
    uintptr_t gen_bits = (uintptr_t)gen << GC_GEN_SHIFT;
    gc_head_t *last = young;
    gc_head_t *gc = gc__next(young);
    while (gc != young) {
        __builtin_prefetch((char *)gc + GC_PREFETCH_AHEAD, 1);
        gc_head_t *next = gc__next(gc);
        obj_t *obj = gc__obj(gc);
        if (!(gc->prev & GC_COLLECTING))
            gc->prev = gc_refs_init(obj, gc->prev, gen_bits);
        if (HEAP_LIKELY(obj->type->traverse == obj_traverse_fields)) {
            gc_traverse_fields(obj, visit_subtract, (void *)gen_bits);
            last = gc;
        } else if (subtract_refs_other(gc, gen_bits, wide)) {
            last->next = (uintptr_t)next;
        } else {
            last = gc;
        }
        gc = next;
    }
    young->prev = (uintptr_t)last;
    wide->gen_bits = gen_bits;
}

__attribute__((always_inline)) static inline int visit_wide_subtract(obj_t *child, void *arg)
{
    gc_wide_t *wide = arg;
    int j = gc_wide_find(wide, child);
    if (j >= 0) {
        gc_head_t *gc = wide->member[j];
        gc_refs_decrement(gc, gc->prev);
        wide->referrers[j] |= (uint32_t)1 << wide->current;
    }
    return 0;
}

__attribute__((always_inline)) static inline int visit_subtract_unwide(obj_t *child, void *arg)
{
    gc_wide_t *wide = arg;
    if (gc_wide_find(wide, child) < 0)
        gc_subtract(child, wide->gen_bits);
    return 0;
}

/* The references among the wide containers when there is only one, obj,
 * and it returns its array: those to itself, counted in one plain loop. */
static void gc_wide_subtract_self(obj_t *obj)
{
    size_t len;
    obj_t *const *items = obj->type->items(obj, &len);
    uintptr_t self = 0;
    for (size_t i = 0; i < len; i++)
        self += items[i] == obj;
    gc_head_t *gc = gc__head(obj);
    if (HEAP_UNLIKELY(gc->prev >> GC_REFS_SHIFT < self))
        gc_refs_too_small(obj);
    gc->prev -= self << GC_REFS_SHIFT;
}

/* Step 1, the wide containers (see the essay): makes their gc_refs exact,
 * sends the ones at zero back to the tail of young with their references
 * subtracted, and turns the others into survivors of generation new_gen
 * (COLLECTING cleared, so that step 2 leaves them alone), to be linked in
 * after step 2 by gc_wide_link(). */
static void gc_wide_settle(gc_wide_t *wide, gc_head_t *young, unsigned new_gen)
{
    for (unsigned i = 0; i < wide->n; i++) {
        wide->current = i;
        obj_t *obj = gc__obj(wide->member[i]);
        if (wide->n == 1 && obj->type->traverse == obj_traverse_items)
            gc_wide_subtract_self(obj);
        else
            gc_traverse_other(obj, visit_wide_subtract, wide);
    }
    for (unsigned i = 0; i < wide->n; i++) {
        gc_head_t *gc = wide->member[i];
        if (gc->prev >= GC_REFS_ONE)
            continue;
        gc_traverse_other(gc__obj(gc), visit_subtract_unwide, wide);
        gc_head_t *last = (gc_head_t *)young->prev;
        last->next = (uintptr_t)gc;
        gc->next = (uintptr_t)young;
        young->prev = (uintptr_t)gc;
        wide->returned |= (uint32_t)1 << i;
    }
    uintptr_t new_bits = (uintptr_t)new_gen << GC_GEN_SHIFT;
    for (unsigned i = 0; i < wide->n; i++) {
        gc_head_t *gc = wide->member[i];
        if (wide->returned & (uint32_t)1 << i) {
            if ((wide->referrers[i] & ~wide->returned) != 0 && gc->prev < GC_REFS_ONE)
                gc->prev |= GC_REFS_ONE;
        } else {
            gc->prev = (gc->prev & GC_FINALIZED) | new_bits;
        }
    }
}

/* After step 2: links the wide roots at the tail of young; returns their
 * number. */
static uint64_t gc_wide_link(const gc_wide_t *wide, gc_head_t *young)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < wide->n; i++) {
        if (wide->returned & (uint32_t)1 << i)
            continue;
        gc__list_append(wide->member[i], young);
        n++;
    }
    return n;
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
    /* Outside the set, a wide root, or already scanned by move_unreachable. */
    if (!(prev & GC_COLLECTING))
        return 0;
    if (prev < GC_REFS_ONE) {
        /* Ahead of the walk with gc_refs 0 (a parked object's prev is a
         * link): tell the walk it is reachable. */
        gc->prev = prev | GC_REFS_ONE;
    } else if (gc->next & GC_NEXT_UNREACHABLE) {
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
    }
    return 0;
}

/* Step 2 for a reachable member without reference fields, out of line. */
__attribute__((noinline)) static void move_reachable_other(obj_t *obj, gc_head_t *young)
{
    gc_traverse_other(obj, visit_reachable, young);
}

/* Step 2. Splits young (scratch counts in prev, the head's prev pointing at
 * the last member) into the reachable members, left in young with proper
 * links and generation bits new_gen, and the others, moved to unreachable
 * (every next link there carries GC_NEXT_UNREACHABLE until
 * clear_unreachable_mask()). Returns the number of reachable members. */
GC_WALK static uint64_t move_unreachable(gc_head_t *young, gc_head_t *unreachable, unsigned new_gen)
{
    uintptr_t keep_bits = ((uintptr_t)new_gen << GC_GEN_SHIFT);
    uint64_t reachable = 0;
    gc_head_t *prev = young;
    gc_head_t *gc = gc__next(young);
    while (gc != young) {
        __builtin_prefetch((char *)gc + GC_PREFETCH_AHEAD, 1);
        gc_head_t *next = gc__next(gc);
        uintptr_t refs = gc->prev;
        /* Subtracting only ever lowered the scratch count, and marking a
         * member reachable raised it to 1 at most. */
        TICKD_ASSERT(refs >> GC_REFS_SHIFT <= (uintptr_t)gc__obj(gc)->refcnt);
        if (refs >= GC_REFS_ONE) {
            obj_t *obj = gc__obj(gc);
            if (HEAP_LIKELY(obj->type->traverse == obj_traverse_fields))
                gc_traverse_fields(obj, visit_reachable, young);
            else
                move_reachable_other(obj, young);
            /* The traverse appends to young, so it changes gc->next only
             * when gc is the last member. */
            if (HEAP_UNLIKELY(next == young))
                next = gc__next(gc);
            gc->prev = (uintptr_t)prev | (refs & GC_FINALIZED) | keep_bits;
            prev = gc;
            reachable++;
        } else {
            prev->next = (uintptr_t)next;
            gc_head_t *last = (gc_head_t *)unreachable->prev;
            last->next = GC_NEXT_UNREACHABLE | (uintptr_t)gc;
            gc->prev = (uintptr_t)last | (refs & GC_FLAGS_MASK);
            gc->next = GC_NEXT_UNREACHABLE | (uintptr_t)unreachable;
            unreachable->prev = (uintptr_t)gc;
        }
        gc = next;
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
    gc_wide_t wide = {.n = 0};
    subtract_refs(young, gen, &wide);
    gc_wide_settle(&wide, young, new_gen);
    uint64_t survivors = move_unreachable(young, &unreachable, new_gen);
    survivors += gc_wide_link(&wide, young);
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

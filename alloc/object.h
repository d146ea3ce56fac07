/*
 * object.h - refcounted objects on a tickd heap, and their cycle collector.
 *
 * Every object starts with an obj_t header: its type and its reference count.
 * A type is a `static const obj_type_t` that names the object, gives its size
 * (header included) and says how to release what it holds. obj_new() takes a
 * block of the right size class from the heap; obj_incref() and obj_decref()
 * are inline; the decref that drops the count to zero destroys the object on
 * the spot: its type's dealloc releases its children, then the block goes
 * back to its pool. No other thread, no deferred free, no global state: all
 * of it lives in the heap, one per event loop.
 *
 * A type that can hold references to other objects, and so take part in a
 * cycle, is a container: it has traverse (report every reference it holds)
 * and usually clear (drop them). obj_new() puts a GC header in front of each
 * container and tracks it in the youngest generation; the collector
 * (alloc/gc.c) finds containers that only cycles keep alive and breaks those
 * cycles with clear. The collector never runs by itself: the owner of the
 * heap asks gc_should_collect() at a safe point (a loop timer between
 * batches) and calls gc_collect(). alloc/gc.c opens with the design essay.
 *
 * The objects of a heap need its object runtime (the type table, the
 * generations): obj_runtime_create() right after heap_create(), and
 * obj_runtime_destroy() right before heap_destroy(). The heap itself knows
 * nothing of objects.
 *
 * Types register themselves with a heap on first use (or up front with
 * obj_type_register()); each has a small constant slot number, and the heap
 * keeps live / created / destroyed counts per slot for the metrics.
 *
 * obj_runtime_destroy() and heap_destroy() release the memory of objects
 * still alive without running their dealloc or finalize hooks.
 */
#ifndef TICKD_ALLOC_OBJECT_H
#define TICKD_ALLOC_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/alloc.h"
#include "alloc/assert.h"

typedef struct obj obj_t;
typedef struct obj_type obj_type_t;

/*
 * Object header, first member of every object struct. 16 bytes; a container
 * also has a 16-byte GC header right in front of it (alloc/runtime.h).
 */
struct obj {
    /* The object's type; never changes. First, so that in a freed block the
     * pool's free-list link overwrites the type and not the count. */
    const obj_type_t *type;
    /* References held. The object is destroyed when it drops to zero; it is
     * never negative on a live object (obj_decref() checks). */
    intptr_t refcnt;
};

/* Called by traverse for each reference the object holds (never NULL).
 * Returning nonzero stops the traversal and traverse returns that value. */
typedef int (*obj_visit_fn)(obj_t *child, void *arg);

/* Number of type slots a heap keeps counters for. */
#define OBJ_TYPE_SLOTS 64

struct obj_type {
    /* Short name, the `type` label of the tickd_objects metrics. */
    const char *name;
    /* Bytes of the whole object struct, header included (>= sizeof(obj_t)).
     * Containers get their GC header on top of this. */
    size_t size;
    /* 0..OBJ_TYPE_SLOTS-1, unique among the types used on one heap: the
     * index of the type's counters. */
    unsigned slot;
    /* Releases what the object holds (obj_decref() its children) when its
     * count drops to zero. The runtime untracks the object before and frees
     * the block after. NULL when there is nothing to release. */
    void (*dealloc)(heap_t *heap, obj_t *self);
    /* Containers only: calls visit on every reference held, with OBJ_VISIT.
     * Must not change anything. Non-NULL makes the type a container. */
    int (*traverse)(obj_t *self, obj_visit_fn visit, void *arg);
    /* Containers only: drops the references held, each with OBJ_CLEAR, so
     * that the object stays valid (every field NULL or owned) while other
     * members of its cycle still point at it. The collector calls it to
     * break cycles; NULL for a type that cannot drop its references (a cycle
     * made only of such objects is uncollectable). */
    void (*clear)(heap_t *heap, obj_t *self);
    /* Containers only: runs once in the object's life, before clear or
     * dealloc, while the object and everything it points at is intact. It
     * may store a new reference to the object somewhere (resurrection): the
     * object then lives on, and is not finalized again. NULL for none. */
    void (*finalize)(heap_t *heap, obj_t *self);
    /* Containers whose references all sit in fixed pointer fields may list
     * the fields' offsets here (like the slots of a CPython class) and use
     * traverse = obj_traverse_fields, clear = dealloc = obj_clear_fields:
     * the collector then reads the fields itself, with no call per object
     * or per reference. NULL and 0 otherwise. */
    const uint16_t *fields;
    unsigned nfields;
    /* Containers that keep their references in one array (a list; NULL
     * entries allowed) may return it here, with its length in *len, and use
     * traverse = obj_traverse_items: the collector then reads the array
     * itself, with no call per reference. NULL otherwise; a type has fields
     * or items, never both. */
    obj_t *const *(*items)(const obj_t *self, size_t *len);
};

/* traverse of a type that lists its reference fields: visits each non-NULL
 * one in order. */
int obj_traverse_fields(obj_t *self, obj_visit_fn visit, void *arg);

/* clear (and dealloc) of a type that lists its reference fields: drops each
 * one, OBJ_CLEAR style. */
void obj_clear_fields(heap_t *heap, obj_t *self);

/* traverse of a type that returns its reference array (items): visits each
 * non-NULL entry in order. */
int obj_traverse_items(obj_t *self, obj_visit_fn visit, void *arg);

/* Inside a traverse function with parameters named visit and arg: reports
 * child unless it is NULL, and returns early when visit says stop. */
#define OBJ_VISIT(child)                                                                           \
    do {                                                                                           \
        if ((child) != NULL) {                                                                     \
            int obj_visit_ret_ = visit((obj_t *)(child), arg);                                     \
            if (obj_visit_ret_ != 0)                                                               \
                return obj_visit_ret_;                                                             \
        }                                                                                          \
    } while (0)

/* Drops the reference held in field (an lvalue), NULL first and decref
 * after: whatever the decref sets off finds the field already empty. */
#define OBJ_CLEAR(heap, field)                                                                     \
    do {                                                                                           \
        obj_t *obj_clear_tmp_ = (obj_t *)(field);                                                  \
        if (obj_clear_tmp_ != NULL) {                                                              \
            (field) = NULL;                                                                        \
            obj_decref((heap), obj_clear_tmp_);                                                    \
        }                                                                                          \
    } while (0)

/* Attaches the object runtime to heap, which has none: the type table,
 * the generations and the collector's state, everything below needs it.
 * Returns 0, -EEXIST when heap has a runtime already, or -ENOMEM. */
int obj_runtime_create(heap_t *heap);

/* Detaches heap's runtime and frees it; for heap_destroy() next (objects
 * still alive are not released, their blocks go with the heap). NULL, or a
 * heap without a runtime, is ignored. */
void obj_runtime_destroy(heap_t *heap);

/* Registers type with heap ahead of its first obj_new() (so that its counters
 * show up, at zero, from the start). Returns 0 (also when already
 * registered), -EINVAL for a malformed type (slot out of range, size below
 * the header, no name, clear or finalize without traverse, fields that do
 * not fit the object or come without obj_traverse_fields, items without
 * obj_traverse_items or the other way round, fields and items together) or
 * -EEXIST when another type holds the slot. */
int obj_type_register(heap_t *heap, const obj_type_t *type);

/* A new object of type with a count of one, every byte after the header
 * zeroed, and tracked by the collector when type is a container. NULL when
 * memory runs out. Registers the type on first use; a type that
 * obj_type_register() refuses is a programming error and aborts. */
obj_t *obj_new(heap_t *heap, const obj_type_t *type);

/* Counters of one type slot: the runtime's type table (alloc/runtime.h)
 * is an array of them, at the start of the runtime, so that the inline
 * paths below can count without a call. */
typedef struct obj_type_slot {
    /* The type registered in this slot, NULL while the slot is free. */
    const obj_type_t *type;
    uint64_t created;
    uint64_t destroyed;
} obj_type_slot_t;

static inline obj_type_slot_t *obj__type_slots(const heap_t *heap)
{
    return (obj_type_slot_t *)(void *)heap->rt;
}

/* Out-of-line obj_new_uninit(), for what its inline path leaves. */
obj_t *obj__new_uninit(heap_t *heap, const obj_type_t *type);

/* obj_new() for a caller that writes every field of the object right away:
 * the bytes after the header are left as the heap block had them (garbage).
 * The object must be whole before anything can read it: before the caller
 * hands it on, drops it, or lets the collector run (for a container, its
 * traverse reads the reference fields). For the hot path, which creates
 * objects whose fields it then writes anyway: an object of a registered
 * type that is not a container is made inline (heap_alloc()'s fast path,
 * the header, the count), anything else by obj__new_uninit(). */
static inline __attribute__((always_inline)) obj_t *obj_new_uninit(heap_t *heap,
                                                                   const obj_type_t *type)
{
    TICKD_ASSERT(heap->rt != NULL && "obj_runtime_create() comes before obj_new()");
    if (HEAP_LIKELY(type->traverse == NULL && type->slot < OBJ_TYPE_SLOTS &&
                    obj__type_slots(heap)[type->slot].type == type)) {
        obj_t *obj = heap_alloc(heap, type->size);
        if (HEAP_UNLIKELY(obj == NULL))
            return NULL;
        obj->type = type;
        obj->refcnt = 1;
        obj__type_slots(heap)[type->slot].created++;
        return obj;
    }
    return obj__new_uninit(heap, type);
}

/* Makes obj, which only the caller holds (a count of one) and which is not
 * a container, a new object of its type in place: the caller then writes
 * its fields as it would a new one's from obj_new_uninit(), and keeps the
 * references it holds that the new object holds too. Nobody else can tell
 * the new object from a fresh block, since nobody else held the old one.
 * The type's counters say what happened: one object destroyed and one
 * created (live unchanged). For the hot path, where an object replaces
 * another of its type that dies at once (a symbol's last quote): no trip
 * through the heap, no dealloc. */
static inline void obj_renew(heap_t *heap, obj_t *obj)
{
    TICKD_ASSERT(obj->refcnt == 1 && obj->type->traverse == NULL);
    obj_type_slot_t *slot = &obj__type_slots(heap)[obj->type->slot];
    slot->destroyed++;
    slot->created++;
}

/* Slow path of obj_decref(): destroys an object whose count reached zero,
 * and reports an underflow (count below zero) as a fatal error. */
void obj__release(heap_t *heap, obj_t *obj);

static inline void obj_incref(obj_t *obj)
{
    obj->refcnt++;
}

/* Drops a reference; the last one destroys the object (runs finalize if the
 * type has one, untracks it, runs dealloc, frees the block). Releasing more
 * references than were taken aborts with a message; debug mode (dead blocks
 * filled with 0xDD) catches it even after the block was freed. Destruction
 * of long chains is flattened: a few dozen nested deallocs run on the
 * stack, the rest wait on a list that is drained before this returns. */
static inline void obj_decref(heap_t *heap, obj_t *obj)
{
    if (HEAP_UNLIKELY(--obj->refcnt <= 0))
        obj__release(heap, obj);
}

/* obj_decref() for a hot call site: the death of an object that holds
 * nothing (its type has neither traverse nor dealloc: nothing dies with it,
 * there is no nesting to bound) is inline, its block going straight back
 * to the heap's free cache; any other death is obj__release()'s. */
static inline __attribute__((always_inline)) void obj_decref_inline(heap_t *heap, obj_t *obj)
{
    if (HEAP_UNLIKELY(--obj->refcnt <= 0)) {
        const obj_type_t *type = obj->type;
        if (HEAP_LIKELY(obj->refcnt == 0 && type->traverse == NULL && type->dealloc == NULL)) {
            obj__type_slots(heap)[type->slot].destroyed++;
            heap_free(heap, obj);
            return;
        }
        obj__release(heap, obj);
    }
}

/* Counters of one registered type. */
typedef struct obj_type_stats {
    const obj_type_t *type;
    uint64_t live;      /* objects alive now */
    uint64_t created;   /* obj_new() calls that succeeded, and obj_renew() calls */
    uint64_t destroyed; /* objects freed, and objects renewed (obj_renew()) */
} obj_type_stats_t;

/* Counters of type on heap. Returns 0, or -ENOENT when type is not
 * registered there. */
int obj_type_get_stats(const heap_t *heap, const obj_type_t *type, obj_type_stats_t *out);

/* Calls cb for each registered type, in slot order, and stops at the first
 * nonzero return, which it returns; 0 when all were visited. */
int obj_type_foreach(const heap_t *heap, int (*cb)(const obj_type_stats_t *stats, void *arg),
                     void *arg);

/* ---- cycle collector (alloc/gc.c) ---- */

#define GC_NGENERATIONS 3

/* A container reporting at least GC_WIDE_REFS references (an array of
 * items at least that long) is wide: a collection that meets it leaves its
 * references for later, and when the container turns out to be held from
 * outside the collected generations it never visits what they point at,
 * which is reachable anyway (alloc/gc.c); it only reads the pointers once
 * more. At most GC_WIDE_MAX containers per collection are handled so; the
 * others are traversed like any container. */
#define GC_WIDE_REFS 1024
#define GC_WIDE_MAX  8

/* Upper bounds (le) of the pause histogram buckets, in nanoseconds, from 1 us
 * to 1 s; a +Inf bucket is implicit (it is the count). */
#define GC_PAUSE_NBUCKETS 19
extern const uint64_t gc_pause_bounds_ns[GC_PAUSE_NBUCKETS];

/* Pauses of each generation kept one by one, the latest ones (the
 * histogram keeps the rest). */
#define GC_LAST_PAUSES 8

/* Statistics of one generation. */
typedef struct gc_generation_stats {
    uint64_t collections;   /* collections of this generation (and the younger ones) */
    uint64_t collected;     /* unreachable objects those collections freed */
    uint64_t uncollectable; /* unreachable objects they found but could not free */
    uint64_t tracked;       /* containers in this generation now */
    uint64_t count;         /* threshold counter now (see gc_should_collect) */
    uint32_t threshold;
    /* Pause histogram, Prometheus style: pause_buckets[i] counts pauses of at
     * most gc_pause_bounds_ns[i] (cumulative); pause_count is the +Inf bucket. */
    uint64_t pause_buckets[GC_PAUSE_NBUCKETS];
    uint64_t pause_count;
    uint64_t pause_sum_ns;
    /* The latest pauses, newest first: the first min(pause_count,
     * GC_LAST_PAUSES) are valid, the rest 0. */
    uint64_t last_pauses_ns[GC_LAST_PAUSES];
} gc_generation_stats_t;

typedef struct gc_stats {
    gc_generation_stats_t generations[GC_NGENERATIONS];
    uint64_t frozen;             /* containers moved out of reach by gc_freeze() */
    uint64_t long_lived_total;   /* survivors of the last full collection */
    uint64_t long_lived_pending; /* promoted into the oldest generation since */
} gc_stats_t;

/* Collects generation (0..2) and every younger one: finds the containers
 * that only cycles keep alive, runs their finalizers, clears them, and
 * promotes the survivors one generation. Returns the number of objects freed
 * (resurrected and uncollectable ones are not counted), -EINVAL for a bad
 * generation, or -EBUSY when called from inside a collection, a finalizer or
 * a dealloc. Never call it in the middle of work that holds borrowed
 * references it has not counted. */
int64_t gc_collect(heap_t *heap, int generation);

/* The generation a collection at this safe point should cover, or -1: the
 * young count (container allocations minus container deaths since the last
 * collection) is above threshold 0, then the oldest generation whose count
 * exceeds its threshold wins, except that the oldest one waits until the
 * objects promoted into it since the last full collection reach 25% of the
 * ones that survived it. Threshold 0 of generation 0 turns this off. */
int gc_should_collect(const heap_t *heap);

/* Thresholds, CPython's meaning: generation 0 counts container allocations
 * minus deaths, generation 1 counts generation-0 collections, generation 2
 * counts generation-1 collections. Defaults 700, 10, 10. */
void gc_set_thresholds(heap_t *heap, uint32_t gen0, uint32_t gen1, uint32_t gen2);
void gc_get_thresholds(const heap_t *heap, uint32_t out[GC_NGENERATIONS]);

/* Moves every tracked container to a permanent generation that collections
 * ignore (call after start-up has built its long-lived objects); O(tracked).
 * gc_unfreeze() puts them back into the oldest generation. Both return 0 or
 * -EBUSY inside a collection. */
int gc_freeze(heap_t *heap);
int gc_unfreeze(heap_t *heap);

/* Tracking. obj_new() tracks every container; a container that will never
 * be part of a cycle may leave the collector's sight with gc_untrack() and
 * come back with gc_track(). Both are no-ops when there is nothing to do, and
 * both ignore objects that are not containers. */
void gc_track(heap_t *heap, obj_t *obj);
void gc_untrack(heap_t *heap, obj_t *obj);
int gc_is_tracked(const obj_t *obj);

void gc_get_stats(const heap_t *heap, gc_stats_t *out);

#endif

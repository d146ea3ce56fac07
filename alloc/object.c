/*
 * object.c - the life of an object: birth in obj_new(), death when its last
 * reference goes, and the per-heap runtime state both rely on.
 *
 * obj_new() takes one heap block for the whole object (GC header + object
 * header + payload for a container, object header + payload otherwise), so
 * an object costs exactly one size-class block and nothing else. What every
 * object relies on, the type table and the collector's generations, is the
 * runtime: one per heap, made by obj_runtime_create() (the heap below knows
 * it only as a pointer it keeps for us). Death is
 * immediate: obj_decref() falls into obj__release() when the count reaches
 * zero, and the object is finalized (containers with a finalize hook, once),
 * untracked, deallocated (its children released) and its block freed, all
 * before obj_decref() returns.
 *
 * Releasing a child can kill the child, and so on down a chain, so deaths
 * nest. The nesting is bounded (the "trashcan" of CPython): past
 * OBJ_DEALLOC_DEPTH_MAX levels a dead object is queued instead, linked through
 * its refcnt field (nothing else can reach a dead object), and the outermost
 * obj__release() drains the queue. Nothing is left queued when control goes
 * back to the caller, so the collector never sees a queued object.
 *
 * Never frees an object with a reference count above zero; never allocates
 * from the system allocator per object.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/internal.h"
#include "alloc/runtime.h"

int obj_runtime_create(heap_t *heap)
{
    if (heap->rt != NULL)
        return -EEXIST;
    struct obj_runtime *rt = aligned_alloc(_Alignof(struct obj_runtime), sizeof(*rt));
    if (rt == NULL)
        return -ENOMEM;
    memset(rt, 0, sizeof(*rt));
    gc__init(rt);
    heap->rt = rt;
    return 0;
}

void obj_runtime_destroy(heap_t *heap)
{
    if (heap == NULL)
        return;
    free(heap->rt);
    heap->rt = NULL;
}

/* obj_new() but for the payload: a block with the headers written, counted
 * and (a container) tracked. Inlined into both its callers. */
static inline __attribute__((always_inline)) obj_t *obj_alloc(heap_t *heap, const obj_type_t *type)
{
    struct obj_runtime *rt = heap->rt;
    TICKD_ASSERT(rt != NULL && "obj_runtime_create() comes before obj_new()");
    if (HEAP_UNLIKELY(type->slot >= OBJ_TYPE_SLOTS || rt->types[type->slot].type != type))
        obj__type_require(heap, type);

    obj_t *obj;
    if (type->traverse != NULL) {
        gc_head_t *gc = heap_alloc(heap, sizeof(gc_head_t) + type->size);
        if (HEAP_UNLIKELY(gc == NULL))
            return NULL;
        gc->prev = 0;
        gc__track(rt, gc);
        rt->gens[0].count++;
        obj = gc__obj(gc);
    } else {
        obj = heap_alloc(heap, type->size);
        if (HEAP_UNLIKELY(obj == NULL))
            return NULL;
    }
    obj->type = type;
    obj->refcnt = 1;
    rt->types[type->slot].created++;
    return obj;
}

obj_t *obj_new(heap_t *heap, const obj_type_t *type)
{
    obj_t *obj = obj_alloc(heap, type);
    if (HEAP_LIKELY(obj != NULL))
        memset(obj + 1, 0, type->size - sizeof(obj_t));
    return obj;
}

obj_t *obj__new_uninit(heap_t *heap, const obj_type_t *type)
{
    return obj_alloc(heap, type);
}

/* Word an object's refcnt field holds once its block was freed in debug
 * mode (the heap's dead-block fill). */
#define OBJ_DEAD_FILL_WORD UINT64_C(0xDDDDDDDDDDDDDDDD)

__attribute__((noreturn, cold)) static void obj_underflow(const heap_t *heap, const obj_t *obj)
{
    if (heap->debug && (uint64_t)(obj->refcnt + 1) == OBJ_DEAD_FILL_WORD)
        heap__fatal("refcount underflow: obj_decref() on object %p, which is already freed "
                    "(its block holds the 0xDD dead fill): a reference was released twice",
                    (const void *)obj);
    if (heap->debug)
        heap__fatal("refcount underflow: obj_decref() on object %p of type %s took its count "
                    "to %" PRIdPTR ": a reference was released twice",
                    (const void *)obj, obj->type->name, obj->refcnt);
    heap__fatal("refcount underflow: obj_decref() on object %p took its count to %" PRIdPTR
                ": a reference was released twice (set " HEAP_DEBUG_ENV "=1 for a closer check)",
                (const void *)obj, obj->refcnt);
}

/* Finalizes, untracks, deallocates and frees obj, whose count is zero; or
 * stops after finalize when the finalizer resurrected it. */
static inline __attribute__((always_inline)) void obj_destroy(heap_t *heap, struct obj_runtime *rt,
                                                              obj_t *obj)
{
    const obj_type_t *type = obj->type;
    void *block = obj;
    if (type->traverse != NULL) {
        gc_head_t *gc = gc__head(obj);
        if (type->finalize != NULL && !(gc->prev & GC_FINALIZED)) {
            gc->prev |= GC_FINALIZED;
            obj->refcnt = 1;
            type->finalize(heap, obj);
            if (--obj->refcnt != 0) {
                if (HEAP_UNLIKELY(obj->refcnt < 0))
                    obj_underflow(heap, obj);
                return;
            }
        }
        if (gc->next != 0)
            gc__untrack(rt, gc);
        if (rt->gens[0].count > 0)
            rt->gens[0].count--;
        block = gc;
    }
    if (type->dealloc != NULL)
        type->dealloc(heap, obj);
    rt->types[type->slot].destroyed++;
    heap_free(heap, block);
}

void obj__release(heap_t *heap, obj_t *obj)
{
    if (HEAP_UNLIKELY(obj->refcnt < 0))
        obj_underflow(heap, obj);

    struct obj_runtime *rt = heap->rt;
    const obj_type_t *type = obj->type;
    if (type->traverse == NULL && type->dealloc == NULL) {
        /* It holds nothing, so nothing dies with it: no nesting to bound. */
        rt->types[type->slot].destroyed++;
        heap_free(heap, obj);
        return;
    }
    if (HEAP_UNLIKELY(rt->dealloc_depth >= OBJ_DEALLOC_DEPTH_MAX)) {
        obj->refcnt = (intptr_t)rt->deferred;
        rt->deferred = obj;
        return;
    }
    rt->dealloc_depth++;
    obj_destroy(heap, rt, obj);
    if (--rt->dealloc_depth != 0 || HEAP_LIKELY(rt->deferred == NULL))
        return;

    rt->dealloc_depth = 1;
    while ((obj = rt->deferred) != NULL) {
        rt->deferred = (obj_t *)obj->refcnt;
        obj->refcnt = 0;
        obj_destroy(heap, rt, obj);
    }
    rt->dealloc_depth = 0;
}

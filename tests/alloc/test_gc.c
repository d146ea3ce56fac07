/*
 * test_gc.c - tests of the cycle collector: alloc/gc.c (a collection),
 * alloc/gcgen.c (generations, thresholds, freezing, tracking) and
 * alloc/gcstats.c (what it reports).
 *
 * The test types record their own deaths in a world_t (one byte per object
 * id), so a test can tell which objects a collection freed without touching
 * freed memory. Shapes: self cycles, 2-cycles, long rings, cycles kept from
 * outside, cycles hanging off garbage, references across generations; then
 * finalizers (once, before clear; resurrection), clear order, uncollectable
 * cycles, thresholds and freezing; then wide containers, which the
 * collector sets aside (held from outside, holding themselves, held only by
 * another wide one, holding each other, more of them than it sets aside);
 * then 100,000 random graphs, and 20,000 with wide bags, checked against a
 * reachability computed by the test. Every test ends with an empty
 * heap, checked through heap_get_stats(). Nothing here asserts a timing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc/object.h"
#include "tests/alloc/support_obj.h"

/* Objects tracked in generation gen of heap. */
static uint64_t tracked_in(const heap_t *heap, unsigned gen)
{
    gc_stats_t st;
    gc_get_stats(heap, &st);
    return st.generations[gen].tracked;
}

/* ---- the world: object ids and their fate ---- */

#define WORLD_MAX 200000

typedef struct world {
    uint32_t next_id;
    uint32_t deaths;
    uint32_t container_deaths;
    uint32_t bad_peers; /* clear or dealloc found a freed peer */
    uint8_t dead[WORLD_MAX];
    uint8_t finalized[WORLD_MAX];
    uint8_t cleared_before_finalize[WORLD_MAX];
    uint8_t cleared[WORLD_MAX];
    /* Finalizers resurrect the object with this id (into saved). */
    uint32_t resurrect_id;
    obj_t *saved;
    heap_t *heap;
    int64_t collect_from_finalizer; /* what gc_collect() said inside one */
} world_t;

static world_t *world_new(heap_t *heap)
{
    world_t *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->resurrect_id = UINT32_MAX;
    w->heap = heap;
    return w;
}

#define NODE_REFS    3
#define NODE_MAGIC   0x6e6f6465u
#define NO_RESURRECT UINT32_MAX

/* A container with NODE_REFS listed reference fields. */
typedef struct node {
    obj_t ob;
    obj_t *ref[NODE_REFS];
    world_t *w;
    uint32_t id;
    uint32_t magic;
} node_t;

static const uint16_t node_fields[NODE_REFS] = {
    offsetof(node_t, ref[0]),
    offsetof(node_t, ref[1]),
    offsetof(node_t, ref[2]),
};

static void node_died(node_t *n)
{
    n->w->dead[n->id] = 1;
    n->w->deaths++;
    n->w->container_deaths++;
    n->magic = 0;
}

static void node_dealloc(heap_t *heap, obj_t *self)
{
    node_died((node_t *)self);
    obj_clear_fields(heap, self);
}

static const obj_type_t node_type = {
    .name = "node",
    .size = sizeof(node_t),
    .slot = 0,
    .dealloc = node_dealloc,
    .traverse = obj_traverse_fields,
    .clear = obj_clear_fields,
    .fields = node_fields,
    .nfields = NODE_REFS,
};

/* The same with a finalizer: counts, remembers whether clear came first,
 * resurrects the chosen id, and tries a nested collection. */
static void fnode_finalize(heap_t *heap, obj_t *self)
{
    node_t *n = (node_t *)self;
    world_t *w = n->w;
    w->finalized[n->id]++;
    if (w->cleared[n->id])
        w->cleared_before_finalize[n->id] = 1;
    w->collect_from_finalizer = gc_collect(heap, 0);
    if (n->id == w->resurrect_id) {
        obj_incref(self);
        w->saved = self;
        w->resurrect_id = NO_RESURRECT;
    }
}

static void fnode_clear(heap_t *heap, obj_t *self)
{
    node_t *n = (node_t *)self;
    n->w->cleared[n->id] = 1;
    obj_clear_fields(heap, self);
}

static const obj_type_t fnode_type = {
    .name = "fnode",
    .size = sizeof(node_t),
    .slot = 1,
    .dealloc = node_dealloc,
    .traverse = obj_traverse_fields,
    .clear = fnode_clear,
    .finalize = fnode_finalize,
    .fields = node_fields,
    .nfields = NODE_REFS,
};

/* The same without clear: a cycle of these cannot be broken. */
static const obj_type_t clinging_type = {
    .name = "clinging",
    .size = sizeof(node_t),
    .slot = 2,
    .dealloc = node_dealloc,
    .traverse = obj_traverse_fields,
    .fields = node_fields,
    .nfields = NODE_REFS,
};

/* A node whose clear and dealloc check that what ref[0] points at is still
 * a live node (its magic intact) before dropping it. */
static void check_peer(node_t *n)
{
    node_t *peer = (node_t *)n->ref[0];
    if (peer != NULL && peer->magic != NODE_MAGIC)
        n->w->bad_peers++;
}

static void watch_clear(heap_t *heap, obj_t *self)
{
    check_peer((node_t *)self);
    obj_clear_fields(heap, self);
}

static void watch_dealloc(heap_t *heap, obj_t *self)
{
    check_peer((node_t *)self);
    node_dealloc(heap, self);
}

static const obj_type_t watch_type = {
    .name = "watch",
    .size = sizeof(node_t),
    .slot = 3,
    .dealloc = watch_dealloc,
    .traverse = obj_traverse_fields,
    .clear = watch_clear,
    .fields = node_fields,
    .nfields = NODE_REFS,
};

/* A container with its own traverse and clear over a growable array. */
typedef struct bag {
    obj_t ob;
    world_t *w;
    uint32_t id;
    uint32_t len;
    uint32_t cap;
    obj_t **items;
} bag_t;

static int bag_traverse(obj_t *self, obj_visit_fn visit, void *arg)
{
    bag_t *b = (bag_t *)self;
    for (uint32_t i = 0; i < b->len; i++)
        OBJ_VISIT(b->items[i]);
    return 0;
}

static void bag_clear(heap_t *heap, obj_t *self)
{
    bag_t *b = (bag_t *)self;
    while (b->len > 0) {
        obj_t *item = b->items[--b->len];
        obj_decref(heap, item);
    }
}

static void bag_dealloc(heap_t *heap, obj_t *self)
{
    bag_t *b = (bag_t *)self;
    b->w->dead[b->id] = 1;
    b->w->deaths++;
    b->w->container_deaths++;
    bag_clear(heap, self);
    heap_free(heap, b->items);
}

static const obj_type_t bag_type = {
    .name = "bag",
    .size = sizeof(bag_t),
    .slot = 4,
    .dealloc = bag_dealloc,
    .traverse = bag_traverse,
    .clear = bag_clear,
};

static obj_t *const *bag_items(const obj_t *self, size_t *len)
{
    const bag_t *b = (const bag_t *)self;
    *len = b->len;
    return b->items;
}

/* The same bag handing the collector its array (obj_traverse_items). */
static const obj_type_t ibag_type = {
    .name = "ibag",
    .size = sizeof(bag_t),
    .slot = 8,
    .dealloc = bag_dealloc,
    .traverse = obj_traverse_items,
    .clear = bag_clear,
    .items = bag_items,
};

/* A plain object (not a container). */
typedef struct leaf {
    obj_t ob;
    world_t *w;
    uint32_t id;
} leaf_t;

static void leaf_dealloc(heap_t *heap, obj_t *self)
{
    (void)heap;
    leaf_t *l = (leaf_t *)self;
    l->w->dead[l->id] = 1;
    l->w->deaths++;
}

static const obj_type_t leaf_type = {
    .name = "leaf",
    .size = sizeof(leaf_t),
    .slot = 5,
    .dealloc = leaf_dealloc,
};

static node_t *new_node_of(heap_t *heap, world_t *w, const obj_type_t *type)
{
    assert_true(w->next_id < WORLD_MAX);
    node_t *n = (node_t *)obj_new(heap, type);
    assert_non_null(n);
    n->w = w;
    n->id = w->next_id++;
    n->magic = NODE_MAGIC;
    return n;
}

static node_t *new_node(heap_t *heap, world_t *w)
{
    return new_node_of(heap, w, &node_type);
}

static bag_t *new_bag(heap_t *heap, world_t *w, const obj_type_t *type)
{
    assert_true(w->next_id < WORLD_MAX);
    bag_t *b = (bag_t *)obj_new(heap, type);
    assert_non_null(b);
    b->w = w;
    b->id = w->next_id++;
    return b;
}

static leaf_t *new_leaf(heap_t *heap, world_t *w)
{
    assert_true(w->next_id < WORLD_MAX);
    leaf_t *l = (leaf_t *)obj_new(heap, &leaf_type);
    assert_non_null(l);
    l->w = w;
    l->id = w->next_id++;
    return l;
}

/* from->ref[slot] = to, with a new reference. */
static void link_ref(node_t *from, int slot, void *to)
{
    assert_null(from->ref[slot]);
    obj_incref(to);
    from->ref[slot] = to;
}

static void bag_add(heap_t *heap, bag_t *b, void *item)
{
    if (b->len == b->cap) {
        uint32_t cap = b->cap ? 2 * b->cap : 4;
        obj_t **items = heap_alloc(heap, cap * sizeof(*items));
        assert_non_null(items);
        if (b->len)
            memcpy(items, b->items, b->len * sizeof(*items));
        heap_free(heap, b->items);
        b->items = items;
        b->cap = cap;
    }
    obj_incref(item);
    b->items[b->len++] = item;
}

static void drop(heap_t *heap, void *o)
{
    obj_decref(heap, o);
}

/* ---- the basic shapes ---- */

static void test_self_cycle_is_collected(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node(heap, w);
    link_ref(a, 0, a);
    drop(heap, a);
    assert_int_equal(w->deaths, 0);
    assert_int_equal(gc_collect(heap, 0), 1);
    assert_true(w->dead[0]);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_two_cycle_is_collected(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node(heap, w);
    node_t *b = new_node(heap, w);
    link_ref(a, 0, b);
    link_ref(b, 0, a);
    drop(heap, a);
    drop(heap, b);
    assert_int_equal(w->deaths, 0);
    assert_int_equal(gc_collect(heap, 0), 2);
    assert_int_equal(w->deaths, 2);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_ring_of_100000_is_collected_without_deep_recursion(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    world_t *w = world_new(heap);
    node_t *first = new_node(heap, w);
    node_t *prev = first;
    for (int i = 1; i < 100000; i++) {
        node_t *n = new_node(heap, w);
        link_ref(prev, 0, n);
        drop(heap, n);
        prev = n;
    }
    link_ref(prev, 0, first);
    drop(heap, first);
    assert_int_equal(w->deaths, 0);
    assert_int_equal(gc_collect(heap, 2), 100000);
    assert_int_equal(w->deaths, 100000);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_cycle_reachable_from_outside_is_kept_intact(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node(heap, w);
    node_t *b = new_node(heap, w);
    node_t *c = new_node(heap, w);
    link_ref(a, 0, b);
    link_ref(b, 0, c);
    link_ref(c, 0, a);
    drop(heap, b);
    drop(heap, c);
    /* The test still holds a. */
    for (int gen = 0; gen < GC_NGENERATIONS; gen++)
        assert_int_equal(gc_collect(heap, gen), 0);
    assert_int_equal(w->deaths, 0);
    assert_int_equal(a->magic, NODE_MAGIC);
    assert_ptr_equal(a->ref[0], b);
    assert_ptr_equal(b->ref[0], c);
    assert_ptr_equal(c->ref[0], a);
    assert_int_equal(a->ob.refcnt, 2);
    assert_int_equal(tracked_in(heap, 2), 3);
    drop(heap, a);
    assert_int_equal(gc_collect(heap, 2), 3);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_cycle_hanging_off_an_object_freed_by_refcount_is_collected(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *g = new_node(heap, w); /* no cycle: dies by refcount */
    node_t *c1 = new_node(heap, w);
    node_t *c2 = new_node(heap, w);
    link_ref(g, 0, c1);
    link_ref(c1, 0, c2);
    link_ref(c2, 0, c1);
    drop(heap, c1);
    drop(heap, c2);
    drop(heap, g);
    assert_int_equal(w->deaths, 1);
    assert_int_equal(gc_collect(heap, 0), 2);
    assert_int_equal(w->deaths, 3);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_cycle_hanging_off_a_garbage_cycle_is_collected_with_it(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *g1 = new_node(heap, w);
    node_t *g2 = new_node(heap, w);
    node_t *c1 = new_node(heap, w);
    node_t *c2 = new_node(heap, w);
    leaf_t *l = new_leaf(heap, w); /* a plain object hanging off the garbage */
    link_ref(g1, 0, g2);
    link_ref(g2, 0, g1);
    link_ref(g2, 1, c1);
    link_ref(c1, 0, c2);
    link_ref(c2, 0, c1);
    link_ref(c2, 1, l);
    drop(heap, g1);
    drop(heap, g2);
    drop(heap, c1);
    drop(heap, c2);
    drop(heap, l);
    assert_int_equal(w->deaths, 0);
    assert_int_equal(gc_collect(heap, 0), 4);
    assert_int_equal(w->deaths, 5);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_objects_that_only_garbage_refers_to_are_freed_and_held_ones_kept(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node(heap, w);
    node_t *b = new_node(heap, w);
    node_t *kept = new_node(heap, w);
    leaf_t *kept_leaf = new_leaf(heap, w);
    link_ref(a, 0, b);
    link_ref(b, 0, a);
    link_ref(a, 1, kept);
    link_ref(b, 1, kept_leaf);
    drop(heap, a);
    drop(heap, b);
    assert_int_equal(gc_collect(heap, 0), 2);
    assert_false(w->dead[kept->id]);
    assert_false(w->dead[kept_leaf->id]);
    assert_int_equal(kept->ob.refcnt, 1);
    assert_int_equal(kept_leaf->ob.refcnt, 1);
    drop(heap, kept);
    drop(heap, kept_leaf);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

/* ---- generations ---- */

static void test_survivors_are_promoted_one_generation_per_collection(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    world_t *w = world_new(heap);
    node_t *n[3];
    for (int i = 0; i < 3; i++)
        n[i] = new_node(heap, w);
    assert_int_equal(tracked_in(heap, 0), 3);
    assert_int_equal(gc_collect(heap, 0), 0);
    assert_int_equal(tracked_in(heap, 0), 0);
    assert_int_equal(tracked_in(heap, 1), 3);
    node_t *young = new_node(heap, w);
    assert_int_equal(gc_collect(heap, 1), 0); /* merges generation 0 into 1 */
    assert_int_equal(tracked_in(heap, 0), 0);
    assert_int_equal(tracked_in(heap, 1), 0);
    assert_int_equal(tracked_in(heap, 2), 4);
    assert_int_equal(gc_collect(heap, 2), 0);
    assert_int_equal(tracked_in(heap, 2), 4);
    for (int i = 0; i < 3; i++)
        drop(heap, n[i]);
    drop(heap, young);
    assert_int_equal(tracked_in(heap, 2), 0);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_young_cycle_held_by_an_old_object_survives_young_collections(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *old = new_node(heap, w);
    assert_int_equal(gc_collect(heap, 2), 0);
    node_t *y1 = new_node(heap, w);
    node_t *y2 = new_node(heap, w);
    link_ref(y1, 0, y2);
    link_ref(y2, 0, y1);
    link_ref(old, 0, y1); /* old -> young */
    drop(heap, y1);
    drop(heap, y2);
    assert_int_equal(gc_collect(heap, 0), 0);
    assert_int_equal(tracked_in(heap, 1), 2);
    assert_int_equal(w->deaths, 0);
    OBJ_CLEAR(heap, old->ref[0]);
    assert_int_equal(gc_collect(heap, 1), 2);
    assert_int_equal(w->deaths, 2);
    drop(heap, old);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_young_garbage_pointing_into_old_generation_leaves_it_alive(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *old = new_node(heap, w);
    assert_int_equal(gc_collect(heap, 2), 0);
    node_t *y1 = new_node(heap, w);
    node_t *y2 = new_node(heap, w);
    link_ref(y1, 0, y2);
    link_ref(y2, 0, y1);
    link_ref(y1, 1, old); /* young -> old */
    drop(heap, y1);
    drop(heap, y2);
    assert_int_equal(old->ob.refcnt, 2);
    assert_int_equal(gc_collect(heap, 0), 2);
    assert_false(w->dead[old->id]);
    assert_int_equal(old->ob.refcnt, 1);
    assert_int_equal(tracked_in(heap, 2), 1);
    drop(heap, old);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_cycle_spanning_generations_waits_for_the_older_collection(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *old = new_node(heap, w);
    assert_int_equal(gc_collect(heap, 2), 0);
    node_t *young = new_node(heap, w);
    link_ref(old, 0, young);
    link_ref(young, 0, old);
    drop(heap, old);
    drop(heap, young);
    /* Generation 0 alone sees an outside reference (from old). */
    assert_int_equal(gc_collect(heap, 0), 0);
    assert_int_equal(gc_collect(heap, 1), 0);
    assert_int_equal(w->deaths, 0);
    assert_int_equal(gc_collect(heap, 2), 2);
    assert_int_equal(w->deaths, 2);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_old_garbage_cycle_is_left_alone_by_younger_collections(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node(heap, w);
    node_t *b = new_node(heap, w);
    link_ref(a, 0, b);
    link_ref(b, 0, a);
    assert_int_equal(gc_collect(heap, 2), 0);
    drop(heap, a);
    drop(heap, b);
    assert_int_equal(gc_collect(heap, 0), 0);
    assert_int_equal(gc_collect(heap, 1), 0);
    assert_int_equal(w->deaths, 0);
    assert_int_equal(gc_collect(heap, 2), 2);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

/* ---- thresholds ---- */

static void test_default_thresholds_are_700_10_10_and_can_be_changed(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    uint32_t t[GC_NGENERATIONS];
    gc_get_thresholds(heap, t);
    assert_int_equal(t[0], 700);
    assert_int_equal(t[1], 10);
    assert_int_equal(t[2], 10);
    gc_set_thresholds(heap, 5, 6, 7);
    gc_get_thresholds(heap, t);
    assert_int_equal(t[0], 5);
    assert_int_equal(t[1], 6);
    assert_int_equal(t[2], 7);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_young_collection_is_due_when_allocations_minus_deaths_pass_700(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    world_t *w = world_new(heap);
    node_t *n[701];
    for (int i = 0; i < 700; i++)
        n[i] = new_node(heap, w);
    assert_int_equal(gc_should_collect(heap), -1);
    leaf_t *l = new_leaf(heap, w); /* plain objects do not count */
    assert_int_equal(gc_should_collect(heap), -1);
    n[700] = new_node(heap, w);
    assert_int_equal(gc_should_collect(heap), 0);
    drop(heap, n[700]);
    assert_int_equal(gc_should_collect(heap), -1);
    n[700] = new_node(heap, w);
    assert_int_equal(gc_should_collect(heap), 0);
    assert_int_equal(gc_collect(heap, 0), 0);
    assert_int_equal(gc_should_collect(heap), -1);
    for (int i = 0; i <= 700; i++)
        drop(heap, n[i]);
    drop(heap, l);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_threshold_zero_turns_automatic_collection_off(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    world_t *w = world_new(heap);
    gc_set_thresholds(heap, 0, 10, 10);
    node_t *n[3];
    for (int i = 0; i < 3; i++)
        n[i] = new_node(heap, w);
    assert_int_equal(gc_should_collect(heap), -1);
    for (int i = 0; i < 3; i++)
        drop(heap, n[i]);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

/* Allocates count nodes held by the test in keep[], sets them due. */
static void allocate_held(heap_t *heap, world_t *w, node_t **keep, int *nkeep, int count)
{
    for (int i = 0; i < count; i++)
        keep[(*nkeep)++] = new_node(heap, w);
}

static void
test_middle_generation_is_due_after_more_young_collections_than_its_threshold(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    world_t *w = world_new(heap);
    gc_set_thresholds(heap, 2, 3, 100);
    node_t *keep[64];
    int nkeep = 0;
    for (int round = 0; round < 4; round++) {
        allocate_held(heap, w, keep, &nkeep, 3);
        assert_int_equal(gc_should_collect(heap), 0);
        assert_int_equal(gc_collect(heap, 0), 0);
    }
    gc_stats_t st;
    gc_get_stats(heap, &st);
    assert_int_equal(st.generations[1].count, 4);
    assert_int_equal(gc_should_collect(heap), -1); /* generation 0 is not due */
    allocate_held(heap, w, keep, &nkeep, 3);
    assert_int_equal(gc_should_collect(heap), 1);
    assert_int_equal(gc_collect(heap, 1), 0);
    gc_get_stats(heap, &st);
    assert_int_equal(st.generations[0].count, 0);
    assert_int_equal(st.generations[1].count, 0);
    assert_int_equal(st.generations[2].count, 1);
    for (int i = 0; i < nkeep; i++)
        drop(heap, keep[i]);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_full_collection_waits_until_pending_long_lived_reach_a_quarter(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    world_t *w = world_new(heap);
    node_t *keep[200];
    int nkeep = 0;
    allocate_held(heap, w, keep, &nkeep, 100);
    assert_int_equal(gc_collect(heap, 2), 0);
    gc_stats_t st;
    gc_get_stats(heap, &st);
    assert_int_equal(st.long_lived_total, 100);
    assert_int_equal(st.long_lived_pending, 0);

    /* Every young allocation makes a collection due, and generation 2 is
     * over its threshold after the first generation-1 collection; it must
     * still wait while fewer than 25 objects were promoted into it. */
    gc_set_thresholds(heap, 1, 0, 0);
    for (int round = 1;; round++) {
        allocate_held(heap, w, keep, &nkeep, 2);
        gc_get_stats(heap, &st);
        assert_int_equal(st.long_lived_pending, 2 * (round - 1));
        assert_int_equal(st.generations[2].count, round - 1);
        if (st.long_lived_pending < 25) {
            assert_int_equal(gc_should_collect(heap), 0);
        } else {
            assert_int_equal(gc_should_collect(heap), 2);
            break;
        }
        assert_int_equal(gc_collect(heap, 1), 0);
    }
    assert_int_equal(gc_collect(heap, 2), 0);
    gc_get_stats(heap, &st);
    assert_int_equal(st.long_lived_pending, 0);
    assert_int_equal(st.long_lived_total, nkeep);
    for (int i = 0; i < nkeep; i++)
        drop(heap, keep[i]);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

/* ---- freeze, tracking ---- */

static void test_frozen_objects_are_ignored_until_unfrozen(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node(heap, w);
    node_t *b = new_node(heap, w);
    link_ref(a, 0, b);
    link_ref(b, 0, a);
    node_t *held = new_node(heap, w);
    assert_int_equal(gc_collect(heap, 0), 0);
    assert_int_equal(gc_freeze(heap), 0);
    gc_stats_t st;
    gc_get_stats(heap, &st);
    assert_int_equal(st.frozen, 3);
    assert_int_equal(st.generations[0].count, 0);
    for (unsigned g = 0; g < GC_NGENERATIONS; g++)
        assert_int_equal(st.generations[g].tracked, 0);
    drop(heap, a);
    drop(heap, b);
    for (int gen = 0; gen < GC_NGENERATIONS; gen++)
        assert_int_equal(gc_collect(heap, gen), 0);
    assert_int_equal(w->deaths, 0);
    drop(heap, held); /* a frozen object can still die by refcount */
    gc_get_stats(heap, &st);
    assert_int_equal(st.frozen, 2);
    assert_int_equal(gc_unfreeze(heap), 0);
    gc_get_stats(heap, &st);
    assert_int_equal(st.frozen, 0);
    assert_int_equal(st.generations[2].tracked, 2);
    assert_int_equal(gc_collect(heap, 2), 2);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_untracked_cycle_is_invisible_until_tracked_again(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node(heap, w);
    node_t *b = new_node(heap, w);
    leaf_t *l = new_leaf(heap, w);
    link_ref(a, 0, b);
    link_ref(b, 0, a);
    gc_untrack(heap, &a->ob);
    gc_untrack(heap, &a->ob); /* no-op */
    gc_untrack(heap, &l->ob); /* not a container: no-op */
    gc_track(heap, &l->ob);
    assert_false(gc_is_tracked(&a->ob));
    assert_false(gc_is_tracked(&l->ob));
    assert_int_equal(tracked_in(heap, 0), 1);
    drop(heap, a);
    drop(heap, b);
    /* b's only reference comes from a, which the collector cannot see. */
    assert_int_equal(gc_collect(heap, 2), 0);
    assert_int_equal(w->deaths, 0);
    gc_track(heap, &a->ob);
    gc_track(heap, &a->ob); /* no-op */
    assert_true(gc_is_tracked(&a->ob));
    assert_int_equal(tracked_in(heap, 0), 1);
    assert_int_equal(gc_collect(heap, 2), 2);
    drop(heap, l);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

/* ---- finalizers, clear ---- */

static void test_finalizer_runs_once_before_clear_and_not_on_a_later_death(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node_of(heap, w, &fnode_type);
    node_t *b = new_node_of(heap, w, &fnode_type);
    link_ref(a, 0, b);
    link_ref(b, 0, a);
    drop(heap, a);
    drop(heap, b);
    w->collect_from_finalizer = 1;
    assert_int_equal(gc_collect(heap, 0), 2);
    assert_int_equal(w->finalized[0], 1);
    assert_int_equal(w->finalized[1], 1);
    assert_false(w->cleared_before_finalize[0]);
    assert_false(w->cleared_before_finalize[1]);
    assert_int_equal(w->collect_from_finalizer, -EBUSY);
    assert_int_equal(w->deaths, 2);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_object_resurrected_by_its_finalizer_is_kept_with_what_it_holds(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node_of(heap, w, &fnode_type);
    node_t *b = new_node_of(heap, w, &fnode_type);
    node_t *c = new_node(heap, w);
    link_ref(a, 0, b);
    link_ref(b, 0, a);
    link_ref(b, 1, c);
    drop(heap, a);
    drop(heap, b);
    drop(heap, c);
    w->resurrect_id = a->id;
    assert_int_equal(gc_collect(heap, 0), 0);
    assert_ptr_equal(w->saved, a);
    assert_int_equal(w->finalized[a->id], 1);
    assert_int_equal(w->finalized[b->id], 1);
    assert_int_equal(w->deaths, 0);
    assert_false(w->cleared[a->id]);
    assert_false(w->cleared[b->id]);
    assert_ptr_equal(a->ref[0], b);
    assert_ptr_equal(b->ref[1], c);
    assert_int_equal(tracked_in(heap, 1), 3);
    gc_stats_t st;
    gc_get_stats(heap, &st);
    assert_int_equal(st.generations[0].collected, 0);
    assert_int_equal(st.generations[0].uncollectable, 0);

    drop(heap, w->saved);
    assert_int_equal(gc_collect(heap, 1), 3);
    assert_int_equal(w->finalized[0], 1);
    assert_int_equal(w->finalized[1], 1);
    assert_int_equal(w->deaths, 3);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

/* A finalizer that breaks its own cycle: the objects die during
 * finalization and still count as collected. */
static void breaker_finalize(heap_t *heap, obj_t *self)
{
    node_t *n = (node_t *)self;
    n->w->finalized[n->id]++;
    obj_clear_fields(heap, self);
}

static const obj_type_t breaker_type = {
    .name = "breaker",
    .size = sizeof(node_t),
    .slot = 6,
    .dealloc = node_dealloc,
    .traverse = obj_traverse_fields,
    .clear = obj_clear_fields,
    .finalize = breaker_finalize,
    .fields = node_fields,
    .nfields = NODE_REFS,
};

static void test_objects_freed_by_a_finalizer_count_as_collected(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node_of(heap, w, &breaker_type);
    node_t *b = new_node(heap, w);
    node_t *c = new_node(heap, w);
    link_ref(a, 0, b);
    link_ref(b, 0, c);
    link_ref(c, 0, a);
    uint32_t a_id = a->id;
    drop(heap, a);
    drop(heap, b);
    drop(heap, c);
    assert_int_equal(gc_collect(heap, 0), 3);
    assert_int_equal(w->finalized[a_id], 1);
    assert_int_equal(w->deaths, 3);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_cleared_object_stays_valid_while_its_cycle_still_points_at_it(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON); /* freed memory reads 0xDD */
    world_t *w = world_new(heap);
    enum { N = 5 };
    node_t *ring[N];
    for (int i = 0; i < N; i++)
        ring[i] = new_node_of(heap, w, &watch_type);
    for (int i = 0; i < N; i++) {
        link_ref(ring[i], 0, ring[(i + 1) % N]);
        link_ref(ring[i], 1, ring[(i + 2) % N]); /* more than one path */
    }
    for (int i = 0; i < N; i++)
        drop(heap, ring[i]);
    assert_int_equal(gc_collect(heap, 0), N);
    assert_int_equal(w->bad_peers, 0);
    assert_int_equal(w->deaths, N);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_cycle_of_objects_without_clear_is_counted_uncollectable_and_kept(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    node_t *a = new_node_of(heap, w, &clinging_type);
    node_t *b = new_node_of(heap, w, &clinging_type);
    link_ref(a, 0, b);
    link_ref(b, 0, a);
    drop(heap, a);
    drop(heap, b);
    assert_int_equal(gc_collect(heap, 0), 0);
    gc_stats_t st;
    gc_get_stats(heap, &st);
    assert_int_equal(st.generations[0].uncollectable, 2);
    assert_int_equal(st.generations[0].collected, 0);
    assert_int_equal(st.generations[1].tracked, 2);
    assert_int_equal(w->deaths, 0);
    /* The owner breaks the cycle by hand. */
    OBJ_CLEAR(heap, a->ref[0]);
    assert_int_equal(w->deaths, 2);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

/* A cycle of a clinging object and a node: the node's clear frees both,
 * whichever the collector clears first. */
static void test_object_without_clear_is_freed_when_a_cycle_partner_clears(void **state)
{
    (void)state;
    for (int order = 0; order < 2; order++) {
        heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
        world_t *w = world_new(heap);
        node_t *s, *n;
        if (order == 0) {
            s = new_node_of(heap, w, &clinging_type);
            n = new_node(heap, w);
        } else {
            n = new_node(heap, w);
            s = new_node_of(heap, w, &clinging_type);
        }
        link_ref(s, 0, n);
        link_ref(n, 0, s);
        drop(heap, s);
        drop(heap, n);
        assert_int_equal(gc_collect(heap, 0), 2);
        gc_stats_t st;
        gc_get_stats(heap, &st);
        assert_int_equal(st.generations[0].uncollectable, 0);
        free(w);
        heap_assert_gc_empty_and_destroy(heap);
    }
}

/* ---- stats and errors ---- */

static void test_stats_count_collections_collected_objects_and_pauses(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    world_t *w = world_new(heap);
    for (int round = 0; round < 3; round++) {
        node_t *a = new_node(heap, w);
        link_ref(a, 0, a);
        drop(heap, a);
        assert_int_equal(gc_collect(heap, 0), 1);
    }
    assert_int_equal(gc_collect(heap, 2), 0);
    gc_stats_t st;
    gc_get_stats(heap, &st);
    assert_int_equal(st.generations[0].collections, 3);
    assert_int_equal(st.generations[0].collected, 3);
    assert_int_equal(st.generations[1].collections, 0);
    assert_int_equal(st.generations[2].collections, 1);
    assert_int_equal(st.generations[0].pause_count, 3);
    assert_int_equal(st.generations[1].pause_count, 0);
    assert_int_equal(st.generations[2].pause_count, 1);
    for (unsigned g = 0; g < GC_NGENERATIONS; g++) {
        const gc_generation_stats_t *gs = &st.generations[g];
        for (unsigned i = 1; i < GC_PAUSE_NBUCKETS; i++) {
            assert_true(gs->pause_buckets[i] >= gs->pause_buckets[i - 1]);
            assert_true(gc_pause_bounds_ns[i] > gc_pause_bounds_ns[i - 1]);
        }
        assert_true(gs->pause_buckets[GC_PAUSE_NBUCKETS - 1] <= gs->pause_count);
        if (gs->pause_count == 0)
            assert_int_equal(gs->pause_sum_ns, 0);
    }
    assert_int_equal(gc_pause_bounds_ns[0], 1000);
    assert_int_equal(gc_pause_bounds_ns[GC_PAUSE_NBUCKETS - 1], 1000000000);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

/* A container whose finalizer takes a while: a collection that finalizes
 * one pauses at least that long. */
#define SLOW_FINALIZE_NS 3000000

static void slow_finalize(heap_t *heap, obj_t *self)
{
    (void)heap;
    (void)self;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec) < SLOW_FINALIZE_NS);
}

static const obj_type_t slow_type = {
    .name = "slow",
    .size = sizeof(node_t),
    .slot = 9,
    .dealloc = node_dealloc,
    .traverse = obj_traverse_fields,
    .clear = obj_clear_fields,
    .finalize = slow_finalize,
    .fields = node_fields,
    .nfields = NODE_REFS,
};

/* The latest pauses come newest first: a slow collection (a finalizer of
 * 3 ms) followed by two quick ones shows as [quick, quick, slow, 0...];
 * past GC_LAST_PAUSES collections only the latest are kept, and a
 * generation never collected has none. */
static void test_stats_keep_the_latest_pauses_newest_first(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    world_t *w = world_new(heap);
    node_t *a = new_node_of(heap, w, &slow_type);
    link_ref(a, 0, a);
    drop(heap, a);
    assert_int_equal(gc_collect(heap, 0), 1);
    assert_int_equal(gc_collect(heap, 0), 0);
    assert_int_equal(gc_collect(heap, 0), 0);
    gc_stats_t st;
    gc_get_stats(heap, &st);
    const uint64_t *last = st.generations[0].last_pauses_ns;
    assert_true(last[2] >= SLOW_FINALIZE_NS);
    assert_true(last[0] > 0 && last[0] < last[2]);
    assert_true(last[1] > 0 && last[1] < last[2]);
    for (unsigned i = 3; i < GC_LAST_PAUSES; i++)
        assert_int_equal(last[i], 0);
    assert_int_equal(last[0] + last[1] + last[2], st.generations[0].pause_sum_ns);
    for (unsigned i = 0; i < GC_LAST_PAUSES; i++)
        assert_int_equal(st.generations[1].last_pauses_ns[i], 0);

    for (unsigned i = 0; i < GC_LAST_PAUSES; i++)
        assert_int_equal(gc_collect(heap, 0), 0);
    gc_get_stats(heap, &st);
    uint64_t sum = 0;
    for (unsigned i = 0; i < GC_LAST_PAUSES; i++) {
        assert_true(last[i] > 0 && last[i] < SLOW_FINALIZE_NS);
        sum += last[i];
    }
    assert_true(sum < st.generations[0].pause_sum_ns); /* the slow one has left the ring */
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_collect_rejects_a_generation_out_of_range(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    assert_int_equal(gc_collect(heap, -1), -EINVAL);
    assert_int_equal(gc_collect(heap, GC_NGENERATIONS), -EINVAL);
    gc_stats_t st;
    gc_get_stats(heap, &st);
    for (unsigned g = 0; g < GC_NGENERATIONS; g++)
        assert_int_equal(st.generations[g].collections, 0);
    heap_assert_gc_empty_and_destroy(heap);
}

/* ---- wide containers (GC_WIDE_REFS references or more) ---- */

/* Adds n references to one new leaf to b. */
static void bag_pad(heap_t *heap, world_t *w, bag_t *b, int n)
{
    leaf_t *pad = new_leaf(heap, w);
    for (int i = 0; i < n; i++)
        bag_add(heap, b, pad);
    drop(heap, pad);
}

/* A bag of type with GC_WIDE_REFS references to one new leaf on top of
 * what it will hold: a wide container. */
static bag_t *new_wide_bag(heap_t *heap, world_t *w, const obj_type_t *type)
{
    bag_t *b = new_bag(heap, w, type);
    bag_pad(heap, w, b, GC_WIDE_REFS);
    return b;
}

/* Adds n new 2-cycles to b, the first node of each held by b only. */
static void bag_add_pairs(heap_t *heap, world_t *w, bag_t *b, int n)
{
    for (int i = 0; i < n; i++) {
        node_t *x = new_node(heap, w);
        node_t *y = new_node(heap, w);
        link_ref(x, 0, y);
        link_ref(y, 0, x);
        bag_add(heap, b, x);
        drop(heap, x);
        drop(heap, y);
    }
}

static void test_wide_root_keeps_all_it_holds_and_goes_up_with_it(void **state)
{
    (void)state;
    static const obj_type_t *const types[] = {&bag_type, &ibag_type};
    for (int t = 0; t < 2; t++) {
        heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
        world_t *w = world_new(heap);
        bag_t *root = new_wide_bag(heap, w, types[t]);
        bag_add_pairs(heap, w, root, 500);
        assert_int_equal(gc_collect(heap, 0), 0);
        assert_int_equal(tracked_in(heap, 1), 1001);
        assert_int_equal(gc_collect(heap, 2), 0);
        assert_int_equal(gc_collect(heap, 2), 0);
        assert_int_equal(tracked_in(heap, 2), 1001);
        assert_int_equal(w->deaths, 0);
        assert_int_equal(root->ob.refcnt, 1);
        for (uint32_t i = GC_WIDE_REFS; i < root->len; i++) {
            node_t *x = (node_t *)root->items[i];
            assert_int_equal(x->magic, NODE_MAGIC);
            assert_int_equal(x->ob.refcnt, 2);
            assert_int_equal(((node_t *)x->ref[0])->ob.refcnt, 1);
        }
        drop(heap, root);
        assert_int_equal(gc_collect(heap, 2), 1000);
        assert_int_equal(w->deaths, 1 + 1 + 1000);
        free(w);
        heap_assert_gc_empty_and_destroy(heap);
    }
}

static void test_wide_container_holding_itself_is_collected(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    bag_t *b = new_wide_bag(heap, w, &ibag_type);
    for (int i = 0; i < 3; i++)
        bag_add(heap, b, b);
    bag_add_pairs(heap, w, b, 10);
    assert_int_equal(gc_collect(heap, 0), 0);
    drop(heap, b);
    assert_int_equal(gc_collect(heap, 1), 21);
    assert_int_equal(w->deaths, 1 + 1 + 20);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_wide_container_held_only_by_a_wide_root_keeps_what_it_holds(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    bag_t *root = new_wide_bag(heap, w, &bag_type);
    bag_t *inner = new_wide_bag(heap, w, &ibag_type);
    bag_add(heap, root, inner);
    drop(heap, inner);
    bag_add_pairs(heap, w, inner, 100);
    for (int gen = 0; gen < GC_NGENERATIONS; gen++)
        assert_int_equal(gc_collect(heap, gen), 0);
    assert_int_equal(w->deaths, 0);
    assert_int_equal(tracked_in(heap, 2), 202);
    assert_int_equal(inner->ob.refcnt, 1);
    drop(heap, root); /* both bags and their pads die by refcount */
    assert_int_equal(w->deaths, 4);
    assert_int_equal(gc_collect(heap, 2), 200);
    assert_int_equal(w->deaths, 4 + 200);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_wide_containers_holding_each_other_are_collected_together(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    world_t *w = world_new(heap);
    bag_t *a = new_wide_bag(heap, w, &bag_type);
    bag_t *b = new_wide_bag(heap, w, &ibag_type);
    bag_add(heap, a, b);
    bag_add(heap, b, a);
    bag_add_pairs(heap, w, a, 5);
    bag_add_pairs(heap, w, b, 5);
    /* Held from outside through a: everything stays. */
    node_t *holder = new_node(heap, w);
    link_ref(holder, 0, a);
    drop(heap, a);
    drop(heap, b);
    assert_int_equal(gc_collect(heap, 2), 0);
    assert_int_equal(w->deaths, 0);
    /* Only the holder goes: the pair of wide bags is garbage now. */
    drop(heap, holder);
    assert_int_equal(w->deaths, 1);
    assert_int_equal(gc_collect(heap, 2), 22);
    assert_int_equal(w->deaths, 1 + 2 + 2 + 20);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_more_wide_containers_than_are_set_aside_are_all_handled(void **state)
{
    (void)state;
    enum { NBAGS = 2 * GC_WIDE_MAX + 3 };
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    world_t *w = world_new(heap);
    bag_t *bags[NBAGS];
    for (int i = 0; i < NBAGS; i++) {
        bags[i] = new_wide_bag(heap, w, i % 2 ? &ibag_type : &bag_type);
        bag_add_pairs(heap, w, bags[i], 2);
    }
    /* A ring of them all, held by the test through bags[0] only. */
    for (int i = 0; i < NBAGS; i++)
        bag_add(heap, bags[i], bags[(i + 1) % NBAGS]);
    for (int i = 1; i < NBAGS; i++)
        drop(heap, bags[i]);
    assert_int_equal(gc_collect(heap, 2), 0);
    assert_int_equal(w->deaths, 0);
    drop(heap, bags[0]);
    assert_int_equal(gc_collect(heap, 2), NBAGS * 5);
    assert_int_equal(w->deaths, NBAGS * 6);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

/* ---- random graphs against a reference reachability ---- */

#define RG_GRAPHS      100000
#define RG_WIDE_GRAPHS 20000
#define RG_MAXOBJ      12
#define RG_MAXEDGES    4

typedef struct rng {
    uint64_t s;
} rng_t;

static uint32_t rnd(rng_t *r, uint32_t n)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)((r->s >> 16) % n);
}

typedef struct rgraph {
    int n;
    void *obj[RG_MAXOBJ];
    int kind[RG_MAXOBJ]; /* 0 node, 1 fnode, 2 bag, 3 leaf */
    uint32_t id[RG_MAXOBJ];
    int nedges[RG_MAXOBJ];
    int edge[RG_MAXOBJ][RG_MAXEDGES];
    int root[RG_MAXOBJ];
    int reach[RG_MAXOBJ];
} rgraph_t;

static void rg_add_edge(heap_t *heap, rgraph_t *g, int from, int to)
{
    if (g->nedges[from] == RG_MAXEDGES)
        return;
    if (g->kind[from] == 2) {
        bag_add(heap, g->obj[from], g->obj[to]);
    } else {
        int slot = g->nedges[from];
        if (slot >= NODE_REFS)
            return;
        link_ref(g->obj[from], slot, g->obj[to]);
    }
    g->edge[from][g->nedges[from]++] = to;
}

static void rg_reach(rgraph_t *g)
{
    int stack[RG_MAXOBJ * RG_MAXEDGES + RG_MAXOBJ], sp = 0;
    memset(g->reach, 0, sizeof(g->reach));
    for (int i = 0; i < g->n; i++)
        if (g->root[i]) {
            g->reach[i] = 1;
            stack[sp++] = i;
        }
    while (sp > 0) {
        int i = stack[--sp];
        for (int e = 0; e < g->nedges[i]; e++) {
            int j = g->edge[i][e];
            if (!g->reach[j]) {
                g->reach[j] = 1;
                stack[sp++] = j;
            }
        }
    }
}

/* With wide, a quarter of the bags are padded (after their edges) to be
 * wide, and a quarter to half that: more references than the collector
 * subtracts while it finds out whether a container is wide, fewer than
 * make it wide. */
static void rg_make(heap_t *heap, world_t *w, rng_t *r, rgraph_t *g, int wide)
{
    memset(g, 0, sizeof(*g));
    g->n = 1 + (int)rnd(r, RG_MAXOBJ);
    int first_young = (int)rnd(r, (uint32_t)g->n + 1);
    for (int i = 0; i < g->n; i++) {
        if (i == first_young)
            assert_true(gc_collect(heap, (int)rnd(r, 2)) >= 0); /* the rest is younger */
        int kind = (int)rnd(r, 8);
        kind = kind < 4 ? 0 : kind < 5 ? 1 : kind < 7 ? 2 : 3;
        g->kind[i] = kind;
        if (kind == 0 || kind == 1) {
            node_t *n = new_node_of(heap, w, kind ? &fnode_type : &node_type);
            g->obj[i] = n;
            g->id[i] = n->id;
        } else if (kind == 2) {
            bag_t *b = new_bag(heap, w, rnd(r, 2) ? &ibag_type : &bag_type);
            g->obj[i] = b;
            g->id[i] = b->id;
        } else {
            leaf_t *l = new_leaf(heap, w);
            g->obj[i] = l;
            g->id[i] = l->id;
        }
    }
    for (int i = 0; i < g->n; i++) {
        if (g->kind[i] == 3)
            continue;
        int ne = (int)rnd(r, RG_MAXEDGES + 1);
        for (int e = 0; e < ne; e++)
            rg_add_edge(heap, g, i, (int)rnd(r, (uint32_t)g->n));
    }
    for (int i = 0; wide && i < g->n; i++) {
        uint32_t pad = rnd(r, 4);
        if (g->kind[i] == 2 && pad >= 2)
            bag_pad(heap, w, g->obj[i], pad == 2 ? GC_WIDE_REFS / 2 : GC_WIDE_REFS);
    }
    for (int i = 0; i < g->n; i++)
        g->root[i] = rnd(r, 10) < 3;
}

/* No reachable object was freed; with exact, every unreachable one was. */
static void rg_check(const rgraph_t *g, const world_t *w, int exact)
{
    for (int i = 0; i < g->n; i++) {
        int dead = w->dead[g->id[i]];
        if (g->reach[i] && dead)
            fail_msg("reachable object %d (kind %d) of a %d-object graph was freed", i, g->kind[i],
                     g->n);
        if (exact && !g->reach[i] && !dead)
            fail_msg("garbage object %d (kind %d) of a %d-object graph survived a full "
                     "collection",
                     i, g->kind[i], g->n);
        if (w->finalized[g->id[i]] > 1)
            fail_msg("object %d finalized %d times", i, w->finalized[g->id[i]]);
    }
}

/* Makes, drops and collects graphs random graphs (with wide bags if wide),
 * checking each collection against rg_reach(). */
static void rg_run(int graphs, int wide)
{
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    world_t *w = world_new(heap);
    rng_t r = {0x9e3779b97f4a7c15u};
    rgraph_t g;
    uint64_t objects = 0;
    for (int round = 0; round < graphs; round++) {
        if (w->next_id + 2 * RG_MAXOBJ >= WORLD_MAX) {
            memset(w->dead, 0, sizeof(w->dead));
            memset(w->finalized, 0, sizeof(w->finalized));
            w->next_id = 0;
        }
        rg_make(heap, w, &r, &g, wide);
        objects += (uint64_t)g.n;
        rg_reach(&g);
        for (int i = 0; i < g.n; i++)
            if (!g.root[i])
                drop(heap, g.obj[i]); /* may free by refcount */
        rg_check(&g, w, 0);
        if (rnd(&r, 2))
            assert_true(gc_collect(heap, (int)rnd(&r, 2)) >= 0);
        rg_check(&g, w, 0);

        uint32_t before = w->container_deaths;
        int64_t collected = gc_collect(heap, 2);
        assert_int_equal(collected, w->container_deaths - before);
        rg_check(&g, w, 1);

        for (int i = 0; i < g.n; i++)
            if (g.root[i])
                drop(heap, g.obj[i]);
        assert_true(gc_collect(heap, 2) >= 0);
        for (int i = 0; i < g.n; i++) {
            assert_true(w->dead[g.id[i]]);
            if (g.kind[i] == 1)
                assert_int_equal(w->finalized[g.id[i]], 1);
        }
    }
    assert_true(objects > 5 * (uint64_t)graphs);
    free(w);
    heap_assert_gc_empty_and_destroy(heap);
}

static void test_random_graphs_free_exactly_the_unreachable_objects(void **state)
{
    (void)state;
    rg_run(RG_GRAPHS, 0);
}

static void test_random_graphs_with_wide_containers_free_exactly_the_unreachable(void **state)
{
    (void)state;
    rg_run(RG_WIDE_GRAPHS, 1);
}

/* ---- death test: a traverse that over-reports ---- */

static int liar_traverse(obj_t *self, obj_visit_fn visit, void *arg)
{
    node_t *n = (node_t *)self;
    OBJ_VISIT(n->ref[0]);
    OBJ_VISIT(n->ref[0]); /* reports its one reference twice */
    return 0;
}

static const obj_type_t liar_type = {
    .name = "liar",
    .size = sizeof(node_t),
    .slot = 7,
    .traverse = liar_traverse,
};

static void op_collect_with_an_over_reporting_traverse(void)
{
    heap_t *heap = child_obj_heap(HEAP_DEBUG_FROM_ENV);
    node_t *liar = (node_t *)obj_new(heap, &liar_type);
    obj_t *target = obj_new(heap, &liar_type);
    if (liar == NULL || target == NULL)
        _exit(99);
    liar->ref[0] = target; /* takes the test's reference */
    gc_collect(heap, 0);
}

static void test_traverse_reporting_more_references_than_held_aborts(void **state)
{
    (void)state;
    assert_dies_naming(op_collect_with_an_over_reporting_traverse, "liar", "traverse");
}

#ifdef TICKD_ASSERTS
static void op_collect_a_container_whose_count_overflows_the_scratch_count(void)
{
    heap_t *heap = child_obj_heap(HEAP_DEBUG_OFF);
    obj_t *node = obj_new(heap, &node_type);
    if (node == NULL)
        _exit(99);
    node->refcnt = INTPTR_MAX; /* gc_refs keeps the count shifted by GC_REFS_SHIFT */
    gc_collect(heap, 0);
}
#endif

/* The collector's scratch count is the object's count, shifted into the
 * word beside the GC flags: a debug build checks that it fits. */
static void
test_count_too_large_for_the_scratch_count_aborts_a_collection_in_a_debug_build(void **state)
{
    (void)state;
#ifndef TICKD_ASSERTS
    skip(); /* a release build has no TICKD_ASSERT */
#else
    assert_dies_naming(op_collect_a_container_whose_count_overflows_the_scratch_count,
                       "assertion failed", "UINTPTR_MAX >> GC_REFS_SHIFT");
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_cycle_is_collected),
        cmocka_unit_test(test_two_cycle_is_collected),
        cmocka_unit_test(test_ring_of_100000_is_collected_without_deep_recursion),
        cmocka_unit_test(test_cycle_reachable_from_outside_is_kept_intact),
        cmocka_unit_test(test_cycle_hanging_off_an_object_freed_by_refcount_is_collected),
        cmocka_unit_test(test_cycle_hanging_off_a_garbage_cycle_is_collected_with_it),
        cmocka_unit_test(test_objects_that_only_garbage_refers_to_are_freed_and_held_ones_kept),
        cmocka_unit_test(test_survivors_are_promoted_one_generation_per_collection),
        cmocka_unit_test(test_young_cycle_held_by_an_old_object_survives_young_collections),
        cmocka_unit_test(test_young_garbage_pointing_into_old_generation_leaves_it_alive),
        cmocka_unit_test(test_cycle_spanning_generations_waits_for_the_older_collection),
        cmocka_unit_test(test_old_garbage_cycle_is_left_alone_by_younger_collections),
        cmocka_unit_test(test_default_thresholds_are_700_10_10_and_can_be_changed),
        cmocka_unit_test(test_young_collection_is_due_when_allocations_minus_deaths_pass_700),
        cmocka_unit_test(test_threshold_zero_turns_automatic_collection_off),
        cmocka_unit_test(
            test_middle_generation_is_due_after_more_young_collections_than_its_threshold),
        cmocka_unit_test(test_full_collection_waits_until_pending_long_lived_reach_a_quarter),
        cmocka_unit_test(test_frozen_objects_are_ignored_until_unfrozen),
        cmocka_unit_test(test_untracked_cycle_is_invisible_until_tracked_again),
        cmocka_unit_test(test_finalizer_runs_once_before_clear_and_not_on_a_later_death),
        cmocka_unit_test(test_object_resurrected_by_its_finalizer_is_kept_with_what_it_holds),
        cmocka_unit_test(test_objects_freed_by_a_finalizer_count_as_collected),
        cmocka_unit_test(test_cleared_object_stays_valid_while_its_cycle_still_points_at_it),
        cmocka_unit_test(test_cycle_of_objects_without_clear_is_counted_uncollectable_and_kept),
        cmocka_unit_test(test_object_without_clear_is_freed_when_a_cycle_partner_clears),
        cmocka_unit_test(test_stats_count_collections_collected_objects_and_pauses),
        cmocka_unit_test(test_stats_keep_the_latest_pauses_newest_first),
        cmocka_unit_test(test_collect_rejects_a_generation_out_of_range),
        cmocka_unit_test(test_wide_root_keeps_all_it_holds_and_goes_up_with_it),
        cmocka_unit_test(test_wide_container_holding_itself_is_collected),
        cmocka_unit_test(test_wide_container_held_only_by_a_wide_root_keeps_what_it_holds),
        cmocka_unit_test(test_wide_containers_holding_each_other_are_collected_together),
        cmocka_unit_test(test_more_wide_containers_than_are_set_aside_are_all_handled),
        cmocka_unit_test(test_random_graphs_free_exactly_the_unreachable_objects),
        cmocka_unit_test(test_random_graphs_with_wide_containers_free_exactly_the_unreachable),
        cmocka_unit_test(test_traverse_reporting_more_references_than_held_aborts),
        cmocka_unit_test(
            test_count_too_large_for_the_scratch_count_aborts_a_collection_in_a_debug_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_object.c - tests of alloc/object.c and alloc/objtype.c: object
 * creation, reference counting, immediate destruction at zero (dealloc
 * releasing children, bounded nesting for long chains), finalizers on
 * refcount death, the type registry with its per-type counters, the
 * field-list and item-array helpers, and the fatal refcount underflow.
 *
 * Every test leaves its heap empty (heap_get_stats(): no live block, small or
 * large) before destroying it. Fatal paths are death tests: the bad
 * operation runs in a forked child whose stderr goes into a pipe; the parent
 * asserts SIGABRT and the message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <unistd.h>

#include "alloc/object.h"
#include "tests/alloc/support_obj.h"

/* Live objects of type in heap. */
static uint64_t live_of(const heap_t *heap, const obj_type_t *type)
{
    obj_type_stats_t st;
    assert_int_equal(obj_type_get_stats(heap, type, &st), 0);
    return st.live;
}

/* ---- test types ---- */

/* A plain object with no reference. */
typedef struct plain {
    obj_t ob;
    uint64_t value;
    uint64_t more[2];
} plain_t;

static const obj_type_t plain_type = {
    .name = "plain",
    .size = sizeof(plain_t),
    .slot = 0,
};

/* A plain (non-container) object holding one reference. */
typedef struct holder {
    obj_t ob;
    obj_t *child;
} holder_t;

static void holder_dealloc(heap_t *heap, obj_t *self)
{
    OBJ_CLEAR(heap, ((holder_t *)self)->child);
}

static const obj_type_t holder_type = {
    .name = "holder",
    .size = sizeof(holder_t),
    .slot = 1,
    .dealloc = holder_dealloc,
};

/* A container listing its two reference fields. */
typedef struct pair {
    obj_t ob;
    obj_t *first;
    obj_t *second;
} pair_t;

static const uint16_t pair_fields[] = {offsetof(pair_t, first), offsetof(pair_t, second)};

static const obj_type_t pair_type = {
    .name = "pair",
    .size = sizeof(pair_t),
    .slot = 2,
    .dealloc = obj_clear_fields,
    .traverse = obj_traverse_fields,
    .clear = obj_clear_fields,
    .fields = pair_fields,
    .nfields = 2,
};

/* A container with a finalizer; ctx records the calls and, when asked,
 * keeps the object alive from the finalizer. */
typedef struct fin_ctx {
    int finalized;
    int resurrect;
    obj_t *saved;
} fin_ctx_t;

typedef struct fin {
    obj_t ob;
    obj_t *ref;
    fin_ctx_t *ctx;
} fin_t;

static void fin_finalize(heap_t *heap, obj_t *self)
{
    (void)heap;
    fin_ctx_t *ctx = ((fin_t *)self)->ctx;
    ctx->finalized++;
    if (ctx->resurrect) {
        obj_incref(self);
        ctx->saved = self;
        ctx->resurrect = 0;
    }
}

static const uint16_t fin_fields[] = {offsetof(fin_t, ref)};

static const obj_type_t fin_type = {
    .name = "fin",
    .size = sizeof(fin_t),
    .slot = 3,
    .dealloc = obj_clear_fields,
    .traverse = obj_traverse_fields,
    .clear = obj_clear_fields,
    .finalize = fin_finalize,
    .fields = fin_fields,
    .nfields = 1,
};

/* A large object (over the 512-byte small limit). */
typedef struct big {
    obj_t ob;
    unsigned char bytes[1000];
} big_t;

static const obj_type_t big_type = {
    .name = "big",
    .size = sizeof(big_t),
    .slot = 4,
};

static obj_t *new_obj(heap_t *heap, const obj_type_t *type)
{
    obj_t *o = obj_new(heap, type);
    assert_non_null(o);
    return o;
}

/* ---- creation and reference counting ---- */

static void test_new_object_has_count_one_its_type_and_a_zeroed_payload(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON); /* debug fills new blocks with 0xCD */
    plain_t *p = (plain_t *)new_obj(heap, &plain_type);
    assert_ptr_equal(p->ob.type, &plain_type);
    assert_int_equal(p->ob.refcnt, 1);
    assert_int_equal(p->value, 0);
    assert_int_equal(p->more[0], 0);
    assert_int_equal(p->more[1], 0);
    pair_t *q = (pair_t *)new_obj(heap, &pair_type);
    assert_null(q->first);
    assert_null(q->second);
    obj_decref(heap, &p->ob);
    obj_decref(heap, &q->ob);
    obj_heap_assert_empty_and_destroy(heap);
}

static void
test_uninit_object_is_counted_and_tracked_as_obj_new_and_its_payload_left_alone(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON); /* debug fills new blocks with 0xCD */
    plain_t *p = (plain_t *)obj_new_uninit(heap, &plain_type);
    assert_non_null(p);
    assert_ptr_equal(p->ob.type, &plain_type);
    assert_int_equal(p->ob.refcnt, 1);
    assert_int_equal(p->value, 0xCDCDCDCDCDCDCDCDull);
    assert_int_equal(p->more[1], 0xCDCDCDCDCDCDCDCDull);
    assert_false(gc_is_tracked(&p->ob));
    pair_t *q = (pair_t *)obj_new_uninit(heap, &pair_type);
    assert_non_null(q);
    q->first = NULL;
    q->second = &p->ob;
    obj_incref(&p->ob);
    assert_true(gc_is_tracked(&q->ob));
    gc_stats_t gs;
    gc_get_stats(heap, &gs);
    assert_int_equal(gs.generations[0].tracked, 1);
    assert_int_equal(gs.generations[0].count, 1);
    obj_type_stats_t st;
    assert_int_equal(obj_type_get_stats(heap, &plain_type, &st), 0);
    assert_int_equal(st.created, 1);
    assert_int_equal(st.live, 1);
    obj_decref(heap, &p->ob);
    obj_decref(heap, &q->ob); /* releases p with it */
    assert_int_equal(live_of(heap, &plain_type), 0);
    assert_int_equal(live_of(heap, &pair_type), 0);
    gc_get_stats(heap, &gs);
    assert_int_equal(gs.generations[0].tracked, 0);
    obj_heap_assert_empty_and_destroy(heap);
}

/* obj_decref_inline() frees an object that holds nothing on the spot and
 * counts it; an object whose type has a dealloc goes through obj__release()
 * (its dealloc runs, its child dies with it); a count left above zero frees
 * nothing. */
static void test_inline_decref_frees_a_leaf_and_leaves_other_deaths_to_release(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    plain_t *p = (plain_t *)obj_new_uninit(heap, &plain_type);
    assert_non_null(p);
    obj_incref(&p->ob);
    obj_decref_inline(heap, &p->ob);
    assert_int_equal(live_of(heap, &plain_type), 1);
    obj_decref_inline(heap, &p->ob);
    obj_type_stats_t st;
    assert_int_equal(obj_type_get_stats(heap, &plain_type, &st), 0);
    assert_int_equal(st.destroyed, 1);
    assert_int_equal(st.live, 0);
    /* the block went to its class's free cache: the next one of its size is it */
    assert_ptr_equal(obj_new_uninit(heap, &plain_type), p);

    holder_t *h = (holder_t *)obj_new(heap, &holder_type);
    h->child = &p->ob;
    obj_decref_inline(heap, &h->ob);
    assert_int_equal(live_of(heap, &holder_type), 0);
    assert_int_equal(live_of(heap, &plain_type), 0);
    obj_heap_assert_empty_and_destroy(heap);
}

/* obj_renew() makes an object only its caller holds a new one in place:
 * one destroyed and one created in its type's counters, live unchanged. */
static void test_renew_counts_a_death_and_a_birth_and_keeps_the_object(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_FROM_ENV);
    plain_t *p = (plain_t *)obj_new(heap, &plain_type);
    p->value = 7;
    obj_renew(heap, &p->ob);
    obj_type_stats_t st;
    assert_int_equal(obj_type_get_stats(heap, &plain_type, &st), 0);
    assert_int_equal(st.created, 2);
    assert_int_equal(st.destroyed, 1);
    assert_int_equal(st.live, 1);
    assert_int_equal(p->ob.refcnt, 1);
    assert_int_equal(p->value, 7);
    obj_decref(heap, &p->ob);
    obj_heap_assert_empty_and_destroy(heap);
}

static void test_object_lives_until_its_last_reference_is_dropped(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    obj_t *o = new_obj(heap, &plain_type);
    obj_incref(o);
    obj_incref(o);
    assert_int_equal(o->refcnt, 3);
    obj_decref(heap, o);
    obj_decref(heap, o);
    assert_int_equal(o->refcnt, 1);
    assert_int_equal(live_of(heap, &plain_type), 1);
    obj_decref(heap, o);
    assert_int_equal(live_of(heap, &plain_type), 0);
    obj_heap_assert_empty_and_destroy(heap);
}

static void test_object_takes_one_block_of_its_size_class_gc_header_included(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    obj_t *p = new_obj(heap, &plain_type);  /* 40 bytes: 48-byte class */
    obj_t *q = new_obj(heap, &pair_type);   /* 32 + 16 GC header: 48-byte class */
    obj_t *h = new_obj(heap, &holder_type); /* 24 bytes: 32-byte class */
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[heap_size_class(48)].used_blocks, 2);
    assert_int_equal(st.classes[heap_size_class(32)].used_blocks, 1);
    assert_int_equal(st.used_bytes, 48 + 48 + 32);
    obj_decref(heap, p);
    obj_decref(heap, q);
    obj_decref(heap, h);
    obj_heap_assert_empty_and_destroy(heap);
}

static void test_object_over_the_small_limit_comes_from_the_large_path(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    big_t *b = (big_t *)new_obj(heap, &big_type);
    assert_int_equal(b->bytes[999], 0);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.large_allocs, 1);
    obj_decref(heap, &b->ob);
    obj_heap_assert_empty_and_destroy(heap);
}

static void test_dealloc_releases_children_which_die_with_their_last_reference(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    holder_t *top = (holder_t *)new_obj(heap, &holder_type);
    holder_t *mid = (holder_t *)new_obj(heap, &holder_type);
    obj_t *leaf = new_obj(heap, &plain_type);
    obj_t *shared = new_obj(heap, &plain_type);
    top->child = &mid->ob;
    mid->child = leaf;
    pair_t *pr = (pair_t *)new_obj(heap, &pair_type);
    pr->first = shared;
    obj_incref(shared);
    pr->second = &top->ob;
    /* pr holds top and shared; the test still holds shared. */
    obj_decref(heap, &pr->ob);
    assert_int_equal(live_of(heap, &holder_type), 0);
    assert_int_equal(live_of(heap, &pair_type), 0);
    assert_int_equal(live_of(heap, &plain_type), 1);
    assert_int_equal(shared->refcnt, 1);
    obj_decref(heap, shared);
    obj_heap_assert_empty_and_destroy(heap);
}

static void test_destroying_a_million_long_chain_does_not_nest_a_million_deep(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    /* Alternate plain holders and containers, so both kinds queue. */
    obj_t *head = new_obj(heap, &plain_type);
    for (int i = 0; i < 1000000; i++) {
        if (i % 2) {
            holder_t *h = (holder_t *)new_obj(heap, &holder_type);
            h->child = head;
            head = &h->ob;
        } else {
            pair_t *p = (pair_t *)new_obj(heap, &pair_type);
            p->second = head;
            head = &p->ob;
        }
    }
    obj_decref(heap, head);
    assert_int_equal(live_of(heap, &holder_type), 0);
    assert_int_equal(live_of(heap, &pair_type), 0);
    assert_int_equal(live_of(heap, &plain_type), 0);
    obj_heap_assert_empty_and_destroy(heap);
}

/* ---- finalizers on refcount death ---- */

static void test_finalizer_runs_once_before_a_refcount_death(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    fin_ctx_t ctx = {0};
    fin_t *f = (fin_t *)new_obj(heap, &fin_type);
    f->ctx = &ctx;
    f->ref = new_obj(heap, &plain_type);
    obj_decref(heap, &f->ob);
    assert_int_equal(ctx.finalized, 1);
    assert_int_equal(live_of(heap, &fin_type), 0);
    assert_int_equal(live_of(heap, &plain_type), 0);
    obj_heap_assert_empty_and_destroy(heap);
}

static void test_finalizer_that_resurrects_keeps_the_object_and_is_not_run_again(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_ON);
    fin_ctx_t ctx = {.resurrect = 1};
    fin_t *f = (fin_t *)new_obj(heap, &fin_type);
    f->ctx = &ctx;
    f->ref = new_obj(heap, &plain_type);
    obj_decref(heap, &f->ob);
    assert_int_equal(ctx.finalized, 1);
    assert_ptr_equal(ctx.saved, &f->ob);
    assert_int_equal(f->ob.refcnt, 1);
    assert_int_equal(live_of(heap, &fin_type), 1);
    assert_int_equal(live_of(heap, &plain_type), 1);
    assert_true(gc_is_tracked(&f->ob));
    obj_decref(heap, ctx.saved);
    assert_int_equal(ctx.finalized, 1);
    assert_int_equal(live_of(heap, &fin_type), 0);
    obj_heap_assert_empty_and_destroy(heap);
}

/* ---- tracking by obj_new ---- */

static void test_containers_are_tracked_from_birth_and_untracked_at_death(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    obj_t *c = new_obj(heap, &pair_type);
    obj_t *p = new_obj(heap, &plain_type);
    assert_true(gc_is_tracked(c));
    assert_false(gc_is_tracked(p));
    gc_stats_t st;
    gc_get_stats(heap, &st);
    assert_int_equal(st.generations[0].tracked, 1);
    assert_int_equal(st.generations[0].count, 1);
    obj_decref(heap, c);
    obj_decref(heap, p);
    gc_get_stats(heap, &st);
    assert_int_equal(st.generations[0].tracked, 0);
    assert_int_equal(st.generations[0].count, 0);
    obj_heap_assert_empty_and_destroy(heap);
}

/* ---- types and their counters ---- */

static void test_type_counters_count_live_created_and_destroyed_per_type(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    obj_t *keep[10];
    for (int i = 0; i < 10; i++)
        keep[i] = new_obj(heap, &plain_type);
    for (int i = 0; i < 4; i++)
        obj_decref(heap, keep[i]);
    obj_t *c = new_obj(heap, &pair_type);
    obj_type_stats_t st;
    assert_int_equal(obj_type_get_stats(heap, &plain_type, &st), 0);
    assert_ptr_equal(st.type, &plain_type);
    assert_int_equal(st.created, 10);
    assert_int_equal(st.destroyed, 4);
    assert_int_equal(st.live, 6);
    assert_int_equal(obj_type_get_stats(heap, &pair_type, &st), 0);
    assert_int_equal(st.created, 1);
    assert_int_equal(st.live, 1);
    assert_int_equal(obj_type_get_stats(heap, &big_type, &st), -ENOENT);
    for (int i = 4; i < 10; i++)
        obj_decref(heap, keep[i]);
    obj_decref(heap, c);
    assert_int_equal(obj_type_get_stats(heap, &plain_type, &st), 0);
    assert_int_equal(st.live, 0);
    assert_int_equal(st.destroyed, 10);
    obj_heap_assert_empty_and_destroy(heap);
}

static void test_counters_are_per_heap(void **state)
{
    (void)state;
    heap_t *a = obj_heap_new(HEAP_DEBUG_OFF);
    heap_t *b = obj_heap_new(HEAP_DEBUG_OFF);
    obj_t *o = new_obj(a, &plain_type);
    obj_type_stats_t st;
    assert_int_equal(obj_type_get_stats(a, &plain_type, &st), 0);
    assert_int_equal(st.live, 1);
    assert_int_equal(obj_type_get_stats(b, &plain_type, &st), -ENOENT);
    obj_decref(a, o);
    obj_heap_assert_empty_and_destroy(a);
    obj_heap_assert_empty_and_destroy(b);
}

struct seen_types {
    int n;
    const char *names[8];
    uint64_t live[8];
};

static int collect_type(const obj_type_stats_t *st, void *arg)
{
    struct seen_types *seen = arg;
    seen->names[seen->n] = st->type->name;
    seen->live[seen->n] = st->live;
    seen->n++;
    return 0;
}

static int stop_at_first(const obj_type_stats_t *st, void *arg)
{
    (void)st;
    (void)arg;
    return 7;
}

static void test_foreach_lists_registered_types_in_slot_order_with_names(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    assert_int_equal(obj_type_register(heap, &pair_type), 0);
    assert_int_equal(obj_type_register(heap, &pair_type), 0); /* again: fine */
    obj_t *o = new_obj(heap, &plain_type);
    struct seen_types seen = {0};
    assert_int_equal(obj_type_foreach(heap, collect_type, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.names[0], "plain");
    assert_int_equal(seen.live[0], 1);
    assert_string_equal(seen.names[1], "pair");
    assert_int_equal(seen.live[1], 0);
    assert_int_equal(obj_type_foreach(heap, stop_at_first, NULL), 7);
    obj_decref(heap, o);
    obj_heap_assert_empty_and_destroy(heap);
}

static int dummy_traverse(obj_t *self, obj_visit_fn visit, void *arg)
{
    (void)self;
    (void)visit;
    (void)arg;
    return 0;
}

static void dummy_clear(heap_t *heap, obj_t *self)
{
    (void)heap;
    (void)self;
}

/* An array of three references kept beside an object (items hook). */
static obj_t *dummy_refs[3];

static obj_t *const *dummy_items(const obj_t *self, size_t *len)
{
    (void)self;
    *len = 3;
    return dummy_refs;
}

static void test_register_rejects_malformed_types_and_a_taken_slot(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    static const uint16_t outside[] = {sizeof(pair_t)};
    static const uint16_t in_header[] = {8};
    static const obj_type_t bad[] = {
        {.name = NULL, .size = sizeof(plain_t), .slot = 10},
        {.name = "", .size = sizeof(plain_t), .slot = 10},
        {.name = "slot", .size = sizeof(plain_t), .slot = OBJ_TYPE_SLOTS},
        {.name = "small", .size = sizeof(obj_t) - 1, .slot = 10},
        {.name = "clear without traverse",
         .size = sizeof(plain_t),
         .slot = 10,
         .clear = dummy_clear},
        {.name = "finalize without traverse",
         .size = sizeof(plain_t),
         .slot = 10,
         .finalize = dummy_clear},
        {.name = "fields without traverse_fields",
         .size = sizeof(pair_t),
         .slot = 10,
         .traverse = dummy_traverse,
         .fields = pair_fields,
         .nfields = 2},
        {.name = "traverse_fields without fields",
         .size = sizeof(pair_t),
         .slot = 10,
         .traverse = obj_traverse_fields},
        {.name = "field past the end",
         .size = sizeof(pair_t),
         .slot = 10,
         .traverse = obj_traverse_fields,
         .fields = outside,
         .nfields = 1},
        {.name = "field in the header",
         .size = sizeof(pair_t),
         .slot = 10,
         .traverse = obj_traverse_fields,
         .fields = in_header,
         .nfields = 1},
        {.name = "items without traverse_items",
         .size = sizeof(pair_t),
         .slot = 10,
         .traverse = dummy_traverse,
         .items = dummy_items},
        {.name = "traverse_items without items",
         .size = sizeof(pair_t),
         .slot = 10,
         .traverse = obj_traverse_items},
        {.name = "items and fields",
         .size = sizeof(pair_t),
         .slot = 10,
         .traverse = obj_traverse_items,
         .items = dummy_items,
         .fields = pair_fields,
         .nfields = 2},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(obj_type_register(heap, &bad[i]), -EINVAL);
    static const obj_type_t squatter = {.name = "squatter", .size = sizeof(plain_t), .slot = 0};
    assert_int_equal(obj_type_register(heap, &plain_type), 0);
    assert_int_equal(obj_type_register(heap, &squatter), -EEXIST);
    obj_heap_assert_empty_and_destroy(heap);
}

/* ---- field and item helpers ---- */

static int count_visit(obj_t *child, void *arg)
{
    (void)child;
    (*(int *)arg)++;
    return 0;
}

static int stop_visit(obj_t *child, void *arg)
{
    (void)child;
    (*(int *)arg)++;
    return 5;
}

static void test_traverse_fields_visits_non_null_fields_and_stops_when_asked(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    pair_t *p = (pair_t *)new_obj(heap, &pair_type);
    int n = 0;
    assert_int_equal(obj_traverse_fields(&p->ob, count_visit, &n), 0);
    assert_int_equal(n, 0);
    p->first = new_obj(heap, &plain_type);
    p->second = new_obj(heap, &plain_type);
    assert_int_equal(obj_traverse_fields(&p->ob, count_visit, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(obj_traverse_fields(&p->ob, stop_visit, &n), 5);
    assert_int_equal(n, 1);
    obj_clear_fields(heap, &p->ob);
    assert_null(p->first);
    assert_null(p->second);
    assert_int_equal(live_of(heap, &plain_type), 0);
    obj_decref(heap, &p->ob);
    obj_heap_assert_empty_and_destroy(heap);
}

/* ---- death tests ---- */

/* A type whose dealloc wrongly releases a reference to the dying object. */
static void overrelease_dealloc(heap_t *heap, obj_t *self)
{
    obj_decref(heap, self);
}

static const obj_type_t overrelease_type = {
    .name = "overreleaser",
    .size = sizeof(plain_t),
    .slot = 5,
    .dealloc = overrelease_dealloc,
};

static void op_decref_of_an_object_being_destroyed(void)
{
    heap_t *heap = child_obj_heap(HEAP_DEBUG_ON);
    obj_t *o = obj_new(heap, &overrelease_type);
    if (o == NULL)
        _exit(99);
    obj_decref(heap, o);
}

#ifndef HEAP_ASAN
static void op_decref_of_a_freed_object(void)
{
    heap_t *heap = child_obj_heap(HEAP_DEBUG_ON);
    obj_t *keep = obj_new(heap, &plain_type);
    obj_t *o = obj_new(heap, &plain_type);
    if (keep == NULL || o == NULL)
        _exit(99);
    obj_decref(heap, o);
    obj_decref(heap, o);
}
#endif

static void op_obj_new_with_a_slot_taken_by_another_type(void)
{
    static const obj_type_t squatter = {.name = "squatter", .size = sizeof(plain_t), .slot = 0};
    heap_t *heap = child_obj_heap(HEAP_DEBUG_OFF);
    if (obj_new(heap, &plain_type) == NULL)
        _exit(99);
    obj_new(heap, &squatter);
}

static void test_decref_below_zero_in_debug_mode_aborts_naming_the_type(void **state)
{
    (void)state;
    assert_dies_naming(op_decref_of_an_object_being_destroyed, "refcount underflow",
                       "overreleaser");
}

static void test_decref_of_a_freed_object_in_debug_mode_aborts_with_underflow(void **state)
{
    (void)state;
#ifdef HEAP_ASAN
    skip(); /* AddressSanitizer reports the use after free first */
#else
    assert_dies_naming(op_decref_of_a_freed_object, "refcount underflow", "already freed");
#endif
}

static void test_obj_new_with_a_slot_of_another_type_aborts_naming_both(void **state)
{
    (void)state;
    assert_dies_naming(op_obj_new_with_a_slot_taken_by_another_type, "squatter", "plain");
}

/* The heap knows nothing of objects: its runtime is the object layer's, made
 * once per heap. A second one is refused and the first keeps counting. */
static void test_second_runtime_on_a_heap_is_refused_and_the_first_kept(void **state)
{
    (void)state;
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    obj_t *o = obj_new(heap, &plain_type);
    assert_non_null(o);
    assert_int_equal(obj_runtime_create(heap), -EEXIST);
    obj_type_stats_t st;
    assert_int_equal(obj_type_get_stats(heap, &plain_type, &st), 0);
    assert_int_equal(st.created, 1);
    assert_int_equal(st.live, 1);
    obj_decref(heap, o);
    obj_heap_assert_empty_and_destroy(heap);
}

#ifdef TICKD_ASSERTS
static void op_obj_new_on_a_heap_without_a_runtime(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_OFF);
    obj_new(heap, &plain_type);
}

static void op_heap_destroy_with_the_runtime_attached(void)
{
    heap_destroy(child_obj_heap(HEAP_DEBUG_OFF));
}
#endif

static void
test_obj_new_without_a_runtime_aborts_naming_obj_runtime_create_in_a_debug_build(void **state)
{
    (void)state;
#ifndef TICKD_ASSERTS
    skip(); /* a release build has no TICKD_ASSERT */
#else
    assert_dies_naming(op_obj_new_on_a_heap_without_a_runtime, "assertion failed",
                       "obj_runtime_create() comes before obj_new()");
#endif
}

static void test_heap_destroy_before_the_runtime_aborts_naming_obj_runtime_destroy_in_a_debug_build(
    void **state)
{
    (void)state;
#ifndef TICKD_ASSERTS
    skip(); /* a release build has no TICKD_ASSERT */
#else
    assert_dies_naming(op_heap_destroy_with_the_runtime_attached, "assertion failed",
                       "obj_runtime_destroy() comes before heap_destroy()");
#endif
}

static void test_traverse_items_visits_non_null_entries_and_stops_when_asked(void **state)
{
    (void)state;
    static const obj_type_t array_type = {
        .name = "array",
        .size = sizeof(plain_t),
        .slot = 10,
        .traverse = obj_traverse_items,
        .items = dummy_items,
    };
    heap_t *heap = obj_heap_new(HEAP_DEBUG_OFF);
    assert_int_equal(obj_type_register(heap, &array_type), 0);
    obj_t *a = new_obj(heap, &array_type);
    int n = 0;
    assert_int_equal(obj_traverse_items(a, count_visit, &n), 0);
    assert_int_equal(n, 0);
    dummy_refs[0] = new_obj(heap, &plain_type);
    dummy_refs[2] = new_obj(heap, &plain_type);
    assert_int_equal(obj_traverse_items(a, count_visit, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(obj_traverse_items(a, stop_visit, &n), 5);
    assert_int_equal(n, 1);
    obj_decref(heap, dummy_refs[0]);
    obj_decref(heap, dummy_refs[2]);
    dummy_refs[0] = dummy_refs[2] = NULL;
    obj_decref(heap, a);
    obj_heap_assert_empty_and_destroy(heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_object_has_count_one_its_type_and_a_zeroed_payload),
        cmocka_unit_test(
            test_uninit_object_is_counted_and_tracked_as_obj_new_and_its_payload_left_alone),
        cmocka_unit_test(test_object_lives_until_its_last_reference_is_dropped),
        cmocka_unit_test(test_inline_decref_frees_a_leaf_and_leaves_other_deaths_to_release),
        cmocka_unit_test(test_renew_counts_a_death_and_a_birth_and_keeps_the_object),
        cmocka_unit_test(test_object_takes_one_block_of_its_size_class_gc_header_included),
        cmocka_unit_test(test_object_over_the_small_limit_comes_from_the_large_path),
        cmocka_unit_test(test_dealloc_releases_children_which_die_with_their_last_reference),
        cmocka_unit_test(test_destroying_a_million_long_chain_does_not_nest_a_million_deep),
        cmocka_unit_test(test_finalizer_runs_once_before_a_refcount_death),
        cmocka_unit_test(test_finalizer_that_resurrects_keeps_the_object_and_is_not_run_again),
        cmocka_unit_test(test_containers_are_tracked_from_birth_and_untracked_at_death),
        cmocka_unit_test(test_type_counters_count_live_created_and_destroyed_per_type),
        cmocka_unit_test(test_counters_are_per_heap),
        cmocka_unit_test(test_foreach_lists_registered_types_in_slot_order_with_names),
        cmocka_unit_test(test_register_rejects_malformed_types_and_a_taken_slot),
        cmocka_unit_test(test_traverse_fields_visits_non_null_fields_and_stops_when_asked),
        cmocka_unit_test(test_traverse_items_visits_non_null_entries_and_stops_when_asked),
        cmocka_unit_test(test_decref_below_zero_in_debug_mode_aborts_naming_the_type),
        cmocka_unit_test(test_decref_of_a_freed_object_in_debug_mode_aborts_with_underflow),
        cmocka_unit_test(test_obj_new_with_a_slot_of_another_type_aborts_naming_both),
        cmocka_unit_test(test_second_runtime_on_a_heap_is_refused_and_the_first_kept),
        cmocka_unit_test(
            test_obj_new_without_a_runtime_aborts_naming_obj_runtime_create_in_a_debug_build),
        cmocka_unit_test(
            test_heap_destroy_before_the_runtime_aborts_naming_obj_runtime_destroy_in_a_debug_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

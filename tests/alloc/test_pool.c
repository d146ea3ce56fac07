/*
 * test_pool.c - tests of alloc/pool.c: blocks inside one pool. A fresh pool
 * carves its blocks lazily in address order; a freed block goes on the pool's
 * LIFO free list and is the next one handed out; pools move between EMPTY,
 * USED and FULL as blocks come and go, which heap_get_stats() shows in
 * pools_used / pools_full / pools_empty and in the class stats.
 *
 * Every test runs with debug mode off (debug mode changes block layout) and
 * leaves its heap empty before destroying it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/alloc.h"
#include "tests/alloc/support.h"

/* Pools of a heap are partitioned: every pool of every mapped arena is
 * exactly one of USED, FULL, EMPTY. */
static void assert_pool_partition(const heap_stats_t *st)
{
    assert_int_equal(st->pools_used + st->pools_full + st->pools_empty,
                     (size_t)st->arenas * (st->arena_size / st->pool_size));
}

/* For every class, a fresh pool hands out its blocks one after another from
 * just past the header up to the last whole block; the next request opens a
 * second pool. */
static void test_fresh_pool_carves_blocks_in_address_order_for_every_class(void **state)
{
    (void)state;
    const size_t pool_size = HEAP_POOL_SIZE_DEFAULT;
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        heap_t *heap = heap_new_sized(0, pool_size, HEAP_DEBUG_OFF);
        size_t bs = heap_class_size(c);
        size_t n = blocks_per_pool(pool_size, c);
        void **v = blocks_new(n + 1);
        for (size_t i = 0; i < n; i++) {
            v[i] = heap_alloc(heap, bs);
            assert_non_null(v[i]);
            if (i == 0)
                assert_int_equal((uintptr_t)v[0] - pool_of(v[0], pool_size), pool_header_size());
            else
                assert_ptr_equal(v[i], (char *)v[i - 1] + bs);
            assert_int_equal(pool_of(v[i], pool_size), pool_of(v[0], pool_size));
        }
        assert_true((uintptr_t)v[n - 1] + bs <= pool_of(v[0], pool_size) + pool_size);
        assert_true((uintptr_t)v[n - 1] + 2 * bs > pool_of(v[0], pool_size) + pool_size);

        heap_stats_t st;
        heap_get_stats(heap, &st);
        assert_int_equal(st.classes[c].pools, 1);
        assert_int_equal(st.classes[c].full_pools, 1);
        assert_int_equal(st.classes[c].free_blocks, 0);

        v[n] = heap_alloc(heap, bs);
        assert_non_null(v[n]);
        assert_int_not_equal(pool_of(v[n], pool_size), pool_of(v[0], pool_size));
        assert_int_equal((uintptr_t)v[n] - pool_of(v[n], pool_size), pool_header_size());
        heap_get_stats(heap, &st);
        assert_int_equal(st.classes[c].pools, 2);
        assert_int_equal(st.classes[c].full_pools, 1);

        for (size_t i = 0; i <= n; i++)
            heap_free(heap, v[i]);
        free(v);
        heap_assert_empty_and_destroy(heap);
    }
}

/* Free a then b: the next two allocations return b then a. */
static void test_free_list_is_lifo_for_every_class(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        size_t bs = heap_class_size(c);
        void *a = heap_alloc(heap, bs);
        void *b = heap_alloc(heap, bs);
        void *keep = heap_alloc(heap, bs); /* keeps the pool from emptying */
        heap_free(heap, a);
        heap_free(heap, b);
        void *first = heap_alloc(heap, bs);
        void *second = heap_alloc(heap, bs);
        assert_ptr_equal(first, b);
        assert_ptr_equal(second, a);
        heap_free(heap, first);
        heap_free(heap, second);
        heap_free(heap, keep);
    }
    heap_assert_empty_and_destroy(heap);
}

/* A freed block is handed out before any never-used block is carved, and
 * carving resumes where it stopped once the free list is drained. */
static void test_freed_block_is_reused_before_carving_resumes(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    const size_t bs = 48;
    void *a = heap_alloc(heap, bs);
    void *b = heap_alloc(heap, bs);
    void *c = heap_alloc(heap, bs);
    heap_free(heap, b);
    void *again = heap_alloc(heap, bs);
    assert_ptr_equal(again, b);
    void *carved = heap_alloc(heap, bs);
    assert_ptr_equal(carved, (char *)c + bs);
    heap_free(heap, a);
    heap_free(heap, again);
    heap_free(heap, c);
    heap_free(heap, carved);
    heap_assert_empty_and_destroy(heap);
}

/* Drives one pool of class c through empty -> used -> full -> used -> empty
 * and checks each state in the heap and class stats. A class may keep its
 * emptied pool for reuse until heap_trim() (alloc.h), so the last step
 * trims. */
static void check_pool_state_transitions(size_t pool_size, unsigned c)
{
    heap_t *heap = heap_new_sized(0, pool_size, HEAP_DEBUG_OFF);
    size_t bs = heap_class_size(c);
    size_t n = blocks_per_pool(pool_size, c);
    void **v = blocks_new(n);
    heap_stats_t st;

    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_used, 0);
    assert_int_equal(st.pools_full, 0);
    assert_int_equal(st.classes[c].pools, 0);
    assert_pool_partition(&st);

    v[0] = heap_alloc(heap, bs); /* empty -> used */
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_used, 1);
    assert_int_equal(st.pools_full, 0);
    assert_int_equal(st.classes[c].pools, 1);
    assert_int_equal(st.classes[c].full_pools, 0);
    assert_int_equal(st.classes[c].used_blocks, 1);
    assert_int_equal(st.classes[c].free_blocks, n - 1);
    assert_true(st.arenas >= 1);
    assert_int_equal(st.pools_empty, (size_t)st.arenas * (st.arena_size / pool_size) - 1);
    assert_pool_partition(&st);

    for (size_t i = 1; i < n - 1; i++)
        v[i] = heap_alloc(heap, bs);
    heap_get_stats(heap, &st); /* one block left: still used */
    assert_int_equal(st.pools_used, 1);
    assert_int_equal(st.pools_full, 0);
    assert_int_equal(st.classes[c].free_blocks, 1);

    v[n - 1] = heap_alloc(heap, bs); /* used -> full */
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_used, 0);
    assert_int_equal(st.pools_full, 1);
    assert_int_equal(st.classes[c].pools, 1);
    assert_int_equal(st.classes[c].full_pools, 1);
    assert_int_equal(st.classes[c].used_blocks, n);
    assert_int_equal(st.classes[c].free_blocks, 0);
    assert_pool_partition(&st);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pool_of(v[i], pool_size), pool_of(v[0], pool_size));

    heap_free(heap, v[n / 2]); /* in the class's free cache: free, the pool still full */
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_full, 1);
    assert_int_equal(st.classes[c].free_blocks, 1);
    heap_flush(heap); /* home: full -> used */
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_used, 1);
    assert_int_equal(st.pools_full, 0);
    assert_int_equal(st.classes[c].full_pools, 0);
    assert_int_equal(st.classes[c].free_blocks, 1);
    assert_pool_partition(&st);

    for (size_t i = 0; i < n; i++) {
        if (i == n / 2 || i == n - 1)
            continue;
        heap_free(heap, v[i]);
    }
    heap_get_stats(heap, &st); /* one block left: still used */
    assert_int_equal(st.pools_used, 1);
    assert_int_equal(st.classes[c].used_blocks, 1);

    heap_free(heap, v[n - 1]); /* no block live: the class may keep the pool */
    heap_flush(heap);
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_full, 0);
    assert_int_equal(st.classes[c].used_blocks, 0);
    assert_true(st.classes[c].pools <= 1);
    assert_pool_partition(&st);

    heap_trim(heap); /* used -> empty */
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_used, 0);
    assert_int_equal(st.pools_full, 0);
    assert_int_equal(st.classes[c].pools, 0);
    assert_int_equal(st.classes[c].used_blocks, 0);
    assert_int_equal(st.classes[c].free_blocks, 0);
    assert_int_equal(st.classes[c].allocs, n);
    assert_int_equal(st.classes[c].frees, n);
    assert_int_equal(st.pools_empty, (size_t)st.arenas * (st.arena_size / pool_size));
    assert_pool_partition(&st);
    free(v);
    heap_assert_empty_and_destroy(heap);
}

static void test_pool_goes_empty_used_full_used_empty_for_every_class_and_pool_size(void **state)
{
    (void)state;
    for (size_t pool = HEAP_POOL_SIZE_MIN; pool <= HEAP_POOL_SIZE_MAX; pool <<= 1)
        for (unsigned c = 0; c < HEAP_NCLASSES; c++)
            check_pool_state_transitions(pool, c);
}

/* Freeing one block of a full pool puts the pool back on its class list, and
 * the very next request of the class gets that block, filling it again. */
static void test_full_pool_with_one_freed_block_serves_that_block_next(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    const unsigned c = 7;
    size_t bs = heap_class_size(c);
    size_t n = blocks_per_pool(HEAP_POOL_SIZE_DEFAULT, c);
    void **v = blocks_new(n);
    for (size_t i = 0; i < n; i++)
        v[i] = heap_alloc(heap, bs);
    heap_free(heap, v[3]);
    void *p = heap_alloc(heap, bs);
    assert_ptr_equal(p, v[3]);
    v[3] = p;
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[c].pools, 1);
    assert_int_equal(st.classes[c].full_pools, 1);
    for (size_t i = 0; i < n; i++)
        heap_free(heap, v[i]);
    free(v);
    heap_assert_empty_and_destroy(heap);
}

/* The number of blocks one pool holds is (pool size - header) / block size
 * for every class and pool size. */
static void test_blocks_per_pool_is_pool_size_minus_header_over_block_size(void **state)
{
    (void)state;
    for (size_t pool = HEAP_POOL_SIZE_MIN; pool <= HEAP_POOL_SIZE_MAX; pool <<= 1) {
        heap_t *heap = heap_new_sized(0, pool, HEAP_DEBUG_OFF);
        for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
            void *p = heap_alloc(heap, heap_class_size(c));
            heap_stats_t st;
            heap_get_stats(heap, &st);
            assert_int_equal(st.classes[c].used_blocks + st.classes[c].free_blocks,
                             blocks_per_pool(pool, c));
            heap_free(heap, p);
        }
        heap_assert_empty_and_destroy(heap);
    }
}

/* A pool that went back to its arena forgets its old free list: when it is
 * taken again it carves from its first block in address order. Pool A is
 * filled, pool B gets a few blocks; B is emptied in scrambled order while A
 * has live blocks, and heap_trim() gives B back to the arena. */
static void test_reused_empty_pool_carves_from_its_start_again(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    const size_t pool_size = HEAP_POOL_SIZE_DEFAULT;
    const size_t bs = 32;
    const size_t n = blocks_per_pool(pool_size, heap_size_class(bs));
    void **a = blocks_new(n);
    for (size_t i = 0; i < n; i++)
        a[i] = heap_alloc(heap, bs);
    enum { NB = 10 };
    void *b[NB];
    for (int i = 0; i < NB; i++)
        b[i] = heap_alloc(heap, bs);
    const uintptr_t pool_b = pool_of(b[0], pool_size);
    assert_int_not_equal(pool_b, pool_of(a[0], pool_size));

    heap_free(heap, a[5]); /* A is USED again and heads the class list */
    static const int order[NB] = {4, 0, 9, 2, 7, 1, 8, 3, 6, 5};
    for (int i = 0; i < NB; i++)
        heap_free(heap, b[order[i]]);
    heap_trim(heap);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[heap_size_class(bs)].pools, 1);
    heap_assert_valid(heap);

    a[5] = heap_alloc(heap, bs); /* A is full again */
    for (int i = 0; i < NB; i++) {
        b[i] = heap_alloc(heap, bs);
        if (i == 0)
            assert_int_equal((uintptr_t)b[0] - pool_of(b[0], pool_size), pool_header_size());
        else
            assert_ptr_equal(b[i], (char *)b[i - 1] + bs);
    }
    for (int i = 0; i < NB; i++)
        heap_free(heap, b[i]);
    for (size_t i = 0; i < n; i++)
        heap_free(heap, a[i]);
    free(a);
    heap_assert_empty_and_destroy(heap);
}

/* An emptied pool is not tied to its old class: with every other pool of the
 * arena in use, a request of another class is served from that pool. */
static void test_emptied_pool_is_reused_by_another_size_class(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    const size_t pool_size = HEAP_POOL_SIZE_DEFAULT;
    const unsigned big = HEAP_NCLASSES - 1;
    size_t per_pool = blocks_per_pool(pool_size, big);
    size_t npools = HEAP_ARENA_SIZE_DEFAULT / pool_size;
    size_t n = per_pool * npools;
    void **v = blocks_new(n);
    for (size_t i = 0; i < n; i++)
        v[i] = heap_alloc(heap, HEAP_SMALL_MAX);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.arenas, 1);
    assert_int_equal(st.pools_full, npools);
    assert_int_equal(st.classes[big].full_pools, npools);

    /* Empty the pool in the middle of the arena, free one block of the first
     * pool, and trim: the emptied pool goes back to the arena. */
    size_t victim = npools / 2;
    uintptr_t victim_pool = pool_of(v[victim * per_pool], pool_size);
    for (size_t i = victim * per_pool; i < (victim + 1) * per_pool; i++) {
        assert_int_equal(pool_of(v[i], pool_size), victim_pool);
        heap_free(heap, v[i]);
        v[i] = NULL;
    }
    heap_free(heap, v[0]);
    v[0] = NULL;
    heap_trim(heap);
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[big].pools, npools - 1);
    assert_int_equal(st.pools_full, npools - 2);
    assert_int_equal(st.pools_empty, 1);

    void *small = heap_alloc(heap, 16);
    assert_int_equal(pool_of(small, pool_size), victim_pool);
    heap_get_stats(heap, &st);
    assert_int_equal(st.arenas, 1);
    assert_int_equal(st.classes[0].pools, 1);
    assert_int_equal(st.pools_empty, 0);

    heap_free(heap, small);
    for (size_t i = 0; i < n; i++)
        heap_free(heap, v[i]);
    free(v);
    heap_assert_empty_and_destroy(heap);
}

/* heap_trim() gives back the emptied pools a class keeps for reuse, and only
 * those: live blocks stay intact and the class goes on serving. */
static void test_heap_trim_gives_back_kept_empty_pools_and_keeps_live_blocks(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    const size_t pool_size = HEAP_POOL_SIZE_DEFAULT;
    const unsigned c = 3;
    const size_t bs = heap_class_size(c);
    const size_t n = 4 * blocks_per_pool(pool_size, c);
    void **v = blocks_new(n);
    for (size_t i = 0; i < n; i++) {
        v[i] = heap_alloc(heap, bs);
        memset(v[i], (int)(i & 0xff), bs);
    }
    /* Empty three of the four pools; keep every block of the third. */
    size_t per = blocks_per_pool(pool_size, c);
    for (size_t i = 0; i < n; i++) {
        if (i / per == 2)
            continue;
        heap_free(heap, v[i]);
        v[i] = NULL;
    }
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[c].used_blocks, per);
    uint32_t kept = st.classes[c].pools;
    assert_in_range(kept, 1, 4);

    heap_trim(heap);
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[c].pools, 1);
    assert_int_equal(st.classes[c].used_blocks, per);
    assert_int_equal(st.pools_used + st.pools_full, 1);
    heap_assert_valid(heap);
    for (size_t i = 2 * per; i < 3 * per; i++) {
        const unsigned char *p = v[i];
        for (size_t k = 0; k < bs; k++)
            assert_int_equal(p[k], (unsigned char)(i & 0xff));
    }

    heap_trim(heap); /* nothing more to give back */
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[c].pools, 1);

    void *more = heap_alloc(heap, bs);
    assert_non_null(more);
    heap_free(heap, more);
    for (size_t i = 0; i < n; i++)
        heap_free(heap, v[i]);
    free(v);
    heap_trim(heap);
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_used, 0);
    assert_int_equal(st.classes[c].pools, 0);
    heap_assert_empty_and_destroy(heap);
}

#ifdef TICKD_ASSERTS
static void op_block_home_to_a_used_pool_with_an_empty_free_list(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_OFF);
    void *p = heap_alloc(heap, 64);
    if (p == NULL)
        _exit(99);
    heap_pool_t *pool = (heap_pool_t *)pool_of(p, HEAP_POOL_SIZE_DEFAULT);
    pool->freeblock = NULL; /* USED, yet nothing on its free list */
    heap_free(heap, p);
    heap_flush(heap); /* the block goes home to its pool */
}
#endif

/* A pool's free list is empty exactly when the pool is FULL: a debug build
 * checks it whenever a pool changes state. */
static void
test_used_pool_with_an_empty_free_list_aborts_when_a_block_comes_home_in_a_debug_build(void **state)
{
    (void)state;
#ifndef TICKD_ASSERTS
    skip(); /* a release build has no TICKD_ASSERT */
#else
    assert_dies_naming(op_block_home_to_a_used_pool_with_an_empty_free_list, "assertion failed",
                       "(oldhead == NULL) == (pool->state == HEAP_POOL_FULL)");
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_pool_carves_blocks_in_address_order_for_every_class),
        cmocka_unit_test(test_free_list_is_lifo_for_every_class),
        cmocka_unit_test(test_freed_block_is_reused_before_carving_resumes),
        cmocka_unit_test(test_pool_goes_empty_used_full_used_empty_for_every_class_and_pool_size),
        cmocka_unit_test(test_full_pool_with_one_freed_block_serves_that_block_next),
        cmocka_unit_test(test_blocks_per_pool_is_pool_size_minus_header_over_block_size),
        cmocka_unit_test(test_reused_empty_pool_carves_from_its_start_again),
        cmocka_unit_test(test_emptied_pool_is_reused_by_another_size_class),
        cmocka_unit_test(test_heap_trim_gives_back_kept_empty_pools_and_keeps_live_blocks),
        cmocka_unit_test(
            test_used_pool_with_an_empty_free_list_aborts_when_a_block_comes_home_in_a_debug_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

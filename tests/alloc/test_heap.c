/*
 * test_heap.c - tests of alloc/heap.c: creating and destroying heaps, their
 * options, the size-class mapping of every request size, alignment, usable
 * sizes, and large requests that go to the system allocator.
 *
 * Every test leaves its heap empty (checked through heap_get_stats() and
 * heap_check()) before destroying it. Fatal paths (foreign pointers, debug
 * checks) are death tests in test_debug.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/alloc.h"
#include "tests/alloc/support.h"

static size_t round_up16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static void test_options_init_gives_1mib_arenas_16kib_pools_debug_from_env(void **state)
{
    (void)state;
    heap_options_t opts;
    memset(&opts, 0x5a, sizeof(opts));
    heap_options_init(&opts);
    assert_int_equal(opts.arena_size, HEAP_ARENA_SIZE_DEFAULT);
    assert_int_equal(opts.arena_size, 1 * MiB);
    assert_int_equal(opts.pool_size, HEAP_POOL_SIZE_DEFAULT);
    assert_int_equal(opts.pool_size, 16 * KiB);
    assert_int_equal(opts.debug, HEAP_DEBUG_FROM_ENV);
}

static void test_create_with_null_options_uses_default_sizes(void **state)
{
    (void)state;
    heap_t *heap = NULL;
    assert_int_equal(heap_create(NULL, &heap), 0);
    assert_non_null(heap);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.arena_size, 1 * MiB);
    assert_int_equal(st.pool_size, 16 * KiB);
    heap_assert_empty_and_destroy(heap);
}

static void test_create_with_zero_sizes_uses_default_sizes(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.arena_size, HEAP_ARENA_SIZE_DEFAULT);
    assert_int_equal(st.pool_size, HEAP_POOL_SIZE_DEFAULT);
    heap_assert_empty_and_destroy(heap);
}

/* Every power-of-two arena size 256 KiB..16 MiB with every power-of-two pool
 * size 4..64 KiB is accepted, reported, and serves every size class with
 * blocks inside an arena-aligned mapping. */
static void test_create_accepts_every_power_of_two_size_in_range(void **state)
{
    (void)state;
    for (size_t arena = HEAP_ARENA_SIZE_MIN; arena <= HEAP_ARENA_SIZE_MAX; arena <<= 1) {
        for (size_t pool = HEAP_POOL_SIZE_MIN; pool <= HEAP_POOL_SIZE_MAX; pool <<= 1) {
            heap_t *heap = heap_new_sized(arena, pool, HEAP_DEBUG_OFF);
            heap_stats_t st;
            heap_get_stats(heap, &st);
            assert_int_equal(st.arena_size, arena);
            assert_int_equal(st.pool_size, pool);

            void *blocks[HEAP_NCLASSES];
            for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
                blocks[c] = heap_alloc(heap, heap_class_size(c));
                assert_non_null(blocks[c]);
                assert_int_equal((uintptr_t)blocks[c] % HEAP_ALIGN, 0);
                assert_true(heap_owns(heap, blocks[c]));
                memset(blocks[c], c, heap_class_size(c));
            }
            heap_get_stats(heap, &st);
            assert_int_equal(st.pools_used + st.pools_full, HEAP_NCLASSES);
            assert_int_equal(st.mapped_bytes, (size_t)st.arenas * arena);
            assert_int_equal(st.pools_used + st.pools_full + st.pools_empty,
                             (size_t)st.arenas * (arena / pool));
            for (unsigned c = 0; c < HEAP_NCLASSES; c++)
                heap_free(heap, blocks[c]);
            heap_assert_empty_and_destroy(heap);
        }
    }
}

static void assert_create_rejected(size_t arena, size_t pool)
{
    heap_options_t opts;
    heap_options_init(&opts);
    opts.arena_size = arena;
    opts.pool_size = pool;
    opts.debug = HEAP_DEBUG_OFF;
    heap_t *heap = NULL;
    int rc = heap_create(&opts, &heap);
    if (rc != -EINVAL)
        print_error("arena_size %zu pool_size %zu: heap_create returned %d\n", arena, pool, rc);
    assert_int_equal(rc, -EINVAL);
}

static void test_create_rejects_arena_size_not_power_of_two_or_out_of_range(void **state)
{
    (void)state;
    assert_create_rejected(HEAP_ARENA_SIZE_MIN / 2, 0);
    assert_create_rejected(HEAP_ARENA_SIZE_MIN - 1, 0);
    assert_create_rejected(HEAP_ARENA_SIZE_MAX * 2, 0);
    assert_create_rejected(HEAP_ARENA_SIZE_MAX + 1, 0);
    assert_create_rejected(3 * MiB, 0);
    assert_create_rejected(768 * KiB, 0);
    assert_create_rejected(1 * MiB + 4 * KiB, 0);
    assert_create_rejected(1, 0);
    assert_create_rejected(SIZE_MAX, 0);
    assert_create_rejected((size_t)1 << 40, 0);
}

static void test_create_rejects_pool_size_not_power_of_two_or_out_of_range(void **state)
{
    (void)state;
    assert_create_rejected(0, HEAP_POOL_SIZE_MIN / 2);
    assert_create_rejected(0, HEAP_POOL_SIZE_MIN - 1);
    assert_create_rejected(0, HEAP_POOL_SIZE_MAX * 2);
    assert_create_rejected(0, HEAP_POOL_SIZE_MAX + 1);
    assert_create_rejected(0, 12 * KiB);
    assert_create_rejected(0, 16 * KiB + 16);
    assert_create_rejected(0, 1);
    assert_create_rejected(0, SIZE_MAX);
    assert_create_rejected(HEAP_ARENA_SIZE_MIN, 48 * KiB);
}

/* Each request size 1..512 is served from the class of the next multiple of
 * 16: heap_size_class()/heap_class_size() agree, the block is 16-byte aligned,
 * its usable size is the class size (all writable), and the class counters
 * see it. */
static void
test_every_small_size_is_served_from_its_class_aligned_with_class_usable_size(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    static void *blocks[HEAP_SMALL_MAX + 1];
    heap_stats_t st;
    for (size_t size = 1; size <= HEAP_SMALL_MAX; size++) {
        unsigned cls = heap_size_class(size);
        assert_int_equal(cls, (size - 1) / 16);
        assert_int_equal(heap_class_size(cls), round_up16(size));

        blocks[size] = heap_alloc(heap, size);
        assert_non_null(blocks[size]);
        assert_int_equal((uintptr_t)blocks[size] % 16, 0);
        assert_true(heap_owns(heap, blocks[size]));
        assert_int_equal(heap_usable_size(heap, blocks[size]), round_up16(size));
        memset(blocks[size], (int)size, heap_usable_size(heap, blocks[size]));
    }
    heap_get_stats(heap, &st);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        assert_int_equal(st.classes[c].block_size, heap_class_size(c));
        assert_int_equal(st.classes[c].used_blocks, 16);
        assert_int_equal(st.classes[c].allocs, 16);
        assert_int_equal(st.classes[c].frees, 0);
    }
    assert_int_equal(st.large_allocs, 0);
    for (size_t size = 1; size <= HEAP_SMALL_MAX; size++) {
        const unsigned char *p = blocks[size];
        for (size_t i = 0; i < round_up16(size); i++)
            assert_int_equal(p[i], (unsigned char)size);
        heap_free(heap, blocks[size]);
    }
    heap_get_stats(heap, &st);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++)
        assert_int_equal(st.classes[c].frees, 16);
    heap_assert_empty_and_destroy(heap);
}

static void test_size_zero_is_served_as_a_16_byte_block(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    void *a = heap_alloc(heap, 0);
    void *b = heap_alloc(heap, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal((uintptr_t)a % 16, 0);
    assert_true(heap_owns(heap, a));
    assert_int_equal(heap_usable_size(heap, a), 16);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[0].used_blocks, 2);
    assert_int_equal(st.large_allocs, 0);
    heap_free(heap, a);
    heap_free(heap, b);
    heap_assert_empty_and_destroy(heap);
}

static void test_free_null_is_ignored(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    void *p = heap_alloc(heap, 40);
    heap_stats_t before, after;
    heap_get_stats(heap, &before);
    heap_free(heap, NULL);
    heap_get_stats(heap, &after);
    assert_int_equal(after.used_bytes, before.used_bytes);
    assert_int_equal(after.large_frees, before.large_frees);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        assert_int_equal(after.classes[c].frees, before.classes[c].frees);
        assert_int_equal(after.classes[c].used_blocks, before.classes[c].used_blocks);
    }
    heap_free(heap, p);
    heap_assert_empty_and_destroy(heap);
}

/* Requests above 512 bytes go to the system allocator: counted in
 * large_allocs/large_frees/large_bytes, 16-byte aligned, usable size is the
 * request, not owned by the arenas, no pool used. */
static void test_large_requests_are_counted_aligned_and_freed(void **state)
{
    (void)state;
    static const size_t sizes[] = {513, 528, 600, 1000, 4096, 65537, 1 << 20};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    heap_stats_t before, st;
    heap_get_stats(heap, &before);

    void *blocks[N];
    size_t total = 0;
    for (size_t i = 0; i < N; i++) {
        blocks[i] = heap_alloc(heap, sizes[i]);
        assert_non_null(blocks[i]);
        assert_int_equal((uintptr_t)blocks[i] % 16, 0);
        assert_false(heap_owns(heap, blocks[i]));
        assert_int_equal(heap_usable_size(heap, blocks[i]), sizes[i]);
        memset(blocks[i], 0xab, sizes[i]);
        total += sizes[i];
        heap_get_stats(heap, &st);
        assert_int_equal(st.large_allocs, i + 1);
        assert_int_equal(st.large_frees, 0);
        assert_int_equal(st.large_bytes, total);
    }
    heap_get_stats(heap, &st);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.pools_used + st.pools_full, 0);
    assert_int_equal(st.arenas, before.arenas);
    assert_int_equal(st.large_bytes_peak, total);

    for (size_t i = 0; i < N; i++) {
        const unsigned char *p = blocks[i];
        assert_int_equal(p[0], 0xab);
        assert_int_equal(p[sizes[i] - 1], 0xab);
        heap_free(heap, blocks[i]);
        total -= sizes[i];
        heap_get_stats(heap, &st);
        assert_int_equal(st.large_frees, i + 1);
        assert_int_equal(st.large_bytes, total);
    }
    assert_int_equal(st.large_allocs, N);
    heap_assert_empty_and_destroy(heap);
}

static void test_512_bytes_is_the_last_small_size_and_513_is_large(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    void *small = heap_alloc(heap, HEAP_SMALL_MAX);
    void *large = heap_alloc(heap, HEAP_SMALL_MAX + 1);
    assert_non_null(small);
    assert_non_null(large);
    assert_true(heap_owns(heap, small));
    assert_false(heap_owns(heap, large));
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[HEAP_NCLASSES - 1].used_blocks, 1);
    assert_int_equal(st.used_bytes, HEAP_SMALL_MAX);
    assert_int_equal(st.large_allocs, 1);
    assert_int_equal(st.large_bytes, HEAP_SMALL_MAX + 1);
    heap_free(heap, large);
    heap_free(heap, small);
    heap_assert_empty_and_destroy(heap);
}

static void test_heaps_do_not_own_each_others_blocks(void **state)
{
    (void)state;
    heap_t *a = heap_new(HEAP_DEBUG_OFF);
    heap_t *b = heap_new(HEAP_DEBUG_OFF);
    void *pa = heap_alloc(a, 64);
    void *pb = heap_alloc(b, 64);
    assert_true(heap_owns(a, pa));
    assert_true(heap_owns(b, pb));
    assert_false(heap_owns(a, pb));
    assert_false(heap_owns(b, pa));
    int on_stack = 0;
    void *from_malloc = malloc(64);
    assert_non_null(from_malloc);
    assert_false(heap_owns(a, &on_stack));
    assert_false(heap_owns(a, from_malloc));
    assert_false(heap_owns(a, NULL));
    free(from_malloc);
    heap_free(a, pa);
    heap_free(b, pb);
    heap_assert_empty_and_destroy(a);
    heap_assert_empty_and_destroy(b);
}

/* A freed block is handed out again: a heap's memory is recycled, not grown,
 * by a steady alloc/free of one size. */
static void test_alloc_free_cycle_reuses_memory_without_growing(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    void *first = heap_alloc(heap, 100);
    heap_free(heap, first);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    uint64_t mapped = st.arenas_allocated;
    for (int i = 0; i < 100000; i++) {
        void *p = heap_alloc(heap, 100);
        assert_non_null(p);
        heap_free(heap, p);
    }
    heap_get_stats(heap, &st);
    assert_int_equal(st.arenas_allocated, mapped);
    assert_int_equal(st.classes[heap_size_class(100)].allocs, 100001);
    heap_assert_empty_and_destroy(heap);
}

/* A request no allocator can serve returns NULL and changes no counter.
 * (AddressSanitizer's malloc aborts on such sizes instead of returning NULL,
 * so not under ASan.) */
static void test_impossible_request_returns_null_and_counts_nothing(void **state)
{
    (void)state;
#ifdef HEAP_ASAN
    skip();
#else
    for (int debug = HEAP_DEBUG_OFF; debug <= HEAP_DEBUG_ON; debug++) {
        heap_t *heap = heap_new(debug);
        assert_null(heap_alloc(heap, SIZE_MAX));
        assert_null(heap_alloc(heap, SIZE_MAX - 16));
        assert_null(heap_alloc(heap, SIZE_MAX / 2 + 1));
        heap_stats_t st;
        heap_get_stats(heap, &st);
        assert_int_equal(st.large_allocs, 0);
        assert_int_equal(st.large_bytes, 0);
        assert_int_equal(st.large_bytes_peak, 0);
        heap_assert_empty_and_destroy(heap);
    }
#endif
}

/* Allocates n blocks of 48 bytes into v. */
static void blocks_of_48(heap_t *heap, void **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        v[i] = heap_alloc(heap, 48);
        assert_non_null(v[i]);
    }
}

/* A freed block is taken again by the next allocation of its size: the
 * class's free cache hands back the newest block first, and while cached
 * the block is free in the stats. */
static void test_freed_block_is_the_next_one_handed_out_of_its_class(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    void *v[400];
    blocks_of_48(heap, v, 400);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    uint64_t used = st.classes[2].used_blocks;

    heap_free(heap, v[10]); /* the cache's bottom */
    heap_free(heap, v[20]); /* on the stack above it */
    heap_free(heap, v[30]);
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[2].used_blocks, used - 3);
    assert_int_equal(st.classes[2].frees, 3);
    heap_assert_valid(heap);
    assert_ptr_equal(heap_alloc(heap, 48), v[30]);
    assert_ptr_equal(heap_alloc(heap, 33), v[20]); /* 33..48 bytes: the same class */
    assert_ptr_equal(heap_alloc(heap, 40), v[10]);
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[2].used_blocks, used);

    for (size_t i = 0; i < 400; i++)
        heap_free(heap, v[i]);
    heap_assert_empty_and_destroy(heap);
}

/* The free cache holds 1 + HEAP_STACK_SLOTS blocks; one more sends the
 * oldest half home to their pools' free lists (the full pool takes blocks
 * back and is full no more), and the newest stay, newest first. */
static void test_full_free_cache_sends_its_oldest_half_home(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    enum { CACHE = 1 + HEAP_STACK_SLOTS };
    void *v[400];
    blocks_of_48(heap, v, 400); /* the first pool (340 blocks) full */
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[2].full_pools, 1);

    for (size_t i = 0; i < CACHE; i++)
        heap_free(heap, v[i]);
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[2].full_pools, 1); /* all cached: none home yet */
    assert_int_equal(st.classes[2].used_blocks, 400 - CACHE);

    heap_free(heap, v[CACHE]);
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[2].full_pools, 0); /* v[0 .. SLOTS / 2) are home */
    assert_int_equal(st.classes[2].used_blocks, 400 - (CACHE + 1));
    heap_assert_valid(heap);
    for (size_t i = CACHE; i >= HEAP_STACK_SLOTS / 2; i--)
        assert_ptr_equal(heap_alloc(heap, 48), v[i]);

    for (size_t i = HEAP_STACK_SLOTS / 2; i < 400; i++)
        heap_free(heap, v[i]);
    heap_assert_empty_and_destroy(heap);
}

/* heap_flush() sends every cached block home: a full pool whose blocks were
 * only cached gets them back on its free list and is full no more, and the
 * cache is empty (the next allocation comes from a pool). */
static void test_flush_sends_the_whole_free_cache_home(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    void *v[400];
    blocks_of_48(heap, v, 400); /* the first pool (340 blocks) full */
    for (size_t i = 0; i < 10; i++)
        heap_free(heap, v[i]);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[2].full_pools, 1); /* cached: the pool still counts them */

    heap_flush(heap);
    heap_assert_valid(heap);
    heap_get_stats(heap, &st);
    assert_int_equal(st.classes[2].full_pools, 0);
    assert_int_equal(st.classes[2].used_blocks, 390);
    void *p = heap_alloc(heap, 48); /* the head pool's next block, none of v[0..10) */
    for (size_t i = 0; i < 10; i++)
        assert_ptr_not_equal(p, v[i]);
    heap_free(heap, p);
    for (size_t i = 10; i < 400; i++)
        heap_free(heap, v[i]);
    heap_assert_empty_and_destroy(heap);
}

/* Without debug mode a double free is not caught at the call, but the block
 * is then in its class's free cache twice, and heap_check() names it:
 * twice on the stack, or at the bottom and on the stack. */
static void test_heap_check_finds_a_block_freed_twice_in_the_free_cache(void **state)
{
    (void)state;
    for (int at_bottom = 0; at_bottom <= 1; at_bottom++) {
        heap_t *heap = heap_new(HEAP_DEBUG_OFF);
        void *v[8];
        blocks_of_48(heap, v, 8);
        if (!at_bottom)
            heap_free(heap, v[0]);
        heap_free(heap, v[3]);
        heap_free(heap, v[3]);
        char why[256] = "";
        assert_int_equal(heap_check(heap, why, sizeof(why)), -EFAULT);
        assert_non_null(strstr(why, "in the free cache twice"));
        heap_destroy(heap);
    }
}

#ifdef TICKD_ASSERTS
static void op_trim_a_heap_that_counts_an_arena_too_many(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_OFF);
    if (heap_alloc(heap, 64) == NULL)
        _exit(99);
    heap->narenas++;
    heap_trim(heap);
}
#endif

/* A debug build runs heap_check() after every heap_trim() (the daemon trims
 * on every cycle-sweep tick) and stops at the first thing it finds wrong. */
static void test_trim_of_a_corrupt_heap_aborts_with_what_is_wrong_in_a_debug_build(void **state)
{
    (void)state;
#ifndef TICKD_ASSERTS
    skip(); /* a release build has no TICKD_ASSERT */
#else
    assert_dies_naming(op_trim_a_heap_that_counts_an_arena_too_many,
                       "heap_check: 1 arenas listed, 2 counted", "assertion failed");
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_init_gives_1mib_arenas_16kib_pools_debug_from_env),
        cmocka_unit_test(test_create_with_null_options_uses_default_sizes),
        cmocka_unit_test(test_create_with_zero_sizes_uses_default_sizes),
        cmocka_unit_test(test_create_accepts_every_power_of_two_size_in_range),
        cmocka_unit_test(test_create_rejects_arena_size_not_power_of_two_or_out_of_range),
        cmocka_unit_test(test_create_rejects_pool_size_not_power_of_two_or_out_of_range),
        cmocka_unit_test(
            test_every_small_size_is_served_from_its_class_aligned_with_class_usable_size),
        cmocka_unit_test(test_size_zero_is_served_as_a_16_byte_block),
        cmocka_unit_test(test_free_null_is_ignored),
        cmocka_unit_test(test_large_requests_are_counted_aligned_and_freed),
        cmocka_unit_test(test_512_bytes_is_the_last_small_size_and_513_is_large),
        cmocka_unit_test(test_heaps_do_not_own_each_others_blocks),
        cmocka_unit_test(test_alloc_free_cycle_reuses_memory_without_growing),
        cmocka_unit_test(test_impossible_request_returns_null_and_counts_nothing),
        cmocka_unit_test(test_freed_block_is_the_next_one_handed_out_of_its_class),
        cmocka_unit_test(test_full_free_cache_sends_its_oldest_half_home),
        cmocka_unit_test(test_flush_sends_the_whole_free_cache_home),
        cmocka_unit_test(test_heap_check_finds_a_block_freed_twice_in_the_free_cache),
        cmocka_unit_test(test_trim_of_a_corrupt_heap_aborts_with_what_is_wrong_in_a_debug_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

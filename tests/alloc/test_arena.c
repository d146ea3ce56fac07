/*
 * test_arena.c - tests of alloc/arena.c: arenas mapped aligned to their size
 * and holding arena_size / pool_size pools, the usable-arena order (the
 * fullest arena serves new pools so nearly empty ones drain), the release of
 * wholly empty arenas to the OS with one spare kept mapped, and the radix
 * that says which arenas a heap owns.
 *
 * The tests fill arenas with 512-byte blocks (the largest class) so that a
 * few thousand blocks span several arenas. Debug mode is off; every test
 * leaves its heap empty before destroying it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "tests/alloc/support.h"

#ifdef HEAP_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define BIG       HEAP_SMALL_MAX      /* request size of the largest class */
#define BIG_CLASS (HEAP_NCLASSES - 1) /* that class */

static uintptr_t arena_of(const void *p, size_t arena_size)
{
    return (uintptr_t)p & ~(uintptr_t)(arena_size - 1);
}

static void assert_stats_mapping(const heap_stats_t *st)
{
    assert_int_equal(st->mapped_bytes, (size_t)st->arenas * st->arena_size);
    assert_int_equal(st->arenas_allocated - st->arenas_released, st->arenas);
    assert_true(st->arenas <= st->arenas_highwater);
    assert_true(st->mapped_bytes <= st->mapped_bytes_peak);
    assert_int_equal(st->pools_used + st->pools_full + st->pools_empty,
                     (size_t)st->arenas * (st->arena_size / st->pool_size));
}

/* For several arena/pool sizes: one arena holds exactly arena_size / pool_size
 * pools, all inside one mapping aligned to arena_size; the next block needs a
 * second arena. */
static void test_arena_is_aligned_to_its_size_and_holds_arena_over_pool_pools(void **state)
{
    (void)state;
    static const size_t sizes[][2] = {
        {256 * KiB, 4 * KiB}, {256 * KiB, 64 * KiB}, {1 * MiB, 16 * KiB},
        {2 * MiB, 8 * KiB},   {16 * MiB, 4 * KiB},   {16 * MiB, 64 * KiB},
    };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t arena_size = sizes[k][0], pool_size = sizes[k][1];
        heap_t *heap = heap_new_sized(arena_size, pool_size, HEAP_DEBUG_OFF);
        size_t npools = arena_size / pool_size;
        size_t n = npools * blocks_per_pool(pool_size, BIG_CLASS);
        void **v = blocks_new(n + 1);
        for (size_t i = 0; i < n; i++) {
            v[i] = heap_alloc(heap, BIG);
            assert_non_null(v[i]);
            assert_true(heap_owns(heap, v[i]));
            assert_int_equal(arena_of(v[i], arena_size), arena_of(v[0], arena_size));
        }
        heap_stats_t st;
        heap_get_stats(heap, &st);
        assert_int_equal(st.arenas, 1);
        assert_int_equal(st.pools_full, npools);
        assert_int_equal(st.pools_empty, 0);
        assert_stats_mapping(&st);

        v[n] = heap_alloc(heap, BIG);
        assert_non_null(v[n]);
        assert_true(heap_owns(heap, v[n]));
        assert_int_not_equal(arena_of(v[n], arena_size), arena_of(v[0], arena_size));
        heap_get_stats(heap, &st);
        assert_int_equal(st.arenas, 2);
        assert_int_equal(st.arenas_allocated, 2);
        assert_int_equal(st.pools_used, 1);
        assert_int_equal(st.pools_empty, npools - 1);
        assert_stats_mapping(&st);

        for (size_t i = 0; i <= n; i++)
            heap_free(heap, v[i]);
        free(v);
        heap_assert_empty_and_destroy(heap);
    }
}

/* Filling several arenas and freeing everything gives arenas back to the OS;
 * once heap_trim() has returned the pools the classes keep for reuse, only
 * one spare stays mapped and released arenas are no longer owned. Doing it
 * again maps only what the spare cannot cover. */
static void test_empty_arenas_are_released_keeping_at_most_one_spare(void **state)
{
    (void)state;
    const size_t arena_size = HEAP_ARENA_SIZE_DEFAULT, pool_size = HEAP_POOL_SIZE_DEFAULT;
    heap_t *heap = heap_new_sized(arena_size, pool_size, HEAP_DEBUG_OFF);
    const size_t per_arena = (arena_size / pool_size) * blocks_per_pool(pool_size, BIG_CLASS);
    enum { NARENAS = 6 };
    const size_t n = (NARENAS - 1) * per_arena + 10;
    void **v = blocks_new(n);

    for (int round = 0; round < 2; round++) {
        heap_stats_t before, st;
        heap_get_stats(heap, &before);
        for (size_t i = 0; i < n; i++) {
            v[i] = heap_alloc(heap, BIG);
            assert_non_null(v[i]);
        }
        heap_get_stats(heap, &st);
        assert_int_equal(st.arenas, NARENAS);
        assert_int_equal(st.arenas_highwater, NARENAS);
        assert_int_equal(st.mapped_bytes_peak, NARENAS * arena_size);
        /* A kept spare is reused rather than mapping a fresh arena. */
        assert_int_equal(st.arenas_allocated - before.arenas_allocated, NARENAS - before.arenas);
        assert_stats_mapping(&st);

        uintptr_t bases[NARENAS];
        for (size_t a = 0; a < NARENAS; a++)
            bases[a] = arena_of(v[a * per_arena], arena_size);

        for (size_t i = 0; i < n; i++)
            heap_free(heap, v[i]);
        heap_get_stats(heap, &st);
        assert_true(st.arenas_released > before.arenas_released);
        assert_stats_mapping(&st);

        heap_trim(heap);
        heap_get_stats(heap, &st);
        assert_true(st.arenas <= 1);
        assert_int_equal(st.pools_used, 0);
        assert_true(st.arenas_released >= before.arenas_released + NARENAS - 1);
        assert_int_equal(st.pools_empty, (size_t)st.arenas * (arena_size / pool_size));
        assert_int_equal(st.arenas_highwater, NARENAS);
        assert_stats_mapping(&st);

        size_t still_owned = 0;
        for (size_t a = 0; a < NARENAS; a++)
            still_owned += heap_owns(heap, (void *)(bases[a] + pool_header_size())) ? 1 : 0;
        assert_int_equal(still_owned, 0); /* the spare is not owned either */
        heap_assert_valid(heap);
    }
    free(v);
    heap_assert_empty_and_destroy(heap);
}

/* Allocating and freeing one block just past a full arena (trimming after
 * each free, so the second arena empties every time) does not map and unmap
 * an arena each time: the emptied arena stays as the spare and is reused. */
static void test_spare_arena_prevents_map_unmap_thrash_at_arena_boundary(void **state)
{
    (void)state;
    const size_t arena_size = 256 * KiB, pool_size = 4 * KiB;
    heap_t *heap = heap_new_sized(arena_size, pool_size, HEAP_DEBUG_OFF);
    const size_t n = (arena_size / pool_size) * blocks_per_pool(pool_size, BIG_CLASS);
    void **v = blocks_new(n);
    for (size_t i = 0; i < n; i++)
        v[i] = heap_alloc(heap, BIG);

    void *p = heap_alloc(heap, BIG);
    assert_int_not_equal(arena_of(p, arena_size), arena_of(v[0], arena_size));
    heap_free(heap, p);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    const uint64_t allocated = st.arenas_allocated;
    const uint64_t released = st.arenas_released;
    assert_int_equal(allocated, 2);

    for (int i = 0; i < 1000; i++) {
        p = heap_alloc(heap, (size_t)(i % HEAP_SMALL_MAX) + 1);
        assert_non_null(p);
        assert_int_not_equal(arena_of(p, arena_size), arena_of(v[0], arena_size));
        memset(p, 0x5a, heap_usable_size(heap, p));
        heap_free(heap, p);
        heap_trim(heap);
        heap_get_stats(heap, &st);
        assert_int_equal(st.pools_used, 0);
    }
    heap_get_stats(heap, &st);
    assert_int_equal(st.arenas_allocated, allocated);
    assert_int_equal(st.arenas_released, released);
    assert_true(st.arenas <= 2);
    assert_stats_mapping(&st);
    heap_assert_valid(heap);

    for (size_t i = 0; i < n; i++)
        heap_free(heap, v[i]);
    free(v);
    heap_assert_empty_and_destroy(heap);
}

static size_t count_in_arena(void **v, size_t n, uintptr_t base, size_t arena_size)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] != NULL && arena_of(v[i], arena_size) == base)
            k++;
    return k;
}

/* After most of an older arena's pools are emptied, new pools come from the
 * fuller (younger) arena until it is full; only then from the older one. */
static void test_new_pools_come_from_the_fullest_arena(void **state)
{
    (void)state;
    const size_t arena_size = HEAP_ARENA_SIZE_DEFAULT, pool_size = HEAP_POOL_SIZE_DEFAULT;
    heap_t *heap = heap_new_sized(arena_size, pool_size, HEAP_DEBUG_OFF);
    const size_t npools = arena_size / pool_size;                  /* 64 */
    const size_t per_pool = blocks_per_pool(pool_size, BIG_CLASS); /* 31 */
    const size_t n_old = npools * per_pool;                        /* arena A, full */
    const size_t n_young = (npools / 2) * per_pool;                /* arena B, half full */
    void **v = blocks_new(n_old + n_young);
    for (size_t i = 0; i < n_old + n_young; i++)
        v[i] = heap_alloc(heap, BIG);
    const uintptr_t old_arena = arena_of(v[0], arena_size);
    const uintptr_t young_arena = arena_of(v[n_old], arena_size);
    assert_int_not_equal(old_arena, young_arena);
    assert_int_equal(count_in_arena(v, n_old + n_young, old_arena, arena_size), n_old);
    assert_int_equal(count_in_arena(v, n_old + n_young, young_arena, arena_size), n_young);

    /* Empty all but 4 of the old arena's pools (and free one block of one of
     * those 4 so that it heads the class list): the old arena now has 60 free
     * pools, the young one 32. */
    const size_t kept_old_pools = 4;
    for (size_t i = 0; i < (npools - kept_old_pools) * per_pool; i++) {
        heap_free(heap, v[i]);
        v[i] = NULL;
    }
    heap_free(heap, v[(npools - kept_old_pools) * per_pool]);
    v[(npools - kept_old_pools) * per_pool] = NULL;
    heap_trim(heap); /* the class gives back the emptied pools it keeps */
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.arenas, 2);
    assert_int_equal(st.pools_empty, (npools - kept_old_pools) + npools / 2);
    const uint64_t allocated = st.arenas_allocated;

    /* Every new pool, whatever its class, comes from the young arena while it
     * has a free pool. */
    const size_t young_free = npools / 2;
    void **w = blocks_new(young_free);
    for (size_t k = 0; k < young_free; k++) {
        unsigned cls = (unsigned)(k % (HEAP_NCLASSES - 1)); /* not BIG's class */
        size_t bs = heap_class_size(cls);
        void *first = heap_alloc(heap, bs);
        assert_int_equal(arena_of(first, arena_size), young_arena);
        /* Fill the pool so the next request of this class opens a new one. */
        size_t per = (pool_size - pool_header_size()) / bs;
        void *prev = first;
        for (size_t j = 1; j < per; j++) {
            void *q = heap_alloc(heap, bs);
            assert_ptr_equal(q, (char *)prev + bs);
            assert_int_equal(pool_of(q, pool_size), pool_of(first, pool_size));
            prev = q;
        }
        w[k] = first;
    }
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_empty, npools - kept_old_pools);
    assert_int_equal(st.arenas_allocated, allocated);

    /* The young arena is full: the next pool comes from the old arena, not
     * from a new mapping. */
    void *spill = heap_alloc(heap, 16);
    assert_int_equal(arena_of(spill, arena_size), old_arena);
    heap_get_stats(heap, &st);
    assert_int_equal(st.arenas_allocated, allocated);

    heap_free(heap, spill);
    for (size_t k = 0; k < young_free; k++) {
        size_t bs = heap_class_size((unsigned)(k % (HEAP_NCLASSES - 1)));
        size_t per = (pool_size - pool_header_size()) / bs;
        for (size_t j = per; j-- > 0;)
            heap_free(heap, (char *)w[k] + j * bs);
    }
    free(w);
    for (size_t i = 0; i < n_old + n_young; i++)
        heap_free(heap, v[i]);
    free(v);
    heap_assert_empty_and_destroy(heap);
}

/* Allocates a burst of blocks of every class (seeded sizes 1..512) over many
 * arenas and frees them all in a seeded random order. */
static void mixed_burst(heap_t *heap, size_t n)
{
    void **v = blocks_new(n);
    uint64_t rng = 0x2545f4914f6cdd1du;
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        v[i] = heap_alloc(heap, (size_t)(rng % HEAP_SMALL_MAX) + 1);
        assert_non_null(v[i]);
    }
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_true(st.arenas >= 10);
    for (size_t i = n - 1; i > 0; i--) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        size_t j = (size_t)(rng % (i + 1));
        void *t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        heap_free(heap, v[i]);
    free(v);
    heap_get_stats(heap, &st);
    assert_int_equal(st.used_bytes, 0);
}

/* Without heap_trim(), what a burst leaves behind is bounded: each size class
 * keeps at most its head pool (the head bias), one cached pool and the pools
 * of the blocks in its free cache, with no live block in any; every other
 * pool went back to its arena and every arena left wholly empty was released
 * (one spare at most). Once the cached blocks are home (heap_flush), only
 * the head and the cached pool are left. */
static void test_freeing_a_mixed_burst_leaves_at_most_two_idle_pools_per_class(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    mixed_burst(heap, 200000);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_stats_mapping(&st);
    assert_int_equal(st.used_bytes, 0);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++)
        assert_true(st.classes[c].pools <= 2 + HEAP_STACK_SLOTS);

    heap_flush(heap);
    heap_get_stats(heap, &st);
    assert_stats_mapping(&st);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.pools_full, 0);
    uint32_t kept = 0;
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        assert_true(st.classes[c].pools <= 2);
        kept += st.classes[c].pools;
    }
    /* Each kept pool can pin one arena; nothing else stays mapped but the spare. */
    assert_true(st.arenas <= kept + 1);
    assert_true(st.arenas_released >= st.arenas_highwater - st.arenas);
    heap_assert_empty_and_destroy(heap);
}

/* The same burst, then heap_trim(): no pool in use, at most one arena (the
 * spare) mapped, every other arena released. */
static void test_heap_trim_after_a_mixed_burst_leaves_at_most_one_spare_arena(void **state)
{
    (void)state;
    heap_t *heap = heap_new_sized(HEAP_ARENA_SIZE_MIN, HEAP_POOL_SIZE_MIN, HEAP_DEBUG_OFF);
    mixed_burst(heap, 50000);
    heap_trim(heap);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_used, 0);
    assert_int_equal(st.pools_full, 0);
    assert_true(st.arenas <= 1);
    assert_int_equal(st.arenas_released, st.arenas_allocated - st.arenas);
    assert_stats_mapping(&st);
    heap_assert_empty_and_destroy(heap);
}

/* Under AddressSanitizer free blocks are poisoned; an arena given back to the
 * OS (released, or unmapped by heap_destroy()) must leave no poison behind,
 * or whatever is mapped there next (another heap's pools, a large malloc)
 * trips false use-after-poison reports. Only meaningful under ASan. */
static void test_unmapped_arenas_leave_no_asan_poison_behind(void **state)
{
    (void)state;
#ifndef HEAP_ASAN
    skip();
#else
    const size_t arena_size = HEAP_ARENA_SIZE_MIN, pool_size = HEAP_POOL_SIZE_MIN;
    heap_t *heap = heap_new_sized(arena_size, pool_size, HEAP_DEBUG_OFF);
    const size_t per_arena = (arena_size / pool_size) * blocks_per_pool(pool_size, BIG_CLASS);
    enum { NARENAS = 4 };
    const size_t n = (NARENAS - 1) * per_arena + 1;
    void **v = blocks_new(n);
    for (size_t i = 0; i < n; i++)
        v[i] = heap_alloc(heap, BIG);
    uintptr_t bases[NARENAS];
    for (size_t a = 0; a < NARENAS; a++)
        bases[a] = arena_of(v[a * per_arena], arena_size);
    for (size_t i = 0; i < n; i++)
        heap_free(heap, v[i]);
    free(v);
    heap_trim(heap);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_true(st.arenas_released >= 1);
    heap_assert_empty_and_destroy(heap);

    for (size_t a = 0; a < NARENAS; a++) {
        void *bad = __asan_region_is_poisoned((void *)bases[a], arena_size);
        if (bad != NULL)
            print_error("unmapped arena %#lx still poisoned at %p\n", (unsigned long)bases[a], bad);
        assert_null(bad);
    }
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unmapped_arenas_leave_no_asan_poison_behind),
        cmocka_unit_test(test_arena_is_aligned_to_its_size_and_holds_arena_over_pool_pools),
        cmocka_unit_test(test_empty_arenas_are_released_keeping_at_most_one_spare),
        cmocka_unit_test(test_spare_arena_prevents_map_unmap_thrash_at_arena_boundary),
        cmocka_unit_test(test_new_pools_come_from_the_fullest_arena),
        cmocka_unit_test(test_freeing_a_mixed_burst_leaves_at_most_two_idle_pools_per_class),
        cmocka_unit_test(test_heap_trim_after_a_mixed_burst_leaves_at_most_one_spare_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

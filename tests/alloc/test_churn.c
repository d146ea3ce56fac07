/*
 * test_churn.c - a long seeded random alloc/free churn over the whole heap
 * (alloc/heap.c, pool.c, arena.c together), checked against a reference
 * model: every live block's address and size, and a byte pattern written into
 * it that must be intact when it is freed.
 *
 * Along the way: no two live blocks overlap, the per-class used blocks and
 * the large bytes agree with the model, heap_check() passes; at the end the
 * heap is empty. The live set swings between near empty and tens of thousands
 * of blocks so pools and arenas fill, drain and are released; heap_trim()
 * runs at every swing and at the end.
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

#define MAX_SIZE 600

typedef struct live {
    unsigned char *p;
    size_t size;   /* requested */
    size_t usable; /* heap_usable_size() at allocation */
    uint64_t serial;
    int large; /* not in an arena: from the system allocator */
} live_t;

typedef struct model {
    live_t *live;
    size_t nlive;
    size_t cap;
    uint64_t serial;
    uint64_t class_live[HEAP_NCLASSES];
    uint64_t large_live;
    size_t large_bytes;
} model_t;

/* The pattern of a block: its serial in the first 8 bytes (when it fits),
 * then one byte derived from the serial. */
static unsigned char pattern_byte(uint64_t serial)
{
    return (unsigned char)(serial % 251 + 1);
}

static void pattern_write(const live_t *b)
{
    size_t head = b->size < sizeof(b->serial) ? b->size : sizeof(b->serial);
    memcpy(b->p, &b->serial, head);
    memset(b->p + head, pattern_byte(b->serial), b->size - head);
}

static void pattern_verify(const live_t *b)
{
    size_t head = b->size < sizeof(b->serial) ? b->size : sizeof(b->serial);
    if (memcmp(b->p, &b->serial, head) != 0)
        fail_msg("block %p (size %zu, serial %llu): serial overwritten", (void *)b->p, b->size,
                 (unsigned long long)b->serial);
    unsigned char want = pattern_byte(b->serial);
    for (size_t i = head; i < b->size; i++)
        if (b->p[i] != want)
            fail_msg("block %p (size %zu, serial %llu): byte %zu is 0x%02x, expected 0x%02x",
                     (void *)b->p, b->size, (unsigned long long)b->serial, i, b->p[i], want);
}

static void model_alloc(model_t *m, heap_t *heap, size_t size, int debug)
{
    assert_true(m->nlive < m->cap);
    unsigned char *p = heap_alloc(heap, size);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % HEAP_ALIGN, 0);
    live_t *b = &m->live[m->nlive++];
    b->p = p;
    b->size = size;
    b->usable = heap_usable_size(heap, p);
    b->serial = ++m->serial;
    /* In debug mode requests a little under 512 bytes are large too, to fit
     * their guards; and the usable size is the request. */
    b->large = !heap_owns(heap, p);
    if (debug)
        assert_int_equal(b->usable, size);
    else
        assert_int_equal(b->large, size > HEAP_SMALL_MAX);
    if (b->large) {
        assert_int_equal(b->usable, size);
        m->large_live++;
        m->large_bytes += size;
    } else {
        if (!debug)
            assert_int_equal(b->usable, heap_class_size(heap_size_class(size)));
        m->class_live[heap_size_class(size)]++;
    }
    if (debug)
        for (size_t i = 0; i < b->usable; i++)
            assert_int_equal(p[i], 0xCD);
    pattern_write(b);
}

static void model_free(model_t *m, heap_t *heap, size_t i)
{
    live_t *b = &m->live[i];
    pattern_verify(b);
    if (b->large) {
        m->large_live--;
        m->large_bytes -= b->size;
    } else {
        m->class_live[heap_size_class(b->size)]--;
    }
    heap_free(heap, b->p);
    *b = m->live[--m->nlive];
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const live_t *)a)->p, y = (uintptr_t)((const live_t *)b)->p;
    return x < y ? -1 : x > y;
}

/* Sorted by address, each live block ends before the next one starts. The
 * order of the live array does not matter to the model, so it stays sorted. */
static void assert_no_overlap(model_t *m)
{
    qsort(m->live, m->nlive, sizeof(live_t), by_address);
    for (size_t i = 1; i < m->nlive; i++) {
        const live_t *a = &m->live[i - 1], *b = &m->live[i];
        if (a->p + a->usable > b->p)
            fail_msg("live blocks overlap: %p+%zu and %p", (void *)a->p, a->usable, (void *)b->p);
    }
}

/* The heap's counters agree with the model (in debug mode a request may be
 * served from a larger class to fit its guards, so only totals are
 * compared). */
static void assert_stats_match(const heap_t *heap, const model_t *m, int debug)
{
    heap_stats_t st;
    heap_get_stats(heap, &st);
    uint64_t small_live = 0, model_small = 0;
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        assert_int_equal(st.classes[c].allocs - st.classes[c].frees, st.classes[c].used_blocks);
        if (!debug)
            assert_int_equal(st.classes[c].used_blocks, m->class_live[c]);
        small_live += st.classes[c].used_blocks;
        model_small += m->class_live[c];
    }
    assert_int_equal(small_live, model_small);
    assert_int_equal(st.large_allocs - st.large_frees, m->large_live);
    assert_int_equal(st.large_bytes, m->large_bytes);
    assert_int_equal(st.mapped_bytes, st.used_bytes + st.available_bytes + st.empty_pool_bytes +
                                          st.pool_header_bytes + st.alignment_bytes +
                                          st.quantization_bytes);
}

/* Runs nops operations; the live-set target is redrawn every phase ops. */
static void churn(heap_t *heap, uint64_t seed, size_t nops, size_t max_live, int debug)
{
    model_t m;
    memset(&m, 0, sizeof(m));
    m.cap = max_live;
    m.live = calloc(m.cap, sizeof(live_t));
    assert_non_null(m.live);
    uint64_t rng = seed;
    const size_t phase = 50000;
    size_t target = 0;

    for (size_t op = 0; op < nops; op++) {
        if (op % phase == 0) {
            target = (size_t)(rng_next(&rng) % (max_live + 1));
            heap_trim(heap);
        }
        uint64_t r = rng_next(&rng);
        int alloc = m.nlive < target ? r % 8 < 5 : r % 8 < 3;
        if (m.nlive == 0)
            alloc = 1;
        if (m.nlive == m.cap)
            alloc = 0;
        if (alloc)
            model_alloc(&m, heap, (size_t)((r >> 16) % MAX_SIZE) + 1, debug);
        else
            model_free(&m, heap, (size_t)((r >> 16) % m.nlive));

        if (op % 1000 == 999)
            assert_stats_match(heap, &m, debug);
        if (op % 100000 == 99999) {
            assert_no_overlap(&m);
            heap_assert_valid(heap);
        }
    }
    assert_no_overlap(&m);
    heap_assert_valid(heap);
    while (m.nlive > 0)
        model_free(&m, heap, m.nlive - 1);
    assert_stats_match(heap, &m, debug);
    heap_assert_valid(heap);
    free(m.live);

    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.large_bytes, 0);
    assert_int_equal(st.large_allocs, st.large_frees);
    heap_flush(heap); /* the cached blocks home: no pool is full */
    heap_assert_valid(heap);
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_full, 0);

    heap_trim(heap);
    heap_assert_valid(heap);
    heap_get_stats(heap, &st);
    assert_int_equal(st.pools_used, 0);
    assert_true(st.arenas <= 1);
}

static void test_two_million_random_ops_keep_blocks_intact_and_end_empty(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    churn(heap, 20240601, 2000000, 40000, HEAP_DEBUG_OFF);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_true(st.arenas_highwater >= 4);
    heap_destroy(heap);
}

/* Smallest arenas and pools: arenas are mapped and released over and over. */
static void test_churn_with_smallest_arenas_and_pools_releases_arenas_and_ends_empty(void **state)
{
    (void)state;
    heap_t *heap = heap_new_sized(HEAP_ARENA_SIZE_MIN, HEAP_POOL_SIZE_MIN, HEAP_DEBUG_OFF);
    churn(heap, 7, 500000, 20000, HEAP_DEBUG_OFF);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_true(st.arenas_released > 0);
    assert_true(st.arenas_highwater >= 8);
    heap_destroy(heap);
}

/* Debug mode: every new block reads 0xCD, patterns survive, no false fatal
 * report. */
static void test_churn_in_debug_mode_fills_new_blocks_and_ends_empty(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_ON);
    churn(heap, 99, 300000, 10000, HEAP_DEBUG_ON);
    heap_destroy(heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_million_random_ops_keep_blocks_intact_and_end_empty),
        cmocka_unit_test(test_churn_with_smallest_arenas_and_pools_releases_arenas_and_ends_empty),
        cmocka_unit_test(test_churn_in_debug_mode_fills_new_blocks_and_ends_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

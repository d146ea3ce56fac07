/*
 * test_stats.c - tests of alloc/stats.c: heap_get_stats() counters and byte
 * breakdown, heap_format_stats() (the sys._debugmallocstats()-style report
 * and its snprintf-like length), and heap_check().
 *
 * The byte breakdown must add up exactly at every point:
 *   mapped = used + available + empty pools + pool headers + alignment
 *          + quantization
 * The workload tests check that, and heap_check(), after every single
 * operation of a seeded random alloc/free sequence, and so must heap_walk()'s
 * picture of arenas and pools. Every test leaves its heap empty before
 * destroying it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "tests/alloc/support.h"

/* What the test believes is live: per class block counts (exact unless debug
 * mode, where a request is served from a larger class to fit its guards),
 * the number of small blocks, and large blocks. */
typedef struct model {
    int exact_classes;
    uint64_t class_live[HEAP_NCLASSES];
    uint64_t small_live;
    uint64_t large_live;
    size_t large_bytes;
} model_t;

/* The pool size of the heap being walked (the pool callback's capacity check). */
static size_t heap_pool_size_of_walk;

/* What heap_walk() reports, summed up. */
typedef struct walked {
    uint32_t arenas, spares, pools, free_pools;
    uint32_t arena_free_pools; /* the arenas' own free_pools counts, summed */
    uint32_t by_state[4];      /* pools per enum heap_pool_state */
    uint64_t used[HEAP_NCLASSES];
    uint32_t class_pools[HEAP_NCLASSES]; /* USED, FULL and CACHED pools per class */
    uint32_t expect_index;               /* the next pool index of the current arena */
    int stop_after;                      /* return 1 after this many arenas (0: never) */
} walked_t;

static int walked_arena(void *arg, const heap_arena_info_t *a)
{
    walked_t *w = arg;
    w->arenas++;
    w->spares += a->spare != 0;
    w->arena_free_pools += a->free_pools;
    w->expect_index = 0;
    if (a->spare)
        assert_int_equal(a->free_pools, a->pools);
    return w->stop_after != 0 && w->arenas == (uint32_t)w->stop_after;
}

static int walked_pool(void *arg, const heap_pool_info_t *p)
{
    walked_t *w = arg;
    assert_int_equal(p->index, w->expect_index);
    w->expect_index++;
    w->pools++;
    assert_true(p->state <= HEAP_POOL_CACHED);
    w->by_state[p->state]++;
    if (p->state == HEAP_POOL_EMPTY) {
        w->free_pools++;
        assert_int_equal(p->used, 0);
        assert_int_equal(p->capacity, 0);
        return 0;
    }
    assert_true(p->size_class < HEAP_NCLASSES);
    assert_int_equal(p->capacity, (heap_pool_size_of_walk - pool_header_size()) /
                                      heap_class_size(p->size_class));
    assert_true(p->used <= p->capacity);
    if (p->state == HEAP_POOL_CACHED)
        assert_int_equal(p->used, 0);
    w->used[p->size_class] += p->used;
    w->class_pools[p->size_class]++;
    return 0;
}

/* heap_walk() reports every arena and pool, and its counts are the stats'. */
static void assert_walk_agrees(const heap_t *heap, const heap_stats_t *st)
{
    walked_t w;
    memset(&w, 0, sizeof(w));
    heap_pool_size_of_walk = st->pool_size;
    assert_int_equal(heap_walk(heap, walked_arena, walked_pool, &w), 0);
    assert_int_equal(w.arenas, st->arenas);
    assert_true(w.spares <= 1);
    assert_int_equal(w.pools, (size_t)st->arenas * (st->arena_size / st->pool_size));
    assert_int_equal(w.free_pools, st->pools_empty);
    assert_int_equal(w.arena_free_pools, st->pools_empty);
    assert_int_equal(w.by_state[HEAP_POOL_FULL], st->pools_full);
    assert_int_equal(w.by_state[HEAP_POOL_USED] + w.by_state[HEAP_POOL_CACHED], st->pools_used);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        assert_int_equal(w.used[c], st->classes[c].used_blocks);
        assert_int_equal(w.class_pools[c], st->classes[c].pools);
    }
}

/* Every documented relation between the stats fields, and agreement with the
 * model. */
static void assert_stats_consistent(const heap_t *heap, const model_t *m)
{
    heap_stats_t st;
    heap_get_stats(heap, &st);
    const size_t pool = st.pool_size;

    assert_int_equal(st.mapped_bytes, st.used_bytes + st.available_bytes + st.empty_pool_bytes +
                                          st.pool_header_bytes + st.alignment_bytes +
                                          st.quantization_bytes);
    assert_int_equal(st.mapped_bytes, (size_t)st.arenas * st.arena_size);
    assert_true(st.mapped_bytes <= st.mapped_bytes_peak);
    assert_true(st.arenas <= st.arenas_highwater);
    assert_int_equal(st.arenas_allocated - st.arenas_released, st.arenas);
    assert_int_equal(st.pools_used + st.pools_full + st.pools_empty,
                     (size_t)st.arenas * (st.arena_size / pool));
    assert_int_equal(st.empty_pool_bytes, (size_t)st.pools_empty * pool);
    assert_int_equal(st.pool_header_bytes + st.alignment_bytes,
                     (size_t)(st.pools_used + st.pools_full) * pool_header_size());

    size_t used = 0, available = 0, quantization = 0;
    uint64_t small_live = 0;
    uint32_t pools = 0, full = 0;
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        const heap_class_stats_t *cs = &st.classes[c];
        size_t bs = heap_class_size(c);
        assert_int_equal(cs->block_size, bs);
        assert_int_equal(cs->allocs - cs->frees, cs->used_blocks);
        if (m->exact_classes)
            assert_int_equal(cs->used_blocks, m->class_live[c]);
        assert_int_equal(cs->used_blocks + cs->free_blocks,
                         (uint64_t)cs->pools * ((pool - pool_header_size()) / bs));
        assert_true(cs->full_pools <= cs->pools);
        /* A pool with a free block is not full, so free blocks need a
         * non-full pool and each non-full pool has at least one. */
        assert_true(cs->free_blocks >= cs->pools - cs->full_pools);
        small_live += cs->used_blocks;
        used += cs->used_blocks * bs;
        available += cs->free_blocks * bs;
        quantization += (size_t)cs->pools * ((pool - pool_header_size()) % bs);
        pools += cs->pools;
        full += cs->full_pools;
    }
    assert_int_equal(small_live, m->small_live);
    assert_int_equal(st.used_bytes, used);
    assert_int_equal(st.available_bytes, available);
    assert_int_equal(st.quantization_bytes, quantization);
    assert_int_equal(st.pools_used + st.pools_full, pools);
    assert_int_equal(st.pools_full, full);

    assert_int_equal(st.large_allocs - st.large_frees, m->large_live);
    assert_int_equal(st.large_bytes, m->large_bytes);
    assert_true(st.large_bytes <= st.large_bytes_peak);
    assert_walk_agrees(heap, &st);
}

typedef struct live {
    void *p;
    size_t size;
    int large;
} live_t;

/* A block is large when the arenas do not own it (in debug mode requests a
 * little under 512 bytes are large too, to fit their guards). */
static void model_add(model_t *m, const heap_t *heap, live_t *b)
{
    b->large = !heap_owns(heap, b->p);
    if (m->exact_classes)
        assert_int_equal(b->large, b->size > HEAP_SMALL_MAX);
    if (b->large) {
        m->large_live++;
        m->large_bytes += b->size;
    } else {
        m->small_live++;
        m->class_live[heap_size_class(b->size ? b->size : 1)]++;
    }
}

static void model_remove(model_t *m, const live_t *b)
{
    if (b->large) {
        m->large_live--;
        m->large_bytes -= b->size;
    } else {
        m->small_live--;
        m->class_live[heap_size_class(b->size ? b->size : 1)]--;
    }
}

/* Runs nops seeded random operations (sizes 0..max_size, the live set swinging
 * between empty and max_live so that pools and arenas fill and drain, and a
 * heap_trim() now and then), checking the stats and heap_check() after every
 * one; frees everything at the end. */
static void run_checked_workload(heap_t *heap, uint64_t seed, size_t nops, size_t max_live,
                                 size_t max_size, int exact_classes)
{
    live_t *live = calloc(max_live, sizeof(*live));
    assert_non_null(live);
    size_t nlive = 0;
    model_t m;
    memset(&m, 0, sizeof(m));
    m.exact_classes = exact_classes;
    uint64_t rng = seed;
    size_t target = max_live;

    assert_stats_consistent(heap, &m);
    heap_assert_valid(heap);
    for (size_t op = 0; op < nops; op++) {
        if (op % (max_live * 2) == 0)
            target = target ? 0 : max_live;
        uint64_t r = rng_next(&rng);
        int want_alloc = nlive < target ? (r % 100) < 75 : (r % 100) < 25;
        if (nlive == max_live)
            want_alloc = 0;
        if (nlive == 0)
            want_alloc = 1;
        if (want_alloc) {
            size_t size = (size_t)((r >> 8) % (max_size + 1));
            void *p = heap_alloc(heap, size);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % HEAP_ALIGN, 0);
            live[nlive].p = p;
            live[nlive].size = size;
            model_add(&m, heap, &live[nlive]);
            nlive++;
        } else {
            size_t i = (size_t)((r >> 8) % nlive);
            heap_free(heap, live[i].p);
            model_remove(&m, &live[i]);
            live[i] = live[--nlive];
        }
        assert_stats_consistent(heap, &m);
        heap_assert_valid(heap);
        if (op % 997 == 996) {
            heap_trim(heap);
            assert_stats_consistent(heap, &m);
            heap_assert_valid(heap);
        }
    }
    while (nlive > 0) {
        nlive--;
        heap_free(heap, live[nlive].p);
        model_remove(&m, &live[nlive]);
        assert_stats_consistent(heap, &m);
    }
    heap_assert_valid(heap);
    free(live);
}

static void test_fresh_heap_reports_no_use_and_class_block_sizes(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.arena_size, HEAP_ARENA_SIZE_DEFAULT);
    assert_int_equal(st.pool_size, HEAP_POOL_SIZE_DEFAULT);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.available_bytes, 0);
    assert_int_equal(st.pools_used, 0);
    assert_int_equal(st.pools_full, 0);
    assert_int_equal(st.large_allocs, 0);
    assert_int_equal(st.large_frees, 0);
    assert_int_equal(st.large_bytes, 0);
    assert_int_equal(st.large_bytes_peak, 0);
    assert_int_equal(st.arenas_released, 0);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        assert_int_equal(st.classes[c].block_size, (c + 1) * 16);
        assert_int_equal(st.classes[c].allocs, 0);
        assert_int_equal(st.classes[c].frees, 0);
        assert_int_equal(st.classes[c].used_blocks, 0);
        assert_int_equal(st.classes[c].pools, 0);
    }
    model_t m;
    memset(&m, 0, sizeof(m));
    m.exact_classes = 1;
    assert_stats_consistent(heap, &m);
    heap_assert_empty_and_destroy(heap);
}

static void test_class_stats_count_allocs_frees_and_used_blocks_per_class(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    enum { PER_CLASS = 5 };
    void *v[HEAP_NCLASSES][PER_CLASS];
    for (unsigned c = 0; c < HEAP_NCLASSES; c++)
        for (unsigned k = 0; k <= c % PER_CLASS; k++)
            v[c][k] = heap_alloc(heap, heap_class_size(c) - k);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    size_t used = 0;
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        assert_int_equal(st.classes[c].allocs, c % PER_CLASS + 1);
        assert_int_equal(st.classes[c].frees, 0);
        assert_int_equal(st.classes[c].used_blocks, c % PER_CLASS + 1);
        assert_int_equal(st.classes[c].pools, 1);
        used += (c % PER_CLASS + 1) * heap_class_size(c);
    }
    assert_int_equal(st.used_bytes, used);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++)
        heap_free(heap, v[c][0]);
    heap_get_stats(heap, &st);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        assert_int_equal(st.classes[c].frees, 1);
        assert_int_equal(st.classes[c].used_blocks, c % PER_CLASS);
    }
    for (unsigned c = 0; c < HEAP_NCLASSES; c++)
        for (unsigned k = 1; k <= c % PER_CLASS; k++)
            heap_free(heap, v[c][k]);
    heap_assert_empty_and_destroy(heap);
}

static void test_large_bytes_peak_keeps_the_maximum(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    void *a = heap_alloc(heap, 1000);
    void *b = heap_alloc(heap, 2000);
    heap_free(heap, b);
    void *c = heap_alloc(heap, 1500);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.large_bytes, 2500);
    assert_int_equal(st.large_bytes_peak, 3000);
    assert_int_equal(st.large_allocs, 3);
    assert_int_equal(st.large_frees, 1);
    heap_free(heap, a);
    heap_free(heap, c);
    heap_get_stats(heap, &st);
    assert_int_equal(st.large_bytes_peak, 3000);
    heap_assert_empty_and_destroy(heap);
}

static void test_byte_breakdown_adds_up_after_every_op_of_random_workload(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    run_checked_workload(heap, 1, 20000, 2500, 600, 1);
    heap_assert_empty_and_destroy(heap);
}

/* Smallest arenas and pools: the workload spans several arenas that fill and
 * drain; the breakdown and heap_check() still hold throughout. */
static void test_byte_breakdown_adds_up_with_smallest_arenas_and_pools(void **state)
{
    (void)state;
    heap_t *heap = heap_new_sized(HEAP_ARENA_SIZE_MIN, HEAP_POOL_SIZE_MIN, HEAP_DEBUG_OFF);
    run_checked_workload(heap, 2, 20000, 2000, 600, 1);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_true(st.arenas_highwater >= 3);
    heap_assert_empty_and_destroy(heap);
}

static void test_byte_breakdown_adds_up_with_large_arenas_and_pools(void **state)
{
    (void)state;
    heap_t *heap = heap_new_sized(HEAP_ARENA_SIZE_MAX, HEAP_POOL_SIZE_MAX, HEAP_DEBUG_OFF);
    run_checked_workload(heap, 3, 10000, 2000, 600, 1);
    heap_assert_empty_and_destroy(heap);
}

static void test_byte_breakdown_adds_up_in_debug_mode(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_ON);
    run_checked_workload(heap, 4, 10000, 1500, 600, 0);
    heap_assert_empty_and_destroy(heap);
}

/* heap_check() notices a pool header whose class pointer is not its size
 * class's (the pointer the free path follows). */
static void test_heap_check_reports_a_pool_whose_class_pointer_is_wrong(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    void *p = heap_alloc(heap, 64);
    heap_pool_t *pool = (heap_pool_t *)((uintptr_t)p & ~(uintptr_t)(HEAP_POOL_SIZE_DEFAULT - 1));
    heap_class_t *saved = pool->cls;
    pool->cls = &heap->classes[0];
    char why[256] = "";
    assert_int_equal(heap_check(heap, why, sizeof(why)), -EFAULT);
    assert_non_null(strstr(why, "class pointer"));
    pool->cls = saved;
    heap_assert_valid(heap);
    heap_free(heap, p);
    heap_assert_empty_and_destroy(heap);
}

/* heap_check() notices a pool whose free list is shorter than its counters
 * say. The corruption is a write into a freed block (a use after free), so
 * it is skipped under AddressSanitizer. */
static void test_heap_check_reports_a_truncated_free_list(void **state)
{
    (void)state;
#ifdef HEAP_ASAN
    skip();
#else
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    void *a = heap_alloc(heap, 64);
    void *b = heap_alloc(heap, 64);
    void *keep = heap_alloc(heap, 64);
    heap_free(heap, a);
    heap_free(heap, b);
    heap_flush(heap); /* home from the free cache: free list b -> a -> ... */
    heap_assert_valid(heap);

    heap_block_t *blk = b;
    heap_block_t *saved = blk->next;
    blk->next = NULL;
    char why[256] = "";
    assert_int_equal(heap_check(heap, why, sizeof(why)), -EFAULT);
    assert_true(strlen(why) > 0);
    blk->next = saved;
    heap_assert_valid(heap);

    heap_free(heap, keep);
    heap_assert_empty_and_destroy(heap);
#endif
}

/* A heap with a block in each of classes 0, 6 and 31 and one large block. */
static heap_t *heap_with_some_blocks(void *v[4])
{
    heap_t *heap = heap_new(HEAP_DEBUG_OFF);
    v[0] = heap_alloc(heap, 16);
    v[1] = heap_alloc(heap, 100);
    v[2] = heap_alloc(heap, 512);
    v[3] = heap_alloc(heap, 4000);
    return heap;
}

static void heap_free_some_blocks(heap_t *heap, void *v[4])
{
    for (int i = 0; i < 4; i++)
        heap_free(heap, v[i]);
}

static char *format_report(const heap_t *heap)
{
    size_t n = heap_format_stats(heap, NULL, 0);
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    assert_int_equal(heap_format_stats(heap, buf, n + 1), n);
    assert_int_equal(strlen(buf), n);
    return buf;
}

/* The number on the report line that starts with label (after blanks): the
 * digits after its '=', thousands separators skipped. */
static int report_number(const char *report, const char *label, unsigned long long *out)
{
    for (const char *line = report; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        const char *p = line;
        while (*p == ' ')
            p++;
        if (strncmp(p, label, strlen(label)) == 0) {
            const char *eq = memchr(p, '=', end ? (size_t)(end - p) : strlen(p));
            if (eq == NULL)
                return 0;
            unsigned long long v = 0;
            int digits = 0;
            for (const char *q = eq + 1; q < (end ? end : eq + strlen(eq)); q++) {
                if (*q >= '0' && *q <= '9') {
                    v = v * 10 + (unsigned long long)(*q - '0');
                    digits++;
                } else if (*q != ',' && *q != ' ') {
                    return 0;
                }
            }
            *out = v;
            return digits > 0;
        }
        line = end ? end + 1 : NULL;
    }
    return 0;
}

/* The report has a size-class table with a row for each class in use (its
 * index and block size) and a total line; the numbers match the stats. */
/* Three arenas' worth of 512-byte blocks: the walk sees three arenas of 64
 * pools and every block; a callback's nonzero return ends it there; freed
 * (one block still in its class's free cache) the blocks no longer count;
 * trimmed, what stays mapped is the spare, all of it free. */
static void test_walk_reports_every_arena_and_pool_and_stops_when_told(void **state)
{
    (void)state;
    heap_t *heap = heap_new_sized(HEAP_ARENA_SIZE_MIN, HEAP_POOL_SIZE_MIN, HEAP_DEBUG_OFF);
    const size_t per_pool = blocks_per_pool(HEAP_POOL_SIZE_MIN, HEAP_NCLASSES - 1);
    const size_t n = 3 * 64 * per_pool;
    void **v = blocks_new(n);
    for (size_t i = 0; i < n; i++)
        v[i] = heap_alloc(heap, HEAP_SMALL_MAX);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.arenas, 3);
    walked_t w;
    memset(&w, 0, sizeof(w));
    heap_pool_size_of_walk = HEAP_POOL_SIZE_MIN;
    assert_int_equal(heap_walk(heap, walked_arena, walked_pool, &w), 0);
    assert_int_equal(w.arenas, 3);
    assert_int_equal(w.pools, 3 * 64);
    assert_int_equal(w.used[HEAP_NCLASSES - 1], n);
    assert_int_equal(w.by_state[HEAP_POOL_FULL], 3 * 64);

    memset(&w, 0, sizeof(w));
    w.stop_after = 2;
    assert_int_equal(heap_walk(heap, walked_arena, walked_pool, &w), 1);
    assert_int_equal(w.arenas, 2);
    assert_int_equal(w.pools, 64);

    heap_free(heap, v[0]);
    memset(&w, 0, sizeof(w));
    assert_int_equal(heap_walk(heap, walked_arena, walked_pool, &w), 0);
    assert_int_equal(w.used[HEAP_NCLASSES - 1], n - 1);
    for (size_t i = 1; i < n; i++)
        heap_free(heap, v[i]);
    heap_trim(heap);
    memset(&w, 0, sizeof(w));
    assert_int_equal(heap_walk(heap, walked_arena, NULL, &w), 0);
    heap_get_stats(heap, &st);
    assert_int_equal(w.arenas, st.arenas);
    assert_int_equal(w.spares, st.arenas);
    assert_int_equal(w.pools, 0);
    free(v);
    heap_assert_empty_and_destroy(heap);
}

static void test_format_stats_has_class_table_and_total_line(void **state)
{
    (void)state;
    void *v[4];
    heap_t *heap = heap_with_some_blocks(v);
    char *report = format_report(heap);
    heap_stats_t st;
    heap_get_stats(heap, &st);

    assert_non_null(strcasestr(report, "class"));
    assert_non_null(strcasestr(report, "size"));
    assert_non_null(strcasestr(report, "total"));
    /* A row per class in use: index then block size. */
    static const unsigned in_use[] = {0, 6, 31};
    for (size_t i = 0; i < 3; i++) {
        char row[64];
        snprintf(row, sizeof(row), "%u", in_use[i]);
        const char *line = report;
        int found = 0;
        while (line && *line) {
            const char *end = strchr(line, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            char buf[512];
            snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
            unsigned idx, size;
            if (sscanf(buf, " %u %u", &idx, &size) == 2 && idx == in_use[i] &&
                size == heap_class_size(in_use[i]))
                found = 1;
            line = end ? end + 1 : NULL;
        }
        if (!found)
            print_error("no row for class %u in:\n%s\n", in_use[i], report);
        assert_true(found);
    }
    /* The total line adds up to the mapped bytes. */
    unsigned long long total = 0;
    assert_true(report_number(report, "Total", &total));
    assert_int_equal(total, st.mapped_bytes);
    assert_true(st.mapped_bytes > 0);

    free(report);
    heap_free_some_blocks(heap, v);
    heap_assert_empty_and_destroy(heap);
}

/* heap_format_stats() returns the full length whatever len is, writes at most
 * len bytes including the NUL, and writes nothing when len is 0. */
static void test_format_stats_returns_full_length_and_truncates_like_snprintf(void **state)
{
    (void)state;
    void *v[4];
    heap_t *heap = heap_with_some_blocks(v);
    char *full = format_report(heap);
    size_t n = strlen(full);
    assert_true(n > 100);

    char *buf = malloc(n + 64);
    assert_non_null(buf);

    memset(buf, 'x', n + 64);
    assert_int_equal(heap_format_stats(heap, buf, n + 64), n);
    assert_string_equal(buf, full);

    memset(buf, 'x', n + 64);
    assert_int_equal(heap_format_stats(heap, buf, n), n);
    assert_int_equal(strlen(buf), n - 1);
    assert_int_equal(memcmp(buf, full, n - 1), 0);
    assert_int_equal(buf[n], 'x');

    memset(buf, 'x', n + 64);
    assert_int_equal(heap_format_stats(heap, buf, 10), n);
    assert_int_equal(strlen(buf), 9);
    assert_int_equal(memcmp(buf, full, 9), 0);
    assert_int_equal(buf[10], 'x');

    memset(buf, 'x', n + 64);
    assert_int_equal(heap_format_stats(heap, buf, 1), n);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[1], 'x');

    memset(buf, 'x', n + 64);
    assert_int_equal(heap_format_stats(heap, buf, 0), n);
    assert_int_equal(buf[0], 'x');

    assert_int_equal(heap_format_stats(heap, NULL, 0), n);

    free(buf);
    free(full);
    heap_free_some_blocks(heap, v);
    heap_assert_empty_and_destroy(heap);
}

/* The report of an empty heap, and of a heap with many arenas, is complete
 * too (every byte of the length a report needs is written). */
static void test_format_stats_length_matches_output_for_empty_and_busy_heaps(void **state)
{
    (void)state;
    heap_t *heap = heap_new_sized(HEAP_ARENA_SIZE_MIN, HEAP_POOL_SIZE_MIN, HEAP_DEBUG_OFF);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    char *report = format_report(heap);
    unsigned long long total = 1;
    assert_true(report_number(report, "Total", &total));
    assert_int_equal(total, st.mapped_bytes);
    free(report);

    enum { N = 20000 };
    void **v = calloc(N, sizeof(void *));
    assert_non_null(v);
    for (size_t i = 0; i < N; i++)
        v[i] = heap_alloc(heap, i % 600 + 1);
    report = format_report(heap);
    heap_get_stats(heap, &st);
    assert_true(st.arenas > 10);
    assert_true(report_number(report, "Total", &total));
    assert_int_equal(total, st.mapped_bytes);
    free(report);
    for (size_t i = 0; i < N; i++)
        heap_free(heap, v[i]);
    free(v);
    heap_assert_empty_and_destroy(heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_heap_reports_no_use_and_class_block_sizes),
        cmocka_unit_test(test_class_stats_count_allocs_frees_and_used_blocks_per_class),
        cmocka_unit_test(test_large_bytes_peak_keeps_the_maximum),
        cmocka_unit_test(test_byte_breakdown_adds_up_after_every_op_of_random_workload),
        cmocka_unit_test(test_byte_breakdown_adds_up_with_smallest_arenas_and_pools),
        cmocka_unit_test(test_byte_breakdown_adds_up_with_large_arenas_and_pools),
        cmocka_unit_test(test_byte_breakdown_adds_up_in_debug_mode),
        cmocka_unit_test(test_heap_check_reports_a_pool_whose_class_pointer_is_wrong),
        cmocka_unit_test(test_heap_check_reports_a_truncated_free_list),
        cmocka_unit_test(test_walk_reports_every_arena_and_pool_and_stops_when_told),
        cmocka_unit_test(test_format_stats_has_class_table_and_total_line),
        cmocka_unit_test(test_format_stats_returns_full_length_and_truncates_like_snprintf),
        cmocka_unit_test(test_format_stats_length_matches_output_for_empty_and_busy_heaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

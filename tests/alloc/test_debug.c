/*
 * test_debug.c - tests of alloc/debug.c: debug mode's fill patterns (0xCD in
 * new blocks, 0xDD in dead ones), its guard bytes (0xFD) and the fatal checks
 * for double free, overruns and foreign pointers; and the foreign-pointer
 * check that stays fatal without debug mode.
 *
 * Fatal paths are death tests: the bad operation runs in a forked child whose
 * stderr goes into a pipe; the parent asserts that the child was killed by
 * SIGABRT and that what it printed names the problem. The child never calls
 * into cmocka.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc/alloc.h"
#include "tests/alloc/support.h"

#define FILL_NEW   0xCD
#define FILL_DEAD  0xDD
#define FILL_GUARD 0xFD

/* ---- death tests ---- */

static void *child_alloc(heap_t *heap, size_t size)
{
    void *p = heap_alloc(heap, size);
    if (p == NULL)
        _exit(99);
    return p;
}

/* The child died of SIGABRT and its stderr contains one of the words (case
 * insensitive). */
static void assert_dies_with(void (*op)(void), const char *word, const char *other_word)
{
    death_t d;
    run_child(op, &d);
    assert_child_aborted(&d);
    int named = strcasestr(d.stderr_text, word) != NULL ||
                (other_word != NULL && strcasestr(d.stderr_text, other_word) != NULL);
    if (!named)
        print_error("expected \"%s\"%s%s%s in the fatal message, got:\n%s\n", word,
                    other_word ? " or \"" : "", other_word ? other_word : "",
                    other_word ? "\"" : "", d.stderr_text);
    assert_true(named);
}

static void op_debug_double_free_small(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_ON);
    void *keep = child_alloc(heap, 64);
    void *p = child_alloc(heap, 64);
    heap_free(heap, p);
    heap_free(heap, p);
    (void)keep;
}

static void op_debug_double_free_after_reuse_of_neighbour(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_ON);
    void *a = child_alloc(heap, 200);
    void *b = child_alloc(heap, 200);
    heap_free(heap, a);
    heap_free(heap, b);
    void *c = child_alloc(heap, 200); /* reuses b */
    heap_free(heap, a);               /* a is still free */
    (void)c;
}

static void op_debug_double_free_large(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_ON);
    void *p = child_alloc(heap, 2000);
    void *keep = child_alloc(heap, 2000);
    heap_free(heap, p);
    heap_free(heap, p);
    (void)keep;
}

static void test_debug_double_free_of_small_block_is_fatal_and_named(void **state)
{
    (void)state;
    assert_dies_with(op_debug_double_free_small, "double free", NULL);
}

static void test_debug_double_free_of_block_still_on_free_list_is_fatal(void **state)
{
    (void)state;
    assert_dies_with(op_debug_double_free_after_reuse_of_neighbour, "double free", NULL);
}

static void test_debug_double_free_of_large_block_is_fatal_and_named(void **state)
{
    (void)state;
    assert_dies_with(op_debug_double_free_large, "double free", "already freed");
}

static void op_debug_overrun_small(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_ON);
    unsigned char *p = child_alloc(heap, 32);
    p[heap_usable_size(heap, p)] = 0;
    heap_free(heap, p);
}

static void op_debug_overrun_small_by_one_byte_of_odd_size(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_ON);
    unsigned char *p = child_alloc(heap, 37);
    p[heap_usable_size(heap, p)] = 'x';
    heap_free(heap, p);
}

static void op_debug_underrun_small(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_ON);
    unsigned char *p = child_alloc(heap, 48);
    p[-1] = 0;
    heap_free(heap, p);
}

static void op_debug_overrun_large(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_ON);
    unsigned char *p = child_alloc(heap, 1000);
    p[heap_usable_size(heap, p)] = 0;
    heap_free(heap, p);
}

static void test_debug_write_past_block_end_is_fatal_overrun_on_free(void **state)
{
    (void)state;
    assert_dies_with(op_debug_overrun_small, "overrun", "guard");
}

static void test_debug_write_one_past_odd_sized_request_is_fatal_overrun(void **state)
{
    (void)state;
    assert_dies_with(op_debug_overrun_small_by_one_byte_of_odd_size, "overrun", "guard");
}

static void test_debug_write_before_block_start_is_fatal_on_free(void **state)
{
    (void)state;
    assert_dies_with(op_debug_underrun_small, "underrun", "guard");
}

static void test_debug_write_past_large_block_end_is_fatal_overrun_on_free(void **state)
{
    (void)state;
    assert_dies_with(op_debug_overrun_large, "overrun", "guard");
}

static void op_free_malloc_pointer(int debug)
{
    heap_t *heap = child_heap(debug);
    void *keep = child_alloc(heap, 64);
    void *p = malloc(64);
    if (p == NULL)
        _exit(99);
    heap_free(heap, p);
    (void)keep;
}

static void op_free_stack_pointer(int debug)
{
    heap_t *heap = child_heap(debug);
    void *keep = child_alloc(heap, 64);
    _Alignas(16) unsigned char on_stack[64] = {0};
    heap_free(heap, on_stack);
    (void)keep;
}

static void op_free_pointer_of_other_heap(int debug)
{
    heap_t *heap = child_heap(debug);
    heap_t *other = child_heap(debug);
    void *keep = child_alloc(heap, 64);
    void *p = child_alloc(other, 64);
    heap_free(heap, p);
    (void)keep;
}

static void op_free_malloc_pointer_debug(void)
{
    op_free_malloc_pointer(HEAP_DEBUG_ON);
}

static void op_free_malloc_pointer_nodebug(void)
{
    op_free_malloc_pointer(HEAP_DEBUG_OFF);
}

static void op_free_stack_pointer_debug(void)
{
    op_free_stack_pointer(HEAP_DEBUG_ON);
}

static void op_free_stack_pointer_nodebug(void)
{
    op_free_stack_pointer(HEAP_DEBUG_OFF);
}

static void op_free_pointer_of_other_heap_debug(void)
{
    op_free_pointer_of_other_heap(HEAP_DEBUG_ON);
}

static void op_free_pointer_of_other_heap_nodebug(void)
{
    op_free_pointer_of_other_heap(HEAP_DEBUG_OFF);
}

/* A free of a foreign pointer whose preceding bytes are not readable (the
 * start of a mapping right after an inaccessible page) is still reported as a
 * foreign pointer, not a crash while looking at it. */
static void op_free_pointer_at_start_of_mapping(int debug)
{
    heap_t *heap = child_heap(debug);
    void *keep = child_alloc(heap, 64);
    long page = sysconf(_SC_PAGESIZE);
    char *map =
        mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || mprotect(map, (size_t)page, PROT_NONE) != 0)
        _exit(99);
    heap_free(heap, map + page);
    (void)keep;
}

static void op_free_pointer_at_start_of_mapping_nodebug(void)
{
    op_free_pointer_at_start_of_mapping(HEAP_DEBUG_OFF);
}

static void op_free_pointer_at_start_of_mapping_debug(void)
{
    op_free_pointer_at_start_of_mapping(HEAP_DEBUG_ON);
}

static void
test_free_of_pointer_after_unreadable_page_is_fatal_foreign_pointer_not_a_crash(void **state)
{
    (void)state;
    assert_dies_with(op_free_pointer_at_start_of_mapping_nodebug, "foreign pointer", NULL);
}

static void test_debug_free_of_pointer_after_unreadable_page_is_fatal_foreign_pointer(void **state)
{
    (void)state;
    assert_dies_with(op_free_pointer_at_start_of_mapping_debug, "foreign pointer", NULL);
}

static void op_debug_free_interior_pointer(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_ON);
    unsigned char *p = child_alloc(heap, 64);
    heap_free(heap, p + 16);
}

static void test_free_of_malloc_pointer_is_fatal_foreign_pointer_without_debug(void **state)
{
    (void)state;
    assert_dies_with(op_free_malloc_pointer_nodebug, "foreign pointer", NULL);
}

static void test_free_of_stack_pointer_is_fatal_foreign_pointer_without_debug(void **state)
{
    (void)state;
    assert_dies_with(op_free_stack_pointer_nodebug, "foreign pointer", NULL);
}

static void test_free_of_other_heaps_block_is_fatal_foreign_pointer_without_debug(void **state)
{
    (void)state;
    assert_dies_with(op_free_pointer_of_other_heap_nodebug, "foreign pointer", NULL);
}

static void test_debug_free_of_malloc_pointer_is_fatal_foreign_pointer(void **state)
{
    (void)state;
    assert_dies_with(op_free_malloc_pointer_debug, "foreign pointer", NULL);
}

static void test_debug_free_of_stack_pointer_is_fatal_foreign_pointer(void **state)
{
    (void)state;
    assert_dies_with(op_free_stack_pointer_debug, "foreign pointer", NULL);
}

static void test_debug_free_of_other_heaps_block_is_fatal_foreign_pointer(void **state)
{
    (void)state;
    assert_dies_with(op_free_pointer_of_other_heap_debug, "foreign pointer", NULL);
}

static void test_debug_free_of_pointer_inside_a_block_is_fatal(void **state)
{
    (void)state;
    assert_dies_with(op_debug_free_interior_pointer, "not the start of a block", NULL);
}

/* A write into a block while it is free is reported when the block is
 * handed out again. The write is a use after free, so not under ASan. */
#ifndef HEAP_ASAN
static void op_debug_write_after_free(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_ON);
    void *keep = child_alloc(heap, 64);
    unsigned char *p = child_alloc(heap, 64);
    heap_free(heap, p);
    p[20] = 1;
    void *again = child_alloc(heap, 64);
    (void)keep;
    (void)again;
}

#endif

static void test_debug_write_into_freed_block_is_fatal_when_reused(void **state)
{
    (void)state;
#ifdef HEAP_ASAN
    skip();
#else
    assert_dies_with(op_debug_write_after_free, "write after free", NULL);
#endif
}

static void op_env_debug_double_free(void)
{
    if (setenv(HEAP_DEBUG_ENV, "1", 1) != 0)
        _exit(99);
    heap_t *heap = child_heap(HEAP_DEBUG_FROM_ENV);
    void *keep = child_alloc(heap, 64);
    void *p = child_alloc(heap, 64);
    heap_free(heap, p);
    heap_free(heap, p);
    (void)keep;
}

static void test_debug_mode_from_env_1_detects_double_free(void **state)
{
    (void)state;
    assert_dies_with(op_env_debug_double_free, "double free", NULL);
}

/* A correct program under debug mode runs to the end: the child exits 0 and
 * prints nothing. */
static void op_debug_clean_run(void)
{
    heap_t *heap = child_heap(HEAP_DEBUG_ON);
    void *v[64];
    for (int i = 0; i < 64; i++) {
        v[i] = child_alloc(heap, (size_t)i * 11);
        memset(v[i], i, heap_usable_size(heap, v[i]));
    }
    for (int i = 0; i < 64; i += 2)
        heap_free(heap, v[i]);
    for (int i = 1; i < 64; i += 2)
        heap_free(heap, v[i]);
    heap_destroy(heap);
}

static void test_debug_correct_program_runs_without_fatal_message(void **state)
{
    (void)state;
    death_t d;
    run_child(op_debug_clean_run, &d);
    if (!d.exited || d.exit_code != 0)
        print_error("child: exited %d code %d signal %d, stderr:\n%s\n", d.exited, d.exit_code,
                    d.signal, d.stderr_text);
    assert_true(d.exited);
    assert_int_equal(d.exit_code, 0);
    assert_string_equal(d.stderr_text, "");
}

/* ---- fills ---- */

static void assert_all_bytes(const void *p, size_t from, size_t to, unsigned char byte)
{
    const unsigned char *b = p;
    for (size_t i = from; i < to; i++) {
        if (b[i] != byte)
            print_error("byte %zu of %p is 0x%02x, expected 0x%02x\n", i, p, b[i], byte);
        assert_int_equal(b[i], byte);
    }
}

/* In debug mode every new block, of every class and large, reads 0xCD over
 * its whole usable size, also when it reuses a freed block. */
static void test_debug_new_blocks_are_filled_with_0xCD(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_ON);
    static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 255, 256, 511, 512, 513, 1000, 5000};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    void *v[N];
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < N; i++) {
            v[i] = heap_alloc(heap, sizes[i]);
            assert_non_null(v[i]);
            assert_int_equal((uintptr_t)v[i] % HEAP_ALIGN, 0);
            size_t usable = heap_usable_size(heap, v[i]);
            assert_true(usable >= sizes[i]);
            assert_all_bytes(v[i], 0, usable, FILL_NEW);
            memset(v[i], 0x11, usable);
        }
        for (size_t i = 0; i < N; i++)
            heap_free(heap, v[i]);
    }
    heap_assert_empty_and_destroy(heap);
}

/* In debug mode a freed small block's body reads 0xDD. The
 * block is inspected through a pointer kept after the free, a use after free
 * done on purpose, so this is skipped under AddressSanitizer (which poisons
 * freed blocks). */
static void test_debug_freed_block_body_is_filled_with_0xDD(void **state)
{
    (void)state;
#ifdef HEAP_ASAN
    skip();
#else
    heap_t *heap = heap_new(HEAP_DEBUG_ON);
    void *keep = heap_alloc(heap, 16);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        size_t size = heap_class_size(c);
        unsigned char *p = heap_alloc(heap, size);
        size_t usable = heap_usable_size(heap, p);
        int in_pool = heap_owns(heap, p); /* large blocks go back to malloc */
        memset(p, 0x22, usable);
        heap_free(heap, p);
        if (in_pool)
            assert_all_bytes(p, 0, usable, FILL_DEAD);
    }
    heap_free(heap, keep);
    heap_assert_empty_and_destroy(heap);
#endif
}

/* Debug mode guards each block: the usable size is the request, the byte
 * just after it reads 0xFD, and so does the byte just before a pool block
 * (a large block has its header there). */
static void test_debug_guard_bytes_surround_each_live_block(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_ON);
    static const size_t sizes[] = {1, 16, 33, 100, 480, 512, 513, 3000};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    void *v[N];
    for (size_t i = 0; i < N; i++) {
        unsigned char *p = heap_alloc(heap, sizes[i]);
        v[i] = p;
        size_t usable = heap_usable_size(heap, p);
        memset(p, 0x33, usable);
        assert_int_equal(usable, sizes[i]);
        assert_int_equal(p[usable], FILL_GUARD);
        if (heap_owns(heap, p))
            assert_int_equal(p[-1], FILL_GUARD);
    }
    for (size_t i = 0; i < N; i++)
        heap_free(heap, v[i]);
    heap_assert_empty_and_destroy(heap);
}

/* Debug mode counts large blocks by their requested size, like normal mode:
 * large_bytes and its peak never include the guard, and go back to zero. */
static void test_debug_large_blocks_count_requested_bytes_and_return_to_zero(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_ON);
    void *a = heap_alloc(heap, 1000);
    void *b = heap_alloc(heap, 3000);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.large_allocs, 2);
    assert_int_equal(st.large_bytes, 4000);
    assert_int_equal(st.large_bytes_peak, 4000);
    assert_int_equal(heap_usable_size(heap, a), 1000);
    heap_free(heap, a);
    heap_get_stats(heap, &st);
    assert_int_equal(st.large_frees, 1);
    assert_int_equal(st.large_bytes, 3000);
    heap_free(heap, b);
    heap_get_stats(heap, &st);
    assert_int_equal(st.large_bytes, 0);
    assert_int_equal(st.large_bytes_peak, 4000);
    heap_assert_empty_and_destroy(heap);
}

/* Debug mode keeps the heap's accounting and invariants intact. */
static void test_debug_heap_counts_blocks_and_passes_heap_check(void **state)
{
    (void)state;
    heap_t *heap = heap_new(HEAP_DEBUG_ON);
    enum { N = 3000 };
    void **v = calloc(N, sizeof(void *));
    assert_non_null(v);
    for (size_t i = 0; i < N; i++)
        v[i] = heap_alloc(heap, i % 700);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    uint64_t live = st.large_allocs - st.large_frees;
    for (unsigned c = 0; c < HEAP_NCLASSES; c++)
        live += st.classes[c].used_blocks;
    assert_int_equal(live, N);
    heap_assert_valid(heap);
    for (size_t i = 0; i < N; i += 2)
        heap_free(heap, v[i]);
    heap_assert_valid(heap);
    for (size_t i = 1; i < N; i += 2)
        heap_free(heap, v[i]);
    free(v);
    heap_assert_empty_and_destroy(heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_debug_double_free_of_small_block_is_fatal_and_named),
        cmocka_unit_test(test_debug_double_free_of_block_still_on_free_list_is_fatal),
        cmocka_unit_test(test_debug_double_free_of_large_block_is_fatal_and_named),
        cmocka_unit_test(test_debug_write_past_block_end_is_fatal_overrun_on_free),
        cmocka_unit_test(test_debug_write_one_past_odd_sized_request_is_fatal_overrun),
        cmocka_unit_test(test_debug_write_before_block_start_is_fatal_on_free),
        cmocka_unit_test(test_debug_write_past_large_block_end_is_fatal_overrun_on_free),
        cmocka_unit_test(test_free_of_malloc_pointer_is_fatal_foreign_pointer_without_debug),
        cmocka_unit_test(test_free_of_stack_pointer_is_fatal_foreign_pointer_without_debug),
        cmocka_unit_test(test_free_of_other_heaps_block_is_fatal_foreign_pointer_without_debug),
        cmocka_unit_test(test_debug_free_of_malloc_pointer_is_fatal_foreign_pointer),
        cmocka_unit_test(test_debug_free_of_stack_pointer_is_fatal_foreign_pointer),
        cmocka_unit_test(test_debug_free_of_other_heaps_block_is_fatal_foreign_pointer),
        cmocka_unit_test(
            test_free_of_pointer_after_unreadable_page_is_fatal_foreign_pointer_not_a_crash),
        cmocka_unit_test(test_debug_free_of_pointer_after_unreadable_page_is_fatal_foreign_pointer),
        cmocka_unit_test(test_debug_free_of_pointer_inside_a_block_is_fatal),
        cmocka_unit_test(test_debug_write_into_freed_block_is_fatal_when_reused),
        cmocka_unit_test(test_debug_mode_from_env_1_detects_double_free),
        cmocka_unit_test(test_debug_correct_program_runs_without_fatal_message),
        cmocka_unit_test(test_debug_new_blocks_are_filled_with_0xCD),
        cmocka_unit_test(test_debug_freed_block_body_is_filled_with_0xDD),
        cmocka_unit_test(test_debug_guard_bytes_surround_each_live_block),
        cmocka_unit_test(test_debug_large_blocks_count_requested_bytes_and_return_to_zero),
        cmocka_unit_test(test_debug_heap_counts_blocks_and_passes_heap_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

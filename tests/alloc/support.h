/*
 * support.h - what the tests of alloc/ (tests/alloc/test_*.c) share: making a
 * heap and proving it valid and empty before destroying it, the geometry of a
 * pool, a seeded random number generator, and death tests.
 *
 * Every helper but child_heap() asserts with cmocka, so it runs in the test
 * itself. A death test runs its fatal operation in a forked child whose
 * stderr goes into a pipe; the child never calls into cmocka (child_heap()
 * exits with 99 instead), and the parent asserts how the child ended and
 * what it printed.
 */
#ifndef TICKD_TESTS_ALLOC_SUPPORT_H
#define TICKD_TESTS_ALLOC_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/alloc.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* ---- heaps ---- */

/* A heap of the default arena and pool sizes in debug mode debug (enum
 * heap_debug_mode); the test fails if it cannot be created. */
heap_t *heap_new(int debug);

/* The same with arena_size and pool_size (0 for the default of each). */
heap_t *heap_new_sized(size_t arena_size, size_t pool_size, int debug);

/* heap_check() passes; what it found wrong is printed otherwise. */
void heap_assert_valid(const heap_t *heap);

/* The heap holds no live block, small or large (no used bytes, no full pool,
 * every block and every large block allocated has been freed) and is valid;
 * then it is destroyed. */
void heap_assert_empty_and_destroy(heap_t *heap);

/* ---- pools ---- */

/* Bytes from the start of a pool to its first block: the pool header,
 * rounded up so that the first block is HEAP_ALIGN-aligned. A pool reads
 * [header][block][block]...[tail shorter than a block]. */
size_t pool_header_size(void);

/* How many blocks of size class cls one pool of pool_size bytes holds. */
size_t blocks_per_pool(size_t pool_size, unsigned cls);

/* The start of the pool of pool_size bytes that holds p. */
uintptr_t pool_of(const void *p, size_t pool_size);

/* A zeroed array of n block pointers, released with free(). */
void **blocks_new(size_t n);

/* ---- random numbers ---- */

/* The next number of the SplitMix64 sequence seeded by *s (advances *s): the
 * same seed gives the same sequence, so a failing workload can be replayed. */
uint64_t rng_next(uint64_t *s);

/* ---- death tests ---- */

/* How a child ended and what it wrote to stderr (truncated, NUL-terminated). */
typedef struct death {
    int exited; /* the child returned from the operation and exited */
    int exit_code;
    int signaled; /* the child was killed by a signal */
    int signal;
    char stderr_text[8192];
} death_t;

/* A heap for the child of a death test, created with debug mode debug; the
 * child exits with 99 if it cannot be created (no cmocka in a child). */
heap_t *child_heap(int debug);

/* Runs op in a forked child that has no core dump, the default action for
 * the signals cmocka catches, and its stderr captured; waits for it and fills
 * d. The child exits with 0 when op returns. */
void run_child(void (*op)(void), death_t *d);

/* The child was killed by SIGABRT; how it ended and what it printed are shown
 * otherwise. */
void assert_child_aborted(const death_t *d);

/* op, run in a child, aborts and prints both word and other_word (case
 * sensitive) on stderr. */
void assert_dies_naming(void (*op)(void), const char *word, const char *other_word);

#endif

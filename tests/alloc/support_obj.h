/*
 * support_obj.h - heaps of objects for the tests of the object layer
 * (tests/alloc/test_object.c, test_gc.c): a heap from support.h with its
 * object runtime attached, and the checks that it ends empty.
 *
 * Only the tests of objects link this (alloc_obj_test_support); the tests of
 * the heap link support.c alone, against tickd_heap, which knows nothing of
 * objects.
 */
#ifndef TICKD_TESTS_ALLOC_SUPPORT_OBJ_H
#define TICKD_TESTS_ALLOC_SUPPORT_OBJ_H

#include "alloc/object.h"
#include "tests/alloc/support.h"

/* heap_new(debug) with its object runtime; the test fails if either cannot
 * be created. */
heap_t *obj_heap_new(int debug);

/* heap_assert_empty_and_destroy() for a heap of obj_heap_new(): its runtime
 * is destroyed first. */
void obj_heap_assert_empty_and_destroy(heap_t *heap);

/* The same, after checking that nothing is tracked by the cycle collector,
 * in any generation, and nothing is frozen. */
void heap_assert_gc_empty_and_destroy(heap_t *heap);

/* child_heap(debug) with its object runtime, for the child of a death test
 * (exits with 99 if it cannot be created). */
heap_t *child_obj_heap(int debug);

#endif

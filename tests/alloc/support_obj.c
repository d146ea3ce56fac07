/*
 * support_obj.c - heaps of objects for the tests of alloc/'s object layer;
 * support_obj.h says what each helper proves.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <unistd.h>

#include "tests/alloc/support_obj.h"

heap_t *obj_heap_new(int debug)
{
    heap_t *heap = heap_new(debug);
    assert_int_equal(obj_runtime_create(heap), 0);
    return heap;
}

void obj_heap_assert_empty_and_destroy(heap_t *heap)
{
    obj_runtime_destroy(heap);
    heap_assert_empty_and_destroy(heap);
}

void heap_assert_gc_empty_and_destroy(heap_t *heap)
{
    gc_stats_t gs;
    gc_get_stats(heap, &gs);
    for (unsigned g = 0; g < GC_NGENERATIONS; g++)
        assert_int_equal(gs.generations[g].tracked, 0);
    assert_int_equal(gs.frozen, 0);
    obj_heap_assert_empty_and_destroy(heap);
}

heap_t *child_obj_heap(int debug)
{
    heap_t *heap = child_heap(debug);
    if (obj_runtime_create(heap) != 0)
        _exit(99);
    return heap;
}

/*
 * test_fanout.c - the fan-out stream (src/fanout.c): frames written back to
 * back into spans, positions, chunks left when full and kept alive by the
 * spans in them, the spare list, and the latency the release of a written
 * span observes.
 *
 * Frames here are plain bytes: fanout.c does not look at them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/alloc.h"
#include "src/fanout.h"
#include "src/histogram.h"

typedef struct fixture {
    heap_t *heap;
    histogram_t latency;
    fanout_t stream;
} fixture_t;

static int setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof f);
    if (heap_create(NULL, &f.heap) != 0)
        return -1;
    histogram_init(&f.latency, histogram_latency_bounds, histogram_latency_nbounds);
    fanout_init(&f.stream, f.heap, &f.latency);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    fanout_free(&f->stream);
    heap_stats_t st;
    heap_get_stats(f->heap, &st);
    heap_destroy(f->heap);
    /* Every chunk and span header went back to the heap. */
    return st.large_bytes == 0 && st.used_bytes == 0 ? 0 : -1;
}

/* Writes a tick's n bytes of frames (filled with byte c) into the open span
 * and commits them, received at ts; returns the span. */
static payload_t *put(fanout_t *b, size_t n, char c, int64_t ts)
{
    payload_t *span = fanout_reserve(b, n);
    assert_non_null(span);
    memset(span->data + span->len, c, n);
    fanout_commit(b, n, ts);
    return span;
}

static size_t large_allocs(const fixture_t *f)
{
    heap_stats_t st;
    heap_get_stats(f->heap, &st);
    return st.large_allocs;
}

/* Ticks between two flushes land back to back in one span, and the stream's
 * position counts their bytes; after a seal the next tick opens a new span
 * right after the old one, in the same chunk. */
static void test_ticks_of_one_flush_share_a_span_and_the_next_flush_follows_on(void **state)
{
    fixture_t *f = *state;
    fanout_t *b = &f->stream;
    assert_int_equal(fanout_position(b), 0);

    payload_t *a = put(b, 100, 'a', 1);
    assert_ptr_equal(put(b, 50, 'b', 2), a);
    assert_int_equal(a->len, 150);
    assert_int_equal(a->nticks, 2);
    assert_int_equal(a->pos, 0);
    assert_int_equal(fanout_position(b), 150);
    assert_memory_equal(a->data + 99, "ab", 2);

    payload_incref(a); /* a subscriber's queue entry */
    fanout_seal(b);
    payload_t *next = put(b, 10, 'c', 3);
    assert_ptr_not_equal(next, a);
    assert_ptr_equal(next->chunk, a->chunk);
    assert_ptr_equal(next->data, a->data + a->len);
    assert_int_equal(next->pos, 150);
    assert_int_equal(fanout_position(b), 160);
    payload_release(f->heap, &f->latency, a);
}

/* A tick that no longer fits goes to a fresh chunk. The full one lives on
 * while a span in it is queued, and comes back from the spare list for the
 * chunk after: the steady state takes no new memory. */
static void test_full_chunk_lives_while_queued_and_is_reused_once_released(void **state)
{
    fixture_t *f = *state;
    fanout_t *b = &f->stream;
    payload_t *first = put(b, FANOUT_TICK_MAX, 'x', 1);
    payload_incref(first);
    fanout_chunk_t *c1 = first->chunk;
    while (b->chunk == c1)
        put(b, FANOUT_TICK_MAX, 'y', 2);
    fanout_chunk_t *c2 = b->chunk;
    assert_ptr_not_equal(c2, c1);
    assert_int_equal(c1->refcnt, 1); /* the queued span alone */
    assert_memory_equal(first->data, "xxxx", 4);

    payload_release(f->heap, &f->latency, first); /* c1 to the spare list */
    assert_int_equal(b->nspare, 1);
    size_t before = large_allocs(f);
    payload_t *second = put(b, FANOUT_TICK_MAX, 'z', 3);
    payload_incref(second); /* queued: c2 cannot come straight back */
    while (b->chunk == c2)
        put(b, FANOUT_TICK_MAX, 'z', 3);
    assert_ptr_equal(b->chunk, c1);
    assert_int_equal(large_allocs(f), before);
    payload_release(f->heap, &f->latency, second);
}

/* A full chunk that nothing queued points into any more is the one the
 * next tick gets back: a stream nobody holds on to stays in one chunk. */
static void test_full_chunk_nobody_holds_is_taken_again_at_once(void **state)
{
    fixture_t *f = *state;
    fanout_t *b = &f->stream;
    put(b, FANOUT_TICK_MAX, 'x', 1);
    fanout_chunk_t *c = b->chunk;
    size_t before = large_allocs(f);
    for (int i = 0; i < 20; i++) {
        put(b, FANOUT_TICK_MAX, 'y', 2);
        assert_ptr_equal(b->chunk, c);
    }
    assert_int_equal(large_allocs(f), before);
}

/* At most FANOUT_SPARE released chunks are kept; the others go back to the
 * heap. */
static void test_spare_list_keeps_at_most_fanout_spare_chunks(void **state)
{
    fixture_t *f = *state;
    fanout_t *b = &f->stream;
    payload_t *held[FANOUT_SPARE + 3];
    for (size_t i = 0; i < FANOUT_SPARE + 3; i++) { /* each holding a chunk of its own */
        held[i] = put(b, FANOUT_TICK_MAX, 'q', (int64_t)i);
        payload_incref(held[i]);
        while (b->chunk == held[i]->chunk)
            put(b, FANOUT_TICK_MAX, 'r', 0);
    }
    heap_stats_t st;
    heap_get_stats(f->heap, &st);
    uint64_t frees = st.large_frees;
    for (size_t i = 0; i < FANOUT_SPARE + 3; i++)
        payload_release(f->heap, &f->latency, held[i]);
    assert_true(b->nspare <= FANOUT_SPARE);
    heap_get_stats(f->heap, &st);
    assert_true(st.large_frees > frees);
}

/* The last release of a span that was written observes one latency per
 * tick in it, written time minus receipt time; an unwritten span observes
 * none. */
static void test_release_of_a_written_span_observes_each_ticks_latency(void **state)
{
    fixture_t *f = *state;
    fanout_t *b = &f->stream;
    payload_t *span = put(b, 40, 'm', 1000);
    put(b, 40, 'n', 2000);
    payload_incref(span);
    fanout_seal(b);
    span->flags |= PAYLOAD_WRITTEN;
    span->ts_written = 3000;
    payload_release(f->heap, &f->latency, span);
    assert_int_equal(f->latency.count, 2);
    assert_true(f->latency.sum > 2.9e-6 && f->latency.sum < 3.1e-6); /* 2 us + 1 us */

    payload_t *unwritten = put(b, 40, 'o', 4000);
    payload_incref(unwritten);
    fanout_seal(b);
    payload_release(f->heap, &f->latency, unwritten);
    assert_int_equal(f->latency.count, 2);
}

/* Frames committed FANOUT_UNTIMED (a tick another stream times) belong to
 * the span but add no receipt time: its release observes only the timed
 * ticks, and the chunk's room for receipt times is untouched. */
static void test_untimed_frames_are_sent_but_not_observed(void **state)
{
    fixture_t *f = *state;
    fanout_t *b = &f->stream;
    payload_t *span = put(b, 40, 'p', 1000);
    uint32_t floor = b->chunk->ts_floor;
    assert_ptr_equal(put(b, 40, 'q', FANOUT_UNTIMED), span);
    assert_int_equal(span->len, 80);
    assert_int_equal(span->nticks, 1);
    assert_int_equal(b->chunk->ts_floor, floor);
    assert_memory_equal(span->data + 39, "pq", 2);
    payload_incref(span);
    fanout_seal(b);
    span->flags |= PAYLOAD_WRITTEN;
    span->ts_written = 3000;
    payload_release(f->heap, &f->latency, span);
    assert_int_equal(f->latency.count, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_ticks_of_one_flush_share_a_span_and_the_next_flush_follows_on, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_full_chunk_lives_while_queued_and_is_reused_once_released, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_chunk_nobody_holds_is_taken_again_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spare_list_keeps_at_most_fanout_spare_chunks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_release_of_a_written_span_observes_each_ticks_latency,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_untimed_frames_are_sent_but_not_observed, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_binfile.c - tests of feed/binfile.c: BinaryFILE framing over chunks.
 *
 * Streams are built by hand: a 2-byte big-endian length, then the message.
 * Chunks are fed from one guard page that is reused for every chunk, so a
 * read past a chunk faults and a reader that kept a pointer into an old
 * chunk would see it overwritten.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "feed/binfile.h"
#include "feed/itch.h"
#include "tests/feed/wire.h"

/* A D message (19 bytes): header, then the order reference. */
static void order_delete(struct wire *w, uint64_t ref)
{
    wire_char(w, 'D');
    wire_uint(w, 1, 2);
    wire_uint(w, 0, 2);
    wire_uint(w, 34200000000000ULL + ref, 6);
    wire_uint(w, ref, 8);
}

static void frame_delete(struct wire *w, uint64_t ref)
{
    wire_uint(w, 19, 2);
    order_delete(w, ref);
}

/* A framed S message (12 bytes). */
static void frame_system_event(struct wire *w, char code)
{
    wire_uint(w, 12, 2);
    wire_char(w, 'S');
    wire_uint(w, 0, 2);
    wire_uint(w, 0, 2);
    wire_uint(w, 10800000000000ULL, 6);
    wire_char(w, code);
}

/* A frame with the given length prefix and `n` filler bytes after `type`. */
static void frame_raw(struct wire *w, unsigned prefix, char type, size_t n)
{
    wire_uint(w, prefix, 2);
    if (n == 0)
        return;
    wire_char(w, type);
    for (size_t i = 1; i < n; i++)
        wire_char(w, (char)i);
}

/* What a reader made of a stream. */
struct result {
    struct wire msgs; /* each yielded message as [2-byte length][bytes] */
    size_t count;
    binfile_stats_t stats;
    int finish;
};

/* Feed stream[0..n) cut at cuts[0..ncuts) (ascending), each chunk placed
 * flush against the same guard page. */
static void run(const uint8_t *stream, size_t n, const size_t *cuts, size_t ncuts,
                struct result *res)
{
    struct guard g;
    assert_int_equal(guard_open(&g), 0);
    binfile_reader_t r;
    binfile_reader_init(&r);
    memset(res, 0, sizeof *res);

    size_t from = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t to = c < ncuts ? cuts[c] : n;
        const uint8_t *chunk = guard_place(&g, stream + from, to - from);
        binfile_reader_push(&r, chunk, to - from);
        const uint8_t *msg;
        size_t len;
        while (binfile_reader_next(&r, &msg, &len) == 1) {
            assert_int_equal(itch_check(msg, len), 0);
            wire_uint(&res->msgs, len, 2);
            wire_bytes(&res->msgs, msg, len);
            res->count++;
        }
        from = to;
    }
    res->finish = binfile_reader_finish(&r);
    res->stats = r.stats;
    guard_close(&g);
}

static void assert_same_result(const struct result *a, const struct result *b)
{
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->msgs.n, b->msgs.n);
    assert_memory_equal(a->msgs.b, b->msgs.b, a->msgs.n);
    assert_memory_equal(&a->stats, &b->stats, sizeof a->stats);
    assert_int_equal(a->finish, b->finish);
}

static void test_yields_each_message_of_one_buffer_in_order_in_place(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    frame_system_event(&w, 'O');
    frame_delete(&w, 1);
    frame_delete(&w, 2);
    frame_system_event(&w, 'C');

    binfile_reader_t r;
    binfile_reader_init(&r);
    binfile_reader_push(&r, w.b, w.n);
    const uint8_t *msg;
    size_t len;
    const size_t offsets[] = {2, 16, 37, 58};
    const size_t lens[] = {12, 19, 19, 12};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(binfile_reader_next(&r, &msg, &len), 1);
        assert_ptr_equal(msg, w.b + offsets[i]);
        assert_int_equal(len, lens[i]);
    }
    assert_int_equal(binfile_reader_next(&r, &msg, &len), 0);
    assert_int_equal(binfile_reader_next(&r, &msg, &len), 0);
    assert_int_equal(binfile_reader_finish(&r), 0);
    assert_int_equal(r.stats.messages, 4);
    assert_int_equal(r.stats.zero_length + r.stats.unknown_type + r.stats.bad_length, 0);
    assert_int_equal(r.stats.truncated, 0);
}

static void test_empty_stream_yields_nothing_and_finishes_clean(void **state)
{
    (void)state;
    struct result res;
    run((const uint8_t *)"", 0, NULL, 0, &res);
    assert_int_equal(res.count, 0);
    assert_int_equal(res.finish, 0);
    assert_int_equal(res.stats.truncated, 0);
}

static void test_zero_length_is_counted_and_skipped(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    frame_delete(&w, 1);
    wire_uint(&w, 0, 2);
    wire_uint(&w, 0, 2);
    frame_delete(&w, 2);
    struct result res;
    run(w.b, w.n, NULL, 0, &res);
    assert_int_equal(res.count, 2);
    assert_int_equal(res.stats.zero_length, 2);
    assert_int_equal(res.stats.messages, 2);
    assert_int_equal(res.finish, 0);
}

static void test_length_that_disagrees_with_the_type_is_counted_and_skipped(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    frame_raw(&w, 18, 'D', 18); /* D is 19 */
    frame_delete(&w, 1);
    frame_raw(&w, 20, 'D', 20);
    frame_raw(&w, 1, 'A', 1); /* a bare type byte */
    frame_delete(&w, 2);
    struct result res;
    run(w.b, w.n, NULL, 0, &res);
    assert_int_equal(res.count, 2);
    assert_int_equal(res.stats.bad_length, 3);
    assert_int_equal(res.stats.messages, 2);
    assert_int_equal(res.msgs.b[2 + 11 + 7], 1); /* low byte of the first ref */
}

static void test_unknown_type_is_counted_and_skipped(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    frame_raw(&w, 19, 'z', 19);
    frame_raw(&w, 7, 0, 7);
    frame_delete(&w, 1);
    struct result res;
    run(w.b, w.n, NULL, 0, &res);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.stats.unknown_type, 2);
}

static void test_length_beyond_any_type_is_skipped_by_its_declared_length(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    frame_delete(&w, 1);
    frame_raw(&w, 1000, 'A', 1000);
    frame_delete(&w, 2);
    frame_raw(&w, ITCH_MAX_LEN + 1, 'I', ITCH_MAX_LEN + 1);
    frame_delete(&w, 3);
    struct result res;
    run(w.b, w.n, NULL, 0, &res);
    assert_int_equal(res.count, 3);
    assert_int_equal(res.stats.bad_length, 2);
    assert_int_equal(res.finish, 0);
}

static void test_truncated_tail_is_reported_after_the_whole_messages(void **state)
{
    (void)state;
    struct wire full = {.n = 0};
    frame_delete(&full, 1);
    frame_delete(&full, 2);
    frame_raw(&full, 1000, 'A', 1000);
    /* cut inside the second message (its prefix, its body) and inside the
     * oversized third */
    const size_t ends[] = {22, 23, 30, 41, 43, 44, 500};
    const size_t whole[] = {1, 1, 1, 1, 2, 2, 2};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        struct result res;
        run(full.b, ends[i], NULL, 0, &res);
        assert_int_equal(res.count, whole[i]);
        assert_int_equal(res.finish, -ENODATA);
        assert_int_equal(res.stats.truncated, 1);
    }
    struct result res;
    run(full.b, 21, NULL, 0, &res); /* ends exactly after the first */
    assert_int_equal(res.finish, 0);
    assert_int_equal(res.stats.truncated, 0);
}

/* A stream with every case in it: good messages of two lengths, a zero
 * length, a wrong length, an unknown type, an oversized skip. */
static void mixed_stream(struct wire *w)
{
    w->n = 0;
    frame_system_event(w, 'O');
    frame_delete(w, 1);
    wire_uint(w, 0, 2);
    frame_delete(w, 2);
    frame_raw(w, 20, 'D', 20);
    frame_delete(w, 3);
    frame_raw(w, 12, '!', 12);
    frame_raw(w, 300, 'A', 300);
    frame_delete(w, 4);
    frame_system_event(w, 'C');
}

static void test_message_split_at_every_byte_position_is_yielded_whole(void **state)
{
    (void)state;
    struct wire w;
    mixed_stream(&w);
    struct result whole;
    run(w.b, w.n, NULL, 0, &whole);
    assert_int_equal(whole.count, 6);
    assert_int_equal(whole.stats.zero_length, 1);
    assert_int_equal(whole.stats.bad_length, 2);
    assert_int_equal(whole.stats.unknown_type, 1);

    for (size_t i = 0; i <= w.n; i++) {
        struct result split;
        run(w.b, w.n, &i, 1, &split);
        assert_same_result(&split, &whole);
    }
    for (size_t i = 0; i <= w.n; i += 3) {
        for (size_t j = i; j <= w.n; j++) {
            size_t cuts[2] = {i, j};
            struct result split;
            run(w.b, w.n, cuts, 2, &split);
            assert_same_result(&split, &whole);
        }
    }
}

static void test_one_byte_chunks_yield_the_same_messages(void **state)
{
    (void)state;
    struct wire w;
    mixed_stream(&w);
    struct result whole, bytes;
    run(w.b, w.n, NULL, 0, &whole);
    size_t *cuts = malloc(w.n * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < w.n; i++)
        cuts[i] = i + 1;
    run(w.b, w.n, cuts, w.n - 1, &bytes);
    free(cuts);
    assert_same_result(&bytes, &whole);
}

static void test_random_chunking_of_a_long_stream_matches_one_chunk(void **state)
{
    (void)state;
    static struct wire w; /* 4 KiB: stays under one guard page */
    w.n = 0;
    srand(7);
    for (uint64_t ref = 1; w.n < 3900; ref++) {
        if (rand() % 7 == 0) {
            size_t n = (size_t)(rand() % 60); /* mostly wrong, sometimes right */
            frame_raw(&w, (unsigned)n, "ADSz"[rand() % 4], n);
        } else {
            frame_delete(&w, ref);
        }
    }
    w.n -= 5; /* a ragged end */
    struct result whole;
    run(w.b, w.n, NULL, 0, &whole);
    for (int round = 0; round < 200; round++) {
        size_t cuts[64];
        size_t ncuts = 0;
        for (size_t at = (size_t)(rand() % 80); at < w.n && ncuts < 64; at += (size_t)(rand() % 80))
            cuts[ncuts++] = at;
        struct result split;
        run(w.b, w.n, cuts, ncuts, &split);
        assert_same_result(&split, &whole);
    }
}

static void test_stats_accumulate_across_streams(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    frame_delete(&w, 1);
    wire_uint(&w, 19, 2);
    wire_char(&w, 'D');
    binfile_reader_t r;
    binfile_reader_init(&r);
    const uint8_t *msg;
    size_t len;
    for (int stream = 0; stream < 2; stream++) {
        binfile_reader_push(&r, w.b, w.n);
        while (binfile_reader_next(&r, &msg, &len) == 1)
            ;
        assert_int_equal(binfile_reader_finish(&r), -ENODATA);
    }
    assert_int_equal(r.stats.messages, 2);
    assert_int_equal(r.stats.truncated, 2);
}

static void test_encode_writes_the_length_prefix_then_the_message(void **state)
{
    (void)state;
    itch_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = ITCH_ORDER_DELETE;
    m.stock_locate = 1;
    m.timestamp = 34200000000001ULL;
    m.del.order_ref = 1;
    uint8_t buf[64];
    assert_int_equal(binfile_encode(&m, buf, sizeof buf), 21);
    struct wire want = {.n = 0};
    frame_delete(&want, 1);
    assert_memory_equal(buf, want.b, 21);
    assert_int_equal(binfile_encode(&m, buf, 20), ITCH_ENOBUFS);
    assert_int_equal(binfile_encode(&m, buf, 1), ITCH_ENOBUFS);
    m.type = 'z';
    assert_int_equal(binfile_encode(&m, buf, sizeof buf), ITCH_EUNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yields_each_message_of_one_buffer_in_order_in_place),
        cmocka_unit_test(test_empty_stream_yields_nothing_and_finishes_clean),
        cmocka_unit_test(test_zero_length_is_counted_and_skipped),
        cmocka_unit_test(test_length_that_disagrees_with_the_type_is_counted_and_skipped),
        cmocka_unit_test(test_unknown_type_is_counted_and_skipped),
        cmocka_unit_test(test_length_beyond_any_type_is_skipped_by_its_declared_length),
        cmocka_unit_test(test_truncated_tail_is_reported_after_the_whole_messages),
        cmocka_unit_test(test_message_split_at_every_byte_position_is_yielded_whole),
        cmocka_unit_test(test_one_byte_chunks_yield_the_same_messages),
        cmocka_unit_test(test_random_chunking_of_a_long_stream_matches_one_chunk),
        cmocka_unit_test(test_stats_accumulate_across_streams),
        cmocka_unit_test(test_encode_writes_the_length_prefix_then_the_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

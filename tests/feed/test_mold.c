/*
 * test_mold.c - tests of feed/mold.c: MoldUDP64 packets and session state.
 *
 * Packets are built by hand from the specification: session (10, alpha),
 * sequence number (8), message count (2), then blocks of a 2-byte length and
 * a message. Every data message is an ITCH D whose order reference is its
 * own sequence number, so a delivered message shows which one it is. Packets
 * are placed flush against a guard page: a read past the datagram faults.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "feed/itch.h"
#include "feed/mold.h"
#include "wire.h"

static void packet_header(struct wire *w, const char *session, uint64_t seq, unsigned count)
{
    w->n = 0;
    wire_alpha(w, session, 10);
    wire_uint(w, seq, 8);
    wire_uint(w, count, 2);
}

/* A block holding an ITCH D (19 bytes) whose order reference is `ref`. */
static void block_delete(struct wire *w, uint64_t ref)
{
    wire_uint(w, 19, 2);
    wire_char(w, 'D');
    wire_uint(w, 1, 2);
    wire_uint(w, 0, 2);
    wire_uint(w, 34200000000000ULL, 6);
    wire_uint(w, ref, 8);
}

/* A data packet of `count` messages numbered from `seq`. */
static void data_packet(struct wire *w, const char *session, uint64_t seq, unsigned count)
{
    packet_header(w, session, seq, count);
    for (unsigned i = 0; i < count; i++)
        block_delete(w, seq + i);
}

/* What one packet delivered. */
struct delivered {
    int rc;                  /* of mold_session_packet */
    struct mold_packet info; /* its header, as the session saw it */
    uint64_t seqs[64];       /* sequence numbers delivered, in order */
    size_t n;
};

static struct delivered feed(struct mold_session *s, const struct wire *w, size_t len)
{
    struct guard g;
    assert_int_equal(guard_open(&g), 0);
    const uint8_t *p = guard_place(&g, w->b, len);
    struct delivered d;
    memset(&d, 0, sizeof d);
    d.rc = mold_session_packet(s, p, len, &d.info);
    struct mold_msg m;
    while (mold_session_next(s, &m) == 1) {
        struct itch_msg im;
        assert_int_equal(itch_decode(m.data, m.len, &im), 0);
        assert_int_equal(im.del.order_ref, m.seq); /* it is the message it says */
        assert_true(m.data >= p && m.data + m.len <= p + len);
        d.seqs[d.n++] = m.seq;
    }
    guard_close(&g);
    return d;
}

static struct delivered feed_data(struct mold_session *s, const char *session, uint64_t seq,
                                  unsigned count)
{
    struct wire w;
    data_packet(&w, session, seq, count);
    return feed(s, &w, w.n);
}

static void assert_seqs(const struct delivered *d, uint64_t first, size_t n)
{
    assert_int_equal(d->n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(d->seqs[i], first + i);
}

static void test_delivers_the_messages_of_a_packet_in_order_with_their_numbers(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    struct delivered d = feed_data(&s, "SESSION001", 1, 3);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.info.kind, MOLD_DATA);
    assert_int_equal(d.info.seq, 1);
    assert_int_equal(d.info.count, 3);
    assert_int_equal(d.info.gap, 0);
    assert_false(d.info.new_session);
    assert_seqs(&d, 1, 3);
    assert_int_equal(s.next_seq, 4);
    assert_memory_equal(s.name, "SESSION001", 10);
    assert_int_equal(s.stats.packets, 1);
    assert_int_equal(s.stats.messages, 3);
}

static void test_consecutive_packets_deliver_everything_without_a_gap(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    uint64_t seq = 1;
    for (unsigned count = 1; count <= 20; count++) {
        struct delivered d = feed_data(&s, "S1", seq, count);
        assert_seqs(&d, seq, count);
        seq += count;
    }
    assert_int_equal(s.stats.messages, seq - 1);
    assert_int_equal(s.stats.gaps + s.stats.duplicates + s.stats.truncated, 0);
}

static void test_jump_ahead_is_a_gap_with_its_range_then_delivery_goes_on(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 5);
    struct delivered d = feed_data(&s, "S1", 9, 2); /* 6, 7, 8 lost */
    assert_int_equal(d.info.gap_from, 6);
    assert_int_equal(d.info.gap, 3);
    assert_seqs(&d, 9, 2);
    d = feed_data(&s, "S1", 11, 1);
    assert_int_equal(d.info.gap, 0);
    assert_seqs(&d, 11, 1);
    assert_int_equal(s.stats.gaps, 1);
    assert_int_equal(s.stats.gap_messages, 3);
    assert_int_equal(s.stats.messages, 8);
}

/* A packet whose numbers would pass 2^64 - 1 is refused (counted as
 * truncated): the wrap would deliver the session from the start again
 * (found by fuzz_mold). */
static void test_sequence_numbers_that_would_wrap_are_refused(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 2);
    struct delivered d = feed_data(&s, "S1", UINT64_MAX, 2);
    assert_int_equal(d.n, 0);
    assert_int_equal(s.stats.truncated, 1);
    d = feed_data(&s, "S1", 1, 2); /* the session's first numbers stay delivered */
    assert_int_equal(d.n, 0);
    assert_int_equal(s.stats.messages, 2);
}

static void test_repeated_packet_is_skipped_as_duplicates(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 4);
    struct delivered d = feed_data(&s, "S1", 1, 4);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.info.gap, 0);
    assert_int_equal(s.stats.duplicates, 4);
    assert_int_equal(s.stats.messages, 4);
    assert_int_equal(s.next_seq, 5);
}

static void test_overlapping_packet_delivers_only_its_new_tail(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 4);
    struct delivered d = feed_data(&s, "S1", 3, 5); /* 3, 4 seen; 5..7 new */
    assert_seqs(&d, 5, 3);
    assert_int_equal(s.stats.duplicates, 2);
    assert_int_equal(s.next_seq, 8);
}

static void test_late_retransmission_of_a_gap_is_skipped_as_old(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 2);
    feed_data(&s, "S1", 5, 2); /* gap 3, 4: the session moves on */
    struct delivered d = feed_data(&s, "S1", 3, 2);
    assert_int_equal(d.n, 0);
    assert_int_equal(s.stats.duplicates, 2);
    assert_int_equal(s.stats.gap_messages, 2);
}

static void test_heartbeat_is_counted_and_delivers_nothing(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 3);
    struct wire w;
    packet_header(&w, "S1", 4, MOLD_COUNT_HEARTBEAT);
    struct delivered d = feed(&s, &w, w.n);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.info.kind, MOLD_HEARTBEAT);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.info.gap, 0);
    assert_int_equal(s.stats.heartbeats, 1);
    assert_int_equal(s.next_seq, 4);
}

static void test_heartbeat_ahead_reveals_a_gap_and_one_behind_changes_nothing(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 3);
    struct wire w;
    packet_header(&w, "S1", 10, MOLD_COUNT_HEARTBEAT); /* 4..9 were sent and lost */
    struct delivered d = feed(&s, &w, w.n);
    assert_int_equal(d.info.gap_from, 4);
    assert_int_equal(d.info.gap, 6);
    assert_int_equal(s.next_seq, 10);

    packet_header(&w, "S1", 2, MOLD_COUNT_HEARTBEAT); /* reordered, old */
    d = feed(&s, &w, w.n);
    assert_int_equal(d.info.gap, 0);
    assert_int_equal(s.next_seq, 10);
    assert_int_equal(s.stats.gaps, 1);
    assert_int_equal(s.stats.heartbeats, 2);
}

static void test_end_of_session_is_flagged_and_counted_each_time(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 2);
    assert_false(s.ended);
    struct wire w;
    packet_header(&w, "S1", 3, MOLD_COUNT_END);
    for (int i = 0; i < 3; i++) {
        struct delivered d = feed(&s, &w, w.n);
        assert_int_equal(d.info.kind, MOLD_END_OF_SESSION);
        assert_int_equal(d.n, 0);
        assert_int_equal(d.info.gap, 0);
    }
    assert_true(s.ended);
    assert_int_equal(s.stats.end_of_session, 3);
    assert_int_equal(s.stats.heartbeats, 0);
}

static void test_new_session_name_restarts_at_sequence_1(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    feed_data(&s, "DAY1", 1, 5);
    struct wire w;
    packet_header(&w, "DAY1", 6, MOLD_COUNT_END);
    feed(&s, &w, w.n);
    assert_true(s.ended);

    struct delivered d = feed_data(&s, "DAY2", 1, 2);
    assert_true(d.info.new_session);
    assert_int_equal(d.info.gap, 0);
    assert_seqs(&d, 1, 2);
    assert_false(s.ended);
    assert_memory_equal(s.name, "DAY2      ", 10);
    assert_int_equal(s.next_seq, 3);
    assert_int_equal(s.stats.session_changes, 1);
    assert_int_equal(s.stats.duplicates, 0);
}

static void test_late_join_reports_the_missed_messages_as_one_gap(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    struct delivered d = feed_data(&s, "S1", 1000, 2);
    assert_false(d.info.new_session);
    assert_int_equal(d.info.gap_from, 1);
    assert_int_equal(d.info.gap, 999);
    assert_seqs(&d, 1000, 2);
    assert_int_equal(s.stats.session_changes, 0);
}

static void test_datagram_shorter_than_the_header_is_truncated_and_changes_nothing(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 2);
    struct wire w;
    data_packet(&w, "S2", 3, 1);
    for (size_t len = 0; len < MOLD_HEADER_LEN; len++) {
        struct delivered d = feed(&s, &w, len);
        assert_int_equal(d.rc, -ENODATA);
        assert_int_equal(d.n, 0);
    }
    assert_int_equal(s.stats.truncated, MOLD_HEADER_LEN);
    assert_int_equal(s.stats.packets, 1 + MOLD_HEADER_LEN);
    assert_memory_equal(s.name, "S1        ", 10);
    assert_int_equal(s.next_seq, 3);
}

static void test_datagram_cut_anywhere_delivers_the_whole_blocks_before_the_cut(void **state)
{
    (void)state;
    struct wire w;
    data_packet(&w, "S1", 1, 3); /* blocks end at 41, 62, 83 */
    for (size_t len = MOLD_HEADER_LEN; len <= w.n; len++) {
        struct mold_session s;
        mold_session_init(&s);
        struct delivered d = feed(&s, &w, len);
        size_t whole = (len - MOLD_HEADER_LEN) / 21;
        assert_int_equal(d.rc, 0);
        assert_seqs(&d, 1, whole);
        assert_int_equal(s.stats.truncated, whole < 3 ? 1 : 0);
        assert_int_equal(s.next_seq, 1 + whole);

        /* the next packet shows the lost ones as a gap */
        d = feed_data(&s, "S1", 4, 1);
        assert_int_equal(d.info.gap, 3 - whole);
        assert_seqs(&d, 4, 1);
    }
}

static void test_count_larger_than_the_blocks_present_is_truncated(void **state)
{
    (void)state;
    struct wire w;
    packet_header(&w, "S1", 1, 5);
    block_delete(&w, 1);
    block_delete(&w, 2);
    struct mold_session s;
    mold_session_init(&s);
    struct delivered d = feed(&s, &w, w.n);
    assert_seqs(&d, 1, 2);
    assert_int_equal(s.stats.truncated, 1);
    assert_int_equal(s.next_seq, 3);
}

static void test_bytes_after_the_last_block_are_ignored(void **state)
{
    (void)state;
    struct wire w;
    data_packet(&w, "S1", 1, 2);
    wire_alpha(&w, "padding", 7);
    struct mold_session s;
    mold_session_init(&s);
    struct delivered d = feed(&s, &w, w.n);
    assert_seqs(&d, 1, 2);
    assert_int_equal(s.stats.truncated, 0);
}

static void test_invalid_itch_message_uses_its_number_but_is_not_delivered(void **state)
{
    (void)state;
    struct wire w;
    packet_header(&w, "S1", 1, 6);
    block_delete(&w, 1);
    wire_uint(&w, 0, 2); /* 2: zero length */
    wire_uint(&w, 3, 2); /* 3: unknown type */
    wire_bytes(&w, "zzz", 3);
    wire_uint(&w, 3, 2); /* 4: D too short */
    wire_bytes(&w, "Dxx", 3);
    wire_uint(&w, 60, 2); /* 5: longer than any type */
    for (int i = 0; i < 60; i++)
        wire_char(&w, 'z');
    block_delete(&w, 6);
    struct mold_session s;
    mold_session_init(&s);
    struct delivered d = feed(&s, &w, w.n);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.seqs[0], 1);
    assert_int_equal(d.seqs[1], 6);
    assert_int_equal(s.stats.zero_length, 1);
    assert_int_equal(s.stats.unknown_type, 1);
    assert_int_equal(s.stats.bad_length, 2);
    assert_int_equal(s.stats.messages, 2);
    assert_int_equal(s.next_seq, 7);
    assert_int_equal(s.stats.gaps, 0);
}

static void test_packet_not_walked_to_the_end_is_abandoned_by_the_next(void **state)
{
    (void)state;
    struct mold_session s;
    mold_session_init(&s);
    struct wire w1, w2;
    data_packet(&w1, "S1", 1, 3);
    data_packet(&w2, "S1", 4, 1);
    struct mold_packet info;
    struct mold_msg m;
    assert_int_equal(mold_session_packet(&s, w1.b, w1.n, &info), 0);
    assert_int_equal(mold_session_next(&s, &m), 1);
    assert_int_equal(mold_session_packet(&s, w2.b, w2.n, &info), 0);
    assert_int_equal(info.gap_from, 2);
    assert_int_equal(info.gap, 2);
    assert_int_equal(mold_session_next(&s, &m), 1);
    assert_int_equal(m.seq, 4);
    assert_int_equal(mold_session_next(&s, &m), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivers_the_messages_of_a_packet_in_order_with_their_numbers),
        cmocka_unit_test(test_consecutive_packets_deliver_everything_without_a_gap),
        cmocka_unit_test(test_jump_ahead_is_a_gap_with_its_range_then_delivery_goes_on),
        cmocka_unit_test(test_sequence_numbers_that_would_wrap_are_refused),
        cmocka_unit_test(test_repeated_packet_is_skipped_as_duplicates),
        cmocka_unit_test(test_overlapping_packet_delivers_only_its_new_tail),
        cmocka_unit_test(test_late_retransmission_of_a_gap_is_skipped_as_old),
        cmocka_unit_test(test_heartbeat_is_counted_and_delivers_nothing),
        cmocka_unit_test(test_heartbeat_ahead_reveals_a_gap_and_one_behind_changes_nothing),
        cmocka_unit_test(test_end_of_session_is_flagged_and_counted_each_time),
        cmocka_unit_test(test_new_session_name_restarts_at_sequence_1),
        cmocka_unit_test(test_late_join_reports_the_missed_messages_as_one_gap),
        cmocka_unit_test(test_datagram_shorter_than_the_header_is_truncated_and_changes_nothing),
        cmocka_unit_test(test_datagram_cut_anywhere_delivers_the_whole_blocks_before_the_cut),
        cmocka_unit_test(test_count_larger_than_the_blocks_present_is_truncated),
        cmocka_unit_test(test_bytes_after_the_last_block_are_ignored),
        cmocka_unit_test(test_invalid_itch_message_uses_its_number_but_is_not_delivered),
        cmocka_unit_test(test_packet_not_walked_to_the_end_is_abandoned_by_the_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

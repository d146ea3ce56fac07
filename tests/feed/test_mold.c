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
#include "tests/feed/wire.h"

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
    int rc;             /* of mold_session_packet */
    mold_packet_t info; /* its header, as the session saw it */
    uint64_t seqs[64];  /* sequence numbers delivered, in order */
    size_t n;
};

static struct delivered feed(mold_session_t *s, const struct wire *w, size_t len)
{
    struct guard g;
    assert_int_equal(guard_open(&g), 0);
    const uint8_t *p = guard_place(&g, w->b, len);
    struct delivered d;
    memset(&d, 0, sizeof d);
    d.rc = mold_session_packet(s, p, len, &d.info);
    mold_msg_t m;
    while (mold_session_next(s, &m) == 1) {
        itch_msg_t im;
        assert_int_equal(itch_decode(m.data, m.len, &im), 0);
        assert_int_equal(im.del.order_ref, m.seq); /* it is the message it says */
        assert_true(m.data >= p && m.data + m.len <= p + len);
        d.seqs[d.n++] = m.seq;
    }
    guard_close(&g);
    return d;
}

static struct delivered feed_data(mold_session_t *s, const char *session, uint64_t seq,
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
    mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
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

/* A packet whose numbers would pass 2^64 - 1 is refused as implausible:
 * the wrap would deliver the session from the start again (found by
 * fuzz_mold), and no run of them can ever be delivered. */
static void test_sequence_numbers_that_would_wrap_are_refused(void **state)
{
    (void)state;
    mold_session_t s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 2);
    for (int i = 0; i < MOLD_CONFIRM + 1; i++) {
        struct delivered d = feed_data(&s, "S1", UINT64_MAX, 2);
        assert_true(d.info.ignored);
        assert_int_equal(d.n, 0);
    }
    assert_int_equal(s.stats.implausible, MOLD_CONFIRM + 1);
    assert_int_equal(s.stats.truncated, 0);
    struct delivered d = feed_data(&s, "S1", 1, 2); /* the session's first numbers stay delivered */
    assert_int_equal(d.n, 0);
    assert_int_equal(s.stats.messages, 2);
    assert_int_equal(s.next_seq, 3);
}

/* Once, one datagram numbered 2^64 - 5 made the session skip
 * every later packet as a duplicate. It is ignored, and the stream goes on. */
static void test_one_datagram_far_ahead_is_ignored_and_the_stream_goes_on(void **state)
{
    (void)state;
    mold_session_t s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 5);
    struct delivered d = feed_data(&s, "S1", UINT64_MAX - 4, 1);
    assert_true(d.info.ignored);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.info.gap, 0);
    assert_int_equal(s.next_seq, 6);
    for (uint64_t seq = 6; seq < 2006; seq++) {
        d = feed_data(&s, "S1", seq, 1);
        assert_false(d.info.ignored);
        assert_seqs(&d, seq, 1);
    }
    assert_int_equal(s.stats.messages, 2005);
    assert_int_equal(s.stats.implausible, 1);
    assert_int_equal(s.stats.gaps, 0);
    assert_int_equal(s.stats.gap_messages, 0);
    assert_int_equal(s.stats.duplicates, 0);
}

static void test_jump_of_the_limit_is_a_gap_and_one_more_is_ignored(void **state)
{
    (void)state;
    mold_session_t s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 1);
    struct delivered d = feed_data(&s, "S1", 2 + MOLD_MAX_JUMP + 1, 1);
    assert_true(d.info.ignored);
    d = feed_data(&s, "S1", 2 + MOLD_MAX_JUMP, 1);
    assert_false(d.info.ignored);
    assert_int_equal(d.info.gap, MOLD_MAX_JUMP);
    assert_seqs(&d, 2 + MOLD_MAX_JUMP, 1);
}

static void test_run_of_packets_far_ahead_confirms_the_jump_with_one_gap(void **state)
{
    (void)state;
    mold_session_t s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 5);
    const uint64_t far = 50000000;
    for (int i = 0; i < MOLD_CONFIRM - 1; i++) {
        struct delivered d = feed_data(&s, "S1", far + 2 * (uint64_t)i, 2);
        assert_true(d.info.ignored);
        assert_int_equal(d.n, 0);
        assert_int_equal(s.next_seq, 6);
    }
    const uint64_t third = far + 2 * (MOLD_CONFIRM - 1);
    struct delivered d = feed_data(&s, "S1", third, 2);
    assert_false(d.info.ignored);
    assert_int_equal(d.info.gap_from, 6);
    assert_int_equal(d.info.gap, third - 6);
    assert_seqs(&d, third, 2);
    d = feed_data(&s, "S1", third + 2, 1); /* and on from there */
    assert_seqs(&d, third + 2, 1);
    assert_int_equal(s.stats.gaps, 1);
    assert_int_equal(s.stats.gap_messages, third - 6);
    assert_int_equal(s.stats.implausible, MOLD_CONFIRM - 1);
}

static void test_plausible_packet_breaks_a_run_of_packets_far_ahead(void **state)
{
    (void)state;
    mold_session_t s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 1);
    const uint64_t far = 1ULL << 40;
    uint64_t seq = 2;
    for (int i = 0; i < 3 * MOLD_CONFIRM; i++) { /* forged and live packets take turns */
        struct delivered d = feed_data(&s, "S1", far + (uint64_t)i, 1);
        assert_true(d.info.ignored);
        d = feed_data(&s, "S1", seq, 1);
        assert_seqs(&d, seq, 1);
        seq++;
    }
    assert_int_equal(s.stats.implausible, 3 * MOLD_CONFIRM);
    assert_int_equal(s.stats.gaps, 0);
    assert_int_equal(s.next_seq, seq);
}

static void test_repeated_or_scattered_packets_far_ahead_never_confirm(void **state)
{
    (void)state;
    mold_session_t s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 1);
    const uint64_t far = 1ULL << 50;
    for (int i = 0; i < 2 * MOLD_CONFIRM; i++) /* the same packet again */
        assert_true(feed_data(&s, "S1", far, 2).info.ignored);
    for (int i = 0; i < 2 * MOLD_CONFIRM; i++) /* each one past where the last ended */
        assert_true(feed_data(&s, "S1", far + 10 * (uint64_t)i, 2).info.ignored);
    for (int i = 0; i < 2 * MOLD_CONFIRM; i++) /* each from another session */
        assert_true(feed_data(&s, i % 2 ? "S1" : "S2", far + 2 * (uint64_t)i, 2).info.ignored);
    struct wire w;
    for (int i = 0; i < 2 * MOLD_CONFIRM; i++) { /* heartbeats never confirm */
        packet_header(&w, "S1", far, MOLD_COUNT_HEARTBEAT);
        assert_true(feed(&s, &w, w.n).info.ignored);
    }
    assert_int_equal(s.stats.implausible, 8 * MOLD_CONFIRM);
    assert_int_equal(s.stats.heartbeats, 0);
    assert_int_equal(s.stats.session_changes, 0);
    assert_int_equal(s.next_seq, 2);
    struct delivered d = feed_data(&s, "S1", 2, 1);
    assert_seqs(&d, 2, 1);
}

static void test_heartbeat_or_end_of_session_far_ahead_is_ignored(void **state)
{
    (void)state;
    mold_session_t s;
    mold_session_init(&s);
    feed_data(&s, "S1", 1, 3);
    struct wire w;
    packet_header(&w, "S1", UINT64_MAX - 4, MOLD_COUNT_HEARTBEAT);
    struct delivered d = feed(&s, &w, w.n);
    assert_true(d.info.ignored);
    packet_header(&w, "S1", UINT64_MAX - 4, MOLD_COUNT_END);
    d = feed(&s, &w, w.n);
    assert_true(d.info.ignored);
    assert_false(s.ended);
    assert_int_equal(s.next_seq, 4);
    assert_int_equal(s.stats.gaps, 0);
    assert_int_equal(s.stats.implausible, 2);
    d = feed_data(&s, "S1", 4, 1);
    assert_seqs(&d, 4, 1);
}

/* A new session name is expected at 1: one far from it is a forged or
 * stray packet, not a new day, until a run confirms it. */
static void test_new_session_far_from_1_is_ignored_until_confirmed(void **state)
{
    (void)state;
    mold_session_t s;
    mold_session_init(&s);
    feed_data(&s, "DAY1", 1, 2);
    struct delivered d = feed_data(&s, "EVIL", UINT64_MAX - 4, 1);
    assert_true(d.info.ignored);
    assert_false(d.info.new_session);
    assert_memory_equal(s.name, "DAY1      ", 10);
    d = feed_data(&s, "DAY1", 3, 1);
    assert_seqs(&d, 3, 1);

    const uint64_t far = 7000000;
    for (int i = 0; i < MOLD_CONFIRM - 1; i++)
        assert_true(feed_data(&s, "DAY2", far + (uint64_t)i, 1).info.ignored);
    d = feed_data(&s, "DAY2", far + MOLD_CONFIRM - 1, 1);
    assert_true(d.info.new_session);
    assert_int_equal(d.info.gap_from, 1);
    assert_int_equal(d.info.gap, far + MOLD_CONFIRM - 2);
    assert_seqs(&d, far + MOLD_CONFIRM - 1, 1);
    assert_int_equal(s.stats.session_changes, 1);
}

/* A receiver that joins a busy session late sees it far past 1: the
 * MOLD_CONFIRM-th packet starts the delivery. */
static void test_late_join_far_into_a_session_delivers_from_the_confirming_packet(void **state)
{
    (void)state;
    mold_session_t s;
    mold_session_init(&s);
    const uint64_t at = 300000000;
    for (int i = 0; i < MOLD_CONFIRM - 1; i++)
        assert_true(feed_data(&s, "S1", at + 4 * (uint64_t)i, 4).info.ignored);
    struct delivered d = feed_data(&s, "S1", at + 4 * (MOLD_CONFIRM - 1), 4);
    assert_false(d.info.new_session);
    assert_seqs(&d, at + 4 * (MOLD_CONFIRM - 1), 4);
    assert_int_equal(s.stats.gaps, 1);
    assert_int_equal(s.stats.session_changes, 0);
}

/* Confirmed jumps of nearly 2^64 in session after session: the count of
 * lost messages stops at its maximum instead of wrapping back. */
static void test_lost_message_count_stops_at_its_maximum(void **state)
{
    (void)state;
    mold_session_t s;
    mold_session_init(&s);
    const char *names[] = {"A", "B", "C"};
    for (int n = 0; n < 3; n++)
        for (int i = 0; i < MOLD_CONFIRM; i++)
            feed_data(&s, names[n], UINT64_MAX - 10 + (uint64_t)i, 1);
    assert_int_equal(s.stats.gaps, 3);
    assert_int_equal(s.stats.messages, 3);
    assert_true(s.stats.gap_messages == UINT64_MAX);
}

/* Every counter of the session, as an array. */
#define NSTATS (sizeof(mold_stats_t) / sizeof(uint64_t))
static void stats_of(const mold_session_t *s, uint64_t out[NSTATS])
{
    memcpy(out, &s->stats, sizeof s->stats);
}

/* Counters are exported as Prometheus counters: whatever comes, not one of
 * them may go down. Packets from a fixed pseudo-random walk: near, far and
 * wrapping sequence numbers, three session names, heartbeats, ends, cuts. */
static void test_counters_never_decrease_under_adversarial_sequences(void **state)
{
    (void)state;
    static const uint64_t bases[] = {0,
                                     1,
                                     2,
                                     1000,
                                     MOLD_MAX_JUMP,
                                     1ULL << 32,
                                     1ULL << 63,
                                     UINT64_MAX - 70000,
                                     UINT64_MAX - 3,
                                     UINT64_MAX};
    static const char *const names[] = {"S1", "S2", "S3"};
    mold_session_t s;
    mold_session_init(&s);
    uint64_t x = 0x9e3779b97f4a7c15ULL, before[NSTATS], after[NSTATS];
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t seq =
            (x & 1) ? s.next_seq + (x >> 8) % 8 - 4 : bases[(x >> 8) % 10] + (x >> 16) % 5;
        unsigned count = (x >> 24) % 6;
        if (count == 5)
            count = MOLD_COUNT_END;
        struct wire w;
        if (count == MOLD_COUNT_END)
            packet_header(&w, names[(x >> 32) % 3], seq, count);
        else
            data_packet(&w, names[(x >> 32) % 3], seq, count);
        size_t len = (x >> 40) % 16 == 0 ? (size_t)((x >> 44) % (w.n + 1)) : w.n;
        stats_of(&s, before);
        uint64_t next = s.next_seq;
        struct delivered d = feed(&s, &w, len);
        stats_of(&s, after);
        for (size_t k = 0; k < NSTATS; k++)
            assert_true(after[k] >= before[k]);
        if (d.info.ignored)
            assert_int_equal(s.next_seq, next);
    }
}

static void test_repeated_packet_is_skipped_as_duplicates(void **state)
{
    (void)state;
    mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
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
        mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
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
    mold_session_t s;
    mold_session_init(&s);
    struct wire w1, w2;
    data_packet(&w1, "S1", 1, 3);
    data_packet(&w2, "S1", 4, 1);
    mold_packet_t info;
    mold_msg_t m;
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
        cmocka_unit_test(test_one_datagram_far_ahead_is_ignored_and_the_stream_goes_on),
        cmocka_unit_test(test_jump_of_the_limit_is_a_gap_and_one_more_is_ignored),
        cmocka_unit_test(test_run_of_packets_far_ahead_confirms_the_jump_with_one_gap),
        cmocka_unit_test(test_plausible_packet_breaks_a_run_of_packets_far_ahead),
        cmocka_unit_test(test_repeated_or_scattered_packets_far_ahead_never_confirm),
        cmocka_unit_test(test_heartbeat_or_end_of_session_far_ahead_is_ignored),
        cmocka_unit_test(test_new_session_far_from_1_is_ignored_until_confirmed),
        cmocka_unit_test(test_late_join_far_into_a_session_delivers_from_the_confirming_packet),
        cmocka_unit_test(test_lost_message_count_stops_at_its_maximum),
        cmocka_unit_test(test_counters_never_decrease_under_adversarial_sequences),
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

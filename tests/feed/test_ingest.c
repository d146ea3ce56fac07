/*
 * test_ingest.c - from bytes to ticks: every format, any chunking, bad
 * input counted and located, pacing, and MoldUDP64 sequencing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "feed/gen.h"
#include "feed/ingest.h"

typedef struct errors {
    int count;
    uint64_t where[8];
    char reason[8][96];
} errors_t;

static void note_error(void *arg, uint64_t where, const char *reason)
{
    errors_t *e = arg;
    if (e->count < 8) {
        e->where[e->count] = where;
        snprintf(e->reason[e->count], sizeof(e->reason[0]), "%s", reason);
    }
    e->count++;
}

typedef struct sum {
    uint64_t ticks;
    uint64_t hash; /* order-sensitive digest of what the ticks said */
} sum_t;

static void sum_tick(void *arg, tick_t *t)
{
    sum_t *s = arg;
    s->ticks++;
    s->hash = s->hash * 1000003u ^ (uint64_t)t->price ^ (uint64_t)t->size << 20 ^
              (uint64_t)t->ask << 7 ^ (uint64_t)t->ts_exch ^ (uint64_t)t->kind << 60;
}

typedef struct rig {
    heap_t *heap;
    market_t *market;
    ingest_t ing;
    sum_t sum;
    errors_t errors;
} rig_t;

static rig_t *rig_new(enum ingest_format fmt)
{
    rig_t *r = calloc(1, sizeof(*r));
    assert_int_equal(heap_create(NULL, &r->heap), 0);
    assert_int_equal(obj_runtime_create(r->heap), 0);
    assert_int_equal(market_create(r->heap, 0, sum_tick, &r->sum, &r->market), 0);
    ingest_init(&r->ing, fmt, r->market, note_error, &r->errors);
    return r;
}

static void rig_free(rig_t *r)
{
    market_destroy(r->market);
    gc_collect(r->heap, GC_NGENERATIONS - 1);
    heap_stats_t hs;
    heap_get_stats(r->heap, &hs);
    assert_int_equal(hs.used_bytes, 0);
    obj_runtime_destroy(r->heap);
    heap_destroy(r->heap);
    free(r);
}

/* Feeds data in chunks of size step (the last may be shorter). */
static void feed_chunks(rig_t *r, const void *data, size_t len, size_t step)
{
    const unsigned char *p = data;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        ingest_push(&r->ing, p + off, n, 1);
        assert_int_equal(ingest_run(&r->ing, INT64_MAX, UINT64_MAX, NULL), 0);
    }
    ingest_finish(&r->ing);
}

typedef struct buf {
    unsigned char *data;
    size_t len, cap;
} buf_t;

static int buf_write(void *ctx, const void *p, size_t len)
{
    buf_t *b = ctx;
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return 0;
}

static void itch_day_gives_the_same_ticks_in_any_chunking(void **state)
{
    (void)state;
    buf_t day = {0};
    gen_opts_t opts = {.symbols = 5, .messages = 3000, .seed = 3};
    assert_int_equal(gen_itch(&opts, buf_write, &day), 0);

    rig_t *whole = rig_new(INGEST_ITCH);
    feed_chunks(whole, day.data, day.len, day.len);
    assert_int_equal(whole->ing.stats.messages, 3000);
    assert_int_equal(whole->ing.stats.decode_errors, 0);
    assert_true(whole->sum.ticks > 0);

    static const size_t steps[] = {1, 2, 3, 7, 13, 51, 52, 53, 4096};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        rig_t *r = rig_new(INGEST_ITCH);
        feed_chunks(r, day.data, day.len, steps[i]);
        assert_int_equal(r->ing.stats.messages, 3000);
        assert_int_equal(r->sum.ticks, whole->sum.ticks);
        assert_int_equal(r->sum.hash, whole->sum.hash);
        assert_int_equal(r->errors.count, 0);
        rig_free(r);
    }
    rig_free(whole);
    free(day.data);
}

static void malformed_itch_is_counted_and_the_rest_applied(void **state)
{
    (void)state;
    /* A zero-length frame, an unknown type, and a delete whose length is
     * wrong, between two good adds; then a message cut off by the end. */
    static const unsigned char add1[] = {
        0, 36, 'A', 0, 1, 0, 0,   0,   0,   0,   0,   0,   1,   0,   0,   0, 0, 0,    0,
        0, 1,  'B', 0, 0, 0, 100, 'A', 'B', 'C', ' ', ' ', ' ', ' ', ' ', 0, 0, 0x27, 0x10};
    static const unsigned char junk[] = {0, 0, 0, 3, 'z', 1, 2, 0, 4, 'D', 0, 0, 0};
    unsigned char data[256];
    size_t n = 0;
    memcpy(data + n, add1, sizeof(add1)), n += sizeof(add1);
    memcpy(data + n, junk, sizeof(junk)), n += sizeof(junk);
    memcpy(data + n, add1, sizeof(add1)), n += sizeof(add1);
    data[n - 18] = 2; /* second add: order reference 2 */
    memcpy(data + n, add1, 10), n += 10;

    rig_t *r = rig_new(INGEST_ITCH);
    feed_chunks(r, data, n, n);
    assert_int_equal(r->ing.stats.messages, 2);
    assert_int_equal(r->ing.stats.decode_errors, 4);
    assert_non_null(market_order(r->market, 1));
    assert_non_null(market_order(r->market, 2));
    assert_true(r->errors.count >= 2);
    assert_non_null(strstr(r->errors.reason[0], "3 malformed ITCH messages"));
    assert_non_null(strstr(r->errors.reason[1], "inside an ITCH message"));
    rig_free(r);
}

static const char csv_day[] = "# a comment, then a blank line\n"
                              "\n"
                              "T,1000,AAPL,101.25,100,B\n"
                              "Q,2000,AAPL,101.2000,300,101.3000,200\r\n"
                              "T,3000,AAPL,abc,100\n"
                              "T,4000,aapl,1.00,1\n"
                              "T,5000,MSFT,410.5,7\n"
                              "Q,6000,MSFT,410.4,1,410.6,2";

static void csv_bad_lines_are_reported_with_their_line_numbers(void **state)
{
    (void)state;
    for (size_t step = 1; step <= sizeof(csv_day); step++) {
        rig_t *r = rig_new(INGEST_CSV);
        feed_chunks(r, csv_day, sizeof(csv_day) - 1, step);
        assert_int_equal(r->ing.stats.messages, 4);
        assert_int_equal(r->ing.stats.decode_errors, 2);
        assert_int_equal(r->errors.count, 2);
        assert_int_equal(r->errors.where[0], 5);
        assert_int_equal(r->errors.where[1], 6);
        symbol_t *s = market_find(r->market, "AAPL", 4);
        assert_int_equal(s->last_trade->price, 1012500);
        assert_int_equal(s->last_trade->side, 'B');
        assert_int_equal(s->last_quote->ask, 1013000);
        s = market_find(r->market, "MSFT", 4);
        assert_int_equal(s->last_quote->ask_size, 2); /* the last line has no newline */
        assert_int_equal(r->ing.last_ts, 6000);
        rig_free(r);
    }
}

static size_t journal_bytes(unsigned char *out, int n)
{
    memcpy(out, "TICKDJNL\1\0\0\0\0\0\0\0", JOURNAL_HEADER_SIZE);
    size_t len = JOURNAL_HEADER_SIZE;
    for (int i = 0; i < n; i++) {
        journal_rec_t rec = {.kind = i % 2 ? JOURNAL_QUOTE : JOURNAL_TRADE,
                             .side = 'S',
                             .sym = "XYZ",
                             .price = 1000 + i,
                             .size = 10,
                             .ask = i % 2 ? 2000 + i : 0,
                             .ask_size = i % 2 ? 5 : 0,
                             .seq = 100 + (uint64_t)i,
                             .ts_exch = 1000 * i};
        journal_encode(&rec, out + len);
        len += JOURNAL_RECORD_SIZE;
    }
    return len;
}

static void journal_stream_gives_the_same_ticks_in_any_chunking(void **state)
{
    (void)state;
    unsigned char data[JOURNAL_HEADER_SIZE + 20 * JOURNAL_RECORD_SIZE];
    size_t len = journal_bytes(data, 20);
    rig_t *whole = rig_new(INGEST_TLOG);
    feed_chunks(whole, data, len, len);
    assert_int_equal(whole->ing.stats.messages, 20);
    assert_int_equal(whole->sum.ticks, 20);
    symbol_t *s = market_find(whole->market, "XYZ", 3);
    assert_int_equal(s->last_trade->seq, 118); /* recorded sequence numbers are kept */
    for (size_t step = 1; step < 200; step++) {
        rig_t *r = rig_new(INGEST_TLOG);
        feed_chunks(r, data, len, step);
        assert_int_equal(r->ing.stats.messages, 20);
        assert_int_equal(r->sum.hash, whole->sum.hash);
        assert_int_equal(r->errors.count, 0);
        rig_free(r);
    }
    rig_free(whole);
}

static void corrupt_journal_record_stops_the_stream_once(void **state)
{
    (void)state;
    unsigned char data[JOURNAL_HEADER_SIZE + 10 * JOURNAL_RECORD_SIZE];
    size_t len = journal_bytes(data, 10);
    data[JOURNAL_HEADER_SIZE + 4 * JOURNAL_RECORD_SIZE + 20] ^= 0xFF;
    rig_t *r = rig_new(INGEST_TLOG);
    feed_chunks(r, data, len, 33);
    assert_int_equal(r->ing.stats.messages, 4);
    assert_int_equal(r->errors.count, 1);
    assert_non_null(strstr(r->errors.reason[0], "corrupt journal record"));
    rig_free(r);

    r = rig_new(INGEST_TLOG);
    feed_chunks(r, "not a journal at all", 20, 5);
    assert_int_equal(r->ing.stats.messages, 0);
    assert_int_equal(r->errors.count, 1);
    assert_non_null(strstr(r->errors.reason[0], "bad header"));
    rig_free(r);
}

static void pacing_stops_before_messages_that_are_not_due(void **state)
{
    (void)state;
    rig_t *r = rig_new(INGEST_CSV);
    const char *day = "T,100,A,1,1\nT,200,A,1,1\nT,300,A,1,1\nT,400,A,1,1\n";
    ingest_push(&r->ing, day, strlen(day), 1);
    int64_t next = 0;
    assert_int_equal(ingest_run(&r->ing, INT64_MIN, UINT64_MAX, &next), 1);
    assert_int_equal(next, 100);
    assert_int_equal(r->ing.stats.messages, 0);
    assert_int_equal(ingest_run(&r->ing, 250, UINT64_MAX, &next), 1);
    assert_int_equal(r->ing.stats.messages, 2);
    assert_int_equal(next, 300);
    assert_int_equal(ingest_run(&r->ing, 300, 0, &next), 1); /* max 0: nothing applied */
    assert_int_equal(r->ing.stats.messages, 2);
    assert_int_equal(ingest_run(&r->ing, INT64_MAX, 1, &next), 1);
    assert_int_equal(r->ing.stats.messages, 3);
    assert_int_equal(ingest_run(&r->ing, INT64_MAX, UINT64_MAX, &next), 0);
    assert_int_equal(r->ing.stats.messages, 4);
    rig_free(r);
}

/* A MoldUDP64 datagram carrying count adds from sequence number seq. */
static size_t mold_packet(unsigned char *out, uint64_t seq, int count)
{
    memcpy(out, "SESSION001", 10);
    for (int i = 0; i < 8; i++)
        out[10 + i] = (unsigned char)(seq >> (56 - 8 * i));
    out[18] = 0;
    out[19] = (unsigned char)count;
    size_t n = 20;
    for (int i = 0; i < count; i++) {
        itch_msg_t m = {.type = ITCH_ADD_ORDER, .stock_locate = 1};
        m.add.order_ref = seq + (uint64_t)i;
        m.add.side = 'B';
        m.add.shares = 10;
        memcpy(m.add.stock, "MOLD    ", 8);
        m.add.price = 10000;
        int len = binfile_encode(&m, out + n, 64);
        assert_true(len > 0);
        n += (size_t)len;
    }
    return n;
}

static void mold_packets_apply_each_message_once_and_count_gaps(void **state)
{
    (void)state;
    rig_t *r = rig_new(INGEST_MOLD);
    unsigned char pkt[1024];
    size_t n = mold_packet(pkt, 1, 3);
    ingest_packet(&r->ing, pkt, n, 1);
    ingest_packet(&r->ing, pkt, n, 1); /* a duplicate datagram */
    n = mold_packet(pkt, 7, 2);        /* 4, 5, 6 never arrive */
    ingest_packet(&r->ing, pkt, n, 1);
    assert_int_equal(r->ing.stats.messages, 5);
    assert_int_equal(r->ing.stats.sequence_gaps, 3);
    assert_int_equal(market_stats(r->market)->orders_live, 5);
    assert_non_null(market_order(r->market, 8));
    assert_null(market_order(r->market, 4));
    ingest_packet(&r->ing, pkt, 10, 1); /* shorter than the header */
    assert_int_equal(r->ing.stats.decode_errors, 1);
    rig_free(r);
}

/* What keeps a UDP feed fresh for /healthz: a datagram that delivered a
 * message, or a heartbeat at the next expected number; never one that
 * delivered nothing. */
static void mold_packet_shows_the_stream_alive_only_when_it_delivers(void **state)
{
    (void)state;
    rig_t *r = rig_new(INGEST_MOLD);
    unsigned char pkt[1024];
    size_t n = mold_packet(pkt, 1, 2);
    assert_int_equal(ingest_packet(&r->ing, pkt, n, 1), 1);
    assert_int_equal(ingest_packet(&r->ing, pkt, n, 1), 0); /* duplicates */
    n = mold_packet(pkt, UINT64_MAX - 4, 1);
    assert_int_equal(ingest_packet(&r->ing, pkt, n, 1), 0); /* an implausible jump */
    assert_int_equal(ingest_packet(&r->ing, pkt, 7, 1), 0); /* shorter than the header */
    n = mold_packet(pkt, 3, 0);
    assert_int_equal(ingest_packet(&r->ing, pkt, n, 1), 1); /* heartbeat at 3, the next */
    n = mold_packet(pkt, 2, 0);
    assert_int_equal(ingest_packet(&r->ing, pkt, n, 1), 0); /* heartbeat behind */
    n = mold_packet(pkt, 3, 1);
    assert_int_equal(ingest_packet(&r->ing, pkt, n, 1), 1);
    assert_int_equal(r->ing.stats.messages, 3);
    assert_int_equal(r->ing.mold.stats.implausible, 1);
    rig_free(r);
}

static void format_names_round_trip(void **state)
{
    (void)state;
    static const enum ingest_format all[] = {INGEST_ITCH, INGEST_CSV, INGEST_TLOG, INGEST_MOLD};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(ingest_format_parse(ingest_format_name(all[i])), all[i]);
    assert_int_equal(ingest_format_parse("json"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(itch_day_gives_the_same_ticks_in_any_chunking),
        cmocka_unit_test(malformed_itch_is_counted_and_the_rest_applied),
        cmocka_unit_test(csv_bad_lines_are_reported_with_their_line_numbers),
        cmocka_unit_test(journal_stream_gives_the_same_ticks_in_any_chunking),
        cmocka_unit_test(corrupt_journal_record_stops_the_stream_once),
        cmocka_unit_test(pacing_stops_before_messages_that_are_not_due),
        cmocka_unit_test(mold_packets_apply_each_message_once_and_count_gaps),
        cmocka_unit_test(mold_packet_shows_the_stream_alive_only_when_it_delivers),
        cmocka_unit_test(format_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_gen.c - tests of feed/gen.c: the synthetic day is deterministic,
 * decodes, and is a coherent day: system events in order, every symbol in
 * the directory, every order message about a live order, books never
 * crossed, the order-flow mix on target, time moving forward.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/binfile.h"
#include "feed/csv.h"
#include "feed/gen.h"
#include "feed/itch.h"
#include "tests/feed/sink.h"

#define NS_AT(h, m) ((uint64_t)((h)*3600 + (m)*60) * 1000000000ULL)

/* A generated day in memory (tests/feed/sink.h). */
static sink_t gen_itch_to_memory(uint32_t symbols, uint64_t messages, uint64_t seed)
{
    sink_t s = {0};
    gen_opts_t o = {.symbols = symbols, .messages = messages, .seed = seed};
    assert_int_equal(gen_itch(&o, sink_write, &s), 0);
    return s;
}

static sink_t gen_csv_to_memory(uint32_t symbols, uint64_t ticks, uint64_t seed)
{
    sink_t s = {0};
    gen_opts_t o = {.symbols = symbols, .messages = ticks, .seed = seed};
    assert_int_equal(gen_csv(&o, sink_write, &s), 0);
    return s;
}

/* Decode every message of a generated BinaryFILE buffer, in order. */
struct day {
    itch_msg_t *msgs;
    size_t n;
};

static struct day decode_day(const sink_t *s)
{
    struct day d = {0};
    size_t cap = s->len / 21 + 1; /* no message is shorter than 2 + 19 */
    d.msgs = malloc(cap * sizeof *d.msgs);
    assert_non_null(d.msgs);
    binfile_reader_t r;
    binfile_reader_init(&r);
    binfile_reader_push(&r, s->buf, s->len);
    const uint8_t *msg;
    size_t len;
    while (binfile_reader_next(&r, &msg, &len) == 1) {
        assert_true(d.n < cap);
        assert_int_equal(itch_decode(msg, len, &d.msgs[d.n]), 0);
        d.n++;
    }
    assert_int_equal(binfile_reader_finish(&r), 0);
    assert_int_equal(r.stats.zero_length + r.stats.unknown_type + r.stats.bad_length, 0);
    assert_int_equal(r.stats.messages, d.n);
    return d;
}

static void test_same_seed_gives_byte_identical_itch(void **state)
{
    (void)state;
    sink_t a = gen_itch_to_memory(50, 200000, 42);
    sink_t b = gen_itch_to_memory(50, 200000, 42);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.buf, b.buf, a.len);
    free(a.buf);
    free(b.buf);
}

static void test_different_seed_gives_different_itch(void **state)
{
    (void)state;
    sink_t a = gen_itch_to_memory(50, 20000, 42);
    sink_t b = gen_itch_to_memory(50, 20000, 43);
    assert_true(a.len != b.len || memcmp(a.buf, b.buf, a.len) != 0);
    free(a.buf);
    free(b.buf);
}

static void test_same_seed_gives_byte_identical_csv_and_another_seed_differs(void **state)
{
    (void)state;
    sink_t a = gen_csv_to_memory(30, 50000, 7);
    sink_t b = gen_csv_to_memory(30, 50000, 7);
    sink_t c = gen_csv_to_memory(30, 50000, 8);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.buf, b.buf, a.len);
    assert_true(a.len != c.len || memcmp(a.buf, c.buf, a.len) != 0);
    free(a.buf);
    free(b.buf);
    free(c.buf);
}

static void test_itch_day_has_exactly_the_requested_messages_and_all_decode(void **state)
{
    (void)state;
    const uint64_t counts[] = {GEN_ITCH_FIXED(3), GEN_ITCH_FIXED(3) + 1, 1000, 123457};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        sink_t s = gen_itch_to_memory(3, counts[i], i);
        struct day d = decode_day(&s);
        assert_int_equal(d.n, counts[i]);
        free(d.msgs);
        free(s.buf);
    }
}

static void test_itch_day_opens_lists_every_symbol_and_closes_in_order(void **state)
{
    (void)state;
    const uint32_t n = 300;
    sink_t s = gen_itch_to_memory(n, 100000, 5);
    struct day d = decode_day(&s);
    const itch_msg_t *m = d.msgs;

    assert_int_equal(m[0].type, 'S');
    assert_int_equal(m[0].system_event.event_code, 'O');
    for (uint32_t i = 0; i < n; i++) {
        const itch_msg_t *r = &m[1 + i];
        assert_int_equal(r->type, 'R');
        assert_int_equal(r->stock_locate, i + 1);
        size_t len = itch_stock_len(r->stock_directory.stock);
        assert_true(len >= 1 && len <= ITCH_STOCK_LEN);
        for (size_t k = 0; k < len; k++)
            assert_true(r->stock_directory.stock[k] >= 'A' && r->stock_directory.stock[k] <= 'Z');
        for (uint32_t j = 0; j < i; j++) /* names are unique */
            assert_memory_not_equal(r->stock_directory.stock, m[1 + j].stock_directory.stock,
                                    ITCH_STOCK_LEN);
        assert_int_equal(r->stock_directory.authenticity, 'P');
        assert_int_equal(r->stock_directory.round_lot_size, 100);
    }
    assert_int_equal(m[n + 1].type, 'S');
    assert_int_equal(m[n + 1].system_event.event_code, 'S');
    for (uint32_t i = 0; i < n; i++) {
        const itch_msg_t *h = &m[n + 2 + i];
        assert_int_equal(h->type, 'H');
        assert_int_equal(h->stock_locate, i + 1);
        assert_memory_equal(h->trading_action.stock, m[1 + i].stock_directory.stock, 8);
        assert_int_equal(h->trading_action.trading_state, 'T');
    }
    assert_int_equal(m[2 * n + 2].type, 'S');
    assert_int_equal(m[2 * n + 2].system_event.event_code, 'Q');
    for (size_t i = 2 * n + 3; i < d.n - 3; i++)
        assert_true(m[i].type != 'S' && m[i].type != 'R' && m[i].type != 'H');
    assert_int_equal(m[d.n - 3].system_event.event_code, 'M');
    assert_int_equal(m[d.n - 2].system_event.event_code, 'E');
    assert_int_equal(m[d.n - 1].system_event.event_code, 'C');
    for (size_t i = d.n - 3; i < d.n; i++) {
        assert_int_equal(m[i].type, 'S');
        assert_int_equal(m[i].stock_locate, 0);
    }
    free(d.msgs);
    free(s.buf);
}

static void test_timestamps_never_decrease_and_flow_stays_in_market_hours(void **state)
{
    (void)state;
    const uint32_t n = 40;
    sink_t s = gen_itch_to_memory(n, 200000, 11);
    struct day d = decode_day(&s);
    for (size_t i = 1; i < d.n; i++)
        assert_true(d.msgs[i].timestamp >= d.msgs[i - 1].timestamp);
    for (size_t i = 2 * n + 3; i < d.n - 3; i++) {
        assert_true(d.msgs[i].timestamp >= NS_AT(9, 30));
        assert_true(d.msgs[i].timestamp < NS_AT(16, 0));
    }
    /* spread over the whole session, not bunched at its start */
    assert_true(d.msgs[d.n - 4].timestamp > NS_AT(15, 59));
    assert_true(d.msgs[(2 * n + 3 + d.n) / 2].timestamp > NS_AT(12, 30));
    assert_true(d.msgs[(2 * n + 3 + d.n) / 2].timestamp < NS_AT(13, 0));
    free(d.msgs);
    free(s.buf);
}

/* What the test knows of one order, indexed by its reference. */
struct order {
    uint32_t shares; /* live while > 0 */
    uint32_t price;
    uint16_t locate;
    char side;
    uint32_t pos; /* index in its symbol's live list */
};

/* The live orders of one symbol. */
struct book {
    uint64_t *refs;
    size_t n;
    size_t cap;
};

struct tracker {
    struct order *orders; /* by reference */
    size_t nrefs;         /* references handed out so far + 1 */
    struct book *books;   /* by stock locate */
    uint64_t next_ref;
};

static void book_insert(struct tracker *t, uint64_t ref)
{
    struct book *b = &t->books[t->orders[ref].locate];
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->refs = realloc(b->refs, b->cap * sizeof *b->refs);
        assert_non_null(b->refs);
    }
    t->orders[ref].pos = (uint32_t)b->n;
    b->refs[b->n++] = ref;
}

static void book_remove(struct tracker *t, uint64_t ref)
{
    struct book *b = &t->books[t->orders[ref].locate];
    uint32_t pos = t->orders[ref].pos;
    b->refs[pos] = b->refs[--b->n];
    t->orders[b->refs[pos]].pos = pos;
}

/* A new order must not cross the other side of its book. */
static void assert_uncrossed(const struct tracker *t, uint64_t ref)
{
    const struct order *o = &t->orders[ref];
    const struct book *b = &t->books[o->locate];
    for (size_t i = 0; i < b->n; i++) {
        const struct order *q = &t->orders[b->refs[i]];
        if (q->side == o->side)
            continue;
        if (o->side == 'B')
            assert_true(o->price < q->price);
        else
            assert_true(o->price > q->price);
    }
}

static void add_order(struct tracker *t, uint64_t ref, uint16_t locate, char side, uint32_t shares,
                      uint32_t price)
{
    assert_int_equal(ref, t->next_ref); /* fresh, and counting up */
    assert_true(ref < t->nrefs);
    t->next_ref++;
    assert_true(shares > 0);
    assert_true(price > 0);
    assert_true(side == 'B' || side == 'S');
    t->orders[ref] =
        (struct order){.shares = shares, .price = price, .locate = locate, .side = side};
    assert_uncrossed(t, ref);
    book_insert(t, ref);
}

static struct order *live_order(struct tracker *t, uint64_t ref, uint16_t locate)
{
    assert_true(ref > 0 && ref < t->next_ref);
    struct order *o = &t->orders[ref];
    assert_true(o->shares > 0);
    assert_int_equal(o->locate, locate);
    return o;
}

static void reduce(struct tracker *t, uint64_t ref, uint32_t shares)
{
    struct order *o = &t->orders[ref];
    assert_true(shares > 0 && shares <= o->shares);
    o->shares -= shares;
    if (o->shares == 0)
        book_remove(t, ref);
}

static void test_every_order_message_is_about_a_live_order_and_no_book_crosses(void **state)
{
    (void)state;
    const uint32_t n = 20;
    sink_t s = gen_itch_to_memory(n, 300000, 2024);
    struct day d = decode_day(&s);

    struct tracker t = {0};
    t.nrefs = d.n + 1;
    t.orders = calloc(t.nrefs, sizeof *t.orders);
    t.books = calloc(n + 1, sizeof *t.books);
    t.next_ref = 1;
    assert_non_null(t.orders);
    assert_non_null(t.books);

    char(*names)[ITCH_STOCK_LEN] = calloc(n + 1, ITCH_STOCK_LEN); /* by stock locate */
    assert_non_null(names);
    uint64_t last_match = 0;
    for (size_t i = 0; i < d.n; i++) {
        const itch_msg_t *m = &d.msgs[i];
        uint16_t loc = m->stock_locate;
        switch (m->type) {
        case 'R':
            memcpy(names[loc], m->stock_directory.stock, ITCH_STOCK_LEN);
            break;
        case 'A':
        case 'F':
            assert_true(loc >= 1 && loc <= n);
            assert_memory_equal(m->add.stock, names[loc], ITCH_STOCK_LEN);
            add_order(&t, m->add.order_ref, loc, m->add.side, m->add.shares, m->add.price);
            break;
        case 'D':
            live_order(&t, m->del.order_ref, loc);
            reduce(&t, m->del.order_ref, t.orders[m->del.order_ref].shares);
            break;
        case 'X': {
            struct order *o = live_order(&t, m->cancel.order_ref, loc);
            assert_true(m->cancel.shares < o->shares); /* partial: D deletes */
            reduce(&t, m->cancel.order_ref, m->cancel.shares);
            break;
        }
        case 'E':
            live_order(&t, m->executed.order_ref, loc);
            assert_true(m->executed.match > last_match);
            last_match = m->executed.match;
            reduce(&t, m->executed.order_ref, m->executed.shares);
            break;
        case 'C':
            live_order(&t, m->executed_price.order_ref, loc);
            assert_true(m->executed_price.match > last_match);
            last_match = m->executed_price.match;
            assert_true(m->executed_price.price > 0);
            reduce(&t, m->executed_price.order_ref, m->executed_price.shares);
            break;
        case 'U': {
            struct order *o = live_order(&t, m->replace.orig_ref, loc);
            char side = o->side;
            reduce(&t, m->replace.orig_ref, o->shares);
            add_order(&t, m->replace.new_ref, loc, side, m->replace.shares, m->replace.price);
            break;
        }
        case 'P':
            assert_int_equal(m->trade.order_ref, 0);
            assert_memory_equal(m->trade.stock, names[loc], ITCH_STOCK_LEN);
            assert_true(m->trade.match > last_match);
            last_match = m->trade.match;
            break;
        default:
            assert_true(m->type == 'S' || m->type == 'H');
            break;
        }
    }
    for (uint32_t i = 0; i <= n; i++)
        free(t.books[i].refs);
    free(names);
    free(t.books);
    free(t.orders);
    free(d.msgs);
    free(s.buf);
}

static void test_order_flow_mix_is_within_a_point_of_the_target(void **state)
{
    (void)state;
    const uint32_t n = 100;
    const uint64_t total = 1000000;
    sink_t s = gen_itch_to_memory(n, total, 77);
    struct day d = decode_day(&s);
    uint64_t count[256] = {0};
    for (size_t i = 2 * n + 3; i < d.n - 3; i++)
        count[d.msgs[i].type]++;
    double flow = (double)(total - GEN_ITCH_FIXED(n));
    static const struct {
        char type;
        double percent;
    } target[] = {
        {'A', 44}, {'D', 43}, {'U', 7}, {'E', 3}, {'X', 2}, {'P', 0.5}, {'F', 0.3}, {'C', 0.2},
    };
    uint64_t seen = 0;
    for (size_t i = 0; i < sizeof target / sizeof target[0]; i++) {
        double got = 100.0 * (double)count[(unsigned char)target[i].type] / flow;
        if (got < target[i].percent - 1 || got > target[i].percent + 1)
            print_error("%c: %.2f%%, target %.2f%%\n", target[i].type, got, target[i].percent);
        assert_true(got >= target[i].percent - 1 && got <= target[i].percent + 1);
        assert_true(count[(unsigned char)target[i].type] > 0);
        seen += count[(unsigned char)target[i].type];
    }
    assert_int_equal(seen, total - GEN_ITCH_FIXED(n)); /* nothing else in the flow */
    free(d.msgs);
    free(s.buf);
}

static void test_csv_day_is_a_comment_then_the_requested_valid_ticks(void **state)
{
    (void)state;
    const uint64_t ticks = 100000;
    sink_t s = gen_csv_to_memory(25, ticks, 3);
    csv_reader_t r;
    csv_reader_init(&r);
    csv_reader_push(&r, (const char *)s.buf, s.len);
    const char *line;
    size_t len;
    uint64_t got = 0, trades = 0, comments = 0, last_ts = 0;
    int rc;
    while ((rc = csv_reader_next(&r, &line, &len)) != 0) {
        assert_int_equal(rc, 1);
        csv_tick_t t;
        const char *reason = NULL;
        rc = csv_parse_line(line, len, &t, &reason);
        if (rc == 0) {
            assert_int_equal(r.line_no, 1);
            comments++;
            continue;
        }
        assert_int_equal(rc, 1);
        got++;
        assert_true(t.ts_ns >= last_ts);
        assert_true(t.ts_ns >= NS_AT(9, 30) && t.ts_ns < NS_AT(16, 0));
        last_ts = t.ts_ns;
        if (t.kind == CSV_TRADE) {
            trades++;
            assert_true(t.trade.price > 0);
        } else {
            assert_true(t.quote.bid > 0);
            assert_true(t.quote.bid < t.quote.ask);
            assert_true(t.quote.bid_size > 0 && t.quote.ask_size > 0);
        }
    }
    assert_int_equal(csv_reader_finish(&r, &line, &len), 0); /* ends with a newline */
    assert_int_equal(comments, 1);
    assert_int_equal(got, ticks);
    assert_true(trades > ticks * 17 / 100 && trades < ticks * 23 / 100);
    free(s.buf);
}

static void test_invalid_options_are_refused(void **state)
{
    (void)state;
    sink_t s = {0};
    gen_opts_t o = {.symbols = 0, .messages = 1000, .seed = 1};
    assert_int_equal(gen_itch(&o, sink_write, &s), -EINVAL);
    assert_int_equal(gen_csv(&o, sink_write, &s), -EINVAL);
    o.symbols = GEN_SYMBOLS_MAX + 1;
    assert_int_equal(gen_itch(&o, sink_write, &s), -EINVAL);
    assert_int_equal(gen_csv(&o, sink_write, &s), -EINVAL);
    o.symbols = 10;
    o.messages = GEN_ITCH_FIXED(10) - 1;
    assert_int_equal(gen_itch(&o, sink_write, &s), -EINVAL);
    assert_int_equal(s.len, 0);
}

static int failing_write(void *ctx, const void *buf, size_t len)
{
    (void)buf;
    (void)len;
    int *calls = ctx;
    return ++*calls == 2 ? -ENOSPC : 0;
}

static void test_write_error_stops_the_generator_and_is_returned(void **state)
{
    (void)state;
    gen_opts_t o = {.symbols = 10, .messages = 1000000, .seed = 1};
    int calls = 0;
    assert_int_equal(gen_itch(&o, failing_write, &calls), -ENOSPC);
    assert_int_equal(calls, 2);
    calls = 0;
    assert_int_equal(gen_csv(&o, failing_write, &calls), -ENOSPC);
    assert_int_equal(calls, 2);
}

static void test_stdio_writer_gives_the_same_bytes_as_memory(void **state)
{
    (void)state;
    gen_opts_t o = {.symbols = 10, .messages = 50000, .seed = 9};
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(gen_itch(&o, gen_write_stdio, f), 0);
    sink_t s = gen_itch_to_memory(10, 50000, 9);
    assert_int_equal(ftell(f), (long)s.len);
    rewind(f);
    uint8_t *back = malloc(s.len);
    assert_non_null(back);
    assert_int_equal(fread(back, 1, s.len, f), s.len);
    assert_memory_equal(back, s.buf, s.len);
    free(back);
    free(s.buf);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_gives_byte_identical_itch),
        cmocka_unit_test(test_different_seed_gives_different_itch),
        cmocka_unit_test(test_same_seed_gives_byte_identical_csv_and_another_seed_differs),
        cmocka_unit_test(test_itch_day_has_exactly_the_requested_messages_and_all_decode),
        cmocka_unit_test(test_itch_day_opens_lists_every_symbol_and_closes_in_order),
        cmocka_unit_test(test_timestamps_never_decrease_and_flow_stays_in_market_hours),
        cmocka_unit_test(test_every_order_message_is_about_a_live_order_and_no_book_crosses),
        cmocka_unit_test(test_order_flow_mix_is_within_a_point_of_the_target),
        cmocka_unit_test(test_csv_day_is_a_comment_then_the_requested_valid_ticks),
        cmocka_unit_test(test_invalid_options_are_refused),
        cmocka_unit_test(test_write_error_stops_the_generator_and_is_returned),
        cmocka_unit_test(test_stdio_writer_gives_the_same_bytes_as_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_market.c - the market: books, ticks from ITCH messages, the
 * last-value cache, orders taken back from one source, and the end of the
 * day (every object reclaimed).
 *
 * The generated-day tests keep their own model of the book: every live
 * order in an array indexed by reference (the generator numbers orders from
 * 1), with levels recomputed from scratch by sorting, and compare it with
 * the market's books level by level.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/object.h"
#include "feed/binfile.h"
#include "feed/book.h"
#include "feed/gen.h"
#include "feed/itch.h"
#include "feed/market.h"
#include "tests/feed/wire.h"

/* ---- a sink that records what it is given ---- */

typedef struct seen {
    uint64_t trades, quotes;
    tick_t last; /* a copy of the last tick */
    char last_sym[SYMBOL_MAX_LEN + 1];
    uint64_t last_seq;
    int seq_in_order;
} seen_t;

static void record_tick(void *arg, tick_t *t)
{
    seen_t *s = arg;
    if (t->kind == TICK_TRADE)
        s->trades++;
    else
        s->quotes++;
    if (t->seq != s->last_seq + 1)
        s->seq_in_order = 0;
    s->last_seq = t->seq;
    s->last = *t;
    strcpy(s->last_sym, t->sym->name);
}

static heap_t *new_heap(void)
{
    heap_t *heap;
    assert_int_equal(heap_create(NULL, &heap), 0);
    assert_int_equal(obj_runtime_create(heap), 0);
    return heap;
}

static uint64_t live(heap_t *heap, const obj_type_t *type)
{
    obj_type_stats_t st;
    if (obj_type_get_stats(heap, type, &st) != 0)
        return 0;
    return st.live;
}

/* The end of a day: nothing of the market may survive one full collection. */
static void assert_day_reclaimed(heap_t *heap)
{
    gc_collect(heap, GC_NGENERATIONS - 1);
    assert_int_equal(live(heap, &order_type), 0);
    assert_int_equal(live(heap, &tick_type), 0);
    assert_int_equal(live(heap, &symbol_type), 0);
    heap_stats_t hs;
    heap_get_stats(heap, &hs);
    assert_int_equal(hs.used_bytes, 0);
    obj_runtime_destroy(heap);
    heap_destroy(heap);
}

static itch_msg_t add_msg(uint16_t locate, const char *stock, uint64_t ref, char side,
                          uint32_t shares, uint32_t price)
{
    itch_msg_t m;
    memset(&m, 0, sizeof(m));
    m.type = ITCH_ADD_ORDER;
    m.stock_locate = locate;
    m.timestamp = 34200000000000ull + ref;
    m.add.order_ref = ref;
    m.add.side = side;
    m.add.shares = shares;
    memset(m.add.stock, ' ', ITCH_STOCK_LEN);
    memcpy(m.add.stock, stock, strlen(stock));
    m.add.price = price;
    return m;
}

static itch_msg_t ref_msg(uint8_t type, uint64_t ref, uint32_t shares)
{
    itch_msg_t m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.timestamp = 34300000000000ull;
    switch (type) {
    case ITCH_ORDER_EXECUTED:
        m.executed.order_ref = ref;
        m.executed.shares = shares;
        break;
    case ITCH_ORDER_CANCEL:
        m.cancel.order_ref = ref;
        m.cancel.shares = shares;
        break;
    case ITCH_ORDER_DELETE:
        m.del.order_ref = ref;
        break;
    default:
        fail_msg("ref_msg: type %c", type);
    }
    return m;
}

static void assert_bbo(market_t *m, const char *name, int64_t bid, uint32_t bsz, int64_t ask,
                       uint32_t asz)
{
    symbol_t *s = market_find(m, name, strlen(name));
    assert_non_null(s);
    int64_t b, a;
    uint32_t bs, as;
    market_bbo(s, &b, &bs, &a, &as);
    assert_int_equal(b, bid);
    assert_int_equal(bs, bsz);
    assert_int_equal(a, ask);
    assert_int_equal(as, asz);
}

static void adds_build_levels_and_quote_only_when_the_top_changes(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    seen_t seen = {.seq_in_order = 1};
    market_t *m;
    assert_int_equal(market_create(heap, 0, record_tick, &seen, &m), 0);

    itch_msg_t msg = add_msg(7, "AAPL", 1, 'B', 100, 1000000);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_int_equal(seen.quotes, 1);
    assert_bbo(m, "AAPL", 1000000, 100, 0, 0);

    msg = add_msg(7, "AAPL", 2, 'B', 50, 999900); /* below the best bid: no quote */
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_int_equal(seen.quotes, 1);

    msg = add_msg(7, "AAPL", 3, 'B', 25, 1000000); /* joins the best: size changes */
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_int_equal(seen.quotes, 2);
    assert_bbo(m, "AAPL", 1000000, 125, 0, 0);

    msg = add_msg(7, "AAPL", 4, 'S', 10, 1000500);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_int_equal(seen.quotes, 3);
    assert_bbo(m, "AAPL", 1000000, 125, 1000500, 10);
    assert_string_equal(seen.last_sym, "AAPL");
    assert_int_equal(seen.last.kind, TICK_QUOTE);
    assert_int_equal(seen.last.ask, 1000500);
    assert_int_equal(seen.last.ts_exch, 34200000000000LL + 4);

    symbol_t *s = market_find(m, "AAPL", 4);
    assert_int_equal(s->locate, 7);
    assert_int_equal(s->last_quote->seq, seen.last_seq);
    assert_int_equal(market_stats(m)->orders_live, 4);
    assert_int_equal(live(heap, &order_type), 4);
    /* Only the latest quote is kept: the last-value cache released the rest. */
    assert_int_equal(live(heap, &tick_type), 1);
    assert_true(seen.seq_in_order);

    market_destroy(m);
    assert_day_reclaimed(heap);
}

static void executions_print_trades_at_the_resting_price_from_the_aggressor(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    seen_t seen = {.seq_in_order = 1};
    market_t *m;
    assert_int_equal(market_create(heap, 0, record_tick, &seen, &m), 0);
    itch_msg_t msg = add_msg(1, "MSFT", 10, 'S', 300, 4200000);
    assert_int_equal(market_itch(m, &msg, 1), 0);

    msg = ref_msg(ITCH_ORDER_EXECUTED, 10, 100);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_int_equal(seen.trades, 1);
    symbol_t *s = market_find(m, "MSFT", 4);
    assert_int_equal(s->last_trade->price, 4200000);
    assert_int_equal(s->last_trade->size, 100);
    assert_int_equal(s->last_trade->side, 'B'); /* a buyer took the resting offer */
    assert_bbo(m, "MSFT", 0, 0, 4200000, 200);

    /* C at another price, printable. */
    memset(&msg, 0, sizeof(msg));
    msg.type = ITCH_ORDER_EXECUTED_PRICE;
    msg.executed_price.order_ref = 10;
    msg.executed_price.shares = 50;
    msg.executed_price.printable = 'Y';
    msg.executed_price.price = 4199000;
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_int_equal(seen.trades, 2);
    assert_int_equal(s->last_trade->price, 4199000);
    /* Non-printable: the book changes, no trade prints. */
    msg.executed_price.printable = 'N';
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_int_equal(seen.trades, 2);
    assert_bbo(m, "MSFT", 0, 0, 4200000, 100);

    /* Executing more than is left takes what is left and removes the order. */
    msg = ref_msg(ITCH_ORDER_EXECUTED, 10, 1000);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_int_equal(s->last_trade->size, 100);
    assert_null(market_order(m, 10));
    assert_bbo(m, "MSFT", 0, 0, 0, 0);
    assert_int_equal(seen.last.kind, TICK_QUOTE); /* the offer side emptied */

    market_destroy(m);
    assert_day_reclaimed(heap);
}

static void cancel_delete_and_replace_move_the_book(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    market_t *m;
    assert_int_equal(market_create(heap, 0, NULL, NULL, &m), 0);
    itch_msg_t msg = add_msg(3, "IBM", 1, 'B', 500, 1500000);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    msg = add_msg(3, "IBM", 2, 'B', 100, 1490000);
    assert_int_equal(market_itch(m, &msg, 1), 0);

    msg = ref_msg(ITCH_ORDER_CANCEL, 1, 200);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_bbo(m, "IBM", 1500000, 300, 0, 0);
    assert_int_equal(market_order(m, 1)->shares, 300);

    memset(&msg, 0, sizeof(msg));
    msg.type = ITCH_ORDER_REPLACE;
    msg.replace.orig_ref = 1;
    msg.replace.new_ref = 5;
    msg.replace.shares = 50;
    msg.replace.price = 1510000;
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_null(market_order(m, 1));
    order_t *o = market_order(m, 5);
    assert_non_null(o);
    assert_int_equal(o->side, 'B'); /* a replacement keeps the side */
    assert_bbo(m, "IBM", 1510000, 50, 0, 0);

    msg = ref_msg(ITCH_ORDER_DELETE, 5, 0);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_bbo(m, "IBM", 1490000, 100, 0, 0);

    /* References to orders that are not in the book change nothing. */
    msg = ref_msg(ITCH_ORDER_DELETE, 99, 0);
    assert_int_equal(market_itch(m, &msg, 1), -ENOENT);
    msg = ref_msg(ITCH_ORDER_EXECUTED, 1, 10);
    assert_int_equal(market_itch(m, &msg, 1), -ENOENT);
    assert_int_equal(market_stats(m)->unknown_orders, 2);
    /* A live reference added again is refused. */
    msg = add_msg(3, "IBM", 2, 'S', 10, 1600000);
    assert_int_equal(market_itch(m, &msg, 1), -EEXIST);
    assert_bbo(m, "IBM", 1490000, 100, 0, 0);

    market_destroy(m);
    assert_day_reclaimed(heap);
}

/* Reference 0 marks an empty slot of the order table: a message naming it
 * must be an unknown order, not a match with an empty slot (found by
 * fuzz_itch: it dereferenced a NULL order). */
static void withdrawing_a_source_takes_back_only_its_orders_and_quotes_the_change(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    seen_t seen = {.seq_in_order = 1};
    market_t *m;
    assert_int_equal(market_create(heap, 0, record_tick, &seen, &m), 0);
    itch_msg_t msg;
    /* Source 1 (a looping replay) has enough orders to grow the table, so
     * the walk meets probe runs that clearing slots moves back. */
    market_set_source(m, 1);
    for (uint64_t ref = 1; ref <= 100000; ref++) {
        msg = add_msg(7, "AAPL", ref, ref % 2 ? 'B' : 'S', 10,
                      ref % 2 ? 1000000 - (uint32_t)(ref % 50) : 1000100 + (uint32_t)(ref % 50));
        assert_int_equal(market_itch(m, &msg, 1), 0);
    }
    market_set_source(m, 2); /* another feed's orders, on the same symbol and another */
    msg = add_msg(7, "AAPL", 200001, 'B', 5, 900000);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    msg = add_msg(8, "MSFT", 200002, 'S', 7, 2000000);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    uint64_t quotes = seen.quotes;

    assert_int_equal(market_withdraw(m, 1, 99, 100), 100000);
    assert_int_equal(market_stats(m)->orders_live, 2);
    assert_int_equal(live(heap, &order_type), 2);
    assert_bbo(m, "AAPL", 900000, 5, 0, 0);
    assert_bbo(m, "MSFT", 0, 0, 2000000, 7);
    assert_true(seen.quotes > quotes);
    assert_string_equal(seen.last_sym, "AAPL");
    assert_int_equal(seen.last.ts_exch, 99);
    assert_int_equal(seen.last.ts_recv, 100);
    assert_true(seen.seq_in_order);

    /* The same references can be added again, and withdrawn again. */
    market_set_source(m, 1);
    msg = add_msg(7, "AAPL", 1, 'B', 10, 1000000);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    assert_int_equal(market_stats(m)->rejected, 0);
    assert_int_equal(market_withdraw(m, 1, 0, 0), 1);
    assert_int_equal(market_withdraw(m, 1, 0, 0), 0);
    assert_int_equal(market_stats(m)->orders_live, 2);

    market_destroy(m);
    assert_day_reclaimed(heap);
}

static void order_reference_zero_is_an_unknown_order(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    market_t *m;
    assert_int_equal(market_create(heap, 0, NULL, NULL, &m), 0);
    itch_msg_t msg = add_msg(1, "ZERO", 1, 'B', 10, 10000);
    assert_int_equal(market_itch(m, &msg, 1), 0);
    static const uint8_t types[] = {ITCH_ORDER_EXECUTED, ITCH_ORDER_CANCEL, ITCH_ORDER_DELETE};
    for (size_t i = 0; i < sizeof(types); i++) {
        msg = ref_msg(types[i], 0, 5);
        assert_int_equal(market_itch(m, &msg, 1), -ENOENT);
    }
    memset(&msg, 0, sizeof(msg));
    msg.type = ITCH_ORDER_EXECUTED_PRICE;
    assert_int_equal(market_itch(m, &msg, 1), -ENOENT);
    msg.type = ITCH_ORDER_REPLACE;
    msg.replace.new_ref = 2;
    msg.replace.shares = 1;
    assert_int_equal(market_itch(m, &msg, 1), -ENOENT);
    assert_int_equal(market_stats(m)->unknown_orders, 5);
    assert_bbo(m, "ZERO", 10000, 10, 0, 0);
    market_destroy(m);
    assert_day_reclaimed(heap);
}

static void direct_trades_and_quotes_fill_the_last_value_cache(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    seen_t seen = {.seq_in_order = 1};
    market_t *m;
    assert_int_equal(market_create(heap, 0, record_tick, &seen, &m), 0);
    assert_int_equal(market_trade(m, "SPY", 3, 4512500, 10, 'B', 0, 5, 6), 0);
    assert_int_equal(market_quote(m, "SPY", 3, 4512400, 100, 4512600, 200, 0, 7, 8), 0);
    assert_int_equal(market_trade(m, "SPY", 3, 4512600, 20, 'S', 0, 9, 10), 0);
    symbol_t *s = market_find(m, "SPY", 3);
    assert_int_equal(s->last_trade->price, 4512600);
    assert_int_equal(s->last_trade->seq, 3);
    assert_int_equal(s->last_quote->ask_size, 200);
    assert_int_equal(live(heap, &tick_type), 2);
    /* A recorded sequence number is kept, and later ones continue after it. */
    assert_int_equal(market_trade(m, "SPY", 3, 1, 1, 0, 100, 0, 0), 0);
    assert_int_equal(market_trade(m, "SPY", 3, 1, 1, 0, 0, 0, 0), 0);
    assert_int_equal(s->last_trade->seq, 101);
    /* Bad symbols are refused and counted. */
    assert_int_equal(market_trade(m, "spy", 3, 1, 1, 0, 0, 0, 0), -EINVAL);
    assert_int_equal(market_trade(m, "TOOLONGSYM", 10, 1, 1, 0, 0, 0, 0), -EINVAL);
    assert_int_equal(market_quote(m, "", 0, 1, 1, 1, 1, 0, 0, 0), -EINVAL);
    assert_int_equal(market_stats(m)->rejected, 3);
    market_destroy(m);
    assert_day_reclaimed(heap);
}

/* PUBLISH may make at most limit new symbols a day: known symbols, whoever
 * made them, pass; the limit-th new one and those after it are refused, and
 * nothing is interned for them. */
static void published_symbols_stop_at_the_days_limit(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    market_t *m;
    assert_int_equal(market_create(heap, 0, NULL, NULL, &m), 0);
    assert_int_equal(market_trade(m, "FEED", 4, 1, 1, 'B', 0, 1, 1), 0);
    assert_int_equal(market_published_symbol(m, "FEED", 4, 2, NULL), 0);
    assert_int_equal(market_published_symbol(m, "PUB1", 4, 2, NULL), 0);
    assert_int_equal(market_published_symbol(m, "PUB1", 4, 2, NULL), 0);
    assert_int_equal(market_published_symbol(m, "PUB2", 4, 2, NULL), 0);
    assert_int_equal(market_published_symbol(m, "PUB3", 4, 2, NULL), -ENOSPC);
    assert_null(market_find(m, "PUB3", 4));
    assert_int_equal(market_published_symbol(m, "PUB2", 4, 2, NULL), 0);
    assert_int_equal(market_published_symbol(m, "bad", 3, 2, NULL), -EINVAL);
    assert_int_equal(market_published_symbol(m, "NONE", 4, 0, NULL), -ENOSPC);
    assert_int_equal(market_stats(m)->symbols, 3);
    assert_int_equal(market_stats(m)->published_symbols, 2);
    market_destroy(m);
    assert_day_reclaimed(heap);

    /* A new day counts from zero. */
    heap = new_heap();
    assert_int_equal(market_create(heap, 0, NULL, NULL, &m), 0);
    assert_int_equal(market_published_symbol(m, "PUB3", 4, 2, NULL), 0);
    market_destroy(m);
    assert_day_reclaimed(heap);
}

/* A PUBLISH finds its symbol once: market_published_symbol() hands it out,
 * and market_symbol_trade()/market_symbol_quote() make ticks on it that the
 * symbol keeps as its last values, with the market's next sequence numbers. */
static void a_published_symbol_takes_its_ticks_without_a_second_lookup(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    market_t *m;
    symbol_t *sym = NULL, *again = NULL;
    assert_int_equal(market_create(heap, 0, NULL, NULL, &m), 0);
    assert_int_equal(market_published_symbol(m, "PUB", 3, 10, &sym), 0);
    assert_non_null(sym);
    assert_ptr_equal(sym, market_find(m, "PUB", 3));
    assert_int_equal(market_published_symbol(m, "PUB", 3, 10, &again), 0);
    assert_ptr_equal(again, sym);
    assert_int_equal(market_symbol_trade(m, sym, 1012500, 300, 'S', 0, 5, 6), 0);
    assert_int_equal(market_symbol_quote(m, sym, 1012400, 100, 1012600, 200, 0, 7, 8), 0);
    assert_non_null(sym->last_trade);
    assert_int_equal(sym->last_trade->price, 1012500);
    assert_int_equal(sym->last_trade->size, 300);
    assert_int_equal(sym->last_trade->side, 'S');
    assert_int_equal(sym->last_trade->seq, 1);
    assert_non_null(sym->last_quote);
    assert_int_equal(sym->last_quote->ask, 1012600);
    assert_int_equal(sym->last_quote->ask_size, 200);
    assert_int_equal(sym->last_quote->seq, 2);
    assert_int_equal(market_stats(m)->published_symbols, 1);
    market_destroy(m);
    assert_day_reclaimed(heap);
}

/* market_find() finds only the name interned: not an invalid name, not one
 * of another length whose padded bytes are the same ("AB" and "AB\0"), not
 * one too long or empty. */
static void find_misses_every_name_but_the_one_interned(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    market_t *m;
    assert_int_equal(market_create(heap, 0, NULL, NULL, &m), 0);
    symbol_t *ab = market_symbol(m, "AB", 2);
    assert_non_null(ab);
    assert_ptr_equal(market_find(m, "AB", 2), ab);
    assert_null(market_find(m, "AB\0", 3));
    assert_null(market_find(m, "ab", 2));
    assert_null(market_find(m, "A", 1));
    assert_null(market_find(m, "", 0));
    assert_null(market_find(m, "ABCDEFGHI", 9));
    assert_null(market_symbol(m, "AB\0", 3)); /* invalid: not interned either */
    assert_int_equal(market_stats(m)->symbols, 1);
    market_destroy(m);
    assert_day_reclaimed(heap);
}

static int count_symbol(symbol_t *sym, void *arg)
{
    (void)sym;
    (*(int *)arg)++;
    return 0;
}

/* A walk in steps sees every symbol; one whose table grew in between
 * starts again, seeing some twice and none missed. */
static void a_walk_in_steps_sees_every_symbol(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    market_t *m;
    char name[8];
    assert_int_equal(market_create(heap, 0, NULL, NULL, &m), 0);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "S%d", i);
        assert_non_null(market_symbol(m, name, strlen(name)));
    }
    size_t cursor = 0;
    uint32_t generation = 0;
    int seen = 0, steps = 0;
    while (cursor != SIZE_MAX) {
        assert_int_equal(market_foreach_step(m, &cursor, &generation, 100, count_symbol, &seen), 0);
        steps++;
    }
    assert_int_equal(seen, 300);
    assert_true(steps > 1);

    cursor = 0;
    generation = 0;
    seen = 0;
    assert_int_equal(market_foreach_step(m, &cursor, &generation, 100, count_symbol, &seen), 0);
    int before = seen;
    for (int i = 300; i < 2000; i++) { /* the table grows */
        snprintf(name, sizeof name, "S%d", i);
        assert_non_null(market_symbol(m, name, strlen(name)));
    }
    while (cursor != SIZE_MAX)
        market_foreach_step(m, &cursor, &generation, 100, count_symbol, &seen);
    assert_int_equal(seen - before, 2000);
    market_destroy(m);
    assert_day_reclaimed(heap);
}

/* The collector tracks the symbols and no tick: a tick costs it nothing,
 * however many the day makes, and the symbol answers for its last values. */
static void the_collector_tracks_symbols_and_no_tick(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    market_t *m;
    assert_int_equal(market_create(heap, 0, NULL, NULL, &m), 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(market_trade(m, i % 2 ? "SPY" : "QQQ", 3, 4512500 + i, 10, 'B', 0, i, i),
                         0);
        assert_int_equal(market_quote(m, "SPY", 3, 4512400, 100 + i, 4512600, 200, 0, i, i), 0);
    }
    assert_int_equal(live(heap, &tick_type), 3);
    gc_stats_t gs;
    gc_get_stats(heap, &gs);
    uint64_t tracked = 0;
    for (int g = 0; g < GC_NGENERATIONS; g++)
        tracked += gs.generations[g].tracked;
    assert_int_equal(tracked, 2);
    assert_false(gc_is_tracked(&market_find(m, "SPY", 3)->last_quote->ob));
    market_destroy(m);
    assert_day_reclaimed(heap);
}

/* Takes a reference to the first tick it is given and keeps it. */
static void keep_first_tick(void *arg, tick_t *t)
{
    tick_t **kept = arg;
    if (*kept == NULL) {
        obj_incref(&t->ob);
        *kept = t;
    }
}

/* A last value that a sink holds too keeps its symbol (and so the other
 * last value) through a collection after the market is gone; once the sink
 * lets go, the next collection reclaims the cycle. */
static void a_last_value_held_by_a_sink_keeps_its_symbol_until_let_go(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    market_t *m;
    tick_t *kept = NULL;
    assert_int_equal(market_create(heap, 0, keep_first_tick, &kept, &m), 0);
    assert_int_equal(market_trade(m, "SPY", 3, 4512500, 10, 'B', 0, 5, 6), 0);
    assert_int_equal(market_quote(m, "SPY", 3, 4512400, 100, 4512600, 200, 0, 7, 8), 0);
    assert_non_null(kept);
    market_destroy(m);
    gc_collect(heap, GC_NGENERATIONS - 1);
    assert_int_equal(live(heap, &symbol_type), 1);
    assert_int_equal(live(heap, &tick_type), 2);
    assert_string_equal(kept->sym->name, "SPY");
    assert_int_equal(kept->sym->last_quote->ask_size, 200);
    obj_decref(heap, &kept->ob);
    assert_int_equal(live(heap, &symbol_type), 1);
    assert_day_reclaimed(heap);
}

/* A sink that keeps a reference to the ticks it is given while asked to. */
typedef struct keeper {
    int keep;
    tick_t *kept;
} keeper_t;

static void keep_when_asked(void *arg, tick_t *t)
{
    keeper_t *k = arg;
    if (k->keep) {
        obj_incref(&t->ob);
        k->kept = t;
    }
}

static obj_type_stats_t tick_stats(heap_t *heap)
{
    obj_type_stats_t st;
    assert_int_equal(obj_type_get_stats(heap, &tick_type, &st), 0);
    return st;
}

/* A last value that nothing but its symbol holds is made the tick that
 * replaces it, in place, and counted as one tick destroyed and one created;
 * a last value a sink holds is left as the sink saw it, and the next tick is
 * a new object. */
static void a_last_value_only_its_symbol_holds_is_renewed_in_place_and_counted(void **state)
{
    (void)state;
    heap_t *heap = new_heap();
    market_t *m;
    keeper_t k = {0, NULL};
    assert_int_equal(market_create(heap, 0, keep_when_asked, &k, &m), 0);
    assert_int_equal(market_quote(m, "SPY", 3, 4512400, 100, 4512600, 200, 0, 1, 2), 0);
    symbol_t *s = market_find(m, "SPY", 3);
    tick_t *first = s->last_quote;

    assert_int_equal(market_quote(m, "SPY", 3, 4512300, 300, 4512700, 400, 0, 3, 4), 0);
    assert_ptr_equal(s->last_quote, first);
    assert_int_equal(first->price, 4512300);
    assert_int_equal(first->ask_size, 400);
    assert_int_equal(first->seq, 2);
    assert_int_equal(first->ts_exch, 3);
    assert_int_equal(first->ob.refcnt, 1);
    obj_type_stats_t st = tick_stats(heap);
    assert_int_equal(st.created, 2);
    assert_int_equal(st.destroyed, 1);
    assert_int_equal(st.live, 1);

    k.keep = 1; /* the sink holds the third quote: it must stay as it was */
    assert_int_equal(market_quote(m, "SPY", 3, 4512200, 500, 4512800, 600, 0, 5, 6), 0);
    k.keep = 0;
    tick_t *kept = k.kept;
    assert_int_equal(kept->ob.refcnt, 2);
    assert_int_equal(market_quote(m, "SPY", 3, 4512100, 700, 4512900, 800, 0, 7, 8), 0);
    assert_ptr_not_equal(s->last_quote, kept);
    assert_int_equal(s->last_quote->price, 4512100);
    assert_int_equal(kept->price, 4512200);
    assert_int_equal(kept->ask_size, 600);
    assert_int_equal(kept->seq, 3);
    assert_int_equal(kept->ob.refcnt, 1);
    st = tick_stats(heap);
    assert_int_equal(st.created, 4);
    assert_int_equal(st.destroyed, 2);
    assert_int_equal(st.live, 2);
    obj_decref(heap, &kept->ob);
    assert_int_equal(tick_stats(heap).live, 1);

    assert_int_equal(market_trade(m, "SPY", 3, 4512500, 10, 'B', 0, 9, 10), 0);
    tick_t *trade = s->last_trade;
    assert_int_equal(market_trade(m, "SPY", 3, 4512600, 20, 'S', 0, 11, 12), 0);
    assert_ptr_equal(s->last_trade, trade);
    assert_int_equal(trade->size, 20);
    assert_int_equal(trade->side, 'S');
    st = tick_stats(heap);
    assert_int_equal(st.created, 6);
    assert_int_equal(st.live, 2);
    market_destroy(m);
    assert_day_reclaimed(heap);
}

/* ---- one test per row of market.c's table, from bytes built by hand ---- */

#define ROW_TS 34200000000000ull /* 09:30 */

/* A day on its own heap whose ticks are recorded; `seen` lives in the row. */
typedef struct row {
    heap_t *heap;
    market_t *m;
    seen_t seen;
} row_t;

static void row_open(row_t *r)
{
    r->heap = new_heap();
    memset(&r->seen, 0, sizeof(r->seen));
    r->seen.seq_in_order = 1;
    assert_int_equal(market_create(r->heap, 0, record_tick, &r->seen, &r->m), 0);
}

static void row_close(row_t *r)
{
    assert_true(r->seen.seq_in_order);
    market_destroy(r->m);
    assert_day_reclaimed(r->heap);
}

/* The header every ITCH message starts with: type, stock locate, tracking
 * number, 6-byte timestamp. */
static void wire_header(struct wire *w, char type, uint16_t locate, uint64_t ts)
{
    w->n = 0;
    wire_char(w, type);
    wire_uint(w, locate, 2);
    wire_uint(w, 0, 2);
    wire_uint(w, ts, 6);
}

/* Applies w from its bytes, as the ingest does; returns what
 * market_itch_raw() returned. */
static int row_apply(row_t *r, const struct wire *w)
{
    return market_itch_raw(r->m, w->b, w->n, 1);
}

static void wire_add(struct wire *w, char type, uint16_t locate, uint64_t ref, char side,
                     uint32_t shares, const char *stock, uint32_t price)
{
    wire_header(w, type, locate, ROW_TS + ref);
    wire_uint(w, ref, 8);
    wire_char(w, side);
    wire_uint(w, shares, 4);
    wire_alpha(w, stock, 8);
    wire_uint(w, price, 4);
    if (type == ITCH_ADD_ORDER_MPID)
        wire_alpha(w, "VIRT", 4);
}

static void row_add(row_t *r, uint64_t ref, char side, uint32_t shares, uint32_t price)
{
    struct wire w;
    wire_add(&w, ITCH_ADD_ORDER, 9, ref, side, shares, "ROW", price);
    assert_int_equal(row_apply(r, &w), 0);
}

static void row_A_adds_a_displayed_order_on_its_side_and_quotes_the_new_top(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    struct wire w;
    wire_add(&w, ITCH_ADD_ORDER, 9, 1, 'S', 300, "ROW", 1000100);
    assert_int_equal(row_apply(&r, &w), 0);
    assert_int_equal(r.seen.quotes, 1);
    assert_int_equal(r.seen.trades, 0);
    assert_int_equal(r.seen.last.ask, 1000100);
    assert_int_equal(r.seen.last.ask_size, 300);
    assert_int_equal(r.seen.last.ts_exch, (int64_t)ROW_TS + 1);
    order_t *o = market_order(r.m, 1);
    assert_non_null(o);
    assert_int_equal(o->side, 'S');
    assert_int_equal(o->shares, 300);
    assert_string_equal(o->sym->name, "ROW");
    assert_int_equal(o->sym->locate, 9);
    /* A live reference again is refused and changes nothing. */
    wire_add(&w, ITCH_ADD_ORDER, 9, 1, 'B', 5, "ROW", 999900);
    assert_int_equal(row_apply(&r, &w), -EEXIST);
    assert_int_equal(market_stats(r.m)->rejected, 1);
    assert_bbo(r.m, "ROW", 0, 0, 1000100, 300);
    row_close(&r);
}

static void row_F_adds_like_A_whatever_the_attribution(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    struct wire w;
    wire_add(&w, ITCH_ADD_ORDER_MPID, 9, 2, 'B', 200, "ROW", 999900);
    assert_int_equal(row_apply(&r, &w), 0);
    assert_int_equal(r.seen.quotes, 1);
    assert_bbo(r.m, "ROW", 999900, 200, 0, 0);
    assert_int_equal(market_order(r.m, 2)->side, 'B');
    row_close(&r);
}

static void row_E_prints_at_the_resting_price_on_the_aggressor_side_and_quotes(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    row_add(&r, 1, 'B', 300, 999900);
    struct wire w;
    wire_header(&w, ITCH_ORDER_EXECUTED, 9, ROW_TS + 10);
    wire_uint(&w, 1, 8);   /* Order Reference Number */
    wire_uint(&w, 120, 4); /* Executed Shares */
    wire_uint(&w, 77, 8);  /* Match Number */
    assert_int_equal(row_apply(&r, &w), 0);
    assert_int_equal(r.seen.trades, 1);
    symbol_t *s = market_find(r.m, "ROW", 3);
    assert_int_equal(s->last_trade->price, 999900);
    assert_int_equal(s->last_trade->size, 120);
    assert_int_equal(s->last_trade->side, 'S'); /* a seller hit the resting bid */
    assert_int_equal(r.seen.last.kind, TICK_QUOTE);
    assert_bbo(r.m, "ROW", 999900, 180, 0, 0);
    row_close(&r);
}

static void row_C_prints_at_the_execution_price_only_when_printable(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    row_add(&r, 1, 'S', 300, 1000100);
    struct wire w;
    for (int i = 0; i < 2; i++) {
        wire_header(&w, ITCH_ORDER_EXECUTED_PRICE, 9, ROW_TS + 10);
        wire_uint(&w, 1, 8);                /* Order Reference Number */
        wire_uint(&w, 100, 4);              /* Executed Shares */
        wire_uint(&w, 78 + (uint64_t)i, 8); /* Match Number */
        wire_char(&w, i == 0 ? 'Y' : 'N');  /* Printable */
        wire_uint(&w, 1000000, 4);          /* Execution Price */
        assert_int_equal(row_apply(&r, &w), 0);
    }
    assert_int_equal(r.seen.trades, 1);
    symbol_t *s = market_find(r.m, "ROW", 3);
    assert_int_equal(s->last_trade->price, 1000000);
    assert_int_equal(s->last_trade->size, 100);
    assert_int_equal(s->last_trade->side, 'B');
    /* The non-printable execution still took its shares off the book. */
    assert_bbo(r.m, "ROW", 0, 0, 1000100, 100);
    row_close(&r);
}

static void row_X_takes_cancelled_shares_off_and_quotes_the_smaller_top(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    row_add(&r, 1, 'B', 300, 999900);
    struct wire w;
    wire_header(&w, ITCH_ORDER_CANCEL, 9, ROW_TS + 10);
    wire_uint(&w, 1, 8);   /* Order Reference Number */
    wire_uint(&w, 100, 4); /* Cancelled Shares */
    assert_int_equal(row_apply(&r, &w), 0);
    assert_int_equal(r.seen.quotes, 2);
    assert_int_equal(r.seen.trades, 0);
    assert_int_equal(r.seen.last.size, 200);
    assert_int_equal(market_order(r.m, 1)->shares, 200);
    row_close(&r);
}

static void row_D_removes_the_order_and_quotes_the_emptied_side(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    row_add(&r, 1, 'S', 300, 1000100);
    struct wire w;
    wire_header(&w, ITCH_ORDER_DELETE, 9, ROW_TS + 10);
    wire_uint(&w, 1, 8); /* Order Reference Number */
    assert_int_equal(row_apply(&r, &w), 0);
    assert_null(market_order(r.m, 1));
    assert_int_equal(r.seen.quotes, 2);
    assert_int_equal(r.seen.last.ask, 0);
    assert_int_equal(market_stats(r.m)->orders_live, 0);
    /* Deleting it again names no live order. */
    assert_int_equal(row_apply(&r, &w), -ENOENT);
    assert_int_equal(market_stats(r.m)->unknown_orders, 1);
    row_close(&r);
}

static void row_U_replaces_with_the_new_reference_keeping_side_and_stock(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    row_add(&r, 1, 'B', 300, 999900);
    struct wire w;
    wire_header(&w, ITCH_ORDER_REPLACE, 9, ROW_TS + 10);
    wire_uint(&w, 1, 8);       /* Original Order Reference Number */
    wire_uint(&w, 2, 8);       /* New Order Reference Number */
    wire_uint(&w, 150, 4);     /* Shares */
    wire_uint(&w, 1000000, 4); /* Price */
    assert_int_equal(row_apply(&r, &w), 0);
    assert_null(market_order(r.m, 1));
    order_t *o = market_order(r.m, 2);
    assert_non_null(o);
    assert_int_equal(o->side, 'B');
    assert_string_equal(o->sym->name, "ROW");
    assert_int_equal(o->price, 1000000);
    assert_int_equal(o->shares, 150);
    assert_int_equal(r.seen.quotes, 2); /* one quote for the pair */
    assert_bbo(r.m, "ROW", 1000000, 150, 0, 0);

    /* A new reference already live is refused; the original still leaves. */
    row_add(&r, 3, 'B', 10, 999000);
    wire_header(&w, ITCH_ORDER_REPLACE, 9, ROW_TS + 20);
    wire_uint(&w, 3, 8);
    wire_uint(&w, 2, 8); /* live */
    wire_uint(&w, 10, 4);
    wire_uint(&w, 999500, 4);
    assert_int_equal(row_apply(&r, &w), -EEXIST);
    assert_null(market_order(r.m, 3));
    assert_int_equal(market_order(r.m, 2)->shares, 150);
    assert_int_equal(market_stats(r.m)->rejected, 1);
    assert_int_equal(market_stats(r.m)->orders_live, 1);
    assert_bbo(r.m, "ROW", 1000000, 150, 0, 0);
    row_close(&r);
}

static void row_P_prints_a_trade_without_a_side_and_leaves_the_book(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    row_add(&r, 1, 'S', 300, 1000100);
    struct wire w;
    wire_header(&w, ITCH_TRADE, 9, ROW_TS + 10);
    wire_uint(&w, 0, 8);       /* Order Reference Number: 0 on today's feed */
    wire_char(&w, 'B');        /* Buy/Sell Indicator: always 'B' since 2014-07-14 */
    wire_uint(&w, 40, 4);      /* Shares */
    wire_alpha(&w, "ROW", 8);  /* Stock */
    wire_uint(&w, 1000050, 4); /* Price */
    wire_uint(&w, 79, 8);      /* Match Number */
    assert_int_equal(row_apply(&r, &w), 0);
    assert_int_equal(r.seen.trades, 1);
    assert_int_equal(r.seen.quotes, 1);
    symbol_t *s = market_find(r.m, "ROW", 3);
    assert_int_equal(s->last_trade->side, 0);
    assert_int_equal(s->last_trade->price, 1000050);
    assert_int_equal(s->last_trade->size, 40);
    journal_rec_t rec;
    tick_to_journal_rec(s->last_trade, &rec);
    assert_int_equal(rec.side, 0); /* the journal keeps no side either */
    assert_bbo(r.m, "ROW", 0, 0, 1000100, 300);
    row_close(&r);
}

static void row_Q_prints_a_cross_without_a_side_and_leaves_the_book(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    row_add(&r, 1, 'B', 300, 999900);
    struct wire w;
    wire_header(&w, ITCH_CROSS_TRADE, 9, ROW_TS + 10);
    wire_uint(&w, 5000, 8);   /* Shares */
    wire_alpha(&w, "ROW", 8); /* Stock */
    wire_uint(&w, 999950, 4); /* Cross Price */
    wire_uint(&w, 80, 8);     /* Match Number */
    wire_char(&w, 'O');       /* Cross Type */
    assert_int_equal(row_apply(&r, &w), 0);
    assert_int_equal(r.seen.trades, 1);
    symbol_t *s = market_find(r.m, "ROW", 3);
    assert_int_equal(s->last_trade->side, 0);
    assert_int_equal(s->last_trade->price, 999950);
    assert_int_equal(s->last_trade->size, 5000);
    assert_bbo(r.m, "ROW", 999900, 300, 0, 0);
    row_close(&r);
}

static void row_B_is_counted_and_kept_out_of_the_tick_stream(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    row_add(&r, 1, 'S', 300, 1000100);
    struct wire w;
    wire_header(&w, ITCH_ORDER_EXECUTED, 9, ROW_TS + 10);
    wire_uint(&w, 1, 8);
    wire_uint(&w, 100, 4);
    wire_uint(&w, 81, 8);
    assert_int_equal(row_apply(&r, &w), 0);
    uint64_t ticks = r.seen.trades + r.seen.quotes;

    wire_header(&w, ITCH_BROKEN_TRADE, 9, ROW_TS + 20);
    wire_uint(&w, 81, 8); /* Match Number of the execution above */
    assert_int_equal(row_apply(&r, &w), 0);
    assert_int_equal(market_stats(r.m)->broken_trades, 1);
    assert_int_equal(r.seen.trades + r.seen.quotes, ticks);
    assert_int_equal(market_stats(r.m)->trades + market_stats(r.m)->quotes, ticks);
    assert_bbo(r.m, "ROW", 0, 0, 1000100, 200);
    row_close(&r);
}

static void a_message_cut_short_changes_nothing(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    struct wire w;
    wire_add(&w, ITCH_ADD_ORDER, 9, 1, 'S', 300, "ROW", 1000100);
    assert_int_equal(market_itch_raw(r.m, w.b, w.n - 1, 1), ITCH_ETRUNCATED);
    assert_int_equal(market_itch_raw(r.m, w.b, 0, 1), ITCH_ETRUNCATED);
    assert_int_equal(market_stats(r.m)->messages, 0);
    assert_null(market_order(r.m, 1));
    assert_int_equal(r.seen.quotes, 0);
    row_close(&r);
}

static void a_prefetch_hint_reads_only_its_bytes_and_changes_nothing(void **state)
{
    (void)state;
    row_t r;
    row_open(&r);
    row_add(&r, 1, 'S', 300, 1000100);
    struct guard g;
    assert_int_equal(guard_open(&g), 0);
    struct wire w;
    wire_header(&w, ITCH_ORDER_DELETE, 9, ROW_TS + 10);
    wire_uint(&w, 1, 8);
    uint8_t junk[ITCH_MAX_LEN];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    /* Every length of a real message and of junk, flush against a page
     * that faults on a read past its end. */
    market_lookahead_t ahead = {0, NULL, NULL};
    for (size_t len = 0; len <= ITCH_MAX_LEN; len++) {
        market_prefetch(r.m, guard_place(&g, w.b, len < w.n ? len : w.n), len < w.n ? len : w.n,
                        &ahead);
        market_prefetch(r.m, guard_place(&g, junk, len), len, &ahead);
    }
    market_prefetch(r.m, NULL, 0, &ahead); /* the end of the input */
    assert_int_equal(ahead.ref, 0);
    guard_close(&g);
    assert_non_null(market_order(r.m, 1));
    assert_int_equal(market_stats(r.m)->messages, 1);
    assert_int_equal(r.seen.quotes, 1);
    row_close(&r);
}

/* ---- generated days against the reference model ---- */

typedef struct model_order {
    uint32_t shares; /* 0: not live */
    uint16_t locate;
    char side;
    int64_t price;
} model_order_t;

typedef struct model {
    model_order_t *orders; /* by reference */
    uint64_t cap;
} model_t;

static void model_apply(model_t *md, const itch_msg_t *msg)
{
    model_order_t *o;
    switch (msg->type) {
    case ITCH_ADD_ORDER:
    case ITCH_ADD_ORDER_MPID:
        assert_true(msg->add.order_ref < md->cap);
        o = &md->orders[msg->add.order_ref];
        o->shares = msg->add.shares;
        o->locate = msg->stock_locate;
        o->side = msg->add.side;
        o->price = msg->add.price;
        break;
    case ITCH_ORDER_EXECUTED:
    case ITCH_ORDER_CANCEL: {
        uint64_t ref =
            msg->type == ITCH_ORDER_EXECUTED ? msg->executed.order_ref : msg->cancel.order_ref;
        uint32_t n = msg->type == ITCH_ORDER_EXECUTED ? msg->executed.shares : msg->cancel.shares;
        o = &md->orders[ref];
        o->shares = n >= o->shares ? 0 : o->shares - n;
        break;
    }
    case ITCH_ORDER_EXECUTED_PRICE:
        o = &md->orders[msg->executed_price.order_ref];
        o->shares =
            msg->executed_price.shares >= o->shares ? 0 : o->shares - msg->executed_price.shares;
        break;
    case ITCH_ORDER_DELETE:
        md->orders[msg->del.order_ref].shares = 0;
        break;
    case ITCH_ORDER_REPLACE: {
        model_order_t old = md->orders[msg->replace.orig_ref];
        md->orders[msg->replace.orig_ref].shares = 0;
        o = &md->orders[msg->replace.new_ref];
        *o = old;
        o->shares = msg->replace.shares;
        o->price = msg->replace.price;
        break;
    }
    default:
        break;
    }
}

typedef struct agg {
    int64_t price;
    uint64_t shares;
    uint32_t orders;
} agg_t;

static int agg_cmp(const void *a, const void *b)
{
    int64_t x = ((const agg_t *)a)->price, y = ((const agg_t *)b)->price;
    return (x > y) - (x < y);
}

/* The model's levels of one side of one locate, sorted by price ascending,
 * merged per price. Returns how many. */
static size_t model_levels(const model_t *md, uint16_t locate, char side, agg_t *out)
{
    size_t n = 0;
    for (uint64_t r = 1; r < md->cap; r++) {
        const model_order_t *o = &md->orders[r];
        if (o->shares > 0 && o->locate == locate && o->side == side)
            out[n++] = (agg_t){o->price, o->shares, 1};
    }
    qsort(out, n, sizeof(*out), agg_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && out[k - 1].price == out[i].price) {
            out[k - 1].shares += out[i].shares;
            out[k - 1].orders++;
        } else {
            out[k++] = out[i];
        }
    }
    return k;
}

typedef struct check_ctx {
    const model_t *md;
    agg_t *scratch;
} check_ctx_t;

static int check_symbol(symbol_t *s, void *arg)
{
    check_ctx_t *c = arg;
    for (int side = 0; side < 2; side++) {
        const book_side_t *bs = side == 0 ? &s->book->bid : &s->book->ask;
        size_t n = model_levels(c->md, s->locate, side == 0 ? 'B' : 'S', c->scratch);
        assert_int_equal(bs->n, n);
        for (size_t i = 0; i < n; i++) {
            /* Book levels run best last: bids ascending, asks descending. */
            const book_level_t *l = &bs->levels[side == 0 ? i : n - 1 - i];
            assert_int_equal(l->price, c->scratch[i].price);
            assert_int_equal(l->shares, c->scratch[i].shares);
            assert_int_equal(l->orders, c->scratch[i].orders);
        }
        /* The last quote of the symbol shows the current top of book. */
        if (s->last_quote != NULL) {
            int64_t best = n == 0 ? 0 : c->scratch[side == 0 ? n - 1 : 0].price;
            assert_int_equal(side == 0 ? s->last_quote->price : s->last_quote->ask, best);
        }
    }
    return 0;
}

typedef struct buf {
    uint8_t *data;
    size_t len, cap;
} buf_t;

static int buf_write(void *ctx, const void *p, size_t len)
{
    buf_t *b = ctx;
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->data = realloc(b->data, b->cap);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return 0;
}

static void replay_generated_day(uint32_t symbols, uint64_t messages, uint64_t seed)
{
    buf_t day = {0};
    gen_opts_t opts = {.symbols = symbols, .messages = messages, .seed = seed};
    assert_int_equal(gen_itch(&opts, buf_write, &day), 0);

    heap_t *heap = new_heap();
    seen_t seen = {.seq_in_order = 1};
    market_t *m;
    assert_int_equal(market_create(heap, 0, record_tick, &seen, &m), 0);
    model_t md = {calloc(messages + 1, sizeof(model_order_t)), messages + 1};
    agg_t *scratch = malloc((messages + 1) * sizeof(agg_t));
    check_ctx_t ctx = {&md, scratch};

    binfile_reader_t r;
    binfile_reader_init(&r);
    binfile_reader_push(&r, day.data, day.len);
    const uint8_t *p;
    size_t len;
    uint64_t n = 0;
    while (binfile_reader_next(&r, &p, &len) == 1) {
        itch_msg_t msg;
        assert_int_equal(itch_decode(p, len, &msg), 0);
        assert_int_equal(market_itch(m, &msg, 0), 0);
        model_apply(&md, &msg);
        if (++n % (messages / 4) == 0)
            market_foreach(m, check_symbol, &ctx);
    }
    assert_int_equal(binfile_reader_finish(&r), 0);
    assert_int_equal(n, messages);
    market_foreach(m, check_symbol, &ctx);

    const market_stats_t *st = market_stats(m);
    assert_int_equal(st->messages, messages);
    assert_int_equal(st->unknown_orders, 0);
    assert_int_equal(st->rejected, 0);
    assert_true(st->trades > 0);
    assert_true(st->quotes > 0);
    assert_int_equal(seen.trades + seen.quotes, st->trades + st->quotes);
    assert_true(seen.seq_in_order);
    assert_int_equal(live(heap, &order_type), st->orders_live);
    assert_true(live(heap, &symbol_type) == symbols);

    market_destroy(m);
    assert_day_reclaimed(heap);
    free(md.orders);
    free(scratch);
    free(day.data);
}

static void generated_day_books_match_the_reference_model(void **state)
{
    (void)state;
    replay_generated_day(20, 200000, 42);
}

static void generated_day_with_many_symbols_matches_the_reference_model(void **state)
{
    (void)state;
    replay_generated_day(200, 100000, 7);
}

/* ---- the bytes path against the decoded path ---- */

typedef struct digest {
    uint64_t h, ticks;
} digest_t;

static void digest_mix(digest_t *d, uint64_t v)
{
    d->h = (d->h ^ v) * 1099511628211ull;
}

static void digest_tick(void *arg, tick_t *t)
{
    digest_t *d = arg;
    d->ticks++;
    digest_mix(d, t->kind);
    digest_mix(d, (uint8_t)t->side);
    digest_mix(d, (uint64_t)t->price);
    digest_mix(d, t->size);
    digest_mix(d, (uint64_t)t->ask);
    digest_mix(d, t->ask_size);
    digest_mix(d, t->seq);
    digest_mix(d, (uint64_t)t->ts_exch);
    for (int i = 0; i < t->sym->len; i++)
        digest_mix(d, (uint8_t)t->sym->name[i]);
}

static void bytes_framed_bytes_and_decoded_messages_make_the_same_ticks(void **state)
{
    (void)state;
    buf_t day = {0};
    gen_opts_t opts = {.symbols = 50, .messages = 200000, .seed = 5};
    assert_int_equal(gen_itch(&opts, buf_write, &day), 0);
    heap_t *heap = new_heap();
    digest_t d[3];
    market_t *m[3];
    for (int k = 0; k < 3; k++) {
        d[k] = (digest_t){1469598103934665603ull, 0};
        assert_int_equal(market_create(heap, 0, digest_tick, &d[k], &m[k]), 0);
    }
    binfile_reader_t r;
    binfile_reader_init(&r);
    binfile_reader_push(&r, day.data, day.len);
    const uint8_t *p;
    size_t len;
    while (binfile_reader_next(&r, &p, &len) == 1) {
        itch_msg_t msg;
        assert_int_equal(itch_decode(p, len, &msg), 0);
        int rc = market_itch(m[0], &msg, 7);
        assert_int_equal(market_itch_raw(m[1], p, len, 7), rc);
        assert_int_equal(market_itch_framed(m[2], p, len, 7), rc);
    }
    assert_true(d[0].ticks > 50000);
    for (int k = 1; k < 3; k++) {
        assert_int_equal(d[0].ticks, d[k].ticks);
        assert_int_equal(d[0].h, d[k].h);
        assert_memory_equal(market_stats(m[0]), market_stats(m[k]), sizeof(market_stats_t));
    }
    for (int k = 0; k < 3; k++)
        market_destroy(m[k]);
    assert_day_reclaimed(heap);
    free(day.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(adds_build_levels_and_quote_only_when_the_top_changes),
        cmocka_unit_test(executions_print_trades_at_the_resting_price_from_the_aggressor),
        cmocka_unit_test(cancel_delete_and_replace_move_the_book),
        cmocka_unit_test(order_reference_zero_is_an_unknown_order),
        cmocka_unit_test(withdrawing_a_source_takes_back_only_its_orders_and_quotes_the_change),
        cmocka_unit_test(direct_trades_and_quotes_fill_the_last_value_cache),
        cmocka_unit_test(published_symbols_stop_at_the_days_limit),
        cmocka_unit_test(a_published_symbol_takes_its_ticks_without_a_second_lookup),
        cmocka_unit_test(find_misses_every_name_but_the_one_interned),
        cmocka_unit_test(a_walk_in_steps_sees_every_symbol),
        cmocka_unit_test(the_collector_tracks_symbols_and_no_tick),
        cmocka_unit_test(a_last_value_held_by_a_sink_keeps_its_symbol_until_let_go),
        cmocka_unit_test(a_last_value_only_its_symbol_holds_is_renewed_in_place_and_counted),
        cmocka_unit_test(row_A_adds_a_displayed_order_on_its_side_and_quotes_the_new_top),
        cmocka_unit_test(row_F_adds_like_A_whatever_the_attribution),
        cmocka_unit_test(row_E_prints_at_the_resting_price_on_the_aggressor_side_and_quotes),
        cmocka_unit_test(row_C_prints_at_the_execution_price_only_when_printable),
        cmocka_unit_test(row_X_takes_cancelled_shares_off_and_quotes_the_smaller_top),
        cmocka_unit_test(row_D_removes_the_order_and_quotes_the_emptied_side),
        cmocka_unit_test(row_U_replaces_with_the_new_reference_keeping_side_and_stock),
        cmocka_unit_test(row_P_prints_a_trade_without_a_side_and_leaves_the_book),
        cmocka_unit_test(row_Q_prints_a_cross_without_a_side_and_leaves_the_book),
        cmocka_unit_test(row_B_is_counted_and_kept_out_of_the_tick_stream),
        cmocka_unit_test(a_message_cut_short_changes_nothing),
        cmocka_unit_test(a_prefetch_hint_reads_only_its_bytes_and_changes_nothing),
        cmocka_unit_test(bytes_framed_bytes_and_decoded_messages_make_the_same_ticks),
        cmocka_unit_test(generated_day_books_match_the_reference_model),
        cmocka_unit_test(generated_day_with_many_symbols_matches_the_reference_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_bars.c - the bar builder: exact bars from known trade sequences,
 * what closes a bar (a later trade, the clock, the timer, the day's roll),
 * empty intervals, VWAP rounding, late trades, interval names, trades given
 * by the market's symbol, and a heap left empty.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/object.h"
#include "feed/bars.h"

#define S   1000000000ll
#define MIN (60 * S)
#define DAY (1700000000ll * S) /* some midnight, as the daemon passes it */

/* ---- a sink that copies what it is given ---- */

typedef struct seen {
    bar_t bars[32];
    size_t n;
} seen_t;

static void record(void *arg, bar_t *bar)
{
    seen_t *s = arg;
    assert_true(s->n < 32);
    s->bars[s->n++] = *bar;
}

typedef struct fixture {
    heap_t *heap;
    bars_t *b;
    seen_t seen;
} fixture_t;

static void start(fixture_t *f, const int64_t *iv, size_t n, int64_t grace)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(heap_create(NULL, &f->heap), 0);
    assert_int_equal(obj_runtime_create(f->heap), 0);
    assert_int_equal(bars_create(f->heap, iv, n, grace, DAY, record, &f->seen, &f->b), 0);
}

static uint64_t live_bars(heap_t *heap)
{
    obj_type_stats_t st;
    assert_int_equal(obj_type_get_stats(heap, &bar_type, &st), 0);
    return st.live;
}

/* Every bar goes with the builder: the heap is empty after. */
static void finish(fixture_t *f)
{
    bars_destroy(f->b);
    assert_int_equal(live_bars(f->heap), 0);
    heap_stats_t hs;
    heap_get_stats(f->heap, &hs);
    assert_int_equal(hs.used_bytes, 0);
    obj_runtime_destroy(f->heap);
    heap_destroy(f->heap);
}

static void trade(fixture_t *f, const char *sym, int64_t price, uint32_t size, int64_t ts)
{
    assert_int_equal(bars_trade(f->b, sym, strlen(sym), price, size, ts, ts), 0);
}

static void assert_bar(const bar_t *b, const char *sym, const char *name, int64_t start,
                       int64_t open, int64_t high, int64_t low, int64_t close, uint64_t volume,
                       int64_t vwap, uint64_t trades)
{
    assert_string_equal(b->sym, sym);
    assert_int_equal(b->sym_len, strlen(sym));
    assert_string_equal(b->name, name);
    assert_int_equal(b->start, start);
    assert_int_equal(b->open, open);
    assert_int_equal(b->high, high);
    assert_int_equal(b->low, low);
    assert_int_equal(b->close, close);
    assert_int_equal(b->volume, volume);
    assert_int_equal(b->vwap, vwap);
    assert_int_equal(b->trades, trades);
}

static const int64_t one_minute[] = {MIN};

/* ---- tests ---- */

static void test_one_trade_makes_one_bar_of_that_trade_at_its_aligned_start(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 0);
    trade(&f, "AAPL", 1012500, 100, DAY + 9 * 3600 * S + 30 * MIN + 17 * S + 5);
    assert_int_equal(f.seen.n, 0); /* still open */
    bars_flush(f.b);
    assert_int_equal(f.seen.n, 1);
    assert_bar(&f.seen.bars[0], "AAPL", "1m", DAY + 9 * 3600 * S + 30 * MIN, 1012500, 1012500,
               1012500, 1012500, 100, 1012500, 1);
    assert_int_equal(f.seen.bars[0].interval_ns, MIN);
    assert_non_null(bars_last(f.b, "AAPL", 4, 0));
    assert_int_equal(bars_last(f.b, "AAPL", 4, 0)->start, DAY + 9 * 3600 * S + 30 * MIN);
    finish(&f);
}

static void test_a_later_trade_of_the_symbol_closes_its_bar_with_exact_ohlcv(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 5 * S);
    trade(&f, "MSFT", 3000000, 100, DAY + 1 * S);  /* 300.0000 */
    trade(&f, "MSFT", 3010000, 50, DAY + 20 * S);  /* high */
    trade(&f, "MSFT", 2990000, 200, DAY + 40 * S); /* low */
    trade(&f, "MSFT", 3005000, 150, DAY + 59 * S); /* close */
    assert_int_equal(f.seen.n, 0);
    trade(&f, "MSFT", 3020000, 10, DAY + 60 * S); /* the next minute, at its first ns */
    assert_int_equal(f.seen.n, 1);
    /* VWAP = (300 * 100 + 301 * 50 + 299 * 200 + 300.5 * 150) / 500 = 299.85 */
    assert_bar(&f.seen.bars[0], "MSFT", "1m", DAY, 3000000, 3010000, 2990000, 3005000, 500, 2998500,
               4);
    finish(&f);
}

static void test_intervals_without_trades_make_no_bar(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 0);
    trade(&f, "IBM", 1000000, 1, DAY + 10 * S);
    trade(&f, "IBM", 1100000, 2, DAY + 3 * MIN + 10 * S); /* minutes 1 and 2 are empty */
    bars_flush(f.b);
    assert_int_equal(f.seen.n, 2);
    assert_bar(&f.seen.bars[0], "IBM", "1m", DAY, 1000000, 1000000, 1000000, 1000000, 1, 1000000,
               1);
    assert_bar(&f.seen.bars[1], "IBM", "1m", DAY + 3 * MIN, 1100000, 1100000, 1100000, 1100000, 2,
               1100000, 1);
    finish(&f);
}

static void test_vwap_rounds_half_away_from_zero(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 0);
    /* (1000001 + 1000002) / 2 = 1000001.5 -> 1000002 */
    trade(&f, "UP", 1000001, 1, DAY);
    trade(&f, "UP", 1000002, 1, DAY + 1);
    /* (1000001 * 2 + 1000002) / 3 = 1000001.33 -> 1000001 */
    trade(&f, "DOWN", 1000001, 2, DAY);
    trade(&f, "DOWN", 1000002, 1, DAY + 1);
    /* (-1000001 - 1000002) / 2 = -1000001.5 -> -1000002, away from zero */
    trade(&f, "NEG", -1000001, 1, DAY);
    trade(&f, "NEG", -1000002, 1, DAY + 1);
    /* (1 * 1 + 2 * 2) / 3 = 1.67 -> 2 */
    trade(&f, "TWO", 1, 1, DAY);
    trade(&f, "TWO", 2, 2, DAY + 1);
    bars_flush(f.b);
    assert_int_equal(f.seen.n, 4);
    assert_int_equal(bars_last(f.b, "UP", 2, 0)->vwap, 1000002);
    assert_int_equal(bars_last(f.b, "DOWN", 4, 0)->vwap, 1000001);
    assert_int_equal(bars_last(f.b, "NEG", 3, 0)->vwap, -1000002);
    assert_int_equal(bars_last(f.b, "TWO", 3, 0)->vwap, 2);
    finish(&f);
}

static void test_vwap_of_the_largest_prices_and_sizes_does_not_overflow(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 0);
    int64_t big = INT64_MAX - 1;
    trade(&f, "BIG", big, UINT32_MAX, DAY);
    trade(&f, "BIG", big - 2, UINT32_MAX, DAY + 1); /* exactly between: big - 1 */
    bars_flush(f.b);
    assert_int_equal(f.seen.n, 1);
    assert_int_equal(f.seen.bars[0].volume, 2ull * UINT32_MAX);
    assert_int_equal(f.seen.bars[0].vwap, big - 1);
    finish(&f);
}

static void test_the_clock_of_another_symbol_closes_a_bar_after_its_grace(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 2 * S);
    trade(&f, "QUIET", 500000, 10, DAY + 30 * S);
    trade(&f, "BUSY", 100000, 1, DAY + 61 * S); /* past the end, within the grace */
    assert_int_equal(f.seen.n, 0);
    bars_clock(f.b, DAY + 62 * S - 1, 0); /* a quote, 1 ns before end + grace */
    assert_int_equal(f.seen.n, 0);
    bars_clock(f.b, DAY + 62 * S, 0); /* end + grace */
    assert_int_equal(f.seen.n, 1);
    assert_bar(&f.seen.bars[0], "QUIET", "1m", DAY, 500000, 500000, 500000, 500000, 10, 500000, 1);
    assert_null(bars_last(f.b, "BUSY", 4, 0)); /* its bar is still open */
    finish(&f);
}

static void test_the_timer_closes_a_bar_when_no_tick_comes(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 1 * S);
    int64_t recv = 5000 * S; /* the receiving clock runs apart from the exchange's */
    assert_int_equal(bars_trade(f.b, "LIVE", 4, 700000, 3, DAY + 59 * S, recv), 0);
    bars_idle(f.b, recv + 1 * S); /* the clock is estimated at 60s: end, not end + grace */
    assert_int_equal(f.seen.n, 0);
    bars_idle(f.b, recv + 2 * S - 1);
    assert_int_equal(f.seen.n, 0);
    bars_idle(f.b, recv + 2 * S); /* 61s: end + grace */
    assert_int_equal(f.seen.n, 1);
    assert_bar(&f.seen.bars[0], "LIVE", "1m", DAY, 700000, 700000, 700000, 700000, 3, 700000, 1);
    /* The estimate did not move the clock: a trade stamped 60.5s still opens
     * the next minute, and is not late. */
    assert_int_equal(bars_trade(f.b, "LIVE", 4, 710000, 1, DAY + 60 * S + S / 2, recv + 3 * S), 0);
    finish(&f);
}

static void test_a_trade_for_a_closed_interval_is_late_and_dropped(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 0);
    trade(&f, "OOO", 100, 1, DAY + 30 * S);
    trade(&f, "OOO", 200, 1, DAY + 90 * S); /* closes minute 0 */
    assert_int_equal(bars_trade(f.b, "OOO", 3, 300, 1, DAY + 40 * S, 0), -EALREADY);
    assert_int_equal(bars_stats(f.b)->late, 1);
    bars_flush(f.b);
    assert_int_equal(f.seen.n, 2);
    assert_int_equal(f.seen.bars[1].trades, 1); /* minute 1 took nothing of it */
    assert_int_equal(f.seen.bars[1].close, 200);
    finish(&f);
}

static void test_bad_trades_are_refused_and_counted(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 0);
    assert_int_equal(bars_trade(f.b, "ZERO", 4, 100, 0, DAY, 0), -EINVAL);
    assert_int_equal(bars_trade(f.b, "bad", 3, 100, 1, DAY, 0), -EINVAL);
    assert_int_equal(bars_trade(f.b, "END", 3, 100, 1, INT64_MAX, 0), -EINVAL);
    assert_int_equal(bars_stats(f.b)->refused, 3);
    bars_flush(f.b);
    assert_int_equal(f.seen.n, 0);
    finish(&f);
}

static void test_each_interval_gets_its_own_bars_from_the_same_trades(void **state)
{
    (void)state;
    fixture_t f;
    static const int64_t both[] = {S, MIN};
    start(&f, both, 2, 0);
    trade(&f, "X", 100, 1, DAY + 100);
    trade(&f, "X", 300, 1, DAY + S + 100); /* closes second 0 */
    trade(&f, "X", 200, 2, DAY + S + 200);
    bars_flush(f.b); /* second 1, then minute 0 */
    assert_int_equal(f.seen.n, 3);
    assert_bar(&f.seen.bars[0], "X", "1s", DAY, 100, 100, 100, 100, 1, 100, 1);
    assert_bar(&f.seen.bars[1], "X", "1s", DAY + S, 300, 300, 200, 200, 3, 233, 2);
    assert_bar(&f.seen.bars[2], "X", "1m", DAY, 100, 300, 100, 200, 4, 200, 3);
    assert_int_equal(bars_interval_index(f.b, "1m", 2), 1);
    assert_int_equal(bars_interval_index(f.b, "5m", 2), -1);
    finish(&f);
}

static void test_the_days_roll_publishes_open_bars_and_forgets_last_values(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 0);
    trade(&f, "EOD", 100, 5, DAY + 23 * 3600 * S + 59 * MIN + 30 * S);
    int64_t next = DAY + 24 * 3600 * S + 7 * S; /* a new midnight, not a multiple of a minute */
    bars_roll(f.b, next);
    assert_int_equal(f.seen.n, 1);
    assert_int_equal(f.seen.bars[0].start, DAY + 23 * 3600 * S + 59 * MIN);
    assert_null(bars_last(f.b, "EOD", 3, 0));
    assert_int_equal(live_bars(f.heap), 0);
    /* The new day aligns to its own midnight. */
    trade(&f, "EOD", 200, 1, next + 90 * S);
    bars_flush(f.b);
    assert_int_equal(f.seen.n, 2);
    assert_int_equal(f.seen.bars[1].start, next + MIN);
    finish(&f);
}

static void test_a_rewind_publishes_open_bars_and_lets_the_same_times_make_bars_again(void **state)
{
    (void)state;
    fixture_t f;
    start(&f, one_minute, 1, 0);
    trade(&f, "LOOP", 100, 1, DAY + 10 * S);
    trade(&f, "LOOP", 200, 1, DAY + 70 * S); /* closes minute 0 */
    assert_int_equal(f.seen.n, 1);
    bars_rewind(f.b); /* the file starts again */
    assert_int_equal(f.seen.n, 2);
    assert_int_equal(f.seen.bars[1].start, DAY + MIN);
    assert_int_equal(bars_last(f.b, "LOOP", 4, 0)->start, DAY + MIN); /* kept */
    trade(&f, "LOOP", 300, 1, DAY + 10 * S);                          /* minute 0 again: not late */
    bars_flush(f.b);
    assert_int_equal(f.seen.n, 3);
    assert_int_equal(f.seen.bars[2].start, DAY);
    assert_int_equal(f.seen.bars[2].close, 300);
    assert_int_equal(bars_stats(f.b)->late, 0);
    finish(&f);
}

/* ---- trades by the market's symbol (bars_symbol_trade()) ---- */

static symbol_t *market_symbol_of(fixture_t *f, market_t **m, const char *name)
{
    if (*m == NULL)
        assert_int_equal(market_create(f->heap, DAY, NULL, NULL, m), 0);
    symbol_t *sym = market_symbol(*m, name, strlen(name));
    assert_non_null(sym);
    return sym;
}

static void test_trades_by_symbol_and_by_name_go_into_the_same_bar(void **state)
{
    (void)state;
    fixture_t f;
    market_t *m = NULL;
    start(&f, one_minute, 1, 0);
    symbol_t *sym = market_symbol_of(&f, &m, "MSFT");
    assert_int_equal(bars_symbol_trade(f.b, sym, 100, 1, DAY + S, DAY + S), 0);
    trade(&f, "MSFT", 300, 1, DAY + 2 * S);
    assert_int_equal(bars_symbol_trade(f.b, sym, 200, 2, DAY + 3 * S, DAY + 3 * S), 0);
    assert_int_equal(bars_symbol_trade(f.b, sym, 200, 0, DAY + 4 * S, DAY + 4 * S), -EINVAL);
    assert_int_equal(bars_stats(f.b)->refused, 1);
    bars_flush(f.b);
    assert_int_equal(f.seen.n, 1);
    assert_bar(&f.seen.bars[0], "MSFT", "1m", DAY, 100, 300, 100, 200, 4, 200, 3);
    market_destroy(m);
    finish(&f);
}

/* The entries a roll frees are never reached again through the symbols
 * that knew them (ASan would see the read of a freed entry). */
static void test_a_symbol_traded_before_the_days_roll_gets_a_new_entry_after_it(void **state)
{
    (void)state;
    fixture_t f;
    market_t *m = NULL;
    start(&f, one_minute, 1, 0);
    symbol_t *sym = market_symbol_of(&f, &m, "ROLL");
    assert_int_equal(bars_symbol_trade(f.b, sym, 100, 5, DAY + S, DAY + S), 0);
    int64_t next = DAY + 24 * 3600 * S;
    bars_roll(f.b, next);
    assert_int_equal(f.seen.n, 1);
    assert_int_equal(bars_symbol_trade(f.b, sym, 200, 1, next + S, next + S), 0);
    bars_flush(f.b);
    assert_int_equal(f.seen.n, 2);
    assert_bar(&f.seen.bars[1], "ROLL", "1m", next, 200, 200, 200, 200, 1, 200, 1);
    assert_int_equal(bars_last(f.b, "ROLL", 4, 0)->volume, 1);
    market_destroy(m);
    finish(&f);
}

/* A reload makes a second builder while the first still lives: each keeps
 * its own bars of a symbol both are given. */
static void test_two_builders_given_one_symbol_keep_their_own_bars(void **state)
{
    (void)state;
    fixture_t f, g;
    market_t *m = NULL;
    start(&f, one_minute, 1, 0);
    start(&g, one_minute, 1, 0);
    symbol_t *sym = market_symbol_of(&f, &m, "BOTH");
    assert_int_equal(bars_symbol_trade(f.b, sym, 100, 1, DAY + S, DAY + S), 0);
    assert_int_equal(bars_symbol_trade(g.b, sym, 500, 7, DAY + S, DAY + S), 0);
    assert_int_equal(bars_symbol_trade(f.b, sym, 300, 1, DAY + 2 * S, DAY + 2 * S), 0);
    bars_flush(f.b);
    bars_flush(g.b);
    assert_int_equal(f.seen.n, 1);
    assert_bar(&f.seen.bars[0], "BOTH", "1m", DAY, 100, 300, 100, 300, 2, 200, 2);
    assert_int_equal(g.seen.n, 1);
    assert_bar(&g.seen.bars[0], "BOTH", "1m", DAY, 500, 500, 500, 500, 7, 500, 1);
    market_destroy(m);
    finish(&g);
    finish(&f);
}

static void test_interval_names_parse_and_print_in_the_largest_exact_unit(void **state)
{
    (void)state;
    int64_t ns;
    char buf[BARS_INTERVAL_NAME_MAX];
    assert_int_equal(bars_interval_parse("1s", 2, &ns), 0);
    assert_int_equal(ns, S);
    assert_int_equal(bars_interval_parse("60s", 3, &ns), 0);
    assert_int_equal(bars_interval_name(ns, buf), 2);
    assert_string_equal(buf, "1m");
    assert_int_equal(bars_interval_parse("90s", 3, &ns), 0);
    bars_interval_name(ns, buf);
    assert_string_equal(buf, "90s");
    assert_int_equal(bars_interval_parse("24h", 3, &ns), 0);
    bars_interval_name(ns, buf);
    assert_string_equal(buf, "24h");
    const char *bad[] = {"",    "s",    "0s",  "1",   "1d",
                         "25h", "1.5m", "-1m", "1ms", "99999999999999999h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(bars_interval_parse(bad[i], strlen(bad[i]), &ns), -EINVAL);
}

static void test_create_refuses_bad_interval_lists(void **state)
{
    (void)state;
    heap_t *heap;
    bars_t *b;
    seen_t seen;
    assert_int_equal(heap_create(NULL, &heap), 0);
    assert_int_equal(obj_runtime_create(heap), 0);
    static const int64_t twice[] = {MIN, MIN}, fraction[] = {S + 1}, none[] = {0};
    assert_int_equal(bars_create(heap, twice, 2, 0, 0, record, &seen, &b), -EINVAL);
    assert_int_equal(bars_create(heap, fraction, 1, 0, 0, record, &seen, &b), -EINVAL);
    assert_int_equal(bars_create(heap, none, 0, 0, 0, record, &seen, &b), -EINVAL);
    assert_int_equal(bars_create(heap, one_minute, 1, -1, 0, record, &seen, &b), -EINVAL);
    obj_runtime_destroy(heap);
    heap_destroy(heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_trade_makes_one_bar_of_that_trade_at_its_aligned_start),
        cmocka_unit_test(test_a_later_trade_of_the_symbol_closes_its_bar_with_exact_ohlcv),
        cmocka_unit_test(test_intervals_without_trades_make_no_bar),
        cmocka_unit_test(test_vwap_rounds_half_away_from_zero),
        cmocka_unit_test(test_vwap_of_the_largest_prices_and_sizes_does_not_overflow),
        cmocka_unit_test(test_the_clock_of_another_symbol_closes_a_bar_after_its_grace),
        cmocka_unit_test(test_the_timer_closes_a_bar_when_no_tick_comes),
        cmocka_unit_test(test_a_trade_for_a_closed_interval_is_late_and_dropped),
        cmocka_unit_test(test_bad_trades_are_refused_and_counted),
        cmocka_unit_test(test_each_interval_gets_its_own_bars_from_the_same_trades),
        cmocka_unit_test(test_the_days_roll_publishes_open_bars_and_forgets_last_values),
        cmocka_unit_test(test_a_rewind_publishes_open_bars_and_lets_the_same_times_make_bars_again),
        cmocka_unit_test(test_trades_by_symbol_and_by_name_go_into_the_same_bar),
        cmocka_unit_test(test_a_symbol_traded_before_the_days_roll_gets_a_new_entry_after_it),
        cmocka_unit_test(test_two_builders_given_one_symbol_keep_their_own_bars),
        cmocka_unit_test(test_interval_names_parse_and_print_in_the_largest_exact_unit),
        cmocka_unit_test(test_create_refuses_bad_interval_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

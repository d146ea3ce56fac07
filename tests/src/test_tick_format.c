/*
 * test_tick_format.c - a tick as JSON or CSV text, and its channel name
 * (src/tick_format.c): the exact text of each kind in each format, the keys
 * an unknown side leaves out, the widest values, what the CSV format refuses
 * and a buffer too small.
 *
 * The ticks are built on the stack: the encoders read only the tick's fields
 * and its symbol's name, never the object headers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "src/tick_format.h"

typedef struct fixture {
    symbol_t sym;
    tick_t tick;
} fixture_t;

static void set_symbol(fixture_t *f, const char *name)
{
    memset(&f->sym, 0, sizeof f->sym);
    f->sym.len = (uint8_t)strlen(name);
    memcpy(f->sym.name, name, f->sym.len);
    f->tick.sym = &f->sym;
}

static void trade(fixture_t *f, const char *name, int64_t price, uint32_t size, char side)
{
    memset(&f->tick, 0, sizeof f->tick);
    set_symbol(f, name);
    f->tick.kind = TICK_TRADE;
    f->tick.price = price;
    f->tick.size = size;
    f->tick.side = side;
    f->tick.seq = 7;
    f->tick.ts_exch = 1700000000123456789;
}

static void quote(fixture_t *f, const char *name, int64_t bid, uint32_t bid_size, int64_t ask,
                  uint32_t ask_size)
{
    memset(&f->tick, 0, sizeof f->tick);
    set_symbol(f, name);
    f->tick.kind = TICK_QUOTE;
    f->tick.price = bid;
    f->tick.size = bid_size;
    f->tick.ask = ask;
    f->tick.ask_size = ask_size;
    f->tick.seq = 8;
    f->tick.ts_exch = 1700000000000000001;
}

/* The tick in format, as a NUL-terminated string (the encoder writes none). */
static const char *text(const fixture_t *f, int format)
{
    static char buf[PAYLOAD_TEXT_MAX + 1];
    int n = payload_format_tick(&f->tick, format, buf, PAYLOAD_TEXT_MAX);
    assert_true(n > 0);
    buf[n] = '\0';
    return buf;
}

static void test_channel_is_the_kind_then_the_symbol(void **state)
{
    (void)state;
    fixture_t f;
    char ch[PAYLOAD_CHANNEL_MAX];
    trade(&f, "AAPL", 1012500, 100, 'B');
    assert_int_equal(payload_channel(&f.tick, ch), 10);
    assert_memory_equal(ch, "trade.AAPL", 10);
    quote(&f, "BRK.A", 1, 1, 2, 1);
    assert_int_equal(payload_channel(&f.tick, ch), 11);
    assert_memory_equal(ch, "quote.BRK.A", 11);
    trade(&f, "ABCDEFGH", 1, 1, 0); /* the longest symbol fills PAYLOAD_CHANNEL_MAX */
    assert_int_equal(payload_channel(&f.tick, ch), PAYLOAD_CHANNEL_MAX);
    assert_memory_equal(ch, "trade.ABCDEFGH", PAYLOAD_CHANNEL_MAX);
}

static void test_trade_as_json_has_fixed_keys_and_string_prices(void **state)
{
    (void)state;
    fixture_t f;
    trade(&f, "AAPL", 1012500, 100, 'B');
    assert_string_equal(text(&f, PAYLOAD_JSON),
                        "{\"sym\":\"AAPL\",\"kind\":\"trade\",\"price\":\"101.2500\",\"size\":100,"
                        "\"side\":\"B\",\"ts\":1700000000123456789,\"seq\":7}");
}

static void test_trade_of_unknown_side_as_json_has_no_side_key(void **state)
{
    (void)state;
    fixture_t f;
    trade(&f, "IBM", 5, 1, 0);
    assert_string_equal(text(&f, PAYLOAD_JSON),
                        "{\"sym\":\"IBM\",\"kind\":\"trade\",\"price\":\"0.0005\",\"size\":1,"
                        "\"ts\":1700000000123456789,\"seq\":7}");
}

static void test_quote_as_json_has_both_sides(void **state)
{
    (void)state;
    fixture_t f;
    quote(&f, "MSFT", 3301000, 200, 3302500, 300);
    assert_string_equal(
        text(&f, PAYLOAD_JSON),
        "{\"sym\":\"MSFT\",\"kind\":\"quote\",\"bid\":\"330.1000\",\"bid_size\":200,"
        "\"ask\":\"330.2500\",\"ask_size\":300,\"ts\":1700000000000000001,"
        "\"seq\":8}");
}

static void test_negative_timestamp_and_price_are_written_with_a_sign_in_json(void **state)
{
    (void)state;
    fixture_t f;
    trade(&f, "X", -15000, 1, 'S');
    f.tick.ts_exch = -1;
    assert_string_equal(text(&f, PAYLOAD_JSON),
                        "{\"sym\":\"X\",\"kind\":\"trade\",\"price\":\"-1.5000\",\"size\":1,"
                        "\"side\":\"S\",\"ts\":-1,\"seq\":7}");
}

static void test_ticks_as_csv_are_feed_csv_lines_without_the_newline(void **state)
{
    (void)state;
    fixture_t f;
    trade(&f, "AAPL", 1012500, 100, 'B');
    assert_string_equal(text(&f, PAYLOAD_CSV), "T,1700000000123456789,AAPL,101.2500,100,B");
    quote(&f, "MSFT", 3301000, 200, 3302500, 300);
    assert_string_equal(text(&f, PAYLOAD_CSV),
                        "Q,1700000000000000001,MSFT,330.1000,200,330.2500,300");
}

static void test_csv_refuses_what_it_cannot_express(void **state)
{
    (void)state;
    fixture_t f;
    char buf[PAYLOAD_TEXT_MAX];
    trade(&f, "AAPL", -1, 100, 'B'); /* a negative price */
    assert_int_equal(payload_format_tick(&f.tick, PAYLOAD_CSV, buf, sizeof buf), -EINVAL);
    trade(&f, "AAPL", 1, 0, 'B'); /* a trade of size 0 */
    assert_int_equal(payload_format_tick(&f.tick, PAYLOAD_CSV, buf, sizeof buf), -EINVAL);
}

/* The widest quote (every number at its widest) fits PAYLOAD_TEXT_MAX; a
 * buffer one byte short of a tick's text gets -ENOBUFS and is not written
 * past its end. */
static void test_widest_tick_fits_and_a_short_buffer_is_refused(void **state)
{
    (void)state;
    fixture_t f;
    quote(&f, "ABCDEFGH", INT64_MIN, UINT32_MAX, INT64_MAX, UINT32_MAX);
    f.tick.seq = UINT64_MAX;
    f.tick.ts_exch = INT64_MIN;
    const char *json = text(&f, PAYLOAD_JSON);
    size_t n = strlen(json);
    assert_true(n < PAYLOAD_TEXT_MAX);

    char buf[PAYLOAD_TEXT_MAX + 1];
    memset(buf, '#', sizeof buf);
    assert_int_equal(payload_format_tick(&f.tick, PAYLOAD_JSON, buf, n - 1), -ENOBUFS);
    assert_int_equal(payload_format_tick(&f.tick, PAYLOAD_JSON, buf, n), (int)n);
    assert_memory_equal(buf, json, n);
    assert_int_equal(buf[n], '#');
}

/* ---- bars ---- */

static bar_t a_bar(void)
{
    bar_t b = {0};
    strcpy(b.sym, "AAPL");
    b.sym_len = 4;
    strcpy(b.name, "1m");
    b.interval_ns = 60000000000ll;
    b.start = 34200000000000ll;
    b.open = 1012500;
    b.high = 1013000;
    b.low = 1011000;
    b.close = 1012000;
    b.volume = 700;
    b.vwap = 1012143;
    b.trades = 3;
    return b;
}

static void test_bar_channel_is_bar_then_interval_then_symbol(void **state)
{
    (void)state;
    bar_t b = a_bar();
    char name[PAYLOAD_BAR_CHANNEL_MAX];
    size_t n = payload_bar_channel(&b, name);
    assert_int_equal(n, 11);
    assert_memory_equal(name, "bar.1m.AAPL", n);
}

static void test_bar_as_json_and_csv_has_every_field_in_order(void **state)
{
    (void)state;
    bar_t b = a_bar();
    char buf[PAYLOAD_BAR_TEXT_MAX + 1];
    int n = payload_format_bar(&b, PAYLOAD_JSON, buf, sizeof buf);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "{\"sym\":\"AAPL\",\"kind\":\"bar\",\"interval\":\"1m\","
                             "\"start\":34200000000000,\"open\":\"101.2500\",\"high\":\"101.3000\","
                             "\"low\":\"101.1000\",\"close\":\"101.2000\",\"volume\":700,"
                             "\"vwap\":\"101.2143\",\"trades\":3}");
    n = payload_format_bar(&b, PAYLOAD_CSV, buf, sizeof buf);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(
        buf, "B,34200000000000,AAPL,1m,101.2500,101.3000,101.1000,101.2000,700,101.2143,3");
}

/* The widest bar fits PAYLOAD_BAR_TEXT_MAX; a short buffer gets -ENOBUFS
 * and is not written past its end. */
static void test_widest_bar_fits_and_a_short_buffer_is_refused(void **state)
{
    (void)state;
    bar_t b = a_bar();
    strcpy(b.sym, "ABCDEFGH");
    b.sym_len = 8;
    strcpy(b.name, "86399s");
    b.start = INT64_MIN;
    b.open = b.high = b.low = b.close = b.vwap = INT64_MIN;
    b.volume = b.trades = UINT64_MAX;
    char json[PAYLOAD_BAR_TEXT_MAX];
    int n = payload_format_bar(&b, PAYLOAD_JSON, json, sizeof json);
    assert_true(n > 0 && n < PAYLOAD_BAR_TEXT_MAX);
    char buf[PAYLOAD_BAR_TEXT_MAX + 1];
    memset(buf, '#', sizeof buf);
    assert_int_equal(payload_format_bar(&b, PAYLOAD_JSON, buf, (size_t)n - 1), -ENOBUFS);
    assert_int_equal(buf[0], '#');
    assert_int_equal(payload_format_bar(&b, PAYLOAD_JSON, buf, (size_t)n), n);
    assert_memory_equal(buf, json, (size_t)n);
    assert_int_equal(buf[n], '#');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_is_the_kind_then_the_symbol),
        cmocka_unit_test(test_trade_as_json_has_fixed_keys_and_string_prices),
        cmocka_unit_test(test_trade_of_unknown_side_as_json_has_no_side_key),
        cmocka_unit_test(test_quote_as_json_has_both_sides),
        cmocka_unit_test(test_negative_timestamp_and_price_are_written_with_a_sign_in_json),
        cmocka_unit_test(test_ticks_as_csv_are_feed_csv_lines_without_the_newline),
        cmocka_unit_test(test_csv_refuses_what_it_cannot_express),
        cmocka_unit_test(test_widest_tick_fits_and_a_short_buffer_is_refused),
        cmocka_unit_test(test_bar_channel_is_bar_then_interval_then_symbol),
        cmocka_unit_test(test_bar_as_json_and_csv_has_every_field_in_order),
        cmocka_unit_test(test_widest_bar_fits_and_a_short_buffer_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_csv.c - tests of feed/csv.c: the CSV tick format, line by line and
 * over a chunked stream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/csv.h"
#include "feed/price.h"
#include "tests/feed/wire.h"

static int parse(const char *line, csv_tick_t *t, const char **reason)
{
    return csv_parse_line(line, strlen(line), t, reason);
}

/* Parse a line that must fail with `rc` and `why`. */
static void assert_rejected(const char *line, int rc, const char *why)
{
    csv_tick_t t;
    memset(&t, 0x5A, sizeof t);
    csv_tick_t before;
    memcpy(&before, &t, sizeof t);
    const char *reason = NULL;
    int got = parse(line, &t, &reason);
    if (got != rc || reason == NULL || strcmp(reason, why) != 0)
        print_error("line \"%s\": got %d \"%s\", want %d \"%s\"\n", line, got,
                    reason ? reason : "(null)", rc, why);
    assert_int_equal(got, rc);
    assert_non_null(reason);
    assert_string_equal(reason, why);
    assert_memory_equal(&t, &before, sizeof t); /* untouched */
}

static void test_trade_line_parses_every_field(void **state)
{
    (void)state;
    csv_tick_t t;
    const char *reason = NULL;
    assert_int_equal(parse("T,34200000000123,AAPL,101.25,300,B", &t, &reason), 1);
    assert_int_equal(t.kind, CSV_TRADE);
    assert_int_equal(t.ts_ns, 34200000000123ULL);
    assert_string_equal(t.symbol, "AAPL");
    assert_int_equal(t.trade.price, 1012500);
    assert_int_equal(t.trade.size, 300);
    assert_int_equal(t.trade.side, CSV_SIDE_BUY);

    assert_int_equal(parse("T,1,BRK.A,0.0001,1,S", &t, &reason), 1);
    assert_int_equal(t.trade.price, 1);
    assert_int_equal(t.trade.side, CSV_SIDE_SELL);
}

static void test_trade_side_absent_or_empty_is_unknown(void **state)
{
    (void)state;
    csv_tick_t t;
    const char *reason = NULL;
    assert_int_equal(parse("T,1,AAPL,1,100", &t, &reason), 1);
    assert_int_equal(t.trade.side, CSV_SIDE_UNKNOWN);
    assert_int_equal(parse("T,1,AAPL,1,100,", &t, &reason), 1);
    assert_int_equal(t.trade.side, CSV_SIDE_UNKNOWN);
}

static void test_quote_line_parses_every_field(void **state)
{
    (void)state;
    csv_tick_t t;
    const char *reason = NULL;
    assert_int_equal(parse("Q,57599999999999,MSFT,410.5,200,410.52,0", &t, &reason), 1);
    assert_int_equal(t.kind, CSV_QUOTE);
    assert_int_equal(t.ts_ns, 57599999999999ULL);
    assert_string_equal(t.symbol, "MSFT");
    assert_int_equal(t.quote.bid, 4105000);
    assert_int_equal(t.quote.bid_size, 200);
    assert_int_equal(t.quote.ask, 4105200);
    assert_int_equal(t.quote.ask_size, 0);
}

static void test_crossed_quote_is_accepted_as_markets_cross(void **state)
{
    (void)state;
    csv_tick_t t;
    const char *reason = NULL;
    assert_int_equal(parse("Q,1,X,10.01,100,10,100", &t, &reason), 1);
    assert_true(t.quote.bid > t.quote.ask);
}

static void test_comment_and_empty_lines_carry_no_tick(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "", "\n", "\r\n", "\r", "#", "# comment, with commas\n", "#T,1,AAPL,1,1\r\n"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        csv_tick_t t;
        const char *reason = NULL;
        assert_int_equal(parse(lines[i], &t, &reason), 0);
        assert_null(reason);
    }
}

static void test_lf_and_crlf_terminators_are_stripped(void **state)
{
    (void)state;
    csv_tick_t t;
    const char *reason = NULL;
    assert_int_equal(parse("T,1,AAPL,1,100,B\n", &t, &reason), 1);
    assert_int_equal(t.trade.side, CSV_SIDE_BUY);
    assert_int_equal(parse("T,1,AAPL,1,100,S\r\n", &t, &reason), 1);
    assert_int_equal(t.trade.side, CSV_SIDE_SELL);
    assert_int_equal(parse("Q,1,AAPL,1,100,2,300\r\n", &t, &reason), 1);
    assert_int_equal(t.quote.ask_size, 300);
    assert_rejected("T,1,AAPL,1,100,B\r\r\n", -EINVAL, "bad side (want B or S)");
}

static void test_missing_fields_are_rejected(void **state)
{
    (void)state;
    assert_rejected("T", -EINVAL, "missing field");
    assert_rejected("T,1,AAPL,1", -EINVAL, "missing field");
    assert_rejected("Q,1,AAPL,1,100,2", -EINVAL, "missing field");
    assert_rejected("Q,1", -EINVAL, "missing field");
}

static void test_extra_fields_are_rejected(void **state)
{
    (void)state;
    assert_rejected("T,1,AAPL,1,100,B,x", -EINVAL, "extra field");
    assert_rejected("T,1,AAPL,1,100,B,", -EINVAL, "extra field");
    assert_rejected("Q,1,AAPL,1,100,2,300,", -EINVAL, "extra field");
    assert_rejected("Q,1,AAPL,1,100,2,300,4,5,6,7,8,9", -EINVAL, "extra field");
}

static void test_the_first_fault_from_the_left_is_the_one_reported(void **state)
{
    (void)state;
    assert_rejected("T,x", -EINVAL, "malformed timestamp");
    assert_rejected("T,1,aapl", -EINVAL, "bad symbol (want 1-8 of A-Z 0-9 . -)");
    assert_rejected("T,1,AAPL,1.00001", -EINVAL, "price has more than 4 decimals");
    assert_rejected("T,1,AAPL,1,0x", -EINVAL, "malformed size");
    assert_rejected("T,1,AAPL,1,99999999999x", -ERANGE, "size overflows");
    assert_rejected("Q,1,AAPL,x,1,2,3,4", -EINVAL, "malformed bid");
    assert_rejected("Q,1,AAPL,1,1,2,3x", -EINVAL, "malformed ask size");
    assert_rejected("T,1,AAPL,1,100,BB,x", -EINVAL, "bad side (want B or S)");
}

static void test_unknown_record_types_are_rejected(void **state)
{
    (void)state;
    const char *why = "unknown record type (want T or Q)";
    assert_rejected("X,1,AAPL,1,100", -EINVAL, why);
    assert_rejected("TT,1,AAPL,1,100", -EINVAL, why);
    assert_rejected("t,1,AAPL,1,100", -EINVAL, why);
    assert_rejected(" T,1,AAPL,1,100", -EINVAL, why);
    assert_rejected(",", -EINVAL, why);
}

static void test_bad_sides_are_rejected(void **state)
{
    (void)state;
    const char *why = "bad side (want B or S)";
    assert_rejected("T,1,AAPL,1,100,b", -EINVAL, why);
    assert_rejected("T,1,AAPL,1,100,X", -EINVAL, why);
    assert_rejected("T,1,AAPL,1,100,BS", -EINVAL, why);
    assert_rejected("T,1,AAPL,1,100, B", -EINVAL, why);
}

static void test_symbol_is_1_to_8_of_upper_letters_digits_dot_dash(void **state)
{
    (void)state;
    static const char *const good[] = {"A", "BRK.A", "BF-B", "ABCDEFGH", "123", "Z9.-"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "T,1,%s,1,100", good[i]);
        csv_tick_t t;
        const char *reason = NULL;
        assert_int_equal(parse(line, &t, &reason), 1);
        assert_string_equal(t.symbol, good[i]);
    }
    const char *why = "bad symbol (want 1-8 of A-Z 0-9 . -)";
    assert_rejected("T,1,,1,100", -EINVAL, why);
    assert_rejected("T,1,ABCDEFGHI,1,100", -EINVAL, why);
    assert_rejected("T,1,aapl,1,100", -EINVAL, why);
    assert_rejected("T,1,AA PL,1,100", -EINVAL, why);
    assert_rejected("T,1,AA/PL,1,100", -EINVAL, why);
    assert_rejected("T,1,\"AAPL\",1,100", -EINVAL, why);
}

static void test_timestamp_is_an_unsigned_64_bit_integer(void **state)
{
    (void)state;
    csv_tick_t t;
    const char *reason = NULL;
    assert_int_equal(parse("T,0,A,1,1", &t, &reason), 1);
    assert_int_equal(t.ts_ns, 0);
    assert_int_equal(parse("T,18446744073709551615,A,1,1", &t, &reason), 1);
    assert_int_equal(t.ts_ns, UINT64_MAX);
    assert_rejected("T,18446744073709551616,A,1,1", -ERANGE, "timestamp overflows");
    assert_rejected("T,99999999999999999999999,A,1,1", -ERANGE, "timestamp overflows");
    assert_rejected("T,,A,1,1", -EINVAL, "malformed timestamp");
    assert_rejected("T,-1,A,1,1", -EINVAL, "malformed timestamp");
    assert_rejected("T,1.5,A,1,1", -EINVAL, "malformed timestamp");
    assert_rejected("T, 1,A,1,1", -EINVAL, "malformed timestamp");
}

/* Parses line[0, n) from a buffer of exactly n bytes, so that a read past
 * the line is AddressSanitizer's to catch. */
static int parse_exact(const char *line, size_t n, csv_tick_t *t, const char **reason)
{
    char *exact = malloc(n ? n : 1);
    assert_non_null(exact);
    memcpy(exact, line, n);
    int rc = csv_parse_line(exact, n, t, reason);
    free(exact);
    return rc;
}

/* Timestamps of 1 to 20 digits, ending the line or not, and with every
 * byte that is neither a digit nor the ',' that ends a field at each place
 * (digits are read eight at a time where eight are left in the line). */
static void test_timestamps_of_every_length_read_alike_and_nothing_past_the_line(void **state)
{
    (void)state;
    static const char max[] = "18446744073709551615";
    char stray[256 - 11];
    size_t nstray = 0;
    for (int b = 0; b < 256; b++)
        if ((b < '0' || b > '9') && b != ',')
            stray[nstray++] = (char)b;
    for (size_t len = 1; len <= 20; len++) {
        char digits[21], line[64];
        memcpy(digits, len == 20 ? max : "98765432109876543210", len);
        digits[len] = '\0';
        csv_tick_t t;
        const char *reason = NULL;
        int n = snprintf(line, sizeof line, "T,%s,A,1,1", digits);
        assert_int_equal(parse_exact(line, (size_t)n, &t, &reason), 1);
        assert_int_equal(t.ts_ns, strtoull(digits, NULL, 10));
        n = snprintf(line, sizeof line, "T,%s", digits); /* the line ends in the digits */
        assert_true(parse_exact(line, (size_t)n, &t, &reason) < 0);
        for (size_t place = 0; place < len; place++) {
            for (size_t k = 0; k < nstray; k++) {
                n = snprintf(line, sizeof line, "T,%s,A,1,1", digits);
                line[2 + place] = stray[k];
                reason = NULL;
                assert_int_equal(parse_exact(line, (size_t)n, &t, &reason), -EINVAL);
                assert_string_equal(reason, "malformed timestamp");
            }
        }
    }
}

/* Every byte value as a one-byte symbol: only A-Z, 0-9, '.' and '-' pass. */
static void test_every_byte_is_judged_as_a_symbol_byte_alike(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        char line[16] = "T,1,?,1,1";
        line[4] = (char)b;
        csv_tick_t t;
        const char *reason = NULL;
        int want = (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '.' || b == '-';
        int rc = parse_exact(line, 9, &t, &reason);
        if (want) {
            assert_int_equal(rc, 1);
            assert_int_equal(t.symbol[0], b);
        } else {
            assert_int_equal(rc, -EINVAL);
            /* ',' as well: the symbol before it is empty */
            assert_string_equal(reason, "bad symbol (want 1-8 of A-Z 0-9 . -)");
        }
    }
}

static int symbol_byte(int b)
{
    return (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '.' || b == '-';
}

/* Symbols of 1 to 9 bytes with every byte value at every place, in lines
 * long enough that the symbol is read eight bytes at once: a symbol of 1-8
 * good bytes is taken whole, anything else is a bad symbol (',' splits the
 * line into other fields, which the other tests cover). */
static void test_every_byte_at_every_place_of_a_symbol_is_judged_alike(void **state)
{
    (void)state;
    for (size_t len = 1; len <= 9; len++)
        for (size_t k = 0; k < len; k++)
            for (int b = 1; b < 256; b++) {
                if (b == ',')
                    continue;
                char sym[10] = "ABCDEFGHI", line[32];
                sym[len] = '\0';
                sym[k] = (char)b;
                int n = snprintf(line, sizeof line, "T,1,%s,1,100", sym);
                csv_tick_t t;
                const char *reason = NULL;
                int rc = csv_parse_line(line, (size_t)n, &t, &reason);
                if (symbol_byte(b) && len <= 8) {
                    assert_int_equal(rc, 1);
                    assert_string_equal(t.symbol, sym);
                    assert_int_equal(csv_symbol_len(&t), len);
                } else {
                    assert_int_equal(rc, -EINVAL);
                    assert_string_equal(reason, "bad symbol (want 1-8 of A-Z 0-9 . -)");
                }
            }
    assert_rejected("T,1,ABCDEFGH", -EINVAL, "missing field");
    assert_rejected("T,1,ABCDEFGHI", -EINVAL, "bad symbol (want 1-8 of A-Z 0-9 . -)");
    assert_rejected("T,1,ABCDEFGHIJ,1,100", -EINVAL, "bad symbol (want 1-8 of A-Z 0-9 . -)");
}

static void test_prices_parse_exactly_and_errors_name_the_field(void **state)
{
    (void)state;
    csv_tick_t t;
    const char *reason = NULL;
    assert_int_equal(parse("T,1,A,1,1", &t, &reason), 1);
    assert_int_equal(t.trade.price, 10000);
    assert_int_equal(parse("Q,1,A,0.0001,1,922337203685477.5807,1", &t, &reason), 1);
    assert_int_equal(t.quote.bid, 1);
    assert_int_equal(t.quote.ask, INT64_MAX);

    assert_rejected("T,1,A,1.,1", -EINVAL, "malformed price");
    assert_rejected("T,1,A,.5,1", -EINVAL, "malformed price");
    assert_rejected("T,1,A,,1", -EINVAL, "malformed price");
    assert_rejected("T,1,A,1e2,1", -EINVAL, "malformed price");
    assert_rejected("T,1,A,-1,1", -EINVAL, "negative price");
    assert_rejected("T,1,A,1.00001,1", -EINVAL, "price has more than 4 decimals");
    assert_rejected("T,1,A,922337203685477.5808,1", -ERANGE, "price overflows");
    assert_rejected("Q,1,A,-0.01,1,1,1", -EINVAL, "negative bid");
    assert_rejected("Q,1,A,0.12345,1,1,1", -EINVAL, "bid has more than 4 decimals");
    assert_rejected("Q,1,A,x,1,1,1", -EINVAL, "malformed bid");
    assert_rejected("Q,1,A,99999999999999999,1,1,1", -ERANGE, "bid overflows");
    assert_rejected("Q,1,A,1,1,-1,1", -EINVAL, "negative ask");
    assert_rejected("Q,1,A,1,1,1.23456,1", -EINVAL, "ask has more than 4 decimals");
    assert_rejected("Q,1,A,1,1,,1", -EINVAL, "malformed ask");
    assert_rejected("Q,1,A,1,1,99999999999999999,1", -ERANGE, "ask overflows");
}

static void test_sizes_are_unsigned_32_bit_and_a_trade_has_at_least_1(void **state)
{
    (void)state;
    csv_tick_t t;
    const char *reason = NULL;
    assert_int_equal(parse("T,1,A,1,4294967295", &t, &reason), 1);
    assert_int_equal(t.trade.size, UINT32_MAX);
    assert_int_equal(parse("Q,1,A,1,0,2,4294967295", &t, &reason), 1);
    assert_int_equal(t.quote.bid_size, 0);
    assert_int_equal(t.quote.ask_size, UINT32_MAX);

    assert_rejected("T,1,A,1,0", -EINVAL, "trade size is 0");
    assert_rejected("T,1,A,1,4294967296", -ERANGE, "size overflows");
    assert_rejected("T,1,A,1,1.0", -EINVAL, "malformed size");
    assert_rejected("T,1,A,1,-1", -EINVAL, "malformed size");
    assert_rejected("T,1,A,1,", -EINVAL, "malformed size");
    assert_rejected("Q,1,A,1,x,2,3", -EINVAL, "malformed bid size");
    assert_rejected("Q,1,A,1,4294967296,2,3", -ERANGE, "bid size overflows");
    assert_rejected("Q,1,A,1,1,2,", -EINVAL, "malformed ask size");
    assert_rejected("Q,1,A,1,1,2,4294967296", -ERANGE, "ask size overflows");
}

static void test_spaces_around_fields_are_rejected(void **state)
{
    (void)state;
    assert_rejected("T,1,AAPL,1 ,100", -EINVAL, "malformed price");
    assert_rejected("T,1,AAPL,1,100 ", -EINVAL, "malformed size");
    assert_rejected("T,1, AAPL,1,100", -EINVAL, "bad symbol (want 1-8 of A-Z 0-9 . -)");
}

static void test_parse_reads_only_the_given_length(void **state)
{
    (void)state;
    struct guard g;
    assert_int_equal(guard_open(&g), 0);
    static const char *const lines[] = {
        "T,1,AAPL,101.25,300,B", "Q,1,A,1,1,2,2", "T,1,A,1,0", "T", "#", "T,1,A,1.,1",
        "Q,1,A,1,1,2,"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        size_t n = strlen(lines[i]);
        const char *p = (const char *)guard_place(&g, lines[i], n);
        csv_tick_t t;
        const char *reason;
        (void)csv_parse_line(p, n, &t, &reason);
    }
    guard_close(&g);
}

static void test_formats_trade_and_quote_lines_exactly(void **state)
{
    (void)state;
    csv_tick_t t;
    memset(&t, 0, sizeof t);
    t.kind = CSV_TRADE;
    t.ts_ns = 34200000000123ULL;
    strcpy(t.symbol, "AAPL");
    t.trade.price = 1012500;
    t.trade.size = 300;
    t.trade.side = CSV_SIDE_BUY;
    char buf[CSV_FORMAT_MAX];
    assert_int_equal(csv_format(&t, buf, sizeof buf), 37);
    assert_string_equal(buf, "T,34200000000123,AAPL,101.2500,300,B\n");

    t.trade.side = CSV_SIDE_UNKNOWN;
    csv_format(&t, buf, sizeof buf);
    assert_string_equal(buf, "T,34200000000123,AAPL,101.2500,300\n");

    memset(&t, 0, sizeof t);
    t.kind = CSV_QUOTE;
    t.ts_ns = 0;
    strcpy(t.symbol, "BRK.A");
    t.quote.bid = 1;
    t.quote.bid_size = 0;
    t.quote.ask = INT64_MAX;
    t.quote.ask_size = UINT32_MAX;
    csv_format(&t, buf, sizeof buf);
    assert_string_equal(buf, "Q,0,BRK.A,0.0001,0,922337203685477.5807,4294967295\n");
}

static void test_format_then_parse_gives_the_same_tick(void **state)
{
    (void)state;
    srand(4242);
    for (int i = 0; i < 20000; i++) {
        csv_tick_t t;
        memset(&t, 0, sizeof t);
        t.ts_ns = (uint64_t)rand() << 33 ^ (uint64_t)rand();
        size_t symlen = 1 + (size_t)rand() % CSV_SYMBOL_MAX;
        for (size_t k = 0; k < symlen; k++)
            t.symbol[k] = "ABCXYZ019.-"[rand() % 11];
        if (rand() % 2) {
            t.kind = CSV_TRADE;
            t.trade.price = (int64_t)rand() * (rand() % 1000);
            t.trade.size = 1 + (uint32_t)rand();
            t.trade.side = "BS"[rand() % 2];
            if (rand() % 3 == 0)
                t.trade.side = CSV_SIDE_UNKNOWN;
        } else {
            t.kind = CSV_QUOTE;
            t.quote.bid = (int64_t)rand();
            t.quote.ask = (int64_t)rand() << 20;
            t.quote.bid_size = (uint32_t)rand();
            t.quote.ask_size = (uint32_t)rand() * 2u;
        }
        char buf[CSV_FORMAT_MAX];
        int n = csv_format(&t, buf, sizeof buf);
        assert_true(n > 0);
        csv_tick_t back;
        const char *reason = NULL;
        assert_int_equal(csv_parse_line(buf, (size_t)n, &back, &reason), 1);
        assert_int_equal(back.kind, t.kind);
        assert_int_equal(back.ts_ns, t.ts_ns);
        assert_string_equal(back.symbol, t.symbol);
        if (t.kind == CSV_TRADE) {
            assert_int_equal(back.trade.price, t.trade.price);
            assert_int_equal(back.trade.size, t.trade.size);
            assert_int_equal(back.trade.side, t.trade.side);
        } else {
            assert_int_equal(back.quote.bid, t.quote.bid);
            assert_int_equal(back.quote.ask, t.quote.ask);
            assert_int_equal(back.quote.bid_size, t.quote.bid_size);
            assert_int_equal(back.quote.ask_size, t.quote.ask_size);
        }
    }
}

/* csv_format()'s line for the tick `line` parses as, without its "\n". */
static size_t formatted(const char *line, size_t len, char *out)
{
    csv_tick_t t;
    const char *reason = NULL;
    assert_int_equal(csv_parse_line(line, len, &t, &reason), 1);
    int n = csv_format(&t, out, CSV_FORMAT_MAX);
    assert_true(n > 0);
    return (size_t)n - 1;
}

/* A line whose shape is reusable gives csv_format()'s bytes, and one with
 * any difference but short prices is not reusable. */
static void assert_shape(const char *line, int reusable, const char *text)
{
    csv_tick_t t, u;
    csv_shape_t shape;
    const char *reason = NULL;
    size_t len = strlen(line);
    assert_int_equal(csv_parse_line_shape(line, len, &t, &shape, &reason), 1);
    assert_int_equal(csv_parse_line(line, len, &u, &reason), 1);
    assert_memory_equal(&t, &u, sizeof t);
    if (shape.reusable != reusable)
        print_error("line \"%s\": reusable %d, want %d\n", line, shape.reusable, reusable);
    assert_int_equal(shape.reusable, reusable);
    if (!reusable)
        return;
    char buf[CSV_FORMAT_MAX], want[CSV_FORMAT_MAX];
    size_t n;
    const char *got = csv_shape_text(line, &shape, buf, &n);
    /* the line itself when nothing is put in */
    assert_ptr_equal(got, shape.npad == 0 ? line : buf);
    assert_int_equal(formatted(line, len, want), n);
    assert_memory_equal(got, want, n);
    assert_int_equal(n, strlen(text));
    assert_memory_equal(got, text, n);
}

static void test_shape_text_is_the_formatted_line_with_short_prices_padded(void **state)
{
    (void)state;
    assert_shape("T,34200000000123,AAPL,101.2500,300,B", 1, "T,34200000000123,AAPL,101.2500,300,B");
    assert_shape("T,34200000000123,AAPL,101.25,300,B\n", 1, "T,34200000000123,AAPL,101.2500,300,B");
    assert_shape("T,1,A,7,1\r\n", 1, "T,1,A,7.0000,1");
    assert_shape("T,1,A,0.5,1,S", 1, "T,1,A,0.5000,1,S");
    assert_shape("T,1,A,10.123,1", 1, "T,1,A,10.1230,1");
    assert_shape("Q,0,BRK.A,0,0,0,0", 1, "Q,0,BRK.A,0.0000,0,0.0000,0");
    assert_shape("Q,5,X,1.1,10,2.22,20", 1, "Q,5,X,1.1000,10,2.2200,20");
    assert_shape("Q,18446744073709551615,ABCDEFGH,922337203685477.5807,4294967295,"
                 "922337203685477.5807,4294967295",
                 1,
                 "Q,18446744073709551615,ABCDEFGH,922337203685477.5807,4294967295,"
                 "922337203685477.5807,4294967295");
    /* Every other difference from csv_format()'s line */
    assert_shape("T,01,A,1.0000,1", 0, NULL);
    assert_shape("T,1,A,01.0000,1", 0, NULL);
    assert_shape("T,1,A,00.5,1", 0, NULL);
    assert_shape("T,1,A,1.0000,01", 0, NULL);
    assert_shape("T,1,A,1.0000,1,", 0, NULL);
    assert_shape("Q,1,A,1.0000,00,1.0000,0", 0, NULL);
    assert_shape("Q,1,A,1.0000,0,1.0000,007", 0, NULL);
    assert_shape("Q,1,A,1.0000,0,0001,0", 0, NULL);
}

/* A number's digits with `zeros` leading zeros put before them. */
static int put_number(char *p, int zeros, uint64_t v)
{
    return sprintf(p, "%.*s%llu", zeros, "000", (unsigned long long)v);
}

/* A price with `decimals` digits after its '.' (0: no '.') and `zeros`
 * leading zeros; the digits cut off must be zeros. */
static int put_price(char *p, int zeros, int64_t price, int decimals)
{
    static const unsigned scale[5] = {10000, 1000, 100, 10, 1};
    int n = put_number(p, zeros, (uint64_t)price / 10000);
    if (decimals == 0)
        return n;
    return n + sprintf(p + n, ".%0*u", decimals, (unsigned)(price % 10000) / scale[decimals]);
}

static void test_shape_text_matches_csv_format_for_generated_lines(void **state)
{
    (void)state;
    srand(1717);
    for (int i = 0; i < 50000; i++) {
        char line[CSV_LINE_MAX + 32];
        int plain = 1, n = 0;
        /* a leading zero one time in eight per number */
#define ZEROS() (rand() % 8 == 0 ? (plain = 0, 1 + rand() % 3) : 0)
        uint64_t ts =
            rand() % 4 == 0 ? (uint64_t)rand() % 10 : (uint64_t)rand() << 33 ^ (uint64_t)rand();
        int kind = rand() % 2;
        n += sprintf(line + n, "%c,", kind ? 'T' : 'Q');
        n += put_number(line + n, ZEROS(), ts);
        line[n++] = ',';
        size_t symlen = 1 + (size_t)rand() % CSV_SYMBOL_MAX;
        for (size_t k = 0; k < symlen; k++)
            line[n++] = "ABCXYZ019.-"[rand() % 11];
        for (int f = 0; f < (kind ? 1 : 2); f++) {
            /* prices with a whole part of 0 too, and a decimal part of
             * every length, cut where its digits are zeros */
            int64_t price = rand() % 3 == 0 ? rand() % 10000 : (int64_t)rand() * (rand() % 1000);
            int dec = rand() % 5;
            static const int64_t keep[5] = {10000, 1000, 100, 10, 1};
            price -= price % keep[dec];
            line[n++] = ',';
            n += put_price(line + n, price >= 10000 || rand() % 2 ? ZEROS() : 0, price, dec);
            line[n++] = ',';
            uint32_t size = rand() % 4 == 0 ? (uint32_t)rand() % 10 : (uint32_t)rand();
            if (kind && size == 0)
                size = 1;
            n += put_number(line + n, ZEROS(), size);
        }
        if (kind) {
            switch (rand() % 4) {
            case 0:
                n += sprintf(line + n, ",B");
                break;
            case 1:
                n += sprintf(line + n, ",S");
                break;
            case 2:
                n += sprintf(line + n, ",");
                plain = 0;
                break;
            default:
                break;
            }
        }
#undef ZEROS
        n += sprintf(line + n, "%s", (const char *[]){"", "\n", "\r\n"}[rand() % 3]);
        if (plain) {
            char want[CSV_FORMAT_MAX];
            size_t m = formatted(line, (size_t)n, want);
            want[m] = '\0';
            assert_shape(line, 1, want);
        } else {
            assert_shape(line, 0, NULL);
        }
    }
}

static void test_format_refuses_ticks_it_could_not_read_back(void **state)
{
    (void)state;
    csv_tick_t ok;
    memset(&ok, 0, sizeof ok);
    ok.kind = CSV_TRADE;
    strcpy(ok.symbol, "AAPL");
    ok.trade.price = 1;
    ok.trade.size = 1;
    char buf[CSV_FORMAT_MAX];
    assert_true(csv_format(&ok, buf, sizeof buf) > 0);

    csv_tick_t t = ok;
    t.kind = 'X';
    assert_int_equal(csv_format(&t, buf, sizeof buf), -EINVAL);
    t = ok;
    t.symbol[0] = '\0';
    assert_int_equal(csv_format(&t, buf, sizeof buf), -EINVAL);
    t = ok;
    strcpy(t.symbol, "a,b");
    assert_int_equal(csv_format(&t, buf, sizeof buf), -EINVAL);
    t = ok;
    memcpy(t.symbol, "ABCDEFGHI", sizeof t.symbol); /* no NUL in the field */
    assert_int_equal(csv_format(&t, buf, sizeof buf), -EINVAL);
    t = ok;
    t.trade.price = -1;
    assert_int_equal(csv_format(&t, buf, sizeof buf), -EINVAL);
    t = ok;
    t.trade.size = 0;
    assert_int_equal(csv_format(&t, buf, sizeof buf), -EINVAL);
    t = ok;
    t.trade.side = 'b';
    assert_int_equal(csv_format(&t, buf, sizeof buf), -EINVAL);
    t = ok;
    t.kind = CSV_QUOTE;
    t.quote.ask = -5;
    assert_int_equal(csv_format(&t, buf, sizeof buf), -EINVAL);
}

/* csv_format() takes a symbol of 1-8 good bytes and its NUL, whatever byte
 * stands at whichever place of the field, and refuses every other. */
static void test_format_judges_every_byte_at_every_place_of_the_symbol(void **state)
{
    (void)state;
    for (size_t len = 1; len <= 8; len++)
        for (size_t k = 0; k < sizeof((csv_tick_t *)0)->symbol; k++)
            for (int b = 0; b < 256; b++) {
                csv_tick_t t;
                memset(&t, 0, sizeof t);
                t.kind = CSV_TRADE;
                memcpy(t.symbol, "ABCDEFGH", len);
                t.symbol[k] = (char)b;
                t.trade.price = 1;
                t.trade.size = 1;
                size_t n = strnlen(t.symbol, sizeof t.symbol);
                int want = n >= 1 && n <= CSV_SYMBOL_MAX;
                for (size_t i = 0; i < n && want; i++)
                    want = symbol_byte((unsigned char)t.symbol[i]);
                char buf[CSV_FORMAT_MAX], expect[CSV_FORMAT_MAX];
                int rc = csv_format(&t, buf, sizeof buf);
                if (!want) {
                    assert_int_equal(rc, -EINVAL);
                    continue;
                }
                int m = snprintf(expect, sizeof expect, "T,0,%.*s,0.0001,1\n", (int)n, t.symbol);
                assert_int_equal(rc, m);
                assert_string_equal(buf, expect);
            }
}

static void test_format_needs_room_for_the_line_and_its_nul(void **state)
{
    (void)state;
    csv_tick_t t;
    memset(&t, 0, sizeof t);
    t.kind = CSV_TRADE;
    strcpy(t.symbol, "A");
    t.trade.price = 10000;
    t.trade.size = 1;
    char buf[32];
    memset(buf, 'x', sizeof buf);
    /* "T,0,A,1.0000,1\n" is 15 bytes */
    assert_int_equal(csv_format(&t, buf, 15), -ENOBUFS);
    assert_int_equal(buf[0], 'x');
    assert_int_equal(csv_format(&t, buf, 16), 15);
}

/* Lines a reader returned, joined by '|', with "<long@N>" for each line too
 * long, reported at line number N. */
struct lines {
    char text[4096];
    size_t n;
};

static void add(struct lines *l, const char *s, size_t n)
{
    assert_true(l->n + n + 1 < sizeof l->text);
    memcpy(l->text + l->n, s, n);
    l->n += n;
    l->text[l->n++] = '|';
    l->text[l->n] = '\0';
}

static void collect(csv_reader_t *r, int rc, const char *line, size_t len, struct lines *out)
{
    char tag[32];
    if (rc == 1) {
        add(out, line, len);
    } else if (rc == -EMSGSIZE) {
        int n = snprintf(tag, sizeof tag, "<long@%llu>", (unsigned long long)r->line_no);
        add(out, tag, (size_t)n);
    }
}

/* Split text[0..n) at cuts[0..ncuts), each chunk flush against one guard. */
static void read_lines(const char *text, size_t n, const size_t *cuts, size_t ncuts,
                       struct lines *out)
{
    struct guard g;
    assert_int_equal(guard_open(&g), 0);
    csv_reader_t r;
    csv_reader_init(&r);
    memset(out, 0, sizeof *out);
    size_t from = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t to = c < ncuts ? cuts[c] : n;
        csv_reader_push(&r, (const char *)guard_place(&g, text + from, to - from), to - from);
        const char *line;
        size_t len;
        int rc;
        while ((rc = csv_reader_next(&r, &line, &len)) != 0)
            collect(&r, rc, line, len, out);
        from = to;
    }
    const char *line = NULL;
    size_t len = 0;
    int rc = csv_reader_finish(&r, &line, &len);
    collect(&r, rc, line, len, out);
    guard_close(&g);
}

static void test_reader_splits_lines_and_strips_lf_and_crlf(void **state)
{
    (void)state;
    const char *text = "# head\nT,1,A,1,1\r\n\nQ,2,B,1,1,2,2\n\r\nlast";
    struct lines out;
    read_lines(text, strlen(text), NULL, 0, &out);
    assert_string_equal(out.text, "# head|T,1,A,1,1||Q,2,B,1,1,2,2||last|");
}

static void test_reader_returns_lines_in_place_when_whole_in_the_chunk(void **state)
{
    (void)state;
    const char text[] = "T,1,A,1,1\nQ,2,B,1,1,2,2\n";
    csv_reader_t r;
    csv_reader_init(&r);
    csv_reader_push(&r, text, sizeof text - 1);
    const char *line;
    size_t len;
    assert_int_equal(csv_reader_next(&r, &line, &len), 1);
    assert_ptr_equal(line, text);
    assert_int_equal(len, 9);
    assert_int_equal(csv_reader_next(&r, &line, &len), 1);
    assert_ptr_equal(line, text + 10);
    assert_int_equal(csv_reader_next(&r, &line, &len), 0);
    assert_int_equal(csv_reader_finish(&r, &line, &len), 0);
    assert_int_equal(r.line_no, 2);
}

static void test_reader_gives_the_same_lines_wherever_the_chunks_are_cut(void **state)
{
    (void)state;
    static char text[1024];
    int n = snprintf(text, sizeof text,
                     "T,1,A,1,1\r\n\n#c\r\nQ,22,BB,1.5,10,2.25,20\n%0300d\nT,3,C,3,3\r\nend", 0);
    struct lines whole;
    read_lines(text, (size_t)n, NULL, 0, &whole);
    assert_non_null(strstr(whole.text, "<long@5>|T,3,C,3,3|end|"));
    for (size_t i = 0; i <= (size_t)n; i++) {
        struct lines split;
        read_lines(text, (size_t)n, &i, 1, &split);
        assert_string_equal(split.text, whole.text);
    }
    for (size_t i = 0; i <= (size_t)n; i += 7) {
        for (size_t j = i; j <= (size_t)n; j += 3) {
            size_t cuts[2] = {i, j};
            struct lines split;
            read_lines(text, (size_t)n, cuts, 2, &split);
            assert_string_equal(split.text, whole.text);
        }
    }
}

static void test_reader_keeps_a_max_length_line_and_reports_a_longer_one_once(void **state)
{
    (void)state;
    static char text[5 * CSV_LINE_MAX];
    size_t n = 0;
    memset(text + n, 'a', CSV_LINE_MAX); /* line 1: exactly the limit */
    n += CSV_LINE_MAX;
    text[n++] = '\n';
    memset(text + n, 'b', CSV_LINE_MAX + 1); /* line 2: one byte over */
    n += CSV_LINE_MAX + 1;
    text[n++] = '\n';
    memcpy(text + n, "ok\n", 3); /* line 3 */
    n += 3;
    memset(text + n, 'c', 2 * CSV_LINE_MAX); /* line 4: far over, no newline */
    n += 2 * CSV_LINE_MAX;

    size_t cuts[] = {100, 300, 400, 600, 700};
    struct lines out;
    read_lines(text, n, cuts, sizeof cuts / sizeof cuts[0], &out);
    char want[4096];
    memset(want, 'a', CSV_LINE_MAX);
    strcpy(want + CSV_LINE_MAX, "|<long@2>|ok|<long@4>|");
    assert_string_equal(out.text, want);
}

static void test_reader_finish_returns_a_last_line_without_newline(void **state)
{
    (void)state;
    csv_reader_t r;
    csv_reader_init(&r);
    const char *line;
    size_t len;
    csv_reader_push(&r, "T,1,A,1,1\nT,2,B", 15);
    assert_int_equal(csv_reader_next(&r, &line, &len), 1);
    assert_int_equal(csv_reader_next(&r, &line, &len), 0);
    csv_reader_push(&r, ",2,2\r", 5);
    assert_int_equal(csv_reader_next(&r, &line, &len), 0);
    assert_int_equal(csv_reader_finish(&r, &line, &len), 1);
    assert_int_equal(len, 9);
    assert_memory_equal(line, "T,2,B,2,2", 9);
    assert_int_equal(r.line_no, 2);
    assert_int_equal(csv_reader_finish(&r, &line, &len), 0);
}

static void test_reader_numbers_every_line_for_log_messages(void **state)
{
    (void)state;
    const char text[] = "# one\n\nT,3,A,1,1\nbad line\n";
    csv_reader_t r;
    csv_reader_init(&r);
    csv_reader_push(&r, text, sizeof text - 1);
    const char *line;
    size_t len;
    uint64_t bad_at = 0;
    int rc;
    while ((rc = csv_reader_next(&r, &line, &len)) == 1) {
        csv_tick_t t;
        const char *reason;
        if (csv_parse_line(line, len, &t, &reason) < 0)
            bad_at = r.line_no;
    }
    assert_int_equal(bad_at, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trade_line_parses_every_field),
        cmocka_unit_test(test_trade_side_absent_or_empty_is_unknown),
        cmocka_unit_test(test_quote_line_parses_every_field),
        cmocka_unit_test(test_crossed_quote_is_accepted_as_markets_cross),
        cmocka_unit_test(test_comment_and_empty_lines_carry_no_tick),
        cmocka_unit_test(test_lf_and_crlf_terminators_are_stripped),
        cmocka_unit_test(test_missing_fields_are_rejected),
        cmocka_unit_test(test_extra_fields_are_rejected),
        cmocka_unit_test(test_the_first_fault_from_the_left_is_the_one_reported),
        cmocka_unit_test(test_unknown_record_types_are_rejected),
        cmocka_unit_test(test_bad_sides_are_rejected),
        cmocka_unit_test(test_symbol_is_1_to_8_of_upper_letters_digits_dot_dash),
        cmocka_unit_test(test_every_byte_is_judged_as_a_symbol_byte_alike),
        cmocka_unit_test(test_every_byte_at_every_place_of_a_symbol_is_judged_alike),
        cmocka_unit_test(test_timestamps_of_every_length_read_alike_and_nothing_past_the_line),
        cmocka_unit_test(test_timestamp_is_an_unsigned_64_bit_integer),
        cmocka_unit_test(test_prices_parse_exactly_and_errors_name_the_field),
        cmocka_unit_test(test_sizes_are_unsigned_32_bit_and_a_trade_has_at_least_1),
        cmocka_unit_test(test_spaces_around_fields_are_rejected),
        cmocka_unit_test(test_parse_reads_only_the_given_length),
        cmocka_unit_test(test_formats_trade_and_quote_lines_exactly),
        cmocka_unit_test(test_format_then_parse_gives_the_same_tick),
        cmocka_unit_test(test_shape_text_is_the_formatted_line_with_short_prices_padded),
        cmocka_unit_test(test_shape_text_matches_csv_format_for_generated_lines),
        cmocka_unit_test(test_format_refuses_ticks_it_could_not_read_back),
        cmocka_unit_test(test_format_judges_every_byte_at_every_place_of_the_symbol),
        cmocka_unit_test(test_format_needs_room_for_the_line_and_its_nul),
        cmocka_unit_test(test_reader_splits_lines_and_strips_lf_and_crlf),
        cmocka_unit_test(test_reader_returns_lines_in_place_when_whole_in_the_chunk),
        cmocka_unit_test(test_reader_gives_the_same_lines_wherever_the_chunks_are_cut),
        cmocka_unit_test(test_reader_keeps_a_max_length_line_and_reports_a_longer_one_once),
        cmocka_unit_test(test_reader_finish_returns_a_last_line_without_newline),
        cmocka_unit_test(test_reader_numbers_every_line_for_log_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

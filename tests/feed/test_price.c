/*
 * test_price.c - tests of feed/price.c: exact fixed-point parsing and
 * formatting, 4 implied decimals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "feed/price.h"
#include "tests/feed/wire.h"

static int parse(const char *s, int64_t *out)
{
    return price_parse(s, strlen(s), out);
}

static void test_parses_prices_exactly(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t value;
    } cases[] = {
        {"1", 10000},
        {"101.25", 1012500},
        {"0.0001", 1},
        {"0", 0},
        {"0.0", 0},
        {"007.5", 75000},
        {"1.2", 12000},
        {"12345.6789", 123456789},
        {"0.1", 1000},
        {"0.01", 100},
        {"0.001", 10},
        {"19.99", 199900},
        {"922337203685477.5807", INT64_MAX},
        {"922337203685477", 9223372036854770000},
        {"0000000000000000000000000000042", 420000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -1;
        assert_int_equal(parse(cases[i].text, &v), 0);
        assert_int_equal(v, cases[i].value);
    }
}

static void test_rejects_what_is_not_digits_with_an_optional_point_and_digits(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "1.",
        ".5",
        ".",
        "+1",
        " 1",
        "1 ",
        "1e3",
        "1,5",
        "1..2",
        "1.2.3",
        "abc",
        "0x10",
        "1.2a",
        "NaN",
        "inf",
        "\xd9\xa1" /* an Arabic-Indic one */,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 77;
        assert_int_equal(parse(bad[i], &v), PRICE_EMALFORMED);
        assert_int_equal(v, 77);
    }
}

static void test_rejects_negative_prices(void **state)
{
    (void)state;
    int64_t v = 77;
    assert_int_equal(parse("-1", &v), PRICE_ENEGATIVE);
    assert_int_equal(parse("-0.5", &v), PRICE_ENEGATIVE);
    assert_int_equal(parse("-0", &v), PRICE_ENEGATIVE);
    assert_int_equal(v, 77);
}

static void test_rejects_more_than_4_decimals_even_trailing_zeros_never_rounds(void **state)
{
    (void)state;
    int64_t v = 77;
    assert_int_equal(parse("1.00001", &v), PRICE_EDECIMALS);
    assert_int_equal(parse("1.00000", &v), PRICE_EDECIMALS);
    assert_int_equal(parse("0.12345", &v), PRICE_EDECIMALS);
    assert_int_equal(parse("101.250000000000000000001", &v), PRICE_EDECIMALS);
    assert_int_equal(v, 77);
    assert_int_equal(parse("1.9999", &v), 0);
    assert_int_equal(v, 19999);
}

static void test_detects_overflow_above_int64_max_units(void **state)
{
    (void)state;
    int64_t v = 77;
    assert_int_equal(parse("922337203685477.5808", &v), PRICE_EOVERFLOW);
    assert_int_equal(parse("922337203685477.9", &v), PRICE_EOVERFLOW);
    assert_int_equal(parse("922337203685478", &v), PRICE_EOVERFLOW);
    assert_int_equal(parse("99999999999999999999999999", &v), PRICE_EOVERFLOW);
    assert_int_equal(parse("18446744073709551616", &v), PRICE_EOVERFLOW);
    assert_int_equal(v, 77);
}

/* Integer parts of 1 to 30 digits, leading zeros or not: what fits is
 * read exactly, what passes INT64_MAX units overflows before its decimals
 * or the byte after it are judged. */
static void test_integer_parts_of_every_length_read_alike_leading_zeros_or_not(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 30; n++) {
        char text[48];
        int64_t v = 77;
        memset(text, '0', n - 1);
        memcpy(text + n - 1, "7.25", 5);
        assert_int_equal(parse(text, &v), 0);
        assert_int_equal(v, 72500);
        memset(text, '9', n);
        memcpy(text + n, ".12345x", 8);
        v = 77;
        int rc = parse(text, &v);
        assert_int_equal(rc, n <= 14 ? PRICE_EDECIMALS : PRICE_EOVERFLOW);
        assert_int_equal(v, 77);
        text[n] = '\0';
        rc = parse(text, &v);
        assert_int_equal(rc, n <= 14 ? 0 : PRICE_EOVERFLOW);
        if (n == 14)
            assert_int_equal(v, 999999999999990000);
    }
}

static void test_reads_only_the_given_length(void **state)
{
    (void)state;
    struct guard g;
    assert_int_equal(guard_open(&g), 0);
    int64_t v;
    const char *p = (const char *)guard_place(&g, "101.25", 6); /* no NUL after it */
    assert_int_equal(price_parse(p, 6, &v), 0);
    assert_int_equal(v, 1012500);
    assert_int_equal(price_parse(p, 3, &v), 0); /* "101" */
    assert_int_equal(v, 1010000);
    p = (const char *)guard_place(&g, "101.", 4);
    assert_int_equal(price_parse(p, 4, &v), PRICE_EMALFORMED);
    p = (const char *)guard_place(&g, "7", 1);
    assert_int_equal(price_parse(p, 1, &v), 0);
    assert_int_equal(v, 70000);
    guard_close(&g);
}

static void test_formats_with_exactly_4_decimals(void **state)
{
    (void)state;
    static const struct {
        int64_t value;
        const char *text;
    } cases[] = {
        {1012500, "101.2500"},
        {1, "0.0001"},
        {0, "0.0000"},
        {10000, "1.0000"},
        {123456789, "12345.6789"},
        {-1, "-0.0001"},
        {-1012500, "-101.2500"},
        {INT64_MAX, "922337203685477.5807"},
        {INT64_MIN, "-922337203685477.5808"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[PRICE_TEXT_MAX];
        int n = price_format(cases[i].value, buf, sizeof buf);
        assert_int_equal(n, (int)strlen(cases[i].text));
        assert_string_equal(buf, cases[i].text);
    }
}

static void test_format_needs_room_for_the_text_and_its_nul(void **state)
{
    (void)state;
    char buf[16];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(price_format(1012500, buf, 8), -ENOBUFS);
    assert_int_equal(buf[0], 'x');
    assert_int_equal(price_format(1012500, buf, 9), 8);
    assert_string_equal(buf, "101.2500");
}

static void test_parse_of_format_gives_back_every_non_negative_price(void **state)
{
    (void)state;
    srand(99);
    for (int i = 0; i < 100000; i++) {
        int64_t v = ((int64_t)rand() << 32 | (int64_t)rand()) >> (rand() % 48);
        if (v < 0)
            v = -(v + 1);
        char buf[PRICE_TEXT_MAX];
        int n = price_format(v, buf, sizeof buf);
        int64_t back;
        assert_int_equal(price_parse(buf, (size_t)n, &back), 0);
        assert_int_equal(back, v);
    }
}

static void test_scan_takes_the_price_at_the_start_and_says_how_much(void **state)
{
    (void)state;
    int64_t v = -1;
    size_t used = 99;
    assert_int_equal(price_scan("101.25,100", 10, &v, &used), 0);
    assert_int_equal(v, 1012500);
    assert_int_equal(used, 6);
    assert_int_equal(price_scan("1.2.3", 5, &v, &used), 0); /* the caller judges ".3" */
    assert_int_equal(v, 12000);
    assert_int_equal(used, 3);
    assert_int_equal(price_scan("7x", 2, &v, &used), 0);
    assert_int_equal(v, 70000);
    assert_int_equal(used, 1);
    v = -1;
    used = 99;
    assert_int_equal(price_scan("-1,", 3, &v, &used), PRICE_ENEGATIVE);
    assert_int_equal(price_scan("1.,", 3, &v, &used), PRICE_EMALFORMED);
    assert_int_equal(price_scan(",1", 2, &v, &used), PRICE_EMALFORMED);
    assert_int_equal(price_scan("1.00001,", 8, &v, &used), PRICE_EDECIMALS);
    assert_int_equal(price_scan("922337203685477.5808,", 21, &v, &used), PRICE_EOVERFLOW);
    assert_int_equal(v, -1); /* untouched on error */
    assert_int_equal(used, 99);
}

static void test_strerror_names_each_error(void **state)
{
    (void)state;
    assert_string_equal(price_strerror(PRICE_EMALFORMED), "malformed price");
    assert_string_equal(price_strerror(PRICE_ENEGATIVE), "negative price");
    assert_string_equal(price_strerror(PRICE_EDECIMALS), "price has more than 4 decimals");
    assert_string_equal(price_strerror(PRICE_EOVERFLOW), "price overflows");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_prices_exactly),
        cmocka_unit_test(test_rejects_what_is_not_digits_with_an_optional_point_and_digits),
        cmocka_unit_test(test_rejects_negative_prices),
        cmocka_unit_test(test_rejects_more_than_4_decimals_even_trailing_zeros_never_rounds),
        cmocka_unit_test(test_detects_overflow_above_int64_max_units),
        cmocka_unit_test(test_integer_parts_of_every_length_read_alike_leading_zeros_or_not),
        cmocka_unit_test(test_reads_only_the_given_length),
        cmocka_unit_test(test_formats_with_exactly_4_decimals),
        cmocka_unit_test(test_format_needs_room_for_the_text_and_its_nul),
        cmocka_unit_test(test_parse_of_format_gives_back_every_non_negative_price),
        cmocka_unit_test(test_scan_takes_the_price_at_the_start_and_says_how_much),
        cmocka_unit_test(test_strerror_names_each_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

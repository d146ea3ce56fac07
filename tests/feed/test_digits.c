/*
 * test_digits.c - tests of feed/digits.h: decimal text of unsigned integers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "feed/digits.h"

/* digits_u64(v) must write what printf writes, nothing past it, and count
 * what it wrote. */
static void assert_digits(uint64_t v)
{
    char got[DIGITS_U64_MAX + 8], want[32];
    memset(got, '#', sizeof got);
    char *end = digits_u64(got, v);
    int n = snprintf(want, sizeof want, "%" PRIu64, v);
    assert_int_equal(end - got, n);
    assert_memory_equal(got, want, (size_t)n);
    assert_int_equal(got[n], '#');
    assert_int_equal(digits_count(v), (unsigned)n);
}

static void test_every_digit_count_and_its_edges_are_written_as_printf_does(void **state)
{
    (void)state;
    assert_digits(0);
    assert_digits(UINT64_MAX);
    for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
        assert_digits(p - 1);
        assert_digits(p);
        assert_digits(p + 1);
        assert_digits(p * 10 - 1);
    }
    assert_digits(10000000000000000000ull);
}

static void test_values_across_the_range_are_written_as_printf_does(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13; /* xorshift64 */
        x ^= x >> 7;
        x ^= x << 17;
        assert_digits(x >> (i % 64));
    }
}

/* Zeros inside and at the edges of every group of eight digits written
 * at once, and a run of zeros across two groups. */
static void test_zeros_inside_each_group_of_eight_are_written_as_printf_does(void **state)
{
    (void)state;
    assert_digits(100000000ull);
    assert_digits(100000001ull);
    assert_digits(1000000000000000ull);
    assert_digits(10000000000000001ull);
    assert_digits(1000000100000001ull);
    assert_digits(12300000000000000456ull);
    assert_digits(10000000090000000ull);
    for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10)
        assert_digits(p * 9 + 100000000ull * (p % 7));
}

/* digits_put8() works on the two halves of four digits side by side: every
 * half, next to halves at their edges and to itself, is written as printf
 * writes it, leading zeros too. */
static void test_every_half_of_an_eight_digit_group_is_written_as_printf_does(void **state)
{
    (void)state;
    static const uint32_t edges[] = {0, 1, 9, 10, 99, 100, 101, 999, 1000, 5050, 9990, 9999};
    for (uint32_t a = 0; a < 10000; a++)
        for (size_t i = 0; i <= sizeof edges / sizeof edges[0]; i++) {
            uint32_t b = i < sizeof edges / sizeof edges[0] ? edges[i] : a;
            uint32_t vs[2] = {a * 10000 + b, b * 10000 + a};
            for (int k = 0; k < 2; k++) {
                char got[9], want[9];
                got[8] = '#';
                digits_put8(got, vs[k]);
                snprintf(want, sizeof want, "%08u", (unsigned)vs[k]);
                assert_memory_equal(got, want, 8);
                assert_int_equal(got[8], '#');
            }
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_digit_count_and_its_edges_are_written_as_printf_does),
        cmocka_unit_test(test_values_across_the_range_are_written_as_printf_does),
        cmocka_unit_test(test_zeros_inside_each_group_of_eight_are_written_as_printf_does),
        cmocka_unit_test(test_every_half_of_an_eight_digit_group_is_written_as_printf_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

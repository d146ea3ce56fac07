/*
 * price.c - parse and format fixed-point prices, exactly.
 *
 * Parsing accumulates the integer part in an unsigned 64-bit value and
 * checks it against INT64_MAX / PRICE_SCALE before every step, so it cannot
 * wrap; the fraction is at most 4 digits and is scaled up, never down.
 * Formatting works on the magnitude as uint64_t so INT64_MIN has no special
 * case. Neither touches floating point or the locale, and neither reads or
 * writes outside the bounds it is given.
 */
#include "feed/price.h"

#include <string.h>

#include "feed/digits.h"

/* Digits of an integer part that stay below INT64_MAX / PRICE_SCALE
 * (922,337,203,685,477: 15 digits) whatever they are. */
#define WHOLE_SAFE_DIGITS 14
_Static_assert(99999999999999 <= INT64_MAX / PRICE_SCALE, "14 digits never pass int_max");

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int price_scan(const char *s, size_t len, int64_t *out, size_t *used)
{
    const uint64_t int_max = (uint64_t)INT64_MAX / PRICE_SCALE;
    size_t i = 0;

    if (len > 0 && s[0] == '-')
        return PRICE_ENEGATIVE;

    /* The integer part's digits are read without a check: up to
     * WHOLE_SAFE_DIGITS of them cannot pass int_max. A longer run, rare, is
     * read again with the check before every step. */
    uint64_t whole = 0;
    while (i < len && is_digit(s[i]))
        whole = whole * 10 + (unsigned)(s[i++] - '0');
    if (i == 0)
        return PRICE_EMALFORMED;
    if (i > WHOLE_SAFE_DIGITS) {
        whole = 0;
        for (size_t k = 0; k < i; k++) {
            unsigned d = (unsigned)(s[k] - '0');
            if (whole > (int_max - d) / 10)
                return PRICE_EOVERFLOW;
            whole = whole * 10 + d;
        }
    }

    uint64_t frac = 0;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        while (i < len && is_digit(s[i])) {
            if (i - start == PRICE_DECIMALS)
                return PRICE_EDECIMALS;
            frac = frac * 10 + (unsigned)(s[i] - '0');
            i++;
        }
        if (i == start)
            return PRICE_EMALFORMED;
        frac *= digits_pow10[PRICE_DECIMALS - (i - start)];
    }

    uint64_t v = whole * PRICE_SCALE + frac;
    if (v > (uint64_t)INT64_MAX)
        return PRICE_EOVERFLOW;
    *out = (int64_t)v;
    *used = i;
    return 0;
}

int price_parse(const char *s, size_t len, int64_t *out)
{
    int64_t v;
    size_t used;
    int rc = price_scan(s, len, &v, &used);
    if (rc != 0)
        return rc;
    if (used != len)
        return PRICE_EMALFORMED;
    *out = v;
    return 0;
}

char *price_put(char *p, int64_t price)
{
    _Static_assert(PRICE_DECIMALS == 4, "the decimals are written as two pairs");
    uint64_t mag = price < 0 ? 0 - (uint64_t)price : (uint64_t)price;
    unsigned frac = (unsigned)(mag % PRICE_SCALE);

    if (price < 0)
        *p++ = '-';
    p = digits_u64(p, mag / PRICE_SCALE);
    *p++ = '.';
    memcpy(p, &digits_pairs[2 * (frac / 100)], 2);
    memcpy(p + 2, &digits_pairs[2 * (frac % 100)], 2);
    return p + 4;
}

int price_format(int64_t price, char *buf, size_t cap)
{
    char tmp[PRICE_TEXT_MAX];
    size_t n = (size_t)(price_put(tmp, price) - tmp);

    if (cap < n + 1)
        return -ENOBUFS;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return (int)n;
}

const char *price_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case PRICE_EMALFORMED:
        return "malformed price";
    case PRICE_ENEGATIVE:
        return "negative price";
    case PRICE_EDECIMALS:
        return "price has more than 4 decimals";
    case PRICE_EOVERFLOW:
        return "price overflows";
    default:
        return "unexpected error";
    }
}

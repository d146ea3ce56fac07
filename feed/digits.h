/*
 * digits.h - decimal text of unsigned integers, written by hand.
 *
 * Every published tick is formatted (its timestamp alone has 19 digits), so
 * the writer takes two digits per division from a table of the 100 pairs
 * "00".."99" instead of one: half the dependent divisions of the digit-at-a-
 * time loop. No NUL is written; the caller's buffer must have room for
 * DIGITS_U64_MAX bytes.
 */
#ifndef TICKD_FEED_DIGITS_H
#define TICKD_FEED_DIGITS_H

#include <stdint.h>
#include <string.h>

#define DIGITS_U64_MAX 20 /* 18446744073709551615 */

extern const char digits_pairs[200];
extern const uint64_t digits_pow10[20]; /* 10^0 .. 10^19 */

/* The number of decimal digits of v, 1 to 20: its bit length times
 * log10(2) (1233 / 4096) is the count or one less, and one comparison tells.
 * 0 counts as 1 (v | 1 never crosses a power of ten: those are even). */
static inline unsigned digits_count(uint64_t v)
{
    uint64_t x = v | 1;
    unsigned t = ((unsigned)(64 - __builtin_clzll(x)) * 1233) >> 12;
    return t + (x >= digits_pow10[t]);
}

/* Writes the eight digits of v (below 10^8), leading zeros too, at w:
 * four pairs from 32-bit divisions by constants, independent of each
 * other once v is split in two halves. */
static inline void digits_put8(char *w, uint32_t v)
{
    uint32_t hi = v / 10000, lo = v - hi * 10000;
    memcpy(w, &digits_pairs[2 * (hi / 100)], 2);
    memcpy(w + 2, &digits_pairs[2 * (hi % 100)], 2);
    memcpy(w + 4, &digits_pairs[2 * (lo / 100)], 2);
    memcpy(w + 6, &digits_pairs[2 * (lo % 100)], 2);
}

/* Writes v's digits at p; returns the end. Eight digits at a time from the
 * right while more than eight are left (a nanosecond timestamp's 19 take
 * two such steps), then two at a time in 32 bits. */
static inline char *digits_u64(char *p, uint64_t v)
{
    unsigned n = digits_count(v);
    char *w = p + n;
    while (v >= 100000000) {
        uint64_t q = v / 100000000;
        w -= 8;
        digits_put8(w, (uint32_t)(v - q * 100000000));
        v = q;
    }
    uint32_t s = (uint32_t)v;
    while (s >= 100) {
        uint32_t q = s / 100;
        w -= 2;
        memcpy(w, &digits_pairs[2 * (s - q * 100)], 2);
        s = q;
    }
    if (s >= 10) {
        w -= 2;
        memcpy(w, &digits_pairs[2 * s], 2);
    } else {
        *--w = (char)('0' + s);
    }
    return p + n;
}

#endif

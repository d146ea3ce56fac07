/*
 * price.h - tickd's fixed-point prices: int64 with 4 implied decimals.
 *
 * 101.25 dollars is 1012500; one ten-thousandth, the smallest step, is 1.
 * ITCH Price(4) fields are already in this unit. Prices are never floating
 * point anywhere: text is parsed digit by digit into the integer and
 * formatted back digit by digit, so a price read and written again is the
 * same text (up to trailing zeros, which formatting always writes: "101.2500").
 *
 * Accepted text, and nothing else: one or more digits, optionally followed by
 * a '.' and one to four digits. So "1", "0.0001", "101.25" and "007.5" are
 * prices; "1.", ".5", "+1", " 1", "1e3" and "" are malformed; "-1" is
 * negative; "1.00001" has too many decimals (rejected even when the extra
 * digits are zeros: rounding never happens); anything above INT64_MAX units
 * (922337203685477.5807) overflows.
 */
#ifndef TICKD_FEED_PRICE_H
#define TICKD_FEED_PRICE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define PRICE_SCALE    10000 /* units per dollar */
#define PRICE_DECIMALS 4
#define PRICE_TEXT_MAX 22 /* "-922337203685477.5808" and its NUL */

enum price_err {
    PRICE_EMALFORMED = -EINVAL, /* not digits[.digits] */
    PRICE_ENEGATIVE = -EDOM,    /* a leading '-': prices are never negative */
    PRICE_EDECIMALS = -ENOTSUP, /* more than 4 digits after the point */
    PRICE_EOVERFLOW = -ERANGE,  /* above INT64_MAX units */
};

/* Parse s[0..len) (not NUL-terminated) into *out. Returns 0 or a price_err;
 * *out is untouched on error. */
int price_parse(const char *s, size_t len, int64_t *out);

/* The price at the start of s[0..len), for a reader that finds where a field
 * ends by reading it: 0 with *used the bytes it took (the text after them is
 * the caller's to judge), or a price_err; *out and *used are untouched on
 * error. */
int price_scan(const char *s, size_t len, int64_t *out, size_t *used);

/* Write `price` as text with exactly 4 decimals ("101.2500", "-0.0001") and a
 * NUL into buf[0..cap). Returns the length without the NUL, or -ENOBUFS if
 * cap is too small (PRICE_TEXT_MAX always suffices). Any int64 is accepted. */
int price_format(int64_t price, char *buf, size_t cap);

/* The same text without the NUL, at p, which has room for PRICE_TEXT_MAX
 * bytes; returns its end. For encoders that write a line in place. */
char *price_put(char *p, int64_t price);

/* A short description of a price_err, for a log line. */
const char *price_strerror(int err);

#endif

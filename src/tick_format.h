/*
 * tick_format.h - a tick as JSON or CSV text, and its channel name: what a
 * subscriber reads inside a message frame, and on which channel.
 *
 * Both are pure functions of the tick, written for the hot path: digits by
 * hand into a caller's buffer, no printf, no allocation. The RESP framing
 * around the text, and the shared buffers it is written to, are payload.h's.
 */
#ifndef TICKD_SRC_TICK_FORMAT_H
#define TICKD_SRC_TICK_FORMAT_H

#include <stddef.h>

#include "feed/bars.h"
#include "feed/market.h"

enum payload_format {
    PAYLOAD_JSON = 0, /* {"sym":"AAPL","kind":"trade","price":"101.2500",...} */
    PAYLOAD_CSV = 1,  /* the feed/csv.h line, without its newline */
};

#define PAYLOAD_CHANNEL_MAX (6 + SYMBOL_MAX_LEN) /* "trade." or "quote." and a symbol */
#define PAYLOAD_TEXT_MAX    256                  /* a tick as JSON or CSV never needs more */

/* A bar's channel, "bar.<interval>.<SYMBOL>", and its text at most. */
#define PAYLOAD_BAR_CHANNEL_MAX (4 + BARS_INTERVAL_NAME_MAX + SYMBOL_MAX_LEN)
#define PAYLOAD_BAR_TEXT_MAX    384

/* The channel of a tick, "trade.AAPL" or "quote.AAPL", into buf (no NUL);
 * returns its length. */
size_t payload_channel(const tick_t *t, char buf[PAYLOAD_CHANNEL_MAX]);

/* The tick as text in format (enum payload_format) into buf[0..cap), no NUL.
 * Returns the length, -EINVAL for a tick the CSV format cannot express (a
 * negative price, a trade of size 0), or -ENOBUFS (PAYLOAD_TEXT_MAX always
 * suffices). */
int payload_format_tick(const tick_t *t, int format, char *buf, size_t cap);

/* The channel of a bar, "bar.1m.AAPL", into buf (no NUL); returns its
 * length. */
size_t payload_bar_channel(const bar_t *b, char buf[PAYLOAD_BAR_CHANNEL_MAX]);

/* The bar as text in format into buf[0..cap), no NUL (tick_format.c shows
 * both forms). Returns the length, or -ENOBUFS (PAYLOAD_BAR_TEXT_MAX always
 * suffices). */
int payload_format_bar(const bar_t *b, int format, char *buf, size_t cap);

/* The header line of a file of bars in CSV, without its newline. */
extern const char payload_bar_csv_header[];

#endif

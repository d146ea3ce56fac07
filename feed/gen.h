/*
 * gen.h - a deterministic synthetic trading day, as ITCH 5.0 (BinaryFILE) or
 * as CSV ticks: test data and benchmark input that anyone can regenerate.
 *
 * The same options give byte-identical output on every run and machine (only
 * integer arithmetic and a seeded xoshiro256** generator); a different seed
 * gives different symbols, prices and order flow.
 *
 * gen_itch() writes, in BinaryFILE framing, exactly `messages` messages:
 *
 *   S 'O' start of messages                   03:00
 *   R stock directory, one per symbol          03:00 +
 *   S 'S' start of system hours               04:00
 *   H 'T' trading, one per symbol              04:00 +
 *   S 'Q' start of market hours               09:30
 *   order flow, messages - GEN_ITCH_FIXED(symbols) of them, 09:30 to 16:00
 *   S 'M' end of market hours                 16:00
 *   S 'E' end of system hours                 20:00
 *   S 'C' end of messages                     20:05
 *
 * The order flow is close to a real day's mix: A 44%, D 43%, U 7%, E 3%,
 * X 2%, and the last 1% P 0.5%, F 0.3%, C 0.2%. Each symbol has a base price
 * between $5 and $500 and a mid that random-walks in cent ticks within about
 * 50 cents of it, never onto or past its best live bid or ask; a buy is
 * priced 1 to 25 ticks below the mid and a sell as far above, so no book is
 * ever crossed: every live bid is below every live ask of its symbol. Half
 * the traffic goes to the first tenth of the symbols (in directory order),
 * the rest is spread evenly. The generator tracks the live orders
 * itself: D, U, E, X and C name only an order that was added and still has
 * shares; X cancels only part of an order (an order of 1 share is deleted
 * instead), E and C execute part or all of it, U replaces it with a new
 * reference of the same side and symbol. When no order is live, the message
 * drawn is an add instead. Order references count up from 1 and match
 * numbers likewise; P trades carry order reference 0, as on Nasdaq's feed.
 * Timestamps never decrease.
 *
 * gen_csv() writes one comment line and then `messages` ticks in the format
 * of csv.h (80% quotes, 20% trades) on the same symbols and day, timestamps
 * in nanoseconds since midnight.
 */
#ifndef TICKD_FEED_GEN_H
#define TICKD_FEED_GEN_H

#include <stddef.h>
#include <stdint.h>

#define GEN_SYMBOLS_MAX 65535 /* stock locate codes are 16 bits; 0 is market-wide */

/* Messages gen_itch() writes besides the order flow: six system events and an
 * R and an H per symbol. */
#define GEN_ITCH_FIXED(symbols) (6 + 2 * (uint64_t)(symbols))

typedef struct gen_opts {
    uint32_t symbols;  /* 1..GEN_SYMBOLS_MAX */
    uint64_t messages; /* ITCH: messages in all, at least GEN_ITCH_FIXED(symbols);
                          CSV: ticks (lines after the comment) */
    uint64_t seed;     /* any value */
} gen_opts_t;

/* Where output goes: write all of buf[0..len) and return 0, or return a
 * negative errno, which stops the generator and is returned by it. */
typedef int (*gen_write_fn)(void *ctx, const void *buf, size_t len);

/* A gen_write_fn for a stdio stream: ctx is a FILE *. Returns -EIO on a
 * short write. */
int gen_write_stdio(void *ctx, const void *buf, size_t len);

/* Generate the day as ITCH 5.0 in BinaryFILE framing. Returns 0, -EINVAL for
 * options out of range, -ENOMEM, or the error of `write`. */
int gen_itch(const gen_opts_t *opts, gen_write_fn write, void *ctx);

/* Generate the day as CSV ticks. Same returns as gen_itch(). */
int gen_csv(const gen_opts_t *opts, gen_write_fn write, void *ctx);

#endif

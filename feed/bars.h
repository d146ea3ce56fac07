/*
 * bars.h - OHLCV bars per symbol and interval, built from trade ticks.
 *
 * A bar builder takes every trade of the day (bars_trade()) and the exchange
 * clock (bars_clock(), from every tick; bars_idle(), from a timer), and hands each bar to its sink
 * once the bar's interval has closed. Bars are objects from the heap (bar_type), like ticks; the
 * builder keeps the last bar of each symbol and interval as a last value (bars_last()). The rules
 * (alignment, what closes a bar, VWAP rounding, late trades, the day's roll) are in the essay at
 * the top of feed/bars.c. Pure: no loop, no clock of its own, no system allocator call per trade;
 * one thread.
 */
#ifndef TICKD_FEED_BARS_H
#define TICKD_FEED_BARS_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/object.h"
#include "feed/market.h"

#define BARS_MAX_INTERVALS     8
#define BARS_INTERVAL_NAME_MAX 8            /* "86400s" and its NUL fit; names are shorter */
#define BARS_INTERVAL_MIN_NS   1000000000ll /* 1s */
#define BARS_INTERVAL_MAX_NS   (86400ll * 1000000000ll) /* 24h */

/* One closed bar: the trades of one symbol in [start, start + interval_ns). */
typedef struct bar {
    obj_t ob;
    char sym[SYMBOL_MAX_LEN + 1];         /* the symbol, NUL terminated */
    uint8_t sym_len;                      /* strlen(sym), 1..8 */
    uint8_t interval;                     /* index of the builder's interval */
    char name[BARS_INTERVAL_NAME_MAX];    /* the interval as in the channel: "1m" */
    int64_t interval_ns;                  /* its length */
    int64_t start;                        /* exchange ns, aligned (bars.c) */
    int64_t open, high, low, close, vwap; /* 4 implied decimals, as tick prices */
    uint64_t volume;                      /* shares traded, the sum of the sizes */
    uint64_t trades;                      /* trades in the bar, >= 1 */
} bar_t;

extern const obj_type_t bar_type;

/* Receives each closed bar, borrowed for the call: a sink that keeps it takes
 * a reference. */
typedef void (*bars_sink_fn)(void *arg, bar_t *bar);

typedef struct bars_stats {
    uint64_t bars;      /* bars closed and handed to the sink */
    uint64_t trades;    /* trades taken into a bar */
    uint64_t late;      /* trades for an interval already closed or passed: dropped */
    uint64_t refused;   /* trades refused: size 0, a bad symbol, a bar's volume past 2^64 */
    uint64_t no_memory; /* bars lost: no memory for the object or the symbol's state */
} bars_stats_t;

typedef struct bars bars_t;

/* A builder on heap for the n intervals (each BARS_INTERVAL_MIN_NS to
 * BARS_INTERVAL_MAX_NS, whole seconds, no two alike; 1 <= n <=
 * BARS_MAX_INTERVALS), aligned to day_start_ns (the exchange's midnight in
 * the ticks' clock), closing a bar by the clock grace_ns (0 to 24h) after its
 * end. sink (not NULL) receives the bars. 0, -EINVAL or -ENOMEM. */
int bars_create(heap_t *heap, const int64_t *intervals_ns, size_t n, int64_t grace_ns,
                int64_t day_start_ns, bars_sink_fn sink, void *arg, bars_t **out);

/* Drops the open bars unpublished, and the last values. NULL is ignored. */
void bars_destroy(bars_t *b);

/* One trade of sym[0..len) at exchange time ts, received at ts_recv; a
 * trade that is not refused moves the clock to ts first (bars_clock()).
 * 0, or -EINVAL (refused: size 0, a bad symbol, a time out of range, a
 * volume past 2^64), -EALREADY (late: dropped), -ENOMEM; each counted. */
int bars_trade(bars_t *b, const char *sym, size_t len, int64_t price, uint32_t size, int64_t ts,
               int64_t ts_recv);
/* bars_trade() for a symbol of a market (its name valid, as the market
 * interns only those): the same, found without the name's check and hash
 * through a cache the builder keeps on the symbol (bars_gen, bars_entry;
 * feed/bars.c), which it may write. */
int bars_symbol_trade(bars_t *b, symbol_t *sym, int64_t price, uint32_t size, int64_t ts,
                      int64_t ts_recv);

/* The exchange clock is at ts (a tick of any symbol was stamped ts, and
 * received at ts_recv; an earlier ts changes nothing): every open bar whose
 * end + grace is at or before it closes. */
void bars_clock(bars_t *b, int64_t ts, int64_t ts_recv);

/* The loop's timer, at now_recv in the clock of the ticks' ts_recv: the
 * exchange clock is estimated as its last value plus the time gone by since
 * the tick that moved it was received, and what bars_clock() would close at
 * that time closes. The estimate never moves the clock itself. */
void bars_idle(bars_t *b, int64_t now_recv);

/* Closes every open bar now (the end of a replay, the day's roll). */
void bars_flush(bars_t *b);

/* A looping replay starts its file again, within the day: bars_flush(),
 * then the clock and each symbol's record of its closed intervals are
 * forgotten, so that the file's times, which go back to its start, make
 * bars again. The last values stay until new bars replace them. */
void bars_rewind(bars_t *b);

/* The day's roll: bars_flush(), then every symbol is forgotten (its last
 * values released) and the bars align to the new day_start_ns. */
void bars_roll(bars_t *b, int64_t day_start_ns);

/* The last closed bar of sym on interval i, or NULL. Borrowed: it lives
 * until the next call into the builder. */
const bar_t *bars_last(const bars_t *b, const char *sym, size_t len, size_t i);

/* The builder's intervals: how many, and the index of the one named
 * name[0..len) ("1m"), or -1. */
size_t bars_count(const bars_t *b);
int bars_interval_index(const bars_t *b, const char *name, size_t len);

const bars_stats_t *bars_stats(const bars_t *b);

/* "1s", "90s", "5m", "1h": a whole number and one unit (s, m, h), 1s to 24h,
 * into *ns. 0, or -EINVAL for anything else. */
int bars_interval_parse(const char *s, size_t len, int64_t *ns);

/* The interval's name in channels: the largest unit that is exact ("60s" is
 * "1m", "90s" stays "90s"), NUL terminated; returns its length. */
size_t bars_interval_name(int64_t ns, char buf[BARS_INTERVAL_NAME_MAX]);

#endif

/*
 * market.h - ticks, symbols, orders and the market that makes them.
 *
 * A market is one trading day's state on one heap: the interned symbols (each
 * with its order book and its last trade and last quote), the live orders by
 * reference, and the sink that every new tick is handed to. Decoders feed it
 * (market_itch_raw() or market_itch() for ITCH 5.0 messages,
 * market_trade()/market_quote() for CSV, journal and PUBLISH input); it
 * keeps the books, and turns executions
 * and trades into trade ticks and every change of a best bid or offer into a
 * quote tick.
 *
 * Everything here is a refcounted object from the heap (alloc/object.h):
 *   Tick    a trade or a quote; holds its Symbol. No container: the
 *           collector sees a last value through its symbol (feed/tick.c).
 *   Symbol  interned by name; holds its last trade and last quote, which hold
 *           it back: Symbol <-> Tick cycles, reclaimed by the collector once
 *           the market lets go of the symbol.                (container)
 *   Order   a live ITCH order; owned by the market's order table, points at its
 *           Symbol without a reference (the market outlives its orders).
 * Prices are int64 with 4 implied decimals, never floats.
 */
#ifndef TICKD_FEED_MARKET_H
#define TICKD_FEED_MARKET_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc/object.h"
#include "feed/journal.h"

typedef struct itch_msg itch_msg_t;

#define SYMBOL_MAX_LEN 8

enum tick_kind {
    TICK_TRADE = 1,
    TICK_QUOTE = 2,
};

typedef struct symbol symbol_t;
typedef struct book book_t;

/* A trade (price, size, side) or a quote (bid, bid size, ask, ask size). */
typedef struct tick {
    obj_t ob;
    symbol_t *sym;     /* the instrument; a reference */
    uint8_t kind;      /* enum tick_kind */
    char side;         /* trade: 'B' buyer initiated, 'S' seller, 0 unknown (ITCH P, Q) */
    uint32_t size;     /* trade size, or bid size */
    int64_t price;     /* trade price, or bid; 4 implied decimals */
    int64_t ask;       /* quote: best offer (0 when the side is empty) */
    uint32_t ask_size; /* quote: shares at the best offer */
    uint64_t seq;      /* the market's tick sequence number, from 1 */
    int64_t ts_exch;   /* exchange timestamp, ns */
    int64_t ts_recv;   /* when tickd received it, ns (CLOCK_REALTIME) */
} tick_t;

/* Fills *rec with the journal's record of t (feed/journal.h): what a journal
 * keeps of a tick, for the daemon and `tickd replay --journal` to append. */
void tick_to_journal_rec(const tick_t *t, journal_rec_t *rec);

/* What a consumer above the market keeps on a symbol to skip work it would
 * repeat (the pub/sub layer: the topic of each of the symbol's channels, a
 * lookup per tick, and the book as GET last rendered it). The
 * market zeroes it when it makes the symbol and never reads it; the owner
 * decides when an entry is still good (version) and clears what it owns
 * before it goes away. */
typedef struct symbol_slot {
    const void *owner;   /* who filled it; NULL: nobody yet */
    void *ref[2];        /* by tick kind - 1; the owner's to interpret */
    uint64_t version[2]; /* the owner's version when ref[k] was filled */
    void *book;          /* the owner's copy of what it read of the book, or NULL */
} symbol_slot_t;

/* An instrument, interned by name in its market. */
struct symbol {
    obj_t ob;
    char name[SYMBOL_MAX_LEN + 1]; /* NUL terminated */
    uint8_t len;                   /* strlen(name), 1..8 */
    uint16_t locate;               /* ITCH stock locate, 0 when none */
    uint32_t bars_gen;             /* generation of the bar builder that set bars_entry */
    tick_t *last_trade;            /* the last-value cache; references */
    tick_t *last_quote;
    book_t *book;       /* price levels of the live orders */
    symbol_slot_t slot; /* the pub/sub layer's cache (symbol_slot_t) */
    void *bars_entry;   /* its entry for the symbol (feed/bars.c), while bars_gen is
                           its generation; the market zeroes both, never reads them */
};

/* A live order in a book. */
typedef struct order {
    obj_t ob;
    uint64_t ref;  /* the order reference number */
    symbol_t *sym; /* borrowed: the market holds the symbol */
    int64_t price; /* 4 implied decimals */
    uint32_t shares;
    char side;       /* 'B' or 'S' */
    uint16_t source; /* who added it (market_set_source()); 0 for anyone unnamed */
} order_t;

extern const obj_type_t tick_type;
extern const obj_type_t symbol_type;
extern const obj_type_t order_type;

/* Receives every new tick. The tick is borrowed for the call: a sink that
 * keeps it takes a reference. */
typedef void (*market_sink_fn)(void *arg, tick_t *tick);

/* What the market saw; the feed metrics come from here. */
typedef struct market_stats {
    uint64_t messages; /* ITCH messages processed */
    uint64_t trades;   /* trade ticks made */
    uint64_t quotes;   /* quote ticks made */
    uint64_t orders_added;
    uint64_t orders_live;
    uint64_t unknown_orders;    /* E/C/X/D/U naming an order not in the book */
    uint64_t unknown_stocks;    /* messages naming a locate with no directory entry */
    uint64_t rejected;          /* inputs refused (bad symbol, zero shares, ...) */
    uint64_t broken_trades;     /* ITCH B messages: counted, never ticks (market.c) */
    uint64_t symbols;           /* interned now, however they came */
    uint64_t published_symbols; /* of those, made by market_published_symbol() */
} market_stats_t;

typedef struct market market_t;

/* A market on heap; sink (may be NULL) receives the ticks. day_start_ns is
 * the exchange's midnight as ns since the epoch: ITCH timestamps (ns since
 * midnight) are added to it. 0 or -ENOMEM. */
int market_create(heap_t *heap, int64_t day_start_ns, market_sink_fn sink, void *arg,
                  market_t **out);

/* Drops the books, the orders and the symbol table. Symbols still held by a
 * tick (their last-value cycles) are left for the collector; everything else
 * is freed on the spot. */
void market_destroy(market_t *m);

/* Applies one decoded ITCH message received at ts_recv. Returns 0, or -ENOENT
 * for a reference to an unknown order or stock (counted; nothing changes). */
int market_itch(market_t *m, const itch_msg_t *msg, int64_t ts_recv);

/* The same for the raw bytes msg[0..len) of one message: the types that
 * make up nearly all of a day (A F E C X D U) are read straight from the
 * bytes, without a decoded copy; the others go through itch_decode(). Returns
 * as market_itch(), or the error of itch_check() (nothing counted). */
int market_itch_raw(market_t *m, const uint8_t *msg, size_t len, int64_t ts_recv);

/* market_itch_raw() for a message that has passed itch_check() already (a
 * BinaryFILE framer yields only such: binfile_reader_next()), so the check
 * is not made twice. A build with TICKD_ASSERTS checks it anyway. */
int market_itch_framed(market_t *m, const uint8_t *msg, size_t len, int64_t ts_recv);

/* What market_prefetch() keeps of the messages it was given on its last
 * two calls, for its next: the reference (0 for none) and the symbol the
 * last one names, and the symbol the one before names. Start it at
 * {0, NULL, NULL}. */
typedef struct market_lookahead {
    uint64_t ref;
    const symbol_t *sym;
    const symbol_t *book_sym;
} market_lookahead_t;

/* Hints for a reader that applies its messages in order and gives each one
 * here about three messages before it is applied, once: the market
 * prefetches what applying it will touch, in three steps a call apart, each
 * reading only what the step before brought in. For msg[0..len) (NULL:
 * none, at the end of the input), far: the order's slot and the symbol; for
 * the message of the call before (in *la), near: the order, the book's
 * header and the symbol's last quote; for the message of the call before
 * that, last: the best level of each side of its book. *la then describes
 * the last two. Changes nothing in the market and reads no byte past len:
 * any bytes are safe. */
void market_prefetch(const market_t *m, const uint8_t *msg, size_t len, market_lookahead_t *la);

/* A trade or a quote from a source that already speaks in ticks (CSV,
 * journal, PUBLISH). seq 0 assigns the market's next sequence number.
 * Returns 0 or -EINVAL for a bad symbol (1..8 of A-Z 0-9 . -) or -ENOMEM. */
int market_trade(market_t *m, const char *sym, size_t len, int64_t price, uint32_t size, char side,
                 uint64_t seq, int64_t ts_exch, int64_t ts_recv);
int market_quote(market_t *m, const char *sym, size_t len, int64_t bid, uint32_t bid_size,
                 int64_t ask, uint32_t ask_size, uint64_t seq, int64_t ts_exch, int64_t ts_recv);
/* The same for a symbol the caller holds already (market_symbol(),
 * market_published_symbol()): no lookup by name. Returns 0 or -ENOMEM. */
int market_symbol_trade(market_t *m, symbol_t *sym, int64_t price, uint32_t size, char side,
                        uint64_t seq, int64_t ts_exch, int64_t ts_recv);
int market_symbol_quote(market_t *m, symbol_t *sym, int64_t bid, uint32_t bid_size, int64_t ask,
                        uint32_t ask_size, uint64_t seq, int64_t ts_exch, int64_t ts_recv);

/* The symbol named sym, interned (created if new); NULL for a bad name or
 * no memory. Borrowed: the market holds it. */
symbol_t *market_symbol(market_t *m, const char *sym, size_t len);
/* The symbol named sym for a tick that came through PUBLISH, interned if new
 * and the day has made fewer than limit symbols that way (a client can name
 * any symbol; a feed's are the exchange's): 0 when sym exists or was made
 * (then *out, when out is not NULL, is the symbol, borrowed), -ENOSPC when
 * the limit is reached (nothing changes), -EINVAL for a bad name, -ENOMEM.
 * The count lives as long as the market: a new day starts from zero. */
int market_published_symbol(market_t *m, const char *sym, size_t len, uint64_t limit,
                            symbol_t **out);
/* The symbol named sym if the market has it, else NULL. Borrowed. */
symbol_t *market_find(const market_t *m, const char *sym, size_t len);
/* Calls cb for every symbol (in no particular order) until it returns
 * non-zero, which it returns. */
int market_foreach(const market_t *m, int (*cb)(symbol_t *sym, void *arg), void *arg);
/* market_foreach() in steps: looks at up to max slots of the symbol table
 * from *cursor (0 to start), advancing it, and calls cb for the symbols
 * there until it returns non-zero, which it returns (*cursor then points
 * past that symbol). 0 otherwise; *cursor is SIZE_MAX once the table is
 * done. A table that grew between steps is walked again from its start
 * (*generation, 0 at first, says which table the cursor is in): a symbol
 * may then be seen twice, never missed. */
int market_foreach_step(const market_t *m, size_t *cursor, uint32_t *generation, size_t max,
                        int (*cb)(symbol_t *sym, void *arg), void *arg);

/* Best bid and offer of a symbol's book: prices (0 for an empty side) and
 * the total shares at them. */
void market_bbo(const symbol_t *sym, int64_t *bid, uint32_t *bid_size, int64_t *ask,
                uint32_t *ask_size);

/* One price level of a book as a reader sees it (market_book_levels()). */
typedef struct market_level {
    int64_t price;   /* 4 implied decimals */
    uint64_t shares; /* total shares of the live orders at this price */
    uint32_t orders; /* how many orders */
} market_level_t;

/* Read-only: copies up to max levels of side ('B' bids, 'S' asks) of sym's
 * book into out, best first, starting from the from-th best (0 the best);
 * returns how many it copied (0 past the end, for an empty side or a symbol
 * with no book). Costs O(max): the book keeps each side sorted. */
size_t market_book_levels(const symbol_t *sym, char side, size_t from, market_level_t *out,
                          size_t max);

/* A number that changes whenever any level of sym's book changes (0 for a
 * symbol with no book): a reader that kept what it read of the book at one
 * version may use it again while the version stands. */
uint64_t market_book_version(const symbol_t *sym);

const market_stats_t *market_stats(const market_t *m);

/* The ITCH orders added from now on belong to source (0, the default, names
 * no one): an ingest names itself before it applies a batch, so that
 * market_withdraw() can later take back exactly its orders. */
void market_set_source(market_t *m, uint16_t source);

/* Takes every live order of source (non-zero) off the books, as if each were
 * deleted at ts_exch, and emits a quote for every top of book that changes.
 * A looping replay calls it before it starts the file again: the new pass
 * adds the same references. Returns the number of orders taken off. */
uint64_t market_withdraw(market_t *m, uint16_t source, int64_t ts_exch, int64_t ts_recv);

/* Order by reference, or NULL. Borrowed. */
order_t *market_order(const market_t *m, uint64_t ref);

/* Is name a valid symbol (1..8 characters of A-Z, 0-9, '.', '-')? */
int symbol_valid(const char *name, size_t len);

/* A symbol name (1..SYMBOL_MAX_LEN bytes) as one 64-bit key, its bytes
 * zero-padded: two names have the same key only when they are the same
 * name; and the slot of a key in an open-addressed table of 2^bits slots
 * (Fibonacci hashing). The market's symbol table and the bar builder's
 * table of symbols both use them. */
static inline uint64_t symbol_key(const char *name, size_t len)
{
    char padded[SYMBOL_MAX_LEN] = {0};
    memcpy(padded, name, len);
    uint64_t key;
    memcpy(&key, padded, sizeof(key));
    return key;
}

static inline size_t symbol_key_slot(uint64_t key, uint32_t bits)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

#endif

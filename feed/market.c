/*
 * market.c - one trading day's state: symbols, orders, books, and the ticks
 * they make.
 *
 * The hot path is market_itch_raw(): a message, read straight from its
 * bytes, finds its order (feed/orders.h: a window indexed by reference, a
 * hash for the few outside it) or its symbol (an array indexed by stock
 * locate), updates the book, which says whether the top of that side
 * changed, and makes at most a couple of objects from the heap.
 * market_itch() does the same for a decoded message. A reader that knows
 * the next messages hints them first (market_prefetch()): the path waits on
 * memory (the order, the book, the last quote) more than it computes.
 * Nothing here calls the system allocator per message; the tables grow by
 * doubling, which a day does a handful of times.
 *
 * Every tick goes to the sink first and then into its symbol's last-value
 * slot, which takes the market's reference; the tick it replaces is released
 * then and there, so a symbol holds exactly its latest trade and quote. A
 * last value nothing else holds is not released but renewed in place as the
 * tick that replaces it (tick_new()).
 *
 * What each ITCH 5.0 message that touches trades or books does here, and
 * which of its fields (the specification's names) it reads besides Message
 * Type and Timestamp (the ticks' exchange time, after day_start_ns). "Quotes"
 * means: a quote tick if the best price or the shares at it changed on the
 * side the message touched; nothing otherwise. E, C, X, D and U find their
 * symbol through the order, not through Stock Locate.
 *
 *   A  Add Order: Order Reference Number, Buy/Sell Indicator, Shares, Stock
 *      (with Stock Locate), Price. Joins the book on its side; quotes. A
 *      reference already live, reference 0, 0 shares or a side other than B
 *      or S is refused (counted in rejected).
 *   F  Add Order with MPID Attribution: as A; Attribution is not read.
 *   E  Order Executed: Order Reference Number, Executed Shares. Takes the
 *      shares off the order (it leaves when none are left), prints a trade
 *      at the order's own price, side the aggressor's (the opposite of the
 *      resting order's), size the shares executed (at most what was live);
 *      quotes. Match Number is not read.
 *   C  Order Executed With Price: Order Reference Number, Executed Shares,
 *      Printable, Execution Price. As E, at Execution Price, and the trade is
 *      printed only when Printable is 'Y' ('N' executions are reported again
 *      in a cross, so printing both would count the shares twice); the book
 *      changes either way.
 *   X  Order Cancel: Order Reference Number, Cancelled Shares. Takes the
 *      shares off (the order leaves when none are left); quotes.
 *   D  Order Delete: Order Reference Number. The order leaves; quotes.
 *   U  Order Replace: Original Order Reference Number, New Order Reference
 *      Number, Shares, Price. The original leaves, the new order joins with
 *      the original's side and stock; one quote at most for the pair.
 *   P  Trade (non-cross): Stock (with Stock Locate), Shares, Price. A trade of
 *      a non-displayed order: prints a trade with no side, the book is not
 *      touched. Buy/Sell Indicator is not read: the specification defines
 *      it as the side of the resting non-displayed order, not the aggressor
 *      (tickd's side), and since 2014-07-14 Nasdaq sends 'B' for every P
 *      whatever the resting side. Order Reference Number (0 on today's feed)
 *      and Match Number are not read. 0 shares prints nothing.
 *   Q  Cross Trade: Stock (with Stock Locate), Shares (8 bytes, clamped to
 *      the tick's 32 bits), Cross Price. Prints a trade with no side (a
 *      cross has no aggressor); the book is not touched. Cross Type and Match
 *      Number are not read. 0 shares (a cross that did not happen) prints
 *      nothing.
 *   B  Broken Trade: nothing but the header is read. Counted in
 *      broken_trades and kept out of the tick stream. A tick carries no
 *      match number, so neither tickd nor a subscriber could tell which
 *      earlier print the break names; publishing a correction would need a
 *      day-long map from match number to trade and a new kind of tick in
 *      every output. The book is not touched: a break changes no live order.
 *
 * E, C, X, D and U naming no live order, and A, F, P and Q naming a locate
 * with no directory entry and no usable Stock, change nothing and are
 * counted (unknown_orders, unknown_stocks).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/assert.h"
#include "feed/be.h"
#include "feed/book.h"
#include "feed/itch.h"
#include "feed/market.h"
#include "feed/orders.h"

#define LOCATE_SLOTS    65536
#define SYMBOLS_INITIAL (1u << 10)

struct market {
    heap_t *heap;
    int64_t day_start_ns;
    market_sink_fn sink;
    void *sink_arg;
    uint64_t seq;         /* last tick sequence number handed out */
    uint16_t source;      /* stamped on the orders added now (market_set_source()) */
    order_table_t orders; /* the live orders by reference (feed/orders.h) */
    symbol_t **symbols;   /* open addressing by name, linear probing */
    uint32_t symbols_bits;
    uint32_t symbols_count;
    symbol_t **by_locate; /* [stock locate] -> symbol, borrowed */
    market_stats_t stats;
};

int symbol_valid(const char *name, size_t len)
{
    if (len == 0 || len > SYMBOL_MAX_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int market_create(heap_t *heap, int64_t day_start_ns, market_sink_fn sink, void *arg,
                  market_t **out)
{
    market_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    m->heap = heap;
    m->day_start_ns = day_start_ns;
    m->sink = sink;
    m->sink_arg = arg;
    int orders_err = order_table_init(&m->orders);
    m->symbols_bits = __builtin_ctz(SYMBOLS_INITIAL);
    m->symbols = calloc(SYMBOLS_INITIAL, sizeof(*m->symbols));
    m->by_locate = calloc(LOCATE_SLOTS, sizeof(*m->by_locate));
    if (orders_err != 0 || m->symbols == NULL || m->by_locate == NULL) {
        market_destroy(m);
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

static int drop_order(order_t *o, void *heap)
{
    obj_decref(heap, &o->ob);
    return 0;
}

void market_destroy(market_t *m)
{
    if (m == NULL)
        return;
    if (m->orders.window != NULL)
        order_table_walk(&m->orders, drop_order, m->heap);
    if (m->symbols != NULL) {
        for (size_t i = 0; i < (size_t)1 << m->symbols_bits; i++) {
            symbol_t *s = m->symbols[i];
            if (s == NULL)
                continue;
            book_free(s->book);
            s->book = NULL;
            obj_decref(m->heap, &s->ob);
        }
    }
    order_table_free(&m->orders);
    free(m->symbols);
    free(m->by_locate);
    free(m);
}

const market_stats_t *market_stats(const market_t *m)
{
    return &m->stats;
}

/* ---- symbols ---- */

/* The characters of sym are not checked: only valid names are interned, and
 * a hit has the same length and the same bytes (the key holds all of them),
 * so an invalid name finds nothing. */
symbol_t *market_find(const market_t *m, const char *sym, size_t len)
{
    if (len == 0 || len > SYMBOL_MAX_LEN)
        return NULL;
    uint64_t key = symbol_key(sym, len);
    size_t mask = ((size_t)1 << m->symbols_bits) - 1;
    for (size_t i = symbol_key_slot(key, m->symbols_bits);; i = (i + 1) & mask) {
        symbol_t *s = m->symbols[i];
        if (s == NULL || (s->len == len && symbol_key(s->name, s->len) == key))
            return s;
    }
}

static int symbols_grow(market_t *m)
{
    uint32_t bits = m->symbols_bits + 1;
    size_t size = (size_t)1 << bits, mask = size - 1;
    symbol_t **grown = calloc(size, sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < (size_t)1 << m->symbols_bits; i++) {
        symbol_t *s = m->symbols[i];
        if (s == NULL)
            continue;
        size_t j = symbol_key_slot(symbol_key(s->name, s->len), bits);
        while (grown[j] != NULL)
            j = (j + 1) & mask;
        grown[j] = s;
    }
    free(m->symbols);
    m->symbols = grown;
    m->symbols_bits = bits;
    return 0;
}

symbol_t *market_symbol(market_t *m, const char *sym, size_t len)
{
    symbol_t *s = market_find(m, sym, len);
    if (s != NULL || !symbol_valid(sym, len))
        return s;
    if ((size_t)(m->symbols_count + 1) * 2 > (size_t)1 << m->symbols_bits && symbols_grow(m) != 0)
        return NULL;
    s = (symbol_t *)obj_new(m->heap, &symbol_type);
    if (s == NULL)
        return NULL;
    s->book = book_new();
    if (s->book == NULL) {
        obj_decref(m->heap, &s->ob);
        return NULL;
    }
    memcpy(s->name, sym, len);
    s->len = (uint8_t)len;
    uint64_t key = symbol_key(sym, len);
    size_t mask = ((size_t)1 << m->symbols_bits) - 1;
    size_t i = symbol_key_slot(key, m->symbols_bits);
    while (m->symbols[i] != NULL)
        i = (i + 1) & mask;
    m->symbols[i] = s;
    m->symbols_count++;
    m->stats.symbols++;
    return s;
}

int market_published_symbol(market_t *m, const char *sym, size_t len, uint64_t limit,
                            symbol_t **out)
{
    symbol_t *s = market_find(m, sym, len);
    if (s == NULL) {
        if (!symbol_valid(sym, len))
            return -EINVAL;
        if (m->stats.published_symbols >= limit)
            return -ENOSPC;
        if ((s = market_symbol(m, sym, len)) == NULL)
            return -ENOMEM;
        m->stats.published_symbols++;
    }
    if (out != NULL)
        *out = s;
    return 0;
}

int market_foreach_step(const market_t *m, size_t *cursor, uint32_t *generation, size_t max,
                        int (*cb)(symbol_t *sym, void *arg), void *arg)
{
    size_t size = (size_t)1 << m->symbols_bits;
    if (*generation != m->symbols_bits) {
        *generation = m->symbols_bits;
        *cursor = 0;
    }
    if (*cursor >= size) { /* done, or a cursor from no walk of this table */
        *cursor = SIZE_MAX;
        return 0;
    }
    for (size_t end = max < size - *cursor ? *cursor + max : size; *cursor < end;) {
        symbol_t *s = m->symbols[(*cursor)++];
        int r = s != NULL ? cb(s, arg) : 0;
        if (r != 0)
            return r;
    }
    if (*cursor == size)
        *cursor = SIZE_MAX;
    return 0;
}

int market_foreach(const market_t *m, int (*cb)(symbol_t *sym, void *arg), void *arg)
{
    for (size_t i = 0; i < (size_t)1 << m->symbols_bits; i++) {
        if (m->symbols[i] == NULL)
            continue;
        int r = cb(m->symbols[i], arg);
        if (r != 0)
            return r;
    }
    return 0;
}

/* itch_symbol() for a locate with no symbol yet. */
static __attribute__((noinline)) symbol_t *itch_symbol_new(market_t *m, uint16_t locate,
                                                           const char *stock)
{
    if (stock == NULL)
        return NULL;
    symbol_t *s = market_symbol(m, stock, itch_stock_len(stock));
    if (s != NULL && locate != 0) {
        m->by_locate[locate] = s;
        s->locate = locate;
    }
    return s;
}

/* The symbol of an ITCH message: by locate, or by its Stock field (then
 * remembered under the locate) when the day had no directory entry for it. */
static inline symbol_t *itch_symbol(market_t *m, uint16_t locate, const char *stock)
{
    symbol_t *s = m->by_locate[locate];
    return HEAP_LIKELY(s != NULL) ? s : itch_symbol_new(m, locate, stock);
}

/* ---- orders ---- */

order_t *market_order(const market_t *m, uint64_t ref)
{
    return order_table_find(&m->orders, ref);
}

/* ---- ticks ---- */

/* A new tick of sym with its sequence number and times; the caller writes
 * the rest of its fields and hands it to publish(). When the last value of
 * its kind that it will replace is held by nothing but sym (a count of one:
 * no sink kept it), that tick is made the new one in place (obj_renew():
 * counted as one tick destroyed and one created) instead of a new block
 * taken and the old one released after, and it keeps its reference to sym.
 * Nobody can see the difference: nobody else held the old tick. NULL: out
 * of memory. */
static inline __attribute__((always_inline)) tick_t *
tick_new(market_t *m, symbol_t *sym, uint8_t kind, uint64_t seq, int64_t ts_exch, int64_t ts_recv)
{
    tick_t *t = kind == TICK_TRADE ? sym->last_trade : sym->last_quote;
    if (t != NULL && t->ob.refcnt == 1) {
        obj_renew(m->heap, &t->ob);
    } else {
        t = (tick_t *)obj_new_uninit(m->heap, &tick_type);
        if (HEAP_UNLIKELY(t == NULL))
            return NULL;
        obj_incref(&sym->ob);
        t->sym = sym;
    }
    t->kind = kind;
    t->seq = seq != 0 ? seq : m->seq + 1;
    if (t->seq > m->seq)
        m->seq = t->seq;
    t->ts_exch = ts_exch;
    t->ts_recv = ts_recv;
    return t;
}

/* Hands t to the sink, then into its symbol's last-value slot, which takes
 * tick_new()'s reference; the tick it replaces is released. A tick renewed
 * in place is in the slot already (the sink sees it there too). */
static inline void publish(market_t *m, tick_t *t)
{
    if (m->sink != NULL)
        m->sink(m->sink_arg, t);
    tick_t **slot = t->kind == TICK_TRADE ? &t->sym->last_trade : &t->sym->last_quote;
    tick_t *old = *slot;
    *slot = t;
    if (t->kind == TICK_TRADE)
        m->stats.trades++;
    else
        m->stats.quotes++;
    if (old != NULL && old != t)
        obj_decref(m->heap, &old->ob);
}

static int emit(market_t *m, symbol_t *sym, uint8_t kind, char side, int64_t price, uint32_t size,
                int64_t ask, uint32_t ask_size, uint64_t seq, int64_t ts_exch, int64_t ts_recv)
{
    tick_t *t = tick_new(m, sym, kind, seq, ts_exch, ts_recv);
    if (HEAP_UNLIKELY(t == NULL))
        return -ENOMEM;
    t->side = side;
    t->price = price;
    t->size = size;
    t->ask = ask;
    t->ask_size = ask_size;
    publish(m, t);
    return 0;
}

static uint32_t clamp32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static inline void bbo_of(const symbol_t *sym, int64_t *bid, uint32_t *bid_size, int64_t *ask,
                          uint32_t *ask_size)
{
    const book_level_t *b = sym->book != NULL ? book_best(&sym->book->bid) : NULL;
    const book_level_t *a = sym->book != NULL ? book_best(&sym->book->ask) : NULL;
    *bid = b != NULL ? b->price : 0;
    *bid_size = b != NULL ? clamp32(b->shares) : 0;
    *ask = a != NULL ? a->price : 0;
    *ask_size = a != NULL ? clamp32(a->shares) : 0;
}

uint64_t market_book_version(const symbol_t *sym)
{
    return sym->book != NULL ? sym->book->version : 0;
}

size_t market_book_levels(const symbol_t *sym, char side, size_t from, market_level_t *out,
                          size_t max)
{
    if (sym->book == NULL)
        return 0;
    const book_side_t *s = side == 'B' ? &sym->book->bid : &sym->book->ask;
    size_t n = 0;
    /* Best last in the book: the from-th best is levels[s->n - 1 - from]. */
    for (size_t i = from; i < s->n && n < max; i++, n++) {
        const book_level_t *l = &s->levels[s->n - 1 - i];
        out[n].price = l->price;
        out[n].shares = l->shares;
        out[n].orders = l->orders;
    }
    return n;
}

void market_bbo(const symbol_t *sym, int64_t *bid, uint32_t *bid_size, int64_t *ask,
                uint32_t *ask_size)
{
    bbo_of(sym, bid, bid_size, ask, ask_size);
}

/* The top of one side of a book: what a quote shows of it. */
typedef struct top {
    int64_t price;
    uint64_t shares;
} top_t;

static inline __attribute__((always_inline)) top_t top_of(const symbol_t *sym, char side)
{
    const book_level_t *l = book_best(side == 'B' ? &sym->book->bid : &sym->book->ask);
    return l != NULL ? (top_t){l->price, l->shares} : (top_t){0, 0};
}

/* A quote of sym's top of book now. */
static inline __attribute__((always_inline)) int quote(market_t *m, symbol_t *sym, int64_t ts_exch,
                                                       int64_t ts_recv)
{
    tick_t *t = tick_new(m, sym, TICK_QUOTE, 0, ts_exch, ts_recv);
    if (HEAP_UNLIKELY(t == NULL))
        return -ENOMEM;
    t->side = 0;
    bbo_of(sym, &t->price, &t->size, &t->ask, &t->ask_size);
    publish(m, t);
    return 0;
}

/* Emits a quote if the top of sym's side differs from before (a change on
 * one side leaves the other as it was). */
static inline __attribute__((always_inline)) int quote_if_changed(market_t *m, symbol_t *sym,
                                                                  char side, top_t before,
                                                                  int64_t ts_exch, int64_t ts_recv)
{
    top_t now = top_of(sym, side);
    if (now.price == before.price && now.shares == before.shares)
        return 0;
    return quote(m, sym, ts_exch, ts_recv);
}

/* Adds an order to sym's book. Returns 1 when the top of its side changed,
 * 0 when not, or a negative errno (nothing changed). */
static inline __attribute__((always_inline)) int
order_add(market_t *m, symbol_t *sym, uint64_t ref, char side, uint32_t shares, int64_t price)
{
    if (ref == 0 || shares == 0 || (side != 'B' && side != 'S')) {
        m->stats.rejected++;
        return -EINVAL;
    }
    if (order_table_find(&m->orders, ref) != NULL) {
        m->stats.rejected++; /* a reference already live: refuse the duplicate */
        return -EEXIST;
    }
    order_t *o = (order_t *)obj_new_uninit(m->heap, &order_type);
    if (HEAP_UNLIKELY(o == NULL))
        return -ENOMEM;
    o->ref = ref;
    o->sym = sym;
    o->price = price;
    o->shares = shares;
    o->side = side;
    o->source = m->source;
    if (HEAP_UNLIKELY(order_table_insert(&m->orders, o) != 0)) {
        obj_decref(m->heap, &o->ob);
        return -ENOMEM;
    }
    int changed = book_add(sym->book, side, price, shares);
    if (HEAP_UNLIKELY(changed < 0)) {
        order_table_remove(&m->orders, o);
        obj_decref(m->heap, &o->ob);
        return changed;
    }
    m->stats.orders_added++;
    m->stats.orders_live++;
    return changed;
}

/* Takes shares off o; the order leaves when none are left (or when all is
 * set). Returns whether the top of its side of the book changed. */
static inline __attribute__((always_inline)) int order_reduce(market_t *m, order_t *o,
                                                              uint32_t shares, int all)
{
    if (all || shares >= o->shares) {
        int changed = book_reduce(o->sym->book, o->side, o->price, o->shares, 1);
        order_table_remove(&m->orders, o);
        m->stats.orders_live--;
        obj_decref_inline(m->heap, &o->ob);
        return changed;
    }
    o->shares -= shares;
    return book_reduce(o->sym->book, o->side, o->price, shares, 0);
}

static char aggressor_of(char resting_side)
{
    return resting_side == 'B' ? 'S' : 'B';
}

static inline __attribute__((always_inline)) order_t *live_order(market_t *m, uint64_t ref)
{
    order_t *o = order_table_find(&m->orders, ref);
    if (HEAP_UNLIKELY(o == NULL))
        m->stats.unknown_orders++;
    return o;
}

/* E and C: a resting order traded; the trade prints at price. */
static int order_execute(market_t *m, uint64_t ref, uint32_t shares, int64_t price, int print,
                         int64_t ts_exch, int64_t ts_recv)
{
    order_t *o = live_order(m, ref);
    if (o == NULL)
        return -ENOENT;
    symbol_t *sym = o->sym;
    char side = aggressor_of(o->side);
    if (price < 0)
        price = o->price;
    uint32_t done = shares < o->shares ? shares : o->shares;
    int changed = order_reduce(m, o, shares, 0);
    int err = print && done > 0
                  ? emit(m, sym, TICK_TRADE, side, price, done, 0, 0, 0, ts_exch, ts_recv)
                  : 0;
    if (err == 0 && changed)
        err = quote(m, sym, ts_exch, ts_recv);
    return err;
}

static inline __attribute__((always_inline)) int
order_cancel(market_t *m, uint64_t ref, uint32_t shares, int all, int64_t ts_exch, int64_t ts_recv)
{
    order_t *o = live_order(m, ref);
    if (o == NULL)
        return -ENOENT;
    symbol_t *sym = o->sym;
    return order_reduce(m, o, shares, all) ? quote(m, sym, ts_exch, ts_recv) : 0;
}

/* U: the original leaves and the new order joins; one quote at most, and
 * none when the top ends as it was (the new order took the old one's place
 * at the top with the same shares). The new order is the original's object
 * under its new reference, price and shares: an order leaves and one joins
 * without a trip through the heap. A replacement the market refuses (a new
 * reference of 0 or already live, 0 shares) still takes the original off. */
static inline __attribute__((always_inline)) int
order_replace(market_t *m, const itch_order_replace_t *u, int64_t ts_exch, int64_t ts_recv)
{
    order_t *o = live_order(m, u->orig_ref);
    if (o == NULL)
        return -ENOENT;
    symbol_t *sym = o->sym;
    char side = o->side;
    top_t before = top_of(sym, side);
    int err;
    if (u->new_ref == 0 || u->shares == 0 || order_table_find(&m->orders, u->new_ref) != NULL) {
        order_reduce(m, o, 0, 1);
        err = order_add(m, sym, u->new_ref, side, u->shares, u->price);
    } else {
        book_reduce(sym->book, side, o->price, o->shares, 1);
        order_table_remove(&m->orders, o);
        o->ref = u->new_ref;
        o->price = u->price;
        o->shares = u->shares;
        o->source = m->source;
        err = order_table_insert(&m->orders, o);
        if (err == 0 && (err = book_add(sym->book, side, o->price, o->shares)) < 0)
            order_table_remove(&m->orders, o);
        if (HEAP_UNLIKELY(err < 0)) {
            m->stats.orders_live--;
            obj_decref(m->heap, &o->ob);
        } else {
            m->stats.orders_added++;
        }
    }
    int qerr = quote_if_changed(m, sym, side, before, ts_exch, ts_recv);
    return err < 0 ? err : qerr;
}

void market_set_source(market_t *m, uint16_t source)
{
    m->source = source;
}

typedef struct withdrawal {
    market_t *m;
    uint16_t source;
    int64_t ts_exch, ts_recv;
    uint64_t taken;
} withdrawal_t;

static int withdraw_order(order_t *o, void *arg)
{
    withdrawal_t *w = arg;
    if (o->source != w->source)
        return 0;
    symbol_t *sym = o->sym;
    char side = o->side;
    top_t before = top_of(sym, side);
    order_reduce(w->m, o, 0, 1);
    quote_if_changed(w->m, sym, side, before, w->ts_exch, w->ts_recv);
    w->taken++;
    return 1;
}

uint64_t market_withdraw(market_t *m, uint16_t source, int64_t ts_exch, int64_t ts_recv)
{
    withdrawal_t w = {m, source, ts_exch, ts_recv, 0};
    order_table_walk(&m->orders, withdraw_order, &w);
    return w.taken;
}

static int stock_unknown(market_t *m)
{
    m->stats.unknown_stocks++;
    return -ENOENT;
}

/* A and F: a displayed order joins its symbol's book; a quote if the top
 * changed. */
static inline __attribute__((always_inline)) int
add_order(market_t *m, uint16_t locate, const char *stock, uint64_t ref, char side, uint32_t shares,
          int64_t price, int64_t ts_exch, int64_t ts_recv)
{
    symbol_t *sym = itch_symbol(m, locate, stock);
    if (sym == NULL)
        return stock_unknown(m);
    int err = order_add(m, sym, ref, side, shares, price);
    return err > 0 ? quote(m, sym, ts_exch, ts_recv) : err;
}

int market_itch(market_t *m, const itch_msg_t *msg, int64_t ts_recv)
{
    int64_t ts = m->day_start_ns + (int64_t)msg->timestamp;
    symbol_t *sym;

    m->stats.messages++;
    switch (msg->type) {
    case ITCH_ADD_ORDER:
    case ITCH_ADD_ORDER_MPID: {
        const itch_add_order_t *a = &msg->add;
        return add_order(m, msg->stock_locate, a->stock, a->order_ref, a->side, a->shares, a->price,
                         ts, ts_recv);
    }
    case ITCH_ORDER_EXECUTED:
        return order_execute(m, msg->executed.order_ref, msg->executed.shares, -1, 1, ts, ts_recv);
    case ITCH_ORDER_EXECUTED_PRICE: {
        const itch_order_executed_price_t *c = &msg->executed_price;
        return order_execute(m, c->order_ref, c->shares, c->price, c->printable == 'Y', ts,
                             ts_recv);
    }
    case ITCH_ORDER_CANCEL:
        return order_cancel(m, msg->cancel.order_ref, msg->cancel.shares, 0, ts, ts_recv);
    case ITCH_ORDER_DELETE:
        return order_cancel(m, msg->del.order_ref, 0, 1, ts, ts_recv);
    case ITCH_ORDER_REPLACE:
        return order_replace(m, &msg->replace, ts, ts_recv);
    case ITCH_TRADE: {
        const itch_trade_t *p = &msg->trade;
        sym = itch_symbol(m, msg->stock_locate, p->stock);
        if (sym == NULL)
            return stock_unknown(m);
        if (p->shares == 0)
            return 0;
        return emit(m, sym, TICK_TRADE, 0, p->price, p->shares, 0, 0, 0, ts, ts_recv);
    }
    case ITCH_CROSS_TRADE: {
        const itch_cross_trade_t *q = &msg->cross_trade;
        sym = itch_symbol(m, msg->stock_locate, q->stock);
        if (sym == NULL)
            return stock_unknown(m);
        if (q->shares == 0)
            return 0;
        return emit(m, sym, TICK_TRADE, 0, q->price, clamp32(q->shares), 0, 0, 0, ts, ts_recv);
    }
    case ITCH_BROKEN_TRADE:
        m->stats.broken_trades++;
        return 0;
    case ITCH_STOCK_DIRECTORY: {
        const itch_stock_directory_t *r = &msg->stock_directory;
        m->by_locate[msg->stock_locate] = NULL;
        return itch_symbol(m, msg->stock_locate, r->stock) != NULL ? 0 : stock_unknown(m);
    }
    default:
        return 0; /* no bearing on books or ticks */
    }
}

int market_trade(market_t *m, const char *sym, size_t len, int64_t price, uint32_t size, char side,
                 uint64_t seq, int64_t ts_exch, int64_t ts_recv)
{
    symbol_t *s = market_symbol(m, sym, len);
    if (s == NULL) {
        m->stats.rejected++;
        return symbol_valid(sym, len) ? -ENOMEM : -EINVAL;
    }
    return emit(m, s, TICK_TRADE, side, price, size, 0, 0, seq, ts_exch, ts_recv);
}

int market_symbol_trade(market_t *m, symbol_t *sym, int64_t price, uint32_t size, char side,
                        uint64_t seq, int64_t ts_exch, int64_t ts_recv)
{
    return emit(m, sym, TICK_TRADE, side, price, size, 0, 0, seq, ts_exch, ts_recv);
}

int market_symbol_quote(market_t *m, symbol_t *sym, int64_t bid, uint32_t bid_size, int64_t ask,
                        uint32_t ask_size, uint64_t seq, int64_t ts_exch, int64_t ts_recv)
{
    return emit(m, sym, TICK_QUOTE, 0, bid, bid_size, ask, ask_size, seq, ts_exch, ts_recv);
}

int market_quote(market_t *m, const char *sym, size_t len, int64_t bid, uint32_t bid_size,
                 int64_t ask, uint32_t ask_size, uint64_t seq, int64_t ts_exch, int64_t ts_recv)
{
    symbol_t *s = market_symbol(m, sym, len);
    if (s == NULL) {
        m->stats.rejected++;
        return symbol_valid(sym, len) ? -ENOMEM : -EINVAL;
    }
    return emit(m, s, TICK_QUOTE, 0, bid, bid_size, ask, ask_size, seq, ts_exch, ts_recv);
}

static uint64_t ref_at(const uint8_t *msg)
{
    return be64_get(msg + ITCH_AT_REF);
}

/* The types that name an order at ITCH_AT_REF: what market_prefetch() hints. */
static const uint8_t names_order[256] = {
    [ITCH_ADD_ORDER] = 1,      [ITCH_ADD_ORDER_MPID] = 1,
    [ITCH_ORDER_EXECUTED] = 1, [ITCH_ORDER_EXECUTED_PRICE] = 1,
    [ITCH_ORDER_CANCEL] = 1,   [ITCH_ORDER_DELETE] = 1,
    [ITCH_ORDER_REPLACE] = 1,
};

/* The best level of a side, where both the book's search and a quote
 * start. */
static inline void prefetch_best(const book_side_t *s)
{
    if (s->n > 0)
        __builtin_prefetch(&s->levels[s->n - 1], 1);
}

void market_prefetch(const market_t *m, const uint8_t *msg, size_t len, market_lookahead_t *la)
{
    /* Last: the message hinted two calls ago comes next. Its symbol was
     * fetched then and its book's header on the last call: the levels at
     * the top of each side (its order's side is not known without the
     * order, and a quote reads both). */
    if (la->book_sym != NULL && la->book_sym->book != NULL) {
        prefetch_best(&la->book_sym->book->bid);
        prefetch_best(&la->book_sym->book->ask);
    }
    /* Near: the message hinted last time. Its order's slot and its symbol
     * were fetched then; the slot is looked up again by reference, since
     * the table may have grown in between. */
    order_t *const *slot = order_table_slot(&m->orders, la->ref);
    if (slot != NULL && *slot != NULL)
        __builtin_prefetch(*slot, 1);
    if (la->sym != NULL) {
        __builtin_prefetch(la->sym->book);
        __builtin_prefetch(la->sym->last_quote, 1);
    }
    la->book_sym = la->sym;
    /* Far: any bytes; only the header and the reference are read, and only
     * when there are that many. */
    if (msg == NULL || len < ITCH_AT_REF + 8 || !names_order[msg[0]]) {
        la->ref = 0;
        la->sym = NULL;
        return;
    }
    la->ref = ref_at(msg);
    la->sym = m->by_locate[be16_get(msg + ITCH_AT_LOCATE)];
    slot = order_table_slot(&m->orders, la->ref);
    if (slot != NULL)
        __builtin_prefetch(slot);
    if (la->sym != NULL)
        __builtin_prefetch(la->sym);
}

/* ---- the hot path: one handler per message type ----
 *
 * itch_apply() only dispatches: each case is a tail call to its type's
 * handler, so the dispatch keeps no frame of its own and no message pays
 * for registers or stack that another type needs (the decoded fallback's
 * itch_msg_t). Each handler reads its own type's fields, which
 * itch_check() vouched for, and has the market's steps inlined: a message
 * makes at most the book's call and, when the top changed, the quote's. */

static inline int64_t exch_ts(const market_t *m, const uint8_t *msg)
{
    return m->day_start_ns + (int64_t)be48_get(msg + ITCH_AT_TIMESTAMP);
}

static __attribute__((noinline)) int apply_add(market_t *m, const uint8_t *msg, int64_t ts_recv)
{
    m->stats.messages++;
    return add_order(m, be16_get(msg + ITCH_AT_LOCATE), (const char *)msg + ITCH_AT_ADD_STOCK,
                     ref_at(msg), (char)msg[ITCH_AT_ADD_SIDE], be32_get(msg + ITCH_AT_ADD_SHARES),
                     be32_get(msg + ITCH_AT_ADD_PRICE), exch_ts(m, msg), ts_recv);
}

static __attribute__((noinline)) int apply_executed(market_t *m, const uint8_t *msg,
                                                    int64_t ts_recv)
{
    m->stats.messages++;
    return order_execute(m, ref_at(msg), be32_get(msg + ITCH_AT_REF_SHARES), -1, 1, exch_ts(m, msg),
                         ts_recv);
}

static __attribute__((noinline)) int apply_executed_price(market_t *m, const uint8_t *msg,
                                                          int64_t ts_recv)
{
    m->stats.messages++;
    return order_execute(m, ref_at(msg), be32_get(msg + ITCH_AT_REF_SHARES),
                         be32_get(msg + ITCH_AT_EXEC_PRICE), msg[ITCH_AT_EXEC_PRINTABLE] == 'Y',
                         exch_ts(m, msg), ts_recv);
}

static __attribute__((noinline)) int apply_cancel(market_t *m, const uint8_t *msg, int64_t ts_recv)
{
    m->stats.messages++;
    return order_cancel(m, ref_at(msg), be32_get(msg + ITCH_AT_REF_SHARES), 0, exch_ts(m, msg),
                        ts_recv);
}

static __attribute__((noinline)) int apply_delete(market_t *m, const uint8_t *msg, int64_t ts_recv)
{
    m->stats.messages++;
    return order_cancel(m, ref_at(msg), 0, 1, exch_ts(m, msg), ts_recv);
}

static __attribute__((noinline)) int apply_replace(market_t *m, const uint8_t *msg, int64_t ts_recv)
{
    itch_order_replace_t u = {
        .orig_ref = ref_at(msg),
        .new_ref = be64_get(msg + ITCH_AT_REPLACE_NEW_REF),
        .shares = be32_get(msg + ITCH_AT_REPLACE_SHARES),
        .price = be32_get(msg + ITCH_AT_REPLACE_PRICE),
    };
    m->stats.messages++;
    return order_replace(m, &u, exch_ts(m, msg), ts_recv);
}

/* The other types, through the decoded message (market_itch()). */
static __attribute__((noinline)) int apply_decoded(market_t *m, const uint8_t *msg, size_t len,
                                                   int64_t ts_recv)
{
    itch_msg_t decoded;
    itch_decode(msg, len, &decoded); /* cannot fail: itch_check() passed */
    return market_itch(m, &decoded, ts_recv);
}

/* market_itch_raw() once itch_check() has passed. */
static inline __attribute__((always_inline)) int itch_apply(market_t *m, const uint8_t *msg,
                                                            size_t len, int64_t ts_recv)
{
    /* The day's two common types (over 40% of the messages each) are tested
     * first: two direct branches, which predict better than one indirect
     * jump over a mix this even. */
    if (HEAP_LIKELY(msg[0] == ITCH_ADD_ORDER))
        return apply_add(m, msg, ts_recv);
    if (HEAP_LIKELY(msg[0] == ITCH_ORDER_DELETE))
        return apply_delete(m, msg, ts_recv);
    switch (msg[0]) {
    case ITCH_ADD_ORDER:
    case ITCH_ADD_ORDER_MPID:
        return apply_add(m, msg, ts_recv);
    case ITCH_ORDER_EXECUTED:
        return apply_executed(m, msg, ts_recv);
    case ITCH_ORDER_EXECUTED_PRICE:
        return apply_executed_price(m, msg, ts_recv);
    case ITCH_ORDER_CANCEL:
        return apply_cancel(m, msg, ts_recv);
    case ITCH_ORDER_DELETE:
        return apply_delete(m, msg, ts_recv);
    case ITCH_ORDER_REPLACE:
        return apply_replace(m, msg, ts_recv);
    default:
        return apply_decoded(m, msg, len, ts_recv);
    }
}

int market_itch_raw(market_t *m, const uint8_t *msg, size_t len, int64_t ts_recv)
{
    int err = itch_check(msg, len);
    if (HEAP_UNLIKELY(err != 0))
        return err;
    return itch_apply(m, msg, len, ts_recv);
}

int market_itch_framed(market_t *m, const uint8_t *msg, size_t len, int64_t ts_recv)
{
    TICKD_ASSERT(itch_check(msg, len) == 0);
    return itch_apply(m, msg, len, ts_recv);
}

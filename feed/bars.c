/*
 * bars.c - OHLCV bars per symbol and interval, built from trade ticks.
 *
 * Alignment. A bar of interval I covers [start, start + I) in the exchange
 * clock (the ticks' ts_exch), start = day + floor((ts - day) / I) * I, where
 * day is the exchange's midnight as the market defines it (day_start_ns, the
 * same origin the market adds ITCH timestamps to). Only exchange times are
 * read, never the time of receipt, so a replay at any speed, or live, makes
 * the same bars from the same trades.
 *
 * What a trade adds. Every trade tick counts, whatever its source and side:
 * ITCH E and printable C executions, P (non-displayed) trades and Q crosses
 * alike, since the market prints a trade tick for each and each is volume
 * that changed hands at its price (a Q cross with 0 shares, which did not
 * happen, prints no tick). A trade of size 0 is refused. open is the first
 * trade's price in the bar, close the last one's, high and low the extremes;
 * volume sums the sizes, trades counts them.
 *
 * VWAP = sum(price * size) / volume, rounded half away from zero to the
 * price unit (0.0001). The sum is kept in 128 bits and cannot overflow:
 * |price| < 2^63 and the volume is kept below 2^64 (a trade that would take
 * it past is refused), so |sum| < 2^127. The result lies between low and
 * high, so it fits a price.
 *
 * What closes a bar. A bar is handed to the sink (and becomes the last
 * value of its symbol and interval) when its interval is over:
 *   - a trade of the same symbol at or after its end (the trade then opens
 *     the next bar), or
 *   - the exchange clock at or past end + grace. The clock is the latest
 *     exchange time of any tick, trade or quote, of any symbol
 *     (bars_clock()): the exchange's time has moved for every symbol, so a
 *     bar of a quiet symbol closes without waiting for its next trade.
 *   - for a live feed with no ticks at all, the loop's timer (bars_idle())
 *     estimates the clock as its last value plus the time gone by since that
 *     tick was received, and closes what the clock would at that time.
 *   - bars_flush() (the end of a replayed file, the day's roll) closes every
 *     open bar as it is.
 * An interval with no trade makes no bar. In a feed whose ticks are in time
 * order (a recorded day) no trade can arrive for a bar already closed, so
 * how a bar closed never changes what it holds: the bars are the same at any
 * speed. A feed out of order may bring a trade for an interval that closed
 * (or, for one symbol, before its open bar): it is late, dropped and
 * counted, never a second bar of one interval. A trade late for one
 * interval is left out of every interval's bars, so that a long bar holds
 * exactly the trades of the shorter bars within it. The timer's estimate assumes
 * the exchange clock runs at real speed: a file replayed slower than that
 * would see its trades late, so the daemon runs no timer then.
 *
 * The day's roll (bars_roll()) closes and publishes the open bars (the day
 * is over: they can take no more trades), then forgets the symbols and
 * their last values, as the market forgets its last trades. A looping
 * replay that starts its file again within the day (bars_rewind()) closes
 * and publishes the open bars too, and forgets the clock and which
 * intervals closed, since its times start again; the last values stay.
 *
 * State. Per symbol an entry in an open-addressing table (by name, like the
 * market's), holding per interval the open bar's running figures and the
 * last closed bar (a reference). Per interval a list of the entries with an
 * open bar, in the order they opened, and the earliest time the clock may
 * close one of them (due): a clock that has not reached it costs one
 * comparison per interval; one that has walks that list once. Entries and
 * lists come from the system allocator when a symbol is new or a list
 * grows (doubling), never per trade; each bar is one object from the heap.
 * A trade given by the market's symbol (bars_symbol_trade(), the daemon's
 * and the replay's way) finds its entry on the symbol itself, without the
 * name's check and hash: the builder leaves its entry there (bars_entry)
 * with its generation (bars_gen), a number no other builder, and no other
 * set of this builder's entries, has had (one is drawn at bars_create()
 * and at every forget(), the only place entries are freed). A symbol whose
 * bars_gen is not the builder's is looked up by name and its cache filled
 * again. Generations are counted in 32 bits from 1; 0 is the symbol's
 * state before any builder saw it, and a builder drawn after the count ran
 * out gets 0 too and goes without the cache, by name, never a stale entry.
 * The sink is called from inside bars_trade(), bars_clock(), bars_idle(),
 * bars_flush(), bars_rewind() and bars_roll(), and must not call back into
 * the builder.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "feed/bars.h"

#define BAR_SLOT        4 /* after feed/tick.c's tick 1, symbol 2, order 3 */
#define ENTRIES_INITIAL (1u << 8)
#define NONE            INT64_MIN /* no open bar */

const obj_type_t bar_type = {
    .name = "bar",
    .size = sizeof(bar_t),
    .slot = BAR_SLOT,
};

/* The open bar of one symbol on one interval, and what came before it. */
typedef struct acc {
    int64_t start; /* the open bar's start, NONE when none is open */
    int64_t floor; /* bars starting before this are over (the last one's end) */
    int64_t open, high, low, close;
    uint64_t volume, trades;
    __int128 notional; /* sum of price * size */
    bar_t *last;       /* the last closed bar, a reference, or NULL */
    int listed;        /* the entry is in the interval's open list */
} acc_t;

/* A symbol: its name and, per interval, its bar. */
typedef struct entry {
    uint64_t key; /* the name as 8 bytes, zero padded */
    char name[SYMBOL_MAX_LEN + 1];
    uint8_t len;
    acc_t acc[]; /* one per interval */
} entry_t;

/* The entries with an open bar on one interval, in the order they opened. */
typedef struct open_list {
    entry_t **items;
    size_t n, cap;
    int64_t due; /* the clock at which the first of them may close; INT64_MAX: none */
} open_list_t;

struct bars {
    heap_t *heap;
    bars_sink_fn sink;
    void *arg;
    size_t n;                       /* intervals */
    int64_t iv[BARS_MAX_INTERVALS]; /* their lengths */
    char names[BARS_MAX_INTERVALS][BARS_INTERVAL_NAME_MAX];
    int64_t grace;
    uint32_t gen;              /* the entries' generation (bars_symbol_trade()); 0: none */
    int64_t day;               /* day_start_ns */
    int64_t clock, clock_recv; /* the exchange clock, and when it was seen */
    entry_t **table;           /* open addressing by name, linear probing */
    uint32_t bits, count;
    open_list_t open[BARS_MAX_INTERVALS];
    bars_stats_t stats;
};

/* ---- intervals ---- */

int bars_interval_parse(const char *s, size_t len, int64_t *ns)
{
    int64_t n = 0;
    size_t i = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9' && n <= BARS_INTERVAL_MAX_NS)
        n = n * 10 + (s[i++] - '0');
    if (i == 0 || i + 1 != len)
        return -EINVAL;
    int64_t unit = s[i] == 's' ? 1 : s[i] == 'm' ? 60 : s[i] == 'h' ? 3600 : 0;
    if (unit == 0 || n > BARS_INTERVAL_MAX_NS / BARS_INTERVAL_MIN_NS)
        return -EINVAL;
    int64_t v = n * unit * BARS_INTERVAL_MIN_NS;
    if (v < BARS_INTERVAL_MIN_NS || v > BARS_INTERVAL_MAX_NS)
        return -EINVAL;
    *ns = v;
    return 0;
}

size_t bars_interval_name(int64_t ns, char buf[BARS_INTERVAL_NAME_MAX])
{
    int64_t s = ns / BARS_INTERVAL_MIN_NS;
    char unit = 's';
    if (s % 3600 == 0) {
        s /= 3600;
        unit = 'h';
    } else if (s % 60 == 0) {
        s /= 60;
        unit = 'm';
    }
    char digits[8];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + s % 10);
        s /= 10;
    } while (s > 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = digits[n - 1 - i];
    buf[n] = unit;
    buf[n + 1] = '\0';
    return n + 1;
}

/* ---- the builder ---- */

/* A generation never drawn before, or 0 once the 32 bits are spent. */
static uint32_t draw_generation(void)
{
    static uint32_t last;
    uint32_t g = __atomic_load_n(&last, __ATOMIC_RELAXED);
    do {
        if (g == UINT32_MAX)
            return 0;
    } while (!__atomic_compare_exchange_n(&last, &g, g + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return g + 1;
}

int bars_create(heap_t *heap, const int64_t *intervals_ns, size_t n, int64_t grace_ns,
                int64_t day_start_ns, bars_sink_fn sink, void *arg, bars_t **out)
{
    if (n == 0 || n > BARS_MAX_INTERVALS || grace_ns < 0 || grace_ns > BARS_INTERVAL_MAX_NS ||
        sink == NULL)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (intervals_ns[i] < BARS_INTERVAL_MIN_NS || intervals_ns[i] > BARS_INTERVAL_MAX_NS ||
            intervals_ns[i] % BARS_INTERVAL_MIN_NS != 0)
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (intervals_ns[j] == intervals_ns[i])
                return -EINVAL;
    }
    bars_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    b->heap = heap;
    b->sink = sink;
    b->arg = arg;
    b->n = n;
    b->grace = grace_ns;
    b->day = day_start_ns;
    b->clock = INT64_MIN;
    b->gen = draw_generation();
    for (size_t i = 0; i < n; i++) {
        b->iv[i] = intervals_ns[i];
        bars_interval_name(intervals_ns[i], b->names[i]);
        b->open[i].due = INT64_MAX;
    }
    b->bits = __builtin_ctz(ENTRIES_INITIAL);
    b->table = calloc(ENTRIES_INITIAL, sizeof(*b->table));
    if (b->table == NULL) {
        free(b);
        return -ENOMEM;
    }
    int err = obj_type_register(heap, &bar_type);
    if (err != 0) {
        free(b->table);
        free(b);
        return err;
    }
    *out = b;
    return 0;
}

/* Forgets every symbol: their last values are released, their open bars
 * dropped, and the entries left on symbols are no longer the builder's. */
static void forget(bars_t *b)
{
    b->gen = draw_generation();
    for (size_t s = 0; s < (size_t)1 << b->bits; s++) {
        entry_t *e = b->table[s];
        if (e == NULL)
            continue;
        for (size_t i = 0; i < b->n; i++)
            if (e->acc[i].last != NULL)
                obj_decref(b->heap, &e->acc[i].last->ob);
        free(e);
        b->table[s] = NULL;
    }
    b->count = 0;
    for (size_t i = 0; i < b->n; i++) {
        b->open[i].n = 0;
        b->open[i].due = INT64_MAX;
    }
}

void bars_destroy(bars_t *b)
{
    if (b == NULL)
        return;
    forget(b);
    for (size_t i = 0; i < b->n; i++)
        free(b->open[i].items);
    free(b->table);
    free(b);
}

const bars_stats_t *bars_stats(const bars_t *b)
{
    return &b->stats;
}

size_t bars_count(const bars_t *b)
{
    return b->n;
}

int bars_interval_index(const bars_t *b, const char *name, size_t len)
{
    for (size_t i = 0; i < b->n; i++)
        if (strlen(b->names[i]) == len && memcmp(b->names[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* ---- symbols ---- */

static entry_t *find(const bars_t *b, uint64_t key)
{
    size_t mask = ((size_t)1 << b->bits) - 1;
    for (size_t i = symbol_key_slot(key, b->bits);; i = (i + 1) & mask) {
        entry_t *e = b->table[i];
        if (e == NULL || e->key == key)
            return e;
    }
}

static int grow(bars_t *b)
{
    uint32_t bits = b->bits + 1;
    size_t size = (size_t)1 << bits, mask = size - 1;
    entry_t **grown = calloc(size, sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < (size_t)1 << b->bits; i++) {
        entry_t *e = b->table[i];
        if (e == NULL)
            continue;
        size_t j = symbol_key_slot(e->key, bits);
        while (grown[j] != NULL)
            j = (j + 1) & mask;
        grown[j] = e;
    }
    free(b->table);
    b->table = grown;
    b->bits = bits;
    return 0;
}

/* The entry of sym, made if new; NULL: no memory. */
static entry_t *entry_of(bars_t *b, const char *sym, size_t len)
{
    uint64_t key = symbol_key(sym, len);
    entry_t *e = find(b, key);
    if (HEAP_LIKELY(e != NULL))
        return e;
    if ((size_t)(b->count + 1) * 2 > (size_t)1 << b->bits && grow(b) != 0)
        return NULL;
    e = calloc(1, sizeof(*e) + b->n * sizeof(acc_t));
    if (e == NULL)
        return NULL;
    e->key = key;
    memcpy(e->name, sym, len);
    e->len = (uint8_t)len;
    for (size_t i = 0; i < b->n; i++) {
        e->acc[i].start = NONE;
        e->acc[i].floor = INT64_MIN;
    }
    size_t mask = ((size_t)1 << b->bits) - 1, i = symbol_key_slot(key, b->bits);
    while (b->table[i] != NULL)
        i = (i + 1) & mask;
    b->table[i] = e;
    b->count++;
    return e;
}

const bar_t *bars_last(const bars_t *b, const char *sym, size_t len, size_t i)
{
    if (i >= b->n || !symbol_valid(sym, len))
        return NULL;
    entry_t *e = find(b, symbol_key(sym, len));
    return e != NULL ? e->acc[i].last : NULL;
}

/* ---- closing ---- */

/* sum / volume, rounded half away from zero; in 64 bits when the sum fits
 * (nearly always: a 128-bit division is a library call). */
static int64_t vwap_of(__int128 sum, uint64_t volume)
{
    if (sum >= INT64_MIN && sum <= INT64_MAX && volume <= INT64_MAX) {
        int64_t s = (int64_t)sum, v = (int64_t)volume, q = s / v, r = s % v;
        if ((uint64_t)(r < 0 ? -r : r) >= (uint64_t)v - (uint64_t)(r < 0 ? -r : r))
            q += s < 0 ? -1 : 1;
        return q;
    }
    __int128 v = (__int128)volume, q = sum / v, r = sum % v;
    if (2 * (r < 0 ? -r : r) >= v)
        q += sum < 0 ? -1 : 1;
    return (int64_t)q;
}

/* The open bar of e on interval i becomes a bar object: to the sink, then
 * the last value. The symbol has no open bar on i after. */
static void close_bar(bars_t *b, entry_t *e, size_t i)
{
    acc_t *a = &e->acc[i];
    bar_t *bar = (bar_t *)obj_new(b->heap, &bar_type);
    a->floor = a->start + b->iv[i];
    if (HEAP_UNLIKELY(bar == NULL)) {
        b->stats.no_memory++;
        a->start = NONE;
        return;
    }
    memcpy(bar->sym, e->name, sizeof bar->sym);
    bar->sym_len = e->len;
    bar->interval = (uint8_t)i;
    memcpy(bar->name, b->names[i], sizeof bar->name);
    bar->interval_ns = b->iv[i];
    bar->start = a->start;
    bar->open = a->open;
    bar->high = a->high;
    bar->low = a->low;
    bar->close = a->close;
    bar->vwap = vwap_of(a->notional, a->volume);
    bar->volume = a->volume;
    bar->trades = a->trades;
    a->start = NONE;
    b->stats.bars++;
    b->sink(b->arg, bar);
    bar_t *old = a->last;
    a->last = bar;
    if (old != NULL)
        obj_decref(b->heap, &old->ob);
}

/* Closes the open bars of interval i that end at or before upto - grace
 * (all of them when all is set), keeping the others in their order. */
static void sweep(bars_t *b, size_t i, int64_t upto, int all)
{
    open_list_t *l = &b->open[i];
    size_t kept = 0;
    int64_t due = INT64_MAX;
    for (size_t j = 0; j < l->n; j++) {
        entry_t *e = l->items[j];
        int64_t end_due = e->acc[i].start + b->iv[i] + b->grace; /* fits: see align() */
        if (all || end_due <= upto) {
            close_bar(b, e, i);
            e->acc[i].listed = 0;
            continue;
        }
        l->items[kept++] = e;
        if (end_due < due)
            due = end_due;
    }
    l->n = kept;
    l->due = due;
}

static void sweep_upto(bars_t *b, int64_t upto)
{
    for (size_t i = 0; i < b->n; i++)
        if (HEAP_UNLIKELY(b->open[i].due <= upto))
            sweep(b, i, upto, 0);
}

void bars_clock(bars_t *b, int64_t ts, int64_t ts_recv)
{
    if (ts <= b->clock)
        return;
    b->clock = ts;
    b->clock_recv = ts_recv;
    sweep_upto(b, ts);
}

void bars_idle(bars_t *b, int64_t now_recv)
{
    if (b->clock == INT64_MIN || now_recv <= b->clock_recv)
        return;
    int64_t est;
    if (__builtin_add_overflow(b->clock, now_recv - b->clock_recv, &est))
        est = INT64_MAX;
    sweep_upto(b, est);
}

void bars_flush(bars_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        sweep(b, i, 0, 1);
}

void bars_rewind(bars_t *b)
{
    bars_flush(b);
    for (size_t s = 0; s < (size_t)1 << b->bits; s++)
        for (size_t i = 0; b->table[s] != NULL && i < b->n; i++)
            b->table[s]->acc[i].floor = INT64_MIN;
    b->clock = INT64_MIN;
}

void bars_roll(bars_t *b, int64_t day_start_ns)
{
    bars_flush(b);
    forget(b);
    b->day = day_start_ns;
    b->clock = INT64_MIN;
}

/* ---- trades ---- */

/* The start of ts's bar on an interval of iv ns, into *start: 0, or -EINVAL
 * when the bar's end plus grace would not fit in 64 bits (so that sweep()
 * may add them). */
static int align(const bars_t *b, int64_t ts, int64_t iv, int64_t *start)
{
    int64_t d, s, end;
    if (__builtin_sub_overflow(ts, b->day, &d))
        return -EINVAL;
    int64_t r = d % iv;
    if (r < 0)
        r += iv;
    if (__builtin_sub_overflow(ts, r, &s) || __builtin_add_overflow(s, iv, &end) ||
        __builtin_add_overflow(end, b->grace, &end))
        return -EINVAL;
    *start = s;
    return 0;
}

static int open_push(open_list_t *l, entry_t *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        entry_t **items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL)
            return -ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = e;
    return 0;
}

/* A trade into the open bar a. */
static inline void add(acc_t *a, int64_t price, uint32_t size)
{
    if (price > a->high)
        a->high = price;
    if (price < a->low)
        a->low = price;
    a->close = price;
    a->volume += size;
    a->trades++;
    a->notional += (__int128)price * size;
}

/* A trade of size > 0 for the symbol of e (bars_trade()). */
static int trade(bars_t *b, entry_t *e, int64_t price, uint32_t size, int64_t ts, int64_t ts_recv)
{
    int64_t starts[BARS_MAX_INTERVALS];
    /* Nearly every trade falls in its symbol's open bar on every interval,
     * with room for its size in each bar's volume. Then it is neither late
     * nor refused, the clock cannot close those bars (each ends after ts,
     * grace or not), and it only adds to them. */
    size_t n = 0;
    for (uint64_t sum; n < b->n; n++) {
        const acc_t *a = &e->acc[n];
        if (a->start == NONE || ts < a->start ||
            (uint64_t)ts - (uint64_t)a->start >= (uint64_t)b->iv[n] ||
            __builtin_add_overflow(a->volume, size, &sum))
            break;
    }
    if (HEAP_LIKELY(n == b->n)) {
        bars_clock(b, ts, ts_recv);
        for (size_t i = 0; i < b->n; i++)
            add(&e->acc[i], price, size);
        b->stats.trades++;
        return 0;
    }
    for (size_t i = 0; i < b->n; i++) {
        const acc_t *a = &e->acc[i];
        /* Most trades fall in their symbol's open bar: no division. */
        if (HEAP_LIKELY(a->start != NONE && ts >= a->start &&
                        (uint64_t)ts - (uint64_t)a->start < (uint64_t)b->iv[i]))
            starts[i] = a->start;
        else if (HEAP_UNLIKELY(align(b, ts, b->iv[i], &starts[i]) != 0)) {
            b->stats.refused++;
            return -EINVAL;
        }
    }
    bars_clock(b, ts, ts_recv);
    /* All or nothing: a trade is late, or its volume too much, for every
     * interval or for none (the intervals hold the same trades). */
    for (size_t i = 0; i < b->n; i++) {
        const acc_t *a = &e->acc[i];
        uint64_t sum;
        if (starts[i] < (a->start != NONE ? a->start : a->floor)) {
            b->stats.late++;
            return -EALREADY;
        }
        if (a->start == starts[i] && __builtin_add_overflow(a->volume, size, &sum)) {
            b->stats.refused++;
            return -EINVAL;
        }
    }
    int err = 0;
    for (size_t i = 0; i < b->n; i++) {
        acc_t *a = &e->acc[i];
        if (a->start != NONE && a->start < starts[i])
            close_bar(b, e, i); /* stays in the open list: it opens again below */
        if (a->start == NONE) {
            if (!a->listed && open_push(&b->open[i], e) != 0) {
                b->stats.no_memory++;
                err = -ENOMEM;
                continue;
            }
            a->listed = 1;
            a->start = starts[i];
            a->open = a->high = a->low = price;
            a->volume = 0;
            a->trades = 0;
            a->notional = 0;
            int64_t due = starts[i] + b->iv[i] + b->grace;
            if (due < b->open[i].due)
                b->open[i].due = due;
        }
        add(a, price, size);
    }
    if (err == 0)
        b->stats.trades++;
    return err;
}

int bars_trade(bars_t *b, const char *sym, size_t len, int64_t price, uint32_t size, int64_t ts,
               int64_t ts_recv)
{
    if (HEAP_UNLIKELY(size == 0 || !symbol_valid(sym, len))) {
        b->stats.refused++;
        return -EINVAL;
    }
    entry_t *e = entry_of(b, sym, len);
    if (HEAP_UNLIKELY(e == NULL)) {
        b->stats.no_memory++;
        return -ENOMEM;
    }
    return trade(b, e, price, size, ts, ts_recv);
}

int bars_symbol_trade(bars_t *b, symbol_t *sym, int64_t price, uint32_t size, int64_t ts,
                      int64_t ts_recv)
{
    if (HEAP_UNLIKELY(size == 0)) {
        b->stats.refused++;
        return -EINVAL;
    }
    entry_t *e = sym->bars_entry;
    if (HEAP_UNLIKELY(sym->bars_gen != b->gen || e == NULL)) {
        e = entry_of(b, sym->name, sym->len);
        if (HEAP_UNLIKELY(e == NULL)) {
            b->stats.no_memory++;
            return -ENOMEM;
        }
        if (b->gen != 0) {
            sym->bars_gen = b->gen;
            sym->bars_entry = e;
        }
    }
    return trade(b, e, price, size, ts, ts_recv);
}

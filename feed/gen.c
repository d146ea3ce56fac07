/*
 * gen.c - the synthetic day generator (see gen.h for what a day contains).
 *
 * A struct gen holds everything one run needs: the random generator, the
 * symbols with their walking mid prices, the live orders, the clock and an
 * output buffer flushed to the caller's write function in 64 KiB pieces. It
 * is a tool, not the hot path, so it is malloc'ed; nothing outlives the run.
 *
 * Live orders sit in one dense array: an add appends, a removal moves the
 * last order into the hole, and an order is picked by a random index, so
 * every operation is O(1) and ten million messages take about a second.
 *
 * Prices live in a window of LEVELS cent ticks per stock, with a count of
 * live orders at each level and the best bid and best ask levels. The mid
 * walks one tick at a time but only strictly between the best bid and the
 * best ask, and orders are placed 1..KMAX ticks on their side of the mid, so
 * a book is never crossed: every live bid is below every live ask. (A level
 * therefore holds bids or asks, never both, and one count per level serves.)
 *
 * Invariants: every order in the array has shares > 0 and a reference that
 * was written in an A, F or U message and not since removed; levels[i]
 * counts the live orders priced at tick lo + i; best_bid < mid < best_ask;
 * KMAX < mid < LEVELS - 1 - KMAX, so every placement lands in the window.
 *
 * Determinism: output depends only on the options. The random stream comes
 * from the seed alone, all arithmetic is on integers, and nothing depends on
 * addresses or time.
 */
#include "feed/gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/binfile.h"
#include "feed/csv.h"
#include "feed/itch.h"

#define NS_PER_SEC   1000000000ULL
#define AT(h, m)     ((uint64_t)((h)*3600 + (m)*60) * NS_PER_SEC)
#define OUT_CAP      (64 * 1024)
#define TICK         100                 /* one cent in 4-decimal units */
#define LEVELS       160                 /* price window of a stock, in ticks */
#define KMAX         25                  /* farthest an order is placed from the mid, in ticks */
#define NAME_SPACE   (26 * 26 * 26 * 26) /* 4-letter symbols */
#define NAME_STRIDE  7919                /* prime, so i -> name is one-to-one */
#define LIVE_INITIAL 4096

/* The order-flow mix, in thousandths, cumulative in this order. */
static const struct {
    char type;
    uint16_t permille;
} mix[] = {
    {ITCH_ADD_ORDER, 440},     {ITCH_ORDER_DELETE, 430},       {ITCH_ORDER_REPLACE, 70},
    {ITCH_ORDER_EXECUTED, 30}, {ITCH_ORDER_CANCEL, 20},        {ITCH_TRADE, 5},
    {ITCH_ADD_ORDER_MPID, 3},  {ITCH_ORDER_EXECUTED_PRICE, 2},
};

static const char mpids[][ITCH_MPID_LEN] = {"GSCO", "MSCO", "JPMS", "UBSS", "VIRT", "CDRG"};

/* xoshiro256**, seeded through splitmix64. */
struct rng {
    uint64_t s[4];
};

struct stock {
    char name[ITCH_STOCK_LEN]; /* space padded */
    uint8_t name_len;          /* letters before the padding */
    uint32_t lo;               /* price in ticks of level 0 */
    int16_t mid;               /* level of the mid price */
    int16_t best_bid;          /* highest level with live bids, -1 if none */
    int16_t best_ask;          /* lowest level with live asks, LEVELS if none */
    uint32_t *levels;          /* LEVELS counts of live orders, inside gen.levels */
};

struct order {
    uint64_t ref;    /* order reference number on the wire */
    uint32_t shares; /* shares still live, > 0 */
    uint32_t price;  /* Price(4): (stock lo + level) * TICK */
    uint16_t stock;  /* index into gen.stocks */
    uint8_t level;   /* price level in the stock's window */
    char side;       /* 'B' or 'S' */
};

/* Spreads `n` timestamps evenly over [from, to), each jittered within its
 * step, so they never decrease. Exact integer steps: span = q * n + r. */
struct clock {
    uint64_t t;   /* start of the current step */
    uint64_t q;   /* whole nanoseconds per step */
    uint64_t r;   /* remainder spread over the steps, Bresenham style */
    uint64_t acc; /* remainder accumulated so far, < n */
    uint64_t n;   /* steps */
};

struct gen {
    struct rng rng;
    struct stock *stocks;
    uint32_t nstocks;
    uint32_t *levels;   /* nstocks * LEVELS counts */
    struct order *live; /* the live orders, dense */
    size_t nlive;
    size_t cap;
    uint64_t next_ref;   /* next order reference number */
    uint64_t next_match; /* next match number */
    gen_write_fn write;
    void *ctx;
    int err;        /* first error of write or malloc; stops the run */
    size_t out_len; /* bytes in out */
    uint8_t out[OUT_CAP];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* A number in [0, n), n > 0. */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static void clock_init(struct clock *c, uint64_t from, uint64_t to, uint64_t n)
{
    uint64_t span = to - from;
    c->t = from;
    c->n = n ? n : 1;
    c->q = span / c->n;
    c->r = span % c->n;
    c->acc = 0;
}

static uint64_t clock_next(struct clock *c, struct rng *rng)
{
    uint64_t ts = c->t + (c->q ? rng_next(rng) % c->q : 0);
    c->t += c->q;
    c->acc += c->r;
    if (c->acc >= c->n) {
        c->acc -= c->n;
        c->t++;
    }
    return ts;
}

static void out_flush(struct gen *g)
{
    if (g->err == 0 && g->out_len > 0)
        g->err = g->write(g->ctx, g->out, g->out_len);
    g->out_len = 0;
}

/* Room for n more bytes at the end of out. */
static uint8_t *out_reserve(struct gen *g, size_t n)
{
    if (g->out_len + n > OUT_CAP)
        out_flush(g);
    return g->out + g->out_len;
}

static void emit_itch(struct gen *g, const itch_msg_t *m)
{
    uint8_t *p = out_reserve(g, BINFILE_PREFIX_LEN + ITCH_MAX_LEN);
    int n = binfile_encode(m, p, BINFILE_PREFIX_LEN + ITCH_MAX_LEN);
    if (n < 0) {
        g->err = n;
        return;
    }
    g->out_len += (size_t)n;
}

static void msg_header(itch_msg_t *m, char type, uint16_t locate, uint64_t ts)
{
    memset(m, 0, sizeof *m);
    m->type = (uint8_t)type;
    m->stock_locate = locate;
    m->timestamp = ts;
}

static void emit_system_event(struct gen *g, char code, uint64_t ts)
{
    itch_msg_t m;
    msg_header(&m, ITCH_SYSTEM_EVENT, 0, ts);
    m.system_event.event_code = code;
    emit_itch(g, &m);
}

/* A generator for valid options (the caller checked them), or NULL. */
static struct gen *gen_new(const gen_opts_t *opts, gen_write_fn write, void *ctx)
{
    struct gen *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->write = write;
    g->ctx = ctx;
    g->nstocks = opts->symbols;
    g->next_ref = 1;
    g->next_match = 1;

    uint64_t seed = opts->seed;
    for (int i = 0; i < 4; i++)
        g->rng.s[i] = splitmix64(&seed);

    g->stocks = calloc(g->nstocks, sizeof *g->stocks);
    g->levels = calloc((size_t)g->nstocks * LEVELS, sizeof *g->levels);
    if (g->stocks == NULL || g->levels == NULL) {
        free(g->levels);
        free(g->stocks);
        free(g);
        return NULL;
    }
    uint32_t offset = rng_below(&g->rng, NAME_SPACE);
    for (uint32_t i = 0; i < g->nstocks; i++) {
        struct stock *s = &g->stocks[i];
        uint32_t v = (uint32_t)(((uint64_t)i * NAME_STRIDE + offset) % NAME_SPACE);
        char name[4];
        for (int k = 3; k >= 0; k--) {
            name[k] = (char)('A' + v % 26);
            v /= 26;
        }
        itch_stock_set(s->name, name, sizeof name);
        s->name_len = sizeof name;
        uint32_t base = 500 + rng_below(&g->rng, 49501); /* $5.00 .. $500.00 */
        s->lo = base - LEVELS / 2;
        s->mid = LEVELS / 2;
        s->best_bid = -1;
        s->best_ask = LEVELS;
        s->levels = g->levels + (size_t)i * LEVELS;
    }
    return g;
}

static void gen_free(struct gen *g)
{
    free(g->live);
    free(g->levels);
    free(g->stocks);
    free(g);
}

/* Traffic is skewed: half of it goes to the first tenth of the symbols. */
static uint16_t pick_stock(struct gen *g)
{
    uint32_t n = g->nstocks;
    if (rng_below(&g->rng, 2) == 0 && n >= 10)
        n /= 10;
    return (uint16_t)rng_below(&g->rng, n);
}

static uint32_t pick_shares(struct gen *g)
{
    if (rng_below(&g->rng, 10) == 0)
        return 1 + rng_below(&g->rng, 99); /* odd lot */
    return 100 * (1 + rng_below(&g->rng, 10));
}

/* One step of the mid's walk: a tick up or down one time in sixteen each,
 * never onto or past the best bid or ask, never out of the window. */
static void walk_mid(struct gen *g, struct stock *s)
{
    uint32_t r = rng_below(&g->rng, 16);
    int mid = s->mid + (r == 0) - (r == 1);
    if (mid > s->best_bid && mid < s->best_ask && mid > KMAX && mid < LEVELS - 1 - KMAX)
        s->mid = (int16_t)mid;
}

static uint32_t mid_ticks(const struct stock *s)
{
    return s->lo + (uint32_t)s->mid;
}

/* Price a new order of `o->stock` and `o->side` and enter it in the levels:
 * a buy 1..KMAX ticks below the mid, a sell as far above it. */
static void place(struct gen *g, struct order *o)
{
    struct stock *s = &g->stocks[o->stock];
    walk_mid(g, s);
    int k = 1 + (int)rng_below(&g->rng, 5);
    if (rng_below(&g->rng, 8) == 0)
        k += (int)rng_below(&g->rng, KMAX - 4);
    int level = o->side == 'B' ? s->mid - k : s->mid + k;
    o->level = (uint8_t)level;
    o->price = (s->lo + (uint32_t)level) * TICK;
    s->levels[level]++;
    if (o->side == 'B' && level > s->best_bid)
        s->best_bid = (int16_t)level;
    if (o->side == 'S' && level < s->best_ask)
        s->best_ask = (int16_t)level;
}

/* Take an order out of the levels, moving the best bid or ask outward past
 * levels it leaves empty. */
static void unplace(struct gen *g, const struct order *o)
{
    struct stock *s = &g->stocks[o->stock];
    if (--s->levels[o->level] != 0)
        return;
    if (o->side == 'B')
        while (s->best_bid >= 0 && s->levels[s->best_bid] == 0)
            s->best_bid--;
    else
        while (s->best_ask < LEVELS && s->levels[s->best_ask] == 0)
            s->best_ask++;
}

static struct order *live_add(struct gen *g)
{
    if (g->nlive == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : LIVE_INITIAL;
        struct order *live = realloc(g->live, cap * sizeof *live);
        if (live == NULL) {
            g->err = -ENOMEM;
            return NULL;
        }
        g->live = live;
        g->cap = cap;
    }
    return &g->live[g->nlive++];
}

static void live_remove(struct gen *g, size_t i)
{
    unplace(g, &g->live[i]);
    g->live[i] = g->live[--g->nlive];
}

static size_t live_pick(struct gen *g)
{
    return (size_t)(rng_next(&g->rng) % g->nlive);
}

static void flow_add(struct gen *g, char type, uint64_t ts)
{
    struct order *o = live_add(g);
    if (o == NULL)
        return;
    o->stock = pick_stock(g);
    o->side = rng_below(&g->rng, 2) ? 'B' : 'S';
    o->shares = pick_shares(g);
    place(g, o);
    o->ref = g->next_ref++;

    itch_msg_t m;
    msg_header(&m, type, (uint16_t)(o->stock + 1), ts);
    m.add.order_ref = o->ref;
    m.add.side = o->side;
    m.add.shares = o->shares;
    memcpy(m.add.stock, g->stocks[o->stock].name, ITCH_STOCK_LEN);
    m.add.price = o->price;
    if (type == ITCH_ADD_ORDER_MPID)
        memcpy(m.add.attribution, mpids[rng_below(&g->rng, sizeof mpids / sizeof mpids[0])],
               ITCH_MPID_LEN);
    emit_itch(g, &m);
}

/* Shares to execute: all of them three times in ten, else part. */
static uint32_t exec_shares(struct gen *g, const struct order *o)
{
    if (o->shares == 1 || rng_below(&g->rng, 10) < 3)
        return o->shares;
    return 1 + rng_below(&g->rng, o->shares - 1);
}

static void flow_on_live(struct gen *g, char type, uint64_t ts)
{
    size_t i = live_pick(g);
    struct order *o = &g->live[i];
    if (type == ITCH_ORDER_CANCEL && o->shares == 1)
        type = ITCH_ORDER_DELETE;

    itch_msg_t m;
    msg_header(&m, type, (uint16_t)(o->stock + 1), ts);
    switch (type) {
    case ITCH_ORDER_DELETE:
        m.del.order_ref = o->ref;
        live_remove(g, i);
        break;
    case ITCH_ORDER_CANCEL:
        m.cancel.order_ref = o->ref;
        m.cancel.shares = 1 + rng_below(&g->rng, o->shares - 1);
        o->shares -= m.cancel.shares;
        break;
    case ITCH_ORDER_REPLACE:
        m.replace.orig_ref = o->ref;
        o->ref = g->next_ref++;
        o->shares = pick_shares(g);
        unplace(g, o);
        place(g, o);
        m.replace.new_ref = o->ref;
        m.replace.shares = o->shares;
        m.replace.price = o->price;
        break;
    case ITCH_ORDER_EXECUTED:
        m.executed.order_ref = o->ref;
        m.executed.shares = exec_shares(g, o);
        m.executed.match = g->next_match++;
        o->shares -= m.executed.shares;
        if (o->shares == 0)
            live_remove(g, i);
        break;
    default: /* ITCH_ORDER_EXECUTED_PRICE: one tick better for the resting order */
        m.executed_price.order_ref = o->ref;
        m.executed_price.shares = exec_shares(g, o);
        m.executed_price.match = g->next_match++;
        m.executed_price.printable = rng_below(&g->rng, 10) ? 'Y' : 'N';
        m.executed_price.price = o->side == 'B' ? o->price - TICK : o->price + TICK;
        o->shares -= m.executed_price.shares;
        if (o->shares == 0)
            live_remove(g, i);
        break;
    }
    emit_itch(g, &m);
}

static void flow_trade(struct gen *g, uint64_t ts)
{
    uint16_t stock = pick_stock(g);
    struct stock *s = &g->stocks[stock];
    walk_mid(g, s);

    itch_msg_t m;
    msg_header(&m, ITCH_TRADE, (uint16_t)(stock + 1), ts);
    m.trade.order_ref = 0;
    m.trade.side = rng_below(&g->rng, 2) ? 'B' : 'S';
    m.trade.shares = 100 * (1 + rng_below(&g->rng, 5));
    memcpy(m.trade.stock, s->name, ITCH_STOCK_LEN);
    m.trade.price = mid_ticks(s) * TICK;
    m.trade.match = g->next_match++;
    emit_itch(g, &m);
}

static void flow_message(struct gen *g, uint64_t ts)
{
    uint32_t r = rng_below(&g->rng, 1000);
    size_t k = 0;
    while (r >= mix[k].permille) {
        r -= mix[k].permille;
        k++;
    }
    char type = mix[k].type;
    switch (type) {
    case ITCH_ADD_ORDER:
    case ITCH_ADD_ORDER_MPID:
        flow_add(g, type, ts);
        break;
    case ITCH_TRADE:
        flow_trade(g, ts);
        break;
    default:
        if (g->nlive == 0)
            flow_add(g, ITCH_ADD_ORDER, ts);
        else
            flow_on_live(g, type, ts);
        break;
    }
}

static void itch_preamble(struct gen *g)
{
    itch_msg_t m;
    uint64_t ts = AT(3, 0);

    emit_system_event(g, 'O', ts);
    for (uint32_t i = 0; i < g->nstocks; i++) {
        msg_header(&m, ITCH_STOCK_DIRECTORY, (uint16_t)(i + 1), ts + i * 1000);
        itch_stock_directory_t *d = &m.stock_directory;
        memcpy(d->stock, g->stocks[i].name, ITCH_STOCK_LEN);
        d->market_category = 'Q';
        d->financial_status = 'N';
        d->round_lot_size = 100;
        d->round_lots_only = 'N';
        d->issue_classification = 'C';
        memcpy(d->issue_subtype, "Z ", 2);
        d->authenticity = 'P';
        d->short_sale_threshold = 'N';
        d->ipo_flag = 'N';
        d->luld_tier = '1';
        d->etp_flag = 'N';
        d->etp_leverage = 0;
        d->inverse = 'N';
        emit_itch(g, &m);
    }

    ts = AT(4, 0);
    emit_system_event(g, 'S', ts);
    for (uint32_t i = 0; i < g->nstocks; i++) {
        msg_header(&m, ITCH_TRADING_ACTION, (uint16_t)(i + 1), ts + i * 1000);
        memcpy(m.trading_action.stock, g->stocks[i].name, ITCH_STOCK_LEN);
        m.trading_action.trading_state = 'T';
        m.trading_action.reserved = ' ';
        memcpy(m.trading_action.reason, "    ", 4);
        emit_itch(g, &m);
    }
    emit_system_event(g, 'Q', AT(9, 30));
}

int gen_itch(const gen_opts_t *opts, gen_write_fn write, void *ctx)
{
    if (opts->symbols == 0 || opts->symbols > GEN_SYMBOLS_MAX ||
        opts->messages < GEN_ITCH_FIXED(opts->symbols))
        return -EINVAL;
    struct gen *g = gen_new(opts, write, ctx);
    if (g == NULL)
        return -ENOMEM;

    itch_preamble(g);
    uint64_t flow = opts->messages - GEN_ITCH_FIXED(opts->symbols);
    struct clock c;
    clock_init(&c, AT(9, 30), AT(16, 0), flow);
    for (uint64_t i = 0; i < flow && g->err == 0; i++)
        flow_message(g, clock_next(&c, &g->rng));
    emit_system_event(g, 'M', AT(16, 0));
    emit_system_event(g, 'E', AT(20, 0));
    emit_system_event(g, 'C', AT(20, 5));
    out_flush(g);

    int rc = g->err;
    gen_free(g);
    return rc;
}

static void emit_csv(struct gen *g, const csv_tick_t *t)
{
    char *p = (char *)out_reserve(g, CSV_FORMAT_MAX);
    int n = csv_format(t, p, CSV_FORMAT_MAX);
    if (n < 0) {
        g->err = n;
        return;
    }
    g->out_len += (size_t)n;
}

static void csv_tick(struct gen *g, uint64_t ts)
{
    uint16_t stock = pick_stock(g);
    struct stock *s = &g->stocks[stock];
    walk_mid(g, s);

    csv_tick_t t;
    memset(&t, 0, sizeof t);
    t.ts_ns = ts;
    memcpy(t.symbol, s->name, s->name_len);
    if (rng_below(&g->rng, 10) < 8) {
        uint32_t spread = 1 + rng_below(&g->rng, 4);
        uint32_t bid = mid_ticks(s) - spread / 2;
        t.kind = CSV_QUOTE;
        t.quote.bid = (int64_t)bid * TICK;
        t.quote.ask = (int64_t)(bid + spread) * TICK;
        t.quote.bid_size = 100 * (1 + rng_below(&g->rng, 20));
        t.quote.ask_size = 100 * (1 + rng_below(&g->rng, 20));
    } else {
        uint32_t r = rng_below(&g->rng, 10);
        t.kind = CSV_TRADE;
        t.trade.side = r < 5 ? CSV_SIDE_BUY : r < 9 ? CSV_SIDE_SELL : CSV_SIDE_UNKNOWN;
        uint32_t ticks = mid_ticks(s) + (r < 5) - (r >= 5 && r < 9);
        t.trade.price = (int64_t)ticks * TICK;
        t.trade.size = pick_shares(g);
    }
    emit_csv(g, &t);
}

int gen_csv(const gen_opts_t *opts, gen_write_fn write, void *ctx)
{
    if (opts->symbols == 0 || opts->symbols > GEN_SYMBOLS_MAX)
        return -EINVAL;
    struct gen *g = gen_new(opts, write, ctx);
    if (g == NULL)
        return -ENOMEM;

    char *p = (char *)out_reserve(g, CSV_FORMAT_MAX);
    int n = snprintf(p, CSV_FORMAT_MAX, "# tickd synthetic day: symbols=%u ticks=%llu seed=%llu\n",
                     (unsigned)opts->symbols, (unsigned long long)opts->messages,
                     (unsigned long long)opts->seed);
    g->out_len += (size_t)n;

    struct clock c;
    clock_init(&c, AT(9, 30), AT(16, 0), opts->messages);
    for (uint64_t i = 0; i < opts->messages && g->err == 0; i++)
        csv_tick(g, clock_next(&c, &g->rng));
    out_flush(g);

    int rc = g->err;
    gen_free(g);
    return rc;
}

int gen_write_stdio(void *ctx, const void *buf, size_t len)
{
    return fwrite(buf, 1, len, (FILE *)ctx) == len ? 0 : -EIO;
}

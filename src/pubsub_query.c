/*
 * pubsub_query.c - last values and books without a subscription: GET, MGET,
 * KEYS and SCAN, answered from the market the loop holds.
 *
 * The keys are the channels: GET trade.AAPL and GET quote.AAPL answer the
 * symbol's last trade or quote as the text a subscriber reads in a message
 * frame (JSON or CSV, per pubsub.payload), nil when there is none. GET
 * book.AAPL answers the symbol's book from ITCH orders, depth 10 by default,
 * book.AAPL:<depth> for 1 to BOOK_DEPTH_MAX levels a side, always as JSON:
 *
 *   {"sym":"AAPL","ts":<ns>,"bids":[{"price":"101.2500","shares":300,
 *    "orders":2},...],"asks":[...]}
 *
 * best level first on each side; ts is the exchange time of the symbol's
 * last trade or quote, whichever is later (0 when it has neither): the last
 * change at the top of the book. A change deeper in the book since then is
 * in the levels but not in ts. A GET costs O(depth): the book keeps each
 * side sorted (market_book_levels()).
 *
 * A rendered book is kept on its symbol (book_copy_t, in the symbol's slot:
 * one per symbol, at the depth last asked) with the book's version
 * (market_book_version(), which every change of a level bumps), its ts and
 * its depth: a GET that finds all three unchanged queues a reference to the
 * kept bulk, and one that does not renders it once, in place when no client
 * still holds the old one. Books deeper than BOOK_COPY_MAX bytes are
 * rendered at every GET into a block of their own and not kept, so a symbol
 * holds at most BOOK_COPY_MAX bytes; the copies go when the server leaves
 * the market (pubsub__slots_release(): a new day, or pubsub_free()).
 *
 * Anything else is a key that does not exist: nil, as Redis answers. A book
 * key whose depth is not an integer, or out of range, is an error in GET
 * (Redis' "value is not an integer or out of range" for the first) and nil
 * in MGET, which never fails a key. GET bar.1m.AAPL answers the last bar
 * of that interval (feed/bars.h, the builder's last value, in the text a
 * subscriber of the channel reads), nil when there is none yet.
 *
 * KEYS and SCAN list the keys that have a last value, the keys a GET
 * answers with one: trade.X and quote.X, and bar.<interval>.X for each
 * interval of the builder (pubsub_set_bars()) with a last bar of X; never
 * book.X, whose GET answers an empty book as readily as a full one. A bar
 * key is listed from the moment its first bar closed, as GET answers it.
 * The walk goes over the market's symbols and takes each symbol's keys
 * together: a symbol with a last bar has traded today, so it is in the
 * market (the day's roll makes a new market and forgets the builder's
 * symbols at once). SCAN's cursor is the symbol table's slot with its
 * generation above bit 32, so a table that grows mid-iteration is walked
 * again from its start: a key may come twice, never be missed, as Redis
 * promises. Because the cursor counts symbols, not keys, a reload that
 * changes the intervals between two calls moves no cursor; a call may
 * answer up to 2 + BARS_MAX_INTERVALS keys past COUNT, which is a hint
 * (Redis too answers a whole bucket).
 *
 * A user of pubsub.users reads only the channels it may subscribe to
 * (pubsub_acl.c): a GET or MGET of any other key is -NOPERM, KEYS and SCAN
 * leave them out.
 *
 * These commands are not allowed in RESP2 subscribed mode (the dispatch
 * table says so, as Redis does). Never blocks; the market is read, never
 * changed.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "feed/digits.h"
#include "feed/price.h"
#include "src/glob.h"
#include "src/pubsub_internal.h"

#define BOOK_DEPTH_DEFAULT 10
#define BOOK_DEPTH_MAX     1000
#define BOOK_CHUNK         32 /* levels copied out of the book at a time */
/* The JSON of one level at most: {"price":"<price>","shares":<u64>,"orders":<u32>}, */
#define BOOK_LEVEL_MAX (10 + PRICE_TEXT_MAX + 11 + DIGITS_U64_MAX + 10 + 10 + 2)
#define BOOK_HEAD_MAX  (8 + SYMBOL_MAX_LEN + 7 + DIGITS_U64_MAX + 1 + 10 + 10 + 4)
#define BOOK_COPY_MAX  (16 * 1024) /* a bulk of a book up to this bound is kept on its symbol */
#define SCAN_COUNT     10          /* SCAN's COUNT when none is given, as in Redis */
/* The longest key KEYS and SCAN list: "bar.<interval>.<SYMBOL>". */
#define LISTED_KEY_MAX (4 + BARS_INTERVAL_NAME_MAX + SYMBOL_MAX_LEN)

enum key_kind { KEY_NONE, KEY_TRADE, KEY_QUOTE, KEY_BOOK, KEY_BAR };

typedef struct query_key {
    int kind;         /* enum key_kind */
    symbol_t *sym;    /* NULL: no such symbol (nil) */
    size_t depth;     /* KEY_BOOK: levels a side */
    const bar_t *bar; /* KEY_BAR: the last bar, NULL for none (nil) */
} query_key_t;

/* The bulk of a book as the last GET of it rendered it: kept on its symbol
 * (symbol_slot_t.book) while the symbol's slot is this server's. */
typedef struct book_copy {
    payload_t *p;     /* "$<n>\r\n<json>\r\n" from p->data + off to p->len; a reference */
    uint32_t off;     /* where the bulk starts in p->data */
    uint32_t cap;     /* bytes p->data has room for */
    size_t depth;     /* levels a side it shows */
    uint64_t version; /* market_book_version() it shows */
    int64_t ts;       /* the ts it shows */
} book_copy_t;

/* ---- keys ---- */

/* The last tick of sym on a trade or quote channel, or NULL. Every way a
 * query reaches a value (GET, MGET, KEYS, SCAN; a book through its
 * symbol's quote channel) goes through here or parse_key(); what a
 * restricted user may read is checked before (GET, MGET: -NOPERM, as
 * Redis 7 answers a key) or beside (KEYS, SCAN: not listed) these two. */
static const tick_t *channel_tick(const symbol_t *sym, int kind)
{
    return kind == KEY_TRADE ? sym->last_trade : sym->last_quote;
}

const bar_t *pubsub__bar_of(const pubsub_t *ps, const char *key, size_t len)
{
    const char *name = key + 4, *dot = len > 4 ? memchr(name, '.', len - 4) : NULL;
    if (ps->bars == NULL || dot == NULL)
        return NULL;
    int i = bars_interval_index(ps->bars, name, (size_t)(dot - name));
    size_t sym_len = len - (size_t)(dot + 1 - key);
    return i < 0 ? NULL : bars_last(ps->bars, dot + 1, sym_len, (size_t)i);
}

/* Reads key a into *k. 0, or -EINVAL for a book key with a bad depth, with
 * *why the error text. A key of no known form, or naming a symbol the
 * market does not have, is KEY_NONE or has no symbol: nil. */
static int parse_key(const client_t *c, const resp_arg_t *a, query_key_t *k, const char **why)
{
    const char *name = a->ptr;
    size_t len = a->len, sym_len;

    k->kind = KEY_NONE;
    k->sym = NULL;
    k->depth = 0;
    k->bar = NULL;
    if (len > 4 && memcmp(name, "bar.", 4) == 0) {
        k->kind = KEY_BAR;
        k->bar = pubsub__bar_of(c->ps, name, len);
        return 0;
    }
    if (len > 6 && memcmp(name, "trade.", 6) == 0)
        k->kind = KEY_TRADE;
    else if (len > 6 && memcmp(name, "quote.", 6) == 0)
        k->kind = KEY_QUOTE;
    else if (len > 5 && memcmp(name, "book.", 5) == 0)
        k->kind = KEY_BOOK;
    else
        return 0;
    name += k->kind == KEY_BOOK ? 5 : 6;
    len -= k->kind == KEY_BOOK ? 5 : 6;
    sym_len = len;
    if (k->kind == KEY_BOOK) {
        const char *colon = memchr(name, ':', len);
        k->depth = BOOK_DEPTH_DEFAULT;
        if (colon != NULL) {
            resp_arg_t d = {colon + 1, len - (size_t)(colon + 1 - name)};
            long long v;
            sym_len = (size_t)(colon - name);
            if (!pubsub__arg_integer(&d, &v)) {
                *why = "ERR value is not an integer or out of range";
                return -EINVAL;
            }
            if (v < 1 || v > BOOK_DEPTH_MAX) {
                *why = "ERR book depth is out of range, must be between 1 and 1000";
                return -EINVAL;
            }
            k->depth = (size_t)v;
        }
    }
    if (c->ps->market != NULL)
        k->sym = market_find(c->ps->market, name, sym_len);
    return 0;
}

/* ---- replies ---- */

static void reply_nil(client_t *c)
{
    if (pubsub__client_proto(c) == PAYLOAD_RESP3)
        pubsub__reply_raw(c, "_\r\n", 3);
    else
        pubsub__reply_raw(c, "$-1\r\n", 5);
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* put_str() of a string literal, its length known at compile time. */
#define PUT_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

/* "[{...},...]": up to depth levels of side, best first. */
static char *put_side(char *p, const symbol_t *sym, char side, size_t depth)
{
    market_level_t lv[BOOK_CHUNK];
    size_t done = 0, n;

    *p++ = '[';
    while (done < depth &&
           (n = market_book_levels(sym, side, done, lv,
                                   depth - done < BOOK_CHUNK ? depth - done : BOOK_CHUNK)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (done + i > 0)
                *p++ = ',';
            p = PUT_LIT(p, "{\"price\":\"");
            p = price_put(p, lv[i].price);
            p = PUT_LIT(p, "\",\"shares\":");
            p = digits_u64(p, lv[i].shares);
            p = PUT_LIT(p, ",\"orders\":");
            p = digits_u64(p, lv[i].orders);
            *p++ = '}';
        }
        done += n;
    }
    *p++ = ']';
    return p;
}

/* The ts a book of sym shows: the exchange time of its last trade or quote,
 * whichever is later, 0 with neither. */
static int64_t book_ts(const symbol_t *sym)
{
    int64_t ts = 0;
    if (sym->last_trade != NULL)
        ts = sym->last_trade->ts_exch;
    if (sym->last_quote != NULL && sym->last_quote->ts_exch > ts)
        ts = sym->last_quote->ts_exch;
    return ts;
}

/* The book of k, showing ts, as JSON at w; returns its end. */
static char *put_book(char *w, const query_key_t *k, int64_t ts)
{
    const symbol_t *sym = k->sym;
    w = put_str(w, "{\"sym\":\"");
    memcpy(w, sym->name, sym->len);
    w += sym->len;
    w = put_str(w, "\",\"ts\":");
    if (ts < 0) {
        *w++ = '-';
        w = digits_u64(w, 0 - (uint64_t)ts);
    } else {
        w = digits_u64(w, (uint64_t)ts);
    }
    w = put_str(w, ",\"bids\":");
    w = put_side(w, sym, 'B', k->depth);
    w = put_str(w, ",\"asks\":");
    w = put_side(w, sym, 'S', k->depth);
    *w++ = '}';
    return w;
}

/* The room a bulk of the book of k may take: its "$<n>\r\n", the JSON of
 * depth levels a side at their longest, the final CRLF. */
static size_t book_bound(const query_key_t *k)
{
    return NUMBER_MAX + BOOK_HEAD_MAX + 2 * k->depth * BOOK_LEVEL_MAX + 2;
}

/* Writes the book of k, showing ts, as one bulk into p (book_bound() bytes
 * of room): the JSON after room for the "$<n>\r\n", which is then written
 * right before it. Returns where the bulk starts; p->len is its end. */
static uint32_t put_book_bulk(payload_t *p, const query_key_t *k, int64_t ts)
{
    char *text = p->data + NUMBER_MAX, *w = put_book(text, k, ts);
    size_t n = (size_t)(w - text);
    char head[NUMBER_MAX];
    size_t hlen = pubsub__format_number(head, '$', (long long)n);
    memcpy(text - hlen, head, hlen);
    *w++ = '\r';
    *w++ = '\n';
    p->len = (uint32_t)(w - p->data);
    return (uint32_t)(NUMBER_MAX - hlen);
}

void pubsub__book_copy_free(pubsub_t *ps, void *copy)
{
    book_copy_t *bc = copy;
    if (bc == NULL)
        return;
    if (bc->p != NULL)
        payload_release(ps->heap, &ps->latency, bc->p);
    heap_free(ps->heap, bc);
}

/* The copy of the book of k on its symbol, showing ts and the book's
 * version: the one kept if it does, else rendered now (into the kept block
 * when no client holds it and it has room). NULL when memory runs out or
 * another server owns the symbol's slot. */
static book_copy_t *book_copy(pubsub_t *ps, const query_key_t *k, int64_t ts)
{
    symbol_slot_t *slot = &k->sym->slot;
    uint64_t version = market_book_version(k->sym);
    size_t bound = book_bound(k);
    book_copy_t *bc = slot->book;

    if (slot->owner != ps) {
        if (slot->owner != NULL)
            return NULL;
        slot->owner = ps; /* zeroed: its channel versions are good for nothing */
    }
    if (bc != NULL && bc->version == version && bc->ts == ts && bc->depth == k->depth)
        return bc;
    if (bc == NULL) {
        if ((bc = pubsub__zalloc(ps->heap, sizeof *bc)) == NULL)
            return NULL;
        slot->book = bc;
    }
    if (bc->p == NULL || bc->p->refcnt > 1 || bc->cap < bound) {
        payload_t *p = payload_alloc(ps->heap, bound);
        if (p == NULL)
            return NULL;
        if (bc->p != NULL)
            payload_release(ps->heap, &ps->latency, bc->p);
        bc->p = p;
        bc->cap = (uint32_t)bound;
    }
    bc->off = put_book_bulk(bc->p, k, ts);
    bc->depth = k->depth;
    bc->version = version;
    bc->ts = ts;
    return bc;
}

/* The book of k as one bulk, queued by reference after the replies before
 * it: the copy kept on its symbol (book_copy()), or, for a book too deep to
 * keep or a symbol whose slot another server owns, a block rendered for
 * this GET alone. */
static void reply_book(client_t *c, const query_key_t *k)
{
    pubsub_t *ps = c->ps;
    int64_t ts = book_ts(k->sym);
    size_t bound = book_bound(k);
    book_copy_t *bc = bound <= BOOK_COPY_MAX ? book_copy(ps, k, ts) : NULL;
    payload_t *p;
    uint32_t off;

    if (bc != NULL) {
        p = bc->p;
        off = bc->off;
        payload_incref(p);
    } else if ((p = payload_alloc(ps->heap, bound)) != NULL) {
        off = put_book_bulk(p, k, ts);
    } else {
        pubsub__reply_error(c, "ERR out of memory");
        return;
    }
    pubsub__reply_seal(ps); /* what came before goes first */
    pubsub__enqueue(c, p, off, p->len);
    payload_release(ps->heap, &ps->latency, p);
}

/* A bar's text (pubsub.payload's format), or nil for none. */
static void reply_bar(client_t *c, const bar_t *bar)
{
    char text[PAYLOAD_BAR_TEXT_MAX];
    int n = bar != NULL ? payload_format_bar(bar, c->ps->opt.payload, text, sizeof text) : -ENOENT;
    if (n < 0)
        reply_nil(c);
    else
        pubsub__reply_bulk(c, text, (size_t)n);
}

/* The value of k: a tick's text, a book, a bar, or nil. */
static void reply_value(client_t *c, const query_key_t *k)
{
    pubsub_t *ps = c->ps;

    if (k->kind == KEY_BAR) {
        reply_bar(c, k->bar);
        return;
    }
    if (k->sym == NULL || k->kind == KEY_NONE) {
        reply_nil(c);
        return;
    }
    if (k->kind == KEY_BOOK) {
        reply_book(c, k);
        return;
    }
    const tick_t *t = channel_tick(k->sym, k->kind);
    char text[PAYLOAD_TEXT_MAX];
    int n = t != NULL ? payload_format_tick(t, ps->opt.payload, text, sizeof text) : -ENOENT;
    if (n < 0) {
        if (n != -ENOENT)
            ps->stats.encode_errors_total++; /* as a subscriber would not get it */
        reply_nil(c);
        return;
    }
    pubsub__reply_bulk(c, text, (size_t)n);
}

/* Whether c's user may read every key of argv[1..argc); if not, the
 * -NOPERM answer is given, as Redis 7 checks a command's keys before it
 * runs. */
static int keys_allowed(client_t *c, size_t argc, const resp_arg_t *argv)
{
    if (HEAP_LIKELY(c->user == NULL))
        return 1;
    for (size_t i = 1; i < argc; i++)
        if (!pubsub__acl_may_read(c->user, argv[i].ptr, argv[i].len)) {
            pubsub__reply_str(c, ACL_NOPERM_KEY);
            return 0;
        }
    return 1;
}

void pubsub__cmd_get(client_t *c, size_t argc, const resp_arg_t *argv)
{
    query_key_t k;
    const char *why;

    if (!keys_allowed(c, argc, argv))
        return;
    if (parse_key(c, &argv[1], &k, &why) != 0)
        pubsub__reply_error(c, "%s", why);
    else
        reply_value(c, &k);
}

void pubsub__cmd_mget(client_t *c, size_t argc, const resp_arg_t *argv)
{
    if (!keys_allowed(c, argc, argv))
        return;
    pubsub__reply_number(c, '*', (long long)(argc - 1));
    for (size_t i = 1; i < argc; i++) {
        query_key_t k;
        const char *why;
        if (parse_key(c, &argv[i], &k, &why) != 0)
            reply_nil(c);
        else
            reply_value(c, &k);
    }
}

/* ---- KEYS and SCAN ---- */

/* A walk of the symbols for the keys with a last value whose names match
 * pattern: counted first (the array's length), then written. */
typedef struct key_walk {
    client_t *c;
    const char *pattern; /* NULL: every key */
    size_t plen;
    int write;    /* 0: count only */
    int none;     /* match nothing (SCAN ... TYPE of no key) */
    size_t found; /* keys matched so far */
    size_t stop;  /* stop after the symbol that brings found to this (0: never) */
} key_walk_t;

/* Counts the key name[0..n), and writes it, if it matches the walk's
 * pattern and the client's user may read it (as GET would let it). */
static void walk_key(key_walk_t *w, const char *name, size_t n)
{
    if ((w->pattern != NULL && !glob_match(w->pattern, w->plen, name, n)) ||
        !pubsub__acl_may_read(w->c->user, name, n))
        return;
    w->found++;
    if (w->write)
        pubsub__reply_bulk(w->c, name, n);
}

/* The keys of sym with a last value: its channels with a last tick, then
 * bar.<interval>.<SYMBOL> in the builder's order of intervals. */
static int walk_symbol(symbol_t *sym, void *arg)
{
    key_walk_t *w = arg;
    static const int kinds[2] = {KEY_TRADE, KEY_QUOTE};
    const bars_t *bars = w->c->ps->bars;
    char name[LISTED_KEY_MAX];

    if (w->none)
        return 0;
    for (int i = 0; i < 2; i++) {
        if (channel_tick(sym, kinds[i]) == NULL)
            continue;
        memcpy(name, kinds[i] == KEY_TRADE ? "trade." : "quote.", 6);
        memcpy(name + 6, sym->name, sym->len);
        walk_key(w, name, 6 + (size_t)sym->len);
    }
    for (size_t i = 0, n = bars != NULL ? bars_count(bars) : 0; i < n; i++) {
        const bar_t *bar = bars_last(bars, sym->name, sym->len, i);
        if (bar == NULL)
            continue;
        size_t ilen = strlen(bar->name);
        char *p = PUT_LIT(name, "bar.");
        memcpy(p, bar->name, ilen);
        p += ilen;
        *p++ = '.';
        memcpy(p, sym->name, sym->len);
        walk_key(w, name, (size_t)(p + sym->len - name));
    }
    return w->stop != 0 && w->found >= w->stop;
}

void pubsub__cmd_keys(client_t *c, size_t argc, const resp_arg_t *argv)
{
    key_walk_t w = {c, argv[1].ptr, argv[1].len, 0, 0, 0, 0};
    (void)argc;

    if (c->ps->market == NULL) {
        pubsub__reply_raw(c, "*0\r\n", 4);
        return;
    }
    market_foreach(c->ps->market, walk_symbol, &w);
    pubsub__reply_number(c, '*', (long long)w.found);
    w.write = 1;
    w.found = 0;
    market_foreach(c->ps->market, walk_symbol, &w);
}

/* SCAN's cursor as Redis reads one: an unsigned decimal of up to 20
 * digits that fits in 64 bits. 1, or 0 when a is not one. */
static int parse_cursor(const resp_arg_t *a, uint64_t *out)
{
    uint64_t v = 0;
    if (a->len == 0 || a->len > DIGITS_U64_MAX)
        return 0;
    for (size_t i = 0; i < a->len; i++) {
        unsigned d = (unsigned)(a->ptr[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]: visits up to ten
 * times COUNT slots of the symbol table, stopping after the symbol whose
 * keys bring those found to COUNT, as Redis does over its buckets: at most
 * 2 + BARS_MAX_INTERVALS keys a slot. "0" as the next cursor ends the
 * iteration. Every key is a string (TYPE string lists them, another type
 * none). */
void pubsub__cmd_scan(client_t *c, size_t argc, const resp_arg_t *argv)
{
    key_walk_t w = {c, NULL, 0, 0, 0, 0, 0};
    uint64_t v;
    long long count = SCAN_COUNT;
    int no_type = 0;

    if (!parse_cursor(&argv[1], &v)) {
        pubsub__reply_error(c, "ERR invalid cursor");
        return;
    }
    for (size_t j = 2; j < argc; j += 2) {
        if (j + 1 >= argc) {
            pubsub__reply_error(c, "ERR syntax error");
            return;
        }
        if (pubsub__arg_is(&argv[j], "count")) {
            if (!pubsub__arg_integer(&argv[j + 1], &count)) {
                pubsub__reply_error(c, "ERR value is not an integer or out of range");
                return;
            }
            if (count < 1) {
                pubsub__reply_error(c, "ERR syntax error");
                return;
            }
        } else if (pubsub__arg_is(&argv[j], "match")) {
            w.pattern = argv[j + 1].ptr;
            w.plen = argv[j + 1].len;
        } else if (pubsub__arg_is(&argv[j], "type")) {
            no_type = !pubsub__arg_is(&argv[j + 1], "string");
        } else {
            pubsub__reply_error(c, "ERR syntax error");
            return;
        }
    }

    /* The walk counts the keys and finds the next cursor, then, the header
     * written, walks again from the same cursor, writing as many keys. */
    market_t *m = c->ps->market;
    size_t cursor = (size_t)(v & UINT32_MAX), next = cursor;
    uint32_t generation = (uint32_t)(v >> 32), next_generation = generation;
    w.none = no_type;
    w.stop = (size_t)count;
    if (m != NULL) {
        size_t slots = count > (1ll << 28) ? (size_t)1 << 31 : (size_t)count * 10;
        market_foreach_step(m, &next, &next_generation, slots, walk_symbol, &w);
    } else {
        next = SIZE_MAX;
    }
    v = next == SIZE_MAX ? 0 : ((uint64_t)next_generation << 32) | next;
    char num[DIGITS_U64_MAX];
    pubsub__reply_raw(c, "*2\r\n", 4);
    pubsub__reply_bulk(c, num, (size_t)(digits_u64(num, v) - num));
    pubsub__reply_number(c, '*', (long long)w.found);
    if (w.found > 0) {
        w.write = 1;
        w.stop = w.found;
        w.found = 0;
        market_foreach_step(m, &cursor, &generation, SIZE_MAX, walk_symbol, &w);
    }
}

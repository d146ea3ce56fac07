/*
 * nats_decode.c - a tick from tickd's JSON or CSV payload (nats_decode.h).
 *
 * The JSON reader knows exactly the shape payload.c writes: one flat object
 * of string and integer values, keys and strings without escapes. Keys it
 * does not know are skipped (a newer tickd may add some); a key given twice,
 * a missing field, a value of the wrong type or anything after the object
 * is an error. Prices go through price_parse(), symbols are checked as the
 * market checks them, so a decoded tick is one the market takes.
 */
#include "src/nats_decode.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "feed/price.h"

/* A cursor over the payload. */
struct reader {
    const char *p, *end;
};

enum {
    K_SYM = 1 << 0,
    K_KIND = 1 << 1,
    K_PRICE = 1 << 2,
    K_SIZE = 1 << 3,
    K_SIDE = 1 << 4,
    K_BID = 1 << 5,
    K_BID_SIZE = 1 << 6,
    K_ASK = 1 << 7,
    K_ASK_SIZE = 1 << 8,
    K_TS = 1 << 9,
    K_SEQ = 1 << 10,
};

static const struct {
    const char *name;
    unsigned bit;
    int is_string; /* its value is a string, else an integer */
} keys[] = {
    {"sym", K_SYM, 1},           {"kind", K_KIND, 1},
    {"price", K_PRICE, 1},       {"size", K_SIZE, 0},
    {"side", K_SIDE, 1},         {"bid", K_BID, 1},
    {"bid_size", K_BID_SIZE, 0}, {"ask", K_ASK, 1},
    {"ask_size", K_ASK_SIZE, 0}, {"ts", K_TS, 0},
    {"seq", K_SEQ, 0},
};

static void skip_space(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int eat(struct reader *r, char c)
{
    skip_space(r);
    if (r->p >= r->end || *r->p != c)
        return 0;
    r->p++;
    return 1;
}

/* A string without escapes: its bytes in [*s, *s + *n). */
static int string(struct reader *r, const char **s, size_t *n)
{
    if (!eat(r, '"'))
        return 0;
    const char *start = r->p;
    while (r->p < r->end && *r->p != '"') {
        if (*r->p == '\\' || (unsigned char)*r->p < 0x20)
            return 0;
        r->p++;
    }
    if (r->p >= r->end)
        return 0;
    *s = start;
    *n = (size_t)(r->p - start);
    r->p++;
    return 1;
}

/* An integer, optionally negative, within int64. */
static int integer(struct reader *r, int64_t *out)
{
    skip_space(r);
    int neg = r->p < r->end && *r->p == '-';
    if (neg)
        r->p++;
    uint64_t v = 0;
    const char *start = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        unsigned d = (unsigned)(*r->p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
        r->p++;
    }
    if (r->p == start || v > (uint64_t)INT64_MAX + (uint64_t)neg)
        return 0;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

static int size_value(int64_t v, uint32_t *out)
{
    if (v < 0 || v > UINT32_MAX)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

static int valid_symbol(const char *s, size_t n)
{
    if (n == 0 || n > CSV_SYMBOL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int fail(const char **reason, const char *why)
{
    *reason = why;
    return -EINVAL;
}

static int decode_json(const char *data, size_t len, struct csv_tick *t, const char **reason)
{
    struct reader r = {data, data + len};
    unsigned seen = 0;
    int64_t price = 0, bid = 0, ask = 0, ts = 0, num;
    uint32_t size = 0, bid_size = 0, ask_size = 0;
    const char *s;
    size_t n;
    memset(t, 0, sizeof(*t));
    if (!eat(&r, '{'))
        return fail(reason, "not a JSON object");
    if (!eat(&r, '}')) {
        do {
            const char *k;
            size_t kn;
            if (!string(&r, &k, &kn) || !eat(&r, ':'))
                return fail(reason, "malformed JSON: expected \"key\":");
            size_t i = 0;
            while (i < sizeof(keys) / sizeof(keys[0]) &&
                   (strlen(keys[i].name) != kn || memcmp(keys[i].name, k, kn) != 0))
                i++;
            skip_space(&r);
            int is_string = r.p < r.end && *r.p == '"';
            if (i == sizeof(keys) / sizeof(keys[0])) { /* a key of a newer tickd */
                if (is_string ? !string(&r, &s, &n) : !integer(&r, &num))
                    return fail(reason, "malformed JSON: a value that is not a string or an "
                                        "integer");
                continue;
            }
            if (seen & keys[i].bit)
                return fail(reason, "a key given twice");
            seen |= keys[i].bit;
            if (keys[i].is_string != is_string)
                return fail(reason, "a value of the wrong type");
            if (is_string ? !string(&r, &s, &n) : !integer(&r, &num))
                return fail(reason, "malformed JSON value");
            switch (keys[i].bit) {
            case K_SYM:
                if (!valid_symbol(s, n))
                    return fail(reason, "bad symbol (1 to 8 of A-Z 0-9 . -)");
                memcpy(t->symbol, s, n);
                t->symbol[n] = '\0';
                break;
            case K_KIND:
                if (n == 5 && memcmp(s, "trade", 5) == 0)
                    t->kind = CSV_TRADE;
                else if (n == 5 && memcmp(s, "quote", 5) == 0)
                    t->kind = CSV_QUOTE;
                else
                    return fail(reason, "kind is neither trade nor quote");
                break;
            case K_PRICE:
            case K_BID:
            case K_ASK:
                if (price_parse(s, n,
                                keys[i].bit == K_PRICE ? &price
                                : keys[i].bit == K_BID ? &bid
                                                       : &ask) != 0)
                    return fail(reason, "bad price");
                break;
            case K_SIDE:
                if (n != 1 || (s[0] != 'B' && s[0] != 'S'))
                    return fail(reason, "side is neither B nor S");
                t->trade.side = s[0];
                break;
            case K_SIZE:
            case K_BID_SIZE:
            case K_ASK_SIZE:
                if (!size_value(num, keys[i].bit == K_SIZE       ? &size
                                     : keys[i].bit == K_BID_SIZE ? &bid_size
                                                                 : &ask_size))
                    return fail(reason, "bad size");
                break;
            case K_TS:
                ts = num;
                break;
            default: /* seq: the publisher's; the market numbers its own */
                break;
            }
        } while (eat(&r, ','));
        if (!eat(&r, '}'))
            return fail(reason, "malformed JSON: expected , or }");
    }
    skip_space(&r);
    if (r.p != r.end)
        return fail(reason, "bytes after the JSON object");
    unsigned need =
        K_SYM | K_KIND | K_TS |
        (t->kind == CSV_TRADE ? K_PRICE | K_SIZE : K_BID | K_BID_SIZE | K_ASK | K_ASK_SIZE);
    if ((seen & need) != need)
        return fail(reason, "a field is missing (sym, kind, ts, and price and size, or bid, "
                            "bid_size, ask and ask_size)");
    if (t->kind == CSV_TRADE && (seen & (K_BID | K_BID_SIZE | K_ASK | K_ASK_SIZE)))
        return fail(reason, "a trade with quote fields");
    if (t->kind == CSV_QUOTE && (seen & (K_PRICE | K_SIZE | K_SIDE)))
        return fail(reason, "a quote with trade fields");
    t->ts_ns = (uint64_t)ts;
    if (t->kind == CSV_TRADE) {
        if (size == 0)
            return fail(reason, "a trade of size 0");
        t->trade.price = price;
        t->trade.size = size;
    } else {
        t->quote.bid = bid;
        t->quote.bid_size = bid_size;
        t->quote.ask = ask;
        t->quote.ask_size = ask_size;
    }
    return 0;
}

int nats_decode_tick(const char *data, size_t len, struct csv_tick *out, const char **reason)
{
    if (len == 0)
        return fail(reason, "an empty payload");
    if (len > NATS_DECODE_MAX)
        return fail(reason, "an oversized payload (a tick is at most 1024 bytes)");
    if (data[0] == '{')
        return decode_json(data, len, out, reason);
    int r = csv_parse_line(data, len, out, reason);
    if (r == 0)
        return fail(reason, "an empty line or a comment, not a tick");
    return r < 0 ? -EINVAL : 0;
}

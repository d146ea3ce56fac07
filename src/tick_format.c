/*
 * tick_format.c - a tick as JSON or CSV text, and its channel name.
 *
 * Runs once per tick that has at least one subscriber, so the encoders write
 * digits by hand into the caller's buffer (a stack buffer in payload.c and
 * pubsub.c): no printf, no allocation. The JSON has a fixed key order and
 * never needs escaping (symbols are A-Z 0-9 . -); prices are strings so
 * that no client turns them into floating point. The CSV is feed/csv.h's
 * line, so a subscriber's text can be PUBLISHed or replayed as it is.
 *
 * Bars (feed/bars.h) on bar.<interval>.<SYMBOL>, in the same two forms:
 *
 *   {"sym":"AAPL","kind":"bar","interval":"1m","start":<ns>,"open":"101.2500",
 *    "high":"...","low":"...","close":"...","volume":<shares>,
 *    "vwap":"101.2613","trades":<n>}
 *   B,<start>,<SYMBOL>,<interval>,<open>,<high>,<low>,<close>,<volume>,<vwap>,<trades>
 *
 * start is the exchange time (ns, the ticks' ts clock) the bar's interval
 * begins at; prices have 4 decimals as the ticks'; vwap is rounded half
 * away from zero (feed/bars.c). The CSV line is also the row of
 * `tickd replay --bars`'s file, under payload_bar_csv_header. Bars are not
 * ticks: PUBLISH does not take them.
 */
#include <errno.h>
#include <string.h>

#include "feed/csv.h"
#include "feed/digits.h"
#include "feed/price.h"
#include "src/tick_format.h"

static char *put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return digits_u64(p, 0 - (uint64_t)v);
    }
    return digits_u64(p, (uint64_t)v);
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* "<key>":"<price>" */
static char *put_price(char *p, const char *key, int64_t price)
{
    p = put_str(p, key);
    *p++ = '"';
    p = price_put(p, price);
    *p++ = '"';
    return p;
}

size_t payload_channel(const tick_t *t, char buf[PAYLOAD_CHANNEL_MAX])
{
    memcpy(buf, t->kind == TICK_TRADE ? "trade." : "quote.", 6);
    memcpy(buf + 6, t->sym->name, t->sym->len);
    return 6 + (size_t)t->sym->len;
}

static size_t format_json(const tick_t *t, char *buf)
{
    char *p = buf;
    p = put_str(p, "{\"sym\":\"");
    memcpy(p, t->sym->name, t->sym->len);
    p += t->sym->len;
    if (t->kind == TICK_TRADE) {
        p = put_str(p, "\",\"kind\":\"trade\",");
        p = put_price(p, "\"price\":", t->price);
        p = put_str(p, ",\"size\":");
        p = digits_u64(p, t->size);
        if (t->side == 'B' || t->side == 'S') { /* an unknown side has no key */
            p = put_str(p, ",\"side\":\"");
            *p++ = t->side;
            *p++ = '"';
        }
    } else {
        p = put_str(p, "\",\"kind\":\"quote\",");
        p = put_price(p, "\"bid\":", t->price);
        p = put_str(p, ",\"bid_size\":");
        p = digits_u64(p, t->size);
        p = put_price(p, ",\"ask\":", t->ask);
        p = put_str(p, ",\"ask_size\":");
        p = digits_u64(p, t->ask_size);
    }
    p = put_str(p, ",\"ts\":");
    p = put_i64(p, t->ts_exch);
    p = put_str(p, ",\"seq\":");
    p = digits_u64(p, t->seq);
    *p++ = '}';
    return (size_t)(p - buf);
}

/* csv_format() reads the members of its kind and the symbol up to its NUL,
 * so only those are set: the whole name array is copied, a fixed size the
 * compiler moves in two stores, its NUL at len within it. */
static int format_csv(const tick_t *t, char *buf)
{
    _Static_assert(sizeof((csv_tick_t *)0)->symbol == sizeof((symbol_t *)0)->name,
                   "a symbol's name array is a CSV symbol's");
    csv_tick_t ct;
    ct.kind = t->kind == TICK_TRADE ? CSV_TRADE : CSV_QUOTE;
    memcpy(ct.symbol, t->sym->name, sizeof ct.symbol);
    ct.ts_ns = (uint64_t)t->ts_exch;
    if (t->kind == TICK_TRADE) {
        ct.trade.price = t->price;
        ct.trade.size = t->size;
        ct.trade.side = t->side;
    } else {
        ct.quote.bid = t->price;
        ct.quote.bid_size = t->size;
        ct.quote.ask = t->ask;
        ct.quote.ask_size = t->ask_size;
    }
    int n = csv_format(&ct, buf, CSV_FORMAT_MAX);
    return n < 0 ? n : n - 1; /* without the "\n" */
}

int payload_format_tick(const tick_t *t, int format, char *buf, size_t cap)
{
    /* The longest JSON (a quote with every number at its widest) is under
     * 200 bytes; a CSV line is under CSV_FORMAT_MAX. */
    char tmp[PAYLOAD_TEXT_MAX];
    char *out = cap >= PAYLOAD_TEXT_MAX ? buf : tmp;
    int n;

    if (format == PAYLOAD_CSV)
        n = format_csv(t, out);
    else
        n = (int)format_json(t, out);
    if (n < 0)
        return n;
    if ((size_t)n > cap)
        return -ENOBUFS;
    if (out != buf)
        memcpy(buf, tmp, (size_t)n);
    return n;
}

/* ---- bars ---- */

const char payload_bar_csv_header[] =
    "kind,start,symbol,interval,open,high,low,close,volume,vwap,trades";

size_t payload_bar_channel(const bar_t *b, char buf[PAYLOAD_BAR_CHANNEL_MAX])
{
    char *p = buf;
    size_t n = strlen(b->name);
    memcpy(p, "bar.", 4);
    p += 4;
    memcpy(p, b->name, n);
    p += n;
    *p++ = '.';
    memcpy(p, b->sym, b->sym_len);
    return (size_t)(p - buf) + b->sym_len;
}

static size_t format_bar_json(const bar_t *b, char *buf)
{
    char *p = buf;
    p = put_str(p, "{\"sym\":\"");
    memcpy(p, b->sym, b->sym_len);
    p += b->sym_len;
    p = put_str(p, "\",\"kind\":\"bar\",\"interval\":\"");
    p = put_str(p, b->name);
    p = put_str(p, "\",\"start\":");
    p = put_i64(p, b->start);
    p = put_price(p, ",\"open\":", b->open);
    p = put_price(p, ",\"high\":", b->high);
    p = put_price(p, ",\"low\":", b->low);
    p = put_price(p, ",\"close\":", b->close);
    p = put_str(p, ",\"volume\":");
    p = digits_u64(p, b->volume);
    p = put_price(p, ",\"vwap\":", b->vwap);
    p = put_str(p, ",\"trades\":");
    p = digits_u64(p, b->trades);
    *p++ = '}';
    return (size_t)(p - buf);
}

static size_t format_bar_csv(const bar_t *b, char *buf)
{
    const int64_t prices[4] = {b->open, b->high, b->low, b->close};
    char *p = buf;
    p = put_str(p, "B,");
    p = put_i64(p, b->start);
    *p++ = ',';
    memcpy(p, b->sym, b->sym_len);
    p += b->sym_len;
    *p++ = ',';
    p = put_str(p, b->name);
    for (int i = 0; i < 4; i++) {
        *p++ = ',';
        p = price_put(p, prices[i]);
    }
    *p++ = ',';
    p = digits_u64(p, b->volume);
    *p++ = ',';
    p = price_put(p, b->vwap);
    *p++ = ',';
    p = digits_u64(p, b->trades);
    return (size_t)(p - buf);
}

int payload_format_bar(const bar_t *b, int format, char *buf, size_t cap)
{
    /* The widest JSON (every number at its widest) is under 340 bytes. */
    char tmp[PAYLOAD_BAR_TEXT_MAX];
    char *out = cap >= PAYLOAD_BAR_TEXT_MAX ? buf : tmp;
    size_t n = format == PAYLOAD_CSV ? format_bar_csv(b, out) : format_bar_json(b, out);
    if (n > cap)
        return -ENOBUFS;
    if (out != buf)
        memcpy(buf, tmp, n);
    return (int)n;
}

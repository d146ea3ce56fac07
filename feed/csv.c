/*
 * csv.c - the CSV tick format: parse a line, format a tick, split a stream
 * into lines.
 *
 * The grammar is in csv.h. Parsing checks every field completely (a line is
 * either a valid tick or an error with a reason, never half of one) and
 * touches *tick only once the whole line is valid. Numbers are read digit by
 * digit with overflow checks; prices go through price.c, so no float is ever
 * involved. Formatting writes digits by hand, without stdio, because
 * pub/sub formats a line per published tick.
 *
 * The reader holds at most one line split across chunks in a fixed buffer of
 * CSV_LINE_MAX bytes; a longer line is dropped as it streams past and
 * reported once, at its end. Lines wholly inside a chunk are returned in
 * place, without a copy. Nothing reads outside the chunk or the buffer.
 */
#include "feed/csv.h"

#include <errno.h>
#include <string.h>

#include "feed/price.h"

#define CSV_MAX_FIELDS 7 /* a quote */

struct field {
    const char *p;
    size_t n;
};

static int fail(const char **reason, int rc, const char *why)
{
    *reason = why;
    return rc;
}

static bool symbol_ok(const char *s, size_t n)
{
    if (n == 0 || n > CSV_SYMBOL_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* An unsigned decimal integer of one or more digits, at most `max`. */
static int parse_uint(struct field f, uint64_t max, uint64_t *out)
{
    if (f.n == 0)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < f.n; i++) {
        char c = f.p[i];
        if (c < '0' || c > '9')
            return -EINVAL;
        unsigned d = (unsigned)(c - '0');
        if (v > (max - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

enum price_field { F_PRICE, F_BID, F_ASK };

/* A price field; on error, *reason names the field and the fault. */
static int parse_price_field(struct field f, enum price_field which, int64_t *out,
                             const char **reason)
{
    static const char *const why[3][4] = {
        {"malformed price", "negative price", "price has more than 4 decimals", "price overflows"},
        {"malformed bid", "negative bid", "bid has more than 4 decimals", "bid overflows"},
        {"malformed ask", "negative ask", "ask has more than 4 decimals", "ask overflows"},
    };
    int rc = price_parse(f.p, f.n, out);
    switch (rc) {
    case 0:
        return 0;
    case PRICE_ENEGATIVE:
        return fail(reason, -EINVAL, why[which][1]);
    case PRICE_EDECIMALS:
        return fail(reason, -EINVAL, why[which][2]);
    case PRICE_EOVERFLOW:
        return fail(reason, -ERANGE, why[which][3]);
    default:
        return fail(reason, -EINVAL, why[which][0]);
    }
}

/* A size field; the two reasons name the field. */
static int parse_size_field(struct field f, uint32_t *out, const char *malformed,
                            const char *overflows, const char **reason)
{
    uint64_t v;
    int rc = parse_uint(f, UINT32_MAX, &v);
    if (rc == -ERANGE)
        return fail(reason, rc, overflows);
    if (rc != 0)
        return fail(reason, rc, malformed);
    *out = (uint32_t)v;
    return 0;
}

int csv_parse_line(const char *line, size_t len, struct csv_tick *tick, const char **reason)
{
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0 || line[0] == '#')
        return 0;

    char kind = line[0];
    if ((kind != CSV_TRADE && kind != CSV_QUOTE) || (len > 1 && line[1] != ','))
        return fail(reason, -EINVAL, "unknown record type (want T or Q)");
    size_t want_min = kind == CSV_TRADE ? 5 : 7;
    size_t want_max = kind == CSV_TRADE ? 6 : 7;

    struct field f[CSV_MAX_FIELDS];
    size_t nf = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != ',')
            continue;
        if (nf == want_max)
            return fail(reason, -EINVAL, "extra field");
        f[nf].p = line + start;
        f[nf].n = i - start;
        nf++;
        start = i + 1;
    }
    if (nf < want_min)
        return fail(reason, -EINVAL, "missing field");

    struct csv_tick t;
    memset(&t, 0, sizeof t);
    t.kind = kind;

    int rc = parse_uint(f[1], UINT64_MAX, &t.ts_ns);
    if (rc == -ERANGE)
        return fail(reason, rc, "timestamp overflows");
    if (rc != 0)
        return fail(reason, rc, "malformed timestamp");

    if (!symbol_ok(f[2].p, f[2].n))
        return fail(reason, -EINVAL, "bad symbol (want 1-8 of A-Z 0-9 . -)");
    memcpy(t.symbol, f[2].p, f[2].n);

    if (kind == CSV_TRADE) {
        if ((rc = parse_price_field(f[3], F_PRICE, &t.trade.price, reason)) != 0)
            return rc;
        rc = parse_size_field(f[4], &t.trade.size, "malformed size", "size overflows", reason);
        if (rc != 0)
            return rc;
        if (t.trade.size == 0)
            return fail(reason, -EINVAL, "trade size is 0");
        t.trade.side = CSV_SIDE_UNKNOWN;
        if (nf == 6 && f[5].n > 0) {
            if (f[5].n != 1 || (f[5].p[0] != CSV_SIDE_BUY && f[5].p[0] != CSV_SIDE_SELL))
                return fail(reason, -EINVAL, "bad side (want B or S)");
            t.trade.side = f[5].p[0];
        }
    } else {
        if ((rc = parse_price_field(f[3], F_BID, &t.quote.bid, reason)) != 0)
            return rc;
        rc = parse_size_field(f[4], &t.quote.bid_size, "malformed bid size", "bid size overflows",
                              reason);
        if (rc != 0)
            return rc;
        if ((rc = parse_price_field(f[5], F_ASK, &t.quote.ask, reason)) != 0)
            return rc;
        rc = parse_size_field(f[6], &t.quote.ask_size, "malformed ask size", "ask size overflows",
                              reason);
        if (rc != 0)
            return rc;
    }
    *tick = t;
    return 1;
}

/* Append the decimal digits of v at p; returns the end. */
static char *put_uint(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

/* Append a non-negative price; the caller checked the sign. */
static char *put_price(char *p, int64_t price)
{
    return p + price_format(price, p, PRICE_TEXT_MAX);
}

int csv_format(const struct csv_tick *tick, char *buf, size_t cap)
{
    char tmp[CSV_FORMAT_MAX];
    char *p = tmp;
    size_t symlen = strnlen(tick->symbol, sizeof tick->symbol);

    if (!symbol_ok(tick->symbol, symlen))
        return -EINVAL;
    if (tick->kind == CSV_TRADE) {
        const struct csv_trade *tr = &tick->trade;
        if (tr->price < 0 || tr->size == 0)
            return -EINVAL;
        if (tr->side != CSV_SIDE_BUY && tr->side != CSV_SIDE_SELL && tr->side != CSV_SIDE_UNKNOWN)
            return -EINVAL;
    } else if (tick->kind == CSV_QUOTE) {
        if (tick->quote.bid < 0 || tick->quote.ask < 0)
            return -EINVAL;
    } else {
        return -EINVAL;
    }

    *p++ = tick->kind;
    *p++ = ',';
    p = put_uint(p, tick->ts_ns);
    *p++ = ',';
    memcpy(p, tick->symbol, symlen);
    p += symlen;
    *p++ = ',';
    if (tick->kind == CSV_TRADE) {
        p = put_price(p, tick->trade.price);
        *p++ = ',';
        p = put_uint(p, tick->trade.size);
        if (tick->trade.side != CSV_SIDE_UNKNOWN) {
            *p++ = ',';
            *p++ = tick->trade.side;
        }
    } else {
        p = put_price(p, tick->quote.bid);
        *p++ = ',';
        p = put_uint(p, tick->quote.bid_size);
        *p++ = ',';
        p = put_price(p, tick->quote.ask);
        *p++ = ',';
        p = put_uint(p, tick->quote.ask_size);
    }
    *p++ = '\n';

    size_t n = (size_t)(p - tmp);
    if (cap < n + 1)
        return -ENOBUFS;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return (int)n;
}

void csv_reader_init(struct csv_reader *r)
{
    memset(r, 0, sizeof *r);
}

void csv_reader_push(struct csv_reader *r, const char *chunk, size_t len)
{
    r->chunk = chunk;
    r->chunk_len = len;
    r->pos = 0;
}

static size_t strip_cr(const char *p, size_t n)
{
    return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

int csv_reader_next(struct csv_reader *r, const char **line, size_t *len)
{
    const char *p = r->chunk + r->pos;
    size_t avail = r->chunk_len - r->pos;
    if (avail == 0)
        return 0;

    const char *nl = memchr(p, '\n', avail);
    size_t n = nl ? (size_t)(nl - p) : avail;
    r->pos += nl ? n + 1 : n;

    if (r->overlong) {
        if (!nl)
            return 0;
        r->overlong = false;
        r->line_no++;
        return -EMSGSIZE;
    }
    if (r->held + n > CSV_LINE_MAX) {
        r->held = 0;
        if (!nl) {
            r->overlong = true;
            return 0;
        }
        r->line_no++;
        return -EMSGSIZE;
    }
    if (nl && r->held == 0) {
        r->line_no++;
        *line = p;
        *len = strip_cr(p, n);
        return 1;
    }
    memcpy(r->buf + r->held, p, n);
    r->held += n;
    if (!nl)
        return 0;
    r->line_no++;
    *line = r->buf;
    *len = strip_cr(r->buf, r->held);
    r->held = 0;
    return 1;
}

int csv_reader_finish(struct csv_reader *r, const char **line, size_t *len)
{
    int rc = 0;
    if (r->overlong) {
        r->line_no++;
        rc = -EMSGSIZE;
    } else if (r->held > 0) {
        r->line_no++;
        *line = r->buf;
        *len = strip_cr(r->buf, r->held);
        rc = 1;
    }
    r->held = 0;
    r->overlong = false;
    r->chunk = NULL;
    r->chunk_len = 0;
    r->pos = 0;
    return rc;
}

/*
 * csv.c - the CSV tick format: parse a line, format a tick, split a stream
 * into lines.
 *
 * The grammar is in csv.h. Parsing checks every field completely (a line is
 * either a valid tick or an error with a reason, never half of one) and
 * touches *tick only once the whole line is valid. Numbers are read digit by
 * digit with overflow checks; prices go through price.c, so no float is ever
 * involved. Formatting writes digits by hand, without stdio, because
 * pub/sub formats a line per published tick. csv_parse_line_shape() also
 * notes, as it reads, whether the line is already csv_format()'s but for
 * short prices, so that a PUBLISHed line can be sent on as it came, zeros
 * put in, rather than be formatted again (csv.h, csv_shape_t).
 *
 * The reader holds at most one line split across chunks in a fixed buffer of
 * CSV_LINE_MAX bytes; a longer line is dropped as it streams past and
 * reported once, at its end. Lines wholly inside a chunk are returned in
 * place, without a copy. Nothing reads outside the chunk or the buffer.
 */
#include "feed/csv.h"

#include <errno.h>
#include <string.h>

#include "feed/digits.h"
#include "feed/price.h"

/* The line being parsed: p walks from the first field to end, each field's
 * reader stopping at the first byte that cannot be part of it, so that every
 * byte is looked at once. */
struct cursor {
    const char *p, *end;
};

static int fail(const char **reason, int rc, const char *why)
{
    *reason = why;
    return rc;
}

static bool symbol_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* What follows a field: 1 at a ',' (stepped over), 0 at the end of the
 * line, -1 at any other byte (the field is malformed). */
static int delimiter(struct cursor *c)
{
    if (c->p == c->end)
        return 0;
    if (*c->p != ',')
        return -1;
    c->p++;
    return 1;
}

/* The field's delimiter, for a field that is not the last: the reason when
 * it is missing or the field goes on with bytes that do not belong to it. */
static int field_ends(struct cursor *c, const char *malformed, const char **reason)
{
    int d = delimiter(c);
    if (d == 0)
        return fail(reason, -EINVAL, "missing field");
    if (d < 0)
        return fail(reason, -EINVAL, malformed);
    return 0;
}

/* Eight bytes at p as one integer, the first byte lowest. */
static inline uint64_t load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

/* x as eight bytes at p, the lowest first: load8()'s inverse. */
static inline void store8(char *p, uint64_t x)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    memcpy(p, &x, sizeof x);
}

/* Bit 7 of every byte of x (as load8() gives them) that symbol_char()
 * refuses, the others 0: a byte is kept when its low seven bits lie in one
 * of the ranges A-Z, 0-9 and '-'..'.' and its bit 7 is clear. Adding
 * 0x80 - lo to the low seven bits sets bit 7 exactly when they are lo or
 * more, adding 0x7F - hi when they are above hi; neither carries into the
 * next byte. */
static inline uint64_t symbol_refused(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101u, top = 0x80 * ones, l = x & ~top;
    uint64_t upper = (l + (0x80 - 'A') * ones) & ~(l + (0x7F - 'Z') * ones);
    uint64_t digit = (l + (0x80 - '0') * ones) & ~(l + (0x7F - '9') * ones);
    uint64_t punct = (l + (0x80 - '-') * ones) & ~(l + (0x7F - '.') * ones);
    return (x | ~(upper | digit | punct)) & top;
}

/* All eight bytes of x (as load8() gives them) are '0'..'9': every high
 * nibble is 3, and adding 6 to each byte leaves it 3 (':' and above become
 * 4). With every high nibble 3 no byte carries into the next. */
static inline bool eight_digits(uint64_t x)
{
    const uint64_t high = 0xF0F0F0F0F0F0F0F0u, threes = 0x3030303030303030u;
    return (x & high) == threes && ((x + 0x0606060606060606u) & high) == threes;
}

/* The value of eight digits (eight_digits(x) holds): neighbours are merged
 * in three multiplies, pairs of digits, then of pairs, then of fours; each
 * multiply puts ten, a hundred or ten thousand times the earlier lane plus
 * the later one in the later lane's place. */
static inline uint64_t eight_value(uint64_t x)
{
    x &= 0x0F0F0F0F0F0F0F0Fu;
    x = (x * (10 * 256 + 1)) >> 8;
    x = ((x & 0x00FF00FF00FF00FFu) * (100 * 65536 + 1)) >> 16;
    return ((x & 0x0000FFFF0000FFFFu) * (10000 * (UINT64_C(1) << 32) + 1)) >> 32;
}

/* The digits at the cursor as an integer at most max (leading zeros are
 * fine): 0, -EINVAL for no digit, -ERANGE above max. Up to 19 digits
 * cannot wrap 64 bits, so they are read without a check per digit, eight
 * at a time while eight digits lie before the end; a longer run is read
 * again with a check. */
__attribute__((always_inline)) static inline int scan_uint(struct cursor *c, uint64_t max,
                                                           uint64_t *out)
{
    const char *start = c->p, *p = start;
    uint64_t v = 0, x;
    unsigned d;

    while (c->end - p >= 8 && eight_digits(x = load8(p))) {
        v = v * 100000000u + eight_value(x);
        p += 8;
    }
    while (p < c->end && (d = (unsigned)(unsigned char)*p - '0') <= 9) {
        v = v * 10 + d;
        p++;
    }
    if (p == start)
        return -EINVAL;
    if (p - start > 19) {
        v = 0;
        for (const char *q = start; q < p; q++) {
            d = (unsigned)(*q - '0');
            if (v > (UINT64_MAX - d) / 10)
                return -ERANGE;
            v = v * 10 + d;
        }
    }
    if (v > max)
        return -ERANGE;
    c->p = p;
    *out = v;
    return 0;
}

enum price_field { F_PRICE, F_BID, F_ASK };

/* The price at the cursor; on error, *reason names the field and the
 * fault. */
static int price_field(struct cursor *c, enum price_field which, int64_t *out, const char **reason)
{
    static const char *const why[3][4] = {
        {"malformed price", "negative price", "price has more than 4 decimals", "price overflows"},
        {"malformed bid", "negative bid", "bid has more than 4 decimals", "bid overflows"},
        {"malformed ask", "negative ask", "ask has more than 4 decimals", "ask overflows"},
    };
    size_t used;
    int rc = price_scan(c->p, (size_t)(c->end - c->p), out, &used);
    switch (rc) {
    case 0:
        c->p += used; /* what follows is the caller's to judge */
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

/* The size at the cursor; the two reasons name the field. What follows is
 * the caller's to judge, as for every field. */
__attribute__((always_inline)) static inline int size_field(struct cursor *c, uint32_t *out,
                                                            const char *malformed,
                                                            const char *overflows,
                                                            const char **reason)
{
    uint64_t v;
    int rc = scan_uint(c, UINT32_MAX, &v);
    if (rc == -ERANGE)
        return fail(reason, rc, overflows);
    if (rc != 0)
        return fail(reason, -EINVAL, malformed);
    *out = (uint32_t)v;
    return 0;
}

/* The side, the optional last field of a trade, after its ','. */
static int side_field(struct cursor *c, char *side, const char **reason)
{
    const char *f = c->p;
    if (c->end - f == 1 && (f[0] == CSV_SIDE_BUY || f[0] == CSV_SIDE_SELL)) { /* the usual */
        *side = f[0];
        return 0;
    }
    const char *comma = memchr(f, ',', (size_t)(c->end - f));
    size_t n = (size_t)((comma != NULL ? comma : c->end) - f);
    if (n > 0 && (n != 1 || (f[0] != CSV_SIDE_BUY && f[0] != CSV_SIDE_SELL)))
        return fail(reason, -EINVAL, "bad side (want B or S)");
    if (comma != NULL)
        return fail(reason, -EINVAL, "extra field");
    *side = n > 0 ? f[0] : CSV_SIDE_UNKNOWN;
    return 0;
}

/* A number's digits [start, end) as csv_format() writes them: no leading
 * zero, unless the number is 0. */
static inline bool plain_digits(const char *start, const char *end)
{
    return start[0] != '0' || end - start == 1;
}

/* What the shape notes of the price line[at - used, at): false if its
 * integer part has a leading zero; else the zeros it lacks, if any, go in
 * the shape's next pad. */
__attribute__((always_inline)) static inline bool shape_price(csv_shape_t *sh, const char *line,
                                                              const char *at, size_t used)
{
    const char *s = at - used;
    size_t frac = 0; /* decimals after the '.'; 0 also when there is no '.' */
    while (frac < used && frac < 4 && at[-1 - (ptrdiff_t)frac] != '.')
        frac++;
    bool dot = frac < used && at[-1 - (ptrdiff_t)frac] == '.';
    if (!dot)
        frac = 0;
    size_t whole = used - (dot ? frac + 1 : 0);
    if (!plain_digits(s, s + whole))
        return false;
    if (dot && frac == 4)
        return true;
    sh->pad_at[sh->npad] = (uint8_t)(at - line);
    sh->pad_len[sh->npad] = (uint8_t)(dot ? 4 - frac : 5);
    sh->npad++;
    return true;
}

/* Fields are read left to right and the first fault found is the one
 * reported: "T,1,AAPL" is missing a field, "T,x,AAPL" has a malformed
 * timestamp. With sh (a constant NULL in csv_parse_line(), where all of
 * it folds away) the line's shape is noted on the way. */
__attribute__((always_inline)) static inline int
parse_line(const char *line, size_t len, csv_tick_t *tick, csv_shape_t *sh, const char **reason)
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
    if (len == 1)
        return fail(reason, -EINVAL, "missing field");

    struct cursor c = {line + 2, line + len};
    csv_tick_t t;
    memset(&t, 0, sizeof t);
    t.kind = kind;
    /* csv_format()'s line is under CSV_FORMAT_MAX with its "\n" and NUL */
    bool plain = len <= CSV_FORMAT_MAX - 2;
    if (sh != NULL)
        sh->npad = 0;

    int rc = scan_uint(&c, UINT64_MAX, &t.ts_ns);
    if (rc == -ERANGE)
        return fail(reason, rc, "timestamp overflows");
    if (rc != 0)
        return fail(reason, rc, "malformed timestamp");
    if (sh != NULL)
        plain = plain && plain_digits(line + 2, c.p);
    if ((rc = field_ends(&c, "malformed timestamp", reason)) != 0)
        return rc;

    /* The symbol's characters up to the first other byte, eight at most
     * (a ninth is a byte the field's end refuses): all eight at once when
     * the line has them. */
    const char *sym = c.p;
    size_t symlen = 0;
    if (c.end - sym >= 8) {
        _Static_assert(CSV_SYMBOL_MAX == 8, "a symbol is one word");
        uint64_t word = load8(sym), refused = symbol_refused(word);
        if (refused != 0) {
            symlen = (size_t)__builtin_ctzll(refused) >> 3;
            word &= ~(~UINT64_C(0) << (8 * symlen)); /* symlen < 8 */
        } else {
            symlen = 8;
        }
        store8(t.symbol, word);
    } else {
        while (sym + symlen < c.end && symbol_char(sym[symlen]))
            symlen++;
        memcpy(t.symbol, sym, symlen);
    }
    if (symlen == 0)
        return fail(reason, -EINVAL, "bad symbol (want 1-8 of A-Z 0-9 . -)");
    c.p = sym + symlen;
    if ((rc = field_ends(&c, "bad symbol (want 1-8 of A-Z 0-9 . -)", reason)) != 0)
        return rc;

    const char *f; /* the field being read */
    if (kind == CSV_TRADE) {
        f = c.p;
        if ((rc = price_field(&c, F_PRICE, &t.trade.price, reason)) != 0)
            return rc;
        if (sh != NULL)
            plain = plain && shape_price(sh, line, c.p, (size_t)(c.p - f));
        if ((rc = field_ends(&c, "malformed price", reason)) != 0)
            return rc;
        f = c.p;
        rc = size_field(&c, &t.trade.size, "malformed size", "size overflows", reason);
        if (rc != 0)
            return rc;
        if (sh != NULL)
            plain = plain && plain_digits(f, c.p);
        int d = delimiter(&c); /* the size may end the line */
        if (d < 0)
            return fail(reason, -EINVAL, "malformed size");
        if (t.trade.size == 0)
            return fail(reason, -EINVAL, "trade size is 0");
        t.trade.side = CSV_SIDE_UNKNOWN;
        if (d == 1 && (rc = side_field(&c, &t.trade.side, reason)) != 0)
            return rc;
        if (sh != NULL && d == 1 && t.trade.side == CSV_SIDE_UNKNOWN)
            plain = false; /* a ',' before an empty side, which csv_format() leaves out */
    } else {
        f = c.p;
        if ((rc = price_field(&c, F_BID, &t.quote.bid, reason)) != 0)
            return rc;
        if (sh != NULL)
            plain = plain && shape_price(sh, line, c.p, (size_t)(c.p - f));
        if ((rc = field_ends(&c, "malformed bid", reason)) != 0)
            return rc;
        f = c.p;
        rc = size_field(&c, &t.quote.bid_size, "malformed bid size", "bid size overflows", reason);
        if (rc != 0)
            return rc;
        if (sh != NULL)
            plain = plain && plain_digits(f, c.p);
        if ((rc = field_ends(&c, "malformed bid size", reason)) != 0)
            return rc;
        f = c.p;
        if ((rc = price_field(&c, F_ASK, &t.quote.ask, reason)) != 0)
            return rc;
        if (sh != NULL)
            plain = plain && shape_price(sh, line, c.p, (size_t)(c.p - f));
        if ((rc = field_ends(&c, "malformed ask", reason)) != 0)
            return rc;
        f = c.p;
        rc = size_field(&c, &t.quote.ask_size, "malformed ask size", "ask size overflows", reason);
        if (rc != 0)
            return rc;
        if (sh != NULL)
            plain = plain && plain_digits(f, c.p);
        int d = delimiter(&c); /* the ask size ends the line */
        if (d < 0)
            return fail(reason, -EINVAL, "malformed ask size");
        if (d > 0)
            return fail(reason, -EINVAL, "extra field");
    }
    if (sh != NULL) {
        sh->reusable = plain;
        sh->len = (uint8_t)len; /* below CSV_FORMAT_MAX when plain */
    }
    *tick = t;
    return 1;
}

int csv_parse_line(const char *line, size_t len, csv_tick_t *tick, const char **reason)
{
    return parse_line(line, len, tick, NULL, reason);
}

int csv_parse_line_shape(const char *line, size_t len, csv_tick_t *tick, csv_shape_t *shape,
                         const char **reason)
{
    return parse_line(line, len, tick, shape, reason);
}

/* d[0..n) = s[0..n), n below CSV_FORMAT_MAX: in words, the last word
 * overlapping the one before it, so that nothing outside either range is
 * read or written. */
static inline void copy_short(char *d, const char *s, size_t n)
{
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            memcpy(d + i, s + i, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

const char *csv_shape_text(const char *line, const csv_shape_t *shape, char *buf, size_t *len)
{
    static const char zeros[5] = {'.', '0', '0', '0', '0'};
    if (shape->npad == 0) {
        *len = shape->len;
        return line;
    }
    char *p = buf;
    size_t from = 0;
    for (unsigned i = 0; i < shape->npad; i++) {
        size_t at = shape->pad_at[i], n = shape->pad_len[i];
        copy_short(p, line + from, at - from);
        p += at - from;
        if (n == 5)
            *p++ = '.', n = 4;
        /* n of the 4 are kept: the rest is overwritten by what follows or
         * lies past the text (a price is followed by at least ",<digit>") */
        memcpy(p, zeros + 1, 4);
        p += n;
        from = at;
    }
    copy_short(p, line + from, shape->len - from);
    *len = (size_t)(p - buf) + shape->len - from;
    return buf;
}

int csv_format(const csv_tick_t *tick, char *buf, size_t cap)
{
    char tmp[CSV_FORMAT_MAX];
    char *out = cap >= CSV_FORMAT_MAX ? buf : tmp, *p = out;
    /* The symbol is 1-8 characters symbol_char() takes, then its NUL: the
     * first byte of the eight it refuses must be the NUL, or the ninth. */
    uint64_t refused = symbol_refused(load8(tick->symbol));
    size_t symlen = refused != 0 ? (size_t)__builtin_ctzll(refused) >> 3 : CSV_SYMBOL_MAX;
    if (symlen == 0 || tick->symbol[symlen] != '\0')
        return -EINVAL;
    if (tick->kind == CSV_TRADE) {
        const csv_trade_t *tr = &tick->trade;
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
    p = digits_u64(p, tick->ts_ns);
    *p++ = ',';
    memcpy(p, tick->symbol, CSV_SYMBOL_MAX); /* what follows the name overwrites the rest */
    p += symlen;
    *p++ = ',';
    if (tick->kind == CSV_TRADE) {
        p = price_put(p, tick->trade.price);
        *p++ = ',';
        p = digits_u64(p, tick->trade.size);
        if (tick->trade.side != CSV_SIDE_UNKNOWN) {
            *p++ = ',';
            *p++ = tick->trade.side;
        }
    } else {
        p = price_put(p, tick->quote.bid);
        *p++ = ',';
        p = digits_u64(p, tick->quote.bid_size);
        *p++ = ',';
        p = price_put(p, tick->quote.ask);
        *p++ = ',';
        p = digits_u64(p, tick->quote.ask_size);
    }
    *p++ = '\n';

    size_t n = (size_t)(p - out);
    if (cap < n + 1)
        return -ENOBUFS;
    if (out != buf)
        memcpy(buf, tmp, n);
    buf[n] = '\0';
    return (int)n;
}

void csv_reader_init(csv_reader_t *r)
{
    memset(r, 0, sizeof *r);
}

void csv_reader_push(csv_reader_t *r, const char *chunk, size_t len)
{
    r->chunk = chunk;
    r->chunk_len = len;
    r->pos = 0;
}

static size_t strip_cr(const char *p, size_t n)
{
    return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

int csv_reader_next(csv_reader_t *r, const char **line, size_t *len)
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

int csv_reader_finish(csv_reader_t *r, const char **line, size_t *len)
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

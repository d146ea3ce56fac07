/*
 * csv.h - the CSV tick format: one trade or quote per line.
 *
 *   T,<ts_ns>,<symbol>,<price>,<size>[,<side>]
 *   Q,<ts_ns>,<symbol>,<bid>,<bid_size>,<ask>,<ask_size>
 *
 * ts_ns     exchange timestamp in nanoseconds, an unsigned decimal integer
 *           below 2^64; tickd does not interpret its epoch (the generator
 *           writes nanoseconds since midnight).
 * symbol    1 to 8 characters of A-Z, 0-9, '.' and '-'.
 * price,    a fixed-point price as price.h accepts it: digits, optionally a
 * bid, ask  '.' and 1 to 4 digits; never negative, never rounded.
 * size,     shares, an unsigned decimal integer below 2^32; a trade's size is
 * *_size    at least 1, a quote's may be 0 (nothing on that side).
 * side      B (buyer initiated) or S (seller initiated); absent or empty means
 *           unknown.
 *
 * Fields are separated by single commas with nothing around them: no spaces,
 * no quoting. Lines end with "\n" or "\r\n". A line that is empty or starts
 * with '#' is skipped. A line is at most CSV_LINE_MAX bytes before its "\n".
 *
 * A bad line is never fatal: csv_parse_line() returns an error and a short
 * static reason for the caller to log with the line number, and the caller
 * goes on with the next line. csv_reader_t splits a stream that arrives
 * in chunks into lines with a fixed buffer; csv_format() writes a tick back
 * as a line that csv_parse_line() reads as the same tick.
 */
#ifndef TICKD_FEED_CSV_H
#define TICKD_FEED_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CSV_SYMBOL_MAX   8
#define CSV_LINE_MAX     256 /* bytes of a line before its "\n", "\r" included */
#define CSV_FORMAT_MAX   128 /* csv_format() never needs more, NUL included */
#define CSV_SIDE_BUY     'B'
#define CSV_SIDE_SELL    'S'
#define CSV_SIDE_UNKNOWN '\0'

enum csv_kind {
    CSV_TRADE = 'T',
    CSV_QUOTE = 'Q',
};

typedef struct csv_trade {
    int64_t price; /* 4 implied decimals, >= 0 */
    uint32_t size; /* shares, >= 1 */
    char side;     /* CSV_SIDE_BUY, CSV_SIDE_SELL or CSV_SIDE_UNKNOWN */
} csv_trade_t;

typedef struct csv_quote {
    int64_t bid;       /* 4 implied decimals, >= 0 */
    int64_t ask;       /* 4 implied decimals, >= 0; not checked against bid (markets cross) */
    uint32_t bid_size; /* shares */
    uint32_t ask_size; /* shares */
} csv_quote_t;

/* One line of the format. */
typedef struct csv_tick {
    char kind;                       /* enum csv_kind: which member of the union is valid */
    char symbol[CSV_SYMBOL_MAX + 1]; /* NUL-terminated */
    uint64_t ts_ns;                  /* as written, not interpreted */
    union {
        csv_trade_t trade; /* T */
        csv_quote_t quote; /* Q */
    };
} csv_tick_t;

/* strlen(tick->symbol) for a tick csv_parse_line() filled (a symbol of 1-8
 * bytes, then NULs to the end of the field): the first zero byte of its
 * first eight, found at once. */
static inline size_t csv_symbol_len(const csv_tick_t *tick)
{
    uint64_t x;
    memcpy(&x, tick->symbol, sizeof x);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    /* Bit 7 of the first zero byte is set (and maybe of bytes after it) */
    uint64_t zero = (x - 0x0101010101010101u) & ~x & 0x8080808080808080u;
    return zero != 0 ? (size_t)__builtin_ctzll(zero) >> 3 : CSV_SYMBOL_MAX;
}

/* Parse one line, line[0..len), with or without its "\n" or "\r\n".
 * Returns 1 with *tick filled, 0 for a line that carries no tick (empty or a
 * comment), or -EINVAL (malformed) or -ERANGE (a number overflows) with
 * *reason set to a short static string naming the first fault from the left
 * ("T,x" has a malformed timestamp, "T,1,AAPL" is missing a field). */
int csv_parse_line(const char *line, size_t len, csv_tick_t *tick, const char **reason);

/* How a line csv_parse_line_shape() read stands to csv_format()'s line for
 * its tick: when they differ only in prices written with fewer than 4
 * decimals (or none), csv_format()'s line without its "\n" is the line's
 * own bytes with zeros put in after those prices, and csv_shape_text()
 * writes it from the line without formatting a number. Any other
 * difference (a leading zero, a ',' before an empty side, a line that is
 * too long) makes the shape not reusable. */
typedef struct csv_shape {
    uint8_t reusable;   /* 1: csv_shape_text() gives csv_format()'s bytes */
    uint8_t npad;       /* prices written short, 0-2 */
    uint8_t len;        /* the line's length without its "\n" or "\r\n" */
    uint8_t pad_at[2];  /* the offset in the line where each short price ends */
    uint8_t pad_len[2]; /* what that price lacks: 1-3 zeros, or 5 for ".0000" */
} csv_shape_t;

/* csv_parse_line(), and *shape filled when it returns 1. */
int csv_parse_line_shape(const char *line, size_t len, csv_tick_t *tick, csv_shape_t *shape,
                         const char **reason);

/* csv_format()'s line for the tick line[] parsed as, without its "\n", for
 * a shape that is reusable: line itself when it is that line already, or
 * buf[0..CSV_FORMAT_MAX) with the short prices' zeros put in. *len is set
 * to its length; no NUL is written. */
const char *csv_shape_text(const char *line, const csv_shape_t *shape, char *buf, size_t *len);

/* Write *tick as one line, "\n" included, plus a NUL, into buf[0..cap).
 * Returns the line's length without the NUL, -EINVAL if the tick could not
 * be read back (unknown kind or side, bad symbol, negative price, trade size
 * 0), or -ENOBUFS. CSV_FORMAT_MAX always suffices. */
int csv_format(const csv_tick_t *tick, char *buf, size_t cap);

/* Line splitting over a chunked stream. Fields are private to csv.c except
 * `line_no`. */
typedef struct csv_reader {
    const char *chunk;      /* the chunk being split; the caller's, valid until next() returns 0 */
    size_t chunk_len;       /* its length */
    size_t pos;             /* bytes of it consumed so far */
    size_t held;            /* bytes of a line split across chunks held in buf */
    bool overlong;          /* the current line passed CSV_LINE_MAX: discarding to its end */
    uint64_t line_no;       /* 1-based number of the line last returned or reported */
    char buf[CSV_LINE_MAX]; /* the split line */
} csv_reader_t;

void csv_reader_init(csv_reader_t *r);

/* Hand the reader the next chunk; only when csv_reader_next() has returned 0.
 * The chunk must stay valid until csv_reader_next() returns 0 again. */
void csv_reader_push(csv_reader_t *r, const char *chunk, size_t len);

/* The next whole line, without its "\n" or "\r\n": returns 1 with *line and
 * *len set (valid until the next call), 0 when the chunk is used up, or
 * -EMSGSIZE for a line longer than CSV_LINE_MAX (reported once, at its end,
 * with line_no set; its bytes are dropped). */
int csv_reader_next(csv_reader_t *r, const char **line, size_t *len);

/* End of stream: a last line without "\n" is returned like csv_reader_next()
 * would (1, or -EMSGSIZE if too long); 0 if there is none. The reader is then
 * empty, with line_no kept for the caller's log line; csv_reader_init()
 * starts the numbering of a new stream. */
int csv_reader_finish(csv_reader_t *r, const char **line, size_t *len);

#endif

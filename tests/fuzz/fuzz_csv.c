/*
 * fuzz_csv.c - libFuzzer harness: the CSV tick format, as a stream into a
 * market and line by line.
 *
 * Input: a control byte (fuzz_market.h), then CSV text. The text goes
 * through ingest (INGEST_CSV) into a market on a heap of its own, in chunks
 * of the lengths the control byte asks for, and again as one chunk; the two
 * runs must agree tick for tick, and the heap must be empty at the end.
 *
 * Each line, and the whole text as one line, also goes to csv_parse_line()
 * directly, in a buffer of its exact size. A line that parses is written
 * back with csv_format() and must read back as the same tick (csv.h's
 * promise); a line that does not parse must say why. csv_parse_line_shape()
 * must agree with csv_parse_line(), and a reusable shape's text must be
 * csv_format()'s line, as a line already in that form must be reusable.
 *
 * Seeds (corpus/fuzz_csv/): lines from `tickd gen csv`, and hand-written
 * edge cases (CRLF, comments, blank lines, every field at its limits).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed/csv.h"
#include "feed/ingest.h"
#include "tests/fuzz/fuzz_market.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_tick(const csv_tick_t *a, const csv_tick_t *b)
{
    if (a->kind != b->kind || strcmp(a->symbol, b->symbol) != 0 || a->ts_ns != b->ts_ns)
        return 0;
    if (a->kind == CSV_TRADE)
        return a->trade.price == b->trade.price && a->trade.size == b->trade.size &&
               a->trade.side == b->trade.side;
    return a->quote.bid == b->quote.bid && a->quote.bid_size == b->quote.bid_size &&
           a->quote.ask == b->quote.ask && a->quote.ask_size == b->quote.ask_size;
}

static void check_line(const uint8_t *p, size_t len)
{
    char *line = fuzz_dup(p, len);
    csv_tick_t t, shaped;
    csv_shape_t shape;
    const char *reason = NULL;
    int r = csv_parse_line(line, len, &t, &reason);
    int rs = csv_parse_line_shape(line, len, &shaped, &shape, &reason);
    if (rs != r || (r == 1 && memcmp(&t, &shaped, sizeof t) != 0))
        fuzz_fail("csv_parse_line_shape gave %d, csv_parse_line %d", rs, r);
    if (r < 0) {
        free(line);
        if (reason == NULL || reason[0] == '\0')
            fuzz_fail("csv_parse_line failed (%d) without a reason", r);
        return;
    }
    if (r == 0) {
        free(line);
        return;
    }
    if (r != 1)
        fuzz_fail("csv_parse_line returned %d", r);
    if (t.kind != CSV_TRADE && t.kind != CSV_QUOTE)
        fuzz_fail("csv_parse_line made a tick of kind 0x%02x", (unsigned char)t.kind);

    char buf[CSV_FORMAT_MAX];
    int n = csv_format(&t, buf, sizeof(buf));
    if (n <= 0 || (size_t)n >= sizeof(buf) || buf[n - 1] != '\n' || buf[n] != '\0')
        fuzz_fail("csv_format of a parsed tick gave %d", n);
    /* The shape: reusable gives csv_format()'s bytes; a line that is those
     * bytes (its "\n" or "\r\n" aside) is reusable. */
    size_t body = len;
    if (body > 0 && line[body - 1] == '\n')
        body--;
    if (body > 0 && line[body - 1] == '\r')
        body--;
    if (shape.reusable) {
        char text[CSV_FORMAT_MAX];
        size_t m;
        const char *got = csv_shape_text(line, &shape, text, &m);
        if (m != (size_t)n - 1 || memcmp(got, buf, m) != 0)
            fuzz_fail("the shape's text \"%.*s\" is not csv_format()'s \"%.*s\"", (int)m, got,
                      n - 1, buf);
    } else if (body == (size_t)n - 1 && memcmp(line, buf, body) == 0) {
        fuzz_fail("\"%.*s\" is csv_format()'s line but its shape is not reusable", (int)body, line);
    }
    free(line);
    char *again = fuzz_dup(buf, (size_t)n);
    csv_tick_t u;
    r = csv_parse_line(again, (size_t)n, &u, &reason);
    if (r != 1 || !same_tick(&t, &u))
        fuzz_fail("\"%.*s\" does not read back as the tick it was written from (%d)", n - 1, buf,
                  r);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *text = data + 1;
    size_t len = size - 1;

    static fuzz_rig_t whole, cut;
    fuzz_rig_open(&whole, INGEST_CSV, 0, 0);
    fuzz_rig_stream(&whole, text, len);
    fuzz_rig_close(&whole);

    fuzz_rig_open(&cut, INGEST_CSV, ctl, size);
    fuzz_rig_stream(&cut, text, len);
    fuzz_rig_close(&cut);
    fuzz_rig_compare(&whole, &cut);

    for (size_t start = 0; start < len;) {
        const uint8_t *nl = memchr(text + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - text) + 1 : len;
        check_line(text + start, end - start);
        start = end;
    }
    check_line(text, len);
    return 0;
}

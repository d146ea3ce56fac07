/*
 * fuzz_nats_decode.c - libFuzzer harness: a tick from the payload of a NATS
 * message (src/nats_decode.c), JSON or CSV.
 *
 * Input: the payload, in a buffer of its exact size. A payload that decodes
 * must give a tick the market takes as it is (a valid symbol, a trade with a
 * size), and decode the same way again; one that does not must say why.
 *
 * Seeds (corpus/fuzz_nats_decode/): what payload.c writes for a trade and a
 * quote in JSON, a CSV line, and a JSON object with keys of a newer tickd.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/nats_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_tick(const struct csv_tick *a, const struct csv_tick *b)
{
    if (a->kind != b->kind || strcmp(a->symbol, b->symbol) != 0 || a->ts_ns != b->ts_ns)
        return 0;
    if (a->kind == CSV_TRADE)
        return a->trade.price == b->trade.price && a->trade.size == b->trade.size &&
               a->trade.side == b->trade.side;
    return a->quote.bid == b->quote.bid && a->quote.bid_size == b->quote.bid_size &&
           a->quote.ask == b->quote.ask && a->quote.ask_size == b->quote.ask_size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    struct csv_tick a, b;
    const char *why = NULL;
    int r = nats_decode_tick(copy, size, &a, &why);
    if (r != 0) {
        if (why == NULL)
            abort(); /* a refusal always says why */
    } else {
        size_t n = strlen(a.symbol);
        if (n == 0 || n > CSV_SYMBOL_MAX || (a.kind != CSV_TRADE && a.kind != CSV_QUOTE) ||
            (a.kind == CSV_TRADE && a.trade.size == 0))
            abort();
        if (nats_decode_tick(copy, size, &b, &why) != 0 || !same_tick(&a, &b))
            abort();
    }
    free(copy);
    return 0;
}

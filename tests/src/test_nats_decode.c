/*
 * test_nats_decode.c - tests of src/nats_decode.c: a tick from the payload
 * tickd publishes to NATS, JSON or CSV.
 *
 * What payload.c writes must decode to the tick it was made from (every
 * field), and every malformed, foreign, truncated or oversized payload must
 * be refused with a reason, never read past its end (each is copied into a
 * buffer of exactly its length, so AddressSanitizer sees any overread).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "feed/market.h"
#include "src/nats_decode.h"
#include "src/payload.h"

static int decode(const char *text, size_t len, struct csv_tick *t, const char **why)
{
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    int r = nats_decode_tick(copy, len, t, why);
    free(copy);
    return r;
}

static void assert_refused(const char *text, const char *reason)
{
    struct csv_tick t;
    const char *why = NULL;
    assert_int_equal(decode(text, strlen(text), &t, &why), -EINVAL);
    assert_non_null(why);
    if (reason != NULL)
        assert_string_equal(why, reason);
}

/* Every tick a market makes, encoded by payload.c in both formats, decodes
 * back to the same fields. */
typedef struct seen {
    tick_t *ticks[8];
    size_t n;
} seen_t;

static void keep(void *arg, tick_t *t)
{
    seen_t *s = arg;
    obj_incref(&t->ob);
    s->ticks[s->n++] = t;
}

static void test_what_payload_writes_decodes_to_the_same_tick(void **state)
{
    (void)state;
    heap_t *heap;
    heap_options_t ho;
    heap_options_init(&ho);
    assert_int_equal(heap_create(&ho, &heap), 0);
    assert_int_equal(obj_runtime_create(heap), 0);
    seen_t seen = {.n = 0};
    market_t *m;
    assert_int_equal(market_create(heap, 0, keep, &seen, &m), 0);
    assert_int_equal(market_trade(m, "AAPL", 4, 1012500, 100, 'B', 0, 1700000000123456789LL, 1), 0);
    assert_int_equal(market_trade(m, "BRK.A", 5, 5000000000, 1, 0, 0, 42, 1), 0);
    assert_int_equal(market_quote(m, "MSFT", 4, 3301234, 200, 0, 0, 0, 7, 1), 0);
    assert_int_equal(seen.n, 3);
    for (size_t i = 0; i < seen.n; i++) {
        tick_t *tk = seen.ticks[i];
        for (int format = PAYLOAD_JSON; format <= PAYLOAD_CSV; format++) {
            char text[PAYLOAD_TEXT_MAX];
            int n = payload_format_tick(tk, format, text, sizeof(text));
            assert_true(n > 0);
            struct csv_tick t;
            const char *why = NULL;
            assert_int_equal(decode(text, (size_t)n, &t, &why), 0);
            assert_string_equal(t.symbol, tk->sym->name);
            assert_int_equal((int64_t)t.ts_ns, tk->ts_exch);
            if (tk->kind == TICK_TRADE) {
                assert_int_equal(t.kind, CSV_TRADE);
                assert_int_equal(t.trade.price, tk->price);
                assert_int_equal(t.trade.size, tk->size);
                assert_int_equal(t.trade.side, tk->side);
            } else {
                assert_int_equal(t.kind, CSV_QUOTE);
                assert_int_equal(t.quote.bid, tk->price);
                assert_int_equal(t.quote.bid_size, tk->size);
                assert_int_equal(t.quote.ask, tk->ask);
                assert_int_equal(t.quote.ask_size, tk->ask_size);
            }
        }
        obj_decref(heap, &tk->ob);
    }
    market_destroy(m);
    gc_collect(heap, GC_NGENERATIONS - 1);
    obj_runtime_destroy(heap);
    heap_destroy(heap);
}

static void test_json_keys_may_come_in_any_order_and_unknown_ones_are_skipped(void **state)
{
    (void)state;
    struct csv_tick t;
    const char *why = NULL;
    const char *text = "{ \"ts\" : -5 , \"size\":3,\"venue\":\"X\",\"n\":12,\"price\":\"7.5\","
                       "\"kind\":\"trade\",\"sym\":\"IBM\" } ";
    assert_int_equal(decode(text, strlen(text), &t, &why), 0);
    assert_string_equal(t.symbol, "IBM");
    assert_int_equal((int64_t)t.ts_ns, -5);
    assert_int_equal(t.trade.price, 75000);
    assert_int_equal(t.trade.size, 3);
    assert_int_equal(t.trade.side, 0);
}

static void test_truncated_json_is_refused_at_every_length(void **state)
{
    (void)state;
    const char *full = "{\"sym\":\"AAPL\",\"kind\":\"trade\",\"price\":\"101.2500\",\"size\":100,"
                       "\"side\":\"B\",\"ts\":1,\"seq\":1}";
    size_t len = strlen(full);
    for (size_t n = 0; n < len; n++) {
        struct csv_tick t;
        const char *why = NULL;
        assert_int_equal(decode(full, n, &t, &why), -EINVAL);
        assert_non_null(why);
    }
}

static void test_foreign_and_wrong_payloads_are_refused_with_a_reason(void **state)
{
    (void)state;
    assert_refused("hello", NULL); /* neither JSON nor a CSV tick */
    assert_refused("[1,2]", NULL);
    assert_refused("{}", "a field is missing (sym, kind, ts, and price and size, or bid, "
                         "bid_size, ask and ask_size)");
    assert_refused("{\"sym\":\"A\",\"sym\":\"B\"}", "a key given twice");
    assert_refused("{\"sym\":1}", "a value of the wrong type");
    assert_refused("{\"sym\":\"aapl\"}", "bad symbol (1 to 8 of A-Z 0-9 . -)");
    assert_refused("{\"sym\":\"TOOLONGSYM\"}", "bad symbol (1 to 8 of A-Z 0-9 . -)");
    assert_refused("{\"kind\":\"bar\"}", "kind is neither trade nor quote");
    assert_refused("{\"price\":\"-1\"}", "bad price");
    assert_refused("{\"price\":\"1.00001\"}", "bad price");
    assert_refused("{\"size\":4294967296}", "bad size");
    assert_refused("{\"ts\":99999999999999999999}", "malformed JSON value");
    assert_refused("{\"sym\":\"A\\\"B\"}", "malformed JSON value");
    assert_refused("{\"sym\":\"A\",\"kind\":\"trade\",\"price\":\"1\",\"size\":0,\"ts\":1}",
                   "a trade of size 0");
    assert_refused("{\"sym\":\"A\",\"kind\":\"trade\",\"price\":\"1\",\"size\":1,\"ts\":1,"
                   "\"bid\":\"1\"}",
                   "a trade with quote fields");
    assert_refused("{\"sym\":\"A\",\"kind\":\"trade\",\"price\":\"1\",\"size\":1,\"ts\":1} x",
                   "bytes after the JSON object");
    assert_refused("", "an empty payload");
    assert_refused("# a comment", "an empty line or a comment, not a tick");
    assert_refused("T,1,AAPL", NULL);
}

static void test_an_oversized_payload_is_refused_before_it_is_read(void **state)
{
    (void)state;
    size_t len = NATS_DECODE_MAX + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, ' ', len);
    big[0] = '{';
    struct csv_tick t;
    const char *why = NULL;
    assert_int_equal(nats_decode_tick(big, len, &t, &why), -EINVAL);
    assert_string_equal(why, "an oversized payload (a tick is at most 1024 bytes)");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_payload_writes_decodes_to_the_same_tick),
        cmocka_unit_test(test_json_keys_may_come_in_any_order_and_unknown_ones_are_skipped),
        cmocka_unit_test(test_truncated_json_is_refused_at_every_length),
        cmocka_unit_test(test_foreign_and_wrong_payloads_are_refused_with_a_reason),
        cmocka_unit_test(test_an_oversized_payload_is_refused_before_it_is_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

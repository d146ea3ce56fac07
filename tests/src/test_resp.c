/*
 * test_resp.c - the RESP2 request parser (src/resp.c): both request forms,
 * every request split at every byte, the errors with Redis' texts, the
 * limits, and properties over pseudo-random input (no read past the end, a
 * result that never changes once the bytes that decide it have arrived).
 *
 * Every parse runs on an exact-size heap copy of its input, so a sanitizer
 * build catches a read of buf[len].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "src/resp.h"

#define MAX_REQUEST 4096

typedef struct parsed {
    int r;
    size_t argc, consumed;
    char err[RESP_ERR_MAX];
    char args[8][256]; /* copies: argv may point into the freed input */
    size_t lens[8];
} parsed_t;

static resp_arg_t argv_buf[RESP_MAX_ARGS];
static char scratch[MAX_REQUEST];

static void parser_init(resp_parser_t *p, size_t max_request, int unauthenticated)
{
    memset(p, 0, sizeof *p);
    p->max_request = max_request;
    p->max_args = RESP_MAX_ARGS;
    p->unauthenticated = unauthenticated;
    p->argv = argv_buf;
    p->scratch = scratch;
}

static parsed_t parse_with(resp_parser_t *p, const char *in, size_t len)
{
    parsed_t out;
    char *copy = malloc(len != 0 ? len : 1);
    memcpy(copy, in, len);
    memset(&out, 0, sizeof out);
    out.r = resp_parse(p, copy, len);
    out.argc = p->argc;
    out.consumed = p->consumed;
    memcpy(out.err, p->err, sizeof out.err);
    for (size_t i = 0; out.r == RESP_COMMAND && i < p->argc && i < 8; i++) {
        assert_true(p->argv[i].len < sizeof out.args[i]);
        memcpy(out.args[i], p->argv[i].ptr, p->argv[i].len);
        out.lens[i] = p->argv[i].len;
    }
    free(copy);
    return out;
}

static parsed_t parse_n(const char *in, size_t len)
{
    resp_parser_t p;
    parser_init(&p, MAX_REQUEST, 0);
    return parse_with(&p, in, len);
}

static parsed_t parse(const char *in)
{
    return parse_n(in, strlen(in));
}

static void assert_arg(const parsed_t *r, size_t i, const char *want, size_t len)
{
    assert_int_equal(r->lens[i], len);
    assert_memory_equal(r->args[i], want, len);
}

static void assert_error_n(const char *in, size_t len, const char *text)
{
    parsed_t r = parse_n(in, len);
    assert_int_equal(r.r, RESP_ERROR);
    assert_string_equal(r.err, text);
}

static void assert_error(const char *in, const char *text)
{
    assert_error_n(in, strlen(in), text);
}

/* ---- multibulk ---- */

static void test_multibulk_command_gives_arguments_and_length(void **state)
{
    (void)state;
    parsed_t r = parse("*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 2);
    assert_arg(&r, 0, "PING", 4);
    assert_arg(&r, 1, "hi", 2);
    assert_int_equal(r.consumed, 22);
}

static void test_pipelined_requests_are_taken_one_at_a_time(void **state)
{
    (void)state;
    const char *two = "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nPING\r\n$1\r\nx\r\n";
    parsed_t r = parse(two);
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 1);
    assert_int_equal(r.consumed, 14);
    r = parse(two + 14);
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 2);
    assert_arg(&r, 1, "x", 1);
}

static void test_bulk_data_is_binary_safe(void **state)
{
    (void)state;
    static const char in[] = "*2\r\n$7\r\nPUBLISH\r\n$6\r\na\r\n\0*$\r\n";
    parsed_t r = parse_n(in, sizeof in - 1);
    assert_int_equal(r.r, RESP_COMMAND);
    assert_arg(&r, 1, "a\r\n\0*$", 6);
    r = parse("*1\r\n$0\r\n\r\n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 1);
    assert_int_equal(r.lens[0], 0);
}

static void test_empty_and_null_multibulk_are_commands_without_arguments(void **state)
{
    (void)state;
    parsed_t r = parse("*0\r\n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 0);
    assert_int_equal(r.consumed, 4);
    r = parse("*-1\r\nPING\r\n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 0);
    assert_int_equal(r.consumed, 5);
}

/* ---- inline ---- */

static void test_inline_command_splits_on_blanks(void **state)
{
    (void)state;
    parsed_t r = parse("  SUBSCRIBE\ttrade.AAPL   quote.MSFT \r\n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 3);
    assert_arg(&r, 0, "SUBSCRIBE", 9);
    assert_arg(&r, 1, "trade.AAPL", 10);
    assert_arg(&r, 2, "quote.MSFT", 10);
    assert_int_equal(r.consumed, 38);
}

static void test_inline_accepts_bare_newline(void **state)
{
    (void)state;
    parsed_t r = parse("PING\nPING\r\n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 1);
    assert_arg(&r, 0, "PING", 4);
    assert_int_equal(r.consumed, 5);
}

static void test_empty_inline_line_is_a_command_without_arguments(void **state)
{
    (void)state;
    parsed_t r = parse("\r\n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 0);
    assert_int_equal(r.consumed, 2);
    r = parse("   \n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 0);
}

static void test_inline_quotes_and_escapes_follow_sdssplitargs(void **state)
{
    (void)state;
    parsed_t r = parse("PING \"a b\" 'c d' \"\\x41\\n\\t\\\"\" 'it\\'s' x\"y z\"\r\n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 6);
    assert_arg(&r, 1, "a b", 3);
    assert_arg(&r, 2, "c d", 3);
    assert_arg(&r, 3, "A\n\t\"", 4);
    assert_arg(&r, 4, "it's", 4);
    assert_arg(&r, 5, "xy z", 4);
    r = parse("PING \"\"\r\n");
    assert_int_equal(r.argc, 2);
    assert_int_equal(r.lens[1], 0);
}

static void test_inline_nul_ends_the_words(void **state)
{
    (void)state;
    static const char in[] = "PING a\0b c\r\n";
    parsed_t r = parse_n(in, sizeof in - 1);
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 2);
    assert_arg(&r, 1, "a", 1);
    assert_int_equal(r.consumed, sizeof in - 1);
}

/* ---- split at every byte ---- */

static void assert_complete_only_at_end(const char *in, size_t len, size_t argc)
{
    for (size_t k = 0; k < len; k++) {
        parsed_t r = parse_n(in, k);
        assert_int_equal(r.r, RESP_NEED_MORE);
    }
    parsed_t r = parse_n(in, len);
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.consumed, len);
    assert_int_equal(r.argc, argc);
}

static void test_every_request_form_split_at_every_byte_needs_more(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t argc;
    } forms[] = {
        {"*2\r\n$9\r\nSUBSCRIBE\r\n$10\r\ntrade.AAPL\r\n", 2},
        {"*1\r\n$0\r\n\r\n", 1},
        {"*0\r\n", 0},
        {"*-1\r\n", 0},
        {"*3\r\n$7\r\nPUBLISH\r\n$10\r\ntrade.AAPL\r\n$21\r\nT,1,AAPL,101.25,100,B\r\n", 3},
        {"PING\r\n", 1},
        {"PING\n", 1},
        {"\r\n", 0},
        {"SUBSCRIBE \"trade.A A\" 'x'\r\n", 3},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        assert_complete_only_at_end(forms[i].in, strlen(forms[i].in), forms[i].argc);
}

/* ---- errors ---- */

static void test_protocol_errors_carry_redis_texts(void **state)
{
    (void)state;
    assert_error("*1\r\nx\r\n", "Protocol error: expected '$', got 'x'");
    assert_error("*1\r\n\r\n", "Protocol error: expected '$', got ' '");
    assert_error("*abc\r\n", "Protocol error: invalid multibulk length");
    assert_error("*01\r\n", "Protocol error: invalid multibulk length");
    assert_error("*+1\r\n", "Protocol error: invalid multibulk length");
    assert_error("*\r\n", "Protocol error: invalid multibulk length");
    assert_error("*2000000000000\r\n", "Protocol error: invalid multibulk length");
    assert_error("*1\rX", "Protocol error: invalid multibulk length");
    assert_error("*1\r\n$abc\r\n", "Protocol error: invalid bulk length");
    assert_error("*1\r\n$-1\r\n", "Protocol error: invalid bulk length");
    assert_error("*1\r\n$-0\r\n", "Protocol error: invalid bulk length");
    assert_error("*1\r\n$4\r\nPINGxx", "Protocol error: bulk data not followed by CRLF");
    assert_error("FOO \"a\r\n", "Protocol error: unbalanced quotes in request");
    assert_error("FOO \"a\"b\r\n", "Protocol error: unbalanced quotes in request");
    assert_error("FOO 'a\r\n", "Protocol error: unbalanced quotes in request");
}

static void test_errors_are_found_as_soon_as_the_deciding_byte_arrives(void **state)
{
    (void)state;
    /* The bad type byte alone decides; its line need not be complete. */
    assert_error("*1\r\nx", "Protocol error: expected '$', got 'x'");
    /* A bulk length over the limit fails before its data arrives. */
    resp_parser_t p;
    parser_init(&p, 64, 0);
    parsed_t r = parse_with(&p, "*1\r\n$100\r\n", 10);
    assert_int_equal(r.r, RESP_ERROR);
    assert_string_equal(r.err, "Protocol error: invalid bulk length");
}

/* ---- limits ---- */

static void test_count_lines_longer_than_the_line_limit_fail(void **state)
{
    (void)state;
    char in[64];
    memset(in, '1', sizeof in);
    in[0] = '*';
    assert_error_n(in, RESP_LINE_MAX - 1, "Protocol error: too big mbulk count string");
    parsed_t r = parse_n(in, RESP_LINE_MAX - 2);
    assert_int_equal(r.r, RESP_NEED_MORE);
    memcpy(in, "*1\r\n$", 5);
    assert_error_n(in, 4 + RESP_LINE_MAX - 1, "Protocol error: too big bulk count string");
}

static void test_count_lines_of_every_width_read_alike(void **state)
{
    (void)state;
    /* Up to 18 digits are read in one pass; "0", signs and longer lines by
     * the full reader: the answers do not depend on which. */
    parsed_t r = parse("*1\r\n$0\r\n\r\n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.argc, 1);
    assert_int_equal(r.lens[0], 0);
    assert_error("*1\r\n$999999999999999999\r\n", "Protocol error: invalid bulk length");
    assert_error("*1\r\n$9999999999999999999\r\n", "Protocol error: invalid bulk length");
    assert_error("*999999999999999999\r\n", "Protocol error: invalid multibulk length");
    assert_error("*1\r\n$04\r\nPING\r\n", "Protocol error: invalid bulk length");
    r = parse("*000000000000000000001\r\n");
    assert_int_equal(r.r, RESP_ERROR);
    r = parse("*2\r\n$12\r\nabcdefghijkl\r\n$3\r\nxyz\r\n");
    assert_int_equal(r.r, RESP_COMMAND);
    assert_arg(&r, 0, "abcdefghijkl", 12);
    assert_arg(&r, 1, "xyz", 3);
}

/* Lengths of one and two digits, read without the digit loop: every one of
 * them is taken, and any byte that is neither a digit nor the line's CRLF
 * after one or two digits fails as a longer line would. */
static void test_one_and_two_digit_count_lines_read_alike(void **state)
{
    (void)state;
    char in[160];
    for (size_t n = 1; n <= 99; n++) {
        int h = snprintf(in, sizeof in, "*1\r\n$%zu\r\n", n);
        memset(in + h, 'a', n);
        memcpy(in + h + n, "\r\n", 2);
        parsed_t r = parse_n(in, (size_t)h + n + 2);
        assert_int_equal(r.r, RESP_COMMAND);
        assert_int_equal(r.argc, 1);
        assert_int_equal(r.lens[0], n);
        assert_int_equal(r.consumed, (size_t)h + n + 2);
    }
    for (int b = 0; b < 256; b++) {
        if (b >= '0' && b <= '9')
            continue;
        for (size_t digits = 1; digits <= 2; digits++) {
            size_t h = (size_t)snprintf(in, sizeof in, "*1\r\n$%.*s", (int)digits, "12");
            in[h] = (char)b;
            memcpy(in + h + 1, "\r\nxy\r\n", 6);
            if (b == '\r')
                in[h + 1] = 'x'; /* "\r" then not "\n" */
            assert_error_n(in, h + 7, "Protocol error: invalid bulk length");
            in[0] = '*';
            memcpy(in + 1, "12", digits);
            in[1 + digits] = (char)b;
            memcpy(in + 2 + digits, "\r\n", 2);
            if (b == '\r')
                in[2 + digits] = 'x';
            assert_error_n(in, 4 + digits, "Protocol error: invalid multibulk length");
        }
    }
}

static void test_too_many_arguments_fail(void **state)
{
    (void)state;
    assert_error("*1025\r\n", "Protocol error: too many arguments");
    parsed_t r = parse("*1024\r\n");
    assert_int_equal(r.r, RESP_NEED_MORE);

    resp_parser_t p;
    parser_init(&p, MAX_REQUEST, 0);
    p.max_args = 2;
    r = parse_with(&p, "a b c\r\n", 7);
    assert_int_equal(r.r, RESP_ERROR);
    assert_string_equal(r.err, "Protocol error: too many arguments");
}

static void test_unauthenticated_limits_are_redis_ones(void **state)
{
    (void)state;
    resp_parser_t p;
    parser_init(&p, 1 << 20, 1);
    parsed_t r = parse_with(&p, "*11\r\n", 5);
    assert_int_equal(r.r, RESP_ERROR);
    assert_string_equal(r.err, "Protocol error: unauthenticated multibulk length");
    r = parse_with(&p, "*10\r\n", 5);
    assert_int_equal(r.r, RESP_NEED_MORE);
    r = parse_with(&p, "*1\r\n$16385\r\n", 12);
    assert_int_equal(r.r, RESP_ERROR);
    assert_string_equal(r.err, "Protocol error: unauthenticated bulk length");
    r = parse_with(&p, "*1\r\n$16384\r\n", 12);
    assert_int_equal(r.r, RESP_NEED_MORE);
}

static void test_request_over_max_request_fails(void **state)
{
    (void)state;
    resp_parser_t p;
    parser_init(&p, 32, 0);
    /* One bulk longer than the whole limit. */
    parsed_t r = parse_with(&p, "*1\r\n$33\r\n", 9);
    assert_int_equal(r.r, RESP_ERROR);
    assert_string_equal(r.err, "Protocol error: invalid bulk length");
    /* Bulks that fit alone but not together: known from the header. */
    r = parse_with(&p, "*2\r\n$10\r\n0123456789\r\n$10\r\n", 26);
    assert_int_equal(r.r, RESP_ERROR);
    assert_string_equal(r.err, "Protocol error: too big request");
    /* Exactly max_request bytes is fine. */
    r = parse_with(&p, "*1\r\n$21\r\n012345678901234567890\r\n", 32);
    assert_int_equal(r.r, RESP_COMMAND);
    assert_int_equal(r.consumed, 32);
    /* An inline line with no newline within the limit. */
    char line[40];
    memset(line, 'a', sizeof line);
    r = parse_with(&p, line, 31);
    assert_int_equal(r.r, RESP_NEED_MORE);
    r = parse_with(&p, line, 32);
    assert_int_equal(r.r, RESP_ERROR);
    assert_string_equal(r.err, "Protocol error: too big inline request");
    memcpy(line + 31, "\n", 1);
    r = parse_with(&p, line, 32);
    assert_int_equal(r.r, RESP_COMMAND);
    /* Many empty arguments adding up: the count lines count too. */
    r = parse_with(&p, "*9\r\n$0\r\n\r\n$0\r\n\r\n$0\r\n\r\n$0\r\n\r\n$0\r\n\r\n", 34);
    assert_int_equal(r.r, RESP_ERROR);
    assert_string_equal(r.err, "Protocol error: too big request");
}

/* ---- properties over pseudo-random input ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static void
test_random_input_never_needs_more_past_the_limit_and_never_changes_its_mind(void **state)
{
    (void)state;
    static const char *pieces[] = {"*",  "$", "\r\n", "\r",     "\n",    "1",  "2",
                                   "0",  "-", "3",    "PING",   " ",     "\"", "'",
                                   "\\", "x", "\0",   "*2\r\n", "$4\r\n"};
    enum { MAX = 48 };
    resp_parser_t p;
    parser_init(&p, MAX, rng() & 1);

    for (int iter = 0; iter < 20000; iter++) {
        char buf[128];
        size_t len = 0;
        while (len < 80) {
            const char *piece = pieces[rng() % (sizeof pieces / sizeof pieces[0])];
            size_t n = piece[0] == '\0' ? 1 : strlen(piece);
            memcpy(buf + len, piece, n);
            len += n;
        }
        parsed_t first = {.r = RESP_NEED_MORE};
        for (size_t k = 0; k <= len; k++) {
            parsed_t r = parse_with(&p, buf, k);
            if (r.r == RESP_NEED_MORE) {
                assert_true(k < MAX);
                assert_int_equal(first.r, RESP_NEED_MORE);
                continue;
            }
            if (r.r == RESP_COMMAND) {
                assert_true(r.consumed > 0 && r.consumed <= k && r.consumed <= MAX);
                assert_true(r.argc <= RESP_MAX_ARGS);
            } else {
                assert_int_equal(r.r, RESP_ERROR);
                assert_true(strncmp(r.err, "Protocol error: ", 16) == 0);
                assert_null(strpbrk(r.err, "\r\n"));
            }
            if (first.r == RESP_NEED_MORE) {
                first = r;
            } else {
                assert_int_equal(r.r, first.r);
                assert_int_equal(r.consumed, first.consumed);
                assert_int_equal(r.argc, first.argc);
                assert_string_equal(r.err, first.err);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk_command_gives_arguments_and_length),
        cmocka_unit_test(test_pipelined_requests_are_taken_one_at_a_time),
        cmocka_unit_test(test_bulk_data_is_binary_safe),
        cmocka_unit_test(test_empty_and_null_multibulk_are_commands_without_arguments),
        cmocka_unit_test(test_inline_command_splits_on_blanks),
        cmocka_unit_test(test_inline_accepts_bare_newline),
        cmocka_unit_test(test_empty_inline_line_is_a_command_without_arguments),
        cmocka_unit_test(test_inline_quotes_and_escapes_follow_sdssplitargs),
        cmocka_unit_test(test_inline_nul_ends_the_words),
        cmocka_unit_test(test_every_request_form_split_at_every_byte_needs_more),
        cmocka_unit_test(test_protocol_errors_carry_redis_texts),
        cmocka_unit_test(test_errors_are_found_as_soon_as_the_deciding_byte_arrives),
        cmocka_unit_test(test_count_lines_longer_than_the_line_limit_fail),
        cmocka_unit_test(test_count_lines_of_every_width_read_alike),
        cmocka_unit_test(test_one_and_two_digit_count_lines_read_alike),
        cmocka_unit_test(test_too_many_arguments_fail),
        cmocka_unit_test(test_unauthenticated_limits_are_redis_ones),
        cmocka_unit_test(test_request_over_max_request_fails),
        cmocka_unit_test(
            test_random_input_never_needs_more_past_the_limit_and_never_changes_its_mind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

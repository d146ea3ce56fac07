/*
 * fuzz_resp.c - libFuzzer harness: the RESP2 request parser (src/resp.h).
 *
 * Input: a settings byte, then what a client sent. The settings byte picks
 * the parser's limits:
 *
 *   bits 0-2  max_request: 1, 8, 16, 32, 64, 256, 4096 or 65536 bytes
 *   bits 3-4  max_args: 1, 3, 10 or RESP_MAX_ARGS
 *   bit 5     unauthenticated (Redis' limits before AUTH)
 *
 * The bytes are parsed as a connection would: request after request until
 * one is incomplete or an error. argv and the scratch buffer are allocated
 * at exactly the sizes the parser is promised, and the bytes sit in a buffer
 * of their exact size, so any read or write past them is a report.
 *
 * Checked, from resp.h and resp.c: a command takes at least one byte and at
 * most max_request, and its arguments lie inside the request or the scratch;
 * the limits hold; an error says why; RESP_NEED_MORE only while fewer than
 * max_request bytes are given. And feeding a request in pieces gives the
 * same answer as feeding it whole: every prefix of the bytes is incomplete,
 * or already the same command, or already the same error; and the answer
 * does not change past max_request bytes.
 *
 * Seeds (corpus/fuzz_resp/): the commands redis-cli, hiredis, redis-py,
 * node-redis and ioredis send (SUBSCRIBE, PSUBSCRIBE, PUBLISH, PING, CLIENT
 * SETINFO, HELLO 3 with AUTH and SETNAME, AUTH, INFO, PUBSUB, QUIT, RESET),
 * pipelined, inline with quotes and escapes, and broken ones.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_market.h"
#include "src/resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What one call answered, in a form that survives the next call. */
typedef struct answer {
    int r;
    size_t argc, consumed;
    uint64_t args; /* digest of the arguments */
    char err[RESP_ERR_MAX];
} answer_t;

static answer_t parse(resp_parser_t *p, const char *buf, size_t len)
{
    answer_t a;
    memset(&a, 0, sizeof(a));
    a.r = resp_parse(p, buf, len);
    a.argc = p->argc;
    a.consumed = p->consumed;
    memcpy(a.err, p->err, sizeof(a.err));
    uint64_t h = 0xcbf29ce484222325ull;
    if (a.r == RESP_COMMAND) {
        for (size_t i = 0; i < p->argc; i++) {
            h = (h ^ p->argv[i].len) * 0x100000001b3ull;
            for (size_t j = 0; j < p->argv[i].len; j++)
                h = (h ^ (unsigned char)p->argv[i].ptr[j]) * 0x100000001b3ull;
        }
    }
    a.args = h;
    return a;
}

static int same(const answer_t *a, const answer_t *b)
{
    if (a->r != b->r)
        return 0;
    if (a->r == RESP_COMMAND)
        return a->argc == b->argc && a->consumed == b->consumed && a->args == b->args;
    if (a->r == RESP_ERROR)
        return strcmp(a->err, b->err) == 0;
    return 1;
}

/* The answer for buf[0..len), checked against the contract. */
static answer_t parse_checked(resp_parser_t *p, const char *buf, size_t len)
{
    answer_t a = parse(p, buf, len);
    switch (a.r) {
    case RESP_COMMAND:
        if (a.consumed == 0 || a.consumed > len || a.consumed > p->max_request)
            fuzz_fail("a command of %zu bytes out of %zu (max_request %zu)", a.consumed, len,
                      p->max_request);
        if (a.argc > p->max_args)
            fuzz_fail("%zu arguments, max_args %zu", a.argc, p->max_args);
        if (p->unauthenticated && buf[0] == '*' && a.argc > RESP_UNAUTH_MAX_ARGS)
            fuzz_fail("%zu arguments before AUTH", a.argc);
        for (size_t i = 0; i < a.argc; i++) {
            const char *s = p->argv[i].ptr;
            size_t n = p->argv[i].len;
            int in_buf = s >= buf && s <= buf + a.consumed && n <= (size_t)(buf + a.consumed - s);
            int in_scratch = s >= p->scratch && s <= p->scratch + p->max_request &&
                             n <= (size_t)(p->scratch + p->max_request - s);
            if (!in_buf && !in_scratch)
                fuzz_fail("argument %zu (%zu bytes) lies outside the request and the scratch", i,
                          n);
            if (p->unauthenticated && buf[0] == '*' && n > RESP_UNAUTH_MAX_BULK)
                fuzz_fail("a bulk of %zu bytes before AUTH", n);
        }
        break;
    case RESP_NEED_MORE:
        if (len >= p->max_request)
            fuzz_fail("RESP_NEED_MORE with %zu bytes, max_request %zu", len, p->max_request);
        break;
    case RESP_ERROR:
        if (memchr(a.err, '\0', sizeof(a.err)) == NULL || strncmp(a.err, "Protocol error: ", 16) ||
            a.err[16] == '\0')
            fuzz_fail("an error without its text");
        break;
    default:
        fuzz_fail("resp_parse returned %d", a.r);
    }
    return a;
}

/* Every prefix of buf[0..len) (a sample of them when there are many) must
 * be incomplete or give the same answer as the whole. */
static void check_prefixes(resp_parser_t *p, const char *buf, size_t len, const answer_t *whole)
{
    size_t step = len <= 64 ? 1 : len / 32;
    for (size_t k = 0; k < len; k += step) {
        char *prefix = fuzz_dup(buf, k);
        answer_t a = parse_checked(p, prefix, k);
        free(prefix);
        if (a.r != RESP_NEED_MORE && !same(&a, whole))
            fuzz_fail("%zu bytes answer %d (%s), all %zu of them %d (%s)", k, a.r, a.err, len,
                      whole->r, whole->err);
        if (a.r == RESP_COMMAND)
            break; /* the rest of the prefixes end with the same command */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max_requests[8] = {1, 8, 16, 32, 64, 256, 4096, 65536};
    static const size_t max_argss[4] = {1, 3, 10, RESP_MAX_ARGS};
    if (size < 1)
        return 0;
    resp_parser_t p;
    memset(&p, 0, sizeof(p));
    p.max_request = max_requests[data[0] & 7];
    p.max_args = max_argss[(data[0] >> 3) & 3];
    p.unauthenticated = (data[0] >> 5) & 1;
    p.argv = malloc(p.max_args * sizeof(*p.argv));
    p.scratch = malloc(p.max_request);
    if (p.argv == NULL || p.scratch == NULL)
        fuzz_fail("out of memory");
    size_t len = size - 1;
    char *bytes = fuzz_dup(data + 1, len);

    for (size_t off = 0;;) {
        const char *req = bytes + off;
        size_t n = len - off;
        answer_t a = parse_checked(&p, req, n);
        check_prefixes(&p, req, n, &a);
        if (n > p.max_request) {
            answer_t w = parse_checked(&p, req, p.max_request);
            if (!same(&w, &a))
                fuzz_fail("%zu bytes answer %d, the first max_request=%zu of them %d", n, a.r,
                          p.max_request, w.r);
        }
        if (a.r != RESP_COMMAND)
            break;
        off += a.consumed;
    }

    free(bytes);
    free(p.argv);
    free(p.scratch);
    return 0;
}

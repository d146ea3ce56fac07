/*
 * resp.c - the RESP2 request parser (see resp.h for the contract).
 *
 * Every call parses the request at the start of the buffer from scratch; it
 * keeps no state, so it can be fed any byte string (it is a fuzz target) and
 * a caller that received more bytes simply calls again. Re-parsing a
 * multibulk costs one short line per argument (bulk data is skipped by its
 * length, never scanned), so the worst case is bounded by max_args per call.
 *
 * The window: only buf[0..min(len, max_request)) is ever looked at. When the
 * request needs bytes past that window it is either incomplete (len is below
 * max_request: RESP_NEED_MORE) or too big (error). The answer for a buffer
 * therefore depends only on its first max_request bytes, and feeding a
 * request in pieces gives the same final answer as feeding it whole.
 *
 * Errors carry Redis' texts where Redis has one. tickd is stricter than Redis
 * in two places, both unreachable for a conforming client: the count lines
 * must end in \r\n (Redis skips whatever two bytes follow the \r), and bulk
 * data must be followed by \r\n (Redis does not look).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "src/resp.h"

/* read_count(): a whole line was read (else RESP_NEED_MORE or RESP_ERROR). */
#define LINE_OK 1

/* Are p[0] and p[1] "\r\n"? One 16-bit comparison. */
static inline int crlf_at(const char *p)
{
    uint16_t x, want;
    memcpy(&x, p, 2);
    memcpy(&want, "\r\n", 2);
    return x == want;
}

static int fail(resp_parser_t *p, const char *text)
{
    snprintf(p->err, sizeof p->err, "Protocol error: %s", text);
    return RESP_ERROR;
}

/* Redis' string2ll() over s[0..n): an optional '-', then digits with no
 * leading zero ("0" itself is fine). Values beyond +-2^62 count as invalid:
 * no limit of ours comes near. */
static int parse_ll(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    int negative = 0;
    long long v = 0;

    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    if (n > 0 && s[0] == '-') {
        negative = 1;
        i++;
    }
    if (i >= n || s[i] < '1' || s[i] > '9')
        return 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_C(1) << 62) / 10)
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = negative ? -v : v;
    return 1;
}

/* read_count() for a line that is not a few digits with its CRLF in the
 * window: a sign, a leading zero, a long or unfinished line, bad bytes. */
static int read_count_slow(resp_parser_t *p, const char *buf, size_t avail, size_t start,
                           const char *too_big, const char *invalid, long long *value, size_t *next)
{
    size_t end = avail - start < RESP_LINE_MAX - 1 ? avail : start + RESP_LINE_MAX - 1;
    const char *cr = memchr(buf + start + 1, '\r', end - start - 1);

    if (cr == NULL)
        return end - start == RESP_LINE_MAX - 1 ? fail(p, too_big) : RESP_NEED_MORE;
    size_t e = (size_t)(cr - buf);
    if (e + 1 >= avail)
        return RESP_NEED_MORE;
    if (buf[e + 1] != '\n' || !parse_ll(buf + start + 1, e - start - 1, value))
        return fail(p, invalid);
    *next = e + 2;
    return LINE_OK;
}

/* A *<count> or $<len> line starting at buf[start], inside the window
 * buf[0..avail). Sets *value and *next (the byte after its \r\n). The
 * line of nearly every request, up to 18 digits without a leading zero and
 * its CRLF in the window, is read here in one pass, inline. */
__attribute__((always_inline)) static inline int
read_count(resp_parser_t *p, const char *buf, size_t avail, size_t start, const char *too_big,
           const char *invalid, long long *value, size_t *next)
{
    _Static_assert(RESP_LINE_MAX >= 1 + 18 + 2,
                   "a line read here is never too long for the slow path");
    /* One or two digits, the lines of a command's arguments: read without
     * the loop. What does not fit this shape goes on below as before. */
    if (start + 4 < avail && buf[start + 1] >= '1' && buf[start + 1] <= '9') {
        long long d1 = buf[start + 1] - '0';
        if (crlf_at(buf + start + 2)) {
            *value = d1;
            *next = start + 4;
            return LINE_OK;
        }
        if (buf[start + 2] >= '0' && buf[start + 2] <= '9' && crlf_at(buf + start + 3)) {
            *value = d1 * 10 + (buf[start + 2] - '0');
            *next = start + 5;
            return LINE_OK;
        }
    }
    size_t i = start + 1;
    long long v = 0;
    while (i < avail && i - start <= 18 && buf[i] >= '0' && buf[i] <= '9')
        v = v * 10 + (buf[i++] - '0');
    if (i > start + 1 && buf[start + 1] != '0' && i + 1 < avail && buf[i] == '\r' &&
        buf[i + 1] == '\n') {
        *value = v;
        *next = i + 2;
        return LINE_OK;
    }
    return read_count_slow(p, buf, avail, start, too_big, invalid, value, next);
}

static int parse_multibulk(resp_parser_t *p, const char *buf, size_t avail)
{
    long long count, blen;
    size_t pos;
    int r = read_count(p, buf, avail, 0, "too big mbulk count string", "invalid multibulk length",
                       &count, &pos);

    if (r != LINE_OK)
        return r;
    if (count > INT32_MAX)
        return fail(p, "invalid multibulk length");
    if (p->unauthenticated && count > RESP_UNAUTH_MAX_ARGS)
        return fail(p, "unauthenticated multibulk length");
    if (count > 0 && (size_t)count > p->max_args)
        return fail(p, "too many arguments");
    /* The arguments are counted in argc and p->argc is set once, on the
     * way out; a bulk that fits the window passes every limit on the one
     * comparison (its length is below avail - pos <= max_request), so only
     * the unauthenticated limit is left to check; any other goes the long
     * way, which finds the first fault in the order of the checks. */
    resp_arg_t *argv = p->argv;
    size_t argc = 0, n = count > 0 ? (size_t)count : 0;
    for (; argc < n; argc++) {
        if (pos >= avail) {
            r = RESP_NEED_MORE;
            goto out;
        }
        if (buf[pos] != '$') {
            char c = buf[pos] == '\r' || buf[pos] == '\n' || buf[pos] == '\0' ? ' ' : buf[pos];
            snprintf(p->err, sizeof p->err, "Protocol error: expected '$', got '%c'", c);
            r = RESP_ERROR;
            goto out;
        }
        r = read_count(p, buf, avail, pos, "too big bulk count string", "invalid bulk length",
                       &blen, &pos);
        if (r != LINE_OK)
            goto out;
        if (__builtin_expect(blen >= 0 && (size_t)blen + 2 <= avail - pos, 1)) {
            if (p->unauthenticated && blen > RESP_UNAUTH_MAX_BULK) {
                r = fail(p, "unauthenticated bulk length");
                goto out;
            }
        } else {
            if (blen < 0 || (unsigned long long)blen > p->max_request)
                r = fail(p, "invalid bulk length");
            else if (p->unauthenticated && blen > RESP_UNAUTH_MAX_BULK)
                r = fail(p, "unauthenticated bulk length");
            else if ((size_t)blen + 2 > p->max_request - pos)
                r = fail(p, "too big request");
            else
                r = RESP_NEED_MORE;
            goto out;
        }
        if (!crlf_at(buf + pos + blen)) {
            r = fail(p, "bulk data not followed by CRLF");
            goto out;
        }
        argv[argc].ptr = buf + pos;
        argv[argc].len = (size_t)blen;
        pos += (size_t)blen + 2;
    }
    p->consumed = pos;
    r = RESP_COMMAND;
out:
    p->argc = argc;
    return r;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Redis' sdssplitargs() over line[0..n), writing the words into scratch. */
static int split_inline(resp_parser_t *p, const char *line, size_t n)
{
    const char *nul = memchr(line, '\0', n);
    size_t i = 0, w = 0;

    if (nul != NULL)
        n = (size_t)(nul - line); /* Redis splits a C string: a NUL ends it */
    p->argc = 0;
    for (;;) {
        while (i < n && is_space(line[i]))
            i++;
        if (i == n)
            return RESP_COMMAND;
        if (p->argc == p->max_args)
            return fail(p, "too many arguments");
        size_t start = w;
        int inq = 0, insq = 0, done = 0;
        while (!done) {
            char c = i < n ? line[i] : '\0';
            if (inq) {
                if (c == '\\' && n - i >= 4 && line[i + 1] == 'x' && hex_value(line[i + 2]) >= 0 &&
                    hex_value(line[i + 3]) >= 0) {
                    p->scratch[w++] = (char)(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3]));
                    i += 3;
                } else if (c == '\\' && n - i >= 2) {
                    i++;
                    switch (line[i]) {
                    case 'n':
                        p->scratch[w++] = '\n';
                        break;
                    case 'r':
                        p->scratch[w++] = '\r';
                        break;
                    case 't':
                        p->scratch[w++] = '\t';
                        break;
                    case 'b':
                        p->scratch[w++] = '\b';
                        break;
                    case 'a':
                        p->scratch[w++] = '\a';
                        break;
                    default:
                        p->scratch[w++] = line[i];
                        break;
                    }
                } else if (c == '"') {
                    if (n - i >= 2 && !is_space(line[i + 1]))
                        return fail(p, "unbalanced quotes in request");
                    done = 1;
                } else if (i == n) {
                    return fail(p, "unbalanced quotes in request");
                } else {
                    p->scratch[w++] = c;
                }
            } else if (insq) {
                if (c == '\\' && n - i >= 2 && line[i + 1] == '\'') {
                    i++;
                    p->scratch[w++] = '\'';
                } else if (c == '\'') {
                    if (n - i >= 2 && !is_space(line[i + 1]))
                        return fail(p, "unbalanced quotes in request");
                    done = 1;
                } else if (i == n) {
                    return fail(p, "unbalanced quotes in request");
                } else {
                    p->scratch[w++] = c;
                }
            } else if (i == n || c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                done = 1;
            } else if (c == '"') {
                inq = 1;
            } else if (c == '\'') {
                insq = 1;
            } else {
                p->scratch[w++] = c;
            }
            if (i < n)
                i++;
        }
        p->argv[p->argc].ptr = p->scratch + start;
        p->argv[p->argc].len = w - start;
        p->argc++;
    }
}

static int parse_inline(resp_parser_t *p, const char *buf, size_t avail)
{
    const char *nl = memchr(buf, '\n', avail);

    if (nl == NULL)
        return avail == p->max_request ? fail(p, "too big inline request") : RESP_NEED_MORE;
    size_t e = (size_t)(nl - buf);
    size_t n = e > 0 && buf[e - 1] == '\r' ? e - 1 : e;
    int r = split_inline(p, buf, n);
    if (r == RESP_COMMAND)
        p->consumed = e + 1;
    return r;
}

int resp_parse(resp_parser_t *p, const char *buf, size_t len)
{
    size_t avail = len < p->max_request ? len : p->max_request;
    int r;

    p->argc = 0;
    p->consumed = 0;
    p->err[0] = '\0';
    if (avail == 0)
        return len > 0 ? fail(p, "too big request") : RESP_NEED_MORE;
    if (buf[0] == '*') {
        r = parse_multibulk(p, buf, avail);
        if (r == RESP_NEED_MORE && avail == p->max_request)
            return fail(p, "too big request");
    } else {
        r = parse_inline(p, buf, avail);
    }
    return r;
}

/*
 * resp_client.c - the benchmarks' minimal RESP2 client (see resp_client.h).
 *
 * Output is appended to one growing buffer and sent with send(MSG_NOSIGNAL)
 * as far as the socket takes it. Input is read into one buffer and parsed in
 * place: a reply cut short by the end of a read stays at the front (the
 * buffer is compacted, or doubled when one reply fills it) until the rest
 * arrives. Parsing never copies a payload.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench/resp_client.h"

#include "feed/digits.h"

#define OUT_INITIAL 65536

int resp_connect(resp_conn_t *c, const char *host, int port, size_t in_cap)
{
    struct sockaddr_in sa;
    int one = 1, err;

    memset(c, 0, sizeof *c);
    c->fd = -1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -EINVAL;
    c->in = malloc(in_cap);
    c->out = malloc(OUT_INITIAL);
    if (c->in == NULL || c->out == NULL) {
        resp_close(c);
        return -ENOMEM;
    }
    c->in_cap = in_cap;
    c->out_cap = OUT_INITIAL;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0) {
        err = -errno;
        resp_close(c);
        return err;
    }
    return 0;
}

void resp_close(resp_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* ---- output ---- */

/* Makes room for n more bytes at out_end. 0 or -ENOMEM. */
static int out_reserve(resp_conn_t *c, size_t n)
{
    if (c->out_cap - c->out_end >= n)
        return 0;
    if (c->out_start > 0) {
        memmove(c->out, c->out + c->out_start, c->out_end - c->out_start);
        c->out_end -= c->out_start;
        c->out_start = 0;
        if (c->out_cap - c->out_end >= n)
            return 0;
    }
    size_t cap = c->out_cap * 2;
    while (cap - c->out_end < n)
        cap *= 2;
    char *out = realloc(c->out, cap);
    if (out == NULL)
        return -ENOMEM;
    c->out = out;
    c->out_cap = cap;
    return 0;
}

static char *put_bulk(char *p, const char *s, size_t len)
{
    *p++ = '$';
    p = digits_u64(p, len);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, s, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

#define BULK_OVERHEAD (1 + DIGITS_U64_MAX + 4) /* '$', the length, two CRLF */

int resp_append(resp_conn_t *c, int argc, const char *const *argv, const size_t *lens)
{
    size_t need = 24;
    for (int i = 0; i < argc; i++)
        need += lens[i] + BULK_OVERHEAD;
    if (out_reserve(c, need) != 0)
        return -ENOMEM;
    char *p = c->out + c->out_end;
    *p++ = '*';
    p = digits_u64(p, (uint64_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++)
        p = put_bulk(p, argv[i], lens[i]);
    c->out_end = (size_t)(p - c->out);
    return 0;
}

int resp_append_publish(resp_conn_t *c, const char *channel, size_t chlen, const char *payload,
                        size_t len)
{
    static const char head[] = "*3\r\n$7\r\nPUBLISH\r\n";
    if (out_reserve(c, sizeof head + chlen + len + 2 * BULK_OVERHEAD) != 0)
        return -ENOMEM;
    char *p = c->out + c->out_end;
    memcpy(p, head, sizeof head - 1);
    p += sizeof head - 1;
    p = put_bulk(p, channel, chlen);
    p = put_bulk(p, payload, len);
    c->out_end = (size_t)(p - c->out);
    return 0;
}

int resp_write(resp_conn_t *c)
{
    while (c->out_start < c->out_end) {
        ssize_t n = send(c->fd, c->out + c->out_start, c->out_end - c->out_start, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            return -errno;
        }
        c->out_start += (size_t)n;
    }
    c->out_start = c->out_end = 0;
    return 0;
}

/* ---- input ---- */

ssize_t resp_read(resp_conn_t *c)
{
    if (c->in_start == c->in_end) {
        c->in_start = c->in_end = 0;
    } else if (c->in_cap - c->in_end < c->in_cap / 4) {
        if (c->in_start > 0) {
            memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
            c->in_end -= c->in_start;
            c->in_start = 0;
        }
        if (c->in_cap - c->in_end < c->in_cap / 4) { /* one reply fills most of it */
            char *in = realloc(c->in, c->in_cap * 2);
            if (in == NULL)
                return -ENOMEM;
            c->in = in;
            c->in_cap *= 2;
        }
    }
    for (;;) {
        ssize_t n = read(c->fd, c->in + c->in_end, c->in_cap - c->in_end);
        if (n > 0) {
            c->in_end += (size_t)n;
            return n;
        }
        if (n == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    }
}

/* The integer of a line that starts at p and ends in CRLF: 1 with *next
 * past the CRLF, 0 when the line is not all there, -1 when it is bad (more
 * than 18 digits included). Inline, like parse_scalar(): a subscriber runs
 * them four times a message, on the CPUs the server runs on. */
static inline int parse_number(const char *p, const char *end, long long *out, const char **next)
{
    int neg = p < end && *p == '-';
    const char *digits = p + neg;
    long long v = 0;
    unsigned d;

    p = digits;
    while (p < end && (d = (unsigned)(unsigned char)*p - '0') <= 9) {
        v = v * 10 + d;
        p++;
    }
    if (p - digits > 18)
        return -1;
    if (end - p < 2)
        return 0;
    if (p == digits || p[0] != '\r' || p[1] != '\n')
        return -1;
    *out = neg ? -v : v;
    *next = p + 2;
    return 1;
}

/* One value that is not an array: 1, 0 or -1 as parse_number(). */
static inline int parse_scalar(const char *p, const char *end, resp_value_t *v, const char **next)
{
    const char *cr;
    int r;

    if (p >= end)
        return 0;
    v->type = *p++;
    switch (v->type) {
    case '+':
    case '-':
        cr = memchr(p, '\r', (size_t)(end - p));
        if (cr == NULL || end - cr < 2)
            return 0;
        if (cr[1] != '\n')
            return -1;
        v->str = p;
        v->len = (size_t)(cr - p);
        v->number = 0;
        *next = cr + 2;
        return 1;
    case ':':
        v->str = NULL;
        v->len = 0;
        return parse_number(p, end, &v->number, next);
    case '$':
        r = parse_number(p, end, &v->number, &p);
        if (r <= 0)
            return r;
        if (v->number < 0) {
            if (v->number != -1)
                return -1;
            v->str = NULL;
            v->len = 0;
            *next = p;
            return 1;
        }
        if (end - p < v->number + 2)
            return 0;
        if (p[v->number] != '\r' || p[v->number + 1] != '\n')
            return -1;
        v->str = p;
        v->len = (size_t)v->number;
        *next = p + v->number + 2;
        return 1;
    default:
        return -1;
    }
}

int resp_next(resp_conn_t *c, resp_reply_t *r)
{
    const char *p = c->in + c->in_start, *end = c->in + c->in_end;
    int res;

    if (p == end)
        return 0;
    if (*p != '*') {
        res = parse_scalar(p, end, &r->top, &p);
    } else {
        r->top.type = '*';
        r->top.str = NULL;
        r->top.len = 0;
        res = parse_number(p + 1, end, &r->top.number, &p);
        for (long long i = 0; res > 0 && i < r->top.number; i++) {
            resp_value_t scratch;
            res = parse_scalar(p, end, i < RESP_REPLY_MAX_ELEMS ? &r->elem[i] : &scratch, &p);
        }
        if (res > 0 && r->top.number < -1)
            res = -1;
    }
    if (res <= 0)
        return res < 0 ? -EPROTO : 0;
    c->in_start = (size_t)(p - c->in);
    return 1;
}

/* ---- setup helpers ---- */

static long long ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms =
        (deadline->tv_sec - now.tv_sec) * 1000LL + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? ms : 0;
}

int resp_wait_reply(resp_conn_t *c, resp_reply_t *r, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    for (;;) {
        int w = resp_write(c);
        if (w < 0)
            return w;
        int got = resp_next(c, r);
        if (got != 0)
            return got < 0 ? got : 0;
        long long left = ms_left(&deadline);
        if (left == 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = c->fd, .events = (short)(POLLIN | (w ? POLLOUT : 0))};
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t rd = resp_read(c);
            if (rd < 0)
                return (int)rd;
        }
    }
}

int resp_value_is(const resp_value_t *v, const char *s)
{
    size_t n = strlen(s);
    return v->str != NULL && v->len == n && memcmp(v->str, s, n) == 0;
}

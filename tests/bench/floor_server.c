/*
 * floor_server.c - the fan-out benchmark's floor server (see floor_server.h).
 *
 * One epoll loop, blocking sockets for writing, one input buffer per
 * connection. A read is parsed whole: every complete command in it is
 * carried out, the rest waits for the next read. The PUBLISH of one read go
 * out as one write per subscriber, as tickd and Redis do, then the replies
 * to the publisher as one write. A connection found dead (read 0, an error,
 * a failed write, bad bytes) is closed at once and freed after the events
 * of the epoll_wait() that found it, so that no later event of the same
 * batch points at freed memory.
 */
#include "tests/bench/floor_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "feed/digits.h"

#define MAX_ARGS    3             /* PUBLISH channel message */
#define MAX_BULK    (1024 * 1024) /* longest argument */
#define READ_CHUNK  65536
#define MAX_EVENTS  64
#define NUMBER_LINE 16 /* "$1048576\r\n" and then some */

struct conn {
    int fd;
    int subscriber; /* SUBSCRIBEd: on the subscriber list */
    int dead;       /* closed; freed after the current batch of events */
    char *in;       /* bytes read, not yet carried out: in[0, len) of cap */
    size_t len, cap;
    struct conn *next_dead;
};

struct buf {
    char *p;
    size_t len, cap;
};

struct floor {
    int ep, listen_fd;
    struct conn **subs; /* in the order they subscribed */
    size_t nsubs, subs_cap;
    struct conn *dead;
    struct buf out;   /* the message frames of the read being carried out */
    struct buf reply; /* the replies to that read */
};

static int buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void buf_put(struct buf *b, const char *s, size_t n)
{
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* Appends ":<n>\r\n" or "$<n>\r\n". */
static int buf_count(struct buf *b, char type, size_t n)
{
    if (buf_reserve(b, 1 + DIGITS_U64_MAX + 2) != 0)
        return -ENOMEM;
    b->p[b->len++] = type;
    b->len = (size_t)(digits_u64(b->p + b->len, n) - b->p);
    buf_put(b, "\r\n", 2);
    return 0;
}

static int buf_bulk(struct buf *b, const char *s, size_t n)
{
    if (buf_count(b, '$', n) != 0 || buf_reserve(b, n + 2) != 0)
        return -ENOMEM;
    buf_put(b, s, n);
    buf_put(b, "\r\n", 2);
    return 0;
}

/* Writes all of p[0, n) to a blocking socket. 0 or -errno. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void conn_close(struct floor *f, struct conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    epoll_ctl(f->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->subscriber) {
        size_t i = 0;
        while (f->subs[i] != c)
            i++;
        memmove(f->subs + i, f->subs + i + 1, (f->nsubs - i - 1) * sizeof *f->subs);
        f->nsubs--;
    }
    c->next_dead = f->dead;
    f->dead = c;
}

static void reap(struct floor *f)
{
    while (f->dead != NULL) {
        struct conn *c = f->dead;
        f->dead = c->next_dead;
        free(c->in);
        free(c);
    }
}

/* Sends p[0, n) to c, closing c if it cannot take it. */
static void send_or_close(struct floor *f, struct conn *c, const char *p, size_t n)
{
    if (write_all(c->fd, p, n) != 0)
        conn_close(f, c);
}

/* Reads "<prefix><digits>\r\n" at *pos, digits at most max: 1 with *value
 * and *pos past it, 0 if the line is not all there yet, -1 if it is wrong. */
static int read_number(const char *p, size_t len, size_t *pos, char prefix, size_t max,
                       size_t *value)
{
    size_t i = *pos, v = 0;
    if (i >= len)
        return 0;
    if (p[i++] != prefix)
        return -1;
    size_t start = i;
    while (i < len && p[i] >= '0' && p[i] <= '9') {
        v = v * 10 + (size_t)(p[i++] - '0');
        if (v > max)
            return -1;
    }
    if (i + 2 > len)
        return len - *pos < NUMBER_LINE ? 0 : -1;
    if (i == start || p[i] != '\r' || p[i + 1] != '\n')
        return -1;
    *pos = i + 2;
    *value = v;
    return 1;
}

/* One command at p[*pos, len): 1 with its arguments and *pos past it, 0 if
 * it is not all there yet, -1 if the bytes are not an array of bulk
 * strings of at most MAX_ARGS. */
static int parse_command(const char *p, size_t len, size_t *pos, const char **arg, size_t *arglen,
                         size_t *argc)
{
    size_t i = *pos, n;
    int r = read_number(p, len, &i, '*', MAX_ARGS, argc);
    if (r <= 0)
        return r;
    if (*argc == 0)
        return -1;
    for (size_t a = 0; a < *argc; a++) {
        if ((r = read_number(p, len, &i, '$', MAX_BULK, &n)) <= 0)
            return r;
        if (len - i < n + 2)
            return 0;
        if (p[i + n] != '\r' || p[i + n + 1] != '\n')
            return -1;
        arg[a] = p + i;
        arglen[a] = n;
        i += n + 2;
    }
    *pos = i;
    return 1;
}

static int is_command(const char *s, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(s, name, len) == 0;
}

/* Puts c on the subscriber list (once) and its reply on f->reply. */
static int subscribe(struct floor *f, struct conn *c, const char *chan, size_t len)
{
    if (!c->subscriber) {
        if (f->nsubs == f->subs_cap) {
            size_t cap = f->subs_cap ? 2 * f->subs_cap : 64;
            struct conn **s = realloc(f->subs, cap * sizeof *s);
            if (s == NULL)
                return -ENOMEM;
            f->subs = s;
            f->subs_cap = cap;
        }
        f->subs[f->nsubs++] = c;
        c->subscriber = 1;
    }
    if (buf_reserve(&f->reply, 4) != 0)
        return -ENOMEM;
    buf_put(&f->reply, "*3\r\n", 4);
    if (buf_bulk(&f->reply, "subscribe", 9) != 0 || buf_bulk(&f->reply, chan, len) != 0 ||
        buf_count(&f->reply, ':', 1) != 0)
        return -ENOMEM;
    return 0;
}

/* Carries out the complete commands of c's input; returns the bytes used,
 * or -1 when c was closed. */
static long carry_out(struct floor *f, struct conn *c)
{
    const char *arg[MAX_ARGS];
    size_t arglen[MAX_ARGS], argc, pos = 0, published = 0;
    int r;

    f->out.len = f->reply.len = 0;
    while ((r = parse_command(c->in, c->len, &pos, arg, arglen, &argc)) == 1) {
        int e = 0;
        if (argc == 3 && is_command(arg[0], arglen[0], "publish")) {
            if (buf_reserve(&f->out, 4) != 0)
                e = -ENOMEM;
            else
                buf_put(&f->out, "*3\r\n", 4);
            if (e == 0 && (buf_bulk(&f->out, "message", 7) != 0 ||
                           buf_bulk(&f->out, arg[1], arglen[1]) != 0 ||
                           buf_bulk(&f->out, arg[2], arglen[2]) != 0))
                e = -ENOMEM;
            if (e == 0)
                e = buf_count(&f->reply, ':', f->nsubs);
            published++;
        } else if (argc == 1 && is_command(arg[0], arglen[0], "ping")) {
            e = buf_reserve(&f->reply, 7);
            if (e == 0)
                buf_put(&f->reply, "+PONG\r\n", 7);
        } else if (argc == 2 && is_command(arg[0], arglen[0], "subscribe")) {
            e = subscribe(f, c, arg[1], arglen[1]);
        } else {
            static const char unknown[] = "-ERR unknown command\r\n";
            e = buf_reserve(&f->reply, sizeof unknown - 1);
            if (e == 0)
                buf_put(&f->reply, unknown, sizeof unknown - 1);
        }
        if (e != 0) {
            conn_close(f, c);
            return -1;
        }
    }
    if (r < 0) {
        conn_close(f, c);
        return -1;
    }
    for (size_t i = f->nsubs; published > 0 && i-- > 0;)
        send_or_close(f, f->subs[i], f->out.p, f->out.len);
    if (f->reply.len > 0 && !c->dead)
        send_or_close(f, c, f->reply.p, f->reply.len);
    return c->dead ? -1 : (long)pos;
}

static void on_readable(struct floor *f, struct conn *c)
{
    if (c->cap - c->len < READ_CHUNK) {
        size_t cap = c->cap ? 2 * c->cap : 2 * READ_CHUNK;
        char *in = cap <= 4 * (size_t)MAX_BULK ? realloc(c->in, cap) : NULL;
        if (in == NULL) {
            conn_close(f, c);
            return;
        }
        c->in = in;
        c->cap = cap;
    }
    ssize_t n = read(c->fd, c->in + c->len, c->cap - c->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        conn_close(f, c);
        return;
    }
    c->len += (size_t)n;
    long used = carry_out(f, c);
    if (used < 0)
        return;
    memmove(c->in, c->in + used, c->len - (size_t)used);
    c->len -= (size_t)used;
}

static void on_accept(struct floor *f)
{
    int one = 1, fd;
    while ((fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        struct conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
            epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(c);
            close(fd);
        }
    }
}

int floor_serve(int port)
{
    struct floor f = {.ep = -1, .listen_fd = -1};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct epoll_event ev = {.events = EPOLLIN}, events[MAX_EVENTS];
    int one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    f.ep = epoll_create1(EPOLL_CLOEXEC);
    ev.data.ptr = NULL; /* the listening socket */
    if (f.listen_fd < 0 || f.ep < 0 ||
        setsockopt(f.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(f.listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(f.listen_fd, 1024) != 0 || epoll_ctl(f.ep, EPOLL_CTL_ADD, f.listen_fd, &ev) != 0)
        return -errno;
    for (;;) {
        int n = epoll_wait(f.ep, events, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL)
                on_accept(&f);
            else if (!c->dead)
                on_readable(&f, c);
        }
        reap(&f);
    }
}

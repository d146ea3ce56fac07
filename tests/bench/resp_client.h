/*
 * resp_client.h - a minimal RESP2 client for the benchmarks: one TCP
 * connection, non-blocking once connected, with an output buffer that
 * commands are appended to and an input buffer that replies are parsed from
 * in place.
 *
 * It is deliberately ours and small (no hiredis) so that the very same code,
 * byte for byte, drives tickd and redis-server. It knows exactly what a
 * publisher and a subscriber need: commands as arrays of bulk strings, and
 * replies that are a simple string, an error, an integer, a bulk string or
 * an array of those (a pub/sub "message" frame is an array of three bulk
 * strings). Nested arrays are a protocol error here.
 *
 * The caller does the waiting (poll or epoll on conn->fd): resp_write() and
 * resp_read() never block. Errors are negative errno values; nothing is
 * printed.
 */
#ifndef TICKD_TESTS_BENCH_RESP_CLIENT_H
#define TICKD_TESTS_BENCH_RESP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RESP_REPLY_MAX_ELEMS 8 /* elements of an array reply kept */

typedef struct resp_conn {
    int fd;
    /* Bytes received, not yet parsed: in[in_start, in_end) of in_cap. */
    char *in;
    size_t in_start, in_end, in_cap;
    /* Bytes to send: out[out_start, out_end) of out_cap. */
    char *out;
    size_t out_start, out_end, out_cap;
} resp_conn_t;

/* One parsed value. Strings point into the connection's input buffer and
 * stay valid until the next resp_read() or resp_close(). */
typedef struct resp_value {
    char type;        /* '+' simple string, '-' error, ':' integer, '$' bulk, '*' array */
    long long number; /* ':' the integer; '$' the length (-1: nil); '*' the element count */
    const char *str;  /* '+', '-', '$': the bytes (not NUL-terminated) */
    size_t len;
} resp_value_t;

typedef struct resp_reply {
    resp_value_t top;
    /* '*': the first min(top.number, RESP_REPLY_MAX_ELEMS) elements. */
    resp_value_t elem[RESP_REPLY_MAX_ELEMS];
} resp_reply_t;

/* Connects to host (an IPv4 address) and port with TCP_NODELAY, then makes
 * the socket non-blocking; in_cap is the size of the input buffer (it grows
 * if a single reply is larger). 0 or -errno. */
int resp_connect(resp_conn_t *c, const char *host, int port, size_t in_cap);

/* Closes the socket and frees the buffers. c comes from resp_connect()
 * (which leaves fd = -1 and no buffers when it fails) or has fd = -1 and
 * NULL buffers; either way it ends with fd = -1. */
void resp_close(resp_conn_t *c);

/* Appends one command, an array of argc bulk strings. 0 or -ENOMEM. */
int resp_append(resp_conn_t *c, int argc, const char *const *argv, const size_t *lens);

/* Appends `PUBLISH channel payload`, formatted by hand (the publisher's hot
 * path). 0 or -ENOMEM. */
int resp_append_publish(resp_conn_t *c, const char *channel, size_t chlen, const char *payload,
                        size_t len);

/* Bytes appended and not yet sent. */
static inline size_t resp_pending(const resp_conn_t *c)
{
    return c->out_end - c->out_start;
}

/* Sends what the socket takes now: 0 when everything went out, 1 when some
 * is left (wait for POLLOUT), or -errno (-EPIPE: the peer closed). */
int resp_write(resp_conn_t *c);

/* One read(): the number of bytes received, 0 when there is nothing to read
 * now, -ECONNRESET at end of stream, or -errno. Invalidates the strings of
 * replies parsed before. */
ssize_t resp_read(resp_conn_t *c);

/* Takes the next complete reply off the input buffer: 1 and *r filled, 0
 * when more bytes are needed, -EPROTO when the bytes are not RESP2 this
 * client understands. */
int resp_next(resp_conn_t *c, resp_reply_t *r);

/* Sends what is pending and waits up to timeout_ms for one reply (setup
 * only: PING, SUBSCRIBE). 0, -ETIMEDOUT, or another -errno. */
int resp_wait_reply(resp_conn_t *c, resp_reply_t *r, int timeout_ms);

/* Does value v hold exactly the NUL-terminated string s? */
int resp_value_is(const resp_value_t *v, const char *s);

#endif

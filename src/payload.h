/*
 * payload.h - what subscribers are sent: refcounted buffers of RESP bytes.
 *
 * A tick is encoded once into one buffer holding its whole `message` frame:
 *
 *   *3\r\n$7\r\nmessage\r\n | $<n>\r\n<channel>\r\n$<n>\r\n<payload>\r\n
 *   <- PAYLOAD_MESSAGE_HEAD -><------------------ the tail ------------------>
 *
 * Channel subscribers are sent the whole buffer. A pmessage differs only in
 * its head, "*4\r\n$8\r\npmessage\r\n$<n>\r\n<pattern>\r\n", which is built
 * once per pattern (payload_pattern_head()) and sent followed by the tail of
 * the same tick buffer: one encoding serves every subscriber of either kind.
 * Replies to commands are payloads too (payload_alloc()), so an output queue
 * is a plain list of (payload, byte range) references.
 *
 * Buffers come from the daemon's heap (a frame is a couple of hundred bytes,
 * one pool block) and go back the moment the last reference is released. A
 * tick buffer remembers when the tick was received and when a write that
 * contained it last completed; its release observes the difference: the
 * tick's latency from receipt until written to every subscriber socket.
 */
#ifndef TICKD_SRC_PAYLOAD_H
#define TICKD_SRC_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/alloc.h"
#include "feed/market.h"
#include "histogram.h"

enum payload_format {
    PAYLOAD_JSON = 0, /* {"sym":"AAPL","kind":"trade","price":"101.2500",...} */
    PAYLOAD_CSV = 1,  /* the feed/csv.h line, without its newline */
};

#define PAYLOAD_MESSAGE_HEAD 17                   /* strlen("*3\r\n$7\r\nmessage\r\n") */
#define PAYLOAD_CHANNEL_MAX  (6 + SYMBOL_MAX_LEN) /* "trade." or "quote." and a symbol */
#define PAYLOAD_TEXT_MAX     256                  /* a tick as JSON or CSV never needs more */

enum payload_flags {
    PAYLOAD_TICK = 1,    /* a live tick: its release observes the latency */
    PAYLOAD_WRITTEN = 2, /* some write containing it completed, at ts_written */
};

typedef struct payload {
    uint32_t refcnt;    /* queue entries holding it, plus the encoder's own while fanning out */
    uint32_t len;       /* bytes of data */
    uint32_t flags;     /* enum payload_flags */
    int64_t ts_recv;    /* PAYLOAD_TICK: when tickd received the tick, ns, CLOCK_REALTIME */
    int64_t ts_written; /* PAYLOAD_WRITTEN: when the last write containing it completed */
    char data[];        /* the RESP bytes */
} payload_t;

/* A buffer for size bytes of data, with one reference, len 0 and no flags;
 * NULL when memory runs out. */
payload_t *payload_alloc(heap_t *heap, size_t size);

static inline void payload_incref(payload_t *p)
{
    p->refcnt++;
}

void payload__free(heap_t *heap, histogram_t *latency, payload_t *p);

/* Drops a reference; the last one observes the latency of a written tick in
 * latency and frees the buffer. */
static inline void payload_release(heap_t *heap, histogram_t *latency, payload_t *p)
{
    if (HEAP_UNLIKELY(--p->refcnt == 0))
        payload__free(heap, latency, p);
}

/* The channel of a tick, "trade.AAPL" or "quote.AAPL", into buf (no NUL);
 * returns its length. */
size_t payload_channel(const tick_t *t, char buf[PAYLOAD_CHANNEL_MAX]);

/* The tick as text in format (enum payload_format) into buf[0..cap), no NUL.
 * Returns the length, -EINVAL for a tick the CSV format cannot express (a
 * negative price, a trade of size 0), or -ENOBUFS (PAYLOAD_TEXT_MAX always
 * suffices). */
int payload_format_tick(const tick_t *t, int format, char *buf, size_t cap);

/* The message frame of tick t on channel[0..chlen), encoded in format, with
 * one reference. flags is 0 or PAYLOAD_TICK (a live tick, not a snapshot).
 * 0, -EINVAL (see payload_format_tick) or -ENOMEM. */
int payload_message(heap_t *heap, const tick_t *t, int format, const char *channel, size_t chlen,
                    uint32_t flags, payload_t **out);

/* The pmessage head of pattern[0..len), with one reference. 0 or -ENOMEM. */
int payload_pattern_head(heap_t *heap, const char *pattern, size_t len, payload_t **out);

#endif

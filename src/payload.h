/*
 * payload.h - what subscribers are sent: refcounted references to RESP bytes.
 *
 * A payload is either a block of its own (command replies, the pmessage head
 * of a pattern, snapshot frames: payload_alloc()) or a span of the fan-out
 * stream (fanout.h): the message and pmessage frames of the ticks written in
 * one chunk between two flushes, shared by every subscriber that gets any
 * of them. An output queue is a plain list of (payload, byte range)
 * references either way.
 *
 * A message frame is
 *
 *   *3\r\n$7\r\nmessage\r\n | $<n>\r\n<channel>\r\n$<n>\r\n<payload>\r\n
 *   <- PAYLOAD_MESSAGE_HEAD -><------------------ the tail ------------------>
 *
 * and a pmessage differs only in its head, "*4\r\n$8\r\npmessage\r\n$<n>\r\n
 * <pattern>\r\n", built once per pattern and protocol (payload_pattern_head()).
 * A RESP3 client (HELLO 3) gets the same frames as push frames: the one
 * difference is the first byte, '>' instead of '*', so the tail of a message
 * frame is the same bytes in both protocols.
 * payload_put_frame() writes either into the stream; a pattern too long to
 * copy per tick is sent as its head followed by the tail of the message
 * frame instead.
 *
 * A span remembers when each of its ticks was received and when a write that
 * contained it last completed; its release observes, for every tick, the
 * difference: the tick's latency from receipt until written to every
 * subscriber socket. Blocks come from the daemon's heap and go back the
 * moment the last reference is released.
 *
 * The text inside a frame, a tick as JSON or CSV, and the channel it is sent
 * on are tick_format.h's.
 */
#ifndef TICKD_SRC_PAYLOAD_H
#define TICKD_SRC_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/alloc.h"
#include "feed/digits.h"
#include "feed/market.h"
#include "src/histogram.h"
#include "src/tick_format.h"

#define PAYLOAD_MESSAGE_TEXT "*3\r\n$7\r\nmessage\r\n" /* the head of a message frame */
#define PAYLOAD_PUSH_TEXT    ">3\r\n$7\r\nmessage\r\n" /* the same in RESP3: a push */
#define PAYLOAD_MESSAGE_HEAD 17                        /* the length of either */

/* The protocol a frame is written for; also an index (pubsub keeps a
 * fan-out stream per protocol). */
enum payload_proto {
    PAYLOAD_RESP2 = 0, /* arrays: "*3", "*4" */
    PAYLOAD_RESP3 = 1, /* push frames: ">3", ">4" */
    PAYLOAD_NPROTO = 2,
};

enum payload_flags {
    PAYLOAD_TICK = 1,    /* a span of live ticks: its release observes their latency */
    PAYLOAD_WRITTEN = 2, /* some write containing it completed, at ts_written */
};

typedef struct fanout_chunk fanout_chunk_t;

typedef struct payload {
    uint32_t refcnt;       /* queue entries holding it, plus the stream's own while open */
    uint32_t len;          /* bytes of data */
    uint32_t flags;        /* enum payload_flags */
    uint32_t nticks;       /* PAYLOAD_TICK: ticks with frames in it, received at ts_recv[] */
    int64_t ts_written;    /* PAYLOAD_WRITTEN: when the last write containing it completed */
    char *data;            /* the RESP bytes: in chunk, or right after this header */
    fanout_chunk_t *chunk; /* the stream chunk holding a span, NULL for a block of its own */
    int64_t *ts_recv;      /* PAYLOAD_TICK: nticks receipt times (ns, CLOCK_REALTIME), in chunk */
    uint64_t pos;          /* a span: stream position of data[0] (fanout.h) */
} payload_t;

/* A buffer for size bytes of data, with one reference, len 0 and no flags;
 * NULL when memory runs out. */
payload_t *payload_alloc(heap_t *heap, size_t size);

static inline void payload_incref(payload_t *p)
{
    p->refcnt++;
}

void payload__free(heap_t *heap, histogram_t *latency, payload_t *p);

/* Drops a reference; the last one observes the latency of a written span's
 * ticks in latency and frees the block (a span gives its chunk back). */
static inline void payload_release(heap_t *heap, histogram_t *latency, payload_t *p)
{
    if (HEAP_UNLIKELY(--p->refcnt == 0))
        payload__free(heap, latency, p);
}

/* The head of a message frame in proto (enum payload_proto),
 * PAYLOAD_MESSAGE_HEAD bytes. */
static inline const char *payload_message_head(int proto)
{
    return proto == PAYLOAD_RESP3 ? PAYLOAD_PUSH_TEXT : PAYLOAD_MESSAGE_TEXT;
}

/* Bytes of "$<n>\r\n"; a channel's or a tick's length, below 100,
 * without counting digits. */
static inline size_t payload_bulk_len_size(size_t n)
{
    return n < 10 ? 4 : n < 100 ? 5 : 3 + digits_count(n);
}

/* Bytes of a frame: a head of hlen, then channel and text as two bulks.
 * Inline: the fan-out asks it for every tick. */
static inline size_t payload_frame_size(size_t hlen, size_t chlen, size_t n)
{
    return hlen + payload_bulk_len_size(chlen) + chlen + 2 + payload_bulk_len_size(n) + n + 2;
}

/* Writes head[0..hlen), channel[0..chlen) and text[0..n) as a message (head
 * payload_message_head()) or pmessage (a pattern's head) frame at dst;
 * returns its length, payload_frame_size(hlen, chlen, n). */
size_t payload_put_frame(char *dst, const char *head, size_t hlen, const char *channel,
                         size_t chlen, const char *text, size_t n);

/* The message frame of tick t on channel[0..chlen), encoded in format, in
 * protocol proto (enum payload_proto), in a block of its own with one
 * reference (a snapshot). 0, -EINVAL (see payload_format_tick) or -ENOMEM. */
int payload_message(heap_t *heap, const tick_t *t, int format, int proto, const char *channel,
                    size_t chlen, payload_t **out);

/* The pmessage head of pattern[0..len) in protocol proto, with one
 * reference. 0 or -ENOMEM. */
int payload_pattern_head(heap_t *heap, const char *pattern, size_t len, int proto, payload_t **out);

#endif

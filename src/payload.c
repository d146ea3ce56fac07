/*
 * payload.c - the shared RESP frames subscribers are sent, and the buffers'
 * life.
 *
 * Runs once per tick that has at least one subscriber: the tick's text
 * (tick_format.c) is framed as a message or pmessage by hand, digits and
 * all, into the fan-out stream (fanout.h) or, for a snapshot, into one
 * exact-size heap block: no printf, no system allocator. A payload's last
 * release observes its ticks' latency and gives the block (or the stream
 * chunk) back.
 */
#include <errno.h>
#include <string.h>

#include "feed/digits.h"
#include "src/fanout.h"
#include "src/payload.h"

payload_t *payload_alloc(heap_t *heap, size_t size)
{
    payload_t *p = heap_alloc(heap, sizeof(payload_t) + size);
    if (p == NULL)
        return NULL;
    p->refcnt = 1;
    p->len = 0;
    p->flags = 0;
    p->nticks = 0;
    p->ts_written = 0;
    p->data = (char *)(p + 1);
    p->chunk = NULL;
    p->ts_recv = NULL;
    p->pos = 0;
    return p;
}

void payload__free(heap_t *heap, histogram_t *latency, payload_t *p)
{
    const uint32_t both = PAYLOAD_TICK | PAYLOAD_WRITTEN;
    if ((p->flags & both) == both) {
        for (uint32_t i = 0; i < p->nticks; i++) {
            int64_t ns = p->ts_written - p->ts_recv[i];
            histogram_observe(latency, ns > 0 ? (double)ns / 1e9 : 0.0);
        }
    }
    if (p->chunk != NULL)
        fanout_chunk_release(p->chunk);
    heap_free(heap, p);
}

/* "$<n>\r\n" */
/* $<n>\r\n; a channel's or a tick's length, below 100, without the
 * general loop. */
static inline char *put_bulk_len(char *p, size_t n)
{
    *p++ = '$';
    if (n < 10) {
        *p++ = (char)('0' + n);
    } else if (n < 100) {
        memcpy(p, &digits_pairs[2 * n], 2);
        p += 2;
    } else {
        p = digits_u64(p, n);
    }
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

size_t payload_put_frame(char *dst, const char *head, size_t hlen, const char *channel,
                         size_t chlen, const char *text, size_t n)
{
    char *w = dst;
    if (hlen == PAYLOAD_MESSAGE_HEAD) /* nearly always: a copy of known size, inline */
        memcpy(w, head, PAYLOAD_MESSAGE_HEAD);
    else
        memcpy(w, head, hlen);
    w += hlen;
    w = put_bulk_len(w, chlen);
    memcpy(w, channel, chlen);
    w += chlen;
    *w++ = '\r';
    *w++ = '\n';
    w = put_bulk_len(w, n);
    memcpy(w, text, n);
    w += n;
    *w++ = '\r';
    *w++ = '\n';
    return (size_t)(w - dst);
}

int payload_message(heap_t *heap, const tick_t *t, int format, int proto, const char *channel,
                    size_t chlen, payload_t **out)
{
    char text[PAYLOAD_TEXT_MAX];
    int n = payload_format_tick(t, format, text, sizeof text);
    if (n < 0)
        return n;
    payload_t *p = payload_alloc(heap, payload_frame_size(PAYLOAD_MESSAGE_HEAD, chlen, (size_t)n));
    if (p == NULL)
        return -ENOMEM;
    p->len = (uint32_t)payload_put_frame(p->data, payload_message_head(proto), PAYLOAD_MESSAGE_HEAD,
                                         channel, chlen, text, (size_t)n);
    *out = p;
    return 0;
}

int payload_pattern_head(heap_t *heap, const char *pattern, size_t len, int proto, payload_t **out)
{
    static const char head[] = "*4\r\n$8\r\npmessage\r\n";
    payload_t *p = payload_alloc(heap, sizeof head - 1 + payload_bulk_len_size(len) + len + 2);
    if (p == NULL)
        return -ENOMEM;
    char *w = p->data;
    memcpy(w, head, sizeof head - 1);
    w[0] = proto == PAYLOAD_RESP3 ? '>' : '*';
    w += sizeof head - 1;
    w = put_bulk_len(w, len);
    memcpy(w, pattern, len);
    w += len;
    *w++ = '\r';
    *w++ = '\n';
    p->len = (uint32_t)(w - p->data);
    *out = p;
    return 0;
}

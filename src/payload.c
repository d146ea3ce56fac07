/*
 * payload.c - encoding ticks into shared RESP frames, and the buffers' life.
 *
 * Runs once per tick that has at least one subscriber, so the encoders write
 * digits by hand into a stack buffer, from which the frames are copied into
 * the fan-out stream (fanout.h) or, for a snapshot, into one exact-size heap
 * block: no printf, no system allocator. The JSON has a fixed key order
 * and never needs escaping (symbols are A-Z 0-9 . -); prices are strings so
 * that no client turns them into floating point.
 */
#include <errno.h>
#include <string.h>

#include "src/fanout.h"
#include "feed/csv.h"
#include "feed/digits.h"
#include "feed/price.h"
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

static char *put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return digits_u64(p, 0 - (uint64_t)v);
    }
    return digits_u64(p, (uint64_t)v);
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* "<key>":"<price>" */
static char *put_price(char *p, const char *key, int64_t price)
{
    p = put_str(p, key);
    *p++ = '"';
    p = price_put(p, price);
    *p++ = '"';
    return p;
}

size_t payload_channel(const tick_t *t, char buf[PAYLOAD_CHANNEL_MAX])
{
    memcpy(buf, t->kind == TICK_TRADE ? "trade." : "quote.", 6);
    memcpy(buf + 6, t->sym->name, t->sym->len);
    return 6 + (size_t)t->sym->len;
}

static size_t format_json(const tick_t *t, char *buf)
{
    char *p = buf;
    p = put_str(p, "{\"sym\":\"");
    memcpy(p, t->sym->name, t->sym->len);
    p += t->sym->len;
    if (t->kind == TICK_TRADE) {
        p = put_str(p, "\",\"kind\":\"trade\",");
        p = put_price(p, "\"price\":", t->price);
        p = put_str(p, ",\"size\":");
        p = digits_u64(p, t->size);
        if (t->side == 'B' || t->side == 'S') { /* an unknown side has no key */
            p = put_str(p, ",\"side\":\"");
            *p++ = t->side;
            *p++ = '"';
        }
    } else {
        p = put_str(p, "\",\"kind\":\"quote\",");
        p = put_price(p, "\"bid\":", t->price);
        p = put_str(p, ",\"bid_size\":");
        p = digits_u64(p, t->size);
        p = put_price(p, ",\"ask\":", t->ask);
        p = put_str(p, ",\"ask_size\":");
        p = digits_u64(p, t->ask_size);
    }
    p = put_str(p, ",\"ts\":");
    p = put_i64(p, t->ts_exch);
    p = put_str(p, ",\"seq\":");
    p = digits_u64(p, t->seq);
    *p++ = '}';
    return (size_t)(p - buf);
}

static int format_csv(const tick_t *t, char *buf)
{
    csv_tick_t ct;
    memset(&ct, 0, sizeof ct);
    ct.kind = t->kind == TICK_TRADE ? CSV_TRADE : CSV_QUOTE;
    memcpy(ct.symbol, t->sym->name, t->sym->len);
    ct.ts_ns = (uint64_t)t->ts_exch;
    if (t->kind == TICK_TRADE) {
        ct.trade.price = t->price;
        ct.trade.size = t->size;
        ct.trade.side = t->side;
    } else {
        ct.quote.bid = t->price;
        ct.quote.bid_size = t->size;
        ct.quote.ask = t->ask;
        ct.quote.ask_size = t->ask_size;
    }
    int n = csv_format(&ct, buf, CSV_FORMAT_MAX);
    return n < 0 ? n : n - 1; /* without the "\n" */
}

int payload_format_tick(const tick_t *t, int format, char *buf, size_t cap)
{
    /* The longest JSON (a quote with every number at its widest) is under
     * 200 bytes; a CSV line is under CSV_FORMAT_MAX. */
    char tmp[PAYLOAD_TEXT_MAX];
    char *out = cap >= PAYLOAD_TEXT_MAX ? buf : tmp;
    int n;

    if (format == PAYLOAD_CSV)
        n = format_csv(t, out);
    else
        n = (int)format_json(t, out);
    if (n < 0)
        return n;
    if ((size_t)n > cap)
        return -ENOBUFS;
    if (out != buf)
        memcpy(buf, tmp, (size_t)n);
    return n;
}

/* Bytes of "$<n>\r\n". */
static size_t bulk_len_size(size_t n)
{
    return 1 + digits_count(n) + 2;
}

/* "$<n>\r\n" */
static char *put_bulk_len(char *p, size_t n)
{
    *p++ = '$';
    p = digits_u64(p, n);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

size_t payload_frame_size(size_t hlen, size_t chlen, size_t n)
{
    return hlen + bulk_len_size(chlen) + chlen + 2 + bulk_len_size(n) + n + 2;
}

size_t payload_put_frame(char *dst, const char *head, size_t hlen, const char *channel,
                         size_t chlen, const char *text, size_t n)
{
    char *w = dst;
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
    payload_t *p = payload_alloc(heap, sizeof head - 1 + bulk_len_size(len) + len + 2);
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

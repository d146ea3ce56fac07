/*
 * fanout.c - the fan-out stream's chunks and spans (see fanout.h).
 *
 * The stream holds one reference to the chunk it fills and one to the open
 * span; a span holds one to its chunk. A chunk is left for a fresh one when
 * a tick's frames and receipt time no longer fit between its frames and its
 * receipt times; it lives on while any span in it is queued somewhere, and
 * its last release files it on the spare list (or frees it past
 * FANOUT_SPARE). Nothing here blocks; a heap allocation happens only when
 * no spare chunk is left, and once per span for its header.
 */
#include <string.h>

#include "src/fanout.h"

void fanout_init(fanout_t *b, heap_t *heap, histogram_t *latency)
{
    memset(b, 0, sizeof *b);
    b->heap = heap;
    b->latency = latency;
}

void fanout_chunk_release(fanout_chunk_t *c)
{
    TICKD_ASSERT(c->refcnt > 0);
    if (--c->refcnt != 0)
        return;
    fanout_t *b = c->owner;
    if (b->nspare < FANOUT_SPARE) {
        c->next = b->spare;
        b->spare = c;
        b->nspare++;
    } else {
        heap_free(b->heap, c);
    }
}

/* A chunk with one reference, empty, starting at stream position pos. */
static fanout_chunk_t *chunk_get(fanout_t *b, uint64_t pos)
{
    fanout_chunk_t *c = b->spare;
    if (c != NULL) {
        b->spare = c->next;
        b->nspare--;
    } else {
        c = heap_alloc(b->heap, sizeof(fanout_chunk_t));
        if (c == NULL)
            return NULL;
        c->owner = b;
    }
    c->next = NULL;
    c->refcnt = 1;
    c->used = 0;
    c->ts_floor = FANOUT_CHUNK_SIZE;
    c->pos = pos;
    return c;
}

void fanout_seal(fanout_t *b)
{
    if (b->span != NULL) {
        payload_release(b->heap, b->latency, b->span);
        b->span = NULL;
    }
}

payload_t *fanout_reserve(fanout_t *b, size_t need)
{
    fanout_chunk_t *c = b->chunk;

    TICKD_ASSERT(need <= FANOUT_TICK_MAX);
    if (HEAP_UNLIKELY(c == NULL || c->ts_floor - c->used < need + sizeof(int64_t))) {
        /* Let go of the full chunk first: if nothing queued points into it
         * any more, it is the one that comes back. */
        b->pos = fanout_position(b);
        fanout_seal(b);
        if (c != NULL)
            fanout_chunk_release(c);
        b->chunk = c = chunk_get(b, b->pos);
        if (c == NULL)
            return NULL;
    }
    if (HEAP_LIKELY(b->span != NULL)) {
        TICKD_ASSERT(fanout__span_ok(b));
        return b->span;
    }
    payload_t *p = heap_alloc(b->heap, sizeof(payload_t));
    if (p == NULL)
        return NULL;
    p->refcnt = 1;
    p->len = 0;
    p->flags = PAYLOAD_TICK;
    p->nticks = 0;
    p->ts_written = 0;
    p->data = c->data + c->used;
    p->chunk = c;
    p->ts_recv = (int64_t *)(void *)(c->data + c->ts_floor);
    p->pos = c->pos + c->used;
    c->refcnt++;
    b->span = p;
    TICKD_ASSERT(fanout__span_ok(b));
    return p;
}

void fanout_commit(fanout_t *b, size_t n, int64_t ts_recv)
{
    fanout_chunk_t *c = b->chunk;
    payload_t *p = b->span;

    /* What fanout_reserve() promised: room for the frames and the time. */
    TICKD_ASSERT(fanout__span_ok(b) &&
                 n + (ts_recv == FANOUT_UNTIMED ? 0 : sizeof(int64_t)) <= c->ts_floor - c->used);
    p->len += (uint32_t)n;
    c->used += (uint32_t)n;
    if (ts_recv == FANOUT_UNTIMED)
        return;
    c->ts_floor -= sizeof(int64_t);
    p->ts_recv--;
    *p->ts_recv = ts_recv;
    p->nticks++;
}

void fanout_free(fanout_t *b)
{
    fanout_seal(b);
    TICKD_ASSERT(b->chunk == NULL || b->chunk->refcnt == 1); /* no span left in it */
    b->pos = fanout_position(b);
    if (b->chunk != NULL)
        fanout_chunk_release(b->chunk);
    b->chunk = NULL;
    while (b->spare != NULL) {
        fanout_chunk_t *c = b->spare;
        b->spare = c->next;
        heap_free(b->heap, c);
    }
    b->nspare = 0;
}

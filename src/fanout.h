/*
 * fanout.h - the fan-out stream: the frames of every tick, end to end, in
 * pooled chunks, handed out as one span per flush.
 *
 * pubsub_tick() writes each tick's message and pmessage frames at the end of
 * the stream, one after the other, never per subscriber. The stream lives in
 * chunks of FANOUT_CHUNK_SIZE bytes: frames fill a chunk from its front, and
 * the receipt time of each tick is kept from its back (the latency metric
 * needs it), until the two meet and the next tick starts a fresh chunk.
 *
 * What the subscribers reference is a span (a payload_t, payload.h): the
 * frames written to one chunk since the last flush. A subscriber's output
 * queue takes bytes [off, end) of the open span, and the next frame it gets
 * simply moves end when it follows on in the stream, so a subscriber of one
 * channel or one pattern holds one queue entry per flush and is written
 * with one contiguous buffer, however many ticks the flush carried.
 * fanout_seal() (at every flush) closes the open span; the next tick opens
 * another after it in the same chunk, so quiet hours do not waste chunks.
 *
 * Chunks are reference counted by their spans, plus the stream's own on
 * the chunk being filled; the last release puts a chunk on a short spare
 * list (FANOUT_SPARE), so the steady state takes nothing from the system
 * allocator. Every byte comes from the daemon's heap.
 *
 * Invariants, checked by TICKD_ASSERT in debug builds (fanout__span_ok()):
 * a span's bytes and receipt times lie in its chunk; the open span is the
 * last one of the chunk being filled; positions (fanout_position,
 * payload_t.pos) count every byte of frames the stream ever wrote, so the
 * distance between two positions is what the stream produced between them.
 * Never blocks; one span header (a small heap block) per flush, no
 * allocation per tick.
 */
#ifndef TICKD_SRC_FANOUT_H
#define TICKD_SRC_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/alloc.h"
#include "alloc/assert.h"
#include "src/histogram.h"
#include "src/payload.h"

#define FANOUT_CHUNK_SIZE (64 * 1024) /* bytes of frames and receipt times in a chunk */
#define FANOUT_TICK_MAX   (16 * 1024) /* the frames of one tick reserve at most this */
#define FANOUT_SPARE      8           /* released chunks kept for reuse */

typedef struct fanout fanout_t;

struct fanout_chunk {
    fanout_t *owner;      /* the stream it returns to */
    fanout_chunk_t *next; /* on the spare list */
    uint32_t refcnt;      /* spans in it, plus the stream's own while it is filled */
    uint32_t used;        /* bytes of frames, from data[0] */
    uint32_t ts_floor;    /* receipt times fill data[ts_floor..FANOUT_CHUNK_SIZE) */
    uint64_t pos;         /* stream position of data[0] */
    _Alignas(8) char data[FANOUT_CHUNK_SIZE];
};

struct fanout {
    heap_t *heap;
    histogram_t *latency;  /* where released spans observe their ticks */
    fanout_chunk_t *chunk; /* being filled (one reference), or NULL */
    payload_t *span;       /* the open span, at the end of chunk (one reference), or NULL */
    fanout_chunk_t *spare; /* released chunks, at most FANOUT_SPARE */
    uint32_t nspare;
    uint64_t pos; /* the stream position while chunk is NULL */
};

void fanout_init(fanout_t *b, heap_t *heap, histogram_t *latency);

/* The open span, with room after its end (span->data + span->len) for need
 * bytes of frames (need <= FANOUT_TICK_MAX) and a tick's receipt time; opens
 * one, in a fresh chunk if this one is full. NULL when memory runs out. */
payload_t *fanout_reserve(fanout_t *b, size_t need);

/* The n bytes of frames written after the open span's end belong to it now,
 * and so does a tick received at ts_recv (its latency is observed when the
 * span is released, see payload.h), unless ts_recv is FANOUT_UNTIMED: the
 * frames of a tick whose latency another stream observes. */
#define FANOUT_UNTIMED INT64_MIN
void fanout_commit(fanout_t *b, size_t n, int64_t ts_recv);

/* Ends the open span: a flush. The next tick opens another. */
void fanout_seal(fanout_t *b);

/* Bytes of frames written so far, over the stream's life. */
static inline uint64_t fanout_position(const fanout_t *b)
{
    return b->chunk != NULL ? b->chunk->pos + b->chunk->used : b->pos;
}

/* The open span's invariants, for TICKD_ASSERT (alloc/assert.h): it is the
 * last span of the chunk being filled, its frames ending where the chunk's
 * do and its receipt times starting where the chunk's do, the two never
 * overlapping, and its position counting the bytes before it. */
static inline int fanout__span_ok(const fanout_t *b)
{
    const fanout_chunk_t *c = b->chunk;
    const payload_t *p = b->span;
    return c != NULL && p != NULL && p->chunk == c && c->refcnt >= 2 && c->used <= c->ts_floor &&
           c->ts_floor <= FANOUT_CHUNK_SIZE && p->data + p->len == c->data + c->used &&
           (const char *)p->ts_recv == c->data + c->ts_floor && p->pos + p->len == c->pos + c->used;
}

/* Drops a span's reference to its chunk: the last one puts it back. */
void fanout_chunk_release(fanout_chunk_t *c);

/* Seals, and frees the chunks: every span must have been released. */
void fanout_free(fanout_t *b);

#endif

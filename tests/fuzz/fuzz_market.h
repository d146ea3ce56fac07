/*
 * fuzz_market.h - what the feed harnesses share: a market on a heap of its
 * own, the ingest that feeds it, and the checks made when the input is used
 * up.
 *
 * Each input runs on a fresh heap, so that a crash reproduces from its input
 * alone. A harness opens a rig, hands it the input the way its format
 * arrives (stream chunks or datagrams), and closes it. Closing destroys the
 * market, lets go of the ticks the rig kept, runs a full collection and
 * aborts unless the heap is empty: no Tick, Symbol or Order alive, no block
 * in use, no large block, every heap invariant intact (heap_check).
 *
 * The first byte of every feed harness's input is a control byte; the rest is
 * the feed. It picks how the feed is delivered and how the heap is run:
 *
 *   bit 0     heap debug mode (fill patterns, guard bytes)
 *   bit 1     small collector thresholds, collection at every safe point
 *   bits 2-3  messages per ingest_run(): all, 1, 3 or 64; bit 3 also keeps
 *             the sink's ticks alive past market_destroy(), so that their
 *             symbols are left to the collector
 *   bit 4     pacing: the limit starts before everything and moves to the
 *             next message's timestamp each time ingest_run() stops there
 *   bits 5-7  largest chunk: the whole input, 1, 2, 3, 8, 64, 512 or 4096
 *             bytes; chunk lengths are drawn up to it from a generator
 *             seeded by the input
 *
 * Chunks are copied into buffers of their exact size, freed once
 * ingest_run() has used them up: a read past a chunk, or a pointer kept into
 * one, is an AddressSanitizer report.
 *
 * Every feed is also run a second time as one chunk with default settings,
 * and the two runs must agree on every tick (a digest of their fields, in
 * order) and on the ingest's counts: the result of a feed may not depend on
 * how it was cut up, paced or collected.
 */
#ifndef TICKD_TESTS_FUZZ_MARKET_H
#define TICKD_TESTS_FUZZ_MARKET_H

#include <stddef.h>
#include <stdint.h>

#include "feed/ingest.h"

#define FUZZ_KEEP 8 /* ticks the sink holds on to, like a subscriber queue */

typedef struct fuzz_rig {
    heap_t *heap;
    market_t *market;
    ingest_t ing;
    uint8_t ctl;      /* the control byte */
    int collect;      /* collect at safe points */
    uint64_t per_run; /* max messages per ingest_run() */
    int pacing;       /* move a time limit along */
    int64_t until;    /* the pacing limit */
    size_t max_chunk; /* 0: the whole input at once */
    uint64_t rng;     /* chunk lengths */
    tick_t *kept[FUZZ_KEEP];
    unsigned next_keep;
    uint64_t ticks;  /* ticks the sink saw */
    uint64_t digest; /* of their fields, in order */
} fuzz_rig_t;

/* Opens a rig for fmt with the settings of control byte ctl (0: defaults).
 * seed varies the chunk lengths. Aborts if the heap or market cannot be
 * made. */
void fuzz_rig_open(fuzz_rig_t *r, enum ingest_format fmt, uint8_t ctl, uint64_t seed);

/* Feeds a stream (not INGEST_MOLD) in chunks as the control byte says, then
 * ingest_finish(). */
void fuzz_rig_stream(fuzz_rig_t *r, const uint8_t *data, size_t len);

/* Feeds one MoldUDP64 datagram, copied to a buffer of its exact size. */
void fuzz_rig_packet(fuzz_rig_t *r, const uint8_t *pkt, size_t len);

/* A safe point between batches: collects if the control byte says so. */
void fuzz_rig_safe_point(fuzz_rig_t *r);

/* Checks the books (levels sorted, none empty, together holding exactly the
 * market's live orders), then destroys the market, drops the kept ticks,
 * collects, and aborts unless the heap came back empty. */
void fuzz_rig_close(fuzz_rig_t *r);

/* Aborts unless two rigs fed the same input made the same ticks and
 * counts; a and b may be closed already. */
void fuzz_rig_compare(const fuzz_rig_t *a, const fuzz_rig_t *b);

/* Prints what failed and aborts (a crash, for libFuzzer). */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Copies len bytes into a malloc'd buffer of exactly that size (at least one
 * byte is allocated); aborts when out of memory. */
void *fuzz_dup(const void *data, size_t len);

#endif

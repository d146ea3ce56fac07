/*
 * binfile.h - BinaryFILE framing of ITCH 5.0 messages, as in Nasdaq's
 * published daily files: each message is preceded by its length as a 2-byte
 * big-endian integer, and nothing else is in the file.
 *
 * A binfile_reader_t frames a byte stream that arrives in chunks of any
 * size (a whole mapped file is one chunk; a socket or read(2) loop gives many)
 * and yields whole messages. A message that lies inside the current chunk is
 * yielded in place, with no copy; only a message split across chunks is
 * copied, into a buffer of ITCH_MAX_LEN + 2 bytes inside the reader, which
 * therefore never holds more than one partial message and never grows.
 *
 * Every message yielded has a known type and exactly that type's length, so
 * itch_decode() cannot fail on it. Anything else is counted and skipped by
 * its declared length: a zero length, an unknown type, a length that is not
 * the type's (or exceeds the longest type, then the type is not looked at).
 * A stream that ends inside a message is reported by binfile_reader_finish().
 * A corrupt length prefix desynchronises everything after it; BinaryFILE has
 * no way to resynchronise, so the counters are how such a file is noticed.
 */
#ifndef TICKD_FEED_BINFILE_H
#define TICKD_FEED_BINFILE_H

#include <stddef.h>
#include <stdint.h>

#include "feed/itch.h"

#define BINFILE_PREFIX_LEN 2 /* the length before each message */

/* What a reader has seen; exported by the daemon as counters. */
typedef struct binfile_stats {
    uint64_t messages;     /* messages yielded */
    uint64_t zero_length;  /* length prefixes of 0, skipped */
    uint64_t unknown_type; /* messages whose type byte is no ITCH 5.0 type, skipped */
    uint64_t bad_length;   /* messages whose length is not their type's, skipped */
    uint64_t truncated;    /* streams that ended inside a message */
} binfile_stats_t;

/* Framing state over a chunked stream. Fields are private to binfile.c;
 * read `stats` freely. */
typedef struct binfile_reader {
    const uint8_t *chunk; /* the chunk being framed; the caller's, valid until next() returns 0 */
    size_t chunk_len;     /* its length */
    size_t pos;           /* bytes of it consumed so far */
    uint32_t skip;        /* bytes still to discard of a rejected message that runs past the
                             chunk (only messages longer than ITCH_MAX_LEN are skipped this way) */
    uint8_t part_len;     /* bytes held in part: 0 when no message is split */
    uint8_t part[BINFILE_PREFIX_LEN + ITCH_MAX_LEN]; /* the split message, prefix included */
    binfile_stats_t stats;
} binfile_reader_t;

void binfile_reader_init(binfile_reader_t *r);

/* Hand the reader the next chunk of the stream. Call it only when
 * binfile_reader_next() has returned 0: the previous chunk is then used up
 * (its unfinished tail, if any, is held in the reader). The chunk must stay
 * valid until binfile_reader_next() returns 0 again. */
void binfile_reader_push(binfile_reader_t *r, const uint8_t *chunk, size_t len);

/* binfile_reader_next() for everything its inline fast path leaves: a
 * split message, a skip, a bad or a last partial prefix. */
int binfile_reader_next_generic(binfile_reader_t *r, const uint8_t **msg, size_t *len);

/* The next whole message: returns 1 and sets *msg and *len (the message
 * without its prefix, valid until the next call), or 0 when the chunk is used
 * up and another is needed. Inline: the common case, a good message wholly
 * in the chunk with nothing pending, is a prefix read, a bounds test and the
 * type's length from itch_lens (what itch_check() tests; reading the type
 * byte only once the message is known to be inside the chunk); anything
 * else goes to binfile_reader_next_generic(), which judges and counts it. */
static inline int binfile_reader_next(binfile_reader_t *r, const uint8_t **msg, size_t *len)
{
    size_t pos = r->pos, avail = r->chunk_len - pos;
    if (__builtin_expect((r->skip | r->part_len) == 0 && avail >= BINFILE_PREFIX_LEN, 1)) {
        const uint8_t *p = r->chunk + pos;
        size_t n = ((size_t)p[0] << 8) | p[1];
        if (__builtin_expect(
                n - 1 < avail - BINFILE_PREFIX_LEN && itch_lens[p[BINFILE_PREFIX_LEN]] == n, 1)) {
            r->pos = pos + BINFILE_PREFIX_LEN + n;
            r->stats.messages++;
            *msg = p + BINFILE_PREFIX_LEN;
            *len = n;
            return 1;
        }
    }
    return binfile_reader_next_generic(r, msg, len);
}

/* End of stream: returns 0, or -ENODATA if it ended inside a message (counted
 * in stats.truncated). The reader is then empty and takes a new stream;
 * stats accumulate. */
int binfile_reader_finish(binfile_reader_t *r);

/* Write *msg with its length prefix into buf[0..cap). Returns the bytes
 * written, or the error of itch_encode() (nothing written). */
int binfile_encode(const itch_msg_t *msg, uint8_t *buf, size_t cap);

#endif

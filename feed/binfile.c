/*
 * binfile.c - BinaryFILE framing: length-prefixed ITCH messages over chunks.
 *
 * The fast path is a message wholly inside the current chunk: read the
 * prefix, check the message with itch_check(), yield a pointer into the
 * chunk. binfile.h has it inline for a good message with nothing pending;
 * binfile_reader_next_generic() here does it all, the rest included. The slow path finishes a
 * message split across chunks in r->part or discards the rest of a rejected oversized one
 * (r->skip); at most one of the two is ever pending.
 *
 * Invariants: pos <= chunk_len; part_len > 0 implies skip == 0; when
 * part_len >= 2, the prefix in part says at most ITCH_MAX_LEN, so part never
 * overflows; every read of the chunk is below chunk_len. next() returns 0 only
 * with the chunk used up (pos == chunk_len).
 */
#include "feed/binfile.h"

#include <string.h>

#include "feed/be.h"

void binfile_reader_init(binfile_reader_t *r)
{
    memset(r, 0, sizeof *r);
}

void binfile_reader_push(binfile_reader_t *r, const uint8_t *chunk, size_t len)
{
    r->chunk = chunk;
    r->chunk_len = len;
    r->pos = 0;
}

/* Count and judge one whole message: 1 to yield it, 0 if it was skipped.
 * The classification is the one resume() applies to a split message, so the
 * counters do not depend on where the chunks were cut. */
static int accept(binfile_reader_t *r, const uint8_t *p, size_t n)
{
    int rc = itch_check(p, n);
    if (__builtin_expect(rc == 0, 1)) {
        r->stats.messages++;
        return 1;
    }
    if (n == 0)
        r->stats.zero_length++;
    else if (n > ITCH_MAX_LEN)
        r->stats.bad_length++;
    else if (rc == ITCH_EUNKNOWN)
        r->stats.unknown_type++;
    else
        r->stats.bad_length++;
    return 0;
}

/* Continue a message split across chunks. Returns 1 with the message in
 * part, or 0 with either the chunk used up or the message skipped. */
static int resume(binfile_reader_t *r, const uint8_t **msg, size_t *len)
{
    const uint8_t *p = r->chunk + r->pos;
    size_t avail = r->chunk_len - r->pos;

    if (r->skip) {
        size_t n = avail < r->skip ? avail : r->skip;
        r->pos += n;
        r->skip -= (uint32_t)n;
        return 0;
    }
    if (r->part_len < BINFILE_PREFIX_LEN) {
        if (avail == 0)
            return 0;
        r->part[r->part_len++] = *p++;
        r->pos++;
        avail--;
        if (r->part_len < BINFILE_PREFIX_LEN)
            return 0;
        size_t n = be16_get(r->part);
        if (n > ITCH_MAX_LEN) {
            r->stats.bad_length++;
            r->part_len = 0;
            r->skip = (uint32_t)n;
            return 0;
        }
    }
    size_t need = BINFILE_PREFIX_LEN + be16_get(r->part) - r->part_len;
    size_t n = avail < need ? avail : need;
    memcpy(r->part + r->part_len, p, n);
    r->pos += n;
    r->part_len += (uint8_t)n;
    if (n < need)
        return 0;

    size_t mlen = (size_t)r->part_len - BINFILE_PREFIX_LEN;
    r->part_len = 0;
    if (!accept(r, r->part + BINFILE_PREFIX_LEN, mlen))
        return 0;
    *msg = r->part + BINFILE_PREFIX_LEN;
    *len = mlen;
    return 1;
}

int binfile_reader_next_generic(binfile_reader_t *r, const uint8_t **msg, size_t *len)
{
    for (;;) {
        if (__builtin_expect(r->skip != 0 || r->part_len != 0, 0)) {
            if (resume(r, msg, len))
                return 1;
            if (r->pos == r->chunk_len)
                return 0;
            continue;
        }

        const uint8_t *p = r->chunk + r->pos;
        size_t avail = r->chunk_len - r->pos;
        if (__builtin_expect(avail < BINFILE_PREFIX_LEN, 0)) {
            if (avail == 0)
                return 0;
            r->part[0] = p[0];
            r->part_len = 1;
            r->pos = r->chunk_len;
            return 0;
        }

        size_t n = be16_get(p);
        if (__builtin_expect(n <= avail - BINFILE_PREFIX_LEN, 1)) {
            r->pos += BINFILE_PREFIX_LEN + n;
            if (accept(r, p + BINFILE_PREFIX_LEN, n)) {
                *msg = p + BINFILE_PREFIX_LEN;
                *len = n;
                return 1;
            }
            continue;
        }

        /* The message runs past the chunk. */
        r->pos = r->chunk_len;
        if (n > ITCH_MAX_LEN) {
            r->stats.bad_length++;
            r->skip = (uint32_t)(n - (avail - BINFILE_PREFIX_LEN));
        } else {
            memcpy(r->part, p, avail);
            r->part_len = (uint8_t)avail;
        }
        return 0;
    }
}

int binfile_reader_finish(binfile_reader_t *r)
{
    int rc = 0;
    if (r->part_len != 0 || r->skip != 0) {
        r->stats.truncated++;
        rc = -ENODATA;
    }
    r->part_len = 0;
    r->skip = 0;
    r->chunk = NULL;
    r->chunk_len = 0;
    r->pos = 0;
    return rc;
}

int binfile_encode(const itch_msg_t *msg, uint8_t *buf, size_t cap)
{
    if (cap < BINFILE_PREFIX_LEN)
        return itch_msg_len(msg->type) ? ITCH_ENOBUFS : ITCH_EUNKNOWN;
    int n = itch_encode(msg, buf + BINFILE_PREFIX_LEN, cap - BINFILE_PREFIX_LEN);
    if (n < 0)
        return n;
    be16_put(buf, (uint16_t)n);
    return n + BINFILE_PREFIX_LEN;
}

/*
 * be.h - big-endian loads and stores for the wire formats (internal to feed/).
 *
 * Every integer on the ITCH, BinaryFILE and MoldUDP64 wires is unsigned and
 * big-endian. These helpers read and write them through memcpy, so they are
 * safe at any alignment and compile to one load or store plus a byte swap.
 * They never check bounds: the caller has already proven that the bytes are
 * there (a decoder checks the message length once, before the first load).
 */
#ifndef TICKD_FEED_BE_H
#define TICKD_FEED_BE_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define be__swap16(x) (x)
#define be__swap32(x) (x)
#define be__swap64(x) (x)
#else
#define be__swap16(x) __builtin_bswap16(x)
#define be__swap32(x) __builtin_bswap32(x)
#define be__swap64(x) __builtin_bswap64(x)
#endif

static inline uint16_t be16_get(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return be__swap16(v);
}

static inline uint32_t be32_get(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return be__swap32(v);
}

static inline uint64_t be64_get(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return be__swap64(v);
}

/* A 6-byte (48-bit) field, as ITCH timestamps are. */
static inline uint64_t be48_get(const uint8_t *p)
{
    return (uint64_t)be16_get(p) << 32 | be32_get(p + 2);
}

static inline void be16_put(uint8_t *p, uint16_t v)
{
    v = be__swap16(v);
    memcpy(p, &v, sizeof v);
}

static inline void be32_put(uint8_t *p, uint32_t v)
{
    v = be__swap32(v);
    memcpy(p, &v, sizeof v);
}

static inline void be64_put(uint8_t *p, uint64_t v)
{
    v = be__swap64(v);
    memcpy(p, &v, sizeof v);
}

/* Stores the low 48 bits of v; the caller guarantees v < 2^48. */
static inline void be48_put(uint8_t *p, uint64_t v)
{
    be16_put(p, (uint16_t)(v >> 32));
    be32_put(p + 2, (uint32_t)v);
}

#endif

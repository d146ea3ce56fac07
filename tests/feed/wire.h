/*
 * wire.h - test helpers shared by tests/feed: build wire bytes field by field
 * (big-endian, independently of feed/be.h, so the tests check the library
 * against the specifications rather than against itself), and a guard page
 * that faults on any read past the end of a buffer.
 */
#ifndef TICKD_TESTS_FEED_WIRE_H
#define TICKD_TESTS_FEED_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Bytes under construction. */
struct wire {
    uint8_t b[4096];
    size_t n;
};

/* An unsigned big-endian integer of `width` bytes. */
static inline void wire_uint(struct wire *w, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--)
        w->b[w->n++] = (uint8_t)(v >> (8 * i));
}

static inline void wire_char(struct wire *w, char c)
{
    w->b[w->n++] = (uint8_t)c;
}

/* An alpha field: left-justified, space padded to `width`. */
static inline void wire_alpha(struct wire *w, const char *s, size_t width)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < width; i++)
        w->b[w->n++] = (uint8_t)(i < n ? s[i] : ' ');
}

static inline void wire_bytes(struct wire *w, const void *p, size_t n)
{
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

/* Two pages: the second is PROT_NONE, so a buffer placed flush against it
 * faults on a read one byte past its end. */
struct guard {
    uint8_t *base;
    size_t page;
};

static inline int guard_open(struct guard *g)
{
    g->page = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, 2 * g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g->base = p == MAP_FAILED ? NULL : p;
    if (g->base == NULL)
        return -1;
    return mprotect(g->base + g->page, g->page, PROT_NONE);
}

/* Copy buf[0..n) so that it ends at the guard; returns the copy. */
static inline uint8_t *guard_place(struct guard *g, const void *buf, size_t n)
{
    uint8_t *p = g->base + g->page - n;
    memcpy(p, buf, n);
    return p;
}

static inline void guard_close(struct guard *g)
{
    munmap(g->base, 2 * g->page);
}

#endif

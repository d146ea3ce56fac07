/*
 * sink.c - a growable buffer in memory for generated days (sink.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/feed/sink.h"

int sink_write(void *ctx, const void *buf, size_t len)
{
    sink_t *s = ctx;
    if (len > SIZE_MAX / 2 - s->len)
        return -ENOMEM;
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 16;
        while (cap < s->len + len)
            cap *= 2;
        uint8_t *p = realloc(s->buf, cap);
        if (p == NULL)
            return -ENOMEM;
        s->buf = p;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
    return 0;
}

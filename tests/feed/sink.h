/*
 * sink.h - a growable buffer in memory that feed/gen.h's generators write a
 * day into, for the tests and the benchmarks that read the day back
 * (tests/feed/test_gen.c, bench_itch_decode.c). The library tickd_test_sink.
 */
#ifndef TICKD_TESTS_FEED_SINK_H
#define TICKD_TESTS_FEED_SINK_H

#include <stddef.h>
#include <stdint.h>

/* Zero-initialise it ({0}); buf is from malloc: free(s.buf) when done. */
typedef struct sink {
    uint8_t *buf; /* the bytes written, len of them; NULL until the first write */
    size_t len;
    size_t cap; /* bytes allocated at buf */
} sink_t;

/* A gen_write_fn (feed/gen.h): appends len bytes of buf to the sink_t at
 * ctx, growing it by doubling. 0, or -ENOMEM (the sink is left as it was). */
int sink_write(void *ctx, const void *buf, size_t len);

#endif

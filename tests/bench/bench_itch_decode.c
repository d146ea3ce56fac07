/*
 * bench_itch_decode.c - how fast a synthetic day generates, frames and
 * decodes in memory, on one core.
 *
 *   bench_itch_decode [messages [symbols [seed]]]   (default 10000000 500 1)
 *
 * Generates the day with gen_itch() into one buffer, then walks it with a
 * binfile_reader_t, first framing only, then framing and itch_decode()
 * of every message; each pass is run three times and the best is reported.
 * A checksum of decoded fields keeps the compiler from skipping the work.
 * No timing is asserted: ctest runs it briefly as a smoke test.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feed/binfile.h"
#include "feed/gen.h"
#include "feed/itch.h"
#include "tests/feed/sink.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One pass over the buffer: returns messages seen, adds to *sum. */
static uint64_t pass(const struct sink *s, int decode, uint64_t *sum)
{
    binfile_reader_t r;
    binfile_reader_init(&r);
    binfile_reader_push(&r, s->buf, s->len);
    const uint8_t *msg;
    size_t len;
    uint64_t n = 0;
    while (binfile_reader_next(&r, &msg, &len) == 1) {
        if (decode) {
            itch_msg_t m;
            if (itch_decode(msg, len, &m) != 0)
                abort();
            *sum += m.timestamp ^ m.stock_locate;
            if (m.type == ITCH_ADD_ORDER)
                *sum += m.add.order_ref;
        } else {
            *sum += len;
        }
        n++;
    }
    return n;
}

static double best_of_three(const struct sink *s, int decode, uint64_t *n, uint64_t *sum)
{
    double best = 1e30;
    for (int i = 0; i < 3; i++) {
        double t0 = now();
        *n = pass(s, decode, sum);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    gen_opts_t o = {.messages = 10000000, .symbols = 500, .seed = 1};
    if (argc > 1)
        o.messages = strtoull(argv[1], NULL, 10);
    if (argc > 2)
        o.symbols = (uint32_t)strtoul(argv[2], NULL, 10);
    if (argc > 3)
        o.seed = strtoull(argv[3], NULL, 10);

    struct sink s = {0};
    double t0 = now();
    int rc = gen_itch(&o, sink_write, &s);
    double tgen = now() - t0;
    if (rc != 0) {
        fprintf(stderr, "bench_itch_decode: gen_itch: %s\n", strerror(-rc));
        return 1;
    }
    printf("generate: %llu messages, %.1f MB in %.3f s (%.1f M msg/s)\n",
           (unsigned long long)o.messages, (double)s.len / 1e6, tgen,
           (double)o.messages / tgen / 1e6);

    uint64_t n, sum = 0;
    double tframe = best_of_three(&s, 0, &n, &sum);
    printf("frame:    %llu messages in %.4f s: %.1f M msg/s, %.2f ns/msg\n", (unsigned long long)n,
           tframe, (double)n / tframe / 1e6, tframe * 1e9 / (double)n);
    double tdec = best_of_three(&s, 1, &n, &sum);
    printf("decode:   %llu messages in %.4f s: %.1f M msg/s, %.2f ns/msg (frame + decode)\n",
           (unsigned long long)n, tdec, (double)n / tdec / 1e6, tdec * 1e9 / (double)n);
    printf("checksum: %llx\n", (unsigned long long)sum);
    free(s.buf);
    return n == o.messages ? 0 : 1;
}

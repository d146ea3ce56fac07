/*
 * bench_heapview.c - tickd-bench-heapview: what building /debug/heap.json
 * costs the loop (issue #19: at most 1 ms for 64 arenas of 64 pools).
 *
 *   tickd-bench-heapview [--arenas N] [--repeat K] [--quick]
 *
 * Builds a heap of the daemon's default geometry (1 MiB arenas of 16 KiB
 * pools: 64 pools an arena) with the object runtime and one registered type,
 * fills it with blocks of every size class (seeded, sizes 1..512 and objects)
 * until N arenas are mapped (default 64), then frees every third block so
 * that pools are part full and the free caches hold blocks, as a heap in use
 * does. Then it times heapview_render_json() (src/heapview.c, exactly what
 * the daemon runs on the loop for GET /debug/heap.json) K times (default
 * 200), into a body reused from one call to the next as the HTTP engine's
 * page buffer is, after one untimed warm-up call. Printed: the geometry, the
 * answer's size, the median, p99 (nearest rank) and worst time in
 * microseconds, and the target, met or MISSED (never asserted: a timing is
 * not a test).
 *
 * Exit status: 0 success, 1 the heap or the render failed, 2 bad usage.
 * --quick: N 8, K 20 unless given.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc/object.h"
#include "tests/bench/bench_host.h"
#include "src/heapview.h"

#define TARGET_US 1000.0

static const obj_type_t bench_type = {.name = "bench", .size = 48, .slot = 1};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef struct live {
    void **blocks;
    obj_t **objs;
    size_t nblocks, nobjs, cap;
} live_t;

/* Allocates until want arenas are mapped; 0 or -ENOMEM. */
static int fill(heap_t *heap, unsigned want, live_t *l)
{
    uint64_t rng = 0x9e3779b97f4a7c15u;
    heap_stats_t st;
    for (heap_get_stats(heap, &st); st.arenas < want; heap_get_stats(heap, &st)) {
        for (int i = 0; i < 1000; i++) {
            if (l->nblocks == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 4096;
                void **b = realloc(l->blocks, cap * sizeof(*b));
                obj_t **o = realloc(l->objs, cap * sizeof(*o));
                if (b != NULL)
                    l->blocks = b;
                if (o != NULL)
                    l->objs = o;
                if (b == NULL || o == NULL)
                    return -ENOMEM;
                l->cap = cap;
            }
            uint64_t r = next(&rng);
            if (r % 8 == 0) {
                obj_t *obj = obj_new(heap, &bench_type);
                if (obj == NULL)
                    return -ENOMEM;
                l->objs[l->nobjs++] = obj;
            } else {
                void *p = heap_alloc(heap, 1 + (size_t)(r >> 8) % HEAP_SMALL_MAX);
                if (p == NULL)
                    return -ENOMEM;
                l->blocks[l->nblocks++] = p;
            }
        }
    }
    for (size_t i = 0; i < l->nblocks; i += 3) {
        heap_free(heap, l->blocks[i]);
        l->blocks[i] = NULL;
    }
    return 0;
}

static void release(heap_t *heap, live_t *l)
{
    for (size_t i = 0; i < l->nblocks; i++)
        heap_free(heap, l->blocks[i]);
    for (size_t i = 0; i < l->nobjs; i++)
        obj_decref(heap, l->objs[i]);
    free(l->blocks);
    free(l->objs);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tickd-bench-heapview [--arenas N] [--repeat K] [--quick]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"arenas", required_argument, NULL, 'a'},
        {"repeat", required_argument, NULL, 'r'},
        {"quick", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long arenas = 0, repeat = 0;
    int quick = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'a':
            arenas = strtol(optarg, &end, 10);
            break;
        case 'r':
            repeat = strtol(optarg, &end, 10);
            break;
        case 'q':
            quick = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (end != NULL && (*end != '\0' || end == optarg)) {
            fprintf(stderr, "tickd-bench-heapview: --%s: not a number: \"%s\"\n",
                    c == 'a' ? "arenas" : "repeat", optarg);
            return 2;
        }
    }
    if (optind != argc || arenas < 0 || arenas > 4096 || repeat < 0 || repeat > 1000000) {
        usage(stderr);
        return 2;
    }
    if (arenas == 0)
        arenas = quick ? 8 : 64;
    if (repeat == 0)
        repeat = quick ? 20 : 200;

    heap_t *heap;
    live_t live = {0};
    if (heap_create(NULL, &heap) != 0 || obj_runtime_create(heap) != 0 ||
        obj_type_register(heap, &bench_type) != 0 || fill(heap, (unsigned)arenas, &live) != 0) {
        fprintf(stderr, "tickd-bench-heapview: cannot build a heap of %ld arenas: out of memory\n",
                arenas);
        return 1;
    }
    heap_stats_t st;
    heap_get_stats(heap, &st);
    metrics_snapshot_t s = {.heap = heap, .version = "bench"};
    http_body_t body = {0};
    double *us = malloc((size_t)repeat * sizeof(*us));
    int err = us == NULL ? -ENOMEM : heapview_render_json(&s, 1, &body);
    for (long i = 0; err == 0 && i < repeat; i++) {
        body.len = 0;
        double t0 = now_us();
        err = heapview_render_json(&s, 1, &body);
        us[i] = now_us() - t0;
    }
    if (err != 0) {
        fprintf(stderr, "tickd-bench-heapview: heapview_render_json: %s\n", strerror(-err));
        return 1;
    }
    char cpu[128];
    bench_cpu_model(cpu, sizeof(cpu));
    size_t len = body.len;
    double median = bench_median(us, (unsigned)repeat); /* sorts us */
    double p99 = us[(size_t)(0.99 * (double)repeat + 0.999999) - 1];
    double worst = us[repeat - 1];
    printf("tickd-bench-heapview on %s\n", cpu);
    printf("heap: %u arenas of %zu pools (%zu KiB arenas, %zu KiB pools), %.1f MiB used\n",
           st.arenas, st.arena_size / st.pool_size, st.arena_size >> 10, st.pool_size >> 10,
           (double)st.used_bytes / (1 << 20));
    printf("heap.json: %zu bytes, built %ld times\n", len, repeat);
    printf("build time: median %.1f us, p99 %.1f us, worst %.1f us\n", median, p99, worst);
    printf("target: median at most %.0f us for 64 arenas of 64 pools: %s\n", TARGET_US,
           median <= TARGET_US ? "met" : "MISSED");
    free(us);
    http_body_free(&body);
    release(heap, &live);
    obj_runtime_destroy(heap);
    heap_destroy(heap);
    return 0;
}

/*
 * bench_host.h - what the benchmarks share: what they say about the machine
 * they ran on, and the order statistics of their rounds.
 */
#ifndef TICKD_BENCH_HOST_H
#define TICKD_BENCH_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The CPU's "model name" from /proc/cpuinfo, or "unknown CPU". */
void bench_cpu_model(char *buf, size_t len);

/* qsort() order of doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);

/* The median of v[0..n), n > 0 (sorts v). */
double bench_median(double *v, unsigned n);

/* A TCP port that was free a moment ago on 127.0.0.1, or -1. */
int bench_free_port(void);

/* Starts argv[0] (looked up on PATH when it has no slash) with argv, its
 * stdout and stderr in the file log, killed when the benchmark dies. The
 * child's pid, or -1 when fork failed. */
pid_t bench_spawn(char *const argv[], const char *log);

/* Removes the temporary directory dir (mkdtemp()) with everything in it,
 * and empties dir so a second call does nothing: a benchmark calls it at
 * its end and when a signal stops it. */
void bench_remove_dir(char *dir);

/* A generated day in memory: gen_itch() (feed/gen.h) writes it through
 * bench_day_write(), which grows data by doubling (0 or -ENOMEM). */
typedef struct bench_day {
    uint8_t *data;
    size_t len, cap;
    uint64_t messages;
} bench_day_t;

int bench_day_write(void *ctx, const void *p, size_t len);

#endif

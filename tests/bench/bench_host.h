/*
 * bench_host.h - what the benchmarks say about the machine they ran on.
 */
#ifndef TICKD_BENCH_HOST_H
#define TICKD_BENCH_HOST_H

#include <stddef.h>

/* The CPU's "model name" from /proc/cpuinfo, or "unknown CPU". */
void bench_cpu_model(char *buf, size_t len);

#endif

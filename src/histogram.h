/*
 * histogram.h - cumulative histograms in Prometheus' shape (buckets by upper
 * bound, a +Inf bucket, a sum and a count), for latencies and pauses.
 *
 * Observing is a short linear scan over at most a couple of dozen bounds,
 * cheap enough for every tick.
 */
#ifndef TICKD_SRC_HISTOGRAM_H
#define TICKD_SRC_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_MAX_BOUNDS 24

typedef struct histogram {
    const double *bounds; /* upper bounds, seconds, ascending */
    size_t nbounds;
    uint64_t buckets[HISTOGRAM_MAX_BOUNDS]; /* observations <= bounds[i], NOT cumulative */
    uint64_t count;                         /* all observations (the +Inf bucket) */
    double sum;                             /* seconds */
} histogram_t;

/* Bounds for latencies from 1 us to 10 s. */
extern const double histogram_latency_bounds[];
extern const size_t histogram_latency_nbounds;

void histogram_init(histogram_t *h, const double *bounds, size_t nbounds);

static inline void histogram_observe(histogram_t *h, double seconds)
{
    size_t i = 0;
    while (i < h->nbounds && seconds > h->bounds[i])
        i++;
    if (i < h->nbounds)
        h->buckets[i]++;
    h->count++;
    h->sum += seconds;
}

#endif

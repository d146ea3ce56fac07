/*
 * histogram.c - the shared bucket bounds and initialisation.
 */
#include <string.h>

#include "src/histogram.h"

const double histogram_latency_bounds[] = {
    1e-6, 2.5e-6, 5e-6,   1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
    5e-3, 1e-2,   2.5e-2, 5e-2, 0.1,    0.25, 0.5,  1,      2.5,  5,    10,
};
const size_t histogram_latency_nbounds =
    sizeof(histogram_latency_bounds) / sizeof(histogram_latency_bounds[0]);

void histogram_init(histogram_t *h, const double *bounds, size_t nbounds)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->nbounds = nbounds < HISTOGRAM_MAX_BOUNDS ? nbounds : HISTOGRAM_MAX_BOUNDS;
}

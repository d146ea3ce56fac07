/*
 * gcstats.c - what the collector reports: per-generation totals, tracked
 * object counts and pause histograms.
 *
 * Every gc_collect() is timed from entry to return (finalizers and clears
 * included: that is the pause the event loop sees) and the pause lands in
 * the histogram of the generation collected. The buckets are fixed, 1 us to
 * 1 s in 1-2.5-5 steps, so that the daemon can export them as the Prometheus
 * histogram tickd_gc_pause_seconds{generation} without conversion; the
 * counters stored are per bucket and gc_get_stats() accumulates them. The
 * last GC_LAST_PAUSES pauses of each generation are kept as well, in a ring,
 * for /debug/heap.
 *
 * Reading the stats is O(generations x buckets) and never walks a list.
 */
#include "alloc/runtime.h"

const uint64_t gc_pause_bounds_ns[GC_PAUSE_NBUCKETS] = {
    1000,     2500,      5000,      10000,     25000,      50000,    100000,
    250000,   500000,    1000000,   2500000,   5000000,    10000000, 25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000,
};

void gc__record_pause(gc_gen_totals_t *totals, uint64_t ns)
{
    totals->last_ns[totals->pause_count % GC_LAST_PAUSES] = ns;
    totals->pause_count++;
    totals->pause_sum_ns += ns;
    for (unsigned i = 0; i < GC_PAUSE_NBUCKETS; i++) {
        if (ns <= gc_pause_bounds_ns[i]) {
            totals->pauses[i]++;
            return;
        }
    }
}

void gc_get_stats(const heap_t *heap, gc_stats_t *out)
{
    const struct obj_runtime *rt = heap->rt;
    for (unsigned g = 0; g < GC_NGENERATIONS; g++) {
        const gc_gen_totals_t *totals = &rt->totals[g];
        gc_generation_stats_t *st = &out->generations[g];
        st->collections = totals->collections;
        st->collected = totals->collected;
        st->uncollectable = totals->uncollectable;
        st->tracked = rt->tracked[g];
        st->count = rt->gens[g].count;
        st->threshold = rt->gens[g].threshold;
        uint64_t cumulative = 0;
        for (unsigned i = 0; i < GC_PAUSE_NBUCKETS; i++) {
            cumulative += totals->pauses[i];
            st->pause_buckets[i] = cumulative;
        }
        st->pause_count = totals->pause_count;
        st->pause_sum_ns = totals->pause_sum_ns;
        for (unsigned i = 0; i < GC_LAST_PAUSES; i++) /* newest first */
            st->last_pauses_ns[i] =
                i < totals->pause_count
                    ? totals->last_ns[(totals->pause_count - 1 - i) % GC_LAST_PAUSES]
                    : 0;
    }
    out->frozen = rt->tracked[GC_GEN_OUTSIDE];
    out->long_lived_total = rt->long_lived_total;
    out->long_lived_pending = rt->long_lived_pending;
}

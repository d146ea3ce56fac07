/*
 * bench_alloc_workloads.h - the workload loops, instantiated once per backend.
 *
 * Not an ordinary header but a template, included by bench_alloc_backends.c
 * once per kind of backend, so that each allocator runs its own tight loop:
 * tickd's inline heap_alloc()/heap_free() are inlined into it, the system
 * allocators are called through function pointers held in registers. Before
 * including it, define:
 *
 *   WL_FN(name)   the name of an instantiated function, e.g. tickd_##name
 *   WL_CTX        the type of the backend handle
 *   WL_BIND(ctx)  declarations binding the handle to the locals used below
 *   WL_ALLOC(n)   allocate n bytes
 *   WL_FREE(p)    free p
 *   WL_MAPPED()   bytes the allocator has mapped now, or -1 if it cannot say
 *
 * It defines WL_FN(once), a bench_once_fn, and #undefs the macros again.
 * Only the timed sections are timed: filling churn's book, draining the fifo
 * window and sampling memory are not. Every block gets bench_touch().
 */

/* Allocates and frees at once: the block is hot, the free list one deep. */
static uint64_t WL_FN(lifo)(WL_CTX ctx, size_t size, uint64_t pairs, uint64_t *checksum)
{
    WL_BIND(ctx);
    uint64_t sum = *checksum;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < pairs; i++) {
        void *p = WL_ALLOC(size);
        bench_touch(p, i, &sum);
        WL_FREE(p);
    }
    uint64_t ns = bench_now_ns() - t0;
    *checksum = sum;
    return ns;
}

/* A queue of BENCH_FIFO_WINDOW live blocks: each step frees the oldest and
 * allocates the newest. */
static uint64_t WL_FN(fifo)(WL_CTX ctx, size_t size, uint64_t pairs, void **ring,
                            uint64_t *checksum)
{
    WL_BIND(ctx);
    uint64_t sum = *checksum;
    for (size_t i = 0; i < BENCH_FIFO_WINDOW; i++) {
        ring[i] = WL_ALLOC(size);
        bench_touch(ring[i], i, &sum);
    }
    size_t oldest = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < pairs; i++) {
        WL_FREE(ring[oldest]);
        void *p = WL_ALLOC(size);
        bench_touch(p, i, &sum);
        ring[oldest] = p;
        if (++oldest == BENCH_FIFO_WINDOW)
            oldest = 0;
    }
    uint64_t ns = bench_now_ns() - t0;
    for (size_t i = 0; i < BENCH_FIFO_WINDOW; i++)
        WL_FREE(ring[i]);
    *checksum = sum;
    return ns;
}

/* An order book: live blocks of mixed sizes, each step replaces a random
 * one. Only the replacements are timed. */
static uint64_t WL_FN(churn)(WL_CTX ctx, uint64_t live, uint64_t steps,
                             const struct bench_inputs *in, uint64_t *checksum)
{
    WL_BIND(ctx);
    void **slots = in->slots;
    uint64_t sum = *checksum;
    for (uint64_t i = 0; i < live; i++) {
        slots[i] = WL_ALLOC(in->fill_sizes[i]);
        bench_touch(slots[i], i, &sum);
    }
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < steps; i++) {
        uint32_t slot = in->step_slots[i];
        WL_FREE(slots[slot]);
        void *p = WL_ALLOC(in->step_sizes[i]);
        bench_touch(p, i, &sum);
        slots[slot] = p;
    }
    uint64_t ns = bench_now_ns() - t0;
    for (uint64_t i = 0; i < live; i++)
        WL_FREE(slots[i]);
    *checksum = sum;
    return ns;
}

/* Allocates count blocks, then frees them all in the order they came. With
 * sample set (the space workload), measures memory in between, untimed. */
static uint64_t WL_FN(burst)(WL_CTX ctx, size_t size, uint64_t count, void **slots,
                             struct bench_rep *rep, int sample)
{
    WL_BIND(ctx);
    uint64_t sum = rep->checksum;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < count; i++) {
        slots[i] = WL_ALLOC(size);
        bench_touch(slots[i], i, &sum);
    }
    uint64_t ns = bench_now_ns() - t0;
    if (sample) {
        rep->live_rss = bench_rss_growth();
        rep->live_mapped = WL_MAPPED();
    }
    t0 = bench_now_ns();
    for (uint64_t i = 0; i < count; i++)
        WL_FREE(slots[i]);
    ns += bench_now_ns() - t0;
    rep->checksum = sum;
    return ns;
}

static void WL_FN(once)(void *ctx, const struct bench_job *job, const struct bench_inputs *in,
                        struct bench_rep *rep)
{
    switch (job->workload) {
    case BENCH_LIFO:
        rep->ns = WL_FN(lifo)(ctx, job->size, rep->pairs, &rep->checksum);
        break;
    case BENCH_FIFO:
        rep->ns = WL_FN(fifo)(ctx, job->size, rep->pairs, in->ring, &rep->checksum);
        break;
    case BENCH_CHURN:
        rep->ns = WL_FN(churn)(ctx, job->live, rep->pairs, in, &rep->checksum);
        break;
    case BENCH_BURST:
    case BENCH_SPACE:
        rep->ns =
            WL_FN(burst)(ctx, job->size, rep->pairs, in->slots, rep, job->workload == BENCH_SPACE);
        break;
    case BENCH_NWORKLOADS:
        break;
    }
}

#undef WL_FN
#undef WL_CTX
#undef WL_BIND
#undef WL_ALLOC
#undef WL_FREE
#undef WL_MAPPED

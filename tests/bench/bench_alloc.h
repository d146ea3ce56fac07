/*
 * bench_alloc.h - what the parts of tickd-bench-alloc share.
 *
 * tickd-bench-alloc runs the same allocation workloads against tickd's heap,
 * glibc malloc, jemalloc and mimalloc, each (workload, allocator) pair in a
 * process of its own so that resident memory is measured in isolation. The
 * parent (bench_alloc.c) plans the jobs, forks one child per job and prints
 * the results; the child (bench_alloc_child.c) prepares the inputs, measures
 * resident memory and drives the repetitions; the backends
 * (bench_alloc_backends.c) instantiate the workload loops of
 * bench_alloc_workloads.h once per allocator, so every allocator gets its own
 * tight loop and tickd's inline fast path is measured as its users get it.
 *
 * A child reports one struct bench_result through a pipe; it is smaller than
 * PIPE_BUF, so it arrives in one piece.
 */
#ifndef TICKD_BENCH_ALLOC_H
#define TICKD_BENCH_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_LIKELY(x)   __builtin_expect(!!(x), 1)
#define BENCH_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Timed repetitions of every measurement; the best one is reported. */
#define BENCH_REPS 3
/* Rounds of the lifo and fifo rows over all the allocators (bench_alloc.c). */
#define BENCH_ROUNDS 5
/* Live blocks in the fifo window (a tick queue). */
#define BENCH_FIFO_WINDOW 1000
/* Request sizes of the churn workload (mixed ticks), inclusive. */
#define BENCH_CHURN_MIN 32
#define BENCH_CHURN_MAX 128
/* Room for a child's note: an error message or a version. */
#define BENCH_NOTE_LEN 200

enum bench_workload {
    BENCH_LIFO,  /* allocate and free at once */
    BENCH_FIFO,  /* a window of live blocks, oldest freed first */
    BENCH_CHURN, /* many live blocks of mixed sizes, random replacement */
    BENCH_BURST, /* allocate very many blocks, free them all */
    BENCH_SPACE, /* many live blocks: memory used per byte requested */
    BENCH_NWORKLOADS
};

enum bench_allocator {
    BENCH_TICKD,
    BENCH_GLIBC,
    BENCH_JEMALLOC,
    BENCH_MIMALLOC,
    BENCH_NALLOCATORS
};

extern const char *const bench_workload_names[BENCH_NWORKLOADS];
extern const char *const bench_allocator_names[BENCH_NALLOCATORS];

/* One measurement to make, the same for every allocator. */
struct bench_job {
    enum bench_workload workload;
    enum bench_allocator allocator;
    size_t size;        /* request size; 0 for churn's mixed sizes */
    uint64_t live;      /* live blocks: churn's book, burst's and space's count */
    uint64_t steps;     /* churn: replacements to time */
    uint64_t target_ns; /* lifo, fifo: aim of one timed section */
};

/* Inputs prepared before the baseline is measured, identical for every
 * allocator (fixed seed). Mapped directly, never from an allocator under
 * test, and touched in advance so that they are part of the baseline. */
struct bench_inputs {
    void **slots;         /* job->live pointers (churn, burst, space) */
    void **ring;          /* BENCH_FIFO_WINDOW pointers (fifo) */
    uint8_t *fill_sizes;  /* churn: size of the initial block of each slot */
    uint8_t *step_sizes;  /* churn: size of the replacement at each step */
    uint32_t *step_slots; /* churn: slot replaced at each step */
};

/* What one repetition of a workload reads and measures. */
struct bench_rep {
    uint64_t pairs;      /* in: pairs to time (churn: steps; burst: blocks) */
    uint64_t ns;         /* out: duration of the timed section */
    uint64_t checksum;   /* in/out: folds every block address */
    int64_t live_rss;    /* out (space): VmRSS with every block live */
    int64_t live_mapped; /* out (space): the heap's mapped bytes then; -1 n/a */
};

enum bench_status {
    BENCH_OK = 0,
    BENCH_UNAVAILABLE = 1, /* the allocator could not be loaded: skip it */
    BENCH_FAILED = 2,      /* the measurement went wrong */
};

/* What a child reports. Byte counts are growth over the child's VmRSS at
 * start (after the inputs were prepared, before the allocator was
 * initialised); they are signed, since an allocator can hand back memory
 * that was resident before the start. */
struct bench_result {
    int status;                /* enum bench_status */
    char note[BENCH_NOTE_LEN]; /* why unavailable or failed; a probe's version */
    uint64_t pairs;            /* alloc/free pairs in one timed section */
    double ns_per_pair;        /* best of BENCH_REPS */
    double ns_first;           /* the first repetition (burst: page faults) */
    int64_t rss_before;        /* once the allocator is initialised */
    int64_t rss_after_free;    /* after the workload freed everything (max) */
    int64_t rss_peak;          /* VmHWM */
    int64_t mapped_peak;       /* tickd: arenas + large blocks; others: rss_peak */
    int64_t live_rss;          /* space: with every block live */
    int64_t live_mapped;       /* space, tickd: mapped bytes then; -1 otherwise */
    uint64_t requested;        /* space: bytes requested by the live blocks */
    uint64_t arena_size;       /* tickd: its arena size; 0 otherwise */
    uint64_t checksum;         /* keeps the work observable */
};

/* An allocator, loaded. tickd needs nothing loaded; the others are reached
 * through function pointers resolved once, as calls through the PLT are. */
struct bench_backend {
    enum bench_allocator id;
    void *dl;                   /* dlopen handle, NULL for tickd and glibc */
    void *(*malloc_fn)(size_t); /* NULL for tickd */
    void (*free_fn)(void *);
    char version[64];
};

/* A repetition of job->workload against one backend's instantiation. */
typedef void bench_once_fn(void *ctx, const struct bench_job *job, const struct bench_inputs *in,
                           struct bench_rep *rep);

/* bench_alloc_backends.c */
int bench_backend_open(enum bench_allocator id, struct bench_backend *out, char *why,
                       size_t whylen);
int bench_backend_run(struct bench_backend *b, const struct bench_job *job,
                      const struct bench_inputs *in, struct bench_result *res);

/* bench_alloc_child.c */
_Noreturn void bench_child_main(const struct bench_job *job, int fd);
_Noreturn void bench_probe_main(enum bench_allocator id, int fd);
void bench_drive(const struct bench_job *job, const struct bench_inputs *in, bench_once_fn *once,
                 void *ctx, struct bench_result *res);
uint64_t bench_now_ns(void);
int64_t bench_rss_growth(void);
_Noreturn void bench_out_of_memory(void);

/* Marks a fresh block as used: writes a byte into it (a volatile store the
 * compiler must keep) and folds its address into the checksum. */
static inline void bench_touch(void *p, uint64_t i, uint64_t *sum)
{
    if (BENCH_UNLIKELY(p == NULL))
        bench_out_of_memory();
    *(volatile unsigned char *)p = (unsigned char)i;
    *sum += (uintptr_t)p;
}

#endif

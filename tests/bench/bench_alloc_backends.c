/*
 * bench_alloc_backends.c - the four allocators tickd-bench-alloc compares.
 *
 * tickd's heap is called the way its users call it: the workload loops of
 * bench_alloc_workloads.h are instantiated with the inline heap_alloc() and
 * heap_free() in them, never behind a function pointer. glibc, jemalloc and
 * mimalloc share a second instantiation that calls malloc/free through
 * function pointers resolved once and held in registers, which costs what a
 * call through the PLT costs.
 *
 * jemalloc and mimalloc both export their own malloc and free, so they are
 * not linked: they are loaded with dlopen(RTLD_NOW | RTLD_LOCAL) inside the
 * child that measures them, and never touch the parent or another child. A
 * library that cannot be loaded makes its allocator unavailable (the parent
 * skips it with a note), not the run fail.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "tests/bench/bench_alloc.h"

#define JEMALLOC_SONAME "libjemalloc.so.2"
#define MIMALLOC_SONAME "libmimalloc.so.2"

/* Bytes tickd's heap has mapped now: arenas plus live large blocks. */
static int64_t tickd_mapped(const heap_t *heap)
{
    heap_stats_t stats;
    heap_get_stats(heap, &stats);
    return (int64_t)(stats.mapped_bytes + stats.large_bytes);
}

#define WL_FN(name)  tickd_##name
#define WL_CTX       heap_t *
#define WL_BIND(ctx) heap_t *const heap = (ctx)
#define WL_ALLOC(n)  heap_alloc(heap, (n))
#define WL_FREE(p)   heap_free(heap, (p))
#define WL_MAPPED()  tickd_mapped(heap)
#include "tests/bench/bench_alloc_workloads.h"

#define WL_FN(name) system_##name
#define WL_CTX      const struct bench_backend *
#define WL_BIND(ctx)                                                                               \
    void *(*const malloc_fn)(size_t) = (ctx)->malloc_fn;                                           \
    void (*const free_fn)(void *) = (ctx)->free_fn
#define WL_ALLOC(n) malloc_fn(n)
#define WL_FREE(p)  free_fn(p)
#define WL_MAPPED() ((int64_t)-1)
#include "tests/bench/bench_alloc_workloads.h"

/* Looks name up in the library behind dl, and only there: a handle's lookup
 * falls through to its dependencies, and glibc's malloc must not pass for
 * jemalloc's. */
static void *own_symbol(void *dl, const char *name, char *why, size_t whylen)
{
    struct link_map *map = NULL;
    Dl_info info;
    void *sym = dlsym(dl, name);

    if (sym == NULL) {
        snprintf(why, whylen, "%s", dlerror());
        return NULL;
    }
    if (dlinfo(dl, RTLD_DI_LINKMAP, &map) != 0 || dladdr(sym, &info) == 0 ||
        strcmp(info.dli_fname, map->l_name) != 0) {
        snprintf(why, whylen, "%s: %s resolves outside the library",
                 map ? map->l_name : "dlopen handle", name);
        return NULL;
    }
    return sym;
}

static int open_library(struct bench_backend *b, const char *soname, const char *malloc_name,
                        const char *free_name, char *why, size_t whylen)
{
    b->dl = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (b->dl == NULL) {
        snprintf(why, whylen, "%s", dlerror());
        return -ENOENT;
    }
    void *m = own_symbol(b->dl, malloc_name, why, whylen);
    void *f = m ? own_symbol(b->dl, free_name, why, whylen) : NULL;
    if (f == NULL) {
        dlclose(b->dl);
        return -ENOENT;
    }
    b->malloc_fn = (void *(*)(size_t))m;
    b->free_fn = (void (*)(void *))f;
    return 0;
}

static void jemalloc_version(struct bench_backend *b)
{
    int (*mallctl)(const char *, void *, size_t *, void *, size_t);
    const char *version = NULL;
    size_t len = sizeof version;

    mallctl = (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(b->dl, "mallctl");
    if (mallctl != NULL && mallctl("version", &version, &len, NULL, 0) == 0 && version != NULL)
        snprintf(b->version, sizeof b->version, "%.*s", (int)strcspn(version, "-"), version);
}

static void mimalloc_version(struct bench_backend *b)
{
    int (*mi_version)(void) = (int (*)(void))dlsym(b->dl, "mi_version");
    if (mi_version != NULL) {
        int v = mi_version();
        snprintf(b->version, sizeof b->version, "%d.%d.%d", v / 100, v / 10 % 10, v % 10);
    }
}

int bench_backend_open(enum bench_allocator id, struct bench_backend *out, char *why, size_t whylen)
{
    int rc = 0;

    memset(out, 0, sizeof *out);
    out->id = id;
    switch (id) {
    case BENCH_TICKD:
        snprintf(out->version, sizeof out->version, "%s", TICKD_VERSION);
        break;
    case BENCH_GLIBC:
        out->malloc_fn = malloc;
        out->free_fn = free;
        snprintf(out->version, sizeof out->version, "%s", gnu_get_libc_version());
        break;
    case BENCH_JEMALLOC:
        rc = open_library(out, JEMALLOC_SONAME, "malloc", "free", why, whylen);
        if (rc == 0)
            jemalloc_version(out);
        break;
    case BENCH_MIMALLOC:
        rc = open_library(out, MIMALLOC_SONAME, "mi_malloc", "mi_free", why, whylen);
        if (rc == 0)
            mimalloc_version(out);
        break;
    case BENCH_NALLOCATORS:
        rc = -EINVAL;
        break;
    }
    return rc;
}

/* One allocation and free of the workload's size: what brings an allocator
 * up (glibc's main arena, jemalloc's and mimalloc's thread state, tickd's
 * first arena) happens before rss_before is taken, for all four alike. */
static size_t warmup_size(const struct bench_job *job)
{
    return job->size ? job->size : BENCH_CHURN_MIN;
}

static int run_tickd(const struct bench_job *job, const struct bench_inputs *in,
                     struct bench_result *res)
{
    heap_options_t opts;
    heap_t *heap;
    heap_stats_t stats;

    heap_options_init(&opts);
    opts.debug = HEAP_DEBUG_OFF;
    int rc = heap_create(&opts, &heap);
    if (rc < 0) {
        snprintf(res->note, sizeof res->note, "heap_create: %s", strerror(-rc));
        return rc;
    }
    heap_free(heap, heap_alloc(heap, warmup_size(job)));

    bench_drive(job, in, tickd_once, heap, res);

    heap_get_stats(heap, &stats);
    res->mapped_peak = (int64_t)(stats.mapped_bytes_peak + stats.large_bytes_peak);
    res->arena_size = stats.arena_size;
    heap_destroy(heap);
    return 0;
}

static int run_system(struct bench_backend *b, const struct bench_job *job,
                      const struct bench_inputs *in, struct bench_result *res)
{
    b->free_fn(b->malloc_fn(warmup_size(job)));
    bench_drive(job, in, system_once, b, res);
    return 0;
}

int bench_backend_run(struct bench_backend *b, const struct bench_job *job,
                      const struct bench_inputs *in, struct bench_result *res)
{
    if (b->id == BENCH_TICKD)
        return run_tickd(job, in, res);
    return run_system(b, job, in, res);
}

/*
 * bench_gc.c - tickd-bench-gc: tickd's cycle collector against CPython's, on
 * the same object graph, in one run.
 *
 *   tickd-bench-gc [--objects N] [--repeat R] [--json] [--python CMD | --no-python]
 *
 * The graph: N tracked containers with two reference fields each (a node:
 * the C twin of a Python class with __slots__ = ('a', 'b')), paired into
 * N / 2 two-cycles (x.a = y, y.a = x), every x held by one root list. Nothing
 * is garbage: the collector has to prove all of it alive.
 *
 *  full   after a first full collection (which moves everything to the
 *         oldest generation), R timed full collections; reported per object.
 *  young  R times: 350 more pairs (700 objects) appended to the old root,
 *         then a timed collection of generation 0. It must cost the young
 *         objects only, whatever N is.
 *
 * The same is measured in CPython by bench_gc.py (beside this file; its path
 * is compiled in as TICKD_BENCH_GC_PY) run with CMD; its JSON line is read
 * from a pipe. CMD defaults to /usr/bin/python3 where it exists: the
 * distribution's interpreter, the CPython a fresh server runs, rather than
 * whatever python3 comes first on PATH (a pyenv build there can be slower,
 * which would flatter tickd); to python3 from PATH otherwise. Each figure
 * is the median of the R runs. The targets (full collection at most
 * 0.2 x CPython per object; young collection at most 50 us on top of
 * 1,000,000 old objects) are printed beside the numbers, never asserted:
 * the lead measures them on a quiet machine.
 *
 * With --json one object on one line: objects, repeat, tickd {full_ms,
 * full_ns_per_object, young_us, young_objects}, python {version, full_ms,
 * full_ns_per_object, young_us, young_objects} or null, full_ratio (tickd /
 * CPython per object, or null). Exit status: 0 success, 1 a measurement
 * failed, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc/object.h"

#ifndef TICKD_BENCH_GC_PY
#error "TICKD_BENCH_GC_PY must name bench_gc.py (set by tests/bench/CMakeLists.txt)"
#endif

#define DEFAULT_PYTHON     "/usr/bin/python3"
#define YOUNG_PAIRS        350
#define TARGET_FULL_RATIO  0.2
#define TARGET_YOUNG_US    50.0
#define TARGET_YOUNG_OLD_N 1000000

/* ---- the two types ---- */

typedef struct node {
    obj_t ob;
    obj_t *a;
    obj_t *b;
} node_t;

static const uint16_t node_fields[] = {offsetof(node_t, a), offsetof(node_t, b)};

static const obj_type_t node_type = {
    .name = "node",
    .size = sizeof(node_t),
    .slot = 0,
    .dealloc = obj_clear_fields,
    .traverse = obj_traverse_fields,
    .clear = obj_clear_fields,
    .fields = node_fields,
    .nfields = 2,
};

/* A growable array of references, which it hands to the collector whole
 * (obj_traverse_items), as CPython's list is one array of references. */
typedef struct list {
    obj_t ob;
    size_t len;
    size_t cap;
    obj_t **items;
} list_t;

static obj_t *const *list_items(const obj_t *self, size_t *len)
{
    const list_t *l = (const list_t *)self;
    *len = l->len;
    return l->items;
}

static void list_clear(heap_t *heap, obj_t *self)
{
    list_t *l = (list_t *)self;
    while (l->len > 0) {
        obj_t *item = l->items[--l->len];
        obj_decref(heap, item);
    }
}

static void list_dealloc(heap_t *heap, obj_t *self)
{
    list_clear(heap, self);
    heap_free(heap, ((list_t *)self)->items);
}

static const obj_type_t list_type = {
    .name = "list",
    .size = sizeof(list_t),
    .slot = 1,
    .dealloc = list_dealloc,
    .traverse = obj_traverse_items,
    .clear = list_clear,
    .items = list_items,
};

/* Appends item, taking over the caller's reference. */
static int list_append(heap_t *heap, list_t *l, obj_t *item)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        obj_t **items = heap_alloc(heap, cap * sizeof(*items));
        if (items == NULL)
            return -ENOMEM;
        if (l->len > 0)
            memcpy(items, l->items, l->len * sizeof(*items));
        heap_free(heap, l->items);
        l->items = items;
        l->cap = cap;
    }
    l->items[l->len++] = item;
    return 0;
}

/* Appends a new pair x <-> y to root. */
static int add_pair(heap_t *heap, list_t *root)
{
    node_t *x = (node_t *)obj_new(heap, &node_type);
    node_t *y = (node_t *)obj_new(heap, &node_type);
    if (x == NULL || y == NULL) {
        if (x != NULL)
            obj_decref(heap, &x->ob);
        if (y != NULL)
            obj_decref(heap, &y->ob);
        return -ENOMEM;
    }
    x->a = &y->ob; /* y's own reference moves into x */
    y->a = &x->ob;
    obj_incref(&x->ob);
    return list_append(heap, root, &x->ob);
}

/* ---- measurement ---- */

struct result {
    double full_ms;
    double full_ns_per_object;
    double young_us;
    unsigned young_objects;
    char version[32];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t median(uint64_t *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int run_tickd(size_t nobjects, unsigned repeat, struct result *out)
{
    heap_options_t opts;
    heap_options_init(&opts);
    opts.debug = HEAP_DEBUG_OFF;
    heap_t *heap;
    int err = heap_create(&opts, &heap);
    if (err != 0)
        return err;
    if ((err = obj_runtime_create(heap)) != 0) {
        heap_destroy(heap);
        return err;
    }

    uint64_t *full = calloc(repeat, sizeof(*full));
    uint64_t *young = calloc(repeat, sizeof(*young));
    list_t *root = (list_t *)obj_new(heap, &list_type);
    err = full == NULL || young == NULL || root == NULL ? -ENOMEM : 0;
    for (size_t i = 0; err == 0 && i < nobjects / 2; i++)
        err = add_pair(heap, root);
    if (err == 0 && gc_collect(heap, GC_NGENERATIONS - 1) != 0)
        err = -EIO; /* nothing is garbage */

    for (unsigned r = 0; err == 0 && r < repeat; r++) {
        uint64_t t0 = now_ns();
        int64_t n = gc_collect(heap, GC_NGENERATIONS - 1);
        full[r] = now_ns() - t0;
        if (n != 0)
            err = -EIO;
    }
    for (unsigned r = 0; err == 0 && r < repeat; r++) {
        for (unsigned i = 0; err == 0 && i < YOUNG_PAIRS; i++)
            err = add_pair(heap, root);
        uint64_t t0 = now_ns();
        int64_t n = gc_collect(heap, 0);
        young[r] = now_ns() - t0;
        if (err == 0 && n != 0)
            err = -EIO;
    }

    if (err == 0) {
        out->full_ms = (double)median(full, repeat) / 1e6;
        out->full_ns_per_object = (double)median(full, repeat) / (double)nobjects;
        out->young_us = (double)median(young, repeat) / 1e3;
        out->young_objects = 2 * YOUNG_PAIRS;
        snprintf(out->version, sizeof(out->version), "tickd");
    }
    if (root != NULL)
        obj_decref(heap, &root->ob);
    free(full);
    free(young);
    obj_runtime_destroy(heap);
    heap_destroy(heap);
    return err;
}

/* Value of "key": number in a one-line JSON object, or -1 when absent. */
static double json_number(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (p == NULL)
        return -1;
    return strtod(p + strlen(pat), NULL);
}

/* Runs bench_gc.py with python; 0, or -1 with a note on stderr. */
static int run_python(const char *python, size_t nobjects, unsigned repeat, struct result *out)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    char nbuf[32], rbuf[32];
    snprintf(nbuf, sizeof(nbuf), "%zu", nobjects);
    snprintf(rbuf, sizeof(rbuf), "%u", repeat);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execlp(python, python, TICKD_BENCH_GC_PY, "--objects", nbuf, "--repeat", rbuf, "--json",
               (char *)NULL);
        fprintf(stderr, "tickd-bench-gc: cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    char line[1024] = "";
    FILE *in = fdopen(fds[0], "r");
    int got = in != NULL && fgets(line, sizeof(line), in) != NULL;
    if (in != NULL)
        fclose(in);
    else
        close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "tickd-bench-gc: %s %s gave no result; CPython column left empty\n", python,
                TICKD_BENCH_GC_PY);
        return -1;
    }
    out->full_ms = json_number(line, "full_ms");
    out->full_ns_per_object = json_number(line, "full_ns_per_object");
    out->young_us = json_number(line, "young_us");
    out->young_objects = (unsigned)json_number(line, "young_objects");
    const char *v = strstr(line, "\"python\": \"");
    if (v == NULL)
        v = strstr(line, "\"python\":\"");
    snprintf(out->version, sizeof(out->version), "CPython ?");
    if (v != NULL) {
        v = strchr(v + 9, '"') + 1;
        size_t len = strcspn(v, "\"");
        snprintf(out->version, sizeof(out->version), "CPython %.*s", (int)len, v);
    }
    if (out->full_ns_per_object <= 0 || out->young_us <= 0) {
        fprintf(stderr, "tickd-bench-gc: cannot parse %s's output: %s", python, line);
        return -1;
    }
    return 0;
}

/* ---- reporting ---- */

static void print_json(size_t nobjects, unsigned repeat, const struct result *t,
                       const struct result *py)
{
    printf("{\"objects\": %zu, \"repeat\": %u, \"tickd\": {\"full_ms\": %.6f, "
           "\"full_ns_per_object\": %.3f, \"young_us\": %.3f, \"young_objects\": %u}, ",
           nobjects, repeat, t->full_ms, t->full_ns_per_object, t->young_us, t->young_objects);
    if (py != NULL)
        printf("\"python\": {\"version\": \"%s\", \"full_ms\": %.6f, \"full_ns_per_object\": %.3f, "
               "\"young_us\": %.3f, \"young_objects\": %u}, \"full_ratio\": %.4f}\n",
               py->version + strlen("CPython "), py->full_ms, py->full_ns_per_object, py->young_us,
               py->young_objects, t->full_ns_per_object / py->full_ns_per_object);
    else
        printf("\"python\": null, \"full_ratio\": null}\n");
}

static void print_table(size_t nobjects, unsigned repeat, const struct result *t,
                        const struct result *py)
{
    printf("tickd-bench-gc: %zu tracked containers in %zu two-cycles, all reachable from one "
           "root; median of %u\n\n",
           nobjects, nobjects / 2, repeat);
    printf("%-34s %12s %16s %8s\n", "", "tickd", py ? py->version : "CPython", "ratio");
    printf("%-34s %12.2f", "full collection, ns per object", t->full_ns_per_object);
    if (py != NULL)
        printf(" %16.2f %8.3f\n", py->full_ns_per_object,
               t->full_ns_per_object / py->full_ns_per_object);
    else
        printf(" %16s %8s\n", "-", "-");
    printf("%-34s %12.2f", "full collection, ms", t->full_ms);
    if (py != NULL)
        printf(" %16.2f\n", py->full_ms);
    else
        printf(" %16s\n", "-");
    printf("%-34s %12.2f", "young collection (700 new), us", t->young_us);
    if (py != NULL)
        printf(" %16.2f %8.3f\n", py->young_us, t->young_us / py->young_us);
    else
        printf(" %16s %8s\n", "-", "-");

    printf("\ntargets (issue): full <= %.1f x CPython per object: ", TARGET_FULL_RATIO);
    if (py != NULL)
        printf("%s (%.3f)\n",
               t->full_ns_per_object <= TARGET_FULL_RATIO * py->full_ns_per_object ? "met"
                                                                                   : "NOT met",
               t->full_ns_per_object / py->full_ns_per_object);
    else
        printf("no CPython figure\n");
    printf("                 young <= %.0f us on top of %d old objects: ", TARGET_YOUNG_US,
           TARGET_YOUNG_OLD_N);
    if (nobjects >= TARGET_YOUNG_OLD_N)
        printf("%s (%.2f us)\n", t->young_us <= TARGET_YOUNG_US ? "met" : "NOT met", t->young_us);
    else
        printf("not measured at this N\n");
}

static void usage(FILE *out)
{
    fprintf(out, "usage: tickd-bench-gc [--objects N] [--repeat R] [--json] "
                 "[--python CMD | --no-python]\n"
                 "  --objects N   tracked containers, even, >= 2 (default 1000000)\n"
                 "  --repeat R    timed collections of each kind, median reported (default 5)\n"
                 "  --json        one JSON object on one line\n"
                 "  --python CMD  interpreter for bench_gc.py (default " DEFAULT_PYTHON
                 " if it exists,\n"
                 "                else python3 on PATH)\n"
                 "  --no-python   skip the CPython column\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"objects", required_argument, NULL, 'n'},
        {"repeat", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"python", required_argument, NULL, 'p'},
        {"no-python", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    size_t nobjects = 1000000;
    unsigned repeat = 5;
    int json = 0;
    const char *python = access(DEFAULT_PYTHON, X_OK) == 0 ? DEFAULT_PYTHON : "python3";
    char *end;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            nobjects = strtoull(optarg, &end, 10);
            if (*end != '\0' || nobjects < 2 || nobjects % 2 != 0) {
                fprintf(stderr, "tickd-bench-gc: --objects wants an even number >= 2\n");
                return 2;
            }
            break;
        case 'r':
            repeat = (unsigned)strtoul(optarg, &end, 10);
            if (*end != '\0' || repeat < 1 || repeat > 1000) {
                fprintf(stderr, "tickd-bench-gc: --repeat wants 1..1000\n");
                return 2;
            }
            break;
        case 'j':
            json = 1;
            break;
        case 'p':
            python = optarg;
            break;
        case 'P':
            python = NULL;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    struct result t = {0}, py = {0};
    int have_py = python != NULL && run_python(python, nobjects, repeat, &py) == 0;
    int err = run_tickd(nobjects, repeat, &t);
    if (err != 0) {
        fprintf(stderr, "tickd-bench-gc: measurement failed: %s\n",
                err == -EIO ? "a collection found garbage in a graph without any" : strerror(-err));
        return 1;
    }
    if (json)
        print_json(nobjects, repeat, &t, have_py ? &py : NULL);
    else
        print_table(nobjects, repeat, &t, have_py ? &py : NULL);
    return 0;
}

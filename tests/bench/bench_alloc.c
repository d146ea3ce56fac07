/*
 * bench_alloc.c - tickd-bench-alloc: tickd's heap against glibc malloc,
 * jemalloc and mimalloc, the same workloads in one run.
 *
 *   tickd-bench-alloc [--json] [--quick] [--workload NAME]... [--allocator NAME]...
 *
 * Workloads (request sizes in bytes):
 *   lifo  48, 64     allocate and free at once
 *   fifo  48, 64     a window of 1,000 live blocks, oldest freed first (a tick queue)
 *   churn 32-128     1,000,000 live blocks of mixed tick sizes, 10,000,000 random
 *                    replacements (an order book); only the replacements are timed
 *   burst 48         allocate 10,000,000 blocks, free them all, RSS after the free
 *   space 48         1,000,000 live blocks: bytes mapped (tickd) or resident per
 *                    byte requested
 * lifo and fifo time sections of about 0.25 s; every measurement is repeated 3
 * times and the best is reported. lifo and fifo are also run in 5 rounds,
 * each round every allocator in turn, and each allocator's best round is
 * reported: a slow spell of a shared machine then falls on all of them, not
 * on whichever ran during it. --quick divides counts and times by 10.
 *
 * This file is the parent: it parses the command line, probes which
 * allocators load, forks one child per (workload, allocator, round) (see
 * bench_alloc_child.c), collects each child's result from a pipe and prints
 * a table, or with --json one object per line:
 *
 *   workload, allocator     names as on the command line
 *   size                    request size in bytes; "32-128" for churn's mix
 *   ns_per_pair             best of 3 (lifo, fifo: of 5 x 3), nanoseconds per
 *                           alloc + free pair
 *   ns_per_pair_first       the first of the 3; in burst and space the one
 *                           run where every allocator takes page faults
 *                           (tickd unmaps after each, the others keep memory)
 *   pairs                   alloc/free pairs in one timed section
 *   mapped_bytes_peak       tickd: its heap's mapped_bytes_peak +
 *                           large_bytes_peak; others: rss_peak_bytes
 *   rss_peak_bytes          peak RSS (VmHWM) growth
 *   rss_before_bytes        RSS growth once the allocator is initialised
 *   rss_after_free_bytes    RSS growth after everything was freed (the
 *                           largest over the repetitions)
 *   space only: requested_bytes; mapped_per_requested (tickd: mapped bytes,
 *   others: RSS growth, with every block live, over requested bytes) and
 *   rss_per_requested (RSS growth for all four).
 *
 * RSS growth is measured from the child's VmRSS after its inputs were
 * prepared and before the allocator was initialised; it is signed (an
 * allocator may give back memory resident before that point) and printed as
 * is. An allocator whose library cannot be loaded is skipped with a note on
 * stderr. Exit status: 0 success, 1 a measurement failed, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/bench/bench_host.h"
#include "tests/bench/bench_alloc.h"

#define MIB (1024.0 * 1024.0)

const char *const bench_workload_names[BENCH_NWORKLOADS] = {"lifo", "fifo", "churn", "burst",
                                                            "space"};
const char *const bench_allocator_names[BENCH_NALLOCATORS] = {"tickd", "glibc", "jemalloc",
                                                              "mimalloc"};

/* A row of the report: a workload at one request size (0: churn's mix). */
struct row {
    enum bench_workload workload;
    size_t size;
};

static const struct row rows[] = {
    {BENCH_LIFO, 48}, {BENCH_LIFO, 64},  {BENCH_FIFO, 48},  {BENCH_FIFO, 64},
    {BENCH_CHURN, 0}, {BENCH_BURST, 48}, {BENCH_SPACE, 48},
};
#define NROWS (sizeof rows / sizeof rows[0])

/* Full-run counts; --quick divides them by QUICK_DIVISOR. */
#define CHURN_LIVE    1000000u
#define CHURN_STEPS   10000000u
#define BURST_COUNT   10000000u
#define SPACE_LIVE    1000000u
#define TIMED_NS      250000000u
#define QUICK_DIVISOR 10u

/* Static TLS reserve for libraries loaded by dlopen (see
 * reexec_with_static_tls()). */
#define STATIC_TLS_TUNABLE "glibc.rtld.optional_static_tls"
#define STATIC_TLS_BYTES   "16384"

/* The allocator's targets (tests/bench/README.md), checked in the summary
 * (never by a test). */
#define TARGET_VS_MIMALLOC       0.5
#define TARGET_VS_GLIBC          0.3
#define TARGET_CHURN_VS_MIMALLOC 1.0
#define TARGET_BURST_ARENAS      2
#define TARGET_SPACE_RATIO       1.05

struct options {
    int json;
    int quick;
    unsigned workloads;  /* bit per enum bench_workload */
    unsigned allocators; /* bit per enum bench_allocator */
};

struct report {
    struct bench_result res[NROWS][BENCH_NALLOCATORS];
    int have[NROWS][BENCH_NALLOCATORS];
    int available[BENCH_NALLOCATORS];
    char version[BENCH_NALLOCATORS][BENCH_NOTE_LEN];
    unsigned divisor; /* 1, or QUICK_DIVISOR with --quick */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tickd-bench-alloc [--json] [--quick] [--workload NAME]... "
            "[--allocator NAME]...\n"
            "  --json            one JSON object per (workload, size, allocator) line\n"
            "  --quick           counts and times / %u, for a smoke test\n"
            "  --workload NAME   lifo, fifo, churn, burst, space (default: all)\n"
            "  --allocator NAME  tickd, glibc, jemalloc, mimalloc (default: all)\n",
            QUICK_DIVISOR);
}

static int lookup(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},           {"quick", no_argument, NULL, 'q'},
        {"workload", required_argument, NULL, 'w'}, {"allocator", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int c, i;

    memset(opt, 0, sizeof *opt);
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            opt->json = 1;
            break;
        case 'q':
            opt->quick = 1;
            break;
        case 'w':
            i = lookup(bench_workload_names, BENCH_NWORKLOADS, optarg);
            if (i < 0) {
                fprintf(stderr, "tickd-bench-alloc: unknown workload '%s'\n", optarg);
                return -EINVAL;
            }
            opt->workloads |= 1u << i;
            break;
        case 'a':
            i = lookup(bench_allocator_names, BENCH_NALLOCATORS, optarg);
            if (i < 0) {
                fprintf(stderr, "tickd-bench-alloc: unknown allocator '%s'\n", optarg);
                return -EINVAL;
            }
            opt->allocators |= 1u << i;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tickd-bench-alloc: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    if (opt->workloads == 0)
        opt->workloads = (1u << BENCH_NWORKLOADS) - 1;
    if (opt->allocators == 0)
        opt->allocators = (1u << BENCH_NALLOCATORS) - 1;
    return 0;
}

static struct bench_job make_job(const struct row *row, enum bench_allocator a, unsigned div)
{
    struct bench_job job = {
        .workload = row->workload,
        .allocator = a,
        .size = row->size,
        .target_ns = TIMED_NS / div,
    };
    switch (row->workload) {
    case BENCH_CHURN:
        job.live = CHURN_LIVE / div;
        job.steps = CHURN_STEPS / div;
        break;
    case BENCH_BURST:
        job.live = BURST_COUNT / div;
        break;
    case BENCH_SPACE:
        job.live = SPACE_LIVE / div;
        break;
    case BENCH_LIFO:
    case BENCH_FIFO:
    case BENCH_NWORKLOADS:
        break;
    }
    return job;
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "the child was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "the child exited with status %d and no result", WEXITSTATUS(status));
}

/* Forks a child that runs job (or, with job NULL, probes allocator a) and
 * returns what it reported through the pipe. */
static void run_child(const struct bench_job *job, enum bench_allocator a, struct bench_result *res)
{
    int fds[2];
    int status;

    memset(res, 0, sizeof *res);
    res->status = BENCH_FAILED;
    if (pipe(fds) < 0) {
        snprintf(res->note, sizeof res->note, "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(res->note, sizeof res->note, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        if (job != NULL)
            bench_child_main(job, fds[1]);
        bench_probe_main(a, fds[1]);
    }
    close(fds[1]);

    struct bench_result got;
    size_t have = 0;
    while (have < sizeof got) {
        ssize_t n = read(fds[0], (char *)&got + have, sizeof got - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (have == sizeof got)
        *res = got;
    else
        describe_exit(status, res->note, sizeof res->note);
}

static void size_label(const struct row *row, char *buf, size_t len)
{
    if (row->size)
        snprintf(buf, len, "%zu", row->size);
    else
        snprintf(buf, len, "%d-%d", BENCH_CHURN_MIN, BENCH_CHURN_MAX);
}

static void print_json(const struct row *row, enum bench_allocator a, const struct bench_result *r)
{
    char size[32];

    if (row->size)
        snprintf(size, sizeof size, "%zu", row->size);
    else
        snprintf(size, sizeof size, "\"%d-%d\"", BENCH_CHURN_MIN, BENCH_CHURN_MAX);
    printf("{\"workload\":\"%s\",\"size\":%s,\"allocator\":\"%s\",\"ns_per_pair\":%.3f,"
           "\"ns_per_pair_first\":%.3f,\"pairs\":%" PRIu64 ",\"mapped_bytes_peak\":%" PRId64
           ",\"rss_peak_bytes\":%" PRId64 ",\"rss_before_bytes\":%" PRId64
           ",\"rss_after_free_bytes\":%" PRId64,
           bench_workload_names[row->workload], size, bench_allocator_names[a], r->ns_per_pair,
           r->ns_first, r->pairs, r->mapped_peak, r->rss_peak, r->rss_before, r->rss_after_free);
    if (row->workload == BENCH_SPACE) {
        double req = (double)r->requested;
        double mapped = a == BENCH_TICKD ? (double)r->live_mapped : (double)r->live_rss;
        printf(",\"requested_bytes\":%" PRIu64
               ",\"mapped_per_requested\":%.4f,\"rss_per_requested\":%.4f",
               r->requested, mapped / req, (double)r->live_rss / req);
    }
    printf("}\n");
    fflush(stdout);
}

static void print_header(const struct options *opt, const struct report *rep)
{
    char cpu[256];
    struct utsname u;

    bench_cpu_model(cpu, sizeof cpu);
    if (uname(&u) < 0)
        memset(&u, 0, sizeof u);
    printf("tickd-bench-alloc: %s (%ld CPUs), %s %s %s\n", cpu, sysconf(_SC_NPROCESSORS_ONLN),
           u.sysname, u.release, u.machine);
    printf("allocators:");
    const char *sep = " ";
    for (int a = 0; a < BENCH_NALLOCATORS; a++) {
        if (rep->available[a]) {
            printf("%s%s %s", sep, bench_allocator_names[a], rep->version[a]);
            sep = ", ";
        }
    }
    printf("\none process per (workload, allocator, round); best of %d repetitions, lifo and "
           "fifo also of %d rounds over the allocators in turn; %s\n",
           BENCH_REPS, BENCH_ROUNDS, opt->quick ? "--quick: counts and times / 10" : "full counts");
#ifndef __OPTIMIZE__
    printf("warning: built without optimisation, the times mean little\n");
#endif
#if defined(__SANITIZE_ADDRESS__)
    printf("warning: built with AddressSanitizer, glibc stands for ASan's allocator\n");
#endif
}

static const struct bench_result *result(const struct report *rep, size_t r, int a)
{
    return rep->have[r][a] ? &rep->res[r][a] : NULL;
}

static int row_measured(const struct report *rep, size_t r)
{
    for (int a = 0; a < BENCH_NALLOCATORS; a++)
        if (rep->have[r][a])
            return 1;
    return 0;
}

static void print_ratio(const struct bench_result *t, const struct bench_result *o, int width)
{
    if (t != NULL && o != NULL && o->ns_per_pair > 0)
        printf("%*.2f", width, t->ns_per_pair / o->ns_per_pair);
    else
        printf("%*s", width, "-");
}

static void print_mib(const struct bench_result *r, int64_t bytes)
{
    if (r != NULL)
        printf(" %8.1f", (double)bytes / MIB);
    else
        printf(" %8s", "-");
}

static void print_time_table(const struct report *rep)
{
    char size[32];

    printf("\ntime: ns per alloc+free pair\n");
    printf("%-8s %-7s %9s %9s %9s %9s %15s %12s\n", "workload", "size", "tickd", "glibc",
           "jemalloc", "mimalloc", "tickd/mimalloc", "tickd/glibc");
    for (size_t r = 0; r < NROWS; r++) {
        if (!row_measured(rep, r))
            continue;
        size_label(&rows[r], size, sizeof size);
        printf("%-8s %-7s", bench_workload_names[rows[r].workload], size);
        for (int a = 0; a < BENCH_NALLOCATORS; a++) {
            const struct bench_result *res = result(rep, r, a);
            if (res != NULL)
                printf(" %9.2f", res->ns_per_pair);
            else
                printf(" %9s", "-");
        }
        print_ratio(result(rep, r, BENCH_TICKD), result(rep, r, BENCH_MIMALLOC), 16);
        print_ratio(result(rep, r, BENCH_TICKD), result(rep, r, BENCH_GLIBC), 13);
        printf("\n");
    }
}

static void print_memory_table(const struct report *rep)
{
    char size[32];

    printf("\nmemory: MiB above the child's RSS before the allocator started (signed)\n");
    printf("%-16s %8s | %-35s | %s\n", "", "tickd", "peak RSS", "RSS after free");
    printf("%-8s %-7s %8s |", "workload", "size", "mapped");
    for (int pass = 0; pass < 2; pass++) {
        for (int a = 0; a < BENCH_NALLOCATORS; a++)
            printf(" %8s", bench_allocator_names[a]);
        printf(pass == 0 ? " |" : "\n");
    }
    for (size_t r = 0; r < NROWS; r++) {
        const struct bench_result *t = result(rep, r, BENCH_TICKD);
        if (!row_measured(rep, r))
            continue;
        size_label(&rows[r], size, sizeof size);
        printf("%-8s %-7s", bench_workload_names[rows[r].workload], size);
        print_mib(t, t ? t->mapped_peak : 0);
        printf(" |");
        for (int a = 0; a < BENCH_NALLOCATORS; a++) {
            const struct bench_result *res = result(rep, r, a);
            print_mib(res, res ? res->rss_peak : 0);
        }
        printf(" |");
        for (int a = 0; a < BENCH_NALLOCATORS; a++) {
            const struct bench_result *res = result(rep, r, a);
            print_mib(res, res ? res->rss_after_free : 0);
        }
        printf("\n");
    }
}

static size_t row_of(enum bench_workload w)
{
    for (size_t r = 0; r < NROWS; r++)
        if (rows[r].workload == w)
            return r;
    return 0;
}

static void print_burst_table(const struct report *rep)
{
    size_t r = row_of(BENCH_BURST);
    const struct bench_result *res[BENCH_NALLOCATORS];

    printf("\nburst: %u blocks of %zu bytes allocated, then all freed\n%-20s",
           BURST_COUNT / rep->divisor, rows[r].size, "");
    for (int a = 0; a < BENCH_NALLOCATORS; a++) {
        res[a] = result(rep, r, a);
        printf(" %8s", bench_allocator_names[a]);
    }
    printf("\n%-20s", "ns/pair, first run");
    for (int a = 0; a < BENCH_NALLOCATORS; a++) {
        if (res[a] != NULL)
            printf(" %8.2f", res[a]->ns_first);
        else
            printf(" %8s", "-");
    }
    printf("\n%-20s", "RSS before, MiB");
    for (int a = 0; a < BENCH_NALLOCATORS; a++)
        print_mib(res[a], res[a] ? res[a]->rss_before : 0);
    printf("\n%-20s", "RSS after free, MiB");
    for (int a = 0; a < BENCH_NALLOCATORS; a++)
        print_mib(res[a], res[a] ? res[a]->rss_after_free : 0);
    printf("\n%-20s", "after - before, MiB");
    for (int a = 0; a < BENCH_NALLOCATORS; a++)
        print_mib(res[a], res[a] ? res[a]->rss_after_free - res[a]->rss_before : 0);
    printf("\n");
}

static void print_space_table(const struct report *rep)
{
    size_t r = row_of(BENCH_SPACE);

    printf("\nspace: %u live blocks of %zu bytes, memory with every block live\n%-20s",
           SPACE_LIVE / rep->divisor, rows[r].size, "");
    for (int a = 0; a < BENCH_NALLOCATORS; a++)
        printf(" %8s", bench_allocator_names[a]);
    printf("\n%-20s", "mapped/requested");
    const struct bench_result *t = result(rep, r, BENCH_TICKD);
    if (t != NULL)
        printf(" %8.4f", (double)t->live_mapped / (double)t->requested);
    else
        printf(" %8s", "-");
    for (int a = 1; a < BENCH_NALLOCATORS; a++)
        printf(" %8s", "-");
    printf("\n%-20s", "RSS/requested");
    for (int a = 0; a < BENCH_NALLOCATORS; a++) {
        const struct bench_result *res = result(rep, r, a);
        if (res != NULL)
            printf(" %8.4f", (double)res->live_rss / (double)res->requested);
        else
            printf(" %8s", "-");
    }
    printf("\n");
}

/* Prints one target line, and the heading before the first. */
static void print_target(int *count, const char *what, double value, double limit)
{
    if ((*count)++ == 0)
        printf("\ntargets (tickd)\n");
    printf("  %-42s %8.3f  (<= %.3f)  %s\n", what, value, limit, value <= limit ? "met" : "MISSED");
}

static void print_targets(const struct report *rep)
{
    char what[96], size[32];
    int count = 0;

    for (size_t r = 0; r < NROWS; r++) {
        const struct bench_result *t = result(rep, r, BENCH_TICKD);
        const struct bench_result *g = result(rep, r, BENCH_GLIBC);
        const struct bench_result *m = result(rep, r, BENCH_MIMALLOC);
        const char *name = bench_workload_names[rows[r].workload];
        if (t == NULL)
            continue;
        size_label(&rows[r], size, sizeof size);
        switch (rows[r].workload) {
        case BENCH_LIFO:
        case BENCH_FIFO:
            if (m != NULL) {
                snprintf(what, sizeof what, "%s %s ns/pair, x mimalloc", name, size);
                print_target(&count, what, t->ns_per_pair / m->ns_per_pair, TARGET_VS_MIMALLOC);
            }
            if (g != NULL) {
                snprintf(what, sizeof what, "%s %s ns/pair, x glibc", name, size);
                print_target(&count, what, t->ns_per_pair / g->ns_per_pair, TARGET_VS_GLIBC);
            }
            break;
        case BENCH_CHURN:
            if (m != NULL) {
                snprintf(what, sizeof what, "%s %s ns/pair, x mimalloc", name, size);
                print_target(&count, what, t->ns_per_pair / m->ns_per_pair,
                             TARGET_CHURN_VS_MIMALLOC);
            }
            break;
        case BENCH_BURST:
            snprintf(what, sizeof what, "%s %s RSS after free - before, MiB", name, size);
            print_target(&count, what, (double)(t->rss_after_free - t->rss_before) / MIB,
                         (double)(TARGET_BURST_ARENAS * t->arena_size) / MIB);
            break;
        case BENCH_SPACE:
            snprintf(what, sizeof what, "%s %s mapped/requested, %u live", name, size,
                     SPACE_LIVE / rep->divisor);
            print_target(&count, what, (double)t->live_mapped / (double)t->requested,
                         TARGET_SPACE_RATIO);
            break;
        case BENCH_NWORKLOADS:
            break;
        }
    }
}

static void print_tables(const struct options *opt, const struct report *rep)
{
    print_time_table(rep);
    print_memory_table(rep);
    if (opt->workloads & (1u << BENCH_BURST))
        print_burst_table(rep);
    if (opt->workloads & (1u << BENCH_SPACE))
        print_space_table(rep);
    print_targets(rep);
}

/*
 * jemalloc is built with initial-exec TLS (2.6 KiB in Debian's build), more
 * than the 512 bytes glibc keeps for libraries that dlopen() brings in later,
 * so its dlopen fails with "cannot allocate memory in static TLS block". The
 * tunable glibc.rtld.optional_static_tls raises that reserve, but glibc reads
 * it only at start-up: set it and execute this program again, once. If that
 * is not possible, carry on; jemalloc is then skipped with the note.
 */
static void reexec_with_static_tls(char **argv)
{
    const char *old = getenv("GLIBC_TUNABLES");
    char value[1024];
    int n;

    if (old != NULL && strstr(old, STATIC_TLS_TUNABLE) != NULL)
        return;
    if (old != NULL && *old != '\0')
        n = snprintf(value, sizeof value, "%s:%s", old, STATIC_TLS_TUNABLE "=" STATIC_TLS_BYTES);
    else
        n = snprintf(value, sizeof value, "%s", STATIC_TLS_TUNABLE "=" STATIC_TLS_BYTES);
    if (n < 0 || (size_t)n >= sizeof value || setenv("GLIBC_TUNABLES", value, 1) < 0)
        return;
    execv("/proc/self/exe", argv);
    if (old != NULL)
        setenv("GLIBC_TUNABLES", old, 1);
    else
        unsetenv("GLIBC_TUNABLES");
}

static void probe_allocators(const struct options *opt, struct report *rep)
{
    struct bench_result res;

    for (int a = 0; a < BENCH_NALLOCATORS; a++) {
        if (!(opt->allocators & (1u << a)))
            continue;
        run_child(NULL, (enum bench_allocator)a, &res);
        if (res.status == BENCH_OK) {
            rep->available[a] = 1;
            snprintf(rep->version[a], sizeof rep->version[a], "%s", res.note);
        } else {
            fprintf(stderr, "tickd-bench-alloc: note: %s skipped: %s\n", bench_allocator_names[a],
                    res.note);
        }
    }
}

/* Rounds of a row: lifo and fifo, sections of a quarter second, are run
 * BENCH_ROUNDS times over all the allocators in turn, so that a slow spell of
 * a shared machine falls on every allocator alike rather than on one, and
 * each allocator's best round is reported. */
static int row_rounds(const struct row *row)
{
    return row->workload == BENCH_LIFO || row->workload == BENCH_FIFO ? BENCH_ROUNDS : 1;
}

/* Runs one round of rows[r]: a child per available allocator. The report
 * keeps each allocator's best round (its first repetition from round 0). An
 * allocator whose library turns out not to load is dropped from the report.
 * Returns 1 if a measurement failed, else 0. */
static int run_round(struct report *rep, size_t r, int round, int progress)
{
    const struct row *row = &rows[r];
    struct bench_result *res = rep->res[r];
    int *have = rep->have[r];
    int failed = 0;
    char size[32];
    size_label(row, size, sizeof size);
    for (int a = 0; a < BENCH_NALLOCATORS; a++) {
        if (!rep->available[a] || (round > 0 && !have[a]))
            continue;
        struct bench_job job = make_job(row, (enum bench_allocator)a, rep->divisor);
        struct bench_result got;
        if (progress)
            fprintf(stderr, "\r\033[Krunning %s %s on %s", bench_workload_names[job.workload], size,
                    bench_allocator_names[a]);
        run_child(&job, (enum bench_allocator)a, &got);
        if (progress)
            fprintf(stderr, "\r\033[K");
        if (got.status == BENCH_UNAVAILABLE) {
            fprintf(stderr, "tickd-bench-alloc: note: %s skipped: %s\n", bench_allocator_names[a],
                    got.note);
            rep->available[a] = 0;
            have[a] = 0;
            continue;
        }
        if (got.status != BENCH_OK) {
            fprintf(stderr, "tickd-bench-alloc: %s %s on %s failed: %s\n",
                    bench_workload_names[job.workload], size, bench_allocator_names[a], got.note);
            failed = 1;
            have[a] = 0;
            continue;
        }
        if (round == 0) {
            res[a] = got;
            have[a] = 1;
        } else if (got.ns_per_pair < res[a].ns_per_pair) {
            double first = res[a].ns_first;
            res[a] = got;
            res[a].ns_first = first;
        }
    }
    return failed;
}

int main(int argc, char **argv)
{
    static struct report rep;
    struct options opt;
    int failed = 0;
    int progress = isatty(STDERR_FILENO);

    if (parse_options(argc, argv, &opt) < 0) {
        usage(stderr);
        return 2;
    }
    if (opt.allocators & (1u << BENCH_JEMALLOC))
        reexec_with_static_tls(argv);
    probe_allocators(&opt, &rep);
    rep.divisor = opt.quick ? QUICK_DIVISOR : 1;
    if (!opt.json)
        print_header(&opt, &rep);

    for (size_t r = 0; r < NROWS; r++) {
        if (!(opt.workloads & (1u << rows[r].workload)))
            continue;
        for (int round = 0; round < row_rounds(&rows[r]); round++)
            failed |= run_round(&rep, r, round, progress);
        if (opt.json)
            for (int a = 0; a < BENCH_NALLOCATORS; a++)
                if (rep.have[r][a])
                    print_json(&rows[r], (enum bench_allocator)a, &rep.res[r][a]);
    }
    if (!opt.json)
        print_tables(&opt, &rep);
    return failed ? 1 : 0;
}

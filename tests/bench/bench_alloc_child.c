/*
 * bench_alloc_child.c - one measurement, in a process of its own.
 *
 * The parent forks a child per (workload, allocator). The child loads the
 * allocator, prepares the workload's inputs, takes its resident set size as
 * the baseline, and hands over to the backend, which initialises the
 * allocator and calls bench_drive() with its instantiation of the workload
 * loops. bench_drive() sizes the timed section, repeats it BENCH_REPS times
 * and samples memory between repetitions. The child writes one struct
 * bench_result to the pipe and leaves with _exit(), so nothing of the
 * parent's (stdio buffers, atexit handlers) runs twice.
 *
 * Inputs (random slots and sizes, pointer arrays) are mapped with mmap and
 * populated before the baseline, so they are neither allocated by the
 * allocator under test nor counted as its memory. Random numbers come from
 * splitmix64 with a fixed seed: every allocator sees the same sequence.
 * /proc is read with open/read into a stack buffer; stdio would allocate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench/bench_alloc.h"

#define SEED 0x7469636b64ULL /* "tickd" */

/* lifo and fifo double their pairs from this until a run takes an eighth of
 * the target, then scale to the target. */
#define CALIBRATION_PAIRS ((uint64_t)1 << 14)

static int result_fd = -1;
static int64_t rss_base;

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void send_result(const struct bench_result *res)
{
    const char *p = (const char *)res;
    size_t left = sizeof *res;
    while (left > 0) {
        ssize_t n = write(result_fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(1);
        p += n;
        left -= (size_t)n;
    }
}

static _Noreturn void fail(const char *what)
{
    struct bench_result res = {.status = BENCH_FAILED};
    snprintf(res.note, sizeof res.note, "%s", what);
    send_result(&res);
    _exit(1);
}

void bench_out_of_memory(void)
{
    fail("the allocator returned NULL (out of memory)");
}

/* Reads "Key:   N kB" from /proc/self/status, in bytes. */
static int64_t proc_status_bytes(const char *key)
{
    char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail("cannot open /proc/self/status");
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    size_t keylen = strlen(key);
    for (const char *line = buf; line != NULL && *line != '\0';) {
        if (strncmp(line, key, keylen) == 0 && line[keylen] == ':')
            return (int64_t)strtoll(line + keylen + 1, NULL, 10) * 1024;
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    fail("no VmRSS/VmHWM in /proc/self/status");
}

int64_t bench_rss_growth(void)
{
    return proc_status_bytes("VmRSS") - rss_base;
}

/* Resets VmHWM to the current RSS (Linux 4.0+). Without it the peak can
 * only be overstated by what was resident before the baseline. */
static void reset_peak_rss(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = write(fd, "5", 1);
    (void)n;
    close(fd);
}

static void *map_inputs(size_t bytes)
{
    if (bytes == 0)
        return NULL;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (p == MAP_FAILED)
        fail("cannot map the workload's inputs");
    return p;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform number in [0, n), by multiply-shift. */
static uint64_t below(uint64_t *state, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)splitmix64(state) * n) >> 64);
}

static uint8_t tick_size(uint64_t *state)
{
    return (uint8_t)(BENCH_CHURN_MIN + below(state, BENCH_CHURN_MAX - BENCH_CHURN_MIN + 1));
}

static void prepare_inputs(const struct bench_job *job, struct bench_inputs *in)
{
    memset(in, 0, sizeof *in);
    switch (job->workload) {
    case BENCH_LIFO:
    case BENCH_NWORKLOADS:
        break;
    case BENCH_FIFO:
        in->ring = map_inputs(BENCH_FIFO_WINDOW * sizeof(void *));
        break;
    case BENCH_BURST:
    case BENCH_SPACE:
        in->slots = map_inputs(job->live * sizeof(void *));
        break;
    case BENCH_CHURN: {
        uint64_t state = SEED;
        in->slots = map_inputs(job->live * sizeof(void *));
        in->fill_sizes = map_inputs(job->live);
        in->step_sizes = map_inputs(job->steps);
        in->step_slots = map_inputs(job->steps * sizeof(uint32_t));
        for (uint64_t i = 0; i < job->live; i++)
            in->fill_sizes[i] = tick_size(&state);
        for (uint64_t i = 0; i < job->steps; i++) {
            in->step_slots[i] = (uint32_t)below(&state, job->live);
            in->step_sizes[i] = tick_size(&state);
        }
        break;
    }
    }
}

/* Pairs for one timed section of lifo or fifo: about job->target_ns. */
static uint64_t calibrate(const struct bench_job *job, const struct bench_inputs *in,
                          bench_once_fn *once, void *ctx, struct bench_rep *rep)
{
    rep->pairs = CALIBRATION_PAIRS;
    for (;;) {
        once(ctx, job, in, rep);
        if (rep->ns >= job->target_ns / 8)
            break;
        rep->pairs *= 8;
    }
    double scale = (double)job->target_ns / (double)(rep->ns ? rep->ns : 1);
    uint64_t pairs = (uint64_t)((double)rep->pairs * scale);
    return pairs > CALIBRATION_PAIRS ? pairs : CALIBRATION_PAIRS;
}

void bench_drive(const struct bench_job *job, const struct bench_inputs *in, bench_once_fn *once,
                 void *ctx, struct bench_result *res)
{
    struct bench_rep rep = {.live_mapped = -1};
    uint64_t best = UINT64_MAX;

    res->rss_before = bench_rss_growth();
    switch (job->workload) {
    case BENCH_LIFO:
    case BENCH_FIFO:
        rep.pairs = calibrate(job, in, once, ctx, &rep);
        break;
    case BENCH_CHURN:
        rep.pairs = job->steps;
        break;
    case BENCH_BURST:
    case BENCH_SPACE:
    case BENCH_NWORKLOADS:
        rep.pairs = job->live;
        break;
    }

    res->rss_after_free = INT64_MIN;
    res->live_rss = INT64_MIN;
    res->live_mapped = -1;
    for (int r = 0; r < BENCH_REPS; r++) {
        once(ctx, job, in, &rep);
        if (r == 0)
            res->ns_first = (double)rep.ns / (double)rep.pairs;
        if (rep.ns < best)
            best = rep.ns;
        int64_t after = bench_rss_growth();
        if (after > res->rss_after_free)
            res->rss_after_free = after;
        if (rep.live_rss > res->live_rss)
            res->live_rss = rep.live_rss;
        if (rep.live_mapped > res->live_mapped)
            res->live_mapped = rep.live_mapped;
    }
    if (job->workload != BENCH_SPACE)
        res->live_rss = 0;

    res->pairs = rep.pairs;
    res->ns_per_pair = (double)best / (double)rep.pairs;
    res->rss_peak = proc_status_bytes("VmHWM") - rss_base;
    res->mapped_peak = res->rss_peak;
    res->requested = job->workload == BENCH_SPACE ? job->live * job->size : 0;
    res->checksum = rep.checksum;
}

void bench_child_main(const struct bench_job *job, int fd)
{
    struct bench_result res = {.status = BENCH_OK};
    struct bench_backend backend;
    struct bench_inputs in;

    result_fd = fd;
    if (bench_backend_open(job->allocator, &backend, res.note, sizeof res.note) < 0) {
        res.status = BENCH_UNAVAILABLE;
        send_result(&res);
        _exit(0);
    }
    prepare_inputs(job, &in);
    reset_peak_rss();
    rss_base = proc_status_bytes("VmRSS");
    if (bench_backend_run(&backend, job, &in, &res) < 0) {
        res.status = BENCH_FAILED;
        send_result(&res);
        _exit(1);
    }
    send_result(&res);
    _exit(0);
}

void bench_probe_main(enum bench_allocator id, int fd)
{
    struct bench_result res = {.status = BENCH_OK};
    struct bench_backend backend;

    result_fd = fd;
    if (bench_backend_open(id, &backend, res.note, sizeof res.note) < 0)
        res.status = BENCH_UNAVAILABLE;
    else
        snprintf(res.note, sizeof res.note, "%s", backend.version);
    send_result(&res);
    _exit(0);
}

/*
 * cmd_replay.c - `tickd replay FILE`: a recorded day through the whole
 * pipeline (decode, objects, books, ticks, optionally the journal) with no
 * network, then a summary.
 *
 * The file is mapped and handed to an ingest (feed/ingest.c) 4 MiB at a time.
 * Between chunks, a safe point, the cycle collector runs when a threshold was
 * crossed, exactly as the daemon's timer would. At --speed N the replay
 * follows the recorded exchange timestamps N times faster than real time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc/object.h"
#include "cli.h"
#include "feed/ingest.h"

#define REPLAY_CHUNK (4u << 20)

typedef struct replay {
    const char *path;
    enum ingest_format fmt;
    double speed; /* 0: as fast as possible */
    int json;
    const char *journal_dir;
    enum journal_fsync fsync;
    journal_writer_t *journal;
    uint64_t journal_records; /* appended, read before the journal is closed */
    int journal_err;
    uint64_t errors_shown;
} replay_t;

static void journal_sink(void *arg, tick_t *t)
{
    replay_t *r = arg;
    journal_rec_t rec;
    journal_rec_from_tick(t, &rec);
    int err = journal_append(r->journal, &rec);
    if (err != 0 && r->journal_err == 0)
        r->journal_err = err;
}

static void show_error(void *arg, uint64_t where, const char *reason)
{
    replay_t *r = arg;
    if (r->errors_shown++ < 20)
        fprintf(stderr, "tickd replay: %s: %" PRIu64 ": %s\n", r->path, where, reason);
    else if (r->errors_shown == 21)
        fprintf(stderr, "tickd replay: %s: more errors; only the count is kept\n", r->path);
}

/* The format from the file name, else from its first bytes. */
static enum ingest_format sniff(const char *path, const unsigned char *head, size_t n)
{
    const char *dot = strrchr(path, '.');
    if (dot != NULL) {
        if (strcmp(dot, ".itch") == 0 || strcmp(dot, ".bin") == 0)
            return INGEST_ITCH;
        if (strcmp(dot, ".csv") == 0)
            return INGEST_CSV;
        if (strcmp(dot, ".tlog") == 0)
            return INGEST_TLOG;
    }
    if (n >= JOURNAL_HEADER_SIZE && journal_header_valid(head))
        return INGEST_TLOG;
    if (n > 0 && (head[0] == '#' || head[0] == 'T' || head[0] == 'Q'))
        return INGEST_CSV;
    return INGEST_ITCH;
}

static int parse_args(replay_t *r, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--json") == 0) {
            r->json = 1;
            continue;
        }
        if (arg[0] != '-' && r->path == NULL) {
            r->path = arg;
            continue;
        }
        if (val == NULL) {
            fprintf(stderr, "tickd replay: %s needs a value\n", arg);
            return -EINVAL;
        }
        i++;
        if (strcmp(arg, "--format") == 0) {
            r->fmt = ingest_format_parse(val);
            if (r->fmt == 0 || r->fmt == INGEST_MOLD) {
                fprintf(stderr, "tickd replay: --format %s: expected itch, csv or tlog\n", val);
                return -EINVAL;
            }
        } else if (strcmp(arg, "--speed") == 0) {
            char *end;
            r->speed = strcmp(val, "max") == 0 ? 0 : strtod(val, &end);
            if (strcmp(val, "max") != 0 && (*end != '\0' || !(r->speed > 0))) {
                fprintf(stderr, "tickd replay: --speed %s: expected max or a number > 0\n", val);
                return -EINVAL;
            }
        } else if (strcmp(arg, "--journal") == 0) {
            r->journal_dir = val;
        } else if (strcmp(arg, "--fsync") == 0) {
            if (strcmp(val, "always") == 0)
                r->fsync = JOURNAL_FSYNC_ALWAYS;
            else if (strcmp(val, "interval") == 0)
                r->fsync = JOURNAL_FSYNC_INTERVAL;
            else if (strcmp(val, "never") == 0)
                r->fsync = JOURNAL_FSYNC_NEVER;
            else {
                fprintf(stderr, "tickd replay: --fsync %s: expected always, interval or never\n",
                        val);
                return -EINVAL;
            }
        } else {
            fprintf(stderr, "tickd replay: unknown option %s\n", arg);
            return -EINVAL;
        }
    }
    if (r->path == NULL) {
        fputs("usage: tickd replay FILE [--format itch|csv|tlog] [--speed max|N] [--json] "
              "[--journal DIR] [--fsync always|interval|never]\n",
              stderr);
        return -EINVAL;
    }
    return 0;
}

static int open_journal(replay_t *r)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char name[64], path[4096];
    journal_filename(name, sizeof(name), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (snprintf(path, sizeof(path), "%s/%s", r->journal_dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int err = journal_open(path, r->fsync, 0, &r->journal);
    if (err != 0)
        fprintf(stderr, "tickd replay: cannot open journal %s: %s\n", path, strerror(-err));
    return err;
}

static void progress(uint64_t done, uint64_t total, uint64_t messages)
{
    int pct = total > 0 ? (int)(done * 100 / total) : 100;
    char bar[41];
    memset(bar, '#', (size_t)(pct * 40 / 100));
    memset(bar + pct * 40 / 100, '.', (size_t)(40 - pct * 40 / 100));
    bar[40] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %" PRIu64 " messages", bar, pct, messages);
}

static void collect_if_due(heap_t *heap)
{
    int gen = gc_should_collect(heap);
    if (gen >= 0)
        gc_collect(heap, gen);
}

/* Sleeps until the replay clock reaches exchange time ts. A wait of more
 * than a second (the hours before the open, a halt) is skipped: the clock is
 * moved forward instead. */
static void wait_for(const replay_t *r, int64_t *t0, int64_t *wall0, int64_t ts)
{
    int64_t due = *wall0 + (int64_t)((double)(ts - *t0) / r->speed);
    int64_t now = cli_monotonic_ns();
    if (due <= now)
        return;
    if (due - now > 1000000000) {
        *t0 = ts;
        *wall0 = now;
        return;
    }
    int64_t ns = due - now < 100000000 ? due - now : 100000000;
    struct timespec d = {ns / 1000000000, ns % 1000000000};
    nanosleep(&d, NULL);
}

static void print_summary(const replay_t *r, const ingest_stats_t *is, const market_stats_t *ms,
                          double seconds, const heap_stats_t *hs, uint64_t collections)
{
    double rate = seconds > 0 ? (double)is->messages / seconds : 0;
    uint64_t peak = hs->mapped_bytes_peak + hs->large_bytes_peak;
    if (r->json) {
        printf("{\"file\":\"%s\",\"format\":\"%s\",\"messages\":%" PRIu64 ",\"ticks\":%" PRIu64
               ",\"trades\":%" PRIu64 ",\"quotes\":%" PRIu64 ",\"decode_errors\":%" PRIu64
               ",\"rejected\":%" PRIu64 ",\"seconds\":%.6f,\"messages_per_second\":%.0f"
               ",\"peak_mapped_bytes\":%" PRIu64 ",\"gc_collections\":%" PRIu64
               ",\"journal_records\":%" PRIu64 "}\n",
               r->path, ingest_format_name(r->fmt), is->messages, ms->trades + ms->quotes,
               ms->trades, ms->quotes, is->decode_errors, is->rejected, seconds, rate, peak,
               collections, r->journal_records);
        return;
    }
    printf("file               %s (%s)\n", r->path, ingest_format_name(r->fmt));
    printf("messages           %" PRIu64 "\n", is->messages);
    printf("ticks              %" PRIu64 " (%" PRIu64 " trades, %" PRIu64 " quotes)\n",
           ms->trades + ms->quotes, ms->trades, ms->quotes);
    printf("decode errors      %" PRIu64 "\n", is->decode_errors);
    printf("rejected           %" PRIu64 "\n", is->rejected);
    printf("seconds            %.3f\n", seconds);
    printf("messages/second    %.0f\n", rate);
    printf("peak mapped bytes  %" PRIu64 "\n", peak);
    printf("gc collections     %" PRIu64 "\n", collections);
    if (r->journal_dir != NULL)
        printf("journal records    %" PRIu64 "\n", r->journal_records);
}

/* Runs the mapped file through the ingest a chunk at a time: the chunk ends
 * are the safe points where the collector may run and progress is shown. */
static void run(replay_t *r, const unsigned char *data, size_t total, heap_t *heap, market_t *m,
                ingest_t *ing)
{
    int show_progress = isatty(STDERR_FILENO);
    int64_t wall0 = cli_monotonic_ns(), last_shown = 0, t0 = 0;
    int have_t0 = 0;
    if (r->fmt == 0)
        r->fmt = sniff(r->path, data, total);
    ingest_init(ing, r->fmt, m, show_error, r);
    for (size_t done = 0; done < total;) {
        size_t n = total - done < REPLAY_CHUNK ? total - done : REPLAY_CHUNK;
        ingest_push(ing, data + done, n, cli_realtime_ns());
        done += n;
        if (r->speed == 0) {
            ingest_run(ing, INT64_MAX, UINT64_MAX, NULL);
        } else {
            int64_t next;
            while (ingest_run(ing,
                              have_t0
                                  ? t0 + (int64_t)((double)(cli_monotonic_ns() - wall0) * r->speed)
                                  : INT64_MIN,
                              UINT64_MAX, &next) == 1) {
                if (!have_t0) {
                    t0 = next, have_t0 = 1;
                    wall0 = cli_monotonic_ns();
                    continue;
                }
                wait_for(r, &t0, &wall0, next);
                collect_if_due(heap);
            }
        }
        collect_if_due(heap);
        int64_t now = cli_monotonic_ns();
        if (show_progress && now - last_shown > 200000000) {
            progress(done, total, ing->stats.messages);
            last_shown = now;
        }
    }
    ingest_finish(ing);
    if (show_progress) {
        progress(total, total, ing->stats.messages);
        fputc('\n', stderr);
    }
}

int cmd_replay(int argc, char **argv)
{
    replay_t r = {.fsync = JOURNAL_FSYNC_NEVER};
    if (parse_args(&r, argc, argv) != 0)
        return EX_USAGE_CODE;
    int fd = open(r.path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "tickd replay: cannot open %s: %s\n", r.path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    size_t total = (size_t)st.st_size;
    void *data = total > 0 ? mmap(NULL, total, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (data == MAP_FAILED) {
        fprintf(stderr, "tickd replay: cannot map %s: %s\n", r.path, strerror(errno));
        return 1;
    }
    if (data != NULL)
        madvise(data, total, MADV_SEQUENTIAL);

    heap_t *heap = NULL;
    market_t *m = NULL;
    static ingest_t ing;
    int status = 1, err = heap_create(NULL, &heap);
    if (err == 0 && r.journal_dir != NULL)
        err = open_journal(&r);
    if (err == 0)
        err = market_create(heap, 0, r.journal != NULL ? journal_sink : NULL, &r, &m);
    if (err != 0) {
        fprintf(stderr, "tickd replay: %s\n", strerror(-err));
        goto out;
    }
    int64_t start = cli_monotonic_ns();
    run(&r, data, total, heap, m, &ing);
    status = 0;
    if (r.journal != NULL) {
        r.journal_records = journal_records(r.journal);
        err = journal_close(r.journal);
        if (err == 0)
            err = r.journal_err;
        if (err != 0) {
            fprintf(stderr, "tickd replay: journal: %s\n", strerror(-err));
            status = 1;
        }
    }
    double seconds = (double)(cli_monotonic_ns() - start) / 1e9;

    heap_stats_t hs;
    gc_stats_t gs;
    heap_get_stats(heap, &hs);
    gc_get_stats(heap, &gs);
    uint64_t collections = 0;
    for (int g = 0; g < GC_NGENERATIONS; g++)
        collections += gs.generations[g].collections;
    market_stats_t ms = *market_stats(m);
    if (status == 0)
        print_summary(&r, &ing.stats, &ms, seconds, &hs, collections);
    r.journal = NULL;
out:
    market_destroy(m);
    heap_destroy(heap);
    if (data != NULL)
        munmap(data, total);
    return status;
}

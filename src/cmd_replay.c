/*
 * cmd_replay.c - `tickd replay FILE`: a recorded day through the whole
 * pipeline (decode, objects, books, ticks, optionally the journal) with no
 * network, then a summary.
 *
 * The file is mapped and handed to an ingest (feed/ingest.c) 4 MiB at a time.
 * Between chunks, a safe point, the cycle collector runs when a threshold was
 * crossed, exactly as the daemon's timer would. At --speed N the replay
 * follows the recorded exchange timestamps N times faster than real time,
 * in chunks of 64 KiB so that progress moves at a human pace.
 *
 * On a terminal a progress line is drawn on stderr: "reading FILE ..." from
 * the start, then percent, messages, rate, elapsed time, ETA and the market
 * clock (the exchange time of the latest message). It is redrawn at most ten
 * times a second, from the safe points only: the tick path never makes a
 * system call for it. Ctrl-C (SIGINT) stops the replay at the next safe
 * point; the line is ended, the summary so far is printed, marked as
 * interrupted, and the exit status is 130.
 *
 * --bars 1m --out FILE builds bars of the day (feed/bars.h) from its trades
 * and writes them to FILE as CSV: the header line payload_bar_csv_header,
 * then one line per bar as a CSV subscriber reads it (src/tick_format.c:
 * B,start,symbol,interval,open,high,low,close,volume,vwap,trades), in the
 * order they close. --bars takes one interval or several separated by
 * commas (1s,1m); the bars align to midnight in the file's clock (ITCH
 * timestamps are ns since midnight; CSV and journal ticks as recorded).
 * The bars still open at the end of the file are written then; an
 * interrupted replay writes none of those.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc/object.h"
#include "src/cli.h"
#include "src/clock.h"
#include "feed/bars.h"
#include "feed/ingest.h"
#include "src/tick_format.h"

#define REPLAY_CHUNK       (4u << 20)
#define REPLAY_CHUNK_PACED (64u << 10)
#define PROGRESS_PERIOD_NS 100000000 /* at most ten redraws a second */
#define NS_PER_DAY         (86400 * (int64_t)1000000000)

const char cmd_replay_usage[] =
    "usage: tickd replay FILE [--format itch|csv|tlog] [--speed max|N] [--json]\n"
    "                         [--journal DIR] [--fsync always|interval|never]\n"
    "                         [--bars IV[,IV...] --out BARS.csv]\n"
    "\n"
    "Runs a recorded day through decoding, objects, books and ticks (and the\n"
    "journal) with no network, then prints a summary.\n"
    "\n"
    "  FILE                 ITCH 5.0 (BinaryFILE), CSV ticks, or a tickd journal\n"
    "  --format F           itch, csv or tlog (default: from the name or the first\n"
    "                       bytes of FILE)\n"
    "  --speed max|N        as fast as possible (default), or N times the recorded\n"
    "                       speed, N a number above 0 (0.5, 10, ...)\n"
    "  --json               the summary as one JSON object\n"
    "  --journal DIR        also append every tick to DIR's journal of today\n"
    "  --fsync P            with --journal: always, interval or never (default)\n"
    "  --bars IV            build OHLCV bars of each interval IV (1s, 1m, 5m, 1h:\n"
    "                       a whole number of s, m or h, 1s to 24h; several\n"
    "                       separated by commas) and write them to --out as CSV\n"
    "  --out FILE           with --bars: the CSV file of bars (a header line, then\n"
    "                       kind,start,symbol,interval,open,high,low,close,volume,\n"
    "                       vwap,trades)\n"
    "\n"
    "On a terminal a progress line shows percent, rate, elapsed time, ETA and the\n"
    "market clock. Ctrl-C stops the replay and prints the summary so far.\n"
    "\n"
    "exit status: 0 done, 1 a journal or bars write failed, 64 a bad argument,\n"
    "66 FILE cannot be opened or read, 73 the journal or --out cannot be opened\n"
    "for writing, 75 the journal is held by a running tickd, 130 interrupted\n";

/* Set by SIGINT; the run loop looks at it at its safe points. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* The progress line on stderr. */
typedef struct progress {
    int on;        /* stderr is a terminal */
    int64_t start; /* monotonic ns when the replay began */
    int64_t last;  /* monotonic ns of the last redraw */
    int width;     /* characters of the line drawn last; 0 when none is open */
} progress_t;

typedef struct replay {
    const char *path;
    enum ingest_format fmt;
    double speed; /* 0: as fast as possible */
    int json;
    const char *journal_dir;
    enum journal_fsync fsync;
    journal_writer_t *journal;
    int dir_lock;             /* the journal directory's lock, -1 when not held */
    uint64_t journal_records; /* appended, read before the journal is closed */
    int journal_err;
    uint64_t errors_shown;
    uint64_t bytes_done;  /* bytes handed to the ingest */
    uint64_t bytes_total; /* bytes in the file */
    int interrupted;      /* stopped by SIGINT before the end */
    progress_t progress;
    int64_t bar_intervals[BARS_MAX_INTERVALS]; /* --bars */
    size_t nbars;
    const char *out_path; /* --out */
    FILE *out;
    bars_t *bars;
    uint64_t bars_written;
} replay_t;

static void journal_sink(void *arg, tick_t *t)
{
    replay_t *r = arg;
    journal_rec_t rec;
    tick_to_journal_rec(t, &rec);
    int err = journal_append(r->journal, &rec);
    if (err != 0 && r->journal_err == 0)
        r->journal_err = err;
}

/* A closed bar: a line of --out (a write error shows at fclose()). */
static void write_bar(void *arg, bar_t *bar)
{
    replay_t *r = arg;
    char line[PAYLOAD_BAR_TEXT_MAX + 1];
    int n = payload_format_bar(bar, PAYLOAD_CSV, line, sizeof line - 1);
    line[n] = '\n';
    fwrite(line, 1, (size_t)n + 1, r->out);
    r->bars_written++;
}

/* The market's sink with --journal and/or --bars. */
static void replay_sink(void *arg, tick_t *t)
{
    replay_t *r = arg;
    if (r->journal != NULL)
        journal_sink(r, t);
    if (r->bars == NULL)
        return;
    if (t->kind == TICK_TRADE)
        bars_symbol_trade(r->bars, t->sym, t->price, t->size, t->ts_exch, t->ts_recv);
    else
        bars_clock(r->bars, t->ts_exch, t->ts_recv);
}

/* --bars 1m or --bars 1s,1m into r. 0 or -EINVAL (told). */
static int parse_bars(replay_t *r, const char *val)
{
    const char *p = val;
    for (;;) {
        size_t n = strcspn(p, ",");
        int64_t ns;
        if (r->nbars == BARS_MAX_INTERVALS || bars_interval_parse(p, n, &ns) != 0) {
            fprintf(stderr,
                    "tickd replay: --bars takes up to %d intervals such as 1s, 1m or 5m (a whole "
                    "number of s, m or h, 1s to 24h, separated by commas), got %s (see: tickd "
                    "replay --help)\n",
                    BARS_MAX_INTERVALS, val);
            return -EINVAL;
        }
        for (size_t i = 0; i < r->nbars; i++)
            if (r->bar_intervals[i] == ns) {
                fprintf(stderr, "tickd replay: --bars names an interval twice: %s\n", val);
                return -EINVAL;
            }
        r->bar_intervals[r->nbars++] = ns;
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
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

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "tickd replay: %s%s (see: tickd replay --help)\n", what, arg);
    return -EINVAL;
}

static int parse_args(replay_t *r, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--json") == 0) {
            r->json = 1;
            continue;
        }
        if (arg[0] != '-') {
            if (r->path != NULL)
                return usage_error("one FILE only, got another: ", arg);
            r->path = arg;
            continue;
        }
        if (strcmp(arg, "--format") != 0 && strcmp(arg, "--speed") != 0 &&
            strcmp(arg, "--journal") != 0 && strcmp(arg, "--fsync") != 0 &&
            strcmp(arg, "--bars") != 0 && strcmp(arg, "--out") != 0)
            return usage_error("unknown option ", arg);
        if (val == NULL) {
            fprintf(stderr, "tickd replay: %s needs a value (see: tickd replay --help)\n", arg);
            return -EINVAL;
        }
        i++;
        if (strcmp(arg, "--format") == 0) {
            r->fmt = ingest_format_parse(val);
            if (r->fmt == 0 || r->fmt == INGEST_MOLD)
                return usage_error("--format must be itch, csv or tlog, got ", val);
        } else if (strcmp(arg, "--speed") == 0) {
            char *end;
            r->speed = strcmp(val, "max") == 0 ? 0 : strtod(val, &end);
            if (strcmp(val, "max") != 0 && (*end != '\0' || !(r->speed > 0) || !isfinite(r->speed)))
                return usage_error("--speed must be max or a number above 0 (times the recorded "
                                   "speed), got ",
                                   val);
        } else if (strcmp(arg, "--journal") == 0) {
            r->journal_dir = val;
        } else if (strcmp(arg, "--bars") == 0) {
            if (parse_bars(r, val) != 0)
                return -EINVAL;
        } else if (strcmp(arg, "--out") == 0) {
            r->out_path = val;
        } else if (strcmp(val, "always") == 0) {
            r->fsync = JOURNAL_FSYNC_ALWAYS;
        } else if (strcmp(val, "interval") == 0) {
            r->fsync = JOURNAL_FSYNC_INTERVAL;
        } else if (strcmp(val, "never") == 0) {
            r->fsync = JOURNAL_FSYNC_NEVER;
        } else {
            return usage_error("--fsync must be always, interval or never, got ", val);
        }
    }
    if (r->path == NULL)
        return usage_error("FILE is missing", "");
    if (r->nbars > 0 && r->out_path == NULL)
        return usage_error("--bars needs --out FILE, the CSV file to write the bars to", "");
    if (r->out_path != NULL && r->nbars == 0)
        return usage_error("--out is the file of --bars; add --bars with an interval such as 1m",
                           "");
    return 0;
}

/* Creates --out (with its header) and the bar builder that writes to it.
 * 0, -ENOMEM, or another negative errno (told) when the file cannot be
 * created or written. */
static int open_bars(replay_t *r, heap_t *heap)
{
    r->out = fopen(r->out_path, "we");
    if (r->out == NULL || fprintf(r->out, "%s\n", payload_bar_csv_header) < 0) {
        int err = errno != 0 ? errno : EIO;
        fprintf(stderr, "tickd replay: cannot create %s: %s\n", r->out_path, strerror(err));
        return -err;
    }
    int err = bars_create(heap, r->bar_intervals, r->nbars, 0, 0, write_bar, r, &r->bars);
    if (err != 0)
        fprintf(stderr, "tickd replay: bars: %s\n", strerror(-err));
    return err;
}

/* Takes the journal directory (made if it is not there; as the daemon does)
 * and opens today's file. */
static int open_journal(replay_t *r)
{
    char err[512];
    if (mkdir(r->journal_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "tickd replay: cannot create journal directory %s: %s\n", r->journal_dir,
                strerror(errno));
        return -errno;
    }
    int e = journal_lock_dir(r->journal_dir, &r->dir_lock, err, sizeof(err));
    if (e != 0) {
        r->dir_lock = -1;
        fprintf(stderr, "tickd replay: %s\n", err);
        return e;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char name[64], path[4096];
    journal_filename(name, sizeof(name), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (snprintf(path, sizeof(path), "%s/%s", r->journal_dir, name) >= (int)sizeof(path)) {
        fprintf(stderr, "tickd replay: journal directory name too long: %s\n", r->journal_dir);
        return -ENAMETOOLONG;
    }
    e = journal_open(path, r->fsync, 0, &r->journal);
    if (e == -EBUSY)
        fprintf(stderr,
                "tickd replay: journal %s is held by a running tickd; use another --journal "
                "DIR\n",
                path);
    else if (e != 0)
        fprintf(stderr, "tickd replay: cannot open journal %s: %s\n", path, strerror(-e));
    return e;
}

/* HH:MM:SS of an exchange timestamp: ITCH counts ns since midnight, CSV and
 * the journal carry epoch ns, shown as the local time of day. */
static void market_clock(int64_t ts, char out[16])
{
    if (ts <= 0) {
        strcpy(out, "--:--:--");
        return;
    }
    unsigned s;
    if (ts < NS_PER_DAY) {
        s = (unsigned)(ts / 1000000000);
    } else {
        time_t t = (time_t)(ts / 1000000000);
        struct tm tm;
        localtime_r(&t, &tm);
        s = (unsigned)(tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
    }
    snprintf(out, 16, "%02u:%02u:%02u", s / 3600 % 24, s / 60 % 60, s % 60);
}

/* A duration as M:SS, or H:MM:SS from an hour on (at most 99:59:59). */
static void duration(double seconds, char out[16])
{
    unsigned s = seconds <= 0 ? 0 : seconds >= 359999 ? 359999 : (unsigned)seconds;
    if (s >= 3600)
        snprintf(out, 16, "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, 16, "%u:%02u", s / 60, s % 60);
}

/* A count as 950, 12.3k, 4.5M. */
static void count(double n, char *out, size_t len)
{
    if (n < 1e3)
        snprintf(out, len, "%.0f", n);
    else if (n < 1e6)
        snprintf(out, len, "%.1fk", n / 1e3);
    else
        snprintf(out, len, "%.1fM", n / 1e6);
}

/* Draws the line (from its start, blanking what a longer one left). */
static void progress_line(progress_t *p, const char *line)
{
    int n = (int)strlen(line);
    fprintf(stderr, "\r%s%*s", line, p->width > n ? p->width - n : 0, "");
    p->width = n;
}

static void progress_begin(replay_t *r, size_t total)
{
    progress_t *p = &r->progress;
    p->on = isatty(STDERR_FILENO);
    p->start = p->last = clock_monotonic_ns();
    if (!p->on)
        return;
    char line[512], size[16];
    count((double)total, size, sizeof(size));
    snprintf(line, sizeof(line), "reading %s (%sB) ...", r->path, size);
    progress_line(p, line);
}

static void progress_draw(replay_t *r, size_t total, const ingest_t *ing, int64_t now)
{
    progress_t *p = &r->progress;
    uint64_t done = r->bytes_done;
    int pct = total > 0 ? (int)(done * 100 / total) : 100;
    char bar[21];
    memset(bar, '#', (size_t)(pct / 5));
    memset(bar + pct / 5, '.', (size_t)(20 - pct / 5));
    bar[20] = '\0';
    double elapsed = (double)(now - p->start) / 1e9;
    char msgs[16], rate[16], took[16], eta[16], clock[16], line[160];
    count((double)ing->stats.messages, msgs, sizeof(msgs));
    count(elapsed > 0 ? (double)ing->stats.messages / elapsed : 0, rate, sizeof(rate));
    duration(elapsed, took);
    if (done > 0)
        duration(elapsed * (double)(total - done) / (double)done, eta);
    else
        memcpy(eta, "-:--", 5);
    market_clock(ing->last_ts, clock);
    snprintf(line, sizeof(line), "[%s] %3d%%  %s msgs  %s msg/s  %s ETA %s  %s", bar, pct, msgs,
             rate, took, eta, clock);
    progress_line(p, line);
    p->last = now;
}

/* Redraws when the last redraw is PROGRESS_PERIOD_NS old. */
static void progress_tick(replay_t *r, size_t total, const ingest_t *ing, int64_t now)
{
    if (r->progress.on && now - r->progress.last >= PROGRESS_PERIOD_NS)
        progress_draw(r, total, ing, now);
}

/* Ends the line, so what follows starts on a fresh one. */
static void progress_end(replay_t *r, size_t total, const ingest_t *ing)
{
    if (!r->progress.on)
        return;
    progress_draw(r, total, ing, clock_monotonic_ns());
    fputc('\n', stderr);
    r->progress.width = 0;
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
    int64_t now = clock_monotonic_ns();
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
               ",\"rejected\":%" PRIu64 ",\"broken_trades\":%" PRIu64
               ",\"seconds\":%.6f,\"messages_per_second\":%.0f"
               ",\"peak_mapped_bytes\":%" PRIu64 ",\"gc_collections\":%" PRIu64
               ",\"journal_records\":%" PRIu64 ",\"bars\":%" PRIu64 ",\"interrupted\":%s}\n",
               r->path, ingest_format_name(r->fmt), is->messages, ms->trades + ms->quotes,
               ms->trades, ms->quotes, is->decode_errors, is->rejected, ms->broken_trades, seconds,
               rate, peak, collections, r->journal_records, r->bars_written,
               r->interrupted ? "true" : "false");
        return;
    }
    printf("file               %s (%s)\n", r->path, ingest_format_name(r->fmt));
    printf("messages           %" PRIu64 "\n", is->messages);
    printf("ticks              %" PRIu64 " (%" PRIu64 " trades, %" PRIu64 " quotes)\n",
           ms->trades + ms->quotes, ms->trades, ms->quotes);
    printf("decode errors      %" PRIu64 "\n", is->decode_errors);
    printf("rejected           %" PRIu64 "\n", is->rejected);
    printf("broken trades      %" PRIu64 "\n", ms->broken_trades);
    printf("seconds            %.3f\n", seconds);
    printf("messages/second    %.0f\n", rate);
    printf("peak mapped bytes  %" PRIu64 "\n", peak);
    printf("gc collections     %" PRIu64 "\n", collections);
    if (r->journal_dir != NULL)
        printf("journal records    %" PRIu64 "\n", r->journal_records);
    if (r->out_path != NULL)
        printf("bars               %" PRIu64 " (%s)\n", r->bars_written, r->out_path);
    if (r->interrupted)
        printf("interrupted        by Ctrl-C, %" PRIu64 " of %" PRIu64 " bytes read: the figures "
               "are of that part\n",
               r->bytes_done, r->bytes_total);
}

/* Runs the mapped file through the ingest a chunk at a time: the chunk ends
 * (and, paced, the waits between messages) are the safe points where the
 * collector may run, progress is shown and Ctrl-C is heard. */
static void run(replay_t *r, const unsigned char *data, size_t total, heap_t *heap, market_t *m,
                ingest_t *ing)
{
    int64_t wall0 = clock_monotonic_ns(), t0 = 0;
    int have_t0 = 0;
    size_t chunk = r->speed == 0 ? REPLAY_CHUNK : REPLAY_CHUNK_PACED;
    if (r->fmt == 0)
        r->fmt = sniff(r->path, data, total);
    ingest_init(ing, r->fmt, m, show_error, r);
    r->bytes_total = total;
    progress_begin(r, total);
    while (r->bytes_done < total && !interrupted) {
        size_t n = total - r->bytes_done < chunk ? total - r->bytes_done : chunk;
        ingest_push(ing, data + r->bytes_done, n, clock_realtime_ns());
        r->bytes_done += n;
        if (r->speed == 0) {
            ingest_run(ing, INT64_MAX, UINT64_MAX, NULL);
        } else {
            int64_t next, now = clock_monotonic_ns();
            while (!interrupted) {
                /* A paced tick is received when it is released, not when read. */
                ingest_stamp(ing, clock_realtime_ns());
                int64_t upto =
                    have_t0 ? t0 + (int64_t)((double)(now - wall0) * r->speed) : INT64_MIN;
                if (ingest_run(ing, upto, UINT64_MAX, &next) != 1)
                    break;
                if (!have_t0) {
                    t0 = next, have_t0 = 1;
                    wall0 = now = clock_monotonic_ns();
                    continue;
                }
                wait_for(r, &t0, &wall0, next);
                collect_if_due(heap);
                now = clock_monotonic_ns();
                progress_tick(r, total, ing, now);
            }
        }
        collect_if_due(heap);
        progress_tick(r, total, ing, clock_monotonic_ns());
    }
    r->interrupted = interrupted;
    if (!r->interrupted)
        ingest_finish(ing); /* an interrupted stream is not cut short: it was stopped */
    progress_end(r, total, ing);
}

int cmd_replay(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(cmd_replay_usage, stdout);
        return 0;
    }
    replay_t r = {.fsync = JOURNAL_FSYNC_NEVER, .dir_lock = -1};
    if (parse_args(&r, argc, argv) != 0)
        return EX_USAGE;
    int fd = open(r.path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "tickd replay: cannot open %s: %s\n", r.path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return EX_NOINPUT;
    }
    size_t total = (size_t)st.st_size;
    void *data = total > 0 ? mmap(NULL, total, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (data == MAP_FAILED) {
        fprintf(stderr, "tickd replay: cannot map %s: %s\n", r.path, strerror(errno));
        return EX_NOINPUT;
    }
    if (data != NULL)
        madvise(data, total, MADV_SEQUENTIAL);

    heap_t *heap = NULL;
    market_t *m = NULL;
    static ingest_t ing;
    int status = EXIT_FAILURE, err = heap_create(NULL, &heap);
    if (err == 0)
        err = obj_runtime_create(heap);
    if (err == 0 && r.journal_dir != NULL && (err = open_journal(&r)) != 0) {
        status = err == -EBUSY ? EX_TEMPFAIL : EX_CANTCREAT;
        goto out;
    }
    if (err == 0 && r.out_path != NULL && (err = open_bars(&r, heap)) != 0) {
        status = err == -ENOMEM ? EXIT_FAILURE : EX_CANTCREAT;
        goto out;
    }
    if (err == 0)
        err = market_create(heap, 0, r.journal != NULL || r.bars != NULL ? replay_sink : NULL, &r,
                            &m);
    if (err != 0) {
        fprintf(stderr, "tickd replay: %s\n", strerror(-err));
        goto out;
    }
    struct sigaction sa = {.sa_handler = on_sigint}, old_sa;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa); /* no SA_RESTART: a paced wait ends at once */
    int64_t start = clock_monotonic_ns();
    run(&r, data, total, heap, m, &ing);
    sigaction(SIGINT, &old_sa, NULL);
    status = r.interrupted ? CLI_EXIT_INTERRUPTED : 0;
    if (r.bars != NULL && !r.interrupted)
        bars_flush(r.bars); /* the day is over: its open bars are closed */
    if (r.out != NULL) {
        int failed = ferror(r.out);
        if (fclose(r.out) != 0 || failed) {
            fprintf(stderr, "tickd replay: cannot write %s: %s\n", r.out_path,
                    strerror(errno != 0 ? errno : EIO));
            status = EXIT_FAILURE;
        }
        r.out = NULL;
    }
    if (r.journal != NULL) {
        r.journal_records = journal_records(r.journal);
        err = journal_close(r.journal);
        if (err == 0)
            err = r.journal_err;
        if (err != 0) {
            fprintf(stderr, "tickd replay: journal: %s\n", strerror(-err));
            status = EXIT_FAILURE;
        }
    }
    double seconds = (double)(clock_monotonic_ns() - start) / 1e9;

    heap_stats_t hs;
    gc_stats_t gs;
    heap_get_stats(heap, &hs);
    gc_get_stats(heap, &gs);
    uint64_t collections = 0;
    for (int g = 0; g < GC_NGENERATIONS; g++)
        collections += gs.generations[g].collections;
    market_stats_t ms = *market_stats(m);
    if (status != EXIT_FAILURE)
        print_summary(&r, &ing.stats, &ms, seconds, &hs, collections);
    r.journal = NULL;
out:
    if (r.dir_lock >= 0)
        journal_unlock_dir(r.dir_lock);
    if (r.out != NULL)
        fclose(r.out);
    bars_destroy(r.bars);
    market_destroy(m);
    obj_runtime_destroy(heap);
    heap_destroy(heap);
    if (data != NULL)
        munmap(data, total);
    return status;
}

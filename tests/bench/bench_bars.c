/*
 * bench_bars.c - what bars cost on the replay path: the same synthetic ITCH
 * day in memory through tickd's ingest and market, without and with a bar
 * builder fed from the market's sink, side by side in one run.
 *
 *   tickd-bench-bars [--messages N] [--symbols N] [--seed N] [--rounds N]
 *                    [--intervals 1s,1m]   (defaults 5000000 500 1 5 1s,1m)
 *
 * Without bars the market has no sink, as `tickd replay --speed max` runs
 * without --journal or --bars. With bars the sink hands every trade to
 * bars_symbol_trade() and every quote's exchange time to bars_clock(), as
 * `tickd replay --bars` and the daemon do; each closed bar goes to a sink
 * that only counts it (writing the CSV is the replay command's I/O, not the
 * builder's cost). Each round runs the day both ways; the median over rounds
 * of the CPU time of the thread gives ns per message either way, and the
 * difference divided by the day's trades is what the builder costs a trade
 * tick (the quotes' clock calls included in it). No timing is asserted:
 * ctest runs it briefly. It exits 1 if the rounds disagree on the bars made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc/object.h"
#include "feed/bars.h"
#include "feed/gen.h"
#include "feed/ingest.h"
#include "feed/market.h"
#include "tests/bench/bench_host.h"

#define CHUNK      (4u << 20) /* the replay command's read size */
#define MAX_ROUNDS 15

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void count_bar(void *arg, bar_t *bar)
{
    (void)bar;
    (*(uint64_t *)arg)++;
}

static void to_bars(void *arg, tick_t *t)
{
    bars_t *b = arg;
    if (t->kind == TICK_TRADE)
        bars_symbol_trade(b, t->sym, t->price, t->size, t->ts_exch, t->ts_recv);
    else
        bars_clock(b, t->ts_exch, t->ts_recv);
}

static void report_error(void *arg, uint64_t where, const char *reason)
{
    (void)arg;
    fprintf(stderr, "tickd-bench-bars: message %llu: %s\n", (unsigned long long)where, reason);
}

/* One run of the day, with a builder of the n intervals iv when n > 0:
 * CPU ns into *ns, trades into *trades, bars closed into *bars. */
static int run_day(const bench_day_t *day, const int64_t *iv, size_t n, int64_t *ns,
                   uint64_t *trades, uint64_t *bars)
{
    static ingest_t ing;
    heap_t *heap = NULL;
    market_t *m = NULL;
    bars_t *b = NULL;
    *bars = 0;
    int err = heap_create(NULL, &heap);
    if (err == 0)
        err = obj_runtime_create(heap);
    if (err == 0 && n > 0)
        err = bars_create(heap, iv, n, 0, 0, count_bar, bars, &b);
    if (err == 0)
        err = market_create(heap, 0, b != NULL ? to_bars : NULL, b, &m);
    if (err == 0) {
        ingest_init(&ing, INGEST_ITCH, m, report_error, NULL);
        int64_t t0 = cpu_ns();
        for (size_t done = 0; done < day->len;) {
            size_t c = day->len - done < CHUNK ? day->len - done : CHUNK;
            ingest_push(&ing, day->data + done, c, 1);
            ingest_run(&ing, INT64_MAX, UINT64_MAX, NULL);
            int gen = gc_should_collect(heap);
            if (gen >= 0)
                gc_collect(heap, gen);
            done += c;
        }
        if (b != NULL)
            bars_flush(b);
        *ns = cpu_ns() - t0;
        *trades = market_stats(m)->trades;
        if (ing.stats.messages != day->messages || ing.stats.decode_errors != 0)
            err = -EPROTO;
    }
    bars_destroy(b);
    market_destroy(m);
    obj_runtime_destroy(heap);
    heap_destroy(heap);
    return err;
}

static int usage(void)
{
    fprintf(stderr, "usage: tickd-bench-bars [--messages N] [--symbols N] [--seed N] "
                    "[--rounds 1..15] [--intervals IV[,IV...]]\n");
    return 64;
}

int main(int argc, char **argv)
{
    gen_opts_t o = {.messages = 5000000, .symbols = 500, .seed = 1};
    uint64_t rounds = 5;
    int64_t iv[BARS_MAX_INTERVALS] = {1000000000ll, 60000000000ll};
    size_t n = 2;
    const char *iv_text = "1s,1m";
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        const char *val = argv[++i];
        char *end;
        unsigned long long v = strtoull(val, &end, 10);
        if (strcmp(argv[i - 1], "--intervals") == 0) {
            iv_text = val;
            n = 0;
            for (const char *p = val;; p++) {
                size_t len = strcspn(p, ",");
                if (n == BARS_MAX_INTERVALS || bars_interval_parse(p, len, &iv[n++]) != 0)
                    return usage();
                p += len;
                if (*p == '\0')
                    break;
            }
        } else if (*end != '\0' || end == val) {
            return usage();
        } else if (strcmp(argv[i - 1], "--messages") == 0) {
            o.messages = v;
        } else if (strcmp(argv[i - 1], "--symbols") == 0 && v >= 1 && v <= GEN_SYMBOLS_MAX) {
            o.symbols = (uint32_t)v;
        } else if (strcmp(argv[i - 1], "--seed") == 0) {
            o.seed = v;
        } else if (strcmp(argv[i - 1], "--rounds") == 0 && v >= 1 && v <= MAX_ROUNDS) {
            rounds = v;
        } else {
            return usage();
        }
    }

    bench_day_t day = {.messages = o.messages};
    int err = gen_itch(&o, bench_day_write, &day);
    if (err != 0) {
        fprintf(stderr, "tickd-bench-bars: gen_itch: %s\n", strerror(-err));
        return err == -EINVAL ? usage() : 1;
    }
    char cpu[128];
    bench_cpu_model(cpu, sizeof cpu);
    printf("tickd-bench-bars: %llu messages, %u symbols, seed %llu, %llu rounds, bars %s, %s\n",
           (unsigned long long)o.messages, o.symbols, (unsigned long long)o.seed,
           (unsigned long long)rounds, iv_text, cpu);

    double without[MAX_ROUNDS], with[MAX_ROUNDS];
    uint64_t trades = 0, bars = 0, first_bars = 0, none;
    for (uint64_t r = 0; r < rounds && err == 0; r++) {
        int64_t a, b;
        err = run_day(&day, iv, 0, &a, &trades, &none);
        if (err == 0)
            err = run_day(&day, iv, n, &b, &trades, &bars);
        if (r == 0)
            first_bars = bars;
        if (err == 0 && bars != first_bars) {
            fprintf(stderr, "tickd-bench-bars: round %llu made %llu bars, round 0 %llu\n",
                    (unsigned long long)r, (unsigned long long)bars,
                    (unsigned long long)first_bars);
            return 1;
        }
        without[r] = (double)a;
        with[r] = (double)b;
    }
    if (err != 0) {
        fprintf(stderr, "tickd-bench-bars: %s\n", strerror(-err));
        return 1;
    }
    double a = bench_median(without, (unsigned)rounds), b = bench_median(with, (unsigned)rounds);
    printf("day: %llu trades, %llu bars\n", (unsigned long long)trades, (unsigned long long)bars);
    printf("without bars  %8.2f ns/message\n", a / (double)o.messages);
    printf("with bars     %8.2f ns/message\n", b / (double)o.messages);
    printf("bars cost     %8.2f ns/trade (median CPU time difference / trades), %+.1f%% of "
           "the replay\n",
           (b - a) / (double)trades, 100.0 * (b - a) / a);
    return 0;
}

/*
 * bench_replay.c - tickd's ITCH path against a floor: a book builder that
 * does less, on the same synthetic day in memory, side by side in one run.
 *
 *   tickd-bench-replay [--messages N] [--symbols N] [--seed N] [--rounds N]
 *                      (defaults 5000000 500 1 3)
 *
 * tickd's path is what `tickd replay --speed max` runs without a journal:
 * an ingest frames the BinaryFILE bytes (4 MiB chunks, as the replay command
 * reads them), decodes every message and applies it to a market, whose
 * orders and ticks are refcounted objects from the heap's pools (a quote on
 * every change of a best bid or offer, a trade per execution, each tick
 * released when the next one replaces it in the last-value cache); the
 * collector runs when due between chunks.
 *
 * The floor is this file's own minimal book builder, in the shape of the
 * public C++ ones that keep aggregate price levels only: it walks the same
 * framing, reads the few fields it needs straight from the bytes, keeps each
 * live order as 16 bytes in an array indexed by reference number and each
 * side of a book as an array of (price, shares) levels sorted best last. No
 * objects, no ticks, no quotes, no counters.
 *
 * Each round runs the day through tickd and then through the floor; the
 * median over rounds of ns per message (CPU time of the thread, so that time
 * scheduled out on a shared machine does not count) is reported for each, and
 * tickd/floor, the floor's time over tickd's (above 1.0: tickd is faster).
 * Then one more pass of each with a clock read around every message gives
 * ns per message type (the clock's own cost, measured, is subtracted; see
 * tickd_bench_day_timed() for what tickd's pass runs).
 * After tickd's first round, before the market is dropped, it reports the
 * resident bytes the day added to the process against the bytes of the live
 * objects (heap blocks in use and book levels in use), with the target of at
 * most 2x those plus 16 MiB.
 *
 * The two must agree: at the end of every round the floor's best bid and
 * offer of every stock (price and shares) must equal tickd's, or the
 * program exits 1. No timing is asserted: ctest runs it briefly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc/object.h"
#include "feed/be.h"
#include "feed/book.h"
#include "feed/gen.h"
#include "feed/ingest.h"
#include "feed/itch.h"
#include "feed/market.h"
#include "tests/bench/bench_host.h"

#define CHUNK      (4u << 20) /* the replay command's read size */
#define MAX_ROUNDS 15
#define MIB        (1024.0 * 1024.0)

static const char types[] = "AFECXDUPQ"; /* the per-type table's rows; the rest is "other" */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time of this thread: on a machine shared with other jobs, the time
 * the rounds were scheduled out would otherwise count as theirs. */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t resident_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Per-type totals of the instrumented passes, indexed by type byte. */
typedef struct per_type {
    uint64_t count[256];
    int64_t ns[256];
} per_type_t;

/* ---- the floor ---- */

typedef struct floor_order {
    uint32_t price; /* Price(4) as on the wire */
    uint32_t shares;
    uint16_t locate;
    uint8_t ask; /* 1 for a sell order */
} floor_order_t;

typedef struct floor_level {
    uint32_t price;
    uint32_t shares;
} floor_level_t;

typedef struct floor_side {
    floor_level_t *levels; /* best last */
    uint32_t n, cap;
} floor_side_t;

typedef struct floor_book {
    floor_side_t side[2]; /* bid, ask */
} floor_book_t;

typedef struct floor {
    floor_order_t *orders; /* by reference number */
    uint64_t cap;
    floor_book_t *books; /* by stock locate */
} floor_t;

static int floor_init(floor_t *f)
{
    f->cap = 1 << 20;
    f->orders = calloc(f->cap, sizeof(*f->orders));
    f->books = calloc(65536, sizeof(*f->books));
    return f->orders != NULL && f->books != NULL ? 0 : -ENOMEM;
}

static void floor_free(floor_t *f)
{
    for (size_t i = 0; f->books != NULL && i < 65536; i++) {
        free(f->books[i].side[0].levels);
        free(f->books[i].side[1].levels);
    }
    free(f->books);
    free(f->orders);
}

/* Is a better than b on this side? */
static inline int better(int ask, uint32_t a, uint32_t b)
{
    return ask ? a < b : a > b;
}

static int floor_level_add(floor_side_t *s, int ask, uint32_t price, uint32_t shares)
{
    uint32_t i = s->n;
    while (i > 0 && better(ask, s->levels[i - 1].price, price))
        i--;
    if (i > 0 && s->levels[i - 1].price == price) {
        s->levels[i - 1].shares += shares;
        return 0;
    }
    if (s->n == s->cap) {
        uint32_t cap = s->cap != 0 ? 2 * s->cap : 16;
        floor_level_t *grown = realloc(s->levels, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        s->levels = grown;
        s->cap = cap;
    }
    memmove(&s->levels[i + 1], &s->levels[i], (s->n - i) * sizeof(*s->levels));
    s->levels[i] = (floor_level_t){price, shares};
    s->n++;
    return 0;
}

static void floor_level_take(floor_side_t *s, uint32_t price, uint32_t shares)
{
    uint32_t i = s->n;
    while (i > 0 && s->levels[i - 1].price != price)
        i--;
    if (i == 0)
        return;
    floor_level_t *l = &s->levels[i - 1];
    l->shares -= shares;
    if (l->shares == 0) {
        memmove(l, l + 1, (s->n - i) * sizeof(*l));
        s->n--;
    }
}

static int floor_add(floor_t *f, uint64_t ref, uint16_t locate, int ask, uint32_t shares,
                     uint32_t price)
{
    if (ref >= f->cap) {
        uint64_t cap = f->cap;
        while (cap <= ref)
            cap *= 2;
        floor_order_t *grown = realloc(f->orders, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        memset(grown + f->cap, 0, (cap - f->cap) * sizeof(*grown));
        f->orders = grown;
        f->cap = cap;
    }
    f->orders[ref] = (floor_order_t){price, shares, locate, (uint8_t)ask};
    return floor_level_add(&f->books[locate].side[ask], ask, price, shares);
}

/* Takes shares off order ref (all of them when all is set, or when it has
 * no more). */
static void floor_take(floor_t *f, uint64_t ref, uint32_t shares, int all)
{
    if (ref >= f->cap || f->orders[ref].shares == 0)
        return;
    floor_order_t *o = &f->orders[ref];
    if (all || shares > o->shares)
        shares = o->shares;
    floor_level_take(&f->books[o->locate].side[o->ask], o->price, shares);
    o->shares -= shares;
}

static int floor_apply(floor_t *f, const uint8_t *p)
{
    switch (p[0]) {
    case 'A':
    case 'F':
        return floor_add(f, be64_get(p + 11), be16_get(p + 1), p[19] == 'S', be32_get(p + 20),
                         be32_get(p + 32));
    case 'E':
    case 'C':
    case 'X':
        floor_take(f, be64_get(p + 11), be32_get(p + 19), 0);
        return 0;
    case 'D':
        floor_take(f, be64_get(p + 11), 0, 1);
        return 0;
    case 'U': {
        uint64_t orig = be64_get(p + 11);
        if (orig >= f->cap || f->orders[orig].shares == 0)
            return 0;
        floor_order_t o = f->orders[orig];
        floor_take(f, orig, 0, 1);
        return floor_add(f, be64_get(p + 19), o.locate, o.ask, be32_get(p + 27), be32_get(p + 31));
    }
    default:
        return 0;
    }
}

/* One pass of the day through a fresh floor; with pt, a clock read around
 * every message. The floor is left for the caller to compare and free. */
static int floor_day(const bench_day_t *day, floor_t *f, per_type_t *pt)
{
    int err = floor_init(f);
    const uint8_t *p = day->data, *end = day->data + day->len;
    while (err == 0 && end - p >= 2) {
        size_t len = be16_get(p);
        p += 2;
        if ((size_t)(end - p) < len || len == 0)
            return -EPROTO;
        if (pt == NULL) {
            err = floor_apply(f, p);
        } else {
            int64_t t0 = now_ns();
            err = floor_apply(f, p);
            pt->ns[p[0]] += now_ns() - t0;
            pt->count[p[0]]++;
        }
        p += len;
    }
    return err;
}

/* ---- tickd ---- */

typedef struct tickd_day {
    heap_t *heap;
    market_t *market;
} tickd_bench_day_t;

static void collect_if_due(heap_t *heap)
{
    int gen = gc_should_collect(heap);
    if (gen >= 0)
        gc_collect(heap, gen);
}

static int tickd_open(tickd_bench_day_t *t)
{
    int err = heap_create(NULL, &t->heap);
    if (err == 0)
        err = obj_runtime_create(t->heap);
    if (err == 0)
        err = market_create(t->heap, 0, NULL, NULL, &t->market);
    return err;
}

static void tickd_close(tickd_bench_day_t *t)
{
    market_destroy(t->market);
    if (t->heap != NULL) {
        obj_runtime_destroy(t->heap);
        heap_destroy(t->heap);
    }
}

static void report_error(void *arg, uint64_t where, const char *reason)
{
    (void)arg;
    fprintf(stderr, "tickd-bench-replay: message %llu: %s\n", (unsigned long long)where, reason);
}

/* The day through tickd's ingest, as `tickd replay --speed max` runs it. */
static int tickd_day(const bench_day_t *day, tickd_bench_day_t *t)
{
    static ingest_t ing;
    int err = tickd_open(t);
    if (err != 0)
        return err;
    ingest_init(&ing, INGEST_ITCH, t->market, report_error, NULL);
    for (size_t done = 0; done < day->len;) {
        size_t n = day->len - done < CHUNK ? day->len - done : CHUNK;
        ingest_push(&ing, day->data + done, n, 1);
        ingest_run(&ing, INT64_MAX, UINT64_MAX, NULL);
        collect_if_due(t->heap);
        done += n;
    }
    return ing.stats.messages == day->messages && ing.stats.decode_errors == 0 ? 0 : -EPROTO;
}

/* The day one message at a time, with a clock read around each: framed,
 * decoded and applied with itch_decode() and market_itch(), which the build
 * before this benchmark has too, so that one source measures both. No
 * look-ahead (a hint for the next messages would be charged to this one):
 * the figures compare the types, the rounds give the total. */
static int tickd_bench_day_timed(const bench_day_t *day, tickd_bench_day_t *t, per_type_t *pt)
{
    int err = tickd_open(t);
    if (err != 0)
        return err;
    binfile_reader_t r;
    binfile_reader_init(&r);
    binfile_reader_push(&r, day->data, day->len);
    const uint8_t *p;
    size_t len;
    uint64_t n = 0;
    while (binfile_reader_next(&r, &p, &len) == 1) {
        int64_t t0 = now_ns();
        itch_msg_t msg;
        if (itch_decode(p, len, &msg) != 0)
            return -EPROTO;
        market_itch(t->market, &msg, 1);
        pt->ns[p[0]] += now_ns() - t0;
        pt->count[p[0]]++;
        if (++n % 65536 == 0)
            collect_if_due(t->heap);
    }
    return 0;
}

/* ---- the two compared ---- */

typedef struct agree_ctx {
    const floor_t *f;
    uint64_t mismatches;
} agree_ctx_t;

static int agree_symbol(symbol_t *s, void *arg)
{
    agree_ctx_t *c = arg;
    int64_t bid, ask;
    uint32_t bid_size, ask_size;
    market_bbo(s, &bid, &bid_size, &ask, &ask_size);
    const floor_book_t *b = &c->f->books[s->locate];
    const floor_level_t *fb = b->side[0].n > 0 ? &b->side[0].levels[b->side[0].n - 1] : NULL;
    const floor_level_t *fa = b->side[1].n > 0 ? &b->side[1].levels[b->side[1].n - 1] : NULL;
    if (bid != (fb != NULL ? fb->price : 0) || bid_size != (fb != NULL ? fb->shares : 0) ||
        ask != (fa != NULL ? fa->price : 0) || ask_size != (fa != NULL ? fa->shares : 0))
        c->mismatches++;
    return 0;
}

static uint64_t disagreements(const tickd_bench_day_t *t, const floor_t *f)
{
    agree_ctx_t c = {f, 0};
    market_foreach(t->market, agree_symbol, &c);
    return c.mismatches;
}

static int add_levels(symbol_t *s, void *arg)
{
    *(uint64_t *)arg += (uint64_t)(s->book->bid.n + s->book->ask.n) * sizeof(book_level_t);
    return 0;
}

/* The live bytes of a day: heap blocks in use, book levels in use. */
static uint64_t live_bytes(const tickd_bench_day_t *t)
{
    heap_stats_t hs;
    heap_get_stats(t->heap, &hs);
    uint64_t bytes = hs.used_bytes + hs.large_bytes;
    market_foreach(t->market, add_levels, &bytes);
    return bytes;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: tickd-bench-replay [--messages N] [--symbols N] [--seed N] "
            "[--rounds 1..%d]\n",
            MAX_ROUNDS);
    return 64;
}

static void print_types(const per_type_t *tk, const per_type_t *fl, int64_t clock_ns)
{
    printf("%-6s %10s %10s %10s %8s\n", "type", "messages", "tickd ns", "floor ns", "t/f");
    uint64_t other_n = 0;
    int64_t other_tk = 0, other_fl = 0;
    for (int b = 0; b < 256; b++) {
        if (tk->count[b] == 0 || strchr(types, b) != NULL)
            continue;
        other_n += tk->count[b];
        other_tk += tk->ns[b];
        other_fl += fl->ns[b];
    }
    for (size_t i = 0; i <= sizeof(types) - 1; i++) {
        uint64_t n = i < sizeof(types) - 1 ? tk->count[(uint8_t)types[i]] : other_n;
        if (n == 0)
            continue;
        int64_t a = i < sizeof(types) - 1 ? tk->ns[(uint8_t)types[i]] : other_tk;
        int64_t b = i < sizeof(types) - 1 ? fl->ns[(uint8_t)types[i]] : other_fl;
        /* Below the clock's own cost is below what it can tell apart: 0. */
        double ta = (double)a / (double)n - (double)clock_ns;
        double tb = (double)b / (double)n - (double)clock_ns;
        ta = ta > 0 ? ta : 0;
        tb = tb > 0 ? tb : 0;
        char name[8];
        snprintf(name, sizeof name, "%c", i < sizeof(types) - 1 ? types[i] : '*');
        printf("%-6s %10llu %10.1f %10.1f %8.2f\n", i < sizeof(types) - 1 ? name : "other",
               (unsigned long long)n, ta, tb, ta > 0 ? tb / ta : 0.0);
    }
}

/* The cost of one now_ns() pair, as the instrumented passes pay it. */
static int64_t clock_cost(void)
{
    int64_t sum = 0;
    for (int i = 0; i < 1000000; i++) {
        int64_t t0 = now_ns();
        sum += now_ns() - t0;
    }
    return sum / 1000000;
}

int main(int argc, char **argv)
{
    gen_opts_t o = {.messages = 5000000, .symbols = 500, .seed = 1};
    uint64_t rounds = 3, v;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc || parse_u64(argv[i + 1], &v) != 0)
            return usage();
        if (strcmp(argv[i], "--messages") == 0)
            o.messages = v;
        else if (strcmp(argv[i], "--symbols") == 0 && v >= 1 && v <= GEN_SYMBOLS_MAX)
            o.symbols = (uint32_t)v;
        else if (strcmp(argv[i], "--seed") == 0)
            o.seed = v;
        else if (strcmp(argv[i], "--rounds") == 0 && v >= 1 && v <= MAX_ROUNDS)
            rounds = v;
        else
            return usage();
        i++;
    }

    bench_day_t day = {.messages = o.messages};
    int err = gen_itch(&o, bench_day_write, &day);
    if (err != 0) {
        fprintf(stderr, "tickd-bench-replay: gen_itch: %s\n", strerror(-err));
        return err == -EINVAL ? usage() : 1;
    }
    char cpu[128];
    bench_cpu_model(cpu, sizeof cpu);
    printf("tickd-bench-replay: %llu messages, %u symbols, seed %llu, %llu rounds, %s\n",
           (unsigned long long)o.messages, o.symbols, (unsigned long long)o.seed,
           (unsigned long long)rounds, cpu);

    double tk_ns[MAX_ROUNDS], fl_ns[MAX_ROUNDS];
    for (uint64_t round = 0; round < rounds && err == 0; round++) {
        tickd_bench_day_t t = {0};
        floor_t f = {0};
        uint64_t rss0 = resident_bytes();
        int64_t t0 = cpu_ns();
        err = tickd_day(&day, &t);
        int64_t t1 = cpu_ns();
        if (err == 0 && round == 0) {
            uint64_t resident = resident_bytes() - rss0, live = live_bytes(&t);
            const market_stats_t *ms = market_stats(t.market);
            double limit = 2.0 * (double)live + 16 * MIB;
            printf("end of day: %llu live orders, %llu symbols; resident %.1f MiB for %.1f MiB "
                   "of live objects and levels (target <= 2x + 16 MiB = %.1f MiB): %s\n",
                   (unsigned long long)ms->orders_live, (unsigned long long)ms->symbols,
                   (double)resident / MIB, (double)live / MIB, limit / MIB,
                   (double)resident <= limit ? "met" : "MISSED");
        }
        int64_t t2 = cpu_ns();
        if (err == 0)
            err = floor_day(&day, &f, NULL);
        int64_t t3 = cpu_ns();
        if (err == 0 && disagreements(&t, &f) != 0) {
            fprintf(stderr,
                    "tickd-bench-replay: %llu stocks' best bid or offer differ between "
                    "tickd and the floor\n",
                    (unsigned long long)disagreements(&t, &f));
            err = -EPROTO;
        }
        tickd_close(&t);
        floor_free(&f);
        tk_ns[round] = (double)(t1 - t0) / (double)o.messages;
        fl_ns[round] = (double)(t3 - t2) / (double)o.messages;
        printf("round %llu: tickd %.1f ns/msg, floor %.1f ns/msg\n", (unsigned long long)round + 1,
               tk_ns[round], fl_ns[round]);
    }
    if (err == 0) {
        double tk = bench_median(tk_ns, (unsigned)rounds),
               fl = bench_median(fl_ns, (unsigned)rounds);
        printf("median: tickd %.1f ns/msg (%.2f M msg/s), floor %.1f ns/msg (%.2f M msg/s)\n", tk,
               1e3 / tk, fl, 1e3 / fl);
        printf("tickd/floor %.2f (target >= 1.0, stretch 1.3): %s\n", fl / tk,
               fl / tk >= 1.0 ? "met" : "MISSED");

        static per_type_t tk_types, fl_types;
        tickd_bench_day_t t = {0};
        floor_t f = {0};
        int64_t clock_ns = clock_cost();
        err = tickd_bench_day_timed(&day, &t, &tk_types);
        if (err == 0)
            err = floor_day(&day, &f, &fl_types);
        if (err == 0) {
            printf("per message type (a clock read around each message, its %lld ns taken off):\n",
                   (long long)clock_ns);
            print_types(&tk_types, &fl_types, clock_ns);
        }
        tickd_close(&t);
        floor_free(&f);
    }
    free(day.data);
    if (err != 0) {
        fprintf(stderr, "tickd-bench-replay: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}

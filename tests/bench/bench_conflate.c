/*
 * bench_conflate.c - tickd-bench-conflate: what conflated subscriptions cost
 * the loop (issue #20, section 1).
 *
 *   tickd-bench-conflate [--symbols N] [--subscribers K] [--interval MS] [--rate R]
 *                        [--trades PCT] [--pattern P] [--phase none|subscribed]
 *                        [--seconds S] [--rounds M] [--quick] [--json]
 *
 * In process: tickd's own pub/sub server (src/pubsub.h) and market on a libuv
 * loop in the main thread, as the daemon runs them, with K real subscriber
 * sockets on loopback that a second thread reads (epoll) and throws away, so
 * that no subscriber ever falls behind. A loop timer makes R quotes a second
 * (a batch every millisecond, as many as the time since the last batch
 * owes, so a late timer catches up; the N symbols in turn, each quote's bid a new
 * price), each through market_quote() into pubsub_tick() as a feed's does,
 * and flushes after each batch. --trades PCT makes that share of the ticks
 * trades instead (market_trade(), the same symbols in turn): ticks on
 * trade.<SYM> channels, which no quote.* pattern matches, so nobody
 * conflates them.
 *
 * Two phases of S seconds, the server started afresh for each:
 *   none        no subscriber at all: the loop's cost of making the ticks.
 *   conflated   K subscribers, each PSUBSCRIBE quote.*@<interval>ms, or P
 *               (--pattern; the phase is called "plain" when P has no
 *               conflation suffix). --phase runs only one of the two (to
 *               count one phase's instructions under callgrind).
 * Per phase: the loop thread's CPU time (CLOCK_THREAD_CPUTIME_ID) per tick;
 * the loop thread's CPU time in the conflation flush timer
 * (pubsub_stats_t.conflate_flush_ns: the frames and their writes to the
 * sockets) per second of wall time, per tick and per message sent; the messages sent per second and
 * what conflation promises: at most one per symbol per interval per
 * subscriber. What conflation costs a tick is the conflated phase's CPU per
 * tick minus the none phase's: the note of the tick in the conflation's
 * slot on the tick path, and its share of the flush. Each phase runs M
 * times (--rounds, default 3) in turns and the medians are printed.
 *
 * Exit status: 0 success; 1 a measurement failed (a subscriber not
 * confirmed, more messages than conflation allows, none at all on the
 * default pattern while quotes flow); 2 bad usage. --quick: N 100, K 4,
 * S 0.3, M 1 unless given.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "alloc/object.h"
#include "feed/market.h"
#include "src/config.h"
#include "src/pubsub.h"
#include "tests/bench/bench_host.h"

#define MAX_SUBSCRIBERS 1000
#define BATCH_MS        1

typedef struct options {
    unsigned symbols, subscribers, interval_ms, rounds;
    unsigned trades_pct; /* the share of ticks that are trades */
    int phase;           /* -1 both, else the one phase to run */
    char pattern[128];   /* what each subscriber PSUBSCRIBEs */
    int default_pattern; /* pattern is quote.*@<interval>ms */
    int conflated;       /* pattern has a conflation suffix */
    double rate, seconds;
    int json;
} options_t;

typedef struct phase_result {
    double cpu_ns_per_tick;
    double flush_ms_per_s; /* flush timer time per second of wall time */
    double flush_ns_per_tick;
    double flush_ns_per_message;
    double messages_per_s;
    double allowed_per_s; /* K * N / interval: the most conflation may send */
    double ticks_per_s;
    uint64_t ticks;
} phase_result_t;

/* ---- the subscribers' reader ---- */

typedef struct reader {
    int epfd;
    atomic_int stop;
    atomic_ullong bytes;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    static char buf[1 << 16];
    struct epoll_event ev[64];
    while (!atomic_load(&r->stop)) {
        int n = epoll_wait(r->epfd, ev, 64, 10);
        for (int i = 0; i < n; i++) {
            ssize_t got;
            while ((got = recv(ev[i].data.fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
                atomic_fetch_add(&r->bytes, (unsigned long long)got);
        }
    }
    return NULL;
}

/* ---- the loop ---- */

typedef struct bench {
    uv_loop_t loop;
    heap_t *heap;
    market_t *market;
    pubsub_t *ps;
    uv_timer_t gen;
    const options_t *o;
    double owed;
    int64_t last_gen; /* CLOCK_MONOTONIC of the last batch */
    uint64_t ticks, seq;
    unsigned next_sym;
    unsigned trade_acc; /* + trades_pct a tick; past 100, the tick is a trade */
    char (*names)[12];
    int stopped;
} bench_t;

static void sink(void *arg, tick_t *t)
{
    pubsub_tick(((bench_t *)arg)->ps, t);
}

static int64_t now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_gen(uv_timer_t *t)
{
    bench_t *b = t->data;
    int64_t now = now_ns(CLOCK_MONOTONIC);
    b->owed += b->o->rate * (double)(now - b->last_gen) / 1e9; /* a late batch catches up */
    b->last_gen = now;
    int64_t recv = now_ns(CLOCK_REALTIME);
    while (b->owed >= 1.0) {
        const char *sym = b->names[b->next_sym];
        b->next_sym = (b->next_sym + 1) % b->o->symbols;
        b->seq++;
        int64_t bid = 1000000 + (int64_t)(b->seq % 10000);
        b->trade_acc += b->o->trades_pct;
        if (b->trade_acc >= 100) {
            b->trade_acc -= 100;
            market_trade(b->market, sym, strlen(sym), bid, 100, 'B', 0, (int64_t)b->seq, recv);
        } else {
            market_quote(b->market, sym, strlen(sym), bid, 100, bid + 100, 100, 0, (int64_t)b->seq,
                         recv);
        }
        b->ticks++;
        b->owed -= 1.0;
    }
    pubsub_flush(b->ps);
}

static void on_stopped(void *arg)
{
    ((bench_t *)arg)->stopped = 1;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("tickd-bench-conflate: connect");
        exit(1);
    }
    return fd;
}

/* One phase: conflated 0 (nobody subscribed) or 1 (K subscribers on the
 * pattern). */
static int run_phase(const options_t *o, int conflated, phase_result_t *res)
{
    bench_t b = {.o = o};
    config_t *cfg = calloc(1, sizeof *cfg);
    char err[CONFIG_ERR_LEN];
    int fds[MAX_SUBSCRIBERS];
    unsigned nsub = conflated ? o->subscribers : 0;

    snprintf(cfg->pubsub.listen, sizeof cfg->pubsub.listen, "127.0.0.1:0");
    cfg->pubsub.max_clients = MAX_SUBSCRIBERS + 10;
    cfg->pubsub.max_request = 64 * 1024;
    cfg->pubsub.hard_limit = 1u << 30;
    b.names = calloc(o->symbols, sizeof *b.names);
    for (unsigned i = 0; i < o->symbols; i++)
        snprintf(b.names[i], sizeof b.names[i], "S%u", i % 1000000u);
    if (uv_loop_init(&b.loop) != 0 || heap_create(NULL, &b.heap) != 0 ||
        obj_runtime_create(b.heap) != 0 || market_create(b.heap, 0, sink, &b, &b.market) != 0 ||
        pubsub_start(&b.loop, b.heap, b.market, cfg, NULL, NULL, &b.ps, err, sizeof err) != 0) {
        fprintf(stderr, "tickd-bench-conflate: set-up failed: %s\n", err);
        return -1;
    }
    reader_t r = {.epfd = epoll_create1(0)};
    char cmd[256];
    int n = snprintf(cmd, sizeof cmd, "*2\r\n$10\r\nPSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                     strlen(o->pattern), o->pattern);
    for (unsigned i = 0; i < nsub; i++) {
        fds[i] = connect_to(pubsub_port(b.ps));
        if (send(fds[i], cmd, (size_t)n, 0) != n) {
            perror("tickd-bench-conflate: send");
            return -1;
        }
    }
    pubsub_stats_t st;
    int64_t deadline = now_ns(CLOCK_MONOTONIC) + 10 * 1000000000ll;
    do {
        uv_run(&b.loop, UV_RUN_NOWAIT);
        pubsub_get_stats(b.ps, &st);
        if (now_ns(CLOCK_MONOTONIC) > deadline) {
            fprintf(stderr, "tickd-bench-conflate: %llu of %u subscribers confirmed\n",
                    (unsigned long long)st.subscriptions, nsub);
            return -1;
        }
    } while (st.subscriptions < nsub);
    for (unsigned i = 0; i < nsub; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(r.epfd, EPOLL_CTL_ADD, fds[i], &ev);
    }
    pthread_t th;
    pthread_create(&th, NULL, reader_main, &r);

    uv_timer_init(&b.loop, &b.gen);
    b.gen.data = &b;
    pubsub_stats_t before;
    pubsub_get_stats(b.ps, &before);
    int64_t wall0 = now_ns(CLOCK_MONOTONIC), cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    b.last_gen = wall0;
    uv_timer_start(&b.gen, on_gen, BATCH_MS, BATCH_MS);
    int64_t end = wall0 + (int64_t)(o->seconds * 1e9);
    while (now_ns(CLOCK_MONOTONIC) < end)
        uv_run(&b.loop, UV_RUN_ONCE);
    int64_t wall = now_ns(CLOCK_MONOTONIC) - wall0, cpu = now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    uv_timer_stop(&b.gen);
    pubsub_get_stats(b.ps, &st);

    double secs = (double)wall / 1e9;
    res->ticks = b.ticks;
    res->ticks_per_s = (double)b.ticks / secs;
    res->cpu_ns_per_tick = b.ticks > 0 ? (double)cpu / (double)b.ticks : 0;
    res->flush_ms_per_s = (double)(st.conflate_flush_ns - before.conflate_flush_ns) / 1e6 / secs;
    res->flush_ns_per_tick =
        b.ticks > 0 ? (double)(st.conflate_flush_ns - before.conflate_flush_ns) / (double)b.ticks
                    : 0;
    res->messages_per_s = (double)(st.messages_sent_total - before.messages_sent_total) / secs;
    res->flush_ns_per_message =
        res->messages_per_s > 0 ? res->flush_ms_per_s * 1e6 / res->messages_per_s : 0;
    res->allowed_per_s = (double)nsub * o->symbols * 1000.0 / o->interval_ms;

    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    close(r.epfd);
    for (unsigned i = 0; i < nsub; i++)
        close(fds[i]);
    uv_close((uv_handle_t *)&b.gen, NULL);
    pubsub_stop(b.ps, 0, on_stopped, &b);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    pubsub_free(b.ps);
    uv_loop_close(&b.loop);
    market_destroy(b.market);
    obj_runtime_destroy(b.heap);
    heap_destroy(b.heap);
    free(b.names);
    free(cfg);
    return b.stopped ? 0 : -1;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr, "usage: tickd-bench-conflate [--symbols N] [--subscribers K] "
                    "[--interval MS] [--rate R] [--trades PCT] [--pattern P] "
                    "[--phase none|subscribed] [--seconds S] [--rounds M] [--quick] [--json]\n");
}

static double median_of(phase_result_t *r, unsigned n, size_t off)
{
    double v[64];
    for (unsigned i = 0; i < n; i++)
        v[i] = *(double *)((char *)&r[i] + off);
    return bench_median(v, n);
}

int main(int argc, char **argv)
{
    options_t o = {.symbols = 0, .subscribers = 0, .interval_ms = 100, .rounds = 0, .phase = -1};
    int quick = 0;
    static const struct option longopts[] = {
        {"symbols", required_argument, NULL, 'n'},  {"subscribers", required_argument, NULL, 'k'},
        {"interval", required_argument, NULL, 'i'}, {"rate", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'},  {"rounds", required_argument, NULL, 'm'},
        {"trades", required_argument, NULL, 't'},   {"pattern", required_argument, NULL, 'p'},
        {"phase", required_argument, NULL, 'f'},    {"quick", no_argument, NULL, 'q'},
        {"json", no_argument, NULL, 'j'},           {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.symbols = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            o.subscribers = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'i':
            o.interval_ms = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o.rate = strtod(optarg, NULL);
            break;
        case 's':
            o.seconds = strtod(optarg, NULL);
            break;
        case 'm':
            o.rounds = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 't':
            o.trades_pct = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            if (strlen(optarg) >= sizeof o.pattern) {
                usage();
                return 2;
            }
            strcpy(o.pattern, optarg);
            break;
        case 'f':
            o.phase = strcmp(optarg, "none") == 0 ? 0 : strcmp(optarg, "subscribed") == 0 ? 1 : -2;
            if (o.phase == -2) {
                usage();
                return 2;
            }
            break;
        case 'q':
            quick = 1;
            break;
        case 'j':
            o.json = 1;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (optind != argc) {
        usage();
        return 2;
    }
    if (o.symbols == 0)
        o.symbols = quick ? 100 : 1000;
    if (o.subscribers == 0)
        o.subscribers = quick ? 4 : 100;
    if (o.rate == 0)
        o.rate = quick ? 20000 : 100000;
    if (o.seconds == 0)
        o.seconds = quick ? 0.3 : 5;
    if (o.rounds == 0)
        o.rounds = quick ? 1 : 3;
    if (o.subscribers > MAX_SUBSCRIBERS || o.rounds > 64 || o.interval_ms < 10 ||
        o.interval_ms > 3600000 || o.rate < 1000 || o.seconds <= 0 || o.trades_pct > 100) {
        fprintf(stderr,
                "tickd-bench-conflate: at most %d subscribers and 64 rounds, an "
                "interval from 10 to 3600000 ms, a rate of at least 1000, trades at most 100%%\n",
                MAX_SUBSCRIBERS);
        return 2;
    }
    o.default_pattern = o.pattern[0] == '\0';
    if (o.default_pattern)
        snprintf(o.pattern, sizeof o.pattern, "quote.*@%ums", o.interval_ms);
    o.conflated = strchr(o.pattern, '@') != NULL;
    signal(SIGPIPE, SIG_IGN);

    static phase_result_t res[2][64];
    for (unsigned m = 0; m < o.rounds; m++)
        for (int p = 0; p < 2; p++) {
            int phase = m % 2 == 0 ? p : 1 - p; /* the phases take turns going first */
            if ((o.phase < 0 || o.phase == phase) && run_phase(&o, phase, &res[phase][m]) != 0)
                return 1;
        }

    char cpu[128];
    bench_cpu_model(cpu, sizeof cpu);
    const char *names[2] = {"none", o.conflated ? "conflated" : "plain"};
    double cpu_tick[2], flush_s[2], flush_tick[2], flush_msg[2], msgs[2], rate[2];
    for (int p = 0; p < 2; p++) {
        cpu_tick[p] = median_of(res[p], o.rounds, offsetof(phase_result_t, cpu_ns_per_tick));
        flush_s[p] = median_of(res[p], o.rounds, offsetof(phase_result_t, flush_ms_per_s));
        flush_tick[p] = median_of(res[p], o.rounds, offsetof(phase_result_t, flush_ns_per_tick));
        flush_msg[p] = median_of(res[p], o.rounds, offsetof(phase_result_t, flush_ns_per_message));
        msgs[p] = median_of(res[p], o.rounds, offsetof(phase_result_t, messages_per_s));
        rate[p] = median_of(res[p], o.rounds, offsetof(phase_result_t, ticks_per_s));
    }
    double allowed = res[1][0].allowed_per_s;
    int ok = 1;
    for (unsigned m = 0; m < o.rounds && o.phase != 0; m++) {
        /* One interval's slack: a phase of S seconds can end just after a flush. */
        double slack = (double)o.subscribers * o.symbols / (o.seconds);
        if ((o.default_pattern && o.trades_pct < 100 && res[1][m].messages_per_s <= 0) ||
            (o.conflated && res[1][m].messages_per_s > allowed + slack))
            ok = 0;
    }

    if (o.json) {
        for (int p = 0; p < 2; p++)
            if (o.phase < 0 || o.phase == p)
                printf("{\"phase\":\"%s\",\"pattern\":\"%s\",\"symbols\":%u,\"subscribers\":%u,"
                       "\"interval_ms\":%u,\"rate\":%.0f,\"trades_pct\":%u,\"ticks\":%llu,"
                       "\"ticks_per_s\":%.0f,\"cpu_ns_per_tick\":%.1f,\"flush_ms_per_s\":%.3f,"
                       "\"flush_ns_per_tick\":%.1f,\"flush_ns_per_message\":%.1f,"
                       "\"messages_per_s\":%.0f,\"rounds\":%u}\n",
                       names[p], p ? o.pattern : "", o.symbols, p ? o.subscribers : 0,
                       o.interval_ms, o.rate, o.trades_pct,
                       (unsigned long long)res[p][o.rounds - 1].ticks, rate[p], cpu_tick[p],
                       flush_s[p], flush_tick[p], flush_msg[p], msgs[p], o.rounds);
    } else {
        printf("tickd-bench-conflate: %s, %ld CPUs; %u symbols, %.0f ticks/s (%u%% trades), %u "
               "subscribers on %s, %.1f s a phase, median of %u rounds\n\n",
               cpu, sysconf(_SC_NPROCESSORS_ONLN), o.symbols, o.rate, o.trades_pct, o.subscribers,
               o.pattern, o.seconds, o.rounds);
        printf("%-10s %10s %14s %16s %14s %14s %14s\n", "phase", "ticks/s", "loop ns/tick",
               "flush ms per s", "flush ns/tick", "flush ns/msg", "messages/s");
        for (int p = 0; p < 2; p++)
            if (o.phase < 0 || o.phase == p)
                printf("%-10s %10.0f %14.0f %16.3f %14.1f %14.1f %14.0f\n", names[p], rate[p],
                       cpu_tick[p], flush_s[p], flush_tick[p], flush_msg[p], msgs[p]);
        if (o.phase >= 0)
            return ok ? 0 : 1;
        printf("\nthe subscribers cost the loop %.0f ns a tick: %.0f in the flush timer (%.2f%% of "
               "the loop's time), %.0f on the tick path;\n",
               cpu_tick[1] - cpu_tick[0], flush_tick[1], flush_s[1] / 10.0,
               cpu_tick[1] - cpu_tick[0] - flush_tick[1]);
        if (o.conflated)
            printf("at most %.0f messages/s allowed (one per symbol, interval and subscriber): "
                   "%s\n",
                   allowed, ok ? "kept" : "BROKEN");
    }
    return ok ? 0 : 1;
}

/*
 * bench_patterns.c - tickd-bench-patterns: what a churn of patterns costs a
 * channel subscriber while many patterns are held (issue #15, item 6).
 *
 *   tickd-bench-patterns [--patterns N] [--rate R] [--seconds S] [--rounds K]
 *                        [--tickd PATH] [--quick]
 *
 * The benchmark starts tickd itself (--tickd, default the build's binary) on
 * free ports of 127.0.0.1 from a temporary directory, with no feeds, the CSV
 * payload, no snapshot on subscribe and no output limits that could cut its
 * own clients, and kills it at the end (SIGKILL should the benchmark die).
 *
 * Clients, all on loopback:
 *   holder      PSUBSCRIBE of N patterns "trade.IDLE<i>*" that match no
 *               channel the benchmark publishes on, and 8 that match it
 *               ("trade.B*", "*.BENCH", ...), whose pmessages it reads.
 *   subscriber  SUBSCRIBE trade.BENCH.
 *   publisher   PUBLISH trade.BENCH "T,<ts_ns>,BENCH,1.0000,1" at R a second,
 *               a batch every millisecond, ts_ns the CLOCK_REALTIME at which
 *               the batch is sent; a message's latency is the subscriber's
 *               read time minus that ts.
 *   churn       (second phase only) its own thread: PSUBSCRIBE x then
 *               PUNSUBSCRIBE x for new patterns x, 64 pairs a write, as fast
 *               as tickd answers.
 * After a warm-up phase (as the first, not reported), two phases of S
 * seconds each, without and then with the churn; each
 * phase's p50 and p99 are nearest-rank over all its messages. The whole run
 * is repeated K times (--rounds, default 3, tickd started afresh each time)
 * and the medians are printed with the target: p99 under churn at
 * most 2 x p99 without it, printed as met or MISSED, never asserted.
 *
 * Exit status: 0 success, 1 tickd or a measurement failed (a message lost,
 * an error reply), 2 bad usage. --quick: N 2,000, S 0.3, K 1 unless given.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench/bench_host.h"
#include "tests/bench/resp_client.h"

#ifndef TICKD_BENCH_TICKD_PATH
#error "TICKD_BENCH_TICKD_PATH must name the tickd binary (set by tests/bench/CMakeLists.txt)"
#endif

#define HOST          "127.0.0.1"
#define CHANNEL       "trade.BENCH"
#define BATCH_NS      1000000LL    /* the publisher sends a batch every millisecond */
#define PER_REQUEST   1000         /* patterns per PSUBSCRIBE of the holder */
#define CHURN_PAIRS   64           /* PSUBSCRIBE/PUNSUBSCRIBE pairs per churn write */
#define DRAIN_NS      5000000000LL /* after the last publish, wait this long for the rest */
#define IO_TIMEOUT_MS 30000
#define MAX_ROUNDS    15

static const char *const matching[] = {"trade.B*",    "*.BENCH", "trade.BEN?H", "t*H",
                                       "trade.[AB]*", "*",       "trade.*",     "?rade.BENCH"};
#define NMATCHING (sizeof matching / sizeof matching[0])

struct options {
    unsigned patterns;
    unsigned rate;
    double seconds;
    unsigned rounds;
    const char *tickd;
};

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- tickd ---- */

static volatile pid_t tickd_pid;
static char tmp_dir[64];

static void on_signal(int sig)
{
    if (tickd_pid > 0)
        kill(tickd_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Starts tickd on a free port and waits until it answers PING: the port, or
 * -1 with a message on stderr. */
static int tickd_start(const char *path)
{
    char config[128], log[128];
    int port = bench_free_port(), http = bench_free_port();
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/tickd-bench-patterns.XXXXXX");
    if (port < 0 || http < 0 || mkdtemp(tmp_dir) == NULL) {
        fprintf(stderr, "tickd-bench-patterns: cannot set up: %s\n", strerror(errno));
        tmp_dir[0] = '\0';
        return -1;
    }
    snprintf(config, sizeof config, "%s/tickd.yaml", tmp_dir);
    snprintf(log, sizeof log, "%s/tickd.log", tmp_dir);
    FILE *f = fopen(config, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "pubsub:\n  listen: %s:%d\n  payload: csv\n  snapshot_on_subscribe: false\n"
            "  output_hard_limit: 1GiB\n  output_soft_limit: 0\n  max_request: 1MiB\n"
            "http:\n  listen: %s:%d\njournal:\n  enabled: false\nlog:\n  level: warning\n",
            HOST, port, HOST, http);
    fclose(f);
    char *argv[] = {(char *)path, "--config", config, NULL};
    pid_t pid = bench_spawn(argv, log);
    if (pid < 0)
        return -1;
    tickd_pid = pid;
    for (int tries = 0; tries < 500; tries++) {
        resp_conn_t c;
        if (resp_connect(&c, HOST, port, 4096) == 0) {
            static const char *const ping[] = {"PING"};
            static const size_t len[] = {4};
            resp_reply_t r;
            int ok = resp_append(&c, 1, ping, len) == 0 && resp_wait_reply(&c, &r, 2000) == 0 &&
                     r.top.type == '+';
            resp_close(&c);
            if (ok)
                return port;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            break;
        usleep(20000);
    }
    fprintf(stderr, "tickd-bench-patterns: %s did not start (log: %s)\n", path, log);
    return -1;
}

static void tickd_stop(void)
{
    if (tickd_pid > 0) {
        kill(tickd_pid, SIGKILL);
        waitpid(tickd_pid, NULL, 0);
        tickd_pid = 0;
    }
    bench_remove_dir(tmp_dir);
}

/* ---- clients ---- */

/* Sends everything pending, waiting for the socket as needed. 0 or -errno. */
static int flush_all(resp_conn_t *c)
{
    int r;
    while ((r = resp_write(c)) == 1) {
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
            return -ETIMEDOUT;
    }
    return r;
}

/* Reads replies until n of them came, none an error. 0 or -errno. */
static int take_replies(resp_conn_t *c, uint64_t n)
{
    resp_reply_t r;
    while (n > 0) {
        int k = resp_next(c, &r);
        if (k < 0)
            return k;
        if (k == 1) {
            if (r.top.type == '-')
                return -EPROTO;
            n--;
            continue;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
            return -ETIMEDOUT;
        ssize_t got = resp_read(c);
        if (got < 0)
            return (int)got;
    }
    return 0;
}

static int command(resp_conn_t *c, const char *a, const char *b)
{
    const char *argv[2] = {a, b};
    size_t lens[2] = {strlen(a), strlen(b)};
    return resp_append(c, 2, argv, lens);
}

/* The holder's N idle patterns and the matching ones, replies taken. */
static int hold_patterns(resp_conn_t *c, unsigned n)
{
    static const char *argv[PER_REQUEST + 1];
    static size_t lens[PER_REQUEST + 1];
    static char names[PER_REQUEST][32];
    argv[0] = "PSUBSCRIBE";
    lens[0] = 10;
    for (unsigned i = 0; i < n;) {
        int k = 0;
        for (; k < PER_REQUEST && i < n; k++, i++) {
            lens[k + 1] = (size_t)snprintf(names[k], sizeof names[k], "trade.IDLE%u*", i);
            argv[k + 1] = names[k];
        }
        int r = resp_append(c, k + 1, argv, lens);
        if (r == 0)
            r = flush_all(c);
        if (r == 0)
            r = take_replies(c, (uint64_t)k);
        if (r != 0)
            return r;
    }
    for (size_t i = 0; i < NMATCHING; i++)
        if (command(c, "PSUBSCRIBE", matching[i]) != 0)
            return -ENOMEM;
    int r = flush_all(c);
    return r == 0 ? take_replies(c, NMATCHING) : r;
}

struct churn {
    int port;
    atomic_int stop;
    uint64_t cycles;
    int err;
};

static void *churn_main(void *arg)
{
    struct churn *ch = arg;
    resp_conn_t c;
    char name[32];
    ch->err = resp_connect(&c, HOST, ch->port, 1 << 16);
    for (uint64_t n = 0; ch->err == 0 && !atomic_load(&ch->stop);) {
        for (int k = 0; k < CHURN_PAIRS && ch->err == 0; k++, n++) {
            snprintf(name, sizeof name, "trade.CHURN%" PRIu64 "*", n);
            ch->err = command(&c, "PSUBSCRIBE", name);
            if (ch->err == 0)
                ch->err = command(&c, "PUNSUBSCRIBE", name);
        }
        if (ch->err == 0)
            ch->err = flush_all(&c);
        if (ch->err == 0)
            ch->err = take_replies(&c, 2 * CHURN_PAIRS);
        if (ch->err == 0)
            ch->cycles += CHURN_PAIRS;
    }
    resp_close(&c);
    return NULL;
}

/* ---- one phase ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The latency of a message frame whose payload is "T,<ts_ns>,...": now
 * minus ts, or -1 when the frame is not one. */
static int64_t frame_latency(const resp_reply_t *r, int64_t now)
{
    if (r->top.type != '*' || r->top.number != 3 || r->elem[2].type != '$')
        return -1;
    const char *p = r->elem[2].str, *end = p + r->elem[2].len;
    if (end - p < 3 || p[0] != 'T' || p[1] != ',')
        return -1;
    int64_t ts = 0;
    for (p += 2; p < end && *p >= '0' && *p <= '9'; p++)
        ts = ts * 10 + (*p - '0');
    return now - ts;
}

/* Reads what is there on c: message latencies into lat (at most cap), and
 * counts the frames. 0 or -errno. */
static int drain(resp_conn_t *c, int64_t *lat, uint64_t *n, uint64_t cap, uint64_t *frames)
{
    ssize_t got = resp_read(c);
    if (got < 0)
        return (int)got;
    int64_t now = clock_ns(CLOCK_REALTIME);
    resp_reply_t r;
    int k;
    while ((k = resp_next(c, &r)) == 1) {
        (*frames)++;
        int64_t l = frame_latency(&r, now);
        if (lat != NULL && l >= 0 && *n < cap)
            lat[(*n)++] = l;
    }
    return k;
}

struct phase {
    double p50_us, p99_us;
    uint64_t messages, churn_cycles;
};

static int run_phase(int port, resp_conn_t *pub, resp_conn_t *sub, resp_conn_t *holder,
                     const struct options *o, int with_churn, struct phase *out)
{
    uint64_t total = (uint64_t)(o->rate * o->seconds), sent = 0, replies = 0, frames = 0;
    uint64_t held_frames = 0, nlat = 0;
    unsigned per_batch = o->rate / 1000 > 0 ? o->rate / 1000 : 1;
    int64_t *lat = malloc((total + 1) * sizeof *lat);
    struct churn ch = {.port = port};
    pthread_t thread;
    int err = 0;

    if (lat == NULL)
        return -ENOMEM;
    if (with_churn && pthread_create(&thread, NULL, churn_main, &ch) != 0) {
        free(lat);
        return -EAGAIN;
    }
    int64_t start = clock_ns(CLOCK_MONOTONIC), next = start, last_sent = 0;
    char payload[64];
    while (err == 0 && (frames < total || sent < total)) {
        int64_t now = clock_ns(CLOCK_MONOTONIC);
        if (sent < total && now >= next) {
            int64_t ts = clock_ns(CLOCK_REALTIME);
            for (unsigned k = 0; k < per_batch && sent < total; k++, sent++) {
                int n = snprintf(payload, sizeof payload, "T,%" PRId64 ",BENCH,1.0000,1", ts);
                err = resp_append_publish(pub, CHANNEL, sizeof CHANNEL - 1, payload, (size_t)n);
            }
            if (err == 0 && resp_write(pub) < 0)
                err = -EPIPE;
            next += BATCH_NS;
            last_sent = now;
        }
        if (sent == total && now - last_sent > DRAIN_NS)
            break; /* the rest is lost */
        struct pollfd p[3] = {{.fd = sub->fd, .events = POLLIN},
                              {.fd = pub->fd, .events = POLLIN},
                              {.fd = holder->fd, .events = POLLIN}};
        int64_t wait = sent < total ? (next - clock_ns(CLOCK_MONOTONIC)) / 1000000 : 10;
        if (resp_pending(pub) > 0)
            p[1].events |= POLLOUT;
        if (poll(p, 3, wait > 0 ? (int)wait : 0) < 0)
            err = -errno;
        if (err == 0 && (p[0].revents & POLLIN))
            err = drain(sub, lat, &nlat, total, &frames);
        if (err == 0 && (p[1].revents & POLLIN))
            err = drain(pub, NULL, &nlat, 0, &replies);
        if (err == 0 && (p[1].revents & POLLOUT) && resp_write(pub) < 0)
            err = -EPIPE;
        if (err == 0 && (p[2].revents & POLLIN))
            err = drain(holder, NULL, &nlat, 0, &held_frames);
    }
    if (with_churn) {
        atomic_store(&ch.stop, 1);
        pthread_join(thread, NULL);
        if (err == 0)
            err = ch.err;
        out->churn_cycles = ch.cycles;
    }
    if (err == 0 && frames < total) {
        fprintf(stderr, "tickd-bench-patterns: %" PRIu64 " of %" PRIu64 " messages lost\n",
                total - frames, total);
        err = -EIO;
    }
    if (err == 0 && nlat > 0) {
        qsort(lat, nlat, sizeof *lat, cmp_i64);
        out->p50_us = (double)lat[(nlat - 1) / 2] / 1e3;
        out->p99_us = (double)lat[(nlat * 99 + 99) / 100 - 1] / 1e3;
        out->messages = nlat;
    }
    free(lat);
    return err;
}

/* ---- the run ---- */

static int one_round(const struct options *o, struct phase ph[2])
{
    int port = tickd_start(o->tickd);
    if (port < 0)
        return -ECHILD;
    resp_conn_t pub, sub, holder;
    int err = resp_connect(&holder, HOST, port, 1 << 20);
    if (err == 0)
        err = resp_connect(&sub, HOST, port, 1 << 20);
    if (err == 0)
        err = resp_connect(&pub, HOST, port, 1 << 20);
    if (err == 0)
        err = hold_patterns(&holder, o->patterns);
    if (err == 0)
        err = command(&sub, "SUBSCRIBE", CHANNEL);
    if (err == 0)
        err = flush_all(&sub);
    if (err == 0)
        err = take_replies(&sub, 1);
    struct phase warm;
    if (err == 0)
        err = run_phase(port, &pub, &sub, &holder, o, 0, &warm);
    for (int churn = 0; churn < 2 && err == 0; churn++)
        err = run_phase(port, &pub, &sub, &holder, o, churn, &ph[churn]);
    if (err != 0)
        fprintf(stderr, "tickd-bench-patterns: %s\n", strerror(-err));
    resp_close(&pub);
    resp_close(&sub);
    resp_close(&holder);
    tickd_stop();
    return err;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tickd-bench-patterns [--patterns N] [--rate R] [--seconds S] "
               "[--rounds K] [--tickd PATH] [--quick]\n");
}

int main(int argc, char **argv)
{
    struct options o = {100000, 2000, 3.0, 3, TICKD_BENCH_TICKD_PATH};
    int quick = 0, given[3] = {0, 0, 0};
    static const struct option longopts[] = {
        {"patterns", required_argument, NULL, 'p'}, {"rate", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'},  {"rounds", required_argument, NULL, 'k'},
        {"tickd", required_argument, NULL, 't'},    {"quick", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},           {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'p':
            o.patterns = (unsigned)strtoul(optarg, &end, 10);
            given[0] = 1;
            break;
        case 'r':
            o.rate = (unsigned)strtoul(optarg, &end, 10);
            break;
        case 's':
            o.seconds = strtod(optarg, &end);
            given[1] = 1;
            break;
        case 'k':
            o.rounds = (unsigned)strtoul(optarg, &end, 10);
            given[2] = 1;
            break;
        case 't':
            o.tickd = optarg;
            break;
        case 'q':
            quick = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (end != NULL && (*end != '\0' || end == optarg)) {
            fprintf(stderr, "tickd-bench-patterns: bad number \"%s\"\n", optarg);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (quick) {
        o.patterns = given[0] ? o.patterns : 2000;
        o.seconds = given[1] ? o.seconds : 0.3;
        o.rounds = given[2] ? o.rounds : 1;
    }
    if (o.rate == 0 || o.seconds <= 0 || o.rounds == 0 || o.rounds > MAX_ROUNDS) {
        fprintf(stderr, "tickd-bench-patterns: rate, seconds and rounds (1..%d) must be > 0\n",
                MAX_ROUNDS);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    char cpu[128];
    bench_cpu_model(cpu, sizeof cpu);
    printf("tickd-bench-patterns: %u held patterns (+%zu matching), %u PUBLISH/s for %.1f s a "
           "phase, %u round(s), %ld CPUs (%s)\n",
           o.patterns, NMATCHING, o.rate, o.seconds, o.rounds, sysconf(_SC_NPROCESSORS_ONLN), cpu);
    double p50[2][MAX_ROUNDS], p99[2][MAX_ROUNDS], cycles[MAX_ROUNDS];
    for (unsigned k = 0; k < o.rounds; k++) {
        struct phase ph[2] = {{0}};
        if (one_round(&o, ph) != 0)
            return 1;
        for (int c = 0; c < 2; c++) {
            p50[c][k] = ph[c].p50_us;
            p99[c][k] = ph[c].p99_us;
        }
        cycles[k] = (double)ph[1].churn_cycles / o.seconds;
    }
    double m50[2], m99[2];
    for (int c = 0; c < 2; c++) {
        m50[c] = bench_median(p50[c], o.rounds);
        m99[c] = bench_median(p99[c], o.rounds);
    }
    double churn_rate = bench_median(cycles, o.rounds);
    printf("\n%-16s %12s %12s %18s\n", "phase", "p50 (us)", "p99 (us)", "churn cycles/s");
    printf("%-16s %12.1f %12.1f %18s\n", "no churn", m50[0], m99[0], "-");
    printf("%-16s %12.1f %12.1f %18.0f\n", "pattern churn", m50[1], m99[1], churn_rate);
    double ratio = m99[0] > 0 ? m99[1] / m99[0] : 0;
    printf("\np99 with churn / without: %.2f (target <= 2.00: %s)\n", ratio,
           ratio <= 2.0 ? "met" : "MISSED");
    return 0;
}

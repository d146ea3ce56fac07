/*
 * bench_get.c - tickd-bench-get: GET throughput of tickd's last values and
 * books (issue #20 section 3) side by side with redis-server answering GET
 * on a string key of the same size, the same client driving both.
 *
 *   tickd-bench-get [--connections C] [--pipeline P] [--seconds S]
 *                   [--rounds K] [--tickd PATH] [--redis-server PATH] [--quick]
 *
 * The benchmark starts tickd itself (--tickd, default the build's binary)
 * on free ports of 127.0.0.1 with the CSV payload and an ITCH TCP feed, and
 * redis-server (--redis-server, default "redis-server" from PATH; "none"
 * runs tickd alone) with no persistence. It then makes the values:
 *
 *   trade.BENCH  a trade PUBLISHed to tickd; on redis-server, SET to the
 *                bytes tickd's GET answers
 *   book.BENCH   a book of 40 levels a side made by ITCH adds sent to the
 *                feed; GET book.BENCH answers its top 10 levels (the default
 *                depth) as JSON, and redis-server holds a string of exactly
 *                that length
 *
 * and, per key, lets C connections (one thread, poll) each keep P GETs in
 * flight for S seconds, counting the replies (every one checked to be a
 * bulk of the expected length). Servers take turns within a round; K rounds
 * (tickd and redis-server started once), and the medians are printed with
 * the ratio tickd / redis-server and the target (at least 1.0x),
 * printed as met or MISSED, never asserted.
 *
 * Exit status: 0 success, 1 a server or a measurement failed (an error
 * reply, a wrong length, a timeout), 2 bad usage. --quick: S 0.2, K 1.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
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
#define MAX_CONNS     64
#define MAX_ROUNDS    15
#define BOOK_LEVELS   40 /* a side, in the ITCH book made */
#define IO_TIMEOUT_MS 10000
#define TRADE_LINE    "T,1700000000000000000,BENCH,101.2500,100,B"

struct options {
    unsigned conns;
    unsigned pipeline;
    double seconds;
    unsigned rounds;
    const char *tickd;
    const char *redis;
};

enum { SRV_TICKD, SRV_REDIS, NSRV };

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- servers ---- */

static volatile pid_t pids[NSRV];
static char tmp_dir[64];

static void stop_servers(void)
{
    for (int i = 0; i < NSRV; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
    bench_remove_dir(tmp_dir);
}

static void on_signal(int sig)
{
    for (int i = 0; i < NSRV; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Waits until the server on port answers PING: 0, or -1. */
static int wait_ping(pid_t pid, int port)
{
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
                return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        usleep(20000);
    }
    return -1;
}

static int start_tickd(const char *path, int port, int feed_port)
{
    char config[128], log[128];
    snprintf(config, sizeof config, "%s/tickd.yaml", tmp_dir);
    snprintf(log, sizeof log, "%s/tickd.log", tmp_dir);
    int http = bench_free_port();
    FILE *f = fopen(config, "w");
    if (f == NULL || http < 0) {
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fprintf(f,
            "pubsub:\n  listen: %s:%d\n  payload: csv\n  max_request: 1MiB\n"
            "http:\n  listen: %s:%d\njournal:\n  enabled: false\nlog:\n  level: warning\n"
            "feeds:\n  - name: itch\n    type: tcp\n    format: itch\n    listen: %s:%d\n",
            HOST, port, HOST, http, HOST, feed_port);
    fclose(f);
    char *argv[] = {(char *)path, "--config", config, NULL};
    pids[SRV_TICKD] = bench_spawn(argv, log);
    if (pids[SRV_TICKD] < 0 || wait_ping(pids[SRV_TICKD], port) != 0) {
        fprintf(stderr, "tickd-bench-get: %s did not start (log: %s)\n", path, log);
        return -1;
    }
    return 0;
}

static int start_redis(const char *path, int port)
{
    char log[128], portbuf[16];
    snprintf(log, sizeof log, "%s/redis.log", tmp_dir);
    snprintf(portbuf, sizeof portbuf, "%d", port);
    char *argv[] = {(char *)path, "--bind",       HOST, "--port", portbuf, "--save",
                    "",           "--appendonly", "no", "--dir",  tmp_dir, NULL};
    pids[SRV_REDIS] = bench_spawn(argv, log);
    if (pids[SRV_REDIS] < 0 || wait_ping(pids[SRV_REDIS], port) != 0) {
        fprintf(stderr, "tickd-bench-get: %s did not start (log: %s)\n", path, log);
        return -1;
    }
    return 0;
}

/* ---- making the values ---- */

/* One command of argc arguments and its reply, which must not be an error:
 * the reply's bulk copied into out (cap bytes) when out is given. Returns
 * the bulk's length (-1 for nil), or -2. */
static long command(int port, int argc, const char *const *argv, char *out, size_t cap)
{
    resp_conn_t c;
    size_t lens[4];
    resp_reply_t r;
    long n = -2;
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (resp_connect(&c, HOST, port, 1 << 16) != 0)
        return -2;
    if (resp_append(&c, argc, argv, lens) == 0 && resp_wait_reply(&c, &r, IO_TIMEOUT_MS) == 0 &&
        r.top.type != '-') {
        n = r.top.type == '$' ? r.top.number : 0;
        if (out != NULL && n >= 0 && (size_t)n < cap) {
            memcpy(out, r.top.str, (size_t)n);
            out[n] = '\0';
        }
    }
    resp_close(&c);
    return n;
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

/* BOOK_LEVELS ITCH adds (A) a side for BENCH, BinaryFILE framed, sent to
 * the feed on port. 0 or -1. */
static int send_book(int port)
{
    unsigned char buf[2 * BOOK_LEVELS * 38], *p = buf;
    for (int i = 0; i < 2 * BOOK_LEVELS; i++, p += 38) {
        int bid = i < BOOK_LEVELS;
        int level = i % BOOK_LEVELS;
        put_be(p, 36, 2);
        p[2] = 'A';
        put_be(p + 3, 1, 2);                               /* locate */
        put_be(p + 5, 0, 2);                               /* tracking */
        put_be(p + 7, 34200000000000ull + (uint64_t)i, 6); /* 09:30 */
        put_be(p + 13, (uint64_t)i + 1, 8);                /* order reference */
        p[21] = bid ? 'B' : 'S';
        put_be(p + 22, 100 + (uint64_t)level, 4); /* shares */
        memcpy(p + 26, "BENCH   ", 8);
        put_be(p + 34, bid ? 1000000 - 100 * (uint64_t)level : 1000100 + 100 * (uint64_t)level, 4);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = fd >= 0;
    for (int tries = 0; ok && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0; tries++) {
        if (tries > 250)
            ok = 0;
        usleep(20000);
    }
    ok = ok && write(fd, buf, sizeof buf) == (ssize_t)sizeof buf;
    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

/* Occurrences of needle in s[0..len) (len < 0: none). */
static int count(const char *s, long len, const char *needle)
{
    int n = 0;
    for (const char *p = s; len >= 0 && (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* ---- the measurement ---- */

/* C connections to port each keeping P `GET key` in flight for seconds;
 * every reply must be a bulk of want bytes. GETs a second, or -1. */
static double measure(int port, const char *key, long want, const struct options *o)
{
    resp_conn_t conns[MAX_CONNS];
    struct pollfd pfd[MAX_CONNS];
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, strlen(key)};
    unsigned n = o->conns;
    uint64_t done = 0;
    double rate = -1;
    int failed = 0;

    for (unsigned i = 0; i < n; i++)
        conns[i].fd = -1, conns[i].in = conns[i].out = NULL;
    for (unsigned i = 0; i < n && !failed; i++) {
        if (resp_connect(&conns[i], HOST, port, 1 << 16) != 0)
            failed = 1;
        for (unsigned k = 0; k < o->pipeline && !failed; k++)
            failed = resp_append(&conns[i], 2, argv, lens) != 0;
    }
    int64_t start = mono_ns(), end = start + (int64_t)(o->seconds * 1e9), now = start;
    while (!failed && now < end) {
        for (unsigned i = 0; i < n; i++) {
            if (resp_pending(&conns[i]) > 0 && resp_write(&conns[i]) < 0)
                failed = 1;
            pfd[i].fd = conns[i].fd;
            pfd[i].events = POLLIN | (resp_pending(&conns[i]) > 0 ? POLLOUT : 0);
        }
        if (failed || poll(pfd, n, IO_TIMEOUT_MS) <= 0) {
            failed = 1;
            break;
        }
        for (unsigned i = 0; i < n && !failed; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            if (resp_read(&conns[i]) < 0) {
                failed = 1;
                break;
            }
            resp_reply_t r;
            int k;
            while ((k = resp_next(&conns[i], &r)) == 1) {
                if (r.top.type != '$' || r.top.number != want) {
                    fprintf(stderr, "tickd-bench-get: GET %s: unexpected reply '%c' %lld\n", key,
                            r.top.type, r.top.number);
                    failed = 1;
                    break;
                }
                done++;
                if (resp_append(&conns[i], 2, argv, lens) != 0)
                    failed = 1;
            }
            if (k < 0)
                failed = 1;
        }
        now = mono_ns();
    }
    if (!failed)
        rate = (double)done / ((double)(now - start) / 1e9);
    for (unsigned i = 0; i < n; i++)
        resp_close(&conns[i]);
    return rate;
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: tickd-bench-get [--connections C] [--pipeline P] [--seconds S] "
               "[--rounds K] [--tickd PATH] [--redis-server PATH|none] [--quick]\n");
}

int main(int argc, char **argv)
{
    struct options o = {4, 16, 2.0, 5, TICKD_BENCH_TICKD_PATH, "redis-server"};
    int quick = 0, seconds_set = 0, rounds_set = 0;
    static const struct option longopts[] = {{"connections", required_argument, NULL, 'c'},
                                             {"pipeline", required_argument, NULL, 'p'},
                                             {"seconds", required_argument, NULL, 's'},
                                             {"rounds", required_argument, NULL, 'r'},
                                             {"tickd", required_argument, NULL, 't'},
                                             {"redis-server", required_argument, NULL, 'R'},
                                             {"quick", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            o.conns = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            o.pipeline = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 's':
            o.seconds = strtod(optarg, NULL), seconds_set = 1;
            break;
        case 'r':
            o.rounds = (unsigned)strtoul(optarg, NULL, 10), rounds_set = 1;
            break;
        case 't':
            o.tickd = optarg;
            break;
        case 'R':
            o.redis = optarg;
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
    }
    if (quick) {
        o.seconds = seconds_set ? o.seconds : 0.2;
        o.rounds = rounds_set ? o.rounds : 1;
    }
    if (optind != argc || o.conns < 1 || o.conns > MAX_CONNS || o.pipeline < 1 || o.seconds <= 0 ||
        o.rounds < 1 || o.rounds > MAX_ROUNDS) {
        usage(stderr);
        return 2;
    }
    int with_redis = strcmp(o.redis, "none") != 0;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/tickd-bench-get.XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        fprintf(stderr, "tickd-bench-get: cannot make a directory: %s\n", strerror(errno));
        return 1;
    }
    int port[NSRV] = {bench_free_port(), bench_free_port()}, feed_port = bench_free_port();
    if (start_tickd(o.tickd, port[SRV_TICKD], feed_port) != 0 ||
        (with_redis && start_redis(o.redis, port[SRV_REDIS]) != 0)) {
        stop_servers();
        return 1;
    }

    /* The values: tickd's made as a feed makes them, redis-server's the
     * same bytes (trade) or the same length (book). */
    static const char *const keys[2] = {"trade.BENCH", "book.BENCH"};
    long len[2];
    static char value[2][16384];
    const char *publish[3] = {"PUBLISH", "trade.BENCH", TRADE_LINE};
    const char *get[2] = {"GET", NULL};
    int ok = command(port[SRV_TICKD], 3, publish, NULL, 0) >= -1 && send_book(feed_port) == 0;
    for (int k = 0; k < 2 && ok; k++) {
        get[1] = keys[k];
        int64_t deadline = mono_ns() + 10000000000LL;
        /* The book is whole once both sides show 10 levels: the feed is
         * another socket, read when tickd gets to it. */
        while ((len[k] = command(port[SRV_TICKD], 2, get, value[k], sizeof value[k])) >= -1 &&
               k == 1 && count(value[k], len[k], "\"orders\"") < 20 && mono_ns() < deadline)
            usleep(10000);
        ok = len[k] > 0 && (size_t)len[k] < sizeof value[k];
        if (ok && with_redis) {
            const char *set[3] = {"SET", keys[k], value[k]};
            ok = command(port[SRV_REDIS], 3, set, NULL, 0) >= -1 &&
                 command(port[SRV_REDIS], 2, get, NULL, 0) == len[k];
        }
    }
    if (!ok) {
        fprintf(stderr, "tickd-bench-get: could not make the values to GET\n");
        stop_servers();
        return 1;
    }

    char cpu[128];
    bench_cpu_model(cpu, sizeof cpu);
    printf("tickd-bench-get: %u connections x %u GETs in flight, %.2f s per measurement, %u "
           "round(s)\n",
           o.conns, o.pipeline, o.seconds, o.rounds);
    printf("cpu: %s\n", cpu);

    double rates[2][NSRV][MAX_ROUNDS];
    for (unsigned r = 0; r < o.rounds && ok; r++)
        for (int k = 0; k < 2 && ok; k++)
            for (int s = 0; s < (with_redis ? NSRV : 1) && ok; s++) {
                rates[k][s][r] = measure(port[s], keys[k], len[k], &o);
                ok = rates[k][s][r] > 0;
            }
    stop_servers();
    if (!ok) {
        fprintf(stderr, "tickd-bench-get: a measurement failed\n");
        return 1;
    }
    printf("%-12s %7s %16s %16s %8s %s\n", "key", "bytes", "tickd GET/s", "redis GET/s", "ratio",
           "target >= 1.0x");
    for (int k = 0; k < 2; k++) {
        double t = bench_median(rates[k][SRV_TICKD], o.rounds);
        if (!with_redis) {
            printf("%-12s %7ld %16.0f %16s %8s %s\n", keys[k], len[k], t, "-", "-",
                   "(no redis-server)");
            continue;
        }
        double rd = bench_median(rates[k][SRV_REDIS], o.rounds);
        printf("%-12s %7ld %16.0f %16.0f %7.2fx %s\n", keys[k], len[k], t, rd, t / rd,
               t / rd >= 1.0 ? "met" : "MISSED");
    }
    return 0;
}

/*
 * bench_nats.c - tickd-bench-nats: what NATS costs and delivers (issue #18).
 *
 *   tickd-bench-nats [--ticks N] [--rate R] [--seconds S] [--rounds K]
 *                    [--tickd PATH] [--nats-server PATH] [--quick]
 *
 * It starts one nats-server with JetStream (from PATH, or --nats-server) on
 * a free port of 127.0.0.1 with its store in a temporary directory, and the
 * tickds it needs (the build's binary), and kills them all at the end.
 * Side by side, in one run:
 *
 *   sink     the sink's cost on the loop: the same N ticks made by a market
 *            (100 symbols, market_trade()) without a sink and with
 *            nats_sink_tick() connected to the server (default max_pending,
 *            8MiB), K rounds each in turn, best round of each; the
 *            difference per tick is the sink's cost (target: at most
 *            150 ns). The ticks go in bursts of SINK_BURST, each timed, and
 *            the sink's thread publishes a burst before the next: the loop
 *            as it runs while NATS keeps up, its ring warm (a lap of the
 *            ring first, untimed), never the cheaper drop path.
 *   rate     delivered rate to one libnats subscriber: tickd (N CSV ticks
 *            sent at once on its TCP feed, published by its sink) against a
 *            bare libnats publisher sending the same subjects, headers and
 *            payloads as fast as it can (the floor); each rate is N over the
 *            time from the first message received to the last (target:
 *            tickd at least 0.8 x the floor).
 *   js       a tickd publishing into a JetStream stream (file storage, one
 *            replica): N ticks sent at once, the rate from the send until
 *            tickd_nats_js_acks_total reaches N, and the acknowledgement
 *            latency's p50 and p99 from tickd_nats_js_ack_seconds (the upper
 *            bound of the bucket holding them).
 *   e2e      PUBLISH into tickd A to a RESP subscriber of tickd B fed from
 *            NATS (a core subscription): R ticks a second for S seconds, a
 *            batch every millisecond; each tick's latency is the
 *            subscriber's read time minus the CLOCK_REALTIME written into
 *            its timestamp; p50 and p99 by nearest rank, the first 10%
 *            left out as warm-up.
 *
 * Targets are printed as met or MISSED, never asserted. Exit status: 0
 * success, 1 a measurement failed (a process did not start, ticks were
 * lost), 2 bad usage, 77 nats-server is not installed. --quick: N 20,000,
 * S 0.5, K 2 unless given.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
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

#include <nats/nats.h>
#include <uv.h>

#include "alloc/alloc.h"
#include "tests/bench/bench_host.h"
#include "feed/market.h"
#include "tests/bench/resp_client.h"
#include "src/nats_conn.h"
#include "src/nats_sink.h"

#ifndef TICKD_BENCH_TICKD_PATH
#error "TICKD_BENCH_TICKD_PATH must name the tickd binary (set by tests/bench/CMakeLists.txt)"
#endif

#define HOST        "127.0.0.1"
#define NSYMBOLS    100
#define MAX_PROCS   8
#define MAX_ROUNDS  15
#define WAIT_MS     60000
#define SINK_TARGET 150.0 /* ns per tick */
#define RATE_TARGET 0.8   /* tickd / floor */
#define SINK_BURST  4096  /* ticks the loop makes between two drains of the sink's ring */

struct options {
    unsigned ticks;
    unsigned rate;
    double seconds;
    unsigned rounds;
    const char *tickd;
    const char *nats_server;
};

static char tmp_dir[64];
static pid_t procs[MAX_PROCS];
static size_t nprocs;
static char symbols[NSYMBOLS][8];

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- processes ---- */

static void kill_all(void)
{
    for (size_t i = 0; i < nprocs; i++) {
        kill(procs[i], SIGKILL);
        waitpid(procs[i], NULL, 0);
    }
    nprocs = 0;
    bench_remove_dir(tmp_dir);
}

static void on_signal(int sig)
{
    for (size_t i = 0; i < nprocs; i++)
        kill(procs[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Runs argv with its output in dir/<name>.log and waits until port accepts
 * connections. 0, or -1 with a message. */
static int spawn(const char *name, char *const argv[], int port)
{
    char log[160];
    snprintf(log, sizeof log, "%s/%s.log", tmp_dir, name);
    pid_t pid = bench_spawn(argv, log);
    if (pid < 0)
        return -1;
    procs[nprocs++] = pid;
    for (int tries = 0; tries < 500; tries++) {
        int fd = connect_port(port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            break;
        usleep(20000);
    }
    fprintf(stderr, "tickd-bench-nats: %s did not start (log: %s)\n", name, log);
    return -1;
}

typedef struct tickd_proc {
    int resp, http, feed;
} tickd_proc_t;

/* A tickd with a CSV TCP feed and the extra YAML; 0 or -1. */
static int start_tickd(const struct options *o, const char *name, const char *extra,
                       tickd_proc_t *t)
{
    char config[160];
    t->resp = bench_free_port();
    t->http = bench_free_port();
    t->feed = bench_free_port();
    snprintf(config, sizeof config, "%s/%s.yaml", tmp_dir, name);
    FILE *f = fopen(config, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "pubsub:\n  listen: %s:%d\n  snapshot_on_subscribe: false\n"
            "  output_hard_limit: 1GiB\n  output_soft_limit: 0\n  max_request: 1MiB\n"
            "http:\n  listen: %s:%d\nlog:\n  level: warning\n%s",
            HOST, t->resp, HOST, t->http, extra);
    if (strstr(extra, "feeds:") == NULL)
        fprintf(f, "feeds:\n  - {name: in, type: tcp, format: csv, listen: %s:%d}\n", HOST,
                t->feed);
    fclose(f);
    char *argv[] = {(char *)o->tickd, "--config", config, NULL};
    return spawn(name, argv, t->http);
}

/* The value of the metric line starting with key (name and labels) on
 * tickd's /metrics; -1 when absent or unreachable. */
static double metric(int http, const char *key)
{
    int fd = connect_port(http);
    if (fd < 0)
        return -1;
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return -1;
    }
    static char page[1 << 20];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof page - 1 && (n = read(fd, page + len, sizeof page - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    page[len] = '\0';
    size_t klen = strlen(key);
    for (char *line = page; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            return strtod(line + klen + 1, NULL);
        line = next != NULL ? next + 1 : NULL;
    }
    return -1;
}

/* The upper bound of the histogram bucket holding quantile q of name. */
static double histogram_quantile(int http, const char *name, double q)
{
    static const char *const les[] = {"1e-06",  "2.5e-06", "5e-06",  "1e-05", "2.5e-05", "5e-05",
                                      "0.0001", "0.00025", "0.0005", "0.001", "0.0025",  "0.005",
                                      "0.01",   "0.025",   "0.05",   "0.1",   "0.25",    "0.5",
                                      "1",      "2.5",     "5",      "10"};
    char key[160];
    snprintf(key, sizeof key, "%s_count", name);
    double count = metric(http, key);
    if (count <= 0)
        return -1;
    for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
        snprintf(key, sizeof key, "%s_bucket{le=\"%s\"}", name, les[i]);
        if (metric(http, key) >= q * count)
            return strtod(les[i], NULL);
    }
    return 10;
}

/* Sends all of buf on fd (blocking). */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* N CSV trades over the symbols, one buffer. */
static char *csv_ticks(unsigned n, size_t *len)
{
    char *buf = malloc((size_t)n * 40 + 1);
    size_t o = 0;
    if (buf == NULL)
        return NULL;
    for (unsigned i = 0; i < n; i++)
        o += (size_t)sprintf(buf + o, "T,%u,%s,1.%04u,%u,B\n", i + 1, symbols[i % NSYMBOLS],
                             i % 10000, 1 + i % 500);
    *len = o;
    return buf;
}

/* ---- sink: cost on the loop ---- */

static void sink_fn(void *arg, tick_t *t)
{
    const char *text;
    nats_sink_tick(arg, t, &text);
}

static double make_ticks(market_t *m, unsigned n)
{
    int64_t t0 = now_ns();
    for (unsigned i = 0; i < n; i++)
        market_trade(m, symbols[i % NSYMBOLS], strlen(symbols[i % NSYMBOLS]),
                     10000 + (int64_t)(i % 1000), 100, 'B', 0, i, i);
    return (double)(now_ns() - t0) / n;
}

/* Waits until the sink's ring is empty (at most 30 s). */
static void sink_drain(nats_sink_t *sink)
{
    nats_sink_stats_t st;
    int64_t until = now_ns() + 30000000000LL;
    do {
        nats_sink_get_stats(sink, &st);
        if (st.pending_bytes > 0)
            usleep(1000);
    } while (st.pending_bytes > 0 && now_ns() < until);
}

/* n ticks in bursts, the ring drained between them: ns per tick made. */
static double make_bursts(market_t *m, nats_sink_t *sink, unsigned n)
{
    double total = 0;
    for (unsigned done = 0; done < n; done += SINK_BURST) {
        unsigned k = n - done < SINK_BURST ? n - done : SINK_BURST;
        total += make_ticks(m, k) * k;
        if (sink != NULL)
            sink_drain(sink);
    }
    return total / n;
}

static int bench_sink(const struct options *o, int nats_port, double *without, double *with,
                      uint64_t *dropped)
{
    uv_loop_t loop;
    heap_t *heap;
    heap_options_t ho;
    market_t *plain, *sunk;
    nats_sink_t *sink;
    config_nats_t nc;
    char err[256];
    uv_loop_init(&loop);
    heap_options_init(&ho);
    if (heap_create(&ho, &heap) != 0 || obj_runtime_create(heap) != 0)
        return -1;
    memset(&nc, 0, sizeof nc);
    snprintf(nc.servers[0], sizeof nc.servers[0], "nats://%s:%d", HOST, nats_port);
    nc.nservers = 1;
    nc.publish = 1;
    strcpy(nc.prefix, "sink");
    strcpy(nc.name, "bench-sink");
    nc.max_pending = (size_t)8 << 20;
    nc.reconnect_wait_ns = 100000000;
    nc.jetstream.replicas = 1;
    if (nats_sink_start(&loop, &nc, &sink, err, sizeof err) != 0) {
        fprintf(stderr, "tickd-bench-nats: %s\n", err);
        return -1;
    }
    nats_sink_stats_t st;
    int64_t until = now_ns() + 10000000000LL;
    do {
        usleep(10000);
        nats_sink_get_stats(sink, &st);
    } while (!st.connected && now_ns() < until);
    if (!st.connected || market_create(heap, 0, NULL, NULL, &plain) != 0 ||
        market_create(heap, 0, sink_fn, sink, &sunk) != 0) {
        fprintf(stderr, "tickd-bench-nats: the sink did not connect\n");
        return -1;
    }
    make_bursts(plain, NULL, 8 * SINK_BURST); /* the symbols interned, the ring's lap */
    make_bursts(sunk, sink, 8 * SINK_BURST);
    *without = *with = 1e30;
    for (unsigned r = 0; r < o->rounds; r++) {
        double a = make_bursts(plain, NULL, o->ticks);
        double b = make_bursts(sunk, sink, o->ticks);
        *without = a < *without ? a : *without;
        *with = b < *with ? b : *with;
    }
    nats_sink_get_stats(sink, &st);
    *dropped = st.dropped_total;
    nats_sink_stop(sink);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    nats_conn_wait_all(5000);
    market_destroy(plain);
    market_destroy(sunk);
    gc_collect(heap, GC_NGENERATIONS - 1);
    obj_runtime_destroy(heap);
    heap_destroy(heap);
    return 0;
}

/* ---- rate: one libnats subscriber ---- */

typedef struct counter {
    atomic_ullong n;
    atomic_llong first, last;
} counter_t;

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    counter_t *c = closure;
    (void)nc;
    (void)sub;
    int64_t t = now_ns();
    if (atomic_fetch_add(&c->n, 1) == 0)
        atomic_store(&c->first, t);
    atomic_store(&c->last, t);
    natsMsg_Destroy(msg);
}

static int wait_count(counter_t *c, unsigned n)
{
    int64_t until = now_ns() + (int64_t)WAIT_MS * 1000000;
    unsigned long long seen = 0;
    int64_t moved = now_ns();
    while (atomic_load(&c->n) < n && now_ns() < until) {
        usleep(2000);
        if (atomic_load(&c->n) != seen) {
            seen = atomic_load(&c->n);
            moved = now_ns();
        } else if (now_ns() - moved > 5000000000LL) {
            break; /* nothing for 5 s: lost */
        }
    }
    return atomic_load(&c->n) == n ? 0 : -1;
}

static double rate_of(counter_t *c, unsigned n)
{
    int64_t span = atomic_load(&c->last) - atomic_load(&c->first);
    return span > 0 ? (double)n / ((double)span / 1e9) : 0;
}

static natsConnection *nats_connect(int port)
{
    char url[64];
    natsConnection *nc = NULL;
    snprintf(url, sizeof url, "nats://%s:%d", HOST, port);
    if (natsConnection_ConnectTo(&nc, url) != NATS_OK)
        return NULL;
    return nc;
}

/* The floor: the sink's messages, published as fast as libnats goes. */
static void floor_publish(natsConnection *nc, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        char subject[64], payload[160], id[48], seq[24];
        int len = snprintf(payload, sizeof payload,
                           "{\"sym\":\"%s\",\"kind\":\"trade\",\"price\":\"1.%04u\",\"size\":%u,"
                           "\"side\":\"B\",\"ts\":%u,\"seq\":%u}",
                           symbols[i % NSYMBOLS], i % 10000, 1 + i % 500, i + 1, i + 1);
        snprintf(subject, sizeof subject, "floor.trade.%s", symbols[i % NSYMBOLS]);
        snprintf(id, sizeof id, "0123456789abcdef-%u", i);
        snprintf(seq, sizeof seq, "%u", i + 1);
        natsMsg *m = NULL;
        if (natsMsg_Create(&m, subject, NULL, payload, len) == NATS_OK &&
            natsMsgHeader_Set(m, "Nats-Msg-Id", id) == NATS_OK &&
            natsMsgHeader_Set(m, "Tickd-Seq", seq) == NATS_OK)
            natsConnection_PublishMsg(nc, m);
        natsMsg_Destroy(m);
    }
    natsConnection_FlushTimeout(nc, 10000);
}

static int bench_rate(const struct options *o, int nats_port, const tickd_proc_t *a,
                      double *tickd_rate, double *floor_rate)
{
    counter_t tc = {0}, fc = {0};
    natsConnection *sub_nc = nats_connect(nats_port), *pub_nc = nats_connect(nats_port);
    natsSubscription *ts = NULL, *fs = NULL;
    if (sub_nc == NULL || pub_nc == NULL ||
        natsConnection_Subscribe(&ts, sub_nc, "tickd.>", on_msg, &tc) != NATS_OK ||
        natsConnection_Subscribe(&fs, sub_nc, "floor.>", on_msg, &fc) != NATS_OK)
        return -1;
    natsSubscription_SetPendingLimits(ts, 100000000, 1 << 30);
    natsSubscription_SetPendingLimits(fs, 100000000, 1 << 30);
    natsConnection_Flush(sub_nc);

    floor_publish(pub_nc, o->ticks);
    int r = wait_count(&fc, o->ticks);
    *floor_rate = rate_of(&fc, o->ticks);

    size_t len;
    char *buf = csv_ticks(o->ticks, &len);
    int fd = connect_port(a->feed);
    if (r == 0 && (buf == NULL || fd < 0 || send_all(fd, buf, len) != 0))
        r = -1;
    if (r == 0)
        r = wait_count(&tc, o->ticks);
    *tickd_rate = rate_of(&tc, o->ticks);
    if (r != 0)
        fprintf(stderr, "tickd-bench-nats: rate: %llu of %u floor, %llu of %u tickd received\n",
                (unsigned long long)atomic_load(&fc.n), o->ticks,
                (unsigned long long)atomic_load(&tc.n), o->ticks);
    if (fd >= 0)
        close(fd);
    free(buf);
    natsSubscription_Destroy(ts);
    natsSubscription_Destroy(fs);
    natsConnection_Destroy(sub_nc);
    natsConnection_Destroy(pub_nc);
    return r;
}

/* ---- js: acknowledged publishes ---- */

static int bench_js(const struct options *o, const tickd_proc_t *t, double *rate, double *p50,
                    double *p99)
{
    int64_t until = now_ns() + 30000000000LL;
    while (metric(t->http, "tickd_nats_connected") != 1 && now_ns() < until)
        usleep(10000);
    size_t len;
    char *buf = csv_ticks(o->ticks, &len);
    int fd = connect_port(t->feed);
    int64_t t0 = now_ns();
    int r = buf != NULL && fd >= 0 && send_all(fd, buf, len) == 0 ? 0 : -1;
    until = now_ns() + (int64_t)WAIT_MS * 1000000;
    double acks = 0;
    while (r == 0 && (acks = metric(t->http, "tickd_nats_js_acks_total")) < o->ticks &&
           now_ns() < until)
        usleep(5000);
    int64_t t1 = now_ns();
    if (acks < o->ticks) {
        fprintf(stderr, "tickd-bench-nats: js: %.0f of %u acknowledged (failures %.0f)\n", acks,
                o->ticks, metric(t->http, "tickd_nats_js_ack_failures_total"));
        r = -1;
    }
    *rate = (double)o->ticks / ((double)(t1 - t0) / 1e9);
    *p50 = histogram_quantile(t->http, "tickd_nats_js_ack_seconds", 0.5);
    *p99 = histogram_quantile(t->http, "tickd_nats_js_ack_seconds", 0.99);
    if (fd >= 0)
        close(fd);
    free(buf);
    return r;
}

/* ---- e2e: A -> NATS -> B ---- */

typedef struct e2e_reader {
    resp_conn_t *conn;
    uint64_t expect;
    int64_t *lat; /* ns, one per tick */
    uint64_t got;
    int err;
} e2e_reader_t;

static void *e2e_read(void *arg)
{
    e2e_reader_t *e = arg;
    resp_reply_t r;
    int64_t until = now_ns() + (int64_t)WAIT_MS * 1000000;
    while (e->got < e->expect && now_ns() < until) {
        int k = resp_next(e->conn, &r);
        if (k < 0) {
            e->err = k;
            return NULL;
        }
        if (k == 1) {
            if (r.top.type == '*' && r.top.number == 4 && r.elem[3].type == '$') {
                const char *ts = memmem(r.elem[3].str, r.elem[3].len, "\"ts\":", 5);
                if (ts != NULL)
                    e->lat[e->got++] = realtime_ns() - strtoll(ts + 5, NULL, 10);
            }
            continue;
        }
        struct pollfd p = {.fd = e->conn->fd, .events = POLLIN};
        if (poll(&p, 1, 1000) > 0 && resp_read(e->conn) < 0) {
            e->err = -EPIPE;
            return NULL;
        }
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int bench_e2e(const struct options *o, const tickd_proc_t *a, const tickd_proc_t *b,
                     double *p50, double *p99, uint64_t *n_out)
{
    resp_conn_t pub, sub;
    resp_reply_t r;
    uint64_t n = (uint64_t)(o->rate * o->seconds);
    if (resp_connect(&pub, HOST, a->resp, 1 << 16) != 0 ||
        resp_connect(&sub, HOST, b->resp, 1 << 20) != 0)
        return -1;
    const char *ps[] = {"PSUBSCRIBE", "trade.*"};
    size_t pl[] = {10, 7};
    if (resp_append(&sub, 2, ps, pl) != 0 || resp_wait_reply(&sub, &r, 5000) != 0)
        return -1;
    e2e_reader_t e = {.conn = &sub, .expect = n, .lat = calloc(n + 1, sizeof(int64_t))};
    pthread_t th;
    if (e.lat == NULL || pthread_create(&th, NULL, e2e_read, &e) != 0)
        return -1;
    unsigned per_ms = o->rate / 1000 ? o->rate / 1000 : 1;
    int64_t next = now_ns();
    uint64_t sent = 0;
    while (sent < n) {
        for (unsigned k = 0; k < per_ms && sent < n; k++, sent++) {
            char line[96];
            int len = snprintf(line, sizeof line, "T,%lld,E2E,1.%04u,1", (long long)realtime_ns(),
                               (unsigned)(sent % 10000));
            resp_append_publish(&pub, "trade.E2E", 9, line, (size_t)len);
        }
        while (resp_write(&pub) == 1)
            ;
        while (resp_read(&pub) > 0) /* the replies, taken and dropped */
            while (resp_next(&pub, &r) == 1)
                ;
        next += 1000000;
        int64_t wait = next - now_ns();
        if (wait > 0) {
            struct timespec ts = {0, (long)wait};
            nanosleep(&ts, NULL);
        }
    }
    pthread_join(th, NULL);
    resp_close(&pub);
    resp_close(&sub);
    *n_out = e.got;
    int rc = e.got == n && e.err == 0 ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "tickd-bench-nats: e2e: %llu of %llu ticks reached B\n",
                (unsigned long long)e.got, (unsigned long long)n);
    uint64_t skip = e.got / 10;
    if (e.got > skip) {
        qsort(e.lat + skip, e.got - skip, sizeof(int64_t), cmp_i64);
        uint64_t m = e.got - skip;
        *p50 = (double)e.lat[skip + (m * 50 + 99) / 100 - 1] / 1e3;
        *p99 = (double)e.lat[skip + (m * 99 + 99) / 100 - 1] / 1e3;
    }
    free(e.lat);
    return rc;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr, "usage: tickd-bench-nats [--ticks N] [--rate R] [--seconds S] [--rounds K]\n"
                    "                        [--tickd PATH] [--nats-server PATH] [--quick]\n");
}

int main(int argc, char **argv)
{
    struct options o = {0, 10000, 0, 0, TICKD_BENCH_TICKD_PATH, NULL};
    int quick = 0;
    static const struct option longopts[] = {
        {"ticks", required_argument, NULL, 'n'},   {"rate", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'}, {"rounds", required_argument, NULL, 'k'},
        {"tickd", required_argument, NULL, 't'},   {"nats-server", required_argument, NULL, 'N'},
        {"quick", no_argument, NULL, 'q'},         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            o.ticks = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o.rate = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 's':
            o.seconds = strtod(optarg, NULL);
            break;
        case 'k':
            o.rounds = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 't':
            o.tickd = optarg;
            break;
        case 'N':
            o.nats_server = optarg;
            break;
        case 'q':
            quick = 1;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (o.ticks == 0)
        o.ticks = quick ? 20000 : 200000;
    if (o.seconds <= 0)
        o.seconds = quick ? 0.5 : 3;
    if (o.rounds == 0)
        o.rounds = quick ? 2 : 5;
    if (o.rounds > MAX_ROUNDS || o.rate == 0 || optind != argc) {
        usage();
        return 2;
    }
    static char found[4096];
    if (o.nats_server == NULL) {
        FILE *p = popen("command -v nats-server", "r");
        if (p != NULL && fgets(found, sizeof found, p) != NULL) {
            found[strcspn(found, "\n")] = '\0';
            o.nats_server = found;
        }
        if (p != NULL)
            pclose(p);
    }
    if (o.nats_server == NULL || access(o.nats_server, X_OK) != 0) {
        fprintf(stderr, "tickd-bench-nats: nats-server not found (apt-get install nats-server)\n");
        return 77;
    }
    for (int i = 0; i < NSYMBOLS; i++)
        snprintf(symbols[i], sizeof symbols[i], "S%03d", i);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/tickd-bench-nats.XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        tmp_dir[0] = '\0';
        return 1;
    }

    char cpu[128], port_s[16], store[128];
    bench_cpu_model(cpu, sizeof cpu);
    int nats_port = bench_free_port();
    snprintf(port_s, sizeof port_s, "%d", nats_port);
    snprintf(store, sizeof store, "%s/js", tmp_dir);
    char *nargv[] = {(char *)o.nats_server, "-a", HOST, "-p", port_s, "-js", "-sd", store, NULL};
    tickd_proc_t a, js, b;
    char extra[512];
    int rc = spawn("nats-server", nargv, nats_port);
    snprintf(extra, sizeof extra,
             "nats:\n  servers: [nats://%s:%d]\n  max_pending: 256MiB\n  reconnect_wait: 100ms\n",
             HOST, nats_port);
    if (rc == 0)
        rc = start_tickd(&o, "a", extra, &a);
    snprintf(extra, sizeof extra,
             "nats:\n  servers: [nats://%s:%d]\n  prefix: jsb\n  max_pending: 256MiB\n"
             "  jetstream: {stream: BENCH, storage: file, replicas: 1}\n",
             HOST, nats_port);
    if (rc == 0)
        rc = start_tickd(&o, "js", extra, &js);
    snprintf(extra, sizeof extra,
             "nats:\n  servers: [nats://%s:%d]\n  publish: false\n"
             "feeds:\n  - {name: up, type: nats, subject: \"tickd.trade.E2E\"}\n",
             HOST, nats_port);
    if (rc == 0)
        rc = start_tickd(&o, "b", extra, &b);
    if (rc != 0) {
        kill_all();
        return 1;
    }
    int64_t until = now_ns() + 10000000000LL;
    while ((metric(a.http, "tickd_nats_connected") != 1 ||
            metric(b.http, "tickd_feed_up{feed=\"up\"}") != 1) &&
           now_ns() < until)
        usleep(10000);

    printf("tickd-bench-nats: %u ticks, %u rounds; e2e %u ticks/s for %.1f s; %s\n", o.ticks,
           o.rounds, o.rate, o.seconds, cpu);
    double without = 0, with = 0, trate = 0, frate = 0, jrate = 0, jp50 = 0, jp99 = 0, ep50 = 0,
           ep99 = 0;
    uint64_t dropped = 0, got = 0;
    int failed = 0;
    if (bench_sink(&o, nats_port, &without, &with, &dropped) == 0)
        printf("sink   without %.1f ns/tick, with %.1f ns/tick: %.1f ns/tick on the loop "
               "(target <= %.0f: %s), %llu dropped\n",
               without, with, with - without, SINK_TARGET,
               with - without <= SINK_TARGET ? "met" : "MISSED", (unsigned long long)dropped);
    else
        failed = 1;
    if (bench_rate(&o, nats_port, &a, &trate, &frate) == 0)
        printf("rate   tickd %.0f msg/s, bare libnats %.0f msg/s: %.2fx (target >= %.1f: %s)\n",
               trate, frate, frate > 0 ? trate / frate : 0, RATE_TARGET,
               frate > 0 && trate / frate >= RATE_TARGET ? "met" : "MISSED");
    else
        failed = 1;
    if (bench_js(&o, &js, &jrate, &jp50, &jp99) == 0)
        printf("js     %.0f acknowledged publishes/s, ack p50 <= %g s, p99 <= %g s\n", jrate, jp50,
               jp99);
    else
        failed = 1;
    if (bench_e2e(&o, &a, &b, &ep50, &ep99, &got) == 0)
        printf("e2e    A -> NATS -> B at %u ticks/s: p50 %.0f us, p99 %.0f us (%llu ticks)\n",
               o.rate, ep50, ep99, (unsigned long long)got);
    else
        failed = 1;
    kill_all();
    return failed;
}

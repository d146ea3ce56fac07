/*
 * bench_fanout.c - tickd-bench-fanout: tickd's pub/sub fan-out against Redis
 * pub/sub, the same client code against both, side by side in one run.
 *
 *   tickd-bench-fanout [--subscribers K,K,...] [--messages M] [--rate R] [--seconds S]
 *                      [--rounds N] [--server tickd,redis,floor] [--tickd PATH]
 *                      [--redis-server PATH] [--payload json|csv] [--quick] [--json]
 *
 * The servers. The benchmark starts each server itself, one at a time, on
 * free ports of 127.0.0.1, from a temporary directory holding its config and
 * its log, waits until it answers PING, and kills it at the end (also on an
 * error or a signal; a server started here also gets SIGKILL should the
 * benchmark die). tickd (--tickd, default the build's binary) runs with no
 * feeds, the CSV payload (pubsub.payload: csv: each message is the tick
 * re-encoded as its CSV line, ~45 bytes, so that both servers put the same
 * bytes on the wire; --payload json measures tickd's default, ~100 bytes a
 * message), no snapshot on subscribe, a 1 GiB hard output limit and no soft
 * limit, so that the benchmark's own subscribers are never cut off.
 * redis-server (--redis-server, default from PATH) runs with no persistence
 * and `client-output-buffer-limit pubsub 0 0 0`; its messages are the CSV
 * line as published (~40 bytes).
 *
 * The floor. A third server, the benchmark's own (floor_server.c, run in a
 * child process), does next to nothing: it frames each PUBLISH's payload as
 * a message and writes the frames of each read to every subscriber, one
 * write each, with no channel table, no ticks and no limits. What it
 * measures is the machine's part of every figure: the wake-ups, the
 * loopback writes, the client. A server cannot be much faster than the
 * floor, so the floor's p99 over Redis's says how low a p99 ratio this
 * machine leaves room for.
 *
 * For each K, K subscribers SUBSCRIBE to trade.BENCH and one publisher sends
 * `PUBLISH trade.BENCH T,<ts_ns>,BENCH,101.25,<size>,B`, ts_ns being the
 * CLOCK_REALTIME at which the publisher sends it. One thread reads all the
 * subscribers (epoll, a 256 KiB buffer each); the publisher runs in the main
 * thread. Three phases, each checked for losses (every subscriber must get
 * every message; a PUBLISH reply must count K receivers):
 *
 *  warm-up     min(M, 10,000) messages, as the throughput phase, not reported.
 *  throughput  M PUBLISH pipelined, at most WINDOW replies outstanding;
 *              delivered messages per second = K * M / (first publish until
 *              the read that brought the last message).
 *  latency     R PUBLISH per second offered for S seconds, sent in a batch
 *              every 100 us (clock_nanosleep on an absolute schedule; a late
 *              wake-up sends what is due), replies read as they come (open
 *              loop). Each message's latency is the subscriber's read time
 *              minus the ts it carries ("ts" of tickd's JSON, the second CSV
 *              field from Redis); p50, p99 and p99.9 are nearest-rank over all
 *              the messages of all the subscribers, from a log-linear
 *              histogram (buckets 1/64 of an octave wide: within 1%).
 *
 * Rounds. The whole run, every K, is made N times (--rounds, default 3),
 * the servers taking turns (each round starts each server afresh; every
 * other round runs them in the reverse order), and
 * every figure printed is the median of its N values (the CPU shares come
 * from the round whose throughput is nearest the median); losses count over
 * all the rounds. A slow spell of a shared or virtual machine then lands on
 * both servers instead of on whichever happened to run, and one spell
 * cannot pick the result. tickd's p99 over the floor's is taken round by
 * round and the median of those ratios printed (tickd/floor), the figure
 * that tracks the p99 target.
 *
 * The client and the server share the machine (the output says how many
 * CPUs): the figures include that contention, and the CPU each side used in
 * the throughput phase is printed (a share of one core) so that a saturated
 * client shows. The targets (K = 10: tickd at least 3 x Redis's
 * delivered messages per second; tickd's p99 at R offered at most 1.1 x
 * the floor's) are printed as met or MISSED, never asserted.
 *
 * With --json one object per line per (server, K): server, subscribers,
 * messages, delivered_per_second, p50_us, p99_us, p999_us, offered_rate,
 * and payload (json or csv), latency_messages, lost (over all three
 * phases), latency_backlog_ms (last delivery after the last publish of the
 * latency phase: large when the server could not keep up with R * K
 * deliveries per second), server_cpu, subscriber_cpu, publisher_cpu (the
 * throughput phase), rounds, load_average (the 1-minute load at the end, -1
 * if unknown: above the CPU count, the latencies are the machine's queue);
 * the latencies are null with --seconds 0.
 * tickd's objects also carry p99_over_floor (the median tickd/floor above)
 * when the floor ran too.
 * --quick: M 100,000, S 0.2 and N 1 unless given. Exit status: 0 success, 1 a server or a
 * measurement failed or a message was lost, 2 bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench/bench_host.h"
#include "tests/bench/floor_server.h"
#include "tests/bench/resp_client.h"

#ifndef TICKD_BENCH_TICKD_PATH
#error "TICKD_BENCH_TICKD_PATH must name the tickd binary (set by tests/bench/CMakeLists.txt)"
#endif

#define HOST             "127.0.0.1"
#define SYMBOL           "BENCH"
#define CHANNEL          "trade." SYMBOL
#define WINDOW           1000u /* PUBLISH replies outstanding, throughput phase */
#define WARMUP_MESSAGES  10000u
#define PACE_NS          100000       /* the latency phase sends a batch every 100 us */
#define SUB_BUFFER       (256 * 1024) /* input buffer of each subscriber */
#define STALL_NS         5000000000LL /* no progress for this long: the rest is lost */
#define READY_MS         10000        /* a server must answer PING within this */
#define STOP_MS          5000         /* SIGTERM, then SIGKILL after this */
#define MAX_K_VALUES     16
#define MAX_ROUNDS       15
#define MAX_SUBSCRIBERS  9000 /* both servers refuse clients past 10,000 by default */
#define TARGET_RATIO     3.0  /* delivered msgs/s, tickd over Redis, at TARGET_K */
#define TARGET_K         10
#define TARGET_P99_FLOOR 1.1  /* p99, tickd over the floor, at TARGET_K */
#define CLIENT_BUSY      0.85 /* a client thread busier than this may be the bottleneck */

#define NS_PER_S 1000000000LL

enum server_kind { SERVER_TICKD, SERVER_REDIS, SERVER_FLOOR, NSERVERS };
static const char *const server_names[NSERVERS] = {"tickd", "redis", "floor"};

struct options {
    unsigned k[MAX_K_VALUES];
    unsigned nk;
    uint64_t messages;
    uint64_t rate;
    double seconds;
    unsigned rounds;
    int servers[NSERVERS]; /* which to run */
    const char *path[NSERVERS];
    const char *payload; /* tickd's pubsub.payload: json or csv */
    int quick;
    int json;
};

/* ---- clocks ---- */

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t realtime_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

static int64_t monotonic_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

/* ---- latency histogram ---- */

/* Log-linear: values below 2 * HIST_SUB exactly, then every octave cut in
 * HIST_SUB buckets (a bucket is at most 1/64 of its value wide). */
#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  (2 * HIST_SUB + (63 - HIST_SUB_BITS) * HIST_SUB)

struct histogram {
    uint64_t total;
    uint64_t count[HIST_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    return 2 * HIST_SUB + (msb - HIST_SUB_BITS - 1) * HIST_SUB +
           (unsigned)((v >> shift) - HIST_SUB);
}

/* The middle of bucket i. */
static uint64_t hist_value(unsigned i)
{
    if (i < 2 * HIST_SUB)
        return i;
    unsigned j = i - 2 * HIST_SUB;
    unsigned shift = j / HIST_SUB + 1;
    uint64_t lo = (uint64_t)(j % HIST_SUB + HIST_SUB) << shift;
    return lo + ((1ull << shift) - 1) / 2;
}

static void hist_record(struct histogram *h, int64_t ns)
{
    h->count[hist_index(ns > 0 ? (uint64_t)ns : 0)]++;
    h->total++;
}

/* Nearest rank: the smallest value with at least ceil(num / den * total)
 * values at or below it. */
static uint64_t hist_quantile(const struct histogram *h, uint64_t num, uint64_t den)
{
    uint64_t rank = (h->total * num + den - 1) / den, seen = 0;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank)
            return hist_value(i);
    }
    return 0;
}

/* ---- the servers ---- */

struct server {
    enum server_kind kind;
    const char *payload; /* tickd: pubsub.payload */
    pid_t pid;
    int port;
    char dir[64]; /* temporary: config and log */
    char config[96];
    char log[96];
};

/* The server running now, for the signal handler. */
static volatile pid_t running_pid;
static char running_dir[64], running_config[96], running_log[96];

static void on_fatal_signal(int sig)
{
    pid_t pid = running_pid;
    if (pid > 0)
        kill(pid, SIGKILL);
    if (running_dir[0] != '\0') {
        if (running_config[0] != '\0')
            unlink(running_config);
        unlink(running_log);
        rmdir(running_dir);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The first port of the kernel's ephemeral range (32768 by default). */
static int ephemeral_low(void)
{
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%d", &low) != 1)
            low = 32768;
        fclose(f);
    }
    return low;
}

/* Binds fd to 127.0.0.1:port (0: any). 0 or -errno. */
static int bind_loopback(int fd, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : -errno;
}

/* n free TCP ports of 127.0.0.1, all different (each socket stays bound
 * until all are found). They are drawn below the kernel's ephemeral range
 * when it leaves room: ports bound to 0 and the local ports of connect()s
 * (other programs', tests running side by side) come from that range and
 * could take a port before the server binds it. 0 or -errno. */
static int free_ports(int *ports, int n)
{
    int fds[4], err = 0, i, low = ephemeral_low();
    unsigned seed = (unsigned)getpid() ^ (unsigned)monotonic_ns();
    for (i = 0; i < n && err == 0; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0) {
            err = -errno;
            break;
        }
        err = -EADDRINUSE;
        for (int tries = 0; low > 20000 && tries < 1000 && err != 0; tries++) {
            ports[i] = 20000 + (int)(rand_r(&seed) % (unsigned)(low - 20000));
            err = bind_loopback(fds[i], ports[i]);
        }
        if (err != 0) {
            struct sockaddr_in sa;
            socklen_t len = sizeof sa;
            err = bind_loopback(fds[i], 0);
            if (err == 0 && getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0)
                err = -errno;
            if (err == 0)
                ports[i] = ntohs(sa.sin_port);
        }
    }
    while (i-- > 0)
        close(fds[i]);
    return err;
}

static int write_config(const struct server *s, int http_port)
{
    FILE *f = fopen(s->config, "w");
    if (f == NULL)
        return -errno;
    if (s->kind == SERVER_TICKD)
        fprintf(f,
                "# tickd-bench-fanout: a pub/sub listener, no feeds, nothing on disk.\n"
                "pubsub:\n"
                "  listen: %s:%d\n"
                "  payload: %s\n"
                "  snapshot_on_subscribe: false\n"
                "  output_hard_limit: 1GiB\n"
                "  output_soft_limit: 0\n"
                "http:\n"
                "  listen: %s:%d\n"
                "journal:\n"
                "  enabled: false\n"
                "log:\n"
                "  level: warning\n",
                HOST, s->port, s->payload, HOST, http_port);
    else
        fprintf(f,
                "# tickd-bench-fanout: pub/sub only, nothing on disk.\n"
                "port %d\n"
                "bind %s\n"
                "protected-mode no\n"
                "daemonize no\n"
                "save \"\"\n"
                "appendonly no\n"
                "dir %s\n"
                "logfile \"\"\n"
                "client-output-buffer-limit pubsub 0 0 0\n",
                s->port, HOST, s->dir);
    return fclose(f) == 0 ? 0 : -EIO;
}

/* Prints the last lines of the server's log on stderr. */
static void show_log(const struct server *s)
{
    char buf[2048];
    FILE *f = fopen(s->log, "r");
    if (f == NULL)
        return;
    if (fseek(f, -(long)(sizeof buf - 1), SEEK_END) != 0)
        rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (n > 0)
        fprintf(stderr, "--- end of %s's log (%s) ---\n%s%s---\n", server_names[s->kind], s->log,
                buf, buf[n - 1] == '\n' ? "" : "\n");
}

/* Waits until the server answers PING; 0 or -errno with a message. */
static int server_wait_ready(struct server *s, char *err, size_t errlen)
{
    int64_t deadline = monotonic_ns() + (int64_t)READY_MS * 1000000;
    for (;;) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            running_pid = 0;
            snprintf(err, errlen, "%s exited at start-up (status %d)", server_names[s->kind],
                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            return -ECHILD;
        }
        resp_conn_t c;
        if (resp_connect(&c, HOST, s->port, 4096) == 0) {
            static const char *const ping[] = {"PING"};
            static const size_t len[] = {4};
            resp_reply_t r;
            int e = resp_append(&c, 1, ping, len);
            if (e == 0)
                e = resp_wait_reply(&c, &r, 2000);
            int pong = e == 0 && r.top.type == '+' && resp_value_is(&r.top, "PONG");
            resp_close(&c);
            if (pong)
                return 0;
        }
        if (monotonic_ns() > deadline) {
            snprintf(err, errlen, "%s did not answer PING on %s:%d within %d s",
                     server_names[s->kind], HOST, s->port, READY_MS / 1000);
            return -ETIMEDOUT;
        }
        usleep(20000);
    }
}

static void server_cleanup_files(struct server *s)
{
    if (s->dir[0] == '\0')
        return;
    if (s->config[0] != '\0')
        unlink(s->config);
    unlink(s->log);
    rmdir(s->dir);
    s->dir[0] = running_dir[0] = '\0';
}

/* Stops the server (SIGTERM, SIGKILL after STOP_MS) and removes its files.
 * Returns its exit status as a shell would show it, or -1 if it had to be
 * killed. */
static int server_stop(struct server *s)
{
    int status = 0, code = -1;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int64_t deadline = monotonic_ns() + (int64_t)STOP_MS * 1000000;
        pid_t w;
        while ((w = waitpid(s->pid, &status, WNOHANG)) == 0 && monotonic_ns() < deadline)
            usleep(10000);
        if (w == 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
        } else if (w == s->pid) {
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        s->pid = 0;
        running_pid = 0;
    }
    server_cleanup_files(s);
    return code;
}

/* Starts the server on a free port and waits until it is ready. 0, or
 * -errno with a message (and nothing left running). */
static int server_start(struct server *s, enum server_kind kind, const char *path,
                        const char *payload, char *err, size_t errlen)
{
    int ports[2], r;

    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->payload = payload;
    snprintf(s->dir, sizeof s->dir, "/tmp/tickd-bench-fanout.XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        r = -errno;
        snprintf(err, errlen, "cannot make a temporary directory: %s", strerror(errno));
        s->dir[0] = '\0';
        return r;
    }
    if (kind != SERVER_FLOOR)
        snprintf(s->config, sizeof s->config, "%s/%s", s->dir,
                 kind == SERVER_TICKD ? "tickd.yaml" : "redis.conf");
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
    memcpy(running_config, s->config, sizeof running_config);
    memcpy(running_log, s->log, sizeof running_log);
    memcpy(running_dir, s->dir, sizeof running_dir);

    r = free_ports(ports, 2);
    s->port = ports[0];
    if (r == 0 && kind != SERVER_FLOOR)
        r = write_config(s, ports[1]);
    if (r != 0) {
        snprintf(err, errlen, "cannot set up %s: %s", server_names[kind], strerror(-r));
        server_cleanup_files(s);
        return r;
    }
    pid_t parent = getpid();
    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0) {
        r = -errno;
        snprintf(err, errlen, "fork: %s", strerror(errno));
        server_cleanup_files(s);
        return r;
    }
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in >= 0)
            dup2(in, STDIN_FILENO);
        if (out >= 0) {
            dup2(out, STDOUT_FILENO);
            dup2(out, STDERR_FILENO);
        }
        if (kind == SERVER_FLOOR) {
            signal(SIGINT, SIG_DFL); /* not the parent's clean-up */
            signal(SIGTERM, SIG_DFL);
            signal(SIGHUP, SIG_DFL);
            signal(SIGQUIT, SIG_DFL);
            r = floor_serve(s->port);
            fprintf(stderr, "tickd-bench-fanout: floor server: %s\n", strerror(-r));
            _exit(1);
        }
        if (kind == SERVER_TICKD)
            execl(path, path, "--config", s->config, (char *)NULL);
        else
            execlp(path, path, s->config, (char *)NULL);
        fprintf(stderr, "tickd-bench-fanout: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    running_pid = s->pid;
    r = server_wait_ready(s, err, errlen);
    if (r != 0) {
        show_log(s);
        server_stop(s);
    }
    return r;
}

/* The server is still running (it did not crash). */
static int server_alive(struct server *s)
{
    int status;
    if (s->pid > 0 && waitpid(s->pid, &status, WNOHANG) == s->pid) {
        fprintf(stderr, "tickd-bench-fanout: %s died (%s %d)\n", server_names[s->kind],
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        show_log(s);
        s->pid = 0;
        running_pid = 0;
    }
    return s->pid > 0;
}

/* CPU time of a process, in ns: the sum over its threads of the time on a
 * CPU (the first field of /proc/PID/task/TID/schedstat); 0 when unknown. */
static int64_t process_cpu_ns(pid_t pid)
{
    char path[96];
    int64_t sum = 0;
    struct dirent *e;

    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return 0;
    while ((e = readdir(dir)) != NULL) {
        long long ns;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.16s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fscanf(f, "%lld", &ns) == 1)
            sum += ns;
        fclose(f);
    }
    closedir(dir);
    return sum;
}

/* First line of `cmd --version`, trimmed to what says the version; the
 * floor server is the benchmark's own. */
static void server_version(enum server_kind kind, const char *path, char *buf, size_t len)
{
    char cmd[512], line[256] = "";
    if (kind == SERVER_FLOOR) {
        snprintf(buf, len, "floor");
        return;
    }
    snprintf(buf, len, "%s", kind == SERVER_TICKD ? "tickd" : "Redis");
    snprintf(cmd, sizeof cmd, "'%s' --version 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return;
    if (fgets(line, sizeof line, p) == NULL)
        line[0] = '\0';
    pclose(p);
    const char *v = kind == SERVER_TICKD ? strchr(line, ' ') : strstr(line, "v=");
    if (v != NULL) {
        v += kind == SERVER_TICKD ? 1 : 2;
        snprintf(buf, len, "%s %.*s", kind == SERVER_TICKD ? "tickd" : "Redis",
                 (int)strcspn(v, " \n"), v);
    }
}

/* ---- subscribers ---- */

struct sub {
    resp_conn_t conn;
    uint64_t count; /* messages received in this phase */
};

/* One phase as the subscriber thread sees it. */
struct phase {
    struct sub *subs;
    unsigned nsubs;
    uint64_t expect;        /* messages each subscriber must get */
    struct histogram *hist; /* latency phase: record into it; else NULL */
    atomic_int publisher_done;
    atomic_int abort;

    /* Results, written by the subscriber thread. */
    int64_t last_delivery; /* CLOCK_REALTIME of the read that completed the last message */
    uint64_t delivered;
    int64_t cpu_ns;
    int err; /* 0, or -errno with errmsg */
    char errmsg[160];
};

/* ts of a payload: tickd's JSON "ts":N, or a CSV line's second field. */
static int64_t payload_ts(const char *p, size_t len)
{
    const char *end = p + len, *q;
    if (len > 0 && p[0] == '{') {
        q = memmem(p, len, "\"ts\":", 5);
        if (q != NULL)
            q += 5;
    } else {
        q = memchr(p, ',', len);
        if (q != NULL)
            q++;
    }
    if (q == NULL)
        return -1;
    const char *digits = q;
    int64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9')
        v = v * 10 + (*q++ - '0');
    return q == digits ? -1 : v;
}

static void phase_fail(struct phase *ph, int err, const char *what, unsigned i)
{
    if (ph->err != 0)
        return;
    ph->err = err;
    snprintf(ph->errmsg, sizeof ph->errmsg, "subscriber %u: %s", i, what);
}

/* Takes the complete frames off subscriber i's buffer. Returns messages. */
static uint64_t sub_parse(struct phase *ph, unsigned i, int64_t now)
{
    struct sub *s = &ph->subs[i];
    resp_reply_t r;
    uint64_t n = 0;
    int got;

    while ((got = resp_next(&s->conn, &r)) == 1) {
        if (r.top.type != '*' || r.top.number != 3 || r.elem[0].len != 7 ||
            memcmp(r.elem[0].str, "message", 7) != 0 || r.elem[2].str == NULL) {
            phase_fail(ph, -EPROTO, "a reply that is not a message", i);
            return n;
        }
        if (ph->hist != NULL) {
            int64_t ts = payload_ts(r.elem[2].str, r.elem[2].len);
            if (ts < 0) {
                phase_fail(ph, -EPROTO, "a message without a timestamp", i);
                return n;
            }
            hist_record(ph->hist, now - ts);
        }
        n++;
    }
    if (got < 0)
        phase_fail(ph, got, "bytes that are not RESP2", i);
    s->count += n;
    if (s->count > ph->expect)
        phase_fail(ph, -EPROTO, "more messages than were published", i);
    return n;
}

static void *sub_thread(void *arg)
{
    struct phase *ph = arg;
    struct epoll_event ev[256];
    int64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), last_progress = monotonic_ns();
    unsigned waiting = 0;

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        phase_fail(ph, -errno, "epoll_create1 failed", 0);
        return NULL;
    }
    for (unsigned i = 0; i < ph->nsubs; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = i};
        ph->subs[i].count = 0;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, ph->subs[i].conn.fd, &e) != 0)
            phase_fail(ph, -errno, "epoll_ctl failed", i);
        waiting++;
    }
    while (waiting > 0 && ph->err == 0 && !atomic_load(&ph->abort)) {
        int n = epoll_wait(ep, ev, (int)(sizeof ev / sizeof ev[0]), 100);
        if (n < 0 && errno != EINTR) {
            phase_fail(ph, -errno, "epoll_wait failed", 0);
            break;
        }
        uint64_t got = 0;
        for (int j = 0; j < n; j++) {
            unsigned i = ev[j].data.u32;
            ssize_t rd = resp_read(&ph->subs[i].conn);
            if (rd < 0) {
                phase_fail(ph, (int)rd,
                           rd == -ECONNRESET ? "the server closed the connection" : "read failed",
                           i);
                break;
            }
            if (rd == 0)
                continue;
            int64_t now = realtime_ns();
            int complete = ph->subs[i].count == ph->expect;
            uint64_t m = sub_parse(ph, i, now);
            if (m > 0) {
                got += m;
                ph->last_delivery = now;
                if (!complete && ph->subs[i].count == ph->expect)
                    waiting--;
            }
        }
        ph->delivered += got;
        int64_t mono = monotonic_ns();
        if (got > 0 || !atomic_load(&ph->publisher_done))
            last_progress = mono;
        else if (mono - last_progress > STALL_NS)
            break; /* the rest is lost */
    }
    close(ep);
    ph->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    return NULL;
}

/* ---- the publisher ---- */

/* The CSV line of a trade published at ts: "T,<ts>,BENCH,101.25," is
 * written once per batch into line (tick_head(), which returns its length),
 * then each tick's "<size>,B" after it (tick_tail(), size 1 to 1000 from
 * seq, returns the line's length). */
static size_t tick_head(char *line, int64_t ts)
{
    return (size_t)sprintf(line, "T,%" PRId64 "," SYMBOL ",101.25,", ts);
}

static size_t tick_tail(char *line, size_t head, uint64_t seq)
{
    unsigned size = (unsigned)(seq % 1000 + 1);
    char *p = line + head;
    if (size >= 1000)
        *p++ = (char)('0' + size / 1000);
    if (size >= 100)
        *p++ = (char)('0' + size / 100 % 10);
    if (size >= 10)
        *p++ = (char)('0' + size / 10 % 10);
    *p++ = (char)('0' + size % 10);
    *p++ = ',';
    *p++ = 'B';
    return (size_t)(p - line);
}

struct pub_result {
    int64_t first_send; /* CLOCK_REALTIME just before the first PUBLISH went out */
    int64_t last_send;  /* ... after the last one went out */
    int64_t cpu_ns;
    uint64_t short_replies; /* replies counting fewer than K receivers */
};

/* Takes the replies off the publisher's buffer. -errno with a message on a
 * reply that is not an integer. */
static int pub_replies(resp_conn_t *c, unsigned k, uint64_t *acked, struct pub_result *res,
                       char *err, size_t errlen)
{
    resp_reply_t r;
    int got;
    while ((got = resp_next(c, &r)) == 1) {
        if (r.top.type != ':') {
            snprintf(err, errlen, "PUBLISH answered %c%.*s", r.top.type,
                     (int)(r.top.len < 200 ? r.top.len : 200), r.top.str ? r.top.str : "");
            return -EPROTO;
        }
        if (r.top.number != (long long)k)
            res->short_replies++;
        (*acked)++;
    }
    if (got < 0)
        snprintf(err, errlen, "PUBLISH replies are not RESP2");
    return got;
}

/* Publishes n ticks: pipelined with at most WINDOW outstanding when rate is
 * 0, else rate per second in a batch every PACE_NS. Returns once every reply
 * is in: 0, or -errno with a message. */
static int publish(resp_conn_t *c, unsigned k, uint64_t n, uint64_t rate, struct pub_result *res,
                   char *err, size_t errlen)
{
    uint64_t sent = 0, acked = 0;
    int64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    int64_t mono0 = monotonic_ns(), next = mono0;
    char line[96];
    int r = 0;

    memset(res, 0, sizeof *res);
    res->first_send = realtime_ns();
    while (acked < n && r == 0) {
        size_t head;
        if (rate == 0) {
            head = tick_head(line, realtime_ns());
            while (sent < n && sent - acked < WINDOW && r == 0) {
                size_t len = tick_tail(line, head, sent);
                r = resp_append_publish(c, CHANNEL, sizeof CHANNEL - 1, line, len);
                sent++;
            }
        } else if (sent < n) {
            struct timespec at = {.tv_sec = next / NS_PER_S, .tv_nsec = next % NS_PER_S};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
                ;
            next += PACE_NS;
            uint64_t due = (uint64_t)((double)(monotonic_ns() - mono0) * (double)rate / 1e9) + 1;
            if (due > n)
                due = n;
            head = tick_head(line, realtime_ns());
            while (sent < due && r == 0) {
                size_t len = tick_tail(line, head, sent);
                r = resp_append_publish(c, CHANNEL, sizeof CHANNEL - 1, line, len);
                sent++;
            }
        }
        if (r != 0) {
            snprintf(err, errlen, "out of memory");
            break;
        }
        int w = resp_write(c);
        if (w < 0) {
            snprintf(err, errlen, "sending PUBLISH: %s", strerror(-w));
            return w;
        }
        if (sent == n && w == 0 && res->last_send == 0)
            res->last_send = realtime_ns();
        if (rate == 0 || sent == n) {
            struct pollfd pfd = {.fd = c->fd, .events = (short)(POLLIN | (w ? POLLOUT : 0))};
            int p = poll(&pfd, 1, (int)(STALL_NS / 1000000));
            if (p == 0) {
                snprintf(err, errlen,
                         "the server stopped answering PUBLISH (%" PRIu64 " of %" PRIu64
                         " replies)",
                         acked, n);
                return -ETIMEDOUT;
            }
        }
        ssize_t rd;
        while ((rd = resp_read(c)) > 0)
            if ((r = pub_replies(c, k, &acked, res, err, errlen)) < 0)
                return r;
        if (rd < 0) {
            snprintf(err, errlen, "reading PUBLISH replies: %s", strerror((int)-rd));
            return (int)rd;
        }
    }
    res->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    return r;
}

/* ---- one (server, K) ---- */

struct result {
    int measured;
    uint64_t messages;         /* M */
    uint64_t latency_messages; /* publishes of the latency phase */
    double delivered_per_second;
    double p50_us, p99_us, p999_us;
    double backlog_ms;
    uint64_t lost;     /* over the three phases */
    uint64_t expected; /* deliveries expected over the three phases */
    uint64_t short_replies;
    double server_cpu, sub_cpu, pub_cpu; /* throughput phase, share of one core */
    /* tickd only: the median over the rounds of tickd's p99 over the floor's
     * p99 of the same round (0: not measured). */
    double p99_over_floor;
};

/* Runs one phase: n messages, paced at rate (0: pipelined), hist or NULL.
 * Fills the parts of res it measures. 0, or -errno with a message. */
static int run_phase(struct server *srv, struct sub *subs, unsigned k, resp_conn_t *pub, uint64_t n,
                     uint64_t rate, struct histogram *hist, struct result *res, int report,
                     char *err, size_t errlen)
{
    struct phase ph;
    struct pub_result pr;
    pthread_t tid;

    memset(&ph, 0, sizeof ph);
    ph.subs = subs;
    ph.nsubs = k;
    ph.expect = n;
    ph.hist = hist;
    int64_t srv0 = process_cpu_ns(srv->pid), mono0 = monotonic_ns();
    int r = pthread_create(&tid, NULL, sub_thread, &ph);
    if (r != 0) {
        snprintf(err, errlen, "pthread_create: %s", strerror(r));
        return -r;
    }
    r = publish(pub, k, n, rate, &pr, err, errlen);
    atomic_store(&ph.publisher_done, 1);
    if (r != 0)
        atomic_store(&ph.abort, 1);
    pthread_join(tid, NULL);
    int64_t wall = monotonic_ns() - mono0, srv_cpu = process_cpu_ns(srv->pid) - srv0;
    if (r != 0)
        return r;
    if (ph.err != 0) {
        snprintf(err, errlen, "%s", ph.errmsg);
        return ph.err;
    }

    res->expected += n * k;
    res->lost += n * k - ph.delivered;
    res->short_replies += pr.short_replies;
    if (!report)
        return 0;
    if (hist == NULL) {
        double span = (double)(ph.last_delivery - pr.first_send) / 1e9;
        res->delivered_per_second = span > 0 ? (double)ph.delivered / span : 0;
        res->server_cpu = (double)srv_cpu / (double)wall;
        res->sub_cpu = (double)ph.cpu_ns / (double)wall;
        res->pub_cpu = (double)pr.cpu_ns / (double)wall;
    } else {
        res->p50_us = (double)hist_quantile(hist, 50, 100) / 1e3;
        res->p99_us = (double)hist_quantile(hist, 99, 100) / 1e3;
        res->p999_us = (double)hist_quantile(hist, 999, 1000) / 1e3;
        res->backlog_ms = (double)(ph.last_delivery - pr.last_send) / 1e6;
    }
    return 0;
}

/* Connects k subscribers and SUBSCRIBEs them to CHANNEL. */
static int subscribe_all(struct sub *subs, unsigned k, int port, char *err, size_t errlen)
{
    static const char *const argv[] = {"SUBSCRIBE", CHANNEL};
    static const size_t lens[] = {sizeof "SUBSCRIBE" - 1, sizeof CHANNEL - 1};
    int r;

    for (unsigned i = 0; i < k; i++) {
        if ((r = resp_connect(&subs[i].conn, HOST, port, SUB_BUFFER)) != 0 ||
            (r = resp_append(&subs[i].conn, 2, argv, lens)) != 0 ||
            (r = resp_write(&subs[i].conn)) < 0) {
            snprintf(err, errlen, "subscriber %u: cannot connect or subscribe: %s", i,
                     strerror(-r));
            return r;
        }
    }
    for (unsigned i = 0; i < k; i++) {
        resp_reply_t rep;
        r = resp_wait_reply(&subs[i].conn, &rep, READY_MS);
        if (r != 0 || rep.top.type != '*' || rep.top.number != 3 ||
            !resp_value_is(&rep.elem[0], "subscribe") || rep.elem[2].type != ':') {
            snprintf(err, errlen, "subscriber %u: SUBSCRIBE %s failed%s%s", i, CHANNEL,
                     r != 0 ? ": " : "", r != 0 ? strerror(-r) : "");
            return r != 0 ? r : -EPROTO;
        }
    }
    return 0;
}

static int run_k(struct server *srv, unsigned k, const struct options *opt, struct result *res,
                 char *err, size_t errlen)
{
    struct sub *subs = calloc(k, sizeof *subs);
    struct histogram *hist = calloc(1, sizeof *hist);
    resp_conn_t pub = {.fd = -1};
    int r;

    memset(res, 0, sizeof *res);
    for (unsigned i = 0; subs != NULL && i < k; i++)
        subs[i].conn.fd = -1;
    if (subs == NULL || hist == NULL) {
        free(subs);
        free(hist);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    uint64_t lat_n = (uint64_t)((double)opt->rate * opt->seconds + 0.5);
    uint64_t warm = opt->messages < WARMUP_MESSAGES ? opt->messages : WARMUP_MESSAGES;
    r = subscribe_all(subs, k, srv->port, err, errlen);
    if (r == 0 && (r = resp_connect(&pub, HOST, srv->port, 65536)) != 0)
        snprintf(err, errlen, "publisher: cannot connect: %s", strerror(-r));
    if (r == 0)
        r = run_phase(srv, subs, k, &pub, warm, 0, NULL, res, 0, err, errlen);
    if (r == 0)
        r = run_phase(srv, subs, k, &pub, opt->messages, 0, NULL, res, 1, err, errlen);
    if (r == 0 && lat_n > 0)
        r = run_phase(srv, subs, k, &pub, lat_n, opt->rate, hist, res, 1, err, errlen);
    if (r == 0) {
        res->measured = 1;
        res->messages = opt->messages;
        res->latency_messages = lat_n;
    }
    resp_close(&pub);
    for (unsigned i = 0; i < k; i++)
        resp_close(&subs[i].conn);
    free(subs);
    free(hist);
    return r;
}

/* Runs every K against one server. 0, or 1 when something failed. */
static int run_server(enum server_kind kind, const struct options *opt,
                      struct result res[MAX_K_VALUES])
{
    struct server srv;
    char err[256];
    int failed = 0;

    if (server_start(&srv, kind, opt->path[kind], opt->payload, err, sizeof err) != 0) {
        fprintf(stderr, "tickd-bench-fanout: %s\n", err);
        return 1;
    }
    for (unsigned i = 0; i < opt->nk && !failed; i++) {
        if (isatty(STDERR_FILENO))
            fprintf(stderr, "tickd-bench-fanout: %s, %u subscriber%s...\n", server_names[kind],
                    opt->k[i], opt->k[i] == 1 ? "" : "s");
        if (run_k(&srv, opt->k[i], opt, &res[i], err, sizeof err) != 0) {
            fprintf(stderr, "tickd-bench-fanout: %s, K = %u: %s\n", server_names[kind], opt->k[i],
                    err);
            failed = 1;
        }
        if (!server_alive(&srv))
            failed = 1;
    }
    int status = server_stop(&srv);
    if (status != 0 && kind == SERVER_TICKD && !failed)
        fprintf(stderr, "tickd-bench-fanout: note: tickd %s on SIGTERM\n",
                status < 0 ? "had to be killed" : "exited with a non-zero status");
    return failed;
}

/* One (server, K) over the rounds: the median of each figure, the CPU
 * shares of the round whose throughput is nearest that median, losses
 * summed over every round. Unmeasured unless every round measured it. */
static void combine_rounds(const struct result *round, unsigned n, struct result *out)
{
    double rate[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS], p999[MAX_ROUNDS],
        backlog[MAX_ROUNDS];

    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < n; i++) {
        if (!round[i].measured)
            return;
        rate[i] = round[i].delivered_per_second;
        p50[i] = round[i].p50_us;
        p99[i] = round[i].p99_us;
        p999[i] = round[i].p999_us;
        backlog[i] = round[i].backlog_ms;
        out->lost += round[i].lost;
        out->expected += round[i].expected;
        out->short_replies += round[i].short_replies;
    }
    out->measured = 1;
    out->messages = round[0].messages;
    out->latency_messages = round[0].latency_messages;
    out->delivered_per_second = bench_median(rate, n);
    out->p50_us = bench_median(p50, n);
    out->p99_us = bench_median(p99, n);
    out->p999_us = bench_median(p999, n);
    out->backlog_ms = bench_median(backlog, n);
    unsigned mid = 0;
    for (unsigned i = 1; i < n; i++)
        if (fabs(round[i].delivered_per_second - out->delivered_per_second) <
            fabs(round[mid].delivered_per_second - out->delivered_per_second))
            mid = i;
    out->server_cpu = round[mid].server_cpu;
    out->sub_cpu = round[mid].sub_cpu;
    out->pub_cpu = round[mid].pub_cpu;
}

/* tickd's p99 over the floor's, round by round, and the median of those
 * ratios: each round's pair ran a few seconds apart, so a slow spell of the
 * machine lands on both sides of one ratio. 0 unless both were measured in
 * every round. */
static double p99_over_floor(const struct result *tickd, const struct result *floor, unsigned n)
{
    double ratio[MAX_ROUNDS];

    for (unsigned i = 0; i < n; i++) {
        if (!tickd[i].measured || !floor[i].measured || tickd[i].latency_messages == 0 ||
            floor[i].p99_us <= 0)
            return 0;
        ratio[i] = tickd[i].p99_us / floor[i].p99_us;
    }
    return bench_median(ratio, n);
}

/* A latency for JSON: microseconds, or null when the phase was skipped. */
static void json_latency(const char *key, const struct result *r, double us)
{
    if (r->latency_messages > 0)
        printf(",\"%s\":%.2f", key, us);
    else
        printf(",\"%s\":null", key);
}

static void print_json(const struct options *opt, struct result res[NSERVERS][MAX_K_VALUES])
{
    double load[1];
    if (getloadavg(load, 1) != 1)
        load[0] = -1;
    for (int s = 0; s < NSERVERS; s++) {
        for (unsigned i = 0; i < opt->nk; i++) {
            const struct result *r = &res[s][i];
            if (!r->measured)
                continue;
            printf("{\"server\":\"%s\",\"payload\":\"%s\",\"subscribers\":%u,"
                   "\"messages\":%" PRIu64 ",\"delivered_per_second\":%.0f",
                   server_names[s], s == SERVER_TICKD ? opt->payload : "csv", opt->k[i],
                   r->messages, r->delivered_per_second);
            json_latency("p50_us", r, r->p50_us);
            json_latency("p99_us", r, r->p99_us);
            json_latency("p999_us", r, r->p999_us);
            printf(",\"offered_rate\":%" PRIu64 ",\"latency_messages\":%" PRIu64
                   ",\"lost\":%" PRIu64 ",\"rounds\":%u",
                   opt->rate, r->latency_messages, r->lost, opt->rounds);
            json_latency("latency_backlog_ms", r, r->backlog_ms);
            if (s == SERVER_TICKD && r->p99_over_floor > 0)
                printf(",\"p99_over_floor\":%.3f", r->p99_over_floor);
            printf(",\"server_cpu\":%.3f,\"subscriber_cpu\":%.3f,\"publisher_cpu\":%.3f,"
                   "\"load_average\":%.2f}\n",
                   r->server_cpu, r->sub_cpu, r->pub_cpu, load[0]);
        }
    }
}

static void print_ratio(double num, double den, int width)
{
    if (num > 0 && den > 0)
        printf(" %*.2f", width, num / den);
    else
        printf(" %*s", width, "-");
}

static void print_value(const struct result *r, double v, int width, int decimals)
{
    if (r->measured && !isnan(v))
        printf(" %*.*f", width, decimals, v);
    else
        printf(" %*s", width, "-");
}

/* A latency for the table: NAN (printed "-") when the phase was skipped. */
static double latency(const struct result *r, double us)
{
    return r->latency_messages > 0 ? us : NAN;
}

static void print_table(const struct options *opt, struct result res[NSERVERS][MAX_K_VALUES],
                        char version[NSERVERS][64])
{
    char cpu[256];
    struct utsname u;
    const struct result *t, *d, *f;

    bench_cpu_model(cpu, sizeof cpu);
    if (uname(&u) < 0)
        memset(&u, 0, sizeof u);
    printf("tickd-bench-fanout: %s (%ld CPUs), %s %s %s\n", cpu, sysconf(_SC_NPROCESSORS_ONLN),
           u.sysname, u.release, u.machine);
    printf("servers: %s (payload %s), %s (the CSV line as published) and the floor (this "
           "benchmark's own: one thread that only frames each payload and writes it, no "
           "channels), on %s, one at a time\n",
           version[SERVER_TICKD], opt->payload, version[SERVER_REDIS], HOST);
    printf("rounds: %u, the servers in turn; each figure is the median over the rounds\n",
           opt->rounds);
    printf("note: the client (a publisher thread and a subscriber thread) shares these %ld CPUs "
           "with the server\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("throughput: %" PRIu64 " PUBLISH %s pipelined (%u outstanding), all K subscribers on "
           "it\n",
           opt->messages, CHANNEL, WINDOW);
    printf("latency: %" PRIu64 " PUBLISH/s offered for %.2f s, read time - send time "
           "(CLOCK_REALTIME), nearest rank over all messages\n",
           opt->rate, opt->seconds);
    double load[3];
    if (getloadavg(load, 3) == 3)
        printf("load average at the end: %.2f %.2f %.2f (anything else running skews the "
               "figures)\n",
               load[0], load[1], load[2]);
#ifndef __OPTIMIZE__
    printf("warning: built without optimisation, the client's times mean little\n");
#endif

    printf("\ndelivered messages per second\n");
    printf("%6s %14s %14s %14s %12s %12s\n", "K", "tickd", "redis", "floor", "tickd/redis",
           "tickd/floor");
    for (unsigned i = 0; i < opt->nk; i++) {
        t = &res[SERVER_TICKD][i];
        d = &res[SERVER_REDIS][i];
        f = &res[SERVER_FLOOR][i];
        printf("%6u", opt->k[i]);
        print_value(t, t->delivered_per_second, 14, 0);
        print_value(d, d->delivered_per_second, 14, 0);
        print_value(f, f->delivered_per_second, 14, 0);
        print_ratio(t->delivered_per_second, d->delivered_per_second, 12);
        print_ratio(t->delivered_per_second, f->delivered_per_second, 12);
        printf("\n");
    }

    printf("\nlatency at %" PRIu64 "/s offered, microseconds (* the last message came more than "
           "100 ms after the last publish: the server fell behind)\n",
           opt->rate);
    printf("%6s %9s %8s %8s %1s %9s %8s %8s %1s %9s %8s %8s %1s %9s %9s %11s\n", "K", "tickd p50",
           "p99", "p99.9", "", "redis p50", "p99", "p99.9", "", "floor p50", "p99", "p99.9", "",
           "p99 ratio", "floor's", "tickd/floor");
    for (unsigned i = 0; i < opt->nk; i++) {
        printf("%6u", opt->k[i]);
        for (int k = 0; k < NSERVERS; k++) {
            const struct result *r = &res[k][i];
            print_value(r, latency(r, r->p50_us), 9, 1);
            print_value(r, latency(r, r->p99_us), 8, 1);
            print_value(r, latency(r, r->p999_us), 8, 1);
            printf(" %1s", r->measured && r->backlog_ms > 100 ? "*" : "");
        }
        t = &res[SERVER_TICKD][i];
        d = &res[SERVER_REDIS][i];
        f = &res[SERVER_FLOOR][i];
        print_ratio(t->p99_us, d->p99_us, 9);
        print_ratio(f->p99_us, d->p99_us, 9);
        print_ratio(t->p99_over_floor, 1, 11);
        printf("\n");
    }
    printf("(p99 ratio: tickd's p99 over redis's; floor's: the floor's p99 over redis's, what a "
           "server doing next to nothing gets on this machine; tickd/floor: the median over the "
           "rounds of tickd's p99 over the floor's in the same round)\n");

    printf("\nCPU in the throughput phase, share of one core: server, client's subscriber "
           "thread, client's publisher thread\n");
    printf("%6s %8s %6s %6s %8s %6s %6s %8s %6s %6s\n", "K", "tickd", "sub", "pub", "redis", "sub",
           "pub", "floor", "sub", "pub");
    for (unsigned i = 0; i < opt->nk; i++) {
        printf("%6u", opt->k[i]);
        for (int k = 0; k < NSERVERS; k++) {
            const struct result *r = &res[k][i];
            print_value(r, r->server_cpu, 8, 2);
            print_value(r, r->sub_cpu, 6, 2);
            print_value(r, r->pub_cpu, 6, 2);
        }
        printf("\n");
    }

    for (int s = 0; s < NSERVERS; s++) {
        for (unsigned i = 0; i < opt->nk; i++) {
            const struct result *r = &res[s][i];
            if (r->measured && (r->sub_cpu > CLIENT_BUSY || r->pub_cpu > CLIENT_BUSY))
                printf("note: %s K=%u: the client's %s thread was busy %.0f%% of the time: the "
                       "client, not the server, may set that figure\n",
                       server_names[s], opt->k[i],
                       r->sub_cpu > r->pub_cpu ? "subscriber" : "publisher",
                       100 * (r->sub_cpu > r->pub_cpu ? r->sub_cpu : r->pub_cpu));
        }
    }

    printf("\nlost messages:");
    int any = 0;
    for (int s = 0; s < NSERVERS; s++) {
        for (unsigned i = 0; i < opt->nk; i++) {
            const struct result *r = &res[s][i];
            if (r->measured && (r->lost > 0 || r->short_replies > 0)) {
                printf("%s %s K=%u: %" PRIu64 " of %" PRIu64 " deliveries, %" PRIu64
                       " PUBLISH replies under K",
                       any ? ";" : "", server_names[s], opt->k[i], r->lost, r->expected,
                       r->short_replies);
                any = 1;
            }
        }
    }
    printf("%s\n", any ? "" : " none (every subscriber got every message)");

    printf("\ntargets (issue; informational, not asserted):\n");
    printf("  K=%d: tickd delivered msgs/s >= %.0f x redis: ", TARGET_K, TARGET_RATIO);
    int found = 0;
    for (unsigned i = 0; i < opt->nk; i++) {
        t = &res[SERVER_TICKD][i];
        d = &res[SERVER_REDIS][i];
        if (opt->k[i] != TARGET_K)
            continue;
        found = 1;
        if (t->measured && d->measured && d->delivered_per_second > 0) {
            double ratio = t->delivered_per_second / d->delivered_per_second;
            printf("%s (%.2f x)\n", ratio >= TARGET_RATIO ? "met" : "MISSED", ratio);
        } else {
            printf("not measured\n");
        }
    }
    if (!found)
        printf("not measured (no K=%d)\n", TARGET_K);
    printf("  K=%d: tickd p99 <= %.1f x the floor's at %" PRIu64
           "/s offered (median over the rounds of the ratio): ",
           TARGET_K, TARGET_P99_FLOOR, opt->rate);
    found = 0;
    for (unsigned i = 0; i < opt->nk; i++) {
        if (opt->k[i] != TARGET_K)
            continue;
        found = 1;
        double ratio = res[SERVER_TICKD][i].p99_over_floor;
        if (ratio > 0)
            printf("%s (%.2f x)\n", ratio <= TARGET_P99_FLOOR ? "met" : "MISSED", ratio);
        else
            printf("not measured (run tickd and the floor)\n");
    }
    if (!found)
        printf("not measured (no K=%d)\n", TARGET_K);
}

/* ---- command line ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tickd-bench-fanout [--subscribers K,K,...] [--messages M] [--rate R]\n"
            "                          [--seconds S] [--rounds N] [--server LIST]\n"
            "                          [--tickd PATH] [--redis-server PATH] [--payload json|csv]\n"
            "                          [--quick] [--json]\n"
            "  --subscribers LIST  subscriber counts to run (default 1,10,100)\n"
            "  --messages M        PUBLISH of the throughput phase (default 1000000)\n"
            "  --rate R            PUBLISH per second offered in the latency phase "
            "(default 100000)\n"
            "  --seconds S         length of the latency phase (default 2; 0 skips it)\n"
            "  --rounds N          runs of every K per server, the servers in turn; each\n"
            "                      figure is the median over the rounds (default 3)\n"
            "  --server LIST       the servers to run, of tickd, redis and floor (default\n"
            "                      tickd,redis,floor)\n"
            "  --tickd PATH        the tickd binary (default %s)\n"
            "  --redis-server PATH the redis-server binary (default redis-server on PATH)\n"
            "  --payload json|csv  tickd's pubsub.payload (default csv, as Redis's messages)\n"
            "  --quick             M 100000, S 0.2 and N 1 unless given\n"
            "  --json              one JSON object per (server, K) on its own line\n",
            TICKD_BENCH_TICKD_PATH);
}

static int parse_k_list(const char *s, struct options *opt)
{
    char *end;
    opt->nk = 0;
    for (;;) {
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v < 1 || v > MAX_SUBSCRIBERS || opt->nk == MAX_K_VALUES)
            return -1;
        opt->k[opt->nk++] = (unsigned)v;
        if (*end == '\0')
            return 0;
        if (*end != ',')
            return -1;
        s = end + 1;
    }
}

/* "tickd,redis,floor" or any of them, each at most once. */
static int parse_server_list(const char *s, struct options *opt)
{
    int want[NSERVERS] = {0};
    for (;;) {
        size_t n = strcspn(s, ",");
        int k = 0;
        while (k < NSERVERS &&
               !(strlen(server_names[k]) == n && memcmp(s, server_names[k], n) == 0))
            k++;
        if (k == NSERVERS || want[k])
            return -1;
        want[k] = 1;
        if (s[n] == '\0')
            break;
        s += n + 1;
    }
    memcpy(opt->servers, want, sizeof want);
    return 0;
}

/* Lifts the soft limit on open files to what K subscribers need. */
static int raise_nofile(unsigned maxk)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)maxk + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        return -EMFILE;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 2 * need ? 2 * need : rl.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"subscribers", required_argument, NULL, 'k'},
        {"messages", required_argument, NULL, 'm'},
        {"rate", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'},
        {"rounds", required_argument, NULL, 'n'},
        {"server", required_argument, NULL, 'S'},
        {"tickd", required_argument, NULL, 't'},
        {"redis-server", required_argument, NULL, 'R'},
        {"payload", required_argument, NULL, 'p'},
        {"quick", no_argument, NULL, 'q'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct options opt = {
        .k = {1, 10, 100},
        .nk = 3,
        .messages = 1000000,
        .rate = 100000,
        .seconds = 2,
        .rounds = 3,
        .servers = {1, 1, 1},
        .path = {TICKD_BENCH_TICKD_PATH, "redis-server", NULL},
        .payload = "csv",
    };
    int messages_set = 0, seconds_set = 0, rounds_set = 0, c;
    char *end;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (parse_k_list(optarg, &opt) != 0) {
                fprintf(stderr, "tickd-bench-fanout: --subscribers wants a list like 1,10,100 "
                                "(1 to 9000 each, at most 16)\n");
                return 2;
            }
            break;
        case 'm':
            opt.messages = strtoull(optarg, &end, 10);
            if (*end != '\0' || opt.messages < 1 || opt.messages > 1000000000) {
                fprintf(stderr, "tickd-bench-fanout: --messages wants 1 to 1000000000\n");
                return 2;
            }
            messages_set = 1;
            break;
        case 'r':
            opt.rate = strtoull(optarg, &end, 10);
            if (*end != '\0' || opt.rate < 1 || opt.rate > 100000000) {
                fprintf(stderr, "tickd-bench-fanout: --rate wants 1 to 100000000 per second\n");
                return 2;
            }
            break;
        case 's':
            opt.seconds = strtod(optarg, &end);
            if (*end != '\0' || !(opt.seconds >= 0 && opt.seconds <= 3600)) {
                fprintf(stderr, "tickd-bench-fanout: --seconds wants 0 to 3600\n");
                return 2;
            }
            seconds_set = 1;
            break;
        case 'n':
            opt.rounds = (unsigned)strtoul(optarg, &end, 10);
            if (*end != '\0' || opt.rounds < 1 || opt.rounds > MAX_ROUNDS) {
                fprintf(stderr, "tickd-bench-fanout: --rounds wants 1 to %d\n", MAX_ROUNDS);
                return 2;
            }
            rounds_set = 1;
            break;
        case 'S':
            if (parse_server_list(optarg, &opt) != 0) {
                fprintf(stderr, "tickd-bench-fanout: --server wants a list of tickd, redis and "
                                "floor, like tickd,redis\n");
                return 2;
            }
            break;
        case 't':
            opt.path[SERVER_TICKD] = optarg;
            break;
        case 'R':
            opt.path[SERVER_REDIS] = optarg;
            break;
        case 'p':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "csv") != 0) {
                fprintf(stderr, "tickd-bench-fanout: --payload wants json or csv\n");
                return 2;
            }
            opt.payload = optarg;
            break;
        case 'q':
            opt.quick = 1;
            break;
        case 'j':
            opt.json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (opt.quick && !messages_set)
        opt.messages = 100000;
    if (opt.quick && !seconds_set)
        opt.seconds = 0.2;
    if (opt.quick && !rounds_set)
        opt.rounds = 1;
    if (opt.servers[SERVER_TICKD] && access(opt.path[SERVER_TICKD], X_OK) != 0) {
        fprintf(stderr,
                "tickd-bench-fanout: cannot run %s (%s); build tickd or give --tickd PATH\n",
                opt.path[SERVER_TICKD], strerror(errno));
        return 1;
    }

    unsigned maxk = 0;
    for (unsigned i = 0; i < opt.nk; i++)
        maxk = opt.k[i] > maxk ? opt.k[i] : maxk;
    int r = raise_nofile(maxk);
    if (r != 0) {
        fprintf(stderr, "tickd-bench-fanout: cannot open %u connections (%s); raise ulimit -n\n",
                maxk + 1, strerror(-r));
        return 1;
    }
    install_signals();
    prctl(PR_SET_TIMERSLACK, 1UL); /* the latency phase's 100 us schedule */

    static struct result res[NSERVERS][MAX_K_VALUES], round[NSERVERS][MAX_K_VALUES][MAX_ROUNDS];
    static struct result one[MAX_K_VALUES];
    char version[NSERVERS][64];
    int failed = 0;
    for (int s = 0; s < NSERVERS; s++)
        server_version((enum server_kind)s, opt.path[s], version[s], sizeof version[s]);
    /* The servers take turns, round after round, so that a spell of a slow
     * machine lands on both rather than on whichever was running; every
     * other round in the reverse order, so that none always follows the
     * same one. */
    int server_failed[NSERVERS] = {0};
    for (unsigned n = 0; n < opt.rounds; n++)
        for (int j = 0; j < NSERVERS; j++) {
            int s = n % 2 ? NSERVERS - 1 - j : j;
            if (!opt.servers[s] || server_failed[s])
                continue;
            if (opt.rounds > 1 && isatty(STDERR_FILENO))
                fprintf(stderr, "tickd-bench-fanout: round %u of %u\n", n + 1, opt.rounds);
            memset(one, 0, sizeof one);
            server_failed[s] = run_server((enum server_kind)s, &opt, one);
            failed |= server_failed[s];
            for (unsigned i = 0; i < opt.nk; i++)
                round[s][i][n] = one[i];
        }
    for (int s = 0; s < NSERVERS; s++)
        for (unsigned i = 0; i < opt.nk; i++)
            combine_rounds(round[s][i], opt.rounds, &res[s][i]);
    for (unsigned i = 0; i < opt.nk; i++)
        res[SERVER_TICKD][i].p99_over_floor =
            p99_over_floor(round[SERVER_TICKD][i], round[SERVER_FLOOR][i], opt.rounds);
    for (int s = 0; s < NSERVERS; s++)
        for (unsigned i = 0; i < opt.nk; i++)
            if (res[s][i].measured && (res[s][i].lost > 0 || res[s][i].short_replies > 0)) {
                fprintf(stderr,
                        "tickd-bench-fanout: %s, K = %u: %" PRIu64 " of %" PRIu64
                        " deliveries lost, %" PRIu64 " PUBLISH replies counted fewer than K\n",
                        server_names[s], opt.k[i], res[s][i].lost, res[s][i].expected,
                        res[s][i].short_replies);
                failed = 1;
            }
    if (opt.json)
        print_json(&opt, res);
    else
        print_table(&opt, res, version);
    return failed ? 1 : 0;
}

/*
 * bench_slowloris.c - tickd-bench-slowloris: how fast /metrics answers while
 * slowloris clients hold connections to tickd's HTTP server.
 *
 *   tickd-bench-slowloris [--slow N] [--requests R] [--interval MS] [--once]
 *                         [--max-connections M] [--header-timeout D] [--tickd PATH]
 *
 * The benchmark starts tickd itself (--tickd, default the build's binary) on
 * free ports of 127.0.0.1 with no feeds, from a temporary directory holding
 * its config and log, waits until /healthz answers 200, and stops it at the
 * end (SIGTERM; SIGKILL should the benchmark die). The HTTP server runs with
 * its defaults (max_connections 64, header_timeout 5s) unless
 * --max-connections or --header-timeout (a YAML duration: 5s, 500ms) say
 * otherwise.
 *
 * The attack. N slow clients (--slow, default 200) each connect and send
 * "GET /metrics HTTP/1.1\r\nX-a:", then one more byte a second, never ending
 * the head. A slow connection the server closes is opened again at once
 * (the attacker keeps N open, so the attack lasts the whole measurement);
 * --once opens each only once, the plain case. All of them run
 * in the benchmark's one thread, between the requests, with non-blocking
 * connects: the attacker never stalls the measurement.
 *
 * The measurement. Once the N are connected and have sent their first bytes,
 * R requests (--requests, default 50), one every MS ms (--interval, default
 * 100), each on a new connection: "GET /metrics HTTP/1.1" with
 * Connection: close, timed from the connect to the last byte of the response
 * (a response not complete within 5 s is a failure). Printed: the status of
 * every request (count of 200s, of others, of failures), p50, p99 (nearest
 * rank) and max of the times, and how many slow connections the server
 * closed and with what (nothing, or an answer such as a 503). The
 * target (with 200 slow clients, /metrics within 1 s) is printed as met or
 * MISSED, never asserted.
 *
 * Exit status: 0 when every request got a 200, 1 when one did not or tickd
 * failed, 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench/bench_host.h"

#ifndef TICKD_BENCH_TICKD_PATH
#error "TICKD_BENCH_TICKD_PATH must name the tickd binary (set by tests/bench/CMakeLists.txt)"
#endif

#define READY_MS     10000 /* tickd must answer /healthz within this */
#define STOP_MS      5000  /* SIGTERM, then SIGKILL after this */
#define REQUEST_MS   5000  /* a request not answered within this failed */
#define TRICKLE_MS   1000  /* a slow client sends a byte this often */
#define TARGET_SLOW  200
#define TARGET_MS    1000.0
#define MAX_SLOW     20000
#define MAX_REQUESTS 100000

static const char slow_head[] = "GET /metrics HTTP/1.1\r\nX-a:";
static const char metrics_request[] = "GET /metrics HTTP/1.1\r\nHost: bench\r\n"
                                      "Connection: close\r\n\r\n";

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_ms_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- tickd ---- */

static pid_t tickd_pid;
static char work_dir[64], config_path[96], log_path[96];

static void cleanup(void)
{
    if (tickd_pid > 0) {
        kill(tickd_pid, SIGKILL);
        waitpid(tickd_pid, NULL, 0);
        tickd_pid = 0;
    }
    if (work_dir[0] != '\0') {
        unlink(config_path);
        unlink(log_path);
        rmdir(work_dir);
        work_dir[0] = '\0';
    }
}

static void on_signal(int sig)
{
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A port that was free a moment ago (bound to 0, then let go). */
static void show_log(void)
{
    char line[512];
    FILE *f = fopen(log_path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "tickd-bench-slowloris: tickd's log (%s):\n", log_path);
    while (fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "  %s", line);
    fclose(f);
}

/* A non-blocking TCP socket connecting to 127.0.0.1:port; -1 on failure. */
static int connect_nb(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * One request on a new connection: the HTTP status of the answer (0 when
 * there was none within REQUEST_MS or it did not parse) and, in *ms, the
 * time from the connect to the end of the response (the server closes: the
 * request asked it to).
 */
static int http_request(int port, const char *req, double *ms)
{
    double t0 = now_ms_f();
    int fd = connect_nb(port);
    if (fd < 0)
        return 0;
    char head[64], sink[16384];
    size_t got = 0, sent = 0, len = strlen(req);
    int status = 0, done = 0;
    while (!done) {
        double left = REQUEST_MS - (now_ms_f() - t0);
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = sent < len ? POLLOUT : POLLIN};
        if (poll(&p, 1, (int)left + 1) <= 0)
            continue;
        if (sent < len) {
            ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINPROGRESS)
                break;
            if (n > 0)
                sent += (size_t)n;
            continue;
        }
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n > 0) { /* keep the first bytes: the status line */
            if (got < sizeof(head))
                memcpy(head + got, sink,
                       (size_t)n < sizeof(head) - got ? (size_t)n : sizeof(head) - got);
            got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EAGAIN)
            continue;
        done = n == 0; /* the end of the response */
    }
    *ms = now_ms_f() - t0;
    close(fd);
    if (done && got >= 12 && memcmp(head, "HTTP/1.1 ", 9) == 0)
        status = atoi(head + 9);
    return status;
}

static int tickd_start(const char *path, int *http_port, const char *max_conn,
                       const char *head_timeout)
{
    snprintf(work_dir, sizeof(work_dir), "/tmp/tickd-bench-slowloris.XXXXXX");
    if (mkdtemp(work_dir) == NULL) {
        fprintf(stderr, "tickd-bench-slowloris: mkdtemp: %s\n", strerror(errno));
        work_dir[0] = '\0';
        return -1;
    }
    snprintf(config_path, sizeof(config_path), "%s/tickd.yaml", work_dir);
    snprintf(log_path, sizeof(log_path), "%s/tickd.log", work_dir);
    int pubsub_port = bench_free_port();
    *http_port = bench_free_port();
    FILE *f = fopen(config_path, "w");
    if (f == NULL || pubsub_port < 0 || *http_port < 0) {
        fprintf(stderr, "tickd-bench-slowloris: cannot write %s or find free ports\n", config_path);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fprintf(f, "pubsub:\n  listen: 127.0.0.1:%d\nhttp:\n  listen: 127.0.0.1:%d\n", pubsub_port,
            *http_port);
    if (max_conn != NULL)
        fprintf(f, "  max_connections: %s\n", max_conn);
    if (head_timeout != NULL)
        fprintf(f, "  header_timeout: %s\n", head_timeout);
    fclose(f);

    pid_t parent = getpid();
    fflush(NULL);
    tickd_pid = fork();
    if (tickd_pid < 0) {
        fprintf(stderr, "tickd-bench-slowloris: fork: %s\n", strerror(errno));
        tickd_pid = 0;
        return -1;
    }
    if (tickd_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in >= 0)
            dup2(in, STDIN_FILENO);
        if (out >= 0) {
            dup2(out, STDOUT_FILENO);
            dup2(out, STDERR_FILENO);
        }
        execl(path, path, "--config", config_path, (char *)NULL);
        fprintf(stderr, "tickd-bench-slowloris: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    int64_t deadline = now_ms() + READY_MS;
    for (;;) {
        int status;
        if (waitpid(tickd_pid, &status, WNOHANG) == tickd_pid) {
            tickd_pid = 0;
            fprintf(stderr, "tickd-bench-slowloris: tickd exited at start-up (status %d)\n",
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            show_log();
            return -1;
        }
        double ms;
        if (http_request(*http_port,
                         "GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
                         &ms) == 200)
            return 0;
        if (now_ms() > deadline) {
            fprintf(stderr, "tickd-bench-slowloris: /healthz not 200 within %d s\n",
                    READY_MS / 1000);
            show_log();
            return -1;
        }
        usleep(20000);
    }
}

/* SIGTERM and wait; its exit status, or -1 when it had to be killed. */
static int tickd_stop(void)
{
    int status, code = -1;
    if (tickd_pid <= 0)
        return -1;
    kill(tickd_pid, SIGTERM);
    int64_t deadline = now_ms() + STOP_MS;
    pid_t w;
    while ((w = waitpid(tickd_pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
        usleep(10000);
    if (w == tickd_pid) {
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } else {
        kill(tickd_pid, SIGKILL);
        waitpid(tickd_pid, &status, 0);
    }
    tickd_pid = 0;
    return code;
}

/* ---- the slow clients ---- */

enum slow_state { SLOW_CONNECTING, SLOW_SENDING, SLOW_DOWN };

typedef struct slow {
    int fd;
    enum slow_state state;
    int64_t last_byte; /* when it last sent (ms) */
    int answered;      /* the server sent bytes before closing */
    int started;       /* has sent its first bytes at least once */
} slow_t;

typedef struct attack {
    int port;
    int reconnect;
    size_t n;
    slow_t *slow;
    struct pollfd *pfd;
    uint64_t closed_silently, closed_answered, connects, connect_failures;
} attack_t;

static void slow_open(attack_t *a, slow_t *s)
{
    s->fd = connect_nb(a->port);
    s->answered = 0;
    s->state = s->fd >= 0 ? SLOW_CONNECTING : SLOW_DOWN;
    a->connects++;
    if (s->fd < 0)
        a->connect_failures++;
}

static void slow_down(attack_t *a, slow_t *s, int by_server)
{
    if (by_server) {
        if (s->answered)
            a->closed_answered++;
        else
            a->closed_silently++;
    } else {
        a->connect_failures++;
    }
    close(s->fd);
    s->fd = -1;
    s->state = SLOW_DOWN;
    if (a->reconnect)
        slow_open(a, s);
}

/* One pass over the slow clients: connects finished, bytes due, closes seen. */
static void attack_step(attack_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        slow_t *s = &a->slow[i];
        a->pfd[i] = (struct pollfd){.fd = s->state == SLOW_DOWN ? -1 : s->fd,
                                    .events = s->state == SLOW_CONNECTING ? POLLOUT : POLLIN};
    }
    if (poll(a->pfd, a->n, 0) < 0)
        return;
    int64_t now = now_ms();
    for (size_t i = 0; i < a->n; i++) {
        slow_t *s = &a->slow[i];
        short ev = a->pfd[i].revents;
        if (s->state == SLOW_CONNECTING && ev != 0) {
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
            if (soerr != 0 || send(s->fd, slow_head, sizeof(slow_head) - 1, MSG_NOSIGNAL) !=
                                  (ssize_t)(sizeof(slow_head) - 1)) {
                slow_down(a, s, soerr == 0);
                continue;
            }
            s->state = SLOW_SENDING;
            s->started = 1;
            s->last_byte = now;
            continue;
        }
        if (s->state != SLOW_SENDING)
            continue;
        if (ev != 0) {
            char buf[4096];
            ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
            if (n > 0) {
                s->answered = 1;
                continue;
            }
            if (n == 0 || errno != EAGAIN) {
                slow_down(a, s, 1);
                continue;
            }
        }
        if (now - s->last_byte >= TRICKLE_MS) {
            send(s->fd, "a", 1, MSG_NOSIGNAL); /* a failure shows as a close next pass */
            s->last_byte = now;
        }
    }
}

/* Has every slow client sent its first bytes, or given up (--once)? */
static int attack_started(const attack_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (!a->slow[i].started && a->slow[i].state != SLOW_DOWN)
            return 0;
    return 1;
}

static size_t attack_sending(const attack_t *a)
{
    size_t k = 0;
    for (size_t i = 0; i < a->n; i++)
        k += a->slow[i].state == SLOW_SENDING;
    return k;
}

/* ---- the run ---- */

static double nearest_rank(const double *sorted, size_t n, double q)
{
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static void usage(FILE *to)
{
    fprintf(to, "usage: tickd-bench-slowloris [--slow N] [--requests R] [--interval MS] [--once]\n"
                "                             [--max-connections M] [--header-timeout D]\n"
                "                             [--tickd PATH]\n");
}

static int parse_count(const char *arg, const char *name, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "tickd-bench-slowloris: %s: expected %ld to %ld, got \"%s\"\n", name, lo,
                hi, arg);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long nslow = TARGET_SLOW, nreq = 50, interval = 100;
    int once = 0;
    const char *tickd = TICKD_BENCH_TICKD_PATH, *max_conn = NULL, *head_timeout = NULL;
    static const struct option opts[] = {
        {"slow", required_argument, NULL, 's'},
        {"requests", required_argument, NULL, 'r'},
        {"interval", required_argument, NULL, 'i'},
        {"once", no_argument, NULL, 'o'},
        {"max-connections", required_argument, NULL, 'm'},
        {"header-timeout", required_argument, NULL, 't'},
        {"tickd", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (parse_count(optarg, "--slow", 0, MAX_SLOW, &nslow) != 0)
                return 2;
            break;
        case 'r':
            if (parse_count(optarg, "--requests", 1, MAX_REQUESTS, &nreq) != 0)
                return 2;
            break;
        case 'i':
            if (parse_count(optarg, "--interval", 0, 60000, &interval) != 0)
                return 2;
            break;
        case 'o':
            once = 1;
            break;
        case 'm':
            max_conn = optarg;
            break;
        case 't':
            head_timeout = optarg;
            break;
        case 'x':
            tickd = optarg;
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

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)nslow + 64 > rl.rlim_cur) {
        fprintf(stderr,
                "tickd-bench-slowloris: --slow %ld needs more open files than the "
                "limit (%llu; ulimit -n)\n",
                nslow, (unsigned long long)rl.rlim_cur);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    atexit(cleanup);

    attack_t a = {.reconnect = !once, .n = (size_t)nslow};
    a.slow = calloc(a.n + 1, sizeof(*a.slow));
    a.pfd = calloc(a.n + 1, sizeof(*a.pfd));
    double *times = calloc((size_t)nreq, sizeof(*times));
    if (a.slow == NULL || a.pfd == NULL || times == NULL) {
        fprintf(stderr, "tickd-bench-slowloris: out of memory\n");
        return 1;
    }
    if (tickd_start(tickd, &a.port, max_conn, head_timeout) != 0)
        return 1;

    /* The attack first: every slow client connected and past its first bytes
     * (or closed already) before the first request. */
    for (size_t i = 0; i < a.n; i++)
        slow_open(&a, &a.slow[i]);
    int64_t settle = now_ms() + 5000;
    do {
        attack_step(&a);
        usleep(1000);
    } while (now_ms() < settle && !attack_started(&a));

    size_t ok = 0, other = 0, failed = 0;
    size_t held_min = a.n, held_max = 0;
    for (long i = 0; i < nreq; i++) {
        size_t held = attack_sending(&a);
        held_min = held < held_min ? held : held_min;
        held_max = held > held_max ? held : held_max;
        int status = http_request(a.port, metrics_request, &times[i]);
        if (status == 200)
            ok++;
        else if (status != 0)
            other++;
        else
            failed++;
        int64_t until = now_ms() + interval;
        do {
            attack_step(&a);
            usleep(1000);
        } while (now_ms() < until);
    }
    int alive = waitpid(tickd_pid, NULL, WNOHANG) == 0;
    int code = tickd_stop();

    qsort(times, (size_t)nreq, sizeof(*times), bench_cmp_double);
    char cpu[256];
    bench_cpu_model(cpu, sizeof(cpu));
    printf("tickd-bench-slowloris: %s, %ld CPUs\n", cpu, sysconf(_SC_NPROCESSORS_ONLN));
    printf("tickd http: max_connections %s, header_timeout %s\n",
           max_conn != NULL ? max_conn : "64 (default)",
           head_timeout != NULL ? head_timeout : "5s (default)");
    printf("slow clients: %ld, %s; a byte every %d ms\n", nslow,
           a.reconnect ? "each reopened as soon as the server closes it" : "each opened once",
           TRICKLE_MS);
    printf("\n%-10s %8s %6s %6s %6s %9s %9s %9s\n", "", "requests", "200", "other", "failed",
           "p50 ms", "p99 ms", "max ms");
    printf("%-10s %8ld %6zu %6zu %6zu %9.2f %9.2f %9.2f\n", "/metrics", nreq, ok, other, failed,
           nearest_rank(times, (size_t)nreq, 0.50), nearest_rank(times, (size_t)nreq, 0.99),
           times[nreq - 1]);
    printf("\nslow connections open as the client saw them at each request: %zu to %zu of %ld\n",
           held_min, held_max, nslow);
    printf("slow connections closed by tickd: %llu without an answer, %llu after an answer "
           "(e.g. 503); connects %llu (%llu failed)\n",
           (unsigned long long)a.closed_silently, (unsigned long long)a.closed_answered,
           (unsigned long long)a.connects, (unsigned long long)a.connect_failures);
    if (nslow >= TARGET_SLOW)
        printf("target (%d slow clients: every /metrics 200 within %.0f ms): %s\n", TARGET_SLOW,
               TARGET_MS, ok == (size_t)nreq && times[nreq - 1] < TARGET_MS ? "met" : "MISSED");
    if (!alive || code != 0)
        fprintf(stderr, "tickd-bench-slowloris: tickd %s (exit status %d)\n",
                alive ? "did not stop cleanly" : "died during the run", code);
    for (size_t i = 0; i < a.n; i++)
        if (a.slow[i].fd >= 0 && a.slow[i].state != SLOW_DOWN)
            close(a.slow[i].fd);
    free(a.slow);
    free(a.pfd);
    free(times);
    return ok == (size_t)nreq && alive && code == 0 ? 0 : 1;
}

/*
 * test_notify.c - src/notify.c: each notification arrives as one datagram
 * on the socket $NOTIFY_SOCKET names (a path, or an abstract name after
 * '@'), with the assignments systemd expects; nothing is sent without the
 * variable; the watchdog interval comes from $WATCHDOG_USEC, for this
 * process only ($WATCHDOG_PID).
 *
 * The test plays systemd: it binds an AF_UNIX datagram socket and reads
 * what the notify functions send.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "src/notify.h"

/* The systemd end: a bound datagram socket and the name it goes by. */
typedef struct manager {
    int fd;
    char name[108]; /* $NOTIFY_SOCKET */
    char dir[64];   /* the temporary directory of a path socket, or "" */
} manager_t;

static void manager_open(manager_t *m, int abstract)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t len;
    m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(m->fd >= 0);
    if (abstract) {
        m->dir[0] = '\0';
        snprintf(m->name, sizeof(m->name), "@tickd-test-notify-%d", (int)getpid());
        memcpy(sa.sun_path, m->name, strlen(m->name));
        sa.sun_path[0] = '\0';
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(m->name));
    } else {
        strcpy(m->dir, "/tmp/tickd-test-notify.XXXXXX");
        assert_non_null(mkdtemp(m->dir));
        snprintf(m->name, sizeof(m->name), "%s/notify", m->dir);
        strcpy(sa.sun_path, m->name);
        len = sizeof(sa);
    }
    assert_int_equal(bind(m->fd, (struct sockaddr *)&sa, len), 0);
    setenv("NOTIFY_SOCKET", m->name, 1);
}

static void manager_close(manager_t *m)
{
    close(m->fd);
    if (m->dir[0] != '\0') {
        unlink(m->name);
        rmdir(m->dir);
    }
    unsetenv("NOTIFY_SOCKET");
}

/* The next datagram, NUL terminated; fails after a second without one. */
static void manager_recv(manager_t *m, char *buf, size_t len)
{
    struct pollfd p = {.fd = m->fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 1000), 1);
    ssize_t n = recv(m->fd, buf, len - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
}

static int manager_has_datagram(manager_t *m)
{
    struct pollfd p = {.fd = m->fd, .events = POLLIN};
    return poll(&p, 1, 50) == 1;
}

static void ready_sends_READY_1(void **state)
{
    (void)state;
    manager_t m;
    char got[256];
    manager_open(&m, 0);
    assert_true(notify_enabled());
    assert_int_equal(notify_ready(), 0);
    manager_recv(&m, got, sizeof(got));
    assert_string_equal(got, "READY=1");
    manager_close(&m);
}

static void stopping_sends_STOPPING_1(void **state)
{
    (void)state;
    manager_t m;
    char got[256];
    manager_open(&m, 0);
    assert_int_equal(notify_stopping(), 0);
    manager_recv(&m, got, sizeof(got));
    assert_string_equal(got, "STOPPING=1");
    manager_close(&m);
}

static void watchdog_sends_WATCHDOG_1(void **state)
{
    (void)state;
    manager_t m;
    char got[256];
    manager_open(&m, 0);
    assert_int_equal(notify_watchdog(), 0);
    manager_recv(&m, got, sizeof(got));
    assert_string_equal(got, "WATCHDOG=1");
    manager_close(&m);
}

static void status_sends_STATUS_with_line_feeds_flattened(void **state)
{
    (void)state;
    manager_t m;
    char got[2048];
    manager_open(&m, 0);
    assert_int_equal(notify_status("%d ticks/s, %s", 1250, "3 subscribers\nand more"), 0);
    manager_recv(&m, got, sizeof(got));
    assert_string_equal(got, "STATUS=1250 ticks/s, 3 subscribers and more");
    manager_close(&m);
}

static uint64_t monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void reloading_sends_RELOADING_1_with_MONOTONIC_USEC_of_now(void **state)
{
    (void)state;
    manager_t m;
    char got[256];
    manager_open(&m, 0);
    uint64_t before = monotonic_usec();
    assert_int_equal(notify_reloading(), 0);
    uint64_t after = monotonic_usec();
    manager_recv(&m, got, sizeof(got));
    uint64_t usec;
    char tail;
    assert_int_equal(sscanf(got, "RELOADING=1\nMONOTONIC_USEC=%" SCNu64 "%c", &usec, &tail), 1);
    assert_true(usec >= before && usec <= after);
    manager_close(&m);
}

static void abstract_socket_name_after_at_sign_is_reached(void **state)
{
    (void)state;
    manager_t m;
    char got[256];
    manager_open(&m, 1);
    assert_int_equal(notify_ready(), 0);
    manager_recv(&m, got, sizeof(got));
    assert_string_equal(got, "READY=1");
    manager_close(&m);
}

static void without_NOTIFY_SOCKET_nothing_is_sent_and_calls_succeed(void **state)
{
    (void)state;
    manager_t m;
    manager_open(&m, 0);
    unsetenv("NOTIFY_SOCKET");
    assert_false(notify_enabled());
    assert_int_equal(notify_ready(), 0);
    assert_int_equal(notify_status("x"), 0);
    assert_int_equal(notify_reloading(), 0);
    assert_int_equal(notify_stopping(), 0);
    assert_int_equal(notify_watchdog(), 0);
    assert_false(manager_has_datagram(&m));
    setenv("NOTIFY_SOCKET", "", 1);
    assert_false(notify_enabled());
    assert_int_equal(notify_ready(), 0);
    assert_false(manager_has_datagram(&m));
    manager_close(&m);
}

static void unusable_addresses_are_reported_as_errors(void **state)
{
    (void)state;
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    assert_int_equal(notify_ready(), -EAFNOSUPPORT);
    setenv("NOTIFY_SOCKET", "/nonexistent/tickd/notify", 1);
    assert_int_equal(notify_ready(), -ENOENT);
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[0] = '/';
    longname[sizeof(longname) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(notify_ready(), -ENAMETOOLONG);
    unsetenv("NOTIFY_SOCKET");
}

static void watchdog_interval_comes_from_WATCHDOG_USEC(void **state)
{
    (void)state;
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    assert_int_equal(notify_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "20000000", 1);
    assert_int_equal(notify_watchdog_usec(), 20000000);
    unsetenv("WATCHDOG_USEC");
}

static void watchdog_is_ours_only_when_WATCHDOG_PID_is_our_pid(void **state)
{
    (void)state;
    char pid[32];
    setenv("WATCHDOG_USEC", "5000000", 1);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_watchdog_usec(), 5000000);
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_watchdog_usec(), 0);
    setenv("WATCHDOG_PID", "not-a-pid", 1);
    assert_int_equal(notify_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
}

static void malformed_WATCHDOG_USEC_turns_the_watchdog_off(void **state)
{
    (void)state;
    unsetenv("WATCHDOG_PID");
    const char *bad[] = {"", "0", "-5", "12x", "abc", " 5", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("WATCHDOG_USEC", bad[i], 1);
        if (notify_watchdog_usec() != 0)
            fail_msg("WATCHDOG_USEC=\"%s\" was taken", bad[i]);
    }
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ready_sends_READY_1),
        cmocka_unit_test(stopping_sends_STOPPING_1),
        cmocka_unit_test(watchdog_sends_WATCHDOG_1),
        cmocka_unit_test(status_sends_STATUS_with_line_feeds_flattened),
        cmocka_unit_test(reloading_sends_RELOADING_1_with_MONOTONIC_USEC_of_now),
        cmocka_unit_test(abstract_socket_name_after_at_sign_is_reached),
        cmocka_unit_test(without_NOTIFY_SOCKET_nothing_is_sent_and_calls_succeed),
        cmocka_unit_test(unusable_addresses_are_reported_as_errors),
        cmocka_unit_test(watchdog_interval_comes_from_WATCHDOG_USEC),
        cmocka_unit_test(watchdog_is_ours_only_when_WATCHDOG_PID_is_our_pid),
        cmocka_unit_test(malformed_WATCHDOG_USEC_turns_the_watchdog_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * notify.c - sd_notify(3) over $NOTIFY_SOCKET, without libsystemd.
 *
 * The address is read from the environment on every call (systemd sets it
 * once; a test may change it), so the module holds no state. A leading '@'
 * names a socket in the abstract namespace: the '@' becomes a NUL byte and
 * the address length covers the name only. The socket is SOCK_NONBLOCK:
 * sending never waits on systemd, and a full queue is -EAGAIN for the caller
 * to shrug off (the next watchdog ping comes soon enough).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "src/notify.h"

#define NOTIFY_STATUS_MAX 1024

int notify_enabled(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    return path != NULL && path[0] != '\0';
}

int notify_send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return 0;
    if (path[0] != '/' && path[0] != '@')
        return -EAFNOSUPPORT; /* vsock: and the like: not for us */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len > sizeof(sa.sun_path) - (path[0] == '/'))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, len);
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    else
        salen++; /* the terminating NUL of a path */

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int err = 0;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
        err = -errno;
    close(fd);
    return err;
}

int notify_ready(void)
{
    return notify_send("READY=1");
}

int notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char state[64];
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
             (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
    return notify_send(state);
}

int notify_stopping(void)
{
    return notify_send("STOPPING=1");
}

int notify_watchdog(void)
{
    return notify_send("WATCHDOG=1");
}

int notify_status(const char *fmt, ...)
{
    if (!notify_enabled())
        return 0;
    char state[sizeof("STATUS=") + NOTIFY_STATUS_MAX];
    strcpy(state, "STATUS=");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(state + 7, sizeof(state) - 7, fmt, ap);
    va_end(ap);
    for (char *p = state; (p = strchr(p, '\n')) != NULL; p++)
        *p = ' ';
    return notify_send(state);
}

/* A whole decimal number, no sign, no trailing text; 0 or -EINVAL. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

uint64_t notify_watchdog_usec(void)
{
    uint64_t usec, pid;
    if (parse_u64(getenv("WATCHDOG_USEC"), &usec) != 0 || usec == 0)
        return 0;
    const char *p = getenv("WATCHDOG_PID");
    if (p != NULL && (parse_u64(p, &pid) != 0 || pid != (uint64_t)getpid()))
        return 0;
    return usec;
}

/*
 * slow_fsync.c - an LD_PRELOAD library for the integration tests: a slow
 * disk, as far as syncing goes.
 *
 * fdatasync() and fsync() sleep TICKD_SLOW_FSYNC_MS milliseconds (0 when
 * unset or not a number) and then do the real call, found with
 * dlsym(RTLD_NEXT). Nothing else changes: writes, reads and the results of
 * the calls are the real ones. A test preloads it into the tickd it starts
 * to see what an acknowledgement means when syncs take their time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

int fdatasync(int fd);
int fsync(int fd);

static void delay(void)
{
    const char *ms = getenv("TICKD_SLOW_FSYNC_MS");
    long n = ms != NULL ? strtol(ms, NULL, 10) : 0;
    if (n <= 0)
        return;
    struct timespec ts = {n / 1000, (n % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int call_next(const char *name, int fd)
{
    int (*next)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    if (next == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return next(fd);
}

int fdatasync(int fd)
{
    delay();
    return call_next("fdatasync", fd);
}

int fsync(int fd)
{
    delay();
    return call_next("fsync", fd);
}

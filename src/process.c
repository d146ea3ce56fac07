/*
 * process.c - the process_* figures, as the Prometheus client libraries
 * define them: CPU time and memory from /proc/self/stat, open descriptors by
 * counting /proc/self/fd (not counting the one used to read it), and the
 * descriptor limit from getrlimit(). A few system calls: cheap enough for
 * each scrape, never on a hot path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "src/process.h"

/* Fields of /proc/self/stat after the ")" that ends the command name:
 * field 3 (state) is the first; utime is field 14, stime 15, vsize 23,
 * rss 24 (proc(5)). */
#define STAT_FIRST 3
#define STAT_UTIME 14
#define STAT_STIME 15
#define STAT_VSIZE 23
#define STAT_RSS   24

static int read_stat(process_stats_t *out)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int err = n < 0 ? -errno : 0;
    close(fd);
    if (err != 0)
        return err;
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: start after the
     * last ")". */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -EIO;
    p++;
    unsigned long long utime = 0, stime = 0, vsize = 0, rss = 0;
    int seen = 0;
    for (int field = STAT_FIRST; field <= STAT_RSS; field++) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return -EIO;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        switch (field) {
        case STAT_UTIME:
            utime = v;
            seen++;
            break;
        case STAT_STIME:
            stime = v;
            seen++;
            break;
        case STAT_VSIZE:
            vsize = v;
            seen++;
            break;
        case STAT_RSS:
            rss = v;
            seen++;
            break;
        default:
            break;
        }
        p = end;
        while (*p != ' ' && *p != '\0')
            p++;
    }
    long tck = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (seen != 4 || tck <= 0 || page <= 0)
        return -EIO;
    out->cpu_seconds = (double)(utime + stime) / (double)tck;
    out->virtual_bytes = vsize;
    out->resident_bytes = rss * (unsigned long long)page;
    return 0;
}

static int count_fds(uint64_t *out)
{
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -errno;
    int own = dirfd(dir);
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (atoi(e->d_name) != own)
            n++;
    }
    closedir(dir);
    *out = n;
    return 0;
}

int process_get_stats(process_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    int err = read_stat(out);
    if (err == 0)
        err = count_fds(&out->open_fds);
    if (err != 0)
        return err;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    out->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    return 0;
}

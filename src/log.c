/*
 * log.c - lines on stderr, in the journal's format or a terminal's.
 *
 * The one piece of process-wide state in src/: the threshold and the format.
 * log_msg() takes no logger argument (every module logs, from anywhere),
 * and what it writes to, fd 2, is itself process-wide, so its settings are
 * too. Set by log_init() at start-up and log_set_level() on reload, both on
 * the loop thread.
 *
 * Each line is formatted in a stack buffer and written with one write(2), so
 * lines from a forked child or a worker thread never interleave mid-line.
 * A failed write is dropped: there is nowhere left to report it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/log.h"

#define LOG_LINE_MAX 4096

static struct {
    int level;   /* messages above this priority are dropped */
    int journal; /* stderr is the journal: "<N>" prefixes, no time */
} log_state = {LOG_INFO, 0};

static const char *const level_words[] = {
    [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "error",
    [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* Does $JOURNAL_STREAM ("device:inode") name the file stderr is? */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char tail;
    if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
        return 0;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(int level)
{
    log_state.level = level;
    log_state.journal = stderr_is_journal();
}

void log_set_level(int level)
{
    log_state.level = level;
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

void log_msg(int level, const char *fmt, ...)
{
    if (level > log_state.level)
        return;
    if (level < LOG_EMERG)
        level = LOG_EMERG;
    if (level > LOG_DEBUG)
        level = LOG_DEBUG;

    char line[LOG_LINE_MAX];
    int n;
    if (log_state.journal) {
        n = snprintf(line, sizeof(line), "<%d>", level);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     level_words[level]);
    }
    size_t start = (size_t)n;
    size_t room = sizeof(line) - start - 1; /* keep one byte for the line feed */
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + start, room + 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)m;
    if (len > room) {
        len = room;
        memcpy(line + start + len - 3, "...", 3);
    }
    while (len > 0 && line[start + len - 1] == '\n')
        len--;
    for (size_t i = start; i < start + len; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    line[start + len] = '\n';
    write_all(line, start + len + 1);
}

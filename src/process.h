/*
 * process.h - the standard Prometheus process_* figures of this process,
 * read from /proc/self and getrlimit(), for the metrics page.
 */
#ifndef TICKD_SRC_PROCESS_H
#define TICKD_SRC_PROCESS_H

#include <stdint.h>

typedef struct process_stats {
    double cpu_seconds;      /* user + system CPU time */
    uint64_t resident_bytes; /* resident set size */
    uint64_t virtual_bytes;  /* virtual memory size */
    uint64_t open_fds;       /* file descriptors open now */
    uint64_t max_fds;        /* RLIMIT_NOFILE, soft limit */
} process_stats_t;

/* Reads the figures; 0, or -errno when /proc/self cannot be read. */
int process_get_stats(process_stats_t *out);

#endif

/*
 * main.c - the tickd command line.
 *
 *   tickd replay FILE [options]     run a recorded day through the pipeline
 *   tickd gen itch|csv [options]    write a synthetic day
 *   tickd journal verify|repair|cat FILE
 *
 * Each command lives in its own cmd_*.c file; this file only dispatches and
 * holds the small helpers they share.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char usage[] =
    "usage: tickd <command> [arguments]\n"
    "\n"
    "commands:\n"
    "  replay FILE [--format itch|csv|tlog] [--speed max|N] [--json]\n"
    "              [--journal DIR] [--fsync always|interval|never]\n"
    "      run a recorded day through decoding, objects, books and ticks,\n"
    "      then print a summary\n"
    "  gen itch|csv --symbols N --messages M [--seed S] -o FILE\n"
    "      write a deterministic synthetic trading day\n"
    "  journal verify|repair|cat FILE\n"
    "      check a journal, cut it back to its last good record, or print it\n";

int64_t cli_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cli_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EX_USAGE_CODE : 0;
    }
    if (strcmp(argv[1], "replay") == 0)
        return cmd_replay(argc - 1, argv + 1);
    if (strcmp(argv[1], "gen") == 0)
        return cmd_gen(argc - 1, argv + 1);
    if (strcmp(argv[1], "journal") == 0)
        return cmd_journal(argc - 1, argv + 1);
    fprintf(stderr, "tickd: unknown command '%s'\n\n%s", argv[1], usage);
    return EX_USAGE_CODE;
}

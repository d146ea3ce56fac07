/*
 * cli.h - the tickd command line: subcommands and their shared helpers.
 *
 * main.c dispatches `tickd <command> ...` to a cmd_*() function, each in a
 * file of its own (cmd_replay.c, cmd_gen.c, cmd_journal.c). A command returns
 * the process exit status: 0 success, 1 failure (the reason printed on
 * stderr), EX_USAGE (64) for a bad command line.
 */
#ifndef TICKD_SRC_CLI_H
#define TICKD_SRC_CLI_H

#include <stdint.h>

#define EX_USAGE_CODE  64
#define EX_CONFIG_CODE 78

int cmd_replay(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_journal(int argc, char **argv);

/* Nanoseconds of CLOCK_REALTIME / CLOCK_MONOTONIC. */
int64_t cli_realtime_ns(void);
int64_t cli_monotonic_ns(void);

/* Parses a whole decimal number into *out; 0 or -EINVAL. */
int cli_parse_u64(const char *s, uint64_t *out);

#endif

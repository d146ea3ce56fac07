/*
 * cli.h - the tickd command line: subcommands and their shared helpers (cli.c).
 *
 * main.c dispatches `tickd <command> ...` to a cmd_*() function, each in a
 * file of its own (cmd_replay.c, cmd_gen.c, cmd_journal.c) with its usage
 * text beside it: `tickd <command> --help` (or -h anywhere in its arguments)
 * and `tickd help <command>` print that text on stdout and exit 0. A command
 * returns the process exit status, one of the project's codes below (the
 * daemon's too: daemon_run() returns them); the
 * reason is printed once, on stderr, naming the argument or file at fault.
 */
#ifndef TICKD_SRC_CLI_H
#define TICKD_SRC_CLI_H

#include <stdint.h>

#define EX_FAILURE_CODE     1   /* a runtime failure (I/O, memory, a damaged journal) */
#define EX_USAGE_CODE       64  /* a bad command-line argument */
#define EX_NOINPUT_CODE     66  /* an input file cannot be opened or read */
#define EX_UNAVAILABLE_CODE 69  /* the daemon: a listen address cannot be bound */
#define EX_CANTCREAT_CODE   73  /* a journal cannot be created or opened for writing */
#define EX_HELD_CODE        75  /* the journal is held by another running tickd */
#define EX_CONFIG_CODE      78  /* a configuration error */
#define EX_INTERRUPTED_CODE 130 /* stopped by SIGINT (128 + 2), the shell's convention */

int cmd_replay(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_journal(int argc, char **argv);

/* Each command's usage, for --help, `tickd help <command>` and errors. */
extern const char cmd_replay_usage[];
extern const char cmd_gen_usage[];
extern const char cmd_journal_usage[];

/* Is --help or -h among argv[1..argc-1]? */
int cli_wants_help(int argc, char **argv);

/* Parses a whole decimal number into *out; 0 or -EINVAL. */
int cli_parse_u64(const char *s, uint64_t *out);

/* Parses the value of option opt of command cmd as a whole number in
 * [min, max]. On a missing, malformed or out-of-range value prints
 * "tickd CMD: OPT must be MIN..MAX, got VAL" on stderr and returns -EINVAL. */
int cli_parse_range(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
                    uint64_t *out);

#endif

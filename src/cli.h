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

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sysexits.h>

/* Exit codes: EXIT_SUCCESS; EXIT_FAILURE for a runtime failure (I/O, memory,
 * a damaged journal); and <sysexits.h>'s, each for one cause:
 *   EX_USAGE       a bad command-line argument
 *   EX_NOINPUT     an input file cannot be opened or read
 *   EX_UNAVAILABLE the daemon: a listen address cannot be bound
 *   EX_CANTCREAT   a journal cannot be created or opened for writing
 *   EX_TEMPFAIL    the journal is held by another running tickd
 *   EX_CONFIG      a configuration error
 * and one of the shell's: stopped by SIGINT, 128 + the signal. */
#define CLI_EXIT_INTERRUPTED (128 + SIGINT)

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

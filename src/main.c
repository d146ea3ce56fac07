/*
 * main.c - the tickd command line.
 *
 *   tickd [--config FILE]           the daemon (daemon.c)
 *   tickd --check-config FILE       validate a configuration
 *   tickd replay FILE [options]     run a recorded day through the pipeline
 *   tickd gen itch|csv [options]    write a synthetic day
 *   tickd journal verify|repair|cat FILE
 *   tickd help [command]            usage, of all or of one command
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
#include "config.h"
#include "daemon.h"

static const char usage[] =
    "usage: tickd [--config FILE]           run the daemon\n"
    "       tickd --check-config FILE       validate a configuration and exit\n"
    "       tickd <command> [arguments]\n"
    "\n"
    "commands:\n"
    "  replay FILE [--format itch|csv|tlog] [--speed max|N] [--json]\n"
    "              [--journal DIR] [--fsync always|interval|never]\n"
    "      run a recorded day through decoding, objects, books and ticks,\n"
    "      then print a summary\n"
    "  gen itch|csv --symbols N --messages M [--seed S] -o FILE\n"
    "      write a deterministic synthetic trading day\n"
    "  journal verify|repair|cat FILE\n"
    "      check a journal, cut it back to its last good record, or print it\n"
    "  help [command]\n"
    "      this text, or a command's usage (also: tickd <command> --help)\n"
    "\n"
    "Without --config the daemon reads " TICKD_SYSCONF_CONFIG ".\n";

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

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
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

int cli_parse_range(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    if (cli_parse_u64(val, out) == 0 && *out >= min && *out <= max)
        return 0;
    if (min > 0 && max == UINT64_MAX)
        fprintf(stderr, "tickd %s: %s must be a whole number of at least %llu, got %s\n", cmd, opt,
                (unsigned long long)min, val == NULL ? "nothing" : val);
    else
        fprintf(stderr, "tickd %s: %s must be %llu..%llu, got %s\n", cmd, opt,
                (unsigned long long)min, (unsigned long long)max, val == NULL ? "nothing" : val);
    return -EINVAL;
}

/* `tickd help [command]`. */
static int help(int argc, char **argv)
{
    static const struct {
        const char *name, *text;
    } commands[] = {
        {"replay", cmd_replay_usage},
        {"gen", cmd_gen_usage},
        {"journal", cmd_journal_usage},
    };
    if (argc == 2) {
        fputs(usage, stdout);
        return 0;
    }
    for (size_t i = 0; argc == 3 && i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[2], commands[i].name) == 0) {
            fputs(commands[i].text, stdout);
            return 0;
        }
    }
    if (argc == 3)
        fprintf(stderr, "tickd help: unknown command '%s' (replay, gen or journal)\n", argv[2]);
    else
        fputs("tickd help: one command at most (usage: tickd help [replay|gen|journal])\n", stderr);
    return EX_USAGE_CODE;
}

static int check_config(const char *path)
{
    static config_t cfg;
    char err[CONFIG_ERR_LEN];
    if (config_load(path, &cfg, err, sizeof(err)) != 0 ||
        config_check_files(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return EX_CONFIG_CODE;
    }
    printf("%s: ok (%zu feed%s)\n", path, cfg.nfeeds, cfg.nfeeds == 1 ? "" : "s");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return daemon_run(TICKD_SYSCONF_CONFIG);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0)
        return help(argc, argv);
    if (strcmp(argv[1], "--version") == 0) {
        printf("tickd %s\n", TICKD_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--config") == 0 || strcmp(argv[1], "-c") == 0) {
        if (argc != 3) {
            fprintf(stderr, "tickd: %s needs a file\n\n%s", argv[1], usage);
            return EX_USAGE_CODE;
        }
        return daemon_run(argv[2]);
    }
    if (strcmp(argv[1], "--check-config") == 0) {
        if (argc != 3) {
            fprintf(stderr, "tickd: --check-config needs a file\n\n%s", usage);
            return EX_USAGE_CODE;
        }
        return check_config(argv[2]);
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

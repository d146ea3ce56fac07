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
 * Each command lives in its own cmd_*.c file and the helpers they share in
 * cli.c; this file only dispatches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli.h"
#include "src/config.h"
#include "src/daemon.h"

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
    return EX_USAGE;
}

static int check_config(const char *path)
{
    static config_t cfg;
    char err[CONFIG_ERR_LEN];
    if (config_load(path, &cfg, err, sizeof(err)) != 0 ||
        config_check_files(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return EX_CONFIG;
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
            return EX_USAGE;
        }
        return daemon_run(argv[2]);
    }
    if (strcmp(argv[1], "--check-config") == 0) {
        if (argc != 3) {
            fprintf(stderr, "tickd: --check-config needs a file\n\n%s", usage);
            return EX_USAGE;
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
    return EX_USAGE;
}

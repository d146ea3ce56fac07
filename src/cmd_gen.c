/*
 * cmd_gen.c - `tickd gen itch|csv --symbols N --messages M --seed S -o FILE`:
 * writes a deterministic synthetic trading day (feed/gen.c) to a file.
 *
 * Every numeric option is checked against its range before anything is
 * written, and the error names the option, the range and the value given.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "src/cli.h"
#include "feed/gen.h"

const char cmd_gen_usage[] =
    "usage: tickd gen itch|csv [--symbols N] [--messages M] [--seed S] -o FILE\n"
    "\n"
    "Writes a deterministic synthetic trading day: the same options give the\n"
    "same bytes.\n"
    "\n"
    "  itch|csv        ITCH 5.0 in BinaryFILE framing, or the CSV tick format\n"
    "  --symbols N     symbols in the day, 1..65535 (default 200)\n"
    "  --messages M    messages (itch) or ticks (csv), at least 1 (default 2000000);\n"
    "                  itch needs 6 + 2 * N of them for the day's system events and\n"
    "                  stock directory\n"
    "  --seed S        any whole number; another seed, another day (default 1)\n"
    "  -o FILE         the file to write\n"
    "\n"
    "exit status: 0 written, 1 the file could not be written, 64 a bad argument\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tickd gen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see: tickd gen --help)\n", stderr);
    va_end(ap);
    return EX_USAGE;
}

int cmd_gen(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(cmd_gen_usage, stdout);
        return 0;
    }
    gen_opts_t opts = {.symbols = 200, .messages = 2000000, .seed = 1};
    const char *format = argc > 1 ? argv[1] : NULL, *out = NULL;
    if (format == NULL)
        return usage_error("which format: itch or csv?");
    int itch = strcmp(format, "itch") == 0;
    if (!itch && strcmp(format, "csv") != 0)
        return usage_error("the format must be itch or csv, got %s", format);
    uint64_t v;
    for (int i = 2; i < argc; i += 2) { /* --option value pairs */
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--symbols") == 0) {
            if (cli_parse_range("gen", arg, val, 1, GEN_SYMBOLS_MAX, &v) != 0)
                return EX_USAGE;
            opts.symbols = (uint32_t)v;
        } else if (strcmp(arg, "--messages") == 0) {
            if (cli_parse_range("gen", arg, val, 1, UINT64_MAX, &opts.messages) != 0)
                return EX_USAGE;
        } else if (strcmp(arg, "--seed") == 0) {
            if (cli_parse_range("gen", arg, val, 0, UINT64_MAX, &opts.seed) != 0)
                return EX_USAGE;
        } else if (strcmp(arg, "-o") == 0) {
            if (val == NULL)
                return usage_error("-o needs a file");
            out = val;
        } else {
            return usage_error("unknown argument '%s'", arg);
        }
    }
    if (out == NULL)
        return usage_error("-o FILE is missing");
    if (itch && opts.messages < GEN_ITCH_FIXED(opts.symbols)) {
        fprintf(stderr,
                "tickd gen: --messages must be at least %llu for %u symbols (the day's "
                "system events and stock directory), got %llu\n",
                (unsigned long long)GEN_ITCH_FIXED(opts.symbols), opts.symbols,
                (unsigned long long)opts.messages);
        return EX_USAGE;
    }
    FILE *f = fopen(out, "wb");
    if (f == NULL) {
        fprintf(stderr, "tickd gen: cannot create %s: %s\n", out, strerror(errno));
        return EXIT_FAILURE;
    }
    int err = itch ? gen_itch(&opts, gen_write_stdio, f) : gen_csv(&opts, gen_write_stdio, f);
    if (fclose(f) != 0 && err == 0)
        err = -errno;
    if (err != 0) {
        fprintf(stderr, "tickd gen: writing %s: %s\n", out, strerror(-err));
        return EXIT_FAILURE;
    }
    return 0;
}

/*
 * cmd_gen.c - `tickd gen itch|csv --symbols N --messages M --seed S -o FILE`:
 * writes a deterministic synthetic trading day (feed/gen.c) to a file.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "feed/gen.h"

int cmd_gen(int argc, char **argv)
{
    struct gen_opts opts = {.symbols = 200, .messages = 2000000, .seed = 1};
    const char *format = argc > 1 ? argv[1] : NULL, *out = NULL;
    uint64_t v;
    for (int i = 2; i < argc; i += 2) { /* --option value pairs */
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--symbols") == 0 && cli_parse_u64(val, &v) == 0 && v >= 1 &&
            v <= GEN_SYMBOLS_MAX)
            opts.symbols = (uint32_t)v;
        else if (strcmp(arg, "--messages") == 0 && cli_parse_u64(val, &v) == 0)
            opts.messages = v;
        else if (strcmp(arg, "--seed") == 0 && cli_parse_u64(val, &v) == 0)
            opts.seed = v;
        else if (strcmp(arg, "-o") == 0 && val != NULL)
            out = val;
        else {
            fprintf(stderr, "tickd gen: bad argument '%s'%s\n", arg,
                    val == NULL ? " (missing value)" : "");
            return EX_USAGE_CODE;
        }
    }
    int itch = format != NULL && strcmp(format, "itch") == 0;
    if ((!itch && (format == NULL || strcmp(format, "csv") != 0)) || out == NULL) {
        fputs("usage: tickd gen itch|csv --symbols N --messages M [--seed S] -o FILE\n", stderr);
        return EX_USAGE_CODE;
    }
    if (itch && opts.messages < GEN_ITCH_FIXED(opts.symbols)) {
        fprintf(stderr,
                "tickd gen: --messages must be at least %llu for %u symbols (the day's "
                "system events and stock directory)\n",
                (unsigned long long)GEN_ITCH_FIXED(opts.symbols), opts.symbols);
        return EX_USAGE_CODE;
    }
    FILE *f = fopen(out, "wb");
    if (f == NULL) {
        fprintf(stderr, "tickd gen: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    int err = itch ? gen_itch(&opts, gen_write_stdio, f) : gen_csv(&opts, gen_write_stdio, f);
    if (fclose(f) != 0 && err == 0)
        err = -errno;
    if (err != 0) {
        fprintf(stderr, "tickd gen: writing %s: %s\n", out, strerror(-err));
        return 1;
    }
    return 0;
}

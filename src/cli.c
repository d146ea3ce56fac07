/*
 * cli.c - the helpers every tickd command shares (cli.h): asking for help,
 * and parsing whole numbers with an error that names the option at fault.
 * They print to stderr at most; none of them exits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli.h"

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

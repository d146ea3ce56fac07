/*
 * cmd_journal.c - `tickd journal verify|repair|cat FILE`.
 *
 * verify: reads the journal and says how many records are good and whether
 *         anything follows them (exit 0 clean, 1 damaged or unreadable);
 * repair: cuts the file back to its last good record, keeping the bad tail
 *         beside it as FILE.bad-OFFSET;
 * cat:    prints every good record as a CSV tick line (the README's format,
 *         with the sequence number appended as a comment).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "feed/csv.h"
#include "feed/journal.h"

static void print_scan(const char *path, const journal_scan_t *s)
{
    printf("%s: %llu records, %llu of %llu bytes valid\n", path, (unsigned long long)s->records,
           (unsigned long long)s->valid_bytes, (unsigned long long)s->file_bytes);
}

static int print_record(const journal_rec_t *r, void *arg)
{
    (void)arg;
    struct csv_tick t;
    memset(&t, 0, sizeof(t));
    memcpy(t.symbol, r->sym, strnlen(r->sym, sizeof(r->sym)));
    t.ts_ns = (uint64_t)r->ts_exch;
    if (r->kind == JOURNAL_TRADE) {
        t.kind = CSV_TRADE;
        t.trade.price = r->price;
        t.trade.size = r->size;
        t.trade.side = r->side;
    } else {
        t.kind = CSV_QUOTE;
        t.quote.bid = r->price;
        t.quote.bid_size = r->size;
        t.quote.ask = r->ask;
        t.quote.ask_size = r->ask_size;
    }
    char line[CSV_FORMAT_MAX];
    int n = csv_format(&t, line, sizeof(line));
    if (n < 0) {
        printf("# record %llu cannot be shown as CSV\n", (unsigned long long)r->seq);
        return 0;
    }
    fwrite(line, 1, (size_t)n, stdout);
    return 0;
}

int cmd_journal(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: tickd journal verify|repair|cat FILE\n", stderr);
        return EX_USAGE_CODE;
    }
    const char *what = argv[1], *path = argv[2];
    journal_scan_t scan;
    int err;
    if (strcmp(what, "verify") == 0) {
        err = journal_scan(path, NULL, NULL, &scan);
    } else if (strcmp(what, "repair") == 0) {
        err = journal_repair(path, &scan);
    } else if (strcmp(what, "cat") == 0) {
        err = journal_scan(path, print_record, NULL, &scan);
    } else {
        fprintf(stderr, "tickd journal: unknown action '%s' (verify, repair or cat)\n", what);
        return EX_USAGE_CODE;
    }
    if (err != 0 && !(err == -EBADMSG && scan.bad_header)) {
        fprintf(stderr, "tickd journal %s: %s: %s\n", what, path, strerror(-err));
        return 1;
    }
    if (scan.bad_header) {
        fprintf(stderr, "tickd journal %s: %s: not a tickd journal (bad header)\n", what, path);
        return 1;
    }
    if (strcmp(what, "cat") == 0)
        return scan.valid_bytes == scan.file_bytes ? 0 : 1;
    print_scan(path, &scan);
    if (scan.valid_bytes == scan.file_bytes) {
        printf("%s: ok\n", path);
        return 0;
    }
    if (strcmp(what, "repair") == 0) {
        printf("%s: truncated to %llu bytes; the %llu bad bytes are in %s.bad-%llu\n", path,
               (unsigned long long)scan.valid_bytes,
               (unsigned long long)(scan.file_bytes - scan.valid_bytes), path,
               (unsigned long long)scan.valid_bytes);
        return 0;
    }
    printf("%s: damaged after byte %llu (run: tickd journal repair %s)\n", path,
           (unsigned long long)scan.valid_bytes, path);
    return 1;
}

/*
 * cmd_journal.c - `tickd journal verify|repair|cat FILE`.
 *
 * verify: reads the journal and says how many records are good and whether
 *         anything follows them (exit 0 clean, 1 damaged or not a journal);
 * repair: cuts the file back to its last good record, keeping the bad tail
 *         beside it as FILE.bad-OFFSET;
 * cat:    prints every good record as a CSV tick line (the README's format,
 *         with the sequence number appended as a comment).
 *
 * A file a running tickd holds (journal.h: the writer's lock) is live: its
 * last record may still be arriving. verify and cat then stop at the last
 * complete record and call what follows "in progress" unless valid records
 * come after it (that is damage); repair refuses it (exit 75) and changes
 * nothing. A file that cannot be opened or read exits 66.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "src/cli.h"
#include "feed/csv.h"
#include "feed/journal.h"

const char cmd_journal_usage[] =
    "usage: tickd journal verify|repair|cat FILE\n"
    "\n"
    "  verify FILE   count the good records and say where damage starts\n"
    "  repair FILE   cut FILE back to its last good record; the bad tail is kept\n"
    "                beside it as FILE.bad-<offset>\n"
    "  cat FILE      print the good records as CSV tick lines\n"
    "\n"
    "A file a running tickd is writing is live: verify and cat stop at its last\n"
    "complete record (the one after it is still being written), and repair\n"
    "refuses it.\n"
    "\n"
    "exit status: 0 ok (or live, with only its last record in progress),\n"
    "1 damaged or not a journal, 64 a bad argument, 66 FILE cannot be opened or\n"
    "read, 75 repair: FILE is held by a running tickd\n";

static void print_scan(const char *path, const journal_scan_t *s)
{
    printf("%s: %llu records, %llu of %llu bytes valid\n", path, (unsigned long long)s->records,
           (unsigned long long)s->valid_bytes, (unsigned long long)s->file_bytes);
}

static int print_record(const journal_rec_t *r, void *arg)
{
    (void)arg;
    csv_tick_t t;
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

/* The exit status for an error from the journal functions. */
static int exit_code(int err)
{
    switch (-err) {
    case EBUSY:
        return EX_TEMPFAIL;
    case ENOENT:
    case EACCES:
    case EPERM:
    case EISDIR:
    case ENOTDIR:
    case ELOOP:
    case ENAMETOOLONG:
    case EROFS:
    case EIO:
        return EX_NOINPUT;
    default:
        return EXIT_FAILURE;
    }
}

int cmd_journal(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(cmd_journal_usage, stdout);
        return 0;
    }
    const char *what = argc > 1 ? argv[1] : NULL;
    if (what == NULL ||
        (strcmp(what, "verify") != 0 && strcmp(what, "repair") != 0 && strcmp(what, "cat") != 0)) {
        fprintf(stderr,
                "tickd journal: the action must be verify, repair or cat, got %s "
                "(see: tickd journal --help)\n",
                what == NULL ? "nothing" : what);
        return EX_USAGE;
    }
    if (argc != 3 || argv[2][0] == '-') {
        fprintf(stderr, "tickd journal %s: needs one FILE, got %s (see: tickd journal --help)\n",
                what,
                argc < 3   ? "none"
                : argc > 3 ? "more than one argument"
                           : argv[2]);
        return EX_USAGE;
    }
    const char *path = argv[2];
    journal_scan_t scan;
    int err;
    if (strcmp(what, "verify") == 0)
        err = journal_scan(path, NULL, NULL, &scan);
    else if (strcmp(what, "repair") == 0)
        err = journal_repair(path, &scan);
    else
        err = journal_scan(path, print_record, NULL, &scan);
    if (err == -EBUSY) {
        fprintf(stderr,
                "tickd journal repair: %s is held by a running tickd (it is that tickd's "
                "journal); nothing was changed. Stop it first: it repairs the file itself when "
                "it starts.\n",
                path);
        return EX_TEMPFAIL;
    }
    if (err != 0 && !(err == -EBADMSG && scan.bad_header)) {
        fprintf(stderr, "tickd journal %s: %s: %s\n", what, path, strerror(-err));
        return exit_code(err);
    }
    if (scan.bad_header) {
        fprintf(stderr, "tickd journal %s: %s: not a tickd journal (bad header)\n", what, path);
        return EXIT_FAILURE;
    }
    uint64_t bad = scan.file_bytes - scan.valid_bytes;
    if (strcmp(what, "cat") == 0) {
        if (bad == 0 || scan.tail_in_progress)
            return 0;
        fprintf(stderr,
                "tickd journal cat: %s: damaged after byte %llu; the %llu good records "
                "before it were printed\n",
                path, (unsigned long long)scan.valid_bytes, (unsigned long long)scan.records);
        return EXIT_FAILURE;
    }
    print_scan(path, &scan);
    if (scan.live && bad == 0) {
        printf("%s: live (held by a running tickd): ok so far\n", path);
        return 0;
    }
    if (scan.tail_in_progress) {
        printf("%s: live (held by a running tickd): %llu records; the tail of %llu bytes is "
               "still being written\n",
               path, (unsigned long long)scan.records, (unsigned long long)bad);
        return 0;
    }
    if (bad == 0) {
        printf("%s: ok\n", path);
        return 0;
    }
    if (strcmp(what, "repair") == 0) {
        printf("%s: truncated to %llu bytes; the %llu bad bytes are in %s.bad-%llu\n", path,
               (unsigned long long)scan.valid_bytes, (unsigned long long)bad, path,
               (unsigned long long)scan.valid_bytes);
        return 0;
    }
    if (scan.live)
        printf("%s: damaged after byte %llu, with valid records after the damage (the file is "
               "held by a running tickd: stop it, and it repairs the file when it starts again)\n",
               path, (unsigned long long)scan.valid_bytes);
    else
        printf("%s: damaged after byte %llu (run: tickd journal repair %s)\n", path,
               (unsigned long long)scan.valid_bytes, path);
    return EXIT_FAILURE;
}

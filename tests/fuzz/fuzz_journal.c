/*
 * fuzz_journal.c - libFuzzer harness: tickd's journal, as a stream into a
 * market, record by record, and as a file.
 *
 * Input: a control byte (fuzz_market.h), a flags byte, then journal bytes
 * (header and records). Flags bit 0 recomputes the CRC-32C of every record
 * whose length field is in range before anything reads it, so that the
 * fuzzer's changes to a payload reach the decoder and the market instead of
 * stopping at the checksum.
 *
 * The bytes go through ingest (INGEST_TLOG) into a market on a heap of its
 * own, cut at the chunk boundaries the control byte draws, and again as one
 * chunk; the two runs must agree tick for tick, and the heap must be empty
 * at the end. journal_decode() then walks the records directly, each in a
 * buffer of its exact size: every record it accepts must encode back
 * (journal_encode) to one that decodes to the same fields. Last, the bytes
 * are read as a file by journal_scan(), which must count the same good
 * records and bytes as the walk, and the same records as ingest applied.
 *
 * Seeds (corpus/fuzz_journal/): journals written by `tickd replay --journal`
 * from generated days, behind a control byte and a flags byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "feed/ingest.h"
#include "feed/journal.h"
#include "tests/fuzz/fuzz_market.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Rewrites the checksum of each record whose length is in range, walking
 * the lengths from the header on. */
static void fix_checksums(uint8_t *buf, size_t len)
{
    size_t off = JOURNAL_HEADER_SIZE;
    while (off + 8 <= len) {
        uint32_t plen = get32le(buf + off);
        if (plen < JOURNAL_PAYLOAD_V1 || plen > JOURNAL_MAX_PAYLOAD || plen > len - off - 8)
            return;
        put32le(buf + off + 4, journal_crc32c(buf + off + 8, plen));
        off += 8 + plen;
    }
}

static int same_rec(const journal_rec_t *a, const journal_rec_t *b)
{
    return a->kind == b->kind && a->side == b->side && memcmp(a->sym, b->sym, 8) == 0 &&
           a->price == b->price && a->size == b->size && a->ask == b->ask &&
           a->ask_size == b->ask_size && a->seq == b->seq && a->ts_exch == b->ts_exch &&
           a->ts_recv == b->ts_recv;
}

typedef struct walk {
    uint64_t records;
    uint64_t valid_bytes; /* 0 when the header is bad */
} walk_t;

/* Decodes record after record the way a reader of the whole file would. */
static walk_t walk_records(const uint8_t *buf, size_t len)
{
    walk_t w = {0, 0};
    if (len < JOURNAL_HEADER_SIZE || !journal_header_valid(buf))
        return w;
    w.valid_bytes = JOURNAL_HEADER_SIZE;
    size_t off = JOURNAL_HEADER_SIZE;
    for (;;) {
        /* Just the record when its length is in range, else all that is
         * left: a read past it is a report. */
        size_t avail = len - off;
        uint32_t plen = avail >= 8 ? get32le(buf + off) : 0;
        if (plen >= JOURNAL_PAYLOAD_V1 && plen <= JOURNAL_MAX_PAYLOAD && 8 + (size_t)plen < avail)
            avail = 8 + (size_t)plen;
        unsigned char *rec_bytes = fuzz_dup(buf + off, avail);
        journal_rec_t rec;
        int n = journal_decode(rec_bytes, avail, &rec);
        free(rec_bytes);
        if (n <= 0)
            break;
        if ((size_t)n < JOURNAL_RECORD_SIZE || (size_t)n != avail)
            fuzz_fail("journal_decode took %d bytes of a %zu-byte record", n, avail);
        if (rec.kind != JOURNAL_TRADE && rec.kind != JOURNAL_QUOTE)
            fuzz_fail("journal_decode accepted a record of kind %u", rec.kind);
        unsigned char enc[JOURNAL_RECORD_SIZE];
        journal_encode(&rec, enc);
        journal_rec_t again;
        if (journal_decode(enc, sizeof(enc), &again) != JOURNAL_RECORD_SIZE ||
            !same_rec(&rec, &again))
            fuzz_fail("record %llu does not survive journal_encode and journal_decode",
                      (unsigned long long)w.records);
        off += (size_t)n;
        w.records++;
        w.valid_bytes += (uint64_t)n;
    }
    return w;
}

/* Reads the bytes back as a file with journal_scan(), from a memfd. */
static void check_scan(const uint8_t *buf, size_t len, const walk_t *w, uint64_t applied)
{
    int fd = memfd_create("fuzz_journal", MFD_CLOEXEC);
    if (fd < 0)
        fuzz_fail("memfd_create failed");
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n <= 0)
            fuzz_fail("writing the memfd failed");
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    journal_scan_t scan;
    int r = journal_scan(path, NULL, NULL, &scan);
    close(fd);
    if (r != 0)
        fuzz_fail("journal_scan failed: %d", r);
    if (scan.file_bytes != len || scan.records != w->records ||
        scan.bad_header != (w->valid_bytes == 0) ||
        (!scan.bad_header && scan.valid_bytes != w->valid_bytes))
        fuzz_fail("journal_scan: %llu records, %llu good bytes of %llu (bad header %d); "
                  "decoding them one by one: %llu records, %llu bytes of %zu",
                  (unsigned long long)scan.records, (unsigned long long)scan.valid_bytes,
                  (unsigned long long)scan.file_bytes, scan.bad_header,
                  (unsigned long long)w->records, (unsigned long long)w->valid_bytes, len);
    if (applied != w->records)
        fuzz_fail("ingest applied %llu records, the file holds %llu good ones",
                  (unsigned long long)applied, (unsigned long long)w->records);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t ctl = data[0], flags = data[1];
    size_t len = size - 2;
    uint8_t *bytes = fuzz_dup(data + 2, len);
    if (flags & 1)
        fix_checksums(bytes, len);

    static fuzz_rig_t whole, cut;
    fuzz_rig_open(&whole, INGEST_TLOG, 0, 0);
    fuzz_rig_stream(&whole, bytes, len);
    fuzz_rig_close(&whole);

    fuzz_rig_open(&cut, INGEST_TLOG, ctl, size);
    fuzz_rig_stream(&cut, bytes, len);
    fuzz_rig_close(&cut);
    fuzz_rig_compare(&whole, &cut);

    walk_t w = walk_records(bytes, len);
    check_scan(bytes, len, &w, whole.ing.stats.messages);
    free(bytes);
    return 0;
}

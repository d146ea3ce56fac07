/*
 * test_journal.c - the journal: encoding, checksums, round trips, detection
 * of a file cut mid-record, repair, and the writer's lock (a held file is
 * never opened twice nor repaired, and its tail in progress is not damage).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "feed/journal.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/tickd-test-journal-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in_dir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static journal_rec_t sample(uint64_t i)
{
    journal_rec_t r;
    memset(&r, 0, sizeof(r));
    r.kind = i % 3 == 0 ? JOURNAL_QUOTE : JOURNAL_TRADE;
    r.side = i % 2 ? 'B' : 'S';
    snprintf(r.sym, sizeof(r.sym), "S%05u", (unsigned)(i % 1000));
    r.price = 1012500 + (int64_t)i;
    r.size = (uint32_t)(100 + i);
    if (r.kind == JOURNAL_QUOTE) {
        r.ask = r.price + 100;
        r.ask_size = 200;
    }
    r.seq = i + 1;
    r.ts_exch = 34200000000000LL + (int64_t)i * 1000;
    r.ts_recv = r.ts_exch + 250;
    return r;
}

static void assert_rec_equal(const journal_rec_t *a, const journal_rec_t *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->side, b->side);
    assert_memory_equal(a->sym, b->sym, 8);
    assert_int_equal(a->price, b->price);
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->ask, b->ask);
    assert_int_equal(a->ask_size, b->ask_size);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->ts_exch, b->ts_exch);
    assert_int_equal(a->ts_recv, b->ts_recv);
}

static void crc32c_matches_the_standard_check_value(void **state)
{
    (void)state;
    /* RFC 3720 / the Castagnoli CRC's published check value. */
    assert_int_equal(journal_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(journal_crc32c("", 0), 0);
}

static void record_encodes_little_endian_with_length_and_crc(void **state)
{
    (void)state;
    journal_rec_t r = sample(3);
    unsigned char buf[JOURNAL_RECORD_SIZE];
    journal_encode(&r, buf);
    assert_int_equal(buf[0], JOURNAL_PAYLOAD_V1);
    assert_int_equal(buf[1] | buf[2] | buf[3], 0);
    uint32_t crc = journal_crc32c(buf + 8, JOURNAL_PAYLOAD_V1);
    assert_int_equal(buf[4], crc & 0xFF);
    assert_int_equal(buf[7], crc >> 24);
    assert_int_equal(buf[8], JOURNAL_QUOTE);
    assert_int_equal(buf[8 + 16], (1012500 + 3) & 0xFF); /* price, low byte first */
}

static void decode_rejects_flipped_bits_and_bad_lengths(void **state)
{
    (void)state;
    journal_rec_t r = sample(7), back;
    unsigned char buf[JOURNAL_RECORD_SIZE];
    journal_encode(&r, buf);
    assert_int_equal(journal_decode(buf, sizeof(buf), &back), JOURNAL_RECORD_SIZE);
    assert_rec_equal(&r, &back);

    assert_int_equal(journal_decode(buf, sizeof(buf) - 1, &back), 0); /* incomplete */
    assert_int_equal(journal_decode(buf, 7, &back), 0);

    for (size_t i = 8; i < sizeof(buf); i++) {
        buf[i] ^= 0x10;
        assert_int_equal(journal_decode(buf, sizeof(buf), &back), -EBADMSG);
        buf[i] ^= 0x10;
    }
    buf[0] = 200; /* longer than the data, but plausible: incomplete */
    assert_int_equal(journal_decode(buf, sizeof(buf), &back), 0);
    buf[0] = 0xFF, buf[1] = 0xFF; /* longer than any payload: corrupt */
    assert_int_equal(journal_decode(buf, sizeof(buf), &back), -EBADMSG);
    buf[0] = 8, buf[1] = 0; /* shorter than a v1 payload */
    assert_int_equal(journal_decode(buf, sizeof(buf), &back), -EBADMSG);
}

typedef struct collect {
    journal_rec_t *recs;
    size_t n;
} collect_t;

static int collect_cb(const journal_rec_t *rec, void *arg)
{
    collect_t *c = arg;
    c->recs[c->n++] = *rec;
    return 0;
}

static void write_records(const char *path, enum journal_fsync policy, size_t bufsize,
                          uint64_t from, uint64_t n)
{
    journal_writer_t *w;
    assert_int_equal(journal_open(path, policy, bufsize, &w), 0);
    for (uint64_t i = from; i < from + n; i++) {
        journal_rec_t r = sample(i);
        assert_int_equal(journal_append(w, &r), 0);
    }
    assert_int_equal(journal_records(w), n);
    assert_int_equal(journal_close(w), 0);
}

static void round_trip_keeps_every_record_in_order(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "roundtrip.tlog");
    /* A small buffer forces many flushes in the middle of the run. */
    write_records(path, JOURNAL_FSYNC_NEVER, 1000, 0, 10000);

    collect_t c = {calloc(10000, sizeof(journal_rec_t)), 0};
    journal_scan_t scan;
    assert_int_equal(journal_scan(path, collect_cb, &c, &scan), 0);
    assert_int_equal(scan.records, 10000);
    assert_int_equal(scan.valid_bytes, JOURNAL_HEADER_SIZE + 10000 * JOURNAL_RECORD_SIZE);
    assert_int_equal(scan.file_bytes, scan.valid_bytes);
    assert_false(scan.bad_header);
    for (uint64_t i = 0; i < 10000; i++) {
        journal_rec_t want = sample(i);
        assert_rec_equal(&want, &c.recs[i]);
    }
    free(c.recs);
}

static void reopening_appends_after_the_existing_records(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "append.tlog");
    write_records(path, JOURNAL_FSYNC_ALWAYS, 0, 0, 10);
    write_records(path, JOURNAL_FSYNC_INTERVAL, 0, 10, 5);
    journal_scan_t scan;
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    assert_int_equal(scan.records, 15);
}

static void file_cut_mid_record_is_detected_and_repaired(void **state)
{
    (void)state;
    char path[128], tail[160];
    path_in_dir(path, sizeof(path), "cut.tlog");
    write_records(path, JOURNAL_FSYNC_NEVER, 0, 0, 100);
    uint64_t good = JOURNAL_HEADER_SIZE + 100 * JOURNAL_RECORD_SIZE;
    /* A crash in the middle of writing record 101: half of it reached the disk. */
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    unsigned char half[JOURNAL_RECORD_SIZE];
    journal_rec_t r = sample(100);
    journal_encode(&r, half);
    assert_int_equal(write(fd, half, 30), 30);
    close(fd);

    journal_scan_t scan;
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    assert_int_equal(scan.records, 100);
    assert_int_equal(scan.valid_bytes, good);
    assert_int_equal(scan.file_bytes, good + 30);

    assert_int_equal(journal_repair(path, &scan), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, good);
    snprintf(tail, sizeof(tail), "%s.bad-%llu", path, (unsigned long long)good);
    assert_int_equal(stat(tail, &st), 0);
    assert_int_equal(st.st_size, 30);

    /* After repair, appending continues cleanly. */
    write_records(path, JOURNAL_FSYNC_NEVER, 0, 100, 1);
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    assert_int_equal(scan.records, 101);
    assert_int_equal(scan.valid_bytes, scan.file_bytes);
}

static void corrupt_record_stops_the_reader_there(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "flip.tlog");
    write_records(path, JOURNAL_FSYNC_NEVER, 0, 0, 50);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = JOURNAL_HEADER_SIZE + 20 * JOURNAL_RECORD_SIZE + 30;
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 1;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    journal_scan_t scan;
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    assert_int_equal(scan.records, 20);
    /* Opening for append repairs first: the 30 records after the bad one go to
     * the side file, and new records follow the 20 good ones. */
    write_records(path, JOURNAL_FSYNC_NEVER, 0, 20, 1);
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    assert_int_equal(scan.records, 21);
}

static void file_without_header_is_reported(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "noheader.tlog");
    FILE *f = fopen(path, "w");
    fputs("this is not a journal", f);
    fclose(f);
    journal_scan_t scan;
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    assert_true(scan.bad_header);
    assert_int_equal(scan.records, 0);
    journal_writer_t *w;
    assert_int_equal(journal_open(path, JOURNAL_FSYNC_NEVER, 0, &w), -EBADMSG);
}

static void detached_batches_are_written_in_order_while_appends_continue(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "batches.tlog");
    journal_writer_t *w;
    assert_int_equal(journal_open(path, JOURNAL_FSYNC_ALWAYS, 0, &w), 0);
    journal_batch_t b1, b2;
    assert_int_equal(journal_detach(w, &b1), -ENODATA);
    for (uint64_t i = 0; i < 10; i++) {
        journal_rec_t r = sample(i);
        assert_int_equal(journal_append(w, &r), 0);
    }
    assert_int_equal(journal_detach(w, &b1), 0);
    assert_int_equal(b1.len, 10 * JOURNAL_RECORD_SIZE);
    for (uint64_t i = 10; i < 15; i++) { /* the loop goes on appending */
        journal_rec_t r = sample(i);
        assert_int_equal(journal_append(w, &r), 0);
    }
    assert_int_equal(journal_detach(w, &b2), -EBUSY); /* one batch out at a time */
    assert_int_equal(journal_write_batch(w, &b1, 1), 0);
    assert_int_equal(journal_attach(w, &b1), 0);
    assert_int_equal(journal_detach(w, &b2), 0);
    assert_int_equal(journal_write_batch(w, &b2, 0), 0);
    assert_int_equal(journal_attach(w, &b2), 0);
    assert_int_equal(journal_close(w), 0);

    collect_t c = {calloc(15, sizeof(journal_rec_t)), 0};
    journal_scan_t scan;
    assert_int_equal(journal_scan(path, collect_cb, &c, &scan), 0);
    assert_int_equal(scan.records, 15);
    for (uint64_t i = 0; i < 15; i++) {
        journal_rec_t want = sample(i);
        assert_rec_equal(&want, &c.recs[i]);
    }
    free(c.recs);
}

static void full_buffer_with_a_batch_out_refuses_the_record(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "full.tlog");
    journal_writer_t *w;
    assert_int_equal(journal_open(path, JOURNAL_FSYNC_NEVER, 2 * JOURNAL_RECORD_SIZE, &w), 0);
    journal_rec_t r = sample(1);
    assert_int_equal(journal_append(w, &r), 0);
    journal_batch_t b;
    assert_int_equal(journal_detach(w, &b), 0);
    assert_int_equal(journal_append(w, &r), 0);
    assert_int_equal(journal_append(w, &r), 0);
    assert_int_equal(journal_append(w, &r), -EAGAIN);
    assert_int_equal(journal_write_batch(w, &b, 0), 0);
    journal_attach(w, &b);
    assert_int_equal(journal_close(w), 0);
    journal_scan_t scan;
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    assert_int_equal(scan.records, 3);
}

/* journal_can_append() says beforehand what journal_append() will do: yes
 * while the buffer has room or the other buffer is in, no once both are out
 * or full, and yes again when the batch is back. */
static void can_append_tells_beforehand_whether_the_record_would_be_kept(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "room.tlog");
    journal_writer_t *w;
    assert_int_equal(journal_open(path, JOURNAL_FSYNC_NEVER, 2 * JOURNAL_RECORD_SIZE, &w), 0);
    journal_rec_t r = sample(1);
    assert_true(journal_can_append(w));
    assert_int_equal(journal_append(w, &r), 0);
    assert_int_equal(journal_append(w, &r), 0);
    assert_true(journal_can_append(w)); /* full, but the other buffer is in */
    journal_batch_t b;
    assert_int_equal(journal_detach(w, &b), 0);
    assert_true(journal_can_append(w));
    assert_int_equal(journal_append(w, &r), 0);
    assert_int_equal(journal_append(w, &r), 0);
    assert_false(journal_can_append(w));
    assert_int_equal(journal_append(w, &r), -EAGAIN);
    assert_int_equal(journal_write_batch(w, &b, 0), 0);
    journal_attach(w, &b);
    assert_true(journal_can_append(w));
    assert_int_equal(journal_close(w), 0);
}

/* The whole content of path, for byte-for-byte comparisons. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Appends the first `part` bytes of record i to path, as a writer caught in
 * the middle of a write leaves it. */
static void append_part_of_record(const char *path, uint64_t i, size_t part)
{
    unsigned char rec[JOURNAL_RECORD_SIZE];
    journal_rec_t r = sample(i);
    journal_encode(&r, rec);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rec, part), (ssize_t)part);
    close(fd);
}

static int bad_files_beside(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -q '^%s\\.bad-'", dir, name);
    return system(cmd) == 0;
}

static void second_open_of_a_held_journal_fails_busy_and_changes_nothing(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "held.tlog");
    journal_writer_t *w, *w2;
    assert_int_equal(journal_open(path, JOURNAL_FSYNC_NEVER, 0, &w), 0);
    for (uint64_t i = 0; i < 10; i++) {
        journal_rec_t r = sample(i);
        assert_int_equal(journal_append(w, &r), 0);
    }
    assert_int_equal(journal_flush(w), 0);
    /* The holder is in the middle of a record: a second writer's start-up
     * repair would cut it. */
    append_part_of_record(path, 10, 40);
    size_t before_len, after_len;
    unsigned char *before = slurp(path, &before_len);

    assert_int_equal(journal_open(path, JOURNAL_FSYNC_NEVER, 0, &w2), -EBUSY);

    unsigned char *after = slurp(path, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    assert_false(bad_files_beside("held.tlog"));
    free(before);
    free(after);
    assert_int_equal(journal_close(w), 0);
    /* Once closed, the file is free to open again. */
    assert_int_equal(journal_open(path, JOURNAL_FSYNC_NEVER, 0, &w2), 0);
    assert_int_equal(journal_close(w2), 0);
}

static void torn_tail_of_a_held_journal_is_in_progress_not_damage(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "live.tlog");
    journal_writer_t *w;
    assert_int_equal(journal_open(path, JOURNAL_FSYNC_NEVER, 0, &w), 0);
    for (uint64_t i = 0; i < 20; i++) {
        journal_rec_t r = sample(i);
        assert_int_equal(journal_append(w, &r), 0);
    }
    assert_int_equal(journal_flush(w), 0);
    append_part_of_record(path, 20, 50);

    journal_scan_t scan;
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    assert_true(scan.live);
    assert_true(scan.tail_in_progress);
    assert_int_equal(scan.records, 20);
    assert_int_equal(scan.valid_bytes, JOURNAL_HEADER_SIZE + 20 * JOURNAL_RECORD_SIZE);
    assert_int_equal(scan.file_bytes, scan.valid_bytes + 50);
    assert_int_equal(journal_close(w), 0);

    /* The same bytes in a file nobody holds are a torn record: damage. */
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    assert_false(scan.live);
    assert_false(scan.tail_in_progress);
    assert_int_equal(scan.file_bytes, scan.valid_bytes + 50);
}

static void damage_followed_by_good_records_in_a_held_journal_is_damage(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "livebad.tlog");
    write_records(path, JOURNAL_FSYNC_NEVER, 0, 0, 30);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = JOURNAL_HEADER_SIZE + 10 * JOURNAL_RECORD_SIZE + 20;
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    /* A writer holds the file (a lock taken as journal_open takes it). */
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);

    journal_scan_t scan;
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    assert_true(scan.live);
    assert_false(scan.tail_in_progress);
    assert_int_equal(scan.records, 10);
    close(fd);
}

static void repair_refuses_a_held_journal_and_changes_nothing(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "norepair.tlog");
    journal_writer_t *w;
    assert_int_equal(journal_open(path, JOURNAL_FSYNC_NEVER, 0, &w), 0);
    for (uint64_t i = 0; i < 5; i++) {
        journal_rec_t r = sample(i);
        assert_int_equal(journal_append(w, &r), 0);
    }
    assert_int_equal(journal_flush(w), 0);
    append_part_of_record(path, 5, 10);
    size_t before_len, after_len;
    unsigned char *before = slurp(path, &before_len);

    journal_scan_t scan;
    assert_int_equal(journal_repair(path, &scan), -EBUSY);
    assert_true(scan.live);

    unsigned char *after = slurp(path, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    assert_false(bad_files_beside("norepair.tlog"));
    free(before);
    free(after);
    assert_int_equal(journal_close(w), 0);
}

static void journal_directory_has_one_holder_named_by_pid(void **state)
{
    (void)state;
    char err[512], pid[32], lock[128];
    int fd, fd2;
    assert_int_equal(journal_lock_dir(dir, &fd, err, sizeof(err)), 0);
    /* The lock file names the holder. */
    path_in_dir(lock, sizeof(lock), ".lock");
    size_t len;
    unsigned char *text = slurp(lock, &len);
    snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    assert_int_equal(len, strlen(pid));
    assert_memory_equal(text, pid, len);
    free(text);

    assert_int_equal(journal_lock_dir(dir, &fd2, err, sizeof(err)), -EBUSY);
    snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
    assert_non_null(strstr(err, pid));
    assert_non_null(strstr(err, lock));

    journal_unlock_dir(fd);
    assert_int_equal(journal_lock_dir(dir, &fd2, err, sizeof(err)), 0);
    journal_unlock_dir(fd2);
}

static void daily_file_name_is_tickd_yyyymmdd(void **state)
{
    (void)state;
    char name[32];
    assert_int_equal(journal_filename(name, sizeof(name), 2026, 3, 9), 0);
    assert_string_equal(name, "tickd-20260309.tlog");
    assert_int_equal(journal_filename(name, 8, 2026, 3, 9), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_matches_the_standard_check_value),
        cmocka_unit_test(record_encodes_little_endian_with_length_and_crc),
        cmocka_unit_test(decode_rejects_flipped_bits_and_bad_lengths),
        cmocka_unit_test(round_trip_keeps_every_record_in_order),
        cmocka_unit_test(reopening_appends_after_the_existing_records),
        cmocka_unit_test(file_cut_mid_record_is_detected_and_repaired),
        cmocka_unit_test(corrupt_record_stops_the_reader_there),
        cmocka_unit_test(file_without_header_is_reported),
        cmocka_unit_test(detached_batches_are_written_in_order_while_appends_continue),
        cmocka_unit_test(full_buffer_with_a_batch_out_refuses_the_record),
        cmocka_unit_test(can_append_tells_beforehand_whether_the_record_would_be_kept),
        cmocka_unit_test(second_open_of_a_held_journal_fails_busy_and_changes_nothing),
        cmocka_unit_test(torn_tail_of_a_held_journal_is_in_progress_not_damage),
        cmocka_unit_test(damage_followed_by_good_records_in_a_held_journal_is_damage),
        cmocka_unit_test(repair_refuses_a_held_journal_and_changes_nothing),
        cmocka_unit_test(journal_directory_has_one_holder_named_by_pid),
        cmocka_unit_test(daily_file_name_is_tickd_yyyymmdd),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}

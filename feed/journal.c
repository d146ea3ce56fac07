/*
 * journal.c - the journal: record encoding, the buffered writer, the reader,
 * and repair.
 *
 * The writer owns one file descriptor and one buffer. journal_append() only
 * copies JOURNAL_RECORD_SIZE bytes into the buffer; the system calls happen
 * in journal_flush()/journal_sync(), which the daemon calls off the tick path
 * (a timer, or a worker for the always policy). A record is never written in
 * part by us: on a short write the unwritten remainder stays buffered and the
 * next flush continues it, and a crash mid-write leaves a tail that the
 * reader rejects by length or checksum and repair cuts off.
 *
 * One writer per file: journal_open() takes an exclusive flock() before it
 * repairs or appends anything, and keeps it on its descriptor until close
 * (the kernel drops it when the process dies). Repair takes the same lock,
 * so it never cuts a file a running tickd is appending to. Readers only
 * probe: a shared lock they cannot get means the file is live, and then a
 * short or bad region at its end with no valid record after it is the
 * record being written, not damage.
 *
 * Checksums are CRC-32C from ISA-L (crc32_iscsi), the SSE4.2 instruction where
 * the CPU has it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <isa-l/crc.h>

#include "feed/journal.h"

struct journal_writer {
    int fd;
    enum journal_fsync policy;
    unsigned char *buf;   /* records being appended */
    unsigned char *spare; /* the other buffer, NULL while a batch is out */
    size_t cap;           /* bytes each buffer holds */
    size_t len;           /* bytes buffered in buf */
    uint64_t count;       /* records appended */
};

uint32_t journal_crc32c(const void *buf, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    const unsigned char *p = buf;
    while (len > 0) {
        int n = len > (1u << 30) ? 1 << 30 : (int)len;
        crc = crc32_iscsi((unsigned char *)p, n, crc);
        p += n;
        len -= (size_t)n;
    }
    return crc ^ 0xFFFFFFFFu;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void journal_encode(const journal_rec_t *rec, unsigned char *out)
{
    unsigned char *p = out + 8;
    memset(p, 0, JOURNAL_PAYLOAD_V1);
    p[0] = rec->kind;
    p[1] = (unsigned char)rec->side;
    put32(p + 4, rec->size);
    memcpy(p + 8, rec->sym, 8);
    put64(p + 16, (uint64_t)rec->price);
    put64(p + 24, (uint64_t)rec->ask);
    put32(p + 32, rec->ask_size);
    put64(p + 40, rec->seq);
    put64(p + 48, (uint64_t)rec->ts_exch);
    put64(p + 56, (uint64_t)rec->ts_recv);
    put32(out, JOURNAL_PAYLOAD_V1);
    put32(out + 4, journal_crc32c(p, JOURNAL_PAYLOAD_V1));
}

int journal_decode(const unsigned char *buf, size_t len, journal_rec_t *rec)
{
    if (len < 8)
        return 0;
    uint32_t plen = get32(buf);
    if (plen < JOURNAL_PAYLOAD_V1 || plen > JOURNAL_MAX_PAYLOAD)
        return -EBADMSG;
    if (len - 8 < plen)
        return 0;
    const unsigned char *p = buf + 8;
    if (journal_crc32c(p, plen) != get32(buf + 4))
        return -EBADMSG;
    if (p[0] != JOURNAL_TRADE && p[0] != JOURNAL_QUOTE)
        return -EBADMSG;
    rec->kind = p[0];
    rec->side = (char)p[1];
    rec->size = get32(p + 4);
    memcpy(rec->sym, p + 8, 8);
    rec->price = (int64_t)get64(p + 16);
    rec->ask = (int64_t)get64(p + 24);
    rec->ask_size = get32(p + 32);
    rec->seq = get64(p + 40);
    rec->ts_exch = (int64_t)get64(p + 48);
    rec->ts_recv = (int64_t)get64(p + 56);
    return (int)(8 + plen);
}

int journal_filename(char *buf, size_t len, int year, int month, int day)
{
    int n = snprintf(buf, len, "tickd-%04d%02d%02d.tlog", year, month, day);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void header_encode(unsigned char *h)
{
    memcpy(h, JOURNAL_MAGIC, 8);
    put32(h + 8, JOURNAL_VERSION);
    put32(h + 12, 0);
}

int journal_header_valid(const unsigned char *h)
{
    return memcmp(h, JOURNAL_MAGIC, 8) == 0 && get32(h + 8) == JOURNAL_VERSION;
}

static int write_all(int fd, const unsigned char *p, size_t len, size_t *done)
{
    *done = 0;
    while (*done < len) {
        ssize_t n = write(fd, p + *done, len - *done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        *done += (size_t)n;
    }
    return 0;
}

/* Does another open file description hold an exclusive lock on the file?
 * 1 yes, 0 no, -errno. Probes with a shared lock and lets it go at once, so
 * a reader never keeps a writer from opening the file. */
static int held_by_writer(int fd)
{
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
        return 0;
    }
    return errno == EWOULDBLOCK ? 1 : -errno;
}

/* Is there a whole valid record at any offset in [from, end)? Used on a live
 * file to tell damage (good records follow it) from the record still being
 * appended (nothing follows it). 1, 0, or -errno. */
static int record_follows(int fd, uint64_t from, uint64_t end, unsigned char *buf, size_t cap)
{
    for (uint64_t at = from; at < end;) {
        size_t want = end - at < cap ? (size_t)(end - at) : cap;
        ssize_t got = pread(fd, buf, want, (off_t)at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? -errno : 0;
        int last = at + (uint64_t)got >= end || (size_t)got < want; /* cut meanwhile */
        size_t tries = last ? (size_t)got : (size_t)got - (JOURNAL_MAX_PAYLOAD + 8);
        journal_rec_t rec;
        for (size_t i = 0; i < tries; i++)
            if (journal_decode(buf + i, (size_t)got - i, &rec) > 0)
                return 1;
        at += tries;
    }
    return 0;
}

/* Reads the open file from its start record by record (see journal_scan).
 * The file may grow meanwhile when a writer holds it: what counts is what
 * was there when the reader met its end. probe: we hold no lock on fd, so a
 * bad tail may be looked at again for a writer that opened the file while we
 * read (a probe on a descriptor that holds the lock would let it go). */
static int scan_fd(int fd, int probe, int (*cb)(const journal_rec_t *rec, void *arg), void *arg,
                   journal_scan_t *out)
{
    enum { CHUNK = 1 << 20, KEEP = JOURNAL_MAX_PAYLOAD + 8 };
    unsigned char *buf = malloc(CHUNK + KEEP);
    if (buf == NULL)
        return -ENOMEM;
    uint64_t pos = 0; /* file offset of buf[have + off] */
    size_t have = 0, off = 0;
    int err = 0, eof = 0, stop = 0;
    while (!stop) {
        if (!eof && have < KEEP) {
            memmove(buf, buf + off, have);
            off = 0;
            ssize_t n = pread(fd, buf + have, CHUNK, (off_t)pos);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                err = -errno;
                break;
            }
            eof = n == 0;
            have += (size_t)n;
            pos += (uint64_t)n;
        }
        if (out->valid_bytes == 0) {
            if (have < JOURNAL_HEADER_SIZE && !eof)
                continue;
            if (have < JOURNAL_HEADER_SIZE || !journal_header_valid(buf + off)) {
                out->bad_header = 1;
                break;
            }
            off += JOURNAL_HEADER_SIZE;
            have -= JOURNAL_HEADER_SIZE;
            out->valid_bytes = JOURNAL_HEADER_SIZE;
        }
        journal_rec_t rec;
        int n = journal_decode(buf + off, have, &rec);
        if (n < 0 || (n == 0 && eof))
            break; /* corrupt, or a record cut short at the end of the file */
        if (n == 0)
            continue;
        off += (size_t)n;
        have -= (size_t)n;
        out->records++;
        out->valid_bytes += (uint64_t)n;
        if (cb != NULL && cb(&rec, arg) != 0)
            stop = 1;
    }
    struct stat st;
    if (err == 0 && fstat(fd, &st) != 0)
        err = -errno;
    if (err == 0)
        out->file_bytes = eof ? pos : (uint64_t)st.st_size;
    if (err == 0 && !out->bad_header && !stop && out->valid_bytes < out->file_bytes) {
        if (probe && !out->live) {
            int held = held_by_writer(fd); /* a writer may have opened it while we read */
            err = held < 0 ? held : 0;
            out->live = held > 0;
        }
        if (err == 0 && out->live) {
            int follows =
                record_follows(fd, out->valid_bytes + 1, out->file_bytes, buf, CHUNK + KEEP);
            err = follows < 0 ? follows : 0;
            out->tail_in_progress = follows == 0;
        }
    }
    free(buf);
    return err;
}

int journal_scan(const char *path, int (*cb)(const journal_rec_t *rec, void *arg), void *arg,
                 journal_scan_t *out)
{
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int held = held_by_writer(fd);
    int err = held < 0 ? held : 0;
    out->live = held > 0;
    if (err == 0)
        err = scan_fd(fd, 1, cb, arg, out);
    close(fd);
    return err;
}

static int copy_tail(int fd, const char *path, uint64_t from, uint64_t to)
{
    char name[4096];
    int n = snprintf(name, sizeof(name), "%s.bad-%llu", path, (unsigned long long)from);
    if (n < 0 || (size_t)n >= sizeof(name))
        return -ENAMETOOLONG;
    int out = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        return -errno;
    unsigned char buf[65536];
    int err = 0;
    for (uint64_t at = from; at < to && err == 0;) {
        size_t want = to - at < sizeof(buf) ? (size_t)(to - at) : sizeof(buf);
        ssize_t got = pread(fd, buf, want, (off_t)at);
        if (got <= 0) {
            err = got < 0 ? -errno : -EIO;
            break;
        }
        size_t done;
        err = write_all(out, buf, (size_t)got, &done);
        at += (uint64_t)got;
    }
    if (err == 0 && fsync(out) != 0)
        err = -errno;
    close(out);
    return err;
}

/* Takes the file's exclusive lock, or says who has it: 0, -EBUSY when
 * another open of the file holds a lock, -errno. */
static int lock_exclusive(int fd)
{
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    return errno == EWOULDBLOCK ? -EBUSY : -errno;
}

/* Repairs the file open (read-write) on fd, whose exclusive lock we hold. */
static int repair_locked(int fd, const char *path, journal_scan_t *out)
{
    memset(out, 0, sizeof(*out));
    int err = scan_fd(fd, 0, NULL, NULL, out);
    if (err != 0)
        return err;
    if (out->bad_header)
        return -EBADMSG;
    if (out->valid_bytes >= out->file_bytes)
        return 0; /* nothing bad: no .bad file either */
    err = copy_tail(fd, path, out->valid_bytes, out->file_bytes);
    if (err == 0 && ftruncate(fd, (off_t)out->valid_bytes) != 0)
        err = -errno;
    if (err == 0 && fsync(fd) != 0)
        err = -errno;
    return err;
}

int journal_repair(const char *path, journal_scan_t *out)
{
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = lock_exclusive(fd);
    if (err == -EBUSY)
        out->live = 1;
    if (err == 0)
        err = repair_locked(fd, path, out);
    close(fd); /* lets the lock go */
    return err;
}

int journal_open(const char *path, enum journal_fsync policy, size_t bufsize,
                 journal_writer_t **out)
{
    if (bufsize == 0)
        bufsize = 256 << 10;
    if (bufsize < JOURNAL_RECORD_SIZE)
        return -EINVAL;
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int err = lock_exclusive(fd);
    struct stat st;
    if (err == 0 && fstat(fd, &st) != 0)
        err = -errno;
    if (err == 0 && st.st_size == 0) {
        unsigned char h[JOURNAL_HEADER_SIZE];
        size_t done;
        header_encode(h);
        err = write_all(fd, h, sizeof(h), &done);
        if (err == 0 && fsync(fd) != 0)
            err = -errno;
    } else if (err == 0) {
        journal_scan_t scan;
        err = repair_locked(fd, path, &scan);
    }
    journal_writer_t *w = err == 0 ? calloc(1, sizeof(*w)) : NULL;
    if (err == 0 && w == NULL)
        err = -ENOMEM;
    if (err == 0 && ((w->buf = malloc(bufsize)) == NULL || (w->spare = malloc(bufsize)) == NULL)) {
        free(w->buf);
        free(w);
        err = -ENOMEM;
    }
    if (err != 0) {
        close(fd);
        return err;
    }
    w->fd = fd;
    w->policy = policy;
    w->cap = bufsize;
    *out = w;
    return 0;
}

int journal_lock_dir(const char *dir, int *fd, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/.lock", dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "journal directory name too long: %s", dir);
        return -ENAMETOOLONG;
    }
    int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) {
        int e = -errno;
        snprintf(err, errlen,
                 "cannot open %s: %s (check the journal directory and its permissions)", path,
                 strerror(-e));
        return e;
    }
    int e = lock_exclusive(lfd);
    if (e == -EBUSY) {
        char pid[24] = "";
        ssize_t n = pread(lfd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen, "journal directory %s is in use by another tickd (pid %s, %s)", dir,
                 pid[0] != '\0' ? pid : "unknown", path);
    } else if (e != 0) {
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(-e));
    } else {
        char pid[24];
        int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        size_t done;
        if (ftruncate(lfd, 0) != 0)
            e = -errno;
        if (e == 0)
            e = write_all(lfd, (const unsigned char *)pid, (size_t)len, &done);
        if (e != 0)
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(-e));
    }
    if (e != 0) {
        close(lfd);
        return e;
    }
    *fd = lfd;
    return 0;
}

void journal_unlock_dir(int fd)
{
    close(fd);
}

int journal_append(journal_writer_t *w, const journal_rec_t *rec)
{
    if (w->cap - w->len < JOURNAL_RECORD_SIZE) {
        if (w->spare == NULL)
            return -EAGAIN;
        int err = journal_flush(w);
        if (err != 0)
            return err;
    }
    journal_encode(rec, w->buf + w->len);
    w->len += JOURNAL_RECORD_SIZE;
    w->count++;
    return 0;
}

int journal_can_append(const journal_writer_t *w)
{
    return w->cap - w->len >= JOURNAL_RECORD_SIZE || w->spare != NULL;
}

int journal_flush(journal_writer_t *w)
{
    size_t done;
    int err = write_all(w->fd, w->buf, w->len, &done);
    memmove(w->buf, w->buf + done, w->len - done);
    w->len -= done;
    if (err == 0 && w->policy == JOURNAL_FSYNC_ALWAYS && done > 0 && fdatasync(w->fd) != 0)
        err = -errno;
    return err;
}

int journal_sync(journal_writer_t *w)
{
    int err = journal_flush(w);
    if (err == 0 && fdatasync(w->fd) != 0)
        err = -errno;
    return err;
}

int journal_detach(journal_writer_t *w, journal_batch_t *b)
{
    if (w->len == 0)
        return -ENODATA;
    if (w->spare == NULL)
        return -EBUSY;
    b->buf = w->buf;
    b->len = w->len;
    b->written = 0;
    b->err = 0;
    w->buf = w->spare;
    w->spare = NULL;
    w->len = 0;
    return 0;
}

int journal_write_batch(journal_writer_t *w, journal_batch_t *b, int sync)
{
    b->err = write_all(w->fd, b->buf, b->len, &b->written);
    size_t torn = b->written % JOURNAL_RECORD_SIZE;
    struct stat st;
    if (torn != 0 && fstat(w->fd, &st) == 0 && ftruncate(w->fd, st.st_size - (off_t)torn) == 0)
        b->written -= torn; /* a short write (disk full) must not leave half a record */
    if (b->err == 0 && sync && fdatasync(w->fd) != 0)
        b->err = -errno;
    return b->err;
}

uint64_t journal_attach(journal_writer_t *w, journal_batch_t *b)
{
    uint64_t lost = (b->len - b->written) / JOURNAL_RECORD_SIZE;
    w->spare = b->buf;
    b->buf = NULL;
    return lost;
}

enum journal_fsync journal_policy(const journal_writer_t *w)
{
    return w->policy;
}

uint64_t journal_records(const journal_writer_t *w)
{
    return w->count;
}

int journal_close(journal_writer_t *w)
{
    int err = w->policy == JOURNAL_FSYNC_NEVER ? journal_flush(w) : journal_sync(w);
    if (close(w->fd) != 0 && err == 0)
        err = -errno;
    free(w->buf);
    free(w->spare);
    free(w);
    return err;
}

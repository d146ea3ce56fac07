/*
 * journal.h - tickd's journal: append-only daily files of binary tick
 * records.
 *
 * File layout (all integers little-endian):
 *
 *   header   16 bytes: magic "TICKDJNL", u32 version (1), u32 reserved (0)
 *   record   u32 length of the payload, u32 CRC-32C of the payload, payload
 *
 * Payload of version 1 (JOURNAL_PAYLOAD_V1 = 64 bytes):
 *
 *   0  u8  kind (JOURNAL_TRADE or JOURNAL_QUOTE)
 *   1  u8  side ('B', 'S', or 0 when unknown)
 *   2  u16 reserved (0)
 *   4  u32 size (trade) or bid size (quote)
 *   8  8 bytes symbol, NUL padded
 *   16 i64 price (trade) or bid (quote), 4 implied decimals
 *   24 i64 ask (quote; 0 for a trade)
 *   32 u32 ask size (quote; 0 for a trade)
 *   36 u32 reserved (0)
 *   40 u64 sequence number
 *   48 i64 exchange timestamp, ns
 *   56 i64 receive timestamp, ns
 *
 * The reader stops at the first record that is short, longer than any valid
 * payload, or fails its checksum, and reports how many records and bytes
 * before it are good; repair truncates the file there and keeps the bad tail
 * beside it. Files are named tickd-YYYYMMDD.tlog.
 *
 * A journal has one writer: journal_open() holds an exclusive flock(2) on the
 * file while it is open, repair takes the same lock, and a reader that finds
 * the lock taken knows the file is live, so its last record may still be
 * arriving.
 */
#ifndef TICKD_FEED_JOURNAL_H
#define TICKD_FEED_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#define JOURNAL_MAGIC       "TICKDJNL"
#define JOURNAL_VERSION     1
#define JOURNAL_HEADER_SIZE 16
#define JOURNAL_PAYLOAD_V1  64
#define JOURNAL_RECORD_SIZE (8 + JOURNAL_PAYLOAD_V1)
#define JOURNAL_MAX_PAYLOAD 4096 /* a longer length field is corruption */

enum journal_kind {
    JOURNAL_TRADE = 1,
    JOURNAL_QUOTE = 2,
};

/* One tick as the journal stores it. */
typedef struct journal_rec {
    uint8_t kind;      /* enum journal_kind */
    char side;         /* 'B', 'S', or 0 */
    char sym[8];       /* NUL padded, not NUL terminated when 8 long */
    int64_t price;     /* trade price or quote bid, 4 implied decimals */
    uint32_t size;     /* trade size or bid size */
    int64_t ask;       /* quote ask */
    uint32_t ask_size; /* quote ask size */
    uint64_t seq;      /* sequence number */
    int64_t ts_exch;   /* exchange timestamp, ns */
    int64_t ts_recv;   /* receive timestamp, ns */
} journal_rec_t;

/* When appended records reach the disk. */
enum journal_fsync {
    JOURNAL_FSYNC_NEVER = 0,    /* when the OS decides */
    JOURNAL_FSYNC_INTERVAL = 1, /* journal_sync() from a timer */
    JOURNAL_FSYNC_ALWAYS = 2,   /* every journal_flush() ends in fdatasync */
};

/* Encodes rec into out (JOURNAL_RECORD_SIZE bytes: length, CRC, payload). */
void journal_encode(const journal_rec_t *rec, unsigned char *out);

/* Decodes one record at buf (len bytes available). Returns the record's
 * total size, 0 when buf holds less than a whole record, or -EBADMSG when
 * the record is corrupt (bad length or checksum) or of an unknown kind. */
int journal_decode(const unsigned char *buf, size_t len, journal_rec_t *rec);

/* Is h (JOURNAL_HEADER_SIZE bytes) a valid file header? */
int journal_header_valid(const unsigned char *h);

/* CRC-32C (Castagnoli) of len bytes. */
uint32_t journal_crc32c(const void *buf, size_t len);

/* The writer. Appends go to an in-memory buffer; journal_flush() writes it
 * out (and with JOURNAL_FSYNC_ALWAYS makes it durable). */
typedef struct journal_writer journal_writer_t;

/* Opens (creating if needed) path for appending, and takes an exclusive
 * advisory lock on it (flock) that lasts until journal_close() or the death
 * of the process: a journal has one writer. When another open of the file
 * (another tickd, `tickd journal repair`) holds a lock, returns -EBUSY and
 * changes nothing. Otherwise a new or empty file gets the header; an existing
 * one must have a valid header (-EBADMSG), and anything after its last good
 * record is repaired away first (kept beside the file, as for journal_repair).
 * bufsize 0 means 256 KiB. */
int journal_open(const char *path, enum journal_fsync policy, size_t bufsize,
                 journal_writer_t **out);
/* The directory's lock, for a daemon (or a replay) that owns a journal
 * directory rather than one file: an exclusive flock on DIR/.lock, which then
 * holds the holder's pid as text. Returns 0 with the lock's descriptor in
 * *fd (keep it open as long as the directory is yours; journal_unlock_dir()
 * or the death of the process lets it go); -EBUSY when another process holds
 * it, with the holder's pid and the lock file named in err; or -errno with
 * what failed in err. */
int journal_lock_dir(const char *dir, int *fd, char *err, size_t errlen);
void journal_unlock_dir(int fd);

/* Appends one record; flushes first when the buffer is full. 0 or -errno
 * (the record is kept in the buffer on a write error, never half written). */
int journal_append(journal_writer_t *w, const journal_rec_t *rec);
/* Would journal_append() keep a record now? 1 when the buffer has room or
 * the other buffer is there to flush into, 0 when it would return -EAGAIN
 * (both buffers out or full: the disk is not keeping up). Lets a caller
 * refuse a record it must not lose before doing anything else with it. */
int journal_can_append(const journal_writer_t *w);
/* Writes the buffer out; with JOURNAL_FSYNC_ALWAYS also fdatasync()s. */
int journal_flush(journal_writer_t *w);
/* Flushes and fdatasync()s (the interval policy's timer calls this). */
int journal_sync(journal_writer_t *w);
/* Writing from another thread. The daemon never writes on its loop: at the
 * end of a batch it detaches the buffered records, a worker writes them (and
 * syncs them, for the always policy) with journal_write_batch(), and the loop
 * gives the buffer back with journal_attach(). The writer keeps appending to
 * its second buffer meanwhile; with both out, journal_append() returns
 * -EAGAIN and the record is not kept (the caller counts it). */
typedef struct journal_batch {
    unsigned char *buf;
    size_t len;     /* bytes to write */
    size_t written; /* bytes written so far */
    int err;        /* 0 or -errno of the write or sync */
} journal_batch_t;

/* Takes the buffered records out as a batch. 0, -ENODATA when nothing is
 * buffered, -EBUSY when the other buffer is still out. */
int journal_detach(journal_writer_t *w, journal_batch_t *b);
/* Writes a batch, then fdatasync()s when sync is set. Safe on any thread
 * while the loop keeps appending (it touches only the fd and the batch). */
int journal_write_batch(journal_writer_t *w, journal_batch_t *b, int sync);
/* Gives a written batch's buffer back. Records a failed write did not get
 * out are dropped: returns how many. */
uint64_t journal_attach(journal_writer_t *w, journal_batch_t *b);
/* The policy the writer was opened with. */
enum journal_fsync journal_policy(const journal_writer_t *w);

/* Records appended since open (written or still buffered). */
uint64_t journal_records(const journal_writer_t *w);
/* Flushes, syncs unless the policy is never, closes. Returns the first error.
 * Only with no batch out (journal_attach() took every one back). */
int journal_close(journal_writer_t *w);

/* The daily file name for a calendar day: tickd-YYYYMMDD.tlog. */
int journal_filename(char *buf, size_t len, int year, int month, int day);

/* Result of reading a whole file. */
typedef struct journal_scan {
    uint64_t records;     /* good records before the first bad one */
    uint64_t valid_bytes; /* header + good records */
    uint64_t file_bytes;  /* size of the file (of a live file: as far as it was read) */
    int bad_header;       /* the file does not start with a valid header */
    int live;             /* a writer (a running tickd) held the file's lock */
    int tail_in_progress; /* live, and no valid record follows the bytes after the good
                           * ones: they are a record still being appended, not damage */
} journal_scan_t;

/* Reads path record by record; calls cb (when not NULL) for each good one,
 * and stops early when cb returns non-zero. 0 or -errno (I/O). Never takes
 * or keeps a lock a writer would wait for: it only probes whether one holds
 * the file. In a live file a bad or short region followed by no valid record
 * is the tail in progress; followed by valid records it is damage. */
int journal_scan(const char *path, int (*cb)(const journal_rec_t *rec, void *arg), void *arg,
                 journal_scan_t *out);

/* Truncates path after its last good record, holding the file's exclusive
 * lock meanwhile. The bad tail, if any, is saved as <path>.bad-<offset>
 * (no file when nothing is bad). Returns 0 and fills out with the scan
 * before the repair; -EBUSY, with out->live set and nothing changed, when a
 * writer holds the file; -EBADMSG for a bad header; or -errno. */
int journal_repair(const char *path, journal_scan_t *out);

#endif

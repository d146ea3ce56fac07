/*
 * journaling.c - how the daemon journals (journaling.h): today's file, the
 * batches written and synced on libuv's worker pool, and the PUBLISH replies
 * held for durability.
 *
 * The loop itself never blocks on a disk. Ticks are appended to the journal
 * writer's buffer as they are made (journaling_append(), inline in the tick
 * sink); at the end of each batch of input the buffer is detached and a
 * worker writes it (and, with fsync always, or when the fsync interval's
 * sync is due, syncs it) while the loop appends to the writer's second
 * buffer. One batch is out at a time. With both buffers out, a feed's tick
 * is dropped (counted), and a PUBLISH is not run at all.
 *
 * A PUBLISH is a tick with someone to tell. With fsync always its reply is
 * held in pub/sub until the batch holding its record comes back: synced, an
 * acknowledgement; a failed write or sync, a journal error (the decided
 * hook). Every close of the journal (reload, new day, shutdown) decides
 * what was held for it. One the journal has no room for is not run: pub/sub
 * keeps it and stops reading its publisher until a batch comes back (the
 * ready hook).
 *
 * The journal directory is this daemon's alone while it journals there: a
 * second tickd on it refuses to start, and a reload to a directory another
 * process holds leaves the journal as it was. The lock is taken before any
 * file in it is opened, moved when journal.dir changes, let go at exit.
 *
 * Moving to another file (a new day, a reload) and the shutdown both wait
 * for the batch out: a file is closed only with every batch attached again.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc/assert.h"
#include "src/journaling.h"
#include "src/log.h"

/* ---- the directory and today's file ---- */

void journaling_init(journaling_t *j, uv_loop_t *loop, const config_t *cfg,
                     const journaling_hooks_t *hooks)
{
    memset(j, 0, sizeof(*j));
    j->loop = loop;
    j->cfg = cfg;
    j->hooks = *hooks;
    j->dir_lock = -1;
    histogram_init(&j->fsync, histogram_latency_bounds, histogram_latency_nbounds);
}

/* The path of today's file (session timezone) in dir. */
static void today_path(const char *dir, char *path, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char name[64];
    journal_filename(name, sizeof(name), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    snprintf(path, len, "%s/%s", dir, name);
}

/* journal.dir's lock, unless it is the one held; a lock on another
 * directory is let go once the new one is had. */
static int lock_dir(journaling_t *j)
{
    const char *dir = j->cfg->journal.dir;
    char err[CONFIG_ERR_LEN];
    int fd;
    if (j->dir_lock >= 0 && strcmp(j->locked_dir, dir) == 0)
        return 0;
    int r = journal_lock_dir(dir, &fd, err, sizeof(err));
    if (r != 0) {
        log_msg(LOG_ERR, "journal: %s%s", err,
                r == -EBUSY ? " (one tickd per journal directory: stop the other, or set "
                              "journal.dir to another directory)"
                            : "");
        return r;
    }
    if (j->dir_lock >= 0)
        journal_unlock_dir(j->dir_lock);
    j->dir_lock = fd;
    snprintf(j->locked_dir, sizeof(j->locked_dir), "%s", dir);
    return 0;
}

static void unlock_dir(journaling_t *j)
{
    if (j->dir_lock < 0)
        return;
    journal_unlock_dir(j->dir_lock);
    j->dir_lock = -1;
}

int journaling_open(journaling_t *j)
{
    char path[sizeof(j->cfg->journal.dir) + 64];
    today_path(j->cfg->journal.dir, path, sizeof(path));
    int err = lock_dir(j);
    if (err != 0)
        return err;
    err = journal_open(path, j->cfg->journal.fsync, 4u << 20, &j->writer);
    if (err == -EBUSY)
        log_msg(LOG_ERR,
                "journal: %s is held by another process (a tickd, or tickd journal "
                "repair); nothing was changed",
                path);
    else if (err != 0)
        log_msg(LOG_ERR, "journal: cannot open %s: %s (check journal.dir and its permissions)",
                path, strerror(-err));
    else
        log_msg(LOG_INFO, "journal: writing %s", path);
    return err;
}

/* Closes the file (synced unless its policy is never) and decides every
 * PUBLISH reply held for it: acknowledged when the close synced it, a
 * journal error when it failed. A move and the shutdown both pass here. */
static void close_file(journaling_t *j)
{
    if (j->writer == NULL)
        return;
    int err = journal_close(j->writer);
    if (err != 0) {
        j->errors_total++;
        log_msg(LOG_ERR, "journal: closing: %s", strerror(-err));
    }
    j->writer = NULL;
    if (err == 0)
        j->hooks.written(j->hooks.arg, j->records_total);
    j->hooks.decided(j->hooks.arg, j->records_total, err);
}

int journaling_reopen(journaling_t *j)
{
    if (j->batch_out) {
        j->reopen = 1;
        return -EINPROGRESS;
    }
    j->reopen = 0;
    close_file(j);
    if (j->cfg->journal.enabled)
        journaling_open(j);
    else
        unlock_dir(j);
    j->hooks.ready(j->hooks.arg); /* a new journal, or none: PUBLISHes wait no more */
    return 0;
}

int journaling_check(const journaling_t *j, const config_t *fresh, char *err, size_t errlen)
{
    const char *dir = fresh->journal.dir;
    int held = j->dir_lock >= 0 && strcmp(j->locked_dir, dir) == 0;
    if (!fresh->journal.enabled || (held && j->writer != NULL))
        return 0; /* nothing to open, or today's file is open already */
    int lock = -1, r = 0;
    if (!held && (r = journal_lock_dir(dir, &lock, err, errlen)) != 0)
        return r;
    char path[sizeof(fresh->journal.dir) + 64];
    today_path(dir, path, sizeof(path));
    journal_writer_t *w;
    r = journal_open(path, fresh->journal.fsync, 0, &w);
    if (r == 0)
        journal_close(w);
    else
        snprintf(err, errlen, "cannot open %.400s: %s", path,
                 r == -EBUSY ? "another process holds it" : strerror(-r));
    if (lock >= 0)
        journal_unlock_dir(lock);
    return r;
}

/* ---- batches on the worker pool ---- */

static void batch_work(uv_work_t *w)
{
    journaling_t *j = w->data;
    journal_write_batch(j->writer, &j->batch, j->batch_sync);
}

static void batch_back(uv_work_t *w, int status)
{
    journaling_t *j = w->data;
    (void)status;
    j->batch_out = 0;
    j->written_total += j->batch.written / JOURNAL_RECORD_SIZE;
    if (j->batch_sync && j->batch.err == 0) {
        histogram_observe(&j->fsync, (double)(uv_hrtime() - j->batch_started) / 1e9);
        j->durable_total = j->written_total;
    }
    if (j->batch.err == 0)
        j->hooks.written(j->hooks.arg, j->batch_upto);
    if (j->batch_sync || j->batch.err != 0) {
        /* PUBLISH replies held for these records go out now: acknowledged
         * if synced, journal errors if the write or the sync failed (the
         * records a failed write did not get out are dropped below). */
        j->hooks.decided(j->hooks.arg, j->batch_upto, j->batch.err);
    }
    if (j->batch.err != 0 && j->errors_total++ % 1000 == 0)
        log_msg(LOG_ERR,
                "journal: write failed: %s; %llu records not written (subscribers are still "
                "served; tickd_journal_errors_total counts the failures)",
                strerror(-j->batch.err),
                (unsigned long long)((j->batch.len - j->batch.written) / JOURNAL_RECORD_SIZE));
    if (j->batch.buf != NULL)
        j->dropped_total += journal_attach(j->writer, &j->batch);
    if (j->stopping) {
        j->hooks.drained(j->hooks.arg);
        return;
    }
    if (j->reopen)
        journaling_reopen(j);
    journaling_kick(j);
    j->hooks.ready(j->hooks.arg); /* a buffer is back: PUBLISHes waiting for room run */
}

void journaling_kick(journaling_t *j)
{
    if (j->writer == NULL || j->batch_out || j->draining)
        return; /* while draining, journal_close() writes what is left */
    int err = journal_detach(j->writer, &j->batch);
    if (err == -ENODATA && !j->sync_due)
        return;
    j->batch_upto = j->records_total; /* every record appended so far */
    if (err != 0)
        memset(&j->batch, 0, sizeof(j->batch)); /* nothing to write: a sync alone */
    j->batch_sync = journal_policy(j->writer) == JOURNAL_FSYNC_ALWAYS || j->sync_due;
    j->sync_due = 0;
    j->batch_started = uv_hrtime();
    j->work.data = j;
    if (uv_queue_work(j->loop, &j->work, batch_work, batch_back) == 0)
        j->batch_out = 1;
}

void journaling_sync_soon(journaling_t *j)
{
    j->sync_due = 1;
    journaling_kick(j);
}

/* ---- PUBLISH ---- */

/* A tick the journal cannot take is not run at all: never acknowledged,
 * never fanned out. Full buffers are a wait (pub/sub stops reading the
 * publisher until the ready hook, at most 10 s); a journal that is not
 * open, with fsync always, an error at once. */
int journaling__admit_generic(journaling_t *j, const char **reason)
{
    if (j->writer != NULL && !journal_can_append(j->writer)) {
        *reason = "journal: buffers full for 10 s (the disk is not keeping up; the tick was not "
                  "published); the tick was not made durable";
        return -EAGAIN;
    }
    if (j->writer == NULL && j->cfg->journal.enabled &&
        j->cfg->journal.fsync == JOURNAL_FSYNC_ALWAYS) {
        *reason = "journal: not open, see tickd's log (the tick was not published); the tick was "
                  "not made durable";
        j->refused_total++;
        return -ENODEV;
    }
    return 0;
}

/* No journal (nothing to wait for), or a record that did not reach the
 * buffer: published, but not journaled. */
int journaling__published_generic(journaling_t *j, uint64_t before, const char **reason)
{
    if (j->writer == NULL)
        return 0;
    TICKD_ASSERT(j->records_total == before);
    *reason = "journal: the record could not be buffered (a write failed); the tick was not "
              "made durable";
    j->refused_total++;
    return -EIO;
}

/* ---- shutdown ---- */

int journaling_drain(journaling_t *j)
{
    if (j->draining)
        return -EALREADY;
    if (j->batch_out) {
        j->stopping = 1;
        return -EBUSY;
    }
    j->draining = 1;
    int err = j->writer != NULL ? journal_sync(j->writer) : 0;
    if (err != 0)
        j->errors_total++;
    else if (j->writer != NULL)
        j->hooks.written(j->hooks.arg, j->records_total);
    j->hooks.decided(j->hooks.arg, j->records_total, err);
    return 0;
}

void journaling_close(journaling_t *j)
{
    close_file(j);
    unlock_dir(j);
}

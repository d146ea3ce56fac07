/*
 * journaling.h - how the daemon journals: every tick into today's journal
 * file (feed/journal.h), written and synced on libuv's worker pool so that
 * the loop never waits for a disk, and the PUBLISH replies that wait for
 * their record to be durable.
 *
 * The pipeline, in the order a record lives through it:
 *
 *   journaling_append()    on the loop, per tick: into the writer's buffer
 *   journaling_kick()      at the end of a batch of input (and after a
 *                          PUBLISH): the buffer, detached, goes to a worker
 *                          that writes it, and syncs it with journal.fsync
 *                          always (or when the interval's sync is due)
 *   the batch comes back   counted written (and durable if synced); the
 *                          decided hook releases the PUBLISH replies held
 *                          for it; the buffer is attached again and the
 *                          ready hook lets waiting PUBLISHes run
 *
 * At most one batch is out at a time; the records appended meanwhile go to
 * the writer's second buffer. The directory lock (one tickd per
 * journal.dir), opening today's file, moving to another file (a new day, a
 * reload) and closing at shutdown are here too: every close decides the
 * replies held for the file it closes, so no reply waits for a journal that
 * is gone, and a move waits for the batch out to come back.
 *
 * Everything here runs on the daemon's loop except journal_write_batch() on
 * the worker, which touches only the file and the batch. Failures are
 * logged here (a log line names what failed and how to fix it) and counted;
 * the feeds and the subscribers go on without the journal.
 */
#ifndef TICKD_SRC_JOURNALING_H
#define TICKD_SRC_JOURNALING_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "alloc/alloc.h"
#include "feed/journal.h"
#include "feed/market.h"
#include "src/config.h"
#include "src/histogram.h"

/* What the pipeline tells its owner (the daemon, which passes it on to
 * pub/sub). Each is called on the loop. */
typedef struct journaling_hooks {
    /* Every record up to upto (a records_total value) is decided: durable
     * when err is 0, else lost to err (a failed write, sync or close): the
     * PUBLISH replies held for them go out (pubsub_durable()). */
    void (*decided)(void *arg, uint64_t upto, int err);
    /* Every record up to upto is written to the file (synced or not): what
     * waits only for its record to be in the journal goes on (the nats
     * feeds' acknowledgements, feed_durable()). */
    void (*written)(void *arg, uint64_t upto);
    /* The journal can take records again (a buffer came back, or the
     * journal was replaced or turned off): PUBLISHes waiting for room run
     * (pubsub_journal_ready()). */
    void (*ready)(void *arg);
    /* The batch that made journaling_drain() return -EBUSY is back: call
     * journaling_drain() again. */
    void (*drained)(void *arg);
    void *arg;
} journaling_hooks_t;

typedef struct journaling {
    /* Read by the owner: the tick sink, /metrics, the status line. */
    journal_writer_t *writer; /* today's file; NULL while journaling is off or
                                 the file could not be opened */
    histogram_t fsync;        /* tickd_journal_fsync_seconds: a synced batch's time out */
    uint64_t records_total;   /* appended to the writer's buffer */
    uint64_t written_total;   /* written to the file */
    uint64_t durable_total;   /* written and synced: survive a crash of the host */
    uint64_t errors_total;    /* failed writes, syncs or closes (disk full, ...) */
    uint64_t dropped_total;   /* records lost: both buffers out, or a failed write */
    uint64_t refused_total;   /* PUBLISHes refused: the journal could not take them */

    /* The pipeline's own. */
    uv_loop_t *loop;
    const config_t *cfg; /* the owner's configuration in force: journal.* is read at
                            every open, so a reload changes it in place */
    journaling_hooks_t hooks;
    uv_work_t work;         /* the worker's request, while batch_out */
    journal_batch_t batch;  /* the records with the worker */
    int batch_out;          /* a batch is with a worker */
    int batch_sync;         /* ... and is to be synced */
    uint64_t batch_started; /* uv_hrtime() when it went out */
    uint64_t batch_upto;    /* records_total when it went out: what its sync makes durable */
    int sync_due;           /* the fsync interval passed: sync with the next batch */
    int reopen;             /* move to the file the configuration and the date call for
                               once the batch out is back (a new day, a reload) */
    int stopping;           /* journaling_drain() waits for the batch out */
    int draining;           /* journaling_drain() is done: no batch goes out again */
    int dir_lock;           /* journal_lock_dir()'s descriptor on locked_dir, or -1 */
    char locked_dir[sizeof(((config_t *)0)->journal.dir)];
} journaling_t;

/* Ready to open: nothing open, nothing locked. cfg (the owner's, updated in
 * place by a reload) and hooks (copied) must outlive j. */
void journaling_init(journaling_t *j, uv_loop_t *loop, const config_t *cfg,
                     const journaling_hooks_t *hooks);

/* Takes journal.dir's lock and opens today's file in it (session timezone).
 * 0, or -errno logged: -EBUSY when another process holds the directory or
 * the file (the daemon's exit code EX_TEMPFAIL), another when it cannot be
 * created or opened (EX_CANTCREAT). */
int journaling_open(journaling_t *j);

/* The tick sink's part, on the hot path: t's record into the buffer,
 * counted in records_total, or in dropped_total when both buffers are out
 * (the disk is not keeping up). Nothing when journaling is off. */
static inline void journaling_append(journaling_t *j, const tick_t *t)
{
    if (j->writer == NULL)
        return;
    journal_rec_t rec;
    tick_to_journal_rec(t, &rec);
    if (HEAP_UNLIKELY(journal_append(j->writer, &rec) != 0))
        j->dropped_total++;
    else
        j->records_total++;
}

/* Sends the buffered records (or a due sync) to a worker, unless a batch is
 * out already: the end of a batch of input, and after a PUBLISH. */
void journaling_kick(journaling_t *j);

/* The fsync interval passed: the next batch is synced; one goes out now. */
void journaling_sync_soon(journaling_t *j);

int journaling__admit_generic(journaling_t *j, const char **reason);
int journaling__published_generic(journaling_t *j, uint64_t before, const char **reason);

/* Before a PUBLISH's tick is made: can the journal take it? 0; -EAGAIN when
 * both buffers are full (pub/sub waits for the ready hook); -ENODEV when
 * journal.fsync always asks for a journal that is not open (counted in
 * refused_total). *reason says why, for the publisher. Inline: an open
 * journal with room is the rule, the rest is journaling__admit_generic(). */
static inline int journaling_admit(journaling_t *j, const char **reason)
{
    if (HEAP_LIKELY(j->writer != NULL && journal_can_append(j->writer)))
        return 0;
    return journaling__admit_generic(j, reason);
}

/* After a PUBLISH's tick was made (records_total was before): 0, with
 * *durable_at the record to wait for when journal.fsync is always (left
 * alone otherwise), and the record is sent on its way; -EIO when the record
 * was not buffered (a failed write; counted in refused_total, *reason says
 * so). Inline: a record buffered in an open journal is the rule, the rest
 * is journaling__published_generic(). */
static inline int journaling_published(journaling_t *j, uint64_t before, const char **reason,
                                       uint64_t *durable_at)
{
    if (HEAP_UNLIKELY(j->writer == NULL || j->records_total == before))
        return journaling__published_generic(j, before, reason);
    if (journal_policy(j->writer) == JOURNAL_FSYNC_ALWAYS)
        *durable_at = j->records_total; /* acknowledged once synced */
    /* The subscribers are flushed once the whole read is processed (pub/sub
     * does it); the journal takes what it has now, or when its batch out
     * returns: PUBLISHes that arrive meanwhile share the next write. */
    journaling_kick(j);
    return 0;
}

/* Moves to the file the configuration and the date now call for (another
 * directory, policy or day; or none when journal.enabled is false): closes
 * the current one (deciding its held replies), opens the new one, and calls
 * the ready hook. 0 when done (writer NULL if the open failed: logged),
 * -EINPROGRESS when a batch is out: done once it is back. */
int journaling_reopen(journaling_t *j);

/* Could the journal that fresh asks for be had? Its directory's lock (when
 * it is not the one held) and today's file in it are taken and let go
 * again, before anything changes, so that the move (journaling_reopen(),
 * which may wait for a batch) is not the first to find out. 0, or -errno
 * with why in err. */
int journaling_check(const journaling_t *j, const config_t *fresh, char *err, size_t errlen);

/* The shutdown's first step: once no batch is out, syncs everything
 * appended and decides every held reply (the decided hook); no batch goes
 * out after it. 0 when done so now; -EBUSY when a batch is out (the drained
 * hook is called when it is back); -EALREADY when it was done before. */
int journaling_drain(journaling_t *j);

/* The shutdown's last step (after the subscribers drained): closes the file
 * (synced unless the policy is never; held replies decided) and lets go of
 * the directory lock. */
void journaling_close(journaling_t *j);

#endif

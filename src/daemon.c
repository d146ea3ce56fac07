/*
 * daemon.c - the running daemon: start-up, the tick sink, timers, signals,
 * reload, the end of the day, and shutdown.
 *
 * One libuv loop, one heap. Every tick the market makes goes through
 * on_tick(): counted, appended to the journal buffer, and queued to the
 * subscribers. At the end of each batch (batch_done) the subscribers
 * are flushed and the journal's buffer goes to a libuv worker that writes
 * (and, with fsync always, syncs) it: the loop itself never blocks on a disk.
 *
 * With nats.servers (and nats.publish), on_tick() also hands every tick to
 * the NATS sink (nats_sink.h), which copies it into its ring and returns:
 * the loop never waits for NATS. A JetStream message a nats feed applied is
 * acknowledged once the journal batch holding its tick is back written
 * (feed_durable(), like a held PUBLISH reply).
 *
 * A PUBLISH is a tick with someone to tell. With fsync always its reply is
 * held in pubsub until the batch holding its record comes back: synced, an
 * acknowledgement; a failed write or sync, a journal error
 * (pubsub_durable()). Every close of the journal (reload, new day,
 * shutdown) decides what was held for it. One the journal has no room for
 * is not run: pubsub keeps it and stops reading its publisher until a batch
 * comes back (pubsub_journal_ready()). Feed ticks the journal cannot take
 * are counted as dropped.
 *
 * Timers, all safe points between batches: the cycle sweep (gc.interval:
 * collect when a threshold was crossed, and record the pause), the journal's
 * fsync interval, the end of the day (session.roll_at in session.timezone),
 * the systemd watchdog and status, and a loop-lag probe.
 *
 * Signals: SIGTERM and SIGINT stop the feeds, drain the subscribers' queues
 * (at most TICKD_DRAIN_NS), sync the journal and exit 0. SIGHUP reloads the
 * configuration: listeners, limits, the journal and the feeds change in
 * place, each all or nothing (a part that cannot start keeps the old one
 * running; the failure is counted and shown); subscribers stay connected.
 * SIGUSR1 logs a status line; the other signals whose default would kill
 * the daemon without a drain are ignored (signal_names).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "daemon.h"
#include "feed/csv.h"
#include "feed/ingest.h"
#include "feeds.h"
#include "log.h"
#include "metrics.h"
#include "nats_conn.h"
#include "notify.h"

#define TICKD_DRAIN_NS     (5ull * 1000000000ull)
#define NATS_EXIT_WAIT_MS  5000 /* at exit, for the NATS threads to publish and close */
#define LOOP_LAG_PERIOD_MS 100

/* The signals the daemon answers (on_signal()): SIGTERM and SIGINT stop it,
 * SIGHUP reloads, SIGUSR1 logs a status line. The others are signals a
 * supervisor or an operator may send, whose default action would end the
 * daemon on the spot, without draining or syncing: each is logged and
 * ignored. Real-time signals are ignored without a word (ignore_signals()).
 * SIGQUIT keeps its default, a core dump, as debugging wants; SIGKILL and
 * SIGSTOP cannot be caught; SIGPIPE and SIGXFSZ are ignored (a closed socket,
 * a file size limit: errors of the call that met them). */
static const struct {
    int signum;
    const char *name;
} signal_names[] = {
    {SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"},   {SIGHUP, "SIGHUP"},       {SIGUSR1, "SIGUSR1"},
    {SIGUSR2, "SIGUSR2"}, {SIGALRM, "SIGALRM"}, {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"},
    {SIGIO, "SIGIO"},     {SIGPWR, "SIGPWR"},   {SIGSTKFLT, "SIGSTKFLT"},
};

typedef struct daemon_ctx {
    daemon_t d;
    uv_loop_t loop;
    uv_timer_t gc_timer, fsync_timer, roll_timer, watchdog_timer, status_timer, lag_timer;
    uv_signal_t signals[sizeof(signal_names) / sizeof(signal_names[0])];
    uint64_t lag_last;
    uv_work_t journal_work;
    journal_batch_t batch;
    int batch_out;          /* a journal batch is with a worker */
    int reopen_journal;     /* reopen the journal once the batch out is back (new day,
                               reload) */
    int draining;           /* the shutdown has passed the journal and drains pubsub */
    int batch_sync;         /* ... and is to be synced */
    int sync_due;           /* the fsync interval passed: sync with the next batch */
    uint64_t batch_started; /* uv_hrtime() when the batch went out */
    uint64_t batch_upto;    /* journal_records_total when the batch went out */
    int dir_lock;           /* journal_lock_dir()'s descriptor on locked_dir, or -1 */
    char locked_dir[sizeof(((config_t *)0)->journal.dir)];
    int64_t day_start_ns;  /* midnight of the current day, session timezone */
    uint64_t status_ticks; /* ticks at the last status line */
    uint64_t input_errors_logged;
    int64_t input_errors_second;
    int exit_code;
} daemon_ctx_t;

static daemon_ctx_t *ctx_of(daemon_t *d)
{
    return (daemon_ctx_t *)d;
}

/* The feeds' input_error hook: a bad input is logged at most a few times a
 * second (the feed's counters keep the full count). */
static void on_input_error(void *arg, const char *feed, uint64_t where, const char *reason)
{
    daemon_ctx_t *c = ctx_of(arg);
    int64_t second = clock_realtime_ns() / 1000000000;
    if (second != c->input_errors_second) {
        c->input_errors_second = second;
        c->input_errors_logged = 0;
    }
    if (c->input_errors_logged++ < 5)
        log_msg(LOG_WARNING, "feed %s: input %llu: %s (skipped)", feed, (unsigned long long)where,
                reason);
}

/* ---- time of day in the session's timezone ---- */

static void apply_timezone(const config_t *cfg)
{
    setenv("TZ", cfg->session.timezone, 1);
    tzset();
}

/* Midnight of the day containing t, and the next roll time after t. */
static int64_t day_start(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000000000;
}

static time_t next_roll(time_t now, int roll_minute)
{
    struct tm tm;
    localtime_r(&now, &tm);
    tm.tm_hour = roll_minute / 60;
    tm.tm_min = roll_minute % 60;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t <= now) {
        tm.tm_mday++;
        tm.tm_isdst = -1;
        t = mktime(&tm);
    }
    return t;
}

/* ---- journal ---- */

/* The journal directory is this daemon's alone while it journals there: a
 * second tickd on it refuses to start, and a reload to a directory another
 * process holds leaves the journal closed. Taken before any file in it is
 * opened (or repaired), moved when journal.dir changes, let go at exit. */
static int journal_lock(daemon_ctx_t *c)
{
    const char *dir = c->d.cfg.journal.dir;
    char err[CONFIG_ERR_LEN];
    int fd;
    if (c->dir_lock >= 0 && strcmp(c->locked_dir, dir) == 0)
        return 0;
    int r = journal_lock_dir(dir, &fd, err, sizeof(err));
    if (r != 0) {
        log_msg(LOG_ERR, "journal: %s%s", err,
                r == -EBUSY ? " (one tickd per journal directory: stop the other, or set "
                              "journal.dir to another directory)"
                            : "");
        return r;
    }
    if (c->dir_lock >= 0)
        journal_unlock_dir(c->dir_lock);
    c->dir_lock = fd;
    snprintf(c->locked_dir, sizeof(c->locked_dir), "%s", dir);
    return 0;
}

static void journal_unlock(daemon_ctx_t *c)
{
    if (c->dir_lock < 0)
        return;
    journal_unlock_dir(c->dir_lock);
    c->dir_lock = -1;
}

static int journal_open_today(daemon_t *d)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char name[64], path[sizeof(d->cfg.journal.dir) + 64];
    journal_filename(name, sizeof(name), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    snprintf(path, sizeof(path), "%s/%s", d->cfg.journal.dir, name);
    int err = journal_lock(ctx_of(d));
    if (err != 0)
        return err;
    err = journal_open(path, d->cfg.journal.fsync, 4u << 20, &d->journal);
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

/* Everything up to journal position upto is written: the nats feeds
 * acknowledge the messages whose ticks it holds. */
static void feeds_durable(daemon_t *d, uint64_t upto)
{
    for (size_t i = 0; i < d->nfeeds; i++)
        feed_durable(d->feeds[i], upto);
}

/* Closes the journal (synced unless its policy is never) and decides every
 * PUBLISH reply held for it: acknowledged when the close synced it, a
 * journal error when it failed. A reload, a new day and the shutdown all
 * pass here, so no reply ever waits for a journal that is gone. */
static void journal_close_now(daemon_t *d)
{
    if (d->journal == NULL)
        return;
    int err = journal_close(d->journal);
    if (err != 0) {
        d->journal_errors_total++;
        log_msg(LOG_ERR, "journal: closing: %s", strerror(-err));
    }
    d->journal = NULL;
    if (err == 0)
        feeds_durable(d, d->journal_records_total);
    if (d->pubsub != NULL) { /* NULL: a start-up that failed before pub/sub listened */
        pubsub_durable(d->pubsub, d->journal_records_total, err);
        pubsub_flush(d->pubsub);
    }
}

static void pubsub_stopped(void *arg);

/* The shutdown, once no journal batch is out (journal_work_done() calls back
 * here otherwise): everything ingested is synced, so held PUBLISH replies go
 * out with the rest (errors if the sync failed), then the subscribers
 * drain. Draining stops reading the clients: no PUBLISH comes after this. */
static void stop_drain(daemon_ctx_t *c)
{
    daemon_t *d = &c->d;
    if (c->batch_out || c->draining)
        return;
    c->draining = 1;
    int err = d->journal != NULL ? journal_sync(d->journal) : 0;
    if (err != 0)
        d->journal_errors_total++;
    if (d->pubsub == NULL) { /* a start-up that failed before pub/sub listened */
        pubsub_stopped(c);
        return;
    }
    pubsub_durable(d->pubsub, d->journal_records_total, err);
    pubsub_flush(d->pubsub);
    pubsub_stop(d->pubsub, TICKD_DRAIN_NS, pubsub_stopped, c);
}

/* Closes the journal and opens the one the configuration and the date now
 * call for; while a batch is out, once it is back. */
static void journal_reopen(daemon_ctx_t *c)
{
    daemon_t *d = &c->d;
    if (c->batch_out) {
        c->reopen_journal = 1;
        return;
    }
    c->reopen_journal = 0;
    journal_close_now(d);
    if (d->cfg.journal.enabled)
        journal_open_today(d);
    else
        journal_unlock(c);
    pubsub_journal_ready(d->pubsub); /* a new journal, or none: PUBLISHes wait no more */
}

static void journal_work(uv_work_t *w)
{
    daemon_ctx_t *c = w->data;
    journal_write_batch(c->d.journal, &c->batch, c->batch_sync);
}

static void journal_kick(daemon_ctx_t *c);

static void journal_work_done(uv_work_t *w, int status)
{
    daemon_ctx_t *c = w->data;
    daemon_t *d = &c->d;
    (void)status;
    c->batch_out = 0;
    d->journal_written_total += c->batch.written / JOURNAL_RECORD_SIZE;
    if (c->batch_sync && c->batch.err == 0) {
        histogram_observe(&d->journal_fsync, (double)(uv_hrtime() - c->batch_started) / 1e9);
        d->journal_durable_total = d->journal_written_total;
    }
    if (c->batch.err == 0)
        feeds_durable(d, c->batch_upto);
    if (c->batch_sync || c->batch.err != 0) {
        /* PUBLISH replies held for these records go out now: acknowledged
         * if synced, journal errors if the write or the sync failed (the
         * records a failed write did not get out are dropped below). */
        pubsub_durable(d->pubsub, c->batch_upto, c->batch.err);
        pubsub_flush(d->pubsub);
    }
    if (c->batch.err != 0 && d->journal_errors_total++ % 1000 == 0)
        log_msg(LOG_ERR,
                "journal: write failed: %s; %llu records not written (subscribers are still "
                "served; tickd_journal_errors_total counts the failures)",
                strerror(-c->batch.err),
                (unsigned long long)((c->batch.len - c->batch.written) / JOURNAL_RECORD_SIZE));
    if (c->batch.buf != NULL)
        d->journal_dropped_total += journal_attach(d->journal, &c->batch);
    if (d->stopping) {
        stop_drain(c);
        return;
    }
    if (c->reopen_journal)
        journal_reopen(c);
    journal_kick(c);
    pubsub_journal_ready(d->pubsub); /* a buffer is back: PUBLISHes waiting for room run */
}

/* Sends the buffered records to a worker, unless one is out already. */
static void journal_kick(daemon_ctx_t *c)
{
    daemon_t *d = &c->d;
    if (d->journal == NULL || c->batch_out || c->draining)
        return; /* while draining, journal_close() writes what is left */
    int err = journal_detach(d->journal, &c->batch);
    if (err == -ENODATA && !c->sync_due)
        return;
    c->batch_upto = d->journal_records_total; /* every record appended so far */
    if (err != 0)
        memset(&c->batch, 0, sizeof(c->batch)); /* nothing to write: a sync alone */
    c->batch_sync = journal_policy(d->journal) == JOURNAL_FSYNC_ALWAYS || c->sync_due;
    c->sync_due = 0;
    c->batch_started = uv_hrtime();
    c->journal_work.data = c;
    if (uv_queue_work(d->loop, &c->journal_work, journal_work, journal_work_done) == 0)
        c->batch_out = 1;
}

static void on_fsync_timer(uv_timer_t *t)
{
    daemon_ctx_t *c = t->data;
    c->sync_due = 1;
    journal_kick(c);
}

/* ---- ticks ---- */

static void on_tick(void *arg, tick_t *t)
{
    daemon_t *d = arg;
    d->ticks_total[t->kind == TICK_TRADE ? 0 : 1]++;
    if (d->journal != NULL) {
        journal_rec_t rec;
        journal_rec_from_tick(t, &rec);
        if (HEAP_UNLIKELY(journal_append(d->journal, &rec) != 0))
            d->journal_dropped_total++; /* both buffers out: the disk is not keeping up */
        else
            d->journal_records_total++;
    }
    /* One encoding for both when their formats agree: the sink's, in its
     * ring, which pub/sub copies into its frames. */
    const char *text = NULL;
    size_t n = 0;
    if (d->nats != NULL) {
        n = nats_sink_tick(d->nats, t, &text);
        if (d->cfg.nats.payload != d->cfg.pubsub.payload)
            text = NULL;
    }
    if (d->pubsub != NULL)
        pubsub_tick_text(d->pubsub, t, n > 0 ? text : NULL, n);
}

/* The nats feeds' durable_mark hook: the journal position of the ticks made
 * so far (0 without a journal: nothing to wait for). */
static uint64_t durable_mark(void *arg)
{
    daemon_t *d = arg;
    return d->journal != NULL ? d->journal_records_total : 0;
}

/* The feeds' batch_done hook, at the end of a batch of input: flush the
 * subscribers and hand the journal its records. */
static void batch_done(void *arg)
{
    daemon_t *d = arg;
    if (d->pubsub != NULL)
        pubsub_flush(d->pubsub);
    journal_kick(ctx_of(d));
}

/* PUBLISH trade.AAPL "T,<ts>,AAPL,101.25,100,B": the CSV line is the tick;
 * the channel must name its kind and symbol. */
static int on_publish(void *arg, const char *channel, size_t chlen, const char *payload, size_t len,
                      int64_t now, const char **reason, uint64_t *durable_at)
{
    daemon_t *d = arg;
    struct csv_tick t;
    int r = csv_parse_line(payload, len, &t, reason);
    if (r <= 0) {
        if (r == 0)
            *reason = "empty or a comment";
        return -EBADMSG; /* pubsub's reply says what a tick line is and quotes the payload */
    }
    const char *prefix = t.kind == CSV_TRADE ? "trade." : "quote.";
    size_t plen = strlen(prefix), slen = strlen(t.symbol);
    if (chlen != plen + slen || memcmp(channel, prefix, plen) != 0 ||
        memcmp(channel + plen, t.symbol, slen) != 0) {
        *reason = "the channel must be trade.<SYMBOL> or quote.<SYMBOL> of the tick";
        return -EINVAL;
    }
    /* A tick the journal cannot take is not run at all: never acknowledged,
     * never fanned out. Full buffers are a wait (pubsub stops reading the
     * publisher until pubsub_journal_ready(), at most 10 s); a journal that
     * is not open, with fsync always, an error at once. */
    if (d->journal != NULL && !journal_can_append(d->journal)) {
        *reason = "journal: buffers full for 10 s (the disk is not keeping up; the tick was not "
                  "published); the tick was not made durable";
        return -EAGAIN;
    }
    if (d->journal == NULL && d->cfg.journal.enabled &&
        d->cfg.journal.fsync == JOURNAL_FSYNC_ALWAYS) {
        *reason = "journal: not open, see tickd's log (the tick was not published); the tick was "
                  "not made durable";
        d->journal_refused_total++;
        return -ENODEV;
    }
    r = market_published_symbol(d->market, t.symbol, slen, d->cfg.pubsub.max_publish_symbols);
    if (r == -ENOSPC) {
        *reason = "symbol limit reached: this day's PUBLISHes made pubsub.max_publish_symbols "
                  "new symbols already";
        return r; /* pubsub counts it */
    }
    uint64_t before = d->journal_records_total;
    if (r == 0 && t.kind == CSV_TRADE)
        r = market_trade(d->market, t.symbol, slen, t.trade.price, t.trade.size, t.trade.side, 0,
                         (int64_t)t.ts_ns, now);
    else if (r == 0)
        r = market_quote(d->market, t.symbol, slen, t.quote.bid, t.quote.bid_size, t.quote.ask,
                         t.quote.ask_size, 0, (int64_t)t.ts_ns, now);
    if (r != 0) {
        *reason = "the tick was refused";
        return r;
    }
    if (d->journal != NULL && d->journal_records_total == before) {
        *reason = "journal: the record could not be buffered (a write failed); the tick was not "
                  "made durable";
        d->journal_refused_total++;
        return -EIO; /* published, but not journaled */
    }
    if (d->journal != NULL && journal_policy(d->journal) == JOURNAL_FSYNC_ALWAYS)
        *durable_at = d->journal_records_total; /* acknowledged once synced */
    /* The subscribers are flushed once the whole read is processed (pubsub
     * does it); the journal takes what it has now, or when its batch out
     * returns: PUBLISHes that arrive meanwhile share the next write. */
    journal_kick(ctx_of(d));
    return 0;
}

/* INFO's figures from the daemon (pubsub.h). */
static void info_source(void *arg, pubsub_info_t *out)
{
    const daemon_t *d = arg;
    out->version = TICKD_VERSION;
    out->start_time_ns = d->start_time_ns;
    out->trades_total = d->ticks_total[0];
    out->quotes_total = d->ticks_total[1];
}

/* ---- the day ---- */

/* Starts a new trading day (session.roll_at): a new market (symbols, books),
 * a new journal file, and a full collection that reclaims yesterday's
 * objects. Nothing else rolls the day: a looping replay at the end of its
 * file starts again within it (feeds.c). */
static void daemon_roll_day(daemon_t *d, const char *why)
{
    daemon_ctx_t *c = ctx_of(d);
    market_t *fresh;
    c->day_start_ns = day_start(time(NULL));
    if (market_create(d->heap, c->day_start_ns, on_tick, d, &fresh) != 0) {
        log_msg(LOG_ERR, "new day (%s): out of memory; keeping the current one", why);
        return;
    }
    market_t *old = d->market;
    d->market = fresh;
    for (size_t i = 0; i < d->nfeeds; i++)
        feed_set_market(d->feeds[i], fresh);
    if (d->pubsub != NULL)
        pubsub_set_market(d->pubsub, fresh);
    market_destroy(old);
    int64_t collected = gc_collect(d->heap, GC_NGENERATIONS - 1);
    d->sessions_rolled++;
    if (d->journal != NULL)
        journal_reopen(c);
    log_msg(LOG_INFO, "new trading day (%s): %lld objects of the last one collected", why,
            (long long)collected);
}

static void on_roll_timer(uv_timer_t *t);

/* The end-of-day timer fires at the next session.roll_at. */
static void arm_roll_timer(daemon_ctx_t *c)
{
    time_t now = time(NULL);
    time_t at = next_roll(now, c->d.cfg.session.roll_minute);
    uv_timer_start(&c->roll_timer, on_roll_timer, (uint64_t)(at - now) * 1000, 0);
}

static void on_roll_timer(uv_timer_t *t)
{
    daemon_ctx_t *c = t->data;
    daemon_roll_day(&c->d, "session.roll_at");
    arm_roll_timer(c);
}

/* ---- periodic work ---- */

static void on_gc_timer(uv_timer_t *t)
{
    daemon_ctx_t *c = t->data;
    int gen = gc_should_collect(c->d.heap);
    if (gen >= 0)
        gc_collect(c->d.heap, gen);
    heap_trim(c->d.heap); /* idle pools back to their arenas, empty arenas to the OS */
}

static void on_lag_timer(uv_timer_t *t)
{
    daemon_ctx_t *c = t->data;
    uint64_t now = uv_hrtime();
    if (c->lag_last != 0) {
        double late = (double)(now - c->lag_last) / 1e9 - LOOP_LAG_PERIOD_MS / 1e3;
        histogram_observe(&c->d.loop_lag, late > 0 ? late : 0);
    }
    c->lag_last = now;
}

static void on_watchdog_timer(uv_timer_t *t)
{
    (void)t;
    notify_watchdog();
}

static void on_status_timer(uv_timer_t *t)
{
    daemon_ctx_t *c = t->data;
    daemon_t *d = &c->d;
    uint64_t ticks = d->ticks_total[0] + d->ticks_total[1];
    pubsub_stats_t ps = {0};
    if (d->pubsub != NULL)
        pubsub_get_stats(d->pubsub, &ps);
    notify_status("%llu ticks/s, %llu subscribers%s%s",
                  (unsigned long long)(ticks - c->status_ticks), (unsigned long long)ps.clients,
                  d->last_reload_ok ? "" : "; reload failed: ",
                  d->last_reload_ok ? "" : d->last_reload_error);
    c->status_ticks = ticks;
}

static void start_timers(daemon_ctx_t *c)
{
    daemon_t *d = &c->d;
    uint64_t gc_ms = d->cfg.gc.interval_ns / 1000000;
    uv_timer_start(&c->gc_timer, on_gc_timer, gc_ms ? gc_ms : 1, gc_ms ? gc_ms : 1);
    uv_timer_stop(&c->fsync_timer);
    if (d->journal != NULL && d->cfg.journal.fsync == JOURNAL_FSYNC_INTERVAL) {
        uint64_t ms = d->cfg.journal.fsync_interval_ns / 1000000;
        uv_timer_start(&c->fsync_timer, on_fsync_timer, ms ? ms : 1, ms ? ms : 1);
    }
    arm_roll_timer(c);
}

/* ---- feeds ---- */

static void log_feed_started(const config_feed_t *fc)
{
    if (fc->kind == FEED_NATS) {
        log_msg(LOG_INFO, "feed %s: subscribing (nats) to %s%s%s%s%s", fc->name, fc->subject,
                fc->stream[0] != '\0' ? " in stream " : "", fc->stream,
                fc->stream[0] != '\0' ? ", durable consumer " : "", fc->durable);
        return;
    }
    log_msg(LOG_INFO, "feed %s: %s %s %s", fc->name,
            fc->kind == FEED_FILE  ? "replaying"
            : fc->kind == FEED_TCP ? "listening (tcp) on"
                                   : "receiving (udp) on",
            fc->kind == FEED_FILE ? fc->path : fc->listen, ingest_format_name(fc->format));
}

/* feed_start() on the daemon's loop and market, with the daemon's hooks and
 * the NATS connection settings nats. */
static int open_feed(daemon_t *d, const config_feed_t *fc, const config_nats_t *nats, feed_t **out,
                     char *err, size_t errlen)
{
    feed_hooks_t hooks = {.batch_done = batch_done,
                          .input_error = on_input_error,
                          .durable_mark = durable_mark,
                          .arg = d};
    return feed_start(d->loop, d->market, fc, nats, &hooks, out, err, errlen);
}

static int start_feed(daemon_t *d, const config_feed_t *fc)
{
    char err[CONFIG_ERR_LEN];
    feed_t *f;
    int r = open_feed(d, fc, &d->cfg.nats, &f, err, sizeof(err));
    if (r != 0) {
        log_msg(LOG_ERR, "%s", err);
        return r;
    }
    d->feeds[d->nfeeds++] = f;
    log_feed_started(fc);
    return 0;
}

static const config_feed_t *find_feed(const config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nfeeds; i++)
        if (strcmp(cfg->feeds[i].name, name) == 0)
            return &cfg->feeds[i];
    return NULL;
}

/* ---- the NATS sink ---- */

/* Starts the sink cfg asks for (nats.servers with nats.publish), if any. A
 * server that is not there is no failure: the sink connects when it comes.
 * 0, or -errno (logged). */
static int nats_start(daemon_t *d, const config_nats_t *cfg)
{
    char err[CONFIG_ERR_LEN];
    if (cfg->nservers == 0 || !cfg->publish)
        return 0;
    int r = nats_sink_start(d->loop, cfg, &d->nats, err, sizeof(err));
    if (r != 0) {
        log_msg(LOG_ERR, "%s", err);
        return r;
    }
    log_msg(LOG_INFO, "nats sink: publishing every tick to %s.trade.* and %s.quote.* on %s%s%s%s",
            cfg->prefix, cfg->prefix, cfg->servers[0], cfg->nservers > 1 ? " (and more)" : "",
            cfg->jetstream.stream[0] != '\0' ? ", JetStream stream " : "", cfg->jetstream.stream);
    return 0;
}

/* Stops sink s; its counters live on in d->nats_gone, so that /metrics
 * counts across a reload. */
static void nats_retire(daemon_t *d, nats_sink_t *s)
{
    nats_sink_stats_t st;
    nats_sink_get_stats(s, &st);
    d->nats_gone.published_total += st.published_total;
    d->nats_gone.dropped_total += st.dropped_total;
    d->nats_gone.reconnects_total += st.reconnects_total;
    d->nats_gone.js_acks_total += st.js_acks_total;
    d->nats_gone.js_ack_failures_total += st.js_ack_failures_total;
    nats_sink_stop(s);
}

static void nats_stop(daemon_t *d)
{
    if (d->nats == NULL)
        return;
    nats_retire(d, d->nats);
    d->nats = NULL;
}

/* ---- reload ---- */

/* What a reload could not apply: the first failure in full, and how many. */
typedef struct reload_outcome {
    char error[CONFIG_ERR_LEN];
    unsigned failures;
} reload_outcome_t;

static void reload_failed(reload_outcome_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reload_failed(reload_outcome_t *o, const char *fmt, ...)
{
    char why[CONFIG_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_msg(LOG_ERR, "reload: %s", why);
    if (o->failures++ == 0)
        memcpy(o->error, why, sizeof(why));
}

/* A changed feed: the new one starts before the old stops, so the old runs on
 * when the new cannot start. An address the old one holds (the same TCP
 * port, or one that overlaps it) makes the old let go first; it is started
 * again, as it was, if the new one still cannot start. *out is the feed that
 * now runs (the new, the old, or NULL when not even the old came back). */
static int replace_feed(daemon_t *d, feed_t *old, const config_feed_t *want,
                        const config_nats_t *nats, feed_t **out, char *err, size_t errlen)
{
    config_feed_t was = *feed_config(old);
    int r = open_feed(d, want, nats, out, err, errlen);
    if (r == 0) {
        feed_stop(old);
        return 0;
    }
    *out = old;
    if (r != UV_EADDRINUSE || was.kind == FEED_FILE)
        return r;
    feed_stop(old);
    r = open_feed(d, want, nats, out, err, errlen);
    if (r == 0)
        return 0;
    char again[CONFIG_ERR_LEN];
    if (open_feed(d, &was, &d->cfg.nats, out, again, sizeof(again)) != 0) {
        *out = NULL;
        size_t len = strlen(err);
        snprintf(err + len, errlen - len, "; the old feed could not start again either: %.200s",
                 again);
    }
    return r;
}

/* Feeds, each all or nothing: the removed stop first (their addresses are
 * free for the others), a new one starts, a changed one is replaced
 * (replace_feed()), an unchanged one stays (a new staleness limit applies in
 * place; a nats feed is changed when the nats section is). fresh is left
 * naming the feeds that run. */
static void reload_feeds(daemon_t *d, config_t *fresh, reload_outcome_t *o)
{
    char err[CONFIG_ERR_LEN];
    int nats_changed = memcmp(&fresh->nats, &d->cfg.nats, sizeof(fresh->nats)) != 0;
    size_t kept = 0;
    for (size_t i = 0; i < d->nfeeds; i++) {
        if (find_feed(fresh, feed_name(d->feeds[i])) != NULL) {
            d->feeds[kept++] = d->feeds[i];
            continue;
        }
        log_msg(LOG_INFO, "reload: feed %s removed", feed_name(d->feeds[i]));
        feed_stop(d->feeds[i]);
    }
    d->nfeeds = kept;

    feed_t *running[CONFIG_MAX_FEEDS];
    size_t n = 0;
    for (size_t i = 0; i < fresh->nfeeds; i++) {
        const config_feed_t *want = &fresh->feeds[i];
        feed_t *old = NULL, *f = NULL;
        for (size_t j = 0; j < d->nfeeds && old == NULL; j++)
            if (strcmp(feed_name(d->feeds[j]), want->name) == 0)
                old = d->feeds[j];
        if (old != NULL) {
            config_feed_t same = *want; /* both zero-filled before parsing, padding included */
            same.stale_after_ns = feed_config(old)->stale_after_ns;
            if (memcmp(&same, feed_config(old), sizeof(same)) == 0 &&
                !(want->kind == FEED_NATS && nats_changed)) {
                feed_set_stale_after(old, want->stale_after_ns);
                running[n++] = old;
                continue;
            }
            if (replace_feed(d, old, want, &fresh->nats, &f, err, sizeof(err)) == 0) {
                log_msg(LOG_INFO, "reload: feed %s changed", want->name);
                log_feed_started(want);
            } else {
                reload_failed(o, "%s (feed %s: %s)", err, want->name,
                              f != NULL ? "the running one is kept" : "stopped");
            }
        } else if (open_feed(d, want, &fresh->nats, &f, err, sizeof(err)) == 0) {
            log_feed_started(want);
        } else {
            reload_failed(o, "%s (feed %s not added)", err, want->name);
        }
        if (f != NULL)
            running[n++] = f;
    }
    memcpy(d->feeds, running, n * sizeof(running[0]));
    d->nfeeds = n;
    fresh->nfeeds = n;
    for (size_t i = 0; i < n; i++)
        fresh->feeds[i] = *feed_config(running[i]);
}

/* Can the journal fresh asks for be had? Its directory's lock (when it is not
 * the one held) and today's file in it are taken and let go again, before
 * anything is changed: the switch itself (journal_reopen()) waits for a batch
 * out, and must not be the first to find out. 0, or -errno with why in err. */
static int reload_journal_check(daemon_ctx_t *c, const config_t *fresh, char *err, size_t errlen)
{
    const char *dir = fresh->journal.dir;
    int held = c->dir_lock >= 0 && strcmp(c->locked_dir, dir) == 0;
    if (!fresh->journal.enabled || (held && c->d.journal != NULL))
        return 0; /* nothing to open, or today's file is open already */
    int lock = -1, r = 0;
    if (!held && (r = journal_lock_dir(dir, &lock, err, errlen)) != 0)
        return r;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char name[64], path[sizeof(fresh->journal.dir) + 64];
    journal_filename(name, sizeof(name), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
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

/* The reload's outcome, for /healthz, the metrics, the log and systemd. */
static void reload_done(daemon_ctx_t *c, const reload_outcome_t *o)
{
    daemon_t *d = &c->d;
    d->last_reload_ns = clock_realtime_ns();
    d->last_reload_ok = o->failures == 0;
    if (o->failures == 0) {
        d->reloads_total++;
        log_msg(LOG_INFO, "reload: configuration %s applied", d->cfg.path);
        notify_status("reloaded %s", d->cfg.path);
    } else {
        d->reload_failures_total++;
        if (o->failures > 1)
            snprintf(d->last_reload_error, sizeof(d->last_reload_error),
                     "%s (and %u more failures: see the log)", o->error, o->failures - 1);
        else
            memcpy(d->last_reload_error, o->error, sizeof(o->error));
        log_msg(LOG_ERR, "reload: %s not applied in full: %s", d->cfg.path, d->last_reload_error);
        notify_status("reload failed: %s", d->last_reload_error);
    }
    notify_ready();
}

/* SIGHUP. Each part of the configuration (pub/sub, HTTP, each feed, the
 * journal) changes all or nothing: the new is started before the old is let
 * go, and a part that cannot change keeps running as it was, while the
 * others change. A file that does not load changes nothing. Every failure is
 * logged and counted, and shown by /healthz and the systemd status. */
static void reload(daemon_ctx_t *c)
{
    daemon_t *d = &c->d;
    static config_t fresh; /* large; one reload at a time on the one loop */
    char err[CONFIG_ERR_LEN];
    reload_outcome_t out = {.failures = 0};
    notify_reloading();
    if (config_load(d->cfg.path, &fresh, err, sizeof(err)) != 0 ||
        config_check_files(&fresh, err, sizeof(err)) != 0) {
        reload_failed(&out, "%s; keeping the running configuration", err);
        reload_done(c, &out);
        return;
    }
    if (fresh.heap.arena_size != d->cfg.heap.arena_size ||
        fresh.heap.pool_size != d->cfg.heap.pool_size || fresh.heap.debug != d->cfg.heap.debug)
        log_msg(LOG_WARNING, "reload: heap.* changes take effect at the next start");
    log_set_level(fresh.log.level);
    gc_set_thresholds(d->heap, fresh.gc.thresholds[0], fresh.gc.thresholds[1],
                      fresh.gc.thresholds[2]);
    if (pubsub_reconfigure(d->pubsub, &fresh, err, sizeof(err)) != 0) {
        reload_failed(&out, "%s (pub/sub keeps %s and its settings)", err, d->cfg.pubsub.listen);
        fresh.pubsub = d->cfg.pubsub;
    }
    if (http_reconfigure(d->http, &fresh, err, sizeof(err)) != 0) {
        reload_failed(&out, "%s (HTTP keeps %s and its settings)", err, d->cfg.http.listen);
        http_reconfigure(d->http, &d->cfg, err, sizeof(err)); /* the old limits back */
        fresh.http = d->cfg.http;
    }
    reload_feeds(d, &fresh, &out);
    if (memcmp(&fresh.nats, &d->cfg.nats, sizeof(fresh.nats)) != 0) {
        /* A new connection with the new settings; the old sink publishes
         * what it holds and goes. */
        nats_sink_t *old = d->nats;
        d->nats = NULL;
        if (nats_start(d, &fresh.nats) != 0) {
            reload_failed(&out, "nats: the sink could not start with the new settings (the old "
                                "one is kept)");
            d->nats = old;
            fresh.nats = d->cfg.nats;
        } else if (old != NULL) {
            nats_retire(d, old);
        }
    }

    int journal_changed = fresh.journal.enabled != d->cfg.journal.enabled ||
                          strcmp(fresh.journal.dir, d->cfg.journal.dir) != 0 ||
                          fresh.journal.fsync != d->cfg.journal.fsync;
    if (journal_changed && reload_journal_check(c, &fresh, err, sizeof(err)) != 0) {
        reload_failed(&out, "journal: %s (the journal stays %s%s)", err,
                      d->journal != NULL ? "in " : "off",
                      d->journal != NULL ? d->cfg.journal.dir : "");
        fresh.journal = d->cfg.journal;
        journal_changed = 0;
    }
    d->cfg = fresh;
    apply_timezone(&d->cfg);
    if (journal_changed) {
        journal_reopen(c);
        if (d->cfg.journal.enabled && d->journal == NULL && !c->reopen_journal)
            reload_failed(&out, "journal: %s could not be opened (see the log): journaling is off",
                          d->cfg.journal.dir);
    }
    start_timers(c);
    reload_done(c, &out);
}

/* ---- signals ---- */

/* SIGUSR1: one line on how the daemon is doing, for an operator who asks. */
static void log_status(daemon_ctx_t *c)
{
    daemon_t *d = &c->d;
    pubsub_stats_t ps = {0};
    if (d->pubsub != NULL)
        pubsub_get_stats(d->pubsub, &ps);
    size_t up = 0;
    for (size_t i = 0; i < d->nfeeds; i++) {
        feed_stats_t fs;
        feed_get_stats(d->feeds[i], &fs);
        up += fs.up != 0;
    }
    heap_stats_t hs;
    heap_get_stats(d->heap, &hs);
    log_msg(LOG_INFO,
            "status: up %llds, %llu trades, %llu quotes, %llu subscribers, %zu of %zu feeds up, "
            "%zu bytes in use of %zu mapped, journal %s, last reload %s",
            (long long)((clock_realtime_ns() - d->start_time_ns) / 1000000000),
            (unsigned long long)d->ticks_total[0], (unsigned long long)d->ticks_total[1],
            (unsigned long long)ps.clients, up, d->nfeeds, hs.used_bytes, hs.mapped_bytes,
            d->journal != NULL ? d->cfg.journal.dir : "off",
            d->last_reload_ns == 0 ? "none"
            : d->last_reload_ok    ? "ok"
                                   : "failed");
}

/* ---- shutdown ---- */

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void http_stopped(void *arg)
{
    daemon_ctx_t *c = arg;
    daemon_t *d = &c->d;
    journal_close_now(d);
    journal_unlock(c);
    uv_walk(d->loop, close_walk, NULL);
}

static void pubsub_stopped(void *arg)
{
    daemon_ctx_t *c = arg;
    if (c->d.http == NULL) /* a start-up that failed before HTTP listened */
        http_stopped(c);
    else
        http_stop(c->d.http, http_stopped, c);
}

static void stop(daemon_ctx_t *c, const char *why)
{
    daemon_t *d = &c->d;
    if (d->stopping)
        return;
    d->stopping = 1;
    if (c->exit_code != 0)
        log_msg(LOG_ERR, "%s: exiting with code %d", why, c->exit_code);
    else
        log_msg(LOG_INFO, "%s: stopping (draining subscribers for at most %llu s)", why,
                (unsigned long long)(TICKD_DRAIN_NS / 1000000000));
    notify_stopping();
    for (size_t i = 0; i < d->nfeeds; i++)
        feed_stop(d->feeds[i]);
    d->nfeeds = 0;
    nats_stop(d);
    uv_timer_stop(&c->gc_timer);
    uv_timer_stop(&c->fsync_timer);
    uv_timer_stop(&c->roll_timer);
    uv_timer_stop(&c->watchdog_timer);
    uv_timer_stop(&c->status_timer);
    uv_timer_stop(&c->lag_timer);
    stop_drain(c);
}

static const char *signal_name(int signum)
{
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
        if (signal_names[i].signum == signum)
            return signal_names[i].name;
    return "a signal";
}

static void on_signal(uv_signal_t *s, int signum)
{
    daemon_ctx_t *c = s->data;
    switch (signum) {
    case SIGTERM:
    case SIGINT:
        stop(c, signal_name(signum));
        break;
    case SIGHUP:
        if (c->d.stopping)
            log_msg(LOG_NOTICE, "SIGHUP: ignored, tickd is stopping");
        else
            reload(c);
        break;
    case SIGUSR1:
        log_status(c);
        break;
    default:
        log_msg(LOG_NOTICE,
                "%s: ignored (SIGHUP reloads, SIGUSR1 logs a status line, SIGTERM stops)",
                signal_name(signum));
        break;
    }
}

/* Until the loop's handlers are installed (and after they are closed, when
 * libuv puts the default back), the signals that would end the daemon on
 * the spot are ignored; SIGTERM and SIGINT keep their default then. */
static void ignore_signals(void)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit is a journal write error, not death */
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
        if (signal_names[i].signum != SIGTERM && signal_names[i].signum != SIGINT)
            signal(signal_names[i].signum, SIG_IGN);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        signal(sig, SIG_IGN);
}

/* ---- HTTP routes ---- */

/* /metrics: the daemon and its modules as a snapshot (nothing allocated),
 * rendered by metrics.c. */
static int route_metrics(void *arg, http_body_t *body)
{
    const daemon_t *d = arg;
    metrics_feed_t feeds[CONFIG_MAX_FEEDS];
    size_t n = d->nfeeds < CONFIG_MAX_FEEDS ? d->nfeeds : CONFIG_MAX_FEEDS;
    for (size_t i = 0; i < n; i++) {
        health_feed_t h;
        feed_get_health(d->feeds[i], &h);
        feeds[i] = (metrics_feed_t){.name = feed_name(d->feeds[i]),
                                    .connected = h.connected,
                                    .last_message_ns = h.last_message_ns};
        feed_get_stats(d->feeds[i], &feeds[i].stats);
    }
    metrics_snapshot_t s = {
        .heap = d->heap,
        .feeds = feeds,
        .nfeeds = n,
        .ticks_total = {d->ticks_total[0], d->ticks_total[1]},
        .loop_lag = &d->loop_lag,
        .journal_fsync = &d->journal_fsync,
        .journal_records_total = d->journal_records_total,
        .journal_written_total = d->journal_written_total,
        .journal_durable_total = d->journal_durable_total,
        .journal_dropped_total = d->journal_dropped_total,
        .journal_errors_total = d->journal_errors_total,
        .journal_refused_total = d->journal_refused_total,
        .sessions_rolled = d->sessions_rolled,
        .reloads_total = d->reloads_total,
        .reload_failures_total = d->reload_failures_total,
        .last_reload_ok = d->last_reload_ok,
        .start_time_ns = d->start_time_ns,
        .version = TICKD_VERSION,
    };
    if (d->pubsub != NULL) {
        pubsub_get_stats(d->pubsub, &s.pubsub);
        s.tick_latency = pubsub_latency(d->pubsub);
    }
    if (d->nats != NULL) {
        const nats_sink_stats_t *g = &d->nats_gone;
        s.has_nats = 1;
        nats_sink_get_stats(d->nats, &s.nats);
        s.nats.published_total += g->published_total;
        s.nats.dropped_total += g->dropped_total;
        s.nats.reconnects_total += g->reconnects_total;
        s.nats.js_acks_total += g->js_acks_total;
        s.nats.js_ack_failures_total += g->js_ack_failures_total;
    }
    if (d->market != NULL) {
        const market_stats_t *m = market_stats(d->market);
        s.has_market = 1;
        s.market_symbols = m->symbols;
        s.market_published_symbols = m->published_symbols;
    }
    return metrics_render(&s, body);
}

static int route_mallocstats(void *arg, http_body_t *body)
{
    daemon_t *d = arg;
    size_t need = heap_format_stats(d->heap, NULL, 0);
    int err = http_body_reserve(body, need + 1);
    if (err != 0)
        return err;
    body->len += heap_format_stats(d->heap, body->data + body->len, need + 1);
    return 0;
}

static int route_healthy(void *arg, int json, http_body_t *body)
{
    daemon_t *d = arg;
    health_feed_t feeds[CONFIG_MAX_FEEDS + 1];
    size_t n = d->nfeeds < CONFIG_MAX_FEEDS ? d->nfeeds : CONFIG_MAX_FEEDS;
    for (size_t i = 0; i < n; i++)
        feed_get_health(d->feeds[i], &feeds[i]);
    if (d->nats != NULL) { /* the sink, judged as a feed that is up while connected */
        nats_sink_stats_t ns;
        nats_sink_get_stats(d->nats, &ns);
        feeds[n++] = (health_feed_t){.name = "nats",
                                     .type = "nats-sink",
                                     .up = ns.connected,
                                     .connected = ns.connected,
                                     .error = ns.connected ? NULL : nats_sink_error(d->nats),
                                     .quiet_since_ns = d->start_time_ns};
    }
    health_reload_t reload = {d->last_reload_ok, d->last_reload_error, d->last_reload_ns};
    return health_render(feeds, n, d->last_reload_ns != 0 ? &reload : NULL, d->stopping,
                         clock_realtime_ns(), json, body);
}

/* ---- start ---- */

/* The exit code of a listener or feed that could not start: 69 for an
 * address or a source that cannot be had, 66 for a file that cannot be
 * read, 1 when memory ran out. */
static int start_failure_code(int err, int is_file)
{
    if (err == -ENOMEM)
        return EX_FAILURE_CODE;
    return is_file ? EX_NOINPUT_CODE : EX_UNAVAILABLE_CODE;
}

/* The timers and signal handles, ready to be started or stopped: done first,
 * so that a start-up failing at any later step can stop() as a running
 * daemon does. */
static void init_handles(daemon_ctx_t *c)
{
    daemon_t *d = &c->d;
    uv_timer_t *timers[] = {&c->gc_timer,       &c->fsync_timer,  &c->roll_timer,
                            &c->watchdog_timer, &c->status_timer, &c->lag_timer};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        uv_timer_init(d->loop, timers[i]);
        timers[i]->data = c;
    }
    for (size_t i = 0; i < sizeof(c->signals) / sizeof(c->signals[0]); i++) {
        uv_signal_init(d->loop, &c->signals[i]);
        c->signals[i].data = c;
    }
}

/* Builds the daemon: 0, or the exit code of the step that failed (logged).
 * What was built before it is torn down by stop(), as at any shutdown. */
static int start(daemon_ctx_t *c)
{
    daemon_t *d = &c->d;
    char err[CONFIG_ERR_LEN];
    heap_options_t ho;
    heap_options_init(&ho);
    ho.arena_size = d->cfg.heap.arena_size;
    ho.pool_size = d->cfg.heap.pool_size;
    ho.debug = d->cfg.heap.debug ? HEAP_DEBUG_ON : HEAP_DEBUG_FROM_ENV;
    init_handles(c);
    int r = heap_create(&ho, &d->heap);
    if (r == 0)
        r = obj_runtime_create(d->heap);
    if (r != 0) {
        log_msg(LOG_ERR, "heap: %s", strerror(-r));
        return EX_FAILURE_CODE;
    }
    gc_set_thresholds(d->heap, d->cfg.gc.thresholds[0], d->cfg.gc.thresholds[1],
                      d->cfg.gc.thresholds[2]);
    apply_timezone(&d->cfg);
    c->day_start_ns = day_start(time(NULL));
    if ((r = market_create(d->heap, c->day_start_ns, on_tick, d, &d->market)) != 0) {
        log_msg(LOG_ERR, "market: %s", strerror(-r));
        return EX_FAILURE_CODE;
    }
    if (d->cfg.journal.enabled && (r = journal_open_today(d)) != 0)
        return r == -EBUSY ? EX_HELD_CODE : EX_CANTCREAT_CODE;
    if ((r = pubsub_start(d->loop, d->heap, d->market, &d->cfg, on_publish, d, &d->pubsub, err,
                          sizeof(err))) != 0) {
        log_msg(LOG_ERR, "%s", err);
        return start_failure_code(r, 0);
    }
    pubsub_set_info_source(d->pubsub, info_source, d);
    if ((r = nats_start(d, &d->cfg.nats)) != 0)
        return EX_FAILURE_CODE;
    http_routes_t routes = {route_metrics, route_mallocstats, route_healthy, d};
    if ((r = http_start(d->loop, &d->cfg, &routes, &d->http, err, sizeof(err))) != 0) {
        log_msg(LOG_ERR, "%s", err);
        return start_failure_code(r, 0);
    }
    for (size_t i = 0; i < d->cfg.nfeeds; i++)
        if ((r = start_feed(d, &d->cfg.feeds[i])) != 0)
            return start_failure_code(r, d->cfg.feeds[i].kind == FEED_FILE);

    start_timers(c);
    uv_timer_start(&c->lag_timer, on_lag_timer, LOOP_LAG_PERIOD_MS, LOOP_LAG_PERIOD_MS);
    uint64_t wd = notify_watchdog_usec();
    if (wd > 0)
        uv_timer_start(&c->watchdog_timer, on_watchdog_timer, wd / 2000, wd / 2000);
    if (notify_enabled())
        uv_timer_start(&c->status_timer, on_status_timer, 1000, 1000);

    for (size_t i = 0; i < sizeof(c->signals) / sizeof(c->signals[0]); i++)
        uv_signal_start(&c->signals[i], on_signal, signal_names[i].signum);
    log_msg(LOG_INFO, "tickd %s ready: pub/sub on %s, http on %s, %zu feed(s)", TICKD_VERSION,
            d->cfg.pubsub.listen, d->cfg.http.listen, d->nfeeds);
    notify_ready();
    return 0;
}

int daemon_run(const char *config_path)
{
    static daemon_ctx_t c; /* one daemon per process; static keeps the big config off the stack */
    daemon_t *d = &c.d;
    char err[CONFIG_ERR_LEN];
    if (config_load(config_path, &d->cfg, err, sizeof(err)) != 0 ||
        config_check_files(&d->cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tickd: %s\n", err);
        return EX_CONFIG_CODE;
    }
    log_init(d->cfg.log.level);
    ignore_signals();
    uv_loop_init(&c.loop);
    d->loop = &c.loop;
    d->start_time_ns = clock_realtime_ns();
    d->last_reload_ok = 1; /* the configuration started with applied in full */
    histogram_init(&d->loop_lag, histogram_latency_bounds, histogram_latency_nbounds);
    histogram_init(&d->journal_fsync, histogram_latency_bounds, histogram_latency_nbounds);

    c.dir_lock = -1;
    c.exit_code = start(&c);
    if (c.exit_code != 0)
        stop(&c, "start-up failed");
    uv_run(d->loop, UV_RUN_DEFAULT);
    if (nats_conn_wait_all(NATS_EXIT_WAIT_MS) != 0)
        log_msg(LOG_WARNING, "nats: the connections did not close within %d ms", NATS_EXIT_WAIT_MS);
    ignore_signals();
    uv_loop_close(d->loop);
    if (d->pubsub != NULL)
        pubsub_free(d->pubsub);
    if (d->http != NULL)
        http_free(d->http);
    market_destroy(d->market);
    obj_runtime_destroy(d->heap);
    heap_destroy(d->heap);
    log_msg(LOG_INFO, "stopped");
    return c.exit_code;
}

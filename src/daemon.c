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
 * How the daemon journals (the directory lock, today's file, the batches on
 * the worker pool, the PUBLISH replies held until their record is durable)
 * is journaling.c's. The daemon hands it the ticks and the moments (the end
 * of a batch, the fsync interval, a new day, a reload, the shutdown) and
 * passes its verdicts on to pub/sub through journaling_hooks_t: held
 * replies decided (pubsub_durable()), room again for PUBLISHes waiting for
 * the journal (pubsub_journal_ready()).
 *
 * With nats.servers (and nats.publish), on_tick() also hands every tick to
 * the NATS sink (nats_sink.h), which copies it into its ring and returns:
 * the loop never waits for NATS. A JetStream message a nats feed applied is
 * acknowledged once the journal batch holding its tick is back written
 * (feed_durable(), like a held PUBLISH reply).
 *
 * Bars (feed/bars.h, bars.intervals): on_tick() hands every trade to the
 * bar builder and every other tick's exchange time to its clock; a closed
 * bar comes back through on_bar() and goes to pub/sub (pubsub_bar(); the
 * NATS sink publishes ticks only). The bars timer (BARS_TIMER_MS) lets the
 * builder close the bars of a feed gone quiet, by its estimate of the
 * exchange clock (not run while a file feed replays slower than real time:
 * the estimate would run ahead of it); the day's roll publishes the open bars and starts the
 * builder afresh (bars_roll()); a looping file feed that starts its file
 * again publishes them and lets its times make bars again (bars_rewind());
 * a reload that changes bars.intervals or bars.grace publishes the open
 * bars and replaces the builder, and with it the last bars; a stop drops
 * the open bars unpublished (their intervals have not closed: a restart
 * that replays the day makes them whole).
 *
 * Timers, all safe points between batches: the cycle sweep (gc.interval:
 * collect when a threshold was crossed, and record the pause), the journal's
 * fsync interval, the end of the day (session.roll_at in session.timezone),
 * the bars timer, the systemd watchdog and status, and a loop-lag probe.
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

#include "src/cli.h"
#include "src/clock.h"
#include "src/daemon.h"
#include "feed/csv.h"
#include "feed/ingest.h"
#include "src/feeds.h"
#include "src/heapview.h"
#include "src/journaling.h"
#include "src/log.h"
#include "src/metrics.h"
#include "src/nats_conn.h"
#include "src/notify.h"
#include "src/tick_format.h"

#define TICKD_DRAIN_NS     (5ull * 1000000000ull)
#define NATS_EXIT_WAIT_MS  5000 /* at exit, for the NATS threads to publish and close */
#define LOOP_LAG_PERIOD_MS 100
#define BARS_TIMER_MS      100 /* how often the bars timer asks the builder */

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
    uv_timer_t gc_timer, fsync_timer, roll_timer, watchdog_timer, status_timer, lag_timer,
        bars_timer;
    uv_signal_t signals[sizeof(signal_names) / sizeof(signal_names[0])];
    uint64_t lag_last;
    int64_t day_start_ns;  /* midnight of the current day, session timezone */
    uint64_t status_ticks; /* ticks at the last status line */
    uint64_t input_errors_logged;
    int64_t input_errors_second;
    int exit_code;
    /* While on_publish() makes its tick: the tick's CSV text, the PUBLISHed
     * line's own bytes (csv_shape_text()), for on_tick() to hand pub/sub
     * in place of formatting it again; NULL otherwise. */
    const char *published;
    size_t published_len;
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

/* ---- the journal's hooks (journaling.h) ---- */

/* Records up to upto are durable (err 0) or lost: the PUBLISH replies held
 * for them go out. */
static void journal_decided(void *arg, uint64_t upto, int err)
{
    daemon_t *d = &((daemon_ctx_t *)arg)->d;
    if (d->pubsub == NULL) /* a start-up that failed before pub/sub listened */
        return;
    pubsub_durable(d->pubsub, upto, err);
    pubsub_flush(d->pubsub);
}

static void journal_ready(void *arg)
{
    daemon_t *d = &((daemon_ctx_t *)arg)->d;
    if (d->pubsub != NULL)
        pubsub_journal_ready(d->pubsub);
}

/* Records up to upto are written: the nats feeds acknowledge the messages
 * whose ticks they hold. */
static void journal_written(void *arg, uint64_t upto)
{
    daemon_t *d = &((daemon_ctx_t *)arg)->d;
    for (size_t i = 0; i < d->nfeeds; i++)
        feed_durable(d->feeds[i], upto);
}

static void pubsub_stopped(void *arg);

/* The shutdown, once the journal has drained (a batch out calls back here
 * when it is back): everything ingested is synced and the held PUBLISH
 * replies have gone out with the rest (errors if the sync failed), so the
 * subscribers drain. Draining stops reading the clients: no PUBLISH comes
 * after this. */
static void stop_drain(void *arg)
{
    daemon_ctx_t *c = arg;
    daemon_t *d = &c->d;
    if (journaling_drain(&d->journal) != 0)
        return;
    /* The drain wrote and synced every tick, and the written hook has
     * acknowledged the nats feeds' messages: those feeds stop now. */
    for (size_t i = 0; i < d->nfeeds; i++)
        feed_stop(d->feeds[i]);
    d->nfeeds = 0;
    if (d->pubsub == NULL) { /* a start-up that failed before pub/sub listened */
        pubsub_stopped(c);
        return;
    }
    pubsub_stop(d->pubsub, TICKD_DRAIN_NS, pubsub_stopped, c);
}

static void on_fsync_timer(uv_timer_t *t)
{
    daemon_ctx_t *c = t->data;
    journaling_sync_soon(&c->d.journal);
}

/* ---- ticks ---- */

/* The builder's sink: a bar closed. */
static void on_bar(void *arg, bar_t *bar)
{
    daemon_t *d = arg;
    if (d->pubsub != NULL)
        pubsub_bar(d->pubsub, bar);
}

static void on_tick(void *arg, tick_t *t)
{
    daemon_t *d = arg;
    d->ticks_total[t->kind == TICK_TRADE ? 0 : 1]++;
    /* Bars first: a trade that closes a bar comes after it on every channel. */
    if (d->bars != NULL) {
        if (t->kind == TICK_TRADE)
            bars_symbol_trade(d->bars, t->sym, t->price, t->size, t->ts_exch, t->ts_recv);
        else
            bars_clock(d->bars, t->ts_exch, t->ts_recv);
    }
    journaling_append(&d->journal, t);
    /* One encoding for both when their formats agree: the sink's, in its
     * ring, which pub/sub copies into its frames. */
    const char *text = NULL;
    size_t n = 0;
    if (d->nats != NULL) {
        n = nats_sink_tick(d->nats, t, &text);
        if (d->cfg.nats.payload != d->cfg.pubsub.payload)
            text = NULL;
    }
    daemon_ctx_t *c = ctx_of(d);
    if (c->published != NULL) { /* the same bytes, already written */
        text = c->published;
        n = c->published_len;
        c->published = NULL;
    }
    if (d->pubsub != NULL)
        pubsub_tick_text(d->pubsub, t, n > 0 ? text : NULL, n);
}

/* The nats feeds' durable_mark hook: the journal position of the ticks made
 * so far (0 without a journal: nothing to wait for). */
static uint64_t durable_mark(void *arg)
{
    daemon_t *d = arg;
    return d->journal.writer != NULL ? d->journal.records_total : 0;
}

/* The feeds' batch_done hook, at the end of a batch of input: flush the
 * subscribers and hand the journal its records. */
static void batch_done(void *arg)
{
    daemon_t *d = arg;
    if (d->pubsub != NULL)
        pubsub_flush(d->pubsub);
    journaling_kick(&d->journal);
}

/* Is channel[0..chlen) prefix (6 bytes) then sym[0..slen), slen 1-8? In
 * loads of fixed size, the symbol's last four overlapping its first. */
static int channel_is(const char *channel, size_t chlen, const char *prefix, const char *sym,
                      size_t slen)
{
    if (chlen != 6 + slen || memcmp(channel, prefix, 6) != 0)
        return 0;
    channel += 6;
    if (slen >= 4)
        return memcmp(channel, sym, 4) == 0 && memcmp(channel + slen - 4, sym + slen - 4, 4) == 0;
    for (size_t i = 0; i < slen; i++)
        if (channel[i] != sym[i])
            return 0;
    return 1;
}

/* PUBLISH trade.AAPL "T,<ts>,AAPL,101.25,100,B": the CSV line is the tick;
 * the channel must name its kind and symbol. */
static int on_publish(void *arg, const char *channel, size_t chlen, const char *payload, size_t len,
                      int64_t now, const char **reason, uint64_t *durable_at)
{
    daemon_t *d = arg;
    daemon_ctx_t *c = ctx_of(d);
    csv_tick_t t;
    csv_shape_t shape;
    int csv_out = d->pubsub != NULL && d->cfg.pubsub.payload == PAYLOAD_CSV;
    int r = csv_out ? csv_parse_line_shape(payload, len, &t, &shape, reason)
                    : csv_parse_line(payload, len, &t, reason);
    if (r <= 0) {
        if (r == 0)
            *reason = "empty or a comment";
        return -EBADMSG; /* pubsub's reply says what a tick line is and quotes the payload */
    }
    size_t slen = csv_symbol_len(&t);
    if (!channel_is(channel, chlen, t.kind == CSV_TRADE ? "trade." : "quote.", t.symbol, slen)) {
        *reason = "the channel must be trade.<SYMBOL> or quote.<SYMBOL> of the tick";
        return -EINVAL;
    }
    if ((r = journaling_admit(&d->journal, reason)) != 0)
        return r;
    symbol_t *sym;
    r = market_published_symbol(d->market, t.symbol, slen, d->cfg.pubsub.max_publish_symbols, &sym);
    if (r == -ENOSPC) {
        *reason = "symbol limit reached: this day's PUBLISHes made pubsub.max_publish_symbols "
                  "new symbols already";
        return r; /* pubsub counts it */
    }
    uint64_t before = d->journal.records_total;
    char text[CSV_FORMAT_MAX];
    if (r == 0 && csv_out && shape.reusable) {
        c->published = csv_shape_text(payload, &shape, text, &c->published_len);
    }
    if (r == 0 && t.kind == CSV_TRADE)
        r = market_symbol_trade(d->market, sym, t.trade.price, t.trade.size, t.trade.side, 0,
                                (int64_t)t.ts_ns, now);
    else if (r == 0)
        r = market_symbol_quote(d->market, sym, t.quote.bid, t.quote.bid_size, t.quote.ask,
                                t.quote.ask_size, 0, (int64_t)t.ts_ns, now);
    c->published = NULL; /* on_tick() took it, or the tick was refused */
    if (r != 0) {
        *reason = "the tick was refused";
        return r;
    }
    return journaling_published(&d->journal, before, reason, durable_at);
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
    if (d->bars != NULL) {
        bars_roll(d->bars, c->day_start_ns);
        if (d->pubsub != NULL)
            pubsub_flush(d->pubsub);
    }
    int64_t collected = gc_collect(d->heap, GC_NGENERATIONS - 1);
    d->sessions_rolled++;
    if (d->journal.writer != NULL)
        journaling_reopen(&d->journal);
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

/* ---- bars ---- */

/* A looping file feed starts its file again: the bars of the pass that
 * ended go out, and its times may make bars again (bars_rewind()). */
static void feed_rewound(void *arg)
{
    daemon_t *d = arg;
    if (d->bars == NULL)
        return;
    bars_rewind(d->bars);
    if (d->pubsub != NULL)
        pubsub_flush(d->pubsub);
}

/* A builder for cfg's bars.intervals into *out (NULL for none). 0, or a
 * negative errno, logged. */
static int bars_make(daemon_t *d, const config_t *cfg, bars_t **out)
{
    *out = NULL;
    if (cfg->bars.nintervals == 0)
        return 0;
    int r = bars_create(d->heap, cfg->bars.intervals_ns, cfg->bars.nintervals,
                        (int64_t)cfg->bars.grace_ns, ctx_of(d)->day_start_ns, on_bar, d, out);
    if (r != 0)
        log_msg(LOG_ERR, "bars: %s", strerror(-r));
    return r;
}

/* The timer's estimate runs the exchange clock at real speed: with a file
 * replayed slower than that, it would close bars before their trades come,
 * so such a daemon has no bars timer (its ticks still close the bars). */
static int bars_timer_wanted(const config_t *cfg)
{
    for (size_t i = 0; i < cfg->nfeeds; i++)
        if (cfg->feeds[i].kind == FEED_FILE && cfg->feeds[i].speed > 0 && cfg->feeds[i].speed < 1)
            return 0;
    return 1;
}

static void on_bars_timer(uv_timer_t *t)
{
    daemon_ctx_t *c = t->data;
    daemon_t *d = &c->d;
    uint64_t before = bars_stats(d->bars)->bars;
    bars_idle(d->bars, clock_realtime_ns());
    if (bars_stats(d->bars)->bars != before && d->pubsub != NULL)
        pubsub_flush(d->pubsub);
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
    if (d->journal.writer != NULL && d->cfg.journal.fsync == JOURNAL_FSYNC_INTERVAL) {
        uint64_t ms = d->cfg.journal.fsync_interval_ns / 1000000;
        uv_timer_start(&c->fsync_timer, on_fsync_timer, ms ? ms : 1, ms ? ms : 1);
    }
    arm_roll_timer(c);
    uv_timer_stop(&c->bars_timer);
    if (d->bars != NULL && bars_timer_wanted(&d->cfg))
        uv_timer_start(&c->bars_timer, on_bars_timer, BARS_TIMER_MS, BARS_TIMER_MS);
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
                          .rewound = feed_rewound,
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
/* A reload's bars: a new builder when bars.* changed (the old one's open
 * bars are published first; its last bars go with it). */
static void reload_bars(daemon_t *d, config_t *fresh, reload_outcome_t *o)
{
    if (memcmp(&fresh->bars, &d->cfg.bars, sizeof(fresh->bars)) == 0)
        return;
    bars_t *next;
    if (bars_make(d, fresh, &next) != 0) {
        reload_failed(o, "bars: the builder could not start with the new settings (the old one "
                         "is kept)");
        fresh->bars = d->cfg.bars;
        return;
    }
    if (d->bars != NULL) {
        bars_flush(d->bars);
        if (d->pubsub != NULL)
            pubsub_flush(d->pubsub);
    }
    if (d->pubsub != NULL)
        pubsub_set_bars(d->pubsub, next);
    if (d->bars != NULL) {
        d->bars_gone.bars += bars_stats(d->bars)->bars;
        d->bars_gone.late += bars_stats(d->bars)->late;
    }
    bars_destroy(d->bars);
    d->bars = next;
}

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
    reload_bars(d, &fresh, &out);
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
    if (journal_changed && journaling_check(&d->journal, &fresh, err, sizeof(err)) != 0) {
        reload_failed(&out, "journal: %s (the journal stays %s%s)", err,
                      d->journal.writer != NULL ? "in " : "off",
                      d->journal.writer != NULL ? d->cfg.journal.dir : "");
        fresh.journal = d->cfg.journal;
        journal_changed = 0;
    }
    d->cfg = fresh;
    apply_timezone(&d->cfg);
    if (journal_changed && journaling_reopen(&d->journal) == 0 && d->cfg.journal.enabled &&
        d->journal.writer == NULL)
        reload_failed(&out, "journal: %s could not be opened (see the log): journaling is off",
                      d->cfg.journal.dir);
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
            d->journal.writer != NULL ? d->cfg.journal.dir : "off",
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
    journaling_close(&d->journal);
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
    /* A nats feed's messages are acknowledged once their ticks are in the
     * journal: with one open, such a feed runs until the drain has synced
     * it (stop_drain), so that a restart finds none of them again. */
    size_t kept = 0;
    for (size_t i = 0; i < d->nfeeds; i++) {
        if (d->journal.writer != NULL && feed_config(d->feeds[i])->kind == FEED_NATS)
            d->feeds[kept++] = d->feeds[i];
        else
            feed_stop(d->feeds[i]);
    }
    d->nfeeds = kept;
    nats_stop(d);
    uv_timer_stop(&c->gc_timer);
    uv_timer_stop(&c->fsync_timer);
    uv_timer_stop(&c->roll_timer);
    uv_timer_stop(&c->watchdog_timer);
    uv_timer_stop(&c->status_timer);
    uv_timer_stop(&c->lag_timer);
    uv_timer_stop(&c->bars_timer);
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

/* The daemon and its modules as a snapshot (nothing allocated) for
 * /metrics and /debug/heap.json; feeds holds CONFIG_MAX_FEEDS and must
 * outlive s. */
static void fill_snapshot(const daemon_t *d, metrics_feed_t *feeds, metrics_snapshot_t *out)
{
    size_t n = d->nfeeds < CONFIG_MAX_FEEDS ? d->nfeeds : CONFIG_MAX_FEEDS;
    for (size_t i = 0; i < n; i++) {
        health_feed_t h;
        feed_get_health(d->feeds[i], &h);
        feeds[i] = (metrics_feed_t){.name = feed_name(d->feeds[i]),
                                    .connected = h.connected,
                                    .last_message_ns = h.last_message_ns};
        feed_get_stats(d->feeds[i], &feeds[i].stats);
    }
    *out = (metrics_snapshot_t){
        .heap = d->heap,
        .feeds = feeds,
        .nfeeds = n,
        .ticks_total = {d->ticks_total[0], d->ticks_total[1]},
        .loop_lag = &d->loop_lag,
        .journal_fsync = &d->journal.fsync,
        .journal_records_total = d->journal.records_total,
        .journal_written_total = d->journal.written_total,
        .journal_durable_total = d->journal.durable_total,
        .journal_dropped_total = d->journal.dropped_total,
        .journal_errors_total = d->journal.errors_total,
        .journal_refused_total = d->journal.refused_total,
        .sessions_rolled = d->sessions_rolled,
        .bars_total = d->bars_gone.bars + (d->bars != NULL ? bars_stats(d->bars)->bars : 0),
        .bars_late_trades_total =
            d->bars_gone.late + (d->bars != NULL ? bars_stats(d->bars)->late : 0),
        .reloads_total = d->reloads_total,
        .reload_failures_total = d->reload_failures_total,
        .last_reload_ok = d->last_reload_ok,
        .start_time_ns = d->start_time_ns,
        .version = TICKD_VERSION,
    };
    if (d->pubsub != NULL) {
        pubsub_get_stats(d->pubsub, &out->pubsub);
        out->tick_latency = pubsub_latency(d->pubsub);
    }
    if (d->nats != NULL) {
        const nats_sink_stats_t *g = &d->nats_gone;
        out->has_nats = 1;
        nats_sink_get_stats(d->nats, &out->nats);
        out->nats.published_total += g->published_total;
        out->nats.dropped_total += g->dropped_total;
        out->nats.reconnects_total += g->reconnects_total;
        out->nats.js_acks_total += g->js_acks_total;
        out->nats.js_ack_failures_total += g->js_ack_failures_total;
    }
    if (d->market != NULL) {
        const market_stats_t *m = market_stats(d->market);
        out->has_market = 1;
        out->market_symbols = m->symbols;
        out->market_published_symbols = m->published_symbols;
        out->market_broken_trades = m->broken_trades;
    }
}

/* /metrics, rendered by metrics.c. */
static int route_metrics(void *arg, http_body_t *body)
{
    metrics_feed_t feeds[CONFIG_MAX_FEEDS];
    metrics_snapshot_t s;
    fill_snapshot(arg, feeds, &s);
    return metrics_render(&s, body);
}

/* /debug/heap and /debug/heap.json, rendered by heapview.c. */
static int route_heap_page(void *arg, http_body_t *body)
{
    (void)arg;
    return heapview_render_page(body);
}

static int route_heap_json(void *arg, http_body_t *body)
{
    metrics_feed_t feeds[CONFIG_MAX_FEEDS];
    metrics_snapshot_t s;
    fill_snapshot(arg, feeds, &s);
    return heapview_render_json(&s, clock_realtime_ns() / 1000000, body);
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
        return EXIT_FAILURE;
    return is_file ? EX_NOINPUT : EX_UNAVAILABLE;
}

/* The timers and signal handles, ready to be started or stopped: done first,
 * so that a start-up failing at any later step can stop() as a running
 * daemon does. */
static void init_handles(daemon_ctx_t *c)
{
    daemon_t *d = &c->d;
    uv_timer_t *timers[] = {&c->gc_timer,     &c->fsync_timer, &c->roll_timer, &c->watchdog_timer,
                            &c->status_timer, &c->lag_timer,   &c->bars_timer};
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
        return EXIT_FAILURE;
    }
    gc_set_thresholds(d->heap, d->cfg.gc.thresholds[0], d->cfg.gc.thresholds[1],
                      d->cfg.gc.thresholds[2]);
    apply_timezone(&d->cfg);
    c->day_start_ns = day_start(time(NULL));
    if ((r = market_create(d->heap, c->day_start_ns, on_tick, d, &d->market)) != 0) {
        log_msg(LOG_ERR, "market: %s", strerror(-r));
        return EXIT_FAILURE;
    }
    if (bars_make(d, &d->cfg, &d->bars) != 0)
        return EXIT_FAILURE;
    if (d->cfg.journal.enabled && (r = journaling_open(&d->journal)) != 0)
        return r == -EBUSY ? EX_TEMPFAIL : EX_CANTCREAT;
    if ((r = pubsub_start(d->loop, d->heap, d->market, &d->cfg, on_publish, d, &d->pubsub, err,
                          sizeof(err))) != 0) {
        log_msg(LOG_ERR, "%s", err);
        return start_failure_code(r, 0);
    }
    pubsub_set_info_source(d->pubsub, info_source, d);
    pubsub_set_bars(d->pubsub, d->bars);
    if ((r = nats_start(d, &d->cfg.nats)) != 0)
        return EXIT_FAILURE;
    http_routes_t routes = {
        .metrics = route_metrics,
        .mallocstats = route_mallocstats,
        .health = route_healthy,
        .heap_page = route_heap_page,
        .heap_json = route_heap_json,
        .arg = d,
    };
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
        return EX_CONFIG;
    }
    log_init(d->cfg.log.level);
    ignore_signals();
    uv_loop_init(&c.loop);
    d->loop = &c.loop;
    d->start_time_ns = clock_realtime_ns();
    d->last_reload_ok = 1; /* the configuration started with applied in full */
    histogram_init(&d->loop_lag, histogram_latency_bounds, histogram_latency_nbounds);
    journaling_hooks_t journal_hooks = {.decided = journal_decided,
                                        .written = journal_written,
                                        .ready = journal_ready,
                                        .drained = stop_drain,
                                        .arg = &c};
    journaling_init(&d->journal, d->loop, &d->cfg, &journal_hooks);

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
    bars_destroy(d->bars);
    market_destroy(d->market);
    obj_runtime_destroy(d->heap);
    heap_destroy(d->heap);
    log_msg(LOG_INFO, "stopped");
    return c.exit_code;
}

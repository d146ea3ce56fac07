/*
 * ingest.c - from bytes to ticks, for every input format.
 *
 * Each format has a `next` step that decodes one input into ing->held and
 * says its exchange timestamp, and an `apply` step that hands it to the
 * market. ingest_run() alternates them, holding a decoded message back when
 * pacing says it is not yet time. The framers come from binfile.c, csv.c and
 * mold.c; the journal's framing is here, since a journal is otherwise read
 * whole by journal_scan().
 *
 * Never allocates; never reads past a chunk; a bad input is counted,
 * reported and skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "feed/be.h"
#include "feed/ingest.h"

enum ingest_format ingest_format_parse(const char *name)
{
    static const struct {
        const char *name;
        enum ingest_format fmt;
    } names[] = {
        {"itch", INGEST_ITCH}, {"csv", INGEST_CSV}, {"tlog", INGEST_TLOG}, {"mold", INGEST_MOLD}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i].name) == 0)
            return names[i].fmt;
    return 0;
}

const char *ingest_format_name(enum ingest_format fmt)
{
    switch (fmt) {
    case INGEST_ITCH:
        return "itch";
    case INGEST_CSV:
        return "csv";
    case INGEST_TLOG:
        return "tlog";
    case INGEST_MOLD:
        return "mold";
    }
    return "?";
}

void ingest_init(ingest_t *ing, enum ingest_format fmt, market_t *market, ingest_error_fn on_error,
                 void *error_arg)
{
    memset(ing, 0, sizeof(*ing));
    ing->fmt = fmt;
    ing->market = market;
    ing->on_error = on_error;
    ing->error_arg = error_arg;
    binfile_reader_init(&ing->bin);
    csv_reader_init(&ing->csv);
    mold_session_init(&ing->mold);
}

static void report(ingest_t *ing, uint64_t where, const char *reason)
{
    ing->stats.decode_errors++;
    if (ing->on_error != NULL)
        ing->on_error(ing->error_arg, where, reason);
}

static uint64_t binfile_errors(const binfile_stats_t *s)
{
    return s->zero_length + s->unknown_type + s->bad_length + s->truncated;
}

static uint64_t mold_errors(const mold_stats_t *s)
{
    return s->zero_length + s->unknown_type + s->bad_length + s->truncated;
}

/* The framers count what they skip; fold their counts into decode_errors
 * and say so once per chunk. */
static void sync_framer_errors(ingest_t *ing, uint64_t before, uint64_t after, const char *what)
{
    if (after == before)
        return;
    char reason[96];
    snprintf(reason, sizeof(reason), "%llu malformed %s skipped",
             (unsigned long long)(after - before), what);
    ing->stats.decode_errors += after - before - 1;
    report(ing, ing->stats.messages + 1, reason);
}

void ingest_push(ingest_t *ing, const void *chunk, size_t len, int64_t ts_recv)
{
    ing->ts_recv = ts_recv;
    switch (ing->fmt) {
    case INGEST_ITCH:
        binfile_reader_push(&ing->bin, chunk, len);
        ing->ahead_end = 0; /* look_ahead() walks the new chunk from its start */
        break;
    case INGEST_CSV:
        csv_reader_push(&ing->csv, chunk, len);
        break;
    case INGEST_TLOG:
        ing->chunk = chunk;
        ing->chunk_len = len;
        ing->chunk_pos = 0;
        break;
    case INGEST_MOLD:
        break;
    }
}

/* ---- the journal's framing ---- */

/* Moves bytes from the chunk into the carry until it holds want bytes.
 * Returns whether it does. */
static int carry_fill(ingest_t *ing, size_t want)
{
    size_t need = want - ing->tlog_carry_len;
    size_t avail = ing->chunk_len - ing->chunk_pos;
    size_t n = need < avail ? need : avail;
    memcpy(ing->tlog_carry + ing->tlog_carry_len, ing->chunk + ing->chunk_pos, n);
    ing->tlog_carry_len += n;
    ing->chunk_pos += n;
    return ing->tlog_carry_len == want;
}

static void tlog_break(ingest_t *ing, const char *reason)
{
    ing->tlog_broken = 1;
    report(ing, ing->stats.messages + ing->stats.decode_errors + 1, reason);
}

/* 1: a record in ing->held.rec; 0: need another chunk. */
static int tlog_next(ingest_t *ing)
{
    if (ing->tlog_broken) {
        ing->chunk_pos = ing->chunk_len;
        return 0;
    }
    if (!ing->tlog_header_seen) {
        if (!carry_fill(ing, JOURNAL_HEADER_SIZE))
            return 0;
        ing->tlog_carry_len = 0;
        if (!journal_header_valid(ing->tlog_carry)) {
            tlog_break(ing, "not a tickd journal (bad header)");
            return 0;
        }
        ing->tlog_header_seen = 1;
    }
    int n;
    if (ing->tlog_carry_len > 0) {
        /* A record split across chunks: first its 8-byte prefix, then the
         * payload length it announces. */
        if (ing->tlog_carry_len < 8 && !carry_fill(ing, 8))
            return 0;
        n = journal_decode(ing->tlog_carry, ing->tlog_carry_len, &ing->held.rec);
        if (n == 0) {
            uint32_t plen = (uint32_t)ing->tlog_carry[0] | (uint32_t)ing->tlog_carry[1] << 8 |
                            (uint32_t)ing->tlog_carry[2] << 16 | (uint32_t)ing->tlog_carry[3] << 24;
            if (!carry_fill(ing, 8 + plen))
                return 0;
            n = journal_decode(ing->tlog_carry, ing->tlog_carry_len, &ing->held.rec);
        }
        ing->tlog_carry_len = 0;
    } else {
        n = journal_decode(ing->chunk + ing->chunk_pos, ing->chunk_len - ing->chunk_pos,
                           &ing->held.rec);
        if (n == 0) {
            carry_fill(ing, ing->chunk_len - ing->chunk_pos);
            return 0;
        }
        if (n > 0)
            ing->chunk_pos += (size_t)n;
    }
    if (n < 0) {
        tlog_break(ing, "corrupt journal record (length or checksum); the rest is skipped");
        return 0;
    }
    return 1;
}

/* ---- next and apply, per format ---- */

/* Decodes the next CSV line or journal record (ITCH has run_itch()) into
 * ing->held and sets ing->pending_ts. Returns 1, or 0 when the chunk is
 * used up. Bad inputs are skipped here. */
static int next_input(ingest_t *ing)
{
    const char *line;
    size_t len;
    for (;;) {
        switch (ing->fmt) {
        case INGEST_CSV: {
            int r = csv_reader_next(&ing->csv, &line, &len);
            if (r == 0)
                return 0;
            const char *reason = "line too long";
            int parsed = r > 0 ? csv_parse_line(line, len, &ing->held.csv, &reason) : r;
            if (parsed == 1) {
                ing->pending_ts = (int64_t)ing->held.csv.ts_ns;
                return 1;
            }
            if (parsed < 0)
                report(ing, ing->csv.line_no, reason);
            continue; /* a comment or a blank line, or reported */
        }
        case INGEST_TLOG:
            if (tlog_next(ing) == 0)
                return 0;
            ing->pending_ts = ing->held.rec.ts_exch;
            return 1;
        case INGEST_ITCH: /* run_itch() */
        case INGEST_MOLD:
            return 0;
        }
    }
}

static int apply_csv(ingest_t *ing, const csv_tick_t *t)
{
    size_t n = strlen(t->symbol);
    if (t->kind == CSV_TRADE)
        return market_trade(ing->market, t->symbol, n, t->trade.price, t->trade.size, t->trade.side,
                            0, (int64_t)t->ts_ns, ing->ts_recv);
    return market_quote(ing->market, t->symbol, n, t->quote.bid, t->quote.bid_size, t->quote.ask,
                        t->quote.ask_size, 0, (int64_t)t->ts_ns, ing->ts_recv);
}

static int apply_rec(ingest_t *ing, const journal_rec_t *r)
{
    size_t n = strnlen(r->sym, sizeof(r->sym));
    if (r->kind == JOURNAL_TRADE)
        return market_trade(ing->market, r->sym, n, r->price, r->size, r->side, r->seq, r->ts_exch,
                            ing->ts_recv);
    return market_quote(ing->market, r->sym, n, r->price, r->size, r->ask, r->ask_size, r->seq,
                        r->ts_exch, ing->ts_recv);
}

static void apply_input(ingest_t *ing)
{
    int err;
    switch (ing->fmt) {
    case INGEST_MOLD:
        err = market_itch_raw(ing->market, ing->raw, ing->raw_len, ing->ts_recv);
        break;
    case INGEST_CSV:
        err = apply_csv(ing, &ing->held.csv);
        break;
    default:
        err = apply_rec(ing, &ing->held.rec);
        break;
    }
    ing->stats.messages++;
    ing->last_ts = ing->pending_ts;
    if (HEAP_UNLIKELY(err != 0))
        ing->stats.rejected++;
}

/* The message starting at offset pos of the framer's chunk, if it is
 * wholly there: for a prefetch only (the framer checks what it yields). */
static const uint8_t *peek(const binfile_reader_t *r, size_t pos, size_t *len)
{
    if (r->chunk_len - pos < BINFILE_PREFIX_LEN || pos > r->chunk_len)
        return NULL;
    *len = be16_get(r->chunk + pos);
    return r->chunk_len - pos - BINFILE_PREFIX_LEN >= *len ? r->chunk + pos + BINFILE_PREFIX_LEN
                                                           : NULL;
}

/* Hints the market about the message three ahead of the one framed now
 * (market_prefetch(), which also takes the two hinted before it a step
 * further each): each message is hinted once, three messages before it is
 * applied. ing->ahead_end is where the message after the one hinted last
 * begins in the framer's chunk, so that a message reads one length prefix
 * for its hint; 0 after a new chunk, or when the message hinted last was
 * not wholly in it, and the walk starts again from the framer's position.
 * The hints read the prefixes the framer will judge; a bad length only
 * makes them miss. */
static void look_ahead(ingest_t *ing)
{
    const binfile_reader_t *r = &ing->bin;
    size_t len = 0, end = ing->ahead_end;
    const uint8_t *msg = NULL;
    if (end == 0) {
        end = r->pos;
        for (int skip = 0; skip < 2 && (msg = peek(r, end, &len)) != NULL; skip++)
            end += BINFILE_PREFIX_LEN + len;
    }
    if ((msg = peek(r, end, &len)) != NULL)
        end += BINFILE_PREFIX_LEN + len;
    else
        end = 0;
    ing->ahead_end = end;
    market_prefetch(ing->market, msg, len, &ing->ahead);
}

/* ingest_run()'s loop for ITCH: next_input() and apply_input() for this one
 * format, in one loop with the held message in locals. Returns as
 * ingest_run(). */
static int run_itch(ingest_t *ing, int64_t until_ts, uint64_t max, int64_t *next_ts)
{
    market_t *m = ing->market;
    const uint8_t *p = ing->raw;
    size_t len = ing->raw_len;
    int64_t ts = ing->pending_ts;
    int pending = ing->pending, more = 1;
    uint64_t done = 0, rejected = 0;
    for (; done < max; done++) {
        if (!pending) {
            if (binfile_reader_next(&ing->bin, &p, &len) == 0) {
                more = 0;
                break;
            }
            /* The framer yields only messages of a known type and exactly
             * that type's length (binfile.h): the timestamp is there. */
            ts = (int64_t)be48_get(p + ITCH_AT_TIMESTAMP);
            look_ahead(ing);
        }
        pending = 1;
        if (ts > until_ts)
            break;
        rejected += market_itch_framed(m, p, len, ing->ts_recv) != 0;
        ing->last_ts = ts;
        pending = 0;
    }
    ing->stats.messages += done;
    ing->stats.rejected += rejected;
    ing->raw = p;
    ing->raw_len = len;
    ing->pending_ts = ts;
    ing->pending = pending;
    if (next_ts != NULL && more)
        *next_ts = pending ? ts : ing->last_ts;
    return more;
}

int ingest_run(ingest_t *ing, int64_t until_ts, uint64_t max, int64_t *next_ts)
{
    uint64_t before = binfile_errors(&ing->bin.stats);
    int more = 0;
    market_set_source(ing->market, ing->source);
    if (ing->fmt == INGEST_ITCH) {
        more = run_itch(ing, until_ts, max, next_ts);
        goto out;
    }
    for (uint64_t done = 0; done < max; done++) {
        if (!ing->pending && !next_input(ing))
            goto out;
        ing->pending = 1;
        if (ing->pending_ts > until_ts) {
            if (next_ts != NULL)
                *next_ts = ing->pending_ts;
            more = 1;
            goto out;
        }
        apply_input(ing);
        ing->pending = 0;
    }
    more = 1;
    if (next_ts != NULL)
        *next_ts = ing->last_ts;
out:
    if (ing->fmt == INGEST_ITCH)
        sync_framer_errors(ing, before, binfile_errors(&ing->bin.stats), "ITCH messages");
    return more;
}

void ingest_finish(ingest_t *ing)
{
    const char *line;
    size_t len;
    switch (ing->fmt) {
    case INGEST_ITCH:
        if (binfile_reader_finish(&ing->bin) != 0)
            report(ing, ing->stats.messages + 1, "stream ends inside an ITCH message");
        break;
    case INGEST_CSV: {
        int r = csv_reader_finish(&ing->csv, &line, &len);
        const char *reason = "line too long";
        int parsed = r > 0 ? csv_parse_line(line, len, &ing->held.csv, &reason) : r;
        if (parsed == 1) {
            ing->pending_ts = (int64_t)ing->held.csv.ts_ns;
            apply_input(ing);
        } else if (parsed < 0) {
            report(ing, ing->csv.line_no, reason);
        }
        break;
    }
    case INGEST_TLOG:
        if (ing->tlog_carry_len > 0 && !ing->tlog_broken)
            report(ing, ing->stats.messages + 1, "journal ends inside a record");
        ing->tlog_carry_len = 0;
        break;
    case INGEST_MOLD:
        break;
    }
}

int ingest_packet(ingest_t *ing, const void *pkt, size_t len, int64_t ts_recv)
{
    mold_packet_t info;
    mold_msg_t msg;
    uint64_t before = mold_errors(&ing->mold.stats);
    uint64_t delivered = ing->mold.stats.messages;
    ing->ts_recv = ts_recv;
    market_set_source(ing->market, ing->source);
    if (mold_session_packet(&ing->mold, pkt, len, &info) == 0) {
        while (mold_session_next(&ing->mold, &msg) == 1) {
            if (itch_check(msg.data, msg.len) != 0) {
                report(ing, msg.seq, "undecodable ITCH message");
                continue;
            }
            ing->raw = msg.data;
            ing->raw_len = msg.len;
            ing->pending_ts = (int64_t)be48_get(msg.data + ITCH_AT_TIMESTAMP);
            apply_input(ing);
        }
    }
    if (info.ignored && ing->on_error != NULL) /* a sequence fault, not a decode error */
        ing->on_error(ing->error_arg, info.seq,
                      "MoldUDP64 packet ignored: its sequence number jumps implausibly far");
    ing->stats.sequence_gaps = ing->mold.stats.gap_messages;
    sync_framer_errors(ing, before, mold_errors(&ing->mold.stats), "MoldUDP64 messages");
    return ing->mold.stats.messages != delivered ||
           (info.kind != MOLD_DATA && !info.ignored && info.seq == ing->mold.next_seq);
}

/*
 * ingest.h - from bytes to ticks: framing, decoding and the market, for
 * every input format.
 *
 * An ingest turns a stream of chunks (a file read in pieces, a TCP stream)
 * or a series of datagrams (MoldUDP64) into market updates. It owns the
 * framer of its format and counts what it saw; bad input is counted, reported
 * through the error callback with where it was (line number or message
 * number) and skipped, never fatal.
 *
 * Pacing: ingest_run() stops before the first message whose exchange
 * timestamp is past a limit, so a replay at N times the recorded speed only
 * has to move the limit forward with the clock, and stamp each released
 * batch with the time of its release (ingest_stamp()).
 */
#ifndef TICKD_FEED_INGEST_H
#define TICKD_FEED_INGEST_H

#include <stdint.h>

#include "feed/binfile.h"
#include "feed/csv.h"
#include "feed/itch.h"
#include "feed/journal.h"
#include "feed/market.h"
#include "feed/mold.h"

enum ingest_format {
    INGEST_ITCH = 1, /* ITCH 5.0, BinaryFILE framing */
    INGEST_CSV = 2,  /* the CSV tick format */
    INGEST_TLOG = 3, /* tickd's journal */
    INGEST_MOLD = 4, /* ITCH 5.0 in MoldUDP64 datagrams */
};

/* Parses "itch", "csv", "tlog" or "mold"; 0 for anything else. */
enum ingest_format ingest_format_parse(const char *name);
const char *ingest_format_name(enum ingest_format fmt);

/* Told about each bad input: where is the 1-based line (CSV), message (ITCH,
 * MoldUDP64 sequence number) or record (journal) number. */
typedef void (*ingest_error_fn)(void *arg, uint64_t where, const char *reason);

typedef struct ingest_stats {
    uint64_t messages;      /* inputs decoded and applied (lines, messages, records) */
    uint64_t decode_errors; /* inputs that could not be decoded, skipped */
    uint64_t sequence_gaps; /* MoldUDP64: messages missed */
    uint64_t rejected;      /* decoded, but the market refused them (bad symbol, ...) */
} ingest_stats_t;

typedef struct ingest {
    enum ingest_format fmt;
    market_t *market;
    ingest_error_fn on_error;
    void *error_arg;
    int64_t ts_recv; /* receive time stamped on the ticks applied next */
    binfile_reader_t bin;
    csv_reader_t csv;
    mold_session_t mold;
    /* The journal's framing: bytes of a header or record split across
     * chunks. */
    unsigned char tlog_carry[8 + JOURNAL_MAX_PAYLOAD];
    size_t tlog_carry_len;
    int tlog_header_seen;
    int tlog_broken;            /* a corrupt record was met: the rest is unreadable */
    const unsigned char *chunk; /* journal: the chunk being walked */
    size_t chunk_len, chunk_pos;
    /* A decoded message held back by ingest_run() because it was later than
     * the limit. */
    int pending;
    int64_t pending_ts;
    const uint8_t *raw; /* ITCH, MoldUDP64: the held message's bytes, in the chunk or
                           datagram (or the framer's copy of a split one) until it is
                           applied */
    size_t raw_len;
    market_lookahead_t ahead; /* ITCH: the messages hinted to the market last (market_prefetch()) */
    size_t ahead_end;         /* ITCH: where the message after the one hinted last begins in the
                                 framer's chunk; 0: not known (look_ahead()) */
    union {
        csv_tick_t csv;
        journal_rec_t rec;
    } held;
    int64_t last_ts; /* exchange timestamp of the last message applied */
    uint16_t source; /* the market's name for this ingest's orders (market_set_source());
                      * 0 unless the owner sets it after ingest_init() */
    ingest_stats_t stats;
} ingest_t;

void ingest_init(ingest_t *ing, enum ingest_format fmt, market_t *market, ingest_error_fn on_error,
                 void *error_arg);

/* Hands over the next chunk of a stream (not for INGEST_MOLD); only once
 * ingest_run() has returned 0. The chunk stays the caller's and must live
 * until then. ts_recv stamps the ticks it makes, until ingest_stamp(). */
void ingest_push(ingest_t *ing, const void *chunk, size_t len, int64_t ts_recv);

/* The ticks applied from now on were received at ts_recv. A replay calls it
 * before each ingest_run() that releases a batch: a replayed tick arrives
 * when it is released to the market, not when its chunk was read ahead. */
static inline void ingest_stamp(ingest_t *ing, int64_t ts_recv)
{
    ing->ts_recv = ts_recv;
}

/* Applies the chunk's messages in order, stopping before one whose exchange
 * timestamp is past until_ts, or after max messages. Returns 1 when it
 * stopped early (more is ready: *next_ts, when not NULL, is the next
 * message's timestamp), 0 when the chunk is used up. */
int ingest_run(ingest_t *ing, int64_t until_ts, uint64_t max, int64_t *next_ts);

/* End of the stream: reports a message cut short at the end. */
void ingest_finish(ingest_t *ing);

/* Applies every new message of one MoldUDP64 datagram. Returns 1 when the
 * datagram showed the stream alive: it delivered a message, or it is a
 * heartbeat or end of session at the next expected number; 0 when it
 * delivered nothing (duplicates, an ignored jump, a malformed datagram). */
int ingest_packet(ingest_t *ing, const void *pkt, size_t len, int64_t ts_recv);

#endif

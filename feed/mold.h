/*
 * mold.h - MoldUDP64 downstream packets and the receiver state of a session.
 *
 * A MoldUDP64 packet is one UDP datagram: a 20-byte header (session name, 10
 * bytes of space-padded alpha; sequence number of the first message, 8 bytes;
 * message count, 2 bytes; all big-endian) followed by `count` message blocks,
 * each a 2-byte big-endian length and that many bytes of message. A count of
 * 0 is a heartbeat and 0xFFFF marks the end of the session; both carry the
 * sequence number of the next message the server will send. Sequence numbers
 * start at 1 in every session.
 *
 * A mold_session_t follows one stream: it delivers each message once,
 * in sequence order, and counts what went wrong. A packet that jumps ahead of
 * the next expected number is a gap (the missing range is reported, and the
 * session moves on: it does not re-request or buffer); messages numbered
 * below it were delivered already and are skipped as duplicates, including
 * the overlapping head of a packet; a new session name starts over at 1. A
 * receiver that joins late therefore reports the messages it never saw as
 * one gap, which is the truth: it lacks them.
 *
 * One stray or forged datagram must not move the stream. A packet whose
 * sequence number lies more than MOLD_MAX_JUMP past the next expected one
 * (1 for a new session name), or whose numbers would pass 2^64 - 1, is
 * implausible: it is counted and ignored, and the stream stays where it
 * was. Implausible data packets that follow one another exactly (same
 * session, each starting where the one before ended) form a run; the
 * MOLD_CONFIRM-th packet of a run confirms the new position, is delivered,
 * and the messages skipped to get there are one gap. Any plausible packet
 * breaks the run, so a live stream is never pulled away by packets
 * interleaved with it. A receiver joining a session past MOLD_MAX_JUMP thus
 * starts delivering with the MOLD_CONFIRM-th packet. Counters only grow:
 * the count of lost messages stops at 2^64 - 1. A datagram shorter than the
 * header, or whose blocks run past its end, is counted as truncated; the
 * messages before the cut are delivered and the rest is skipped, so the
 * numbers it lacked show as a gap when the next packet comes. Bytes after
 * the last block are ignored.
 *
 * tickd's MoldUDP64 streams carry ITCH 5.0, so each message is also checked
 * with itch_check(): one that fails uses up its sequence number, is counted
 * and is not delivered, and everything delivered decodes.
 *
 * Nothing here reads outside the datagram it is given, and nothing allocates.
 */
#ifndef TICKD_FEED_MOLD_H
#define TICKD_FEED_MOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOLD_HEADER_LEN      20
#define MOLD_SESSION_LEN     10
#define MOLD_BLOCK_PREFIX    2       /* the length before each message */
#define MOLD_COUNT_HEARTBEAT 0       /* message count of a heartbeat */
#define MOLD_COUNT_END       0xFFFF  /* message count of an end-of-session packet */
#define MOLD_MAX_JUMP        1000000 /* a longer jump ahead is implausible */
#define MOLD_CONFIRM         3       /* packets of a run that confirm an implausible jump */

/* What a session has seen; exported by the daemon as counters. */
typedef struct mold_stats {
    uint64_t packets;         /* datagrams handed to mold_session_packet() */
    uint64_t messages;        /* messages delivered: each sequence number once, in order */
    uint64_t heartbeats;      /* heartbeat packets */
    uint64_t end_of_session;  /* end-of-session packets (sent repeatedly by the server) */
    uint64_t gaps;            /* times the stream jumped past the next expected number */
    uint64_t gap_messages;    /* messages lost in those jumps; stops at UINT64_MAX */
    uint64_t implausible;     /* packets ignored: an implausible jump, not (yet) confirmed */
    uint64_t duplicates;      /* messages skipped because already delivered */
    uint64_t truncated;       /* packets cut short: under 20 bytes, or blocks past the end */
    uint64_t session_changes; /* times the session name changed after the first packet */
    uint64_t zero_length;     /* messages of length 0, not delivered */
    uint64_t unknown_type;    /* messages whose type byte is no ITCH 5.0 type, not delivered */
    uint64_t bad_length;      /* messages whose length is not their type's or exceeds
                                 ITCH_MAX_LEN, not delivered */
} mold_stats_t;

enum mold_kind {
    MOLD_DATA,           /* count 1..0xFFFE: message blocks follow */
    MOLD_HEARTBEAT,      /* count 0 */
    MOLD_END_OF_SESSION, /* count 0xFFFF */
};

/* What mold_session_packet() made of one datagram's header. */
typedef struct mold_packet {
    enum mold_kind kind;
    uint64_t seq;      /* sequence number in the header */
    uint16_t count;    /* message count in the header */
    bool new_session;  /* the session name differs from the previous packet's */
    bool ignored;      /* an implausible jump: the packet changed nothing but counters */
    uint64_t gap_from; /* first missing sequence number, if gap > 0 */
    uint64_t gap;      /* messages missing right before this packet: 0 if none */
} mold_packet_t;

/* One message delivered by mold_session_next(). */
typedef struct mold_msg {
    const uint8_t *data; /* inside the datagram; valid as long as it is */
    size_t len;          /* passed itch_check() */
    uint64_t seq;        /* its sequence number */
} mold_msg_t;

/* The receiver state of one stream. Fields are private to mold.c except
 * `name`, `next_seq`, `ended` and `stats`, which callers may read. */
typedef struct mold_session {
    char name[MOLD_SESSION_LEN]; /* session of the last packet, as on the wire */
    bool started;                /* a packet with a whole header has been seen */
    bool ended;                  /* an end-of-session packet was seen for `name` */
    uint64_t next_seq;           /* sequence number of the next message to deliver */
    const uint8_t *pkt;          /* the datagram being walked; the caller's */
    size_t pkt_len;              /* its length */
    size_t pos;                  /* offset of the next message block in it */
    uint64_t block_seq;          /* sequence number of that block */
    uint16_t blocks_left;        /* blocks of the packet not yet walked */
    /* The run of implausible data packets (see the top of this file). */
    char run_name[MOLD_SESSION_LEN]; /* their session */
    uint64_t run_next;               /* where the run's next packet must start */
    unsigned run_len;                /* packets in the run so far: 0 none */
    mold_stats_t stats;
} mold_session_t;

void mold_session_init(mold_session_t *s);

/* Take one datagram: read its header, update the sequence state and the
 * counters, and describe it in *info. Returns 0, or -ENODATA if it is shorter
 * than the header (counted as truncated, nothing else changes). An ignored
 * packet (info->ignored) has no messages to walk. Then call
 * mold_session_next() until it returns 0; a packet not walked to the end is
 * abandoned by the next call to this function. The datagram must stay valid
 * until then. */
int mold_session_packet(mold_session_t *s, const uint8_t *pkt, size_t len, mold_packet_t *info);

/* The next new message of the current packet: returns 1 and fills *msg, or 0
 * when the packet has no more. */
int mold_session_next(mold_session_t *s, mold_msg_t *msg);

#endif

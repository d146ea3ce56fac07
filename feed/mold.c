/*
 * mold.c - MoldUDP64 receiver: header, sequence state, message blocks.
 *
 * mold_session_packet() decides everything that the header alone decides
 * (heartbeat, end of session, new session, gap, an implausible jump and its
 * confirmation); mold_session_next() walks the blocks and skips those
 * already delivered. Invariants: next_seq only grows within a session, and
 * by at most MOLD_MAX_JUMP at a time unless a run of MOLD_CONFIRM packets
 * confirmed the jump; an ignored packet changes nothing but counters and the
 * run; a block is delivered only when its sequence number equals next_seq,
 * which then moves past it; every read of the datagram is preceded by a
 * check that it lies below pkt_len; every counter only grows.
 */
#include "feed/mold.h"

#include <errno.h>
#include <string.h>

#include "feed/be.h"
#include "feed/itch.h"

void mold_session_init(mold_session_t *s)
{
    memset(s, 0, sizeof *s);
    s->next_seq = 1;
}

/* The stream is at `seq`: anything between next_seq and it was lost. */
static void jump_to(mold_session_t *s, uint64_t seq, mold_packet_t *info)
{
    if (seq <= s->next_seq)
        return;
    info->gap_from = s->next_seq;
    info->gap = seq - s->next_seq;
    s->stats.gaps++;
    s->stats.gap_messages += info->gap;
    if (s->stats.gap_messages < info->gap) /* a counter never goes back: it stops */
        s->stats.gap_messages = UINT64_MAX;
    s->next_seq = seq;
}

/* More than MOLD_MAX_JUMP past where the stream is expected, or numbers
 * that would pass 2^64 - 1. `n` is the messages the packet carries. */
static bool implausible(uint64_t expected, uint64_t seq, uint64_t n)
{
    return (seq > expected && seq - expected > MOLD_MAX_JUMP) || seq > UINT64_MAX - n;
}

/* An implausible data packet joins the run it continues, or starts a new
 * one. Returns whether it is the run's MOLD_CONFIRM-th packet: the run is
 * then over, and the stream is to move there. */
static bool run_confirms(mold_session_t *s, const uint8_t *pkt, uint64_t seq, uint16_t count)
{
    if (s->run_len > 0 && seq == s->run_next && memcmp(s->run_name, pkt, MOLD_SESSION_LEN) == 0) {
        s->run_len++;
    } else {
        memcpy(s->run_name, pkt, MOLD_SESSION_LEN);
        s->run_len = 1;
    }
    s->run_next = seq + count;
    if (s->run_len < MOLD_CONFIRM)
        return false;
    s->run_len = 0;
    return true;
}

int mold_session_packet(mold_session_t *s, const uint8_t *pkt, size_t len, mold_packet_t *info)
{
    s->stats.packets++;
    s->blocks_left = 0;
    memset(info, 0, sizeof *info);
    if (len < MOLD_HEADER_LEN) {
        s->stats.truncated++;
        return -ENODATA;
    }

    info->seq = be64_get(pkt + MOLD_SESSION_LEN);
    info->count = be16_get(pkt + MOLD_SESSION_LEN + 8);
    info->kind = info->count == MOLD_COUNT_HEARTBEAT ? MOLD_HEARTBEAT
                 : info->count == MOLD_COUNT_END     ? MOLD_END_OF_SESSION
                                                     : MOLD_DATA;
    uint16_t carried = info->kind == MOLD_DATA ? info->count : 0;

    bool same = s->started && memcmp(s->name, pkt, MOLD_SESSION_LEN) == 0;
    if (implausible(same ? s->next_seq : 1, info->seq, carried)) {
        if (info->kind != MOLD_DATA || info->seq > UINT64_MAX - carried ||
            !run_confirms(s, pkt, info->seq, carried)) {
            s->stats.implausible++;
            info->ignored = true;
            return 0;
        }
    } else {
        s->run_len = 0;
    }

    if (!same) {
        if (s->started) {
            s->stats.session_changes++;
            info->new_session = true;
        }
        memcpy(s->name, pkt, MOLD_SESSION_LEN);
        s->started = true;
        s->ended = false;
        s->next_seq = 1;
    }
    jump_to(s, info->seq, info);

    switch (info->kind) {
    case MOLD_HEARTBEAT:
        s->stats.heartbeats++;
        return 0;
    case MOLD_END_OF_SESSION:
        s->stats.end_of_session++;
        s->ended = true;
        return 0;
    default:
        s->pkt = pkt;
        s->pkt_len = len;
        s->pos = MOLD_HEADER_LEN;
        s->block_seq = info->seq;
        s->blocks_left = info->count;
        return 0;
    }
}

/* Count a message that passed framing but not itch_check(), classified as
 * binfile.c does: a length beyond any type is bad whatever the type byte. */
static void reject(mold_session_t *s, int rc, size_t len)
{
    if (len == 0)
        s->stats.zero_length++;
    else if (len > ITCH_MAX_LEN)
        s->stats.bad_length++;
    else if (rc == ITCH_EUNKNOWN)
        s->stats.unknown_type++;
    else
        s->stats.bad_length++;
}

int mold_session_next(mold_session_t *s, mold_msg_t *msg)
{
    while (s->blocks_left > 0) {
        size_t avail = s->pkt_len - s->pos;
        if (avail < MOLD_BLOCK_PREFIX || be16_get(s->pkt + s->pos) > avail - MOLD_BLOCK_PREFIX) {
            s->stats.truncated++;
            s->blocks_left = 0;
            return 0;
        }
        const uint8_t *p = s->pkt + s->pos + MOLD_BLOCK_PREFIX;
        size_t len = be16_get(s->pkt + s->pos);
        uint64_t seq = s->block_seq++;
        s->pos += MOLD_BLOCK_PREFIX + len;
        s->blocks_left--;

        if (seq < s->next_seq) {
            s->stats.duplicates++;
            continue;
        }
        s->next_seq = seq + 1;
        int rc = itch_check(p, len);
        if (rc != 0) {
            reject(s, rc, len);
            continue;
        }
        s->stats.messages++;
        msg->data = p;
        msg->len = len;
        msg->seq = seq;
        return 1;
    }
    return 0;
}

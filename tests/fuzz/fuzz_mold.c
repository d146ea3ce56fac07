/*
 * fuzz_mold.c - libFuzzer harness: MoldUDP64 datagrams into a market.
 *
 * Input: a control byte (fuzz_market.h; the chunk bits do not apply to
 * datagrams), then datagrams, each behind a 2-byte big-endian length (a
 * length past the end of the input takes what is left). Each datagram, in a
 * buffer of its exact size, goes through ingest_packet() into a market on a
 * heap of its own; the books and the empty heap at the end are checked as
 * for every feed.
 *
 * The same datagrams also go through a bare mold_session, whose promises are
 * checked one by one: a delivered message lies inside its datagram and
 * decodes as ITCH 5.0, sequence numbers delivered within a session rise
 * strictly and the next expected one follows the last delivered, no counter
 * ever goes down, a packet ignored as an implausible jump changes nothing
 * of the stream (session, next number, end), and the session counts exactly
 * what ingest's session counted.
 *
 * Seeds (corpus/fuzz_mold/): `tickd gen itch` days cut into datagrams of a
 * few messages, with heartbeats, a gap, a duplicate, a new session and the
 * end of session; and one with packets far ahead, ignored or confirmed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed/ingest.h"
#include "tests/fuzz/fuzz_market.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct session_check {
    mold_session_t s;
    int delivered_any; /* a message was delivered in the current session */
    uint64_t last_seq; /* the last one's sequence number */
} session_check_t;

#define NSTATS (sizeof(mold_stats_t) / sizeof(uint64_t))

/* Every counter of `now` is at least what it was in `was`. */
static void check_counters(const mold_stats_t *was, const mold_stats_t *now)
{
    uint64_t before[NSTATS], after[NSTATS];
    memcpy(before, was, sizeof before);
    memcpy(after, now, sizeof after);
    for (size_t k = 0; k < NSTATS; k++)
        if (after[k] < before[k])
            fuzz_fail("counter %zu of mold_stats_t went down", k);
}

static void check_packet(session_check_t *c, const uint8_t *pkt, size_t len)
{
    mold_packet_t info;
    mold_session_t was = c->s;
    int rc = mold_session_packet(&c->s, pkt, len, &info);
    check_counters(&was.stats, &c->s.stats);
    if (rc != 0)
        return;
    if (info.ignored &&
        (c->s.next_seq != was.next_seq || c->s.ended != was.ended || c->s.started != was.started ||
         memcmp(c->s.name, was.name, MOLD_SESSION_LEN) != 0))
        fuzz_fail("packet %llu ignored but the stream moved", (unsigned long long)info.seq);
    if (info.new_session)
        c->delivered_any = 0;
    mold_msg_t msg;
    while (mold_session_next(&c->s, &msg) == 1) {
        if (msg.data < pkt + MOLD_HEADER_LEN + MOLD_BLOCK_PREFIX || msg.len == 0 ||
            msg.len > (size_t)(pkt + len - msg.data))
            fuzz_fail("message %llu of %zu bytes lies outside its datagram of %zu",
                      (unsigned long long)msg.seq, msg.len, len);
        itch_msg_t m;
        if (itch_decode(msg.data, msg.len, &m) != 0)
            fuzz_fail("message %llu delivered but does not decode", (unsigned long long)msg.seq);
        if (c->delivered_any && msg.seq <= c->last_seq)
            fuzz_fail("message %llu delivered after %llu in one session",
                      (unsigned long long)msg.seq, (unsigned long long)c->last_seq);
        if (c->s.next_seq != msg.seq + 1)
            fuzz_fail("message %llu delivered, next expected %llu", (unsigned long long)msg.seq,
                      (unsigned long long)c->s.next_seq);
        c->delivered_any = 1;
        c->last_seq = msg.seq;
    }
    check_counters(&was.stats, &c->s.stats);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static fuzz_rig_t rig;
    static session_check_t check;
    fuzz_rig_open(&rig, INGEST_MOLD, data[0], 0);
    memset(&check, 0, sizeof(check));
    mold_session_init(&check.s);

    for (size_t off = 1; off < size;) {
        size_t n = size - off < 2 ? 0 : (size_t)data[off] << 8 | data[off + 1];
        off += size - off < 2 ? size - off : 2;
        if (n > size - off)
            n = size - off;
        fuzz_rig_packet(&rig, data + off, n);
        uint8_t *pkt = fuzz_dup(data + off, n);
        check_packet(&check, pkt, n);
        free(pkt);
        off += n;
    }

    if (memcmp(&check.s.stats, &rig.ing.mold.stats, sizeof(check.s.stats)) != 0)
        fuzz_fail("a bare session and ingest's counted the same datagrams differently");
    if (rig.ing.stats.messages != check.s.stats.messages)
        fuzz_fail("ingest applied %llu messages of %llu delivered",
                  (unsigned long long)rig.ing.stats.messages,
                  (unsigned long long)check.s.stats.messages);
    fuzz_rig_close(&rig);
    return 0;
}

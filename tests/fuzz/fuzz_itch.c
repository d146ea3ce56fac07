/*
 * fuzz_itch.c - libFuzzer harness: ITCH 5.0 BinaryFILE streams into a
 * market, books and objects included.
 *
 * Input: a control byte (fuzz_market.h says what each bit does), then the
 * stream. The stream goes through ingest (INGEST_ITCH) into a market on a
 * heap of its own, in chunks of the lengths the control byte asks for, and
 * again as one chunk; the two runs must make the same ticks, the books must
 * hold exactly the live orders, and the heap must be empty once the market
 * is destroyed and collected. Every message the framer yields that decodes
 * must also encode back to the same bytes (itch_encode() is the exact
 * inverse of itch_decode()).
 *
 * Seeds (corpus/fuzz_itch/): days from `tickd gen itch`, behind a control
 * byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "feed/ingest.h"
#include "tests/fuzz/fuzz_market.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frames the whole stream once more and checks that every message that
 * decodes encodes back to its own bytes. */
static void check_round_trip(const uint8_t *data, size_t len)
{
    binfile_reader_t br;
    binfile_reader_init(&br);
    binfile_reader_push(&br, data, len);
    const uint8_t *msg;
    size_t n;
    while (binfile_reader_next(&br, &msg, &n) == 1) {
        itch_msg_t m;
        if (itch_decode(msg, n, &m) != 0)
            continue;
        uint8_t out[ITCH_MAX_LEN];
        int w = itch_encode(&m, out, sizeof(out));
        if (w < 0 || (size_t)w != n || memcmp(out, msg, n) != 0)
            fuzz_fail("ITCH '%c' message of %zu bytes decodes but encodes to %d other bytes",
                      msg[0], n, w);
    }
    binfile_reader_finish(&br);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *feed = data + 1;
    size_t len = size - 1;

    static fuzz_rig_t whole, cut;
    fuzz_rig_open(&whole, INGEST_ITCH, 0, 0);
    fuzz_rig_stream(&whole, feed, len);
    fuzz_rig_close(&whole);

    fuzz_rig_open(&cut, INGEST_ITCH, ctl, size);
    fuzz_rig_stream(&cut, feed, len);
    fuzz_rig_close(&cut);
    fuzz_rig_compare(&whole, &cut);

    check_round_trip(feed, len);
    return 0;
}

"""test_mold.py - MoldUDP64 datagrams into the real tickd on loopback.

Packets are built here from the MoldUDP64 specification (session, 10 bytes
of space-padded alpha; sequence number of the first message, 8 bytes;
message count, 2 bytes; then a 2-byte length before each message; all
big-endian), each message an ITCH 5.0 system event (S, 12 bytes). The
feed's counters come from /metrics and its health from /healthz.

Once, one datagram numbered 2^64 - 5 made tickd drop every later
packet while the feed looked healthy, and the gap counter read 1.8e19 and
then went backwards. Here such a datagram is counted and ignored, a run of
packets confirms a real jump, counters never decrease across scrapes, and a
feed that delivers nothing goes stale.
"""

import socket
import struct
import time
import unittest

from harness import Tickd, free_port, wait_for

FEED = "mold"
FORGED = 2**64 - 5
CONFIRM = 3  # MOLD_CONFIRM in feed/mold.h: packets of a run that confirm a jump
COUNTERS = ["messages", "sequence_gaps", "sequence_jumps", "duplicate_messages",
            "session_changes", "decode_errors"]


def system_event(seq):
    """An ITCH 5.0 S message (start of messages), its timestamp the sequence."""
    return b"S" + struct.pack(">HH", 0, 0) + (seq % 2**48).to_bytes(6, "big") + b"O"


def mold_packet(seq, count=1, session="S1", count_field=None):
    """A MoldUDP64 datagram of count messages numbered from seq; count_field
    overrides the header's count (0: heartbeat, 0xFFFF: end of session)."""
    header = struct.pack(">10sQH", session.ljust(10).encode(), seq,
                         count if count_field is None else count_field)
    blocks = b"".join(struct.pack(">H", 12) + system_event(seq + i) for i in range(count))
    return header + blocks


def udp_feed(port, extra=""):
    return f"""
feeds:
  - name: {FEED}
    type: udp
    format: mold
    listen: 127.0.0.1:{port}
{extra}"""


class MoldFeedTest(unittest.TestCase):
    def start(self, extra=""):
        port = free_port(socket.SOCK_DGRAM)
        self.tickd = Tickd(feeds=udp_feed(port, extra)).start()
        self.addCleanup(self.tickd.close)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(self.sock.close)
        self.addr = ("127.0.0.1", port)
        self.seen = {}  # the highest value of each counter scraped so far

    def send(self, datagram):
        self.sock.sendto(datagram, self.addr)

    def counters(self):
        """The feed's counters, each checked never to be lower than at any
        earlier scrape."""
        page = self.tickd.metrics()
        now = {}
        for name in COUNTERS:
            key = f'tickd_feed_{name}_total{{feed="{FEED}"}}'
            if key not in page:
                self.fail(f"no {key} on /metrics")
            now[name] = page[key]
            self.assertGreaterEqual(now[name], self.seen.get(name, 0),
                                    f"tickd_feed_{name}_total went back")
            self.seen[name] = now[name]
        return now

    def wait_counter(self, name, value, timeout=10):
        got = wait_for(lambda: self.counters()[name] >= value or None, timeout,
                       f"tickd_feed_{name}_total to reach {value}")
        self.assertEqual(self.counters()[name], value)
        return got

    def deliver(self, first, last, batch=50):
        """Sends messages first..last, one a datagram, a batch at a time, each
        batch delivered before the next is sent (a UDP socket buffer is not
        unbounded)."""
        base = self.counters()["messages"]
        for start in range(first, last + 1, batch):
            end = min(start + batch - 1, last)
            for seq in range(start, end + 1):
                self.send(mold_packet(seq))
            self.wait_counter("messages", base + end - first + 1)

    def healthz(self):
        status, _, body = self.tickd.http_get("/healthz")
        return status, body

    def test_one_datagram_numbered_near_2_64_does_not_black_out_the_feed(self):
        self.start()
        self.deliver(1, 10)
        self.send(mold_packet(FORGED))
        self.wait_counter("sequence_jumps", 1)
        self.deliver(11, 2010)
        c = self.counters()
        self.assertEqual(c["messages"], 2010)
        self.assertEqual(c["sequence_jumps"], 1)
        self.assertEqual(c["sequence_gaps"], 0)
        self.assertEqual(c["duplicate_messages"], 0)
        self.assertEqual(c["decode_errors"], 0)
        self.assertIn("MoldUDP64 packet ignored", self.tickd.log())
        self.assertEqual(self.healthz()[0], 200)

    def test_a_run_of_packets_far_ahead_moves_the_feed_there_with_one_gap(self):
        self.start()
        self.deliver(1, 5)
        far = 40_000_000
        for i in range(CONFIRM):
            self.send(mold_packet(far + 2 * i, count=2))
        last = far + 2 * (CONFIRM - 1)
        self.wait_counter("messages", 5 + 2)
        c = self.counters()
        self.assertEqual(c["sequence_jumps"], CONFIRM - 1)
        self.assertEqual(c["sequence_gaps"], last - 6)
        self.send(mold_packet(last + 2))  # the stream goes on from there
        self.wait_counter("messages", 8)
        self.send(mold_packet(3))  # and what lies behind it is old
        self.wait_counter("duplicate_messages", 1)
        self.assertEqual(self.counters()["messages"], 8)

    def test_a_new_session_starts_over_and_is_counted(self):
        self.start()
        self.deliver(1, 3)
        self.send(mold_packet(1, count=2, session="S2"))
        self.wait_counter("messages", 5)
        c = self.counters()
        self.assertEqual(c["session_changes"], 1)
        self.assertEqual(c["sequence_gaps"], 0)

    def test_a_feed_that_delivers_nothing_goes_stale(self):
        self.start("    stale_after: 1s\n")
        self.deliver(1, 3)
        self.assertEqual(self.healthz()[0], 200)
        junk = [mold_packet(1), mold_packet(FORGED), b"short", mold_packet(2**62)]

        def stale():
            for datagram in junk:  # datagrams keep coming, none delivers
                self.send(datagram)
            status, body = self.healthz()
            return status == 503 and body

        body = wait_for(stale, 10, "/healthz 503 for a feed fed only junk")
        self.assertIn(f"feed {FEED}: no message for", body)
        c = self.counters()
        self.assertEqual(c["messages"], 3)
        self.assertGreater(c["duplicate_messages"], 0)
        self.assertGreater(c["sequence_jumps"], 0)
        self.send(mold_packet(4))
        wait_for(lambda: self.healthz()[0] == 200, 10, "/healthz 200 after a delivered message")

    def test_heartbeats_at_the_next_number_keep_the_feed_fresh(self):
        self.start("    stale_after: 1s\n")
        self.deliver(1, 3)
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            self.send(mold_packet(4, count=0, count_field=0))
            status, body = self.healthz()
            self.assertEqual(status, 200, body)
            time.sleep(0.2)
        self.assertEqual(self.counters()["messages"], 3)


if __name__ == "__main__":
    unittest.main()

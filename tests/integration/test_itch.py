"""ITCH 5.0 on the real binary: messages built here byte by byte (from the
specification, not from tickd's encoder) go over a TCP feed, and what a
subscriber and the journal see of their trades is checked."""

import json
import os
import struct
import subprocess
import unittest

from harness import TICKD, Tickd, free_port, journal_file, tcp_feed, wait_for

TS = 34200 * 10**9  # 09:30, ns since midnight


def header(kind, locate, ts):
    return kind + struct.pack(">HH", locate, 0) + ts.to_bytes(6, "big")


def add(ref, side, shares, stock, price):
    return header(b"A", 1, TS + ref) + struct.pack(">QcI8sI", ref, side, shares,
                                                   stock.ljust(8).encode(), price)


def executed(ref, shares, match):
    return header(b"E", 1, TS + 100) + struct.pack(">QIQ", ref, shares, match)


def trade(side, shares, stock, price, match):
    """P: order reference 0 and the Buy/Sell Indicator as Nasdaq sends it."""
    return header(b"P", 1, TS + 200) + struct.pack(">QcI8sIQ", 0, side, shares,
                                                   stock.ljust(8).encode(), price, match)


def broken(match):
    """B: the execution with this match number was broken."""
    return header(b"B", 1, TS + 300) + struct.pack(">Q", match)


def binfile(*messages):
    return b"".join(struct.pack(">H", len(m)) + m for m in messages)


class TradeSideTest(unittest.TestCase):
    def test_a_p_trade_reaches_subscribers_and_the_journal_without_a_side(self):
        feed_port = free_port()
        t = Tickd(feeds=tcp_feed("itch", feed_port, fmt="itch"), journal=True)
        self.addCleanup(t.close)
        t.start()
        sub = t.resp()
        self.addCleanup(sub.close)
        self.assertEqual(sub.call("SUBSCRIBE", "trade.ROW"), [b"subscribe", b"trade.ROW", 1])
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        feed.sendall(binfile(add(1, b"S", 300, "ROW", 1000100),
                             executed(1, 100, 7),  # a buyer takes the offer: side B
                             trade(b"B", 40, "ROW", 1000050, 8)))
        got = [json.loads(sub.read()[2]) for _ in range(2)]
        self.assertEqual((got[0]["price"], got[0]["size"], got[0]["side"]), ("100.0100", 100, "B"))
        self.assertEqual((got[1]["price"], got[1]["size"]), ("100.0050", 40))
        self.assertNotIn("side", got[1])

        wait_for(lambda: t.metric('tickd_feed_messages_total{feed="itch"}') == 3,
                 what="the three messages")
        self.assertEqual(t.stop(), 0)
        r = subprocess.run([TICKD, "journal", "cat", journal_file(t)], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        trades = [line.split(",") for line in r.stdout.splitlines() if line.startswith("T,")]
        self.assertEqual(len(trades), 2, r.stdout)
        self.assertEqual(trades[0][2:], ["ROW", "100.0100", "100", "B"])
        self.assertEqual(trades[1][2:], ["ROW", "100.0050", "40"])  # no side field


class BrokenTradeTest(unittest.TestCase):
    DAY = (add(1, b"S", 300, "ROW", 1000100), executed(1, 100, 7), broken(7), broken(9))

    def test_broken_trades_are_counted_in_the_metrics_and_not_published(self):
        feed_port = free_port()
        t = Tickd(feeds=tcp_feed("itch", feed_port, fmt="itch"))
        self.addCleanup(t.close)
        t.start()
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        feed.sendall(binfile(*self.DAY))
        wait_for(lambda: t.metric('tickd_feed_messages_total{feed="itch"}') == 4,
                 what="the four messages")
        self.assertEqual(t.metric("tickd_market_broken_trades_total"), 2)
        self.assertEqual(t.metric("tickd_ticks_total{kind=\"trade\"}"), 1)
        self.assertEqual(t.stop(), 0)

    def test_replay_json_summary_counts_the_broken_trades(self):
        t = Tickd()
        self.addCleanup(t.close)
        day = os.path.join(t.dir.name, "broken.itch")
        with open(day, "wb") as f:
            f.write(binfile(*self.DAY))
        r = subprocess.run([TICKD, "replay", day, "--format", "itch", "--json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json.loads(r.stdout)
        self.assertEqual((summary["messages"], summary["trades"], summary["broken_trades"]),
                         (4, 1, 2))


if __name__ == "__main__":
    unittest.main()

"""Last values and books without subscribing, on the real binary: ITCH 5.0
orders built here byte by byte (from the specification, not from tickd's
encoder) go over a TCP feed, and GET book.X, GET quote.X, KEYS and SCAN are
checked, through this harness's RESP client in both protocols and through
redis-cli, against the book this test builds from the same orders."""

import json
import random
import struct
import subprocess
import unittest

from harness import PROTOCOLS, RespError, Tickd, free_port, tcp_feed, wait_for

TS = 34200 * 10**9  # 09:30, ns since midnight
STOCK = "BOOK"


def header(kind, ts):
    return kind + struct.pack(">HH", 1, 0) + ts.to_bytes(6, "big")


def add(ref, side, shares, price, ts):
    return header(b"A", ts) + struct.pack(">QcI8sI", ref, side, shares,
                                          STOCK.ljust(8).encode(), price)


def cancel(ref, shares, ts):
    return header(b"X", ts) + struct.pack(">QI", ref, shares)


def delete(ref, ts):
    return header(b"D", ts) + struct.pack(">Q", ref)


def binfile(messages):
    return b"".join(struct.pack(">H", len(m)) + m for m in messages)


def price_text(p):
    return f"{p // 10000}.{p % 10000:04d}"


class Book:
    """The book the orders make, kept the plain way: every live order."""

    def __init__(self):
        self.orders = {}  # ref -> [side, shares, price]

    def levels(self, side, depth):
        agg = {}
        for s, shares, price in self.orders.values():
            if s == side:
                level = agg.setdefault(price, [0, 0])
                level[0] += shares
                level[1] += 1
        prices = sorted(agg, reverse=(side == b"B"))[:depth]
        return [{"price": price_text(p), "shares": agg[p][0], "orders": agg[p][1]}
                for p in prices]


def random_day(rng, n):
    """n messages: adds around 100.00, and cancels and deletes of live orders.
    Returns the messages and the book they leave."""
    book, messages, ref = Book(), [], 0
    for i in range(n):
        ts = TS + i * 1000
        live = list(book.orders)
        r = rng.random()
        if live and r < 0.15:
            victim = rng.choice(live)
            del book.orders[victim]
            messages.append(delete(victim, ts))
        elif live and r < 0.3:
            victim = rng.choice(live)
            take = rng.randint(1, book.orders[victim][1])
            book.orders[victim][1] -= take
            if book.orders[victim][1] == 0:
                del book.orders[victim]
            messages.append(cancel(victim, take, ts))
        else:
            ref += 1
            side = rng.choice((b"B", b"S"))
            offset = rng.randint(1, 40) * 100
            price = 1000000 - offset if side == b"B" else 1000000 + offset
            shares = rng.randint(1, 500)
            book.orders[ref] = [side, shares, price]
            messages.append(add(ref, side, shares, price, ts))
    return messages, book


class BookQueryTest(unittest.TestCase):
    def setUp(self):
        self.feed_port = free_port()
        self.t = Tickd(feeds=tcp_feed("itch", self.feed_port, fmt="itch"))
        self.addCleanup(self.t.close)
        self.t.start()
        seed = random.randrange(1 << 30)
        self.messages, self.book = random_day(random.Random(seed), 2000)
        self.seed = seed
        feed = self.t.feed_connection(self.feed_port)
        self.addCleanup(feed.close)
        feed.sendall(binfile(self.messages))
        wait_for(lambda: self.t.metric('tickd_feed_messages_total{feed="itch"}')
                 == len(self.messages), what="every ITCH message applied")

    def expected(self, depth):
        return {"bids": self.book.levels(b"B", depth), "asks": self.book.levels(b"S", depth)}

    def test_get_book_is_the_book_the_orders_make_at_every_depth_in_both_protocols(self):
        for proto in PROTOCOLS:
            c = self.t.resp(proto)
            self.addCleanup(c.close)
            for key, depth in (("book.BOOK", 10), ("book.BOOK:1", 1), ("book.BOOK:50", 50),
                               ("book.BOOK:1000", 1000)):
                with self.subTest(proto=proto, key=key, seed=self.seed):
                    got = json.loads(c.call("GET", key))
                    self.assertEqual(got["sym"], STOCK)
                    self.assertEqual({"bids": got["bids"], "asks": got["asks"]},
                                     self.expected(depth))
            # The top of the book is the last quote: ts is that quote's.
            quote = json.loads(c.call("GET", "quote.BOOK"))
            book = json.loads(c.call("GET", "book.BOOK"))
            self.assertEqual(book["ts"], quote["ts"])
            top = self.expected(1)
            self.assertEqual((quote["bid"], quote["bid_size"]),
                             (top["bids"][0]["price"], top["bids"][0]["shares"]))
            self.assertEqual((quote["ask"], quote["ask_size"]),
                             (top["asks"][0]["price"], top["asks"][0]["shares"]))
            self.assertIsNone(c.call("GET", "book.NOPE"))
            self.assertEqual(str(c.call("GET", "book.BOOK:0")),
                             "ERR book depth is out of range, must be between 1 and 1000")
            self.assertIsInstance(c.call("GET", "book.BOOK:many"), RespError)

    def test_redis_cli_reads_the_book_and_lists_the_keys(self):
        def cli(*args):
            run = subprocess.run(["redis-cli", "-p", str(self.t.pubsub_port), *args],
                                 capture_output=True, text=True, timeout=10)
            self.assertEqual(run.returncode, 0, run.stderr)
            return run.stdout

        got = json.loads(cli("GET", "book.BOOK:20"))
        self.assertEqual({"bids": got["bids"], "asks": got["asks"]}, self.expected(20),
                         f"seed {self.seed}")
        self.assertEqual(cli("KEYS", "*BOOK").split(), ["quote.BOOK"])  # no trade made
        self.assertEqual(cli("--scan").split(), ["quote.BOOK"])


if __name__ == "__main__":
    unittest.main()

"""redis-py from Debian (python3-redis 4.3, RESP2 only) with its default
options against the real server: subscribe to a channel and a pattern, receive
ticks, PUBLISH, PING in subscribe mode, unsubscribe, AUTH right and wrong; the
last values by GET, MGET, KEYS and SCAN (scan_iter) without subscribing; a
user with narrow rights (AUTH user pass, NOPERM, its pattern).

Run with Debian's /usr/bin/python3 (ctest does): the python3 first on PATH may
be another interpreter without python3-redis, and then this test fails saying
so rather than skipping.
"""

import time
import unittest

try:
    import redis
except ImportError as e:
    raise SystemExit(f"redis-py is not importable ({e}): install Debian's python3-redis "
                     "(deploy/setup.sh deps) and run this test with /usr/bin/python3")

from servers import (ALICE, ALICE_PASSWORD, PASSWORD, WRONG_PASSWORD, ServerTestCase, quote_line,
                     trade_line)


class RedisPyTest(ServerTestCase):
    def client(self, password=PASSWORD):
        r = redis.Redis("127.0.0.1", self.server.port, password=password)
        self.addCleanup(r.close)
        return r

    def subscriber(self):
        pubsub = self.client().pubsub()
        self.addCleanup(pubsub.close)
        return pubsub

    def next_message(self, pubsub, timeout=5):
        """The next message of any type, or a failure after timeout seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = pubsub.get_message(timeout=end - time.monotonic())
            if msg is not None:
                return msg
        raise AssertionError(f"no pub/sub message within {timeout} s")

    def test_subscribe_and_psubscribe_are_confirmed_with_counts_and_deliver_the_published_tick(self):
        sub = self.subscriber()
        sub.subscribe("trade.AAPL")
        self.assertEqual(self.next_message(sub),
                         {"type": "subscribe", "pattern": None, "channel": b"trade.AAPL",
                          "data": 1})
        sub.psubscribe("trade.*")
        self.assertEqual(self.next_message(sub),
                         {"type": "psubscribe", "pattern": None, "channel": b"trade.*",
                          "data": 2})

        line = trade_line("AAPL", 1700000000000000000, 101.25, 100, "B")
        self.assertEqual(self.client().publish("trade.AAPL", line), 2)
        self.assertEqual(self.next_message(sub),
                         {"type": "message", "pattern": None, "channel": b"trade.AAPL",
                          "data": line.encode()})
        self.assertEqual(self.next_message(sub),
                         {"type": "pmessage", "pattern": b"trade.*", "channel": b"trade.AAPL",
                          "data": line.encode()})

    def test_ping_in_subscribe_mode_answers_pong_with_its_argument(self):
        sub = self.subscriber()
        sub.subscribe("trade.IBM")
        self.assertEqual(self.next_message(sub)["type"], "subscribe")
        sub.ping()
        self.assertEqual(self.next_message(sub),
                         {"type": "pong", "pattern": None, "channel": None, "data": b""})
        sub.ping("still-there")
        self.assertEqual(self.next_message(sub)["data"], b"still-there")

    def test_unsubscribe_and_punsubscribe_stop_delivery(self):
        sub = self.subscriber()
        sub.subscribe("trade.MSFT")
        sub.psubscribe("trade.M*")
        self.assertEqual([self.next_message(sub)["data"] for _ in range(2)], [1, 2])
        sub.unsubscribe("trade.MSFT")
        self.assertEqual(self.next_message(sub),
                         {"type": "unsubscribe", "pattern": None, "channel": b"trade.MSFT",
                          "data": 1})
        pub = self.client()
        first = trade_line("MSFT", 1000, 410.5, 7, "S")
        self.assertEqual(pub.publish("trade.MSFT", first), 1)
        msg = self.next_message(sub)
        self.assertEqual((msg["type"], msg["pattern"], msg["data"]),
                         ("pmessage", b"trade.M*", first.encode()))
        sub.punsubscribe("trade.M*")
        self.assertEqual(self.next_message(sub),
                         {"type": "punsubscribe", "pattern": None, "channel": b"trade.M*",
                          "data": 0})
        self.assertEqual(pub.publish("trade.MSFT", trade_line("MSFT", 2000, 410.75, 3, "B")), 0)
        self.assertIsNone(sub.get_message(timeout=0.3))

    def test_the_right_password_connects_and_a_wrong_one_is_refused_without_echoing_it(self):
        self.assertTrue(self.client().ping())
        with self.assertRaises(redis.exceptions.ResponseError) as wrong:
            self.client(password=WRONG_PASSWORD).ping()
        self.assertRegex(str(wrong.exception), r"WRONGPASS|invalid .*password")
        self.assertNotIn(WRONG_PASSWORD, str(wrong.exception))
        with self.assertRaises(redis.exceptions.AuthenticationError) as missing:
            self.client(password=None).publish("trade.AAPL", "T,1,AAPL,1.0000,1,B")
        self.assertIn("Authentication required", str(missing.exception))

    def seed_last_values(self):
        """A last trade of AAPL and MSFT and a last quote of AAPL: PUBLISHed
        ticks on tickd, SET keys of the same text on redis-server."""
        values = {
            "trade.AAPL": trade_line("AAPL", 1700000000000000000, 101.25, 100, "B"),
            "trade.MSFT": trade_line("MSFT", 1700000000000000001, 310.5, 7, "S"),
            "quote.AAPL": quote_line("AAPL", 1700000000000000002, 101.2, 300, 101.3, 200),
        }
        for channel, line in values.items():
            self.server.seed(channel, line)
        return {k.encode(): v.encode() for k, v in values.items()}

    def test_get_and_mget_answer_the_last_values_and_none_for_the_missing(self):
        values = self.seed_last_values()
        r = self.client()
        self.assertEqual(r.get("trade.AAPL"), values[b"trade.AAPL"])
        self.assertEqual(r.get("quote.AAPL"), values[b"quote.AAPL"])
        self.assertIsNone(r.get("quote.MSFT"))
        self.assertIsNone(r.get("trade.NOPE"))
        self.assertEqual(r.mget("trade.MSFT", "trade.NOPE", "quote.AAPL"),
                         [values[b"trade.MSFT"], None, values[b"quote.AAPL"]])
        self.server.seed("trade.AAPL", trade_line("AAPL", 1700000000000000003, 101.5, 1, "S"))
        self.assertEqual(r.get("trade.AAPL"),
                         trade_line("AAPL", 1700000000000000003, 101.5, 1, "S").encode())

    def test_keys_and_scan_iter_list_the_channels_with_a_last_value(self):
        values = self.seed_last_values()
        r = self.client()
        self.assertEqual(sorted(r.keys("*")), sorted(values))
        self.assertEqual(sorted(r.keys("trade.*")), [b"trade.AAPL", b"trade.MSFT"])
        self.assertEqual(r.keys("book.*"), [])
        self.assertEqual(sorted(set(r.scan_iter())), sorted(values))
        self.assertEqual(sorted(set(r.scan_iter(match="*.AAPL", count=1))),
                         [b"quote.AAPL", b"trade.AAPL"])

    def test_get_in_subscribe_mode_is_refused_as_redis_refuses_it(self):
        self.seed_last_values()
        sub = self.subscriber()
        sub.subscribe("trade.IBM")
        self.assertEqual(self.next_message(sub)["type"], "subscribe")
        sub.execute_command("GET", "trade.AAPL")
        with self.assertRaisesRegex(redis.ResponseError, "Can't execute 'get'"):
            self.next_message(sub)


    def alice(self):
        """A client of the user alice (trade.A* only), redis-py's defaults
        otherwise: AUTH alice <password> on connect."""
        r = redis.Redis("127.0.0.1", self.server.port, username=ALICE, password=ALICE_PASSWORD)
        self.addCleanup(r.close)
        return r

    def test_a_user_gets_noperm_outside_its_channels_and_only_its_channels_through_a_pattern(self):
        values = self.seed_last_values()
        r = self.alice()
        self.assertTrue(r.ping())
        wrong = redis.Redis("127.0.0.1", self.server.port, username=ALICE, password=WRONG_PASSWORD)
        self.addCleanup(wrong.close)
        with self.assertRaisesRegex(redis.exceptions.ResponseError, "^WRONGPASS"):
            wrong.ping()
        noperm = "no permissions to access one of the"
        with self.assertRaisesRegex(redis.exceptions.NoPermissionError, noperm + " channels"):
            r.publish("trade.MSFT", trade_line("MSFT", 5, 310.5, 1, "B"))
        with self.assertRaisesRegex(redis.exceptions.NoPermissionError, noperm + " keys"):
            r.get("trade.MSFT")
        with self.assertRaisesRegex(redis.exceptions.NoPermissionError, noperm + " keys"):
            r.mget("trade.AAPL", "trade.MSFT")
        self.assertEqual(r.get("trade.AAPL"), values[b"trade.AAPL"])

        sub = r.pubsub()
        self.addCleanup(sub.close)
        sub.subscribe("trade.MSFT")
        with self.assertRaisesRegex(redis.exceptions.NoPermissionError, noperm + " channels"):
            self.next_message(sub)
        sub.psubscribe("trade.*")  # would cover trade.MSFT: refused (Redis 7's literal rule)
        with self.assertRaisesRegex(redis.exceptions.NoPermissionError, noperm + " channels"):
            self.next_message(sub)
        sub.psubscribe("trade.A*")
        self.assertEqual(self.next_message(sub)["type"], "psubscribe")
        if self.server.__class__.__name__ == "TickdServer":  # tickd's snapshot on subscribe
            self.assertEqual(self.next_message(sub)["channel"], b"trade.AAPL")
        pub = self.client()
        msft = trade_line("MSFT", 6, 310.5, 2, "B")
        amzn = trade_line("AMZN", 7, 180.25, 3, "S")
        self.assertEqual(pub.publish("trade.MSFT", msft), 0)
        self.assertEqual(r.publish("trade.AMZN", amzn), 1)
        self.assertEqual(self.next_message(sub),
                         {"type": "pmessage", "pattern": b"trade.A*", "channel": b"trade.AMZN",
                          "data": amzn.encode()})
        self.assertIsNone(sub.get_message(timeout=0.3))


if __name__ == "__main__":
    unittest.main()

"""redis-py from Debian (python3-redis 4.3, RESP2 only) with its default
options against the real server: subscribe to a channel and a pattern, receive
ticks, PUBLISH, PING in subscribe mode, unsubscribe, AUTH right and wrong.

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

from servers import PASSWORD, WRONG_PASSWORD, ServerTestCase, trade_line


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


if __name__ == "__main__":
    unittest.main()

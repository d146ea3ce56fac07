"""Subscribers on the real binary: redis-cli, a raw RESP client, PUBLISH ingest,
slow consumers, many subscribers, and bad protocol input."""

import json
import os
import resource
import select
import socket
import subprocess
import time
import unittest

from harness import Tickd, free_port, tcp_feed, wait_for


class RedisCli:
    """redis-cli in subscribe mode, its output read line by line."""

    def __init__(self, port, *args):
        self.proc = subprocess.Popen(["redis-cli", "-p", str(port), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pending = b""

    def lines(self, n, timeout=10):
        out = []
        end = time.monotonic() + timeout
        while len(out) < n:
            while b"\n" in self.pending and len(out) < n:
                line, self.pending = self.pending.split(b"\n", 1)
                out.append(line.decode())
            if len(out) == n:
                break
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"redis-cli gave {out} of {n} lines")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"redis-cli exited; got {out}")
                self.pending += chunk
        return out

    def close(self):
        self.proc.kill()
        self.proc.wait()


def send_ticks(sock, lines):
    sock.sendall("".join(line + "\n" for line in lines).encode())


class PubSubTest(unittest.TestCase):
    def setUp(self):
        self.feed_port = free_port()
        self.tickd = Tickd(feeds=tcp_feed("live", self.feed_port)).start()
        self.addCleanup(self.tickd.close)

    def test_redis_cli_subscribe_and_psubscribe_receive_the_right_ticks_in_order(self):
        sub = RedisCli(self.tickd.pubsub_port, "SUBSCRIBE", "trade.AAPL")
        self.addCleanup(sub.close)
        psub = RedisCli(self.tickd.pubsub_port, "PSUBSCRIBE", "trade.*")
        self.addCleanup(psub.close)
        self.assertEqual(sub.lines(3), ["subscribe", "trade.AAPL", "1"])
        self.assertEqual(psub.lines(3), ["psubscribe", "trade.*", "1"])

        feed = self.tickd.feed_connection(self.feed_port)
        self.addCleanup(feed.close)
        send_ticks(feed, [
            "T,1000,AAPL,101.25,100,B",
            "T,2000,MSFT,410.5,7,S",
            "Q,3000,AAPL,101.2,300,101.3,200",
            "T,4000,AAPL,101.3,50,S",
        ])
        got = sub.lines(6)
        self.assertEqual(got[0:2], ["message", "trade.AAPL"])
        first, second = json.loads(got[2]), json.loads(got[5])
        self.assertEqual((first["sym"], first["kind"], first["price"], first["size"],
                          first["side"], first["ts"]),
                         ("AAPL", "trade", "101.2500", 100, "B", 1000))
        self.assertEqual((second["price"], second["size"], second["side"]),
                         ("101.3000", 50, "S"))
        self.assertLess(first["seq"], second["seq"])

        got = psub.lines(12)
        self.assertEqual([got[i] for i in (0, 4, 8)], ["pmessage"] * 3)
        self.assertEqual([got[i] for i in (2, 6, 10)],
                         ["trade.AAPL", "trade.MSFT", "trade.AAPL"])
        self.assertEqual([json.loads(got[i])["ts"] for i in (3, 7, 11)], [1000, 2000, 4000])

    def test_raw_client_speaks_resp2_like_redis(self):
        c = self.tickd.resp()
        self.addCleanup(c.close)
        self.assertEqual(c.call("PING"), "PONG")
        self.assertEqual(c.call("PING", "hello"), b"hello")
        hello = c.call("HELLO", "2")
        self.assertEqual(dict(zip(hello[::2], hello[1::2]))[b"proto"], 2)
        self.assertEqual(c.call("CLIENT", "SETNAME", "it"), "OK")
        self.assertEqual(c.call("SUBSCRIBE", "quote.IBM", "trade.IBM"),
                         [b"subscribe", b"quote.IBM", 1])
        self.assertEqual(c.read(), [b"subscribe", b"trade.IBM", 2])
        self.assertEqual(c.call("PING"), [b"pong", b""])
        c.send_raw(b"PING\r\n")  # an inline command
        self.assertEqual(c.read(), [b"pong", b""])
        self.assertEqual(c.call("UNSUBSCRIBE", "quote.IBM"), [b"unsubscribe", b"quote.IBM", 1])
        self.assertEqual(c.call("RESET"), "RESET")
        self.assertEqual(c.call("PING"), "PONG")

    def test_publish_is_an_ingest_path_that_fans_out_and_counts_receivers(self):
        sub = self.tickd.resp()
        self.addCleanup(sub.close)
        self.assertEqual(sub.call("SUBSCRIBE", "trade.SPY")[0], b"subscribe")
        pub = self.tickd.resp()
        self.addCleanup(pub.close)
        self.assertEqual(pub.call("PUBLISH", "trade.SPY", "T,77,SPY,450.01,3,B"), 1)
        msg = sub.read()
        self.assertEqual(msg[:2], [b"message", b"trade.SPY"])
        tick = json.loads(msg[2])
        self.assertEqual((tick["price"], tick["size"], tick["ts"]), ("450.0100", 3, 77))
        bad = pub.call("PUBLISH", "trade.SPY", "T,77,SPY,not-a-price,3")
        self.assertIn("ERR", str(bad))
        bad = pub.call("PUBLISH", "trade.QQQ", "T,77,SPY,1,3")
        self.assertIn("ERR", str(bad))
        wait_for(lambda: self.tickd.metric('tickd_ticks_total{kind="trade"}') == 1,
                 what="one trade counted")

    def test_snapshot_on_subscribe_sends_the_last_value_first(self):
        feed = self.tickd.feed_connection(self.feed_port)
        self.addCleanup(feed.close)
        send_ticks(feed, ["T,1,IBM,150,1", "T,2,IBM,151,2"])
        wait_for(lambda: self.tickd.metric('tickd_ticks_total{kind="trade"}') == 2,
                 what="ticks applied")
        c = self.tickd.resp()
        self.addCleanup(c.close)
        self.assertEqual(c.call("SUBSCRIBE", "trade.IBM"), [b"subscribe", b"trade.IBM", 1])
        snap = c.read()
        self.assertEqual(json.loads(snap[2])["price"], "151.0000")

    def test_slow_consumer_is_cut_off_while_a_normal_subscriber_gets_every_tick(self):
        self.tickd.close()
        self.tickd = Tickd(feeds=tcp_feed("live", self.feed_port),
                           pubsub_extra=["output_hard_limit: 256KiB",
                                         "output_soft_limit: 128KiB",
                                         "output_soft_seconds: 1s"]).start()
        self.addCleanup(self.tickd.close)  # setUp's cleanup closes the first one only
        slow = socket.create_connection(("127.0.0.1", self.tickd.pubsub_port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.addCleanup(slow.close)
        slow.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$8\r\ntrade.XX\r\n")
        good = RedisCli(self.tickd.pubsub_port, "SUBSCRIBE", "trade.XX")
        self.addCleanup(good.close)
        good.lines(3)
        wait_for(lambda: self.tickd.metric("tickd_pubsub_clients") == 2, what="2 clients")

        n = 20000
        feed = self.tickd.feed_connection(self.feed_port)
        self.addCleanup(feed.close)
        send_ticks(feed, [f"T,{i},XX,1.{i % 10000:04d},{i + 1},B" for i in range(n)])
        got = good.lines(3 * n, timeout=60)
        sizes = [json.loads(got[i])["size"] for i in range(2, 3 * n, 3)]
        self.assertEqual(sizes, list(range(1, n + 1)))
        wait_for(lambda: self.tickd.metric("tickd_pubsub_slow_consumer_disconnects_total") == 1,
                 what="the slow consumer cut off")
        self.assertEqual(self.tickd.metric("tickd_pubsub_clients"), 1)

    def test_a_thousand_concurrent_subscribers_each_get_the_tick(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        clients = []
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", self.tickd.pubsub_port))
            s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$10\r\ntrade.MANY\r\n")
            clients.append(s)
        self.addCleanup(lambda: [s.close() for s in clients])
        wait_for(lambda: self.tickd.metric("tickd_pubsub_clients") == 1000, timeout=30,
                 what="1000 clients")
        feed = self.tickd.feed_connection(self.feed_port)
        self.addCleanup(feed.close)
        send_ticks(feed, ["T,5,MANY,2.5,10,S"])
        for s in clients:
            s.settimeout(10)
            data = b""
            while b'"sym":"MANY"' not in data:
                data += s.recv(65536)
        self.assertGreaterEqual(self.tickd.metric("tickd_pubsub_messages_sent_total"), 1000)

    def test_malformed_resp_gets_a_protocol_error_and_a_close(self):
        for junk in (b"*2\r\n$4\r\nPING\r\nxx\r\n", b"*1\r\n$-5\r\n", b"*abc\r\n",
                     b"*1\r\n$999999999999\r\n"):
            c = self.tickd.resp()
            c.send_raw(junk)
            reply = c.read()
            self.assertIn("Protocol error", str(reply), junk)
            self.assertTrue(c.closed(), junk)
            c.close()
        # The server is still serving.
        c = self.tickd.resp()
        self.addCleanup(c.close)
        self.assertEqual(c.call("PING"), "PONG")


if __name__ == "__main__":
    unittest.main()

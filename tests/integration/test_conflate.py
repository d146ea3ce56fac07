"""Conflation on the real binary, through the clients users have, with their
defaults: redis-cli, redis-py (Debian's python3-redis, so Debian's
/usr/bin/python3 runs this file) and node-redis (tests/node_modules, through
clients/conflate.js). Ticks come in over a TCP CSV feed, in bursts written
at once, so that a burst lands inside one interval.

- A conflated channel (quote.AAPL@100ms) gets the latest quote of a burst,
  named as subscribed; a conflated trade pattern (trade.*@100ms) gets one
  exact summary (last price, summed size, count); a bad suffix is an error
  and subscribes nothing.
- A subscriber that stops reading and later reads again: with
  pubsub.slow_consumer: disconnect it is cut once it has been over the soft
  limit for output_soft_seconds (as before); after a SIGHUP to conflate it
  is kept instead, and ends with the latest quote of every symbol.
- Conflation, like the cut, waits output_soft_seconds: a reader that reads
  its backlog sooner gets every quote; one that does not is conflated, and
  not before.
"""

import json
import os
import select
import signal
import socket
import subprocess
import time
import unittest

from harness import Resp, Tickd, free_port, tcp_feed, wait_for

try:
    import redis
except ImportError as e:
    raise SystemExit(f"redis-py is not importable ({e}): install Debian's python3-redis "
                     "(deploy/setup.sh deps) and run this test with /usr/bin/python3")

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = ["quote.AAPL@5ms", "quote.AAPL@0ms", "quote.AAPL@2h", "quote.AAPL@abc"]


def quote(i, sym="AAPL"):
    return f"Q,{i},{sym},1.{i % 10000:04d},1,2.0000,1"


def trade(i, size, sym="MSFT"):
    return f"T,{1000 + i},{sym},3.{i:04d},{size},B"


def bad_reply(name):
    return (f"ERR bad conflation interval in '{name}': the suffix is @<n>ms, @<n>s, @<n>m "
            "or @<n>h, from 10ms to 1h, after a channel name")


class ConflateTest(unittest.TestCase):
    limit = 60  # seconds a test may run (ASan included) before it fails instead of hanging

    def setUp(self):
        signal.signal(signal.SIGALRM, self._timed_out)
        signal.alarm(self.limit)
        self.addCleanup(signal.alarm, 0)

    def _timed_out(self, signum, frame):
        log = self.t.log() if hasattr(self, "t") else ""
        raise AssertionError(f"{self.id()} still running after {self.limit} s; tickd's log:\n"
                             f"{log}")

    def start(self, pubsub_extra=()):
        self.feed_port = free_port()
        self.t = Tickd(feeds=tcp_feed("live", self.feed_port),
                       pubsub_extra=["payload: csv", *pubsub_extra])
        self.addCleanup(self.t.close)
        self.t.start()
        self.feed = self.t.feed_connection(self.feed_port)
        self.addCleanup(self.feed.close)

    def send_ticks(self, lines):
        self.feed.sendall(("\n".join(lines) + "\n").encode())

    def quotes_received(self):
        if not hasattr(self, "admin"):
            self.admin = Resp(self.t.pubsub_port)
            self.addCleanup(self.admin.close)
        info = self.admin.call("INFO", "stats").decode()
        return int(info.split("total_quotes_received:")[1].split("\r\n")[0])

    def test_redis_cli_gets_the_latest_quote_of_a_burst_and_an_error_for_a_bad_suffix(self):
        self.start()
        cli = subprocess.Popen(["redis-cli", "-p", str(self.t.pubsub_port), "SUBSCRIBE",
                                "quote.AAPL@100ms"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.addCleanup(cli.wait)
        self.addCleanup(cli.kill)
        self.assertEqual([cli.stdout.readline() for _ in range(3)],
                         [b"subscribe\n", b"quote.AAPL@100ms\n", b"1\n"])
        self.send_ticks([quote(i) for i in range(1, 301)])
        self.assertEqual([cli.stdout.readline() for _ in range(3)][:2],
                         [b"message\n", b"quote.AAPL@100ms\n"])
        # Nothing more: the burst's latest came (possibly after an earlier
        # one when the burst straddled an interval's end), then silence.
        out = b""
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            r, _, _ = select.select([cli.stdout], [], [], end - time.monotonic())
            if r:
                out += os.read(cli.stdout.fileno(), 65536)
        self.assertLessEqual(out.count(b"message\n"), 1)
        cli.kill()
        for name in BAD:
            run = subprocess.run(["redis-cli", "-p", str(self.t.pubsub_port), "SUBSCRIBE", name],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, timeout=10)
            self.assertEqual(run.stdout.decode().strip(), bad_reply(name))
        admin = Resp(self.t.pubsub_port)
        self.addCleanup(admin.close)
        self.assertEqual(admin.call("PUBSUB", "NUMSUB", "quote.AAPL@5ms"), [b"quote.AAPL@5ms", 0])

    def test_redis_py_gets_one_latest_quote_and_an_exact_trade_summary(self):
        self.start()
        r = redis.Redis("127.0.0.1", self.t.pubsub_port)
        self.addCleanup(r.close)
        sub = r.pubsub()
        self.addCleanup(sub.close)
        sub.subscribe("quote.AAPL@100ms")
        sub.psubscribe("trade.*@100ms")
        confirmations = [sub.get_message(timeout=5) for _ in range(2)]
        self.assertEqual([m["type"] for m in confirmations], ["subscribe", "psubscribe"])
        self.send_ticks([quote(i) for i in range(1, 201)] +
                        [trade(i, i) for i in range(1, 11)])
        got = []
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            m = sub.get_message(timeout=end - time.monotonic())
            if m is not None:
                got.append(m)
        quotes = [m for m in got if m["type"] == "message"]
        trades = [m for m in got if m["type"] == "pmessage"]
        self.assertIn(len(quotes), (1, 2))
        self.assertEqual(quotes[-1], {"type": "message", "pattern": None,
                                      "channel": b"quote.AAPL@100ms",
                                      "data": quote(200).encode()})
        self.assertEqual(trades, [{"type": "pmessage", "pattern": b"trade.*@100ms",
                                   "channel": b"trade.MSFT@100ms",
                                   "data": b"S,1010,MSFT,3.0010,55,10"}])
        # A bad suffix: the error, and nothing subscribed.
        for name in BAD:
            sub.subscribe(name)
            with self.assertRaises(redis.ResponseError) as e:
                sub.get_message(timeout=5)
            self.assertEqual(str(e.exception), bad_reply(name)[len("ERR "):])
        # Unsubscribed, the channel sends nothing more.
        sub.unsubscribe("quote.AAPL@100ms")
        self.assertEqual(sub.get_message(timeout=5)["type"], "unsubscribe")
        self.send_ticks([quote(500)])
        time.sleep(0.3)
        self.assertIsNone(sub.get_message(timeout=0.1))

    def test_node_redis_with_its_defaults_gets_conflated_messages_and_the_error(self):
        self.start()
        node = subprocess.Popen(["node", os.path.join(HERE, "clients", "conflate.js"),
                                 str(self.t.pubsub_port), "800"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        self.addCleanup(node.wait)
        self.addCleanup(node.kill)
        self.assertEqual(node.stdout.readline(), b"ready\n")
        self.send_ticks([quote(i) for i in range(1, 201)] +
                        [trade(i, i) for i in range(1, 11)])
        out, _ = node.communicate(timeout=20)
        self.assertEqual(node.returncode, 0, out)
        lines = out.decode().splitlines()
        self.assertEqual(lines[-1], "ok")
        result = json.loads(lines[-2])
        self.assertEqual(result["error"], bad_reply("quote.AAPL@5ms"))
        quotes = [m for m in result["messages"] if m["pattern"] is None]
        trades = [m for m in result["messages"] if m["pattern"] is not None]
        self.assertIn(len(quotes), (1, 2))
        self.assertEqual(quotes[-1], {"pattern": None, "channel": "quote.AAPL@100ms",
                                      "message": quote(200)})
        self.assertEqual(trades, [{"pattern": "trade.*@100ms", "channel": "trade.MSFT@100ms",
                                   "message": "S,1010,MSFT,3.0010,55,10"}])

    # ---- slow consumers ----

    SYMBOLS = [f"S{k:02d}" for k in range(20)]
    ROUNDS = 10000  # 200,000 quotes, about 9 MB of frames to the slow reader

    def slow_reader(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", self.t.pubsub_port))
        self.addCleanup(s.close)
        s.sendall(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$7\r\nquote.*\r\n")
        want = b"*3\r\n$10\r\npsubscribe\r\n$7\r\nquote.*\r\n:1\r\n"
        got = b""
        while len(got) < len(want):
            got += s.recv(len(want) - len(got))
        self.assertEqual(got, want)
        return s

    def flood(self, base):
        """ROUNDS quotes of each symbol, quote i of a symbol bid base + i; waits
        until tickd has taken them all."""
        before = self.quotes_received()
        for start in range(0, self.ROUNDS, 500):
            self.send_ticks([f"Q,{i},{sym},{base + i}.0000,1,999999.0000,1"
                             for i in range(start, start + 500) for sym in self.SYMBOLS])
        want = before + self.ROUNDS * len(self.SYMBOLS)
        wait_for(lambda: self.quotes_received() == want, 60, "the feed's quotes taken")

    def read_latest(self, sock, base):
        """Reads sock until every symbol's latest quote of a flood(base) came;
        returns how many quote frames that took."""
        latest = {}
        frames = 0
        buf = b""
        sock.settimeout(10)
        last = f"{base + self.ROUNDS - 1}.0000"
        while len(latest) < len(self.SYMBOLS) or any(v != last for v in latest.values()):
            chunk = sock.recv(1 << 20)
            self.assertTrue(chunk, "the conflated reader was closed")
            buf += chunk
            while True:
                end = buf.find(b"\r\n", buf.find(b"Q,"))
                if buf.find(b"Q,") < 0 or end < 0:
                    break
                line = buf[buf.find(b"Q,"):end].decode().split(",")
                latest[line[2]] = line[3]
                frames += 1
                buf = buf[end + 2:]
        self.assertEqual(sorted(latest), self.SYMBOLS)
        return frames

    def test_a_slow_reader_is_cut_with_disconnect_and_kept_current_with_conflate(self):
        # The hard limit (32 MiB) is above the flood: the soft limit decides.
        self.start(["output_soft_limit: 64KiB", "output_soft_seconds: 1s",
                    "snapshot_on_subscribe: false", "slow_consumer: disconnect"])
        cut = self.slow_reader()
        self.flood(1)
        wait_for(lambda: self.t.metric("tickd_pubsub_slow_consumer_disconnects_total") == 1, 10,
                 "the slow reader cut")
        cut.settimeout(10)
        try:
            while cut.recv(65536):
                pass
        except ConnectionResetError:
            pass

        # SIGHUP to conflate: the same flood leaves a slow reader connected.
        self.t.pubsub_extra = [line.replace("disconnect", "conflate")
                               for line in self.t.pubsub_extra]
        self.t.write_config()
        self.t.signal(signal.SIGHUP)
        self.t.wait_note("READY=1", 10)
        slow = self.slow_reader()
        self.flood(100000)
        wait_for(lambda: self.t.metric("tickd_pubsub_conflations_total") == 1, 10,
                 "the slow reader conflated")
        self.assertEqual(self.t.metric("tickd_pubsub_slow_consumer_disconnects_total"), 1)
        self.assertEqual(self.t.metric("tickd_pubsub_conflated_clients"), 1)

        # It reads again: the latest quote of every symbol, far fewer frames
        # than quotes, and it leaves conflation.
        frames = self.read_latest(slow, 100000)
        self.assertLess(frames, self.ROUNDS * len(self.SYMBOLS) // 2)
        wait_for(lambda: self.t.metric("tickd_pubsub_conflated_clients") == 0, 10,
                 "the reader out of conflation")
        info = self.admin.call("INFO").decode()
        self.assertIn("conflated_clients:0\r\n", info)
        self.assertIn("total_conflations:1\r\n", info)
        self.assertEqual(self.t.stop(), 0)

    def test_conflation_waits_output_soft_seconds_so_a_brief_stall_gets_every_quote(self):
        soft = 5
        self.start(["output_soft_limit: 64KiB", f"output_soft_seconds: {soft}s",
                    "snapshot_on_subscribe: false", "slow_consumer: conflate"])
        brief = self.slow_reader()
        slow = self.slow_reader()
        t0 = time.monotonic()
        self.flood(1)  # about 9 MB each: more than the kernel holds for a reader

        # brief reads its backlog now: every quote, though it was over the
        # soft limit for a while.
        flooded = time.monotonic() - t0
        last = f"Q,{self.ROUNDS - 1},{self.SYMBOLS[-1]},".encode()
        chunks = []
        tail = b""
        brief.settimeout(10)
        while last not in tail or not tail.endswith(b"\r\n"):
            chunk = brief.recv(1 << 20)
            self.assertTrue(chunk, "the brief reader was closed")
            chunks.append(chunk)
            tail = (tail + chunk)[-256:]
        conflations = self.t.metric("tickd_pubsub_conflations_total")
        stalled = time.monotonic() - t0
        self.assertLess(stalled, soft, "the test's premise: the brief reader read in time "
                        f"(the flood took {flooded:.1f} s)")
        self.assertEqual(conflations, 0)
        self.assertEqual(b"".join(chunks).count(b"pmessage"), self.ROUNDS * len(self.SYMBOLS))

        # slow never reads: conflated once it has been over for soft seconds.
        wait_for(lambda: self.t.metric("tickd_pubsub_conflations_total") == 1, soft + 15,
                 "the slow reader conflated")
        self.assertGreaterEqual(time.monotonic() - t0, soft)
        self.assertEqual(self.t.metric("tickd_pubsub_conflated_clients"), 1)
        self.assertEqual(self.t.metric("tickd_pubsub_slow_consumer_disconnects_total"), 0)
        frames = self.read_latest(slow, 1)
        self.assertLess(frames, self.ROUNDS * len(self.SYMBOLS) // 2)
        self.assertEqual(self.t.metric("tickd_pubsub_conflations_total"), 1)
        self.assertEqual(self.t.stop(), 0)


if __name__ == "__main__":
    unittest.main()

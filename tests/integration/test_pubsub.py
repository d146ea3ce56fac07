"""Subscribers on the real binary: redis-cli, a raw RESP client, PUBLISH ingest,
slow consumers, many subscribers, bad protocol input, and RESP3 (HELLO 3), INFO
and PUBSUB on raw sockets, byte for byte."""

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


def command(*args):
    """A request as a RESP multibulk."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def bulk(s):
    s = s.encode() if isinstance(s, str) else s
    return b"$%d\r\n%s\r\n" % (len(s), s)


def frame(kind, *parts):
    """A message/pmessage frame or a subscription reply: kind is b"*" (RESP2)
    or b">" (a RESP3 push); an int part is a RESP integer."""
    out = kind + b"%d\r\n" % len(parts)
    for p in parts:
        out += b":%d\r\n" % p if isinstance(p, int) else bulk(p)
    return out


def hello_reply(proto, client_id):
    pairs = [bulk("server"), bulk("redis"), bulk("version"), bulk("7.0.0"), bulk("proto"),
             b":%d\r\n" % proto, bulk("id"), b":%d\r\n" % client_id, bulk("mode"),
             bulk("standalone"), bulk("role"), bulk("master"), bulk("modules"), b"*0\r\n"]
    return (b"%7\r\n" if proto == 3 else b"*14\r\n") + b"".join(pairs)


class Raw:
    """A socket whose replies are checked byte for byte."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def read_exactly(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise AssertionError(f"closed after {data!r}")
            data += chunk
        return data

    def expect(self, want):
        got = self.read_exactly(len(want))
        if got != want:
            raise AssertionError(f"expected {want!r}, got {got!r}")

    def roundtrip(self, request, want):
        self.sock.sendall(request)
        self.expect(want)

    def text_reply(self):
        """A bulk ($) or verbatim (=, "txt:" dropped) string reply."""
        line = b""
        while not line.endswith(b"\r\n"):
            line += self.read_exactly(1)
        assert line[:1] in (b"$", b"="), line
        data = self.read_exactly(int(line[1:-2]) + 2)[:-2]
        if line[:1] == b"=":
            assert data.startswith(b"txt:"), data
            data = data[4:]
        return data.decode()

    def close(self):
        self.sock.close()


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


class Resp3Test(unittest.TestCase):
    """HELLO, RESP3 push frames, INFO and PUBSUB through the real binary."""

    TRADE = "T,77,SPY,450.01,3,B"
    TRADE_JSON = ('{"sym":"SPY","kind":"trade","price":"450.0100","size":3,"side":"B",'
                  '"ts":77,"seq":%d}')

    def setUp(self):
        self.tickd = Tickd().start()
        self.addCleanup(self.tickd.close)

    def raw(self):
        c = Raw(self.tickd.pubsub_port)
        self.addCleanup(c.close)
        return c

    def test_resp2_and_resp3_subscribers_each_get_their_own_framing(self):
        two, three, pub = self.raw(), self.raw(), self.raw()
        three.roundtrip(command("HELLO", "3"), hello_reply(3, 2))
        for c, kind in ((two, b"*"), (three, b">")):
            c.roundtrip(command("SUBSCRIBE", "trade.SPY"),
                        frame(kind, "subscribe", "trade.SPY", 1))
            c.roundtrip(command("PSUBSCRIBE", "trade.*"),
                        frame(kind, "psubscribe", "trade.*", 2))
        pub.roundtrip(command("PUBLISH", "trade.SPY", self.TRADE), b":4\r\n")
        payload = self.TRADE_JSON % 1
        for c, kind in ((two, b"*"), (three, b">")):
            c.expect(frame(kind, "message", "trade.SPY", payload))
            c.expect(frame(kind, "pmessage", "trade.*", "trade.SPY", payload))
        # In RESP3 a subscriber may run any command; PING answers as unsubscribed.
        two.roundtrip(command("PING"), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        three.roundtrip(command("PING"), b"+PONG\r\n")
        three.roundtrip(command("PUBSUB", "NUMPAT"), b":1\r\n")
        # HELLO 2 turns the frames back into arrays; RESET drops the subscriptions.
        three.roundtrip(command("HELLO", "2"), hello_reply(2, 2))
        pub.roundtrip(command("PUBLISH", "trade.SPY", self.TRADE), b":4\r\n")
        for c in (two, three):
            c.expect(frame(b"*", "message", "trade.SPY", self.TRADE_JSON % 2))
            c.expect(frame(b"*", "pmessage", "trade.*", "trade.SPY", self.TRADE_JSON % 2))
        three.roundtrip(command("RESET"), b"+RESET\r\n")
        three.roundtrip(command("HELLO", "3"), hello_reply(3, 2))
        three.roundtrip(command("UNSUBSCRIBE"), b">3\r\n" + bulk("unsubscribe") + b"_\r\n:0\r\n")
        two.roundtrip(command("UNSUBSCRIBE"), frame(b"*", "unsubscribe", "trade.SPY", 1))

    def test_hello_auth_authenticates_and_errors_never_show_the_password(self):
        self.tickd.close()
        self.tickd = Tickd(pubsub_extra=["password: s3cret-pw"]).start()
        self.addCleanup(self.tickd.close)
        c = self.raw()
        wrongpass = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        c.roundtrip(command("HELLO", "3"),
                    b"-NOAUTH HELLO must be called with the client already authenticated, "
                    b"otherwise the HELLO AUTH <user> <pass> option can be used to authenticate "
                    b"the client and select the RESP protocol version at the same time\r\n")
        c.roundtrip(command("HELLO", "3", "AUTH", "default", "s3cret-pX"), wrongpass)
        c.roundtrip(command("HELLO", "3", "AUTH", "alice", "s3cret-pw"), wrongpass)
        c.roundtrip(command("AUTH", "s3cret-pX"), wrongpass)
        c.roundtrip(command("INFO"), b"-NOAUTH Authentication required.\r\n")
        c.roundtrip(command("HELLO", "3", "AUTH", "default", "s3cret-pw", "SETNAME", "it"),
                    hello_reply(3, 1))
        c.roundtrip(command("SUBSCRIBE", "trade.SPY"), frame(b">", "subscribe", "trade.SPY", 1))

    def test_info_answers_a_short_redis_style_report_in_both_protocols(self):
        c = self.raw()
        c.sock.sendall(command("INFO"))
        info = c.text_reply()
        fields = dict(line.split(":", 1) for line in info.split("\r\n")
                      if line and not line.startswith("#"))
        self.assertEqual(fields["redis_version"], "7.0.0")
        self.assertEqual(fields["tickd_version"], "0.1.0")
        self.assertEqual(fields["process_id"], str(self.tickd.proc.pid))
        self.assertEqual(fields["tcp_port"], str(self.tickd.pubsub_port))
        self.assertEqual(fields["loading"], "0")
        self.assertEqual(fields["connected_clients"], "1")
        self.assertGreater(int(fields["used_memory"]), 0)
        self.assertEqual([line for line in info.split("\r\n") if line.startswith("#")],
                         ["# Server", "# Clients", "# Memory", "# Persistence", "# Stats"])
        c.roundtrip(command("HELLO", "3"), hello_reply(3, 1))
        c.sock.sendall(command("INFO", "persistence"))
        self.assertEqual(c.text_reply(), "# Persistence\r\nloading:0\r\nasync_loading:0\r\n")
        c.roundtrip(command("INFO", "nosuch"), b"=4\r\ntxt:\r\n")
        pub = self.raw()
        pub.roundtrip(command("PUBLISH", "trade.SPY", self.TRADE), b":0\r\n")
        c.sock.sendall(command("INFO", "stats"))
        self.assertIn("\r\ntotal_trades_received:1\r\n", c.text_reply())

    def test_pubsub_channels_numsub_and_numpat_count_the_subscriptions(self):
        a, b, c = self.raw(), self.raw(), self.raw()
        a.roundtrip(command("SUBSCRIBE", "trade.SPY"), frame(b"*", "subscribe", "trade.SPY", 1))
        b.roundtrip(command("HELLO", "3"), hello_reply(3, 2))
        b.roundtrip(command("SUBSCRIBE", "trade.SPY", "quote.SPY"),
                    frame(b">", "subscribe", "trade.SPY", 1) +
                    frame(b">", "subscribe", "quote.SPY", 2))
        b.roundtrip(command("PSUBSCRIBE", "*.SPY"), frame(b">", "psubscribe", "*.SPY", 3))
        c.sock.sendall(command("PUBSUB", "CHANNELS"))
        reply = c.read_exactly(len(b"*2\r\n" + bulk("trade.SPY") + bulk("quote.SPY")))
        self.assertIn(reply, (b"*2\r\n" + bulk("trade.SPY") + bulk("quote.SPY"),
                              b"*2\r\n" + bulk("quote.SPY") + bulk("trade.SPY")))
        c.roundtrip(command("PUBSUB", "CHANNELS", "t*"), b"*1\r\n" + bulk("trade.SPY"))
        c.roundtrip(command("PUBSUB", "NUMSUB", "trade.SPY", "quote.SPY", "x"),
                    b"*6\r\n" + bulk("trade.SPY") + b":2\r\n" + bulk("quote.SPY") +
                    b":1\r\n" + bulk("x") + b":0\r\n")
        c.roundtrip(command("PUBSUB", "NUMPAT"), b":1\r\n")
        c.roundtrip(command("PUBSUB", "NOPE"),
                    b"-ERR unknown subcommand 'NOPE'. Try PUBSUB HELP.\r\n")

    def test_a_publish_that_is_not_a_tick_line_says_what_was_expected(self):
        c = self.raw()
        c.roundtrip(command("PUBLISH", "trade.SPY", '{"sym":"SPY"}\x01'),
                    b'-ERR payload: expected a CSV tick line "T,<ts>,<sym>,<price>,<size>'
                    b'[,<side>]" or "Q,<ts>,<sym>,<bid>,<bid_size>,<ask>,<ask_size>", got '
                    b'"{\\"sym\\":\\"SPY\\"}\\x01" (unknown record type (want T or Q))\r\n')
        c.roundtrip(command("PUBLISH", "trade.QQQ", self.TRADE),
                    b"-ERR the channel must be trade.<SYMBOL> or quote.<SYMBOL> of the tick\r\n")

    def test_a_trade_without_a_side_has_no_side_key(self):
        sub, pub = self.raw(), self.raw()
        sub.roundtrip(command("SUBSCRIBE", "trade.DIA"), frame(b"*", "subscribe", "trade.DIA", 1))
        pub.roundtrip(command("PUBLISH", "trade.DIA", "T,5,DIA,1,2"), b":1\r\n")
        sub.expect(frame(b"*", "message", "trade.DIA",
                         '{"sym":"DIA","kind":"trade","price":"1.0000","size":2,"ts":5,"seq":1}'))


if __name__ == "__main__":
    unittest.main()

"""Subscribers on the real binary: redis-cli, a raw RESP client, PUBLISH ingest,
slow consumers, many subscribers, bad protocol input, and RESP3 (HELLO 3), INFO
and PUBSUB on raw sockets, byte for byte. Every test in which a subscriber
runs runs in both protocols, RESP2 and RESP3 (redis-cli -3 for the latter)."""

import json
import os
import resource
import select
import socket
import subprocess
import time
import unittest

from harness import PROTOCOLS, Map, Tickd, Verbatim, free_port, tcp_feed, wait_for


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
        self.proc.stdout.close()


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


class PubSubCases:
    """The subscriber tests, run once per protocol: a subclass sets PROTOCOL
    (2 or 3) and every client of the test (raw RESP, redis-cli, bare sockets)
    speaks it. Frames are checked to be arrays in RESP2 and push frames in
    RESP3, with the same content."""

    PROTOCOL = None

    def setUp(self):
        self.feed_port = free_port()
        self.tickd = Tickd(feeds=tcp_feed("live", self.feed_port)).start()
        self.addCleanup(self.tickd.close)

    def resp(self):
        c = self.tickd.resp(protocol=self.PROTOCOL)
        self.addCleanup(c.close)
        return c

    def redis_cli(self, *args):
        """redis-cli in subscribe mode, with -3 under RESP3."""
        cli = RedisCli(self.tickd.pubsub_port, *(["-3"] if self.PROTOCOL == 3 else []), *args)
        self.addCleanup(cli.close)
        return cli

    def hello(self):
        """What a bare socket sends first to speak PROTOCOL, and the reply it
        reads back for it given its client id: nothing in RESP2."""
        if self.PROTOCOL == 3:
            return command("HELLO", "3"), lambda client_id: hello_reply(3, client_id)
        return b"", lambda client_id: b""

    def kind(self):
        """The first byte of a pub/sub frame in PROTOCOL."""
        return b">" if self.PROTOCOL == 3 else b"*"

    def test_redis_cli_subscribe_and_psubscribe_receive_the_right_ticks_in_order(self):
        sub = self.redis_cli("SUBSCRIBE", "trade.AAPL")
        psub = self.redis_cli("PSUBSCRIBE", "trade.*")
        self.assertEqual(sub.lines(3), ["subscribe", "trade.AAPL", "1"])
        self.assertEqual(psub.lines(3), ["psubscribe", "trade.*", "1"])
        # A raw client of the same protocol beside them sees the framing.
        raw = self.resp()
        self.assertEqual(raw.call_frame("SUBSCRIBE", "trade.AAPL"),
                         [b"subscribe", b"trade.AAPL", 1])
        self.assertEqual(raw.call_frame("PSUBSCRIBE", "trade.*"), [b"psubscribe", b"trade.*", 2])

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

        pgot = psub.lines(12)
        self.assertEqual([pgot[i] for i in (0, 4, 8)], ["pmessage"] * 3)
        self.assertEqual([pgot[i] for i in (2, 6, 10)],
                         ["trade.AAPL", "trade.MSFT", "trade.AAPL"])
        self.assertEqual([json.loads(pgot[i])["ts"] for i in (3, 7, 11)], [1000, 2000, 4000])

        frames = [raw.read_frame() for _ in range(5)]
        self.assertEqual(frames, [
            [b"message", b"trade.AAPL", got[2].encode()],
            [b"pmessage", b"trade.*", b"trade.AAPL", pgot[3].encode()],
            [b"pmessage", b"trade.*", b"trade.MSFT", pgot[7].encode()],
            [b"message", b"trade.AAPL", got[5].encode()],
            [b"pmessage", b"trade.*", b"trade.AAPL", pgot[11].encode()],
        ])

    def test_raw_client_speaks_its_protocol_like_redis(self):
        c = self.resp()
        self.assertEqual(c.call("PING"), "PONG")
        self.assertEqual(c.call("PING", "hello"), b"hello")
        hello = c.call("HELLO", str(self.PROTOCOL))
        if self.PROTOCOL == 3:
            self.assertIs(type(hello), Map)
        else:
            self.assertIs(type(hello), list)
            hello = dict(zip(hello[::2], hello[1::2]))
        self.assertEqual(hello[b"proto"], self.PROTOCOL)
        info = c.call("INFO", "persistence")
        want = "# Persistence\r\nloading:0\r\nasync_loading:0\r\n"
        if self.PROTOCOL == 3:  # a verbatim string in RESP3, a bulk string in RESP2
            self.assertIs(type(info), Verbatim)
            self.assertEqual((info, info.fmt), (want, "txt"))
        else:
            self.assertEqual(info, want.encode())
        self.assertEqual(c.call("CLIENT", "SETNAME", "it"), "OK")
        self.assertEqual(c.call_frame("SUBSCRIBE", "quote.IBM", "trade.IBM"),
                         [b"subscribe", b"quote.IBM", 1])
        self.assertEqual(c.read_frame(), [b"subscribe", b"trade.IBM", 2])
        # A subscribed RESP2 client gets PING's pub/sub form; RESP3 the plain one.
        pong = [b"pong", b""] if self.PROTOCOL == 2 else "PONG"
        self.assertEqual(c.call("PING"), pong)
        c.send_raw(b"PING\r\n")  # an inline command
        self.assertEqual(c.read(), pong)
        self.assertEqual(c.call_frame("UNSUBSCRIBE", "quote.IBM"),
                         [b"unsubscribe", b"quote.IBM", 1])
        self.assertEqual(c.call_frame("UNSUBSCRIBE"), [b"unsubscribe", b"trade.IBM", 0])
        # Nothing left to drop: a null channel ($-1 in RESP2, _ in RESP3).
        self.assertEqual(c.call_frame("UNSUBSCRIBE"), [b"unsubscribe", None, 0])
        self.assertEqual(c.call("RESET"), "RESET")
        self.assertEqual(c.call("PING"), "PONG")
        # RESET drops the subscriptions and returns the connection to RESP2.
        c.protocol = 2
        self.assertEqual(c.call_frame("SUBSCRIBE", "trade.IBM"), [b"subscribe", b"trade.IBM", 1])

    def test_publish_is_an_ingest_path_that_fans_out_and_counts_receivers(self):
        sub = self.resp()
        self.assertEqual(sub.call_frame("SUBSCRIBE", "trade.SPY")[0], b"subscribe")
        pub = self.resp()
        self.assertEqual(pub.call("PUBLISH", "trade.SPY", "T,77,SPY,450.01,3,B"), 1)
        msg = sub.read_frame()
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
        c = self.resp()
        self.assertEqual(c.call_frame("SUBSCRIBE", "trade.IBM"), [b"subscribe", b"trade.IBM", 1])
        snap = c.read_frame()
        self.assertEqual(snap[:2], [b"message", b"trade.IBM"])
        self.assertEqual(json.loads(snap[2])["price"], "151.0000")

    def test_slow_consumer_is_cut_off_while_a_normal_subscriber_gets_every_tick(self):
        self.tickd.close()
        self.tickd = Tickd(feeds=tcp_feed("live", self.feed_port),
                           pubsub_extra=["output_hard_limit: 256KiB",
                                         "output_soft_limit: 128KiB",
                                         "output_soft_seconds: 1s"]).start()
        self.addCleanup(self.tickd.close)  # setUp's cleanup closes the first one only
        slow = Raw(self.tickd.pubsub_port)
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.addCleanup(slow.close)
        hello, hello_answer = self.hello()
        slow.roundtrip(hello + command("SUBSCRIBE", "trade.XX"),
                       hello_answer(1) + frame(self.kind(), "subscribe", "trade.XX", 1))
        good = self.redis_cli("SUBSCRIBE", "trade.XX")
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
        hello, _ = self.hello()
        clients = []
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", self.tickd.pubsub_port))
            s.sendall(hello + command("SUBSCRIBE", "trade.MANY"))
            clients.append(s)
        self.addCleanup(lambda: [s.close() for s in clients])
        wait_for(lambda: self.tickd.metric("tickd_pubsub_clients") == 1000, timeout=30,
                 what="1000 clients")
        feed = self.tickd.feed_connection(self.feed_port)
        self.addCleanup(feed.close)
        send_ticks(feed, ["T,5,MANY,2.5,10,S"])
        message = frame(self.kind(), "message", "trade.MANY",
                        '{"sym":"MANY","kind":"trade","price":"2.5000","size":10,"side":"S",'
                        '"ts":5,"seq":1}')
        for s in clients:
            s.settimeout(10)
            data = b""
            while not data.endswith(message):
                chunk = s.recv(65536)
                if not chunk:
                    raise AssertionError(f"closed after {data!r}")
                data += chunk
        self.assertGreaterEqual(self.tickd.metric("tickd_pubsub_messages_sent_total"), 1000)

    def test_malformed_resp_gets_a_protocol_error_and_a_close(self):
        for junk in (b"*2\r\n$4\r\nPING\r\nxx\r\n", b"*1\r\n$-5\r\n", b"*abc\r\n",
                     b"*1\r\n$999999999999\r\n"):
            c = self.tickd.resp(protocol=self.PROTOCOL)
            c.send_raw(junk)
            reply = c.read()
            self.assertIn("Protocol error", str(reply), junk)
            self.assertTrue(c.closed(), junk)
            c.close()
        # The server is still serving.
        c = self.resp()
        self.assertEqual(c.call("PING"), "PONG")


class PubSubResp2Test(PubSubCases, unittest.TestCase):
    PROTOCOL = 2


class PubSubResp3Test(PubSubCases, unittest.TestCase):
    PROTOCOL = 3


class CsvPublishTest(unittest.TestCase):
    """With the CSV payload a PUBLISHed line reaches subscribers as the
    formatted tick whatever its spelling: the published bytes themselves when
    they are that line but for short prices, the tick formatted otherwise."""

    CASES = [  # (channel, published, what subscribers get)
        ("trade.SPY", "T,77,SPY,450.0100,3,B", "T,77,SPY,450.0100,3,B"),
        ("trade.SPY", "T,78,SPY,450.01,3,S\r\n", "T,78,SPY,450.0100,3,S"),
        ("trade.SPY", "T,79,SPY,450,3\n", "T,79,SPY,450.0000,3"),
        ("trade.SPY", "T,80,SPY,0.5,1,", "T,80,SPY,0.5000,1"),
        ("trade.SPY", "T,081,SPY,0450.1,03,B", "T,81,SPY,450.1000,3,B"),
        ("quote.SPY", "Q,82,SPY,1.1,0,2.22,20", "Q,82,SPY,1.1000,0,2.2200,20"),
        ("quote.SPY", "Q,83,SPY,1.1,00,2.22,020", "Q,83,SPY,1.1000,0,2.2200,20"),
    ]

    def test_published_lines_reach_subscribers_as_the_formatted_tick(self):
        tickd = Tickd(pubsub_extra=["payload: csv"]).start()
        self.addCleanup(tickd.close)
        subs, pub = [], Raw(tickd.pubsub_port)
        self.addCleanup(pub.close)
        for proto, kind in ((2, b"*"), (3, b">")):
            sub = Raw(tickd.pubsub_port)
            self.addCleanup(sub.close)
            if proto == 3:
                sub.roundtrip(command("HELLO", "3"), hello_reply(3, 3))
            for i, ch in enumerate(("trade.SPY", "quote.SPY")):
                sub.roundtrip(command("SUBSCRIBE", ch), frame(kind, "subscribe", ch, i + 1))
            subs.append((sub, kind))
        for ch, line, want in self.CASES:
            pub.roundtrip(command("PUBLISH", ch, line), b":2\r\n")
            for sub, kind in subs:
                sub.expect(frame(kind, "message", ch, want))


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
        wrongpass = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        for client_id, proto in enumerate(PROTOCOLS, 1):
            with self.subTest(protocol=proto):
                c = self.raw()
                version = str(proto)
                c.roundtrip(command("HELLO", version),
                            b"-NOAUTH HELLO must be called with the client already "
                            b"authenticated, otherwise the HELLO AUTH <user> <pass> option can "
                            b"be used to authenticate the client and select the RESP protocol "
                            b"version at the same time\r\n")
                c.roundtrip(command("HELLO", version, "AUTH", "default", "s3cret-pX"), wrongpass)
                c.roundtrip(command("HELLO", version, "AUTH", "alice", "s3cret-pw"), wrongpass)
                c.roundtrip(command("AUTH", "s3cret-pX"), wrongpass)
                c.roundtrip(command("INFO"), b"-NOAUTH Authentication required.\r\n")
                c.roundtrip(command("HELLO", version, "AUTH", "default", "s3cret-pw", "SETNAME",
                                    "it"), hello_reply(proto, client_id))
                c.roundtrip(command("SUBSCRIBE", "trade.SPY"),
                            frame(b">" if proto == 3 else b"*", "subscribe", "trade.SPY", 1))

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

    def test_a_publish_whose_channel_differs_from_its_tick_anywhere_is_refused(self):
        c = self.raw()
        refused = b"-ERR the channel must be trade.<SYMBOL> or quote.<SYMBOL> of the tick\r\n"
        for sym in ("A", "ABC", "ABCD", "ABCDEFG", "ABCDEFGH"):
            for line, right, other in (("T,1,%s,1,1" % sym, "trade." + sym, "quote." + sym),
                                       ("Q,1,%s,1,1,2,1" % sym, "quote." + sym, "trade." + sym)):
                wrong = [other, right[:-1], right + "X", right[:5] + sym, right.upper()]
                wrong += [right[:i] + chr(ord(right[i]) + 1) + right[i + 1:]
                          for i in range(len(right))]
                for channel in wrong:
                    c.roundtrip(command("PUBLISH", channel, line), refused)
                c.roundtrip(command("PUBLISH", right, line), b":0\r\n")

    def test_a_trade_without_a_side_has_no_side_key(self):
        two, three, pub = self.raw(), self.raw(), self.raw()
        three.roundtrip(command("HELLO", "3"), hello_reply(3, 2))
        for c, kind in ((two, b"*"), (three, b">")):
            c.roundtrip(command("SUBSCRIBE", "trade.DIA"), frame(kind, "subscribe", "trade.DIA", 1))
        pub.roundtrip(command("PUBLISH", "trade.DIA", "T,5,DIA,1,2"), b":2\r\n")
        for c, kind in ((two, b"*"), (three, b">")):
            c.expect(frame(kind, "message", "trade.DIA",
                           '{"sym":"DIA","kind":"trade","price":"1.0000","size":2,"ts":5,'
                           '"seq":1}'))

if __name__ == "__main__":
    unittest.main()

"""test_nats.py - tickd onto NATS and JetStream, and tickd fed from NATS.

Real nats-server processes (Debian's nats-server) on loopback ports of the
test's choosing, each with its JetStream store in the test's temporary
directory; real tickd binaries (harness.py) around them; and where a user
would read tickd's subjects, nats.js (npm "nats", clients/nats_reader.js)
with its default options:

- the chain: tickd A takes an ITCH day over TCP and publishes every tick
  into a JetStream stream; tickd B is fed by a durable consumer of it. B's
  RESP subscribers get the ticks A's get, in the same order per symbol; B
  stopped and started again goes on where its consumer stopped: nothing
  lost, nothing twice. A late joiner reads the day from the stream with
  nats.js.
- the sink: a core NATS subscriber (nats.js) gets each tick once, with the
  payload local subscribers get and tickd's headers.
- a cluster of three with a stream of three replicas: the node A is
  connected to is killed in the middle of the stream, and every tick still
  reaches B's durable consumer exactly once.
- the outage: NATS is not there when tickd starts; tickd serves its local
  subscribers at full speed and answers at once, counts what it drops beyond
  nats.max_pending, and publishes what it held once the server comes.
- refused credentials are a clear error, never shown, and tickd keeps
  serving; bad payloads on a nats feed are counted and skipped.
- the hold is bounded: a restarted edge whose consumer's pending messages
  are kept by another process holds back what it fetches for at most its
  hold_timeout, then goes on in stream order, says so and counts it.
"""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import TICKD, Tickd, free_port, journal_file, slow_disk_env, tcp_feed, wait_for

NATS_SERVER = shutil.which("nats-server")
HERE = os.path.dirname(os.path.abspath(__file__))
NATS_READER = os.path.join(HERE, "clients", "nats_reader.js")
NODE_MODULES = os.path.normpath(os.path.join(HERE, "..", "node_modules"))


class NatsServer:
    """One nats-server with JetStream, its store in a temporary directory;
    cluster=(name, port, [route ports]) joins it to a cluster."""

    def __init__(self, port=None, cluster=None, user=None, password=None, name=None):
        self.dir = tempfile.TemporaryDirectory(prefix="tickd-nats-")
        self.port = port or free_port()
        self.cluster = cluster
        self.user, self.password = user, password
        self.name = name or f"n{self.port}"
        self.proc = None
        self.log_path = os.path.join(self.dir.name, "nats.log")

    def start(self):
        args = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js",
                "-sd", os.path.join(self.dir.name, "js"), "-n", self.name]
        if self.user is not None:
            args += ["--user", self.user, "--pass", self.password]
        if self.cluster is not None:
            cname, cport, routes = self.cluster
            args += ["--cluster_name", cname, "--cluster", f"nats://127.0.0.1:{cport}",
                     "--routes", ",".join(f"nats://127.0.0.1:{p}" for p in routes)]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nats-server on {self.port} did not start:\n{self.text()}")

    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        if self.proc is not None:
            self.log.close()
        self.dir.cleanup()


def nats_section(servers, publish=True, extra=()):
    lines = ["nats:", "  servers: [" + ", ".join(servers) + "]",
             f"  publish: {'true' if publish else 'false'}", "  reconnect_wait: 100ms"]
    return "\n".join(lines + ["  " + e for e in extra]) + "\n"


def nats_feed(name, stream=None, durable=None, subject="tickd.>"):
    text = f"""
feeds:
  - name: {name}
    type: nats
    subject: "{subject}"
"""
    if stream:
        text += f"    stream: {stream}\n    durable: {durable}\n"
    return text


def itch_day(directory, messages=4000, symbols=8, seed=7):
    path = os.path.join(directory, "day.itch")
    r = subprocess.run([TICKD, "gen", "itch", "--symbols", str(symbols), "--messages",
                        str(messages), "--seed", str(seed), "-o", path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(path, "rb") as f:
        return f.read()


def ticks(t):
    m = t.metrics()
    return int(m.get('tickd_ticks_total{kind="trade"}', 0) +
               m.get('tickd_ticks_total{kind="quote"}', 0))


def without_seq(payload):
    """A JSON tick without its "seq": each tickd numbers its own ticks."""
    text = payload.decode()
    head, _, _ = text.rpartition(',"seq":')
    return head


def read_messages(sub, n, timeout=20):
    """n (channel, payload) ticks from a psubscribe('*') connection; the
    bars it also gets are not ticks, and are passed over."""
    sub.sock.settimeout(timeout)
    out = []
    while len(out) < n:
        frame = sub.read_frame()
        if frame[0] == b"pmessage" and not frame[2].startswith(b"bar."):
            out.append((frame[2].decode(), frame[3].decode()))
    return out


def read_ticks(sub, n, timeout=20):
    """n (channel, tick without seq) from a psubscribe('*') connection."""
    return [(channel, without_seq(payload.encode()))
            for channel, payload in read_messages(sub, n, timeout)]


def read_until_closed(sub, timeout=20):
    """Every (channel, tick without seq) a psubscribe('*') connection gets
    until tickd closes it (bars passed over)."""
    sub.sock.settimeout(timeout)
    out = []
    try:
        while True:
            frame = sub.read_frame()
            if frame[0] == b"pmessage" and not frame[2].startswith(b"bar."):
                out.append((frame[2].decode(), without_seq(frame[3])))
    except ConnectionError:
        return out


def journal_ticks(t):
    """The CSV lines of t's journal, without their seq comments."""
    r = subprocess.run([TICKD, "journal", "cat", journal_file(t)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split(" #")[0].split("#")[0].rstrip(", ") for line in r.stdout.splitlines()
            if line and not line.startswith("#")]


def by_symbol(seq):
    out = {}
    for channel, tick in seq:
        out.setdefault(channel.split(".", 1)[1], []).append((channel, tick))
    return out


def first_difference(got, want):
    """Where got's ticks of a symbol first differ from want's (a tick out of
    order, twice, or missing), or None when each symbol's are the same."""
    g, w = by_symbol(got), by_symbol(want)
    for symbol in sorted(set(g) | set(w)):
        mine, theirs = g.get(symbol, []), w.get(symbol, [])
        for i, (x, y) in enumerate(zip(mine, theirs)):
            if x != y:
                return f"{symbol}: tick {i} is {x}, where A's is {y}"
        if len(mine) != len(theirs):
            return f"{symbol}: {len(mine)} ticks, where A has {len(theirs)}"
    return None


def send_chunks(sock, data, pieces):
    """data in `pieces` writes, split at ITCH message boundaries (2-byte
    big-endian length prefixes)."""
    bounds, i = [], 0
    while i < len(data):
        i += 2 + int.from_bytes(data[i:i + 2], "big")
        bounds.append(i)
    step = max(1, len(bounds) // pieces)
    start = 0
    for k in range(step - 1, len(bounds), step):
        sock.sendall(data[start:bounds[k]])
        start = bounds[k]
    sock.sendall(data[start:])


class NatsJs:
    """clients/nats_reader.js: a subscriber made with nats.js (npm "nats",
    pinned in tests/package-lock.json) and its default options, in a node
    process of its own; its output read line by line as it comes. Node or
    nats.js missing fails the test saying so."""

    def __init__(self, test, *args):
        node = shutil.which("node")
        if node is None:
            test.fail("node is not installed: deploy/setup.sh deps installs Debian's nodejs")
        if not os.path.isdir(os.path.join(NODE_MODULES, "nats")):
            test.fail(f"npm package 'nats' is not installed in {NODE_MODULES}: run "
                      "`npm ci --prefix tests` (deploy/setup.sh test does)")
        self.proc = subprocess.Popen([node, NATS_READER, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        test.addCleanup(self.close)
        self.buf = b""

    def line(self, timeout=20):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"nats.js: nothing within {timeout}s; so far:\n"
                                     f"{self.buf.decode()}")
            if select.select([self.proc.stdout], [], [], left)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"nats.js exited with {self.proc.wait()}:\n"
                                         f"{self.buf.decode()}")
                self.buf += chunk
        text, self.buf = self.buf.split(b"\n", 1)
        if text.startswith(b"error:"):
            raise AssertionError(f"nats.js: {text.decode()}\n{self.buf.decode()}")
        return text.decode()

    def messages(self, n, timeout=20):
        """n messages as nats.js gave them: {subject, headers, data[, seq]}."""
        return [json.loads(self.line(timeout)) for _ in range(n)]

    def finish(self):
        """The reader got all it was asked for, and exits 0."""
        self.line_is("ok")
        self.proc.stdout.close()
        code = self.proc.wait(10)
        if code != 0:
            raise AssertionError(f"nats.js exited with {code}")

    def line_is(self, want, timeout=20):
        got = self.line(timeout)
        if got != want:
            raise AssertionError(f"nats.js said {got!r}, not {want!r}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.proc.stdout.closed:
            self.proc.stdout.close()


@unittest.skipUnless(NATS_SERVER, "nats-server is not installed (apt-get install nats-server)")
class ChainTest(unittest.TestCase):
    def setUp(self):
        self.nats = NatsServer().start()
        self.addCleanup(self.nats.close)

    def edge(self, stream="TICKS", durable="edge1"):
        b = Tickd(extra=nats_section([self.nats.url()], publish=False),
                  feeds=nats_feed("upstream", stream, durable),
                  pubsub_extra=["snapshot_on_subscribe: false"])
        self.addCleanup(b.close)
        return b

    def upstream(self, journal=False):
        """A: a feed handler on a TCP ITCH feed, publishing into the stream
        TICKS, started and connected; A and its feed's port."""
        feed_port = free_port()
        a = Tickd(extra=nats_section([self.nats.url()], extra=["jetstream:", "  stream: TICKS"]),
                  feeds=tcp_feed("itch", feed_port, "itch"), journal=journal)
        self.addCleanup(a.close)
        a.start()
        wait_for(lambda: a.metric("tickd_nats_connected") == 1, what="A connected to NATS")
        return a, feed_port

    def test_b_fed_from_nats_gives_its_subscribers_the_ticks_of_a_and_resumes_after_restart(self):
        a, feed_port = self.upstream(journal=True)
        b = self.edge()
        b.journal = True
        b.write_config()
        b.start()
        wait_for(lambda: b.metric('tickd_feed_up{feed="upstream"}') == 1, timeout=15,
                 what="B's durable consumer")
        sub_a, sub_b = a.resp(), b.resp(3)
        self.addCleanup(sub_a.close)
        self.addCleanup(sub_b.close)
        sub_a.call_frame("PSUBSCRIBE", "*")
        sub_b.call_frame("PSUBSCRIBE", "*")

        day = itch_day(a.dir.name)
        cut = 0  # the first half of the day, cut at a message boundary
        while cut < len(day) // 2:
            cut += 2 + int.from_bytes(day[cut:cut + 2], "big")
        src = a.feed_connection(feed_port)
        self.addCleanup(src.close)
        send_chunks(src, day[:cut], 20)
        wait_for(lambda: ticks(a) > 0 and a.metric("tickd_nats_js_acks_total") == ticks(a),
                 timeout=20, what="A's first-half ticks acknowledged by JetStream")
        n1 = ticks(a)
        self.assertGreater(n1, 100)
        wait_for(lambda: b.metric('tickd_feed_messages_total{feed="upstream"}') == n1,
                 timeout=20, what="B applied the first half")
        # B's subscribers get A's ticks, in the same order per symbol: symbol,
        # kind, prices, sizes, sides, exchange times; all of the payload but
        # the seq each tickd numbers its own ticks with.
        got_a, got_b = read_ticks(sub_a, n1), read_ticks(sub_b, n1)
        self.assertEqual(by_symbol(got_b), by_symbol(got_a))

        # B goes away; the rest of the day is published meanwhile; B comes
        # back and continues its durable consumer.
        self.assertEqual(b.stop(), 0, b.log()[-4000:])
        send_chunks(src, day[cut:], 20)
        wait_for(lambda: ticks(a) > n1 and a.metric("tickd_nats_js_acks_total") == ticks(a),
                 timeout=20, what="A's second half acknowledged")
        n = ticks(a)
        b.start()
        wait_for(lambda: b.metric('tickd_feed_messages_total{feed="upstream"}') == n - n1,
                 timeout=20, what="B applied the second half after its restart")
        time.sleep(0.5)  # and nothing more comes
        m = b.metrics()
        self.assertEqual(m['tickd_feed_messages_total{feed="upstream"}'], n - n1)
        self.assertEqual(m['tickd_feed_decode_errors_total{feed="upstream"}'], 0)
        self.assertEqual(m['tickd_feed_rejected_total{feed="upstream"}'], 0)
        self.assertEqual(a.stop(), 0, a.log()[-4000:])
        self.assertEqual(b.stop(), 0, b.log()[-4000:])
        # B's journal over both of its runs holds A's day: every tick once,
        # in A's order (without the seq comment each tickd writes).
        self.assertEqual(journal_ticks(b), journal_ticks(a))
        self.assertEqual(len(journal_ticks(b)), n)


    def test_a_late_joiner_reads_the_day_from_the_stream_with_nats_js(self):
        a, feed_port = self.upstream()
        sub = a.resp()
        self.addCleanup(sub.close)
        sub.call_frame("PSUBSCRIBE", "*")
        messages = 4000
        src = a.feed_connection(feed_port)
        self.addCleanup(src.close)
        send_chunks(src, itch_day(a.dir.name, messages=messages), 20)
        wait_for(lambda: a.metric('tickd_feed_messages_total{feed="itch"}') == messages and
                 a.metric("tickd_nats_js_acks_total") == ticks(a), timeout=30,
                 what="A's day in the stream")
        n = ticks(a)
        local = read_messages(sub, n)

        # The day is over; a subscriber joins with nats.js and reads the
        # stream from its start: every tick A's own subscribers got, in A's
        # order, on tickd.<channel> with the same payload; each with tickd's
        # sequence and a message id of its own in its headers.
        reader = NatsJs(self, "stream", self.nats.url(), "TICKS", str(n))
        got = reader.messages(n)
        reader.finish()
        self.assertEqual([(g["subject"], g["data"]) for g in got],
                         [("tickd." + channel, payload) for channel, payload in local])
        self.assertEqual([g["seq"] for g in got], list(range(1, n + 1)))
        self.assertEqual([g["headers"]["Tickd-Seq"] for g in got],
                         [str(json.loads(g["data"])["seq"]) for g in got])
        self.assertEqual(len({g["headers"]["Nats-Msg-Id"] for g in got}), n)
        self.assertEqual(a.stop(), 0, a.log()[-4000:])

    def test_b_stopped_mid_stream_and_restarted_gives_each_symbols_ticks_in_order_once(self):
        a, feed_port = self.upstream(journal=True)
        # B consumes the stream from its start while A publishes the day, and
        # is stopped while it does. A slow disk (each sync 300 ms) keeps
        # applied messages waiting for their journal batch, as a busy one
        # would, and fetched ones waiting behind them, when the stop comes.
        feed = nats_feed("upstream", "TICKS", "edge1")
        b = Tickd(extra=nats_section([self.nats.url()], publish=False), feeds=feed,
                  pubsub_extra=["snapshot_on_subscribe: false"], journal=True,
                  env=slow_disk_env(300))
        self.addCleanup(b.close)
        b.start()
        wait_for(lambda: b.metric('tickd_feed_up{feed="upstream"}') == 1, timeout=15,
                 what="B's durable consumer")
        sub_a, sub_b1 = a.resp(), b.resp()
        self.addCleanup(sub_a.close)
        self.addCleanup(sub_b1.close)
        sub_a.call_frame("PSUBSCRIBE", "*")
        sub_b1.call_frame("PSUBSCRIBE", "*")
        messages = 40000
        src = a.feed_connection(feed_port)
        self.addCleanup(src.close)
        send_chunks(src, itch_day(a.dir.name, messages=messages), 20)
        wait_for(lambda: b.metric('tickd_feed_messages_total{feed="upstream"}') or 0,
                 timeout=15, what="B applying the stream")
        self.assertEqual(b.stop(), 0, b.log()[-4000:])
        got_b = read_until_closed(sub_b1)
        first = len(journal_ticks(b))
        self.assertEqual(len(got_b), first, "B's subscriber and B's journal disagree")
        wait_for(lambda: a.metric('tickd_feed_messages_total{feed="itch"}') == messages and
                 a.metric("tickd_nats_js_acks_total") == ticks(a), timeout=30,
                 what="A's day in the stream")
        n = ticks(a)
        self.assertLess(first, n, "B read the whole stream before its stop: nothing was in flight")

        # B comes back without its feed, a subscriber connects, and SIGHUP
        # adds the feed: the subscriber sees every tick of B's second run.
        b.feeds = ""
        b.write_config()
        b.start()
        sub_b2 = b.resp()
        self.addCleanup(sub_b2.close)
        sub_b2.call_frame("PSUBSCRIBE", "*")
        b.feeds = feed
        b.write_config()
        b.signal(signal.SIGHUP)
        b.wait_note("READY=1", 10)
        got_b += read_ticks(sub_b2, n - first, timeout=30)
        time.sleep(0.5)  # and nothing more comes
        m = b.metrics()
        self.assertEqual(m['tickd_feed_messages_total{feed="upstream"}'], n - first)
        self.assertEqual(a.stop(), 0, a.log()[-4000:])
        self.assertEqual(b.stop(), 0, b.log()[-4000:])
        # Over B's two runs, B's subscribers got each symbol's ticks as A's
        # subscriber did: every one once, in A's order; and B's journal holds
        # A's day in A's order.
        self.assertIsNone(first_difference(got_b, read_ticks(sub_a, n)), b.log()[-4000:])
        self.assertEqual(journal_ticks(b), journal_ticks(a))


class NatsClient:
    """A bare NATS protocol publisher (PUB, PING), independent of libnats and
    of any client library: what a foreign publisher on the subject can send,
    byte for byte, malformed payloads included."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self._line()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n')

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by nats-server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def pub(self, subject, payload, reply=None):
        reply = b" " + reply.encode() if reply else b""
        self.sock.sendall(b"PUB %s%s %d\r\n%s\r\n" % (subject.encode(), reply, len(payload),
                                                        payload))

    def flush(self):
        self.sock.sendall(b"PING\r\n")
        while self._line() != b"PONG":
            pass

    def _payload(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by nats-server")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def replies(self, inbox, payload_subject, payload, n):
        """Publishes payload to payload_subject with inbox as the reply
        subject and returns the first n (reply subject or None, payload)
        messages that come to inbox (headers dropped)."""
        self.sock.sendall(b"SUB %s 1\r\n" % inbox.encode())
        self.pub(payload_subject, payload, inbox)
        out = []
        while len(out) < n:
            words = self._line().split()
            if words[0] == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif words[0] == b"MSG":  # MSG subject sid [reply] size
                reply = words[3].decode() if len(words) == 5 else None
                out.append((reply, self._payload(int(words[-1]))))
            elif words[0] == b"HMSG":  # HMSG subject sid [reply] header-size total-size
                reply = words[3].decode() if len(words) == 6 else None
                out.append((reply, self._payload(int(words[-1]))[int(words[-2]):]))
        self.sock.sendall(b"UNSUB 1\r\n")
        return out

    def js_api(self, what, request=None):
        """A JetStream API request ($JS.API.<what>) and its JSON answer."""
        body = json.dumps(request).encode() if request is not None else b""
        [(_, answer)] = self.replies("_INBOX.api", "$JS.API." + what, body, 1)
        answer = json.loads(answer)
        assert "error" not in answer, answer
        return answer

    def close(self):
        self.sock.close()


def csv_trades(symbol, start, n):
    return "".join(f"T,{i},{symbol},1.{i % 10000:04d},1\n" for i in range(start, start + n))


@unittest.skipUnless(NATS_SERVER, "nats-server is not installed (apt-get install nats-server)")
class SinkTest(unittest.TestCase):
    def test_each_tick_goes_out_once_with_its_seq_and_a_unique_id_and_sighup_applies_changes(self):
        server = NatsServer().start()
        self.addCleanup(server.close)
        feed_port = free_port()
        a = Tickd(extra=nats_section([server.url()]), feeds=tcp_feed("live", feed_port))
        self.addCleanup(a.close)
        a.start()
        wait_for(lambda: a.metric("tickd_nats_connected") == 1, what="A connected to NATS")
        # A core NATS subscriber made with nats.js, on the subjects of trades
        # under both prefixes this test uses.
        sub = NatsJs(self, "core", server.url(), "tickd.trade.>,desk2.trade.>", "4")
        sub.line_is("ready")
        resp = a.resp()
        self.addCleanup(resp.close)
        resp.call_frame("SUBSCRIBE", "trade.AAPL")
        src = a.feed_connection(feed_port)
        self.addCleanup(src.close)
        src.sendall(csv_trades("AAPL", 1, 3).encode())
        resp.sock.settimeout(10)
        local = [resp.read_frame()[2].decode() for _ in range(3)]
        got = sub.messages(3)
        self.assertEqual([g["subject"] for g in got], ["tickd.trade.AAPL"] * 3)
        self.assertEqual([g["data"] for g in got], local)  # the payload subscribers get
        self.assertEqual([g["headers"]["Tickd-Seq"] for g in got], ["1", "2", "3"])
        ids = [g["headers"]["Nats-Msg-Id"] for g in got]
        self.assertEqual(len(set(ids)), 3)
        self.assertEqual(len({i.rsplit("-", 1)[0] for i in ids}), 1)  # one instance

        # SIGHUP: a new prefix and payload; the sink reconnects with them.
        a.extra = nats_section([server.url()], extra=["prefix: desk2", "payload: csv"])
        a.write_config()
        a.signal(signal.SIGHUP)
        a.wait_note("READY=1", 10)
        wait_for(lambda: a.metric("tickd_nats_connected") == 1, what="the new sink connected")
        src.sendall(csv_trades("AAPL", 4, 1).encode())
        [got] = sub.messages(1)
        sub.finish()
        self.assertEqual(got["subject"], "desk2.trade.AAPL")
        self.assertEqual(got["data"], "T,4,AAPL,1.0004,1")
        self.assertEqual(got["headers"]["Tickd-Seq"], "4")
        # Local subscribers keep pubsub.payload (json): the sink's CSV
        # encoding is not shared with them.
        self.assertEqual(without_seq(resp.read_frame()[2]),
                         '{"sym":"AAPL","kind":"trade","price":"1.0004","size":1,"ts":4')
        self.assertNotIn(got["headers"]["Nats-Msg-Id"], ids)
        self.assertEqual(a.metric("tickd_nats_published_total"), 4)  # counted across the reload
        self.assertEqual(a.metric("tickd_config_last_reload_successful"), 1)
        self.assertEqual(a.stop(), 0, a.log()[-4000:])


@unittest.skipUnless(NATS_SERVER, "nats-server is not installed (apt-get install nats-server)")
class OutageTest(unittest.TestCase):
    def test_nats_down_costs_local_subscribers_nothing_and_drops_beyond_max_pending(self):
        port = free_port()
        feed_port = free_port()
        # 64KiB of max_pending holds 128 ticks (slots of 280 bytes, a power
        # of two of them).
        a = Tickd(extra=nats_section([f"nats://127.0.0.1:{port}"],
                                     extra=["max_pending: 64KiB", "user: tickd",
                                            "password: pw-not-in-logs"]),
                  feeds=tcp_feed("live", feed_port))
        self.addCleanup(a.close)
        a.start()
        m = a.metrics()
        self.assertEqual(m["tickd_nats_connected"], 0)
        status, _, page = a.http_get("/healthz")
        self.assertEqual(status, 503)
        self.assertIn("feed nats: not up (", page)
        sub = a.resp()
        self.addCleanup(sub.close)
        sub.call_frame("SUBSCRIBE", "trade.AAPL")
        src = a.feed_connection(feed_port)
        self.addCleanup(src.close)
        n = 5000
        src.sendall(csv_trades("AAPL", 1, n).encode())
        sub.sock.settimeout(20)
        got = [sub.read_frame() for _ in range(n)]
        self.assertEqual([f[1] for f in got], [b"trade.AAPL"] * n)
        # The loop is not waiting for NATS: a PING is answered at once.
        ping = a.resp()
        self.addCleanup(ping.close)
        began = time.monotonic()
        self.assertEqual(ping.call("PING"), "PONG")
        self.assertLess(time.monotonic() - began, 0.5)
        m = a.metrics()
        self.assertEqual(m["tickd_nats_published_total"], 0)
        self.assertEqual(m["tickd_nats_dropped_total"], n - 128)
        self.assertEqual(m["tickd_nats_pending_bytes"], 128 * 280)
        log = a.log()
        self.assertIn("ticks dropped for NATS", log)
        self.assertLess(log.count("ticks dropped for NATS"), 5)  # at most once a second

        # The server comes: what was held goes out, and publishing goes on.
        server = NatsServer(port=port)
        self.addCleanup(server.close)
        server.start()
        wait_for(lambda: a.metric("tickd_nats_published_total") == 128, timeout=15,
                 what="the 128 held ticks published")
        src.sendall(csv_trades("AAPL", n + 1, 10).encode())
        wait_for(lambda: a.metric("tickd_nats_published_total") == 138, timeout=10,
                 what="publishing after the outage")
        m = a.metrics()
        self.assertEqual(m["tickd_nats_connected"], 1)
        self.assertEqual(m["tickd_nats_pending_bytes"], 0)
        self.assertEqual(a.http_get("/healthz")[:3:2], (200, "ok\n"))
        self.assertEqual(m["tickd_nats_dropped_total"], n - 128)
        _, _, page = a.http_get("/metrics")
        self.assertNotIn("pw-not-in-logs", page)
        self.assertEqual(a.stop(), 0, a.log()[-4000:])
        self.assertNotIn("pw-not-in-logs", a.log())

    def test_a_refused_password_is_a_clear_error_never_shown_and_tickd_keeps_serving(self):
        server = NatsServer(user="tickd", password="right-one").start()
        self.addCleanup(server.close)
        feed_port = free_port()
        a = Tickd(extra=nats_section([server.url()],
                                     extra=["user: tickd", "password: wrong-secret-123"]),
                  feeds=tcp_feed("live", feed_port))
        self.addCleanup(a.close)
        a.start()
        wait_for(lambda: "nats sink: cannot connect" in a.log(), timeout=10,
                 what="the refused connection logged")
        self.assertIn("Authorization Violation", a.log())
        sub = a.resp()
        self.addCleanup(sub.close)
        sub.call_frame("SUBSCRIBE", "trade.AAPL")
        src = a.feed_connection(feed_port)
        self.addCleanup(src.close)
        src.sendall(csv_trades("AAPL", 1, 3).encode())
        sub.sock.settimeout(10)
        self.assertEqual([sub.read_frame()[1] for _ in range(3)], [b"trade.AAPL"] * 3)
        self.assertEqual(a.metric("tickd_nats_connected"), 0)
        self.assertEqual(a.stop(), 0, a.log()[-4000:])
        self.assertNotIn("wrong-secret-123", a.log())


    def test_tls_asked_of_a_server_without_it_is_a_clear_error_and_tickd_keeps_serving(self):
        server = NatsServer().start()
        self.addCleanup(server.close)
        a = Tickd(extra=nats_section([f"tls://127.0.0.1:{server.port}"]))
        self.addCleanup(a.close)
        a.start()
        wait_for(lambda: "nats sink: cannot connect" in a.log(), timeout=10,
                 what="the refused connection logged")
        self.assertIn("Secure Connection", a.log())
        ping = a.resp()
        self.addCleanup(ping.close)
        self.assertEqual(ping.call("PING"), "PONG")
        self.assertEqual(a.metric("tickd_nats_connected"), 0)
        self.assertEqual(a.stop(), 0, a.log()[-4000:])


@unittest.skipUnless(NATS_SERVER, "nats-server is not installed (apt-get install nats-server)")
class BadInputTest(unittest.TestCase):
    def test_truncated_foreign_and_oversized_payloads_are_counted_and_skipped(self):
        server = NatsServer().start()
        self.addCleanup(server.close)
        b = Tickd(extra=nats_section([server.url()], publish=False),
                  feeds=nats_feed("raw", subject="raw.>"))
        self.addCleanup(b.close)
        b.start()
        wait_for(lambda: b.metric('tickd_feed_up{feed="raw"}') == 1, what="B subscribed")
        sub = b.resp()
        self.addCleanup(sub.close)
        sub.call_frame("SUBSCRIBE", "trade.MSFT")
        pub = NatsClient(server.port)
        self.addCleanup(pub.close)
        bad = [b'{"sym":"MSFT","kind":"trade","price":"1.0', b"hello", b"T,1,MSFT",
               b"{" + b" " * 3000 + b"}", b'{"sym":"MSFT","kind":"trade","price":"1","size":1}',
               b'{"sym":"msft!","kind":"trade","price":"1","size":1,"ts":1}']
        for payload in bad:
            pub.pub("raw.x", payload)
        pub.pub("raw.x", b'{"sym":"MSFT","kind":"trade","price":"2.5","size":7,"side":"S",'
                         b'"ts":42,"seq":9}')
        pub.pub("raw.x", b"T,43,MSFT,3.25,8,B")
        pub.flush()
        wait_for(lambda: b.metric('tickd_feed_messages_total{feed="raw"}') == 2, timeout=10,
                 what="the two good ticks applied")
        m = b.metrics()
        self.assertEqual(m['tickd_feed_decode_errors_total{feed="raw"}'], len(bad))
        sub.sock.settimeout(10)
        got = [sub.read_frame()[2] for _ in range(2)]
        self.assertEqual([without_seq(g) for g in got],
                         ['{"sym":"MSFT","kind":"trade","price":"2.5000","size":7,"side":"S",'
                          '"ts":42',
                          '{"sym":"MSFT","kind":"trade","price":"3.2500","size":8,"side":"B",'
                          '"ts":43'])
        self.assertEqual(b.stop(), 0, b.log()[-4000:])


@unittest.skipUnless(NATS_SERVER, "nats-server is not installed (apt-get install nats-server)")
class ClusterTest(unittest.TestCase):
    def test_killing_the_node_a_uses_loses_no_tick_and_b_applies_each_once(self):
        ports = [free_port() for _ in range(3)]
        routes = [free_port() for _ in range(3)]
        nodes = []
        for i in range(3):
            node = NatsServer(port=ports[i], name=f"node{i}",
                              cluster=("tickd", routes[i], [r for r in routes if r != routes[i]]))
            self.addCleanup(node.close)
            nodes.append(node)
        for node in nodes:
            node.start()
        urls = [node.url() for node in nodes]
        feed_port = free_port()
        a = Tickd(extra=nats_section(urls, extra=["jetstream:", "  stream: TICKS",
                                                  "  replicas: 3"]),
                  feeds=tcp_feed("live", feed_port), journal=True)
        self.addCleanup(a.close)
        a.start()
        src = a.feed_connection(feed_port)
        self.addCleanup(src.close)
        # The cluster elects its JetStream leader, then A creates the stream.
        src.sendall(csv_trades("AAPL", 1, 10).encode())
        wait_for(lambda: a.metric("tickd_nats_js_acks_total") == 10, timeout=30,
                 what="the stream of 3 replicas, and its first acknowledgements")
        b = Tickd(extra=nats_section(urls, publish=False),
                  feeds=nats_feed("upstream", "TICKS", "edge1"), journal=True)
        self.addCleanup(b.close)
        b.start()
        wait_for(lambda: b.metric('tickd_feed_messages_total{feed="upstream"}') == 10,
                 timeout=20, what="B consuming")

        total, i = 10, 11
        for batch in range(40):
            src.sendall(csv_trades(("AAPL", "MSFT")[batch % 2], i, 50).encode())
            i += 50
            total += 50
            time.sleep(0.05)
            if batch == 15:  # the node A publishes to goes down, mid-stream
                used = [n for n in nodes
                        if f"nats sink: connected to {n.url()}" in a.log() or
                        f"nats sink: reconnected to {n.url()}" in a.log()]
                self.assertEqual(len(used), 1, a.log())
                used[0].kill()
        wait_for(lambda: ticks(a) == total, timeout=10, what="A made every tick")
        try:
            wait_for(lambda: a.metric("tickd_nats_js_acks_total") == total, timeout=40,
                     what="every publish acknowledged by the stream")
        except AssertionError:
            figures = {k: v for k, v in a.metrics().items()
                       if k.startswith("tickd_nats") and "bucket" not in k}
            raise AssertionError(f"not every publish acknowledged ({total} made): {figures}\n"
                                 f"{a.log()[-2000:]}")
        wait_for(lambda: b.metric('tickd_feed_messages_total{feed="upstream"}') == total,
                 timeout=40, what="B applied every tick")
        time.sleep(1)
        m = b.metrics()
        self.assertEqual(m['tickd_feed_messages_total{feed="upstream"}'], total)
        self.assertEqual(a.metric("tickd_nats_js_ack_failures_total"), 0)
        self.assertGreaterEqual(a.metric("tickd_nats_reconnects_total"), 1)
        self.assertEqual(a.stop(), 0, a.log()[-4000:])
        self.assertEqual(b.stop(), 0, b.log()[-4000:])
        # Every tick of A once in B's journal, in A's order: what was lost
        # with the node is sent again, oldest first, before anything newer.
        self.assertEqual(journal_ticks(b), journal_ticks(a))


@unittest.skipUnless(NATS_SERVER, "nats-server is not installed (apt-get install nats-server)")
class HoldTest(unittest.TestCase):
    STREAM = {"name": "TICKS", "subjects": ["tickd.>"], "storage": "file"}

    def setUp(self):
        """B's consumer of stream TICKS, made by B's first run, which stops;
        then, while B is down, 30 trades of X (ts 1..30) come into the
        stream, and another process bound to B's consumer takes the first 10
        (self.taken: their reply subjects and payloads) and does not
        acknowledge them: they are pending."""
        self.nats = NatsServer().start()
        self.addCleanup(self.nats.close)
        self.js = NatsClient(self.nats.port)
        self.addCleanup(self.js.close)
        self.js.js_api("STREAM.CREATE.TICKS", self.STREAM)
        self.b = Tickd(extra=nats_section([self.nats.url()], publish=False),
                       feeds=nats_feed("upstream", "TICKS", "edge1"),
                       pubsub_extra=["snapshot_on_subscribe: false"])
        self.addCleanup(self.b.close)
        self.b.start()
        wait_for(lambda: self.b.metric('tickd_feed_up{feed="upstream"}') == 1, timeout=15,
                 what="B's durable consumer")
        self.assertEqual(self.b.stop(), 0, self.b.log()[-4000:])
        for i in range(1, 31):
            self.js.pub("tickd.trade.X", f"T,{i},X,{i}.0000,{i},B".encode())
        self.taken = self.js.replies("_INBOX.pull", "$JS.API.CONSUMER.MSG.NEXT.TICKS.edge1",
                                     b'{"batch":10,"expires":2000000000}', 10)
        self.assertEqual([int(p.split(b",")[1]) for _, p in self.taken], list(range(1, 11)))
        self.assertEqual(self.js.js_api("CONSUMER.INFO.TICKS.edge1")["num_ack_pending"], 10)

    def restart_b(self, hold_timeout):
        """B started again without its feed, a subscriber of trade.X, and
        then (SIGHUP) the feed with that hold_timeout; the subscriber."""
        b = self.b
        b.feeds = ""
        b.write_config()
        b.start()
        sub = b.resp()
        self.addCleanup(sub.close)
        sub.call_frame("SUBSCRIBE", "trade.X")
        sub.sock.settimeout(10)
        b.feeds = nats_feed("upstream", "TICKS", "edge1") + f"    hold_timeout: {hold_timeout}\n"
        b.write_config()
        b.signal(signal.SIGHUP)
        b.wait_note("READY=1", 10)
        return sub

    def holding_seconds(self):
        """/healthz's holding_seconds of B's feed: null when it does not hold."""
        return json.loads(self.b.http_get("/healthz?verbose=1")[2])["feeds"][0]["holding_seconds"]

    def test_messages_the_stream_dropped_while_b_was_down_do_not_hold_it(self):
        # The stream's limit drops the 10 pending messages (max_msgs 20 keeps
        # ts 11..30): nats-server takes them off the consumer's pending ones,
        # and B, back with a hold_timeout far away, does not hold at all.
        self.js.js_api("STREAM.UPDATE.TICKS", dict(self.STREAM, max_msgs=20))
        self.assertEqual(self.js.js_api("CONSUMER.INFO.TICKS.edge1")["num_ack_pending"], 0)
        b = self.b
        sub = self.restart_b("30s")
        wait_for(lambda: b.metric('tickd_feed_messages_total{feed="upstream"}') == 20,
                 timeout=10, what="B applying what the stream kept")
        self.assertNotIn("never acknowledged come again", b.log())
        self.assertEqual([json.loads(sub.read_frame()[2])["ts"] for _ in range(20)],
                         list(range(11, 31)))
        self.assertEqual(b.metric('tickd_feed_hold_timeouts_total{feed="upstream"}'), 0)
        self.assertNotIn("stopped holding", b.log())
        self.assertEqual(b.stop(), 0, b.log()[-4000:])

    def test_pending_messages_kept_elsewhere_hold_a_restart_only_until_hold_timeout(self):
        # The other process keeps its 10 in progress: they stay pending,
        # and do not come.
        js, taken, b = self.js, self.taken, self.b
        keeping = threading.Event()
        keeping.set()

        def keep_in_progress():
            while keeping.is_set():
                for reply, _ in taken:
                    js.pub(reply, b"+WPI")
                time.sleep(0.5)
        keeper = threading.Thread(target=keep_in_progress)
        keeper.start()
        self.addCleanup(keeper.join)
        self.addCleanup(keeping.clear)

        # B comes back: the 10 pending messages never come, and B holds back
        # the 20 it fetches, and says so on /healthz, only until its
        # hold_timeout; then the 20 go on in stream order.
        sub = self.restart_b("2s")
        started = time.monotonic()
        wait_for(lambda: self.holding_seconds() is not None, timeout=5,
                 what="B holding, on /healthz")
        wait_for(lambda: b.metric('tickd_feed_messages_total{feed="upstream"}') == 20,
                 timeout=10, what="B going on past the messages it waited for")
        self.assertGreaterEqual(time.monotonic() - started, 1.5)  # it did wait
        self.assertEqual([json.loads(sub.read_frame()[2])["ts"] for _ in range(20)],
                         list(range(11, 31)))
        self.assertEqual(b.metric('tickd_feed_hold_timeouts_total{feed="upstream"}'), 1)
        self.assertIsNone(self.holding_seconds())
        self.assertIn("feed upstream: consumer edge1 of stream TICKS: stopped holding after 2.",
                      b.log())
        self.assertIn("(hold_timeout 2s) with 10 messages delivered before and never "
                      "acknowledged still missing; the 20 held go on in stream order", b.log())

        # The other process lets them go: they come to B late, and B applies
        # each once, after the others, out of stream order.
        keeping.clear()
        keeper.join()
        for reply, _ in taken:
            js.pub(reply, b"-NAK")
        js.flush()
        wait_for(lambda: b.metric('tickd_feed_messages_total{feed="upstream"}') == 30,
                 timeout=10, what="the late ones applied")
        self.assertEqual([json.loads(sub.read_frame()[2])["ts"] for _ in range(10)],
                         list(range(1, 11)))
        time.sleep(0.5)  # and nothing more comes
        m = b.metrics()
        self.assertEqual(m['tickd_feed_messages_total{feed="upstream"}'], 30)
        self.assertEqual(m['tickd_feed_duplicate_messages_total{feed="upstream"}'], 0)
        self.assertEqual(m['tickd_feed_hold_timeouts_total{feed="upstream"}'], 1)
        self.assertEqual(b.stop(), 0, b.log()[-4000:])


if __name__ == "__main__":
    unittest.main()

"""Bars on the real binary.

`tickd replay --bars 1m --out` of an ITCH day built here byte by byte (from
the specification, not from tickd's encoder) writes exactly the bars this
test works out by hand, the same at two replay speeds, and refuses a bad
interval or an --out it cannot create with the documented exit codes.

A daemon fed by PUBLISH publishes bars on bar.<interval>.<SYMBOL> to
redis-cli, redis-py (Debian's, run by /usr/bin/python3) and node-redis
(tests/node_modules), each with its default options, and answers GET
bar.1m.<SYMBOL> with the last closed bar, and lists bar.<interval>.<SYMBOL>
in KEYS and SCAN (redis-cli --scan, redis-py's scan_iter, node-redis's
scanIterator) once that key has a last bar, none with `bars.intervals: []`;
the loop's timer closes a bar when no tick comes; a new subscriber gets the
last bar as a snapshot.
"""

import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import unittest

from harness import TICKD, Tickd, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.normpath(os.path.join(HERE, "..", "node_modules"))
DEBIAN_PYTHON = "/usr/bin/python3"
S = 10**9
OPEN = 34200 * S  # 09:30, ns since midnight


# ---- ITCH 5.0 messages (BinaryFILE framing), from the specification ----

def header(kind, locate, ts):
    return kind + struct.pack(">HH", locate, 0) + ts.to_bytes(6, "big")


def add(locate, ref, side, shares, stock, price, ts):
    return header(b"A", locate, ts) + struct.pack(">QcI8sI", ref, side, shares,
                                                  stock.ljust(8).encode(), price)


def executed(locate, ref, shares, match, ts):
    return header(b"E", locate, ts) + struct.pack(">QIQ", ref, shares, match)


def executed_price(locate, ref, shares, match, printable, price, ts):
    return header(b"C", locate, ts) + struct.pack(">QIQcI", ref, shares, match, printable, price)


def trade(locate, shares, stock, price, match, ts):
    return header(b"P", locate, ts) + struct.pack(">QcI8sIQ", 0, b"B", shares,
                                                  stock.ljust(8).encode(), price, match)


def cross(locate, shares, stock, price, match, ts):
    return header(b"Q", locate, ts) + struct.pack(">Q8sIQc", shares, stock.ljust(8).encode(),
                                                  price, match, b"O")


def binfile(*messages):
    return b"".join(struct.pack(">H", len(m)) + m for m in messages)


# Two stocks over three minutes. AAA: an E, a printable C, a C that is not
# printable (no trade), a P in minute 0; nothing in minute 1 (no bar); a Q
# cross and an E in minute 2. BBB: a P in minute 0 and one in minute 1.
DAY = binfile(
    add(1, 1, b"S", 1000, "AAA", 100000, OPEN),
    executed(1, 1, 100, 1, OPEN + 5 * S),                       # AAA 10.0000 x 100
    executed_price(1, 1, 200, 2, b"Y", 100100, OPEN + 20 * S),  # AAA 10.0100 x 200
    executed_price(1, 1, 50, 3, b"N", 100200, OPEN + 30 * S),   # not printed
    trade(1, 300, "AAA", 99900, 4, OPEN + 40 * S),              # AAA 9.9900 x 300
    trade(2, 10, "BBB", 500000, 5, OPEN + 50 * S),              # BBB 50.0000 x 10
    trade(2, 20, "BBB", 505000, 6, OPEN + 90 * S),              # BBB 50.5000 x 20
    cross(1, 1000, "AAA", 100500, 7, OPEN + 135 * S),           # AAA 10.0500 x 1000
    executed(1, 1, 100, 8, OPEN + 140 * S),                     # AAA 10.0000 x 100
)

# The bars, worked out by hand, in the order they close: AAA's and BBB's
# minute 0 when BBB's 09:31:30 trade moves the clock past 09:31; BBB's minute
# 1 when the 09:32:15 cross does; AAA's minute 2 at the end of the file.
# VWAP: (10 x 100 + 10.01 x 200 + 9.99 x 300) / 600 = 9.99833 -> 9.9983;
# (10.05 x 1000 + 10 x 100) / 1100 = 10.04545 -> 10.0455.
BARS_CSV = (
    "kind,start,symbol,interval,open,high,low,close,volume,vwap,trades\n"
    "B,34200000000000,AAA,1m,10.0000,10.0100,9.9900,9.9900,600,9.9983,3\n"
    "B,34200000000000,BBB,1m,50.0000,50.0000,50.0000,50.0000,10,50.0000,1\n"
    "B,34260000000000,BBB,1m,50.5000,50.5000,50.5000,50.5000,20,50.5000,1\n"
    "B,34320000000000,AAA,1m,10.0500,10.0500,10.0000,10.0000,1100,10.0455,2\n"
)


class ReplayBarsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="tickd-bars-")
        self.addCleanup(self.dir.cleanup)
        self.day = os.path.join(self.dir.name, "day.itch")
        with open(self.day, "wb") as f:
            f.write(DAY)

    def replay(self, *args):
        return subprocess.run([TICKD, "replay", self.day, *args], capture_output=True,
                              text=True, timeout=60)

    def test_replay_writes_the_days_1m_bars_exactly(self):
        out = os.path.join(self.dir.name, "bars.csv")
        r = self.replay("--bars", "1m", "--out", out, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["bars"], 4)
        with open(out) as f:
            self.assertEqual(f.read(), BARS_CSV)

    def test_a_replay_at_another_speed_writes_the_same_bars(self):
        fast, paced = (os.path.join(self.dir.name, n) for n in ("fast.csv", "paced.csv"))
        r = self.replay("--bars", "1s,1m", "--out", fast)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.replay("--bars", "1s,1m", "--out", paced, "--speed", "200")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(fast) as f, open(paced) as g:
            got_fast, got_paced = f.read(), g.read()
        self.assertEqual(got_paced, got_fast)
        self.assertEqual(len(got_fast.splitlines()), 1 + 4 + 7)  # 7 seconds with trades

    def test_a_bad_interval_is_a_usage_error_naming_the_flag(self):
        out = os.path.join(self.dir.name, "bars.csv")
        for bad in ("2d", "0s", "1m,1m", "1.5m"):
            r = self.replay("--bars", bad, "--out", out)
            self.assertEqual(r.returncode, 64, (bad, r.stderr))
            self.assertIn("--bars", r.stderr)
        self.assertFalse(os.path.exists(out))
        r = self.replay("--bars", "1m")
        self.assertEqual(r.returncode, 64)
        self.assertIn("--bars needs --out", r.stderr)

    def test_an_out_that_cannot_be_created_exits_73_with_the_reason(self):
        out = os.path.join(self.dir.name, "missing", "bars.csv")
        r = self.replay("--bars", "1m", "--out", out)
        self.assertEqual(r.returncode, 73, r.stderr)
        self.assertIn(f"cannot create {out}: No such file or directory", r.stderr)

    def test_bars_that_cannot_be_written_exit_1_with_the_reason(self):
        r = self.replay("--bars", "1m", "--out", "/dev/full")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot write /dev/full: No space left on device", r.stderr)


# ---- a daemon fed by PUBLISH ----

BASE = 1700000040 * S  # a minute boundary
BAR_1S = ('{"sym":"XYZ","kind":"bar","interval":"1s","start":1700000040000000000,'
          '"open":"10.0000","high":"10.5000","low":"10.0000","close":"10.5000","volume":400,'
          '"vwap":"10.3750","trades":2}')
BAR_1M = ('{"sym":"XYZ","kind":"bar","interval":"1m","start":1700000040000000000,'
          '"open":"10.0000","high":"10.5000","low":"10.0000","close":"10.2500","volume":450,'
          '"vwap":"10.3611","trades":3}')
REDIS_PY = """
import sys, redis
mode, port, name = sys.argv[1:]
r = redis.Redis("127.0.0.1", int(port))
if mode == "get":
    print(r.get(name).decode())
    sys.exit(0)
if mode == "scan":
    for key in r.scan_iter(match=name, count=1):
        print(key.decode())
    sys.exit(0)
p = r.pubsub()
p.subscribe(name)
assert p.get_message(timeout=10)["type"] == "subscribe"
print("subscribed", flush=True)
while True:
    m = p.get_message(timeout=20)
    if m is not None:
        print(m["data"].decode())
        break
"""


def trade_line(ts, price, size, side):
    return f"T,{ts},XYZ,{price},{size},{side}"


class DaemonBarsTest(unittest.TestCase):
    def setUp(self):
        self.t = Tickd(extra="bars:\n  intervals: [1s, 1m]\n  grace: 100ms\n")
        self.addCleanup(self.t.close)
        self.t.start()
        self.c = self.t.resp()
        self.addCleanup(self.c.close)

    def publish(self, *lines):
        for line in lines:
            self.assertEqual(self.c.call("PUBLISH", "trade.XYZ", line), 0)

    def clients(self, mode, name):
        """redis-cli, redis-py and node-redis, each running mode (subscribe,
        get, scan: a SCAN iteration with MATCH name) on name."""
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is not installed: deploy/setup.sh deps installs it")
        self.assertTrue(os.path.isdir(os.path.join(NODE_MODULES, "redis")),
                        f"node-redis is not in {NODE_MODULES}: run `npm ci --prefix tests`")
        port = str(self.t.pubsub_port)
        cli = {"subscribe": ["redis-cli", "-p", port, "SUBSCRIBE", name],
               "get": ["redis-cli", "-p", port, "GET", name],
               "scan": ["redis-cli", "-p", port, "--scan", "--pattern", name]}[mode]
        return {
            "redis-cli": cli,
            "redis-py": [DEBIAN_PYTHON, "-c", REDIS_PY, mode, port, name],
            "node-redis": [node, os.path.join(HERE, "clients", "bars.js"), mode, port, name],
        }

    def test_redis_cli_redis_py_and_node_redis_subscribe_to_bars_and_get_the_last_one(self):
        subs = {}
        for who, argv in self.clients("subscribe", "bar.1s.XYZ").items():
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, text=True)
            self.addCleanup(p.stdout.close)
            self.addCleanup(p.wait)
            self.addCleanup(p.kill)
            subs[who] = p
        wait_for(lambda: self.c.call("PUBSUB", "NUMSUB", "bar.1s.XYZ")[1] == 3, timeout=20,
                 what="three subscribers of bar.1s.XYZ")

        self.publish(trade_line(BASE + 200000000, "10.0000", 100, "B"),
                     trade_line(BASE + 500000000, "10.5000", 300, "S"),
                     trade_line(BASE + 1300000000, "10.2500", 50, "B"),  # closes second 0
                     trade_line(BASE + 61 * S, "11.0000", 10, "B"))      # closes minute 0

        # redis-cli prints subscribe, the channel, the count, then message,
        # the channel and the text, a line each.
        lines = [subs["redis-cli"].stdout.readline().rstrip("\n") for _ in range(6)]
        self.assertEqual(lines, ["subscribe", "bar.1s.XYZ", "1", "message", "bar.1s.XYZ", BAR_1S])
        for who in ("redis-py", "node-redis"):
            out, _ = subs[who].communicate(timeout=30)
            self.assertEqual(subs[who].returncode, 0, f"{who}: {out}")
            self.assertEqual(out.splitlines(), ["subscribed", BAR_1S], who)

        for who, argv in self.clients("get", "bar.1m.XYZ").items():
            r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, f"{who}: {r.stdout}{r.stderr}")
            got = r.stdout.strip()
            self.assertEqual(json.loads(got) if who == "node-redis" else got, BAR_1M, who)

    def test_keys_and_each_clients_scan_list_the_bar_keys_that_have_a_last_bar(self):
        self.publish(trade_line(BASE + 200000000, "10.0000", 100, "B"))
        self.assertEqual(self.c.call("PUBLISH", "trade.ABC", f"T,{BASE + 300000000},ABC,20.0000,5,S"),
                         0)
        # At 61s the exchange clock has passed second 0 and minute 0 (plus
        # the grace): both symbols' bars of each close, whatever the timer did.
        self.publish(trade_line(BASE + 61 * S, "11.0000", 10, "B"))
        bars = ["bar.1m.ABC", "bar.1m.XYZ", "bar.1s.ABC", "bar.1s.XYZ"]
        self.assertEqual(sorted(self.c.call("KEYS", "bar.*")), [k.encode() for k in bars])
        for key in bars:
            self.assertIsNotNone(self.c.call("GET", key), key)
        self.assertEqual(sorted(self.c.call("KEYS", "*")),
                         sorted(k.encode() for k in bars + ["trade.ABC", "trade.XYZ"]))
        self.assertEqual(sorted(self.c.call("KEYS", "bar.1m.*")), [b"bar.1m.ABC", b"bar.1m.XYZ"])
        for who, argv in self.clients("scan", "bar.*").items():
            r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, f"{who}: {r.stdout}{r.stderr}")
            self.assertEqual(sorted(r.stdout.split()), bars, who)  # each key once

    def test_the_timer_closes_a_bar_when_no_tick_comes_and_a_new_subscriber_gets_it(self):
        sub = self.t.resp()
        self.addCleanup(sub.close)
        self.assertEqual(sub.call("SUBSCRIBE", "bar.1s.XYZ"), [b"subscribe", b"bar.1s.XYZ", 1])
        self.publish(trade_line(BASE + 200000000, "10.0000", 100, "B"))
        # No tick follows: the timer's estimate of the exchange clock passes
        # the end of the second plus the grace about a second later.
        msg = sub.read()
        self.assertEqual(msg[:2], [b"message", b"bar.1s.XYZ"])
        bar = json.loads(msg[2])
        self.assertEqual((bar["start"], bar["close"], bar["volume"], bar["trades"]),
                         (BASE, "10.0000", 100, 1))
        self.assertEqual(self.c.call("GET", "bar.1s.XYZ"), msg[2])
        # A trade for that second now is late: left out of the bars, counted.
        self.publish(trade_line(BASE + 300000000, "9.0000", 1, "B"))
        wait_for(lambda: self.t.metric("tickd_bars_late_trades_total") == 1, what="a late trade")
        self.assertEqual(self.t.metric("tickd_bars_total"), 1)
        self.assertIsNone(self.c.call("GET", "bar.1m.XYZ"))  # its minute is open still
        self.assertIsNone(self.c.call("GET", "bar.5m.XYZ"))  # not an interval of this tickd
        late = self.t.resp()
        self.addCleanup(late.close)
        self.assertEqual(late.call("SUBSCRIBE", "bar.1s.XYZ"), [b"subscribe", b"bar.1s.XYZ", 1])
        self.assertEqual(late.read(), [b"message", b"bar.1s.XYZ", msg[2]])

    def test_a_reload_with_other_intervals_publishes_the_open_bars_and_makes_the_new_ones(self):
        sub = self.t.resp()
        self.addCleanup(sub.close)
        self.assertEqual(sub.call("PSUBSCRIBE", "bar.*.XYZ"), [b"psubscribe", b"bar.*.XYZ", 1])
        self.publish(trade_line(BASE + 2 * S, "10.0000", 100, "B"))
        self.t.extra = "bars:\n  intervals: [5s]\n  grace: 100ms\n"
        self.t.write_config()
        self.t.signal(signal.SIGHUP)
        self.t.wait_note("RELOADING=1", 10)
        self.t.wait_note("READY=1", 10)
        # The old builder's open bars went out at the reload (1m and, unless
        # the timer closed it first, 1s); the new one makes 5s bars.
        got = {}
        while "1m" not in got:
            msg = sub.read()
            if msg[0] == b"pmessage":
                got[json.loads(msg[3])["interval"]] = msg[3]
        self.assertEqual(json.loads(got["1m"])["start"], BASE)
        self.publish(trade_line(BASE + 6 * S, "11.0000", 5, "S"),
                     trade_line(BASE + 12 * S, "12.0000", 1, "S"))  # closes 5s..10s
        while True:
            msg = sub.read()
            if msg[0] == b"pmessage" and json.loads(msg[3])["interval"] == "5s":
                break
        self.assertEqual(msg[2], b"bar.5s.XYZ")
        bar = json.loads(msg[3])
        self.assertEqual((bar["start"], bar["open"], bar["volume"]), (BASE + 5 * S, "11.0000", 5))
        self.assertEqual(self.c.call("GET", "bar.5s.XYZ"), msg[3])
        self.assertIsNone(self.c.call("GET", "bar.1m.XYZ"))  # the old intervals are gone


class NoBarsTest(unittest.TestCase):
    def test_a_daemon_with_no_intervals_lists_no_bar_key(self):
        t = Tickd(extra="bars:\n  intervals: []\n")
        self.addCleanup(t.close)
        t.start()
        c = t.resp()
        self.addCleanup(c.close)
        for ts, price in ((BASE + 200000000, "10.0000"), (BASE + 61 * S, "11.0000")):
            self.assertEqual(c.call("PUBLISH", "trade.XYZ", f"T,{ts},XYZ,{price},1,B"), 0)
        self.assertEqual(c.call("KEYS", "*"), [b"trade.XYZ"])
        self.assertIsNone(c.call("GET", "bar.1m.XYZ"))
        r = subprocess.run(["redis-cli", "-p", str(t.pubsub_port), "--scan"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (0, "trade.XYZ\n"), r.stderr)


class LoopingFileBarsTest(unittest.TestCase):
    def test_each_pass_of_a_looping_file_makes_its_bars_again(self):
        t = Tickd()
        self.addCleanup(t.close)
        path = os.path.join(t.dir.name, "day.csv")
        with open(path, "w") as f:
            f.write(f"T,{BASE + 10 * S},LOOP,1.0000,10,B\nT,{BASE + 70 * S},LOOP,2.0000,20,B\n")
        t.feeds = f"""
feeds:
  - name: day
    type: file
    format: csv
    path: {path}
    speed: 1000
    loop: true
"""
        t.write_config()
        t.start()
        sub = t.resp()
        self.addCleanup(sub.close)
        self.assertEqual(sub.call("SUBSCRIBE", "bar.1m.LOOP"), [b"subscribe", b"bar.1m.LOOP", 1])
        # Minute 0 closes at the pass's second trade, minute 1 when the file
        # starts again; then the next pass makes both again (its times are
        # not late: they start over).
        starts = []
        while len(starts) < 5:
            msg = sub.read()
            if msg[0] == b"message":
                starts.append(json.loads(msg[2])["start"])
        first = starts.index(BASE)
        self.assertEqual(starts[first:first + 3], [BASE, BASE + 60 * S, BASE])


if __name__ == "__main__":
    unittest.main()

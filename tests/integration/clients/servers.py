"""servers.py - the server a client-library test talks to.

Every test in this folder drives a real Redis client library against a real
server on loopback. By default that server is the real tickd binary (TICKD,
started through ../harness.py); with CLIENT_TESTS_SERVER=redis it is a real
redis-server instead, the oracle the tests themselves are checked against: a
test that passes on redis-server and fails on tickd has found a place where
tickd does not yet speak Redis as the client expects.

Both servers are started the same way for every test: a password (so that
AUTH, right and wrong, is part of each scenario), a user ALICE who may
subscribe to, publish to and read only trade.A* (tickd's pubsub.users; on
redis-server the ACL user `&trade.A* ~trade.A*`), and for tickd
`payload: csv`, so that a PUBLISHed tick comes back as the very CSV line that
was sent when that line is already in tickd's normal form (prices with four
decimals), exactly as Redis echoes it. The tick lines below are in that form,
so a test asserts byte-for-byte content on both servers. tickd makes no bars
(`bars.intervals: []`), so that its keys are the seeded ones, as on
redis-server.
"""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness import Tickd, free_port  # noqa: E402

KIND = os.environ.get("CLIENT_TESTS_SERVER", "tickd")
if KIND not in ("tickd", "redis"):
    raise SystemExit(f"CLIENT_TESTS_SERVER={KIND!r}: expected tickd or redis")

PASSWORD = "s3cret-Pw-4-tests"
WRONG_PASSWORD = "not-the-Pw-9"
ALICE = "alice"
ALICE_PASSWORD = "alice-Pw-7"
ALICE_CHANNELS = "trade.A*"  # what alice may subscribe to, publish to and read


def trade_line(symbol, ts, price, size, side):
    """A trade tick in tickd's normal CSV form (price with four decimals)."""
    return f"T,{ts},{symbol},{price:.4f},{size},{side}"


def quote_line(symbol, ts, bid, bid_size, ask, ask_size):
    """A quote tick in tickd's normal CSV form."""
    return f"Q,{ts},{symbol},{bid:.4f},{bid_size},{ask:.4f},{ask_size}"


def _command(port, password, *args):
    """Sends one command, after AUTH, over a plain socket; returns the raw
    reply line. For setting a test up, not for the client under test."""
    def encode(*words):
        out = f"*{len(words)}\r\n".encode()
        for w in words:
            b = w.encode()
            out += f"${len(b)}\r\n".encode() + b + b"\r\n"
        return out
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(encode("AUTH", password) + encode(*args))
        reply = b""
        while reply.count(b"\r\n") < 2:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    lines = reply.split(b"\r\n")
    if lines[0] != b"+OK" or lines[1].startswith(b"-"):
        raise AssertionError(f"{args[0]} while setting up: {reply!r}")
    return lines[1]


class RedisServer:
    """A real redis-server on a loopback port: no persistence, a password."""

    def __init__(self, password):
        self.password = password
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="tickd-oracle-")
        self.log_path = os.path.join(self.dir.name, "redis.log")
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.dir.name, "--requirepass", password],
            stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=self.log_file)
        end = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n"
                                     f"{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64):
                        break
            except OSError:
                pass
            if time.monotonic() > end:
                self.close()
                raise AssertionError(f"redis-server not answering within 10 s:\n{self.log()}")
            time.sleep(0.05)
        _command(self.port, password, "ACL", "SETUSER", ALICE, "on", ">" + ALICE_PASSWORD,
                 "resetchannels", "&" + ALICE_CHANNELS, "resetkeys", "~" + ALICE_CHANNELS,
                 "+@all")

    def seed(self, channel, line):
        """Makes line the value of key channel, as tickd's last value would be."""
        _command(self.port, self.password, "SET", channel, line)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        self.dir.cleanup()


class TickdServer:
    """The real tickd: pub/sub on a loopback port, payload csv, a password."""

    def __init__(self, password):
        self.password = password
        digest = hashlib.sha256(ALICE_PASSWORD.encode()).hexdigest()
        users = ["users:", f"  - name: {ALICE}", f"    password_sha256: {digest}",
                 f'    subscribe: ["{ALICE_CHANNELS}"]', f'    publish: ["{ALICE_CHANNELS}"]']
        # No bars: redis-server holds only the seeded keys, and tickd's bars
        # (1s and 1m by default, a 1s bar closed by the timer about a second
        # after a seeded trade) would add bar keys to KEYS and SCAN.
        self.tickd = Tickd(pubsub_extra=["payload: csv", f'password: "{password}"', *users],
                           extra="bars:\n  intervals: []\n").start()
        self.port = self.tickd.pubsub_port

    def seed(self, channel, line):
        """Makes line the last value of channel: a PUBLISHed tick."""
        _command(self.port, self.password, "PUBLISH", channel, line)

    def log(self):
        return self.tickd.log()

    def close(self):
        self.tickd.close()


def start():
    """The server this run targets, started, with PASSWORD required."""
    if KIND == "redis":
        return RedisServer(PASSWORD)
    return TickdServer(PASSWORD)


class ServerTestCase(unittest.TestCase):
    """Starts the targeted server for each test, and fails a test that is still
    running after `limit` seconds (a client blocked on a reply, or looping to
    reconnect) instead of letting it hang: a test keeps the clients' default
    options, timeouts included, so the watchdog is the test's own."""

    limit = 15

    def setUp(self):
        self.server = start()
        self.addCleanup(self.server.close)
        signal.signal(signal.SIGALRM, self._timed_out)
        signal.alarm(self.limit)
        self.addCleanup(signal.alarm, 0)

    def _timed_out(self, signum, frame):
        raise AssertionError(f"{self.id()} still running after {self.limit} s "
                             f"({KIND} log follows):\n{self.server.log()}")

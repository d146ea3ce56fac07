"""harness.py - run the real tickd binary on loopback ports for integration tests.

A Tickd instance writes a configuration into a temporary directory, starts
the binary with NOTIFY_SOCKET pointing at a datagram socket of its own (so a
test can wait for READY=1 and watch WATCHDOG/RELOADING/STOPPING exactly as
systemd would), and offers small clients: a RESP connection in either
protocol (RESP2, or RESP3 after HELLO 3), an HTTP GET, and a TCP feed
connection. Everything binds to 127.0.0.1 only.

The binary is taken from the TICKD environment variable, set by ctest.

A daemon a test leaves running (one it started but never closed or
stopped) is killed when the test program exits, which then exits 1 naming
it: a leak fails the run instead of outliving it.
"""

import atexit
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request

TICKD = os.environ.get("TICKD", "tickd")

# The RESP versions a subscriber may speak; every test in which a subscriber
# runs runs under each.
PROTOCOLS = (2, 3)


_given = set()
_rng = random.Random(os.getpid() ^ time.monotonic_ns())


def _ephemeral_low():
    """The first port of the kernel's ephemeral range (32768 by default)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(kind=socket.SOCK_STREAM):
    """A port that was free a moment ago on 127.0.0.1, never the same twice
    in one process. It is drawn below the kernel's ephemeral range: a port
    taken by a bind to port 0 comes from that range, and so does the local
    port of every connect() on the machine (ctest runs tests side by side),
    either of which could take the port before tickd binds it."""
    low = _ephemeral_low()
    if low > 20000:
        for _ in range(1000):
            port = _rng.randrange(20000, low)
            if port in _given:
                continue
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _given.add(port)
            return port
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_running = set()  # the Tickd instances whose process may still be running


@atexit.register
def _kill_leftovers():
    left = [t for t in _running if t.proc.poll() is None]
    for t in left:
        t.proc.kill()
        t.proc.wait()
        print(f"harness: tickd (pid {t.proc.pid}, {t.config_path}) was left running by a "
              "test; killed", file=sys.stderr)
    if left:
        sys.stderr.flush()
        os._exit(1)


class Tickd:
    """One tickd process with its own configuration, ports and notify socket."""

    def __init__(self, feeds="", extra="", pubsub_extra=(), env=None, journal=False,
                 http_extra=()):
        self.dir = tempfile.TemporaryDirectory(prefix="tickd-it-")
        self.pubsub_port = free_port()
        self.http_port = free_port()
        self.config_path = os.path.join(self.dir.name, "tickd.yaml")
        self.journal_dir = os.path.join(self.dir.name, "journal")
        os.mkdir(self.journal_dir)
        self.feeds = feeds
        self.extra = extra
        self.pubsub_extra = pubsub_extra
        self.http_extra = http_extra
        self.journal = journal
        self.write_config()
        self.notify_path = os.path.join(self.dir.name, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notes = []
        self.env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        self.env.update(env or {})
        self.proc = None
        self.preexec = None
        self.wrapper = []  # e.g. valgrind and its options
        self.binary = TICKD
        self.stderr_path = os.path.join(self.dir.name, "stderr.log")

    def write_config(self):
        """pubsub_extra and http_extra are lists of "key: value" lines for those
        sections; extra and feeds are whole top-level YAML blocks."""
        lines = ["pubsub:", f"  listen: 127.0.0.1:{self.pubsub_port}"]
        lines += ["  " + line for line in self.pubsub_extra]
        lines += ["http:", f"  listen: 127.0.0.1:{self.http_port}"]
        lines += ["  " + line for line in self.http_extra]
        lines += ["gc:", "  interval: 50ms"]
        if self.journal:
            lines += ["journal:", "  enabled: true", f"  dir: {self.journal_dir}",
                      "  fsync: always"]
        text = "\n".join(lines) + "\n" + textwrap.dedent(self.extra) + \
            textwrap.dedent(self.feeds)
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, wait_ready=True):
        if self.proc is not None and self.proc.poll() is None:
            raise AssertionError("start() while tickd is still running")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([*self.wrapper, self.binary, "--config", self.config_path],
                                     env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=self.stderr, preexec_fn=self.preexec)
        _running.add(self)
        if wait_ready:
            self.wait_note("READY=1", 20)
        return self

    def log(self):
        with open(self.stderr_path) as f:
            return f.read()

    def read_notes(self, timeout):
        """Notify datagrams received within timeout seconds."""
        end = time.monotonic() + timeout
        got = []
        while True:
            left = max(0.0, end - time.monotonic())
            r, _, _ = select.select([self.notify], [], [], left)
            if not r:
                return got
            msg = self.notify.recv(4096).decode()
            self.notes.append(msg)
            got.append(msg)

    def wait_note(self, needle, timeout):
        """Waits for a notify datagram containing needle; returns it."""
        for note in self.notes:
            if needle in note.split("\n"):
                self.notes.remove(note)
                return note
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            exited = self.proc is not None and self.proc.poll() is not None
            for note in self.read_notes(0 if exited else min(0.2, end - time.monotonic())):
                if needle in note.split("\n"):
                    self.notes.remove(note)
                    return note
            if exited:
                raise AssertionError(f"tickd exited with {self.proc.returncode} before "
                                     f"{needle}:\n{self.log()}")
        raise AssertionError(f"no {needle} within {timeout}s:\n{self.log()}")

    def signal(self, signum):
        self.proc.send_signal(signum)

    def stop(self, timeout=20):
        """SIGTERM; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"tickd did not stop within {timeout}s:\n{self.log()}")

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _running.discard(self)
        if self.proc is not None:
            self.stderr.close()
        self.notify.close()
        self.dir.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ---- clients ----

    def resp(self, protocol=2):
        """A RESP client; protocol=3 opens it with HELLO 3."""
        return Resp(self.pubsub_port, protocol=protocol)

    def http_get(self, path):
        """(status, headers, body) of GET path."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    def metrics(self):
        """The /metrics page as {name{labels}: value}."""
        _, _, body = self.http_get("/metrics")
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out

    def metric(self, key):
        return self.metrics().get(key)

    def feed_connection(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        return s


class Push(list):
    """A RESP3 push frame ('>'): a list that a test can tell from an array."""


class Map(dict):
    """A RESP3 map ('%'), its keys and values decoded as read() decodes them."""


class Verbatim(str):
    """A RESP3 verbatim string ('='): the text, with its format ("txt") in fmt."""

    def __new__(cls, text, fmt):
        s = super().__new__(cls, text)
        s.fmt = fmt
        return s


class Resp:
    """A minimal RESP2/RESP3 client on a raw socket (independent of tickd's code).

    With protocol=3 it sends HELLO 3 first and checks that the answer is the
    server map with proto 3; read() decodes RESP3's types besides RESP2's.
    protocol names what the connection speaks; read_frame() checks a pub/sub
    frame against it."""

    def __init__(self, port, timeout=10, protocol=2):
        if protocol not in (2, 3):
            raise ValueError(f"protocol must be 2 or 3, not {protocol!r}")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.protocol = protocol
        if protocol == 3:
            hello = self.call("HELLO", "3")
            if type(hello) is not Map or hello.get(b"proto") != 3:
                self.close()
                raise AssertionError(f"HELLO 3 answered {hello!r}, not a map with proto 3")

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by tickd")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _blob(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        """One reply, decoded. RESP2: str for simple strings, bytes for bulk, list,
        int, None for a null bulk or array, or a RespError instance for an error
        reply. RESP3 adds Push for '>', Map for '%', None for '_', Verbatim for
        '=', float for ',', bool for '#' and int for '('."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind in (b":", b"("):
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._blob(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        if kind == b">":
            return Push(self.read() for _ in range(int(rest)))
        if kind == b"%":
            out = Map()
            for _ in range(int(rest)):
                key = self.read()
                out[key] = self.read()
            return out
        if kind == b"_" and rest == b"":
            return None
        if kind == b"=":
            data = self._blob(int(rest))
            if data[3:4] != b":":
                raise AssertionError(f"verbatim string without a format: {data!r}")
            return Verbatim(data[4:].decode(), data[:3].decode())
        if kind == b",":
            return float(rest)
        if kind == b"#" and rest in (b"t", b"f"):
            return rest == b"t"
        raise AssertionError(f"not RESP, or a type this client does not read: {line!r}")

    def read_frame(self):
        """One pub/sub frame ((p)(un)subscribe confirmation, message or pmessage),
        checked to be framed as this connection's protocol frames it: a push
        frame in RESP3, an array in RESP2. Returns it as a plain list."""
        frame = self.read()
        want = Push if self.protocol == 3 else list
        if type(frame) is not want:
            raise AssertionError(f"RESP{self.protocol} frame expected as {want.__name__}, "
                                 f"got {frame!r}")
        return list(frame)

    def call(self, *args):
        self.send(*args)
        return self.read()

    def call_frame(self, *args):
        """Sends a (P)(UN)SUBSCRIBE and returns its first confirmation, checked
        as read_frame() checks it."""
        self.send(*args)
        return self.read_frame()

    def closed(self, timeout=5):
        """True once tickd has closed the connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class RespError(Exception):
    pass


# The slow disk: shim/slow_fsync.c, built by CMake, preloaded into tickd.
SHIM = os.environ.get("TICKD_SLOW_FSYNC", "")


def slow_disk_env(ms):
    """tickd's environment for syncs that take ms milliseconds longer. The
    shim goes ahead of the ASan runtime of an ASan build, which then must
    not insist on coming first."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"LD_PRELOAD": SHIM, "TICKD_SLOW_FSYNC_MS": str(ms),
            "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}


def wait_for(predicate, timeout=10, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def tcp_feed(name, port, fmt="csv"):
    return f"""
feeds:
  - name: {name}
    type: tcp
    format: {fmt}
    listen: 127.0.0.1:{port}
"""


SEQ_RE = re.compile(r'"seq":(\d+)')


def journaling_with_a_source(test):
    """A started tickd with a TCP feed and the journal on (fsync: always), and
    a source connected to the feed; test's cleanup closes both."""
    feed_port = free_port()
    t = Tickd(feeds=tcp_feed("live", feed_port), journal=True)
    test.addCleanup(t.close)
    t.start()
    feed = t.feed_connection(feed_port)
    test.addCleanup(feed.close)
    return t, feed


def stream_trades(test, feed, symbol, batch, pause=0.0):
    """Sends CSV trades of symbol on the feed socket, batch lines a write,
    from a thread, until the returned event is set (test's cleanup sets it
    and joins the thread). A daemon that dies under the sender ends it."""
    stop = threading.Event()

    def send():
        i = 0
        try:
            while not stop.is_set():
                feed.sendall("".join(f"T,{i + k},{symbol},1.{(i + k) % 10000:04d},1\n"
                                     for k in range(batch)).encode())
                i += batch
                if pause:
                    time.sleep(pause)
        except OSError:
            pass

    sender = threading.Thread(target=send)
    sender.start()
    test.addCleanup(sender.join)
    test.addCleanup(stop.set)
    return stop, sender


def journal_file(t):
    """The one day file in t's journal directory."""
    files = [f for f in os.listdir(t.journal_dir)
             if f.startswith("tickd-") and f.endswith(".tlog")]
    assert len(files) == 1, files
    return os.path.join(t.journal_dir, files[0])

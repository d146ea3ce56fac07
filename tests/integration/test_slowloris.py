"""The slowloris client against the real binary: 200 connections that each
send the start of a request head and then a byte a second must not take
/metrics and /healthz away.

tickd runs with its defaults for the HTTP server (max_connections 64,
header_timeout 5s): a connection over the limit takes the place of the
oldest one still sending its head, and a head not complete 5 s after the
accept is closed. Before either existed every place was held by a slow
client, and /metrics and /healthz answered 503 for as long as they
trickled.
"""

import selectors
import socket
import threading
import time
import unittest

from harness import Tickd

SLOW = 200          # slowloris connections
HEAD_TIMEOUT = 5.0  # tickd's default http.header_timeout
ANSWER_WITHIN = 1.0  # the target: /metrics and /healthz answer within this


class Slowloris:
    """SLOW connections, each sending the start of a request head, then one
    more byte a second from a thread of its own, which also notes when the
    server closes each one and whether it sent anything first."""

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.opened = {}     # socket -> monotonic time connected
        self.closed = {}     # socket -> monotonic time the server closed it
        self.answered = []   # sockets the server sent bytes to
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def open(self):
        for _ in range(SLOW):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            t = time.monotonic()
            s.setblocking(False)
            with self.lock:
                self.opened[s] = t
            try:
                s.send(b"GET /metrics HTTP/1.1\r\nX-a:")
            except OSError:
                self._closed(s)
                continue
            self.sel.register(s, selectors.EVENT_READ)
        self.thread.start()

    def _closed(self, s):
        with self.lock:
            self.closed.setdefault(s, time.monotonic())

    def _run(self):
        next_byte = time.monotonic() + 1.0
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.05):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    self.answered.append(s)
                    continue
                self._closed(s)
                self.sel.unregister(s)
            if time.monotonic() >= next_byte:
                next_byte += 1.0
                with self.lock:
                    open_now = [s for s in self.opened if s not in self.closed]
                for s in open_now:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass  # closed: the read above notes when

    def open_count(self):
        with self.lock:
            return len(self.opened) - len(self.closed)

    def close(self):
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        for s in self.opened:
            s.close()
        self.sel.close()


class SlowlorisTest(unittest.TestCase):
    def setUp(self):
        self.tickd = Tickd().start()
        self.addCleanup(self.tickd.close)
        self.slow = Slowloris(self.tickd.http_port)
        self.addCleanup(self.slow.close)

    def timed_get(self, path):
        t0 = time.monotonic()
        status, _, body = self.tickd.http_get(path)
        return status, time.monotonic() - t0, body

    def test_metrics_and_healthz_answer_within_a_second_while_200_slow_clients_trickle(self):
        self.slow.open()
        for _ in range(3):
            for path in ("/metrics", "/healthz"):
                status, took, body = self.timed_get(path)
                self.assertEqual(status, 200, f"{path} answered {status}: {body[:200]}")
                self.assertLess(took, ANSWER_WITHIN, f"{path} took {took:.3f} s")
            time.sleep(0.5)
        # The slow clients are still trickling: some still hold a place.
        self.assertGreater(self.slow.open_count(), 0)

        # Every slow connection is closed by the head deadline at the latest,
        # without an answer (neither a 503 nor anything else).
        last = max(self.slow.opened.values())
        deadline = last + HEAD_TIMEOUT + 3.0
        while self.slow.open_count() > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.slow.open_count(), 0,
                         f"{self.slow.open_count()} slow connections outlived the head deadline")
        self.assertEqual(self.slow.answered, [])
        with self.slow.lock:
            lived = [self.slow.closed[s] - t for s, t in self.slow.opened.items()]
        # Those that were never made to give way lived until the deadline.
        late = [d for d in lived if d >= HEAD_TIMEOUT - 0.5]
        self.assertGreater(len(late), 0, "none was closed by the head deadline")
        self.assertLess(max(lived), HEAD_TIMEOUT + 2.0)

        # And the server still answers.
        status, took, _ = self.timed_get("/metrics")
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()

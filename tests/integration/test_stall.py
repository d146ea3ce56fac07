"""Requests that must not stall the loop, on the real binary: snapshots of
many match-everything patterns for a client that never reads, new symbols
through PUBLISH, and a churn of patterns while 100,000 are held. Each test
bounds what it waits for; the bounds are loose (a stalled loop misses them by
far, an ASan build meets them)."""

import socket
import statistics
import threading
import time
import unittest

from harness import Resp, RespError, Tickd, free_port, tcp_feed, wait_for


def vm_kib(pid, key):
    """A VmRSS/VmHWM line of /proc/<pid>/status, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} for {pid}")


def ping_rtt(client):
    start = time.monotonic()
    assert client.call("PING") == "PONG"
    return time.monotonic() - start


def take(sock, nbytes):
    got = 0
    while got < nbytes:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed by tickd")
        got += len(chunk)


def psubscribe_reply_len(kind, names, start):
    """Bytes of the (p)(un)subscribe replies for names, counts from start."""
    n, total = start, 0
    for name in names:
        n += 1 if kind == b"psubscribe" else -1
        total += len(b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n:%d\r\n"
                     % (len(kind), kind, len(name), name, n))
    return total


def hold_idle_patterns(holder, n, between=None):
    """PSUBSCRIBEs trade.IDLE<i>* for i < n on holder, 1,000 a command, each
    reply read whole; between(start) runs after each command."""
    held = 0
    for start in range(0, n, 1000):
        names = [b"trade.IDLE%d*" % i for i in range(start, start + 1000)]
        holder.sendall(b"PSUBSCRIBE " + b" ".join(names) + b"\r\n")
        take(holder, psubscribe_reply_len(b"psubscribe", names, held))
        held += len(names)
        if between is not None:
            between(start)


class StallTest(unittest.TestCase):
    def start(self, **kw):
        t = Tickd(**kw)
        t.start()
        self.addCleanup(t.close)
        return t

    def test_snapshots_for_a_client_that_never_reads_stall_nothing_and_hold_little(self):
        feed_port = free_port()
        t = self.start(feeds=tcp_feed("f", feed_port),
                       pubsub_extra=["output_hard_limit: 1MiB", "output_soft_limit: 512KiB"])
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        feed.sendall("".join(f"T,{i},S{i},1.{i % 10000:04d},100\n"
                             f"Q,{i},S{i},1.0000,10,1.0100,20\n" for i in range(1000)).encode())
        probe = Resp(t.pubsub_port)
        self.addCleanup(probe.close)
        wait_for(lambda: t.metric("tickd_ticks_total{kind=\"quote\"}") == 1000,
                 what="the 1,000 symbols")
        hwm = vm_kib(t.proc.pid, "VmHWM")

        # 1,000 distinct match-everything patterns ("[^<digits>]*": every
        # channel starts with a letter) in one 7 KB request, 2,000 channels
        # each: some 300 MB of snapshots had they all been built at once.
        greedy = socket.socket()
        self.addCleanup(greedy.close)
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        greedy.connect(("127.0.0.1", t.pubsub_port))
        patterns = [b"[^%d]*" % i for i in range(1000)]
        greedy.sendall(b"PSUBSCRIBE " + b" ".join(patterns) + b"\r\n")
        rtts = [ping_rtt(probe) for _ in range(20)]
        time.sleep(0.5)
        rtts += [ping_rtt(probe) for _ in range(20)]
        self.assertLess(max(rtts), 2.0, rtts)
        grew = vm_kib(t.proc.pid, "VmHWM") - hwm
        self.assertLess(grew, 64 * 1024, f"peak RSS grew {grew} KiB")
        self.assertLessEqual(t.metric("tickd_pubsub_output_buffer_bytes"), 1 << 20)

    def test_publish_of_new_symbols_stops_at_the_days_limit(self):
        feed_port = free_port()
        t = self.start(feeds=tcp_feed("f", feed_port),
                       pubsub_extra=["max_publish_symbols: 3"])
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        feed.sendall(b"T,1,FEED,1.0000,1\n")
        wait_for(lambda: t.metric("tickd_ticks_total{kind=\"trade\"}") == 1, what="the feed tick")
        pub = Resp(t.pubsub_port)
        self.addCleanup(pub.close)
        for sym in ("P1", "P2", "P3", "P1", "FEED"):
            self.assertEqual(pub.call("PUBLISH", f"trade.{sym}", f"T,2,{sym},1.0000,1"), 0)
        reply = pub.call("PUBLISH", "trade.P4", "T,2,P4,1.0000,1")
        self.assertIsInstance(reply, RespError)
        self.assertTrue(str(reply).startswith("ERR symbol limit reached"), reply)
        self.assertEqual(pub.call("PUBLISH", "quote.P2", "Q,3,P2,1.0000,1,1.0100,1"), 0)
        self.assertEqual(t.metric("tickd_pubsub_publish_symbol_limit_hits_total"), 1)
        self.assertEqual(t.metric("tickd_market_symbols{source=\"publish\"}"), 3)
        self.assertEqual(t.metric("tickd_market_symbols{source=\"feed\"}"), 1)

    def test_pattern_churn_among_100000_patterns_keeps_the_loop_answering(self):
        feed_port = free_port()
        t = self.start(feeds=tcp_feed("f", feed_port),
                       pubsub_extra=["snapshot_on_subscribe: false"])
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        holder = socket.create_connection(("127.0.0.1", t.pubsub_port))
        self.addCleanup(holder.close)
        hold_idle_patterns(holder, 100000)
        self.assertEqual(t.metric("tickd_pubsub_subscriptions"), 100000)

        stop = threading.Event()

        def ticks():
            i = 0
            while not stop.is_set():
                feed.sendall("".join(f"T,{i + k},S{(i + k) % 200},1.0000,1\n"
                                     for k in range(200)).encode())
                i += 200
                time.sleep(0.002)

        def churn():
            c = socket.create_connection(("127.0.0.1", t.pubsub_port))
            n = 0
            while not stop.is_set():
                names = [b"churn.%d.*" % (n + k) for k in range(50)]
                req = b"".join(b"PSUBSCRIBE %s\r\nPUNSUBSCRIBE %s\r\n" % (x, x) for x in names)
                c.sendall(req)
                take(c, sum(psubscribe_reply_len(b"psubscribe", [x], 0) +
                            psubscribe_reply_len(b"punsubscribe", [x], 1) for x in names))
                n += 50
            c.close()

        threads = [threading.Thread(target=ticks), threading.Thread(target=churn)]
        for th in threads:
            th.start()
        try:
            probe = Resp(t.pubsub_port)
            self.addCleanup(probe.close)
            time.sleep(0.5)
            rtts = [ping_rtt(probe) for _ in range(50)]
        finally:
            stop.set()
            for th in threads:
                th.join()
        self.assertLess(statistics.median(rtts), 0.05, rtts)
        self.assertLess(max(rtts), 1.0, rtts)

    def test_memory_of_100000_patterns_goes_back_after_they_went(self):
        feed_port = free_port()
        t = self.start(feeds=tcp_feed("f", feed_port))
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        holder = socket.create_connection(("127.0.0.1", t.pubsub_port))
        self.addCleanup(holder.close)
        # the symbols' last values are made among the patterns' blocks
        hold_idle_patterns(holder, 100000, lambda start: feed.sendall(
            "".join(f"T,{start + k},S{k},1.0000,1\n" for k in range(50)).encode()))
        holder.sendall(b"PUNSUBSCRIBE\r\n")
        wait_for(lambda: t.metric("tickd_pubsub_subscriptions") == 0, what="the patterns gone")
        arena = 1 << 20  # the default heap.arena_size

        def back():
            m = t.metrics()
            live = -(-int(m["tickd_alloc_used_bytes"]) // arena)
            return m["tickd_alloc_mapped_bytes"] <= (live + 2) * arena

        wait_for(back, timeout=5, what="mapped memory within 2 arenas of the live blocks")


if __name__ == "__main__":
    unittest.main()

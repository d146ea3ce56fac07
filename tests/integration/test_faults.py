"""Faults on the real binary: kill -9 in the middle of ingest, then a restart
(the journal is repaired and nothing that was reported durable is lost), and
a journal whose disk is full (errors counted, subscribers of both
protocols still served)."""

import json
import resource
import signal
import subprocess
import unittest

from harness import (PROTOCOLS, TICKD, Tickd, free_port, journal_file, journaling_with_a_source,
                     stream_trades, tcp_feed, wait_for)


def verify(path):
    return subprocess.run([TICKD, "journal", "verify", path], capture_output=True, text=True,
                          timeout=60)


class FaultTest(unittest.TestCase):
    def test_kill_9_during_ingest_loses_no_durable_record(self):
        t, feed = journaling_with_a_source(self)
        stop, sender = stream_trades(self, feed, "KILL", 500)
        wait_for(lambda: (t.metric("tickd_journal_durable_records") or 0) > 20000, timeout=60,
                 what="records synced to disk")
        durable = t.metric("tickd_journal_durable_records")
        t.proc.send_signal(signal.SIGKILL)
        t.proc.wait()
        stop.set()

        path = journal_file(t)
        before = verify(path)
        # Whatever the kill left (perhaps half a record), the records reported
        # durable are all there.
        records = int(before.stdout.split(" records")[0].rsplit(" ", 1)[1])
        self.assertGreaterEqual(records, durable)

        # The restarted daemon repairs the journal before appending to it.
        t.stderr.close()
        t.start()
        self.assertEqual(t.stop(), 0)
        after = verify(path)
        self.assertEqual(after.returncode, 0, after.stdout + after.stderr)
        self.assertIn("ok", after.stdout)
        self.assertGreaterEqual(int(after.stdout.split(" records")[0].rsplit(" ", 1)[1]),
                                durable)

    def test_acknowledged_publish_survives_kill_9(self):
        t = Tickd(journal=True)  # fsync: always
        self.addCleanup(t.close)
        t.start()
        pub = t.resp()
        self.addCleanup(pub.close)
        for i in range(300):
            self.assertEqual(pub.call("PUBLISH", "trade.ACK", f"T,{i},ACK,2.5,{i + 1},B"), 0)
        t.proc.send_signal(signal.SIGKILL)  # right after the last acknowledgment
        t.proc.wait()
        r = subprocess.run([TICKD, "journal", "cat", journal_file(t)], capture_output=True,
                           text=True, timeout=60)
        sizes = [int(line.split(",")[4]) for line in r.stdout.splitlines()]
        self.assertEqual(sizes, list(range(1, 301)))

    def test_full_disk_counts_journal_errors_and_keeps_serving(self):
        feed_port = free_port()
        t = Tickd(feeds=tcp_feed("live", feed_port), journal=True)
        self.addCleanup(t.close)
        # A file size limit makes the journal's disk "full" after 64 KiB.
        limit = 64 * 1024
        t.preexec = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        t.start()
        subs = [t.resp(protocol=p) for p in PROTOCOLS]
        for sub in subs:
            self.addCleanup(sub.close)
            self.assertEqual(sub.call_frame("SUBSCRIBE", "trade.FULL")[0], b"subscribe")
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        n = 5000  # 5000 records of 72 bytes: far past the limit
        feed.sendall("".join(f"T,{i},FULL,1,{i + 1}\n" for i in range(n)).encode())
        for i in range(n):  # a subscriber of each protocol gets every tick
            for sub in subs:
                msg = sub.read_frame()
                self.assertEqual(msg[:2], [b"message", b"trade.FULL"])
                self.assertEqual(json.loads(msg[2])["size"], i + 1)
        wait_for(lambda: (t.metric("tickd_journal_errors_total") or 0) > 0,
                 what="the journal write errors counted")
        self.assertGreater(t.metric("tickd_journal_dropped_records_total"), 0)
        self.assertIn("journal: write failed", t.log())
        # The journal holds whole records only.
        r = verify(journal_file(t))
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(t.resp().call("PING"), "PONG")
        self.assertEqual(t.stop(), 0)


if __name__ == "__main__":
    unittest.main()

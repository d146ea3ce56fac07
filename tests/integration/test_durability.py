"""test_durability.py - with journal.fsync: always, an acknowledged PUBLISH is
in the journal: on a slow disk, after a clean stop and after kill -9, on a
full disk, across a reload that changes the policy, and while a second
daemon tries to take the journal directory.

Publishers pipeline PUBLISHes as fast as they can, each tick with a unique
exchange timestamp; every ":N" reply is an acknowledgement and is counted,
every error reply must be a journal error ("-ERR journal: ...") and is never
counted. Afterwards `tickd journal cat` must hold every acknowledged tick.

The slow disk is shim/slow_fsync.c (TICKD_SLOW_FSYNC, built by CMake),
preloaded into tickd: every fdatasync takes TICKD_SLOW_FSYNC_MS longer. The
full disk is a 2 MiB tmpfs, where this machine lets the test mount one.
"""

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import SHIM, TICKD, Tickd, journal_file, slow_disk_env, wait_for

def journal_ticks(path):
    """The exchange timestamps of the ticks `tickd journal cat` prints."""
    r = subprocess.run([TICKD, "journal", "cat", path], capture_output=True, text=True,
                       timeout=120)
    return {int(line.split(",")[1]) for line in r.stdout.splitlines() if line}


class Publisher:
    """One connection that pipelines PUBLISHes of trade.DUR from a sender
    thread (chunk commands a write, until stop or count are reached) while a
    reader thread matches the replies, in order, to the ticks: acked holds
    the timestamps acknowledged, errors the error replies."""

    def __init__(self, port, ident, count, chunk=200):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.ident = ident
        self.count = count
        self.chunk = chunk
        self.sent = []  # timestamps in the order sent
        self.acked = []
        self.errors = []
        self.replies = 0
        self.stop = threading.Event()
        self.sender = threading.Thread(target=self._send)
        self.reader = threading.Thread(target=self._read)

    def start(self):
        self.sender.start()
        self.reader.start()
        return self

    def _send(self):
        base = self.ident * 10**12
        try:
            i = 0
            while i < self.count and not self.stop.is_set():
                cmds = []
                for ts in range(base + i, base + min(i + self.chunk, self.count)):
                    line = f"T,{ts},DUR,1.{ts % 10000:04d},{ts % 1000 + 1},B".encode()
                    cmds.append(b"*3\r\n$7\r\nPUBLISH\r\n$9\r\ntrade.DUR\r\n$%d\r\n%s\r\n"
                                % (len(line), line))
                    self.sent.append(ts)
                self.sock.sendall(b"".join(cmds))
                i += len(cmds)
        except OSError:
            pass

    def _read(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return
                buf += chunk
                lines = buf.split(b"\r\n")
                buf = lines.pop()
                for line in lines:
                    ts = self.sent[self.replies]
                    self.replies += 1
                    if line.startswith(b":"):
                        self.acked.append(ts)
                    else:
                        self.errors.append(line.decode())
        except OSError:
            pass

    def finish(self, timeout):
        """Stops sending and waits up to timeout s for every reply."""
        self.stop.set()
        self.sender.join()
        end = time.monotonic() + timeout
        while self.replies < len(self.sent) and time.monotonic() < end:
            time.sleep(0.05)
        return self.replies == len(self.sent)

    def close(self):
        self.stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.sender.join()
        self.reader.join()


class DurabilityTest(unittest.TestCase):
    def setUp(self):
        if not SHIM or not os.path.exists(SHIM):
            self.fail("TICKD_SLOW_FSYNC must name the built shim, libtickd-slow-fsync.so "
                      "(ctest sets it)")

    def daemon(self, sync_ms, **kw):
        t = Tickd(journal=True, env=slow_disk_env(sync_ms), **kw)  # fsync: always
        self.addCleanup(t.close)
        return t

    def publishers(self, t, n, count):
        pubs = [Publisher(t.pubsub_port, i + 1, count).start() for i in range(n)]
        for p in pubs:
            self.addCleanup(p.close)
        return pubs

    def assert_only_journal_errors(self, pubs):
        for p in pubs:
            for e in p.errors:
                self.assertTrue(e.startswith("-ERR journal: ") and e.endswith("not made durable"),
                                e)

    def assert_acked_in_journal(self, pubs, path):
        acked = [ts for p in pubs for ts in p.acked]
        have = journal_ticks(path)
        missing = [ts for ts in acked if ts not in have]
        self.assertEqual(len(missing), 0,
                         f"{len(missing)} of {len(acked)} acknowledged PUBLISHes are not in the "
                         f"journal (first: {missing[:3]})")
        return acked

    def test_every_acknowledged_publish_is_in_the_journal_after_a_clean_stop_on_a_slow_disk(self):
        t = self.daemon(300)
        t.start()
        # 200000 ticks sent at once: far more than the journal's buffers hold
        # while a sync takes 300 ms.
        pubs = self.publishers(t, 4, 50000)
        for p in pubs:
            self.assertTrue(p.finish(60), "a publisher is still waiting for replies")
        self.assertEqual(t.stop(), 0)
        acked = self.assert_acked_in_journal(pubs, journal_file(t))
        self.assertGreater(len(acked), 1000)
        self.assert_only_journal_errors(pubs)

    def test_many_publishers_on_a_slow_disk_are_slowed_down_not_refused(self):
        t = self.daemon(300)
        t.start()
        # 16 pipelining publishers outrun the journal's buffers between two
        # syncs: they wait for room instead of getting errors.
        pubs = self.publishers(t, 16, 20000)
        for p in pubs:
            p.sender.join()
            self.assertTrue(p.finish(60), "a publisher is still waiting for replies")
        self.assertEqual([e for p in pubs for e in p.errors], [])
        self.assertEqual(t.stop(), 0)
        acked = self.assert_acked_in_journal(pubs, journal_file(t))
        self.assertEqual(len(acked), 16 * 20000)

    def test_every_acknowledged_publish_is_in_the_journal_after_kill_9_on_a_slow_disk(self):
        t = self.daemon(100)
        t.start()
        pubs = self.publishers(t, 4, 400000)
        wait_for(lambda: sum(len(p.acked) for p in pubs) > 5000, timeout=30,
                 what="acknowledgements")
        t.proc.send_signal(signal.SIGKILL)
        t.proc.wait()
        for p in pubs:
            p.close()
        self.assert_acked_in_journal(pubs, journal_file(t))
        self.assert_only_journal_errors(pubs)

    def test_on_a_full_disk_the_acknowledged_publishes_are_in_the_journal_and_the_rest_get_errors(
            self):
        mnt = tempfile.mkdtemp(prefix="tickd-full-")
        self.addCleanup(os.rmdir, mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest(f"cannot mount a 2 MiB tmpfs here (needs root): {r.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", mnt])
        t = self.daemon(0)
        t.journal_dir = os.path.join(mnt, "journal")
        os.mkdir(t.journal_dir)
        t.write_config()
        t.start()
        # 4 x 15000 records of 72 bytes: twice what the disk holds.
        pubs = self.publishers(t, 4, 15000)
        for p in pubs:
            p.sender.join()
            self.assertTrue(p.finish(60), "a publisher is still waiting for replies")
        self.assertGreater(sum(len(p.errors) for p in pubs), 0, "no publisher was told that the disk is full")
        self.assert_only_journal_errors(pubs)
        self.assertEqual(t.metric("tickd_journal_publish_errors_total"),
                         sum(len(p.errors) for p in pubs))
        self.assertEqual(t.resp().call("PING"), "PONG")
        t.stop()
        acked = self.assert_acked_in_journal(pubs, journal_file(t))
        self.assertGreater(len(acked), 0)

    def test_a_reload_from_always_to_never_answers_the_held_publishes(self):
        t = self.daemon(1500)
        t.start()
        first, second = t.resp(), t.resp()
        self.addCleanup(first.close)
        self.addCleanup(second.close)
        first.send("PUBLISH", "trade.DUR", "T,1,DUR,1,1,B")  # its sync takes 1.5 s
        time.sleep(0.3)
        second.send("PUBLISH", "trade.DUR", "T,2,DUR,1,2,B")  # waits for the next one
        time.sleep(0.3)
        t.journal = False
        t.extra = f"journal:\n  enabled: true\n  dir: {t.journal_dir}\n  fsync: never\n"
        t.write_config()
        t.signal(signal.SIGHUP)
        for c in (first, second):
            c.sock.settimeout(10)
            reply = c.read()
            self.assertTrue(isinstance(reply, int) or str(reply).startswith("ERR journal: "),
                            reply)
            self.assertEqual(c.call("PING"), "PONG")
        self.assertEqual(t.stop(), 0)

    def test_a_second_daemon_on_the_journal_directory_is_refused_and_no_acknowledged_publish_is_lost(
            self):
        a = self.daemon(300)
        a.start()
        pubs = self.publishers(a, 2, 80000)
        wait_for(lambda: sum(len(p.acked) for p in pubs) > 2000, timeout=30,
                 what="acknowledgements")
        b = Tickd(journal=True)
        self.addCleanup(b.close)
        b.journal_dir = a.journal_dir
        b.write_config()
        b.start(wait_ready=False)
        self.assertEqual(b.proc.wait(30), 75, b.log())
        for p in pubs:
            self.assertTrue(p.finish(60), "a publisher is still waiting for replies")
        self.assertEqual(a.stop(), 0)
        acked = self.assert_acked_in_journal(pubs, journal_file(a))
        self.assertGreater(len(acked), 2000)
        self.assert_only_journal_errors(pubs)


if __name__ == "__main__":
    unittest.main()

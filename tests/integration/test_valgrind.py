"""The real binary under valgrind's memcheck through a whole life: start, TCP
ingest, subscribers (channel and pattern, RESP2 and RESP3), PUBLISH, a
reload, a looping replay that starts its file again, and SIGTERM. Memcheck
must report no error and no definitely lost byte."""

import os
import re
import shutil
import signal
import subprocess
import unittest

from harness import PROTOCOLS, TICKD, Tickd, free_port, wait_for


class ValgrindTest(unittest.TestCase):
    def test_memcheck_finds_no_error_and_no_leak_over_a_daemon_life(self):
        valgrind = shutil.which("valgrind")
        self.assertIsNotNone(valgrind, "valgrind is installed by deploy/setup.sh")
        feed_port = free_port()
        t = Tickd(journal=True)
        self.addCleanup(t.close)
        day = os.path.join(t.dir.name, "day.itch")
        subprocess.run([TICKD, "gen", "itch", "--symbols", "5", "--messages", "3000", "-o", day],
                       check=True)
        t.feeds = f"""
feeds:
  - name: live
    type: tcp
    format: csv
    listen: 127.0.0.1:{feed_port}
  - name: day
    type: file
    format: itch
    path: {day}
    speed: max
    loop: true
"""
        t.write_config()
        log = os.path.join(t.dir.name, "memcheck.log")
        t.wrapper = [valgrind, "--tool=memcheck", "--leak-check=full",
                     "--errors-for-leak-kinds=definite", f"--log-file={log}"]
        t.start()
        subs = []
        for protocol in PROTOCOLS:  # a channel and a pattern subscriber of each
            sub = t.resp(protocol=protocol)
            self.addCleanup(sub.close)
            self.assertEqual(sub.call_frame("SUBSCRIBE", "trade.VG")[0], b"subscribe")
            psub = t.resp(protocol=protocol)
            self.addCleanup(psub.close)
            self.assertEqual(psub.call_frame("PSUBSCRIBE", "quote.*")[0], b"psubscribe")
            subs.append(sub)
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        feed.sendall(b"T,1,VG,1.5,10,B\nQ,2,VG,1.4,5,1.6,7\nnot a tick\n")
        for sub in subs:
            self.assertEqual(sub.read_frame()[:2], [b"message", b"trade.VG"])
        pub = t.resp()
        self.addCleanup(pub.close)
        self.assertEqual(pub.call("PUBLISH", "trade.VG", "T,3,VG,1.6,1,S"), 2)
        wait_for(lambda: (t.metric('tickd_feed_messages_total{feed="day"}') or 0) >= 6000,
                 timeout=120, what="the looping replay starting the file again twice")
        t.signal(signal.SIGHUP)
        t.wait_note("READY=1", 60)
        self.assertEqual(t.stop(timeout=120), 0)
        with open(log) as f:
            report = f.read()
        summary = re.search(r"ERROR SUMMARY: (\d+) errors", report)
        self.assertIsNotNone(summary, report[-2000:])
        self.assertEqual(summary.group(1), "0", report[-4000:])
        lost = re.search(r"definitely lost: ([\d,]+) bytes", report)
        self.assertTrue(lost is None or lost.group(1) == "0", report[-4000:])


if __name__ == "__main__":
    unittest.main()

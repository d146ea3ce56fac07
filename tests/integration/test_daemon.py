"""The daemon's life on the real binary: configuration errors, systemd
notifications, reload, shutdown, replay, the end of the day and the journal."""

import glob
import json
import os
import signal
import subprocess
import unittest

from harness import PROTOCOLS, TICKD, Tickd, free_port, tcp_feed, wait_for


def run(*args, **kw):
    return subprocess.run([TICKD, *args], capture_output=True, text=True, timeout=60, **kw)


class ConfigErrorTest(unittest.TestCase):
    def check(self, text, *expected):
        t = Tickd()
        self.addCleanup(t.close)
        with open(t.config_path, "w") as f:
            f.write(text)
        r = run("--check-config", t.config_path)
        self.assertEqual(r.returncode, 78, r.stderr)
        for e in expected:
            self.assertIn(e.replace("FILE", t.config_path), r.stderr)
        # The daemon refuses to start with it, with the same message and code.
        r = run("--config", t.config_path)
        self.assertEqual(r.returncode, 78, r.stderr)
        return r.stderr

    def test_bad_listen_names_file_line_column_and_the_fix(self):
        self.check("pubsub:\n  listen: 6380\n", "FILE:2:11: pubsub.listen: expected host:port")

    def test_unknown_key_is_rejected_with_its_place(self):
        self.check("http:\n  listen: 127.0.0.1:1\npubsb:\n  listen: x\n",
                   "FILE:3:1:", "pubsb")

    def test_bad_size_is_rejected(self):
        self.check("pubsub:\n  output_hard_limit: 32 parsecs\n",
                   "FILE:2:22: pubsub.output_hard_limit:")

    def test_good_config_checks_ok(self):
        t = Tickd()
        self.addCleanup(t.close)
        r = run("--check-config", t.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)


class LifeTest(unittest.TestCase):
    def test_ready_watchdog_reload_and_stop_are_notified(self):
        feed_port = free_port()
        t = Tickd(feeds=tcp_feed("live", feed_port), env={"WATCHDOG_USEC": "200000"})
        self.addCleanup(t.close)
        t.start()
        t.wait_note("WATCHDOG=1", 2)
        t.wait_note("WATCHDOG=1", 2)

        subs = [t.resp(protocol=p) for p in PROTOCOLS]
        for sub in subs:
            self.addCleanup(sub.close)
            self.assertEqual(sub.call_frame("SUBSCRIBE", "trade.HUP")[0], b"subscribe")
        second = free_port()
        t.feeds = tcp_feed("live", feed_port) + f"""
  - name: second
    type: tcp
    format: csv
    listen: 127.0.0.1:{second}
"""
        t.write_config()
        t.signal(signal.SIGHUP)
        note = t.wait_note("RELOADING=1", 5)
        self.assertIn("MONOTONIC_USEC=", note)
        t.wait_note("READY=1", 5)
        # The new feed listens, and the subscribers of either protocol survived
        # the reload, each still framed in its own.
        feed = t.feed_connection(second)
        self.addCleanup(feed.close)
        feed.sendall(b"T,1,HUP,1,1\n")
        for sub in subs:
            self.assertEqual(sub.read_frame()[:2], [b"message", b"trade.HUP"])

        self.assertEqual(t.stop(), 0)
        t.wait_note("STOPPING=1", 1)

    def test_bad_config_on_reload_keeps_the_running_one(self):
        t = Tickd()
        self.addCleanup(t.close)
        t.start()
        with open(t.config_path, "a") as f:
            f.write("nonsense: [\n")
        t.signal(signal.SIGHUP)
        t.wait_note("READY=1", 5)
        self.assertEqual(t.resp().call("PING"), "PONG")
        self.assertIn("keeping the running configuration", t.log())
        self.assertEqual(t.stop(), 0)

    def test_sigint_also_stops_cleanly(self):
        t = Tickd()
        self.addCleanup(t.close)
        t.start()
        t.signal(signal.SIGINT)
        self.assertEqual(t.proc.wait(20), 0)


class ReplayTest(unittest.TestCase):
    def test_looping_replay_stays_in_its_day_and_objects_stay_at_one_pass(self):
        t = Tickd()
        self.addCleanup(t.close)
        day = os.path.join(t.dir.name, "day.itch")
        r = run("gen", "itch", "--symbols", "20", "--messages", "20000", "--seed", "3",
                "-o", day)
        self.assertEqual(r.returncode, 0, r.stderr)
        t.feeds = f"""
feeds:
  - name: day
    type: file
    format: itch
    path: {day}
    speed: max
    loop: true
"""
        t.write_config()
        t.start()
        wait_for(lambda: (t.metric('tickd_feed_messages_total{feed="day"}') or 0) > 100000,
                 timeout=60, what="five replays of the day")
        m = t.metrics()
        # However many passes went by, the day is the same one: its symbols,
        # and the orders of one pass (each pass takes back the last one's).
        self.assertEqual(m["tickd_sessions_rolled_total"], 0)
        self.assertLessEqual(m['tickd_objects{type="symbol"}'], 20)
        self.assertLessEqual(m['tickd_objects{type="order"}'], 20000)
        self.assertEqual(m['tickd_feed_decode_errors_total{feed="day"}'], 0)
        self.assertEqual(m['tickd_feed_rejected_total{feed="day"}'], 0)
        self.assertEqual(t.stop(), 0)

    def test_replay_command_prints_a_json_summary(self):
        t = Tickd()
        self.addCleanup(t.close)
        day = os.path.join(t.dir.name, "day.itch")
        run("gen", "itch", "--symbols", "5", "--messages", "5000", "--seed", "1", "-o", day)
        r = run("replay", day, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json.loads(r.stdout)
        for key in ("messages", "ticks", "decode_errors", "seconds", "messages_per_second",
                    "peak_mapped_bytes", "gc_collections"):
            self.assertIn(key, summary)
        self.assertEqual(summary["messages"], 5000)
        self.assertEqual(summary["decode_errors"], 0)
        # With a journal: every tick recorded (read after the journal closed,
        # which once read freed memory: the ASan suite runs this too).
        jdir = os.path.join(t.dir.name, "replay-journal")
        os.mkdir(jdir)
        r = run("replay", day, "--json", "--journal", jdir, "--fsync", "always")
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json.loads(r.stdout)
        self.assertEqual(summary["journal_records"], summary["ticks"])
        files = glob.glob(os.path.join(jdir, "tickd-*.tlog"))
        r = run("journal", "verify", files[0])
        self.assertIn(f"{summary['ticks']} records", r.stdout)


class JournalTest(unittest.TestCase):
    def test_ticks_are_journaled_and_the_journal_verifies(self):
        feed_port = free_port()
        t = Tickd(feeds=tcp_feed("live", feed_port), journal=True)
        self.addCleanup(t.close)
        t.start()
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        feed.sendall("".join(f"T,{i},JRN,1.{i:04d},{i + 1}\n" for i in range(500)).encode())
        wait_for(lambda: t.metric("tickd_journal_records_total") == 500, what="500 records")
        self.assertEqual(t.stop(), 0)
        files = glob.glob(os.path.join(t.journal_dir, "tickd-*.tlog"))
        self.assertEqual(len(files), 1)
        r = run("journal", "verify", files[0])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("500 records", r.stdout)
        r = run("journal", "cat", files[0])
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 500)
        self.assertTrue(lines[0].startswith("T,0,JRN,1.0000,1"))


if __name__ == "__main__":
    unittest.main()

"""The command line on the real binary: every command's --help and `tickd
help`, range errors, the journal tools against a journal a running daemon is
writing (verify never calls its tail damage, repair and a second daemon are
refused and change nothing), and the replay progress line with Ctrl-C under a
pseudo-terminal."""

import fcntl
import glob
import os
import pty
import re
import select
import signal
import subprocess
import tempfile
import time
import unittest

from harness import TICKD, Tickd, journal_file, journaling_with_a_source, stream_trades, wait_for


def run(*args, **kw):
    return subprocess.run([TICKD, *args], capture_output=True, text=True, timeout=60, **kw)


class HelpTest(unittest.TestCase):
    def test_every_command_prints_its_usage_on_help_and_exits_0(self):
        for argv, command in ((["replay", "--help"], "replay"), (["replay", "day.itch", "-h"],
                                                                 "replay"),
                              (["gen", "--help"], "gen"), (["gen", "itch", "-h"], "gen"),
                              (["journal", "--help"], "journal"),
                              (["journal", "verify", "--help"], "journal"),
                              (["journal", "cat", "x.tlog", "-h"], "journal")):
            with self.subTest(argv=argv):
                r = run(*argv)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(r.stdout.startswith(f"usage: tickd {command}"), r.stdout)
                self.assertEqual(r.stderr, "")

    def test_help_command_prints_the_same_usage(self):
        for command in ("replay", "gen", "journal"):
            with self.subTest(command=command):
                r = run("help", command)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, run(command, "--help").stdout)
        r = run("help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("usage: tickd [--config FILE]", r.stdout)
        self.assertIn("help [command]", r.stdout)

    def test_help_for_an_unknown_command_is_a_usage_error(self):
        r = run("help", "frobnicate")
        self.assertEqual(r.returncode, 64)
        self.assertIn("unknown command 'frobnicate'", r.stderr)


class RangeErrorTest(unittest.TestCase):
    def check(self, argv, message):
        r = run(*argv)
        self.assertEqual(r.returncode, 64, r.stdout + r.stderr)
        self.assertIn(message, r.stderr)

    def test_gen_symbols_out_of_range_names_flag_range_and_value(self):
        self.check(["gen", "itch", "--symbols", "0", "-o", "x"],
                   "--symbols must be 1..65535, got 0")
        self.check(["gen", "csv", "--symbols", "70000", "-o", "x"],
                   "--symbols must be 1..65535, got 70000")
        self.check(["gen", "csv", "--symbols", "ten", "-o", "x"],
                   "--symbols must be 1..65535, got ten")

    def test_gen_messages_and_seed_out_of_range_are_refused(self):
        self.check(["gen", "csv", "--messages", "0", "-o", "x"],
                   "--messages must be a whole number of at least 1, got 0")
        self.check(["gen", "itch", "--symbols", "10", "--messages", "5", "-o", "x"],
                   "--messages must be at least 26 for 10 symbols")
        self.check(["gen", "csv", "--seed", "-1", "-o", "x"],
                   "--seed must be 0..18446744073709551615, got -1")

    def test_replay_speed_and_format_errors_name_the_allowed_values(self):
        self.check(["replay", "day.itch", "--speed", "0"],
                   "--speed must be max or a number above 0 (times the recorded speed), got 0")
        self.check(["replay", "day.itch", "--format", "xml"],
                   "--format must be itch, csv or tlog, got xml")
        self.check(["replay", "day.itch", "--fsync", "sometimes"],
                   "--fsync must be always, interval or never, got sometimes")

    def test_missing_input_file_exits_66(self):
        with tempfile.TemporaryDirectory() as d:
            missing = os.path.join(d, "missing")
            for argv in (["replay", missing], ["journal", "verify", missing],
                         ["journal", "repair", missing], ["journal", "cat", missing]):
                with self.subTest(argv=argv):
                    r = run(*argv)
                    self.assertEqual(r.returncode, 66, r.stdout + r.stderr)
                    self.assertIn(missing, r.stderr)


def record_count(verify_stdout):
    return int(verify_stdout.split(" records")[0].rsplit(" ", 1)[1])


class LiveJournalTest(unittest.TestCase):
    def test_journal_tools_on_a_journal_being_written(self):
        t, feed = journaling_with_a_source(self)
        stop, sender = stream_trades(self, feed, "LIVE", 200, pause=0.002)
        wait_for(lambda: (t.metric("tickd_journal_records_total") or 0) > 5000,
                 what="records being journaled")
        path = journal_file(t)

        # verify, again and again while records are appended: never damage.
        saw_live = False
        for _ in range(40):
            r = run("journal", "verify", path)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertNotIn("damaged", r.stdout)
            self.assertIn("live (held by a running tickd)", r.stdout)
            saw_live = True
        self.assertTrue(saw_live)

        # cat prints whole records only and stops.
        r = run("journal", "cat", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        for line in r.stdout.splitlines():
            self.assertRegex(line, r"^T,\d+,LIVE,1\.\d{4},1$")

        # repair is refused and cuts nothing.
        with open(path, "rb") as f:
            before = f.read()
        r = run("journal", "repair", path)
        self.assertEqual(r.returncode, 75, r.stdout + r.stderr)
        self.assertIn(f"{path} is held by a running tickd", r.stderr)
        self.assertIn("nothing was changed", r.stderr)
        with open(path, "rb") as f:
            after = f.read()
        self.assertEqual(after[:len(before)], before)
        self.assertEqual(glob.glob(path + ".bad-*"), [])

        # A second daemon on the same journal directory refuses to start.
        second = Tickd(journal=True)
        self.addCleanup(second.close)
        second.journal_dir = t.journal_dir
        second.write_config()
        second.start(wait_ready=False)
        self.assertEqual(second.proc.wait(20), 75, second.log())
        self.assertIn(f"journal directory {t.journal_dir} is in use by another tickd "
                      f"(pid {t.proc.pid}", second.log())
        with open(path, "rb") as f:
            self.assertEqual(f.read()[:len(after)], after)

        # The first daemon's records are all there once it stops.
        stop.set()
        sender.join()
        wait_for(lambda: t.metric("tickd_journal_durable_records") ==
                 t.metric("tickd_journal_records_total"), what="every record synced")
        written = t.metric("tickd_journal_records_total")
        self.assertEqual(t.stop(), 0)
        r = run("journal", "verify", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"{path}: ok", r.stdout)
        self.assertEqual(record_count(r.stdout), written)
        self.assertEqual(glob.glob(path + ".bad-*"), [])


class JournalDirectoryLockTest(unittest.TestCase):
    def test_replay_refuses_a_journal_directory_another_process_holds(self):
        with tempfile.TemporaryDirectory() as d:
            day = os.path.join(d, "day.csv")
            r = run("gen", "csv", "--symbols", "3", "--messages", "100", "-o", day)
            self.assertEqual(r.returncode, 0, r.stderr)
            jdir = os.path.join(d, "journal")
            os.mkdir(jdir)
            # This process holds the directory as a daemon would.
            fd = os.open(os.path.join(jdir, ".lock"), os.O_RDWR | os.O_CREAT)
            self.addCleanup(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{os.getpid()}\n".encode())
            r = run("replay", day, "--journal", jdir)
            self.assertEqual(r.returncode, 75, r.stdout + r.stderr)
            self.assertIn(f"journal directory {jdir} is in use by another tickd "
                          f"(pid {os.getpid()}", r.stderr)
            self.assertEqual(glob.glob(os.path.join(jdir, "*.tlog")), [])
            # Once it is let go, the replay journals.
            fcntl.flock(fd, fcntl.LOCK_UN)
            r = run("replay", day, "--journal", jdir)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(glob.glob(os.path.join(jdir, "*.tlog"))), 1)


class ReplayProgressTest(unittest.TestCase):
    def read_until(self, fd, out, pattern, timeout):
        end = time.monotonic() + timeout
        while not re.search(pattern, out) and time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                out += os.read(fd, 65536)
        return out

    def test_ctrl_c_ends_the_progress_line_and_prints_the_summary_so_far(self):
        with tempfile.TemporaryDirectory() as d:
            day = os.path.join(d, "day.itch")
            r = run("gen", "itch", "--symbols", "20", "--messages", "300000", "-o", day)
            self.assertEqual(r.returncode, 0, r.stderr)
            # Paced at 100 times the recorded speed: the day takes minutes.
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(TICKD, [TICKD, "replay", day, "--speed", "100"])
            out = b""
            try:
                out = self.read_until(fd, out, rb"\d\d:\d\d:\d\d", 20)
                self.assertRegex(out, rb"^\rreading .*day\.itch")
                # The bar: percent, messages, rate, elapsed, ETA, market clock.
                self.assertRegex(out, rb"\] +\d+%  [\d.]+k? msgs  [\d.]+k? msg/s  \d+:\d\d "
                                      rb"ETA \d+:\d\d  (09|1\d):\d\d:\d\d")
                os.kill(pid, signal.SIGINT)
                while True:
                    r, _, _ = select.select([fd], [], [], 10)
                    if not r:
                        break
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:  # EIO: the child closed the terminal
                        break
                    if not chunk:
                        break
                    out += chunk
            finally:
                _, status = os.waitpid(pid, 0)
                os.close(fd)
            self.assertEqual(os.waitstatus_to_exitcode(status), 130, out)
            text = out.decode()
            # The summary starts on a line of its own, after the bar's line.
            self.assertRegex(text, r"\d\d:\d\d:\d\d *\r\nfile +.*day\.itch \(itch\)\r\n")
            self.assertRegex(text, r"\r\ninterrupted +by Ctrl-C, \d+ of \d+ bytes read")
            messages = int(re.search(r"\r\nmessages +(\d+)", text).group(1))
            self.assertGreater(messages, 0)
            self.assertLess(messages, 300000)


if __name__ == "__main__":
    unittest.main()

"""Start-up failures on the real binary: each one exits with its reason and
its documented code (README, "Exit codes"), never a crash. Under the asan
preset TICKD is the AddressSanitizer build, so these also prove that a failed
start-up tears down what it built without a fault or a leak (LeakSanitizer
would turn the exit code into 23)."""

import os
import pwd
import shutil
import socket
import subprocess
import time
import unittest

from harness import TICKD, Tickd, free_port

EX_NOINPUT, EX_UNAVAILABLE, EX_CANTCREAT, EX_CONFIG = 66, 69, 73, 78


def run(args, **kw):
    return subprocess.run([TICKD, *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, **kw)


def journal_config(t, dir_line):
    """t's configuration with the journal on, its dir as given (a YAML
    line), and the place (line, column) of the dir's value."""
    lines = ["pubsub:", f"  listen: 127.0.0.1:{t.pubsub_port}",
             "http:", f"  listen: 127.0.0.1:{t.http_port}",
             "journal:", "  enabled: true", dir_line]
    with open(t.config_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines), dir_line.index(":") + 3


class StartupFailureTest(unittest.TestCase):
    def tickd(self, **kw):
        t = Tickd(**kw)
        self.addCleanup(t.close)
        return t

    def assert_clean_exit(self, r, code, *needles):
        """The process exited with code (not a signal, not a sanitizer's
        report) and said each needle on stderr."""
        self.assertEqual(r.returncode, code, r.stderr)
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error", "Segmentation"):
            self.assertNotIn(bad, r.stderr)
        for n in needles:
            self.assertIn(n, r.stderr)

    def assert_config_error(self, t, code, *needles):
        """--check-config and the daemon itself both refuse t's configuration
        with code and the same message."""
        check = run(["--check-config", t.config_path])
        self.assert_clean_exit(check, code, *needles)
        daemon = run(["--config", t.config_path])
        self.assert_clean_exit(daemon, code, *needles)
        self.assertNotIn("ready", daemon.stderr)

    # ---- the journal directory ----

    def test_a_missing_journal_directory_is_a_configuration_error_with_its_place(self):
        t = self.tickd()
        missing = os.path.join(t.dir.name, "no", "such", "dir")
        line, col = journal_config(t, f"  dir: {missing}")
        self.assert_config_error(t, EX_CONFIG,
                                 f"{t.config_path}:{line}:{col}: journal.dir: {missing} does "
                                 "not exist", f"mkdir -p {missing}")

    def test_a_journal_directory_that_is_a_file_is_a_configuration_error(self):
        t = self.tickd()
        path = os.path.join(t.dir.name, "plain-file")
        open(path, "w").close()
        line, col = journal_config(t, f"  dir: {path}")
        self.assert_config_error(t, EX_CONFIG, f":{line}:{col}: journal.dir: {path} is not a "
                                 "directory")

    def test_the_default_journal_directory_is_blamed_on_enabled_when_it_is_missing(self):
        t = self.tickd()
        with open(t.config_path, "w") as f:
            f.write(f"pubsub:\n  listen: 127.0.0.1:{t.pubsub_port}\n"
                    f"journal:\n  enabled: true\n")
        if os.path.isdir("/var/lib/tickd"):
            self.skipTest("/var/lib/tickd exists on this machine")
        self.assert_config_error(t, EX_CONFIG, f"{t.config_path}:4:3: journal.dir: "
                                 "/var/lib/tickd does not exist")

    def test_an_unwritable_journal_directory_is_a_configuration_error(self):
        """As a user without write access: as root, the test runs tickd as
        nobody (setpriv), for whom a 0555 directory is read-only."""
        t = self.tickd()
        jdir = os.path.join(t.dir.name, "readonly")
        os.mkdir(jdir, 0o555)
        os.chmod(jdir, 0o555)
        line, col = journal_config(t, f"  dir: {jdir}")
        prefix = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for p in (t.dir.name, t.config_path):  # nobody reads the config, no more
                os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
            setpriv = shutil.which("setpriv")
            self.assertIsNotNone(setpriv, "setpriv (util-linux) is needed to drop root")
            prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                      "--clear-groups"]
        for args in (["--check-config", t.config_path], ["--config", t.config_path]):
            r = subprocess.run([*prefix, TICKD, *args], capture_output=True, text=True,
                               timeout=60, stdin=subprocess.DEVNULL)
            self.assert_clean_exit(r, EX_CONFIG, f":{line}:{col}: journal.dir: {jdir} is not "
                                   "writable by this user")

    def test_a_journal_file_that_cannot_be_opened_exits_73_after_tearing_down(self):
        """The directory passes the check, but today's file is a directory:
        the failure comes after the heap and the market were built."""
        t = self.tickd(journal=True)
        today = time.strftime("%Y%m%d", time.gmtime())
        os.mkdir(os.path.join(t.journal_dir, f"tickd-{today}.tlog"))
        r = run(["--config", t.config_path])
        self.assert_clean_exit(r, EX_CANTCREAT, "journal: cannot open", "start-up failed")

    # ---- listeners ----

    def hold_port(self, port):
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", port))
        s.listen()

    def test_a_pubsub_port_in_use_exits_69_naming_it(self):
        t = self.tickd(journal=True)
        self.hold_port(t.pubsub_port)
        r = run(["--config", t.config_path])
        self.assert_clean_exit(r, EX_UNAVAILABLE, f"pubsub.listen: cannot listen on "
                               f"127.0.0.1:{t.pubsub_port}: address already in use")

    def test_an_http_port_in_use_exits_69_after_pubsub_was_listening(self):
        t = self.tickd(journal=True)
        self.hold_port(t.http_port)
        r = run(["--config", t.config_path])
        self.assert_clean_exit(r, EX_UNAVAILABLE, f"127.0.0.1:{t.http_port}",
                               "address already in use")

    def test_a_tcp_feed_port_in_use_exits_69_after_everything_else_started(self):
        port = free_port()
        t = self.tickd(journal=True, feeds=f"""
            feeds:
              - name: live
                type: tcp
                format: csv
                listen: 127.0.0.1:{port}
            """)
        self.hold_port(port)
        r = run(["--config", t.config_path])
        self.assert_clean_exit(r, EX_UNAVAILABLE, "feed live", "address already in use")

    # ---- feed files and the configuration file ----

    def test_a_missing_feed_file_is_a_configuration_error_with_its_place(self):
        t = self.tickd()
        missing = os.path.join(t.dir.name, "no-such-day.itch")
        t.feeds = f"""
            feeds:
              - name: day
                type: file
                format: itch
                path: {missing}
            """
        t.write_config()
        with open(t.config_path) as f:
            lines = f.read().split("\n")
        line = next(i for i, l in enumerate(lines, 1) if "path:" in l)
        col = lines[line - 1].index(missing) + 1
        self.assert_config_error(t, EX_CONFIG, f"{t.config_path}:{line}:{col}: feeds[0].path: "
                                 f"cannot read {missing}: No such file or directory")

    def test_a_feed_path_that_is_a_directory_is_a_configuration_error(self):
        t = self.tickd()
        t.feeds = f"""
            feeds:
              - name: day
                type: file
                format: csv
                path: {t.journal_dir}
            """
        t.write_config()
        self.assert_config_error(t, EX_CONFIG, f"feeds[0].path: {t.journal_dir} is a directory")

    def test_a_configuration_file_that_cannot_be_read_exits_78(self):
        t = self.tickd()
        for path, why in ((os.path.join(t.dir.name, "absent.yaml"), "No such file or directory"),
                          (t.journal_dir, "Is a directory")):
            r = run(["--config", path])
            self.assert_clean_exit(r, EX_CONFIG, f"{path}: cannot read: {why}")

    def test_a_reload_that_names_a_missing_journal_directory_keeps_running(self):
        t = self.tickd(journal=True)
        t.start()
        t.journal_dir = os.path.join(t.dir.name, "gone")
        t.write_config()
        t.signal(1)  # SIGHUP
        t.wait_note("READY=1", 10)
        deadline = time.monotonic() + 10
        while "keeping the running configuration" not in t.log():
            self.assertLess(time.monotonic(), deadline, t.log())
            time.sleep(0.05)
        self.assertIn("journal.dir: " + t.journal_dir + " does not exist", t.log())
        self.assertEqual(t.http_get("/healthz")[0], 200)
        self.assertEqual(t.stop(), 0)


if __name__ == "__main__":
    unittest.main()

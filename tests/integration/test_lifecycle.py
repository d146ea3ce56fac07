"""test_lifecycle.py - the daemon's life on the real binary: a looping file
feed that reaches its end or runs dry, the signals an operator or a
supervisor may send, and reloads that cannot apply in full."""

import fcntl
import json
import os
import signal
import socket
import subprocess
import time
import unittest

from harness import TICKD, Tickd, free_port, tcp_feed, wait_for


def csv_day(path, lines):
    """A CSV file of trades of LOOP, 50 ms apart in exchange time."""
    with open(path, "w") as f:
        for i in range(lines):
            f.write(f"T,{(i + 1) * 50_000_000},LOOP,1.{i:04d},1\n")


def healthz_json(t):
    status, _, body = t.http_get("/healthz?verbose=1")
    return status, json.loads(body)


def status_notes(t, timeout):
    """The STATUS= lines systemd would have been sent within timeout."""
    t.read_notes(timeout)
    return [line for note in t.notes for line in note.split("\n") if line.startswith("STATUS=")]


class LoopingFileTest(unittest.TestCase):
    def test_an_emptied_looping_file_is_an_error_with_a_backoff_never_a_new_day(self):
        t = Tickd()
        self.addCleanup(t.close)
        day = os.path.join(t.dir.name, "day.csv")
        csv_day(day, 5)
        t.feeds = f"""
feeds:
  - name: loop
    type: file
    format: csv
    path: {day}
    speed: 4
    loop: true
"""
        t.write_config()
        t.start()
        messages = 'tickd_feed_messages_total{feed="loop"}'
        wait_for(lambda: (t.metric(messages) or 0) >= 15, timeout=20, what="three passes")
        self.assertEqual(t.metric("tickd_sessions_rolled_total"), 0,
                         "the end of a looping file rolled the trading day")

        open(day, "w").close()  # emptied under the running feed
        wait_for(lambda: "no message in" in t.log(), timeout=10, what="the error logged")
        status, page = healthz_json(t)
        self.assertEqual(status, 503, page)
        feed = page["feeds"][0]
        self.assertFalse(feed["up"])
        self.assertIn(f"no message in {day}", feed["reason"])
        time.sleep(3.5)  # tries at 1 s and 3 s, the next at 7 s
        self.assertEqual(t.metric("tickd_sessions_rolled_total"), 0)
        self.assertEqual(t.metric('tickd_feed_up{feed="loop"}'), 0)
        self.assertEqual(t.log().count("no message in"), 1, t.log())

        csv_day(day, 5)  # the file is back: the next try replays it
        before = t.metric(messages)
        wait_for(lambda: t.metric(messages) > before, timeout=15, what="the replay again")
        wait_for(lambda: t.http_get("/healthz")[0] == 200, timeout=5, what="healthy again")
        self.assertIn("replaying " + day + " again", t.log())
        self.assertEqual(t.metric("tickd_sessions_rolled_total"), 0)
        self.assertEqual(t.stop(), 0)


class SignalTest(unittest.TestCase):
    def test_operator_signals_leave_the_daemon_serving_and_sigterm_still_drains(self):
        feed_port = free_port()
        t = Tickd(feeds=tcp_feed("live", feed_port))
        self.addCleanup(t.close)
        t.start()
        sub = t.resp()
        self.addCleanup(sub.close)
        self.assertEqual(sub.call("SUBSCRIBE", "trade.SIG")[0], b"subscribe")
        sent = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGVTALRM,
                signal.SIGPROF, signal.SIGIO, signal.SIGPWR, signal.SIGRTMIN + 3]
        for signum in sent:
            t.signal(signum)
            time.sleep(0.1)
            self.assertIsNone(t.proc.poll(), f"tickd died of signal {signum}:\n" + t.log())
            self.assertEqual(t.http_get("/healthz")[0], 200)
        wait_for(lambda: "status: up " in t.log(), timeout=5, what="SIGUSR1's status line")
        for name in ("SIGUSR2", "SIGALRM", "SIGPWR"):
            self.assertIn(f"{name}: ignored", t.log())
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        feed.sendall(b"T,1,SIG,1.5,10,B\n")
        self.assertEqual(sub.read()[:2], [b"message", b"trade.SIG"])
        self.assertEqual(t.stop(), 0)
        self.assertIn("SIGTERM: stopping", t.log())


class ReloadTest(unittest.TestCase):
    def reload(self, t):
        t.signal(signal.SIGHUP)
        t.wait_note("RELOADING=1", 10)
        t.wait_note("READY=1", 10)

    def test_a_tcp_feed_moved_to_a_busy_port_keeps_running_where_it_was(self):
        old_port, busy_port = free_port(), free_port()
        t = Tickd(feeds=tcp_feed("live", old_port))
        self.addCleanup(t.close)
        t.start()
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", busy_port))
        busy.listen()
        t.feeds = tcp_feed("live", busy_port)
        t.write_config()
        self.reload(t)

        self.assertIn("not applied in full", t.log())
        self.assertNotIn("configuration " + t.config_path + " applied", t.log())
        m = t.metrics()
        self.assertEqual(m["tickd_config_reload_failures_total"], 1)
        self.assertEqual(m["tickd_config_last_reload_successful"], 0)
        self.assertEqual(m['tickd_feed_up{feed="live"}'], 1)
        status, page = healthz_json(t)
        self.assertEqual(status, 200)
        self.assertFalse(page["last_reload"]["ok"])
        self.assertIn(f"127.0.0.1:{busy_port}", page["last_reload"]["error"])
        self.assertTrue(any("reload failed: " in s and str(busy_port) in s
                            for s in status_notes(t, 1.5)), t.notes)
        # The old feed still takes ticks on its old port.
        feed = t.feed_connection(old_port)
        self.addCleanup(feed.close)
        feed.sendall(b"T,1,OLD,1.5,10,B\n")
        wait_for(lambda: t.metric('tickd_feed_messages_total{feed="live"}') == 1,
                 what="the tick on the old port")

        busy.close()  # the port is free: the same reload now applies
        self.reload(t)
        m = t.metrics()
        self.assertEqual(m["tickd_config_last_reload_successful"], 1)
        self.assertEqual(m["tickd_config_reload_failures_total"], 1)
        self.assertTrue(healthz_json(t)[1]["last_reload"]["ok"])
        t.feed_connection(busy_port).close()
        self.assertEqual(t.stop(), 0)

    def test_a_tcp_feed_changed_on_its_own_port_lets_go_of_it_and_is_replaced(self):
        port = free_port()
        t = Tickd(feeds=tcp_feed("live", port, fmt="itch"))
        self.addCleanup(t.close)
        t.start()
        t.feeds = tcp_feed("live", port, fmt="csv")
        t.write_config()
        self.reload(t)
        self.assertEqual(t.metric("tickd_config_last_reload_successful"), 1)
        self.assertEqual(t.metric("tickd_config_reload_failures_total"), 0)
        feed = t.feed_connection(port)
        self.addCleanup(feed.close)
        feed.sendall(b"T,1,NEW,1.5,10,B\n")  # CSV now
        wait_for(lambda: t.metric('tickd_feed_messages_total{feed="live"}') == 1,
                 what="a CSV tick on the same port")
        self.assertEqual(t.stop(), 0)

    def test_listeners_moved_to_busy_ports_keep_their_old_addresses(self):
        busy = [socket.socket(), socket.socket()]
        ports = []
        for s in busy:
            self.addCleanup(s.close)
            s.bind(("127.0.0.1", 0))
            s.listen()
            ports.append(s.getsockname()[1])
        t = Tickd()
        self.addCleanup(t.close)
        t.start()
        old_pubsub, old_http = t.pubsub_port, t.http_port
        t.pubsub_port, t.http_port = ports
        t.write_config()
        t.pubsub_port, t.http_port = old_pubsub, old_http
        self.reload(t)
        status, page = healthz_json(t)  # HTTP on its old port
        self.assertEqual(status, 200)
        self.assertFalse(page["last_reload"]["ok"])
        self.assertIn("and 1 more", page["last_reload"]["error"])
        client = t.resp()  # pub/sub on its old port
        self.addCleanup(client.close)
        self.assertEqual(client.call("PING"), "PONG")
        self.assertEqual(t.metric("tickd_config_reload_failures_total"), 1)
        self.assertEqual(t.stop(), 0)

    def test_a_journal_directory_another_process_holds_leaves_the_journal_where_it_was(self):
        feed_port = free_port()
        t = Tickd(feeds=tcp_feed("live", feed_port), journal=True)
        self.addCleanup(t.close)
        t.start()
        held = os.path.join(t.dir.name, "held")
        os.mkdir(held)
        lock = open(os.path.join(held, ".lock"), "w")
        self.addCleanup(lock.close)
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process holds the directory
        first = t.journal_dir
        t.journal_dir = held
        t.write_config()
        self.reload(t)

        self.assertEqual(t.metric("tickd_config_reload_failures_total"), 1)
        self.assertIn("journal:", healthz_json(t)[1]["last_reload"]["error"])
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        feed.sendall("".join(f"T,{i},JRN,1.{i:04d},1\n" for i in range(100)).encode())
        wait_for(lambda: t.metric("tickd_journal_records_total") == 100, what="100 records")
        self.assertEqual(t.metric("tickd_journal_dropped_records_total") or 0, 0)
        self.assertEqual(t.stop(), 0)
        files = [f for f in os.listdir(first) if f.endswith(".tlog")]
        self.assertEqual(len(files), 1, files)
        r = subprocess.run([TICKD, "journal", "verify", os.path.join(first, files[0])],
                           capture_output=True, text=True)
        self.assertIn("100 records", r.stdout, r.stdout + r.stderr)
        self.assertEqual([f for f in os.listdir(held) if f.endswith(".tlog")], [])


if __name__ == "__main__":
    unittest.main()

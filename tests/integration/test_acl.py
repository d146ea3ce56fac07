"""Entitlements on the real binary (pubsub.users, src/pubsub_acl.c): a reload
that narrows users' rights while ticks flow closes exactly the clients (raw
RESP and redis-cli) that lost a right they use or their user; failed AUTH is
logged with the peer and the user (never the password), counted in /metrics
and answered later each time; KEYS, --scan and the snapshot show a user only
its channels; users without pubsub.password turn the default user off; a bad
user in the file is a configuration error. Redis clients with their defaults
are driven in clients/ (redis-cli, redis-py, node-redis), there checked
against redis-server's ACLs too."""

import hashlib
import signal
import subprocess
import time
import unittest

from harness import RespError, Tickd, free_port, stream_trades, tcp_feed, wait_for
from test_pubsub import RedisCli


def user(name, password, subscribe=(), publish=()):
    """pubsub_extra lines for one user of pubsub.users."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return [f"  - name: {name}", f"    password_sha256: {digest}",
            f"    subscribe: [{', '.join(subscribe)}]", f"    publish: [{', '.join(publish)}]"]


class AclTest(unittest.TestCase):
    def tickd(self, users, password=None, feeds=""):
        extra = ["payload: csv", "users:", *users]
        if password is not None:
            extra.append(f'password: "{password}"')
        t = Tickd(pubsub_extra=extra, feeds=feeds)
        self.addCleanup(t.close)
        return t.start()

    def cli(self, t, name, password, *args):
        r = subprocess.run(["redis-cli", "-p", str(t.pubsub_port), "--user", name, "--pass",
                            password, "--no-auth-warning", *args],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def login(self, t, name, password):
        c = t.resp()
        self.addCleanup(c.close)
        self.assertEqual(c.call("AUTH", name, password), "OK")
        return c

    def test_a_reload_that_narrows_rights_while_ticks_flow_closes_exactly_the_affected_clients(self):
        feed_port = free_port()
        t = self.tickd(user("alice", "pw-a", ["trade.*"]) + user("bob", "pw-b", ["trade.*"]) +
                       user("carol", "pw-c", ["trade.*"]), feeds=tcp_feed("live", feed_port))
        alice, bob = self.login(t, "alice", "pw-a"), self.login(t, "bob", "pw-b")
        for c in (alice, bob):
            self.assertEqual(c.call_frame("SUBSCRIBE", "trade.AAPL"), [b"subscribe", b"trade.AAPL", 1])
        carol = RedisCli(t.pubsub_port, "--user", "carol", "--pass", "pw-c", "--no-auth-warning",
                         "SUBSCRIBE", "trade.AAPL")
        self.addCleanup(carol.close)
        self.assertEqual(carol.lines(3), ["subscribe", "trade.AAPL", "1"])
        feed = t.feed_connection(feed_port)
        self.addCleanup(feed.close)
        stream_trades(self, feed, "AAPL", 50, pause=0.005)
        for c in (alice, bob):
            self.assertEqual(c.read_frame()[:2], [b"message", b"trade.AAPL"])
        self.assertEqual(carol.lines(2), ["message", "trade.AAPL"])

        # alice may now read quotes only, carol is gone; bob keeps trade.*.
        t.pubsub_extra = ["payload: csv", "users:",
                          *user("alice", "pw-a", ["quote.*"]), *user("bob", "pw-b", ["trade.*"])]
        t.write_config()
        t.signal(signal.SIGHUP)
        t.wait_note("READY=1", 10)
        self.assertTrue(wait_for(lambda: t.log().count("disconnected on reload") == 2,
                                 what="the reload's log lines"))
        with self.assertRaises(ConnectionError):
            while True:  # what was queued before the close, then the close
                alice.read_frame()
        carol.proc.wait(10)  # redis-cli ends with the connection
        before = time.monotonic()
        while time.monotonic() - before < 0.5:  # bob goes on receiving
            self.assertEqual(bob.read_frame()[:2], [b"message", b"trade.AAPL"])
        log = t.log()
        self.assertRegex(log, r'pubsub: client 127\.0\.0\.1:\d+ \(user "alice"\) disconnected on '
                              r'reload: the user may not subscribe to a channel the client holds')
        self.assertRegex(log, r'pubsub: client 127\.0\.0\.1:\d+ \(user "carol"\) disconnected on '
                              r'reload: the user is gone from pubsub.users')
        self.assertNotIn('"bob"', log)
        self.assertEqual(t.metric("tickd_pubsub_clients"), 1)

    def test_failed_auth_is_logged_without_the_password_counted_and_answered_later_each_time(self):
        t = self.tickd(user("alice", "pw-a", ["trade.*"]))
        c = t.resp()
        self.addCleanup(c.close)
        waited = []
        for i in range(4):
            start = time.monotonic()
            reply = c.call("AUTH", "alice", f"Guess-{i}-xyzzy")
            waited.append(time.monotonic() - start)
            self.assertIsInstance(reply, RespError)
            self.assertEqual(str(reply),
                             "WRONGPASS invalid username-password pair or user is disabled.")
        self.assertLess(waited[0], 0.1)
        self.assertLess(waited[1], 0.1)
        self.assertGreaterEqual(waited[2], 0.095)
        self.assertGreaterEqual(waited[3], 0.195)
        # A password sent where the user name goes: the name is not logged.
        d = t.resp()
        self.addCleanup(d.close)
        self.assertIsInstance(d.call("AUTH", "Secret-as-name-qq", "x"), RespError)
        self.assertEqual(t.metric("tickd_pubsub_auth_failures_total"), 5)
        log = t.log()
        self.assertEqual(len([l for l in log.splitlines()
                              if 'AUTH failed for user "alice"' in l]), 4, log)
        self.assertRegex(log, r"pubsub: client 127\.0\.0\.1:\d+: AUTH failed for user \"alice\" "
                              r"\(4 on this connection\)")
        self.assertIn("AUTH failed for user that does not exist", log)
        self.assertNotIn("xyzzy", log)
        self.assertNotIn("Secret-as-name", log)

    def test_keys_scan_and_the_snapshot_show_a_user_only_its_channels(self):
        t = self.tickd(user("alice", "pw-a", ["trade.A*"]), password="pw-default")
        admin = t.resp()
        self.addCleanup(admin.close)
        self.assertEqual(admin.call("AUTH", "pw-default"), "OK")
        for sym in ("AAPL", "MSFT"):
            self.assertEqual(admin.call("PUBLISH", f"trade.{sym}", f"T,1,{sym},1.0000,1,B"), 0)
        self.assertEqual(self.cli(t, "alice", "pw-a", "KEYS", "*"), "trade.AAPL\n")
        self.assertEqual(self.cli(t, "alice", "pw-a", "--scan"), "trade.AAPL\n")
        # The default user reads every key; its pattern leaves out the bar
        # keys, which the timer adds a second after a trade.
        self.assertEqual(sorted(self.cli(t, "default", "pw-default", "--scan", "--pattern",
                                         "trade.*").split()), ["trade.AAPL", "trade.MSFT"])
        alice = self.login(t, "alice", "pw-a")
        self.assertEqual(alice.call_frame("PSUBSCRIBE", "trade.A*"), [b"psubscribe", b"trade.A*", 1])
        self.assertEqual(alice.read_frame(),
                         [b"pmessage", b"trade.A*", b"trade.AAPL", b"T,1,AAPL,1.0000,1,B"])
        alice.send("PING")
        self.assertEqual(alice.read_frame(), [b"pong", b""])  # nothing of MSFT before it

    def test_users_without_pubsub_password_turn_the_default_user_off(self):
        t = self.tickd(user("alice", "pw-a", ["trade.*"]))
        c = t.resp()
        self.addCleanup(c.close)
        self.assertEqual(str(c.call("PING")), "NOAUTH Authentication required.")
        self.assertEqual(str(c.call("AUTH", "pw-a")),
                         "WRONGPASS invalid username-password pair or user is disabled.")
        self.assertEqual(c.call("AUTH", "alice", "pw-a"), "OK")
        self.assertEqual(c.call("PING"), "PONG")

    def test_a_bad_user_is_a_configuration_error_with_its_place(self):
        t = Tickd(pubsub_extra=["users:", "  - name: alice", "    password_sha256: 1234"])
        self.addCleanup(t.close)
        r = subprocess.run([t.binary, "--check-config", t.config_path], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("pubsub.users[0].password_sha256: expected the SHA-256 of the password as "
                      "64 hex digits", r.stderr)


if __name__ == "__main__":
    unittest.main()

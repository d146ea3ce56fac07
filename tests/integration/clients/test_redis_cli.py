"""redis-cli (Debian's redis-tools 7) against the real server: SUBSCRIBE and
PSUBSCRIBE in its plain output, in --csv, and with -3 (RESP3: HELLO 3 after
AUTH, then the subscription's replies and ticks as push frames), PUBLISH, a
wrong password, the last values by GET, MGET, KEYS and --scan, and a user
with narrow rights (--user, NOPERM, its pattern)."""

import os
import select
import subprocess
import time
import unittest

from servers import (ALICE, ALICE_PASSWORD, PASSWORD, WRONG_PASSWORD, ServerTestCase, quote_line,
                     trade_line)


class Subscriber:
    """redis-cli in subscribe mode, its stdout and stderr read line by line."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pending = b""

    def lines(self, n, timeout=5):
        """The next n lines, or a failure naming what came within timeout seconds."""
        end = time.monotonic() + timeout
        while self.pending.count(b"\n") < n:
            left = end - time.monotonic()
            ready = left > 0 and select.select([self.proc.stdout], [], [], left)[0]
            if not ready:
                raise AssertionError(f"redis-cli gave {self.pending!r}, not {n} lines, "
                                     f"within {timeout} s")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"redis-cli exited after {self.pending!r}")
            self.pending += chunk
        *out, self.pending = self.pending.split(b"\n", n)
        return [line.decode() for line in out]

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class RedisCliTest(ServerTestCase):
    def cli(self, *args, password=PASSWORD):
        return ["redis-cli", "-p", str(self.server.port), "-a", password, "--no-auth-warning",
                *args]

    def subscriber(self, *args):
        """redis-cli in subscribe mode; its stdout and stderr, line by line."""
        sub = Subscriber(self.cli(*args))
        self.addCleanup(sub.close)
        return sub

    def publish(self, *options, channel, line):
        run = subprocess.run(self.cli(*options, "PUBLISH", channel, line), capture_output=True,
                             text=True, timeout=10)
        self.assertEqual(run.returncode, 0, run.stderr)
        return run.stdout

    def test_plain_output_shows_both_confirmations_and_the_tick_on_the_channel_and_the_pattern(self):
        sub = self.subscriber("SUBSCRIBE", "trade.AAPL")
        psub = self.subscriber("PSUBSCRIBE", "trade.*")
        self.assertEqual(sub.lines(3), ["subscribe", "trade.AAPL", "1"])
        self.assertEqual(psub.lines(3), ["psubscribe", "trade.*", "1"])
        line = trade_line("AAPL", 1700000000000000000, 101.25, 100, "B")
        self.assertEqual(self.publish(channel="trade.AAPL", line=line), "2\n")
        self.assertEqual(sub.lines(3), ["message", "trade.AAPL", line])
        self.assertEqual(psub.lines(4), ["pmessage", "trade.*", "trade.AAPL", line])

    def test_csv_output_has_one_quoted_line_per_reply(self):
        sub = self.subscriber("--csv", "SUBSCRIBE", "trade.MSFT", "quote.MSFT")
        self.assertEqual(sub.lines(3), ["Reading messages... (press Ctrl-C to quit)",
                                        '"subscribe","trade.MSFT",1',
                                        '"subscribe","quote.MSFT",2'])
        line = trade_line("MSFT", 1000, 410.5, 7, "S")
        self.assertEqual(self.publish("--csv", channel="trade.MSFT", line=line), "1\n")
        self.assertEqual(sub.lines(1), [f'"message","trade.MSFT","{line}"'])

    def test_resp3_subscribe_negotiates_hello_3_then_gets_the_confirmation_and_the_tick(self):
        # redis-cli -3 reports a refused HELLO 3 on stderr (merged here) and
        # goes on in RESP2: the first line would then be that report.
        sub = self.subscriber("-3", "SUBSCRIBE", "trade.IBM")
        psub = self.subscriber("-3", "PSUBSCRIBE", "trade.I*")
        self.assertEqual(sub.lines(3), ["subscribe", "trade.IBM", "1"])
        self.assertEqual(psub.lines(3), ["psubscribe", "trade.I*", "1"])
        line = trade_line("IBM", 5000, 150.0, 10, "B")
        self.assertEqual(self.publish("-3", channel="trade.IBM", line=line), "2\n")
        self.assertEqual(sub.lines(3), ["message", "trade.IBM", line])
        self.assertEqual(psub.lines(4), ["pmessage", "trade.I*", "trade.IBM", line])

    def test_a_wrong_password_is_reported_without_the_password_and_commands_are_refused(self):
        run = subprocess.run(self.cli("PUBLISH", "trade.AAPL", "T,1,AAPL,1.0000,1,B",
                                      password=WRONG_PASSWORD),
                             capture_output=True, text=True, timeout=10)
        self.assertRegex(run.stderr, r"AUTH failed: (WRONGPASS|.*invalid .*password)")
        self.assertNotIn(WRONG_PASSWORD, run.stderr + run.stdout)
        self.assertIn("NOAUTH", run.stdout)

    def run_cli(self, *args):
        run = subprocess.run(self.cli(*args), capture_output=True, text=True, timeout=10)
        self.assertEqual(run.returncode, 0, run.stderr)
        return run.stdout

    def test_get_mget_keys_and_scan_answer_the_last_values_in_both_protocols(self):
        trade = trade_line("AAPL", 1700000000000000000, 101.25, 100, "B")
        quote = quote_line("AAPL", 1700000000000000001, 101.2, 300, 101.3, 200)
        self.server.seed("trade.AAPL", trade)
        self.server.seed("quote.AAPL", quote)
        for proto in ("-2", "-3"):
            with self.subTest(proto=proto):
                self.assertEqual(self.run_cli(proto, "GET", "trade.AAPL"), trade + "\n")
                self.assertEqual(self.run_cli(proto, "GET", "trade.NOPE"), "\n")
                self.assertEqual(self.run_cli(proto, "MGET", "quote.AAPL", "quote.NOPE"),
                                 quote + "\n\n")
                self.assertEqual(sorted(self.run_cli(proto, "KEYS", "*AAPL").split()),
                                 ["quote.AAPL", "trade.AAPL"])
                self.assertEqual(sorted(self.run_cli(proto, "--scan", "--pattern", "trade.*")
                                        .split()), ["trade.AAPL"])
        self.assertEqual(self.run_cli("--csv", "MGET", "trade.AAPL", "quote.NOPE"),
                         f'"{trade}",NULL\n')


    def test_a_user_gets_noperm_outside_its_channels_and_its_pattern_carries_only_its_own(self):
        self.server.seed("trade.AAPL", trade_line("AAPL", 1, 101.25, 1, "B"))
        alice = ["redis-cli", "-p", str(self.server.port), "--user", ALICE, "--pass",
                 ALICE_PASSWORD, "--no-auth-warning"]

        def run(*args):
            r = subprocess.run(alice + list(args), capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout

        channels = "NOPERM this user has no permissions to access one of the channels used as " \
                   "arguments\n\n"
        self.assertEqual(run("PUBLISH", "trade.MSFT", trade_line("MSFT", 2, 310.5, 1, "B")),
                         channels)
        self.assertEqual(run("SUBSCRIBE", "trade.MSFT"), channels)
        self.assertEqual(run("PSUBSCRIBE", "trade.*"), channels)
        self.assertEqual(run("GET", "trade.MSFT"), "NOPERM this user has no permissions to "
                         "access one of the keys used as arguments\n\n")
        self.assertEqual(run("GET", "trade.AAPL"), trade_line("AAPL", 1, 101.25, 1, "B") + "\n")

        sub = Subscriber(alice + ["PSUBSCRIBE", "trade.A*"])
        self.addCleanup(sub.close)
        self.assertEqual(sub.lines(3), ["psubscribe", "trade.A*", "1"])
        self.publish(channel="trade.MSFT", line=trade_line("MSFT", 3, 310.5, 2, "B"))
        amzn = trade_line("AMZN", 4, 180.25, 3, "S")
        self.assertEqual(run("PUBLISH", "trade.AMZN", amzn), "1\n")
        lines = sub.lines(4)
        if lines[2] == "trade.AAPL":  # tickd's snapshot of the pattern's last values first
            lines = sub.lines(4)
        self.assertEqual(lines, ["pmessage", "trade.A*", "trade.AMZN", amzn])


if __name__ == "__main__":
    unittest.main()

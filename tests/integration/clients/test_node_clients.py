"""node-redis and ioredis from npm (pinned in tests/package-lock.json,
installed by `npm ci --prefix tests`) against the real server: scenario.js
runs the pub/sub scenario with each client's default options, and again with
the other protocol where the client lets one choose it; query.js asks
node-redis for last values (GET, MGET, KEYS, SCAN) the same ways; acl.js
connects node-redis as a user with narrow rights (NOPERM, patterns).

A client or Node itself that is not installed fails its test saying so: these
tests never skip.
"""

import json
import os
import shutil
import subprocess
import unittest

from servers import (ALICE, ALICE_PASSWORD, PASSWORD, WRONG_PASSWORD, ServerTestCase, quote_line,
                     trade_line)

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.normpath(os.path.join(HERE, "..", "..", "node_modules"))


class NodeClientTestCase(ServerTestCase):
    limit = 40

    def scenario(self, adapter, package, resp="default"):
        self.run_node("scenario.js", package, adapter, package, str(resp), str(self.server.port),
                      PASSWORD, WRONG_PASSWORD, what=f"{package} ({resp})")

    def query(self, package, resp="default"):
        """Seeds last values (PUBLISHed ticks, or SET keys on redis-server) and
        has query.js read them back through package."""
        values = {
            "trade.AAPL": trade_line("AAPL", 1700000000000000000, 101.25, 100, "B"),
            "trade.MSFT": trade_line("MSFT", 1700000000000000001, 310.5, 7, "S"),
            "quote.AAPL": quote_line("AAPL", 1700000000000000002, 101.2, 300, 101.3, 200),
        }
        for channel, line in values.items():
            self.server.seed(channel, line)
        self.run_node("query.js", package, package, str(resp), str(self.server.port), PASSWORD,
                      json.dumps(values), what=f"{package} query ({resp})")

    def acl(self, package):
        """acl.js: package as the user ALICE, with its default options."""
        self.run_node("acl.js", package, package, str(self.server.port), PASSWORD, ALICE,
                      ALICE_PASSWORD, what=f"{package} as {ALICE}")

    def run_node(self, script, package, *args, what):
        node = shutil.which("node")
        if node is None:
            self.fail("node is not installed: deploy/setup.sh deps installs Debian's nodejs")
        if not os.path.isdir(os.path.join(NODE_MODULES, package)):
            self.fail(f"npm package {package!r} is not installed in {NODE_MODULES}: run "
                      "`npm ci --prefix tests` (deploy/setup.sh test does)")
        try:
            run = subprocess.run(
                [node, os.path.join(HERE, script), *args],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=35)
        except subprocess.TimeoutExpired as e:
            self.fail(f"{script} did not finish within 35 s:\n{(e.output or b'').decode()}")
        out = run.stdout.decode()
        self.assertEqual(run.returncode, 0, f"{what}:\n{out}\n"
                         f"server log:\n{self.server.log()}")
        self.assertTrue(out.endswith("ok\n"), out)


class NodeRedisTest(NodeClientTestCase):
    def test_node_redis_6_with_default_options_resp3(self):
        self.scenario("node_redis", "redis")

    def test_node_redis_6_with_resp2(self):
        self.scenario("node_redis", "redis", 2)

    def test_node_redis_5_with_default_options_resp2(self):
        self.scenario("node_redis", "redis5")

    def test_node_redis_5_with_resp3(self):
        self.scenario("node_redis", "redis5", 3)

    def test_node_redis_6_reads_last_values_with_default_options_resp3(self):
        self.query("redis")

    def test_node_redis_6_reads_last_values_with_resp2(self):
        self.query("redis", 2)

    def test_node_redis_5_reads_last_values_with_default_options_resp2(self):
        self.query("redis5")


    def test_node_redis_6_as_a_user_gets_noperm_and_only_its_channels_resp3(self):
        self.acl("redis")

    def test_node_redis_5_as_a_user_gets_noperm_and_only_its_channels_resp2(self):
        self.acl("redis5")


class IoredisTest(NodeClientTestCase):
    def test_ioredis_6_with_default_options_resp3(self):
        self.scenario("ioredis", "ioredis")

    def test_ioredis_6_with_protocol_2(self):
        self.scenario("ioredis", "ioredis", 2)

    def test_ioredis_5_with_default_options_resp2(self):
        self.scenario("ioredis", "ioredis5")


if __name__ == "__main__":
    unittest.main()

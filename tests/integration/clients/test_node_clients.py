"""node-redis and ioredis from npm (pinned in tests/package-lock.json,
installed by `npm ci --prefix tests`) against the real server: scenario.js
runs the pub/sub scenario with each client's default options, and again with
the other protocol where the client lets one choose it.

A client or Node itself that is not installed fails its test saying so: these
tests never skip.
"""

import os
import shutil
import subprocess
import unittest

from servers import PASSWORD, WRONG_PASSWORD, ServerTestCase

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.normpath(os.path.join(HERE, "..", "..", "node_modules"))


class NodeClientTestCase(ServerTestCase):
    limit = 40

    def scenario(self, adapter, package, resp="default"):
        node = shutil.which("node")
        if node is None:
            self.fail("node is not installed: deploy/setup.sh deps installs Debian's nodejs")
        if not os.path.isdir(os.path.join(NODE_MODULES, package)):
            self.fail(f"npm package {package!r} is not installed in {NODE_MODULES}: run "
                      "`npm ci --prefix tests` (deploy/setup.sh test does)")
        try:
            run = subprocess.run(
                [node, os.path.join(HERE, "scenario.js"), adapter, package, str(resp),
                 str(self.server.port), PASSWORD, WRONG_PASSWORD],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=35)
        except subprocess.TimeoutExpired as e:
            self.fail(f"scenario.js did not finish within 35 s:\n{(e.output or b'').decode()}")
        out = run.stdout.decode()
        self.assertEqual(run.returncode, 0, f"{package} ({resp}):\n{out}\n"
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


class IoredisTest(NodeClientTestCase):
    def test_ioredis_6_with_default_options_resp3(self):
        self.scenario("ioredis", "ioredis")

    def test_ioredis_6_with_protocol_2(self):
        self.scenario("ioredis", "ioredis", 2)

    def test_ioredis_5_with_default_options_resp2(self):
        self.scenario("ioredis", "ioredis5")


if __name__ == "__main__":
    unittest.main()

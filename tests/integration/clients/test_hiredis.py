"""hiredis from Debian (libhiredis-dev 0.14, RESP2) against the real server:
hiredis_client.c runs the pub/sub scenario with the synchronous API for
commands and the libuv adapter for the subscriber. CMake builds it when hiredis
is found and passes its path in HIREDIS_CLIENT."""

import os
import subprocess
import unittest

from servers import PASSWORD, WRONG_PASSWORD, ServerTestCase


class HiredisTest(ServerTestCase):
    limit = 30

    def test_sync_commands_and_a_libuv_subscriber_run_the_whole_scenario(self):
        program = os.environ.get("HIREDIS_CLIENT")
        if not program or not os.access(program, os.X_OK):
            self.fail(f"HIREDIS_CLIENT={program!r} is not a program: build tickd-hiredis-client "
                      "(CMake builds it when Debian's libhiredis-dev is installed)")
        try:
            run = subprocess.run([program, str(self.server.port), PASSWORD, WRONG_PASSWORD],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=25)
        except subprocess.TimeoutExpired as e:
            self.fail(f"hiredis_client did not finish within 25 s:\n{(e.output or b'').decode()}")
        out = run.stdout.decode()
        self.assertEqual(run.returncode, 0, f"{out}\nserver log:\n{self.server.log()}")
        self.assertTrue(out.endswith("ok\n"), out)


if __name__ == "__main__":
    unittest.main()

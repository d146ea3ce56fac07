"""Operations on the real binary: /metrics checked by promtool and scraped by
a real Prometheus server, /healthz per feed (stale TCP feeds, finished
replays, the JSON report), the latency of a paced replay, /debug/mallocstats,
the systemd unit checked by systemd-analyze, what `cmake --install` puts on a
machine (the project's version, no path of the build machine), and the .deb
package."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import PROTOCOLS, TICKD, Tickd, free_port, tcp_feed, wait_for

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("TICKD_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
UNIT = os.path.join(SOURCE_DIR, "deploy", "tickd.service")
with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as _f:
    PROJECT_VERSION = re.search(r"project\(tickd VERSION (\S+)", _f.read()).group(1)

REQUIRED = [
    "tickd_alloc_arenas", "tickd_alloc_arenas_allocated_total",
    "tickd_alloc_arenas_released_total", "tickd_alloc_mapped_bytes", "tickd_alloc_used_bytes",
    "tickd_alloc_pools", "tickd_alloc_blocks", "tickd_alloc_allocations_total",
    "tickd_alloc_frees_total", "tickd_alloc_large_bytes", "tickd_objects",
    "tickd_objects_created_total", "tickd_gc_collections_total",
    "tickd_gc_objects_collected_total", "tickd_gc_objects_uncollectable_total",
    "tickd_gc_tracked_objects", "tickd_gc_pause_seconds", "tickd_feed_messages_total",
    "tickd_feed_decode_errors_total", "tickd_feed_sequence_gaps_total", "tickd_feed_up",
    "tickd_feed_connected", "tickd_feed_last_message_timestamp_seconds", "tickd_ticks_total",
    "tickd_pubsub_clients", "tickd_pubsub_messages_sent_total",
    "tickd_pubsub_output_buffer_bytes", "tickd_pubsub_slow_consumer_disconnects_total",
    "tickd_tick_latency_seconds", "tickd_loop_lag_seconds", "tickd_journal_records_total",
    "tickd_journal_fsync_seconds", "process_cpu_seconds_total",
    "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
    "process_max_fds", "process_start_time_seconds", "tickd_build_info",
]


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.feed_port = free_port()
        self.tickd = Tickd(feeds=tcp_feed("live", self.feed_port), journal=True).start()
        self.addCleanup(self.tickd.close)
        for protocol in PROTOCOLS:  # one subscriber of each protocol
            sub = self.tickd.resp(protocol=protocol)
            self.addCleanup(sub.close)
            self.assertEqual(sub.call_frame("PSUBSCRIBE", "*"), [b"psubscribe", b"*", 1])
        feed = self.tickd.feed_connection(self.feed_port)
        self.addCleanup(feed.close)
        feed.sendall(b"T,1,AAA,1.5,10,B\nQ,2,AAA,1.4,5,1.6,7\nbad line\n")
        wait_for(lambda: self.tickd.metric('tickd_feed_decode_errors_total{feed="live"}') == 1,
                 what="the bad line counted")

    def test_live_scrape_passes_promtool_and_has_every_required_family(self):
        status, headers, body = self.tickd.http_get("/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        families = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
        for name in REQUIRED:
            self.assertIn(name, families)
        m = self.tickd.metrics()
        self.assertEqual(m['tickd_ticks_total{kind="trade"}'], 1)
        self.assertEqual(m['tickd_ticks_total{kind="quote"}'], 1)
        self.assertEqual(m['tickd_feed_messages_total{feed="live"}'], 2)
        self.assertGreaterEqual(m["tickd_alloc_arenas"], 1)
        self.assertEqual(m['tickd_alloc_pools{state="used"}'] + m['tickd_alloc_pools{state="full"}']
                         + m['tickd_alloc_pools{state="empty"}'],
                         m["tickd_alloc_mapped_bytes"] / (16 * 1024))
        self.assertGreaterEqual(m['tickd_objects{type="symbol"}'], 1)
        self.assertEqual(m[f'tickd_build_info{{version="{PROJECT_VERSION}"}}'], 1)

    def test_healthz_and_mallocstats(self):
        status, _, body = self.tickd.http_get("/healthz")
        self.assertEqual((status, body), (200, "ok\n"))
        status, _, body = self.tickd.http_get("/debug/mallocstats")
        self.assertEqual(status, 200)
        self.assertIn("Small block threshold = 512, in 32 size classes.", body)
        total = int(re.search(r"^Total\s+=\s+([\d,]+)", body, re.M).group(1).replace(",", ""))
        arenas = re.search(r"^(\d+) arenas \* (\d+) bytes/arena", body, re.M)
        self.assertEqual(total, int(arenas.group(1)) * int(arenas.group(2)))
        status, _, _ = self.tickd.http_get("/nope")
        self.assertEqual(status, 404)

    def test_a_real_prometheus_server_scrapes_tickd(self):
        prom = shutil.which("prometheus")
        self.assertIsNotNone(prom, "the Debian prometheus package is installed by setup.sh")
        d = tempfile.mkdtemp(prefix="tickd-prom-")
        self.addCleanup(shutil.rmtree, d, True)
        port = free_port()
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: tickd
    static_configs:
      - targets: ["127.0.0.1:{self.tickd.http_port}"]
""")
        log = open(os.path.join(d, "prometheus.log"), "w")
        p = subprocess.Popen([prom, f"--config.file={d}/prometheus.yml",
                              f"--storage.tsdb.path={d}/data",
                              f"--web.listen-address=127.0.0.1:{port}"],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.addCleanup(p.wait)
        self.addCleanup(p.terminate)

        def query(q):
            url = f"http://127.0.0.1:{port}/api/v1/query?query={q}"
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    res = json.load(r)["data"]["result"]
                    return res[0]["value"][1] if res else None
            except OSError:
                return None

        self.assertEqual(wait_for(lambda: query("up"), timeout=60, what="up"), "1")
        arenas = wait_for(lambda: query("tickd_alloc_arenas"), timeout=30,
                          what="tickd_alloc_arenas")
        self.assertGreaterEqual(float(arenas), 1)


def file_feed(name, path, speed=None, loop=False, extra=()):
    lines = ["feeds:", f"  - name: {name}", "    type: file", "    format: csv",
             f"    path: {path}", f"    loop: {'true' if loop else 'false'}"]
    if speed is not None:
        lines.append(f"    speed: {speed}")
    lines += ["    " + line for line in extra]
    return "\n".join(lines) + "\n"


def write_day(directory, name, count, step_ns):
    """A CSV day of count trades of AAA, step_ns apart (exchange time)."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        for i in range(count):
            f.write(f"T,{34200000000000 + i * step_ns},AAA,10.{i:04d},{i + 1},B\n")
    return path


class PacedLatencyTest(unittest.TestCase):
    def test_a_paced_replay_at_speed_1_keeps_tick_latency_in_the_microsecond_buckets(self):
        # Nine trades half a second apart: at speed 1 the last is released
        # four seconds after the file was read. Its latency runs from its
        # release, not from the read. Latency is observed in the stream of
        # the subscriber's protocol, so each protocol has a run of its own.
        d = tempfile.mkdtemp(prefix="tickd-paced-")
        self.addCleanup(shutil.rmtree, d, True)
        day = write_day(d, "day.csv", 9, 500_000_000)
        for protocol in PROTOCOLS:
            with self.subTest(protocol=protocol):
                t = Tickd(feeds=file_feed("paced", day, speed=1))
                t.start()
                self.addCleanup(t.close)
                sub = t.resp(protocol=protocol)
                self.addCleanup(sub.close)
                self.assertEqual(sub.call_frame("SUBSCRIBE", "trade.AAA")[0], b"subscribe")
                # The last value or the next trade, framed for the protocol.
                self.assertEqual(sub.read_frame()[:2], [b"message", b"trade.AAA"])
                wait_for(lambda: t.metric('tickd_feed_messages_total{feed="paced"}') == 9,
                         timeout=20, what="the paced day replayed")
                observed = wait_for(lambda: t.metric("tickd_tick_latency_seconds_count") or None,
                                    what="latency observed")
                m = {k: v for k, v in t.metrics().items()
                     if k.startswith("tickd_tick_latency")}
                self.assertGreater(observed, 0)
                self.assertEqual(m['tickd_tick_latency_seconds_bucket{le="+Inf"}'],
                                 m['tickd_tick_latency_seconds_bucket{le="0.01"}'], m)
                t.close()


def healthz(t, verbose=False):
    """(status, body) of /healthz; with verbose the body is the decoded JSON."""
    status, headers, body = t.http_get("/healthz?verbose" if verbose else "/healthz")
    if verbose:
        assert headers["Content-Type"] == "application/json", headers
        return status, json.loads(body)
    return status, body


class HealthTest(unittest.TestCase):
    def start(self, feeds):
        t = Tickd(feeds=feeds)
        t.start()
        self.addCleanup(t.close)
        return t

    def test_a_tcp_feed_with_no_source_goes_stale_then_a_tick_makes_it_healthy(self):
        port = free_port()
        t = self.start(tcp_feed("live", port) + "    stale_after: 2s\n")
        self.assertEqual(healthz(t), (200, "ok\n"))
        self.assertEqual(t.metric('tickd_feed_last_message_timestamp_seconds{feed="live"}'), 0)
        self.assertEqual(t.metric('tickd_feed_connected{feed="live"}'), 0)
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(healthz(t)),
                                what="the feed without a source going stale")
        self.assertRegex(body, r"^unhealthy\nfeed live: no source connected for \d+\.\ds "
                               r"\(stale_after 2s\)\n$")
        status, report = healthz(t, verbose=True)
        self.assertEqual(status, 503)
        self.assertEqual(report["status"], "unhealthy")
        (feed,) = report["feeds"]
        self.assertEqual((feed["name"], feed["type"], feed["up"], feed["connected"],
                          feed["finished"], feed["seconds_since_last_message"],
                          feed["stale_after_seconds"], feed["healthy"]),
                         ("live", "tcp", True, False, False, None, 2, False))
        self.assertIn("no source connected", feed["reason"])

        source = t.feed_connection(port)
        self.addCleanup(source.close)
        source.sendall(b"T,1,AAA,1.5,10,B\n")
        before = time.time()
        wait_for(lambda: healthz(t)[0] == 200, what="healthy again after a tick")
        status, report = healthz(t, verbose=True)
        (feed,) = report["feeds"]
        self.assertEqual((status, report["status"], feed["connected"], feed["healthy"],
                          feed["reason"]), (200, "ok", True, True, None))
        self.assertLess(feed["seconds_since_last_message"], 2)
        self.assertEqual(t.metric('tickd_feed_connected{feed="live"}'), 1)
        self.assertAlmostEqual(
            t.metric('tickd_feed_last_message_timestamp_seconds{feed="live"}'), before, delta=5)

        # The source stays connected but says nothing: stale again.
        _, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(healthz(t)),
                           what="the silent source going stale")
        self.assertRegex(body, r"^unhealthy\nfeed live: no message for \d+\.\ds ")

    def test_a_reload_that_only_sets_stale_after_applies_it_and_keeps_the_source(self):
        port = free_port()
        t = self.start(tcp_feed("live", port))
        source = t.feed_connection(port)
        self.addCleanup(source.close)
        source.sendall(b"T,1,AAA,1.5,10,B\n")
        wait_for(lambda: t.metric('tickd_feed_messages_total{feed="live"}') == 1,
                 what="the first tick")
        t.feeds = tcp_feed("live", port) + "    stale_after: 1s\n"
        t.write_config()
        t.signal(signal.SIGHUP)
        t.wait_note("READY=1", 10)
        _, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(healthz(t)),
                           what="the new limit applied")
        self.assertRegex(body, r"feed live: no message for \d+\.\ds \(stale_after 1s\)")
        # The same connection still feeds the daemon: the feed was not restarted.
        self.assertEqual(t.metric('tickd_feed_connected{feed="live"}'), 1)
        source.sendall(b"T,2,AAA,1.5,10,B\n")
        wait_for(lambda: t.metric('tickd_feed_messages_total{feed="live"}') == 2,
                 what="the second tick on the same connection")
        self.assertEqual(healthz(t)[0], 200)

    def test_a_replay_that_reached_its_end_stays_healthy_and_says_finished(self):
        d = tempfile.mkdtemp(prefix="tickd-health-")
        self.addCleanup(shutil.rmtree, d, True)
        t = self.start(file_feed("day", write_day(d, "day.csv", 3, 1000)))
        wait_for(lambda: healthz(t, verbose=True)[1]["feeds"][0]["finished"],
                 what="the replay finished")
        time.sleep(1.5)
        self.assertEqual(healthz(t), (200, "ok\n"))
        status, report = healthz(t, verbose=True)
        (feed,) = report["feeds"]
        self.assertEqual((status, feed["type"], feed["finished"], feed["healthy"],
                          feed["stale_after_seconds"]), (200, "file", True, True, None))
        self.assertGreater(feed["seconds_since_last_message"], 1)
        self.assertEqual(t.metric('tickd_feed_messages_total{feed="day"}'), 3)

    def test_a_finished_replay_with_stale_after_goes_stale_once_it_passes(self):
        d = tempfile.mkdtemp(prefix="tickd-health-")
        self.addCleanup(shutil.rmtree, d, True)
        t = self.start(file_feed("day", write_day(d, "day.csv", 3, 1000),
                                 extra=["stale_after: 1s"]))
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(healthz(t)),
                                what="the finished replay going stale")
        self.assertRegex(body, r"^unhealthy\nfeed day: finished, no message for \d+\.\ds "
                               r"\(stale_after 1s\)\n$")
        status, report = healthz(t, verbose=True)
        (feed,) = report["feeds"]
        self.assertEqual((status, feed["finished"], feed["healthy"], feed["stale_after_seconds"]),
                         (503, True, False, 1))
        self.assertGreater(t.metric('tickd_feed_last_message_timestamp_seconds{feed="day"}'), 0)

    def test_accept_application_json_gets_the_json_report(self):
        t = self.start(tcp_feed("live", free_port()))
        req = urllib.request.Request(f"http://127.0.0.1:{t.http_port}/healthz",
                                     headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.headers["Content-Type"], "application/json")
            report = json.load(r)
        self.assertEqual(report["status"], "ok")
        self.assertEqual([f["name"] for f in report["feeds"]], ["live"])


def sanitized_build():
    """Whether BUILD_DIR was configured with TICKD_SANITIZE or TICKD_FUZZ."""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            cache = f.read()
    except OSError:
        return False
    return re.search(r"^TICKD_(SANITIZE|FUZZ):BOOL=ON$", cache, re.M) is not None


def install_tree(test):
    """`cmake --install` of the build into a temporary root, removed after
    the test; returns the root."""
    root = tempfile.mkdtemp(prefix="tickd-root-")
    test.addCleanup(shutil.rmtree, root, True)
    r = subprocess.run(["cmake", "--install", BUILD_DIR], env=dict(os.environ, DESTDIR=root),
                       capture_output=True, text=True, timeout=120)
    test.assertEqual(r.returncode, 0, r.stdout + r.stderr)
    return root


class InstalledBinaryTest(unittest.TestCase):
    def test_version_is_the_project_version(self):
        r = subprocess.run([TICKD, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, f"tickd {PROJECT_VERSION}\n", ""))

    # gcc's AddressSanitizer and UBSan name each instrumented global and check
    # by the source path as compiled, which -ffile-prefix-map does not reach;
    # such a build is never shipped.
    @unittest.skipIf(sanitized_build(), "a sanitizer build names its sources by full path")
    def test_installed_binary_names_no_directory_of_the_build_machine(self):
        with open(os.path.join(install_tree(self), "usr/sbin/tickd"), "rb") as f:
            binary = f.read()
        for d in {SOURCE_DIR, os.path.realpath(SOURCE_DIR), os.path.realpath(BUILD_DIR)}:
            self.assertFalse(d.encode() in binary, f"{d} in the installed tickd")

    def test_without_config_the_daemon_reads_etc_tickd(self):
        r = subprocess.run([TICKD, "--help"], capture_output=True, text=True, timeout=30)
        self.assertIn("Without --config the daemon reads /etc/tickd/tickd.yaml.\n", r.stdout)


class UnitFileTest(unittest.TestCase):
    def test_unit_is_hardened_to_two_or_better(self):
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", UNIT],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for tickd\.service: ([\d.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)

    def test_installed_unit_verifies_clean(self):
        root = install_tree(self)
        for path in ("usr/sbin/tickd", "etc/tickd/tickd.yaml", "usr/lib/systemd/system/tickd.service",
                     "usr/share/tickd/sample/day.itch", "usr/share/doc/tickd/prometheus.yml"):
            self.assertTrue(os.path.exists(os.path.join(root, path)), path)
        # systemd-analyze verify checks that every command exists: point the
        # unit at the binary just installed (the rest of the unit is verbatim).
        with open(os.path.join(root, "usr/lib/systemd/system/tickd.service")) as f:
            unit = f.read().replace("/usr/sbin/tickd", os.path.join(root, "usr/sbin/tickd"))
        check = os.path.join(root, "tickd.service")
        with open(check, "w") as f:
            f.write(unit)
        r = subprocess.run(["systemd-analyze", "verify", check], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "")


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="tickd-deb-")
        r = subprocess.run(["cpack", "-G", "DEB", "-B", cls.out], cwd=BUILD_DIR,
                           capture_output=True, text=True, timeout=300)
        debs = [f for f in os.listdir(cls.out) if f.endswith(".deb")]
        cls.deb = os.path.join(cls.out, debs[0]) if r.returncode == 0 and len(debs) == 1 else None
        cls.cpack_output = r.stdout + r.stderr + repr(os.listdir(cls.out))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, True)

    def test_deb_is_at_most_5_mb(self):
        self.assertIsNotNone(self.deb, self.cpack_output)
        self.assertLessEqual(os.path.getsize(self.deb), 5 * 1024 * 1024)

    def test_deb_installs_its_files_and_the_installed_daemon_starts(self):
        self.assertIsNotNone(self.deb, self.cpack_output)
        info = subprocess.run(["dpkg-deb", "--info", self.deb], capture_output=True, text=True).stdout
        self.assertIn("Package: tickd", info)
        self.assertIn("libuv1", info)
        root = os.path.join(self.out, "root")
        subprocess.run(["dpkg-deb", "-x", self.deb, root], check=True)
        conf = os.path.join(root, "etc/tickd/tickd.yaml")
        self.assertTrue(os.path.exists(os.path.join(root, "usr/sbin/tickd")))
        # Start the packaged binary on its packaged configuration, moved to this
        # root and to free ports.
        t = Tickd()
        self.addCleanup(t.close)
        with open(conf) as f:
            text = f.read()
        text = text.replace("/usr/share/tickd", os.path.join(root, "usr/share/tickd"))
        text = text.replace("/var/lib/tickd", t.journal_dir)
        text = text.replace("127.0.0.1:6380", f"127.0.0.1:{t.pubsub_port}")
        text = text.replace("127.0.0.1:9108", f"127.0.0.1:{t.http_port}")
        with open(t.config_path, "w") as f:
            f.write(text)
        t.binary = os.path.join(root, "usr/sbin/tickd")
        t.start()
        wait_for(lambda: (t.metric('tickd_feed_messages_total{feed="sample"}') or 0) > 0,
                 what="the packaged sample day replaying")
        self.assertEqual(t.stop(), 0)


if __name__ == "__main__":
    unittest.main()

"""test_heap_page.py - /debug/heap and /debug/heap.json on the real tickd.

HeapEndpointsTest speaks HTTP/1.1 to both endpoints: GET and HEAD are
answered, every other method is 405 with Allow, query strings are ignored as
on the other routes, oversized headers are 431; the page is HTML of at most
64 KiB that loads nothing from elsewhere; the JSON's arenas and pools are
those /metrics and the page draw.

HeapPageBrowserTest loads the page in a real headless Chromium, driven through
chromedriver's W3C WebDriver HTTP API (urllib, no selenium): after the first
refresh the DOM shows as many arenas as tickd_alloc_arenas and as many pools
as /debug/heap.json; a burst of 50,000 PSUBSCRIBE patterns held by one client
(small blocks that stay live) makes the drawn arena count rise (hovering a
pool then shows its arena, class, block size, blocks used and free), and when the
client lets them go and the daemon trims (its gc timer, 50 ms here) it falls
back. It saves PNG screenshots of the page during the burst and after it in
the build tree (TICKD_BUILD_DIR) for a person to look at, then stops tickd and
sees the page say so. It is skipped only when chromium or chromedriver is
missing and CI is not set; in CI it must run (deploy/setup.sh test installs
both).
"""

import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import Tickd, free_port, wait_for
from test_stall import hold_idle_patterns

PAGE_MAX = 64 * 1024
ENDPOINTS = ("/debug/heap", "/debug/heap.json")


def request(t, method, path, headers=None, body=None):
    """(status, headers, body bytes) of one request on a fresh connection."""
    c = http.client.HTTPConnection("127.0.0.1", t.http_port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


class HeapEndpointsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Tickd()
        cls.t.start()

    @classmethod
    def tearDownClass(cls):
        cls.t.close()

    def test_methods_other_than_get_and_head_are_405_with_allow(self):
        for path in ENDPOINTS:
            for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
                with self.subTest(path=path, method=method):
                    status, headers, _ = request(self.t, method, path)
                    self.assertEqual(status, 405)
                    self.assertEqual(headers.get("Allow"), "GET, HEAD")
            status, _, _ = request(self.t, "POST", path, body=b"{}",
                                   headers={"Content-Type": "application/json"})
            self.assertEqual(status, 405, path)

    def test_head_answers_the_get_headers_without_a_body(self):
        for path in ENDPOINTS:
            with self.subTest(path=path):
                status, headers, body = request(self.t, "HEAD", path)
                self.assertEqual(status, 200)
                self.assertEqual(body, b"")
                gstatus, gheaders, gbody = request(self.t, "GET", path)
                self.assertEqual(gstatus, 200)
                self.assertEqual(headers["Content-Type"], gheaders["Content-Type"])
                if path == "/debug/heap":  # the JSON's time_ms moves between the two
                    self.assertEqual(int(headers["Content-Length"]), len(gbody))
                self.assertGreater(int(headers["Content-Length"]), 0)

    def test_query_strings_are_ignored_and_huge_headers_are_431(self):
        for path in ENDPOINTS:
            with self.subTest(path=path):
                status, _, _ = request(self.t, "GET", path + "?refresh=1&x=%2F")
                self.assertEqual(status, 200)
                status, _, _ = request(self.t, "GET", path, headers={"X-Big": "a" * 20000})
                self.assertEqual(status, 431)
                status, _, _ = request(self.t, "GET", path + "/more")
                self.assertEqual(status, 404)

    def test_page_is_html_within_64_kib_that_loads_nothing_from_elsewhere(self):
        status, headers, body = request(self.t, "GET", "/debug/heap")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
        self.assertLessEqual(len(body), PAGE_MAX)
        page = body.decode()
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        # no external script, style sheet, image, font or frame
        self.assertIsNone(re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I))
        self.assertIsNone(re.search(r"url\(\s*[\"']?\s*(https?:)?//", page, re.I))
        self.assertNotIn("@import", page)
        self.assertIsNone(re.search(r"<(link|iframe|object|embed)\b", page, re.I))
        self.assertIn('fetch("/debug/heap.json"', page)

    def test_json_arenas_are_the_metrics_and_pools_fill_them(self):
        status, headers, body = request(self.t, "GET", "/debug/heap.json")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        h = json.loads(body)
        self.assertEqual(h["heap"]["arenas"], self.t.metric("tickd_alloc_arenas"))
        self.assertEqual(len(h["arenas"]), h["heap"]["arenas"])
        per_arena = h["heap"]["arena_size"] // h["heap"]["pool_size"]
        for a in h["arenas"]:
            self.assertEqual(len(a["pools"]), per_arena)
        self.assertEqual(len(h["classes"]), 32)
        self.assertEqual(len(h["gc"]["generations"]), 3)
        live = {o["type"]: o["live"] for o in h["objects"]}
        for name, value in live.items():
            self.assertEqual(self.t.metric(f'tickd_objects{{type="{name}"}}'), value)


class WebDriver:
    """Just enough of the W3C WebDriver protocol, spoken to chromedriver."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": shutil.which("chromium"),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1500,1100"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError(f"webdriver {method} {path}: {e.read()[:500]!r}")

    def go(self, url):
        self.call("POST", f"/session/{self.session}/url", {"url": url})

    def js(self, script):
        return self.call("POST", f"/session/{self.session}/execute/sync",
                         {"script": script, "args": []})

    def screenshot(self, path):
        png = base64.b64decode(self.call("GET", f"/session/{self.session}/screenshot"))
        with open(path, "wb") as f:
            f.write(png)
        return png

    def quit(self):
        self.call("DELETE", f"/session/{self.session}")


def start_chromedriver(test):
    """chromedriver on a port of its own; the test's cleanup stops it."""
    port = free_port()
    proc = subprocess.Popen([shutil.which("chromedriver"), f"--port={port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    test.addCleanup(stop)

    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False
    wait_for(up, timeout=20, what="chromedriver listening")
    return port


DOM = """return {refreshes: +document.body.dataset.refreshes,
                 arenas: +document.getElementById('arena-count').textContent,
                 pools: +document.getElementById('pool-count').textContent,
                 status: document.getElementById('status').className,
                 statusText: document.getElementById('status').textContent};"""


class HeapPageBrowserTest(unittest.TestCase):
    def setUp(self):
        if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
            if os.environ.get("CI"):
                self.fail("CI is set and chromium or chromedriver is missing "
                          "(deploy/setup.sh test installs them)")
            self.skipTest("chromium or chromedriver not installed (deploy/setup.sh test)")
        self.out_dir = os.environ.get("TICKD_BUILD_DIR", os.getcwd())

    def dom_when(self, driver, predicate, what, timeout=20):
        seen = []

        def check():
            d = driver.js(DOM)
            seen[:] = [d]
            return d if predicate(d) else None
        try:
            return wait_for(check, timeout=timeout, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; the page showed {seen}")

    def test_page_draws_the_heaps_arenas_and_follows_a_burst_up_and_back_down(self):
        t = Tickd()
        self.addCleanup(t.close)
        t.start()
        driver = WebDriver(start_chromedriver(self))
        self.addCleanup(driver.quit)
        driver.go(f"http://127.0.0.1:{t.http_port}/debug/heap")

        quiet = self.dom_when(driver, lambda d: d["refreshes"] >= 1, "the first refresh")
        arenas = t.metric("tickd_alloc_arenas")
        self.assertEqual(quiet["arenas"], arenas)
        h = json.loads(t.http_get("/debug/heap.json")[2])
        self.assertEqual(quiet["pools"], sum(len(a["pools"]) for a in h["arenas"]))

        holder = socket.create_connection(("127.0.0.1", t.pubsub_port))
        self.addCleanup(holder.close)
        hold_idle_patterns(holder, 50000)
        held = t.metric("tickd_alloc_arenas")
        self.assertGreaterEqual(held, arenas + 5)
        burst = self.dom_when(driver, lambda d: d["arenas"] == held,
                              f"the page to draw the {held:.0f} arenas of the burst")
        self.assertEqual(burst["pools"], held * quiet["pools"] / quiet["arenas"])
        tip = driver.js("""var c = document.querySelector('#arenas .p:not(.e)');
            c.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: 40, clientY: 40}));
            var t = document.getElementById('tip');
            return [t.style.display, t.textContent];""")
        self.assertEqual(tip[0], "block", tip)
        self.assertRegex(tip[1], r"arena 0x[0-9a-f]+.*\n.*\nclass \d+, blocks of \d+ bytes\n"
                                 r"used \d+, free \d+ of \d+")
        time.sleep(1.5)  # a refresh or two more: rates and the sparkline have two points
        driver.screenshot(os.path.join(self.out_dir, "heap_page_burst.png"))

        holder.sendall(b"PUNSUBSCRIBE\r\n")
        after = self.dom_when(driver, lambda d: d["arenas"] <= arenas + 1,
                              "the page to draw the arenas given back")
        self.assertLess(after["arenas"], held)
        self.assertLessEqual(t.metric("tickd_alloc_arenas"), arenas + 1)
        png = driver.screenshot(os.path.join(self.out_dir, "heap_page.png"))
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")

        self.assertEqual(t.stop(), 0)
        down = self.dom_when(driver, lambda d: d["status"] == "down",
                             "the page to say tickd stopped answering")
        self.assertIn("not answering", down["statusText"])


if __name__ == "__main__":
    unittest.main()

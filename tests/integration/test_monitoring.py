"""test_monitoring.py - the Grafana dashboard (deploy/grafana/tickd.json) and
the Prometheus alert rules (deploy/prometheus/tickd-rules.yml) against the
real tickd and a real Prometheus.

- The dashboard is valid JSON with a panel for each thing issue #19 lists.
- `promtool check rules` passes, and `promtool test rules` runs the rules'
  unit tests (deploy/prometheus/tickd-rules.test.yml: each alert fires when
  it should and not before).
- Every metric name the dashboard's and the rules' expressions use is one a
  live tickd (a TCP feed that got a tick, the journal on) exports, bar
  Prometheus's own `up`; every other word in them is PromQL or a label.
- A real Prometheus scrapes that tickd every second with the rules loaded:
  every dashboard expression evaluates through the query API without error
  and returns series, and every rule reports health "ok".

promtool and prometheus come from Debian's prometheus package (deploy/setup.sh
test); the tests that need them are skipped only when it is missing and CI is
not set.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from harness import Tickd, free_port, tcp_feed, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "tickd.json")
RULES = os.path.join(ROOT, "deploy", "prometheus", "tickd-rules.yml")
RULES_TEST = os.path.join(ROOT, "deploy", "prometheus", "tickd-rules.test.yml")

# Grafana's variables, as a query of the last minutes would have them.
GRAFANA_VARS = {"$__rate_interval": "15s", "$instance": ".*"}

# PromQL words the expressions may use besides metric and label names.
PROMQL = {"sum", "max", "by", "rate", "increase", "histogram_quantile", "time", "deriv",
          "delta", "and", "or"}
LABELS = {"le", "instance", "kind", "feed", "generation", "size_class", "type", "state", "job"}


def need(tool):
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            raise AssertionError(f"CI is set and {tool} is missing (Debian package prometheus)")
        raise unittest.SkipTest(f"{tool} not installed (Debian package prometheus)")
    return shutil.which(tool)


def dashboard_exprs():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    return dash, out


def rule_exprs():
    """(alert, expr) of each rule; the file is simple YAML, read line by line
    so that the test needs nothing outside the standard library."""
    out, alert = [], None
    with open(RULES) as f:
        for line in f:
            m = re.match(r"\s*- alert: (\S+)", line)
            if m:
                alert = m.group(1)
            m = re.match(r"\s*expr: (.+)$", line)
            if m:
                out.append((alert, m.group(1).strip()))
    return out


def grafana_to_promql(expr):
    for k, v in GRAFANA_VARS.items():
        expr = expr.replace(k, v)
    return expr


def names_in(expr):
    """The metric names expr uses, and any word that is neither one of them,
    PromQL, a label nor a number."""
    bare = re.sub(r'"[^"]*"', '""', expr)          # string literals
    bare = re.sub(r"\{[^}]*\}", "", bare)          # label matchers
    bare = re.sub(r"\bby\s*\(([^)]*)\)", "by", bare)  # grouping labels
    bare = re.sub(r"\[[^\]]*\]", "", bare)         # range durations
    words = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare)
    metrics = {w for w in words if w not in PROMQL and w not in LABELS}
    return metrics


def live_tickd(test):
    """A tickd with a TCP feed that received a trade and the journal on."""
    feed_port = free_port()
    t = Tickd(feeds=tcp_feed("live", feed_port), journal=True)
    test.addCleanup(t.close)
    t.start()
    feed = t.feed_connection(feed_port)
    test.addCleanup(feed.close)
    feed.sendall(b"T,1,MON,1.0000,1\n")
    wait_for(lambda: t.metric('tickd_ticks_total{kind="trade"}') == 1, what="the tick")
    return t


def sample_names(t):
    _, _, body = t.http_get("/metrics")
    return {re.split(r"[{ ]", line, 1)[0] for line in body.splitlines()
            if line and not line.startswith("#")}


class DashboardAndRulesTest(unittest.TestCase):
    def test_dashboard_is_json_with_a_panel_for_each_figure_the_issue_lists(self):
        dash, exprs = dashboard_exprs()
        self.assertEqual(dash["uid"], "tickd")
        titles = " | ".join(p["title"] for p in dash["panels"]).lower()
        for words in ("ticks per second by kind", "tick latency p50 / p99", "clients",
                      "slow consumers cut", "journal fsync p99", "mapped and used bytes",
                      "arenas", "blocks in use by size class", "collections",
                      "pause p99 by generation", "process memory", "process cpu"):
            self.assertIn(words, titles)
        self.assertGreaterEqual(len(exprs), 20)
        ids = [p["id"] for p in dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)))

    def test_rules_pass_promtool_check_and_their_unit_tests(self):
        promtool = need("promtool")
        r = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS: 7 rules found", r.stdout + r.stderr)
        r = subprocess.run([promtool, "test", "rules", RULES_TEST], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        alerts = {a for a, _ in rule_exprs()}
        with open(RULES_TEST) as f:
            tested = set(re.findall(r"alertname: (\w+)", f.read()))
        self.assertEqual(tested, alerts)

    def test_every_metric_the_dashboard_and_rules_use_is_exported_by_a_live_tickd(self):
        exported = sample_names(live_tickd(self)) | {"up"}  # up: Prometheus's own
        exprs = dashboard_exprs()[1] + rule_exprs()
        self.assertGreater(len(exprs), 25)
        for where, expr in exprs:
            with self.subTest(where=where):
                used = names_in(grafana_to_promql(expr))
                self.assertTrue(used, expr)
                self.assertEqual(used - exported, set(), expr)

    def test_names_in_catches_a_metric_tickd_does_not_export(self):
        exported = {"tickd_alloc_arenas"}
        self.assertEqual(names_in('sum(rate(tickd_nope_total{instance=~".*"}[1m]))') - exported,
                         {"tickd_nope_total"})
        self.assertEqual(names_in("histogram_quantile(0.99, sum by (le) (tickd_alloc_arenas))")
                         - exported, set())


class RealPrometheusTest(unittest.TestCase):
    def test_every_expression_evaluates_with_series_in_prometheus_scraping_tickd(self):
        prometheus = need("prometheus")
        t = live_tickd(self)
        work = tempfile.TemporaryDirectory(prefix="tickd-prom-")
        self.addCleanup(work.cleanup)
        port = free_port()
        config = os.path.join(work.name, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{RULES}"]
scrape_configs:
  - job_name: tickd
    static_configs:
      - targets: ["127.0.0.1:{t.http_port}"]
""")
        log = open(os.path.join(work.name, "prometheus.log"), "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([prometheus, f"--config.file={config}",
                                 f"--storage.tsdb.path={work.name}/data",
                                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                stdout=log, stderr=log)

        def stop():
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.addCleanup(stop)

        def api(path, **params):
            url = f"http://127.0.0.1:{port}/api/v1/{path}"
            if params:
                url += "?" + urllib.parse.urlencode(params)
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    return json.loads(r.read())
            except OSError:
                return None

        def scraped():
            if proc.poll() is not None:
                with open(log.name) as f:
                    raise AssertionError(f"prometheus exited {proc.returncode}: {f.read()}")
            r = api("query", query='up{job="tickd"}')
            return r is not None and any(s["value"][1] == "1" for s in r["data"]["result"])
        wait_for(scraped, timeout=30, what="prometheus scraping tickd")
        # rates need two samples inside their 15 s window; a few more scrapes
        def scrapes():
            r = api("query", query="count_over_time(tickd_alloc_arenas[15s])")
            result = r["data"]["result"] if r else []
            return result and float(result[0]["value"][1]) >= 4
        wait_for(scrapes, timeout=30, what="four scrapes")

        for title, expr in dashboard_exprs()[1]:
            with self.subTest(panel=title, expr=expr):
                r = api("query", query=grafana_to_promql(expr))
                self.assertIsNotNone(r)
                self.assertEqual(r["status"], "success", r)
                self.assertTrue(r["data"]["result"], f"no series for {expr}")
        for alert, expr in rule_exprs():
            with self.subTest(alert=alert):
                r = api("query", query=expr)
                self.assertEqual(r["status"], "success", r)

        def rules_evaluated():
            r = api("rules")
            rules = [x for g in r["data"]["groups"] for x in g["rules"]] if r else []
            return rules if rules and all(x.get("lastEvaluation", "").startswith("20")
                                          and not x["lastEvaluation"].startswith("0001")
                                          for x in rules) else None
        rules = wait_for(rules_evaluated, timeout=20, what="every rule evaluated")
        self.assertEqual({x["name"] for x in rules}, {a for a, _ in rule_exprs()})
        for x in rules:
            self.assertEqual(x["health"], "ok", x)
        firing = [x["name"] for x in rules if x["state"] == "firing"]
        self.assertEqual(firing, [], "a healthy tickd raises no alert")


if __name__ == "__main__":
    unittest.main()

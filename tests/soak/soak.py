#!/usr/bin/env python3
"""soak.py - run tickd for a long time under a steady load and watch memory.

    python3 tests/soak/soak.py [--tickd build/src/tickd] [--minutes 10]
                               [--rate 200000] [--subscribers 100] [--symbols 1000]

Starts tickd on free loopback ports with a TCP CSV feed, streams --rate ticks
per second into it across --symbols symbols, keeps --subscribers clients
subscribed (each to one symbol pattern, e.g. trade.S01* and quote.S01*; every
other one speaks RESP3, opening with HELLO 3, so both fan-out streams carry
the load), and churns them: every second a few disconnect and new ones connect and
subscribe. Every 10 seconds it samples /metrics and prints resident memory,
mapped arena bytes, live objects and delivery counts. At the end it compares
the last samples with those after the warm-up minute and says whether
memory and object counts stayed flat (within 10%), exiting 1 if not.

Not part of CI (it runs for minutes); the README's Performance section shows a
run. Standard library only; binds 127.0.0.1 only.
"""

import argparse
import os
import random
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


class Subscriber:
    def __init__(self, port, pattern, sel, resp3):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setblocking(False)
        pats = [f"trade.{pattern}*", f"quote.{pattern}*"]
        cmd = b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n" if resp3 else b""
        cmd += b"*3\r\n$10\r\nPSUBSCRIBE\r\n"
        for p in pats:
            cmd += b"$%d\r\n%s\r\n" % (len(p), p.encode())
        self.sock.sendall(cmd)
        self.bytes = 0
        sel.register(self.sock, selectors.EVENT_READ, self)

    def read(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        self.bytes += len(data)

    def close(self, sel):
        sel.unregister(self.sock)
        self.sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tickd", default="build/src/tickd")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=int, default=200000)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--symbols", type=int, default=1000)
    args = ap.parse_args()

    d = tempfile.mkdtemp(prefix="tickd-soak-")
    ps_port, http_port, feed_port = free_port(), free_port(), free_port()
    cfg = os.path.join(d, "tickd.yaml")
    with open(cfg, "w") as f:
        f.write(f"""pubsub:
  listen: 127.0.0.1:{ps_port}
http:
  listen: 127.0.0.1:{http_port}
feeds:
  - name: soak
    type: tcp
    format: csv
    listen: 127.0.0.1:{feed_port}
""")
    log = open(os.path.join(d, "tickd.log"), "w")
    proc = subprocess.Popen([args.tickd, "--config", cfg], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                metrics(http_port)
                break
            except OSError:
                time.sleep(0.1)
        symbols = [f"S{i:03d}" for i in range(args.symbols)]
        patterns = sorted({s[:3] for s in symbols})  # S00..S99: ~10 symbols each
        sel = selectors.DefaultSelector()
        subs = [Subscriber(ps_port, patterns[i % len(patterns)], sel, i % 2 == 1)
                for i in range(args.subscribers)]
        feed = socket.create_connection(("127.0.0.1", feed_port))

        # One second of ticks, prebuilt; sent in 10 ms slices.
        rnd = random.Random(1)
        lines = []
        for i in range(args.rate):
            s = symbols[rnd.randrange(len(symbols))]
            if i % 4:
                lines.append(f"Q,{i},{s},{rnd.randrange(1, 9999)}.25,100,"
                             f"{rnd.randrange(10000, 19999)}.5,200\n")
            else:
                lines.append(f"T,{i},{s},{rnd.randrange(1, 9999)}.01,{rnd.randrange(1, 999)},B\n")
        slices = [("".join(lines[k:k + args.rate // 100])).encode()
                  for k in range(0, args.rate, args.rate // 100)]

        start = time.monotonic()
        end = start + args.minutes * 60
        samples, next_sample, next_churn, k = [], start + 10, start + 1, 0
        print("t_s  rss_MiB  mapped_MiB  ticks  symbols  delivered_total  clients")
        while time.monotonic() < end:
            due = start + k * 0.01
            now = time.monotonic()
            if now < due:
                for key, _ in sel.select(timeout=due - now):
                    key.data.read()
                continue
            feed.sendall(slices[k % len(slices)])
            k += 1
            if now >= next_churn:  # a few subscribers leave, as many arrive
                next_churn += 1
                for _ in range(3):
                    i = rnd.randrange(len(subs))
                    subs[i].close(sel)
                    subs[i] = Subscriber(ps_port, patterns[rnd.randrange(len(patterns))], sel,
                                         i % 2 == 1)
            if now >= next_sample:
                next_sample += 10
                m = metrics(http_port)
                row = (now - start, m["process_resident_memory_bytes"] / 2**20,
                       m["tickd_alloc_mapped_bytes"] / 2**20,
                       m.get('tickd_objects{type="tick"}', 0),
                       m.get('tickd_objects{type="symbol"}', 0),
                       m["tickd_pubsub_messages_sent_total"], m["tickd_pubsub_clients"])
                samples.append(row)
                print("%4.0f  %7.1f  %10.1f  %5d  %7d  %15d  %7d" % row, flush=True)
        sent = k * (args.rate // 100)
        m = metrics(http_port)
        counted = m['tickd_feed_messages_total{feed="soak"}']
        cut = m["tickd_pubsub_slow_consumer_disconnects_total"]
        print(f"sent {sent} ticks in {time.monotonic() - start:.0f} s; tickd counted "
              f"{counted:.0f}, slow-consumer disconnects {cut:.0f}")
        warm = [s for s in samples if s[0] >= 60] or samples
        first, last = warm[0], samples[-1]
        flat = all(last[i] <= first[i] * 1.10 + 1 for i in (1, 2, 3, 4))
        print("memory and object counts " + ("flat" if flat else "GREW") +
              f": RSS {first[1]:.1f} -> {last[1]:.1f} MiB, mapped {first[2]:.1f} -> "
              f"{last[2]:.1f} MiB, ticks {first[3]:.0f} -> {last[3]:.0f}, "
              f"symbols {first[4]:.0f} -> {last[4]:.0f}")
        return 0 if flat else 1
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: Apache-2.0
"""bench_metrics.py - the cost of kray.util.metrics (docs/observability.md, "Application
metrics") in a driver, beside a baseline measured in the same run:

    counter_inc_us      Counter.inc() with one tag (summed in the process, sent later)
    gauge_set_us        Gauge.set() with one tag
    histogram_obs_us    Histogram.observe() (8 boundaries)
    dict_add_us         the baseline: d[key] += 1 under a threading.Lock, the least a
                        thread-safe local sum can cost in Python
    flush_us_per_series _flush() of N changed series to krayd (one METRIC frame each, one
                        write), per series
    scrape_ms           one scrape of the endpoint with those N series and krayd's own

Each figure is the median of --rounds rounds (5).  Last line: the figures as JSON.

    PYTHONPATH=build/python python3 bench/bench_metrics.py [--rounds N] [--series N]
"""
import argparse
import json
import socket
import statistics
import threading
import time
import urllib.request

import kray
from kray.util import metrics
from kray.util.metrics import Counter, Gauge, Histogram

N_OPS = 100_000


def per_op_us(fn, n=N_OPS):
    t = time.perf_counter()
    fn(n)
    return (time.perf_counter() - t) / n * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--series", type=int, default=1000)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kray.init(num_cpus=1, _metrics_export_port=port)
    c = Counter("bench_requests", tag_keys=("route",))
    g = Gauge("bench_level", tag_keys=("route",))
    h = Histogram("bench_latency", boundaries=[1, 2, 5, 10, 20, 50, 100, 200])
    tags = {"route": "/"}
    lock = threading.Lock()
    d = {}

    def inc(n):
        for _ in range(n):
            c.inc(tags=tags)

    def set_(n):
        for i in range(n):
            g.set(i, tags=tags)

    def obs(n):
        for i in range(n):
            h.observe(i % 300)

    def base(n):
        key = ("bench", (("route", "/"),))
        for _ in range(n):
            with lock:
                d[key] = d.get(key, 0) + 1

    res = {k: [] for k in ("counter_inc_us", "gauge_set_us", "histogram_obs_us",
                           "dict_add_us", "flush_us_per_series", "scrape_ms")}
    many = Counter("bench_series", tag_keys=("i",))
    for _ in range(args.rounds):
        res["dict_add_us"].append(per_op_us(base))
        res["counter_inc_us"].append(per_op_us(inc))
        res["gauge_set_us"].append(per_op_us(set_))
        res["histogram_obs_us"].append(per_op_us(obs))
        metrics._flush()
        for i in range(args.series):
            many.inc(tags={"i": str(i)})
        t = time.perf_counter()
        assert metrics._flush()
        kray.cluster_resources()  # a round trip: krayd has read the frames
        res["flush_us_per_series"].append((time.perf_counter() - t) / args.series * 1e6)
        t = time.perf_counter()
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        res["scrape_ms"].append((time.perf_counter() - t) * 1e3)
    med = {k: round(statistics.median(v), 3) for k, v in res.items()}
    for k, v in med.items():
        print(f"{k:22s} {v:10.3f}   (rounds: {', '.join(f'{x:.3f}' for x in res[k])})")
    print(f"inc over the baseline: {med['counter_inc_us'] / med['dict_add_us']:.1f}x; "
          f"{args.series} series per flush")
    kray.shutdown()
    print(json.dumps({"series": args.series, "rounds": args.rounds, **med}))


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: Apache-2.0
"""bench_python.py - Ray's core microbenchmarks (python/ray/_private/ray_perf.py) on
kray's Python API, with the C API's figures for the same metrics beside them, measured
in the same run by the C benches (bench_tasks, bench_actors, bench_objects --quick), and
the machine's floors they report (a unix-socket ping-pong, a memcpy).

    single_client_tasks_sync     f.remote() then get, repeat
    single_client_tasks_async    1,000 f.remote(), then get them all
    1_1_actor_calls_sync         one actor: a.f.remote() then get, repeat
    1_1_actor_calls_async        one actor: 1,000 calls, then get them all
    single_client_put_calls      put(0)
    single_client_get_calls      get of the same small put object
    single_client_put_gigabytes  put of a 100 MiB numpy array (GB/s)
    single_client_wait_1k_refs   1,000 tasks, then wait() on what is not ready until
                                 nothing is (Ray's loop); rate of whole loops

Each figure is the median of several rounds of about a second after a warm-up, against a
private krayd with one CPU slot per online CPU.  Prints a table and one JSON line.

    PYTHONPATH=build/python python3 bench/bench_python.py [--quick] [--json FILE]
    (or: make bench-python)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import kray

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("KRAY_BUILD", os.path.join(HERE, "..", "build"))

ROUNDS, ROUND_S = 5, 1.0


def timeit(fn, multiplier=1):
    """Median rate (calls x multiplier per second) over ROUNDS rounds of ~ROUND_S."""
    fn()  # warm-up: workers started, functions loaded
    rates = []
    for _ in range(ROUNDS):
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= ROUND_S:
                break
        rates.append(n * multiplier / dt)
    return statistics.median(rates), rates


@kray.remote
def small_value():
    return b"ok"


@kray.remote
class Actor:
    def small_value(self):
        return b"ok"


def python_figures():
    out = {}
    out["single_client_tasks_sync"] = timeit(lambda: kray.get(small_value.remote()))
    out["single_client_tasks_async"] = timeit(
        lambda: kray.get([small_value.remote() for _ in range(1000)]), 1000)
    a = Actor.remote()
    out["1_1_actor_calls_sync"] = timeit(lambda: kray.get(a.small_value.remote()))
    out["1_1_actor_calls_async"] = timeit(
        lambda: kray.get([a.small_value.remote() for _ in range(1000)]), 1000)

    def put_calls():
        for _ in range(1000):
            kray.put(0)
    out["single_client_put_calls"] = timeit(put_calls, 1000)
    value = kray.put(0)

    def get_calls():
        for _ in range(1000):
            kray.get(value)
    out["single_client_get_calls"] = timeit(get_calls, 1000)
    arr = np.ones(100 * 2**20 // 8, dtype=np.int64)  # 100 MiB, written once
    gb = arr.nbytes / 1e9
    out["single_client_put_gigabytes"] = timeit(lambda: kray.put(arr), gb)

    def wait_multiple_refs():
        not_ready = [small_value.remote() for _ in range(1000)]
        while not_ready:
            _ready, not_ready = kray.wait(not_ready)
    out["single_client_wait_1k_refs"] = timeit(wait_multiple_refs)
    return out


def c_figures(quick):
    """The C benches' JSON, each run once here (--quick): their metric -> value."""
    figs = {}
    env = dict(os.environ)
    env.setdefault("KRAY_TEST_CODE_PATH", os.path.join(BUILD, "tests"))
    for b in ("bench_tasks", "bench_actors", "bench_objects"):
        path = os.path.join(BUILD, "bench", b)
        if not os.path.exists(path):
            print(f"  ({b} not built: no C figures for its metrics)")
            continue
        with tempfile.NamedTemporaryFile("r", suffix=".json") as f:
            args = [path, "--json", f.name] + (["--quick"] if quick else ["--quick"])
            r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                print(f"  ({b} failed: {r.stderr.strip()[:200]})")
                continue
            data = json.loads(f.read().strip().splitlines()[-1])
        for k, v in data.items():
            if isinstance(v, (int, float)):
                figs[k] = v
    return figs


UNITS = {
    "single_client_tasks_sync": "tasks/s", "single_client_tasks_async": "tasks/s",
    "1_1_actor_calls_sync": "calls/s", "1_1_actor_calls_async": "calls/s",
    "single_client_put_calls": "puts/s", "single_client_get_calls": "gets/s",
    "single_client_put_gigabytes": "GB/s", "single_client_wait_1k_refs": "loops/s",
}
GOALS = {"single_client_tasks_sync": 10000, "single_client_tasks_async": 50000,
         "single_client_put_gigabytes": 5}
FLOORS = ("unix_pingpong_rt_us", "memcpy_gigabytes")


def main():
    global ROUNDS, ROUND_S
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds of 0.3 s")
    ap.add_argument("--json", help="also write the JSON line to this file")
    ap.add_argument("--no-c", action="store_true", help="skip the C benches")
    args = ap.parse_args()
    if args.quick:
        ROUNDS, ROUND_S = 3, 0.3
    kray.init()
    try:
        py = python_figures()
    finally:
        kray.shutdown()
    c = {} if args.no_c else c_figures(args.quick)
    print(f"bench_python: median of {ROUNDS} rounds x {ROUND_S:.1f} s, private krayd, "
          f"{os.cpu_count()} online CPUs, Python {sys.version.split()[0]}")
    print(f"  {'metric':30} {'python':>12} {'C API':>12}  {'unit':8} {'py/C':>6}  goal")
    for k, (med, _) in py.items():
        cv = c.get(k)
        ratio = f"{med / cv:6.2f}" if cv else "     -"
        goal = GOALS.get(k)
        g = "" if goal is None else (f">= {goal:g}: " + ("met" if med >= goal else "NOT met"))
        cs = f"{cv:12.1f}" if cv else f"{'-':>12}"
        print(f"  {k:30} {med:12.1f} {cs}  {UNITS[k]:8} {ratio}  {g}")
    for f in FLOORS:
        if f in c:
            print(f"  {f + ' (floor)':30} {'':>12} {c[f]:12.2f}")
    doc = {k: v[0] for k, v in py.items()}
    doc["rounds"] = {k: v[1] for k, v in py.items()}
    doc["c_api"] = {k: c[k] for k in list(UNITS) + list(FLOORS) if k in c}
    line = json.dumps(doc)
    print("JSON: " + line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: Apache-2.0
"""bench_dag.py - what kray.dag's execute() costs beside the same calls written with
.remote(), in the same krayd session (baseline: the hand-written .remote() calls).

    chain      N tasks, each taking the previous one's ref, then get of the last
    fan        one input task, N tasks on its ref, one task summing their refs
    actor      a chain of N calls of one existing actor (handle.method.bind)

Each graph is built once and executed --rounds times; the hand-written version submits
the same calls.  Medians of the time to submit (until execute() or the loop returns)
and of the whole (until the get returns).  The difference in submitting is execute()'s
walk of the graph (per node: a child scan and an argument replace), printed per node.

    PYTHONPATH=build/python python3 bench/bench_dag.py [--nodes N] [--rounds R] [--json F]
"""
import argparse
import json
import statistics
import time

import kray as ray
from kray.dag import InputNode


@ray.remote
def inc(x):
    return x + 1


@ray.remote
def total(*xs):
    return sum(xs)


@ray.remote
class Acc:
    def add(self, x):
        return x + 1


def timed(fn, rounds):
    """Medians of (submitting: until fn returns, the whole: until the get returns)."""
    sub, whole = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        ref = fn()
        sub.append(time.perf_counter() - t)
        ray.get(ref)
        whole.append(time.perf_counter() - t)
    return statistics.median(sub), statistics.median(whole)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", help="also write the JSON line to this file")
    a = ap.parse_args()
    n = a.nodes
    ray.init(num_cpus=2)
    h = Acc.remote()

    with InputNode() as inp:
        chain = inp
        for _ in range(n):
            chain = inc.bind(chain)
        first = inc.bind(inp)
        fan = total.bind(*[inc.bind(first) for _ in range(n)])
        calls = inp
        for _ in range(n):
            calls = h.add.bind(calls)

    def chain_remote():
        ref = 0
        for _ in range(n):
            ref = inc.remote(ref)
        return ref

    def fan_remote():
        f = inc.remote(0)
        return total.remote(*[inc.remote(f) for _ in range(n)])

    def actor_remote():
        ref = 0
        for _ in range(n):
            ref = h.add.remote(ref)
        return ref

    cases = {"chain": (lambda: chain.execute(0), chain_remote),
             "fan": (lambda: fan.execute(0), fan_remote),
             "actor": (lambda: calls.execute(0), actor_remote)}
    result = {}
    for name, (dag, hand) in cases.items():
        timed(dag, 1), timed(hand, 1)  # warm: blobs put, workers started
        (ds, d), (rs, r) = timed(dag, a.rounds), timed(hand, a.rounds)
        result[name] = {"execute_submit_ms": round(ds * 1e3, 2),
                        "remote_submit_ms": round(rs * 1e3, 2),
                        "execute_total_ms": round(d * 1e3, 2),
                        "remote_total_ms": round(r * 1e3, 2),
                        "per_node_us": round((ds - rs) / n * 1e6, 2)}
        print(f"{name:6} {n} nodes: submit: execute() {ds * 1e3:6.1f} ms, .remote() "
              f"{rs * 1e3:6.1f} ms ({(ds - rs) / n * 1e6:5.1f} us/node more); with the get: "
              f"{d * 1e3:6.1f} ms vs {r * 1e3:6.1f} ms (medians of {a.rounds})")
    line = json.dumps({"nodes": n, "rounds": a.rounds, **result})
    print("JSON: " + line)
    if a.json:
        with open(a.json, "w") as f:
            f.write(line + "\n")
    ray.shutdown()


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: Apache-2.0
"""bench_python.py - Ray's core microbenchmarks (python/ray/_private/ray_perf.py) on
kray's Python API, with the C API's figures for the same metrics beside them, measured
in the same run by the C benches (bench_tasks, bench_actors, bench_objects --quick), and
the machine's floors they report (a unix-socket ping-pong, a memcpy).

    single_client_tasks_sync     f.remote() then get, repeat
    single_client_tasks_async    1,000 f.remote(), then get them all
    1_1_actor_calls_sync         one actor: a.f.remote() then get, repeat
    1_1_actor_calls_async        one actor: 1,000 calls, then get them all
    1_1_async_actor_calls_async  one async actor (async def method): 1,000 calls, then
                                 get them all
    n_n_async_actor_calls_async  cpus/2 async actors (at least 1); 4 tasks each make
                                 5,000 calls spread over them and get them: calls/s
    single_client_put_calls      put(0)
    single_client_get_calls      get of the same small put object
    single_client_put_gigabytes  put of a 100 MiB numpy array (GB/s)
    single_client_wait_1k_refs   1,000 tasks, then wait() on what is not ready until
                                 nothing is (Ray's loop); rate of whole loops

The CPU each side spends per task of single_client_tasks_async (the driver, krayd, its
workers; /proc), which hardly depends on other load.  --async-only: just that metric.

--sync-only: single_client_tasks_sync and 1_1_actor_calls_sync alone, in --sessions
private krayd sessions (3), with the CPU per call of the driver (all its threads), krayd
and the workers (/proc, 20,000 calls each) and the Python ping-pong floor of the same
sessions (docs/fastpath.md, "Synchronous Python calls").

single_client_tasks_sync again, in alternating krayd sessions with the fast path on and
off (KRAY_FASTPATH=off: every call through krayd), and the driver's system calls per
call in each (strace -c, when strace is installed).

The same sessions measure 1_1_actor_calls_sync with the fast path on and off too, beside
the floor of a synchronous round trip between two Python processes (a 64-byte AF_UNIX
ping-pong) measured in each session.

Actor start (issue 16), in alternating krayd sessions with actor-adopt on (an idle pool
worker, its Python started, hosts the actor) and off (KRAY_ACTOR_ADOPT=off: a process
started for each actor, the baseline): create an actor, get its first call, kill it,
let the pool refill; the median in ms (--actor-start-only: just that).

Large objects (issue 14), each against its floor from the same krayd session, once with
krayd's default config (thp = auto: shmem transparent huge pages) and once with
--thp off (4 KiB pages, the figures before):
    put_gigabytes                kray.put of a 100 MiB numpy array (GB/s)
    memcpy_gigabytes             np.copyto of the same array into one already written
    first_read_gigabytes         a task sums its 800 MiB numpy argument, which another
                                 process wrote: the first full read (mapping and faults)
    mapped_read_gigabytes        the same task sums it again (memory already mapped)

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


@kray.remote
class AsyncActor:
    async def small_value(self):
        return b"ok"


@kray.remote
def call_actors(actors, n):
    kray.get([actors[i % len(actors)].small_value.remote() for i in range(n)])


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return 0.0
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now():
    """CPU seconds of (this driver, its private krayd, that krayd's workers), as
    bench_common.c's bench_cpu_now() counts them for the C benches."""
    me = os.times()
    kids = _children(os.getpid())
    return (me.user + me.system, sum(_cpu_s(k) for k in kids),
            sum(_cpu_s(w) for k in kids for w in _children(k)))


def async_cpu_per_task(n=200):
    """µs of CPU per task of single_client_tasks_async in the driver, krayd and the
    workers: n rounds of 1,000 (unlike the rate, hardly changed by other load)."""
    kray.get([small_value.remote() for _ in range(1000)])
    c0 = cpu_now()
    for _ in range(n):
        kray.get([small_value.remote() for _ in range(1000)])
    c1 = cpu_now()
    return {k: (b - a) / (n * 1000) * 1e6
            for k, a, b in zip(("driver", "krayd", "workers"), c0, c1)}


def sync_cpu_per_call(call, n=20000):
    """µs of CPU per synchronous call (call() is one .remote() and its get) in the
    driver, krayd and the workers, over n calls."""
    for _ in range(200):
        call()
    c0 = cpu_now()
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    dt = time.perf_counter() - t0
    c1 = cpu_now()
    out = {k: (b - a) / n * 1e6 for k, a, b in zip(("driver", "krayd", "workers"), c0, c1)}
    out["wall"] = dt / n * 1e6
    return out


def warm_actor():
    """After one task, an Actor whose worker takes fast calls (constructed, called 50
    times)."""
    kray.get(small_value.remote())
    a = Actor.remote()
    for _ in range(50):
        kray.get(a.small_value.remote())
    return a


def sync_figures(sessions=3):
    """single_client_tasks_sync and 1_1_actor_calls_sync in alternating rounds of
    sessions private krayd sessions, with the CPU each side spends per call (/proc) and
    the Python ping-pong floor of the same sessions."""
    rates = {"tasks": [], "actor": [], "pingpong": []}
    cpu = {"tasks": [], "actor": []}
    for _ in range(sessions):
        kray.init()
        try:
            a = warm_actor()
            task = lambda: kray.get(small_value.remote())  # noqa: E731
            call = lambda: kray.get(a.small_value.remote())  # noqa: E731
            for _ in range(max(2, ROUNDS // 2)):
                rates["tasks"].append(timeit_once(task, 1))
                rates["actor"].append(timeit_once(call, 1))
                rates["pingpong"].append(pingpong_once())
            cpu["tasks"].append(sync_cpu_per_call(task))
            cpu["actor"].append(sync_cpu_per_call(call))
        finally:
            kray.shutdown()
    med_cpu = {m: {k: statistics.median(c[k] for c in cs) for k in cs[0]}
               for m, cs in cpu.items()}
    return {m: (statistics.median(r), r) for m, r in rates.items()}, med_cpu


def python_figures():
    out = {}
    out["single_client_tasks_sync"] = timeit(lambda: kray.get(small_value.remote()))
    out["single_client_tasks_async"] = timeit(
        lambda: kray.get([small_value.remote() for _ in range(1000)]), 1000)
    cpu = async_cpu_per_task()
    a = Actor.remote()
    out["1_1_actor_calls_sync"] = timeit(lambda: kray.get(a.small_value.remote()))
    out["1_1_actor_calls_async"] = timeit(
        lambda: kray.get([a.small_value.remote() for _ in range(1000)]), 1000)
    aa = AsyncActor.remote()
    out["1_1_async_actor_calls_async"] = timeit(
        lambda: kray.get([aa.small_value.remote() for _ in range(1000)]), 1000)
    actors = [AsyncActor.remote() for _ in range(max(1, (os.cpu_count() or 2) // 2))]
    n, m = 5000, 4
    out["n_n_async_actor_calls_async"] = timeit(
        lambda: kray.get([call_actors.remote(actors, n) for _ in range(m)]), n * m)

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
    return out, cpu


def pingpong_once(n=5000):
    """Round trips per second of a 64-byte message between this process and a child over
    an AF_UNIX socketpair, both in Python: the floor of a synchronous call between two
    Python processes."""
    import socket
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        a.close()
        try:
            while True:
                m = b.recv(64)
                if not m:
                    break
                b.sendall(m)
        finally:
            os._exit(0)
    b.close()
    msg = b"x" * 64
    for _ in range(100):
        a.sendall(msg)
        a.recv(64)
    t0 = time.perf_counter()
    for _ in range(n):
        a.sendall(msg)
        a.recv(64)
    dt = time.perf_counter() - t0
    a.close()
    os.waitpid(pid, 0)
    return n / dt


def sync_fastpath_figures(sessions=3):
    """single_client_tasks_sync and 1_1_actor_calls_sync with krayd's fast path on and off
    (KRAY_FASTPATH=off for krayd and the driver: every call through krayd), in alternating
    private krayd sessions of the same run, and the Python ping-pong floor in each:
    {"on": (median, rates), "off": ..., "actor_on": ..., "actor_off": ...,
    "pingpong": ...}, and the driver's system calls per task in each mode when strace is
    there."""
    rates = {"on": [], "off": [], "actor_on": [], "actor_off": [], "pingpong": []}
    calls = {}
    for mode in alternating_sessions("KRAY_FASTPATH", sessions):
        a = warm_actor()
        for _ in range(max(2, ROUNDS // 2)):
            rates[mode].append(timeit_once(lambda: kray.get(small_value.remote()), 1))
            rates["actor_" + mode].append(
                timeit_once(lambda: kray.get(a.small_value.remote()), 1))
            rates["pingpong"].append(pingpong_once())
        if mode not in calls:
            calls[mode] = syscalls_per_call()
            calls["actor_" + mode] = syscalls_per_call(
                call=lambda: kray.get(a.small_value.remote()))
    out = {m: (statistics.median(r), r) for m, r in rates.items()}
    return out, calls


def alternating_sessions(env, sessions):
    """Private krayd sessions, the setting named by env "on" (unset) and "off" in turn,
    sessions times each: yields the mode with kray initialized, and shuts it down."""
    for _ in range(sessions):
        for mode in ("on", "off"):
            if mode == "off":
                os.environ[env] = "off"
            kray.init()
            try:
                yield mode
            finally:
                kray.shutdown()
                os.environ.pop(env, None)


def actor_start_figures(sessions=3, starts=10):
    """Actor start in ms, with actor-adopt on and off in alternating private krayd
    sessions: {"on": (median, per-start), "off": ...}."""
    times = {"on": [], "off": []}
    for mode in alternating_sessions("KRAY_ACTOR_ADOPT", sessions):
        kray.get(small_value.remote())
        for i in range(starts + 1):  # the first warms up
            time.sleep(0.5)  # the pool (re)filled, its Python started
            t0 = time.perf_counter()
            a = Actor.remote()
            kray.get(a.small_value.remote())
            dt = (time.perf_counter() - t0) * 1e3
            kray.kill(a)
            if i:
                times[mode].append(dt)
    return {m: (statistics.median(t), t) for m, t in times.items()}


def syscalls_per_call(n=2000, call=None):
    """System calls the driver (all its threads) makes per sync task (or call()), by
    strace -c, or None without strace.  Timing under strace is not a figure: only the
    counts."""
    import shutil
    if not shutil.which("strace"):
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as f:
        p = subprocess.Popen(["strace", "-f", "-c", "-o", f.name, "-p", str(os.getpid())],
                             stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached
        for _ in range(n):
            if call is None:
                kray.get(small_value.remote())
            else:
                call()
        p.terminate()
        p.wait()
        counts = {}
        for line in f.read().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                counts[parts[-1]] = int(parts[3]) / n
    return counts


@kray.remote
def read_twice(a):
    """Sums a (an argument this process did not write) twice: seconds of each full read."""
    t0 = time.perf_counter()
    s1 = int(a.sum())
    t1 = time.perf_counter()
    s2 = int(a.sum())
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, s1 == s2 and not a.flags.writeable


def large_figures(thp):
    """Puts and first reads of large objects against a krayd with thp auto or off."""
    kray.init(_krayd_args=["--store-size", "3G"] + ([] if thp else ["--thp", "off"]))
    out = {}
    try:
        # kray_stats.store_huge: 1 = shmem THP (docs/objects.md)
        out["store_huge"] = kray._kray.status()["store_huge"], []
        arr = np.ones(100 * 2**20 // 8, dtype=np.int64)
        dst = np.zeros_like(arr)
        gb = arr.nbytes / 1e9
        # Interleaved rounds: the floor and the puts see the same noise.
        floor, puts = [], []
        kray.put(arr)
        for _ in range(ROUNDS):
            floor.append(timeit_once(lambda: np.copyto(dst, arr), gb))
            puts.append(timeit_once(lambda: kray.put(arr), gb))
        out["memcpy_gigabytes"] = statistics.median(floor), floor
        out["put_gigabytes"] = statistics.median(puts), puts
        dst = None  # its 100 MiB freed before the 800 MiB object
        big = np.arange(800 * 2**20 // 8, dtype=np.int64)
        gb = big.nbytes / 1e9
        kray.get(read_twice.remote(kray.put(big)))  # warm-up: a worker, the code, the memory
        first, mapped = [], []
        for _ in range(max(3, ROUNDS - 2)):
            ref = kray.put(big)
            t_first, t_mapped, ok = kray.get(read_twice.remote(ref))
            if not ok:
                raise SystemExit("read_twice: the sums differ, or the argument is writable")
            first.append(gb / t_first)
            mapped.append(gb / t_mapped)
            del ref
        out["first_read_gigabytes"] = statistics.median(first), first
        out["mapped_read_gigabytes"] = statistics.median(mapped), mapped
    finally:
        kray.shutdown()
    return out


def timeit_once(fn, multiplier):
    """Rate of fn (x multiplier per second) over one round of ~ROUND_S."""
    n = 0
    t0 = time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= ROUND_S:
            return n * multiplier / dt


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
    "1_1_async_actor_calls_async": "calls/s", "n_n_async_actor_calls_async": "calls/s",
    "single_client_put_calls": "puts/s", "single_client_get_calls": "gets/s",
    "single_client_put_gigabytes": "GB/s", "single_client_wait_1k_refs": "loops/s",
}
GOALS = {"single_client_tasks_sync": 10000, "single_client_tasks_async": 50000,
         "1_1_actor_calls_sync": 20000,
         "1_1_async_actor_calls_async": 50000, "n_n_async_actor_calls_async": 50000,
         "single_client_put_gigabytes": 5}
FLOORS = ("unix_pingpong_rt_us", "memcpy_gigabytes")


def main():
    global ROUNDS, ROUND_S
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds of 0.3 s")
    ap.add_argument("--json", help="also write the JSON line to this file")
    ap.add_argument("--no-c", action="store_true", help="skip the C benches")
    ap.add_argument("--fastpath-only", action="store_true",
                    help="only single_client_tasks_sync with the fast path on and off")
    ap.add_argument("--sync-only", action="store_true",
                    help="only the synchronous rows, with CPU per call on each side")
    ap.add_argument("--sessions", type=int, default=3,
                    help="krayd sessions of --sync-only (default 3)")
    ap.add_argument("--async-only", action="store_true",
                    help="only single_client_tasks_async and its CPU per task")
    ap.add_argument("--actor-start-only", action="store_true",
                    help="only actor start with actor-adopt on and off")
    args = ap.parse_args()
    if args.quick:
        ROUNDS, ROUND_S = 3, 0.3
    if args.actor_start_only:
        st = actor_start_figures(5)
        for m, (med, t) in st.items():
            print(f"actor start, Python, actor-adopt {m:3}: {med:7.1f} ms "
                  f"(of {len(t)}: {', '.join(f'{x:.0f}' for x in t)})")
        print(f"off/on {st['off'][0] / st['on'][0]:.2f}")
        print("JSON: " + json.dumps({"actor_start_ms": {m: v[0] for m, v in st.items()},
                                     "starts_ms": {m: v[1] for m, v in st.items()}}))
        return
    if args.async_only:
        kray.init()
        try:
            med, r = timeit(lambda: kray.get([small_value.remote() for _ in range(1000)]),
                            1000)
            cpu = async_cpu_per_task()
        finally:
            kray.shutdown()
        print(f"single_client_tasks_async: {med:9.1f} tasks/s "
              f"(rounds {', '.join(f'{x:.0f}' for x in r)})")
        print("CPU per task: " + " + ".join(f"{v:.2f} {k}" for k, v in cpu.items()) +
              f" = {sum(cpu.values()):.2f} us")
        print("JSON: " + json.dumps({"single_client_tasks_async": med, "rounds": r,
                                     "cpu_us_per_task": cpu}))
        return
    if args.sync_only:
        rates, cpu = sync_figures(args.sessions)
        names = {"tasks": "single_client_tasks_sync", "actor": "1_1_actor_calls_sync",
                 "pingpong": "python ping-pong (floor)"}
        for m, (med, r) in rates.items():
            print(f"{names[m]:28}: {med:9.1f} calls/s "
                  f"(rounds {', '.join(f'{x:.0f}' for x in r)})")
        for m, c in cpu.items():
            print(f"CPU per call, {names[m]}: " + " + ".join(
                f"{c[k]:.2f} {k}" for k in ("driver", "krayd", "workers")) +
                f" = {c['driver'] + c['krayd'] + c['workers']:.2f} us "
                f"(wall {c['wall']:.2f} us)")
        print("JSON: " + json.dumps({"sync": {m: v[0] for m, v in rates.items()},
                                     "rounds": {m: v[1] for m, v in rates.items()},
                                     "cpu_us_per_call": cpu}))
        return
    if args.fastpath_only:
        fast, fast_calls = sync_fastpath_figures(5)
        for m, (med, r) in fast.items():
            what = ("python ping-pong floor   " if m == "pingpong" else
                    f"1_1_actor_calls_sync, {m[6:]:3}" if m.startswith("actor_") else
                    f"single_client_tasks_sync, {m:3}")
            print(f"{what}: {med:9.1f} calls/s (rounds {', '.join(f'{x:.0f}' for x in r)})")
        print(f"tasks on/off {fast['on'][0] / fast['off'][0]:.2f}, actor calls on/off "
              f"{fast['actor_on'][0] / fast['actor_off'][0]:.2f}, actor calls on / floor "
              f"{fast['actor_on'][0] / fast['pingpong'][0]:.2f}")
        for m, counts in fast_calls.items():
            if counts:
                print(f"driver syscalls per call, {m}: {sum(counts.values()):.2f} "
                      f"{ {k: round(v, 2) for k, v in counts.items() if v >= 0.01} }")
        line = json.dumps({"tasks_sync_fastpath": {m: v[0] for m, v in fast.items()},
                           "rounds": {m: v[1] for m, v in fast.items()},
                           "syscalls": fast_calls})
        print("JSON: " + line)
        return
    kray.init()
    try:
        py, cpu = python_figures()
    finally:
        kray.shutdown()
    fast, fast_calls = sync_fastpath_figures()
    starts = actor_start_figures()
    large = {"thp_off": large_figures(False), "thp_auto": large_figures(True)}
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
    print("  CPU per task of single_client_tasks_async (/proc): " +
          " + ".join(f"{v:.2f} {k}" for k, v in cpu.items()) + f" = {sum(cpu.values()):.2f} us")
    print("  single_client_tasks_sync, alternating krayd sessions with the fast path on and "
          "off (docs/fastpath.md):")
    print(f"  {'fast path on':30} {fast['on'][0]:12.1f}  tasks/s")
    print(f"  {'fast path off (krayd)':30} {fast['off'][0]:12.1f}  tasks/s  "
          f"on/off {fast['on'][0] / fast['off'][0]:.2f}")
    print(f"  {'1_1_actor_calls_sync, on':30} {fast['actor_on'][0]:12.1f}  calls/s")
    print(f"  {'1_1_actor_calls_sync, off':30} {fast['actor_off'][0]:12.1f}  calls/s  "
          f"on/off {fast['actor_on'][0] / fast['actor_off'][0]:.2f}")
    print(f"  {'python ping-pong (floor)':30} {fast['pingpong'][0]:12.1f}  round trips/s")
    for mode, counts in fast_calls.items():
        if counts:
            total = sum(counts.values())
            top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(counts.items(),
                                                            key=lambda kv: -kv[1])[:6])
            print(f"  driver syscalls per call, {mode:3}: {total:.2f} ({top})")
    print(f"  {'actor start, adopt':30} {starts['on'][0]:12.1f}  ms")
    print(f"  {'actor start, fresh process':30} {starts['off'][0]:12.1f}  ms  "
          f"off/on {starts['off'][0] / starts['on'][0]:.2f}")
    print("  large objects, Python (GB/s; ratio over the floor of the same krayd session):")
    print(f"  {'metric':30} {'thp off':>12} {'thp auto':>12}  {'off/floor':>9} {'auto/floor':>10}")
    for k, fl in (("put_gigabytes", "memcpy_gigabytes"), ("memcpy_gigabytes", None),
                  ("first_read_gigabytes", "mapped_read_gigabytes"),
                  ("mapped_read_gigabytes", None)):
        off, on = large["thp_off"][k][0], large["thp_auto"][k][0]
        r = (f"{off / large['thp_off'][fl][0]:9.2f} {on / large['thp_auto'][fl][0]:10.2f}"
             if fl else f"{'(floor)':>9} {'(floor)':>10}")
        print(f"  {k:30} {off:12.2f} {on:12.2f}  {r}")
    print(f"  {'store_huge (kray status)':30} {large['thp_off']['store_huge'][0]:12d} "
          f"{large['thp_auto']['store_huge'][0]:12d}  (1: shmem THP)")
    doc = {k: v[0] for k, v in py.items()}
    doc["rounds"] = {k: v[1] for k, v in py.items()}
    for mode, figs in large.items():
        doc[f"large_{mode}"] = {k: v[0] for k, v in figs.items()}
        doc[f"large_{mode}"]["put_vs_memcpy"] = (figs["put_gigabytes"][0] /
                                                 figs["memcpy_gigabytes"][0])
        doc[f"large_{mode}"]["first_vs_mapped_read"] = (figs["first_read_gigabytes"][0] /
                                                       figs["mapped_read_gigabytes"][0])
        doc["rounds"][f"large_{mode}"] = {k: v[1] for k, v in figs.items()}
    doc["cpu_us_per_task"] = {"single_client_tasks_async": cpu}
    doc["tasks_sync_fastpath"] = {m: v[0] for m, v in fast.items()}
    doc["actor_start_ms"] = {m: v[0] for m, v in starts.items()}
    doc["tasks_sync_fastpath_syscalls"] = fast_calls
    doc["rounds"]["tasks_sync_fastpath"] = {m: v[1] for m, v in fast.items()}
    doc["c_api"] = {k: c[k] for k in list(UNITS) + list(FLOORS) if k in c}
    line = json.dumps(doc)
    print("JSON: " + line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()

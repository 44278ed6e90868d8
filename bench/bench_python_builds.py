# SPDX-License-Identifier: Apache-2.0
"""bench_python_builds.py - a synchronous Python call loop against two builds of kray, in
alternating private krayd sessions of the same run: the build a change was made in and
one from before it (a worktree at the earlier commit, built with `make all`).

    1_1_actor_calls_sync         a.f.remote() then get, repeat (the default)
    single_client_tasks_sync     f.remote() then get, repeat (--what task)

For each build: the median round (calls/s) and every round, how many of the calls went
on krayd's fast path (krayd's fast_tasks), and the CPU per call of the driver, the
callee's worker and krayd (/proc, medians over the sessions: the figure that depends
least on other load).  Beside them, in each session, the floor of a synchronous round
trip between two Python processes (bench_python.py pingpong_once).  Prints a table and
one JSON line.

    python3 bench/bench_python_builds.py --before ../wt-old/build [--sessions 8]
    (--after defaults to this tree's build)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _env(build):
    e = dict(os.environ)
    e.update(KRAY_KRAYD=os.path.join(build, "bin", "krayd"),
             KRAY_WORKER=os.path.join(build, "bin", "kray-worker"),
             KRAY_BIN=os.path.join(build, "bin"),
             KRAY_TEST_CODE_PATH=os.path.join(build, "tests"),
             PYTHONPATH=os.path.join(build, "python"), PYTHONDONTWRITEBYTECODE="1")
    e.pop("KRAY_ADDRESS", None)
    return e


def _cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return 0.0
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _krayd_pid():
    """The private krayd kray.init() started: a child of this process."""
    me = os.getpid()
    for t in os.listdir(f"/proc/{me}/task"):
        try:
            with open(f"/proc/{me}/task/{t}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            continue
        for k in kids:
            try:
                with open(f"/proc/{k}/comm") as f:
                    if f.read().startswith("krayd"):
                        return k
            except OSError:
                pass
    return None


def session(what, rounds, round_s):
    """One private krayd session of this build (run in a child process)."""
    import kray
    kray.init()

    @kray.remote
    class Actor:
        def small_value(self):
            return b"ok"

        def pid(self):
            return os.getpid()

    @kray.remote
    def small_value():
        return b"ok"

    @kray.remote
    def pid():
        return os.getpid()

    if what == "actor":
        a = Actor.remote()
        call = lambda: kray.get(a.small_value.remote())  # noqa: E731
        callee = kray.get(a.pid.remote())
    else:
        call = lambda: kray.get(small_value.remote())  # noqa: E731
        callee = kray.get(pid.remote())
    for _ in range(100):  # an actor's worker takes fast calls once constructed
        call()
    kpid = _krayd_pid()

    def me():
        t = os.times()
        return t.user + t.system

    s0 = kray._kray.status()
    c0 = (me(), _cpu_s(callee), _cpu_s(kpid) if kpid else 0.0)
    rates, n = [], 0
    for _ in range(rounds):
        k = 0
        t0 = time.perf_counter()
        while True:
            call()
            k += 1
            dt = time.perf_counter() - t0
            if dt >= round_s:
                break
        rates.append(k / dt)
        n += k
    c1 = (me(), _cpu_s(callee), _cpu_s(kpid) if kpid else 0.0)
    time.sleep(0.05)
    s1 = kray._kray.status()
    kray.shutdown()
    return {"rates": rates, "calls": n, "fast": s1["fast_tasks"] - s0["fast_tasks"],
            "cpu_us": [(b - a) / n * 1e6 for a, b in zip(c0, c1)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the other build directory")
    ap.add_argument("--after", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--what", choices=("actor", "task"), default="actor")
    ap.add_argument("--sessions", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--round-s", type=float, default=0.7)
    ap.add_argument("--json", help="also write the JSON line to this file")
    ap.add_argument("--session", help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args()
    if args.session:
        print("RESULT " + json.dumps(session(args.session, args.rounds, args.round_s)))
        return
    builds = {"after": os.path.abspath(args.after), "before": os.path.abspath(args.before)}
    out = {b: {"rates": [], "fast": [], "calls": [], "cpu": []} for b in builds}
    floor = []
    for s in range(args.sessions):
        for b in (("before", "after") if s % 2 == 0 else ("after", "before")):
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--before", "-",
                                "--session", args.what, "--rounds", str(args.rounds),
                                "--round-s", str(args.round_s)], env=_env(builds[b]),
                               capture_output=True, text=True, timeout=600)
            line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
            if r.returncode or not line:
                sys.exit(f"{b} session failed: {r.stderr.strip()[-500:]}")
            d = json.loads(line[-1][7:])
            out[b]["rates"] += d["rates"]
            out[b]["fast"].append(d["fast"])
            out[b]["calls"].append(d["calls"])
            out[b]["cpu"].append(d["cpu_us"])
        r = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['x']; "
                            f"sys.path.insert(0, {HERE!r}); import bench_python as b; "
                            "print(b.pingpong_once())"], env=_env(builds["after"]),
                           capture_output=True, text=True, timeout=120)
        if r.returncode == 0:
            floor.append(float(r.stdout.split()[-1]))
    metric = "1_1_actor_calls_sync" if args.what == "actor" else "single_client_tasks_sync"
    print(f"bench_python_builds: {metric}, {args.sessions} alternating sessions x "
          f"{args.rounds} rounds x {args.round_s} s, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    doc = {"metric": metric}
    for b, o in out.items():
        cpu = [statistics.median(c[i] for c in o["cpu"]) for i in range(3)]
        share = [f / c for f, c in zip(o["fast"], o["calls"]) if c]
        med = statistics.median(o["rates"])
        print(f"  {b:6} median {med:9.0f} calls/s, rounds {min(o['rates']):.0f} to "
              f"{max(o['rates']):.0f}; fast {100 * min(share):.1f} to "
              f"{100 * max(share):.1f} % per session; CPU us per call: driver "
              f"{cpu[0]:.1f}, callee's worker {cpu[1]:.1f}, krayd {cpu[2]:.1f}")
        doc[b] = {"median": med, "rounds": o["rates"], "fast": o["fast"],
                  "calls": o["calls"], "cpu_us": dict(zip(("driver", "worker", "krayd"), cpu))}
    if floor:
        fm = statistics.median(floor)
        print(f"  python ping-pong floor median {fm:.0f} round trips/s "
              f"({min(floor):.0f} to {max(floor):.0f}); after/floor "
              f"{doc['after']['median'] / fm:.2f}")
        doc["pingpong"] = {"median": fm, "sessions": floor}
    print(f"  after/before {doc['after']['median'] / doc['before']['median']:.2f}")
    line = json.dumps(doc)
    print("JSON: " + line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmarks of kray's libraries (issue 16), each against its baseline in the same run:

  ppo_solve        time for PPO to solve CartPole-v0 (episode_reward_mean >= 195) with
                   num_workers rollout actors, and the same PPO loop in one process
                   (num_workers=0); samples per second collected by the rollouts
  es_solve         the same for ES (its rollouts need actors: 1 worker vs 2)
  tune_overhead    1,000 trials of a no-op function trainable with tune.run, against a
                   plain loop of 1,000 kray tasks

    PYTHONPATH=build/python python3 bench/bench_rllib.py [--trials 1000] [--rounds 3]
        [--envs 1,8] [--skip ppo,es,tune,cores] [--json out.json]

First, before kray starts, a core check: the same small numpy loop in one process and
in two at once (on two free cores each of the two takes as long as one alone; on two
hyperthreads of one core, or beside other load, longer: no parallel speedup can then
reach 2x).  Each configuration runs once untimed first (imports, first worker starts), then the
rounds rotate which configuration goes first; the figures are medians, with the load
average (1 min) at each round.  PPO runs three configurations: 2 rollout actors with the
value network trained in an actor of its own (kray_value_learner, the default), 2 rollout
actors with the whole learner in the driver, and the baseline, the same PPO loop in one
process (num_workers=0); for the first, the mean per-phase timers of the iterations the
value learner trained, for the others those of all iterations.  The *_cpu timers are CPU
time (time.process_time) of one process each, which the machine's load changes less than
the wall-clock ones: sample_cpu of the rollout workers' sample() calls (all workers
together), policy_sgd_cpu (the driver) and value_sgd_cpu (the value learner actor), or
sgd_cpu (the driver, both networks).  PPO runs once per --envs value (num_envs_per_worker, the same in
every configuration: vectorised stepping, one batched forward pass per step of all the
worker's envs).  The figures are printed, then as JSON (and written to --json).
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import kray
from kray import tune
from kray.rllib.agents.es import ESTrainer
from kray.rllib.agents.ppo import PPOTrainer

PPO_FAST = {"seed": 0, "lr": 3e-4, "num_sgd_iter": 6, "model": {"fcnet_hiddens": [64, 64]}}
ES_FAST = {"seed": 0, "episodes_per_batch": 50, "train_batch_size": 2000,
           "noise_size": 2_000_000, "model": {"fcnet_hiddens": [16]}, "eval_prob": 0.05,
           "stepsize": 0.05, "noise_stdev": 0.05}


def solve(cls, config, max_iter=100):
    t0 = time.perf_counter()
    trainer = cls(config, "CartPole-v0")
    t_start = time.perf_counter() - t0
    sample_s = steps = 0.0
    timers, split_iters, first_split = {}, 0, None
    all_timers = {}
    for _ in range(max_iter):
        r = trainer.train()
        n = r["timesteps_this_iter"]
        steps += n
        sample_s += n / r["sampler_perf"]["samples_per_s"]
        for k, v in r.get("timers", {}).items():
            all_timers[k] = all_timers.get(k, 0.0) + v
        if r["info"].get("value_learner_actor"):  # PPO's per-phase timers, split iterations
            split_iters += 1
            first_split = first_split or r["training_iteration"]
            for k, v in r["timers"].items():
                timers[k] = timers.get(k, 0.0) + v
        if r["episode_reward_mean"] >= 195:
            break
    trainer.stop()
    total = time.perf_counter() - t0
    return {"seconds": total, "iterations": r["training_iteration"], "load": os.getloadavg()[0],
            "s_per_iter": (total - t_start) / r["training_iteration"],
            "reward": r["episode_reward_mean"], "samples_per_s": steps / sample_s,
            "solved": r["episode_reward_mean"] >= 195, "start_s": t_start,
            "sample_s": sample_s, "other_s": total - t_start - sample_s,
            "value_learner_from_iteration": first_split,
            "split_timers_ms": {k: v / split_iters for k, v in timers.items()},
            "timers_ms": {k: v / r["training_iteration"] for k, v in all_timers.items()}}


_CORE_WORK = """
import time, numpy as np
a = np.random.rand(1, 64).astype(np.float32); w = np.random.rand(64, 64).astype(np.float32)
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(60000):
    a = np.tanh(a @ w) * 0.1
print(time.perf_counter() - t0, time.process_time() - c0)
"""


def core_check():
    """The same small numpy loop (a sampler's kind of work) in one process, then in two
    at once: on two cores of their own each of the two takes the time one alone does;
    on two hyperthreads of one core, or with other load, longer.  Run before kray starts.
    Returns (one alone, each of two at once) in CPU seconds, and wall seconds."""
    import subprocess

    def run(k):
        ps = [subprocess.Popen([sys.executable, "-c", _CORE_WORK], stdout=subprocess.PIPE,
                               text=True) for _ in range(k)]
        return [tuple(map(float, p.communicate()[0].split())) for p in ps]
    one, two = [], []
    for _ in range(2):
        one += run(1)
        two += run(2)
    med = statistics.median
    return {"one_cpu_s": med(c for _, c in one), "two_cpu_s": med(c for _, c in two),
            "one_wall_s": med(w for w, _ in one), "two_wall_s": med(w for w, _ in two)}


def cpu_bound(o, got, runs):
    """PPO's speedup per iteration from the CPU time of each phase, as if every process
    had a core of its own and nothing else cost anything: the baseline's sampling plus
    learning (one process), against the parallel run's critical path, its workers'
    sampling over the 2 workers plus the slower of the policy (driver) and value
    (actor) SGD.  Wall time against this bound shows what the coordination and the
    machine (other load, the VM's cores) take."""
    med = statistics.median
    base = got[runs[-1][0]]
    par = [p for p in got.get("parallel_2_workers", []) if p["split_timers_ms"]]
    if not par or not base or "sgd_cpu_ms" not in base[0]["timers_ms"]:
        return
    b = med(p["timers_ms"]["sample_cpu_ms"] + p["timers_ms"]["sgd_cpu_ms"] for p in base)
    t = [p["split_timers_ms"] for p in par]
    c = med(x["sample_cpu_ms"] / 2 + max(x["policy_sgd_cpu_ms"], x["value_sgd_cpu_ms"])
            for x in t)
    wall = med(x["sample_time_ms"] + x["learn_time_ms"] for x in t)
    bwall = med(p["timers_ms"]["sample_time_ms"] + p["timers_ms"]["learn_time_ms"]
                for p in base)
    o["cpu_bound_per_iteration"] = b / c
    print(f"  CPU time per iteration: one process {b:.0f} ms (sampling and SGD); 2 workers "
          f"+ value learner, critical path {c:.0f} ms (sampling / 2 + the slower SGD): "
          f"bound {b / c:.2f}x per iteration; wall {bwall:.0f} ms against {wall:.0f} ms "
          f"(sample_time + learn_time): {bwall / wall:.2f}x", flush=True)


def noop(config):
    tune.report(done=1)


@kray.remote
def noop_task(i):
    return i


def tune_overhead(n):
    d = tempfile.mkdtemp(prefix="bench-tune-")
    try:
        t0 = time.perf_counter()
        tune.run(noop, config={"i": tune.grid_search(list(range(n)))}, local_dir=d,
                 verbose=0)
        t_tune = time.perf_counter() - t0
    finally:
        shutil.rmtree(d, ignore_errors=True)
    t0 = time.perf_counter()
    for i in range(n):
        kray.get(noop_task.remote(i))
    t_seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    kray.get([noop_task.remote(i) for i in range(n)])
    t_par = time.perf_counter() - t0
    return {"trials": n, "tune_s": t_tune, "tasks_loop_s": t_seq, "tasks_batch_s": t_par,
            "tune_ms_per_trial": 1000 * t_tune / n,
            "overhead_ms_per_trial_vs_task_loop": 1000 * (t_tune - t_seq) / n}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated: ppo, es, tune, cores")
    ap.add_argument("--envs", default="1,8", help="PPO's num_envs_per_worker values")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    out = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    if "cores" not in skip:
        cc = out["core_check"] = core_check()
        print(f"cores: a numpy loop alone {cc['one_wall_s']:.2f} s wall, {cc['one_cpu_s']:.2f} s "
              f"CPU; two at once, each {cc['two_wall_s']:.2f} s wall, {cc['two_cpu_s']:.2f} s "
              f"CPU ({cc['two_wall_s'] / cc['one_wall_s']:.2f}x the wall time alone: 1.0x "
              f"on two free cores)", flush=True)
    kray.init(num_cpus=os.cpu_count())
    # (name, class, config, [(label, overrides)]): the first configuration is the
    # parallel one, the last the baseline; each is compared with the baseline.
    ppo_runs = [("parallel_2_workers", {"num_workers": 2}),
                ("parallel_2_workers_learner_in_driver",
                 {"num_workers": 2, "kray_value_learner": False}),
                ("baseline_0_workers", {"num_workers": 0})]
    algos = [(f"ppo_envs{n}" if n != 1 else "ppo", PPOTrainer,
              dict(PPO_FAST, num_envs_per_worker=n), ppo_runs)
             for n in map(int, filter(None, args.envs.split(",")))]
    algos.append(("es", ESTrainer, ES_FAST, [("parallel_2_workers", {"num_workers": 2}),
                                              ("baseline_1_workers", {"num_workers": 1})]))
    med = statistics.median
    for name, cls, cfg, runs in algos:
        if name.split("_")[0] in skip:
            continue
        got = {label: [] for label, _ in runs}
        # Untimed first: the imports (torch: seconds) and the first workers' start would
        # otherwise count against whichever runs first.
        for _, over in runs:
            t = cls(dict(cfg, **over), "CartPole-v0")
            t.train()
            t.stop()
        for i in range(args.rounds):  # rotating which goes first
            k = i % len(runs)
            for label, over in runs[k:] + runs[:k]:
                got[label].append(solve(cls, dict(cfg, **over)))
        base_label = runs[-1][0]
        seq = got[base_label]
        o = out[name] = {"config": cfg, **got,
                         "load": [p["load"] for lst in got.values() for p in lst]}
        # Amdahl: the baseline's sampling and the rest (learning) per iteration; with the
        # sampling exactly twice as fast and the rest as it is, the speedup per iteration
        # is at most this (the split value learner takes this bound away: it halves the
        # learning too).
        s1 = med(p["sample_s"] / p["iterations"] for p in seq)
        l1 = med(p["other_s"] / p["iterations"] for p in seq)
        o["learner_share_one_process"] = l1 / (s1 + l1)
        o["bound_2x_sampling"] = (s1 + l1) / (s1 / 2 + l1)
        print(f"{name} (load {min(o['load']):.1f} to {max(o['load']):.1f}, "
              f"{args.rounds} rounds, medians):", flush=True)
        for label, _ in runs:
            lst = got[label]
            line = (f"  {label}: solve {med(p['seconds'] for p in lst):.2f} s, "
                    f"{med(p['iterations'] for p in lst):.0f} iterations, "
                    f"{1000 * med(p['s_per_iter'] for p in lst):.0f} ms each, "
                    f"{med(p['samples_per_s'] for p in lst):,.0f} samples/s; start "
                    f"{med(p['start_s'] for p in lst):.2f} s, sampling "
                    f"{med(p['sample_s'] for p in lst):.2f} s, learning and the rest "
                    f"{med(p['other_s'] for p in lst):.2f} s")
            if label != base_label:
                sp = {"speedup": med(p["seconds"] for p in seq) /
                      med(p["seconds"] for p in lst),
                      "per_iteration_speedup": med(p["s_per_iter"] for p in seq) /
                      med(p["s_per_iter"] for p in lst),
                      "sampling_speedup": med(p["samples_per_s"] for p in lst) /
                      med(p["samples_per_s"] for p in seq)}
                o[label + "_speedups"] = sp
                line += (f"\n    vs {base_label}: {sp['speedup']:.2f}x solve, "
                         f"{sp['per_iteration_speedup']:.2f}x per iteration, "
                         f"{sp['sampling_speedup']:.2f}x sampling")
            split = [p for p in lst if p["split_timers_ms"]]
            if split:
                keys = sorted(split[0]["split_timers_ms"])
                line += ("\n    value learner from iteration " +
                         str(med(p["value_learner_from_iteration"] for p in split)) +
                         "; per split iteration (ms): " + ", ".join(
                             f"{k[:-3]} {med(p['split_timers_ms'].get(k, 0) for p in split):.0f}"
                             for k in keys))
            if lst[0].get("timers_ms") and not split:
                keys = sorted(lst[0]["timers_ms"])
                line += "\n    per iteration (ms): " + ", ".join(
                    f"{k[:-3]} {med(p['timers_ms'].get(k, 0) for p in lst):.0f}"
                    for k in keys)
            print(line, flush=True)
        if "parallel_2_workers_speedups" in o:  # the figures of earlier versions
            o.update(o["parallel_2_workers_speedups"])
        print(f"  learning and the rest are {100 * o['learner_share_one_process']:.0f}% of "
              f"an iteration in one process: sampling alone twice as fast would give at "
              f"most {o['bound_2x_sampling']:.2f}x per iteration", flush=True)
        cpu_bound(o, got, runs)
    if "tune" not in skip:
        o = out["tune"] = tune_overhead(args.trials)
        print(f"tune: {o['trials']} no-op trials in {o['tune_s']:.1f} s "
              f"({o['tune_ms_per_trial']:.2f} ms/trial); a loop of {o['trials']} kray tasks "
              f"{o['tasks_loop_s']:.2f} s, submitted together {o['tasks_batch_s']:.2f} s; "
              f"overhead {o['overhead_ms_per_trial_vs_task_loop']:.2f} ms/trial", flush=True)
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1, default=str))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    kray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

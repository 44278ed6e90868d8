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
        [--envs 1,8] [--skip ppo,es,tune] [--json out.json]

Each algorithm runs once untimed first (imports, first worker starts), then the rounds
alternate which configuration goes first; the figures are medians, with the load average
(1 min) at each round.  PPO runs once per --envs value (num_envs_per_worker, the same in
both configurations: vectorised stepping, one batched forward pass per step of all the
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
    for _ in range(max_iter):
        r = trainer.train()
        n = r["timesteps_this_iter"]
        steps += n
        sample_s += n / r["sampler_perf"]["samples_per_s"]
        if r["episode_reward_mean"] >= 195:
            break
    trainer.stop()
    total = time.perf_counter() - t0
    return {"seconds": total, "iterations": r["training_iteration"], "load": os.getloadavg()[0],
            "s_per_iter": (total - t_start) / r["training_iteration"],
            "reward": r["episode_reward_mean"], "samples_per_s": steps / sample_s,
            "solved": r["episode_reward_mean"] >= 195, "start_s": t_start,
            "sample_s": sample_s, "other_s": total - t_start - sample_s}


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
    ap.add_argument("--skip", default="", help="comma-separated: ppo, es, tune")
    ap.add_argument("--envs", default="1,8", help="PPO's num_envs_per_worker values")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    kray.init(num_cpus=os.cpu_count())
    out = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    skip = set(filter(None, args.skip.split(",")))
    algos = [(f"ppo_envs{n}" if n != 1 else "ppo", PPOTrainer,
              dict(PPO_FAST, num_envs_per_worker=n), 0)
             for n in map(int, filter(None, args.envs.split(",")))]
    algos.append(("es", ESTrainer, ES_FAST, 1))
    for name, cls, cfg, base in algos:
        if name.split("_")[0] in skip:
            continue
        par, seq = [], []
        # Untimed first: the imports (torch: seconds) and the first workers' start would
        # otherwise count against whichever runs first.
        for nw in (2, base):
            t = cls(dict(cfg, num_workers=nw), "CartPole-v0")
            t.train()
            t.stop()
        for i in range(args.rounds):  # alternating which goes first
            runs = [(par, 2), (seq, base)]
            for lst, nw in (runs if i % 2 == 0 else runs[::-1]):
                lst.append(solve(cls, dict(cfg, num_workers=nw)))
        med = statistics.median
        out[name] = {"config": cfg, "parallel_2_workers": par, f"baseline_{base}_workers": seq,
                     "load": [p["load"] for p in par + seq],
                     "speedup": med(p["seconds"] for p in seq) / med(p["seconds"] for p in par),
                     "per_iteration_speedup": med(p["s_per_iter"] for p in seq) /
                     med(p["s_per_iter"] for p in par),
                     "sampling_speedup": med(p["samples_per_s"] for p in par) /
                     med(p["samples_per_s"] for p in seq)}
        # Amdahl: the baseline's sampling and the rest (learning) per iteration; with the
        # sampling exactly twice as fast and the rest as it is, the speedup per iteration
        # is at most this.
        s1 = med(p["sample_s"] / p["iterations"] for p in seq)
        l1 = med(p["other_s"] / p["iterations"] for p in seq)
        out[name]["learner_share_one_process"] = l1 / (s1 + l1)
        out[name]["bound_2x_sampling"] = (s1 + l1) / (s1 / 2 + l1)
        print(f"{name} (load {min(out[name]['load']):.1f} to {max(out[name]['load']):.1f}): "
              f"solve {med(p['seconds'] for p in par):.1f} s with 2 rollout actors "
              f"({med(p['samples_per_s'] for p in par):,.0f} samples/s) vs "
              f"{med(p['seconds'] for p in seq):.1f} s with {base} "
              f"({med(p['samples_per_s'] for p in seq):,.0f} samples/s): "
              f"{out[name]['speedup']:.2f}x, per iteration "
              f"{out[name]['per_iteration_speedup']:.2f}x, sampling "
              f"{out[name]['sampling_speedup']:.2f}x; learning and the rest are "
              f"{100 * out[name]['learner_share_one_process']:.0f}% of an iteration in one "
              f"process, so sampling twice as fast gives at most "
              f"{out[name]['bound_2x_sampling']:.2f}x per iteration", flush=True)
        for label, runs in (("2 actors", par), (f"{base} workers", seq)):
            print(f"  {label}: start {med(p['start_s'] for p in runs):.1f} s, sampling "
                  f"{med(p['sample_s'] for p in runs):.1f} s, learning and the rest "
                  f"{med(p['other_s'] for p in runs):.1f} s, "
                  f"{1000 * med(p['s_per_iter'] for p in runs):.0f} ms per iteration, "
                  f"{med(p['iterations'] for p in runs):.0f} iterations", flush=True)
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

# SPDX-License-Identifier: Apache-2.0
"""Evolution Strategies (Salimans et al. 2017; RLlib's ES): the rollout actors evaluate
antithetic perturbations theta +/- noise_stdev * eps of a deterministic policy; eps are
slices of one shared noise table, put in the object store once and read by every worker
without a copy; the driver combines the centered ranks of the returns into a gradient
step (Adam, stepsize, l2_coeff)."""
import copy
import math
import time
from collections import deque

import numpy as np

import kray

from ..env import make_env
from ..models import mlp_forward
from ...tune._run import register_trainable
from .algorithm import COMMON_CONFIG, Trainer, worker_cpus
from .ppo import AlgorithmConfig

DEFAULT_CONFIG = dict(copy.deepcopy(COMMON_CONFIG), **{
    "num_workers": 2,
    "noise_stdev": 0.02,
    "episodes_per_batch": 1000,
    "train_batch_size": 10000,
    "eval_prob": 0.003,
    "return_proc_mode": "centered_rank",
    "stepsize": 0.01,
    "l2_coeff": 0.005,
    "noise_size": 25_000_000,
    "report_length": 10,
    "action_noise_std": 0.0,
})


def _shapes(obs_dim, n_act, hiddens):
    sizes = [obs_dim] + list(hiddens) + [n_act]
    return [((a, b), (b,)) for a, b in zip(sizes[:-1], sizes[1:])]


def _unflat(theta, shapes):
    out, i = [], 0
    for ws, bs in shapes:
        n = ws[0] * ws[1]
        W = theta[i:i + n].reshape(ws)
        i += n
        b = theta[i:i + bs[0]]
        i += bs[0]
        out.append((W, b))
    return out


def _centered_ranks(x):
    ranks = np.empty(x.size, dtype=np.float32)
    ranks[x.ravel().argsort()] = np.arange(x.size, dtype=np.float32)
    return (ranks.reshape(x.shape) / (x.size - 1)) - 0.5


class ESWorker:
    def __init__(self, env, env_config, model, shapes, noise, seed, index):
        self.env = make_env(env, env_config)
        self.act = model["fcnet_activation"]
        self.shapes = shapes
        self.noise = noise  # a read-only view of the store's shared memory
        self.rng = np.random.default_rng(None if seed is None else seed * 1000 + index)
        self.dim = sum(w[0] * w[1] + b[0] for w, b in shapes)
        self.first = True
        self.seed = None if seed is None else seed * 1000 + index

    def ready(self):
        return True

    def episode(self, theta):
        layers = _unflat(theta, self.shapes)
        o, _ = self.env.reset(seed=self.seed if self.first else None)
        self.first = False
        total, n, done = 0.0, 0, False
        while not done:
            x = np.asarray(o, dtype=np.float32).reshape(1, -1)
            a = int(np.argmax(mlp_forward(layers, x, self.act)[0]))
            o, r, term, trunc, _ = self.env.step(a)
            total += r
            n += 1
            done = term or trunc
        return total, n

    def do_rollouts(self, theta, stdev, min_episodes, min_steps, eval_episodes):
        t0 = time.perf_counter()
        idx, rets, lens = [], [], []
        steps = 0
        evals = [self.episode(theta)[0] for _ in range(eval_episodes)]
        while len(rets) * 2 < min_episodes or steps < min_steps:
            i = int(self.rng.integers(0, len(self.noise) - self.dim + 1))
            eps = self.noise[i:i + self.dim]
            rp, lp = self.episode(theta + stdev * eps)
            rn, ln = self.episode(theta - stdev * eps)
            idx.append(i)
            rets.append((rp, rn))
            lens.append((lp, ln))
            steps += lp + ln
        return {"idx": idx, "returns": rets, "lengths": lens, "eval": evals,
                "time": time.perf_counter() - t0}


class ESTrainer(Trainer):
    """ES on the rollout actors: ESTrainer(config, "CartPole-v0").train()."""

    _name = "ES"
    _default_config = DEFAULT_CONFIG

    def setup(self, config):
        c = self.config = self._pre_config
        from ..env import EnvError
        if c["env"] is None:
            raise EnvError("ES needs an env: config['env'] = 'CartPole-v0'")
        if c["return_proc_mode"] not in ("centered_rank", "raw"):
            raise ValueError("return_proc_mode must be 'centered_rank' or 'raw'")
        if c["num_workers"] < 1:
            raise ValueError("ES needs num_workers >= 1 (its rollouts run on actors)")
        from ...tune.registry import _env_creator
        env = c["env"]
        if isinstance(env, str) and _env_creator(env) is not None:
            env = _env_creator(env)
        probe = make_env(env, c["env_config"])
        if not hasattr(probe.action_space, "n"):
            raise EnvError("kray's ES supports discrete action spaces only")
        self.obs_dim = int(np.prod(probe.observation_space.shape))
        self.num_actions = int(probe.action_space.n)
        self.shapes = _shapes(self.obs_dim, self.num_actions, c["model"]["fcnet_hiddens"])
        dim = sum(w[0] * w[1] + b[0] for w, b in self.shapes)
        rng = np.random.default_rng(c["seed"])
        # normc-like initial weights, small last layer
        parts = []
        for k, (ws, bs) in enumerate(self.shapes):
            W = rng.standard_normal(ws).astype(np.float32)
            W *= (0.01 if k == len(self.shapes) - 1 else 1.0) / np.sqrt((W ** 2).sum(0))
            parts += [W.ravel(), np.zeros(bs, np.float32)]
        self.theta = np.concatenate(parts)
        if c["noise_size"] < dim * 2:
            raise ValueError(f"noise_size ({c['noise_size']}) must be at least twice the "
                             f"number of weights ({dim})")
        noise = np.random.default_rng(123).standard_normal(c["noise_size"],
                                                           dtype=np.float32)
        self.noise_ref = kray.put(noise)  # written once; the workers map it
        self.noise = kray.get(self.noise_ref)
        cls = kray.remote(ESWorker).options(num_cpus=worker_cpus(c))
        self.workers = [cls.remote(env, c["env_config"], c["model"], self.shapes,
                                   self.noise_ref, c["seed"], i + 1)
                        for i in range(c["num_workers"])]
        kray.get([w.ready.remote() for w in self.workers])
        self.m = np.zeros_like(self.theta)
        self.v = np.zeros_like(self.theta)
        self.t = 0
        self.evals = deque(maxlen=max(1, c["report_length"]) * c["num_workers"])
        self.episodes = deque(maxlen=c["metrics_num_episodes_for_smoothing"])
        self.timesteps = 0

    def step(self):
        c = self.config
        n = len(self.workers)
        t0 = time.perf_counter()
        theta_ref = kray.put(self.theta)
        eval_eps = max(1, int(round(c["eval_prob"] * c["episodes_per_batch"] / n)))
        outs = kray.get([w.do_rollouts.remote(
            theta_ref, c["noise_stdev"], math.ceil(c["episodes_per_batch"] / n),
            math.ceil(c["train_batch_size"] / n), eval_eps) for w in self.workers])
        t1 = time.perf_counter()
        idx = [i for o in outs for i in o["idx"]]
        rets = np.array([r for o in outs for r in o["returns"]], dtype=np.float32)
        lens = np.array([x for o in outs for x in o["lengths"]])
        proc = _centered_ranks(rets) if c["return_proc_mode"] == "centered_rank" else rets
        weights = proc[:, 0] - proc[:, 1]
        dim = self.theta.size
        g = np.zeros(dim, dtype=np.float32)
        for w, i in zip(weights, idx):
            g += w * self.noise[i:i + dim]
        g /= rets.size
        # Adam on -g + l2 * theta (RLlib's optimizers.Adam)
        grad = -g + c["l2_coeff"] * self.theta
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        self.m = b1 * self.m + (1 - b1) * grad
        self.v = b2 * self.v + (1 - b2) * grad * grad
        a = c["stepsize"] * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        self.theta = (self.theta - a * self.m / (np.sqrt(self.v) + eps)).astype(np.float32)
        steps = int(lens.sum())
        self.timesteps += steps
        for o in outs:
            self.evals.extend(o["eval"])
        self.episodes.extend(rets.ravel().tolist())
        ev = list(self.evals)
        return {"episode_reward_mean": float(np.mean(ev)),
                "episode_reward_min": float(np.min(ev)),
                "episode_reward_max": float(np.max(ev)),
                "episode_len_mean": float(lens.mean()),
                "episodes_this_iter": int(rets.size),
                "timesteps_this_iter": steps,
                "info": {"weights_norm": float(np.linalg.norm(self.theta)),
                         "grad_norm": float(np.linalg.norm(g)),
                         "noisy_return_mean": float(rets.mean()),
                         "update_ratio": float(np.linalg.norm(a * self.m) /
                                               max(np.linalg.norm(self.theta), 1e-9))},
                "timers": {"rollouts_ms": 1000 * (t1 - t0),
                           "update_ms": 1000 * (time.perf_counter() - t1)},
                "sampler_perf": {"samples_per_s": steps / max(t1 - t0, 1e-9)}}

    def get_weights(self):
        return self.theta.copy()

    def set_weights(self, theta):
        self.theta = np.asarray(theta, dtype=np.float32).copy()

    def policy_logits(self, obs):
        return mlp_forward(_unflat(self.theta, self.shapes), obs,
                           self.config["model"]["fcnet_activation"])

    def compute_single_action(self, observation, explore=False, **kw):
        return super().compute_single_action(observation, explore=False)

    compute_action = compute_single_action

    def save_checkpoint(self, checkpoint_dir):
        return {"theta": self.theta, "m": self.m, "v": self.v, "t": self.t,
                "timesteps": self.timesteps}

    def load_checkpoint(self, ck):
        self.theta, self.m, self.v, self.t = ck["theta"], ck["m"], ck["v"], ck["t"]
        self.timesteps = ck["timesteps"]


ES = ESTrainer


class ESConfig(AlgorithmConfig):
    algo_class = ESTrainer


register_trainable("ES", ESTrainer)  # tune.run("ES")

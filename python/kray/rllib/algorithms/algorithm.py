# SPDX-License-Identifier: Apache-2.0
"""The algorithm base (RLlib's Trainer / Algorithm, a tune.Trainable), which drives the
rollout workers (evaluation/rollout_worker.py): kray actors that each step their own
copies of the env with the latest weights
(sent once per iteration through the object store) and return sample batches."""
import copy
import math
import time
from collections import deque

import numpy as np

import kray

from ...tune.trainable import Trainable
from ..env import EnvError, make_env
from ..evaluation.rollout_worker import RolloutWorker
from ..models import MODEL_DEFAULTS, check_model

COMMON_CONFIG = {
    "env": None,
    "env_config": {},
    "num_workers": 2,
    "num_envs_per_worker": 1,
    "num_cpus_per_worker": 1,
    "num_cpus_for_driver": 1,
    "num_gpus": 0,
    "rollout_fragment_length": 200,
    "batch_mode": "truncate_episodes",
    "train_batch_size": 4000,
    "gamma": 0.99,
    "lr": 0.0001,
    "model": dict(MODEL_DEFAULTS),
    "framework": "torch",
    "seed": None,
    "explore": True,
    "log_level": "WARN",
    "metrics_num_episodes_for_smoothing": 100,
    "min_time_s_per_iteration": None,
    "observation_filter": "NoFilter",
    "callbacks": None,
    "horizon": None,
    "disable_env_checking": False,
}


def merge_config(name, defaults, config):
    """defaults updated with config; an unknown key (at the top or in model) raises."""
    config = dict(config or {})
    unknown = sorted(k for k in config if k not in defaults)
    if unknown:
        raise ValueError(f"Unknown config parameter(s) {unknown} for {name}: see "
                         f"{name}'s DEFAULT_CONFIG for its {len(defaults)} keys")
    out = copy.deepcopy(defaults)
    for k, v in config.items():
        if k == "model" and v is not None:
            m = dict(MODEL_DEFAULTS)
            m.update(v)
            check_model(m)
            out[k] = m
        else:
            out[k] = v
    if out["framework"] not in ("torch", "numpy"):
        raise ValueError(f"kray's RLlib runs on PyTorch: framework={out['framework']!r} is "
                         "not available (use 'torch')")
    if out["num_gpus"]:
        raise ValueError("kray's RLlib learner runs on the CPU: num_gpus must be 0")
    if out["observation_filter"] != "NoFilter":
        raise ValueError("kray's RLlib has no observation filters: use 'NoFilter'")
    if out["batch_mode"] not in ("truncate_episodes", "complete_episodes"):
        raise ValueError("batch_mode must be 'truncate_episodes' or 'complete_episodes'")
    for k in ("num_workers", "num_envs_per_worker", "train_batch_size",
              "rollout_fragment_length"):
        if not isinstance(out[k], int) or out[k] < (0 if k == "num_workers" else 1):
            raise ValueError(f"{k} must be an integer >= {0 if k == 'num_workers' else 1}")
    return out


def _in_actor():
    try:
        return kray.get_runtime_context().get_actor_id() is not None
    except Exception:
        return False


def worker_cpus(config):
    """CPUs each rollout actor holds: num_cpus_per_worker, scaled down (with a warning)
    when the driver and the workers would not fit in the cluster together."""
    n = config["num_workers"]
    per = float(config["num_cpus_per_worker"])
    if n == 0:
        return per
    try:
        total = kray.cluster_resources().get("CPU", 0.0)
    except Exception:
        return per
    driver = float(config["num_cpus_for_driver"]) if _in_actor() else 0.0
    room = max(0.0, total - driver)
    if n * per > room + 1e-9:
        return math.floor(room / n * 100) / 100
    return per


class Trainer(Trainable):
    """An RLlib algorithm: Trainer(config, env) then train(), or tune.run(Trainer)."""

    _name = "Trainer"
    _default_config = COMMON_CONFIG

    def __init__(self, config=None, env=None, logger_creator=None, **kwargs):
        config = dict(config or {})
        if env is not None:
            config["env"] = env
        self._pre_config = merge_config(self._name, self._default_config, config)
        super().__init__(config, logger_creator, **kwargs)

    @classmethod
    def default_resource_request(cls, config):
        c = merge_config(cls._name, cls._default_config, config)
        total = kray.cluster_resources().get("CPU", 0.0) if kray.is_initialized() else 0.0
        extra = c["num_workers"] * float(c["num_cpus_per_worker"])
        if total:
            extra = min(extra, max(0.0, total - float(c["num_cpus_for_driver"])))
        return {"cpu": float(c["num_cpus_for_driver"]), "extra_cpu": extra}

    def setup(self, config):
        c = self.config = self._pre_config
        if c["env"] is None:
            raise EnvError(f"{self._name} needs an env: config['env'] = 'CartPole-v0' (or "
                           f"{self._name}(config, env='CartPole-v0'))")
        self.env_probe = make_env(c["env"], c["env_config"])
        space = self.env_probe.action_space
        if not hasattr(space, "n"):
            raise EnvError(f"kray's {self._name} supports discrete action spaces only; "
                           f"{c['env']} has {space}")
        self.obs_dim = int(np.prod(self.env_probe.observation_space.shape))
        self.num_actions = int(space.n)
        if c["seed"] is not None:
            np.random.seed(c["seed"])
        self.episodes = deque(maxlen=c["metrics_num_episodes_for_smoothing"])
        self.timesteps = 0
        self.validate()
        self.workers = []
        self._pending = None
        # A registered env travels to the workers as its creator (their registry is empty).
        from ...tune.registry import _env_creator
        env = c["env"]
        if isinstance(env, str) and _env_creator(env) is not None:
            env = _env_creator(env)
        self._worker_env = env
        worker_args = (env, c["env_config"], c["model"], c["seed"])
        if c["num_workers"] == 0:
            self.local_worker = RolloutWorker(*worker_args, 0, c["num_envs_per_worker"],
                                              *self.gae_params(),
                                              c["batch_mode"] == "complete_episodes")
        else:
            # The rollout actors start (a process each: Python, numpy, the worker's
            # module) while build() runs: the learner's torch import, at a driver's
            # first trainer, takes longer than their start.
            self.local_worker = None
            cls = kray.remote(RolloutWorker).options(num_cpus=worker_cpus(c))
            self.workers = [cls.remote(*worker_args, i + 1, c["num_envs_per_worker"],
                                       *self.gae_params(),
                                       c["batch_mode"] == "complete_episodes")
                            for i in range(c["num_workers"])]
        try:
            self.build()
        except BaseException:
            self.cleanup()
            raise
        if self.workers:
            try:
                kray.get([w.ready.remote() for w in self.workers])
            except Exception as e:
                self.cleanup()
                raise EnvError(f"the rollout workers could not start: {e}") from e

    def gae_params(self):
        return self.config["gamma"], 1.0

    def validate(self):
        """Checks the algorithm's settings before anything starts (ValueError)."""

    def build(self):
        """The learner (after validate(), while the rollout actors start)."""
        raise NotImplementedError

    def sample(self, weights, total):
        """total steps with these weights: stepped here with num_workers=0; else the
        batch start_sampling() began (right after the last update: the same weights), or
        one begun now.  Returns (batch, episodes, seconds the sampling took)."""
        t0 = time.perf_counter()
        if self.local_worker is not None:  # the same fragments, one after another
            frag = self._fragment()
            outs = [self.local_worker.sample(weights, min(frag, total))]
            done = outs[0]["steps"]
            while done < total:
                outs.append(self.local_worker.sample(None, min(frag, total - done)))
                done += outs[-1]["steps"]
        else:
            pending, self._pending = self._pending, None
            if pending is None or pending["total"] != total:
                pending = self.start_sampling(weights, total, keep=False)
            t0 = pending["t0"]
            outs = self._collect(pending)
        seconds = time.perf_counter() - t0
        batch = {k: np.concatenate([o["batch"][k] for o in outs]) for k in outs[0]["batch"]}
        eps = [e for o in outs for e in o["episodes"]]
        self.episodes.extend(eps)
        # CPU seconds the sample() calls took in the workers, all together
        self.sample_cpu_s = sum(o.get("cpu_s", 0.0) for o in outs)
        return batch, eps, seconds

    def start_sampling(self, weights, total, keep=True, more=()):
        """Sends the weights (one kray.put, read by every worker) and starts the workers
        on the next batch: each its share of total, in fragments (_fragment()), asked
        for in two calls per worker of half its fragments each (both sent at once, so
        that a worker never waits on the driver; RolloutWorker.sample() with a list:
        the same fragments as one call each, with 4 calls per iteration instead of 20
        for PPO's fast config).  The batch is the workers' fragments in a fixed order
        (worker, then fragment), so a seeded run is the same whatever the timing.
        keep: the next sample() takes this batch (PPO calls it as soon as the weights
        are updated, so the workers sample while the learner reports; the batch is
        on-policy: sampled with the weights it trains on).  more: refs (or values) the workers merge into the weights (PPO's
        value learner's result: the workers wait on it in krayd).  No-op with
        num_workers=0."""
        if self.local_worker is not None:
            return None
        t0 = time.perf_counter()
        ref = kray.put(weights)
        frag = self._fragment()
        nw = len(self.workers)
        todo = []
        for i, w in enumerate(self.workers):
            w.set_weights.remote(ref, *more)  # an actor runs its calls in order
            share = total // nw + (i < total % nw)
            frags = [min(frag, share - k) for k in range(0, share, frag)]
            half = (len(frags) + 1) // 2
            todo.append([frags[:half], frags[half:]] if len(frags) > 1 else [frags])
        pending = {"t0": t0, "total": total, "todo": todo, "refs": {}, "outs": {}}
        for _ in range(2):
            for i in range(nw):
                self._issue(pending, i)
        if keep:
            self._pending = pending
        return pending

    def _fragment(self):
        """Steps per sample() call: rollout_fragment_length of each env, as RLlib's, but
        at most half of each worker's share of train_batch_size, so that the workers
        finish together (RLlib's rollout_fragment_length="auto" sizes it the same way)."""
        c = self.config
        share = math.ceil(c["train_batch_size"] / (2 * max(1, c["num_workers"])))
        return max(1, min(c["rollout_fragment_length"] * c["num_envs_per_worker"], share))

    def _issue(self, pending, i):
        todo = pending["todo"][i]
        if todo:
            n = todo.pop(0)
            key = (i, len(pending["refs"]) + len(pending["outs"]))
            pending["refs"][self.workers[i].sample.remote(None, n)] = key

    def _collect(self, pending):
        refs = pending["refs"]
        while refs:
            done, _ = kray.wait(list(refs), num_returns=1)
            for r in done:
                key = refs.pop(r)
                pending["outs"][key] = kray.get(r)
                self._issue(pending, key[0])
        return [pending["outs"][k] for k in sorted(pending["outs"])]

    def drop_sampling(self):
        """Forgets a batch begun with weights that are no longer the trainer's."""
        self._pending = None

    def episode_metrics(self, eps):
        rets = [r for r, _ in self.episodes]
        lens = [n for _, n in self.episodes]
        nan = float("nan")
        return {"episode_reward_mean": float(np.mean(rets)) if rets else nan,
                "episode_reward_min": float(np.min(rets)) if rets else nan,
                "episode_reward_max": float(np.max(rets)) if rets else nan,
                "episode_len_mean": float(np.mean(lens)) if lens else nan,
                "episodes_this_iter": len(eps)}

    def cleanup(self):
        self._pending = None
        for w in getattr(self, "workers", []):
            try:
                kray.kill(w)
            except Exception:
                pass
        self.workers = []

    def compute_single_action(self, observation, state=None, prev_action=None,
                              prev_reward=None, info=None, policy_id="default_policy",
                              full_fetch=False, explore=None):
        obs = np.asarray(observation, dtype=np.float32).reshape(1, -1)
        if obs.shape[1] != self.obs_dim:
            raise ValueError(f"compute_action(): the observation has {obs.shape[1]} "
                             f"values, the env's have {self.obs_dim}")
        explore = self.config["explore"] if explore is None else explore
        logits = self.policy_logits(obs)[0]
        if explore:
            p = np.exp(logits - logits.max())
            p /= p.sum()
            return int(np.random.choice(len(p), p=p))
        return int(np.argmax(logits))

    compute_action = compute_single_action

    def evaluate(self, num_episodes=10):
        """Greedy episodes (explore=False) with the current weights."""
        w = RolloutWorker(self._worker_env, self.config["env_config"],
                          self.config["model"], self.config["seed"], 99, 1,
                          *self.gae_params())
        rets = w.rollout(self.get_weights(), num_episodes)
        return {"evaluation": {"episode_reward_mean": float(np.mean(rets)),
                               "episode_reward_min": float(np.min(rets)),
                               "episode_reward_max": float(np.max(rets))}}

    def __repr__(self):
        return f"{self._name}(env={self.config.get('env')!r})"

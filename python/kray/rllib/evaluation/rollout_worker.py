# SPDX-License-Identifier: Apache-2.0
"""The rollout workers (RLlib's RolloutWorker): each steps its own copies of the env with
the latest weights, in numpy, and returns sample batches with their advantages.  Its own
module, which imports numpy, the envs and the models only: a rollout actor's process
loads this module (its class's) and not the trainers' (kray.tune, PPO, ES), which took
about two thirds of its import time after numpy's."""
import math
import os
import time

import numpy as np

from ..models import NumpyPolicy
from ..env import make_env


def _log_softmax(logits):
    m = logits.max(axis=1, keepdims=True)
    z = logits - m
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


class RolloutWorker:
    """Steps num_envs copies of the env with the policy's weights; sample() returns a
    batch of steps with advantages (GAE) computed here, as RLlib's postprocessing."""

    def __init__(self, env, env_config, model, seed, index, num_envs, gamma, lam,
                 complete_episodes=False):
        self.envs = [make_env(env, env_config) for _ in range(num_envs)]
        self.index = index
        self.gamma, self.lam = gamma, lam
        self.model = model
        self.complete = complete_episodes
        base = None if seed is None else seed * 1000 + index * 100
        self.rng = np.random.default_rng(base)
        self.obs = []
        for k, e in enumerate(self.envs):
            o, _ = e.reset(seed=None if base is None else base + k)
            self.obs.append(np.asarray(o, dtype=np.float32).reshape(-1))
        self.ep_ret = [0.0] * num_envs
        self.ep_len = [0] * num_envs
        self.policy = None

    def ready(self):
        return os.getpid()

    def set_weights(self, weights, *more):
        """weights, updated with each of more (PPO's value learner sends the value
        network's weights apart from the policy's)."""
        if more:
            weights = dict(weights)
            for m in more:
                weights.update({k: m[k] for k in ("pi", "vf") if k in m})
        self.policy = NumpyPolicy(weights, self.model["fcnet_activation"],
                                  self.model["vf_share_layers"])

    def _act(self, obs, explore=True):
        logits, values = self.policy.logits_values(obs)
        logp_all = _log_softmax(logits)
        if explore:
            u = self.rng.random((len(obs), 1))
            cdf = np.cumsum(np.exp(logp_all), axis=1)
            actions = np.minimum((u > cdf).sum(axis=1), logits.shape[1] - 1)
        else:
            actions = logits.argmax(axis=1)
        return actions, logp_all[np.arange(len(obs)), actions], values, logits

    def sample(self, weights, num_steps):
        """At least num_steps steps over the envs (per env, num_steps / num_envs), with
        the returns and lengths of the episodes that ended.  weights None: those the
        last set_weights() gave.  num_steps a list: one fragment of each size after
        the other (each with its own GAE bootstrap at its end, as that many calls would
        give), returned as one batch: fewer actor calls per iteration."""
        if weights is not None:
            self.set_weights(weights)
        if not isinstance(num_steps, (list, tuple)):
            return self._sample_one(num_steps)
        outs = [self._sample_one(k) for k in num_steps]
        if len(outs) == 1:
            return outs[0]
        return {"batch": {k: np.concatenate([o["batch"][k] for o in outs])
                          for k in outs[0]["batch"]},
                "episodes": [e for o in outs for e in o["episodes"]],
                "steps": sum(o["steps"] for o in outs),
                "sample_time": sum(o["sample_time"] for o in outs),
                "cpu_s": sum(o["cpu_s"] for o in outs)}

    def _sample_one(self, num_steps):
        t0, cpu0 = time.perf_counter(), time.process_time()
        n = len(self.envs)
        per_env = max(1, math.ceil(num_steps / n))
        cols = {k: [[] for _ in range(n)] for k in
                ("obs", "actions", "logp", "vf", "rewards", "terminated", "boundary",
                 "next_v", "logits")}
        episodes = []
        steps = 0
        while True:
            obs = np.stack(self.obs)
            actions, logp, values, logits = self._act(obs)
            for k, env in enumerate(self.envs):
                a = int(actions[k])
                o2, r, term, trunc, _ = env.step(a)
                c = cols
                c["obs"][k].append(self.obs[k])
                c["actions"][k].append(a)
                c["logp"][k].append(logp[k])
                c["vf"][k].append(values[k])
                c["logits"][k].append(logits[k])
                c["rewards"][k].append(float(r))
                c["terminated"][k].append(bool(term))
                o2 = np.asarray(o2, dtype=np.float32).reshape(-1)
                self.ep_ret[k] += float(r)
                self.ep_len[k] += 1
                if term or trunc:
                    c["boundary"][k].append(True)
                    # A truncated episode is bootstrapped from its last observation.
                    c["next_v"][k].append(
                        0.0 if term else float(self.policy.logits_values(o2[None])[1][0]))
                    episodes.append((self.ep_ret[k], self.ep_len[k]))
                    self.ep_ret[k], self.ep_len[k] = 0.0, 0
                    o2, _ = env.reset()
                    o2 = np.asarray(o2, dtype=np.float32).reshape(-1)
                else:
                    c["boundary"][k].append(False)
                    c["next_v"][k].append(None)
                self.obs[k] = o2
            steps += n
            if steps >= per_env * n and (not self.complete or self._all_at_boundary(cols)):
                break
        # The fragment's last step is bootstrapped from the current observation.
        last_v = self.policy.logits_values(np.stack(self.obs))[1]
        out = {k: [] for k in ("obs", "actions", "logp", "vf", "advantages",
                               "value_targets", "logits")}
        for k in range(n):
            T = len(cols["rewards"][k])
            if T == 0:
                continue
            vf = np.asarray(cols["vf"][k], dtype=np.float64)
            adv = np.zeros(T)
            last = 0.0
            for t in reversed(range(T)):
                if cols["boundary"][k][t]:
                    nv, last = cols["next_v"][k][t], 0.0
                elif t == T - 1:
                    nv = float(last_v[k])
                else:
                    nv = vf[t + 1]
                delta = cols["rewards"][k][t] + self.gamma * nv - vf[t]
                last = delta + self.gamma * self.lam * last
                adv[t] = last
            out["obs"].append(np.asarray(cols["obs"][k], dtype=np.float32))
            out["actions"].append(np.asarray(cols["actions"][k], dtype=np.int64))
            out["logp"].append(np.asarray(cols["logp"][k], dtype=np.float32))
            out["vf"].append(vf.astype(np.float32))
            out["advantages"].append(adv.astype(np.float32))
            out["value_targets"].append((adv + vf).astype(np.float32))
            out["logits"].append(np.asarray(cols["logits"][k], dtype=np.float32))
        batch = {k: np.concatenate(v) for k, v in out.items()}
        return {"batch": batch, "episodes": episodes, "steps": len(batch["actions"]),
                "sample_time": time.perf_counter() - t0,
                "cpu_s": time.process_time() - cpu0}

    def _all_at_boundary(self, cols):
        return all(b and b[-1] for b in cols["boundary"])

    def rollout(self, weights, num_episodes, explore=False):
        """Whole episodes with the given weights (for evaluation): their returns."""
        self.set_weights(weights)
        env = self.envs[0]
        rets = []
        for _ in range(num_episodes):
            o, _ = env.reset()
            total, done = 0.0, False
            while not done:
                a = self._act(np.asarray(o, dtype=np.float32).reshape(1, -1), explore)[0]
                o, r, term, trunc, _ = env.step(int(a[0]))
                total += r
                done = term or trunc
            rets.append(total)
        o, _ = env.reset()
        self.obs[0] = np.asarray(o, dtype=np.float32).reshape(-1)
        return rets

# SPDX-License-Identifier: Apache-2.0
"""PPO (proximal policy optimization), as RLlib's: the rollout workers collect
train_batch_size steps with the current weights, then the learner runs num_sgd_iter
passes of minibatch SGD (sgd_minibatch_size) on the clipped surrogate objective with an
adaptive KL penalty, a clipped value loss and an entropy bonus, in PyTorch."""
import copy
import time
import warnings

import numpy as np

import kray

from ...tune._run import register_trainable
from .algorithm import COMMON_CONFIG, Trainer, merge_config
from .value_learner import acquire as acquire_value_learner
from .value_learner import (adam, load_optimizer_state, minibatch_starts, optimizer_state,
                            value_loss)
from .value_learner import release as release_value_learner

DEFAULT_CONFIG = dict(copy.deepcopy(COMMON_CONFIG), **{
    "lr": 5e-5,
    "lambda": 1.0,
    "use_critic": True,
    "use_gae": True,
    "kl_coeff": 0.2,
    "kl_target": 0.01,
    "sgd_minibatch_size": 128,
    "shuffle_sequences": True,
    "num_sgd_iter": 30,
    "vf_loss_coeff": 1.0,
    "entropy_coeff": 0.0,
    "clip_param": 0.3,
    "vf_clip_param": 10.0,
    "grad_clip": None,
    # kray's addition: train the value network in a kray actor of its own while the
    # driver trains the policy (the same updates as one process; see value_learner.py).
    # Used when True with num_workers >= 1, use_critic and no grad_clip.
    "kray_value_learner": True,
})


class PPOTrainer(Trainer):
    """PPOTrainer(config=DEFAULT_CONFIG-like dict, env="CartPole-v0"), .train() -> result
    with episode_reward_mean; a tune.Trainable (tune.run(PPOTrainer, config=...))."""

    _name = "PPO"
    _default_config = DEFAULT_CONFIG

    def gae_params(self):
        c = self.config
        return c["gamma"], (c["lambda"] if c["use_gae"] else 1.0)

    def validate(self):
        c = self.config
        if c["sgd_minibatch_size"] > c["train_batch_size"]:
            raise ValueError(f"sgd_minibatch_size ({c['sgd_minibatch_size']}) must be <= "
                             f"train_batch_size ({c['train_batch_size']})")
        if c["model"]["vf_share_layers"]:
            raise ValueError("kray's PPO keeps separate policy and value networks: "
                             "model.vf_share_layers must be False")

    def build(self):
        c = self.config
        # The value network in an actor of its own (value_learner.py): only where the
        # loss splits (no global grad clipping) and the rollouts are actors too.  Started
        # first, so that its torch import and the driver's run together.
        self.split = bool(c["kray_value_learner"] and c["num_workers"] >= 1 and
                          c["use_critic"] and not c["grad_clip"])
        self.value_learner = None
        self.vl_owns = False  # the actor holds the value net's latest Adam state
        if self.split:
            self.value_learner, self.vl_ready = acquire_value_learner(
                self.obs_dim, c["model"], c["lr"], c["vf_clip_param"], c["vf_loss_coeff"])
        import torch
        from ..models import make_torch_model
        self.torch = torch
        if c["seed"] is not None:
            torch.manual_seed(c["seed"])
        if c["num_workers"] and (_in_trial() or self.split):
            torch.set_num_threads(max(1, int(c["num_cpus_for_driver"])))
        self.net = make_torch_model(self.obs_dim, self.num_actions, c["model"])
        self.opt = adam([self.net.pi.parameters(), self.net.vf.parameters()], c["lr"])
        self.vf_params = list(self.net.vf.parameters())
        self.kl_coeff = c["kl_coeff"]
        self.rng = np.random.default_rng(c["seed"])

    def _value_learner_takes_over(self):
        """True when the value learner trains this iteration's value network.  Until its
        actor has started (torch's import: a second or two) the driver trains both, so
        the first iterations do not wait; then the actor gets the value weights and
        Adam state (and keeps them until set_weights(), restore() or stop())."""
        if self.value_learner is None:
            return False
        if self.vl_owns:
            return True
        if not kray.wait([self.vl_ready], num_returns=1, timeout=0)[0]:
            return False
        try:
            kray.get(self.vl_ready)
        except Exception as e:  # it could not start: the driver keeps both networks
            warnings.warn(f"PPO's value learner actor did not start ({e}); the value "
                          "network trains in the driver")
            self.cleanup_value_learner(keep=False)
            return False
        self.value_learner.set_state.remote(
            {"weights": {"vf": self.net.numpy_weights()["vf"]},
             "optimizer": optimizer_state(self.opt, self.vf_params)})
        self.vl_owns = True
        return True

    def _value_state_back(self, keep=True):
        """The value learner's Adam state (and weights) into the driver's optimizer;
        keep=False: the driver owns them again (the next iteration sends them back)."""
        if not self.vl_owns:
            return
        state = kray.get(self.value_learner.get_state.remote())
        self.net.load_numpy_weights(state["weights"])
        load_optimizer_state(self.opt, self.vf_params, state["optimizer"])
        self.vl_owns = keep

    def get_weights(self):
        return self.net.numpy_weights()

    def set_weights(self, weights):
        self.drop_sampling()
        self._value_state_back(keep=False)
        self.net.load_numpy_weights(weights)

    def policy_logits(self, obs):
        with self.torch.no_grad():
            return self.net(self.torch.as_tensor(obs))[0].numpy()

    def step(self):
        # (torch only here and in the driver: a rollout worker, which imports this module
        # with the package, must not pay torch's import, about 1 s of CPU)
        from .ppo_loss import kl_grad_column, policy_grad, policy_stats

        c = self.config
        torch = self.torch
        t0 = time.perf_counter()
        batch, eps, sample_s = self.sample(self.get_weights(), c["train_batch_size"])
        t1 = time.perf_counter()
        n = len(batch["actions"])
        mb = c["sgd_minibatch_size"]
        # Every epoch's order, drawn up front: the value learner takes the same ones.
        perms = [self.rng.permutation(n) if c["shuffle_sequences"] else None
                 for _ in range(c["num_sgd_iter"])]
        split = self._value_learner_takes_over()
        if split:  # one put: the value learner's SGD runs while the driver's does
            data = kray.put({"obs": batch["obs"], "value_targets": batch["value_targets"],
                             "perms": perms})
            vf_ref = self.value_learner.train.remote(data, mb)
        t_put, cpu_put = time.perf_counter(), time.process_time()
        adv = batch["advantages"]
        adv = (adv - adv.mean()) / max(1e-4, adv.std())
        obs = torch.as_tensor(batch["obs"])
        actions = torch.as_tensor(batch["actions"])
        old_logp = torch.as_tensor(batch["logp"])
        old_lp_all = torch.log_softmax(torch.as_tensor(batch["logits"]), dim=1)
        old_p_all = old_lp_all.exp()
        adv = torch.as_tensor(adv)
        # Per minibatch: the log-probabilities and the value loss, kept as tensors (the
        # statistics are computed from them once, after the SGD passes).
        lp_alls, vf_means = [], []
        rows_mb = min(mb, n)
        kl_grad = kl_grad_column(old_p_all, self.kl_coeff, rows_mb)
        onehot = torch.nn.functional.one_hot(actions, self.num_actions).to(old_p_all.dtype)
        cols = [obs, actions[:, None], old_logp, kl_grad, onehot, adv]
        if not split:
            cols.append(torch.as_tensor(batch["value_targets"]))
        zero = torch.zeros(())
        nmb = len(minibatch_starts(n, mb))
        for perm in perms:
            if perm is not None:  # one gather per column and epoch
                shuffled = [col[torch.as_tensor(perm)] for col in cols]
            else:
                shuffled = cols
            # the epoch's minibatches: one split per column (views), not a slice each
            for _, o_mb, act_mb, old_logp_mb, kl_grad_mb, onehot_mb, a, *vt_mb in zip(
                    range(nmb), *(col.split(mb) for col in shuffled)):
                if split:
                    logits = self.net.pi_forward(o_mb)
                else:
                    logits, v = self.net(o_mb)
                loss, lp_all = policy_grad(logits, act_mb, old_logp_mb, kl_grad_mb,
                                           onehot_mb, a, c["clip_param"],
                                           c["entropy_coeff"])
                if split:  # the value loss's gradient reaches only the value MLP
                    vf_mean = zero
                elif c["use_critic"]:
                    vf_mean = value_loss(v, vt_mb[0], c["vf_clip_param"]).mean()
                    loss = loss + c["vf_loss_coeff"] * vf_mean
                else:
                    vf_mean = zero
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                if c["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_(self.net.parameters(), c["grad_clip"])
                self.opt.step()
                lp_alls.append(lp_all)
                vf_means.append(vf_mean.detach())

        def minibatch_stats():
            """[policy_loss, vf_loss, kl, entropy, total_loss] per minibatch."""
            rows = torch.cat([torch.as_tensor(p[:nmb * rows_mb]) if p is not None else
                              torch.arange(nmb * rows_mb) for p in perms])
            st = policy_stats(torch.cat(lp_alls), rows, actions, old_logp, old_lp_all,
                              old_p_all, adv, c["clip_param"], self.kl_coeff,
                              c["entropy_coeff"], len(lp_alls))
            vf = torch.stack(vf_means)
            return torch.stack([st[:, 0], vf, st[:, 1], st[:, 2],
                                st[:, 3] + c["vf_loss_coeff"] * vf], 1)
        t_sgd, cpu_sgd = time.perf_counter(), time.process_time()
        # The next batch starts now, with the weights just learned (PPO stays on-policy):
        # the workers sample while the rest of this iteration is reported.  With the
        # value learner, they take its weights from its result (waiting on it in krayd).
        timers = {}
        if split:
            self.start_sampling({"pi": self.net.numpy_weights()["pi"]},
                                c["train_batch_size"], more=(vf_ref,))
            t_sent = time.perf_counter()
            stats = minibatch_stats()  # while the workers sample
            t_stats = time.perf_counter()
            try:
                vf = kray.get(vf_ref)
            except Exception as e:
                self.drop_sampling()
                self.cleanup_value_learner(keep=False)
                raise RuntimeError(f"PPO's value learner actor failed: {e}") from e
            t_vf = time.perf_counter()
            if self._pending is not None:  # the workers could not start before now
                self._pending["t0"] = max(self._pending["t0"], t_vf)
            self.net.load_numpy_weights({"vf": vf["vf"]})
            vf_losses = torch.tensor(vf["vf_loss"])
            stats[:, 1] = vf_losses
            stats[:, 4] += c["vf_loss_coeff"] * vf_losses
            timers = {"batch_put_ms": 1000 * (t_put - t1),
                      "policy_sgd_ms": 1000 * (t_sgd - t_put),
                      "value_sgd_ms": 1000 * vf["sgd_s"],
                      "policy_sgd_cpu_ms": 1000 * (cpu_sgd - cpu_put),
                      "value_sgd_cpu_ms": 1000 * vf["sgd_cpu_s"],
                      "weights_send_ms": 1000 * (t_sent - t_sgd),
                      "stats_ms": 1000 * (t_stats - t_sent),
                      "value_wait_ms": 1000 * (t_vf - t_stats)}
        else:
            self.start_sampling(self.get_weights(), c["train_batch_size"])
            t_sent = time.perf_counter()
            stats = minibatch_stats()
            timers = {"sgd_ms": 1000 * (t_sgd - t_put),
                      "sgd_cpu_ms": 1000 * (cpu_sgd - cpu_put),
                      "stats_ms": 1000 * (time.perf_counter() - t_sent)}
        means = stats.mean(0).tolist()
        learner = dict(zip(("policy_loss", "vf_loss", "kl", "entropy", "total_loss"), means))
        # The adaptive KL penalty (RLlib's update_kl).
        if learner["kl"] > 2.0 * c["kl_target"]:
            self.kl_coeff *= 1.5
        elif learner["kl"] < 0.5 * c["kl_target"]:
            self.kl_coeff *= 0.5
        learner.update(cur_kl_coeff=self.kl_coeff, cur_lr=c["lr"])
        t2 = time.perf_counter()
        self.timesteps += n
        result = self.episode_metrics(eps)
        timers.update(sample_time_ms=1000 * (t1 - t0), learn_time_ms=1000 * (t2 - t1),
                      sample_cpu_ms=1000 * self.sample_cpu_s)
        result.update(
            timesteps_this_iter=n, num_env_steps_sampled=self.timesteps,
            num_env_steps_trained=self.timesteps,
            info={"learner": {"default_policy": {"learner_stats": learner}},
                  "value_learner_actor": split},
            timers=timers, sampler_perf={"samples_per_s": n / max(sample_s, 1e-9)})
        return result

    def save_checkpoint(self, checkpoint_dir):
        self._value_state_back()
        return {"weights": self.get_weights(), "optimizer": self.opt.state_dict(),
                "kl_coeff": self.kl_coeff, "episodes": list(self.episodes),
                "timesteps": self.timesteps}

    def load_checkpoint(self, checkpoint):
        self.set_weights(checkpoint["weights"])
        self.opt.load_state_dict(checkpoint["optimizer"])
        self.kl_coeff = checkpoint["kl_coeff"]
        self.episodes.clear()
        self.episodes.extend(checkpoint["episodes"])
        self.timesteps = checkpoint["timesteps"]

    def get_policy(self, policy_id="default_policy"):
        return _Policy(self)

    def cleanup_value_learner(self, keep=True):
        if getattr(self, "value_learner", None) is not None:
            release_value_learner(self.value_learner, self.vl_ready, keep)
            self.value_learner, self.vl_owns = None, False

    def cleanup(self):
        self.cleanup_value_learner()
        super().cleanup()


class _Policy:
    def __init__(self, trainer):
        self.trainer = trainer
        self.model = trainer.net

    def get_weights(self):
        return self.trainer.get_weights()

    def set_weights(self, w):
        self.trainer.set_weights(w)

    def compute_single_action(self, obs, explore=None):
        return self.trainer.compute_single_action(obs, explore=explore), [], {}


def _in_trial():
    from .algorithm import _in_actor
    return _in_actor()


PPO = PPOTrainer


class AlgorithmConfig:
    """The builder of Ray 2.x: PPOConfig().environment("CartPole-v1").rollouts(
    num_rollout_workers=2).training(lr=...).build()."""

    algo_class = None

    def __init__(self, algo_class=None):
        self.algo_class = algo_class or self.algo_class
        self._config = copy.deepcopy(self.algo_class._default_config)

    def _set(self, **kw):
        renames = {"lambda_": "lambda", "num_rollout_workers": "num_workers",
                   "env_runners": "num_workers", "num_env_runners": "num_workers"}
        for k, v in kw.items():
            if v is None:
                continue
            k = renames.get(k, k)
            if k not in self._config:
                raise TypeError(f"{type(self).__name__}: unknown setting {k!r}")
            if k == "model":
                m = dict(self._config["model"])
                m.update(v)
                v = m
            self._config[k] = v
        return self

    def environment(self, env=None, *, env_config=None, **kw):
        return self._set(env=env, env_config=env_config, **kw)

    def rollouts(self, **kw):
        return self._set(**kw)

    env_runners = rollouts

    def training(self, **kw):
        return self._set(**kw)

    def resources(self, **kw):
        return self._set(**kw)

    def framework(self, framework=None, **kw):
        return self._set(framework=framework)

    def debugging(self, seed=None, log_level=None, **kw):
        return self._set(seed=seed, log_level=log_level)

    def reporting(self, **kw):
        return self._set(**kw)

    def to_dict(self):
        return copy.deepcopy(self._config)

    def copy(self):
        return copy.deepcopy(self)

    def update_from_dict(self, d):
        return self._set(**d)

    def build(self, env=None):
        merge_config(self.algo_class._name, self.algo_class._default_config, self._config)
        return self.algo_class(config=self.to_dict(), env=env)


class PPOConfig(AlgorithmConfig):
    algo_class = PPOTrainer


register_trainable("PPO", PPOTrainer)  # tune.run("PPO")

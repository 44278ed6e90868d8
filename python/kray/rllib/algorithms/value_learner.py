# SPDX-License-Identifier: Apache-2.0
"""PPO's value network trained in a second process (a kray addition).

With separate policy and value networks (model.vf_share_layers=False) PPO's loss is a sum
of a policy part, whose gradient reaches only the policy MLP, and vf_loss_coeff times the
value loss, whose gradient reaches only the value MLP; Adam keeps its moments per
parameter.  So the value MLP's SGD passes can run in another process, on the same
minibatches in the same order, at the same time as the driver trains the policy, and the
updates are those of one process (RLlib's grad_clip clips the global norm of both
networks together: with it set the trainer keeps to one process).

ValueLearner is that process, a kray actor.  Each iteration the driver puts one object
(the batch's observations, value targets and every epoch's permutation) and calls
train(); the actor returns the value MLP's weights in numpy (the rollout workers read
them for their GAE) and its per-minibatch losses.  The driver passes that result's ref
straight to the rollout workers with the policy's weights, so the next batch waits on the
value learner in krayd, not in the driver.
"""
import os
import time

import numpy as np

import kray

from ..models import make_torch_model

_POOL_SIZE = 2
_pool = []  # (actor, ready ref, kray session) started by this driver, idle


def minibatch_starts(n, mb):
    """The first row of each minibatch of an epoch (a short last one is dropped, as
    RLlib's; with fewer than mb rows, one minibatch of all of them)."""
    return range(0, n - mb + 1 if n >= mb else 1, mb)


def value_loss(v, value_targets, vf_clip_param):
    """RLlib's clipped value loss per row: min((v - target)^2, vf_clip_param)."""
    import torch
    return torch.clamp((v - value_targets) ** 2, 0, vf_clip_param)


def adam(segments, lr):
    """torch's Adam over these lists of parameters (one per network), each network's
    parameters and moments in one flat tensor (optim.FlatAdam: the same updates)."""
    from ..optim import FlatAdam
    return FlatAdam(segments, lr)


def optimizer_state(opt, params):
    """Adam's state of these parameters, in their order (tensors cloned)."""
    return [{k: (v.clone() if hasattr(v, "clone") else v)
             for k, v in opt.state.get(p, {}).items()} for p in params]


def load_optimizer_state(opt, params, state):
    for p, s in zip(params, state):
        if s:
            opt.state[p] = {k: (v.clone() if hasattr(v, "clone") else v)
                            for k, v in s.items()}
        else:
            opt.state.pop(p, None)


class ValueLearner:
    """The value MLP and its Adam, in a kray actor of its own (one torch thread).
    configure() builds them; a learner kept in the pool (acquire()) is configured anew
    for each trainer."""

    def __init__(self):
        import torch  # the costly part of its start: 2 to 3 s of CPU with Debian's torch
        torch.set_num_threads(1)
        self.torch = torch
        self.net = None

    def configure(self, obs_dim, model, lr, vf_clip_param, vf_loss_coeff):
        self.net = make_torch_model(obs_dim, 1, model, with_policy=False)
        self.params = list(self.net.vf.parameters())
        self.opt = adam([self.params], lr)
        self.vf_clip_param = vf_clip_param
        self.vf_loss_coeff = vf_loss_coeff

    def ready(self):
        return os.getpid()

    def set_state(self, state):
        """The driver's value weights and Adam state (state() of the driver's side)."""
        self.net.load_numpy_weights(state["weights"])
        load_optimizer_state(self.opt, self.params, state["optimizer"])

    def get_state(self):
        return {"weights": self.net.numpy_weights(),
                "optimizer": optimizer_state(self.opt, self.params)}

    def train(self, data, minibatch_size):
        """data: {"obs", "value_targets", "perms" (one permutation per epoch, or None
        rows for no shuffling)}.  The same minibatch steps as the driver's; returns
        {"vf": weights, "vf_loss": loss per minibatch, "sgd_s": seconds, "sgd_cpu_s":
        CPU seconds}."""
        torch = self.torch
        t0, cpu0 = time.perf_counter(), time.process_time()
        # Copies: what the object store gives is read-only.
        obs = torch.tensor(data["obs"])
        vt = torch.tensor(data["value_targets"])
        n = len(vt)
        losses = []
        for perm in data["perms"]:
            if perm is not None:
                idx = torch.tensor(perm)
                o_ep, vt_ep = obs[idx], vt[idx]
            else:
                o_ep, vt_ep = obs, vt
            for _, o_mb, vt_mb in zip(minibatch_starts(n, minibatch_size),
                                      o_ep.split(minibatch_size), vt_ep.split(minibatch_size)):
                v = self.net.vf_forward(o_mb).squeeze(-1)
                vf_mean = value_loss(v, vt_mb, self.vf_clip_param).mean()
                # (the driver's loss adds vf_loss_coeff * this mean: with the coefficient
                # 1, RLlib's default, the product changes no bit of it or its gradient)
                loss = vf_mean if self.vf_loss_coeff == 1.0 else self.vf_loss_coeff * vf_mean
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                losses.append(vf_mean.detach())
        out = {"vf": self.net.numpy_weights()["vf"],
               "vf_loss": torch.stack(losses).numpy() if losses else np.zeros(0)}
        out["sgd_s"] = time.perf_counter() - t0
        out["sgd_cpu_s"] = time.process_time() - cpu0
        return out


def acquire(obs_dim, model, lr, vf_clip_param, vf_loss_coeff):
    """A value learner actor configured for this model: an idle one of this driver's
    (its torch already imported) or a new one.  Returns (actor, ref of its ready())."""
    from ... import _remote
    actor = None
    while _pool and actor is None:
        a, ready, session = _pool.pop()
        if session == _remote.session[0]:  # not from before a kray.shutdown()
            actor = a
    if actor is None:
        actor = kray.remote(ValueLearner).options(num_cpus=0).remote()
        ready = actor.ready.remote()
    actor.configure.remote(obs_dim, model, lr, vf_clip_param, vf_loss_coeff)
    return actor, ready


def release(actor, ready, keep=True):
    """The trainer is done with it: kept idle for the next trainer of this driver (at
    most _POOL_SIZE; not inside an actor, such as a Tune trial, whose process ends),
    else killed."""
    from ... import _remote
    from .algorithm import _in_actor
    if keep and len(_pool) < _POOL_SIZE and not _in_actor():
        _pool.append((actor, ready, _remote.session[0]))
        return
    try:
        kray.kill(actor)
    except Exception:
        pass

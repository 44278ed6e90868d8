# SPDX-License-Identifier: Apache-2.0
"""kray.rllib (issue 16): the seed's program (tune.run(PPOTrainer, ...)) solves
CartPole-v0 with a fixed seed in a bounded number of iterations; the PPOTrainer API
(DEFAULT_CONFIG, PPOConfig().build(), save/restore, compute_action); bad input."""
import shutil

import numpy as np
import pytest

from kray import tune
from kray.rllib.agents.ppo import DEFAULT_CONFIG, PPOTrainer
from kray.rllib.algorithms.ppo import PPOConfig
from kray.rllib.env import CartPoleEnv, EnvError
from kray.tune.logger import pretty_print

# RLlib's defaults (two 256-wide layers, 30 SGD passes) cost ~40 s per iteration with
# Debian's torch on 2 cores; this config solves CartPole-v0 in ~11 iterations (~10 s).
FAST = {"seed": 0, "lr": 3e-4, "num_sgd_iter": 6, "model": {"fcnet_hiddens": [64, 64]}}


@pytest.fixture
def ray(ray_start):
    return ray_start


def test_seed_program_solves_cartpole(ray, tmp_path):
    analysis = tune.run(PPOTrainer, config=dict(FAST, env="CartPole-v0"),
                        stop={"episode_reward_mean": 195, "training_iteration": 25},
                        local_dir=str(tmp_path), verbose=0, checkpoint_at_end=True)
    t = analysis.trials[0]
    assert t.status == "TERMINATED"
    assert t.last_result["episode_reward_mean"] >= 195, t.last_result
    assert t.last_result["training_iteration"] <= 25
    assert t.last_result["timesteps_total"] >= 4000 * t.last_result["training_iteration"]
    # The trained policy, restored from the trial's checkpoint, balances the pole.
    trainer = PPOTrainer(dict(FAST, num_workers=0), "CartPole-v0")
    trainer.restore(t.checkpoint)
    env = CartPoleEnv()
    obs, _ = env.reset(seed=1)
    total, done = 0, False
    while not done:
        obs, r, term, trunc, _ = env.step(trainer.compute_action(obs, explore=False))
        total += r
        done = term or trunc
    assert total >= 150, total
    trainer.stop()


def test_trainer_api(ray, tmp_path):
    config = DEFAULT_CONFIG.copy()
    config.update(FAST, num_workers=1, train_batch_size=400, sgd_minibatch_size=100,
                  num_sgd_iter=2)
    trainer = PPOTrainer(config, "CartPole-v1")
    r = trainer.train()
    assert r["training_iteration"] == 1 and r["timesteps_this_iter"] >= 400
    assert r["episode_reward_mean"] > 0 and "learner_stats" in \
        r["info"]["learner"]["default_policy"]
    assert "episode_reward_mean:" in pretty_print(r)
    path = trainer.save(str(tmp_path / "ck"))
    w = trainer.get_weights()
    a = trainer.compute_action(np.zeros(4, np.float32))
    assert a in (0, 1)
    trainer.stop()

    algo = (PPOConfig().environment("CartPole-v0").rollouts(num_rollout_workers=0)
            .training(lr=1e-3, train_batch_size=200, sgd_minibatch_size=50, num_sgd_iter=1,
                      model={"fcnet_hiddens": [16]}).debugging(seed=3).build())
    assert algo.train()["timesteps_total"] >= 200
    algo.stop()
    t2 = PPOTrainer(dict(config, num_workers=0), "CartPole-v1")
    t2.restore(path)
    assert t2.iteration == 1
    np.testing.assert_allclose(t2.get_weights()["pi"][0][0], w["pi"][0][0])
    t2.stop()


def test_custom_env_and_bad_input(ray):
    with pytest.raises(ValueError, match=r"Unknown config parameter\(s\) \['num_sgd_iters'\]"):
        PPOTrainer({"num_sgd_iters": 3}, "CartPole-v0")
    with pytest.raises(ValueError, match="Unknown model config"):
        PPOTrainer({"model": {"fcnet_hidden": [8]}}, "CartPole-v0")
    with pytest.raises(EnvError, match="not a known environment"):
        PPOTrainer({"num_workers": 0}, "MountainCar-v9")
    with pytest.raises(EnvError, match="needs an env"):
        PPOTrainer({"num_workers": 0})
    with pytest.raises(TypeError, match="unknown setting"):
        PPOConfig().training(learning_rate=1)
    with pytest.raises(ValueError, match="framework"):
        PPOTrainer({"framework": "tf", "num_workers": 0}, "CartPole-v0")

    class Corridor:
        """A gymnasium-style env of the user's: walk right 5 steps."""
        def __init__(self, env_config):
            from kray.rllib.env import Box, Discrete
            self.n = env_config.get("length", 5)
            self.action_space = Discrete(2)
            self.observation_space = Box(0.0, 100.0, shape=(1,))

        def reset(self, *, seed=None, options=None):
            self.pos = 0
            return np.array([0.0], np.float32), {}

        def step(self, action):
            self.pos += 1 if action == 1 else 0
            done = self.pos >= self.n
            return np.array([self.pos], np.float32), 1.0 if done else -0.1, done, False, {}

    tune.register_env("corridor", lambda cfg: Corridor(cfg))
    trainer = PPOTrainer({"num_workers": 1, "train_batch_size": 200,
                          "sgd_minibatch_size": 50, "num_sgd_iter": 1,
                          "env_config": {"length": 3}, "model": {"fcnet_hiddens": [8]}},
                         "corridor")
    assert trainer.train()["episodes_this_iter"] > 0
    trainer.stop()


def test_cartpole_env():
    env = CartPoleEnv(max_episode_steps=200)
    obs, info = env.reset(seed=0)
    assert obs.shape == (4,) and obs.dtype == np.float32 and info == {}
    steps, done = 0, False
    while not done:
        obs, r, term, trunc, _ = env.step(1)  # always push right: falls quickly
        steps += 1
        done = term or trunc
    assert term and not trunc and steps < 50
    with pytest.raises(ValueError):
        env.step(2)
    env = CartPoleEnv(max_episode_steps=5)
    env.reset(seed=0)
    out = [env.step(i % 2) for i in range(5)]
    assert out[-1][3] and not out[-1][2]  # truncated at the limit


ES_FAST = {"seed": 0, "episodes_per_batch": 50, "train_batch_size": 2000,
           "noise_size": 2_000_000, "model": {"fcnet_hiddens": [16]}, "eval_prob": 0.05,
           "stepsize": 0.05, "noise_stdev": 0.05}


def test_es_solves_cartpole(ray, tmp_path):
    from kray.rllib.agents.es import ESTrainer
    analysis = tune.run("ES", config=dict(ES_FAST, env="CartPole-v0"),
                        stop={"episode_reward_mean": 195, "training_iteration": 60},
                        local_dir=str(tmp_path), verbose=0)
    r = analysis.trials[0].last_result
    assert r["episode_reward_mean"] >= 195, r
    with pytest.raises(ValueError, match="Unknown config"):
        ESTrainer({"sigma": 0.1}, "CartPole-v0")


def test_parallel_sampling_is_reproducible_and_on_policy(ray):
    """Two seeded trainers with rollout actors give the same batches (fragments in a
    fixed order, whatever the timing); the next batch, begun as soon as the weights are
    updated, is dropped when restore() changes them; the model's oneDNN linear layers
    give F.linear's values and gradients."""
    import torch
    import torch.nn.functional as F
    from kray.rllib.models import torch_linear
    cfg = dict(FAST, num_workers=2, train_batch_size=1000, sgd_minibatch_size=100,
               rollout_fragment_length=100)
    runs = []
    for _ in range(2):
        t = PPOTrainer(cfg, "CartPole-v0")
        runs.append([(r["episode_reward_mean"], r["info"]["learner"]["default_policy"]
                      ["learner_stats"]["kl"]) for r in (t.train(), t.train())])
        if len(runs) == 1:
            t.stop()
    assert runs[0] == runs[1]
    path = t.save()
    assert t._pending is not None  # the next batch is under way
    t.restore(path)
    assert t._pending is None  # begun with weights that restore() replaced
    assert t.train()["timesteps_this_iter"] == 1000
    t.stop()
    shutil.rmtree(t.logdir)  # (save() with no directory: the checkpoint went there)

    lin = torch_linear()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 32, generator=g)  # oneDNN takes layers 16 wide or more
    w = torch.randn(24, 32, generator=g, requires_grad=True)
    b = torch.randn(24, generator=g, requires_grad=True)
    out = []
    for f in (F.linear, lin):
        y = torch.tanh(f(x, w, b))
        out.append((y.detach(),) + torch.autograd.grad(y.pow(2).sum(), (w, b)))
    assert all(torch.allclose(p, q, rtol=1e-4, atol=1e-5) for p, q in zip(*out))


def test_value_learner_actor_gives_one_process_updates(ray):
    """With separate networks and no grad_clip, the value network trains in an actor of
    its own (kray's addition, kray_value_learner) while the driver trains the policy: the
    same weights, Adam state and statistics as both in one process, over two iterations
    (the second batch sampled with the actor's value weights); one process otherwise."""
    import kray
    cfg = dict(FAST, num_workers=2, train_batch_size=1000, sgd_minibatch_size=100,
               rollout_fragment_length=100)
    out, pids = {}, []
    # The third run takes the first one's actor, kept idle for the next trainer of this
    # driver (its torch imported), configured anew: the same results again.
    for run, split in enumerate((True, False, True)):
        t = PPOTrainer(dict(cfg, kray_value_learner=split), "CartPole-v0")
        assert (t.value_learner is not None) == split
        if split:
            pids.append(kray.get(t.vl_ready))  # it trains from the first iteration on
        rs = [t.train() for _ in range(2)]
        assert [r["info"]["value_learner_actor"] for r in rs] == [split, split]
        if split:
            assert {"policy_sgd_ms", "value_sgd_ms", "value_wait_ms"} <= set(rs[0]["timers"])
        ck = t.save_checkpoint(None)  # brings the actor's Adam state back
        out[run] = (ck, [r["info"]["learner"]["default_policy"]["learner_stats"]
                           for r in rs], [r["episode_reward_mean"] for r in rs])
        t.stop()
        assert t.value_learner is None
    assert pids[0] == pids[1]
    (ck1, st1, rew1), (ck0, st0, rew0), (ck2, st2, rew2) = out[0], out[1], out[2]
    assert rew1 == rew0 == rew2
    for name in ("pi", "vf"):
        for (W1, b1), (W2, b2) in zip(ck1["weights"][name], ck2["weights"][name]):
            np.testing.assert_array_equal(W1, W2)
            np.testing.assert_array_equal(b1, b2)
        for (W1, b1), (W0, b0) in zip(ck1["weights"][name], ck0["weights"][name]):
            np.testing.assert_allclose(W1, W0, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(b1, b0, rtol=1e-5, atol=1e-6)
    s1, s0 = ck1["optimizer"]["state"], ck0["optimizer"]["state"]
    assert sorted(s1) == sorted(s0) and len(s1) == 12  # 3 layers x (W, b) x 2 networks
    for i in s0:
        for k in ("step", "exp_avg", "exp_avg_sq"):
            np.testing.assert_allclose(np.asarray(s1[i][k]), np.asarray(s0[i][k]),
                                       rtol=1e-5, atol=1e-7)
    for a, b in zip(st1, st0):
        for k in ("policy_loss", "vf_loss", "kl", "entropy", "total_loss"):
            assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-7), k

    # Where the loss does not split, or there is no rollout actor: one process.
    for extra in ({"grad_clip": 0.5}, {"num_workers": 0}, {"use_critic": False}):
        t = PPOTrainer(dict(cfg, **extra), "CartPole-v0")
        assert t.value_learner is None, extra
        assert t.train()["info"]["value_learner_actor"] is False
        t.stop()


def test_flat_adam_gives_torch_adams_updates():
    """optim.FlatAdam (each network's parameters and moments in one flat tensor) gives
    torch.optim.Adam's weights and state bit for bit, skips a network without
    gradients, and takes a state loaded with load_state_dict() or set by hand."""
    import copy

    import torch
    from kray.rllib.models import MODEL_DEFAULTS, make_torch_model
    from kray.rllib.optim import FlatAdam
    torch.manual_seed(0)
    model = dict(MODEL_DEFAULTS, fcnet_hiddens=[16, 8])
    net_t = make_torch_model(4, 2, model)
    net_f = copy.deepcopy(net_t)
    opt_t = torch.optim.Adam(net_t.parameters(), lr=1e-2)
    opt_f = FlatAdam([net_f.pi.parameters(), net_f.vf.parameters()], lr=1e-2)
    g = torch.Generator().manual_seed(1)

    def steps(k, only_pi=False):
        for _ in range(k):
            x = torch.randn(32, 4, generator=g)
            for net, opt in ((net_t, opt_t), (net_f, opt_f)):
                logits, v = net(x)
                loss = logits.pow(2).mean() + (0 if only_pi else (v - 1).pow(2).mean())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    def same():
        for a, b in zip(net_t.parameters(), net_f.parameters()):
            assert torch.equal(a, b)
        st, sf = opt_t.state_dict()["state"], opt_f.state_dict()["state"]
        assert sorted(st) == sorted(sf)
        for i in st:
            for k in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(st[i][k], sf[i][k]), (i, k)

    steps(3, only_pi=True)  # the value network has no state yet, as torch's Adam's
    same()
    assert len(opt_f.state_dict()["state"]) == 6
    steps(4)
    same()
    saved = copy.deepcopy(opt_t.state_dict())
    steps(2)
    opt_t.load_state_dict(saved)
    opt_f.load_state_dict(saved)
    with torch.no_grad():
        for a, b in zip(net_t.parameters(), net_f.parameters()):
            b.copy_(a)
    steps(3)
    same()
    # A state set by hand (the value learner's hand-over) is copied in at the next step.
    vf_t, vf_f = list(net_t.vf.parameters()), list(net_f.vf.parameters())
    for pt, pf in zip(vf_t, vf_f):
        opt_f.state[pf] = {k: v.clone() for k, v in opt_t.state[pt].items()}
    steps(2)
    same()
    bad = {k: v.clone() for k, v in opt_f.state[vf_f[0]].items()}
    bad["step"] = bad["step"] + 1
    opt_f.state[vf_f[0]] = bad
    with pytest.raises(ValueError, match="different step counts"):
        steps(1)


def test_fused_policy_loss_matches_autograd():
    """The PPO policy loss as one autograd node (ppo_loss.policy_grad) gives the logits
    gradient of RLlib's formulation written with autograd, and policy_stats() its
    per-minibatch loss terms, on fixed data with ratios inside and outside the clip
    range, with and without the entropy term, with the value loss added as the one
    process learner adds it."""
    import torch
    import torch.nn.functional as F
    from kray.rllib.algorithms.ppo_loss import kl_grad_column, policy_grad, policy_stats

    def reference(logits, actions, old_logp, old_lp_all, old_p_all, adv, clip, kl_coeff,
                  entropy_coeff):
        lp_all = torch.log_softmax(logits, dim=1)
        logp = lp_all.gather(1, actions[:, None]).squeeze(1)
        ratio = torch.exp(logp - old_logp)
        surrogate = torch.min(adv * ratio, adv * torch.clamp(ratio, 1 - clip, 1 + clip))
        kl = (old_p_all * (old_lp_all - lp_all)).sum(1)
        entropy = -(lp_all.exp() * lp_all).sum(1)
        loss = (-surrogate + kl_coeff * kl - entropy_coeff * entropy).mean()
        return loss, torch.stack([-surrogate.mean(), kl.mean(), entropy.mean(), loss])

    g = torch.Generator().manual_seed(2)
    n, k, mb = 256, 3, 64
    old_logits = torch.randn(n, k, generator=g)
    old_lp_all = torch.log_softmax(old_logits, dim=1)
    old_p_all = old_lp_all.exp()
    actions = torch.randint(0, k, (n,), generator=g)
    old_logp = old_lp_all.gather(1, actions[:, None]).squeeze(1)
    adv = torch.randn(n, generator=g)
    onehot = F.one_hot(actions, k).float()
    clip, kl_coeff = 0.2, 0.3
    kl_grad = kl_grad_column(old_p_all, kl_coeff, mb)
    for scale in (0.01, 0.5, 2.0):  # the new logits near the old ones, then far
        logits = (old_logits + scale * torch.randn(n, k, generator=g)).requires_grad_()
        v = torch.randn(n, generator=g, requires_grad=True)
        for entropy_coeff in (0.0, 0.01):
            rows = torch.randperm(n, generator=g)
            lp_alls, ref_stats = [], []
            for r in rows.split(mb):
                def vf_loss():  # as the one-process learner adds it
                    return (v[r] - 1).pow(2).mean()
                loss, st = reference(logits[r], actions[r], old_logp[r], old_lp_all[r],
                                     old_p_all[r], adv[r], clip, kl_coeff, entropy_coeff)
                want = torch.autograd.grad(loss + vf_loss(), (logits, v))
                zero, lp_all = policy_grad(logits[r], actions[r][:, None], old_logp[r],
                                           kl_grad[r], onehot[r], adv[r], clip,
                                           entropy_coeff)
                assert float(zero) == 0.0
                got = torch.autograd.grad(zero + vf_loss(), (logits, v))
                for a, b in zip(want, got):
                    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
                lp_alls.append(lp_all)
                ref_stats.append(st.detach())
            stats = policy_stats(torch.cat(lp_alls), rows, actions, old_logp, old_lp_all,
                                 old_p_all, adv, clip, kl_coeff, entropy_coeff,
                                 len(lp_alls))
            torch.testing.assert_close(stats, torch.stack(ref_stats), rtol=1e-5, atol=1e-6)
        ratio = (torch.log_softmax(logits, 1).gather(1, actions[:, None]).squeeze(1) -
                 old_logp).exp()
        if scale == 2.0:  # both sides of the clip range were covered
            assert (ratio > 1.2).any() and (ratio < 0.8).any()


def test_numpy_policy_stacked_forward_matches_per_network():
    """The rollout workers' numpy forward pass runs the policy and value MLPs as one
    (first layers side by side, the others stacked): the values of the two networks
    run one after the other, for one row and several, deep and shallow models."""
    from kray.rllib.models import MODEL_DEFAULTS, NumpyPolicy, make_torch_model
    rng = np.random.default_rng(0)
    for hiddens, act in (([64, 64], "tanh"), ([16], "relu"), ([32, 16, 8], "tanh"),
                         ([], "tanh")):
        net = make_torch_model(4, 3, dict(MODEL_DEFAULTS, fcnet_hiddens=hiddens,
                                          fcnet_activation=act))
        w = net.numpy_weights()
        fast, ref = NumpyPolicy(w, act, False), NumpyPolicy(w, act, False)
        ref.stacked = None
        assert (fast.stacked is not None) == bool(hiddens)
        for n in (1, 5):
            obs = rng.standard_normal((n, 4)).astype(np.float32)
            (l1, v1), (l2, v2) = fast.logits_values(obs), ref.logits_values(obs)
            assert l1.shape == (n, 3) and v1.shape == (n,)
            np.testing.assert_allclose(l1, l2, rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(v1, v2, rtol=1e-6, atol=1e-7)


def test_rollout_worker_fragments_in_one_call():
    """RolloutWorker.sample() with a list of fragment sizes (the trainer asks each
    rollout actor for half its fragments per call) gives the batch and episodes of one
    call per fragment, each fragment with its own GAE bootstrap."""
    from kray.rllib.algorithms.algorithm import RolloutWorker
    from kray.rllib.models import MODEL_DEFAULTS, make_torch_model
    model = dict(MODEL_DEFAULTS, fcnet_hiddens=[16])
    w = make_torch_model(4, 2, model).numpy_weights()
    for num_envs in (1, 3):
        a, b = (RolloutWorker("CartPole-v0", {}, model, 7, 1, num_envs, 0.99, 0.95)
                for _ in range(2))
        one = a.sample(w, [90, 90, 45])
        outs = [b.sample(w, 90), b.sample(None, 90), b.sample(None, 45)]
        assert one["steps"] == sum(o["steps"] for o in outs)
        assert one["episodes"] == [e for o in outs for e in o["episodes"]]
        for k, v in one["batch"].items():
            np.testing.assert_array_equal(v, np.concatenate([o["batch"][k] for o in outs]))
        if num_envs > 1:  # a fragment's rows are env by env
            continue
        # A fragment's end is bootstrapped: the advantages differ from one long one's.
        c = RolloutWorker("CartPole-v0", {}, model, 7, 1, num_envs, 0.99, 0.95)
        long = c.sample(w, 225)
        np.testing.assert_array_equal(long["batch"]["obs"], one["batch"]["obs"])
        assert not np.array_equal(long["batch"]["advantages"], one["batch"]["advantages"])


def test_rollout_workers_do_not_import_torch():
    # A rollout worker loads kray.rllib (its class's module) and samples in numpy: torch's
    # import (about 1 s of CPU) would be paid by every worker a trainer starts.
    import subprocess
    import sys
    code = ("import sys, kray.rllib.algorithms.algorithm, kray.rllib; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_rollout_worker_module_loads_no_trainer():
    # A rollout actor's process loads its class's module, kray.rllib.evaluation.
    # rollout_worker, and with it kray.rllib: neither the trainers' modules nor kray.tune
    # (two thirds of its import after numpy's), which kray.rllib's names load when used.
    import subprocess
    import sys
    code = ("import sys; from kray.rllib.evaluation.rollout_worker import RolloutWorker; "
            "print(sorted(m for m in sys.modules if m.startswith(('kray.tune', "
            "'kray.rllib.algorithms', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    # kray.rllib's names and tune.run("PPO") still find the trainers.
    code = ("import kray.rllib, kray.tune._run as r; from kray.rllib import PPOTrainer, "
            "ESConfig; assert r.get_trainable_cls('PPO') is PPOTrainer; "
            "assert r.get_trainable_cls('ES') is kray.rllib.ES; "
            "from kray.rllib.algorithms.algorithm import RolloutWorker; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "ok", out.stdout + out.stderr
    code = ("import kray.rllib as r, kray.tune._run as t; t.get_trainable_cls('PPO'); "
            "print(sorted(t._registry))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "'ES'" in out.stdout and "'PPO'" in out.stdout, out.stdout + out.stderr

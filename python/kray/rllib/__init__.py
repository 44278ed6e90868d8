# SPDX-License-Identifier: Apache-2.0
"""kray.rllib: RLlib's PPO (and ES) on kray, with CartPole built in (docs/rllib.md).

    from kray import tune
    from kray.rllib.agents.ppo import PPOTrainer
    tune.run(PPOTrainer, config={"env": "CartPole-v0"}, stop={"episode_reward_mean": 195})

The names below load their modules when first used (PEP 562): a rollout actor's process
imports kray.rllib.evaluation.rollout_worker, and with it this package, but not the
trainers' modules and kray.tune.  The trainers register "PPO" and "ES" with Tune as
their modules load (tune.run("PPO") loads them).
"""
import importlib

_WHERE = {
    "Trainer": ".algorithms.algorithm",
    "PPOTrainer": ".algorithms.ppo", "PPO": ".algorithms.ppo", "PPOConfig": ".algorithms.ppo",
    "ESTrainer": ".algorithms.es", "ES": ".algorithms.es", "ESConfig": ".algorithms.es",
    "EnvError": ".env",
}

__all__ = ["Trainer", "PPOTrainer", "PPO", "PPOConfig", "ESTrainer", "ES", "ESConfig", "EnvError"]


def register_trainables():
    """Loads the trainers' modules, which register "PPO" and "ES" with Tune."""
    importlib.import_module(".algorithms.ppo", __name__)
    importlib.import_module(".algorithms.es", __name__)


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE))

# SPDX-License-Identifier: Apache-2.0
"""kray.rllib: RLlib's PPO (and ES) on kray, with CartPole built in (docs/rllib.md).

    from kray import tune
    from kray.rllib.agents.ppo import PPOTrainer
    tune.run(PPOTrainer, config={"env": "CartPole-v0"}, stop={"episode_reward_mean": 195})
"""
from ..tune._run import register_trainable
from .algorithms.algorithm import Trainer
from .algorithms.ppo import PPO, PPOConfig, PPOTrainer
from .algorithms.es import ES, ESConfig, ESTrainer
from .env import EnvError

register_trainable("PPO", PPOTrainer)
register_trainable("ES", ESTrainer)

__all__ = ["Trainer", "PPOTrainer", "PPO", "PPOConfig", "ESTrainer", "ES", "ESConfig", "EnvError"]

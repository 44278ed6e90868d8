# SPDX-License-Identifier: Apache-2.0
"""from kray.rllib.agents.ppo import PPOTrainer, DEFAULT_CONFIG (RLlib 1.x's path)."""
from ...algorithms.ppo import DEFAULT_CONFIG, PPO, PPOConfig, PPOTrainer  # noqa: F401

__all__ = ["PPOTrainer", "DEFAULT_CONFIG", "PPO", "PPOConfig"]

# SPDX-License-Identifier: Apache-2.0
"""RLlib's older import paths: kray.rllib.agents.ppo.PPOTrainer, agents.es.ESTrainer."""
from ..algorithms.algorithm import Trainer, COMMON_CONFIG  # noqa: F401

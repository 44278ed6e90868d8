# SPDX-License-Identifier: Apache-2.0
"""from kray.rllib.agents.es import ESTrainer, DEFAULT_CONFIG (RLlib 1.x's path)."""
from ...algorithms.es import DEFAULT_CONFIG, ES, ESConfig, ESTrainer  # noqa: F401

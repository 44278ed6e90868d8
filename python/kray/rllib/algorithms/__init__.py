# SPDX-License-Identifier: Apache-2.0
"""kray.rllib.algorithms: PPO (ppo.PPO, ppo.PPOConfig) and ES (es.ES, es.ESConfig)."""

# SPDX-License-Identifier: Apache-2.0
"""kray.rllib.evaluation: the rollout workers (rollout_worker.RolloutWorker), as RLlib's."""

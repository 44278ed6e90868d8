# SPDX-License-Identifier: Apache-2.0
"""Evolution Strategies on CartPole-v0: the rollout actors evaluate perturbations of the
policy's weights drawn from one noise table in the object store."""
import kray as ray
from kray.rllib.agents.es import ESTrainer
from kray.tune.logger import pretty_print

ray.init()
trainer = ESTrainer({"seed": 0, "num_workers": 2, "episodes_per_batch": 50,
                     "train_batch_size": 2000, "noise_size": 2_000_000,
                     "model": {"fcnet_hiddens": [16]}, "eval_prob": 0.05,
                     "stepsize": 0.05, "noise_stdev": 0.05}, env="CartPole-v0")
for i in range(100):
    result = trainer.train()
    if result["episode_reward_mean"] >= 195:
        break
print(pretty_print({k: result[k] for k in ("episode_reward_mean", "training_iteration",
                                           "timesteps_total", "time_total_s")}), end="")
trainer.stop()

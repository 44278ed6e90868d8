# SPDX-License-Identifier: Apache-2.0
"""The seed's third program, with kray in place of ray:

    from ray import tune
    from ray.rllib.agents.ppo import PPOTrainer
    tune.run(PPOTrainer, config={"env": "CartPole-v0"})

As in Ray, tune.run without `stop` trains for ever: a stop criterion ends it when
CartPole-v0 is solved (mean reward >= 195 over the last 100 episodes).  With RLlib's
default PPO settings (two 256-wide layers, 30 SGD passes per iteration) each iteration
takes ~40 s with Debian's torch on 2 cores; --fast uses a smaller network (~10 s)."""
import sys

import kray as ray
from kray import tune
from kray.rllib.agents.ppo import PPOTrainer

config = {"env": "CartPole-v0"}
if "--fast" in sys.argv:
    config.update(seed=0, lr=3e-4, num_sgd_iter=6, model={"fcnet_hiddens": [64, 64]})

ray.init()
analysis = tune.run(PPOTrainer, config=config, stop={"episode_reward_mean": 195},
                    verbose=1)
result = analysis.trials[0].last_result
print(f"solved: episode_reward_mean {result['episode_reward_mean']:.1f} after "
      f"{result['training_iteration']} iterations ({result['time_total_s']:.1f} s)")

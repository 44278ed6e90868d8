# SPDX-License-Identifier: Apache-2.0
"""CartPole-v0 and CartPole-v1: the classic cart-pole (Barto, Sutton and Anderson), the
equations of gym's classic_control/cartpole.py, with gymnasium's interface:
reset(seed=, options=) -> (obs, info) and step(a) -> (obs, reward, terminated,
truncated, info).  Episodes are truncated at 200 steps (v0) or 500 (v1)."""
import math

import numpy as np

from .spaces import Box, Discrete


class CartPoleEnv:
    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    total_mass = masspole + masscart
    length = 0.5  # half the pole's length
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self, env_config=None, max_episode_steps=200, reward_threshold=195.0):
        env_config = dict(env_config or {})
        self.max_episode_steps = int(env_config.pop("max_episode_steps", max_episode_steps))
        self.reward_threshold = reward_threshold
        if env_config:
            raise ValueError(f"CartPole has no env_config keys {sorted(env_config)} (it "
                             "takes max_episode_steps)")
        high = np.array([self.x_threshold * 2, np.finfo(np.float32).max,
                         self.theta_threshold_radians * 2, np.finfo(np.float32).max],
                        dtype=np.float32)
        self.action_space = Discrete(2)
        self.observation_space = Box(-high, high, dtype=np.float32)
        self._rng = np.random.default_rng()
        self.state = None
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.state = [float(v) for v in self._rng.uniform(-0.05, 0.05, size=4)]
        self.steps = 0
        return np.array(self.state, dtype=np.float32), {}

    def step(self, action):
        if self.state is None:
            raise RuntimeError("CartPole: call reset() before step()")
        if action not in (0, 1):
            raise ValueError(f"CartPole's actions are 0 and 1, got {action!r}")
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        costheta, sintheta = math.cos(theta), math.sin(theta)
        temp = (force + self.polemass_length * theta_dot * theta_dot * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta * costheta / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x += self.tau * x_dot
        x_dot += self.tau * xacc
        theta += self.tau * theta_dot
        theta_dot += self.tau * thetaacc
        self.state = [x, x_dot, theta, theta_dot]
        self.steps += 1
        terminated = (x < -self.x_threshold or x > self.x_threshold or
                      theta < -self.theta_threshold_radians or
                      theta > self.theta_threshold_radians)
        truncated = not terminated and self.steps >= self.max_episode_steps
        return np.array(self.state, dtype=np.float32), 1.0, terminated, truncated, {}

    def close(self):
        pass


def cartpole_v0(env_config=None):
    return CartPoleEnv(env_config, 200, 195.0)


def cartpole_v1(env_config=None):
    return CartPoleEnv(env_config, 500, 475.0)

# SPDX-License-Identifier: Apache-2.0
"""Environments: CartPole-v0/v1 built in, others by tune.register_env(name, creator) or
as a class (env_class(env_config)).  Any object with gymnasium's reset/step plugs in; the
older gym interface (reset() -> obs, step() -> 4-tuple) is adapted."""
from .cartpole import CartPoleEnv, cartpole_v0, cartpole_v1
from .spaces import Box, Discrete

BUILTIN = {"CartPole-v0": cartpole_v0, "CartPole-v1": cartpole_v1}


class EnvError(ValueError):
    """An env that does not exist, or does not behave as one."""


class _OldGym:
    """gym < 0.26's interface adapted to gymnasium's."""

    def __init__(self, env):
        self.env = env
        self.action_space = env.action_space
        self.observation_space = env.observation_space

    def reset(self, *, seed=None, options=None):
        if seed is not None and hasattr(self.env, "seed"):
            self.env.seed(seed)
        return self.env.reset(), {}

    def step(self, action):
        obs, r, done, info = self.env.step(action)
        truncated = bool(info.get("TimeLimit.truncated", False)) if isinstance(info, dict) \
            else False
        return obs, r, done and not truncated, truncated, info

    def close(self):
        if hasattr(self.env, "close"):
            self.env.close()


def make_env(env, env_config=None):
    """An env instance from a registered name, a built-in name, a class or a creator."""
    from ...tune.registry import _env_creator, _envs
    if env is None:
        raise EnvError("No env given: set config['env'] (e.g. 'CartPole-v0') or pass env=")
    if isinstance(env, str):
        creator = _env_creator(env) or BUILTIN.get(env)
        if creator is None:
            raise EnvError(
                f"The env string you provided ({env!r}) is not a known environment: kray "
                f"has {sorted(BUILTIN)} built in (gymnasium is not packaged in Debian), and "
                f"tune.register_env() added {sorted(_envs) or 'none'}. Register yours with "
                "tune.register_env(name, lambda env_config: MyEnv(env_config)), or pass "
                "the env class itself.")
        inst = creator(dict(env_config or {}))
    elif callable(env):
        inst = env(dict(env_config or {}))
    else:
        raise EnvError(f"config['env'] must be a name or an env class, got "
                       f"{type(env).__name__}")
    for attr in ("reset", "step", "action_space", "observation_space"):
        if not hasattr(inst, attr):
            raise EnvError(f"{type(inst).__name__} is not an env: it has no {attr}")
    probe = getattr(inst.reset, "__code__", None)
    if probe is not None and "seed" not in probe.co_varnames:
        inst = _OldGym(inst)
    return inst


__all__ = ["CartPoleEnv", "Box", "Discrete", "EnvError", "make_env"]

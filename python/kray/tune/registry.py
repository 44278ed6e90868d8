# SPDX-License-Identifier: Apache-2.0
"""Ray's ray.tune.registry: register_env (environments by name, for RLlib) and
register_trainable."""
from ._run import get_trainable_cls, register_trainable  # noqa: F401

_envs = {}


def register_env(name, env_creator):
    """Registers env_creator(env_config) -> env under name, for config["env"]."""
    if not isinstance(name, str) or not name:
        raise ValueError("register_env() needs a non-empty name")
    if not callable(env_creator):
        raise TypeError("register_env() takes a function env_config -> env")
    _envs[name] = env_creator


def _env_creator(name):
    return _envs.get(name)

# SPDX-License-Identifier: Apache-2.0
"""``ray.runtime_env``: RuntimeEnv and RuntimeEnvConfig (kray/runtime_env/runtime_env.py);
docs/python.md, "Runtime environments"."""
from .runtime_env import RuntimeEnv, RuntimeEnvConfig  # noqa: F401

__all__ = ["RuntimeEnv", "RuntimeEnvConfig"]

# SPDX-License-Identifier: Apache-2.0
"""``ray.runtime_context``: RuntimeContext and get_runtime_context()."""
from . import RuntimeContext, get_runtime_context  # noqa: F401

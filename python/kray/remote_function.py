# SPDX-License-Identifier: Apache-2.0
"""``ray.remote_function``: the type of a ``@remote`` function."""
from ._remote import RemoteFunction  # noqa: F401

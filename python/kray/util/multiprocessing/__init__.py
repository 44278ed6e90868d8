# SPDX-License-Identifier: Apache-2.0
"""kray.util.multiprocessing: the standard library's multiprocessing.Pool on kray actors
(Ray's ray.util.multiprocessing)."""
from multiprocessing import TimeoutError

from .pool import AsyncResult, IMapIterator, Pool

__all__ = ["Pool", "AsyncResult", "IMapIterator", "TimeoutError"]

# SPDX-License-Identifier: Apache-2.0
"""kray.util: Ray's ray.util helpers on kray (docs/util.md).

    ActorPool            a fixed set of actors fed with work (map, map_unordered, submit)
    Queue                an actor-backed FIFO queue shared by tasks and actors
    multiprocessing.Pool the standard library's Pool, on kray actors
    joblib.register_ray  a joblib backend ("kray", also "ray"): scikit-learn's n_jobs on kray

Placement groups are not here: see docs/util.md for why and what krayd would need.
"""
from .actor_pool import ActorPool
from .queue import Queue, Empty, Full
from . import multiprocessing  # noqa: F401 (ray.util.multiprocessing.Pool)

__all__ = ["ActorPool", "Queue", "Empty", "Full", "placement_group"]


def placement_group(*args, **kwargs):
    """Not available: kray's daemon cannot reserve resources for a group of bundles yet
    (docs/util.md says what it would need).  Raising is better than pretending."""
    raise NotImplementedError(
        "kray has no placement groups yet: krayd cannot reserve bundles of resources "
        "(see docs/util.md, 'Placement groups'); use num_cpus/resources on each task or "
        "actor instead")

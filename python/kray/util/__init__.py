# SPDX-License-Identifier: Apache-2.0
"""kray.util: Ray's ray.util helpers on kray (docs/util.md).

    ActorPool            a fixed set of actors fed with work (map, map_unordered, submit)
    Queue                an actor-backed FIFO queue shared by tasks and actors
    multiprocessing.Pool the standard library's Pool, on kray actors
    joblib.register_ray  a joblib backend ("kray", also "ray"): scikit-learn's n_jobs on kray

    placement_group      bundles of resources reserved on a node or across the cluster
    metrics              Counter, Gauge, Histogram (kray.util.metrics), served by krayd's
                         Prometheus endpoint
"""
from .actor_pool import ActorPool
from .queue import Queue, Empty, Full
from . import multiprocessing  # noqa: F401 (ray.util.multiprocessing.Pool)

from . import scheduling_strategies  # noqa: F401 (ray.util.scheduling_strategies)
from .placement_group import (PlacementGroup, placement_group, remove_placement_group,
                              get_placement_group, placement_group_table,
                              get_current_placement_group)

__all__ = ["ActorPool", "Queue", "Empty", "Full", "placement_group", "PlacementGroup",
           "remove_placement_group", "get_placement_group", "placement_group_table",
           "get_current_placement_group", "get_node_ip_address",
           "list_named_actors",
           "inspect_serializability", "register_serializer", "deregister_serializer"]


def list_named_actors(all_namespaces=False):
    """The live named actors: their names in this job's namespace, or with
    all_namespaces=True a dict per actor with its name and namespace (Ray's)."""
    from .. import _kray, _remote
    out = []
    for a in _kray.list_actors():
        if not a["name"] or a["state"] == 3:  # KRAY_ACTOR_DEAD
            continue
        if all_namespaces:
            out.append({"name": a["name"], "namespace": a["namespace"]})
        elif a["namespace"] == _remote.namespace[0]:
            out.append(a["name"])
    return out


def get_node_ip_address(address="8.8.8.8:53"):
    """This machine's address toward the network (Ray's helper; no packet is sent)."""
    import socket
    host, _, port = address.rpartition(":")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, int(port)))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def inspect_serializability(base_obj, name=None, depth=3, print_file=None):
    """(serializable, failures) as Ray's: tries cloudpickle on the object, then on its
    members, and names those that fail."""
    import cloudpickle
    failures = set()

    def check(obj, label, left):
        try:
            cloudpickle.dumps(obj)
            return True
        except Exception as e:  # noqa: B902 (any pickling error is the answer)
            if left <= 0:
                failures.add((label, type(e).__name__))
                return False
            members = getattr(obj, "__dict__", None) or {}
            if callable(obj) and getattr(obj, "__closure__", None):
                names = obj.__code__.co_freevars
                members = {n: c.cell_contents for n, c in zip(names, obj.__closure__)}
            found = False
            for k, v in list(members.items()):
                if not check(v, f"{label}.{k}", left - 1):
                    found = True
            if not found:
                failures.add((label, type(e).__name__))
            return False

    ok = check(base_obj, name or getattr(base_obj, "__name__", type(base_obj).__name__), depth)
    if print_file is not None and not ok:
        print(f"not serializable: {sorted(failures)}", file=print_file)
    return ok, failures


def register_serializer(cls, *, serializer, deserializer):
    """Values of cls travel as serializer(value), rebuilt by deserializer(...) (Ray's
    ray.util.register_serializer), in this process's calls and puts."""
    import copyreg
    copyreg.pickle(cls, lambda obj: (deserializer, (serializer(obj),)))


def deregister_serializer(cls):
    import copyreg
    copyreg.dispatch_table.pop(cls, None)

# SPDX-License-Identifier: Apache-2.0
"""Placement groups (Ray's ray.util.placement_group, docs/util.md).

krayd reserves a group's bundles all at once (daemon/core/pgroup.c, the head's placement
in a cluster) and gives the node the group's own resources under Ray's names:
CPU_group_<i>_<id> for bundle i, CPU_group_<id> for any bundle, the same for each custom
resource, and bundle_group_<i>_<id> / bundle_group_<id>.  A task or actor in the group
asks for those instead of CPU and its custom resources (group_resources() below), so the
reserved resources serve the group's work only.
"""
import json
import time

STRATEGIES = {"PACK": 0, "SPREAD": 1, "STRICT_PACK": 2, "STRICT_SPREAD": 3}


def _kray():
    from .. import _kray as k
    return k


class PlacementGroup:
    """A handle on a placement group: its id, its bundles; ready() and wait()."""

    def __init__(self, id, bundle_specs=None):
        self.id = id
        self._bundles = bundle_specs

    @property
    def bundle_specs(self):
        if self._bundles is None:
            row = _row(self.id)
            self._bundles = [dict(b) for b in row["bundles"]] if row else []
        return self._bundles

    @property
    def bundle_count(self):
        return len(self.bundle_specs)

    def ready(self):
        """An ObjectRef that is ready (its value: this group) once every bundle is
        reserved: a task of no CPU that asks for the group's bundle resource, which krayd
        holds while the group is pending (Ray's way)."""
        from .. import _remote
        fn = _ready_fn()
        return fn.options(num_cpus=0, resources={f"bundle_group_{self.id}": 0.001}).remote(
            self)

    def wait(self, timeout_seconds=30):
        """True once the group is reserved, False after timeout_seconds (Ray's)."""
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        delay = 0.001
        while True:
            row = _row(self.id)
            if row is None or row["state"] == "REMOVED":
                return False
            if row["state"] == "CREATED":
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def __eq__(self, other):
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"PlacementGroup(id={self.id!r})"

    def __reduce__(self):
        return (PlacementGroup, (self.id, self._bundles))


_ready = []


def _ready_fn():
    if not _ready:
        from .. import remote

        @remote(num_cpus=0)
        def placement_group_ready(pg):
            return pg
        _ready.append(placement_group_ready)
    return _ready[0]


def _qty(v):
    return f"{round(v, 3):g}" if v < 1e6 else str(int(v))


def placement_group(bundles, strategy="PACK", name="", lifetime=None, _max_cpu_fraction_per_node=None):
    """Reserves bundles of resources (a list of dicts: {"CPU": 1, "GPU": 1, "custom": 2})
    as one group, placed per strategy: PACK (as few nodes as it can), SPREAD (as many as it
    can), STRICT_PACK (one node, or it waits), STRICT_SPREAD (one node per bundle, or it
    waits).  Returns at once: the group may be pending (pg.ready(), pg.wait())."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Invalid placement group strategy {strategy!r}: one of "
                         f"{', '.join(STRATEGIES)}")
    if not isinstance(bundles, (list, tuple)) or not bundles:
        raise ValueError("The placement group `bundles` argument cannot contain an empty list")
    if lifetime not in (None, "detached"):
        raise ValueError("placement group `lifetime` argument must be either `None` or "
                         "'detached'")
    specs = []
    for b in bundles:
        if not isinstance(b, dict) or not b:
            raise ValueError("Bundles must be a non-empty dict of resources, got "
                             f"{b!r}")
        if any(not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0
               for v in b.values()):
            raise ValueError(f"Bundle resources must be numbers >= 0, got {b!r}")
        if all(v == 0 for v in b.values()):
            raise ValueError(f"Bundles cannot be empty or all zero: {b!r}")
        specs.append({k: float(v) for k, v in b.items() if v})
    text = ";".join(",".join(f"{k}:{_qty(v)}" for k, v in sorted(s.items())) for s in specs)
    pg_id = _kray().pg_create(text, STRATEGIES[strategy], name or None,
                              lifetime == "detached")
    return PlacementGroup(pg_id, specs)


def remove_placement_group(placement_group):
    """Frees the group's resources, kills its actors and fails its queued tasks."""
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError("remove_placement_group takes a PlacementGroup")
    _kray().pg_remove(placement_group.id)


def _table():
    return json.loads(_kray().pg_table())


def _row(pg_id):
    for row in _table():
        if row["placement_group_id"] == pg_id:
            return row
    return None


def _ray_row(row):
    return {"placement_group_id": row["placement_group_id"], "name": row["name"],
            "strategy": row["strategy"], "state": row["state"],
            "bundles": {i: dict(b) for i, b in enumerate(row["bundles"])},
            "bundles_to_node_id": {i: n for i, n in enumerate(row["bundles_to_node_id"])},
            "stats": {"scheduling_state": row["why"] or "FINISHED"},
            "is_detached": row["detached"]}


def placement_group_table(placement_group=None):
    """Ray's table: {id: row} (or the row of one group): name, strategy, state (PENDING,
    CREATED, REMOVED), bundles, bundles_to_node_id, stats (what a pending group waits for:
    'infeasible: ...' when it never can be placed as it stands)."""
    if placement_group is not None:
        row = _row(placement_group.id)
        return _ray_row(row) if row else {}
    return {row["placement_group_id"]: _ray_row(row) for row in _table()}


def get_placement_group(placement_group_name):
    """The live group of that name; ValueError when there is none (Ray's)."""
    for row in _table():
        if row["name"] == placement_group_name and row["state"] != "REMOVED":
            return PlacementGroup(row["placement_group_id"],
                                  [dict(b) for b in row["bundles"]])
    raise ValueError(f"Failed to look up placement group with name: {placement_group_name}")


def get_current_placement_group():
    """The group the calling task or actor was placed in (None in a driver, or in work
    outside any group), as Ray's."""
    from .._remote import group_context
    ctx = group_context[0]
    return None if ctx is None else PlacementGroup(ctx[0], ctx[1])


def capturing():
    """Whether work submitted from here goes into the current group by default (Ray's
    RuntimeContext.should_capture_child_tasks_in_placement_group)."""
    from .._remote import group_context
    ctx = group_context[0]
    return bool(ctx and ctx[2])


def captured(opts):
    """Ray's placement_group_capture_child_tasks: inside a task or actor placed with
    capture on, a task or actor submitted with no scheduling_strategy (None) and no
    placement_group option (or "default") goes into the same group, any bundle, and
    captures its own children in turn.  scheduling_strategy="DEFAULT" (or "SPREAD", or
    a node affinity), PlacementGroupSchedulingStrategy(placement_group=None) and the older
    placement_group=None opt out.  Returns the options to submit with, or None."""
    from .._remote import group_context
    ctx = group_context[0]
    if ctx is None or not ctx[2] or opts.get("scheduling_strategy") is not None or \
            opts.get("placement_group", "default") != "default":
        return None
    from .scheduling_strategies import PlacementGroupSchedulingStrategy
    out = {k: v for k, v in opts.items() if k not in ("placement_group",
                                                      "placement_group_bundle_index",
                                                      "placement_group_capture_child_tasks")}
    out["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
        PlacementGroup(ctx[0], ctx[1]), -1, True)
    return out


def call_context(opts):
    """What a task or actor placed in a group learns of it (sent with its arguments):
    (group id, bundles, capture).  capture None (the default) is the submitter's own."""
    from .scheduling_strategies import PlacementGroupSchedulingStrategy
    where = in_group(opts)
    if where is None:
        return None
    s = opts.get("scheduling_strategy")
    if isinstance(s, PlacementGroupSchedulingStrategy):
        capture = s.placement_group_capture_child_tasks
    else:
        capture = opts.get("placement_group_capture_child_tasks")
    if capture is None:
        capture = capturing()
    pg = where[0]
    return (pg.id, pg._bundles, bool(capture))


def in_group(opts):
    """(group, bundle index) of a task's or actor's options, or None: from
    scheduling_strategy=PlacementGroupSchedulingStrategy(...) or the older
    placement_group= / placement_group_bundle_index= options."""
    from .scheduling_strategies import PlacementGroupSchedulingStrategy
    s = opts.get("scheduling_strategy")
    if isinstance(s, PlacementGroupSchedulingStrategy):
        pg, index = s.placement_group, s.placement_group_bundle_index
    else:
        pg, index = opts.get("placement_group"), opts.get("placement_group_bundle_index", -1)
    if pg is None or pg == "default":
        return None
    return pg, index


def resources_in_group(opts, cpus):
    """krayd's resources text for options in a group (a task holds 1 CPU of its bundle
    unless it says otherwise; an actor only what it says)."""
    pg, index = in_group(opts)
    return group_resources(pg, index, opts.get("num_cpus"), opts.get("num_gpus"),
                           opts.get("resources"), 1 if cpus else 0)


def wait_placed(opts):
    """An actor in a group is made once the group is reserved: waits for it (krayd
    places an actor at once), and refuses a group that is removed or cannot be placed."""
    pg, _ = in_group(opts)
    delay = 0.001
    while True:
        row = _row(pg.id)
        if row is None or row["state"] == "REMOVED":
            raise ValueError(f"placement group {pg.id} does not exist or was removed")
        if row["state"] == "CREATED":
            return
        if row["why"].startswith("infeasible"):
            raise ValueError(f"placement group {pg.id} cannot be placed: {row['why']}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def group_resources(pg, index, num_cpus, num_gpus, resources, default_cpus):
    """The resources text of a task or actor in pg (bundle index, -1 for any): its CPU,
    GPU and custom resources renamed to the group's, plus the bundle's marker."""
    if not isinstance(pg, PlacementGroup):
        raise TypeError(f"placement_group must be a PlacementGroup, got {type(pg).__name__}")
    if index is None:
        index = -1
    if not isinstance(index, int) or index < -1 or (
            pg._bundles is not None and index >= len(pg._bundles)):
        raise ValueError(f"placement_group_bundle_index {index} is out of range for a group "
                         f"of {pg.bundle_count} bundles")
    sfx = f"{index}_{pg.id}" if index >= 0 else pg.id
    want = dict(resources or {})
    cpus = default_cpus if num_cpus is None else num_cpus
    if cpus:
        want["CPU"] = cpus
    if num_gpus:
        want["GPU"] = num_gpus
    out = {f"{k}_group_{sfx}": v for k, v in want.items() if v}
    out[f"bundle_group_{sfx}"] = 0.001
    if default_cpus:
        out["CPU"] = 0  # a task: its CPU is the bundle's, not one of the node's free slots
    return ",".join(f"{k}:{_qty(v)}" for k, v in sorted(out.items()))

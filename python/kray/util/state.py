# SPDX-License-Identifier: Apache-2.0
"""kray.util.state: Ray's state API (ray.util.state) on kray, so that scripts read the
cluster without parsing text (docs/state.md).

    list_nodes()    this node (or every node of the cluster)
    list_actors()   the actors krayd knows (alive, pending, dead)
    list_tasks()    the tasks krayd's workers ran, from its timeline ring (docs/timeline.md)
    list_objects()  the largest objects in krayd's store

Each returns a list of dicts with Ray's key names where kray has the data (task_id, name,
state, node_id, actor_id, class_name, object_id, object_size, ...), and takes Ray's
arguments: filters=[(key, "=" or "!=", value), ...], limit= (default 100, as Ray's) and
detail= (False: Ray's default columns; True: every field kray has).  Ids are hex strings,
as get_runtime_context() gives them.  What kray cannot answer yet is in docs/state.md.
"""
import json

from .. import _kray

DEFAULT_LIMIT = 100

__all__ = ["list_nodes", "list_actors", "list_tasks", "list_objects"]

_ACTOR_STATES = {0: "PENDING_CREATION", 1: "PENDING_CREATION", 2: "ALIVE", 3: "DEAD"}


def _connected():
    if not _kray.connected():
        raise RuntimeError("kray.util.state needs kray.init() first")


def _label(name):
    """A function's or class's name as Ray shows it: kray_py_task:mod.f -> f."""
    if ":" in name and name.split(":", 1)[0] in ("kray_py_task", "kray_py_actor", "call"):
        name = name.split(":", 1)[1]
    return name.rsplit(".", 1)[-1]


def _match(row, filters):
    for f in filters or ():
        if len(f) != 3:
            raise ValueError(f"a filter is (key, predicate, value), not {f!r}")
        key, pred, value = f
        if pred not in ("=", "!="):
            raise ValueError(f"unsupported filter predicate {pred!r} (use '=' or '!=')")
        if key not in row:
            raise ValueError(f"unknown filter key {key!r}; known: {sorted(row)}")
        have = row[key]
        equal = str(have).lower() == str(value).lower() if isinstance(value, str) \
            or isinstance(have, str) else have == value
        if equal != (pred == "="):
            return False
    return True


def _select(rows, filters, limit, detail, columns):
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    out = []
    for row in rows:
        if not _match(row, filters):
            continue
        out.append(row if detail else {k: row[k] for k in columns if k in row})
        if limit is not None and len(out) >= limit:
            break
    return out


def list_nodes(filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
               raise_on_missing_output=True, _explain=False):
    """A dict per node: node_id, node_ip, is_head_node, state (ALIVE or DEAD),
    resources_total; with detail also num_cpus, workers, workers_busy, tasks_queued,
    tasks_finished, store_mib."""
    _connected()
    rows = []
    for n in _kray.list_nodes():
        res = {"CPU": float(n["num_cpus"])}
        for item in filter(None, n["resources"].split(",")):
            k, _, q = item.partition(":")
            res[k.strip()] = float(q)
        rows.append({"node_id": f"{n['node']:08x}", "node_ip": n["address"],
                     "is_head_node": n["head"], "state": "ALIVE" if n["alive"] else "DEAD",
                     "node_name": n["address"], "resources_total": res,
                     "num_cpus": n["num_cpus"], "workers": n["workers"],
                     "workers_busy": n["workers_busy"], "tasks_queued": n["tasks_queued"],
                     "tasks_finished": n["tasks_finished"], "store_mib": n["store_mib"]})
    if not rows:  # one node, no cluster: this krayd
        st = _kray.status()
        rows.append({"node_id": f"{st['node']:08x}", "node_ip": "127.0.0.1",
                     "is_head_node": True, "state": "ALIVE", "node_name": "127.0.0.1",
                     "resources_total": {"CPU": float(st["num_cpus"])},
                     "num_cpus": st["num_cpus"], "workers": st["workers"],
                     "workers_busy": st["workers_busy"], "tasks_queued": st["tasks_queued"],
                     "tasks_finished": st["tasks_finished"],
                     "store_mib": st["store_bytes"] >> 20})
    return _select(rows, filters, limit, detail,
                   ("node_id", "node_ip", "is_head_node", "state", "node_name",
                    "resources_total"))


def _actor_rows():
    rows = []
    node = f"{_kray.ids()[0]:08x}"
    for a in _kray.list_actors():
        rows.append({"actor_id": "%08x%08x%08x%08x" % a["actor_id"],
                     "class_name": _label(a["class_name"]),
                     "state": _ACTOR_STATES.get(a["state"], "UNKNOWN"),
                     "name": a["name"], "ray_namespace": a["namespace"],
                     "pid": a["pid"] or None, "node_id": f"{a['actor_id'][0]:08x}",
                     "num_restarts": a["restarts"],
                     "calls_in_flight": a["calls_in_flight"], "detail": a["detail"],
                     "death_cause": a["detail"] if a["state"] == 3 else None,
                     # What a pending or starting actor waits for (krayd's own words).
                     "pending_reason": a["detail"] if a["state"] in (0, 1) else None,
                     "is_local": f"{a['actor_id'][0]:08x}" == node})
    return rows


def list_actors(filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
                raise_on_missing_output=True, _explain=False):
    """A dict per actor krayd knows: actor_id, class_name, state (PENDING_CREATION, ALIVE,
    DEAD), name, ray_namespace, pid, node_id (its creator's node); with detail also
    num_restarts, calls_in_flight, death_cause, pending_reason (what a pending actor waits
    for: constructor arguments, CPU slots or a resource, its worker process) and kray's own
    detail line."""
    _connected()
    return _select(_actor_rows(), filters, limit, detail,
                   ("actor_id", "class_name", "state", "name", "ray_namespace", "pid",
                    "node_id"))


def list_tasks(filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
               raise_on_missing_output=True, _explain=False):
    """A dict per task in krayd's timeline ring (tasks its workers ran, oldest first),
    then those still running or queued: task_id, name, state (FINISHED, FAILED, RUNNING,
    SUBMITTED_TO_WORKER, PENDING_NODE_ASSIGNMENT, PENDING_ARGS_AVAIL,
    PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY), job_id, node_id, worker_id (None: not on
    a worker yet), actor_id, type (NORMAL_TASK, ACTOR_TASK, ACTOR_CREATION_TASK),
    func_or_class_name; with detail also creation_time_ms, start_time_ms, end_time_ms
    (None until it ends), queue_ms, language and error_message (docs/state.md)."""
    _connected()
    classes = {a["actor_id"]: a["class_name"] for a in _actor_rows()}
    rows = []
    for e in json.loads(_kray.timeline())["traceEvents"]:
        if e.get("ph") != "X":
            continue
        a = e["args"]
        raw = e["name"]
        actor = a.get("actor_id")
        if actor is None:
            kind, name = "NORMAL_TASK", _label(raw)
        elif raw.startswith("kray_py_actor:") or raw == classes.get(actor):
            kind, name = "ACTOR_CREATION_TASK", f"{_label(raw)}.__init__"
        else:
            kind = "ACTOR_TASK"
            name = f"{classes[actor]}.{_label(raw)}" if actor in classes else _label(raw)
        rows.append({"task_id": a["task_id"], "name": name, "state": a["state"],
                     "job_id": a["job_id"], "node_id": f"{e['pid']:08x}",
                     "worker_id": f"{e['tid']:08x}" if e["tid"] else None,
                     "actor_id": actor, "type": kind,
                     "func_or_class_name": raw,
                     "language": "PYTHON" if raw.startswith(("kray_py_", "call:"))
                     else "C",
                     "creation_time_ms": a["submit_ts"] / 1000,
                     "start_time_ms": e["ts"] / 1000 if e["tid"] else None,
                     "end_time_ms": a["end_ts"] / 1000 if "end_ts" in a else None,
                     "queue_ms": a["queue_us"] / 1000,
                     # krayd's error text of a FAILED task (a C task's kray_fail(), a
                     # cancel); None for an exception a Python task raised (kray.get()
                     # raises it with its traceback).
                     "error_message": a.get("error")})
    return _select(rows, filters, limit, detail,
                   ("task_id", "name", "state", "job_id", "node_id", "worker_id",
                    "actor_id", "type", "func_or_class_name"))


def list_objects(filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
                 raise_on_missing_output=True, _explain=False):
    """A dict per object in krayd's store, the largest first (10,000 at most): object_id,
    object_size, task_status (FINISHED, PENDING), type (TASK_RETURN, PUT, ACTOR_HANDLE),
    location (INLINE, SHARED_MEMORY, SPILLED, NONE); with detail also task_id, refs (the
    references krayd counts), pins (views mapped) and error."""
    _connected()
    rows = json.loads(_kray.objects())["objects"]
    return _select(rows, filters, limit, detail,
                   ("object_id", "object_size", "task_status", "type", "location"))

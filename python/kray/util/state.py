# SPDX-License-Identifier: Apache-2.0
"""kray.util.state: Ray's state API (ray.util.state) on kray, so that scripts read the
cluster without parsing text (docs/state.md).

    list_nodes()    this node (or every node of the cluster)
    list_actors()   the actors krayd knows (alive, pending, dead)
    list_tasks()    the tasks krayd's workers ran, from its timeline ring (docs/timeline.md)
    list_objects()  the largest objects in krayd's store
    list_workers()  krayd's worker processes and the drivers connected to it
    list_jobs()     the jobs of the drivers connected now
    list_placement_groups()  the placement groups
    get_node(id), get_actor(id), get_task(id or ref), get_worker(id),
    get_placement_group(id), get_objects(id): one entry with every field, None if unknown
    summarize_tasks(), summarize_actors(), summarize_objects(): Ray's summaries

Each returns a list of dicts with Ray's key names where kray has the data (task_id, name,
state, node_id, actor_id, class_name, object_id, object_size, ...), and takes Ray's
arguments: filters=[(key, "=" or "!=", value), ...], limit= (default 100, as Ray's) and
detail= (False: Ray's default columns; True: every field kray has).  Ids are hex strings,
as get_runtime_context() gives them.  What kray cannot answer yet is in docs/state.md.
"""
import json

from .. import _kray

DEFAULT_LIMIT = 100

__all__ = ["list_nodes", "list_actors", "list_tasks", "list_objects", "list_workers",
           "list_jobs", "list_placement_groups", "list_runtime_envs", "get_node", "get_actor",
           "get_task", "get_worker", "get_placement_group", "get_objects",
           "summarize_tasks", "summarize_actors", "summarize_objects"]

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


class _Row(dict):
    """A listed entry: a dict with Ray's keys that also reads them as attributes
    (row.state), as Ray's state dataclasses (ActorState, TaskState, ...) do both."""

    __slots__ = ()

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _select(rows, filters, limit, detail, columns):
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    out = []
    for row in rows:
        if not _match(row, filters):
            continue
        out.append(_Row(row) if detail else _Row((k, row[k]) for k in columns if k in row))
        if limit is not None and len(out) >= limit:
            break
    return out


def list_nodes(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None,
               detail=False, raise_on_missing_output=True, _explain=False):
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


def list_actors(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
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


def list_tasks(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
               raise_on_missing_output=True, _explain=False):
    """A dict per task in krayd's timeline ring (tasks its workers ran, oldest first),
    then those still running or queued: task_id, name, state (FINISHED, FAILED, RUNNING,
    SUBMITTED_TO_WORKER, PENDING_NODE_ASSIGNMENT, PENDING_ARGS_AVAIL,
    PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY), job_id, node_id, worker_id (None: not on
    a worker yet), actor_id, type (NORMAL_TASK, ACTOR_TASK, ACTOR_CREATION_TASK),
    func_or_class_name; with detail also function (krayd's name of what ran:
    kray_py_task:module.f, call:method, a C function's), creation_time_ms,
    start_time_ms, end_time_ms (None until it ends), queue_ms, language and
    error_message (docs/state.md)."""
    _connected()
    classes = {a["actor_id"]: a["class_name"] for a in _actor_rows()}
    wids = {w["krayd_worker"]: w["worker_id"] for w in _worker_rows()
            if w["krayd_worker"] is not None and w["worker_id"]}
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
                     "worker_id": wids.get(e["tid"], f"{e['tid']:08x}") if e["tid"]
                     else None,
                     "actor_id": actor, "type": kind,
                     # Ray's (f, Class.method, Class.__init__): kray has no
                     # per-call name here, so it is the same as name.
                     "func_or_class_name": name, "function": raw,
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


def list_objects(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
                 raise_on_missing_output=True, _explain=False):
    """A dict per object in krayd's store, the largest first (10,000 at most): object_id,
    object_size, task_status (FINISHED, PENDING), type (TASK_RETURN, PUT, ACTOR_HANDLE),
    location (INLINE, SHARED_MEMORY, SPILLED, NONE); with detail also task_id, refs (the
    references krayd counts), pins (views mapped) and error."""
    _connected()
    rows = json.loads(_kray.objects())["objects"]
    return _select(rows, filters, limit, detail,
                   ("object_id", "object_size", "task_status", "type", "location"))


def _worker_rows():
    """krayd's worker processes, then its drivers (KRAY_MSG_LIST_WORKERS)."""
    data = json.loads(_kray.workers())
    node = data["node_id"]
    ip = _node_ip(node)
    rows = []
    for w in data["workers"]:
        client = w["client_id"]
        rows.append({"worker_id": f"{node}{client:08x}" if client else None,
                     "is_alive": w["state"] != "DEAD", "worker_type": "WORKER",
                     "exit_type": None, "node_id": node, "ip": ip, "pid": w["pid"],
                     "exit_detail": None, "job_id": None,
                     "krayd_worker": w["worker_id"], "state": w["state"],
                     "tasks_in_flight": w["tasks_in_flight"],
                     "tasks_done": w["tasks_done"], "current_task": w.get("task"),
                     "actor_id": w.get("actor_id"), "start_time_ms": None,
                     "language": "PYTHON"})
    for c in data["drivers"]:
        rows.append({"worker_id": f"{node}{c['client_id']:08x}", "is_alive": True,
                     "worker_type": "DRIVER", "exit_type": None, "node_id": node,
                     "ip": ip, "pid": c["pid"], "exit_detail": None, "job_id": c["job_id"],
                     "krayd_worker": None, "state": "CONNECTED", "tasks_in_flight": 0,
                     "tasks_done": 0, "current_task": None, "actor_id": None,
                     "start_time_ms": c["start_time_ms"] or None, "language": "PYTHON"})
    return rows


def _node_ip(node):
    for n in _kray.list_nodes():
        if f"{n['node']:08x}" == node:
            return n["address"].rsplit(":", 1)[0]
    return "127.0.0.1"


def list_workers(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None,
                 detail=False, raise_on_missing_output=True, _explain=False):
    """A dict per worker process of the connected krayd, then per driver connected to it:
    worker_id (node + client id, as get_runtime_context().get_worker_id() gives it inside;
    None for a worker still starting), is_alive, worker_type (WORKER, DRIVER), exit_type,
    node_id, ip, pid, exit_detail; with detail also job_id (drivers), krayd_worker (krayd's
    worker number, the timeline's tid), state (STARTING, IDLE, BUSY, BLOCKED; CONNECTED for
    a driver), tasks_in_flight, tasks_done, current_task, actor_id (the actor it hosts),
    start_time_ms (drivers) and language."""
    _connected()
    return _select(_worker_rows(), filters, limit, detail,
                   ("worker_id", "is_alive", "worker_type", "exit_type", "node_id", "ip",
                    "pid", "exit_detail"))


def list_jobs(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
              raise_on_missing_output=True, _explain=False):
    """A dict per job of a driver connected to this krayd now (kray's jobs are its
    drivers; there is no job submission server): type DRIVER, job_id, submission_id None,
    status RUNNING, entrypoint "", driver_info ({id, node_ip_address, pid}), start_time
    (ms), end_time None, metadata, runtime_env, message, driver_node_id.  Ended jobs are
    not kept (docs/state.md)."""
    _connected()
    rows = []
    for w in _worker_rows():
        if w["worker_type"] != "DRIVER":
            continue
        rows.append({"type": "DRIVER", "job_id": w["job_id"], "submission_id": None,
                     "status": "RUNNING", "entrypoint": "", "message": "",
                     "error_type": None, "start_time": w["start_time_ms"], "end_time": None,
                     "metadata": {}, "runtime_env": {},
                     "driver_info": {"id": w["worker_id"], "node_ip_address": w["ip"],
                                     "pid": str(w["pid"])},
                     "driver_agent_http_address": None, "driver_node_id": w["node_id"],
                     "driver_exit_code": None})
    return _select(rows, filters, limit, True, ())


def _pg_rows():
    rows = []
    for r in json.loads(_kray.pg_table()):
        rows.append({"placement_group_id": r["placement_group_id"], "name": r["name"],
                     "creator_job_id": r.get("creator_job_id"),
                     "state": r["state"], "strategy": r["strategy"],
                     "is_detached": r["detached"],
                     "bundles": [{"bundle_id": f"{r['placement_group_id']}:{i}",
                                  "node_id": n or None, "unit_resources": dict(b)}
                                 for i, (b, n) in enumerate(zip(r["bundles"],
                                                                r["bundles_to_node_id"]))],
                     "stats": {"scheduling_state": r["why"] or "FINISHED"}})
    return rows


def list_placement_groups(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None,
                          detail=False, raise_on_missing_output=True, _explain=False):
    """A dict per placement group (placement_group_table()): placement_group_id, name,
    creator_job_id, state (PENDING, CREATED, REMOVED), is_detached; with detail also
    bundles ([{bundle_id, node_id, unit_resources}]), strategy and stats
    ({scheduling_state})."""
    _connected()
    return _select(_pg_rows(), filters, limit, detail,
                   ("placement_group_id", "name", "creator_job_id", "state", "is_detached"))


def list_runtime_envs(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None,
                      detail=False, raise_on_missing_output=True, _explain=False):
    """The runtime envs krayd set up: [] (kray sets a runtime_env up in the process that
    runs the task, and krayd keeps no table of them: docs/state.md)."""
    _connected()
    return _select([], filters, limit, detail, ())


def _one(rows):
    return rows[0] if rows else None


def _id_str(id, what):
    if not isinstance(id, str):
        raise TypeError(f"the {what} id is a hex str, not {type(id).__name__}")
    return id


def get_node(id, address=None, timeout=None, _explain=False):
    """The node with that id (every field), or None."""
    return _one(list_nodes(filters=[("node_id", "=", _id_str(id, "node"))], limit=None,
                           detail=True))


def get_actor(id, address=None, timeout=None, _explain=False):
    """The actor with that id (every field), or None."""
    return _one(list_actors(filters=[("actor_id", "=", _id_str(id, "actor"))], limit=None,
                            detail=True))


def get_worker(id, address=None, timeout=None, _explain=False):
    """The worker or driver with that id (every field), or None."""
    return _one(list_workers(filters=[("worker_id", "=", _id_str(id, "worker"))],
                             limit=None, detail=True))


def get_placement_group(id, address=None, timeout=None, _explain=False):
    """The placement group with that id (every field), or None."""
    return _one(list_placement_groups(
        filters=[("placement_group_id", "=", _id_str(id, "placement group"))], limit=None,
        detail=True))


def get_task(id, address=None, timeout=None, _explain=False):
    """The task with that id, or of that ObjectRef (every field); None when krayd does
    not know it; a list when it ran more than once (its retries), as Ray's."""
    if not isinstance(id, str):
        if not hasattr(id, "task_id"):
            raise TypeError(f"get_task takes a task id or an ObjectRef, not "
                            f"{type(id).__name__}")
        id = id.task_id()
        id = id if isinstance(id, str) else id.hex()
    rows = list_tasks(filters=[("task_id", "=", id)], limit=None, detail=True)
    if not rows:
        return None
    return rows[0] if len(rows) == 1 else rows


def get_objects(id, address=None, timeout=None, _explain=False):
    """[the object with that id (every field)], or None when the store does not hold it
    (Ray's: a list, since Ray lists one entry per reference)."""
    rows = list_objects(filters=[("object_id", "=", _id_str(id, "object"))], limit=None,
                        detail=True)
    return rows or None


def summarize_tasks(address=None, timeout=None, raise_on_missing_output=True,
                    _explain=False):
    """Ray's task summary: {"cluster": {"summary": {name: {"func_or_class_name", "type",
    "state_counts"}}, "total_tasks", "total_actor_tasks", "total_actor_scheduled",
    "summary_by": "func_name"}}, over what list_tasks() sees."""
    summary = {}
    totals = {"NORMAL_TASK": 0, "ACTOR_TASK": 0, "ACTOR_CREATION_TASK": 0}
    for t in list_tasks(limit=None):
        key = t["func_or_class_name"]
        entry = summary.setdefault(key, {"func_or_class_name": key, "type": t["type"],
                                         "state_counts": {}})
        entry["state_counts"][t["state"]] = entry["state_counts"].get(t["state"], 0) + 1
        totals[t["type"]] += 1
    return {"cluster": {"summary": summary, "total_tasks": totals["NORMAL_TASK"],
                        "total_actor_tasks": totals["ACTOR_TASK"],
                        "total_actor_scheduled": totals["ACTOR_CREATION_TASK"],
                        "summary_by": "func_name"}}


def summarize_actors(address=None, timeout=None, raise_on_missing_output=True,
                     _explain=False):
    """Ray's actor summary: {"cluster": {"summary": {class_name: {"class_name",
    "state_counts"}}, "total_actors", "summary_by": "class"}}."""
    summary = {}
    actors = list_actors(limit=None)
    for a in actors:
        entry = summary.setdefault(a["class_name"], {"class_name": a["class_name"],
                                                     "state_counts": {}})
        entry["state_counts"][a["state"]] = entry["state_counts"].get(a["state"], 0) + 1
    return {"cluster": {"summary": summary, "total_actors": len(actors),
                        "summary_by": "class"}}


def summarize_objects(address=None, timeout=None, raise_on_missing_output=True,
                      _explain=False):
    """Ray's object summary, grouped by call site as Ray's, which kray does not record (the
    one key "disabled", callsite_enabled False, as Ray with call sites off):
    {"cluster": {"summary": {"disabled": {"total_objects", "total_size_mb",
    "total_num_workers" (the processes that own them), "total_num_nodes",
    "task_state_counts", "task_attempt_number_counts", "ref_type_counts"}},
    "total_objects", "total_size_mb", "callsite_enabled", "summary_by": "callsite"}}."""
    summary = {}
    owners, nodes = set(), set()
    total_mb = 0.0
    objs = list_objects(limit=None, detail=True)
    for o in objs:
        e = summary.setdefault("disabled", {"total_objects": 0, "total_size_mb": 0.0,
                                            "total_num_workers": 0, "total_num_nodes": 0,
                                            "task_state_counts": {},
                                            "task_attempt_number_counts": {},
                                            "ref_type_counts": {}})
        e["total_objects"] += 1
        mb = o["object_size"] / 1024 ** 2
        e["total_size_mb"] += mb
        total_mb += mb
        st = o["task_status"]
        e["task_state_counts"][st] = e["task_state_counts"].get(st, 0) + 1
        e["task_attempt_number_counts"]["0"] = e["task_attempt_number_counts"].get("0", 0) + 1
        ref = "ACTOR_HANDLE" if o["type"] == "ACTOR_HANDLE" else \
            "PINNED_IN_MEMORY" if o.get("pins") else "LOCAL_REFERENCE"
        e["ref_type_counts"][ref] = e["ref_type_counts"].get(ref, 0) + 1
        owners.add(o["object_id"][:16])
        nodes.add(o["object_id"][:8])
    if summary:
        summary["disabled"]["total_num_workers"] = len(owners)
        summary["disabled"]["total_num_nodes"] = len(nodes)
    return {"cluster": {"summary": summary, "total_objects": len(objs),
                        "total_size_mb": total_mb, "callsite_enabled": False,
                        "summary_by": "callsite"}}

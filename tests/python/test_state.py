# SPDX-License-Identifier: Apache-2.0
"""kray.util.state (Ray's state API shapes: lists of dicts with Ray's keys, filters, limit,
detail) and `kray status --json`, against a private krayd running tasks, an actor and a
large object (docs/state.md)."""
import json
import os
import subprocess
import time

import pytest

from conftest import BUILD


@pytest.fixture(scope="module")
def busy(_module_krayd):
    """Some finished tasks, a named actor and a large object (once per module: the
    actor's name is taken while it lives)."""
    import kray
    if not kray.is_initialized():
        kray.init(num_cpus=2)

    @kray.remote
    def st_add(a, b):
        return a + b

    @kray.remote
    class StCounter:
        def __init__(self):
            self.n = 0

        def incr(self):
            self.n += 1
            return self.n

    assert kray.get([st_add.remote(i, 1) for i in range(12)]) == list(range(1, 13))
    c = StCounter.options(name="st-counter").remote()
    assert kray.get(c.incr.remote()) == 1
    big = kray.put(b"x" * (4 << 20))
    yield kray, c, big


def test_list_nodes_this_node(busy):
    from kray.util.state import list_nodes
    kray, _, _ = busy
    nodes = list_nodes()
    assert len(nodes) == 1
    n = nodes[0]
    assert n["node_id"] == kray.get_runtime_context().get_node_id()
    assert n["state"] == "ALIVE" and n["is_head_node"] is True
    assert n["resources_total"]["CPU"] == 2.0
    assert "workers" not in n and "workers" in list_nodes(detail=True)[0]


def test_list_actors(busy):
    from kray.util.state import list_actors
    kray, c, _ = busy
    alive = list_actors(filters=[("state", "=", "ALIVE"), ("name", "=", "st-counter")])
    assert len(alive) == 1, list_actors()
    a = alive[0]
    assert a["class_name"] == "StCounter"
    assert len(a["actor_id"]) == 32
    assert a["pid"] > 0 and a["node_id"] == kray.get_runtime_context().get_node_id()
    assert list_actors(filters=[("state", "!=", "ALIVE"), ("name", "=", "st-counter")]) == []
    assert a.state == "ALIVE" and a.class_name == "StCounter"  # as Ray's ActorState
    with pytest.raises(AttributeError):
        a.no_such_field
    assert "num_restarts" in list_actors(detail=True, filters=[("name", "=", "st-counter")])[0]


def test_list_tasks(busy):
    from kray.util.state import list_tasks
    adds = list_tasks(filters=[("name", "=", "st_add")], limit=1000)
    assert len(adds) >= 12
    t = adds[-1]
    assert t["state"] == "FINISHED" and t["type"] == "NORMAL_TASK"
    assert len(t["task_id"]) == 24 and t["actor_id"] is None
    assert t["func_or_class_name"] == "st_add"  # Ray's, not krayd's kray_py_task:...
    assert list_tasks(filters=[("name", "=", "st_add")], detail=True)[0]["function"] \
        .startswith("kray_py_task:")
    # A call that took the fast path reaches krayd's timeline with the worker's next
    # batch of counts, a few ms later (as Ray's task events come every second).
    deadline = time.monotonic() + 10
    while not (calls := list_tasks(filters=[("name", "=", "StCounter.incr")])) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert calls, list_tasks(detail=True, limit=1000)
    assert calls[-1]["type"] == "ACTOR_TASK"
    assert len(calls[-1]["actor_id"]) == 32
    ctor = list_tasks(filters=[("type", "=", "ACTOR_CREATION_TASK")], limit=1000)
    assert any(x["name"] == "StCounter.__init__" for x in ctor), ctor
    assert len(list_tasks(limit=3)) == 3
    d = list_tasks(detail=True, limit=1)[0]
    assert d["creation_time_ms"] <= d["start_time_ms"] <= d["end_time_ms"]


def test_list_tasks_failed_running_queued(busy):
    """A Python task that raised is FAILED; tasks still running or queued are listed with
    their state, and a pending actor says what it waits for."""
    from kray.util.state import list_actors, list_tasks
    kray, _, _ = busy

    @kray.remote
    def st_raise():
        raise KeyError("st boom")

    @kray.remote
    def st_nap(s):
        import time
        time.sleep(s)
        return s

    @kray.remote
    class StLater:
        def __init__(self, x):
            self.x = x

    # Waited on first, so that it runs through krayd: a call got at once may take the
    # fast path, which krayd's task list does not see (docs/fastpath.md, Limits).
    ref = st_raise.remote()
    kray.wait([ref], timeout=30)
    with pytest.raises(Exception, match="st boom"):
        kray.get(ref)
    failed = list_tasks(filters=[("name", "=", "st_raise")])
    assert [t["state"] for t in failed] == ["FAILED"], failed
    naps = [st_nap.remote(0.5) for _ in range(3)]  # 2 CPUs: two run, one waits
    later = StLater.remote(naps[2])
    import time
    deadline = time.time() + 10
    while time.time() < deadline:
        states = sorted(t["state"] for t in list_tasks(filters=[("name", "=", "st_nap")]))
        if states == ["PENDING_NODE_ASSIGNMENT", "RUNNING", "RUNNING"]:
            break
        time.sleep(0.02)
    assert states == ["PENDING_NODE_ASSIGNMENT", "RUNNING", "RUNNING"], states
    running = list_tasks(detail=True, filters=[("state", "=", "RUNNING")])
    assert running and all(t["end_time_ms"] is None and t["worker_id"] for t in running)
    queued = list_tasks(detail=True, filters=[("state", "=", "PENDING_NODE_ASSIGNMENT")])
    assert queued[0]["worker_id"] is None and queued[0]["start_time_ms"] is None
    pending = list_actors(detail=True, filters=[("class_name", "=", "StLater")])
    assert pending[0]["state"] == "PENDING_CREATION", pending
    assert pending[0]["pending_reason"] == "waiting for 1 constructor argument", pending
    assert kray.get(naps) == [0.5] * 3
    del later


def test_list_objects(busy):
    from kray.util.state import list_objects
    _, _, big = busy
    objs = list_objects(limit=5)
    assert objs, "the 4 MiB object is listed"
    top = objs[0]
    assert 4 << 20 <= top["object_size"] < (4 << 20) + 4096, objs  # + pickle's header
    assert top["location"] in ("SHARED_MEMORY", "SPILLED") and top["type"] == "PUT"
    assert top["task_status"] == "FINISHED"
    assert [o["object_size"] for o in objs] == sorted((o["object_size"] for o in objs),
                                                       reverse=True)
    assert "refs" in list_objects(detail=True, limit=1)[0]
    del big


def test_signatures_address_first():
    """Ray's list_* take address first, then filters ...; get_* take the id first."""
    import inspect
    from kray.util import state
    for name in ("list_nodes", "list_actors", "list_tasks", "list_objects", "list_workers",
                 "list_jobs", "list_placement_groups", "list_runtime_envs"):
        params = list(inspect.signature(getattr(state, name)).parameters)
        assert params == ["address", "filters", "limit", "timeout", "detail",
                          "raise_on_missing_output", "_explain"], (name, params)
    for name in ("get_node", "get_actor", "get_task", "get_worker", "get_placement_group",
                 "get_objects"):
        params = list(inspect.signature(getattr(state, name)).parameters)
        assert params == ["id", "address", "timeout", "_explain"], (name, params)
    for name in ("summarize_tasks", "summarize_actors", "summarize_objects"):
        params = list(inspect.signature(getattr(state, name)).parameters)
        assert params == ["address", "timeout", "raise_on_missing_output", "_explain"]


def test_list_workers_and_jobs(busy):
    """The workers krayd started and this driver, with the ids get_runtime_context()
    gives inside them; the driver's job is listed."""
    from kray.util.state import get_worker, list_jobs, list_workers
    kray, _, _ = busy

    @kray.remote
    def st_whoami():
        import os
        return kray.get_runtime_context().get_worker_id(), os.getpid()

    ws = list_workers(limit=None)
    assert set(ws[0]) == {"worker_id", "is_alive", "worker_type", "exit_type", "node_id",
                          "ip", "pid", "exit_detail"}
    ctx = kray.get_runtime_context()
    me = [w for w in ws if w["worker_type"] == "DRIVER" and w["pid"] == os.getpid()]
    assert len(me) == 1 and me[0]["worker_id"] == ctx.get_worker_id(), ws
    assert me[0]["node_id"] == ctx.get_node_id() and me[0]["is_alive"] is True
    ref = st_whoami.remote()
    kray.wait([ref], timeout=30)  # through krayd, not the fast path's ring
    wid, pid = kray.get(ref)
    w = get_worker(wid)
    assert w is not None and w["pid"] == pid and w["worker_type"] == "WORKER", \
        list_workers(detail=True, limit=None)
    assert w["krayd_worker"] >= 1 and w["state"] in ("IDLE", "BUSY")
    assert get_worker("ffffffffffffffff") is None
    assert list_workers(filters=[("worker_type", "=", "DRIVER")], limit=None) == me
    jobs = list_jobs()
    mine = [j for j in jobs if j["job_id"] == ctx.get_job_id()]
    assert len(mine) == 1 and mine[0]["status"] == "RUNNING", jobs
    assert mine[0]["driver_info"]["pid"] == str(os.getpid())
    assert mine[0]["type"] == "DRIVER" and mine[0]["start_time"] > 0


def test_get_calls(busy):
    """get_* return one dict with every field, None for an unknown id, as Ray's."""
    from kray.util import state
    kray, c, big = busy
    node = kray.get_runtime_context().get_node_id()
    assert state.get_node(node)["node_id"] == node
    assert "num_cpus" in state.get_node(node)
    assert state.get_node("00000000") is None
    actor = state.list_actors(filters=[("name", "=", "st-counter")])[0]
    got = state.get_actor(actor["actor_id"])
    assert got["class_name"] == "StCounter" and "num_restarts" in got
    assert state.get_actor("0" * 32) is None
    t = state.list_tasks(filters=[("name", "=", "st_add")])[0]
    assert state.get_task(t["task_id"])["name"] == "st_add"
    assert state.get_task("0" * 24) is None

    @kray.remote
    def st_one():
        return 1

    ref = st_one.remote()
    kray.wait([ref], timeout=30)
    assert kray.get(ref) == 1
    by_ref = state.get_task(ref)
    assert by_ref is not None and by_ref["task_id"] == ref.task_id(), by_ref
    objs = state.get_objects(big.hex())
    assert isinstance(objs, list) and objs[0]["object_id"] == big.hex()
    assert objs[0]["object_size"] >= 4 << 20
    assert state.get_objects("0" * 32) is None
    with pytest.raises(TypeError):
        state.get_actor(12)


def test_placement_groups(busy):
    from kray.util import state
    from kray.util.placement_group import placement_group, remove_placement_group
    kray, _, _ = busy
    pg = placement_group([{"CPU": 1}], name="st-pg")
    assert pg.wait(10)
    rows = state.list_placement_groups(filters=[("name", "=", "st-pg")])
    assert len(rows) == 1 and rows[0]["state"] == "CREATED", rows
    assert rows[0]["creator_job_id"] == kray.get_runtime_context().get_job_id()
    assert set(rows[0]) == {"placement_group_id", "name", "creator_job_id", "state",
                            "is_detached"}
    got = state.get_placement_group(rows[0]["placement_group_id"])
    assert got["bundles"][0]["unit_resources"] == {"CPU": 1.0}
    assert got["bundles"][0]["node_id"] == kray.get_runtime_context().get_node_id()
    assert state.get_placement_group("nope") is None
    remove_placement_group(pg)
    assert state.list_runtime_envs() == []


def test_summaries(busy):
    """Ray's summary shapes, keyed by "cluster"."""
    from kray.util import state
    kray, _, _ = busy
    tasks = state.summarize_tasks()["cluster"]
    assert tasks["summary_by"] == "func_name"
    add = tasks["summary"]["st_add"]
    assert add["type"] == "NORMAL_TASK" and add["state_counts"]["FINISHED"] >= 12
    assert tasks["total_tasks"] >= 12 and tasks["total_actor_scheduled"] >= 1
    assert tasks["total_actor_tasks"] >= 1
    actors = state.summarize_actors()["cluster"]
    assert actors["summary_by"] == "class" and actors["total_actors"] >= 1
    assert actors["summary"]["StCounter"]["state_counts"]["ALIVE"] >= 1
    objs = state.summarize_objects()["cluster"]
    assert objs["summary_by"] == "callsite" and objs["callsite_enabled"] is False
    assert objs["total_objects"] >= 1 and objs["total_size_mb"] >= 4
    per = objs["summary"]["disabled"]
    assert per["total_objects"] == objs["total_objects"] and per["total_num_nodes"] == 1
    assert sum(per["ref_type_counts"].values()) == per["total_objects"]


def test_bad_arguments(busy):
    from kray.util import state
    with pytest.raises(ValueError):
        state.list_tasks(filters=[("name", ">", "x")])
    with pytest.raises(ValueError):
        state.list_actors(filters=[("no_such_key", "=", "x")])
    with pytest.raises(ValueError):
        state.list_objects(limit=-1)


def test_needs_init(fresh):
    from kray.util.state import list_tasks
    with pytest.raises(RuntimeError):
        list_tasks()


def test_status_json(krayd_socket):
    out = subprocess.run([os.path.join(BUILD, "bin", "kray"), "status", "--socket",
                          krayd_socket, "--json"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    st = json.loads(out.stdout)
    assert len(st["node_id"]) == 8 and st["socket"] == krayd_socket
    assert st["stats"]["num_cpus"] >= 1 and st["stats"]["drivers"] == 0
    assert st["nodes"] == [] and st["actors"] == []
    bad = subprocess.run([os.path.join(BUILD, "bin", "kray"), "status", "--json", "extra"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_a_starting_actor_says_it_runs_its_constructor(ray_start):
    """An actor whose constructor runs (in an adopted pool worker or a new one) says so,
    with its worker's pid, until it is alive."""
    import time
    from kray.util.state import list_actors
    kray = ray_start

    @kray.remote
    class StSlowStart:
        def __init__(self):
            time.sleep(1.5)

        def pid(self):
            import os
            return os.getpid()

    a = StSlowStart.remote()
    deadline, reason = time.time() + 10, None
    while time.time() < deadline:
        rows = list_actors(detail=True, filters=[("class_name", "=", "StSlowStart")])
        reason = rows[0]["pending_reason"] if rows else None
        if reason and reason.startswith("running its constructor"):
            break
        time.sleep(0.02)
    pid = kray.get(a.pid.remote())
    assert reason == f"running its constructor in worker process {pid}", reason
    assert list_actors(filters=[("class_name", "=", "StSlowStart")])[0]["state"] == "ALIVE"
    kray.kill(a)

# SPDX-License-Identifier: Apache-2.0
"""kray.util.state (Ray's state API shapes: lists of dicts with Ray's keys, filters, limit,
detail) and `kray status --json`, against a private krayd running tasks, an actor and a
large object (docs/state.md)."""
import json
import os
import subprocess

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
    assert "num_restarts" in list_actors(detail=True, filters=[("name", "=", "st-counter")])[0]


def test_list_tasks(busy):
    from kray.util.state import list_tasks
    adds = list_tasks(filters=[("name", "=", "st_add")], limit=1000)
    assert len(adds) >= 12
    t = adds[-1]
    assert t["state"] == "FINISHED" and t["type"] == "NORMAL_TASK"
    assert len(t["task_id"]) == 24 and t["actor_id"] is None
    calls = list_tasks(filters=[("name", "=", "StCounter.incr")])
    assert len(calls) >= 1 and calls[-1]["type"] == "ACTOR_TASK"
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

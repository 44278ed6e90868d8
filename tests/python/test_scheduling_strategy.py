# SPDX-License-Identifier: Apache-2.0
"""scheduling_strategy as Ray documents it: "SPREAD" takes the nodes in turn, and
NodeAffinitySchedulingStrategy runs work on one node (soft=False: there or fail with
TaskUnschedulableError / ActorUnschedulableError; soft=True: there if it can, else
anywhere), on one node and on a two-node cluster on loopback."""
import shutil
import signal
import tempfile
import time

import pytest

from test_cluster import _both_nodes_up, _free_port, _krayd

from kray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as Affinity


@pytest.fixture
def cluster():
    """(the head's socket, the second node's process): the test may kill the second."""
    d = tempfile.mkdtemp(prefix="kray-pytest-strategy-")
    port = _free_port()
    procs = []
    try:
        head, head_sock = _krayd(d, "head", "--head", "--node-listen", f"127.0.0.1:{port}")
        procs.append(head)
        node, _ = _krayd(d, "node", "--address", f"127.0.0.1:{port}", "--token-file",
                         head_sock + ".token", "--node-listen", "127.0.0.1:0",
                         "--resources", "GPU:1")
        procs.append(node)
        yield head_sock, node
    finally:
        for p in procs:  # the pids started here, nothing else
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def _where(ray):
    @ray.remote
    def where(delay=0.0):
        time.sleep(delay)
        return ray.get_runtime_context().get_node_id()

    @ray.remote
    class Where:
        def node(self):
            return ray.get_runtime_context().get_node_id()

    return where, Where


def _ids(ray):
    here = ray.get_runtime_context().get_node_id()
    (other,) = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] != here]
    return here, other


def test_spread_takes_the_nodes_in_turn(fresh, cluster):
    ray = fresh
    ray.init(address=cluster[0])
    _both_nodes_up(ray)
    where, Where = _where(ray)
    here, other = _ids(ray)
    got = ray.get([where.options(scheduling_strategy="SPREAD").remote() for _ in range(20)],
                  timeout=60)
    assert got.count(here) == 10 and got.count(other) == 10, got
    actors = [Where.options(scheduling_strategy="SPREAD").remote() for _ in range(4)]
    nodes = ray.get([a.node.remote() for a in actors], timeout=60)
    assert sorted(nodes) == sorted([here, here, other, other]), nodes


def test_node_affinity_on_a_cluster(fresh, cluster):
    ray = fresh
    ray.init(address=cluster[0])
    _both_nodes_up(ray)
    where, Where = _where(ray)
    here, other = _ids(ray)

    # soft=False: only there, however many there are.
    there = [where.options(scheduling_strategy=Affinity(other, soft=False)).remote(0.01)
             for _ in range(12)]
    assert set(ray.get(there, timeout=60)) == {other}
    # Here too, even while here is busy (no spillback to the idle node).
    busy = [where.options(scheduling_strategy=Affinity(here, soft=False)).remote(0.05)
            for _ in range(12)]
    assert set(ray.get(busy, timeout=60)) == {here}
    # soft=True on a node that lacks the resources: anywhere that has them.
    assert ray.get(where.options(num_gpus=1, scheduling_strategy=Affinity(here, soft=True))
                   .remote(), timeout=60) == other
    # soft=False on a node that lacks them: unschedulable.
    with pytest.raises(ray.exceptions.TaskUnschedulableError, match="lacks the resources"):
        ray.get(where.options(num_gpus=1, scheduling_strategy=Affinity(here, soft=False))
                .remote(), timeout=60)

    a = Where.options(scheduling_strategy=Affinity(other, soft=False)).remote()
    assert ray.get(a.node.remote(), timeout=60) == other
    b = Where.options(scheduling_strategy=Affinity(here, soft=False)).remote()
    assert ray.get(b.node.remote(), timeout=60) == here
    with pytest.raises(ray.exceptions.ActorUnschedulableError):
        Where.options(scheduling_strategy=Affinity("0badc0de", soft=False)).remote()
    c = Where.options(scheduling_strategy=Affinity("0badc0de", soft=True)).remote()
    assert ray.get(c.node.remote(), timeout=60) in (here, other)


def test_node_affinity_to_a_dead_node(fresh, cluster):
    """Ray: soft=False on a node that died fails; soft=True runs elsewhere.  An actor
    pinned there is not restarted on another node."""
    ray = fresh
    sock, node = cluster
    ray.init(address=sock)
    _both_nodes_up(ray)
    where, Where = _where(ray)
    here, other = _ids(ray)
    pinned = Where.options(scheduling_strategy=Affinity(other, soft=False),
                           max_restarts=-1).remote()
    assert ray.get(pinned.node.remote(), timeout=60) == other
    node.kill()
    node.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(n["Alive"] for n in ray.nodes() if n["NodeID"] == other):
        assert time.monotonic() < deadline, "the head did not see the node die"
        time.sleep(0.1)
    with pytest.raises(ray.exceptions.TaskUnschedulableError, match="dead"):
        ray.get(where.options(scheduling_strategy=Affinity(other, soft=False)).remote(),
                timeout=60)
    assert ray.get(where.options(scheduling_strategy=Affinity(other, soft=True)).remote(),
                   timeout=60) == here
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(pinned.node.remote(), timeout=60)


def test_strategies_on_one_node(fresh):
    ray = fresh
    ray.init(num_cpus=2)
    where, Where = _where(ray)
    here = ray.get_runtime_context().get_node_id()
    assert ray.get(where.options(scheduling_strategy="SPREAD").remote()) == here
    assert ray.get(where.options(scheduling_strategy="DEFAULT").remote()) == here
    assert ray.get(where.options(scheduling_strategy=Affinity(here, soft=False))
                   .remote()) == here
    assert ray.get(where.options(scheduling_strategy=Affinity("0badc0de", soft=True))
                   .remote()) == here
    with pytest.raises(ray.exceptions.TaskUnschedulableError, match="not in the cluster"):
        ray.get(where.options(scheduling_strategy=Affinity("0badc0de", soft=False))
                .remote(), timeout=30)
    with pytest.raises(ValueError, match="not a kray node id"):
        where.options(scheduling_strategy=Affinity("node-1", soft=False)).remote()
    with pytest.raises(ValueError, match="scheduling_strategy"):
        where.options(scheduling_strategy="PACK").remote()
    a = Where.options(scheduling_strategy=Affinity(here, soft=False)).remote()
    assert ray.get(a.node.remote()) == here
    with pytest.raises(ray.exceptions.ActorUnschedulableError):
        Where.options(scheduling_strategy=Affinity("0badc0de", soft=False)).remote()
    # The node stays healthy.
    assert ray.get(where.remote()) == here

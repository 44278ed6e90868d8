# SPDX-License-Identifier: Apache-2.0
"""nodes(), cluster_resources() and available_resources() over a two-node cluster on
loopback (a head and a node that joins it), and tasks that go to the node with their
resources."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD


def _free_port():
    """A free port below the kernel's ephemeral range (32768 and up by default): one the
    kernel handed out may go to another process's outgoing connection before krayd binds
    it (tests/integration/harness.c harness_pick_port)."""
    import random
    for _ in range(1000):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


def _krayd(d, name, *args):
    sock = os.path.join(d, name + ".sock")
    r, w = os.pipe()
    p = subprocess.Popen([os.path.join(BUILD, "bin", "krayd"), "--socket", sock,
                          "--num-cpus", "2", "--ready-fd", str(w), "--log-level", "warn",
                          "--heartbeat-ms", "100", "--node-timeout-ms", "2000", *args],
                         pass_fds=(w,))
    os.close(w)
    try:
        assert os.read(r, 1), f"krayd {name} did not start"
    finally:
        os.close(r)
    return p, sock


@pytest.fixture
def two_nodes():
    d = tempfile.mkdtemp(prefix="kray-pytest-cluster-")
    port = _free_port()
    procs = []
    try:
        head, head_sock = _krayd(d, "head", "--head", "--node-listen", f"127.0.0.1:{port}",
                                 "--resources", "n1:1")
        procs.append(head)
        node, _ = _krayd(d, "node", "--address", f"127.0.0.1:{port}", "--token-file",
                         head_sock + ".token", "--node-listen", "127.0.0.1:0",
                         "--resources", "GPU:2")
        procs.append(node)
        yield head_sock
    finally:
        for p in procs:  # the pids started here, nothing else
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def _both_nodes_up(ray):
    deadline = time.monotonic() + 20
    while len([n for n in ray.nodes() if n["Alive"]]) < 2:
        assert time.monotonic() < deadline, f"the node did not join: {ray.nodes()}"
        time.sleep(0.1)


def test_nodes_and_resources_of_a_cluster(fresh, two_nodes):
    ray = fresh
    ray.init(address=two_nodes)
    _both_nodes_up(ray)
    nodes = ray.nodes()
    assert len({n["NodeID"] for n in nodes}) == 2
    assert all(n["NodeManagerAddress"] == "127.0.0.1" for n in nodes)
    total = ray.cluster_resources()
    assert total == {"CPU": 4.0, "n1": 1.0, "GPU": 2.0}, total
    assert ray.available_resources()["CPU"] <= 4.0

    @ray.remote
    def where():
        return ray.get_runtime_context().get_node_id()

    here = ray.get(where.options(resources={"n1": 1}).remote(), timeout=30)
    there = ray.get(where.options(num_gpus=1).remote(), timeout=30)
    ids = {n["NodeID"]: n for n in nodes}
    assert here != there
    assert ids[here]["Resources"].get("n1") == 1.0
    assert ids[there]["Resources"].get("GPU") == 2.0


def test_nodes_outside_a_cluster(fresh):
    ray = fresh
    ray.init(num_cpus=2, resources={"widget": 3})
    (n,) = ray.nodes()
    assert n["Alive"] and n["Resources"] == {"CPU": 2.0, "widget": 3.0}
    assert ray.cluster_resources() == {"CPU": 2.0, "widget": 3.0}


def test_runtime_env_reaches_a_task_on_a_second_node(fresh, two_nodes, tmp_path):
    ray = fresh
    ray.init(address=two_nodes)
    _both_nodes_up(ray)
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "note.txt").write_text("shipped")

    @ray.remote(num_gpus=1)  # only the second node has GPUs
    def far():
        return (os.environ.get("KRAY_RT_NODE"), open("note.txt").read(),
                ray.get_runtime_context().get_node_id())

    @ray.remote(resources={"n1": 1})
    def near():
        return ray.get_runtime_context().get_node_id()

    env = {"env_vars": {"KRAY_RT_NODE": "far"}, "working_dir": str(wd)}
    value, note, node = ray.get(far.options(runtime_env=env).remote(), timeout=60)
    assert (value, note) == ("far", "shipped")
    assert node != ray.get(near.remote(), timeout=30)


def test_streaming_generator_runs_on_the_callers_node(fresh, two_nodes):
    """A streaming generator's items go to its caller's connection, which the links do
    not carry: it runs on the caller's node, and one that only another node could run
    fails with a clear error at its first item."""
    ray = fresh
    ray.init(address=two_nodes)
    _both_nodes_up(ray)
    here = ray.get_runtime_context().get_node_id()

    @ray.remote
    def items(n):
        for i in range(n):
            yield (ray.get_runtime_context().get_node_id(), i)

    got = [ray.get(r) for r in items.remote(5)]
    assert [i for _, i in got] == list(range(5))
    assert {node for node, _ in got} == {here}
    gen = items.options(num_gpus=1).remote(3)  # only the other node has GPUs
    with pytest.raises(Exception, match="streaming generator"):
        ray.get(next(gen))
    assert list(gen) == []

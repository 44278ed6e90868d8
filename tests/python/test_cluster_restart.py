# SPDX-License-Identifier: Apache-2.0
"""An actor whose node dies is restarted by the head on another live node (docs/cluster.md,
"Actor fault tolerance across nodes"): three krayds on loopback, the actor on one of the
two nodes that have its resource, that node killed."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from test_cluster import _free_port, _krayd


@pytest.fixture
def three_nodes():
    d = tempfile.mkdtemp(prefix="kray-pytest-restart-")
    port = _free_port()
    procs, socks = {}, {}
    try:
        head, head_sock = _krayd(d, "head", "--head", "--node-listen", f"127.0.0.1:{port}",
                                 "--resources", "n1:1")
        procs["head"] = head
        for name in ("b", "c"):
            p, sock = _krayd(d, name, "--address", f"127.0.0.1:{port}", "--token-file",
                             head_sock + ".token", "--node-listen", "127.0.0.1:0",
                             "--resources", "any:1")
            procs[name], socks[name] = p, sock
        yield head_sock, procs, socks
    finally:
        for p in procs.values():  # the pids started here, nothing else
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def test_actor_restarts_on_another_node_when_its_node_dies(fresh, three_nodes):
    ray = fresh
    head_sock, procs, _ = three_nodes
    ray.init(address=head_sock)
    deadline = time.monotonic() + 20
    while len([n for n in ray.nodes() if n["Alive"]]) < 3:
        assert time.monotonic() < deadline, f"the nodes did not join: {ray.nodes()}"
        time.sleep(0.1)

    @ray.remote(resources={"any": 1}, max_restarts=1, max_task_retries=-1)
    class Counter:
        def __init__(self):
            self.n = 0

        def incr(self):
            self.n += 1
            return self.n

        def where(self):
            return ray.get_runtime_context().get_node_id(), os.getppid()

    c = Counter.remote()
    assert ray.get([c.incr.remote() for _ in range(3)], timeout=60) == [1, 2, 3]
    first, krayd_pid = ray.get(c.where.remote(), timeout=30)
    victim = next(p for name, p in procs.items() if p.pid == krayd_pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    # The head restarts it on the other node; its state starts over.
    second, _ = ray.get(c.where.remote(), timeout=60)
    assert second != first
    assert ray.get(c.incr.remote(), timeout=30) == 1
    # Its one restart is spent: the next death is final.
    other = next(p for p in procs.values() if p.poll() is None and p is not procs["head"])
    other.send_signal(signal.SIGKILL)
    other.wait(timeout=10)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(c.incr.remote(), timeout=60)


# A driver on node b creates a named detached actor there (its own node) and exits.
_CREATOR = """
import os, sys
import kray as ray

ray.init(address=sys.argv[1], namespace="restart")


@ray.remote(resources={"any": 1}, max_restarts=1, max_task_retries=-1)
class Keeper:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n

    def krayd(self):
        return os.getppid()


k = Keeper.options(name="keeper", lifetime="detached").remote()
print(ray.get(k.incr.remote(), timeout=30), ray.get(k.krayd.remote(), timeout=30))
ray.shutdown()
"""


def test_actor_created_on_its_own_node_restarts_elsewhere(fresh, three_nodes):
    ray = fresh
    head_sock, procs, socks = three_nodes
    ray.init(address=head_sock, namespace="restart")
    deadline = time.monotonic() + 20
    while len([n for n in ray.nodes() if n["Alive"]]) < 3:
        assert time.monotonic() < deadline, f"the nodes did not join: {ray.nodes()}"
        time.sleep(0.1)
    out = subprocess.run([sys.executable, "-c", _CREATOR, socks["b"]], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, krayd_pid = (int(x) for x in out.stdout.split())
    assert first == 1 and krayd_pid == procs["b"].pid, out.stdout
    k = ray.get_actor("keeper")
    assert ray.get(k.incr.remote(), timeout=30) == 2
    procs["b"].send_signal(signal.SIGKILL)
    procs["b"].wait(timeout=10)
    # The head restarts it on node c; its state starts over; a kill from here ends it.
    assert ray.get(k.incr.remote(), timeout=60) == 1
    assert ray.get(k.krayd.remote(), timeout=30) == procs["c"].pid
    ray.kill(k)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(k.incr.remote(), timeout=60)

# SPDX-License-Identifier: Apache-2.0
"""init(num_cpus=, address=, object_store_memory=, resources=, namespace=), shutdown,
is_initialized."""
import os
import time

import pytest


def test_init_shutdown_is_initialized(fresh):
    ray = fresh
    assert not ray.is_initialized()
    ray.init(num_cpus=1)
    assert ray.is_initialized()
    assert ray.get(ray.put(5)) == 5
    ray.shutdown()
    assert not ray.is_initialized()
    with pytest.raises(RuntimeError):
        ray.get(ray.put(1))


def test_init_twice(fresh):
    ray = fresh
    ray.init(num_cpus=1)
    with pytest.raises(RuntimeError):
        ray.init(num_cpus=1)
    ray.init(ignore_reinit_error=True)
    assert ray.is_initialized()


def test_num_cpus_runs_tasks_in_parallel(fresh):
    ray = fresh
    ray.init(num_cpus=2)

    @ray.remote
    def span():
        start = time.monotonic()  # one clock for every process of the machine
        time.sleep(1)
        return os.getpid(), start, time.monotonic()

    ray.get([span.remote() for _ in range(2)])  # both workers started (Python loaded)
    (pa, sa, ea), (pb, sb, eb) = ray.get([span.remote() for _ in range(2)])
    assert pa != pb
    assert sa < eb and sb < ea, "the two tasks did not overlap: one CPU slot?"
    assert ray.cluster_resources()["CPU"] == 2


def test_object_store_memory(fresh):
    ray = fresh
    ray.init(num_cpus=1, object_store_memory=64 << 20)
    assert ray._kray.status()["store_capacity"] == 64 << 20


def test_resources(fresh):
    ray = fresh
    ray.init(num_cpus=1, resources={"widget": 1})
    assert ray.cluster_resources()["widget"] == 1

    @ray.remote(resources={"widget": 1})
    class Holder:
        def ping(self):
            return "pong"

    a = Holder.remote()
    assert ray.get(a.ping.remote(), timeout=30) == "pong"
    b = Holder.remote()  # the only widget is taken: b waits for it
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(b.ping.remote(), timeout=0.5)
    ray.kill(a)
    assert ray.get(b.ping.remote(), timeout=30) == "pong"


def test_task_num_cpus_and_resources(fresh):
    """A task holds its num_cpus and resources while it runs, as in Ray."""
    ray = fresh
    ray.init(num_cpus=2, resources={"disk": 1})

    @ray.remote
    def span():
        start = time.monotonic()
        time.sleep(0.5)
        return start, time.monotonic()

    ray.get([span.remote() for _ in range(2)])  # both workers started (Python loaded)
    # two tasks of 2 CPUs on 2 CPUs: one after the other
    (sa, ea), (sb, eb) = ray.get([span.options(num_cpus=2).remote() for _ in range(2)])
    assert eb <= sa or ea <= sb, "two 2-CPU tasks overlapped on a 2-CPU node"
    # two tasks that need the only disk: one after the other
    (sa, ea), (sb, eb) = ray.get([span.options(resources={"disk": 1}).remote()
                                  for _ in range(2)])
    assert eb <= sa or ea <= sb, "two tasks holding disk:1 overlapped"
    # a task that needs no CPU runs beside two that hold both
    busy = [span.options(num_cpus=1).remote() for _ in range(2)]
    (s0, e0) = ray.get(span.options(num_cpus=0).remote())
    (sa, ea), (sb, eb) = ray.get(busy)
    assert s0 < max(ea, eb), "the 0-CPU task waited for the CPUs"
    with pytest.raises(ray.exceptions.RayTaskError, match="needs 3 CPUs"):
        ray.get(span.options(num_cpus=3).remote(), timeout=30)


def test_namespace(fresh):
    ray = fresh
    ray.init(num_cpus=1, namespace="alpha")

    @ray.remote
    class Named:
        def ns(self):
            return ray.get_runtime_context().namespace

    a = Named.options(name="one").remote()
    assert ray.get(ray.get_actor("one").ns.remote()) == "alpha"
    assert ray.get_actor("one", namespace="alpha")._ref == a._ref
    with pytest.raises(ValueError):
        ray.get_actor("one", namespace="beta")
    Named.options(name="one", namespace="beta").remote()  # another namespace: allowed
    assert ray.get_runtime_context().namespace == "alpha"


def test_address_connects_to_running_krayd(fresh, krayd_socket):
    ray = fresh
    ray.init(address=krayd_socket)
    with pytest.raises(ValueError):
        ray.shutdown()
        ray.init(address=krayd_socket, num_cpus=4)  # a setting of the krayd, not ours
    ray.init(address=krayd_socket)

    @ray.remote
    def hello():
        return "hi"

    assert ray.get(hello.remote()) == "hi"
    node = ray._kray.status()["node"]
    ray.shutdown()
    ray.init(address="unix:" + krayd_socket)  # the same krayd: it outlived our driver
    assert ray._kray.status()["node"] == node


@pytest.mark.parametrize("xdg", [None, "/nonexistent-xdg"])
def test_auto_address_is_krayds_default(xdg, monkeypatch):
    """address="auto" names the socket `kray start`, `kray status` and krayd default to
    (common/rundir.c): $XDG_RUNTIME_DIR/kray-UID, for root /run/kray, else /tmp/kray-UID."""
    import subprocess
    import kray as k
    from conftest import BUILD

    env = dict(os.environ)
    env.pop("KRAY_ADDRESS", None)
    monkeypatch.delenv("KRAY_ADDRESS", raising=False)
    if xdg:
        env["XDG_RUNTIME_DIR"] = xdg
        monkeypatch.setenv("XDG_RUNTIME_DIR", xdg)
    else:
        env.pop("XDG_RUNTIME_DIR", None)
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    r = subprocess.run([os.path.join(BUILD, "bin", "kray"), "status"], env=env,
                       capture_output=True, text=True)
    out = r.stdout + r.stderr  # "cannot connect to krayd at S: ..." or "node N at S"
    assert f"at {k._default_address()}" in out, out

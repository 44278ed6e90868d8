# SPDX-License-Identifier: Apache-2.0
"""Actors: @remote classes with and without options, .options(), method(num_returns=),
name/namespace/get_actor, lifetime="detached", max_restarts, max_task_retries,
max_concurrency, kill, handles passed to tasks and actors, per-caller order."""
import os
import signal
import threading
import time

import pytest


def make_counter(ray):
    @ray.remote
    class Counter:
        def __init__(self, start=0):
            self.n = start

        def incr(self, by=1):
            self.n += by
            return self.n

        def pid(self):
            return os.getpid()

        @ray.method(num_returns=2)
        def pair(self):
            return self.n, -self.n

    return Counter


def test_actor_state_and_order(ray_start):
    ray = ray_start
    c = make_counter(ray).remote(10)
    refs = [c.incr.remote() for _ in range(100)]
    assert ray.get(refs) == list(range(11, 111))  # one caller: in order
    assert ray.get(c.incr.remote(by=5)) == 115


def test_actor_options_and_constructor_arity(ray_start):
    ray = ray_start
    Counter = make_counter(ray)
    c = Counter.options(max_concurrency=1, num_cpus=0).remote(start=3)
    assert ray.get(c.incr.remote()) == 4
    with pytest.raises(TypeError):
        Counter.remote(1, 2)
    with pytest.raises(TypeError):
        Counter()
    with pytest.raises(TypeError):
        c.incr.remote(1, 2)
    with pytest.raises(AttributeError):
        c.no_such_method
    with pytest.raises(ValueError):
        Counter.options(bad_option=1)


def test_method_num_returns(ray_start):
    ray = ray_start
    c = make_counter(ray).remote(4)
    a, b = c.pair.remote()
    assert ray.get([a, b]) == [4, -4]
    refs = c.pair.options(num_returns=1).remote()
    assert ray.get(refs) == (4, -4)


def test_named_actor_and_get_actor(ray_start):
    ray = ray_start
    Counter = make_counter(ray)
    c = Counter.options(name="counter-a").remote()
    ray.get(c.incr.remote())
    same = ray.get_actor("counter-a")
    assert ray.get(same.incr.remote()) == 2
    with pytest.raises(ValueError):
        Counter.options(name="counter-a").remote()  # the name is taken
    with pytest.raises(ValueError):
        ray.get_actor("no-such-actor")
    got = Counter.options(name="counter-a", get_if_exists=True).remote()
    assert ray.get(got.incr.remote()) == 3
    # a handle from get_actor knows the class's methods and their num_returns
    a, b = same.pair.remote()
    assert ray.get([a, b]) == [3, -3]
    with pytest.raises(AttributeError, match="no method 'nope'"):
        same.nope
    assert "Counter" in repr(same)


def test_detached_actor_outlives_its_creator(ray_start):
    ray = ray_start
    Counter = make_counter(ray)

    @ray.remote
    def create():
        Counter.options(name="kept", lifetime="detached").remote(100)
        Counter.options(name="dropped").remote(100)
        return True

    assert ray.get(create.remote())
    kept = ray.get_actor("kept")
    assert ray.get(kept.incr.remote()) == 101
    ray.kill(kept)


def test_handle_passed_to_task_and_actor(ray_start):
    ray = ray_start
    c = make_counter(ray).remote()

    @ray.remote
    def bump(counter, times):
        return ray.get([counter.incr.remote() for _ in range(times)])[-1]

    @ray.remote
    class Owner:
        def __init__(self, counter):
            self.counter = counter

        def bump(self):
            return ray.get(self.counter.incr.remote(10))

    assert ray.get(bump.remote(c, 3)) == 3
    o = Owner.remote(c)
    assert ray.get(o.bump.remote()) == 13
    assert ray.get(bump.remote({"nested": c}["nested"], 1)) == 14


def test_kill(ray_start):
    ray = ray_start
    c = make_counter(ray).remote()
    ray.get(c.incr.remote())
    ray.kill(c)
    with pytest.raises(ray.exceptions.RayActorError) as e:
        ray.get(c.incr.remote(), timeout=30)
    assert isinstance(e.value, ray.exceptions.ActorDiedError)
    with pytest.raises(ValueError):
        ray.kill("not an actor")


def test_max_restarts(ray_start):
    ray = ray_start
    c = make_counter(ray).options(max_restarts=1, max_task_retries=1).remote(5)
    pid = ray.get(c.pid.remote())
    os.kill(pid, signal.SIGKILL)
    # Restarted: the constructor ran again, the state is new.
    assert ray.get(c.incr.remote(), timeout=60) == 6
    assert ray.get(c.pid.remote()) != pid
    ray.kill(c, no_restart=False)  # the restart is used up: it stays dead
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(c.incr.remote(), timeout=60)


def test_max_concurrency(ray_start):
    ray = ray_start

    @ray.remote(max_concurrency=4)
    class Sleeper:
        def __init__(self):
            self.lock = threading.Lock()
            self.now = 0
            self.peak = 0

        def nap(self):
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            time.sleep(0.3)
            with self.lock:
                self.now -= 1
            return self.peak

    s = Sleeper.remote()
    peaks = ray.get([s.nap.remote() for _ in range(4)])
    assert max(peaks) > 1  # methods ran at the same time


def test_constructor_error(ray_start):
    ray = ray_start

    @ray.remote
    class Broken:
        def __init__(self):
            raise ValueError("no")

        def ping(self):
            return 1

    b = Broken.remote()
    with pytest.raises(ray.exceptions.RayError) as e:
        ray.get(b.ping.remote(), timeout=30)
    assert "ValueError" in str(e.value)


def test_actor_method_error_keeps_type_and_actor_lives(ray_start):
    ray = ray_start

    @ray.remote
    class Picky:
        def check(self, x):
            if x < 0:
                raise KeyError(x)
            return x

    p = Picky.remote()
    with pytest.raises(KeyError):
        ray.get(p.check.remote(-1))
    assert ray.get(p.check.remote(1)) == 1


def test_async_methods(ray_start):
    ray = ray_start
    import asyncio

    @ray.remote
    class Async:
        async def twice(self, x):
            await asyncio.sleep(0.01)
            return 2 * x

    a = Async.remote()
    assert ray.get([a.twice.remote(i) for i in range(3)]) == [0, 2, 4]


DRIVER = """
import sys
import kray as ray
ray.init(address=sys.argv[1], namespace="shared")  # named actors across jobs, as in Ray

@ray.remote
class Keeper:
    def __init__(self):
        self.n = 0
    def incr(self):
        self.n += 1
        return self.n

k = Keeper.options(name="keeper", lifetime="detached").remote()
t = Keeper.options(name="transient").remote()
assert ray.get([k.incr.remote(), t.incr.remote()]) == [1, 1]
"""


def test_detached_actor_survives_its_driver(fresh, krayd_socket, tmp_path):
    import subprocess
    import sys

    from conftest import python_env
    ray = fresh
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    out = subprocess.run([sys.executable, str(script), krayd_socket], env=python_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ray.init(address=krayd_socket, namespace="shared")
    keeper = ray.get_actor("keeper")
    assert ray.get(keeper.incr.remote(), timeout=30) == 2  # its state survived
    deadline = time.monotonic() + 10
    while True:  # the non-detached one ended with its creator
        try:
            ray.get_actor("transient")
        except ValueError:
            break
        assert time.monotonic() < deadline, "a non-detached actor outlived its driver"
        time.sleep(0.05)
    ray.kill(keeper)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(keeper.incr.remote(), timeout=30)


def test_actor_adopts_an_idle_pool_worker(fresh):
    """An actor is hosted by the idle pool worker that ran the task before (its Python is
    started); the pool is refilled behind it, and the actor's runtime_env holds in it
    for its life while later tasks, in another process, do not see it (docs/actors.md,
    "Where an actor runs")."""
    ray = fresh
    ray.init(num_cpus=1)

    @ray.remote
    def where():
        return os.getpid(), os.environ.get("KRAY_ADOPT_TEST")

    @ray.remote
    class Here:
        def where(self):
            return os.getpid(), os.environ.get("KRAY_ADOPT_TEST")

    pool, env = ray.get(where.remote(), timeout=60)
    assert env is None
    a = Here.options(runtime_env={"env_vars": {"KRAY_ADOPT_TEST": "1"}}).remote()
    assert ray.get(a.where.remote(), timeout=60) == (pool, "1")
    for _ in range(5):  # the refilled pool takes the tasks; the actor keeps its env
        pid, env = ray.get(where.remote(), timeout=60)
        assert pid != pool and env is None
    assert ray.get(a.where.remote(), timeout=60) == (pool, "1")
    ray.kill(a)
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(pool, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the killed actor's process lives on"
        time.sleep(0.02)
    assert ray.get(where.remote(), timeout=60) == (pid, None)  # the pool worker lives

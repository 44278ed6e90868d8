# SPDX-License-Identifier: Apache-2.0
"""Async and threaded actors (issue 17, part 3), as Ray documents them: async def
methods run concurrently on the actor's event loop (up to max_concurrency, 1,000 by
default), `await ref` and `asyncio.gather` suspend only the awaiting coroutine,
ref.future() works with asyncio.wrap_future, and a threaded actor's methods can submit
tasks and get their results."""
import asyncio
import threading
import time

import pytest


def test_thousand_async_sleeps_run_at_once(ray_start):
    ray = ray_start

    @ray.remote
    class Sleeper:
        def __init__(self):
            self.now = 0
            self.most = 0

        async def nap(self, i):
            self.now += 1
            self.most = max(self.most, self.now)
            await asyncio.sleep(1)
            self.now -= 1
            return i

        async def peak(self):
            return self.most

    s = Sleeper.remote()
    ray.get(s.peak.remote())  # started
    t0 = time.monotonic()
    out = ray.get([s.nap.remote(i) for i in range(1000)], timeout=60)
    took = time.monotonic() - t0
    assert out == list(range(1000))
    # One at a time would take 1,000 s: concurrency is real (not a timing benchmark).
    assert took < 10, f"1,000 concurrent 1 s sleeps took {took:.1f} s"
    assert ray.get(s.peak.remote()) > 500


def test_max_concurrency_bounds_an_async_actor(ray_start):
    ray = ray_start

    @ray.remote(max_concurrency=3)
    class Bounded:
        def __init__(self):
            self.now = 0
            self.peak = 0

        async def nap(self):
            self.now += 1
            self.peak = max(self.peak, self.now)
            await asyncio.sleep(0.3)
            self.now -= 1
            return self.peak

    b = Bounded.remote()
    assert max(ray.get([b.nap.remote() for _ in range(12)])) == 3


def test_await_refs_inside_async_methods(ray_start):
    ray = ray_start

    @ray.remote
    def square(x):
        return x * x

    @ray.remote
    def fails():
        raise KeyError("deep")

    @ray.remote
    class Gatherer:
        async def one(self, boxed):
            return await boxed[0]

        async def many(self, n):
            return await asyncio.gather(*[square.remote(i) for i in range(n)])

        async def wrapped(self, boxed):
            return await asyncio.wrap_future(boxed[0].future())

        async def error(self):
            try:
                await fails.remote()
            except KeyError as e:
                return "caught " + str(e)

    g = Gatherer.remote()
    assert ray.get(g.one.remote([square.remote(7)])) == 49
    assert ray.get(g.many.remote(50)) == [i * i for i in range(50)]
    assert ray.get(g.wrapped.remote([ray.put("x")])) == "x"
    assert "deep" in ray.get(g.error.remote())


def test_await_suspends_only_the_awaiting_call(ray_start):
    ray = ray_start

    @ray.remote
    class Signal:
        def __init__(self):
            self.ev = asyncio.Event()

        async def wait(self):
            await self.ev.wait()
            return "released"

        async def send(self):
            self.ev.set()

    @ray.remote
    class Waiter:
        async def wait_on(self, boxed):
            return await boxed[0]

        async def ping(self):
            return "pong"

    sig = Signal.remote()
    w = Waiter.remote()
    pending = w.wait_on.remote([sig.wait.remote()])
    # The waiting call is suspended on a ref that is not ready: others still run.
    assert ray.get(w.ping.remote(), timeout=10) == "pong"
    ready, _ = ray.wait([pending], timeout=0.2)
    assert not ready
    ray.get(sig.send.remote())
    assert ray.get(pending, timeout=10) == "released"


def test_async_method_errors_keep_their_type(ray_start):
    ray = ray_start

    @ray.remote
    class Picky:
        async def check(self, x):
            await asyncio.sleep(0)
            if x < 0:
                raise ValueError(f"negative {x}")
            return x

        def sync_too(self):
            return "sync"

    p = Picky.remote()
    with pytest.raises(ValueError, match="negative -1"):
        ray.get(p.check.remote(-1))
    assert ray.get([p.check.remote(1), p.sync_too.remote()]) == [1, "sync"]


def test_threaded_actor_submits_tasks_and_gets_them(ray_start):
    ray = ray_start

    @ray.remote
    def square(x):
        return x * x

    @ray.remote(max_concurrency=4)
    class Threaded:
        def __init__(self):
            self.lock = threading.Lock()
            self.now = 0
            self.most = 0

        def work(self, n):
            refs = [square.remote(i) for i in range(n)]
            ready, _ = ray.wait(refs, num_returns=n, timeout=30)
            assert len(ready) == n
            return sum(ray.get(refs)), threading.get_ident()

        def nap(self):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(0.3)
            with self.lock:
                self.now -= 1
            return self.most

        def call_self(self, me):
            # A call to this very actor: its result is sent by the worker's loop while
            # this thread waits in get.
            return ray.get(me.nap.remote(), timeout=30)

    t = Threaded.remote()
    out = ray.get([t.work.remote(20) for _ in range(8)], timeout=60)
    assert [o[0] for o in out] == [sum(i * i for i in range(20))] * 8
    assert len({o[1] for o in out}) > 1  # on several threads
    assert ray.get(t.call_self.remote(t), timeout=60) >= 1
    assert max(ray.get([t.nap.remote() for _ in range(4)])) > 1  # naps overlap


def test_get_timeout_in_a_threaded_actor(ray_start):
    ray = ray_start

    @ray.remote
    def slow():
        time.sleep(3)
        return 1

    @ray.remote(max_concurrency=2)
    class Impatient:
        def try_get(self):
            try:
                ray.get(slow.remote(), timeout=0.2)
            except ray.exceptions.GetTimeoutError:
                return "timed out"

    assert ray.get(Impatient.remote().try_get.remote(), timeout=30) == "timed out"


def test_bad_max_concurrency_is_refused(ray_start):
    ray = ray_start

    @ray.remote
    class A:
        async def f(self):
            return 1

    for bad in (0, -1, 5000, 1.5):
        with pytest.raises(ValueError, match="max_concurrency"):
            A.options(max_concurrency=bad).remote()


def test_future_outside_an_actor(ray_start):
    ray = ray_start
    ref = ray.put(41)
    assert ref.future().result(timeout=10) == 41

    async def main():
        return await ref, await asyncio.wrap_future(ref.future())
    assert asyncio.run(main()) == (41, 41)


def test_concurrency_groups_of_an_async_actor(ray_start):
    ray = ray_start

    @ray.remote(concurrency_groups={"io": 2, "compute": 1})
    class Grouped:
        def __init__(self):
            self.now = {}
            self.most = {}

        async def _track(self, group):
            self.now[group] = self.now.get(group, 0) + 1
            self.most[group] = max(self.most.get(group, 0), self.now[group])
            await asyncio.sleep(0.3)
            self.now[group] -= 1

        @ray.method(concurrency_group="io")
        async def io(self):
            await self._track("io")

        @ray.method(concurrency_group="compute")
        async def compute(self):
            await self._track("compute")

        async def default(self):
            await self._track("default")

        async def most_at_once(self):
            return self.most

    g = Grouped.remote()
    refs = [m.remote() for _ in range(6) for m in (g.io, g.compute, g.default)]
    refs += [g.default.options(concurrency_group="io").remote() for _ in range(4)]
    ray.get(refs, timeout=30)
    most = ray.get(g.most_at_once.remote())
    assert most["io"] == 2 and most["compute"] == 1, most
    assert most["default"] > 2, most  # the default group: max_concurrency (1,000)
    with pytest.raises(ValueError, match="unknown concurrency group 'nope'"):
        ray.get(g.io.options(concurrency_group="nope").remote())


def test_concurrency_groups_of_a_threaded_actor(ray_start):
    ray = ray_start

    @ray.remote(concurrency_groups={"io": 3}, max_concurrency=1)
    class Grouped:
        def __init__(self):
            self.lock = threading.Lock()
            self.now = {}
            self.most = {}

        def _track(self, group):
            with self.lock:
                self.now[group] = self.now.get(group, 0) + 1
                self.most[group] = max(self.most.get(group, 0), self.now[group])
            time.sleep(0.3)
            with self.lock:
                self.now[group] -= 1

        @ray.method(concurrency_group="io")
        def io(self):
            self._track("io")

        def default(self):
            self._track("default")

        def most_at_once(self):
            return self.most

    g = Grouped.remote()
    ray.get([m.remote() for _ in range(6) for m in (g.io, g.default)], timeout=30)
    assert ray.get(g.most_at_once.remote()) == {"io": 3, "default": 1}


def test_bad_concurrency_groups_are_refused(ray_start):
    ray = ray_start

    class Plain:
        def f(self):
            return 1

    for bad in ({"io": 0}, {"io": "2"}, ["io"], {1: 2}):
        with pytest.raises(ValueError, match="concurrency_groups"):
            ray.remote(concurrency_groups=bad)(Plain)


def test_each_concurrency_group_has_its_own_event_loop(ray_start):
    """As Ray: each concurrency group of an async actor runs on an event loop (thread) of
    its own, so a group whose method blocks its loop (a sync sleep) does not hold up the
    other groups; calls of one group share its loop."""
    ray = ray_start

    @ray.remote(concurrency_groups={"io": 2, "compute": 2})
    class Grouped:
        @ray.method(concurrency_group="io")
        async def block(self, s):
            time.sleep(s)  # blocks the io group's loop, on purpose
            return threading.current_thread().name

        @ray.method(concurrency_group="compute")
        async def quick(self):
            return threading.current_thread().name

        async def default(self):
            return threading.current_thread().name

    g = Grouped.remote()
    main = ray.get(g.default.remote())
    blocked = g.block.remote(4)
    time.sleep(0.5)
    t0 = time.time()
    compute = ray.get(g.quick.remote(), timeout=30)
    assert ray.get(g.default.remote(), timeout=30) == main
    assert time.time() - t0 < 3, "a blocked group held up the others"
    assert not ray.wait([blocked], timeout=0)[0], "the io call still blocks its loop"
    io = ray.get(blocked, timeout=30)
    assert len({main, compute, io}) == 3  # three loops, three threads
    assert compute == ray.get(g.quick.remote())  # a group keeps its loop

# SPDX-License-Identifier: Apache-2.0
"""Python tasks on krayd's fast path (docs/fastpath.md, "Python tasks"): f.remote()
followed at once by a get of its ref goes to an idle worker through krayd's BPF program,
its function named by key (and carried inline when small) instead of the ref to its blob.
The results must be those of krayd's path; `make test-python` runs this file with the
fast path on, and KRAY_FASTPATH=off runs it through krayd (the counts then stay 0)."""
import os
import signal
import threading
import time

import numpy as np
import pytest

FAST_OFF = os.environ.get("KRAY_FASTPATH") in ("off", "0")


def fast_count(ray):
    return ray._kray.status()["fast_tasks"]


@pytest.fixture
def fast(ray_start):
    """ray, and whether this krayd runs the fast path (root and BPF: see a call go)."""
    ray = ray_start

    @ray.remote
    def probe():
        return 1

    before = fast_count(ray)
    for _ in range(5):
        ray.get(probe.remote())
    on = fast_count(ray) > before
    if FAST_OFF:
        assert not on, "KRAY_FASTPATH=off, yet calls went fast"
    return ray, on


def test_sync_calls_go_fast(fast):
    ray, on = fast

    @ray.remote
    def square(x):
        return x * x

    before = fast_count(ray)
    assert [ray.get(square.remote(i)) for i in range(200)] == [i * i for i in range(200)]
    got = fast_count(ray) - before
    if not on:
        assert got == 0
        pytest.skip("no fast path here (not root, no BPF, or KRAY_FASTPATH=off)")
    # A call finds no idle worker only while the worker it used is still finishing.
    assert got >= 150, f"only {got} of 200 sync calls went fast"
    # A timed get goes too (Ray's ray.get(ref, timeout=...)).
    before = fast_count(ray)
    assert [ray.get(square.remote(i), timeout=30) for i in range(50)] == \
        [i * i for i in range(50)]
    assert fast_count(ray) - before >= 30


def test_fast_calls_in_the_task_list_and_timeline(fast):
    # krayd does not see a fast call run; the worker reports each one (FAST_COUNT's
    # records, within about 5 ms), so list_tasks() and the timeline show it as Ray's do.
    ray, on = fast
    from kray.util.state import list_tasks

    @ray.remote
    def cube_listed(x):
        return x ** 3

    @ray.remote
    def fails_listed():
        raise ValueError("on purpose")

    before = fast_count(ray)
    assert [ray.get(cube_listed.remote(i)) for i in range(20)] == [i ** 3 for i in range(20)]
    with pytest.raises(ValueError):
        ray.get(fails_listed.remote())
    went = fast_count(ray) - before
    deadline = time.monotonic() + 10
    while True:
        rows = [t for t in list_tasks(limit=10000)
                if t["name"] in ("cube_listed", "fails_listed")]
        if len(rows) >= 21 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sum(t["name"] == "cube_listed" for t in rows) == 20, rows
    failed = [t for t in rows if t["name"] == "fails_listed"]
    assert len(failed) == 1 and failed[0]["state"] == "FAILED", failed
    assert on == (went > 0)


def test_results_as_on_krayds_path(fast):
    ray, _ = fast

    @ray.remote
    def echo(v):
        return v

    @ray.remote
    def holds_ref():
        return [ray.put("held")]  # a result with refs: krayd keeps it (FAST_STORE)

    values = [None, 0, -7, 2**70, 1.5, "text", b"bytes", {"a": [1, 2, (3,)]},
              np.arange(10), np.zeros(300_000)]  # the last: 2.4 MB, stored through krayd
    for v in values:
        got = ray.get(echo.remote(v))
        if isinstance(v, np.ndarray):
            assert np.array_equal(got, v)
        else:
            assert got == v and type(got) is type(v)
    assert ray.get(ray.get(holds_ref.remote())[0]) == "held"
    # Refs as arguments, num_returns, options and kwargs take krayd's path, unchanged.
    ref = ray.put(21)
    assert ray.get(echo.remote(ref)) == 21

    @ray.remote(num_returns=2)
    def pair():
        return 1, 2

    assert ray.get(pair.remote()) == [1, 2]
    assert ray.get(echo.options(num_cpus=0.5).remote(v=3)) == 3
    assert ray.get(echo.options(max_retries=0, name="x").remote(4)) == 4


def test_small_ref_args_go_fast(fast):
    """A top-level ObjectRef argument whose small value this driver has (it put it, or got
    it) travels by value on the fast path; the function sees what krayd's path gives it."""
    ray, on = fast

    @ray.remote
    def add(a, b=0):
        return a + b

    small = ray.put(21)
    before = fast_count(ray)
    assert [ray.get(add.remote(small, i)) for i in range(100)] == [21 + i for i in range(100)]
    assert ray.get(add.remote(1, b=small)) == 22
    got = ray.get(add.remote(3, 4))
    assert ray.get(add.remote(ray.put(got), small)) == 28  # a put of a result
    fast_n = fast_count(ray) - before
    # Large, nested and not-ready refs take krayd's path, with the same results.
    big = ray.put(np.ones(300_000))
    nested = ray.put([small])
    assert ray.get(add.remote(big, 1)).sum() == 600_000
    assert ray.get(add.remote(nested, [])) == [small]
    slow = add.remote(5, 5)
    assert ray.get(add.remote(slow, small)) == 31
    if not on:
        assert fast_n == 0
        pytest.skip("no fast path here (not root, no BPF, or KRAY_FASTPATH=off)")
    assert fast_n >= 80, f"only {fast_n} of 103 calls with small ref arguments went fast"


def test_exceptions_as_on_krayds_path(fast):
    ray, _ = fast

    @ray.remote
    def boom(x):
        raise ValueError(f"bad {x}")

    for _ in range(3):
        with pytest.raises(ValueError) as e:
            ray.get(boom.remote(5))
        assert isinstance(e.value, ray.exceptions.RayTaskError)
        assert "bad 5" in str(e.value) and "boom" in str(e.value)

    @ray.remote
    def ok():
        return "after"

    assert ray.get(ok.remote()) == "after"  # the worker goes on


def test_large_function_body_not_loaded_yet(fresh):
    """A function whose pickled body is too large to travel in its calls goes by key
    alone: a worker that has not loaded it answers that it did not run the call, which
    then goes to krayd with the blob's ref.  One worker: it loads it there, and the next
    calls run from its cache."""
    ray = fresh
    ray.init(num_cpus=1)
    table = bytes(range(256)) * 64  # 16 KiB in the function's body

    @ray.remote
    def lookup(i):
        return table[i]

    assert [ray.get(lookup.remote(i)) for i in range(20)] == [table[i] for i in range(20)]
    assert len(lookup._blob.fast_arg0()) < 100  # the key alone, not the body
    before = fast_count(ray)
    assert [ray.get(lookup.remote(i)) for i in range(50)] == [table[i] for i in range(50)]
    if not FAST_OFF and fast_count(ray) > 0:
        assert fast_count(ray) - before >= 30


def test_timed_get_then_late_result(fast, tmp_path):
    ray, _ = fast

    @ray.remote
    def slow(x):
        time.sleep(0.5)
        return x + 1

    ref = slow.remote(1)
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.05)
    assert ray.get(ref, timeout=30) == 2
    assert ray.get(ref) == 2  # again, from the cache
    # A late call's ref works as an argument and in wait.
    ref = slow.remote(5)
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.01)

    @ray.remote
    def double(x):
        return 2 * x

    assert ray.get(double.remote(ref)) == 12
    ref = slow.remote(7)
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.01)
    ready, _ = ray.wait([ref], timeout=30)
    assert ready == [ref] and ray.get(ref) == 8


def test_cancel_racing_a_fast_call(fast, tmp_path):
    ray, _ = fast

    @ray.remote
    def sleeper(path):
        open(path, "w").close()
        time.sleep(1.0)
        return "finished"

    ref = sleeper.remote(str(tmp_path / "a"))
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.05)
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=30)
    # force: its worker is killed; the call is not retried.
    ref = sleeper.remote(str(tmp_path / "b"))
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.05)
    t = time.monotonic()
    ray.cancel(ref, force=True)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=30)
    assert time.monotonic() - t < 20

    @ray.remote
    def ok():
        return "next"

    assert [ray.get(ok.remote()) for _ in range(5)] == ["next"] * 5


def test_worker_killed_mid_call(fast, tmp_path):
    ray, _ = fast
    marker = str(tmp_path / "died")

    @ray.remote(max_retries=2)
    def dies_once(path):
        if not os.path.exists(path):
            open(path, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return "retried"

    assert ray.get(dies_once.remote(marker), timeout=60) == "retried"

    @ray.remote(max_retries=0)
    def dies():
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(dies.remote(), timeout=60)

    @ray.remote
    def ok():
        return "alive"

    assert ray.get(ok.remote(), timeout=60) == "alive"


def test_submit_then_sleep_still_runs(fast, tmp_path):
    """A call left for its get is sent by the driver's flusher if no get comes."""
    ray, _ = fast
    path = tmp_path / "ran"

    @ray.remote
    def touch(p):
        open(p, "w").close()
        return 1

    ref = touch.remote(str(path))
    deadline = time.monotonic() + 20
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.exists(), "the call was never sent"
    assert ray.get(ref) == 1


# Actor method calls (docs/fastpath.md, "Actor calls" and "Python actor calls"): a plain
# actor's synchronous calls go straight to its worker, with krayd's semantics.

def _log_actor(ray, **opts):
    @ray.remote(**opts)
    class Log:
        def __init__(self):
            self.seen = []

        def add(self, x, wait_for=None):
            self.seen.append(x)
            return x

        def seen_list(self):
            return list(self.seen)

        def pid(self):
            return os.getpid()

        def boom(self, x):
            raise ValueError(f"bad {x}")

        def slow(self, x, s=0.5):
            time.sleep(s)
            self.seen.append(x)
            return x

        def echo(self, v):
            return v

        def holds_ref(self):
            return [ray.put("held by an actor")]

        def die(self, marker=None):
            if marker is None or not os.path.exists(marker):
                if marker:
                    open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            return "survived"

    return Log


def _warm(ray, a):
    """Until the actor's worker takes fast calls (it asks once constructed)."""
    for _ in range(40):
        ray.get(a.add.remote(-1))


def test_actor_sync_calls_go_fast(fast):
    ray, on = fast
    a = _log_actor(ray).remote()
    _warm(ray, a)
    before = fast_count(ray)
    assert [ray.get(a.echo.remote(i)) for i in range(200)] == list(range(200))
    got = fast_count(ray) - before
    if not on:
        assert got == 0
        pytest.skip("no fast path here (not root, no BPF, or KRAY_FASTPATH=off)")
    # One that the flusher sent before its get came (a stall of 50 us on a loaded
    # machine) goes through krayd, and the next may come back once.
    assert got >= 150, f"only {got} of 200 sync actor calls went fast"
    # A timed get goes too.
    before = fast_count(ray)
    assert [ray.get(a.echo.remote(i), timeout=30) for i in range(50)] == list(range(50))
    assert fast_count(ray) - before >= 30
    # Actors whose methods run on threads take krayd's path, unchanged.
    t = _log_actor(ray, max_concurrency=2).remote()
    _warm(ray, t)
    before = fast_count(ray)
    assert [ray.get(t.echo.remote(i)) for i in range(50)] == list(range(50))
    assert fast_count(ray) - before == 0


def test_actor_order_mixed_with_krayds_path(fast):
    """Per caller, calls run in the order made, whether each went fast, was pipelined (sent
    by the flusher or with a later call), or waited in krayd for a ref argument."""
    ray, on = fast
    a = _log_actor(ray).remote()
    _warm(ray, a)

    @ray.remote
    def later(x, s):
        time.sleep(s)
        return x

    ray.get(a.seen_list.remote())
    want = []
    n = 0
    for rnd in range(6):
        ray.get(a.add.remote(n))  # fast
        want.append(n)
        n += 1
        pending = []
        for _ in range(3):  # pipelined: in the driver's buffer, then a sync call
            pending.append(a.add.remote(n))
            want.append(n)
            n += 1
        ray.get(a.add.remote(n))
        want.append(n)
        n += 1
        # A call that waits in krayd for its argument, then sync calls behind it.
        pending.append(a.add.remote(n, later.remote(n, 0.05)))
        want.append(n)
        n += 1
        for _ in range(2):
            ray.get(a.add.remote(n), timeout=30)
            want.append(n)
            n += 1
        if rnd % 2:
            time.sleep(0.002)  # the flusher sends a pipelined call before the next one
            pending.append(a.add.remote(n))
            want.append(n)
            n += 1
            time.sleep(0.002)
            ray.get(a.add.remote(n))
            want.append(n)
            n += 1
        ray.get(pending)
    seen = [x for x in ray.get(a.seen_list.remote()) if x >= 0]
    assert seen == want


def test_actor_exceptions_as_on_krayds_path(fast):
    ray, _ = fast
    a = _log_actor(ray).remote()
    _warm(ray, a)
    for _ in range(3):
        with pytest.raises(ValueError) as e:
            ray.get(a.boom.remote(5))
        assert isinstance(e.value, ray.exceptions.RayTaskError)
        assert "bad 5" in str(e.value) and "boom" in str(e.value)
    with pytest.raises(ValueError):
        ray.get(a.boom.remote(6), timeout=30)
    # The actor lives on, its state kept.
    assert ray.get(a.add.remote(7)) == 7
    assert ray.get(a.seen_list.remote())[-1] == 7


def test_actor_results_as_on_krayds_path(fast):
    ray, _ = fast
    a = _log_actor(ray).remote()
    _warm(ray, a)
    values = [None, 0, -7, 2**70, 1.5, "text", b"bytes", {"a": [1, 2, (3,)]},
              np.arange(10), np.zeros(300_000)]  # the last stored through krayd
    for v in values:
        got = ray.get(a.echo.remote(v))
        if isinstance(v, np.ndarray):
            assert np.array_equal(got, v)
        else:
            assert got == v and type(got) is type(v)
    big = ray.get(a.echo.remote(b"x" * 40_000))  # beyond one fast frame: STORED
    assert big == b"x" * 40_000
    assert ray.get(ray.get(a.holds_ref.remote())[0]) == "held by an actor"
    # Refs as arguments and num_returns take krayd's path, unchanged.
    assert ray.get(a.echo.remote(ray.put(21))) == 21
    assert ray.get(a.echo.options(num_returns=1).remote(3)) == 3


def test_actor_timed_get_then_late_result(fast):
    ray, _ = fast
    a = _log_actor(ray).remote()
    _warm(ray, a)
    ref = a.slow.remote("slow")
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.05)
    # The next call runs after the late one, as Ray orders one caller's calls.
    assert ray.get(a.add.remote("next"), timeout=30) == "next"
    assert ray.get(ref, timeout=30) == "slow"
    assert ray.get(ref) == "slow"  # again, from the cache
    assert ray.get(a.seen_list.remote())[-2:] == ["slow", "next"]
    # A late call's ref in wait and as an argument.
    ref = a.slow.remote(5, 0.3)
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.01)
    ready, _ = ray.wait([ref], timeout=30)
    assert ready == [ref] and ray.get(ref) == 5
    ref = a.slow.remote(6, 0.3)
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.01)
    assert ray.get(a.echo.remote(ref), timeout=30) == 6


def test_actor_dies_with_a_fast_call_in_flight(fast, tmp_path):
    ray, _ = fast
    # The method kills its own process: RayActorError, and later calls fail too.
    a = _log_actor(ray).remote()
    _warm(ray, a)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(a.die.remote(), timeout=60)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(a.add.remote(1), timeout=60)
    # Killed from outside while the call runs (the get waiting on the fast path).
    b = _log_actor(ray).remote()
    _warm(ray, b)
    pid = ray.get(b.pid.remote())
    killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(b.slow.remote(1, 5.0), timeout=60)
    finally:
        killer.join()
    # kray.kill() of an actor whose fast call's get timed out: the late call fails.
    c = _log_actor(ray).remote()
    _warm(ray, c)
    ref = c.slow.remote(1, 5.0)
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.2)
    ray.kill(c)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(ref, timeout=60)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(c.add.remote(2), timeout=60)
    # With a restart and a task retry left, the call runs again on the new actor.
    d = _log_actor(ray).options(max_restarts=1, max_task_retries=1).remote()
    _warm(ray, d)
    assert ray.get(d.die.remote(str(tmp_path / "once")), timeout=60) == "survived"
    assert ray.get(d.add.remote(3), timeout=60) == 3


def test_actor_call_behind_a_buffered_one_goes_to_krayd(fast):
    """A sync call right behind a pipelined call still in the driver's buffer goes to
    krayd with it, in one write: on the fast path the actor's worker, not having run the
    earlier call, would send it back (NOT_RUN), a wasted round trip (counted as steered)."""
    ray, on = fast
    a = _log_actor(ray).remote()
    _warm(ray, a)
    before = fast_count(ray)
    for i in range(40):
        ref = a.add.remote(2 * i)
        assert ray.get(a.add.remote(2 * i + 1)) == 2 * i + 1
        assert ray.get(ref) == 2 * i
    steered = fast_count(ray) - before
    # The flusher may send the first call before the second is made (50 us), on a loaded
    # machine; then the second may go fast, or come back.
    assert steered <= 20, f"{steered} of 40 calls behind a buffered one were steered"
    assert [x for x in ray.get(a.seen_list.remote()) if x >= 0] == list(range(80))
    if on:  # and the calls after them go fast again
        before = fast_count(ray)
        assert [ray.get(a.echo.remote(i)) for i in range(20)] == list(range(20))
        assert fast_count(ray) - before >= 12


def test_actor_fast_calls_in_the_task_list(fast):
    """The actor's worker reports its fast calls (FAST_COUNT records) as actor tasks, so
    list_tasks() shows them as for calls through krayd: name, state, actor id."""
    ray, on = fast
    from kray.util.state import list_tasks

    @ray.remote
    class Listed:
        def step_listed(self, x):
            return x

        def bad_listed(self):
            raise ValueError("on purpose")

    a = Listed.remote()
    assert ray.get(a.step_listed.remote(-1)) == -1  # constructed: its calls may go fast
    before = fast_count(ray)
    assert [ray.get(a.step_listed.remote(i)) for i in range(30)] == list(range(30))
    with pytest.raises(ValueError):
        ray.get(a.bad_listed.remote())
    went = fast_count(ray) - before
    deadline = time.monotonic() + 10
    while True:
        rows = [t for t in list_tasks(limit=10000)
                if t["name"] in ("Listed.step_listed", "Listed.bad_listed")]
        if len(rows) >= 32 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    steps = [t for t in rows if t["name"] == "Listed.step_listed"]
    assert len(steps) == 31 and all(t["state"] == "FINISHED" for t in steps), steps
    assert {t["type"] for t in rows} == {"ACTOR_TASK"}, rows
    assert len({t["actor_id"] for t in rows}) == 1, rows
    failed = [t for t in rows if t["name"] == "Listed.bad_listed"]
    assert len(failed) == 1 and failed[0]["state"] == "FAILED", failed
    assert on == (went > 0)


def test_actor_calls_without_arguments(fast):
    """A method called without arguments takes .remote()'s shortcut (one args blob made
    once, the method looked up once per handle): its checks and outcomes are those of any
    call, fast or not."""
    ray, on = fast

    @ray.remote
    class Plain:
        def __init__(self):
            self.n = 0

        def incr(self, by=1):
            self.n += by
            return self.n

        def needs(self, x):
            return x

        def boom(self):
            raise KeyError("no args, raised")

        @ray.method(concurrency_group="io")
        def grouped(self):
            return "grouped"

    a = Plain.remote()
    assert ray.get(a.incr.remote()) == 1
    before = fast_count(ray)
    assert [ray.get(a.incr.remote()) for _ in range(50)] == list(range(2, 52))
    assert ray.get(a.incr.remote(10)) == 61  # an argument: the general path
    if on:
        assert fast_count(ray) - before >= 30
    with pytest.raises(TypeError, match="needs"):
        a.needs.remote()  # checked in the driver, as before
    for _ in range(2):  # each time: the exception, and the actor lives on
        with pytest.raises(KeyError) as e:
            ray.get(a.boom.remote())
        assert isinstance(e.value, ray.exceptions.RayTaskError)
        assert "no args, raised" in str(e.value)
    for _ in range(2):  # the method's own group, unknown to this actor (looked up once)
        with pytest.raises(ValueError, match="unknown concurrency group 'io'"):
            ray.get(a.grouped.remote())
    assert ray.get(a.incr.remote()) == 62
    # A handle passed on (pickled) and one looked up by name call the same way.
    b = ray.get(ray.put([a]))[0]
    assert ray.get(b.incr.remote()) == 63
    named = Plain.options(name="plain_no_args").remote()  # noqa: F841 (kept alive)
    c = ray.get_actor("plain_no_args")
    assert [ray.get(c.incr.remote()) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(AttributeError, match="no method 'nothing'"):
        c.nothing.remote()
    with pytest.raises(AttributeError, match="no method 'nothing'"):
        a.nothing.remote()


def test_actor_call_ids_kept_stay_bounded(fast, monkeypatch):
    """The driver remembers its latest actor calls (cancel(force=True) refuses them) up
    to a bound, dropping the oldest first."""
    ray, _ = fast
    from kray import _remote
    monkeypatch.setattr(_remote, "_ACTOR_CALLS_KEPT", 5)
    a = _log_actor(ray).remote()
    refs = [a.add.remote(i) for i in range(20)]
    assert ray.get(refs) == list(range(20))
    assert len(_remote._actor_calls) == 5
    assert all(_remote.is_actor_call(r) for r in refs[-5:])
    assert not any(_remote.is_actor_call(r) for r in refs[:15])
    last = a.add.remote(99)
    with pytest.raises(ValueError, match="force=True is not supported for actor tasks"):
        ray.cancel(last, force=True)
    assert ray.get(last) == 99


def test_actor_call_without_get_still_runs(fast, tmp_path):
    """An actor call left in the buffer for its get is sent by the flusher if no get
    comes, as a task's is (test_submit_then_sleep_still_runs)."""
    ray, _ = fast
    path = tmp_path / "ran"

    @ray.remote
    class Toucher:
        def touch(self, p):
            open(p, "w").close()
            return 1

        def noop(self):
            return 0

    t = Toucher.remote()
    for _ in range(20):
        ray.get(t.noop.remote())  # constructed, its worker polling for the next call
    ref = t.touch.remote(str(path))
    deadline = time.monotonic() + 20
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.exists(), "the call was never sent"
    assert ray.get(ref) == 1
    ref = t.noop.remote()  # the shortcut of a call without arguments, no get either
    time.sleep(0.5)
    assert ray.get(ref, timeout=0) == 0

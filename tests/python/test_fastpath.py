# SPDX-License-Identifier: Apache-2.0
"""Python tasks on krayd's fast path (docs/fastpath.md, "Python tasks"): f.remote()
followed at once by a get of its ref goes to an idle worker through krayd's BPF program,
its function named by key (and carried inline when small) instead of the ref to its blob.
The results must be those of krayd's path; `make test-python` runs this file with the
fast path on, and KRAY_FASTPATH=off runs it through krayd (the counts then stay 0)."""
import os
import signal
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

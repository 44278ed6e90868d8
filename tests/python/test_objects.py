# SPDX-License-Identifier: Apache-2.0
"""put, get (one, a list, timeout), wait, and numpy arrays through the store without a
copy."""
import time

import numpy as np
import pytest


def test_put_get(ray_start):
    ray = ray_start
    values = [None, 1, 2.5, "text", b"bytes", [1, 2], {"k": (1, 2)}, {1, 2}, 10**30,
              b"x" * (1 << 20)]
    refs = [ray.put(v) for v in values]
    assert all(isinstance(r, ray.ObjectRef) for r in refs)
    assert ray.get(refs) == values
    assert ray.get(refs[3]) == "text"
    assert ray.get(tuple(refs[:2])) == [None, 1]
    with pytest.raises(TypeError):
        ray.put(refs[0])
    with pytest.raises(ValueError):
        ray.get(5)


def test_ref_identity(ray_start):
    ray = ray_start
    r = ray.put(1)
    assert r == r and hash(r) == hash(r)
    assert r != ray.put(1)
    assert len(r.hex()) == 32 and repr(r).startswith("ObjectRef(")


def test_get_timeout(ray_start):
    ray = ray_start

    @ray.remote
    def slow():
        time.sleep(1)
        return "done"

    ref = slow.remote()
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.1)  # the task takes a second
    with pytest.raises(TimeoutError):  # GetTimeoutError is a TimeoutError
        ray.get([ref], timeout=0)
    assert ray.get(ref, timeout=30) == "done"


def test_get_and_wait_longer_than_one_frame(ray_start):
    # Ray takes any number of refs; one get or wait frame holds 65,536.
    ray = ray_start
    n = 65536 + 1000
    refs = [ray.put(i) for i in range(n)]
    assert ray.get(refs) == list(range(n))
    assert ray.get(refs, timeout=30)[-3:] == [n - 3, n - 2, n - 1]

    @ray.remote
    def later(s):
        time.sleep(s)
        return s

    slow = later.remote(1)
    ready, not_ready = ray.wait(refs + [slow], num_returns=n, timeout=30)
    assert len(ready) == n and not_ready == [slow]
    t0 = time.monotonic()
    ready, not_ready = ray.wait([slow] + refs, num_returns=n + 1, timeout=0.2)
    assert len(ready) == n and not_ready == [slow]  # the timeout came first
    assert time.monotonic() - t0 < 5
    ready, not_ready = ray.wait(refs + [slow], num_returns=n + 1)
    assert len(ready) == n + 1 and ready[-1] == slow and not_ready == []
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(refs + [later.remote(5)], timeout=0.2)


def test_wait(ray_start):
    ray = ray_start

    @ray.remote
    def sleep(s):
        time.sleep(s)
        return s

    fast, slow = sleep.remote(0), sleep.remote(2)
    ready, not_ready = ray.wait([slow, fast], num_returns=1, timeout=10)
    assert ready == [fast] and not_ready == [slow]
    ready, not_ready = ray.wait([slow, fast], num_returns=2, timeout=0.1)
    assert ready == [fast] and not_ready == [slow]  # the timeout came first
    ready, not_ready = ray.wait([slow, fast], num_returns=2)
    assert ready == [slow, fast] and not_ready == []
    with pytest.raises(ValueError):
        ray.wait([fast], num_returns=2)
    with pytest.raises(ValueError):
        ray.wait([fast, fast])
    with pytest.raises(TypeError):
        ray.wait(fast)


def test_numpy_100mb_round_trip_without_copy(ray_start):
    ray = ray_start
    a = np.random.default_rng(1).integers(0, 255, size=100 << 20, dtype=np.uint8)
    before = ray._kray.status()
    ref = ray.put(a)
    after = ray._kray.status()
    # Stored once, in the store's shared memory (not inline in krayd).
    assert after["store_bytes"] - before["store_bytes"] >= a.nbytes
    b = ray.get(ref)
    assert np.array_equal(a, b)
    assert not b.flags.writeable and not b.flags.owndata
    with pytest.raises(ValueError):
        b[0] = 1  # read-only: the store's memory is sealed
    # The array's memory is the store's mapping: a second get maps nothing new and
    # gives the same address.
    c = ray.get(ref)
    assert c.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    assert b.__array_interface__["data"][0] % 64 == 0
    assert after["objects_pinned"] <= ray._kray.status()["objects_pinned"]


def test_arrays_put_and_freed_back_to_back_keep_their_bytes(ray_start):
    # pool-reuse (docs/objects.md): each freed array's memory is the next one's; a live
    # array and the arrays got back stay exactly what was put.
    ray = ray_start
    keep = np.full(4 << 20, 7, dtype=np.uint8)
    kept = ray.put(keep)
    view = ray.get(kept)
    for i in range(12):
        a = np.full(4 << 20, i, dtype=np.uint8)
        ref = ray.put(a)
        assert np.array_equal(ray.get(ref), a)
        del ref
        assert (view == 7).all()
    del kept
    for i in range(4):  # the freed one stays readable through the view
        ray.get(ray.put(np.full(4 << 20, 100 + i, dtype=np.uint8)))
        assert (view == 7).all()


def test_numpy_returned_by_task_lands_in_store_once(ray_start):
    ray = ray_start

    @ray.remote
    def make(n):
        return np.full(n, 7, dtype=np.int64)

    @ray.remote
    def total(x):
        assert not x.flags.writeable  # the worker sees the store's memory too
        return int(x.sum())

    ref = make.remote(4 << 20)  # 32 MiB
    arr = ray.get(ref)
    assert arr.shape == (4 << 20,) and not arr.flags.writeable
    assert ray.get(total.remote(ref)) == 7 * (4 << 20)
    mixed = ray.get(ray.put({"a": np.arange(10), "b": [np.ones(3), "x"]}))
    assert list(mixed["a"]) == list(range(10)) and mixed["b"][1] == "x"


def test_large_value_containing_refs(ray_start):
    ray = ray_start
    inner = ray.put("inner")
    ref = ray.put({"ref": inner, "big": b"z" * (4 << 20)})
    out = ray.get(ref)
    assert ray.get(out["ref"]) == "inner" and len(out["big"]) == 4 << 20


def test_objects_freed_when_unreferenced(ray_start):
    ray = ray_start
    import gc
    base = ray._kray.status()
    refs = [ray.put(np.zeros(4 << 20, dtype=np.uint8)) for _ in range(4)]
    held = ray._kray.status()
    assert held["store_bytes"] - base["store_bytes"] >= 4 * (4 << 20)
    del refs
    gc.collect()
    deadline = time.monotonic() + 10
    while ray._kray.status()["store_bytes"] > base["store_bytes"]:
        assert time.monotonic() < deadline, "objects not freed after their refs went"
        time.sleep(0.01)


def test_await_and_future(ray_start):
    ray = ray_start
    import asyncio

    @ray.remote
    def val(x):
        return x

    async def main():
        return await val.remote(3)

    assert asyncio.run(main()) == 3
    assert val.remote(4).future().result(timeout=30) == 4


def test_numpy_spilled_comes_back_lazily(fresh):
    """A spilled array comes back at once and reads byte-exact: its pages are read from
    disk as numpy touches them (lazy restore, docs/objects.md); touching one end reads a
    few MiB, not the whole array."""
    ray = fresh
    ray.init(num_cpus=1, object_store_memory=80 << 20)
    a = np.random.default_rng(2).integers(0, 255, size=48 << 20, dtype=np.uint8)
    ref = ray.put(a)
    filler = ray.put(np.zeros(48 << 20, dtype=np.uint8))  # pushes a to disk
    deadline = time.time() + 30
    while ray._kray.status()["objects_spilled"] < 1 and time.time() < deadline:
        time.sleep(0.01)
    assert ray._kray.status()["objects_spilled"] >= 1
    del filler
    before = ray._kray.status()["restored_total"]
    b = ray.get(ref)
    assert b[-1] == a[-1]
    touched = ray._kray.status()["restored_total"] - before
    assert 0 < touched <= 8 << 20 or touched == a.nbytes  # lazy, or eager without uffd
    assert np.array_equal(a, b)
    assert not b.flags.writeable

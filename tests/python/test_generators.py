# SPDX-License-Identifier: Apache-2.0
"""Generators (issue 17, part 4), as Ray documents them.  Streaming generators
(num_returns="streaming", the default of a generator function): the call gives an
ObjectRefGenerator whose items come while the task runs.  num_returns="dynamic": get of
the call's ref gives a DynamicObjectRefGenerator of the yielded items' refs.  Either way
an exception becomes the item where it happened."""
import asyncio
import os
import tempfile
import time

import pytest


def test_dynamic_generator_task(ray_start):
    ray = ray_start

    @ray.remote(num_returns="dynamic")
    def count(n):
        for i in range(n):
            yield i * i

    gen = ray.get(count.remote(10000))
    assert isinstance(gen, ray.DynamicObjectRefGenerator)
    assert len(gen) == 10000
    refs = list(gen)
    assert ray.get(refs[:3]) == [0, 1, 4] and ray.get(refs[-1]) == 9999 * 9999
    assert ray.get(count.options(num_returns="dynamic").remote(0)).__len__() == 0


def test_dynamic_generator_error_at_its_item(ray_start):
    ray = ray_start

    @ray.remote
    def fails_at(k):
        for i in range(10):
            if i == k:
                raise IndexError(f"item {i}")
            yield i

    refs = list(ray.get(fails_at.options(num_returns="dynamic").remote(3)))
    assert len(refs) == 4
    assert ray.get(refs[:3]) == [0, 1, 2]
    with pytest.raises(IndexError, match="item 3"):
        ray.get(refs[3])


def test_dynamic_needs_a_generator(ray_start):
    ray = ray_start

    @ray.remote(num_returns="dynamic")
    def plain():
        return 1

    with pytest.raises(TypeError, match="not a generator"):
        ray.get(plain.remote())


def test_dynamic_generator_methods(ray_start):
    ray = ray_start

    @ray.remote
    class Source:
        @ray.method(num_returns="dynamic")
        def items(self, n):
            yield from range(n)

    @ray.remote
    class AsyncSource:
        async def items(self, n):
            for i in range(n):
                await asyncio.sleep(0)
                yield i

        def sync_items(self, n):
            yield from range(n)

    s = Source.remote()
    assert ray.get(list(ray.get(s.items.remote(5)))) == list(range(5))
    a = AsyncSource.remote()
    gen = ray.get(a.items.options(num_returns="dynamic").remote(100))
    assert ray.get(list(gen)) == list(range(100))
    gen = ray.get(a.sync_items.options(num_returns="dynamic").remote(3))
    assert ray.get(list(gen)) == [0, 1, 2]


def test_bad_num_returns_is_refused_clearly(ray_start):
    ray = ray_start

    @ray.remote
    def gen():
        yield 1

    with pytest.raises(ValueError, match="num_returns"):
        gen.options(num_returns="lots").remote()


def test_streaming_10000_items_consumed_while_it_runs(ray_start):
    """The consumer gets the first items while the task still runs: the task waits for
    a file the consumer writes after it has seen item 0, so it could not end first."""
    ray = ray_start
    flag = os.path.join(tempfile.mkdtemp(), "seen")

    @ray.remote
    def count(n, flag):
        for i in range(n):
            if i == 100:
                while not os.path.exists(flag):
                    time.sleep(0.01)
            yield i

    gen = count.remote(10000, flag)
    assert isinstance(gen, ray.ObjectRefGenerator)
    first = next(gen)
    assert ray.get(first) == 0
    assert not gen.is_finished()
    assert ray.wait([gen.completed()], timeout=0.2)[0] == []  # still running
    open(flag, "w").close()
    rest = [ray.get(r) for r in gen]
    assert rest == list(range(1, 10000))
    assert gen.is_finished()
    with pytest.raises(StopIteration):
        next(gen)
    ray.get(gen.completed())
    os.unlink(flag)


def test_streaming_by_option_and_large_items(ray_start):
    ray = ray_start
    np = pytest.importorskip("numpy")

    def arrays(n):
        for i in range(n):
            yield np.full(100_000, i, dtype=np.int64)  # 800 KB each: store objects

    f = ray.remote(num_returns="streaming")(arrays)
    sums = [int(ray.get(r).sum()) for r in f.remote(5)]
    assert sums == [i * 100_000 for i in range(5)]
    # Dynamic still works beside streaming.
    assert len(ray.get(ray.remote(num_returns="dynamic")(arrays).remote(2))) == 2


def test_streaming_error_at_its_item(ray_start):
    ray = ray_start

    @ray.remote
    def fails_at(k):
        for i in range(10):
            if i == k:
                raise IndexError(f"item {i}")
            yield i

    refs = list(fails_at.remote(3))
    assert len(refs) == 4
    assert ray.get(refs[:3]) == [0, 1, 2]
    with pytest.raises(IndexError, match="item 3"):
        ray.get(refs[3])
    # The call itself ended normally: the error was an item.
    gen = fails_at.remote(0)
    with pytest.raises(IndexError, match="item 0"):
        ray.get(next(gen))
    with pytest.raises(StopIteration):
        next(gen)


def test_streaming_needs_a_generator(ray_start):
    ray = ray_start

    @ray.remote(num_returns="streaming")
    def plain():
        return 1

    gen = plain.remote()
    with pytest.raises(TypeError, match="not a generator"):
        ray.get(next(gen))
    with pytest.raises(StopIteration):
        next(gen)


def test_streaming_actor_methods(ray_start):
    ray = ray_start

    @ray.remote
    class Source:
        def __init__(self):
            self.calls = 0

        def items(self, n):
            self.calls += 1
            for i in range(n):
                yield (self.calls, i)

        def fails(self):
            yield 1
            raise KeyError("second")

    @ray.remote
    class AsyncSource:
        async def items(self, n):
            for i in range(n):
                await asyncio.sleep(0)
                yield i

        def sync_items(self, n):
            yield from range(n)

    @ray.remote(max_concurrency=4)
    class Threaded:
        def items(self, n):
            yield from range(n)

    s = Source.remote()
    assert [ray.get(r) for r in s.items.remote(3)] == [(1, 0), (1, 1), (1, 2)]
    refs = list(s.fails.remote())
    assert ray.get(refs[0]) == 1
    with pytest.raises(KeyError, match="second"):
        ray.get(refs[1])
    a = AsyncSource.remote()
    assert [ray.get(r) for r in a.items.remote(100)] == list(range(100))
    assert [ray.get(r) for r in a.sync_items.remote(3)] == [0, 1, 2]
    t = Threaded.remote()
    gens = [t.items.remote(50) for _ in range(4)]
    assert [[ray.get(r) for r in g] for g in gens] == [list(range(50))] * 4


def test_streaming_async_for(ray_start):
    ray = ray_start

    @ray.remote
    def count(n):
        yield from range(n)

    @ray.remote
    class Consumer:
        async def total(self, n):
            s = 0
            async for ref in count.remote(n):
                s += await ref
            return s

    async def main():
        return [ref async for ref in count.remote(20)]

    refs = asyncio.run(main())
    assert ray.get(refs) == list(range(20))
    assert ray.get(Consumer.remote().total.remote(200)) == sum(range(200))


def test_streaming_cancel(ray_start):
    """Cancel of a streaming task: it stops (KeyboardInterrupt in the worker), the item
    where it stopped raises TaskCancelledError, and the generator ends."""
    ray = ray_start

    @ray.remote
    def forever():
        i = 0
        while True:
            time.sleep(0.01)
            yield i
            i += 1

    gen = forever.remote()
    assert ray.get(next(gen)) == 0
    ray.cancel(gen)
    refs = list(gen)  # ends
    assert refs, "the cancelled item"
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(refs[-1])
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(gen.completed())
    assert [ray.get(r) for r in refs[:-1]] == list(range(1, len(refs)))


def test_streaming_generator_is_not_serializable(ray_start):
    ray = ray_start

    @ray.remote
    def count(n):
        yield from range(n)

    @ray.remote
    def take(g):
        return g

    gen = count.remote(2)
    with pytest.raises(TypeError, match="serialized"):
        take.remote(gen)
    assert [ray.get(r) for r in gen] == [0, 1]


def test_streaming_dropped_early(ray_start):
    """A generator dropped before its end: the task runs to its end and what it yields
    later is not kept; the process goes on."""
    ray = ray_start

    @ray.remote
    def count(n):
        yield from range(n)

    for _ in range(20):
        gen = count.remote(1000)
        assert ray.get(next(gen)) == 0
        del gen

    @ray.remote
    def one():
        return 1
    assert ray.get(one.remote()) == 1

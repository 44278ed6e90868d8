# SPDX-License-Identifier: Apache-2.0
"""Generators (issue 17, part 4): num_returns="dynamic" on tasks and actor methods, as
Ray documents it: get of the call's ref gives an ObjectRefGenerator of the yielded items'
refs; an exception becomes the item where it happened.  Streaming generators are not
there yet, and say so."""
import asyncio

import pytest


def test_dynamic_generator_task(ray_start):
    ray = ray_start

    @ray.remote(num_returns="dynamic")
    def count(n):
        for i in range(n):
            yield i * i

    gen = ray.get(count.remote(10000))
    assert isinstance(gen, ray.ObjectRefGenerator)
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


def test_streaming_is_refused_clearly(ray_start):
    ray = ray_start

    @ray.remote
    def gen():
        yield 1

    with pytest.raises(ValueError, match="streaming"):
        gen.options(num_returns="streaming").remote()
    with pytest.raises(ValueError, match="num_returns"):
        gen.options(num_returns="lots").remote()

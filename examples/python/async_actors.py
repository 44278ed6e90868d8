# SPDX-License-Identifier: Apache-2.0
# Async actors, threaded actors and concurrency groups, as in Ray (docs/python.md).
# Run: PYTHONPATH=build/python python3 examples/python/async_actors.py
import asyncio
import threading
import time

import kray as ray

ray.init()


@ray.remote
def square(x):
    return x * x


@ray.remote
class Fetcher:
    """An async actor: its async def methods run concurrently on one event loop."""

    async def fetch(self, i):
        await asyncio.sleep(1)  # stands for a slow network call
        return i

    async def sum_of_squares(self, n):
        # Awaiting refs suspends only this call; the actor serves others meanwhile.
        return sum(await asyncio.gather(*[square.remote(i) for i in range(n)]))


@ray.remote(max_concurrency=4)
class Crawler:
    """A threaded actor: its methods run on 4 threads and may call kray."""

    def crawl(self, n):
        return sum(ray.get([square.remote(i) for i in range(n)])), threading.get_ident()


@ray.remote(concurrency_groups={"io": 2})
class Service:
    @ray.method(concurrency_group="io")
    async def download(self):
        await asyncio.sleep(0.2)  # at most 2 at a time: the "io" group
        return "data"

    async def status(self):
        return "ok"  # the default group: not held up by downloads


f = Fetcher.remote()
t0 = time.monotonic()
got = ray.get([f.fetch.remote(i) for i in range(1000)])
print(f"1000 concurrent 1 s calls: {len(got)} results in {time.monotonic() - t0:.1f} s")
print("sum of squares below 100:", ray.get(f.sum_of_squares.remote(100)))

c = Crawler.remote()
results = ray.get([c.crawl.remote(10) for _ in range(8)])
print("crawl:", results[0][0], "on", len({r[1] for r in results}), "threads")

s = Service.remote()
downloads = [s.download.remote() for _ in range(6)]
print("status while 6 downloads run 2 at a time:", ray.get(s.status.remote()))
print("downloads:", ray.get(downloads))

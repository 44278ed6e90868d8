# SPDX-License-Identifier: Apache-2.0
# Streaming generators, as in Ray 2.x (docs/python.md): a generator task's items reach
# the caller while the task still runs; an error arrives at the item where it happened;
# actor methods stream too; cancel stops a stream.
# Run: PYTHONPATH=build/python python3 examples/python/generators.py
import time

import kray as ray

ray.init()


@ray.remote
def produce(n, delay):
    for i in range(n):
        time.sleep(delay)  # stands for real work per item
        yield i * i


@ray.remote
def fails_at(k):
    for i in range(5):
        if i == k:
            raise ValueError(f"bad item {i}")
        yield i


@ray.remote
class Reader:
    def lines(self, text):
        yield from text.splitlines()


# Each item comes as soon as it is made: the first one long before the task ends.
gen = produce.remote(5, 0.5)
first = ray.get(next(gen))
running = not ray.wait([gen.completed()], timeout=0)[0]
print(f"first item {first}, task still running: {running}")
print("the rest:", [ray.get(ref) for ref in gen])

# An exception is the item where it happened; the items before it are kept.
refs = list(fails_at.remote(2))
print("before the error:", ray.get(refs[:2]))
try:
    ray.get(refs[2])
except ValueError as e:
    print("error at item 2:", "bad item 2" in str(e))

# Actor methods stream too.
r = Reader.remote()
print("lines:", [ray.get(ref) for ref in r.lines.remote("a\nb\nc")])

# cancel stops a stream: the item where it stopped raises TaskCancelledError.
gen = produce.remote(1000, 0.05)
ray.get(next(gen))
ray.cancel(gen)
*_, last = gen
try:
    ray.get(last)
except ray.exceptions.TaskCancelledError:
    print("cancelled")

# SPDX-License-Identifier: Apache-2.0
# The seed's Ray actor example, unchanged but for the import.
# Run: PYTHONPATH=build/python python3 examples/python/actors.py   (prints [1, 1, 1, 1])
import kray as ray
ray.init()

@ray.remote
class Counter(object):
    def __init__(self):
        self.n = 0

    def increment(self):
        self.n += 1

    def read(self):
        return self.n

counters = [Counter.remote() for i in range(4)]
[c.increment.remote() for c in counters]
futures = [c.read.remote() for c in counters]
print(ray.get(futures)) # [1, 1, 1, 1]

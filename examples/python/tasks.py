# SPDX-License-Identifier: Apache-2.0
# The seed's Ray task example, unchanged but for the import.
# Run: PYTHONPATH=build/python python3 examples/python/tasks.py   (prints [0, 1, 4, 9])
import kray as ray
ray.init()

@ray.remote
def f(x):
    return x * x

futures = [f.remote(i) for i in range(4)]
print(ray.get(futures)) # [0, 1, 4, 9]

# SPDX-License-Identifier: Apache-2.0
"""A 100 MB numpy array through the object store, written once and read without a copy.

Run: PYTHONPATH=build/python python3 examples/python/numpy_zero_copy.py
"""
import time

import numpy as np

import kray

kray.init()

a = np.arange(100 * 2**20 // 8, dtype=np.float64)  # 100 MiB
t = time.perf_counter()
ref = kray.put(a)  # one copy, straight into the store's shared memory
t_put = time.perf_counter() - t

t = time.perf_counter()
b = kray.get(ref)  # a read-only view of the store: no copy
t_get = time.perf_counter() - t
print(f"put {a.nbytes / 2**20:.0f} MiB in {t_put * 1e3:.1f} ms, get in {t_get * 1e3:.3f} ms")
print("equal:", np.array_equal(a, b), "| read-only:", not b.flags.writeable)


@kray.remote
def total(x):
    return float(x.sum())  # the worker maps the same memory


@kray.remote
def double(x):
    return x * 2  # a new 100 MiB array: written once into the store by the worker


print("sum in a task:", kray.get(total.remote(ref)), "==", float(a.sum()))
c = kray.get(double.remote(ref))
print("doubled in a task:", c[:4], "read-only:", not c.flags.writeable)
kray.shutdown()

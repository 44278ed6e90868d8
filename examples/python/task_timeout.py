# SPDX-License-Identifier: Apache-2.0
"""A task that hangs ends at its timeout_s (a kray option; Ray has none): get raises
TaskTimeoutError, the task is not retried, and its worker is replaced, so the next tasks
run as usual (docs/limits.md).

    PYTHONPATH=build/python python3 examples/python/task_timeout.py
"""
import time

import kray

kray.init(num_cpus=2)


@kray.remote(timeout_s=1)
def hangs():
    time.sleep(3600)


@kray.remote
def square(x):
    return x * x


t0 = time.monotonic()
try:
    kray.get(hangs.remote())
except kray.exceptions.TaskTimeoutError as e:
    print(f"timed out after {time.monotonic() - t0:.0f} s: {str(e).splitlines()[0]}")
print(kray.get([square.options(timeout_s=30).remote(i) for i in range(4)]))

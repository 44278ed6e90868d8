# SPDX-License-Identifier: Apache-2.0
"""timeout_s (a kray extension: Ray has no task timeout): a task still running past it
fails with TaskTimeoutError and its worker is replaced; tasks that end in time, and other
tasks, are untouched."""
import os
import time

import pytest


def test_task_past_its_timeout_fails(ray_start):
    ray = ray_start

    @ray.remote(timeout_s=0.5, max_retries=3)
    def forever():
        time.sleep(600)

    @ray.remote
    def pid():
        return os.getpid()

    t0 = time.monotonic()
    ref = forever.remote()
    with pytest.raises(ray.exceptions.TaskTimeoutError) as e:
        ray.get(ref, timeout=30)
    took = time.monotonic() - t0
    assert isinstance(e.value, TimeoutError)
    assert "timed out" in str(e.value) and "500 ms" in str(e.value)
    assert 0.4 <= took < 15, took  # not retried: one timeout, not four
    # The node goes on, with a new worker in place of the killed one.
    assert len(set(ray.get([pid.remote() for _ in range(8)], timeout=60))) >= 1


def test_task_that_ends_in_time(ray_start):
    ray = ray_start

    @ray.remote
    def nap(s):
        time.sleep(s)
        return s

    assert ray.get(nap.options(timeout_s=30).remote(0.05), timeout=60) == 0.05


def test_bad_timeouts_refused(ray_start):
    ray = ray_start

    @ray.remote
    def f():
        return 1

    for bad in (0, -1, "5", True, 10**9):
        with pytest.raises(ValueError, match="timeout_s"):
            f.options(timeout_s=bad)

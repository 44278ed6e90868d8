# SPDX-License-Identifier: Apache-2.0
"""Ray's exception names and hierarchy, and errors that keep their type."""
import os
import signal

import pytest


def test_hierarchy():
    from kray import exceptions as ex
    assert issubclass(ex.RayTaskError, ex.RayError)
    assert issubclass(ex.GetTimeoutError, ex.RayError)
    assert issubclass(ex.GetTimeoutError, TimeoutError)
    assert issubclass(ex.ActorDiedError, ex.RayActorError)
    assert issubclass(ex.RayActorError, ex.RayError)
    assert issubclass(ex.WorkerCrashedError, ex.RayError)
    assert issubclass(ex.TaskCancelledError, ex.RayError)
    assert issubclass(ex.OwnerDiedError, ex.ObjectLostError)
    assert issubclass(ex.ObjectLostError, ex.RayError)
    assert issubclass(ex.ObjectStoreFullError, ex.RayError)
    assert ex.KrayError is ex.RayError and ex.KrayTaskError is ex.RayTaskError
    # The rest of Ray's public names, where Ray puts them.
    for name in ("ObjectFreedError", "ReferenceCountingAssertionError",
                 "ObjectReconstructionFailedError",
                 "ObjectReconstructionFailedMaxAttemptsExceededError",
                 "ObjectReconstructionFailedLineageEvictedError"):
        assert issubclass(getattr(ex, name), ex.ObjectLostError), name
    assert issubclass(ex.ReferenceCountingAssertionError, AssertionError)
    for name in ("NodeDiedError", "LocalRayletDiedError", "OutOfDiskError",
                 "PendingCallsLimitExceeded", "AsyncioActorExit", "UnserializableException",
                 "RayChannelError"):
        assert issubclass(getattr(ex, name), ex.RayError), name
        assert name in ex.__all__, name
    assert "ObjectStoreFullError" in ex.__all__ and "KrayError" in ex.__all__


class MyError(Exception):
    def __init__(self, code):
        super().__init__(f"code {code}")
        self.code = code


def test_task_error_keeps_type_and_traceback(ray_start):
    ray = ray_start

    @ray.remote
    def fail(code):
        raise MyError(code)

    with pytest.raises(MyError) as e:
        ray.get(fail.remote(7))
    err = e.value
    assert isinstance(err, ray.exceptions.RayTaskError)
    assert err.code == 7  # attributes of the original exception
    assert isinstance(err.cause, MyError)
    assert "in fail" in err.traceback_str and "raise MyError(code)" in err.traceback_str
    assert "code 7" in str(err)


def test_builtin_error_types(ray_start):
    ray = ray_start

    @ray.remote
    def div(a, b):
        return a / b

    with pytest.raises(ZeroDivisionError):
        ray.get(div.remote(1, 0))
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(div.remote(1, 0))


def test_error_propagates_through_dependent_tasks(ray_start):
    ray = ray_start

    @ray.remote
    def fail():
        raise IndexError("first")

    @ray.remote
    def use(x):
        return x

    with pytest.raises(IndexError) as e:
        ray.get(use.remote(use.remote(fail.remote())))
    assert "first" in str(e.value)


def test_unpicklable_exception(ray_start):
    ray = ray_start

    @ray.remote
    def fail():
        class Local(Exception):
            def __reduce__(self):
                raise TypeError("not picklable")
        raise Local("odd")

    with pytest.raises(ray.exceptions.RayTaskError) as e:
        ray.get(fail.remote())
    assert "Local" in str(e.value)


def test_worker_crashed_error(ray_start):
    ray = ray_start

    @ray.remote(max_retries=0)
    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(ray.exceptions.WorkerCrashedError) as e:
        ray.get(die.remote(), timeout=60)
    # Each Python function reaches krayd under its own name (kray_py_task:<qualname>).
    assert "test_worker_crashed_error.<locals>.die" in str(e.value)


def test_object_store_full(fresh):
    ray = fresh
    ray.init(num_cpus=1, object_store_memory=16 << 20,
             _krayd_args=["--pool-size", "0"])
    import numpy as np
    keep = [ray.get(ray.put(np.zeros(6 << 20, dtype=np.uint8))) for _ in range(2)]
    with pytest.raises(ray.exceptions.ObjectStoreFullError):
        # Both held arrays are mapped (pinned): nothing can be spilled for a third.
        ray.put(np.zeros(12 << 20, dtype=np.uint8))
    del keep


def test_c_function_errors(ray_start):
    ray = ray_start
    with pytest.raises(ray.exceptions.CrossLanguageError):
        ray.get(ray.cfunction("no_such_c_function").remote(1))


def test_unpicklable_result_and_argument(ray_start):
    ray = ray_start
    import threading

    @ray.remote
    def lock():
        return threading.Lock()

    with pytest.raises(TypeError):  # the task's result cannot be pickled
        ray.get(lock.remote())

    @ray.remote
    def ident(x):
        return x

    with pytest.raises(TypeError):  # raised at .remote(), in the caller
        ident.remote(threading.Lock())
    assert ray.get(ident.remote(1)) == 1

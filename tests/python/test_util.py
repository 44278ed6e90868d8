# SPDX-License-Identifier: Apache-2.0
"""kray.util (issue 16): ActorPool ordering, Queue blocking and timeouts,
multiprocessing.Pool, and the joblib backend under scikit-learn's cross_val_score."""
import time

import pytest

from kray.util import ActorPool
from kray.util.queue import Empty, Full, Queue


@pytest.fixture
def ray(ray_start):
    return ray_start


def test_actor_pool_map_order(ray):
    @ray.remote
    class Sleeper:
        def run(self, v):
            time.sleep(v)
            return v

    pool = ActorPool([Sleeper.remote(), Sleeper.remote()])
    values = [0.3, 0.0, 0.2, 0.0, 0.1]
    assert list(pool.map(lambda a, v: a.run.remote(v), values)) == values
    out = list(pool.map_unordered(lambda a, v: a.run.remote(v), [0.5, 0.0, 0.0]))
    assert sorted(out) == [0.0, 0.0, 0.5] and out[-1] == 0.5  # the slow one comes last


def test_actor_pool_submit_get_next(ray):
    @ray.remote
    class Double:
        def run(self, v):
            time.sleep(0.02 * v)
            return 2 * v

    a, b = Double.remote(), Double.remote()
    pool = ActorPool([a, b])
    for v in range(5):
        pool.submit(lambda actor, v: actor.run.remote(v), v)
    assert not pool.has_free()
    assert [pool.get_next() for _ in range(5)] == [0, 2, 4, 6, 8]
    assert not pool.has_next() and pool.has_free()
    with pytest.raises(StopIteration):
        pool.get_next()
    pool.submit(lambda actor, v: actor.run.remote(v), 50)  # 1 s
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0.05)
    assert pool.get_next() == 100
    idle = pool.pop_idle()
    assert idle is not None
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(pool._idle_actors[0])
    pool.push(idle)
    with pytest.raises(TypeError):
        ActorPool([1, 2])


def test_queue_fifo_and_nowait(ray):
    q = Queue(maxsize=3)
    assert q.empty() and not q.full() and len(q) == 0
    for i in range(3):
        q.put(i)
    assert q.full() and q.qsize() == 3
    with pytest.raises(Full):
        q.put_nowait(9)
    assert [q.get() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(Empty):
        q.get_nowait()
    q.put_nowait_batch(["a", "b"])
    with pytest.raises(Full):
        q.put_nowait_batch([1, 2])  # all or nothing
    with pytest.raises(Empty):
        q.get_nowait_batch(3)
    assert q.get_nowait_batch(2) == ["a", "b"]
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    import queue as stdqueue
    assert issubclass(Empty, stdqueue.Empty) and issubclass(Full, stdqueue.Full)
    q.shutdown()


def test_queue_blocking_and_timeouts(ray):
    q = Queue(maxsize=1)
    t0 = time.monotonic()
    with pytest.raises(Empty):
        q.get(timeout=0.3)
    assert 0.25 <= time.monotonic() - t0 < 5
    q.put("x")
    t0 = time.monotonic()
    with pytest.raises(Full):
        q.put("y", timeout=0.3)
    assert 0.25 <= time.monotonic() - t0 < 5
    assert q.get() == "x"

    @ray.remote
    def producer(queue, n, delay):
        for i in range(n):
            time.sleep(delay)
            queue.put(i)  # blocks while the queue (maxsize 1) is full
        return n

    ref = producer.remote(q, 4, 0.1)
    got = [q.get(timeout=30) for _ in range(4)]  # each get blocks until the put
    assert got == [0, 1, 2, 3]
    assert ray.get(ref) == 4
    q.shutdown()


def _square(x):
    return x * x


def _add(a, b):
    return a + b


def _fail_on_3(x):
    if x == 3:
        raise ValueError("three")
    return x


_INIT = []


def _init(v):
    _INIT.append(v)


def _init_value(_):
    return list(_INIT)


def test_multiprocessing_pool(ray):
    from kray.util.multiprocessing import Pool, TimeoutError
    with Pool(2, initializer=_init, initargs=(7,)) as pool:
        assert pool.map(_square, range(10)) == [x * x for x in range(10)]
        assert pool.starmap(_add, [(1, 2), (3, 4)]) == [3, 7]
        assert pool.apply(_add, (1, 2)) == 3
        assert list(pool.imap(_square, range(5))) == [0, 1, 4, 9, 16]
        assert sorted(pool.imap_unordered(_square, range(5), chunksize=2)) == [0, 1, 4, 9, 16]
        got = []
        r = pool.map_async(_square, [1, 2], callback=got.append)
        assert r.get(timeout=30) == [1, 4] and got == [[1, 4]] and r.successful()
        with pytest.raises(ValueError, match="three"):
            pool.map(_fail_on_3, range(5))
        errs = []
        r = pool.apply_async(_fail_on_3, (3,), error_callback=errs.append)
        r.wait(30)
        assert not r.successful() and isinstance(errs[0], ValueError)
        assert pool.map(_init_value, [0])[0] == [7]
        slow = pool.apply_async(time.sleep, (1,))
        with pytest.raises(TimeoutError):
            slow.get(timeout=0.05)
        slow.get(30)
    with pytest.raises(ValueError, match="Pool not running"):
        pool.map(_square, [1])
    with Pool(1, maxtasksperchild=2) as pool:
        assert pool.map(_square, range(6)) == [x * x for x in range(6)]
    p = Pool(2)
    p.close()
    p.join()


def test_joblib_sklearn_cross_val_score(ray):
    joblib = pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    from kray.util.joblib import register_ray
    register_ray()
    X, y = load_iris(return_X_y=True)
    expected = cross_val_score(SVC(C=1.0), X, y, cv=5, n_jobs=1)
    with joblib.parallel_backend("kray"):
        scores = cross_val_score(SVC(C=1.0), X, y, cv=5, n_jobs=-1)
    assert list(scores) == list(expected) and scores.mean() > 0.9

    # The work really ran on kray: the workers' pids are not this process's.
    import os
    with joblib.parallel_backend("ray"):
        pids = joblib.Parallel(n_jobs=2)(joblib.delayed(os.getpid)() for _ in range(4))
    assert os.getpid() not in pids


def test_libraries_as_attributes():
    import kray as ray
    assert ray.util.ActorPool is ActorPool and callable(ray.tune.run)
    assert ray.util.multiprocessing.Pool.__name__ == "Pool"
    with pytest.raises(AttributeError):
        ray.no_such_library

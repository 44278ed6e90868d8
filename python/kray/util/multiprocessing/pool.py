# SPDX-License-Identifier: Apache-2.0
"""Pool: a drop-in for multiprocessing.Pool whose processes are kray actors, so a Pool
spans every node of the cluster.  Work goes in chunks, round robin over the actors; a
thread of the driver collects results and runs callbacks, as the standard library's."""
import itertools
import multiprocessing
import threading
import time

import kray


class _PoolActor:
    def __init__(self, initializer, initargs):
        if initializer is not None:
            initializer(*initargs)

    def run_batch(self, func, batch, star):
        out = []
        for args, kwds in batch:
            try:
                if star:
                    out.append((True, func(*args, **kwds)))
                else:
                    out.append((True, func(args)))
            except Exception as e:  # the item's own error, as the standard Pool gives
                out.append((False, e))
        return out


class AsyncResult:
    """The result of apply_async/map_async: get(timeout), wait(timeout), ready(),
    successful().  callback / error_callback run in the pool's result thread."""

    def __init__(self, n, single, callback=None, error_callback=None):
        self._n = n
        self._single = single
        self._values = [None] * n
        self._left = n
        self._error = None
        self._event = threading.Event()
        self._callback = callback
        self._error_callback = error_callback
        if n == 0:
            self._finish()

    def _set(self, index, results):
        for i, (ok, v) in enumerate(results):
            if ok:
                self._values[index + i] = v
            elif self._error is None:
                self._error = v
        self._left -= len(results)
        if self._left <= 0:
            self._finish()

    def _fail(self, err):
        if self._error is None:
            self._error = err
        self._left = 0
        self._finish()

    def _finish(self):
        if self._event.is_set():
            return
        try:
            if self._error is None and self._callback is not None:
                self._callback(self._values[0] if self._single else self._values)
            elif self._error is not None and self._error_callback is not None:
                self._error_callback(self._error)
        finally:
            self._event.set()

    def ready(self):
        return self._event.is_set()

    def successful(self):
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._error is None

    def wait(self, timeout=None):
        self._event.wait(timeout)

    def get(self, timeout=None):
        if not self._event.wait(timeout):
            raise multiprocessing.TimeoutError
        if self._error is not None:
            raise self._error
        return self._values[0] if self._single else self._values


class IMapIterator:
    """What imap/imap_unordered return: iterate it, or next(timeout)."""

    def __init__(self, ordered):
        self._ordered = ordered
        self._cond = threading.Condition()
        self._items = {}  # index -> (ok, value)
        self._done = []  # arrival order (unordered)
        self._next = 0
        self._total = None

    def _set(self, index, results):
        with self._cond:
            for i, r in enumerate(results):
                self._items[index + i] = r
                self._done.append(index + i)
            self._cond.notify_all()

    def _fail(self, err):
        with self._cond:
            self._failed = err
            self._cond.notify_all()

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def next(self, timeout=None):
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if getattr(self, "_failed", None) is not None:
                    raise self._failed
                if self._ordered and self._next in self._items:
                    ok, v = self._items.pop(self._next)
                    break
                if not self._ordered and self._done:
                    ok, v = self._items.pop(self._done.pop(0))
                    break
                if self._total is not None and self._next >= self._total:
                    raise StopIteration
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    raise multiprocessing.TimeoutError
                self._cond.wait(left if left is not None else 0.5)
            self._next += 1
        if not ok:
            raise v
        return v


class Pool:
    """multiprocessing.Pool with kray actors as its processes.

    processes: how many actors (default: the cluster's CPUs); initializer(*initargs) runs
    in each; maxtasksperchild: an actor is replaced after that many tasks.
    ray_remote_args: options for the actors (num_cpus, resources, ...)."""

    def __init__(self, processes=None, initializer=None, initargs=None,
                 maxtasksperchild=None, context=None, ray_address=None,
                 ray_remote_args=None):
        if not kray.is_initialized():
            kray.init(address=ray_address)
        if processes is None:
            processes = max(1, int(kray.cluster_resources().get("CPU", 1)))
        if not isinstance(processes, int) or processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if maxtasksperchild is not None and (not isinstance(maxtasksperchild, int) or
                                             maxtasksperchild < 1):
            raise ValueError("maxtasksperchild must be a positive int or None")
        self._processes = processes
        self._initializer = initializer
        self._initargs = tuple(initargs or ())
        self._maxtasks = maxtasksperchild
        opts = {"num_cpus": 1}
        opts.update(ray_remote_args or {})
        self._cls = kray.remote(_PoolActor).options(**opts)
        self._actors = [self._new_actor() for _ in range(processes)]
        self._counts = [0] * processes
        self._rr = 0
        self._lock = threading.Lock()
        self._pending = {}  # ref -> (result, index)
        self._retiring = []  # (actor, last ref): killed when it is done
        self._state = "RUN"
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._collect, daemon=True,
                                        name="kray-pool-results")
        self._thread.start()

    def _new_actor(self):
        return self._cls.remote(self._initializer, self._initargs)

    def __repr__(self):
        return f"<kray.util.multiprocessing.Pool state={self._state} pool_size={self._processes}>"

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, *exc):
        self.terminate()

    def __reduce__(self):
        raise NotImplementedError("pool objects cannot be passed between processes or "
                                  "pickled")

    def _check_running(self):
        if self._state != "RUN":
            raise ValueError("Pool not running")

    # The result thread: polls the refs in flight, hands results to their AsyncResult.
    def _collect(self):
        idle = 0.001
        while True:
            with self._lock:
                refs = list(self._pending)
                stop = self._state == "TERMINATE" or (self._state == "CLOSE" and not refs)
            if stop:
                return
            if not refs:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            try:
                ready, _ = kray.wait(refs, num_returns=len(refs), timeout=0)
            except Exception:
                return  # kray shut down under us
            if not ready:
                time.sleep(idle)
                idle = min(idle * 2, 0.02)
                continue
            idle = 0.001
            for ref in ready:
                with self._lock:
                    res, index = self._pending.pop(ref)
                try:
                    res._set(index, kray.get(ref))
                except Exception as e:  # the actor died, or the batch could not travel
                    res._fail(e)
            self._reap()

    def _reap(self):
        with self._lock:
            done = [(a, r) for a, r in self._retiring if r not in self._pending]
            self._retiring = [x for x in self._retiring if x not in done]
        for a, _ in done:
            kray.kill(a)

    def _submit(self, func, batch, star, res, index):
        with self._lock:
            i = self._rr
            self._rr = (self._rr + 1) % self._processes
            actor = self._actors[i]
            ref = actor.run_batch.remote(func, batch, star)
            self._pending[ref] = (res, index)
            self._counts[i] += len(batch)
            if self._maxtasks is not None and self._counts[i] >= self._maxtasks:
                self._retiring.append((actor, ref))
                self._actors[i] = self._new_actor()
                self._counts[i] = 0
        self._wake.set()

    def _chunks(self, items, chunksize):
        it = iter(items)
        while True:
            chunk = list(itertools.islice(it, chunksize))
            if not chunk:
                return
            yield chunk

    def _chunksize(self, n, chunksize):
        if chunksize is None:
            chunksize, extra = divmod(n, self._processes * 4)
            chunksize += 1 if extra else 0
        if self._maxtasks is not None:
            chunksize = min(chunksize, self._maxtasks)
        return max(1, chunksize)

    def apply(self, func, args=(), kwds=None):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds=None, callback=None, error_callback=None):
        self._check_running()
        res = AsyncResult(1, True, callback, error_callback)
        self._submit(func, [(tuple(args), dict(kwds or {}))], True, res, 0)
        return res

    def _map_async(self, func, iterable, star, chunksize, callback, error_callback):
        self._check_running()
        items = list(iterable)
        if star:
            items = [(tuple(a), {}) for a in items]
        else:
            items = [(a, {}) for a in items]
        res = AsyncResult(len(items), False, callback, error_callback)
        size = self._chunksize(len(items), chunksize)
        for n, chunk in enumerate(self._chunks(items, size)):
            self._submit(func, chunk, star, res, n * size)
        return res

    def map(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, False, chunksize, None, None).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, False, chunksize, callback, error_callback)

    def starmap(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, True, chunksize, None, None).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None,
                      error_callback=None):
        return self._map_async(func, iterable, True, chunksize, callback, error_callback)

    def _imap(self, func, iterable, chunksize, ordered):
        self._check_running()
        if chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize}")
        out = IMapIterator(ordered)
        n = 0
        for chunk in self._chunks(iterable, chunksize):
            self._submit(func, [(a, {}) for a in chunk], False, out, n)
            n += len(chunk)
        with out._cond:
            out._total = n
            out._cond.notify_all()
        return out

    def imap(self, func, iterable, chunksize=1):
        return self._imap(func, iterable, chunksize, True)

    def imap_unordered(self, func, iterable, chunksize=1):
        return self._imap(func, iterable, chunksize, False)

    def close(self):
        """No more work is accepted; what was submitted still runs."""
        if self._state == "RUN":
            self._state = "CLOSE"
        self._wake.set()

    def terminate(self):
        """Stops the actors now; unfinished results fail."""
        with self._lock:
            self._state = "TERMINATE"
            pending = list(self._pending.values())
            self._pending.clear()
            actors = self._actors + [a for a, _ in self._retiring]
            self._actors, self._retiring = [], []
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        for res, _ in pending:
            res._fail(RuntimeError("the pool was terminated"))
        if kray.is_initialized():
            for a in actors:
                kray.kill(a)

    def join(self):
        """Waits for the submitted work (after close() or terminate())."""
        if self._state == "RUN":
            raise ValueError("Pool is still running")
        if self._thread is not threading.current_thread():
            self._thread.join()
        if self._state == "CLOSE":
            self.terminate()

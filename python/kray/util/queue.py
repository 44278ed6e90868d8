# SPDX-License-Identifier: Apache-2.0
"""Queue: Ray's ray.util.queue.Queue, a FIFO queue held by an actor, so tasks and actors
can share it (pass the Queue itself as an argument).  Items travel by value in the
calls to the actor (an ObjectRef put in the queue stays a ref, but the actor only
borrows it: see docs/python.md, 'Borrowed refs')."""
import collections
import queue as _stdqueue
import threading
import time

import kray


class Empty(_stdqueue.Empty):
    """get_nowait() on an empty queue, or get() timed out.  Also a queue.Empty."""


class Full(_stdqueue.Full):
    """put_nowait() on a full queue, or put() timed out.  Also a queue.Full."""


# A blocking call waits in the actor at most this long, then the caller asks again: a
# caller that went away never holds one of the actor's threads for long.
_SLICE = 0.5


class _QueueActor:
    def __init__(self, maxsize):
        self.maxsize = maxsize
        self.items = collections.deque()
        self.cond = threading.Condition()

    def qsize(self):
        return len(self.items)

    def _full(self, n=1):
        return self.maxsize > 0 and len(self.items) + n > self.maxsize

    def put(self, item, wait):
        with self.cond:
            end = time.monotonic() + wait
            while self._full():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            self.items.append(item)
            self.cond.notify_all()
            return True

    def put_batch(self, items):
        with self.cond:
            if self._full(len(items)):
                return False
            self.items.extend(items)
            self.cond.notify_all()
            return True

    def get(self, wait):
        with self.cond:
            end = time.monotonic() + wait
            while not self.items:
                left = end - time.monotonic()
                if left <= 0:
                    return (False, None)
                self.cond.wait(left)
            item = self.items.popleft()
            self.cond.notify_all()
            return (True, item)

    def get_batch(self, n):
        with self.cond:
            if len(self.items) < n:
                return (False, len(self.items))
            out = [self.items.popleft() for _ in range(n)]
            self.cond.notify_all()
            return (True, out)


def _check_timeout(timeout):
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


class Queue:
    """A first-in first-out queue in an actor (maxsize 0: unbounded).

        q = Queue(maxsize=10)
        q.put(1); q.get()                      # 1
        q.get(timeout=0.5)                     # raises kray.util.queue.Empty

    put/get block (timeout: None waits for ever, else seconds, then Full/Empty);
    actor_options go to the actor (num_cpus, name, ...)."""

    def __init__(self, maxsize=0, actor_options=None):
        if not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError("maxsize must be an integer >= 0")
        opts = {"num_cpus": 0, "max_concurrency": 64}
        opts.update(actor_options or {})
        self.maxsize = maxsize
        self.actor = kray.remote(_QueueActor).options(**opts).remote(maxsize)

    def __len__(self):
        return self.size()

    def size(self):
        return kray.get(self.actor.qsize.remote())

    qsize = size

    def empty(self):
        return self.size() == 0

    def full(self):
        return self.maxsize > 0 and self.size() >= self.maxsize

    def put(self, item, block=True, timeout=None):
        """Adds item; with block, waits for room up to timeout seconds (None: for ever),
        then raises Full.  Without block, raises Full at once when full."""
        _check_timeout(timeout)
        if not block:
            return self.put_nowait(item)
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _SLICE if end is None else max(0.0, min(_SLICE, end - time.monotonic()))
            if kray.get(self.actor.put.remote((item,), left)):
                return
            if end is not None and time.monotonic() >= end:
                raise Full

    def put_nowait(self, item):
        if not kray.get(self.actor.put.remote((item,), 0.0)):
            raise Full

    def put_nowait_batch(self, items):
        """Adds all the items, or none of them (Full) when they do not fit."""
        items = list(items)
        if not kray.get(self.actor.put_batch.remote([(i,) for i in items])):
            raise Full(f"Cannot add {len(items)} items to queue of size {self.size()} and "
                       f"maxsize {self.maxsize}.")

    def get(self, block=True, timeout=None):
        """Removes and returns the first item; with block, waits for one up to timeout
        seconds (None: for ever), then raises Empty."""
        _check_timeout(timeout)
        if not block:
            return self.get_nowait()
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _SLICE if end is None else max(0.0, min(_SLICE, end - time.monotonic()))
            ok, item = kray.get(self.actor.get.remote(left))
            if ok:
                return item[0]
            if end is not None and time.monotonic() >= end:
                raise Empty

    def get_nowait(self):
        ok, item = kray.get(self.actor.get.remote(0.0))
        if not ok:
            raise Empty
        return item[0]

    def get_nowait_batch(self, num_items):
        """num_items items, or Empty (and none removed) when fewer are there."""
        if not isinstance(num_items, int) or num_items < 0:
            raise ValueError("'num_items' must be a nonnegative integer")
        ok, out = kray.get(self.actor.get_batch.remote(num_items))
        if not ok:
            raise Empty(f"Cannot get {num_items} items from queue of size {out}.")
        return [w[0] for w in out]

    def put_async(self, item, block=True, timeout=None):
        raise NotImplementedError("kray's Queue has no asyncio methods; use put()")

    def get_async(self, block=True, timeout=None):
        raise NotImplementedError("kray's Queue has no asyncio methods; use get()")

    def shutdown(self, force=False, grace_period_s=5):
        """Kills the queue's actor; the queue is unusable after."""
        if self.actor is not None:
            kray.kill(self.actor)
        self.actor = None

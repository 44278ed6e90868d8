# SPDX-License-Identifier: Apache-2.0
"""ActorPool: Ray's ray.util.ActorPool (the same methods and ordering rules)."""
import kray


def _key(future):
    return tuple(future) if isinstance(future, list) else future


class ActorPool:
    """Schedules work over a fixed list of actors.  fn(actor, value) must return the ref
    of a call on that actor; each actor runs one piece of work at a time.

        pool = ActorPool([A.remote(), A.remote()])
        list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4]))   # [2, 4, 6, 8]
    """

    def __init__(self, actors):
        actors = list(actors)
        for a in actors:
            if not isinstance(a, kray.ActorHandle):
                raise TypeError(f"ActorPool takes actor handles, got {type(a).__name__}")
        self._idle_actors = actors
        self._future_to_actor = {}
        self._index_to_future = {}
        self._next_task_index = 0
        self._next_return_index = 0
        self._pending_submits = []

    def map(self, fn, values):
        """Applies fn over values; yields the results in the order of values."""
        self._drain()
        for v in values:
            self.submit(fn, v)

        def gen():
            while self.has_next():
                yield self.get_next()
        return gen()

    def map_unordered(self, fn, values):
        """As map(), but yields each result as soon as it is ready."""
        self._drain()
        for v in values:
            self.submit(fn, v)

        def gen():
            while self.has_next():
                yield self.get_next_unordered()
        return gen()

    def _drain(self):
        # Earlier submissions are dropped (their results ignored), as Ray's map does.
        while self.has_next():
            try:
                self.get_next_unordered(timeout=0, ignore_if_timedout=True)
            except TimeoutError:
                pass
            except Exception:
                pass

    def submit(self, fn, value):
        """Runs fn(actor, value) on an idle actor, or queues it until one is free."""
        if self._idle_actors:
            actor = self._idle_actors.pop()
            future = fn(actor, value)
            if not isinstance(future, (kray.ObjectRef, list)):
                self._idle_actors.append(actor)
                raise TypeError("ActorPool: fn(actor, value) must return the ObjectRef of "
                                f"a call on the actor, got {type(future).__name__}")
            self._future_to_actor[_key(future)] = (self._next_task_index, actor)
            self._index_to_future[self._next_task_index] = future
            self._next_task_index += 1
        else:
            self._pending_submits.append((fn, value))

    def has_next(self):
        """Whether results are still to be returned."""
        return bool(self._future_to_actor)

    def get_next(self, timeout=None, ignore_if_timedout=False):
        """The next result in submission order.  TimeoutError after timeout seconds; with
        ignore_if_timedout the late task's result is dropped and its actor freed."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError("It is not allowed to call get_next() after "
                             "get_next_unordered().")
        future = self._index_to_future[self._next_return_index]
        timed_out = False
        if timeout is not None:
            refs = list(future) if isinstance(future, list) else [future]
            ready, _ = kray.wait(refs, num_returns=len(refs), timeout=timeout)
            if len(ready) < len(refs):
                if not ignore_if_timedout:
                    raise TimeoutError("Timed out waiting for result")
                timed_out = True
        del self._index_to_future[self._next_return_index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(_key(future))
        self._return_actor(actor)
        if timed_out:
            raise TimeoutError(f"Timed out waiting for result. The task {future} has been "
                               "ignored.")
        return kray.get(future)

    def get_next_unordered(self, timeout=None, ignore_if_timedout=False):
        """The next result to finish, whatever its order."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        flat = {}
        for k in self._future_to_actor:
            flat[k[0] if isinstance(k, tuple) else k] = k
        ready, _ = kray.wait(list(flat), num_returns=1, timeout=timeout)
        if ready:
            key = flat[ready[0]]
        elif not ignore_if_timedout:
            raise TimeoutError("Timed out waiting for result")
        else:
            # The oldest task is given up.
            key = _key(self._index_to_future[min(self._index_to_future)])
        i, actor = self._future_to_actor.pop(key)
        future = self._index_to_future.pop(i)
        self._next_return_index = max(self._next_return_index, i + 1)
        self._return_actor(actor)
        if not ready:
            raise TimeoutError(f"Timed out waiting for result. The task {future} has been "
                               "ignored.")
        return kray.get(future)

    def _return_actor(self, actor):
        self._idle_actors.append(actor)
        if self._pending_submits:
            self.submit(*self._pending_submits.pop(0))

    def has_free(self):
        """Whether an actor is idle (and no submission waits for one)."""
        return bool(self._idle_actors) and not self._pending_submits

    def pop_idle(self):
        """Removes an idle actor from the pool and returns it (None when none is)."""
        return self._idle_actors.pop() if self.has_free() else None

    def push(self, actor):
        """Adds an actor to the pool (it takes a pending submission at once)."""
        busy = [a for _, a in self._future_to_actor.values()]
        if any(actor is a for a in self._idle_actors + busy):
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)

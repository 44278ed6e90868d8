# SPDX-License-Identifier: Apache-2.0
"""Futures of ObjectRefs, and the event loop of an async actor.

``ObjectRef.future()`` gives a concurrent.futures.Future, and ``await ref`` wraps it for
asyncio, so an awaiting coroutine is suspended while the others run.  In an actor that
shares its worker's connection with its threads (an async or threaded actor: see
python/src/waiter.c), the value is asked for with one message (``_kray.get_async``); the
worker's loop thread queues it when it arrives, and the completer thread here, woken by
the queue's eventfd, completes the future.  Elsewhere (a driver, a task) a thread waits
in ``get`` for each future.

An async actor (a class with an ``async def`` method, as in Ray) runs its methods on one
asyncio event loop, which runs on the worker's loop thread whenever that thread would
wait (libkray's deferred host, kray_ctx_host): the thread starts each call as a task
(``start``), and the call finishes when its coroutine does (``_kray._worker_done``).  At
most ``max_concurrency`` run at once.
"""
import concurrent.futures
import itertools
import os
import threading

from . import _kray
from . import _serial

_futures = {}  # token -> concurrent.futures.Future
_tokens = itertools.count(1)
_completer = [None]
_lock = threading.Lock()


def _complete_forever(fd):
    while True:
        os.read(fd, 8)
        for token, item, err in _kray.take_async():
            fut = _futures.pop(token, None)
            if fut is None:
                continue
            try:
                if err:
                    raise OSError(err, f"get of an ObjectRef: {os.strerror(err)}")
                fut.set_result(_serial.decode(item))
            except BaseException as e:  # noqa: B902 (the future carries it)
                fut.set_exception(e)


def _thread_future(ref):
    fut = concurrent.futures.Future()

    def run():
        from . import get
        try:
            fut.set_result(get(ref))
        except BaseException as e:  # noqa: B902 (the future carries it)
            fut.set_exception(e)
    threading.Thread(target=run, daemon=True).start()
    return fut


def future(ref):
    """A concurrent.futures.Future of ref's value (or of the error get would raise)."""
    if not _kray.shared():
        return _thread_future(ref)
    fut = concurrent.futures.Future()
    token = next(_tokens)
    _futures[token] = fut
    try:
        _kray.get_async(ref, token)
    except BaseException:
        del _futures[token]
        raise
    if _completer[0] is None:
        with _lock:
            if _completer[0] is None:
                t = threading.Thread(target=_complete_forever, args=(_kray.async_fd(),),
                                     name="kray-futures", daemon=True)
                t.start()
                _completer[0] = t
    return fut


def is_async_class(cls):
    """Ray's rule: an actor class with any async def method is an async actor."""
    for name in dir(cls):
        fn = getattr(cls, name, None)
        # async def (CO_COROUTINE) or async generator (CO_ASYNC_GENERATOR); asyncio itself
        # is imported only by async actors (it is a third of a worker's start-up).
        if callable(fn) and hasattr(fn, "__code__") and fn.__code__.co_flags & 0x280:
            return True
    return False


class ActorLoop:
    """The event loops of an async actor.  The default group's runs on the worker's loop
    thread, while that thread would otherwise wait for krayd or for finished calls
    (wait()): a call starts as a task, and finishes there, without a thread switch.  Each
    concurrency group has an event loop of its own, on a thread of its own, as in Ray: a
    group whose calls block (a sync sleep, a blocking get) does not hold up another."""

    def __init__(self, max_concurrency, groups=None):
        import asyncio
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        # One limit per concurrency group; None is the default group.
        self.sems = {None: asyncio.Semaphore(max(1, max_concurrency))}
        self.loops = {None: self.loop}
        for g, n in (groups or {}).items():
            self.sems[g] = asyncio.Semaphore(n)
            loop = self.loops[g] = asyncio.new_event_loop()
            threading.Thread(target=self._run_forever, args=(loop,), name=f"kray-{g}",
                             daemon=True).start()
        self._fds = ()

    @staticmethod
    def _run_forever(loop):
        import asyncio
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def start(self, run, group=None):
        """Starts the coroutine function run() as a task on its group's loop (from the
        worker's loop thread)."""
        loop = self.loops.get(group, self.loop)
        if loop is self.loop:
            loop.create_task(run())
        else:
            import asyncio
            asyncio.run_coroutine_threadsafe(run(), loop)

    def wait(self, fds):
        """Runs the loop until one of fds is readable (level-triggered: a readable fd
        stops it after one round of callbacks)."""
        loop = self.loop
        if fds != self._fds:
            for fd in self._fds:
                loop.remove_reader(fd)
            for fd in fds:
                loop.add_reader(fd, loop.stop)
            self._fds = fds
        loop.run_forever()

# SPDX-License-Identifier: Apache-2.0
"""Generator tasks and methods: streaming generators (``num_returns="streaming"``, the
default for a generator function, as in Ray 2.x) and ``num_returns="dynamic"`` (Ray's
dynamic generators).

A streaming call returns an ObjectRefGenerator at once: iterating it (``next``, ``for``,
``async for``) gives the ref of each item as soon as the worker has yielded it, while the
task still runs.  The worker sends each item with a YIELD frame (``_kray._worker_yield``,
libkray's ``kray_yield``); krayd seals it into the object ``(task, 1 + i)`` the caller
holds and makes the next one, and at the end seals that one with a stream-end mark (or
with the task's error: cancelled, worker died).  So the caller waits on an item like on
any ref, and ``(task, 0)``, the call's own return, is its completion
(``ObjectRefGenerator.completed()``).  docs/ARCHITECTURE.md, "Streaming generators".

A dynamic call with ``num_returns="dynamic"`` returns one ref; its value, once the generator has
run to its end, is an ObjectRefGenerator: the refs of the items it yielded, in order, each
item stored as it was yielded.  An exception raised by the generator becomes the item at
the place where it happened: ``get`` of that ref raises it (the items before it are
kept).  The refs travel in one object of their own, so a generator of any length returns
a small value.
"""
import inspect

from . import _serial


_STREAM_END = 11  # KRAY_ERR_STREAM_END: the item after the last one


class ObjectRefGenerator:
    """A streaming call's items (Ray's ObjectRefGenerator): ``next(gen)`` waits for the
    next item and gives its ObjectRef; ``StopIteration`` once the generator has ended.  An
    exception the generator raised is the item where it happened (``get`` of that ref
    raises it) and ends it.  ``async for`` works too.  Not serializable, as in Ray."""

    def __init__(self, completion, name="generator"):
        from . import _kray
        self._completion = completion  # the call's ref: its end
        self._name = name
        self._taken = 0
        # The first item's ref: the submit made this process hold it (krayd).
        self._slot = _kray.stream_slot(completion, 1)

    def __iter__(self):
        return self

    def __aiter__(self):
        return self

    def __next__(self):
        ref = self._next_sync(None)
        if ref is None:
            raise StopIteration
        return ref

    def _next_sync(self, timeout_s=None):
        """The next item's ref; None once the stream has ended (raises GetTimeoutError
        when timeout_s passes first)."""
        from . import _kray, exceptions
        if self._slot is None:
            return None
        raw = _kray.get([self._slot], -1 if timeout_s is None else int(timeout_s * 1000))
        if raw is None:
            raise exceptions.GetTimeoutError(f"no item of {self._name} within {timeout_s} s")
        return self._take(raw[0])

    async def __anext__(self):
        import asyncio
        from . import _kray
        if self._slot is None:
            raise StopAsyncIteration
        slot = self._slot
        if _kray.shared():  # an async actor: one message, answered on its loop
            try:
                await asyncio.wrap_future(slot.future())
            except BaseException:  # noqa: B902 (_take looks at what it is)
                pass
            raw = _kray.get([slot], 0)
        else:
            raw = await asyncio.get_running_loop().run_in_executor(
                None, lambda: _kray.get([slot], -1))
        ref = self._take(raw[0])
        if ref is None:
            raise StopAsyncIteration
        return ref

    def _take(self, raw):
        """The ready item's ref, from its raw value: an item, the stream's end mark, or
        the task's error (cancelled, worker died), which ends it."""
        from . import _kray
        ref, last = self._slot, False
        if isinstance(raw, tuple) and raw[0] == 2:
            if raw[1] == _STREAM_END:
                self._slot = None
                return None
            last = True
        self._taken += 1
        self._slot = None if last else _kray.stream_slot(self._completion,
                                                         self._taken + 1)
        return ref

    def completed(self):
        """The ref of the call itself: ready once the generator has ended (get raises
        if the task failed)."""
        return self._completion

    def is_finished(self):
        return self._slot is None

    def next_ready(self):
        """Whether next() would not wait."""
        from . import _kray
        return self._slot is None or bool(_kray.wait([self._slot], 1, 0)[0])

    def __repr__(self):
        return f"ObjectRefGenerator({self._name}, {self._taken} taken)"

    def __reduce__(self):
        raise TypeError("an ObjectRefGenerator cannot be serialized (as in Ray): pass "
                        "its items' refs instead")


def stream(name, call, ctx):
    """Runs a streaming call's generator (call() makes it) in the worker, sending each
    item to the caller as it is yielded; an exception, the generator's or the call's, is
    sent as the item where it happened, and ends it.  Returns the number of items (the
    completion's value)."""
    from . import _kray, _worker
    n = 0
    try:
        gen = call()
        if not inspect.isgenerator(gen):
            raise TypeError(f"{name}() has num_returns='streaming' but returned "
                            f"{type(gen).__name__}, not a generator")
        for v in gen:
            _kray._worker_yield(ctx, (0,) + _serial.dumps(v))
            n += 1
    except Exception as e:
        _kray._worker_yield(ctx, _worker._error(name, e))
        n += 1
    return n


async def stream_async(name, call, ctx):
    """The same for an async actor's method (a generator or an async generator)."""
    from . import _kray, _worker
    n = 0
    try:
        gen = call()
        if not inspect.isasyncgen(gen):
            return stream(name, lambda: gen, ctx)
        async for v in gen:
            _kray._worker_yield(ctx, (0,) + _serial.dumps(v))
            n += 1
    except Exception as e:
        _kray._worker_yield(ctx, _worker._error(name, e))
        n += 1
    return n


class StreamingFunction:
    """What a task with num_returns="streaming" runs in its worker: the user's generator
    function, its items sent as they come (see stream)."""

    def __init__(self, fn):
        self.fn = fn
        self.__qualname__ = getattr(fn, "__qualname__", "generator")
        self.__name__ = getattr(fn, "__name__", "generator")

    def __call__(self, *args, **kwargs):
        from . import _worker
        return stream(self.__qualname__, lambda: self.fn(*args, **kwargs),
                      _worker._ctx.ctx)


class DynamicObjectRefGenerator:
    """The refs a dynamic generator yielded (Ray's DynamicObjectRefGenerator): iterate
    over it, or take len()."""

    def __init__(self, refs=None, box=None):
        self._refs = None if refs is None else list(refs)
        self._box = box

    def _items(self):
        if self._refs is None:
            from . import get
            self._refs = list(get(self._box))
        return self._refs

    def __iter__(self):
        return iter(self._items())

    def __len__(self):
        return len(self._items())

    def __repr__(self):
        return f"DynamicObjectRefGenerator({len(self)} refs)"

    def __reduce__(self):
        box = self._box if self._box is not None else _serial.put_value(self._refs)
        return (DynamicObjectRefGenerator, (None, box))


def _item_error(name, e):
    from . import _worker
    return _serial._put(*_worker._error(name, e))


def collect(name, gen):
    """Runs a generator to its end, storing each item: the ObjectRefGenerator of a call."""
    if not inspect.isgenerator(gen):
        raise TypeError(f"{name}() has num_returns='dynamic' but returned "
                        f"{type(gen).__name__}, not a generator")
    refs = []
    try:
        for v in gen:
            refs.append(_serial.put_value(v))
    except Exception as e:
        refs.append(_item_error(name, e))
    return DynamicObjectRefGenerator(refs)


async def collect_async(name, gen):
    """The same for an async actor's method (a generator or an async generator)."""
    if not inspect.isasyncgen(gen):
        return collect(name, gen)
    refs = []
    try:
        async for v in gen:
            refs.append(_serial.put_value(v))
    except Exception as e:
        refs.append(_item_error(name, e))
    return DynamicObjectRefGenerator(refs)


class DynamicFunction:
    """What a task with num_returns="dynamic" runs in its worker: the user's generator
    function, run to its end (see collect)."""

    def __init__(self, fn):
        self.fn = fn
        self.__qualname__ = getattr(fn, "__qualname__", "generator")
        self.__name__ = getattr(fn, "__name__", "generator")

    def __call__(self, *args, **kwargs):
        return collect(self.__qualname__, self.fn(*args, **kwargs))

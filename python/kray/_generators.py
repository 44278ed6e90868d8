# SPDX-License-Identifier: Apache-2.0
"""Generator tasks and methods: ``num_returns="dynamic"`` (Ray's dynamic generators).

A call with ``num_returns="dynamic"`` returns one ref; its value, once the generator has
run to its end, is an ObjectRefGenerator: the refs of the items it yielded, in order, each
item stored as it was yielded.  An exception raised by the generator becomes the item at
the place where it happened: ``get`` of that ref raises it (the items before it are
kept).  The refs travel in one object of their own, so a generator of any length returns
a small value.
"""
import inspect

from . import _serial


class ObjectRefGenerator:
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
        return f"ObjectRefGenerator({len(self)} refs)"

    def __reduce__(self):
        box = self._box if self._box is not None else _serial.put_value(self._refs)
        return (ObjectRefGenerator, (None, box))


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
    return ObjectRefGenerator(refs)


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
    return ObjectRefGenerator(refs)


class DynamicFunction:
    """What a task with num_returns="dynamic" runs in its worker: the user's generator
    function, run to its end (see collect)."""

    def __init__(self, fn):
        self.fn = fn
        self.__qualname__ = getattr(fn, "__qualname__", "generator")
        self.__name__ = getattr(fn, "__name__", "generator")

    def __call__(self, *args, **kwargs):
        return collect(self.__qualname__, self.fn(*args, **kwargs))

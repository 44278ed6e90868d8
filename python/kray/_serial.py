# SPDX-License-Identifier: Apache-2.0
"""Serialization: values with pickle protocol 5 and out-of-band buffers, functions and
classes with cloudpickle.

A value becomes (pickle stream, [buffers], [refs]); the C extension lays them out in one
object (header, stream, each buffer 64-byte aligned), writing a large one straight into
the store's memory.  Refs and actor handles inside a value are not pickled as data: they
are recorded as the object's nested refs, so krayd keeps what they name alive and whoever
gets the object borrows them.  Getting it back, the buffers are read-only memoryviews of
the object (of the store's shared memory when large): numpy arrays come back zero-copy.
"""
import pickle
import threading

import cloudpickle

from . import _kray
from . import exceptions

_tls = threading.local()

# Types pickle handles the same way as cloudpickle, faster.
_PLAIN = frozenset((int, float, str, bytes, bool, type(None), complex))


class ObjectRef(_kray.Ref):
    """A future: the id of an object kray stores (``ray.ObjectRef``)."""

    __slots__ = ()

    def hex(self):
        return "%08x%08x%08x%08x" % self._fields()  # node, owner, seq, index

    def task_id(self):
        node, owner, seq, _ = self._fields()
        return f"{node:08x}{owner:08x}{seq:08x}"

    def __repr__(self):
        return f"ObjectRef({self.hex()})"

    def __await__(self):
        # Suspends only the awaiting coroutine (kray/_aio.py).
        import asyncio
        return asyncio.wrap_future(self.future()).__await__()

    def future(self):
        """A concurrent.futures.Future of the value (asyncio.wrap_future takes it)."""
        from . import _aio
        return _aio.future(self)

    def __reduce__(self):
        refs = getattr(_tls, "refs", None)
        if refs is None:
            raise TypeError("an ObjectRef can only be serialized by kray (pass it to a "
                            "task, put it, or return it)")
        refs.append(self)
        return (_rebuild_ref, (len(refs) - 1,))


_kray.set_ref_type(ObjectRef)


def dumps_code(obj):
    """(cloudpickle of a function or class, the refs it captured): ObjectRefs and actor
    handles in its closure or globals travel as refs of the object that holds it."""
    import cloudpickle as cp
    refs = []
    prev = getattr(_tls, "refs", None)
    _tls.refs = refs
    try:
        return cp.dumps(obj, protocol=5), refs
    finally:
        _tls.refs = prev


def _rebuild_ref(i):
    return _tls.in_refs[i]


def _plain(v):
    t = type(v)
    if t in _PLAIN:
        return True
    if (t is tuple or t is list) and len(v) <= 16:
        return all(type(x) in _PLAIN for x in v)
    if t is dict and len(v) <= 16:
        return all(type(x) in _PLAIN for x in v.values())
    return False


def dumps(value, refs=None):
    """(pickle bytes, out-of-band buffers, refs) of a value; refs: a list the value's
    refs are appended to (numbered after those already there), else a new one."""
    if type(value) in _PLAIN:  # the common small result: no refs, no buffers
        return pickle.dumps(value, 5), [], [] if refs is None else refs
    bufs = []
    if refs is None:
        refs = []
    prev = getattr(_tls, "refs", None)
    _tls.refs = refs
    try:
        if _plain(value):
            data = pickle.dumps(value, 5)
        else:
            data = cloudpickle.dumps(value, protocol=5, buffer_callback=bufs.append)
    finally:
        _tls.refs = prev
    return data, bufs, refs


def dumps_args(args, kwargs, retry=None, group=None, name=None):
    """Arguments of a call: top-level ObjectRefs become C REF arguments (krayd resolves
    them before the call, as Ray does); the rest is one pickled (args, kwargs, where),
    with a fourth element (max_retries, True or exception classes) when the task retries
    on exceptions, a fifth (the placement group the call runs in) when it is in one, and
    a sixth (the name given with .options(name=...), get_task_name()) when it has one."""
    where = []
    top = []
    if any(isinstance(a, ObjectRef) for a in args):
        args = list(args)
        for i, a in enumerate(args):
            if isinstance(a, ObjectRef):
                where.append(i)
                top.append(a)
                args[i] = None
    if kwargs and any(isinstance(a, ObjectRef) for a in kwargs.values()):
        kwargs = dict(kwargs)
        for k, a in kwargs.items():
            if isinstance(a, ObjectRef):
                where.append(k)
                top.append(a)
                kwargs[k] = None
    blob = (tuple(args), kwargs, tuple(where)) + ((retry, group) if group else
                                                  (retry,) if retry else ())
    if name is not None:
        blob = blob[:3] + (retry, group, name)
    if not retry and not group and all(type(a) in _PLAIN for a in args) and \
            (not kwargs or all(type(a) in _PLAIN for a in kwargs.values())):
        return pickle.dumps(blob, 5), [], [], top
    data, bufs, refs = dumps(blob)
    return data, bufs, refs, top


def loads(pick, bufs, refs):
    if not refs:  # nothing to rebuild: no thread-local context needed
        return pickle.loads(pick, buffers=bufs)
    prev = getattr(_tls, "in_refs", None)
    _tls.in_refs = refs
    try:
        return pickle.loads(pick, buffers=bufs)
    finally:
        _tls.in_refs = prev


def put_value(value, kind=0):
    data, bufs, refs = dumps(value)
    return _put(kind, data, bufs, refs)


def _put(kind, data, bufs, refs):
    try:
        return _kray.put(kind, data, bufs, refs)
    except MemoryError as e:
        raise exceptions.ObjectStoreFullError(str(e)) from None
    except ValueError:
        if not refs:
            raise
        # Too large to carry refs inline: store the body alone and a small object that
        # holds the refs and names the body.
        body = _kray.put(kind, data, bufs, [])
        return _kray.put(2, pickle.dumps(len(refs), 5), [], list(refs) + [body])


def decode(item):
    """The Python value of one decoded object (see the extension's ext_decode)."""
    tag = item[0]
    if tag == 1:
        return item[1]
    if tag == 2:
        raise error_from_kray(item[1], item[2])
    _, kind, pick, bufs, refs = item
    if kind == 2:  # a large value with refs: body in the last ref
        n = pickle.loads(pick)
        body = _kray.get([refs[n]], -1)[0]
        if body[0] != 0:
            return decode(body)
        _, kind, pick, bufs, _ = body
        refs = refs[:n]
    value = loads(pick, bufs, refs)
    if kind == 1:
        raise value.as_instanceof_cause() if isinstance(value, exceptions.RayTaskError) \
            else value
    return value


def error_from_kray(kind, msg):
    """The exception for an error libkray reported (a C task, a dead worker, ...)."""
    if kind == _kray.ERR_WORKER_DIED:
        return exceptions.WorkerCrashedError(msg)
    if kind == _kray.ERR_ACTOR_DIED:
        return exceptions.ActorDiedError(msg)
    if kind == _kray.ERR_OBJECT_LOST and msg.startswith("the owner of object "):
        return exceptions.OwnerDiedError(msg)  # krayd's lineage_link_gone(): lent refs
    if kind == _kray.ERR_OBJECT_LOST:
        return exceptions.ObjectLostError(msg)
    if kind == _kray.ERR_STORE_FULL:
        return exceptions.ObjectStoreFullError(msg)
    if kind == ERR_CANCELLED:
        return exceptions.TaskCancelledError(message=msg)
    if kind == _kray.ERR_TIMED_OUT:
        return exceptions.TaskTimeoutError(msg)
    if kind == _kray.ERR_UNSCHEDULABLE:
        return exceptions.TaskUnschedulableError(msg)
    if kind == _kray.ERR_TASK and msg.startswith("actor '") and \
            " could not be constructed: " in msg:  # krayd's actor_ctor_failed()
        return exceptions.ActorDiedError("The actor died because of an error raised in its "
                                         "creation task: " + msg)
    if kind == _kray.ERR_TASK:
        return exceptions.RayTaskError("", msg, None)
    if kind == _kray.ERR_BAD_ARGS:
        return exceptions.RayTaskError("", msg, TypeError(msg)).as_instanceof_cause()
    if kind == _kray.ERR_UNKNOWN_FUNCTION:
        return exceptions.CrossLanguageError(msg)
    return exceptions.RaySystemError(msg)


ERR_CANCELLED = _kray.ERR_CANCELLED

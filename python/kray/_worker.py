# SPDX-License-Identifier: Apache-2.0
"""What a worker runs for a Python task, actor constructor or method call.

The extension's _worker_call() decodes the call's arguments and calls execute() (see
python/src/worker.c and shim.c).  Arguments, as the driver side sends them
(kray/_remote.py):

  task        [function blob, args blob, *top-level ref values]
  constructor [class blob, args blob, *top-level ref values]
  method      [method name (bytes), args blob, *top-level ref values]

A blob is (key, sys.path of the sender, cloudpickled function or class, name); workers
cache what they loaded by the blob's key.  Results are returned as (kind, pickle,
buffers, refs) per return slot; a task that raises stores a RayTaskError in every slot.
"""
import collections
import inspect
import os
import pickle
import sys
import threading
import traceback
from types import CoroutineType, MethodType

from . import _aio
from . import _generators
from . import _kray
from . import _remote
from . import _runtime_env
from . import _serial
from . import exceptions
from ._serial import _PLAIN

# A blob's key -> (function or class, namespace, name, runtime_env).  Ordered: dropping a
# plain dict's oldest entry (next(iter(d))) scans the holes earlier deletions left.
_loaded = collections.OrderedDict()
LOADED_MAX = 4096  # blobs kept; beyond it the oldest is forgotten (loaded again if used)
# A blob's pickle starts with its key (kray/_remote.py _Blob._put): protocol 5, a frame,
# a tuple's mark, then the key as 16 bytes.  Its key names it without unpickling it.
_KEY_AT = len(b"\x80\x05\x95") + 8 + len(b"(C\x10")
_KEY_HEAD = b"(C\x10"
_ctx = threading.local()  # task_id of the call this thread runs
actor_id = None  # (node, owner, seq, index) of the actor this worker hosts
actor_name = None  # its (name, namespace) ("": none), once get_runtime_context() asked


# Run at the end of each call, on its thread, while its connection is still the call's
# (kray.util.metrics queues the call's updates to go with its result).
after_call_hooks = []

def _after_call():
    for hook in after_call_hooks:
        try:
            hook()
        except Exception:  # noqa: BLE001 (a hook never fails the call)
            pass


# The method a handle from get_actor() calls first: (class name, {method: num_returns}).
METHODS_CALL = "__kray_methods__"

def _event_loop():
    """One event loop per thread for async def methods (they run one at a time on it,
    or on each of an actor's max_concurrency threads)."""
    loop = getattr(_ctx, "loop", None)
    if loop is None:
        import asyncio
        loop = _ctx.loop = asyncio.new_event_loop()
    return loop


def current_task_id():
    return getattr(_ctx, "task_id", None)


# Names given with .options(name=...), by task id: set only by calls that carry one
# (_call_args), so that calls without a name pay nothing; get_task_name() reads them.
_named_calls = {}


def current_class():
    """The class of the actor whose method this thread runs, or None (a task, a C
    actor, outside a call)."""
    fn = current_call()[1]
    fn = getattr(fn, "fn", fn)  # a generator method's wrapper (kray/_generators.py)
    return type(fn.__self__) if hasattr(fn, "__self__") else None


def current_call():
    """(name, function, mode) of the call this thread runs: its name as execute() has
    it (a task's qualname, "Class.method"), what runs, and 0 for a task, 2 for an actor
    call.  Read from execute()'s frame (or its pooled or async run()'s) on the stack, so
    that no call stores them for the rare caller that asks; (None, None, None) outside a
    call."""
    f = sys._getframe(1)
    while f is not None:
        code = f.f_code
        if code is execute.__code__ or (code.co_name == "run" and
                                        code.co_filename == __file__):
            loc = f.f_locals
            return loc.get("name"), loc.get("fn"), loc.get("mode", 2)
        f = f.f_back
    return None, None, None


def _by_id(item):
    """The entry of a blob named by its key on the fast path (kind 3: the key, then the
    blob's pickle when it is small; kray/_remote.py _Blob.fast_arg0), or None: the call
    is not run here, and the driver sends it to krayd with the blob's ref."""
    ident = item[2]
    entry = _loaded.get(bytes(ident[:16]))
    if entry is None and len(ident) > 16:
        entry = _from_blob(ident[16:], [], [])
    return entry if entry is None or entry[3] is None else None


def _load(item):
    """(function or class, namespace, name, runtime_env) of a blob argument, or None
    (one named by its key that this worker cannot load: _by_id)."""
    entry = _by_id(item) if item[1] == 3 else _from_blob(*item[2:])
    if entry is not None:
        # The job's namespace, for get_actor and named actors made here.
        _remote.namespace[0] = entry[1]
    return entry


def _from_blob(pick, bufs, refs):
    """The entry of a blob, from the cache when its key is there (looking the whole pickle
    up would hash and compare a kilobyte or more on every call)."""
    if pick[_KEY_AT - 3:_KEY_AT] == _KEY_HEAD:
        entry = _loaded.get(bytes(pick[_KEY_AT:_KEY_AT + 16]))
        if entry is not None:
            return entry
    key, path, code, name, ns, env = _serial.loads(pick, bufs, refs)
    entry = _loaded.get(key)
    if entry is None:
        for p in path:
            if p not in sys.path:
                sys.path.append(p)
        import cloudpickle  # noqa: F401 (functions may need its reducers)
        obj = _serial.loads(code, [], refs)
        entry = (obj, ns, getattr(obj, "__qualname__", getattr(obj, "__name__", "task")),
                 env)
        if len(_loaded) >= LOADED_MAX:
            _loaded.popitem(last=False)
        _loaded[key] = entry
    return entry


def _call_args(blob, top):
    """(args, kwargs, the call's extra, the placement group it runs in or None)."""
    if blob[0] == 0 and blob[1] == 0 and not blob[3] and not blob[4]:
        call = pickle.loads(blob[2])  # the common blob: small, no buffers, no refs
    else:
        call = _serial.decode(blob)
    if len(call) == 3 and not call[2]:
        return call[0], call[1], None, None
    args, kwargs, where, *retry = call
    if len(retry) > 2:  # .options(name=...) (kray/_serial.py dumps_args)
        if len(_named_calls) >= 1024:
            _named_calls.clear()
        _named_calls[current_task_id()] = retry[2]
    if where:
        args = list(args)
        for w, item in zip(where, top):
            v = _serial.decode(item)
            if isinstance(w, int):
                args[w] = v
            else:
                kwargs[w] = v
    return args, kwargs, (retry[0] if retry else None), (retry[1] if len(retry) > 1 else None)


def _error(name, e):
    if isinstance(e, exceptions.RayTaskError):
        # An argument was the error of an earlier task: it propagates as it is.
        err = exceptions.RayTaskError(e.function_name, e.traceback_str, e.cause, pid=e.pid)
    else:
        # Without this module's own frame: the traceback starts in the user's function.
        tb = traceback.format_exception(type(e), e, e.__traceback__.tb_next or
                                        e.__traceback__)
        err = exceptions.RayTaskError(name, "".join(tb), e, pid=os.getpid())
    try:
        return (1,) + _serial.dumps(err)
    except Exception:
        # The cause cannot be pickled: keep its traceback and type name only.
        err = exceptions.RayTaskError(err.function_name, err.traceback_str, None,
                                      pid=err.pid)
        return (1,) + _serial.dumps(err)


def _results(name, result, nret):
    if nret == 1:
        if type(result) in _PLAIN:
            return [(0, pickle.dumps(result, 5), [], [])]
        return [(0,) + _serial.dumps(result)]
    if nret == 0:
        return []
    vals = tuple(result)
    if len(vals) != nret:
        raise ValueError(f"{name}() returned {len(vals)} values, num_returns={nret}")
    return [(0,) + _serial.dumps(v) for v in vals]


def _host(cls, max_concurrency, extra):
    """How the actor's methods run (python/src/worker.c): 0 one at a time on the worker's
    loop thread, 1 on max_concurrency threads of libkray's, 2 on an event loop (an async
    actor), 3 on a thread pool per concurrency group (a threaded actor with groups: a
    call waiting for its group must not hold a thread another group could use).  All but
    0 share the worker's connection, so methods can call kray.  extra is (concurrency
    groups, the default group's max_concurrency) when the actor has groups
    (kray/_remote.py: max_concurrency is then their sum)."""
    global _actor_loop
    groups, default = extra or ({}, max_concurrency)
    if _aio.is_async_class(cls):
        _actor_loop = _aio.ActorLoop(default, groups)
        return 2
    if groups:
        from concurrent.futures import ThreadPoolExecutor
        groups = dict(groups)
        groups[None] = default
        _pools.update({g: ThreadPoolExecutor(n, thread_name_prefix=f"kray-{g or 'default'}")
                       for g, n in groups.items()})
        return 3
    return 1 if max_concurrency > 1 else 0


_actor_loop = None  # an async actor's _aio.ActorLoop
_pools = {}  # a threaded actor's concurrency groups: name (None: default) -> thread pool


def _run_pooled(fn, name, a, kw, nret, ctx, task_id, group):
    """Runs a threaded actor's method in its group's pool; _kray._worker_done() ends it."""
    def run():
        _ctx.task_id = task_id
        _ctx.ctx = ctx
        try:
            out = _results(name, fn(*a, **kw), nret)
        except BaseException as e:
            out = [_error(name, e)] * nret
        _after_call()
        _kray._worker_done(ctx, out)
    _pools[group].submit(run)


_own_groups = {}  # a method's function -> its concurrency group (kray.method), or None
_OWN_GROUPS_MAX = 4096


def _own_group(fn):
    """The concurrency group @kray.method gave fn, or None; looked up once per function
    (a getattr that finds nothing raises and formats an AttributeError inside, on every
    call)."""
    f = fn.__func__ if type(fn) is MethodType else fn
    try:
        return _own_groups[f]
    except (KeyError, TypeError):  # not seen yet, or not hashable
        g = getattr(fn, "__kray_concurrency_group__", None)
        try:
            if len(_own_groups) >= _OWN_GROUPS_MAX:
                _own_groups.clear()
            _own_groups[f] = g
        except TypeError:
            pass
        return g


def _group(fn, named):
    """The concurrency group of a call: the one the caller named, or the method's."""
    group = named if named is not None else _own_group(fn)
    if group is None:
        return None
    known = _actor_loop.sems if _actor_loop is not None else _pools
    if group is not None and group not in known:
        names = sorted(g for g in known if g is not None)
        raise ValueError(f"unknown concurrency group {group!r}: the actor has "
                         f"{names or 'none'} (concurrency_groups=...)")
    return group


def wait_in_loop(fd1, fd2):
    """The worker's loop thread waits for krayd or a finished call (python/src/worker.c)."""
    _actor_loop.wait((fd1, fd2) if fd2 >= 0 else (fd1,))


_running = {}  # task id -> (event loop, asyncio task): an async actor's started calls
_cancel_early = set()  # calls cancelled before their coroutine started


def cancel_call(task_id):
    """kray.cancel() of an async actor's started call (python/src/worker.c): its
    coroutine is cancelled, as in Ray, and the caller gets TaskCancelledError."""
    entry = _running.get(task_id)
    if entry is None:
        if len(_cancel_early) > 10000:  # ids of calls that had ended: forgotten
            _cancel_early.clear()
        _cancel_early.add(task_id)
        return
    loop, task = entry
    loop.call_soon_threadsafe(task.cancel)


def _cancelled(name):
    err = exceptions.TaskCancelledError(None, f"{name} was cancelled (kray.cancel)")
    return (1,) + _serial.dumps(err)


def _run_async(fn, name, a, kw, nret, ctx, task_id, group, dynamic):
    """Starts an async actor's method on its group's event loop; _kray._worker_done()
    ends it."""
    import asyncio

    async def run():
        _ctx.task_id = task_id
        _running[task_id] = (asyncio.get_running_loop(), asyncio.current_task())
        try:
            if task_id in _cancel_early:
                _cancel_early.discard(task_id)
                raise asyncio.CancelledError
            async with _actor_loop.sems[group]:
                if dynamic == "streaming":
                    result = await _generators.stream_async(
                        name, lambda: fn(*a, **kw), ctx)
                else:
                    result = fn(*a, **kw)
                    if dynamic:
                        result = await _generators.collect_async(name, result)
                    elif inspect.isawaitable(result):
                        result = await result
            out = _results(name, result, nret)
        except asyncio.CancelledError:
            out = [_cancelled(name)] * nret
        except BaseException as e:
            out = [_error(name, e)] * nret
        finally:
            _running.pop(task_id, None)
        _after_call()
        _kray._worker_done(ctx, out)
    _actor_loop.start(run, group)


def execute(mode, args, inst, nret, task_id, ctx=0, max_concurrency=1):
    global actor_id
    _ctx.task_id = task_id
    _ctx.ctx = ctx  # a streaming call sends its items on it (kray/_generators.py)
    if mode == 1:
        actor_id = (task_id[0], task_id[1], task_id[2], 0xFFFFFFFE)
        try:
            cls, _, _, env = _load(args[0])
            if env:  # the actor's runtime_env, for its process's life
                n = _runtime_env.count(env)
                _runtime_env.applied(env, args[len(args) - n:], keep=True).__enter__()
            a, kw, extra, group = _call_args(args[1], args[2:])
            # Its placement group (kray/util/placement_group.py), for the actor's life:
            # get_current_placement_group() and the capture of its child tasks.
            _remote.group_context[0] = group
            obj = cls(*a, **kw)
            _after_call()
            return (obj, None, _host(cls, max_concurrency, extra))
        except BaseException as e:  # the actor is dead: every call says why
            return (None, "".join(traceback.format_exception(type(e), e, e.__traceback__)),
                    0)
    name = "task"
    env = None
    outer_group = _remote.group_context[0]
    try:
        if mode == 0:
            entry = _load(args[0])
            if entry is None:
                return False  # named by id and not loaded: krayd's path (KRAY_NOT_RUN)
            fn, _, name, env = entry
            if env:  # the task's runtime_env, for this call
                n = _runtime_env.count(env)
                scope = _runtime_env.applied(env, args[len(args) - n:])
                env = None  # applied once __enter__ returns (it undoes itself on error)
                env = scope.__enter__()
        else:
            name = args[0][1].decode()
            if name == METHODS_CALL:
                # A handle from get_actor() asks for the class's methods.
                table = {k: v[0] for k, v in _remote._methods(type(inst)).items()}
                return _results(name, (type(inst).__name__, table), nret)
            fn = getattr(inst, name)
            name = f"{type(inst).__name__}.{name}"
        a, kw, retry, in_group = _call_args(args[1], args[2:])
        if mode == 0:  # the task's placement group, for this call (put back below)
            _remote.group_context[0] = in_group
        if mode == 2:
            # A method call's extra: (concurrency group, generator: True for a dynamic
            # one, "streaming"), or None.
            group, dynamic = retry or (None, False)
            group = _group(fn, group)
            retry = None
            if _actor_loop is not None:
                _run_async(fn, name, a, kw, nret, ctx, task_id, group, dynamic)
                return None
            if dynamic == "streaming":
                fn = _generators.StreamingFunction(fn)
            elif dynamic:
                fn = _generators.DynamicFunction(fn)
            if _pools:
                _run_pooled(fn, name, a, kw, nret, ctx, task_id, group)
                return None
        attempt = 0
        while True:
            try:
                result = fn(*a, **kw)
                if isinstance(result, CoroutineType):  # an async def method or function
                    result = _event_loop().run_until_complete(result)
                break
            except Exception as e:
                # retry_exceptions: run again here, up to max_retries (-1: forever).
                if not retry or (0 <= retry[0] <= attempt) or (
                        retry[1] is not True and not isinstance(e, retry[1])):
                    raise
                attempt += 1
        return _results(name, result, nret)
    except BaseException as e:
        return [_error(name, e)] * nret
    finally:
        _after_call()
        _ctx.task_id = None
        _remote.group_context[0] = outer_group  # a task's was for that call only
        if env:
            env.__exit__(None, None, None)

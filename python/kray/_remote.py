# SPDX-License-Identifier: Apache-2.0
"""Remote functions, actor classes, actor handles and C functions (``@kray.remote``).

A Python task is a call of the C remote function ``kray_py_task`` that the shim
(libkray_python.so, on every Python job's code path) declares; an actor is an instance of
its C actor class ``kray_py_actor``, whose one method ``call`` names the Python method.
Each is sent as ``<C name>:<label>`` (``kray_py_task:mymod.f``, ``call:incr``): the worker
runs the C name and krayd keeps its per-function run times (which decide how deep it
pipelines), errors and kray top under the whole name, so each Python function counts as
its own.
The function or class travels once per process as an object in the store (its "blob"),
and each call passes a ref to it, so krayd and the C worker need no notion of Python.
"""
import collections
import inspect
import math
import os
import pickle
import sys

from . import _kray
from . import _serial
from . import _runtime_env
from . import exceptions

PY_TASK = "kray_py_task"
PY_ACTOR = "kray_py_actor"
PY_METHOD = "call"


def _labelled(base, label):
    """``base:label`` within kray's 255-byte names (see the module's docstring)."""
    name = f"{base}:{label}".replace("\0", "").encode("utf-8", "replace")[:255]
    return name.decode("utf-8", "ignore")


def _qualname(obj):
    mod = getattr(obj, "__module__", None)
    q = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or "?"
    return f"{mod}.{q}" if mod else q

_PG_OPTIONS = {"placement_group", "placement_group_bundle_index",
               "placement_group_capture_child_tasks"}  # Ray's older form
_TASK_OPTIONS = {"num_returns", "max_retries", "num_cpus", "num_gpus", "resources", "name",
                 "retry_exceptions", "memory", "runtime_env", "scheduling_strategy",
                 "timeout_s", "_metadata"} | _PG_OPTIONS
_ACTOR_OPTIONS = {"num_cpus", "num_gpus", "resources", "max_restarts", "max_task_retries",
                  "max_concurrency", "name", "namespace", "lifetime", "memory",
                  "runtime_env", "scheduling_strategy", "get_if_exists", "max_pending_calls",
                  "concurrency_groups", "_metadata"} | _PG_OPTIONS

# A function blob up to this size travels inline in its fast calls' stand-in
# (_Blob.fast_arg0), within libkray's limit for one (8 KiB) and the fast frame's (16 KiB).
FAST_BLOB_MAX = 8192 - 256

# The args blob of a call without arguments (_call_args(head, (), {})), made once.
_NO_ARGS = _kray.pack(0, pickle.dumps(((), {}, ()), 5), [])

_TIMEOUT_MAX_S = (2**32 - 1) // 1000  # krayd's timeout is 32-bit milliseconds


def _timeout_ms(opts):
    """The timeout_s option in krayd's milliseconds (0: none)."""
    t = opts.get("timeout_s")
    return 0 if t is None else max(1, int(math.ceil(t * 1000)))


# Bumped by kray.init/shutdown: blobs put under an earlier connection are gone.
session = [0]
# The placement group the running task or actor is in, (id, bundles, capture), or None
# (kray/util/placement_group.py; set by the worker, kray/_worker.py).
group_context = [None]
namespace = [""]


def _check(opts, allowed, what):
    bad = set(opts) - allowed
    if bad:
        raise ValueError(f"invalid option(s) for {what}: {', '.join(sorted(bad))}")
    n = opts.get("num_returns")
    if n is not None and n not in ("dynamic", "streaming") and (
            not isinstance(n, int) or isinstance(n, bool) or n < 0):
        raise ValueError("num_returns must be an integer >= 0, 'streaming' or 'dynamic'")
    for k in ("num_cpus", "num_gpus"):
        v = opts.get(k)
        if v is not None and (not isinstance(v, (int, float)) or v < 0):
            raise ValueError(f"{k} must be a number >= 0: the resource option {k} only "
                             "accepts None, 0 or a positive number (the quantity of "
                             f"resource {k} cannot be negative)")
    t = opts.get("timeout_s")
    if t is not None and (not isinstance(t, (int, float)) or isinstance(t, bool) or
                          not 0 < t <= _TIMEOUT_MAX_S):
        raise ValueError(f"timeout_s must be a number of seconds > 0 and <= {_TIMEOUT_MAX_S}")
    r = opts.get("resources")
    if r is not None:
        if not isinstance(r, dict) or any(not isinstance(v, (int, float)) or v < 0
                                          for v in r.values()):
            raise ValueError("resources must be a dict of names to quantities >= 0")
        if "CPU" in r or "GPU" in r:
            raise ValueError("use num_cpus and num_gpus instead of resources['CPU'/'GPU']")
    rex = opts.get("retry_exceptions")
    if rex not in (None, True, False) and (not isinstance(rex, (list, tuple)) or not all(
            isinstance(c, type) and issubclass(c, BaseException) for c in rex)):
        raise ValueError("retry_exceptions must be a bool or a list of exception classes")
    cg = opts.get("concurrency_groups")
    if cg is not None and (not isinstance(cg, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
            for k, v in cg.items())):
        raise ValueError("concurrency_groups must be a dict of group names to integers >= 1")
    lt = opts.get("lifetime")
    if lt not in (None, "detached", "non_detached"):
        raise ValueError("lifetime must be None, 'detached' or 'non_detached'")
    if opts.get("runtime_env") is not None:  # Ray's checks of its fields, as Ray does here
        _runtime_env.check(opts["runtime_env"])


def _resources(opts, cpus=False):
    """krayd's text for opts' resources; with cpus (a task), num_cpus too: a task holds 1
    CPU unless it says otherwise (an actor's num_cpus goes separately).  In a placement
    group, the group's resources instead (kray/util/placement_group.py)."""
    if _in_group(opts):
        from .util.placement_group import resources_in_group
        return resources_in_group(opts, cpus)
    r = dict(opts.get("resources") or {})
    if opts.get("num_gpus"):
        r["GPU"] = opts["num_gpus"]
    if cpus and opts.get("num_cpus") is not None and opts["num_cpus"] != 1:
        r["CPU"] = opts["num_cpus"]
    text = [f"{k}:{round(v, 3):g}" if v < 1e6 else f"{k}:{int(v)}"
            for k, v in sorted(r.items())]
    place = _placement(opts.get("scheduling_strategy"))
    if place:
        text.append(place)
    return ",".join(text) or None


def _placement(strategy):
    """krayd's placement entry for a scheduling_strategy (common/wire.h): "@spread",
    "@node=ID" (NodeAffinitySchedulingStrategy, soft=False) or "@prefer=ID" (soft=True);
    None for DEFAULT, a placement group (in the resources) and node labels, which kray
    does not have."""
    from .util.scheduling_strategies import (NodeAffinitySchedulingStrategy,
                                             NodeLabelSchedulingStrategy,
                                             PlacementGroupSchedulingStrategy)
    if strategy is None or strategy == "DEFAULT" or \
            isinstance(strategy, (PlacementGroupSchedulingStrategy,
                                  NodeLabelSchedulingStrategy)):
        return None
    if strategy == "SPREAD":
        return "@spread"
    if isinstance(strategy, NodeAffinitySchedulingStrategy):
        node = strategy.node_id.lower()
        if len(node) != 8 or any(c not in "0123456789abcdef" for c in node) or \
                node == "00000000":
            raise ValueError(f"NodeAffinitySchedulingStrategy: {strategy.node_id!r} is not "
                             "a kray node id (8 hex digits: kray.nodes()[i]['NodeID'], "
                             "kray.get_runtime_context().get_node_id())")
        return ("@prefer=" if strategy.soft else "@node=") + node
    raise ValueError(f"scheduling_strategy must be 'DEFAULT', 'SPREAD' or a "
                     f"kray.util.scheduling_strategies object, got {strategy!r}")


def _in_group(opts):
    if not (opts.get("scheduling_strategy") or opts.get("placement_group")):
        return None
    from .util.placement_group import in_group
    return in_group(opts)


def _captured(opts):
    """opts, placed in the current group when it captures child tasks (or None)."""
    from .util.placement_group import captured
    return captured(opts)


def _group_of_call(opts):
    """(group id, bundles, capture) for a call placed in a group, else None."""
    if not _in_group(opts):
        return None
    from .util.placement_group import call_context
    return call_context(opts)


def _pack_blob(obj, env):
    """(key, pickle, buffers, refs) of a function or class as a blob (_Blob): a random
    key, the sender's sys.path, the object pickled, its name, the namespace and the
    runtime_env.  The key comes first: workers find a blob they loaded by it without
    unpickling it (kray/_worker.py _KEY_AT)."""
    # Refs the code captured (an actor handle in a closure) are the blob's first refs;
    # the worker loads the code with the blob's refs (kray/_worker.py _from_blob).
    code, refs = _serial.dumps_code(obj)
    name = getattr(obj, "__qualname__", repr(obj))
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    key = os.urandom(16)
    return (key,) + _serial.dumps((key, paths, code, name, namespace[0], env), refs)


class _Blob:
    """A function or class as an object in the store, put once per connection and
    runtime environment (kray._runtime_env)."""

    def __init__(self, obj):
        self._obj = obj
        self._ref = None
        self._session = None
        self._fast = None  # what stands in for _ref on the fast path (fast_arg0)
        self._with_env = {}  # runtime_env key -> ref, this session

    def fast_arg0(self, opts=None):
        """What stands in for the blob's ref on the fast path (docs/fastpath.md): a
        Python value of kind 3 holding the blob's key and, when it is small
        (FAST_BLOB_MAX), the blob itself.  A worker that has loaded the blob runs the
        call from its cache (kray/_worker.py _by_id); one that has not loads it from the
        stand-in, or, without it there, answers that it did not run the call, which then
        goes to krayd with the ref.  None when the call has a runtime_env (its blob
        differs)."""
        if _runtime_env.current[0] is not None or (opts and opts.get("runtime_env")):
            return None
        self.ref(opts)  # put in this session, if not yet
        return self._fast

    def ref(self, opts=None):
        """(the blob's ref, the refs of its environment's archives: the call's last
        arguments)."""
        env = _runtime_env.current[0]
        if env is None and (opts is None or opts.get("runtime_env") is None):
            if self._ref is None or self._session != session[0]:
                self._ref = self._put(None, fast=True)
                self._session = session[0]
            return self._ref, ()
        env = _runtime_env.pack(_runtime_env.merge(
            env, _runtime_env.validate(opts.get("runtime_env") if opts else None)))
        k = (session[0], _runtime_env.key(env))
        ref = self._with_env.get(k)
        if ref is None:
            if len(self._with_env) > 64:
                self._with_env.clear()
            ref = self._with_env[k] = self._put(env)
        return ref, _runtime_env.archive_refs(env)

    def _put(self, env, fast=False):
        key, data, bufs, refs = _pack_blob(self._obj, env)
        if fast:
            inline = data if not bufs and not refs and len(data) <= FAST_BLOB_MAX else b""
            self._fast = _kray.pack(3, key + inline, [])
        return _serial._put(0, data, bufs, refs)


def _call_args(head, args, kwargs, retry=None, group=None, name=None):
    """C arguments of a Python call: head, the args blob (inline bytes, or a ref when it
    contains refs or is large), then the top-level refs.  group: the placement group the
    call runs in (_group_of_call); name: the one .options(name=...) gave, or None."""
    data, bufs, refs, top = _serial.dumps_args(args, kwargs, retry, group, name)
    if refs or bufs or len(data) > 32768:
        blob = _serial._put(0, data, bufs, refs)
    else:
        blob = _kray.pack(0, data, bufs)
    return [head, blob] + top


def _arity(sig):
    """(min, max) positional arguments when sig takes only plain positional parameters,
    so that the common call is checked without Signature.bind."""
    if sig is None:
        return None
    lo = hi = 0
    for p in sig.parameters.values():
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return None
        hi += 1
        if p.default is p.empty:
            lo = hi
    return lo, hi


def _bind_check(sig, args, kwargs, what, arity=None):
    if arity is not None and not kwargs and arity[0] <= len(args) <= arity[1]:
        return
    if sig is not None:
        try:
            sig.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{what}: {e}") from None


def _signature(obj):
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


# The latest actor calls' task ids, for cancel(force=True), which Ray refuses on them.
# An OrderedDict: its popitem(last=False) is O(1), where deleting a dict's first key
# (next(iter(d))) scans the holes earlier deletions left at its front, which grew with
# every call once 100,000 were kept (15 % of a driver's time in synchronous calls).
_actor_calls = collections.OrderedDict()
_ACTOR_CALLS_KEPT = 100000


def remember_actor_call(ref):
    _actor_calls[ref._fields()[:3]] = None
    while len(_actor_calls) > _ACTOR_CALLS_KEPT:
        _actor_calls.popitem(last=False)  # the oldest


def is_actor_call(ref):
    return ref._fields()[:3] in _actor_calls


def _default_returns(fn):
    """Ray 2.x: a generator function's calls are streaming generators unless num_returns
    says otherwise."""
    return "streaming" if (inspect.isgeneratorfunction(fn) or
                           inspect.isasyncgenfunction(fn)) else 1


def _streaming(out, name):
    from ._generators import ObjectRefGenerator
    return ObjectRefGenerator(out[0], name)


def _refs(out, n):
    if n == 1:
        return out[0]
    if n == 0:
        return None
    return out


def _plain_call(opts, default_n, res):
    """(num_returns, max_retries as krayd takes it, retry_exceptions) of a function's
    calls when these options leave nothing for .remote() to work out per call, else
    None (RemoteFunction.remote)."""
    if res or opts.get("timeout_s") or opts.get("runtime_env") or _in_group(opts):
        return None
    n = opts.get("num_returns")
    if n is None:
        n = default_n
    if not isinstance(n, int):  # "dynamic", "streaming"
        return None
    retries = opts.get("max_retries", 3)
    if retries is None:
        retries = 3
    rex = opts.get("retry_exceptions")
    retry = (retries, True if rex is True else tuple(rex)) if rex and retries != 0 else None
    return n, -1 if retries < 0 else retries, retry


class RemoteFunction:
    """A function made remote with @kray.remote; call it with .remote()."""

    def __init__(self, fn, options):
        _check(options, _TASK_OPTIONS, "a remote function")
        self._function = fn
        self._options = options
        self._blob = _Blob(fn)
        self._dynamic_blob = None  # for num_returns="dynamic" (kray/_generators.py)
        self._streaming_blob = None  # for num_returns="streaming"
        self._default_n = _default_returns(fn)
        self._res = _resources(options, cpus=True)
        self._plain = _plain_call(options, self._default_n, self._res)
        self._task_name = _labelled(PY_TASK, _qualname(fn))
        self._sig = _signature(fn)
        self._arity = _arity(self._sig)
        self.__name__ = getattr(fn, "__name__", "remote_function")
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__doc__ = getattr(fn, "__doc__", None)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Remote functions cannot be called directly. Instead of running "
                        f"'{self.__name__}()', try '{self.__name__}.remote()'.")

    def __reduce__(self):
        return (RemoteFunction, (self._function, self._options))

    def options(self, **options):
        merged = dict(self._options)
        merged.update(options)
        _check(merged, _TASK_OPTIONS, "a remote function")
        return _Bound(self, merged)

    def bind(self, *args, **kwargs):
        """This function's call in a task graph (kray.dag.FunctionNode): run it with
        .execute()."""
        from .dag import FunctionNode
        return FunctionNode(self, args, kwargs, self._options)

    def remote(self, *args, **kwargs):
        plain = self._plain
        if plain is None or group_context[0] is not None:
            return self._remote(args, kwargs, self._options, self._res)
        # What _remote() does, with the options' part worked out once (_plain_call).
        _bind_check(self._sig, args, kwargs, self.__name__, self._arity)
        n, retries, retry = plain
        blob = self._blob
        if _runtime_env.current[0] is None and blob._ref is not None and \
                blob._session == session[0]:
            # The blob is in the store already, and no runtime_env: what fast_arg0() and
            # ref() would return.
            fast = blob._fast if n == 1 else None
            cargs = [blob._ref, _NO_ARGS] if not args and not kwargs and retry is None else \
                _call_args(blob._ref, args, kwargs, retry)
        else:
            fast = blob.fast_arg0() if n == 1 else None
            ref, archives = blob.ref()
            cargs = _call_args(ref, args, kwargs, retry)
            if archives:
                cargs += archives
        return _refs(_kray.submit(self._task_name, cargs, n, retries, None, self._res, 0,
                                  False, fast), n)

    def _remote(self, args, kwargs, opts, res=None):
        _bind_check(self._sig, args, kwargs, self.__name__, self._arity)
        if group_context[0] is not None:  # in a group that captures child tasks?
            cap = _captured(opts)
            if cap is not None:
                opts, res = cap, _resources(cap, cpus=True)
        n = opts.get("num_returns")
        if n is None:
            n = self._default_n
        retries = opts.get("max_retries", 3)
        if retries is None:
            retries = 3
        rex = opts.get("retry_exceptions")
        retry = None
        if rex and retries != 0:
            retry = (retries, True if rex is True else tuple(rex))
        blob = self._blob
        if n == "dynamic":
            if self._dynamic_blob is None:
                from ._generators import DynamicFunction
                self._dynamic_blob = _Blob(DynamicFunction(self._function))
            blob, n = self._dynamic_blob, 1
        streaming = n == "streaming"
        if streaming:
            if self._streaming_blob is None:
                from ._generators import StreamingFunction
                self._streaming_blob = _Blob(StreamingFunction(self._function))
            blob, n = self._streaming_blob, 1
        # A call that may take the fast path (one return, default resources, no
        # timeout, no runtime_env) carries its blob by id there as well (_Blob.fast_arg0).
        fast = None if streaming or n != 1 or res or opts.get("timeout_s") else \
            blob.fast_arg0(opts)
        blob, archives = blob.ref(opts)
        cargs = _call_args(blob, args, kwargs, retry, _group_of_call(opts), opts.get("name"))
        if archives:  # a runtime_env's directories: the call's last arguments
            cargs += archives
        out = _kray.submit(self._task_name, cargs, n, -1 if retries < 0 else retries,
                           None, res, _timeout_ms(opts), streaming, fast)
        return _streaming(out, self.__name__) if streaming else _refs(out, n)


class _Bound:
    """f.options(...): call .remote() on it."""

    def __init__(self, target, opts):
        self._target = target
        self._opts = opts
        self._res = _resources(opts, cpus=True) if isinstance(target, RemoteFunction) else None

    def bind(self, *args, **kwargs):
        """The call with these options in a task graph (kray.dag)."""
        if isinstance(self._target, RemoteFunction):
            from .dag import FunctionNode
            return FunctionNode(self._target, args, kwargs, self._opts)
        from .dag import ClassNode
        return ClassNode(self._target, args, kwargs, self._opts)

    def remote(self, *args, **kwargs):
        if self._res is not None:
            return self._target._remote(args, kwargs, self._opts, self._res)
        return self._target._remote(args, kwargs, self._opts)


def method(*args, **kwargs):
    """@kray.method(num_returns=N) on an actor method sets its default num_returns."""
    if args:
        raise TypeError("use @kray.method(num_returns=...)")
    bad = set(kwargs) - {"num_returns", "concurrency_group", "max_task_retries",
                         "retry_exceptions"}
    if bad:
        raise ValueError(f"invalid option(s) for kray.method: {', '.join(sorted(bad))}")

    def deco(fn):
        if "num_returns" in kwargs:
            fn.__kray_num_returns__ = kwargs["num_returns"]
        if "concurrency_group" in kwargs:
            fn.__kray_concurrency_group__ = kwargs["concurrency_group"]
        return fn
    return deco


def _methods(cls):
    meta = {}
    for name, fn in inspect.getmembers(cls, callable):
        if name.startswith("__") and name != "__call__":
            continue
        sig = _signature(fn)
        if sig is not None and not isinstance(inspect.getattr_static(cls, name, None),
                                              (staticmethod, classmethod)):
            params = list(sig.parameters.values())[1:]  # self
            sig = sig.replace(parameters=params)
        meta[name] = (getattr(fn, "__kray_num_returns__", _default_returns(fn)), sig)
    return meta


class ActorClass:
    """A class made remote with @kray.remote; create actors with .remote()."""

    def __init__(self, cls, options):
        _check(options, _ACTOR_OPTIONS, "an actor class")
        self._cls = cls
        self._options = options
        self._blob = _Blob(cls)
        self._actor_name = _labelled(PY_ACTOR, _qualname(cls))
        self._meta = _methods(cls)
        self._sig = _signature(cls)
        from . import _aio
        # Ray: an async actor runs up to 1,000 calls at once unless told otherwise.
        self._default_concurrency = 1000 if _aio.is_async_class(cls) else 1
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__doc__ = cls.__doc__

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actors cannot be instantiated directly. Instead of "
                        f"'{self.__name__}()', use '{self.__name__}.remote()'.")

    def __reduce__(self):
        return (ActorClass, (self._cls, self._options))

    def options(self, **options):
        merged = dict(self._options)
        merged.update(options)
        _check(merged, _ACTOR_OPTIONS, "an actor class")
        return _Bound(self, merged)

    def remote(self, *args, **kwargs):
        return self._remote(args, kwargs, self._options)

    def bind(self, *args, **kwargs):
        """The actor's creation in a task graph (kray.dag.ClassNode): bind its methods
        with node.method.bind(...), run the graph with .execute()."""
        from .dag import ClassNode
        return ClassNode(self, args, kwargs, self._options)

    def _remote(self, args, kwargs, opts):
        _bind_check(self._sig, args, kwargs, self.__name__)
        if group_context[0] is not None:  # in a group that captures child tasks?
            opts = _captured(opts) or opts
        name = opts.get("name")
        ns = opts.get("namespace")
        if ns is None:
            ns = namespace[0]
        if name is not None and opts.get("get_if_exists"):
            try:
                return get_actor(name, ns)
            except ValueError:
                pass
        mc = opts.get("max_concurrency")
        if mc is None:
            mc = self._default_concurrency
        if not isinstance(mc, int) or isinstance(mc, bool) or not 1 <= mc <= 1024:
            raise ValueError(f"max_concurrency must be an integer from 1 to 1024, got {mc!r}")
        # Concurrency groups: the worker limits each group (and the default one, to
        # max_concurrency); the actor runs up to all of them at once.
        groups = dict(opts.get("concurrency_groups") or {})
        blob, archives = self._blob.ref(opts)
        cargs = _call_args(blob, args, kwargs, (groups, mc) if groups else None,
                           _group_of_call(opts))
        if archives:
            cargs += archives
        mc += sum(groups.values())
        if mc > 1024:
            raise ValueError("max_concurrency and the concurrency groups come to more than "
                             "1024 calls at once")
        cpus = float(opts.get("num_cpus") or 0)
        if _in_group(opts):  # its CPUs are the group's (in _resources)
            from .util.placement_group import wait_placed
            wait_placed(opts)
            cpus = 0.0
        try:
            ref = _kray.actor_create(
                self._actor_name, cargs, name, ns if name is not None else None,
                opts.get("lifetime") == "detached", opts.get("max_restarts", 0) or 0,
                opts.get("max_task_retries", 0) or 0, mc, cpus, _resources(opts))
        except FileExistsError as e:
            raise ValueError(f"The name {name} (namespace={ns!r}) is already taken: "
                             f"{e}") from None
        except _kray.Unschedulable as e:
            from .exceptions import ActorUnschedulableError
            raise ActorUnschedulableError(str(e)) from None
        return ActorHandle(ref, {k: (v[0], v[1]) for k, v in self._meta.items()},
                           self.__name__)


def get_actor(name, namespace_=None):
    ns = namespace[0] if namespace_ is None else namespace_
    try:
        ref = _kray.get_actor(name, ns)
    except LookupError:
        raise ValueError(f"Failed to look up actor with name '{name}' in namespace "
                         f"'{ns}'") from None
    from . import _worker
    # The actor itself, from inside one of its methods: its methods from its class here
    # (asking it would wait on the call that asks).
    if _worker.actor_id is not None and tuple(ref._fields()[:3]) == _worker.actor_id[:3]:
        cls = _worker.current_class()
        if cls is not None:
            return ActorHandle(ref, _methods(cls), cls.__name__)
    h = ActorHandle(ref, None, None)
    # Its methods and their num_returns, from the actor itself (one round trip), as a
    # handle made by .remote() knows them.  A C actor does not answer, and an actor busy
    # for 2 s with a long method is not waited for: then any name goes.
    try:
        out = _kray.get(_kray.submit(_labelled(PY_METHOD, _worker.METHODS_CALL),
                                     _call_args(_worker.METHODS_CALL.encode(), (), {}), 1,
                                     0, ref), 2000)
        cls, table = _serial.decode(out[0])
        h._class_name = cls
        h._meta = {k: (n, None) for k, n in table.items()}
        h._infos = {}  # worked out from _meta: none yet, but keep them in step
    except Exception:
        pass
    return h


class ActorHandle:
    """A handle to an actor: call its methods with handle.method.remote(...).  Pass it
    to tasks and other actors like any value."""

    def __init__(self, ref, meta, class_name):
        self._ref = ref
        self._meta = meta  # name -> (num_returns, signature or None), or None: unknown
        self._class_name = class_name
        # name -> what ActorMethod works out from _meta (_method_info), once per method:
        # `handle.f.remote()` looks the method up at every call.  Not the ActorMethod
        # itself, which refers to the handle: the cycle would keep the actor alive until
        # the garbage collector ran.
        self._infos = {}

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        d = self.__dict__
        info = d["_infos"].get(name) if "_infos" in d else None
        if info is None:
            meta = d.get("_meta")
            if meta is not None and name not in meta:
                raise AttributeError(f"'{self._class_name}' actor has no method '{name}'")
            nret, sig = meta[name] if meta is not None else (1, None)
            info = _method_info(name, nret, sig)
            if "_infos" in d:
                d["_infos"][name] = info
        return ActorMethod(self, info)

    def __reduce__(self):
        meta = None if self._meta is None else {k: (v[0], None) for k, v in
                                                self._meta.items()}
        return (ActorHandle, (self._ref, meta, self._class_name))

    def __repr__(self):
        return f"Actor({self._class_name or '?'}, {self._ref.hex()})"

    def __hash__(self):
        return hash(self._ref)

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and other._ref == self._ref

    @property
    def _actor_id(self):
        return self._ref.hex()


def _method_info(name, num_returns, sig):
    """(name, C name, num_returns, signature, arity, name as bytes) of an actor method."""
    return (name, _labelled(PY_METHOD, name), num_returns, sig, _arity(sig), name.encode())


class ActorMethod:
    __slots__ = ("_handle", "_name", "_cname", "_num_returns", "_sig", "_arity", "_bname")

    def __init__(self, handle, info):
        self._handle = handle
        (self._name, self._cname, self._num_returns, self._sig, self._arity,
         self._bname) = info

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of running "
                        f"'object.{self._name}()', try 'object.{self._name}.remote()'.")

    def options(self, **opts):
        bad = set(opts) - {"num_returns", "name", "concurrency_group"}
        if bad:
            raise ValueError(f"invalid option(s) for an actor method: {sorted(bad)}")
        group = opts.get("concurrency_group")
        if group is not None and not isinstance(group, str):
            raise ValueError("concurrency_group must be a group name")
        _check({"num_returns": opts.get("num_returns")}, {"num_returns"}, "an actor method")
        return _MethodBound(self, opts.get("num_returns", self._num_returns), group,
                            opts.get("name"), opts)

    def remote(self, *args, **kwargs):
        n = self._num_returns
        if n != 1 or kwargs or args:
            return self._remote(args, kwargs, n)
        # What _remote() does for the common call, one return and no arguments.
        arity = self._arity
        if arity is None or arity[0] != 0:
            _bind_check(self._sig, args, kwargs, self._name, arity)
        ref = _kray.submit(self._cname, [self._bname, _NO_ARGS], 1, 0, self._handle._ref,
                           None, 0, False)[0]
        remember_actor_call(ref)
        return ref

    def bind(self, *args, **kwargs):
        """This call of the actor in a task graph (kray.dag.ClassMethodNode)."""
        return _bind_method(self, args, kwargs, {})

    def _remote(self, args, kwargs, n, group=None, name=None):
        _bind_check(self._sig, args, kwargs, self._name, self._arity)
        # The worker's extra: the concurrency group named here (it overrides the
        # method's own, which the worker knows), and whether the call is a dynamic
        # (True) or streaming ("streaming") generator (kray/_generators.py).
        extra = None
        if group is not None or n in ("dynamic", "streaming"):
            extra = (group, "streaming" if n == "streaming" else n == "dynamic")
        streaming = n == "streaming"
        if n in ("dynamic", "streaming"):
            n = 1
        cargs = _call_args(self._bname, args, kwargs, extra, None, name)
        out = _kray.submit(self._cname, cargs, n, 0, self._handle._ref, None, 0,
                           streaming)
        if out:
            remember_actor_call(out[0])
        return _streaming(out, self._name) if streaming else _refs(out, n)


class _MethodBound:
    def __init__(self, m, n, group=None, name=None, given=None):
        self._m = m
        self._n = n
        self._group = group
        self._name = name
        self._given = given or {}  # the options as given (a graph node's get_options())

    def remote(self, *args, **kwargs):
        return self._m._remote(args, kwargs, self._n, self._group, self._name)

    def bind(self, *args, **kwargs):
        return _bind_method(self._m, args, kwargs, dict(self._given))


def _bind_method(method, args, kwargs, opts):
    """handle.method(.options(...)).bind(...): a ClassMethodNode on an actor that exists
    (kray.dag)."""
    from .dag import PARENT_CLASS_NODE_KEY, PREV_CLASS_METHOD_CALL_KEY, ClassMethodNode
    return ClassMethodNode(method._name, args, kwargs, opts,
                           {PARENT_CLASS_NODE_KEY: method._handle,
                            PREV_CLASS_METHOD_CALL_KEY: None})


class CFunction:
    """A C remote function (KRAY_REMOTE in a library on the job's code path), called by
    name: kray.cfunction("square").remote(3).  Arguments are int, float, bytes, None,
    ObjectRefs and actor handles; results come back as int, float, bytes or None."""

    def __init__(self, name, options=None):
        self._name = name
        self._options = dict(options or {})
        _check(self._options, {"num_returns", "max_retries", "timeout_s"}, "a C function")

    def options(self, **options):
        merged = dict(self._options)
        merged.update(options)
        return CFunction(self._name, merged)

    def remote(self, *args):
        n = self._options.get("num_returns", 1)
        retries = self._options.get("max_retries", 3)
        cargs = [(a._ref,) if isinstance(a, ActorHandle) else a for a in args]
        return _refs(_kray.submit(self._name, cargs, n, retries, None, None,
                                  _timeout_ms(self._options)), n)


def cfunction(name, **options):
    return CFunction(name, options)


def remote(*args, **kwargs):
    """@kray.remote or @kray.remote(**options) on a function or a class."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _make(args[0], {})
    if args:
        raise TypeError("The @kray.remote decorator must be applied either with no "
                        "arguments or with keyword options only")
    return lambda obj: _make(obj, kwargs)


def _make(obj, opts):
    if inspect.isclass(obj):
        return ActorClass(obj, opts)
    if callable(obj):
        return RemoteFunction(obj, opts)
    raise TypeError("@kray.remote applies to functions and classes")


_ = exceptions  # re-exported through kray

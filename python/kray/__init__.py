# SPDX-License-Identifier: Apache-2.0
"""kray: a distributed task framework in the line of Ray, with Ray's core Python API.

    import kray as ray

    ray.init()

    @ray.remote
    def square(x):
        return x * x

    print(ray.get([square.remote(i) for i in range(4)]))

See docs/python.md for what differs from Ray.
"""
import atexit
import os
import time

from . import _kray
from . import exceptions
from ._remote import (ActorClass, ActorHandle, CFunction, RemoteFunction, cfunction,
                      method, remote)
from . import _compat
from . import _runtime_env
from . import _remote
from . import _serial
from . import job_config
from ._compat import (ActorClassID, ActorID, FunctionID, JobID, Language, NodeID,
                      PlacementGroupID, TaskID, UniqueID, WorkerID, cpp_function,
                      java_actor_class, java_function)
from ._serial import ObjectRef
from ._generators import ObjectRefGenerator  # num_returns="streaming" (Ray 2.x)
from ._generators import DynamicObjectRefGenerator  # num_returns="dynamic"

__version__ = "0.1.0"

__all__ = ["init", "shutdown", "is_initialized", "remote", "method", "get", "put", "wait",
           "cancel", "kill", "get_actor", "get_runtime_context", "cfunction", "ObjectRef",
           "ActorHandle", "exceptions", "available_resources", "cluster_resources",
           "nodes", "timeline", "ObjectID", "JobID", "NodeID", "WorkerID", "TaskID",
           "ActorID", "ActorClassID", "FunctionID", "PlacementGroupID", "UniqueID",
           "Language", "get_gpu_ids", "get_dashboard_url", "show_in_dashboard",
           "java_function", "java_actor_class", "cpp_function", "job_config",
           "ObjectRefGenerator", "DynamicObjectRefGenerator"]

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
SHIM = os.path.join(_PKG_DIR, "libkray_python.so")

_state = {"num_cpus": None, "resources": {}, "address": None}


class _InitContext(dict):
    """What init() returns (Ray returns a context with address_info)."""

    @property
    def address_info(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutdown()


def _default_address():
    addr = os.environ.get("KRAY_ADDRESS")
    if addr:
        return addr
    # As krayd's and kray's default (common/rundir.c): $XDG_RUNTIME_DIR/kray-UID, for root
    # /run/kray (only root can create it), else /tmp/kray-UID.
    run = os.environ.get("XDG_RUNTIME_DIR")
    if run:
        return os.path.join(run, f"kray-{os.getuid()}", "krayd.sock")
    if os.getuid() == 0:
        return "/run/kray/krayd.sock"
    return os.path.join("/tmp", f"kray-{os.getuid()}", "krayd.sock")


def _size(v):
    if isinstance(v, str):
        return v
    if not isinstance(v, int) or v <= 0:
        raise ValueError("object_store_memory must be a positive number of bytes")
    return str(v)


def init(address=None, *, num_cpus=None, num_gpus=None, resources=None,
         object_store_memory=None, local_mode=False, ignore_reinit_error=False,
         include_dashboard=None, dashboard_host="127.0.0.1", dashboard_port=None,
         job_config=None, configure_logging=True, logging_level=None, logging_format=None,
         log_to_driver=True, namespace=None, runtime_env=None, storage=None,
         code_path=None, _krayd_args=None, **kwargs):
    """Connects to krayd, or (address None or "local") starts a private krayd for this
    process, as ray.init() does.  address="auto" is the krayd of `kray start`
    ($KRAY_ADDRESS, else the default socket); any other string is a krayd socket path.
    Ray's other options, old and new, are accepted (kray._compat): the ones with no
    meaning in kray warn when their value asks for something.

    kray-only: code_path, a ':'-separated string or list of directories and .so files
    holding C remote functions (kray.cfunction) for this job."""
    kwargs.update(local_mode=local_mode, include_dashboard=include_dashboard,
                  dashboard_host=dashboard_host, dashboard_port=dashboard_port,
                  configure_logging=configure_logging, logging_format=logging_format,
                  log_to_driver=log_to_driver, storage=storage)
    compat = _compat.init_options(kwargs, job_config, logging_level)
    if address is None:
        address = compat.get("address")
    if code_path is None:
        code_path = compat.get("code_path")
    if namespace is None and job_config is not None:
        namespace = getattr(job_config, "ray_namespace", None)
    if is_initialized():
        if ignore_reinit_error:
            return _InitContext(address=_state["address"])
        raise RuntimeError("Maybe you called kray.init twice by accident? This error can be "
                           "suppressed by passing in 'ignore_reinit_error=True' or by calling "
                           "'kray.shutdown()' prior to 'kray.init()'.")
    if isinstance(address, str) and address.startswith("ray://"):
        raise ValueError("kray has no ray:// client; use a krayd socket path")
    if address == "local":
        address = None
    elif address == "auto":
        address = _default_address()
    elif isinstance(address, str) and address.startswith("unix:"):
        address = address[5:]
    krayd_args = list(_krayd_args or [])
    if "metrics_port" in compat:
        if address is not None:
            raise ValueError("_metrics_export_port is a krayd setting: give it to the "
                             "krayd you connect to (metrics = HOST:PORT)")
        krayd_args += ["--metrics", f"127.0.0.1:{compat['metrics_port']}"]
    res = dict(resources or {})
    if num_gpus:
        res["GPU"] = num_gpus
    if address is not None and (num_cpus is not None or res or object_store_memory):
        raise ValueError("When connecting to an existing krayd, num_cpus, num_gpus, "
                         "resources and object_store_memory must not be given (they are "
                         "krayd settings)")
    if object_store_memory is not None:
        krayd_args += ["--store-size", _size(object_store_memory)]
    if res:
        if any(not isinstance(v, (int, float)) or v < 0 for v in res.values()):
            raise ValueError("resources must map names to quantities >= 0")
        krayd_args += ["--resources", ",".join(f"{k}:{v:g}" for k, v in sorted(res.items()))]
    if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 0):
        raise ValueError("num_cpus must be an integer >= 0")
    if isinstance(code_path, (list, tuple)):
        code_path = ":".join(code_path)
    path = SHIM + (":" + code_path if code_path else "")
    if address is None and "--warm-code-path" not in krayd_args:
        # The krayd started here runs Python tasks: its workers start Python as they
        # start, not at their first task (kray.h, kray_warm).
        krayd_args += ["--warm-code-path", SHIM]
    if runtime_env is None:
        runtime_env = compat.get("runtime_env")
    runtime_env = _runtime_env.validate(runtime_env)
    _kray.init(address, path, num_cpus or 0, krayd_args)
    _remote.session[0] += 1
    # As Ray: a job without a namespace gets an anonymous one of its own.
    if namespace is None:
        import uuid  # not at the top: workers import this package too
        namespace = f"anon-{uuid.uuid4()}"
    _remote.namespace[0] = namespace
    try:
        _runtime_env.current[0] = _runtime_env.pack(runtime_env)
    except BaseException:
        shutdown()
        raise
    _state.update(num_cpus=num_cpus or os.cpu_count(), resources=res, address=address)
    return _InitContext(address=address or "private krayd", namespace=_remote.namespace[0])


# Run by shutdown() before it disconnects (kray.util.metrics sends its last updates).
before_shutdown_hooks = []


def shutdown(_exiting_interpreter=False):
    """Disconnects; a private krayd stops with its workers and objects."""
    for hook in before_shutdown_hooks:
        hook()
    _kray.shutdown()
    _remote.session[0] += 1
    _runtime_env.current[0] = None


atexit.register(shutdown)


def is_initialized():
    return bool(_kray.connected())


def _as_list(object_refs, what):
    if isinstance(object_refs, ObjectRef):
        return [object_refs], True
    if isinstance(object_refs, (list, tuple)):
        for r in object_refs:
            if not isinstance(r, ObjectRef):
                raise TypeError(f"{what} takes an ObjectRef or a list of ObjectRefs, got a "
                                f"list containing {type(r).__name__}")
        return list(object_refs), False
    raise ValueError(f"'object_refs' must either be an ObjectRef or a list of ObjectRefs, "
                     f"got {type(object_refs).__name__}")


def _ms(timeout):
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("timeout can't be negative")
    return int(timeout * 1000)


# Refs in one get or wait frame (KRAY_REFS_MAX in kray_wire.h): longer lists go in parts.
_REFS_MAX = 65536


def _left(deadline):
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _get_items(refs, timeout):
    ms = -1 if timeout is None else _ms(timeout)
    if len(refs) <= _REFS_MAX:
        return _kray.get(refs, ms)
    deadline = None if timeout is None else time.monotonic() + timeout
    items = []
    for i in range(0, len(refs), _REFS_MAX):
        part = _kray.get(refs[i:i + _REFS_MAX], _ms(_left(deadline)))
        if part is None:
            return None
        items.extend(part)
    return items


def _wait_flags(refs, num_returns, timeout):
    ms = _ms(timeout)
    if len(refs) <= _REFS_MAX:
        return _kray.wait(refs, num_returns, ms)
    # More refs than one frame holds: look at every part without waiting, and while too
    # few are ready, wait a little for one of (up to a frame of) those not ready yet.
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        flags = []
        for i in range(0, len(refs), _REFS_MAX):
            part = refs[i:i + _REFS_MAX]
            flags.extend(_kray.wait(part, len(part), 0))
        left = _left(deadline)
        if sum(1 for f in flags if f) >= num_returns or left == 0.0:
            return flags
        pending = [r for r, f in zip(refs, flags) if not f][:_REFS_MAX]
        _kray.wait(pending, 1, _ms(0.01 if left is None else min(0.01, left)))


def get(object_refs, *, timeout=None):
    """The values of one ObjectRef or a list of them, waiting up to timeout seconds
    (None: forever).  Raises the task's error (RayTaskError, also an instance of the
    original exception's class), GetTimeoutError, or another kray.exceptions error."""
    if type(object_refs) is ObjectRef:  # the common get of one ref (_as_list's case)
        refs, single = [object_refs], True
    else:
        refs, single = _as_list(object_refs, "get")
    try:
        items = _get_items(refs, timeout)
    except _kray.TaskCancelled as e:  # this task was cancelled while it waited
        raise exceptions.TaskCancelledError(message=str(e)) from None
    if items is None:
        raise exceptions.GetTimeoutError(
            f"Get timed out: some object(s) not ready after {timeout} s.")
    decode = _serial.decode
    if single:
        item = items[0]
        return item[1] if item[0] == 1 else decode(item)  # 1: decoded already
    return [decode(i) for i in items]


def put(value, *, _owner=None):
    """Stores value in the object store (once: large buffers are written in place) and
    returns its ObjectRef."""
    if isinstance(value, ObjectRef):
        raise TypeError("Calling 'put' on an ObjectRef is not allowed. If you really want "
                        "to do this, you can wrap the ObjectRef in a list and call 'put' "
                        "on it.")
    return _serial.put_value(value)


def wait(object_refs, *, num_returns=1, timeout=None, fetch_local=True):
    """(ready, not_ready): the first num_returns refs that are ready (in the order given),
    once that many are or timeout seconds passed, and the others."""
    if isinstance(object_refs, ObjectRef) or not isinstance(object_refs, (list, tuple)):
        raise TypeError("wait() expected a list of ObjectRefs, got "
                        f"{type(object_refs).__name__}")
    if not object_refs:
        return [], []
    refs, _ = _as_list(list(object_refs), "wait")
    if len(set(refs)) != len(refs):
        raise ValueError("Wait requires a list of unique object refs.")
    if num_returns <= 0:
        raise ValueError("Invalid number of objects to return %d." % num_returns)
    if num_returns > len(refs):
        raise ValueError("num_returns cannot be greater than the number of objects "
                         "provided to kray.wait.")
    try:
        flags = _wait_flags(refs, num_returns, timeout)
    except _kray.TaskCancelled as e:
        raise exceptions.TaskCancelledError(message=str(e)) from None
    ready, not_ready = [], []
    for r, f in zip(refs, flags):
        (ready if f and len(ready) < num_returns else not_ready).append(r)
    return ready, not_ready


def cancel(object_ref, *, force=False, recursive=True):
    """Cancels the task that makes object_ref: a queued task never runs; a running one
    gets a KeyboardInterrupt (force=True: its worker is killed; a C task runs to its end
    unless forced).  get then raises TaskCancelledError.  recursive: the tasks it
    submitted are cancelled too.  An ObjectRefGenerator cancels its streaming task."""
    if isinstance(object_ref, ObjectRefGenerator):
        object_ref = object_ref.completed()
    if isinstance(object_ref, ActorHandle) or not isinstance(object_ref, ObjectRef):
        raise TypeError("kray.cancel() only supported for non-actor object refs. For "
                        "actors, try kray.kill().")
    if force and _remote.is_actor_call(object_ref):
        raise ValueError("force=True is not supported for actor tasks.")
    _kray.cancel(object_ref, bool(force), bool(recursive))


def kill(actor, *, no_restart=True):
    """Kills the actor's process now; with no_restart=False it restarts if it may."""
    if not isinstance(actor, ActorHandle):
        raise ValueError("kray.kill() only supported for actors. For tasks, try "
                         "kray.cancel(). Got: %s." % type(actor).__name__)
    try:
        _kray.kill(actor._ref, bool(no_restart))
    except LookupError:
        pass  # already dead: as in Ray, killing a dead actor is not an error


def get_actor(name, namespace=None):
    """The handle of the live actor with this name (in namespace, else the job's)."""
    if not isinstance(name, str) or not name:
        raise ValueError("Please supply a non-empty value to get_actor")
    return _remote.get_actor(name, namespace)


class RuntimeContext:
    """What get_runtime_context() returns: ids of the job, task, actor and node."""

    def _ids(self):
        return _kray.ids()

    def get_job_id(self):
        return f"{self._ids()[2]:08x}"

    def get_node_id(self):
        return f"{self._ids()[0]:08x}"

    def get_worker_id(self):
        node, client, _ = self._ids()
        return f"{node:08x}{client:08x}"

    def get_task_id(self):
        from . import _worker
        t = _worker.current_task_id()
        return None if t is None else "%08x%08x%08x" % t[:3]

    def get_actor_id(self):
        from . import _worker
        a = _worker.actor_id
        return None if a is None else "%08x%08x%08x%08x" % a

    def is_canceled(self):
        """Whether kray.cancel() asked the running task or actor call to stop, as Ray's:
        a regular or threaded actor's running call is not interrupted and polls this (its
        caller gets TaskCancelledError whatever it returns); a task sees it true once its
        KeyboardInterrupt came.  RuntimeError in a driver and in an async actor, whose
        calls are cancelled at an await instead."""
        from . import _worker
        if _worker._actor_loop is not None:
            raise RuntimeError("is_canceled() is not supported in an async actor: its "
                               "calls are cancelled at an await (asyncio.CancelledError)")
        ctx = getattr(_worker._ctx, "ctx", 0)
        if _worker.current_task_id() is None or not ctx:
            raise RuntimeError("is_canceled() is only available in a task or an actor's "
                               "method, not in a driver")
        return _kray._ctx_cancelled(ctx)

    def get_task_name(self):
        """The running task's name, as Ray's: the function's name ("f"), "Class.method"
        for an actor call, or the name given with .options(name=...); None in a
        driver."""
        from . import _worker
        t = _worker.current_task_id()
        if t is None:
            return None
        named = _worker._named_calls.get(t)
        if named is not None:
            return named
        name, _, mode = _worker.current_call()
        return name.rsplit(".", 1)[-1] if name and mode == 0 else name

    def get_task_function_name(self):
        """The running task's function as "module.qualname" ("module.Class.method" for
        an actor call), as Ray's; None in a driver."""
        from . import _worker
        if _worker.current_task_id() is None:
            return None
        name, fn, _ = _worker.current_call()
        if name is None:
            return None
        fn = getattr(fn, "fn", fn)  # a generator task's wrapper (kray/_generators.py)
        module = getattr(fn, "__module__", None)
        return f"{module}.{name}" if module else name

    def _actor_record(self):
        """(name, namespace) of the actor this process hosts ("" when unnamed), asked of
        krayd's actor table once; None outside an actor."""
        from . import _worker
        a = _worker.actor_id
        if a is None:
            return None
        rec = _worker.actor_name
        if rec is None:
            aid = "%08x%08x%08x%08x" % a
            rec = next(((x["name"], x["namespace"]) for x in _kray.list_actors()
                        if "%08x%08x%08x%08x" % x["actor_id"] == aid), ("", ""))
            _worker.actor_name = rec
        return rec

    def get_actor_name(self):
        """The actor's name ("" when it has none) in an actor; None elsewhere (Ray's)."""
        rec = self._actor_record()
        return None if rec is None else rec[0]

    @property
    def current_actor(self):
        """This actor's own handle, as Ray's; RuntimeError outside an actor.  Like any
        handle, it keeps the actor alive while it lives (one kept in the actor's own
        state keeps it alive until it is killed or exits)."""
        from . import _worker
        if _worker.actor_id is None:
            raise RuntimeError("This method is only available in an actor.")
        try:
            ref = _kray.actor_self()
        except LookupError:
            raise RuntimeError("current_actor: krayd does not know this actor as "
                               "alive") from None
        # Its methods from its class here (asking the actor itself would wait on the
        # call that asks).
        cls = _worker.current_class()
        if cls is None:
            return _remote.ActorHandle(ref, None, None)
        return _remote.ActorHandle(ref, _remote._methods(cls), cls.__name__)

    @property
    def current_placement_group_id(self):
        """The id of the placement group this task or actor runs in, or None."""
        return self.get_placement_group_id()

    @property
    def gcs_address(self):
        """kray has no GCS process: the address this driver gave kray.init() (a krayd
        socket), "local" for a private krayd; RuntimeError before kray.init()."""
        if not _kray.connected():
            raise RuntimeError("Ray has not been started yet. You can start Ray with "
                               "'ray.init()'.")
        return _state["address"] or "local"

    def get_node_labels(self):
        """The node's labels, {} (kray nodes have no labels)."""
        return {}

    @property
    def namespace(self):
        return _remote.namespace[0]

    @property
    def job_id(self):
        return self.get_job_id()

    @property
    def node_id(self):
        return self.get_node_id()

    @property
    def task_id(self):
        return self.get_task_id()

    @property
    def actor_id(self):
        return self.get_actor_id()

    @property
    def worker_id(self):
        return self.get_worker_id()

    def get_assigned_resources(self):
        """{} : kray does not split resources into instances (Ray gives the ids)."""
        return {}

    def get_accelerator_ids(self):
        return {"GPU": [str(i) for i in get_gpu_ids()]}

    def get_placement_group_id(self):
        """The id of the placement group this task or actor runs in, or None."""
        ctx = _remote.group_context[0]
        return None if ctx is None else ctx[0]

    def get_runtime_env_string(self):
        import json
        return json.dumps(self.runtime_env)

    @property
    def runtime_env(self):
        """The runtime_env this code runs in (directories as kray:// names), a
        kray.runtime_env.RuntimeEnv as in Ray."""
        from .runtime_env import RuntimeEnv
        return RuntimeEnv(_validate=False, **_runtime_env.public(_runtime_env.current[0]))

    @property
    def was_current_actor_reconstructed(self):
        return False

    @property
    def should_capture_child_tasks_in_placement_group(self):
        """Whether tasks and actors submitted from here go into the current placement
        group by default (placement_group_capture_child_tasks)."""
        ctx = _remote.group_context[0]
        return bool(ctx and ctx[2])

    def get(self):
        """Deprecated in Ray: {"job_id", "node_id", "namespace"}, and "task_id" and
        "actor_id" in a task or actor."""
        import warnings
        warnings.warn("RuntimeContext.get() is deprecated: use the get_xxx_id() methods",
                      DeprecationWarning, stacklevel=2)
        out = {"job_id": self.job_id, "node_id": self.node_id, "namespace": self.namespace}
        if self.task_id is not None:
            out["task_id"] = self.task_id
        if self.actor_id is not None:
            out["actor_id"] = self.actor_id
        return out


def get_runtime_context():
    return RuntimeContext()


def _parse_resources(text):
    out = {}
    for item in filter(None, text.split(",")):
        name, _, qty = item.partition(":")
        out[name.strip()] = float(qty)
    return out


def nodes():
    """A dict per node, as Ray's: NodeID, Alive, NodeManagerAddress, NodeManagerPort,
    Resources ({'CPU': n, ...custom}), and kray's BusyCPUs.  Outside a cluster, this node
    (its custom resources are known when this process started the krayd)."""
    out = []
    # kray_list_nodes(): libkray parses krayd's listing into structs (kray.h).
    for n in _kray.list_nodes():
        res = {"CPU": float(n["num_cpus"])}
        res.update(_parse_resources(n["resources"]))
        out.append({"NodeID": f"{n['node']:08x}", "Alive": n["alive"],
                    "NodeManagerAddress": n["address"], "NodeManagerPort": n["port"],
                    "Resources": res, "BusyCPUs": float(n["workers_busy"])})
    if not out:
        st = _kray.status()
        res = {"CPU": float(st["num_cpus"])}
        res.update({k: float(v) for k, v in _state["resources"].items()})
        out.append({"NodeID": f"{st['node']:08x}", "Alive": True,
                    "NodeManagerAddress": "127.0.0.1", "NodeManagerPort": 0,
                    "Resources": res, "BusyCPUs": None})
    return out


def _sum_resources(free):
    out = {}
    for n in nodes():
        if n["Alive"]:
            for k, v in n["Resources"].items():
                if free and k == "CPU" and n["BusyCPUs"] is not None:
                    v = max(0.0, v - n["BusyCPUs"])
                out[k] = out.get(k, 0.0) + v
    return out


def cluster_resources():
    """{'CPU': n, ...custom resources}, summed over the live nodes."""
    return _sum_resources(False)


def available_resources():
    """cluster_resources() less the CPUs busy now (custom resources: totals)."""
    return _sum_resources(True)


def get_gpu_ids():
    """The GPUs this worker may use, as Ray's: the ids in CUDA_VISIBLE_DEVICES (kray
    schedules GPU as a counted resource and does not assign devices)."""
    ids = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return [int(i) if i.isdigit() else i for i in ids.split(",") if i.strip()]


def get_dashboard_url():
    """None: init() starts no dashboard (Ray's answer when there is none)."""
    return None


get_webui_url = get_dashboard_url  # Ray 0.8's name


def show_in_dashboard(message, key="", dtype="text"):
    """Accepted for Ray programs; kray has no dashboard to show it in."""
    if dtype not in ("text", "html"):
        raise ValueError("dtype accepts only text or html")


# Ray's worker modes (ray.SCRIPT_MODE is a driver).
SCRIPT_MODE, WORKER_MODE, LOCAL_MODE, SPILL_WORKER_MODE, RESTORE_WORKER_MODE = range(5)

ObjectID = ObjectRef  # Ray's name for ObjectRef before 1.0


def timeline(filename=None):
    """The connected krayd's task timeline, as Ray's: the last tasks its workers ran
    (krayd's `timeline-events` ring) as Chrome trace events, one "X" (complete) event per
    task with pid = node, tid = worker, name = function, and args task_id, job_id, state,
    submit/dispatch/end times.  With filename, writes {"traceEvents": [...]} there (open it
    in chrome://tracing or https://ui.perfetto.dev) and returns None; else returns the list
    of events.  See docs/timeline.md."""
    import json
    if not is_initialized():
        raise RuntimeError("kray.timeline() needs kray.init() first")
    text = _kray.timeline()
    if filename is None:
        return json.loads(text)["traceEvents"]
    with open(filename, "w") as f:
        f.write(text)
    return None


_LIBRARIES = ("tune", "rllib", "util", "air", "actor", "remote_function", "runtime_context",
              "runtime_env", "dag")


def __getattr__(name):
    """ray.tune, ray.util, ... without importing them first, as `import ray` allows."""
    if name in _LIBRARIES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

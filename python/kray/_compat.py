# SPDX-License-Identifier: Apache-2.0
"""Ray's names and ``init`` options, old and new, so programs written for any Ray version
since 0.8 start on kray (docs/python.md, "Ray's names and options").

An option kray can honour is translated; a renamed one is taken under its old name; one that
means nothing here is accepted, and a warning says so when its value asks for something
(its Ray default is silent).  A name that Ray never had still raises, as in Ray.
"""
import logging
import warnings

# Old init() option -> the name Ray uses today.
RENAMED = {
    "redis_address": "address",
    "include_webui": "include_dashboard",
    "webui_host": "dashboard_host",
    "_internal_config": "_system_config",
    "temp_dir": "_temp_dir",
    "plasma_directory": "_plasma_directory",
    "node_ip_address": "_node_ip_address",
    "redis_password": "_redis_password",
    "redis_max_memory": "_redis_max_memory",
    "memory": "_memory",
    "driver_object_store_memory": "_driver_object_store_memory",
    "enable_object_reconstruction": "_enable_object_reconstruction",
}

# init() options with no meaning in kray: (Ray's default values, why it means nothing).
_NO_EFFECT = {
    "local_mode": ((False,), "tasks always run in worker processes"),
    "include_dashboard": ((None, False), "kray has no dashboard in init(); see `kray status`"),
    "dashboard_host": ((None, "127.0.0.1", "localhost"), "kray has no dashboard in init()"),
    "dashboard_port": ((None, 8265), "kray has no dashboard in init()"),
    "log_to_driver": ((True, False), ""),
    "configure_logging": ((True, False), ""),
    "logging_format": ((None,), "kray logs through the standard logging module"),
    "logging_config": ((None,), "kray logs through the standard logging module"),
    "storage": ((None,), "kray has no cluster storage URI"),
    "labels": ((None, {}), "kray nodes have resources, not labels"),
    "_system_config": ((None, {}), "RayConfig settings are Ray's; krayd has its own "
                                   "(krayd --help)"),
    "_enable_object_reconstruction": ((False, True), ""),
    "_redis_max_memory": ((None,), "kray's GCS is not Redis"),
    "_redis_password": ((None, "5241590000000000", ""), "kray's GCS is not Redis"),
    "_plasma_directory": ((None,), "objects are memfds, not files"),
    "_node_ip_address": ((None, "127.0.0.1"), "a private krayd listens on a unix socket"),
    "_driver_object_store_memory": ((None,), "deprecated in Ray"),
    "_memory": ((None,), "kray has no memory resource"),
    "_temp_dir": ((None,), "krayd keeps its files in its runtime directory"),
    "_tracing_startup_hook": ((None,), "kray has no tracing hook"),
    "_node_name": ((None,), "kray names nodes by id"),
    "_skip_env_hook": ((False, True), ""),
    "_plasma_store_socket_name": ((None,), "objects are passed by fd"),
    # Ray 0.8's options that later releases dropped.
    "num_redis_shards": ((None,), "kray's GCS is not Redis"),
    "redis_max_clients": ((None,), "kray's GCS is not Redis"),
    "huge_pages": ((False,), "krayd uses transparent huge pages itself (thp setting)"),
    "include_java": ((False,), "kray's workers are C and Python"),
    "job_id": ((None,), "krayd assigns job ids"),
    "object_id_seed": ((None,), "object ids are (node, owner, seq, index)"),
    "redirect_worker_output": ((True, False), ""),
    "redirect_output": ((None, True, False), ""),
    "plasma_store_socket_name": ((None,), "objects are passed by fd"),
    "raylet_socket_name": ((None,), "use address= for krayd's socket"),
    "load_code_from_local": ((False, True), ""),
    "java_worker_options": ((None,), "kray's workers are C and Python"),
    "use_pickle": ((True, False), ""),
    "lru_evict": ((False, True), ""),
    "object_spilling_directory": ((None,), "krayd's spill directory is its spill-dir "
                                          "setting"),
}


def _metrics_interval(ms):
    import os
    import sys
    ms = int(ms)
    if ms <= 0:
        raise ValueError(f"metrics_report_interval_ms must be > 0, got {ms}")
    os.environ["KRAY_METRICS_REPORT_INTERVAL_MS"] = str(ms)  # and the workers started later
    mod = sys.modules.get("kray.util.metrics")
    if mod is not None:
        mod.REPORT_INTERVAL_S = ms / 1000.0


def _is_default(value, defaults):
    return any(value is d or (type(value) is type(d) and value == d) for d in defaults)


def init_options(kwargs, job_config=None, logging_level=None):
    """Takes Ray's init() keyword arguments beyond kray's own: returns a dict of the ones
    kray honours (address, include_dashboard, metrics_port, code_path), warns about the ones
    that mean nothing, and raises RuntimeError for names Ray never had (as Ray does)."""
    out = {}
    unknown = []
    for name, value in kwargs.items():
        new = RENAMED.get(name)
        if new is not None:
            warnings.warn(f"kray.init: '{name}' is Ray's old name for '{new}'",
                          DeprecationWarning, stacklevel=3)
            if new == "address":
                out["address"] = value
                continue
            name = new
        if name == "_metrics_export_port":
            if value is not None:
                out["metrics_port"] = int(value)
            continue
        if name == "_system_config" and isinstance(value, dict) and \
                "metrics_report_interval_ms" in value:
            # Honoured: how often kray.util.metrics sends a driver's and a long call's
            # updates (docs/observability.md); the rest means nothing here.
            _metrics_interval(value["metrics_report_interval_ms"])
            value = {k: v for k, v in value.items() if k != "metrics_report_interval_ms"}
        if name not in _NO_EFFECT:
            unknown.append(name)
            continue
        defaults, why = _NO_EFFECT[name]
        if not _is_default(value, defaults) and why:
            warnings.warn(f"kray.init: {name}={value!r} has no effect in kray: {why}",
                          RuntimeWarning, stacklevel=3)
    if unknown:
        raise RuntimeError(f"Unknown keyword argument(s): {', '.join(unknown)}")
    if job_config is not None:
        paths = getattr(job_config, "code_search_path", None) or []
        if paths:
            out["code_path"] = list(paths)
        if getattr(job_config, "runtime_env", None):
            out["runtime_env"] = job_config.runtime_env
    if logging_level is not None:
        logging.getLogger("kray").setLevel(logging_level)
    return out


class BaseID:
    """Ray's id types (``ray.ActorID``, ``ray.JobID``, ...): bytes with hex() and
    binary().  kray's ids have kray's sizes: a job 4 bytes, a node 4, a worker 8, a task
    12, an actor 16."""

    __slots__ = ("_b",)
    SIZE = 16

    def __init__(self, binary):
        if not isinstance(binary, bytes) or len(binary) != self.SIZE:
            raise ValueError(f"{type(self).__name__} takes {self.SIZE} bytes, got "
                             f"{binary!r:.60}")
        self._b = binary

    @classmethod
    def size(cls):
        return cls.SIZE

    @classmethod
    def from_binary(cls, binary):
        return cls(binary)

    @classmethod
    def from_hex(cls, hex_id):
        return cls(bytes.fromhex(hex_id))

    @classmethod
    def nil(cls):
        return cls(b"\xff" * cls.SIZE)

    @classmethod
    def from_random(cls):
        import os
        return cls(os.urandom(cls.SIZE))

    def is_nil(self):
        return self._b == b"\xff" * self.SIZE

    def binary(self):
        return self._b

    def hex(self):
        return self._b.hex()

    def __eq__(self, other):
        return type(self) is type(other) and self._b == other._b

    def __hash__(self):
        return hash((type(self).__name__, self._b))

    def __repr__(self):
        return f"{type(self).__name__}({self.hex()})"

    def __reduce__(self):
        return (type(self), (self._b,))


def _id_type(name, size):
    return type(name, (BaseID,), {"__slots__": (), "SIZE": size, "__module__": "kray"})


JobID = _id_type("JobID", 4)
NodeID = _id_type("NodeID", 4)
WorkerID = _id_type("WorkerID", 8)
TaskID = _id_type("TaskID", 12)
ActorID = _id_type("ActorID", 16)
ActorClassID = _id_type("ActorClassID", 16)
FunctionID = _id_type("FunctionID", 16)
PlacementGroupID = _id_type("PlacementGroupID", 16)
UniqueID = _id_type("UniqueID", 16)


class Language:
    """Ray's ``ray.Language``: the languages a remote function can be written in."""
    PYTHON = 0
    JAVA = 1
    CPP = 2


def _cross_language(what):
    def refuse(*args, **kwargs):
        from .exceptions import CrossLanguageError
        raise CrossLanguageError(f"kray has no Java or C++ workers: {what} cannot be "
                                 "called; C remote functions are kray.cfunction(name)")
    refuse.__name__ = what
    return refuse


java_function = _cross_language("java_function")
java_actor_class = _cross_language("java_actor_class")
cpp_function = _cross_language("cpp_function")

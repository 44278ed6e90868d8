# SPDX-License-Identifier: Apache-2.0
"""runtime_env (Ray's runtime environments) on kray: ``env_vars``, ``working_dir``,
``py_modules`` and ``worker_process_setup_hook`` for a job (``init(runtime_env=...)``),
a task or an actor, given as a dict or a kray.runtime_env.RuntimeEnv (whose checks both
go through: validate()).

The driver packs an environment once: variables as they are, each directory (or .zip)
zipped into one object of the store.  The packed form (archives named by their hash)
travels in the function's blob (kray._remote._Blob), and the archives' refs go as the last
top-level arguments of each call that uses them, so krayd brings them to whichever node
runs the call (nested refs would not cross nodes).  The worker unpacks each archive once
into its cache (keyed by the hash) and applies the environment around the call: a task's
for the call only, an actor's for the life of its process.  Tasks submitted from inside inherit the environment they run in,
merged with their own as Ray merges (``env_vars`` key by key, other fields replaced).
"""
import os
import sys

# fnmatch, hashlib, io, tempfile and zipfile are imported where a directory is packed or
# unpacked: every worker imports this module, and those imports are a third of the
# package's import time (a Python worker's first task pays it).

FIELDS = {"env_vars", "working_dir", "py_modules", "excludes", "config",
          "worker_process_setup_hook"}
# Fields Ray installs from the network: kray's machines install with apt.
_INSTALLERS = {"pip", "conda", "uv", "container", "image_uri", "java_jars", "docker"}
# Ray's bookkeeping fields, which change nothing here.
_IGNORED = {"_ray_release", "_ray_commit", "_inject_current_ray"}
MAX_ARCHIVE = 512 << 20  # bytes of one zipped directory

# The environment the current code runs in (the job's in a driver, the call's in a worker).
current = [None]
# Directories packed by this driver: (session, path, excludes) -> Packed.
_packed = {}


# sha -> (session, the archive's ref): what this process put.
_refs = {}
# sha -> the archive as the current call received it (a worker re-puts it for children).
_items = {}


class Hook:
    """A worker_process_setup_hook as it travels: "module.function", or a callable
    pickled (unpickled where it runs, once the driver's sys.path and the environment's
    directories are in place), and its name; run once per worker process."""

    __slots__ = ("name", "data")

    def __init__(self, name, data):
        self.name, self.data = name, data

    def __reduce__(self):
        return (Hook, (self.name, self.data))

    def __repr__(self):
        return self.name


def _hook(h):
    if isinstance(h, Hook):
        return h
    if isinstance(h, str):
        return Hook(h, None)
    import hashlib
    import cloudpickle
    data = cloudpickle.dumps(h, protocol=5)
    # Named by what it does: the same function from two drivers is one hook.
    sha = hashlib.sha256(data).hexdigest()[:16]
    return Hook(f"{getattr(h, '__module__', '?')}.{getattr(h, '__qualname__', '?')}"
                f"#{sha}", data)


# The setup hooks this process ran (by name).
_hooks_run = set()


def _run_hook(h):
    if h.name in _hooks_run:
        return
    from .exceptions import RuntimeEnvSetupError
    try:
        if h.data is not None:
            import cloudpickle
            fn = cloudpickle.loads(h.data)
        else:
            import importlib
            mod, _, attr = h.name.rpartition(".")
            if not mod:
                raise ValueError(f"{h.name!r} is not 'module.function'")
            fn = getattr(importlib.import_module(mod), attr)
        fn()
    except Exception as e:
        raise RuntimeEnvSetupError(f"runtime_env's worker_process_setup_hook "
                                   f"{h.name.split('#')[0]} failed: "
                                   f"{type(e).__name__}: {e}") from e
    _hooks_run.add(h.name)


class Packed:
    """A directory shipped through the object store, named by its archive's hash."""

    __slots__ = ("sha", "name")

    def __init__(self, sha, name):
        self.sha, self.name = sha, name

    def __reduce__(self):
        return (Packed, (self.sha, self.name))

    def __repr__(self):
        return f"kray://{self.sha[:16]}/{self.name}"


def check(env):
    """A runtime_env as given (a dict or a kray.runtime_env.RuntimeEnv) as a RuntimeEnv,
    checked as Ray checks it (where Ray does: @remote, .options(), init)."""
    from .runtime_env import RuntimeEnv
    if isinstance(env, RuntimeEnv):
        return env
    if hasattr(env, "to_dict"):
        env = env.to_dict()
    if not isinstance(env, dict):
        raise TypeError(f"runtime_env must be a dict or a RuntimeEnv, got "
                        f"{type(env).__name__}")
    if not all(isinstance(k, str) for k in env):
        raise TypeError("runtime_env's fields are named by strings")
    return RuntimeEnv(**env)


def validate(env):
    """check(env), then what kray can do with it (where it is used); a plain dict."""
    if env is None:
        return None
    env = check(env)
    out = {}
    for k, v in env.items():
        if k in _INSTALLERS:
            from .exceptions import RuntimeEnvSetupError
            raise RuntimeEnvSetupError(
                f"runtime_env '{k}' is not supported by kray: it does not install packages "
                "(install them on every node, e.g. with apt, or ship code with "
                "'working_dir' or 'py_modules')")
        if k in _IGNORED:
            continue
        if k not in FIELDS:
            raise ValueError(f"unknown runtime_env field '{k}' (kray supports "
                             f"{', '.join(sorted(FIELDS))})")
        out[k] = dict(v) if k == "config" else v
    return out


def merge(parent, child):
    """child over parent, as Ray: env_vars merged key by key, other fields replaced."""
    if not parent:
        return child or None
    if not child:
        return parent
    out = dict(parent)
    for k, v in child.items():
        if k == "env_vars" and parent.get("env_vars"):
            out[k] = {**parent["env_vars"], **v}
        else:
            out[k] = v
    return out


def _zip_dir(path, excludes):
    import io
    import zipfile
    buf = io.BytesIO()
    base = os.path.basename(os.path.normpath(path))
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        if os.path.isfile(path):
            z.write(path, base)
        for root, dirs, files in os.walk(path):
            rel_root = os.path.relpath(root, path)
            dirs[:] = sorted(d for d in dirs if not _excluded(os.path.join(rel_root, d),
                                                               excludes))
            for f in sorted(files):
                rel = os.path.normpath(os.path.join(rel_root, f))
                if not _excluded(rel, excludes):
                    z.write(os.path.join(root, f), rel)
                    if buf.tell() > MAX_ARCHIVE:
                        raise ValueError(f"runtime_env: {path} is over "
                                         f"{MAX_ARCHIVE >> 20} MiB zipped")
    return buf.getvalue()


def _excluded(rel, excludes):
    import fnmatch
    rel = rel.lstrip("./") if rel.startswith("./") else rel
    name = os.path.basename(rel)
    return name == "__pycache__" or any(
        fnmatch.fnmatch(rel, p.strip("/")) or fnmatch.fnmatch(name, p.strip("/"))
        for p in excludes)


def _pack_path(path, excludes, as_module):
    import hashlib
    import io
    import zipfile
    from . import _remote, put
    if not isinstance(path, str):
        path = getattr(path, "__path__", [None])[0] or getattr(path, "__file__", None)
        if path is None:
            raise TypeError("py_modules entries are paths or imported modules")
    if "://" in path:  # Ray's s3://, gs://, https://, gcs:// packages
        raise ValueError(f"runtime_env: {path} is a URI: kray ships local directories, "
                         ".zip files and modules, and downloads nothing (fetch it first)")
    path = os.path.abspath(os.path.expanduser(path))
    key = (_remote.session[0], path, tuple(excludes), as_module)
    p = _packed.get(key)
    if p is not None:
        return p
    if not os.path.exists(path):
        raise ValueError(f"runtime_env: {path} does not exist")
    if path.endswith(".zip") and os.path.isfile(path):
        with open(path, "rb") as f:
            data = f.read()
    elif as_module:  # the module's own directory (or file) inside the archive
        buf = io.BytesIO()
        parent = os.path.dirname(path)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            inner = zipfile.ZipFile(io.BytesIO(_zip_dir(path, excludes)))
            prefix = "" if os.path.isfile(path) else os.path.relpath(path, parent) + "/"
            for item in inner.infolist():
                z.writestr(prefix + item.filename, inner.read(item))
        data = buf.getvalue()
    else:
        data = _zip_dir(path, excludes)
    sha = hashlib.sha256(data).hexdigest()
    _refs[sha] = (_remote.session[0], put(data))
    p = _packed[key] = Packed(sha, os.path.basename(path))
    return p


def _archives(packed):
    out = [packed["working_dir"]] if packed.get("working_dir") else []
    return out + list(packed.get("py_modules", ()))


def archive_refs(packed):
    """The refs a call with this environment passes as its last arguments (a worker puts
    again the archives its own call received, for the tasks it submits)."""
    from . import _remote, _serial, put
    refs = []
    for p in _archives(packed or {}):
        had = _refs.get(p.sha)
        if had is None or had[0] != _remote.session[0]:
            had = _refs[p.sha] = (_remote.session[0], put(_serial.decode(_items[p.sha])))
        refs.append(had[1])
    return refs


def count(packed):
    """How many archive arguments a call with this environment ends with."""
    return len(_archives(packed)) if packed else 0


def pack(env):
    """The environment with its directories in the store, ready to ship (cached)."""
    if not env:
        return None
    out = {}
    excludes = list(env.get("excludes") or [])
    if env.get("env_vars"):
        out["env_vars"] = dict(env["env_vars"])
    wd = env.get("working_dir")
    if wd is not None:
        out["working_dir"] = wd if isinstance(wd, Packed) else _pack_path(wd, excludes, False)
    mods = env.get("py_modules")
    if mods:
        out["py_modules"] = [m if isinstance(m, Packed) else _pack_path(m, excludes, True)
                             for m in mods]
    if env.get("config"):
        out["config"] = env["config"]
    if env.get("worker_process_setup_hook") is not None:
        out["worker_process_setup_hook"] = _hook(env["worker_process_setup_hook"])
    return out or None


def key(packed):
    """A hashable name of a packed environment (blobs are cached by it)."""
    if not packed:
        return None
    ev = tuple(sorted(packed.get("env_vars", {}).items()))
    wd = packed.get("working_dir")
    mods = tuple(m.sha for m in packed.get("py_modules", ()))
    hook = packed.get("worker_process_setup_hook")
    return (ev, wd.sha if wd else None, mods, hook.name if hook else None)


def public(packed):
    """What get_runtime_context().runtime_env shows."""
    if not packed:
        return {}
    out = dict(packed)
    if "working_dir" in out:
        out["working_dir"] = repr(out["working_dir"])
    if "py_modules" in out:
        out["py_modules"] = [repr(m) for m in out["py_modules"]]
    if "worker_process_setup_hook" in out:  # its name, as Ray shows it
        out["worker_process_setup_hook"] = out["worker_process_setup_hook"].name.split("#")[0]
    return out


# ---- the worker's side ----------------------------------------------------------------

def _cache_dir():
    import tempfile
    d = os.environ.get("KRAY_RUNTIME_ENV_DIR") or os.path.join(
        tempfile.gettempdir(), f"kray-runtime-env-{os.getuid()}")
    os.makedirs(d, mode=0o700, exist_ok=True)
    st = os.lstat(d)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"runtime_env cache {d} is not this user's private directory")
    return d


def _unpacked(p):
    import hashlib
    import io
    import tempfile
    import zipfile
    """The directory p's archive is unpacked in (once per worker machine)."""
    from . import _serial
    target = os.path.join(_cache_dir(), p.sha)
    if not os.path.isdir(target):
        data = _serial.decode(_items[p.sha])
        if hashlib.sha256(data).hexdigest() != p.sha:
            raise ValueError("runtime_env: an archive arrived damaged")
        tmp = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=".unpack-")
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                if name.startswith("/") or ".." in name.split("/"):
                    raise ValueError(f"runtime_env: unsafe path {name!r} in an archive")
            z.extractall(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another worker unpacked it first
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return target


class applied:
    """Applies a packed environment around a call (keep: for the process's life); items
    are the call's last arguments, its archives (count(packed) of them)."""

    def __init__(self, packed, items=(), keep=False):
        self.packed, self.keep = packed, keep
        for p, item in zip(_archives(packed or {}), items):
            _items[p.sha] = item

    def __enter__(self):
        p = self.packed
        self.prev_current = current[0]
        current[0] = p
        self.saved_env, self.paths, self.cwd = {}, [], None
        if not p:
            return self
        try:
            for k, v in p.get("env_vars", {}).items():
                self.saved_env[k] = os.environ.get(k)
                os.environ[k] = v
            for m in p.get("py_modules", ()):
                self.paths.append(_unpacked(m))
            wd = p.get("working_dir")
            if wd is not None:
                d = _unpacked(wd)
                self.cwd = os.getcwd()
                os.chdir(d)
                self.paths.insert(0, d)
            for d in reversed(self.paths):
                sys.path.insert(0, d)
            hook = p.get("worker_process_setup_hook")
            if hook is not None:  # once per process, with the environment in place
                _run_hook(hook)
        except BaseException:  # nothing of it stays applied (an actor's neither)
            self._undo()
            raise
        return self

    def __exit__(self, *exc):
        if not self.keep:
            self._undo()
        return False

    def _undo(self):
        current[0] = self.prev_current
        for k, v in self.saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for d in self.paths:
            try:
                sys.path.remove(d)
            except ValueError:
                pass
        if self.cwd is not None:
            os.chdir(self.cwd)

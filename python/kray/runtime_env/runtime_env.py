# SPDX-License-Identifier: Apache-2.0
"""``ray.runtime_env.RuntimeEnv`` and ``RuntimeEnvConfig``: a runtime environment as a
dict with Ray's fields, checked as Ray checks them (TypeError for a field of the wrong
type, ValueError for fields that exclude each other).

A RuntimeEnv goes wherever a dict goes (``init(runtime_env=...)``, ``.options(...)``,
``@remote(...)``); kray.\\_runtime_env.validate() takes both, through this class, so a
dict and a RuntimeEnv meet the same checks and the same errors.  What kray does with the
fields is kray.\\_runtime_env's: ``pip``, ``conda``, ``uv``, ``container`` and
``image_uri`` are accepted here, as Ray accepts them, and refused with
RuntimeEnvSetupError when used (kray installs nothing).
"""
import json
import os
import types
from collections import OrderedDict
from copy import deepcopy

DEFAULT_RUNTIME_ENV_TIMEOUT_SECONDS = 600

__all__ = ["RuntimeEnv", "RuntimeEnvConfig"]


class RuntimeEnvConfig(dict):
    """Settings of setting a runtime environment up: ``setup_timeout_seconds`` (> 0, or
    -1 for none) and ``eager_install``.  kray sets an environment up by unzipping its
    directories where the call runs, so both are checked and kept, and change nothing."""

    known_fields = {"setup_timeout_seconds", "eager_install"}

    _default_config = {"setup_timeout_seconds": DEFAULT_RUNTIME_ENV_TIMEOUT_SECONDS,
                       "eager_install": True}

    def __init__(self, setup_timeout_seconds=DEFAULT_RUNTIME_ENV_TIMEOUT_SECONDS,
                 eager_install=True):
        super().__init__()
        if not isinstance(setup_timeout_seconds, int):
            raise TypeError("setup_timeout_seconds must be of type int, "
                            f"got: {type(setup_timeout_seconds)}")
        if setup_timeout_seconds <= 0 and setup_timeout_seconds != -1:
            raise ValueError("setup_timeout_seconds must be greater than zero or equals "
                             f"to -1, got: {setup_timeout_seconds}")
        self["setup_timeout_seconds"] = setup_timeout_seconds
        if not isinstance(eager_install, bool):
            raise TypeError(f"eager_install must be a boolean. got {type(eager_install)}")
        self["eager_install"] = eager_install

    @staticmethod
    def parse_and_validate_runtime_env_config(config):
        if isinstance(config, RuntimeEnvConfig):
            return config
        if isinstance(config, dict):
            unknown = set(config) - RuntimeEnvConfig.known_fields
            if unknown:
                import logging
                logging.getLogger(__name__).warning(
                    "The following unknown entries in the runtime_env_config dictionary "
                    f"will be ignored: {unknown}.")
            return RuntimeEnvConfig(**{k: v for k, v in config.items()
                                       if k in RuntimeEnvConfig.known_fields})
        raise TypeError("runtime_env['config'] must be of type dict or RuntimeEnvConfig, "
                        f"got: {type(config)}")

    @classmethod
    def default_config(cls):
        return cls(**cls._default_config)

    def to_dict(self):
        return dict(deepcopy(self))


# ---- Ray's checks of each field (None: the field is left out, as Ray leaves out empty
# env_vars, excludes and pip) -----------------------------------------------------------

def _uri(uri):
    # kray also takes imported modules in py_modules (their directory is shipped).
    if not isinstance(uri, str) and not isinstance(uri, types.ModuleType):
        raise TypeError(f"URIs for working_dir and py_modules must be strings, got "
                        f"{type(uri)}.")


def _py_modules(mods):
    if not isinstance(mods, list):
        raise TypeError(f"`py_modules` must be a list of strings, got {type(mods)}.")
    for m in mods:
        _uri(m)
    return mods


def _working_dir(wd):
    if not isinstance(wd, str):
        raise TypeError(f"`working_dir` must be a string, got {type(wd)}.")
    return wd


def _excludes(ex):
    if isinstance(ex, list) and not ex:
        return None
    if isinstance(ex, list) and all(isinstance(p, str) for p in ex):
        return ex
    raise TypeError(f"runtime_env['excludes'] must be of type List[str], got {type(ex)}")


def _conda(conda):
    if isinstance(conda, str):
        if os.path.splitext(conda)[1] in (".yaml", ".yml") and not os.path.isfile(conda):
            raise ValueError(f"Can't find conda YAML file {conda}.")
        return conda
    if isinstance(conda, dict):
        return conda
    raise TypeError(f"runtime_env['conda'] must be of type str or dict, got {type(conda)}.")


def _requirements(path):
    if not os.path.isfile(path):
        raise ValueError(f"{path} is not a valid file")
    with open(path) as f:
        return f.read().strip().split("\n")


def _packages(value, field):
    """Ray's pip / uv: a list of requirements, a requirements file, or a dict with
    "packages" -> {"packages": [...], ...}, or None when there are none."""
    if isinstance(value, str):
        out = {"packages": _requirements(value)}
    elif isinstance(value, list) and all(isinstance(d, str) for d in value):
        out = {"packages": value}
    elif isinstance(value, dict):
        allowed = {"packages", "pip_check", "pip_version"} if field == "pip" else \
            {"packages", "uv_version", "uv_check", "uv_pip_install_options"}
        if set(value) - allowed:
            raise ValueError(f"runtime_env['{field}'] can only have these fields: "
                             f"{', '.join(sorted(allowed))}, but got: {list(value)}")
        if f"{field}_check" in value and not isinstance(value[f"{field}_check"], bool):
            raise TypeError(f"runtime_env['{field}']['{field}_check'] must be of type "
                            f"bool, got {type(value[f'{field}_check'])}")
        if f"{field}_version" in value and not isinstance(value[f"{field}_version"], str):
            raise TypeError(f"runtime_env['{field}']['{field}_version'] must be of type "
                            f"str, got {type(value[f'{field}_version'])}")
        if "packages" not in value:
            raise ValueError(f"runtime_env['{field}'] must include field 'packages', but "
                             f"got {value}")
        out = dict(value)
        if isinstance(value["packages"], str):
            out["packages"] = _requirements(value["packages"])
        elif not isinstance(value["packages"], list):
            raise ValueError(f"runtime_env['{field}']['packages'] must be of type str of "
                             f"list, got: {type(value['packages'])}")
    else:
        raise TypeError(f"runtime_env['{field}'] must be of type str or List[str], got "
                        f"{type(value)}")
    out.setdefault(f"{field}_check", False)
    out["packages"] = list(OrderedDict.fromkeys(out["packages"]))
    return out if out["packages"] else None


def _env_vars(ev):
    if not isinstance(ev, dict):
        raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], got "
                        f"{type(ev)}")
    if not ev:
        return None
    for k, v in ev.items():
        if not isinstance(k, str):
            raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], but "
                            f"the key {k} is of type {type(k)}")
        if not isinstance(v, str):
            raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], but "
                            f"the value {v} is of type {type(v)}")
    return ev


def _setup_hook(hook):
    if not (callable(hook) or isinstance(hook, str)):
        raise TypeError("runtime_env['worker_process_setup_hook'] must be a callable or "
                        f"a string (module.function), got {type(hook)}")
    return hook


def _image_uri(uri):
    if not isinstance(uri, str):
        raise TypeError(f"runtime_env['image_uri'] must be of type str, got {type(uri)}")
    return uri


# Field -> its check, in the order Ray checks them.
OPTION_TO_VALIDATION_FN = {
    "py_modules": _py_modules,
    "working_dir": _working_dir,
    "excludes": _excludes,
    "conda": _conda,
    "pip": lambda v: _packages(v, "pip"),
    "uv": lambda v: _packages(v, "uv"),
    "env_vars": _env_vars,
    "container": lambda v: v,
    "image_uri": _image_uri,
    "worker_process_setup_hook": _setup_hook,
    "config": RuntimeEnvConfig.parse_and_validate_runtime_env_config,
}


class RuntimeEnv(dict):
    """A runtime environment for a job, a task or an actor, used as a dict is:

        ray.init(runtime_env=RuntimeEnv(env_vars={"STAGE": "test"}))
        f.options(runtime_env=RuntimeEnv(working_dir="./project")).remote()

    Fields: py_modules, working_dir, excludes, env_vars, config (what kray honours),
    pip, uv, conda, container, image_uri (Ray's installers: accepted here, refused with
    RuntimeEnvSetupError when used), worker_process_setup_hook, nsight, java_jars, mpi,
    and any other keyword (a plugin's field, kept)."""

    known_fields = {"py_modules", "java_jars", "working_dir", "conda", "pip", "uv",
                    "container", "excludes", "env_vars", "_ray_release", "_ray_commit",
                    "_inject_current_ray", "config", "docker", "worker_process_setup_hook",
                    "_nsight", "mpi", "image_uri"}

    extensions_fields = {"_ray_release", "_ray_commit", "_inject_current_ray"}

    def __init__(self, *, py_modules=None, working_dir=None, pip=None, conda=None,
                 container=None, env_vars=None, worker_process_setup_hook=None,
                 nsight=None, config=None, _validate=True, mpi=None, image_uri=None,
                 uv=None, **kwargs):
        super().__init__()
        env = kwargs
        for k, v in (("py_modules", py_modules), ("working_dir", working_dir),
                     ("pip", pip), ("uv", uv), ("conda", conda), ("_nsight", nsight),
                     ("container", container), ("env_vars", env_vars),
                     ("config", config),
                     ("worker_process_setup_hook", worker_process_setup_hook),
                     ("mpi", mpi), ("image_uri", image_uri)):
            if v is not None:
                env[k] = v
        dict.update(self, env)
        if not _validate:
            return
        if sum(self.get(k) is not None for k in ("pip", "conda", "uv")) > 1:
            raise ValueError(
                "The 'pip' field, 'uv' field, and 'conda' field of runtime_env cannot be "
                f"specified at the same time.\nspecified pip field: {self.get('pip')}\n"
                f"specified conda field: {self.get('conda')}\n"
                f"specified uv field: {self.get('uv')}\n"
                "To use pip with conda, please only set the 'conda' field, and specify "
                "your pip dependencies within the conda YAML config dict.")
        for alone in ("container", "image_uri"):
            if self.get(alone):
                others = set(env) - {alone, "config", "env_vars"}
                if others:
                    raise ValueError(f"The '{alone}' field currently cannot be used "
                                     "together with other fields of runtime_env. "
                                     f"Specified fields: {others}")
        for option in OPTION_TO_VALIDATION_FN:
            value = dict.get(self, option)
            if value is not None:
                dict.__delitem__(self, option)
                self[option] = value
        if all(v is None for v in self.values()):
            self.clear()

    def __setitem__(self, key, value):
        from dataclasses import asdict, is_dataclass
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        check = OPTION_TO_VALIDATION_FN.get(key)
        if check is not None:
            value = check(value)
            if value is None:
                return
        dict.__setitem__(self, key, value)

    def __reduce__(self):
        # Rebuilt as it was, without checking again (a worker may lack a requirements
        # file the driver read).
        return (_rebuild, (type(self), dict(self)))

    def set(self, name, value):
        self.__setitem__(name, value)

    def get(self, name, default=None, data_class=None):
        if name not in self:
            return default
        if data_class is None:
            return self[name]
        return data_class(**self[name])

    @classmethod
    def deserialize(cls, serialized_runtime_env):
        return cls(_validate=False, **json.loads(serialized_runtime_env))

    def serialize(self):
        return json.dumps(type(self)(_validate=True, **self), sort_keys=True)

    def to_dict(self):
        out = dict(deepcopy(self))
        if out.get("config"):
            out["config"] = dict(out["config"])
        return out

    def has_working_dir(self):
        return self.get("working_dir") is not None

    def working_dir_uri(self):
        return self.get("working_dir")

    def working_dir(self):
        return self.get("working_dir", "")

    def py_modules_uris(self):
        return list(self.get("py_modules") or ())

    def py_modules(self):
        return list(self.get("py_modules") or ())

    def java_jars(self):
        return list(self.get("java_jars") or ())

    def plugin_uris(self):
        return []

    def env_vars(self):
        return self.get("env_vars", {})

    def has_conda(self):
        return bool(self.get("conda"))

    def conda_env_name(self):
        c = self.get("conda")
        return c if isinstance(c, str) and c else None

    def conda_config(self):
        c = self.get("conda")
        return json.dumps(c, sort_keys=True) if isinstance(c, dict) and c else None

    def has_pip(self):
        return bool(self.get("pip"))

    def has_uv(self):
        return bool(self.get("uv"))

    def virtualenv_name(self):
        p = self.get("pip")
        return p if isinstance(p, str) and p else None

    def pip_config(self):
        p = self.get("pip")
        return p if isinstance(p, dict) and p else {}

    def uv_config(self):
        u = self.get("uv")
        return u if isinstance(u, dict) and u else {}

    def mpi(self):
        return self.get("mpi")

    def nsight(self):
        return self.get("_nsight")

    def image_uri(self):
        return self.get("image_uri")

    def has_py_container(self):
        return bool(self.get("container"))

    def py_container_image(self):
        return self["container"].get("image", "") if self.has_py_container() else None

    def py_container_worker_path(self):
        return self["container"].get("worker_path", "") if self.has_py_container() else None

    def py_container_run_options(self):
        return self["container"].get("run_options", []) if self.has_py_container() else None

    def get_extension(self, key):
        if key not in RuntimeEnv.extensions_fields:
            raise ValueError(f"Extension key must be one of "
                             f"{RuntimeEnv.extensions_fields}, got: {key}")
        return self.get(key)

    def plugins(self):
        return [(k, v) for k, v in self.items() if k not in self.known_fields]


def _rebuild(cls, items):
    env = cls(_validate=False)
    dict.update(env, items)
    return env

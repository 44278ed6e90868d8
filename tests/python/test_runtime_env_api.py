# SPDX-License-Identifier: Apache-2.0
"""kray.runtime_env (Ray's ray.runtime_env): RuntimeEnv and RuntimeEnvConfig, their checks
(Ray's errors), and RuntimeEnv objects wherever a runtime_env dict goes."""
import os
import pickle

import pytest

import kray
from kray.runtime_env import RuntimeEnv, RuntimeEnvConfig


def test_runtime_env_is_a_dict_of_rays_fields():
    env = RuntimeEnv(env_vars={"A": "1"}, working_dir="/tmp", py_modules=["/x"],
                     excludes=["*.log"], config={"setup_timeout_seconds": 30})
    assert isinstance(env, dict)
    assert env["env_vars"] == {"A": "1"} and env["working_dir"] == "/tmp"
    assert isinstance(env["config"], RuntimeEnvConfig)
    assert env["config"] == {"setup_timeout_seconds": 30, "eager_install": True}
    d = env.to_dict()
    assert type(d) is dict and type(d["config"]) is dict
    assert d == {"env_vars": {"A": "1"}, "working_dir": "/tmp", "py_modules": ["/x"],
                 "excludes": ["*.log"],
                 "config": {"setup_timeout_seconds": 30, "eager_install": True}}
    d["env_vars"]["A"] = "changed"  # a deep copy
    assert env["env_vars"] == {"A": "1"}

    # Helpers.
    assert env.has_working_dir() and env.working_dir_uri() == "/tmp"
    assert env.py_modules() == ["/x"] and env.env_vars() == {"A": "1"}
    assert not env.has_pip() and not env.has_conda() and env.plugins() == []
    assert RuntimeEnv(my_plugin={"a": 1}).plugins() == [("my_plugin", {"a": 1})]
    assert RuntimeEnv().working_dir() == "" and RuntimeEnv().py_modules() == []

    # Empty values are left out, as Ray leaves them out.
    assert RuntimeEnv(env_vars={}, excludes=[], pip=[]) == {}
    assert RuntimeEnv() == {}

    # pip is normalised as Ray does: a dict of packages, duplicates dropped.
    assert RuntimeEnv(pip=["a", "b", "a"])["pip"] == {"packages": ["a", "b"],
                                                      "pip_check": False}
    assert RuntimeEnv(pip=["a"]).has_pip()
    assert RuntimeEnv(conda="myenv").conda_env_name() == "myenv"

    # set() / item assignment check the value as the constructor does.
    env["env_vars"] = {"B": "2"}
    assert env.env_vars() == {"B": "2"}
    with pytest.raises(TypeError):
        env["env_vars"] = {"B": 2}
    env.set("excludes", ["*.tmp"])
    assert env.get("excludes") == ["*.tmp"] and env.get("nope", 5) == 5


def test_serialize_and_pickle():
    env = RuntimeEnv(env_vars={"A": "1"}, config=RuntimeEnvConfig(setup_timeout_seconds=5))
    s = env.serialize()
    assert isinstance(s, str)
    back = RuntimeEnv.deserialize(s)
    assert isinstance(back, RuntimeEnv) and back == env
    p = pickle.loads(pickle.dumps(env))
    assert isinstance(p, RuntimeEnv) and p == env
    assert isinstance(pickle.loads(pickle.dumps(env["config"])), RuntimeEnvConfig)


@pytest.mark.parametrize("fields, error, match", [
    ({"env_vars": {"A": 1}}, TypeError, r"env_vars'\] must be of type Dict\[str, str\]"),
    ({"env_vars": {1: "a"}}, TypeError, r"env_vars'\] must be of type Dict\[str, str\]"),
    ({"env_vars": "A=1"}, TypeError, "env_vars"),
    ({"working_dir": 1}, TypeError, "`working_dir` must be a string"),
    ({"py_modules": "/x"}, TypeError, "`py_modules` must be a list of strings"),
    ({"py_modules": [1]}, TypeError, "URIs for working_dir and py_modules must be strings"),
    ({"excludes": "*.log"}, TypeError, r"excludes'\] must be of type List\[str\]"),
    ({"pip": 1}, TypeError, r"pip'\] must be of type str or List\[str\]"),
    ({"pip": {"pkgs": []}}, ValueError, "can only have these fields"),
    ({"pip": {"packages": ["a"], "pip_check": "yes"}}, TypeError, "pip_check"),
    ({"pip": "/no/such/requirements.txt"}, ValueError, "is not a valid file"),
    ({"conda": 1}, TypeError, r"conda'\] must be of type str or dict"),
    ({"conda": "/no/such/env.yaml"}, ValueError, "Can't find conda YAML file"),
    ({"pip": ["a"], "conda": "c"}, ValueError, "cannot be specified at the same time"),
    ({"container": {"image": "x"}, "working_dir": "/tmp"}, ValueError,
     "'container' field currently cannot be used together"),
    ({"image_uri": "x", "py_modules": ["/x"]}, ValueError,
     "'image_uri' field currently cannot be used together"),
    ({"config": 5}, TypeError, r"config'\] must be of type dict or RuntimeEnvConfig"),
    ({"config": {"setup_timeout_seconds": "5"}}, TypeError,
     "setup_timeout_seconds must be of type int"),
    ({"worker_process_setup_hook": 5}, TypeError, "worker_process_setup_hook"),
])
def test_rays_checks(fields, error, match):
    with pytest.raises(error, match=match):
        RuntimeEnv(**fields)


def test_runtime_env_config():
    c = RuntimeEnvConfig()
    assert c == {"setup_timeout_seconds": 600, "eager_install": True}
    assert RuntimeEnvConfig.default_config() == c
    assert RuntimeEnvConfig(setup_timeout_seconds=-1)["setup_timeout_seconds"] == -1
    for bad, error in ((0, ValueError), (-2, ValueError), (1.5, TypeError),
                       ("10", TypeError)):
        with pytest.raises(error, match="setup_timeout_seconds"):
            RuntimeEnvConfig(setup_timeout_seconds=bad)
    with pytest.raises(TypeError, match="eager_install must be a boolean"):
        RuntimeEnvConfig(eager_install=1)
    # A dict's unknown keys are left out (Ray logs a warning).
    parsed = RuntimeEnvConfig.parse_and_validate_runtime_env_config(
        {"eager_install": False, "other": 1})
    assert parsed == {"setup_timeout_seconds": 600, "eager_install": False}
    assert c.to_dict() == dict(c) and type(c.to_dict()) is dict


def test_runtime_env_objects_work_as_dicts(ray_start, tmp_path):
    ray = ray_start

    @ray.remote
    def env(name):
        return os.environ.get(name)

    assert ray.get(env.options(runtime_env=RuntimeEnv(env_vars={"KRAY_T": "opt"}))
                   .remote("KRAY_T")) == "opt"

    @ray.remote(runtime_env=RuntimeEnv(env_vars={"KRAY_T": "deco"}))
    def env2(name):
        return os.environ.get(name), \
            type(ray.get_runtime_context().runtime_env).__name__

    assert ray.get(env2.remote("KRAY_T")) == ("deco", "RuntimeEnv")

    (tmp_path / "data.txt").write_text("from working_dir")

    @ray.remote(runtime_env=RuntimeEnv(working_dir=str(tmp_path)))
    class Reader:
        def read(self):
            with open("data.txt") as f:
                return f.read()

        def env(self, name):
            return os.environ.get(name)

    r = Reader.remote()
    assert ray.get(r.read.remote()) == "from working_dir"
    r2 = Reader.options(runtime_env=RuntimeEnv(env_vars={"KRAY_A": "actor"})).remote()
    assert ray.get(r2.env.remote("KRAY_A")) == "actor"
    ray.kill(r)
    ray.kill(r2)


def test_unsupported_fields_refused_alike(ray_start):
    ray = ray_start

    @ray.remote
    def f():
        return 1

    # A RuntimeEnv and a dict meet the same checks and the same errors.
    for env in (RuntimeEnv(pip=["requests"]), {"pip": ["requests"]}):
        with pytest.raises(ray.exceptions.RuntimeEnvSetupError, match="'pip' is not "
                                                                      "supported by kray"):
            f.options(runtime_env=env).remote()
    for env in (RuntimeEnv(conda="base"), RuntimeEnv(container={"image": "x"}),
                RuntimeEnv(image_uri="x"), RuntimeEnv(uv=["x"])):
        with pytest.raises(ray.exceptions.RuntimeEnvSetupError, match="not supported"):
            f.options(runtime_env=env).remote()
    with pytest.raises(TypeError, match=r"must be of type Dict\[str, str\]"):
        f.options(runtime_env={"env_vars": {"A": 1}}).remote()
    with pytest.raises(ValueError, match="cannot be specified at the same time"):
        f.options(runtime_env={"pip": ["a"], "conda": "c"}).remote()
    with pytest.raises(TypeError, match="runtime_env must be a dict or a RuntimeEnv"):
        f.options(runtime_env=["env_vars"]).remote()
    with pytest.raises(ValueError, match="unknown runtime_env field 'no_such_field'"):
        f.options(runtime_env=RuntimeEnv(no_such_field=1)).remote()
    with pytest.raises(ValueError, match="is a URI: kray ships local directories"):
        f.options(runtime_env=RuntimeEnv(working_dir="s3://bucket/code.zip")).remote()
    assert ray.get(f.remote()) == 1  # krayd still serves


def test_checked_where_ray_checks(ray_start):
    ray = ray_start
    # At the decorator and at .options(), as Ray parses a runtime_env there.
    with pytest.raises(TypeError, match=r"must be of type Dict\[str, str\]"):
        @ray.remote(runtime_env={"env_vars": {"A": 1}})
        def f():
            return 1
    with pytest.raises(TypeError, match="`working_dir` must be a string"):
        @ray.remote(runtime_env={"working_dir": 5})
        class A:
            pass

    @ray.remote
    def g():
        return 1

    with pytest.raises(TypeError, match="`py_modules` must be a list"):
        g.options(runtime_env={"py_modules": "x"})

    # An installer field is Ray's: accepted there, refused where kray would use it.
    @ray.remote(runtime_env={"pip": ["requests"]})
    def h():
        return 1

    with pytest.raises(ray.exceptions.RuntimeEnvSetupError):
        h.remote()


def test_init_with_runtime_env_object(fresh):
    ray = fresh
    ray.init(num_cpus=1, runtime_env=RuntimeEnv(env_vars={"KRAY_JOB_T": "job"},
                                                config=RuntimeEnvConfig()))

    @ray.remote
    def env():
        return os.environ.get("KRAY_JOB_T")

    assert ray.get(env.remote()) == "job"
    ctx_env = ray.get_runtime_context().runtime_env
    assert isinstance(ctx_env, RuntimeEnv) and ctx_env["env_vars"] == {"KRAY_JOB_T": "job"}
    ray.shutdown()
    with pytest.raises(ray.exceptions.RuntimeEnvSetupError):
        ray.init(num_cpus=1, runtime_env=RuntimeEnv(pip=["x"]))


def test_module_is_rays_name():
    assert kray.runtime_env.RuntimeEnv is RuntimeEnv
    from kray.runtime_env.runtime_env import RuntimeEnvConfig as C
    assert C is RuntimeEnvConfig


def _mark_setup():
    os.environ["KRAY_HOOK_RAN"] = os.environ.get("KRAY_HOOK_RAN", "") + "x"


def test_worker_process_setup_hook(ray_start, tmp_path):
    ray = ray_start

    @ray.remote
    def read():
        return os.environ.get("KRAY_HOOK_RAN"), \
            ray.get_runtime_context().runtime_env.get("worker_process_setup_hook")

    # A callable: run once per worker process, before the call.
    env = RuntimeEnv(worker_process_setup_hook=_mark_setup)
    for _ in range(3):
        ran, shown = ray.get(read.options(runtime_env=env).remote())
        assert ran == "x"  # once, though the worker ran several calls
        assert shown.endswith("_mark_setup")

    # "module.function", found on the environment's own path.
    (tmp_path / "kray_hook_mod.py").write_text(
        "import os\n"
        "def setup():\n"
        "    os.environ['KRAY_HOOK_MOD'] = 'module hook'\n"
        "def broken():\n"
        "    raise RuntimeError('no setup today')\n")

    @ray.remote
    class Reader:
        def get(self):
            return os.environ.get("KRAY_HOOK_MOD")

    a = Reader.options(runtime_env={"working_dir": str(tmp_path),
                                    "worker_process_setup_hook": "kray_hook_mod.setup"}
                       ).remote()
    assert ray.get(a.get.remote()) == "module hook"
    ray.kill(a)

    # A hook that fails fails the call, with the hook's error.
    bad = {"working_dir": str(tmp_path), "worker_process_setup_hook": "kray_hook_mod.broken"}
    with pytest.raises(ray.exceptions.RuntimeEnvSetupError, match="no setup today"):
        ray.get(read.options(runtime_env=bad).remote())
    with pytest.raises(TypeError, match="worker_process_setup_hook"):
        read.options(runtime_env={"worker_process_setup_hook": 3}).remote()
    assert ray.get(read.remote())[1] is None  # krayd and its workers still serve

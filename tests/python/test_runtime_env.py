# SPDX-License-Identifier: Apache-2.0
"""runtime_env (issue 17, part 5): env_vars, working_dir and py_modules for a job, a task
or an actor; inherited by nested tasks; anonymous namespaces per job."""
import os

import pytest


@pytest.fixture
def code_dirs(tmp_path):
    wd = tmp_path / "project"
    wd.mkdir()
    (wd / "data.txt").write_text("from the working dir\n")
    (wd / "helper_wd.py").write_text("VALUE = 'helper in working_dir'\n")
    (wd / "skip.log").write_text("excluded\n")
    pkg = tmp_path / "libs" / "mypkg_rt"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("def hello():\n    return 'hello from py_modules'\n")
    return wd, pkg


def test_env_vars_for_a_task_and_an_actor(ray_start):
    ray = ray_start

    @ray.remote
    def read(name):
        return os.environ.get(name)

    @ray.remote
    class Reader:
        def read(self, name):
            return os.environ.get(name)

    env = {"env_vars": {"KRAY_RT_A": "task-value"}}
    assert ray.get(read.options(runtime_env=env).remote("KRAY_RT_A")) == "task-value"
    # The next task on the same worker does not see it.
    assert ray.get([read.remote("KRAY_RT_A") for _ in range(4)]) == [None] * 4
    r = Reader.options(runtime_env={"env_vars": {"KRAY_RT_B": "actor-value"}}).remote()
    assert ray.get([r.read.remote("KRAY_RT_B") for _ in range(3)]) == ["actor-value"] * 3


def test_job_runtime_env_merges_and_is_inherited(fresh):
    ray = fresh
    ray.init(num_cpus=2, runtime_env={"env_vars": {"JOB_VAR": "job", "BOTH": "job"}})

    @ray.remote
    def read():
        return (os.environ.get("JOB_VAR"), os.environ.get("BOTH"),
                ray.get_runtime_context().runtime_env["env_vars"]["BOTH"])

    @ray.remote
    def parent():
        return ray.get(read.remote())  # a child inherits what its parent runs with

    assert ray.get(read.remote()) == ("job", "job", "job")
    mine = read.options(runtime_env={"env_vars": {"BOTH": "task"}})
    assert ray.get(mine.remote()) == ("job", "task", "task")
    assert ray.get(parent.options(runtime_env={"env_vars": {"BOTH": "parent"}}).remote()) \
        == ("job", "parent", "parent")


def test_working_dir_and_py_modules(ray_start, code_dirs):
    ray = ray_start
    wd, pkg = code_dirs

    @ray.remote
    def look():
        import helper_wd
        import mypkg_rt
        return (open("data.txt").read().strip(), helper_wd.VALUE, mypkg_rt.hello(),
                os.path.exists("skip.log"))

    @ray.remote
    def parent():
        return ray.get(look.remote())  # the child inherits the directories

    env = {"working_dir": str(wd), "py_modules": [str(pkg)], "excludes": ["*.log"]}
    want = ("from the working dir", "helper in working_dir", "hello from py_modules", False)
    assert ray.get(look.options(runtime_env=env).remote()) == want
    assert ray.get(parent.options(runtime_env=env).remote()) == want


def test_unsupported_fields_are_refused(ray_start):
    ray = ray_start

    @ray.remote
    def f():
        return 1

    with pytest.raises(ray.exceptions.RuntimeEnvSetupError, match="pip"):
        f.options(runtime_env={"pip": ["requests"]}).remote()
    with pytest.raises(ValueError, match="unknown runtime_env field"):
        f.options(runtime_env={"no_such_field": 1}).remote()
    with pytest.raises(ValueError, match="does not exist"):
        f.options(runtime_env={"working_dir": "/no/such/dir"}).remote()


def test_namespace_is_anonymous_per_job(fresh):
    ray = fresh
    ray.init(num_cpus=1)
    ns = ray.get_runtime_context().namespace
    assert ns and ns.startswith("anon-")
    ray.shutdown()
    ray.init(num_cpus=1)
    assert ray.get_runtime_context().namespace != ns

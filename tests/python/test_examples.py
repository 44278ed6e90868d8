# SPDX-License-Identifier: Apache-2.0
"""The seed's two Ray examples, verbatim but for `import kray as ray`, each in its own
interpreter (examples/python/tasks.py and actors.py), and the resources example."""
import os
import subprocess
import sys

from conftest import ROOT, python_env


def run_example(name):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", name)],
                         env=python_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_task_example():
    src = open(os.path.join(ROOT, "examples", "python", "tasks.py")).read()
    assert "import kray as ray" in src and "@ray.remote" in src
    assert run_example("tasks.py") == "[0, 1, 4, 9]"


def test_actor_example():
    src = open(os.path.join(ROOT, "examples", "python", "actors.py")).read()
    assert "counters = [Counter.remote() for i in range(4)]" in src
    assert run_example("actors.py") == "[1, 1, 1, 1]"


def test_resources_example():
    out = run_example("resources.py").splitlines()
    assert out[0] == "cluster: {'CPU': 2.0, 'disk': 1.0}"
    started = {line.split()[0]: float(line.split()[3]) for line in out[1:]}
    assert abs(started["disk-2"] - started["disk-1"]) >= 0.45, started  # one disk
    assert started["no-cpu"] < started["two-cpus"], started  # 0 CPUs runs beside

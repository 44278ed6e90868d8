# SPDX-License-Identifier: Apache-2.0
"""The seed's two Ray examples, verbatim but for `import kray as ray`, each in its own
interpreter (examples/python/tasks.py and actors.py), and the resources and async actors
examples."""
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


def test_dag_example():
    """examples/python/dag.py: kray.dag's graph of two actors and three tasks."""
    assert run_example("dag.py").splitlines() == ["23", "[23, 4]", "41"]


def test_resources_example():
    out = run_example("resources.py").splitlines()
    assert out[0] == "cluster: {'CPU': 2.0, 'disk': 1.0}"
    started = {line.split()[0]: float(line.split()[3]) for line in out[1:]}
    assert abs(started["disk-2"] - started["disk-1"]) >= 0.45, started  # one disk
    assert started["no-cpu"] < started["two-cpus"], started  # 0 CPUs runs beside


def run_example_args(name, *args):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", name),
                          *args], env=python_env(), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_tune_ppo_example():
    """The seed's third program (kray.tune + kray.rllib), with a smaller network."""
    src = open(os.path.join(ROOT, "examples", "python", "tune_ppo.py")).read()
    assert "tune.run(PPOTrainer, config=config" in src
    assert "from kray.rllib.agents.ppo import PPOTrainer" in src
    last = run_example_args("tune_ppo.py", "--fast").splitlines()[-1]
    assert last.startswith("solved: episode_reward_mean"), last
    assert float(last.split()[2]) >= 195


def test_es_example():
    out = run_example_args("es_cartpole.py")
    assert float(out.splitlines()[0].split(": ")[1]) >= 195, out


def test_tune_sklearn_example():
    out = run_example_args("tune_sklearn.py").splitlines()
    best = [line for line in out if line.startswith("best config")][0]
    assert float(best.split("accuracy ")[1].split(";")[0]) > 0.9, best
    assert "5-fold cross validation on kray" in out[-1]


def test_async_actors_example():
    out = run_example("async_actors.py").splitlines()
    took = float(out[0].split(" in ")[1].split()[0])
    assert out[0].startswith("1000 concurrent 1 s calls: 1000 results") and took < 10, out
    assert out[1] == "sum of squares below 100: 328350"
    assert out[2].startswith("crawl: 285 on ")
    assert out[3].endswith(": ok") and out[4] == "downloads: " + str(["data"] * 6)


def test_ray_semantics_example():
    assert run_example("ray_semantics.py").splitlines() == [
        "hello from the working_dir (STAGE=demo)",
        "['letter 0', 'letter 1', 'letter 2']",
        "cancelled",
        "actor call cancelled, steps kept: True"]


def test_timeline_example(tmp_path):
    import json
    path = tmp_path / "t.json"
    out = run_example_args("timeline.py", str(path)).splitlines()
    # 12 tasks, the constructor, 12 calls; one that raised; one running
    assert out[0] == f"27 tasks written to {path}", out
    assert out[1] == "{'FAILED': 1, 'FINISHED': 25, 'RUNNING': 1}", out
    events = json.loads(path.read_text())["traceEvents"]
    assert sum(e["ph"] == "X" for e in events) == 27


def test_generators_example():
    assert run_example("generators.py").splitlines() == [
        "first item 0, task still running: True",
        "the rest: [1, 4, 9, 16]",
        "before the error: [0, 1]",
        "error at item 2: True",
        "lines: ['a', 'b', 'c']",
        "cancelled",
    ]


def test_task_timeout_example():
    out = run_example("task_timeout.py").splitlines()
    assert out[0].startswith("timed out after 1 s: ") and "timed out" in out[0][20:], out
    assert out[1] == "[0, 1, 4, 9]"


def test_placement_group_example():
    assert run_example("placement_group.py").splitlines() == [
        "group: CREATED", "shard 0 trained", "server: pong",
        "outside the group, while it holds the accels: waits",
        "after removal: shard 1 trained"]


def test_metrics_example():
    out = run_example_args("metrics.py").splitlines()
    assert 'ray_num_requests_total{route="/api"} 3' in out, out
    assert 'ray_num_requests_total{route="/"} 1' in out, out
    assert 'ray_request_latency_ms_count{route="/api"} 3' in out, out
    assert 'ray_request_latency_ms_bucket{route="/api",le="+Inf"} 3' in out, out
    assert 'ray_queue_size{queue="work"} 3' in out, out

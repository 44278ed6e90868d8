# SPDX-License-Identifier: Apache-2.0
"""kray.tune (issue 16): trainables, search spaces, schedulers (ASHA stops bad trials
early), errored trials, results files, checkpoints, max_failures, Ctrl-C and resume."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import python_env

from kray import tune
from kray.tune import TuneError


@pytest.fixture
def ray(ray_start):
    return ray_start


def _lines(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def test_function_trainable_grid_and_results_files(ray, tmp_path):
    def train(config):
        for i in range(3):
            tune.report(score=config["a"] * i + config["nested"]["b"])

    analysis = tune.run(train, config={"a": tune.grid_search([1, 2, 3]),
                                       "nested": {"b": tune.choice([10])}},
                        metric="score", mode="max", local_dir=str(tmp_path), verbose=0)
    assert len(analysis.trials) == 3
    assert analysis.best_config == {"a": 3, "nested": {"b": 10}}
    assert analysis.best_result["score"] == 16
    for t in analysis.trials:
        rows = _lines(os.path.join(t.logdir, "result.json"))
        assert [r["training_iteration"] for r in rows] == [1, 2, 3]
        assert rows[-1]["score"] == t.config["a"] * 2 + 10
        with open(os.path.join(t.logdir, "params.json")) as fh:
            assert json.load(fh) == t.config
        assert t.status == "TERMINATED"


def test_seeded_random_search_is_reproducible(ray, tmp_path):
    from kray.tune.search import BasicVariantGenerator

    space = {"lr": tune.loguniform(1e-4, 1e-1), "n": tune.randint(1, 100),
             "u": tune.uniform(-1, 1), "act": tune.choice(["relu", "tanh"]),
             "twice": tune.sample_from(lambda spec: spec.config.n * 2)}
    a = BasicVariantGenerator(random_state=7).variants(space, 5)
    b = BasicVariantGenerator(random_state=7).variants(space, 5)
    assert a == b and len(a) == 5
    for c in a:
        assert 1e-4 <= c["lr"] <= 1e-1 and 1 <= c["n"] < 100 and -1 <= c["u"] <= 1
        assert c["act"] in ("relu", "tanh") and c["twice"] == 2 * c["n"]
    with pytest.raises(ValueError, match="LogUniform"):
        tune.loguniform(0, 1)
    with pytest.raises(ValueError):
        tune.randint(5, 5)


class Counter(tune.Trainable):
    def setup(self, config):
        self.x = config["start"]

    def step(self):
        self.x += 1
        return {"x": self.x, "done": self.x >= self.config["start"] + 10}

    def save_checkpoint(self, checkpoint_dir):
        return {"x": self.x}

    def load_checkpoint(self, checkpoint):
        self.x = checkpoint["x"]


def test_class_trainable_tuner_checkpoints(ray, tmp_path):
    grid = tune.Tuner(
        Counter, param_space={"start": tune.grid_search([0, 100])},
        tune_config=tune.TuneConfig(metric="x", mode="max"),
        run_config=tune.RunConfig(stop={"training_iteration": 4}, local_dir=str(tmp_path),
                                  verbose=0, checkpoint_config=tune.CheckpointConfig(
                                      checkpoint_frequency=2))).fit()
    assert len(grid) == 2 and grid.num_errors == 0
    best = grid.get_best_result()
    assert best.metrics["x"] == 104 and best.config == {"start": 100}
    assert best.checkpoint is not None and best.checkpoint.to_dict() == {"x": 104}
    # The Trainable API used directly, save and restore included.
    t = Counter({"start": 5})
    assert t.train()["x"] == 6 and t.train()["training_iteration"] == 2
    path = t.save(str(tmp_path / "ck"))
    t2 = Counter({"start": 0})
    t2.restore(path)
    assert t2.train() ["x"] == 8 and t2.iteration == 3
    assert "TERMINATED" in grid.table()
    # A Trainable made without a logdir makes one only when asked, and stop() takes back
    # the one it made (empty): none is left behind in the temporary directory.
    t3 = Counter({"start": 0})
    assert t3._logdir is None
    d = t3.logdir
    assert os.path.isdir(d)
    t3.stop()
    assert not os.path.exists(d)


def test_asha_stops_bad_trials_early(ray, tmp_path):
    def train(config):
        for i in range(1, 21):
            tune.report(acc=config["quality"] * i)

    bad = [0.01 * k for k in range(1, 7)]
    good = [1.0, 1.1]
    sched = tune.ASHAScheduler(max_t=20, grace_period=2, reduction_factor=2)
    analysis = tune.run(train, config={"quality": tune.grid_search(good + bad)},
                        scheduler=sched, metric="acc", mode="max", local_dir=str(tmp_path),
                        verbose=0, max_concurrent_trials=2)
    iters = {t.config["quality"]: t.last_result["training_iteration"]
             for t in analysis.trials}
    stopped_early = [q for q in bad if iters[q] < 20]
    assert len(stopped_early) >= len(bad) / 2, iters
    assert iters[1.1] == 20, iters  # the best is never stopped (1.0 may be, behind it)
    assert analysis.best_config["quality"] == 1.1


def test_median_stopping_rule(ray, tmp_path):
    def train(config):
        for i in range(1, 11):
            tune.report(loss=config["loss"])

    rule = tune.MedianStoppingRule(time_attr="training_iteration", grace_period=2,
                                   min_samples_required=2)
    analysis = tune.run(train, config={"loss": tune.grid_search([1, 2, 3, 10, 20])},
                        scheduler=rule, metric="loss", mode="min", local_dir=str(tmp_path),
                        verbose=0, max_concurrent_trials=1)
    iters = {t.config["loss"]: t.last_result["training_iteration"] for t in analysis.trials}
    assert iters[1] == 10 and iters[2] == 10
    assert iters[10] < 10 and iters[20] < 10, iters


def test_errored_trial_recorded_others_go_on(ray, tmp_path):
    def train(config):
        if config["x"] == 2:
            raise ValueError("bad x")
        tune.report(y=config["x"])

    with pytest.raises(TuneError, match="Trials did not complete"):
        tune.run(train, config={"x": tune.grid_search([1, 2, 3])}, local_dir=str(tmp_path),
                 verbose=0)
    grid = tune.Tuner(train, param_space={"x": tune.grid_search([1, 2, 3])},
                      run_config=tune.RunConfig(local_dir=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 1 and grid.num_terminated == 2
    err = [r for r in grid if r.error is not None][0]
    assert err.config == {"x": 2} and "bad x" in str(err.error)
    assert "bad x" in open(os.path.join(err.path, "error.txt")).read()
    assert sorted(r.metrics["y"] for r in grid if r.error is None) == [1, 3]


def test_bad_input_messages(ray, tmp_path):
    def train(config):
        tune.report(other=1)

    with pytest.raises(TuneError, match="Unknown trainable 'NoSuchAlgo'"):
        tune.run("NoSuchAlgo", verbose=0, local_dir=str(tmp_path))
    with pytest.raises(ValueError, match="mode"):
        tune.run(train, metric="m", mode="maximum", verbose=0, local_dir=str(tmp_path))
    with pytest.raises(TypeError, match="unexpected keyword"):
        tune.run(train, confg={}, verbose=0)
    grid = tune.Tuner(train, tune_config=tune.TuneConfig(
        scheduler=tune.ASHAScheduler(), metric="acc", mode="max"),
        run_config=tune.RunConfig(local_dir=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 1 and "did not include the specified metric" in \
        str(grid[0].error)
    grid = tune.Tuner(train, run_config=tune.RunConfig(
        stop={"acc": 1}, local_dir=str(tmp_path), verbose=0)).fit()
    assert "Stopping criteria 'acc' not provided" in str(grid[0].error)
    with pytest.raises(TuneError, match="asks for 64 CPU"):
        tune.run(train, resources_per_trial={"cpu": 64}, verbose=0, local_dir=str(tmp_path))


def test_max_failures_restarts_from_checkpoint(ray, tmp_path):
    marker = str(tmp_path / "crashed")

    def train(config):
        ck = tune.get_checkpoint()
        start = ck.to_dict()["i"] if ck else 0
        for i in range(start, 6):
            if i == 3 and not os.path.exists(config["marker"]):
                open(config["marker"], "w").close()
                os._exit(1)  # the trial's actor dies
            tune.report({"i": i + 1}, checkpoint=tune.Checkpoint.from_dict({"i": i + 1}))

    analysis = tune.run(train, config={"marker": marker}, max_failures=1,
                        local_dir=str(tmp_path), verbose=0)
    t = analysis.trials[0]
    assert t.status == "TERMINATED" and t.num_failures == 1
    rows = _lines(os.path.join(t.logdir, "result.json"))
    assert [r["i"] for r in rows] == [1, 2, 3, 4, 5, 6]  # 4..6 after the restart, from 3
    os.unlink(marker)
    with pytest.raises(TuneError):  # no retries: the death is the trial's error
        tune.run(train, config={"marker": marker}, local_dir=str(tmp_path), verbose=0)


DRIVER = textwrap.dedent("""
    import os, sys, time
    import kray
    from kray import tune
    kray.init(num_cpus=2)
    out = sys.argv[1]

    def train(config):
        with open(os.path.join(out, f"ran-{config['i']}"), "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        slow = config["i"] >= 2 and not os.path.exists(os.path.join(out, "fast"))
        for step in range(3):
            time.sleep(3 if slow else 0.05)
            tune.report(step=step)

    print("START", flush=True)
    tune.run(train, config={"i": tune.grid_search(list(range(6)))},
             name="resumable", local_dir=out, verbose=0, resume=len(sys.argv) > 2)
    print("DONE", flush=True)
""")


def test_interrupt_then_resume_skips_finished(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    out = str(tmp_path)
    # Ctrl-C's default in the driver: a test run started in the background by a shell
    # without job control inherits SIGINT ignored, and Python then leaves it ignored.
    p = subprocess.Popen([sys.executable, str(script), out], env=python_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 60
        # Trials 0 and 1 are quick; 2 and 3 start next and sleep 3 s per step.
        while time.time() < deadline and not (
                os.path.exists(os.path.join(out, "ran-2")) and
                os.path.exists(os.path.join(out, "ran-3"))):
            time.sleep(0.1)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0 and "DONE" not in stdout, (p.returncode, stdout, stderr)
    assert "resume=True" in stderr, stderr
    state = json.load(open(os.path.join(out, "resumable", "experiment_state.json")))
    status = {t["config"]["i"]: t["status"] for t in state["trials"]}
    assert status[0] == status[1] == "TERMINATED", status
    assert status[2] == status[3] == "PENDING", status
    # Nothing of the interrupted trials runs on.
    pids = [int(x) for i in (2, 3) for x in open(os.path.join(out, f"ran-{i}")).read().split()]
    time.sleep(0.5)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or \
            open(f"/proc/{pid}/stat").read().split()[2] == "Z"

    # Resume: the two finished trials are not run again, the others all finish.
    open(os.path.join(out, "fast"), "w").close()
    done = subprocess.run([sys.executable, str(script), out, "resume"], env=python_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "DONE" in done.stdout, done.stderr
    runs = {i: len(open(os.path.join(out, f"ran-{i}")).read().split()) for i in range(6)}
    assert runs == {0: 1, 1: 1, 2: 2, 3: 2, 4: 1, 5: 1}, runs
    state = json.load(open(os.path.join(out, "resumable", "experiment_state.json")))
    assert all(t["status"] == "TERMINATED" for t in state["trials"])


def test_pretty_print_and_registry(ray, tmp_path):
    from kray.tune.logger import pretty_print
    text = pretty_print({"episode_reward_mean": 1.5, "info": {"lr": 0.1}, "config": {}})
    assert "episode_reward_mean: 1.5" in text and "info:\n  lr: 0.1" in text

    def train(config):
        tune.report(v=1)
    tune.register_trainable("my_fn", train)
    a = tune.run("my_fn", local_dir=str(tmp_path), verbose=0)
    assert a.trials[0].last_result["v"] == 1


def test_trainable_that_never_reports(ray, tmp_path, capfd):
    def silent(config):
        pass

    analysis = tune.run(silent, local_dir=str(tmp_path), verbose=0)
    assert analysis.trials[0].status == "TERMINATED"
    assert "finished without reporting any result" in capfd.readouterr().err
    # One that never ends is bounded by time_budget_s once it reports.
    def forever(config):
        while True:
            time.sleep(0.05)
            tune.report(x=1)

    t0 = time.time()
    analysis = tune.run(forever, local_dir=str(tmp_path), verbose=0, time_budget_s=1)
    assert time.time() - t0 < 20 and analysis.trials[0].status == "TERMINATED"

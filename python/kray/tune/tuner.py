# SPDX-License-Identifier: Apache-2.0
"""The newer Tune API: Tuner(trainable, param_space=, tune_config=TuneConfig(...),
run_config=RunConfig(...)).fit() -> ResultGrid."""
import dataclasses
import math
import os
import pickle
from typing import Any, Optional

from ._run import ERROR, TERMINATED, run, trial_table
from .checkpoint import Checkpoint


@dataclasses.dataclass
class TuneConfig:
    metric: Optional[str] = None
    mode: Optional[str] = None
    search_alg: Any = None
    scheduler: Any = None
    num_samples: int = 1
    max_concurrent_trials: Optional[int] = None
    time_budget_s: Optional[float] = None
    reuse_actors: Optional[bool] = None
    trial_name_creator: Any = None
    trial_dirname_creator: Any = None


@dataclasses.dataclass
class FailureConfig:
    max_failures: int = 0
    fail_fast: bool = False


@dataclasses.dataclass
class CheckpointConfig:
    num_to_keep: Optional[int] = None
    checkpoint_score_attribute: Optional[str] = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: Optional[bool] = None


@dataclasses.dataclass
class RunConfig:
    name: Optional[str] = None
    local_dir: Optional[str] = None
    storage_path: Optional[str] = None
    stop: Any = None
    failure_config: Optional[FailureConfig] = None
    checkpoint_config: Optional[CheckpointConfig] = None
    verbose: int = 2
    callbacks: Any = None
    progress_reporter: Any = None
    log_to_file: bool = False
    sync_config: Any = None


@dataclasses.dataclass
class Result:
    """One trial's outcome: metrics (its last result), config, checkpoint, error, path."""
    metrics: dict
    checkpoint: Optional[Checkpoint]
    error: Optional[Exception]
    path: str
    config: dict
    metrics_history: list = dataclasses.field(default_factory=list, repr=False)

    @property
    def log_dir(self):
        return self.path

    @property
    def best_checkpoints(self):
        return [(self.checkpoint, self.metrics)] if self.checkpoint else []

    @property
    def metrics_dataframe(self):
        import pandas as pd
        return pd.DataFrame(self.metrics_history)


class TuneTrialError(Exception):
    """A trial's error, as the ResultGrid reports it."""


class ResultGrid:
    """The results of Tuner.fit(): one Result per trial, get_best_result(), a table."""

    def __init__(self, analysis):
        self._analysis = analysis
        self._results = [self._result(t) for t in analysis.trials]
        self.experiment_path = analysis.experiment_path

    @staticmethod
    def _result(t):
        return Result(metrics=dict(t.last_result),
                      checkpoint=(Checkpoint.from_directory(t.checkpoint)
                                  if t.checkpoint and os.path.isdir(t.checkpoint) else None),
                      error=TuneTrialError(t.error_msg) if t.status == ERROR else None,
                      path=t.logdir, config=t.config, metrics_history=list(t.history))

    def __len__(self):
        return len(self._results)

    def __getitem__(self, i):
        return self._results[i]

    def __iter__(self):
        return iter(self._results)

    @property
    def errors(self):
        return [r.error for r in self._results if r.error is not None]

    @property
    def num_errors(self):
        return len(self.errors)

    @property
    def num_terminated(self):
        return sum(1 for t in self._analysis.trials if t.status == TERMINATED)

    def get_best_result(self, metric=None, mode=None, scope="last",
                        filter_nan_and_inf=True):
        if len(self._results) == 1 and metric is None and mode is None and \
                self._analysis.default_metric is None:
            return self._results[0]
        t = self._analysis.get_best_trial(metric, mode, scope, filter_nan_and_inf)
        if t is None:
            raise RuntimeError(f"No best trial found for the metric "
                               f"{metric or self._analysis.default_metric!r}: no trial "
                               "reported it (or every value was nan/inf)")
        return self._results[self._analysis.trials.index(t)]

    def get_dataframe(self, filter_metric=None, filter_mode=None):
        return self._analysis.dataframe()

    def table(self):
        return trial_table(self._analysis.trials, self._analysis.default_metric, 1 << 30)

    def __repr__(self):
        return f"ResultGrid<{len(self)} trials, {self.num_errors} errored>\n" + self.table()


class Tuner:
    """Tuner(trainable, param_space=..., tune_config=TuneConfig(...),
    run_config=RunConfig(...)).fit() runs the search and returns a ResultGrid."""

    def __init__(self, trainable=None, *, param_space=None, tune_config=None,
                 run_config=None, _tuner_kwargs=None, _resume=None):
        if trainable is None:
            raise TypeError("Tuner() needs a trainable")
        if tune_config is not None and not isinstance(tune_config, TuneConfig):
            raise TypeError("tune_config must be a tune.TuneConfig")
        if run_config is not None and not isinstance(run_config, RunConfig):
            raise TypeError("run_config must be a RunConfig")
        self.trainable = trainable
        self.param_space = param_space or {}
        self.tune_config = tune_config or TuneConfig()
        self.run_config = run_config or RunConfig()
        self._kwargs = dict(_tuner_kwargs or {})
        self._resume = _resume
        self._results = None

    @classmethod
    def restore(cls, path, trainable=None, resume_unfinished=True, resume_errored=False,
                restart_errored=False, param_space=None, **kw):
        """Goes on with the experiment in path (a Tuner's experiment directory)."""
        state = os.path.join(path, "experiment_state.pkl")
        if not os.path.exists(state):
            raise ValueError(f"Tuner.restore(): no experiment state in {path}")
        with open(os.path.join(path, ".tuner.pkl"), "rb") as fh:
            saved = pickle.load(fh)
        path = os.path.abspath(path)
        rc = saved["run_config"]
        rc.name, rc.local_dir, rc.storage_path = os.path.basename(path), os.path.dirname(path), None
        return cls(trainable or saved["trainable"], param_space=saved["param_space"],
                   tune_config=saved["tune_config"], run_config=rc,
                   _resume="ERRORED_ONLY" if (resume_errored or restart_errored) else True)

    def fit(self):
        tc, rc = self.tune_config, self.run_config
        fc = rc.failure_config or FailureConfig()
        cc = rc.checkpoint_config or CheckpointConfig()
        kwargs = dict(self._kwargs)
        analysis = run(self.trainable, name=rc.name, metric=tc.metric, mode=tc.mode,
                       stop=rc.stop, time_budget_s=tc.time_budget_s, config=self.param_space,
                       num_samples=tc.num_samples, local_dir=rc.storage_path or rc.local_dir,
                       search_alg=tc.search_alg, scheduler=tc.scheduler,
                       keep_checkpoints_num=cc.num_to_keep,
                       checkpoint_freq=cc.checkpoint_frequency,
                       checkpoint_at_end=bool(cc.checkpoint_at_end), verbose=rc.verbose,
                       max_failures=fc.max_failures, fail_fast=fc.fail_fast,
                       resume=self._resume or False, reuse_actors=tc.reuse_actors,
                       raise_on_failed_trial=False,
                       max_concurrent_trials=tc.max_concurrent_trials,
                       callbacks=rc.callbacks, _remote=None, **kwargs)
        try:
            with open(os.path.join(analysis.experiment_path, ".tuner.pkl"), "wb") as fh:
                import cloudpickle
                cloudpickle.dump({"trainable": self.trainable, "param_space": self.param_space,
                                  "tune_config": self.tune_config,
                                  "run_config": self.run_config}, fh)
        except Exception:
            pass
        self._results = ResultGrid(analysis)
        return self._results

    def get_results(self):
        if self._results is None:
            raise RuntimeError("fit() has not run yet")
        return self._results


_ = math


@dataclasses.dataclass
class ScalingConfig:
    """Accepted for AIR programs; kray.tune reads resources from resources_per_trial or
    tune.with_resources instead."""
    num_workers: Optional[int] = None
    use_gpu: bool = False
    resources_per_worker: Optional[dict] = None
    trainer_resources: Optional[dict] = None

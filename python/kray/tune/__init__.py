# SPDX-License-Identifier: Apache-2.0
"""kray.tune: Ray Tune's hyperparameter search on kray (docs/tune.md).

    from kray import tune

    def trainable(config):
        for i in range(10):
            tune.report(score=config["a"] * i)

    analysis = tune.run(trainable, config={"a": tune.grid_search([1, 2, 3])},
                        metric="score", mode="max")
    print(analysis.best_config)
"""
from . import logger, schedulers, search, session, stopper  # noqa: F401
from .registry import register_env  # noqa: F401
from ._run import (ExperimentAnalysis, Trial, get_trainable_cls,  # noqa: F401
                   register_trainable, run, with_resources)
from .checkpoint import Checkpoint
from .schedulers import (ASHAScheduler, AsyncHyperBandScheduler, FIFOScheduler,  # noqa: F401
                         MedianStoppingRule, TrialScheduler)
from .search import (choice, grid_search, lograndint, loguniform, qloguniform,  # noqa: F401
                     qrandint, qrandn, quniform, randint, randn, sample_from, uniform)
from .stopper import Stopper
from .trainable import Trainable, TuneError, checkpoint_dir, report
from .tuner import (CheckpointConfig, FailureConfig, Result, ResultGrid,  # noqa: F401
                    RunConfig, TuneConfig, Tuner)
from . import trainable as _trainable

get_trial_id = _trainable.get_trial_id
get_trial_name = _trainable.get_trial_name
get_trial_dir = _trainable.get_trial_dir
get_checkpoint = _trainable.get_checkpoint

__all__ = ["run", "Tuner", "TuneConfig", "RunConfig", "FailureConfig", "CheckpointConfig",
           "ResultGrid", "Result", "ExperimentAnalysis", "Trainable", "report", "session",
           "Checkpoint", "checkpoint_dir", "grid_search", "choice", "uniform", "quniform",
           "loguniform", "qloguniform", "randint", "qrandint", "lograndint", "randn",
           "qrandn", "sample_from", "FIFOScheduler", "ASHAScheduler",
           "AsyncHyperBandScheduler", "MedianStoppingRule", "TuneError", "Stopper",
           "register_trainable", "with_resources", "logger", "schedulers", "search"]

# SPDX-License-Identifier: Apache-2.0
"""Trainables: the Trainable class (setup/step/save_checkpoint/load_checkpoint) and the
session of a function trainable (tune.report / session.report)."""
import contextlib
import inspect
import json
import os
import pickle
import shutil
import socket
import tempfile
import time

from .checkpoint import _DICT_FILE, Checkpoint

_META = ".tune_metadata"


class TuneError(Exception):
    """A Tune experiment went wrong (Ray's ray.tune.error.TuneError)."""


class _TrialStopped(BaseException):
    """Raised inside a function trainable by report() when the trial must stop (a
    BaseException, so that the trainable's own `except Exception` does not keep it)."""


def _auto_fields(result, trial_id, iteration, t_iter, t_total, t_since, it_since,
                 timesteps_total=None):
    result.setdefault("done", False)
    result.update(training_iteration=iteration, time_this_iter_s=t_iter,
                  time_total_s=t_total, time_since_restore=t_since,
                  iterations_since_restore=it_since, timestamp=int(time.time()),
                  trial_id=trial_id, pid=os.getpid(), hostname=socket.gethostname(),
                  date=time.strftime("%Y-%m-%d_%H-%M-%S"))
    if timesteps_total is not None:
        result.setdefault("timesteps_total", timesteps_total)
    return result


def _write_meta(path, meta):
    with open(os.path.join(path, _META), "w") as fh:
        json.dump(meta, fh)


def _read_meta(path):
    try:
        with open(os.path.join(path, _META)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


class Trainable:
    """A class trainable, as Ray's: override setup(config), step() -> dict, and to be
    checkpointed save_checkpoint(checkpoint_dir) -> dict | path | None and
    load_checkpoint(checkpoint).  train() calls step() once and adds Tune's fields
    (training_iteration, time_total_s, ...)."""

    def __init__(self, config=None, logger_creator=None, **kwargs):
        self.config = dict(config or {})
        self._iteration = 0
        self._time_total = 0.0
        self._timesteps_total = None
        self._episodes_total = None
        self._restored_iter = 0
        self._time_since_restore = 0.0
        self._logdir = kwargs.get("logdir")  # (made on first use when not given)
        self._own_logdir = False
        self._trial_id = kwargs.get("trial_id", "default")
        self._trial_name = kwargs.get("trial_name", type(self).__name__)
        self.setup(dict(self.config))

    # The user's part
    def setup(self, config):
        pass

    def step(self):
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def save_checkpoint(self, checkpoint_dir):
        return None

    def load_checkpoint(self, checkpoint):
        pass

    def cleanup(self):
        pass

    def reset_config(self, new_config):
        return False

    @classmethod
    def default_resource_request(cls, config):
        return None

    # What Tune and users call
    @property
    def iteration(self):
        return self._iteration

    @property
    def training_iteration(self):
        return self._iteration

    @property
    def logdir(self):
        if self._logdir is None:
            self._logdir = tempfile.mkdtemp(prefix="kray-trainable-")
            self._own_logdir = True
        return self._logdir

    @property
    def trial_id(self):
        return self._trial_id

    @property
    def trial_name(self):
        return self._trial_name

    def get_config(self):
        return self.config

    def train(self):
        """One step(): its result with Tune's fields."""
        start = time.time()
        result = self.step()
        if not isinstance(result, dict):
            raise TypeError(f"{type(self).__name__}.step() must return a dict, got "
                            f"{type(result).__name__}")
        result = dict(result)
        t_iter = time.time() - start
        self._iteration += 1
        self._time_total += t_iter
        self._time_since_restore += t_iter
        if "timesteps_this_iter" in result:
            self._timesteps_total = (self._timesteps_total or 0) + result["timesteps_this_iter"]
        if "episodes_this_iter" in result:
            self._episodes_total = (self._episodes_total or 0) + result["episodes_this_iter"]
            result.setdefault("episodes_total", self._episodes_total)
        return _auto_fields(result, self._trial_id, self._iteration, t_iter,
                            self._time_total, self._time_since_restore,
                            self._iteration - self._restored_iter, self._timesteps_total)

    def save(self, checkpoint_dir=None):
        """Writes a checkpoint directory and returns its path."""
        path = checkpoint_dir or os.path.join(self.logdir,
                                              f"checkpoint_{self._iteration:06d}")
        os.makedirs(path, exist_ok=True)
        out = self.save_checkpoint(path)
        if isinstance(out, dict):
            with open(os.path.join(path, _DICT_FILE), "wb") as fh:
                pickle.dump(out, fh)
        elif isinstance(out, str) and os.path.abspath(out) != os.path.abspath(path):
            if not os.path.abspath(out).startswith(os.path.abspath(path)):
                raise ValueError(f"save_checkpoint() returned {out}, which is not inside "
                                 f"the checkpoint_dir {path}")
        elif out is not None and not isinstance(out, str):
            raise TypeError("save_checkpoint() must return a dict, a path in "
                            "checkpoint_dir, or None")
        _write_meta(path, {"iteration": self._iteration, "time_total": self._time_total,
                           "timesteps_total": self._timesteps_total,
                           "episodes_total": self._episodes_total,
                           "kind": "dict" if isinstance(out, dict) else "dir",
                           "relpath": (os.path.relpath(out, path)
                                       if isinstance(out, str) else None)})
        return path

    def restore(self, checkpoint_path):
        """Loads a checkpoint written by save()."""
        if isinstance(checkpoint_path, Checkpoint):
            checkpoint_path = checkpoint_path.to_directory()
        if not os.path.isdir(checkpoint_path):
            raise ValueError(f"restore(): no checkpoint directory at {checkpoint_path}")
        meta = _read_meta(checkpoint_path)
        if meta.get("kind") == "dict":
            with open(os.path.join(checkpoint_path, _DICT_FILE), "rb") as fh:
                self.load_checkpoint(pickle.load(fh))
        elif meta.get("relpath"):
            self.load_checkpoint(os.path.join(checkpoint_path, meta["relpath"]))
        else:
            self.load_checkpoint(checkpoint_path)
        self._iteration = meta.get("iteration", 0)
        self._time_total = meta.get("time_total", 0.0)
        self._timesteps_total = meta.get("timesteps_total")
        self._episodes_total = meta.get("episodes_total")
        self._restored_iter = self._iteration
        self._time_since_restore = 0.0

    def stop(self):
        self.cleanup()
        if self._own_logdir:  # the directory this made, when nothing was saved in it
            try:
                os.rmdir(self._logdir)
            except OSError:
                pass


# ---- the session of a function trainable (one per trial actor) ----

class _Session:
    def __init__(self, trial_id, trial_name, logdir, deliver, checkpoint_path, iteration,
                 time_total):
        self.trial_id, self.trial_name, self.logdir = trial_id, trial_name, logdir
        self.deliver = deliver  # (result, checkpoint path) -> decision
        self.checkpoint_path = checkpoint_path
        self.iteration = iteration
        self.restored_iter = iteration
        self.time_total = time_total
        self.last = time.time()
        self.start = self.last
        self.pending_dir = None  # tune.checkpoint_dir() written since the last report
        self.reported = 0

    def report(self, metrics, checkpoint=None):
        if not isinstance(metrics, dict):
            raise TypeError(f"report() takes a dict of metrics, got {type(metrics).__name__}")
        now = time.time()
        self.iteration += 1
        self.reported += 1
        t_iter = now - self.last
        self.last = now
        self.time_total += t_iter
        path = None
        if checkpoint is not None:
            if not isinstance(checkpoint, Checkpoint):
                raise TypeError("checkpoint must be a tune.Checkpoint (Checkpoint.from_dict "
                                "or Checkpoint.from_directory)")
            path = os.path.join(self.logdir, f"checkpoint_{self.iteration:06d}")
            if checkpoint.path is None or os.path.abspath(checkpoint.path) != path:
                if os.path.exists(path):
                    shutil.rmtree(path)
                checkpoint.to_directory(path)
        elif self.pending_dir is not None:
            path = self.pending_dir
        self.pending_dir = None
        if path is not None:
            _write_meta(path, {"iteration": self.iteration, "time_total": self.time_total,
                               "kind": "function"})
            self.checkpoint_path = path
        result = _auto_fields(dict(metrics), self.trial_id, self.iteration, t_iter,
                              self.time_total, now - self.start,
                              self.iteration - self.restored_iter)
        if self.deliver(result, path) == "STOP":
            raise _TrialStopped()


_session = [None]


def _current(what):
    s = _session[0]
    if s is None:
        raise RuntimeError(f"{what} can only be called inside a function trainable that "
                           "Tune runs (tune.run or Tuner.fit)")
    return s


def report(*args, checkpoint=None, **kwargs):
    """Reports one result of a function trainable: tune.report(loss=0.1) (the older
    form) or tune.report({"loss": 0.1}, checkpoint=...)."""
    if args:
        if len(args) == 1 and isinstance(args[0], dict):
            metrics = dict(args[0])
            metrics.update(kwargs)
        elif len(args) == 1:
            metrics = dict(kwargs, _metric=args[0])
        else:
            raise TypeError("report() takes one dict of metrics or keyword arguments")
    else:
        metrics = kwargs
    _current("tune.report()").report(metrics, checkpoint)


@contextlib.contextmanager
def checkpoint_dir(step):
    """The older function API: `with tune.checkpoint_dir(step) as d:` write files in d;
    the next report() carries it as the trial's checkpoint."""
    s = _current("tune.checkpoint_dir()")
    path = os.path.join(s.logdir, f"checkpoint_{int(step):06d}")
    os.makedirs(path, exist_ok=True)
    yield path
    s.pending_dir = path


def get_checkpoint():
    s = _current("session.get_checkpoint()")
    return Checkpoint.from_directory(s.checkpoint_path) if s.checkpoint_path else None


def get_trial_id():
    return _current("session.get_trial_id()").trial_id


def get_trial_name():
    return _current("session.get_trial_name()").trial_name


def get_trial_dir():
    return _current("session.get_trial_dir()").logdir


def is_function_trainable(trainable):
    return callable(trainable) and not inspect.isclass(trainable)


def call_function(fn, config, session):
    """Runs a function trainable: fn(config) or fn(config, checkpoint_dir=...)."""
    params = inspect.signature(fn).parameters
    if "checkpoint_dir" in params:
        out = fn(config, checkpoint_dir=session.checkpoint_path)
    elif len(params) == 0:
        out = fn()
    else:
        out = fn(config)
    if isinstance(out, dict):  # a returned dict is the final result
        session.report(dict(out, done=True))
    elif out is not None and not inspect.isgenerator(out):
        raise TypeError(f"a function trainable returns None or a dict of final metrics, "
                        f"got {type(out).__name__}")
    elif inspect.isgenerator(out):
        for r in out:
            session.report(r)

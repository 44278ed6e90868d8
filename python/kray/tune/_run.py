# SPDX-License-Identifier: Apache-2.0
"""tune.run: the experiment driver.

Each trial runs in an actor of its own (_TrialActor), started when the trial's resources
fit beside the trials already running.  The trial's results go to the experiment's
controller actor (_Controller), which holds the stop criteria and the scheduler and
answers each result with CONTINUE or STOP; a function trainable's report() waits for that
answer, a class trainable's loop asks after each step().  The driver collects the results
from the controller, writes them (result.json, JSON lines, per trial), saves the
experiment's state (experiment_state.pkl) and prints the progress table."""
import copy
import datetime
import json
import math
import os
import pickle
import sys
import time
import traceback

import cloudpickle

import kray
from kray import exceptions as kexc

from . import trainable as _tr
from .schedulers import FIFOScheduler, TrialScheduler
from .search import BasicVariantGenerator, ConcurrencyLimiter, Searcher, _paths
from .trainable import Trainable, TuneError, _read_meta

PENDING, RUNNING, TERMINATED, ERROR = "PENDING", "RUNNING", "TERMINATED", "ERROR"

_registry = {}


def register_trainable(name, trainable):
    """Registers a trainable under a name, for tune.run("name")."""
    if not isinstance(name, str) or not name:
        raise ValueError("register_trainable() needs a non-empty name")
    if not callable(trainable):
        raise TypeError("register_trainable() takes a function or a Trainable class")
    _registry[name] = trainable


def get_trainable_cls(name):
    if name not in _registry:
        try:
            import kray.rllib
            kray.rllib.register_trainables()  # "PPO", "ES"
        except ImportError:
            pass
    if name not in _registry:
        raise TuneError(f"Unknown trainable {name!r}: known ones are "
                        f"{sorted(_registry)} (tune.register_trainable adds one)")
    return _registry[name]


def with_resources(trainable, resources):
    """The trainable with the resources each of its trials holds ({"cpu": 2, ...})."""
    if isinstance(trainable, str):
        trainable = get_trainable_cls(trainable)
    if _tr.is_function_trainable(trainable):
        def wrapped(*a, **kw):
            return trainable(*a, **kw)
        import functools
        wrapped = functools.wraps(trainable)(wrapped)
        wrapped._kray_resources = dict(resources)
        return wrapped
    return type(trainable.__name__, (trainable,), {"_kray_resources": dict(resources)})


# ---------------------------------------------------------------- in the actors

class _Controller:
    """The experiment's referee: every result passes here and gets its decision."""

    def __init__(self, scheduler, stop, snapshot=None):
        self.scheduler = pickle.loads(snapshot) if snapshot else scheduler
        self.stop = stop
        self.outbox = []
        self.stopping = False

    def _stop_criteria(self, tid, result):
        stop = self.stop
        if not stop:
            return False, None
        if isinstance(stop, dict):
            for k, v in stop.items():
                if k not in result:
                    return False, (f"Stopping criteria {k!r} not provided in result dict. "
                                   f"Keys are {sorted(result)}.")
                if result[k] >= v:
                    return True, None
            return False, None
        if hasattr(stop, "stop_all") and stop.stop_all():
            self.stopping = True
        return bool(stop(tid, result)), None

    def on_result(self, tid, result, ckpt, run=0, idx=0):
        self.outbox.append((tid, result, ckpt, run, idx))
        if self.stopping:
            return "STOP"
        for k in self.scheduler.needs():
            if k is not None and k not in result:
                return ("ERROR", f"Trial returned a result which did not include the "
                                 f"specified metric(s) {k!r} that "
                                 f"{type(self.scheduler).__name__} expects. Make sure "
                                 f"your calls to tune.report() include the metric, or set "
                                 f"the metric to one of {sorted(result)}.")
        stop, err = self._stop_criteria(tid, result)
        if err:
            return ("ERROR", err)
        action = self.scheduler.on_trial_result(tid, result)
        if stop or self.stopping:
            return "STOP"
        return "STOP" if action == TrialScheduler.STOP else "CONTINUE"

    def complete(self, tid, result, errored):
        if errored:
            self.scheduler.on_trial_error(tid)
        else:
            self.scheduler.on_trial_complete(tid, result)

    def drain(self, completed=()):
        """The results since the last drain; first, the trials that ended since then
        (trial id, last result, errored), given in the same call."""
        for tid, result, errored in completed:
            self.complete(tid, result, errored)
        out, self.outbox = self.outbox, []
        return out, self.stopping

    def stop_all(self):
        self.stopping = True

    def snapshot(self):
        return pickle.dumps(self.scheduler)

    def debug_string(self):
        return self.scheduler.debug_string()


class _TrialActor:
    """Runs trials: one at a time, and (reuse_actors) one after the other."""

    def ready(self):
        return os.getpid()

    def run(self, trainable, config, info, controller, ckpt_path, ckpt_freq, ckpt_at_end):
        tid = info["trial_id"]
        os.makedirs(info["logdir"], exist_ok=True)
        os.chdir(info["logdir"])  # as Ray: a trial runs in its directory

        delivered = []  # returned too: the driver need not ask the controller for them

        def deliver(result, path):
            delivered.append((result, path))
            decision = kray.get(controller.on_result.remote(tid, result, path, info["run"],
                                                            len(delivered) - 1))
            if isinstance(decision, tuple):
                raise TuneError(decision[1])
            return decision

        if _tr.is_function_trainable(trainable):
            meta = _read_meta(ckpt_path) if ckpt_path else {}
            s = _tr._Session(tid, info["trial_name"], info["logdir"], deliver, ckpt_path,
                             meta.get("iteration", 0), meta.get("time_total", 0.0))
            _tr._session[0] = s
            try:
                _tr.call_function(trainable, copy.deepcopy(config), s)
            except _tr._TrialStopped:
                pass
            finally:
                _tr._session[0] = None
            return {"checkpoint": s.checkpoint_path, "reported": s.reported,
                    "results": delivered}
        t = trainable(copy.deepcopy(config), logdir=info["logdir"], trial_id=tid,
                      trial_name=info["trial_name"])
        last = ckpt_path
        reported = 0
        try:
            if ckpt_path:
                t.restore(ckpt_path)
            while True:
                result = t.train()
                reported += 1
                path = None
                if ckpt_freq and t.iteration % ckpt_freq == 0:
                    path = last = t.save()
                decision = deliver(result, path)
                if decision == "STOP" or result.get("done"):
                    break
            if ckpt_at_end and (path is None):
                last = t.save()
        finally:
            t.stop()
        return {"checkpoint": last, "reported": reported, "results": delivered}


# ---------------------------------------------------------------- in the driver

class Trial:
    """One trial: its config, status, results, checkpoint and directory."""

    def __init__(self, trainable_name, config, index, trial_id, logdir, evaluated):
        self.trainable_name = trainable_name
        self.config = config
        self.index = index
        self.trial_id = trial_id
        self.logdir = logdir
        self.local_path = logdir
        self.evaluated_params = evaluated
        self.status = PENDING
        self.last_result = {}
        self.metric_analysis = {}
        self.history = []
        self.checkpoint = None
        self.num_failures = 0
        self.error_msg = None
        self.error_file = None
        self.resources = {}
        self.stopped_early = False

    def __repr__(self):
        return f"{self.trainable_name}_{self.trial_id}"

    def __str__(self):
        return repr(self)

    @property
    def trial_name(self):
        return repr(self)

    def _state(self):
        d = dict(self.__dict__)
        d["history"] = []  # the results are in result.json
        return d


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat(v, key + "/"))
        else:
            out[key] = v
    return out


def _get(d, path):
    for p in path:
        d = d[p]
    return d


def _jsonable(o):
    try:
        json.dumps(o)
        return o
    except (TypeError, ValueError):
        if isinstance(o, dict):
            return {str(k): _jsonable(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [_jsonable(v) for v in o]
        if hasattr(o, "item") and callable(o.item):
            try:
                return o.item()
            except Exception:
                pass
        return repr(o)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.5g}"
    return str(v)


def _table(rows, headers):
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [line, "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |", line]
    for r in rows:
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    out.append(line)
    return "\n".join(out)


def trial_table(trials, metric=None, max_rows=20):
    params = []
    for t in trials:
        for k in t.evaluated_params:
            if k not in params:
                params.append(k)
    metrics = [m for m in ([metric] if metric else []) if m]
    if not metrics:
        for t in trials:
            for k in ("loss", "mean_accuracy", "accuracy", "episode_reward_mean", "score"):
                if k in t.last_result and k not in metrics:
                    metrics.append(k)
    headers = ["Trial name", "status"] + params + ["iter", "total time (s)"] + metrics
    rows = []
    shown = trials if len(trials) <= max_rows else (
        [t for t in trials if t.status == RUNNING] + [t for t in trials if t.status != RUNNING]
    )[:max_rows]
    for t in shown:
        r = t.last_result
        rows.append([str(t), t.status] + [_fmt(t.evaluated_params.get(p, "")) for p in params] +
                    [_fmt(r.get("training_iteration", "")),
                     _fmt(r.get("time_total_s", "")) if r else ""] +
                    [_fmt(r.get(m, "")) for m in metrics])
    out = _table(rows, headers)
    if len(trials) > len(shown):
        out += f"\n... {len(trials) - len(shown)} more trials not shown"
    return out


class _Experiment:
    def __init__(self, trainable, name, space, num_samples, search_alg, scheduler, stop,
                 metric, mode, resources, local_dir, ckpt_freq, ckpt_at_end, verbose,
                 max_failures, fail_fast, resume, reuse_actors, max_concurrent,
                 time_budget_s, num_to_keep, callbacks):
        if isinstance(trainable, str):
            trainable = get_trainable_cls(trainable)
        if not callable(trainable):
            raise TypeError("tune.run() takes a function, a Trainable class or a registered "
                            f"name, got {type(trainable).__name__}")
        if inspectable_class(trainable) and not issubclass(trainable, Trainable):
            raise TypeError(f"{trainable.__name__} is a class but not a tune.Trainable")
        if mode not in (None, "min", "max"):
            raise ValueError("`mode` must be 'min' or 'max'")
        if (metric is None) != (mode is None) and metric is not None and mode is None:
            mode = "max" if scheduler is None else None
        self.trainable = trainable
        self.is_function = _tr.is_function_trainable(trainable)
        self.trainable_name = getattr(trainable, "_name", None) or getattr(
            trainable, "__name__", "trainable")
        self.metric, self.mode = metric, mode
        self.scheduler = scheduler or FIFOScheduler()
        if not isinstance(self.scheduler, TrialScheduler):
            raise TypeError("scheduler must be a tune scheduler (FIFOScheduler, "
                            "ASHAScheduler, MedianStoppingRule)")
        self.scheduler.set_search_properties(metric, mode)
        if getattr(self.scheduler, "metric", None) and self.scheduler.mode is None:
            raise ValueError(f"{type(self.scheduler).__name__} has a metric but no mode: "
                             "pass mode='min' or 'max' (to the scheduler or to tune.run)")
        if stop is not None and not (isinstance(stop, dict) or callable(stop)):
            raise TypeError("stop must be a dict, a function (trial_id, result) -> bool, or "
                            "a tune.Stopper")
        self.stop = stop
        self.search_alg = search_alg or BasicVariantGenerator()
        if not isinstance(self.search_alg, Searcher):
            raise TypeError("search_alg must be a BasicVariantGenerator (kray has no other "
                            "searchers)")
        if isinstance(self.search_alg, ConcurrencyLimiter):
            max_concurrent = min(max_concurrent or 1 << 30, self.search_alg.max_concurrent)
        self.max_concurrent = max_concurrent
        self.space = space or {}
        self.num_samples = num_samples
        self.resources = resources
        self.ckpt_freq, self.ckpt_at_end = ckpt_freq or 0, bool(ckpt_at_end)
        if self.is_function and (self.ckpt_freq or self.ckpt_at_end):
            raise ValueError("checkpoint_freq and checkpoint_at_end are for class "
                             "trainables; a function trainable passes checkpoint= to report()")
        self.verbose = verbose
        self.max_failures = max_failures
        self.fail_fast = fail_fast
        self.reuse = (self.is_function if reuse_actors is None else bool(reuse_actors))
        self.time_budget_s = time_budget_s
        self.num_to_keep = num_to_keep
        self.callbacks = list(callbacks or [])
        local_dir = os.path.expanduser(local_dir or os.environ.get("TUNE_RESULT_DIR") or
                                       os.path.join("~", "kray_results"))
        self.local_dir = local_dir
        snapshot = None
        state = None
        if resume:
            if resume not in (True, "AUTO", "LOCAL", "ERRORED_ONLY", "AUTO+ERRORED",
                              "LOCAL+ERRORED"):
                raise ValueError(f"resume must be True, False, 'AUTO', 'LOCAL' or "
                                 f"'ERRORED_ONLY', got {resume!r}")
            if name is None:
                name = _latest(local_dir, self.trainable_name)
            path = os.path.join(local_dir, name or "", "experiment_state.pkl")
            if name and os.path.exists(path):
                with open(path, "rb") as fh:
                    state = pickle.load(fh)
            elif resume not in ("AUTO", "AUTO+ERRORED"):
                raise ValueError("Called resume when no checkpoint exists in local directory "
                                 f"({os.path.join(local_dir, name or '')}).")
        self.name = name or "{}_{}".format(self.trainable_name,
                                           datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
        self.path = os.path.join(local_dir, self.name)
        os.makedirs(self.path, exist_ok=True)
        self.start_time = time.time()
        if state is not None:
            self.trials = [self._load_trial(d) for d in state["trials"]]
            snapshot = state.get("scheduler")
            rerun_errored = "ERRORED" in str(resume)
            for t in self.trials:
                if t.status == RUNNING:
                    t.status = PENDING
                if t.status == ERROR and rerun_errored:
                    t.status, t.error_msg, t.num_failures = PENDING, None, 0
            self.resumed = True
        else:
            self.trials = self._make_trials()
            self.resumed = False
        self.snapshot = snapshot

    def _load_trial(self, d):
        t = Trial.__new__(Trial)
        t.__dict__.update(d)
        t.history = []
        return t

    def _make_trials(self):
        configs = self.search_alg.variants(self.space, self.num_samples)
        searched = [p for p, _ in _paths(self.space)]
        exp_id = os.urandom(3).hex()[:5]
        trials = []
        for i, cfg in enumerate(configs):
            evaluated = {}
            for p in searched:
                try:
                    evaluated["/".join(map(str, p))] = _get(cfg, p)
                except (KeyError, IndexError, TypeError):
                    pass
            tid = f"{exp_id}_{i:05d}"
            short = ",".join(f"{k.split('/')[-1]}={_fmt(v)}" for k, v in evaluated.items())
            short = "".join(c if c.isalnum() or c in "=.,_-" else "_" for c in short)[:80]
            logdir = os.path.join(self.path, f"{self.trainable_name}_{tid}" +
                                  (f"_{short}" if short else ""))
            trials.append(Trial(self.trainable_name, cfg, i, tid, logdir, evaluated))
        return trials

    # resources
    def _request(self, trial):
        req = getattr(self.trainable, "_kray_resources", None) or self.resources
        if req is None and not self.is_function:
            req = self.trainable.default_resource_request(trial.config)
        req = dict(req or {})
        if "CPU" in req or "GPU" in req:
            raise ValueError("resources_per_trial uses lower-case 'cpu' and 'gpu' keys")
        cpu = float(req.pop("cpu", 1))
        gpu = float(req.pop("gpu", 0))
        extra_cpu = float(req.pop("extra_cpu", 0))
        extra_gpu = float(req.pop("extra_gpu", 0))
        custom = {k: float(v) for k, v in req.pop("custom_resources", {}).items()}
        custom.update({k: float(v) for k, v in req.items() if k not in ("memory",
                                                                            "object_store_memory")})
        return {"cpu": cpu, "gpu": gpu, "extra_cpu": extra_cpu, "extra_gpu": extra_gpu,
                "custom": custom}

    def _total(self, req):
        out = {"CPU": req["cpu"] + req["extra_cpu"]}
        if req["gpu"] + req["extra_gpu"]:
            out["GPU"] = req["gpu"] + req["extra_gpu"]
        out.update(req["custom"])
        return out


def inspectable_class(x):
    import inspect
    return inspect.isclass(x)


def _latest(local_dir, trainable_name):
    try:
        names = [n for n in os.listdir(local_dir) if n.startswith(trainable_name) and
                 os.path.exists(os.path.join(local_dir, n, "experiment_state.pkl"))]
    except OSError:
        return None
    if not names:
        return None
    return max(names, key=lambda n: os.path.getmtime(os.path.join(local_dir, n)))


class _Runner:
    """Runs an _Experiment's trials to their end."""

    def __init__(self, exp):
        self.exp = exp
        self.cluster = kray.cluster_resources()
        self.controller = kray.remote(_Controller).options(num_cpus=0).remote(
            exp.scheduler, exp.stop, exp.snapshot)
        self.running = {}  # ref -> (trial, actor, key)
        self.idle = []  # (key, actor)
        self.used = {}
        self.last_print = 0.0
        self.last_save = 0.0
        self.save_cost = 0.0  # seconds the last save took
        self.trainable_ref = None
        self.completed = []  # (trial id, result, errored) for the controller's next drain
        self.last_drain = 0.0
        self.by_id = {t.trial_id: t for t in exp.trials}

    # accounting
    def _fits(self, total):
        for k, v in total.items():
            if self.used.get(k, 0.0) + v > self.cluster.get(k, 0.0) + 1e-9:
                return False
        return True

    def _add(self, total, sign):
        for k, v in total.items():
            self.used[k] = self.used.get(k, 0.0) + sign * v

    def _check_possible(self, trial, total):
        for k, v in total.items():
            if v > self.cluster.get(k, 0.0) + 1e-9:
                raise TuneError(
                    f"Trial {trial} asks for {v:g} {k} but the cluster has "
                    f"{self.cluster.get(k, 0.0):g} {k} in all "
                    f"({self.cluster}): it could never run. Lower resources_per_trial (or "
                    "the trainable's num_workers), or add nodes.")

    def _start(self, trial):
        exp = self.exp
        req = exp._request(trial)
        total = exp._total(req)
        self._check_possible(trial, total)
        key = (req["cpu"], req["gpu"], tuple(sorted(req["custom"].items())))
        actor = None
        for i, (k, a) in enumerate(self.idle):
            if k == key:
                actor = a
                del self.idle[i]
                self._add(exp._total(dict(req, extra_cpu=0, extra_gpu=0)), -1)
                break
        if not self._fits(total):
            # Idle actors of other shapes make room.
            while self.idle and not self._fits(total):
                k, a = self.idle.pop(0)
                self._kill_idle(k, a)
            if not self._fits(total):
                if actor is not None:
                    self.idle.append((key, actor))
                    self._add(exp._total(dict(req, extra_cpu=0, extra_gpu=0)), 1)
                return False
        if actor is None:
            opts = {"num_cpus": req["cpu"], "max_restarts": 0}
            if req["gpu"]:
                opts["num_gpus"] = req["gpu"]
            if req["custom"]:
                opts["resources"] = req["custom"]
            actor = kray.remote(_TrialActor).options(**opts).remote()
        if self.trainable_ref is None:  # pickled once, not per trial
            self.trainable_ref = kray.put(exp.trainable)
        trial.resources = total
        trial.run_id = getattr(trial, "run_id", 0) + 1  # its results count from 0 again
        trial.n_recorded = 0
        info = {"trial_id": trial.trial_id, "trial_name": str(trial), "logdir": trial.logdir,
                "run": trial.run_id}
        os.makedirs(trial.logdir, exist_ok=True)
        with open(os.path.join(trial.logdir, "params.json"), "w") as fh:
            json.dump(_jsonable(trial.config), fh, indent=2, sort_keys=True)
        ref = actor.run.remote(self.trainable_ref, trial.config, info, self.controller,
                               trial.checkpoint, exp.ckpt_freq, exp.ckpt_at_end)
        self.running[ref] = (trial, actor, key)
        self._add(total, 1)
        trial.status = RUNNING
        return True

    def _kill_idle(self, key, actor):
        self._add({"CPU": key[0], **({"GPU": key[1]} if key[1] else {}), **dict(key[2])}, -1)
        kray.kill(actor)

    def _record(self, items):
        """Records results (trial id, result, checkpoint, run, index): each arrives twice,
        from the controller's drain and with its trial's end, and counts once, in order:
        index i of the trial's current run when i results of that run are recorded."""
        for tid, result, ckpt, run, idx in items:
            t = self.by_id.get(tid)
            if t is None or run != getattr(t, "run_id", None) or idx != t.n_recorded:
                continue
            t.n_recorded += 1
            result = dict(result)
            result.setdefault("config", t.config)
            t.last_result = result
            t.history.append(result)
            for k, v in result.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    m = t.metric_analysis.setdefault(k, {"max": v, "min": v, "avg": v,
                                                         "last": v, "n": 0, "sum": 0.0})
                    m["max"], m["min"], m["last"] = max(m["max"], v), min(m["min"], v), v
                    m["n"] += 1
                    m["sum"] += v
                    m["avg"] = m["sum"] / m["n"]
            if ckpt:
                t.checkpoint = ckpt
                self._prune(t)
            with open(os.path.join(t.logdir, "result.json"), "a") as fh:
                fh.write(json.dumps(_jsonable(result), sort_keys=True) + "\n")
            if self.exp.verbose >= 3:
                print(f"Result for {t}: " + ", ".join(
                    f"{k}={_fmt(v)}" for k, v in result.items()
                    if k not in ("config", "hostname", "date", "pid", "timestamp")))
            for cb in self.exp.callbacks:
                if hasattr(cb, "on_trial_result"):
                    cb.on_trial_result(iteration=0, trials=self.exp.trials, trial=t,
                                       result=result)

    def _prune(self, trial):
        keep = self.exp.num_to_keep
        if not keep:
            return
        import shutil
        dirs = sorted(d for d in os.listdir(trial.logdir) if d.startswith("checkpoint_"))
        for d in dirs[:-keep]:
            p = os.path.join(trial.logdir, d)
            if p != trial.checkpoint:
                shutil.rmtree(p, ignore_errors=True)

    def _drain(self):
        self.last_drain = time.monotonic()
        done, self.completed = self.completed, []
        items, stopping = kray.get(self.controller.drain.remote(done))
        self._record(items)
        return stopping

    def _finish(self, ref, out=None):
        trial, actor, key = self.running.pop(ref)
        self._add(trial.resources, -1)
        exp = self.exp
        try:
            if out is None:
                out = kray.get(ref)
        except (kexc.RayActorError, kexc.WorkerCrashedError) as e:
            self._failed(trial, e, actor_dead=True)
            return
        except Exception as e:  # the trainable raised
            kray.kill(actor)
            self._failed(trial, e, actor_dead=False)
            return
        self._record([(trial.trial_id, r, c, trial.run_id, i)
                      for i, (r, c) in enumerate(out.get("results", ()))])
        if out.get("checkpoint"):
            trial.checkpoint = out["checkpoint"]
        trial.status = TERMINATED
        trial.last_result = dict(trial.last_result, done=True)
        if not out.get("reported"):
            print(f"kray.tune: trial {trial} finished without reporting any result: call "
                  "tune.report()/session.report() in the trainable (or return a dict of "
                  "final metrics)", file=sys.stderr)
        self.completed.append((trial.trial_id, trial.last_result, False))
        for cb in exp.callbacks:
            if hasattr(cb, "on_trial_complete"):
                cb.on_trial_complete(iteration=0, trials=exp.trials, trial=trial)
        if exp.reuse:
            self.idle.append((key, actor))
            req = exp._request(trial)
            self._add(exp._total(dict(req, extra_cpu=0, extra_gpu=0)), 1)
        else:
            kray.kill(actor)

    def _failed(self, trial, e, actor_dead):
        exp = self.exp
        if actor_dead:
            msg = f"The actor of trial {trial} died: {e}"
        else:
            msg = getattr(e, "traceback_str", None) or "".join(
                traceback.format_exception(type(e), e, e.__traceback__))
        trial.num_failures += 1
        if exp.max_failures < 0 or trial.num_failures <= exp.max_failures:
            print(f"kray.tune: trial {trial} failed ({trial.num_failures} of "
                  f"{'unlimited' if exp.max_failures < 0 else exp.max_failures} retries); "
                  f"restarting it from "
                  f"{trial.checkpoint or 'the beginning (no checkpoint)'}", file=sys.stderr)
            trial.status = PENDING
            return
        trial.status = ERROR
        trial.error_msg = msg
        trial.error_file = os.path.join(trial.logdir, "error.txt")
        with open(trial.error_file, "a") as fh:
            fh.write(msg + "\n")
        print(f"kray.tune: trial {trial} errored; its error is in {trial.error_file}:\n"
              f"{msg.strip().splitlines()[-1] if msg.strip() else msg}", file=sys.stderr)
        self.completed.append((trial.trial_id, trial.last_result, True))
        if exp.fail_fast:
            raise TuneError(f"Trial {trial} errored and fail_fast is set: {msg}")

    def save(self, force=False):
        now = time.time()
        # At most once a second, and at most 5% of the time (as Ray's auto checkpoint
        # period): the state of thousands of trials takes a while to write.
        if not force and now - self.last_save < max(1.0, 20 * self.save_cost):
            return
        self.last_save = now
        exp = self.exp
        try:
            snap = kray.get(self.controller.snapshot.remote(), timeout=30)
        except Exception:
            snap = exp.snapshot
        state = {"name": exp.name, "trainable_name": exp.trainable_name,
                 "trials": [t._state() for t in exp.trials], "scheduler": snap,
                 "timestamp": now}
        tmp = os.path.join(exp.path, ".experiment_state.pkl.tmp")
        with open(tmp, "wb") as fh:
            cloudpickle.dump(state, fh)
        os.replace(tmp, os.path.join(exp.path, "experiment_state.pkl"))
        readable = {"name": exp.name, "timestamp": now, "trials": [
            {"trial_id": t.trial_id, "status": t.status, "config": _jsonable(t.config),
             "logdir": t.logdir, "checkpoint": t.checkpoint, "error": t.error_msg,
             "last_result": _jsonable({k: v for k, v in t.last_result.items()
                                       if k != "config"})} for t in exp.trials]}
        tmp = os.path.join(exp.path, ".experiment_state.json.tmp")
        with open(tmp, "w") as fh:
            fh.write(json.dumps(readable))  # no indent: the C encoder, 10x faster
        os.replace(tmp, os.path.join(exp.path, "experiment_state.json"))
        self.save_cost = time.time() - now

    def progress(self, force=False):
        exp = self.exp
        now = time.time()
        if exp.verbose < 1 or (not force and now - self.last_print < 5.0):
            return
        self.last_print = now
        counts = {}
        for t in exp.trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        try:
            sched = kray.get(self.controller.debug_string.remote(), timeout=10)
        except Exception:
            sched = exp.scheduler.debug_string()
        cpus = sum(t.resources.get("CPU", 0.0) for t, _, _ in self.running.values())
        print("== Status ==\n"
              f"Current time: {datetime.datetime.now():%Y-%m-%d %H:%M:%S} (running for "
              f"{datetime.timedelta(seconds=int(now - exp.start_time))})\n"
              f"{sched}\n"
              f"Resources requested: {cpus:g}/{self.cluster.get('CPU', 0):g} CPUs\n"
              f"Result logdir: {exp.path}\n"
              f"Number of trials: {len(exp.trials)} (" +
              ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ")\n" +
              trial_table(exp.trials, exp.metric if exp.metric else None) + "\n",
              flush=True)

    def loop(self):
        exp = self.exp
        pending = [t for t in exp.trials if t.status == PENDING]
        skipped = sum(1 for t in exp.trials if t.status in (TERMINATED, ERROR))
        if exp.resumed and exp.verbose >= 1:
            print(f"kray.tune: resuming {exp.path}: {skipped} finished trial(s) kept, "
                  f"{len(pending)} to run", flush=True)
        for cb in exp.callbacks:
            if hasattr(cb, "setup"):
                cb.setup()
        while True:
            over_budget = exp.time_budget_s is not None and \
                time.time() - exp.start_time > exp.time_budget_s
            if over_budget:
                self.controller.stop_all.remote()
            pending = [t for t in exp.trials if t.status == PENDING]
            for t in pending:
                if exp.max_concurrent and len(self.running) >= exp.max_concurrent:
                    break
                if not self._start(t):
                    break
            if not self.running:
                if not [t for t in exp.trials if t.status == PENDING]:
                    break
                raise TuneError("kray.tune: no trial can start (resources in use?)")
            ready, _ = kray.wait(list(self.running), num_returns=1, timeout=0.5)
            if ready:
                # Everything ready now, not just the first.
                ready, _ = kray.wait(list(self.running), num_returns=len(self.running),
                                     timeout=0)
            try:  # the values of every trial that ended, in one get
                outs, failed = (kray.get(ready) if ready else []), False
            except Exception:  # one raised: each on its own
                outs, failed = [None] * len(ready), True
            # The controller's results: those of running trials (progress), or of one
            # that failed; a trial that ended brings its own.  At most every 0.5 s.
            stopping = False
            if failed or over_budget or time.monotonic() - self.last_drain > 0.5:
                stopping = self._drain()
            for ref, out in zip(ready, outs):
                self._finish(ref, out)
            if stopping:
                for t in exp.trials:
                    if t.status == PENDING:
                        t.status = TERMINATED
            self.save(force=bool(ready) and len(exp.trials) < 200)
            self.progress()
        self._drain()

    def shutdown(self, interrupted):
        for ref, (trial, actor, key) in list(self.running.items()):
            kray.kill(actor)
            if interrupted:
                trial.status = PENDING  # resumed from its last checkpoint
        self.running.clear()
        for k, a in self.idle:
            kray.kill(a)
        self.idle.clear()
        try:
            self.save(force=True)
        finally:
            kray.kill(self.controller)


class ExperimentAnalysis:
    """What tune.run returns: the trials, and the best of them by a metric."""

    def __init__(self, trials, path, metric=None, mode=None):
        self.trials = trials
        self.experiment_path = path
        self._experiment_dir = path
        self.default_metric = metric
        self.default_mode = mode

    def _mm(self, metric, mode):
        metric = metric or self.default_metric
        mode = mode or self.default_mode
        if not metric or not mode:
            raise ValueError("No metric or mode: pass them here, or as `metric` and `mode` "
                             "to tune.run()")
        if mode not in ("min", "max"):
            raise ValueError("`mode` must be 'min' or 'max'")
        return metric, mode

    def get_best_trial(self, metric=None, mode=None, scope="last", filter_nan_and_inf=True):
        metric, mode = self._mm(metric, mode)
        if scope not in ("all", "last", "avg", "last-5-avg", "last-10-avg"):
            raise ValueError("scope must be one of all, last, avg, last-5-avg, last-10-avg")
        best, best_v = None, None
        for t in self.trials:
            m = t.metric_analysis.get(metric)
            if m is None:
                continue
            if scope == "last":
                v = m["last"]
            elif scope == "avg":
                v = m["avg"]
            elif scope == "all":
                v = m[mode]
            else:
                n = int(scope.split("-")[1])
                vals = [r[metric] for r in t.history if metric in r][-n:] or [m["last"]]
                v = sum(vals) / len(vals)
            if filter_nan_and_inf and (v is None or not math.isfinite(v)):
                continue
            if best_v is None or (v > best_v if mode == "max" else v < best_v):
                best, best_v = t, v
        return best

    def get_best_config(self, metric=None, mode=None, scope="last"):
        t = self.get_best_trial(metric, mode, scope)
        return t.config if t else None

    def get_best_logdir(self, metric=None, mode=None, scope="last"):
        t = self.get_best_trial(metric, mode, scope)
        return t.logdir if t else None

    def get_best_checkpoint(self, trial, metric=None, mode=None):
        from .checkpoint import Checkpoint
        return Checkpoint.from_directory(trial.checkpoint) if trial and trial.checkpoint \
            else None

    def get_last_checkpoint(self, trial=None):
        trial = trial or self.best_trial
        return self.get_best_checkpoint(trial)

    @property
    def best_trial(self):
        return self.get_best_trial()

    @property
    def best_config(self):
        return self.get_best_config()

    @property
    def best_logdir(self):
        return self.get_best_logdir()

    @property
    def best_checkpoint(self):
        return self.get_best_checkpoint(self.best_trial)

    @property
    def best_result(self):
        t = self.best_trial
        return t.last_result if t else None

    @property
    def results(self):
        return {t.trial_id: t.last_result for t in self.trials}

    def get_all_configs(self, prefix=False):
        return {t.logdir: t.config for t in self.trials}

    def dataframe(self, metric=None, mode=None):
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("dataframe() needs pandas (Debian: python3-pandas); "
                              "analysis.results has the same data as dicts") from None
        return pd.DataFrame([dict(_flat({k: v for k, v in t.last_result.items()
                                         if k != "config"}), logdir=t.logdir,
                                  **{f"config/{k}": v for k, v in _flat(t.config).items()})
                             for t in self.trials])

    results_df = property(lambda self: self.dataframe())


_RUN_ARGS = None


def run(run_or_experiment, *, name=None, metric=None, mode=None, stop=None,
        time_budget_s=None, config=None, resources_per_trial=None, num_samples=1,
        local_dir=None, storage_path=None, search_alg=None, scheduler=None,
        keep_checkpoints_num=None, checkpoint_score_attr=None, checkpoint_freq=0,
        checkpoint_at_end=False, verbose=2, progress_reporter=None, log_to_file=False,
        trial_name_creator=None, trial_dirname_creator=None, max_failures=0,
        fail_fast=False, restore=None, resume=False, reuse_actors=None,
        raise_on_failed_trial=True, max_concurrent_trials=None, callbacks=None,
        _remote=None, **kwargs):
    """Runs a hyperparameter search (Ray's tune.run): one trial per config of the search
    space (times num_samples), each in its own actor, as many at once as the resources
    allow.  Returns an ExperimentAnalysis.  A trial that raises is recorded as ERROR (and
    with raise_on_failed_trial, TuneError is raised at the end).  Ctrl-C stops the trials,
    saves the experiment's state and raises KeyboardInterrupt; resume=True (same name
    and local_dir) goes on without redoing the finished trials."""
    if kwargs:
        raise TypeError(f"tune.run() got unexpected keyword argument(s) {sorted(kwargs)}")
    if not isinstance(verbose, int):
        verbose = int(verbose)
    if restore is not None:
        raise ValueError("kray.tune: `restore` (one checkpoint for every trial) is not "
                         "supported; use resume=True")
    if not kray.is_initialized():
        kray.init()
    exp = _Experiment(run_or_experiment, name, config, num_samples, search_alg, scheduler,
                      stop, metric, mode, resources_per_trial, storage_path or local_dir,
                      checkpoint_freq, checkpoint_at_end, verbose, max_failures, fail_fast,
                      resume, reuse_actors, max_concurrent_trials, time_budget_s,
                      keep_checkpoints_num, callbacks)
    runner = _Runner(exp)
    interrupted = False
    old = None
    try:
        runner.loop()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        runner.shutdown(interrupted)
        if interrupted:
            done = sum(1 for t in exp.trials if t.status in (TERMINATED, ERROR))
            print(f"\nkray.tune: interrupted: the trials were stopped and the experiment's "
                  f"state saved in {exp.path} ({done} of {len(exp.trials)} trials finished). "
                  f"Run again with resume=True (and name={exp.name!r}) to go on.",
                  file=sys.stderr, flush=True)
    runner.progress(force=True)
    del old
    analysis = ExperimentAnalysis(exp.trials, exp.path, exp.metric or
                                  getattr(exp.scheduler, "metric", None),
                                  exp.mode or getattr(exp.scheduler, "mode", None))
    errored = [t for t in exp.trials if t.status == ERROR]
    if errored and raise_on_failed_trial:
        raise TuneError(f"Trials did not complete: {[str(t) for t in errored]} (their "
                        f"errors are in each trial's error.txt, under {exp.path})")
    return analysis

# SPDX-License-Identifier: Apache-2.0
"""Trial schedulers: FIFO, ASHA (asynchronous successive halving, Ray's
AsyncHyperBandScheduler / ASHAScheduler) and the median stopping rule.  They decide on
each result (CONTINUE or STOP); they live in the experiment's controller actor, so a
function trainable's report() gets the decision at once."""
import math
import statistics


class TrialScheduler:
    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"
    NOOP = "NOOP"

    metric = None
    mode = None

    def set_search_properties(self, metric, mode, **spec):
        if self.metric is None and metric is not None:
            self.metric = metric
        if self.mode is None and mode is not None:
            self.mode = mode
        if self.mode not in (None, "min", "max"):
            raise ValueError("`mode` must be 'min' or 'max'")
        return True

    def needs(self):
        """Result keys each result must carry."""
        return []

    def on_trial_add(self, trial_id):
        pass

    def on_trial_result(self, trial_id, result):
        return self.CONTINUE

    def on_trial_complete(self, trial_id, result):
        pass

    def on_trial_error(self, trial_id):
        pass

    def debug_string(self):
        return f"Using {type(self).__name__}."


class FIFOScheduler(TrialScheduler):
    """Runs every trial to its end, in the order they were made."""

    def debug_string(self):
        return "Using FIFO scheduling algorithm."


def _sign(mode):
    return 1.0 if mode == "max" else -1.0


class _Bracket:
    """One bracket of ASHA: rungs at min_t * rf**k; at each, a trial under the
    (1 - 1/rf) quantile of the results recorded there is stopped."""

    def __init__(self, min_t, max_t, rf, s):
        self.rf = rf
        n = int(math.log(max_t / min_t) / math.log(rf) - s + 1)
        self.rungs = [(min_t * rf ** (k + s), {}) for k in reversed(range(max(n, 0)))]

    def cutoff(self, recorded):
        vals = sorted(v for v in recorded.values() if not math.isnan(v))
        if not vals:
            return None
        # numpy's linear-interpolated percentile, as Ray's nanpercentile
        pos = (1 - 1 / self.rf) * (len(vals) - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, len(vals) - 1)
        return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)

    def on_result(self, trial_id, cur_iter, cur_rew):
        action = TrialScheduler.CONTINUE
        for milestone, recorded in self.rungs:
            if cur_iter >= milestone and trial_id in recorded:
                break  # this rung was passed already: the higher ones are not reached yet
            if cur_iter < milestone or trial_id in recorded:
                continue
            cutoff = self.cutoff(recorded)
            if cutoff is not None and cur_rew < cutoff:
                action = TrialScheduler.STOP
            recorded[trial_id] = cur_rew
            break
        return action


class AsyncHyperBandScheduler(TrialScheduler):
    """ASHA: stops the trials that lag at each rung (grace_period, grace_period *
    reduction_factor, ...), without waiting for the others to get there."""

    def __init__(self, time_attr="training_iteration", metric=None, mode=None, max_t=100,
                 grace_period=1, reduction_factor=4, brackets=1,
                 stop_last_trials=True):
        if grace_period <= 0:
            raise ValueError("grace_period must be positive")
        if reduction_factor <= 1:
            raise ValueError("reduction_factor must be > 1")
        if max_t <= 0 or grace_period > max_t:
            raise ValueError("max_t must be positive and at least grace_period")
        if brackets < 1:
            raise ValueError("brackets must be >= 1")
        if mode not in (None, "min", "max"):
            raise ValueError("`mode` must be 'min' or 'max'")
        self.time_attr, self.metric, self.mode = time_attr, metric, mode
        self.max_t, self.grace_period, self.rf = max_t, grace_period, reduction_factor
        self.stop_last_trials = stop_last_trials
        self.brackets = [_Bracket(grace_period, max_t, reduction_factor, s)
                         for s in range(brackets)]
        self.trial_bracket = {}
        self.num_stopped = 0

    def needs(self):
        return [self.time_attr, self.metric]

    def on_trial_add(self, trial_id):
        # As Ray: brackets drawn in proportion to their sizes (round robin weighted).
        sizes = [math.exp(len(b.rungs)) for b in self.brackets]
        total = sum(sizes)
        slot = (len(self.trial_bracket) * 0.6180339887) % 1.0 * total
        acc = 0.0
        for i, s in enumerate(sizes):
            acc += s
            if slot < acc:
                break
        self.trial_bracket[trial_id] = i

    def on_trial_result(self, trial_id, result):
        if self.metric is None or self.mode is None:
            return self.CONTINUE
        if trial_id not in self.trial_bracket:
            self.on_trial_add(trial_id)
        t = result[self.time_attr]
        if t >= self.max_t and self.stop_last_trials:
            return self.STOP
        action = self.brackets[self.trial_bracket[trial_id]].on_result(
            trial_id, t, _sign(self.mode) * result[self.metric])
        if action == self.STOP:
            self.num_stopped += 1
        return action

    def on_trial_complete(self, trial_id, result):
        if result and self.metric in result and self.time_attr in result and \
                trial_id in self.trial_bracket:
            self.brackets[self.trial_bracket[trial_id]].on_result(
                trial_id, result[self.time_attr], _sign(self.mode) * result[self.metric])

    def debug_string(self):
        out = "Using AsyncHyperBand: num_stopped={}".format(self.num_stopped)
        for b in self.brackets:
            out += "\nBracket: " + ", ".join(
                f"Iter {m:.3f}: {b.cutoff(r)}" for m, r in b.rungs)
        return out


ASHAScheduler = AsyncHyperBandScheduler


class MedianStoppingRule(TrialScheduler):
    """Stops a trial whose best result so far is worse than the median of the other
    trials' running averages at the same point in time (after grace_period, and once
    min_samples_required other trials got that far)."""

    def __init__(self, time_attr="time_total_s", metric=None, mode=None,
                 grace_period=60.0, min_samples_required=3, min_time_slice=0,
                 hard_stop=True):
        if mode not in (None, "min", "max"):
            raise ValueError("`mode` must be 'min' or 'max'")
        if not hard_stop:
            raise ValueError("kray's MedianStoppingRule stops trials (hard_stop=True): it "
                             "cannot pause them")
        self.time_attr, self.metric, self.mode = time_attr, metric, mode
        self.grace_period = grace_period
        self.min_samples_required = min_samples_required
        self.results = {}  # trial_id -> [(t, signed metric)]
        self.stopped = set()

    def needs(self):
        return [self.time_attr, self.metric]

    def _running_mean(self, trial_id, t):
        vals = [v for tt, v in self.results[trial_id] if tt <= t]
        return sum(vals) / len(vals) if vals else None

    def on_trial_result(self, trial_id, result):
        if self.metric is None or self.mode is None:
            return self.CONTINUE
        if trial_id in self.stopped:
            return self.STOP
        t = result[self.time_attr]
        self.results.setdefault(trial_id, []).append(
            (t, _sign(self.mode) * result[self.metric]))
        if t < self.grace_period:
            return self.CONTINUE
        others = [tid for tid, rs in self.results.items()
                  if tid != trial_id and rs and rs[-1][0] >= t]
        if len(others) < self.min_samples_required:
            return self.CONTINUE
        means = [m for m in (self._running_mean(tid, t) for tid in others) if m is not None]
        if not means:
            return self.CONTINUE
        median = statistics.median(means)
        best = max(v for _, v in self.results[trial_id])
        if best < median:
            self.stopped.add(trial_id)
            return self.STOP
        return self.CONTINUE

    def debug_string(self):
        return f"Using MedianStoppingRule: num_stopped: {len(self.stopped)}."


class HyperBandScheduler(TrialScheduler):
    def __init__(self, *a, **kw):
        raise NotImplementedError("kray.tune has no synchronous HyperBand (it pauses "
                                  "trials); use ASHAScheduler")


class PopulationBasedTraining(TrialScheduler):
    def __init__(self, *a, **kw):
        raise NotImplementedError("kray.tune has no PopulationBasedTraining yet")

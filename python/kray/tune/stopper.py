# SPDX-License-Identifier: Apache-2.0
"""Stoppers: objects given as stop= (Ray's tune.stopper)."""


class Stopper:
    def __call__(self, trial_id, result):
        return False

    def stop_all(self):
        return False


class MaximumIterationStopper(Stopper):
    def __init__(self, max_iter):
        self.max_iter = max_iter

    def __call__(self, trial_id, result):
        return result["training_iteration"] >= self.max_iter


class TimeoutStopper(Stopper):
    def __init__(self, timeout):
        import time
        self.end = time.time() + (timeout.total_seconds() if hasattr(timeout, "total_seconds")
                                  else timeout)

    def stop_all(self):
        import time
        return time.time() >= self.end

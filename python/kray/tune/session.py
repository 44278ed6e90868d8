# SPDX-License-Identifier: Apache-2.0
"""ray.air.session's functions for function trainables: report(metrics, checkpoint=),
get_checkpoint(), get_trial_id(), get_trial_name(), get_trial_dir()."""
from .trainable import (get_checkpoint, get_trial_dir, get_trial_id,  # noqa: F401
                        get_trial_name)
from .trainable import report as _report


def report(metrics, *, checkpoint=None):
    _report(metrics, checkpoint=checkpoint)

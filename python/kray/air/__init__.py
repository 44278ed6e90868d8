# SPDX-License-Identifier: Apache-2.0
"""kray.air: the names of Ray AIR that Tune programs import (session, Checkpoint and the
configs)."""
from ..tune import session  # noqa: F401
from ..tune.checkpoint import Checkpoint  # noqa: F401
from ..tune.tuner import (CheckpointConfig, FailureConfig, Result, RunConfig,  # noqa: F401
                          ScalingConfig)

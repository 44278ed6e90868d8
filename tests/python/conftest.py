# SPDX-License-Identifier: Apache-2.0
"""Fixtures of kray's Python tests.  Each test module starts its own private krayd
(kray.init() without an address) and stops it at the end; tests that need their own
settings start one of their own with `fresh`.  Run with `make test-python`."""
import os
import sys

import pytest

# A krayd started by `kray start` must not be picked up: the tests make their own.
os.environ.pop("KRAY_ADDRESS", None)

import kray  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("KRAY_BUILD", os.path.join(ROOT, "build"))


@pytest.fixture(scope="module")
def _module_krayd():
    yield
    kray.shutdown()


@pytest.fixture
def ray_start(_module_krayd):
    """kray, connected to this module's private krayd (started on first use)."""
    if not kray.is_initialized():
        kray.init(num_cpus=2)
    return kray


@pytest.fixture
def fresh():
    """No krayd is connected before the test; whatever it starts is stopped after."""
    if kray.is_initialized():
        kray.shutdown()
    yield kray
    kray.shutdown()


def python_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env

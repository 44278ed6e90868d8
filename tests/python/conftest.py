# SPDX-License-Identifier: Apache-2.0
"""Fixtures of kray's Python tests.  Each test module starts its own private krayd
(kray.init() without an address) and stops it at the end; tests that need their own
settings start one of their own with `fresh`.  Run with `make test-python`."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

# A krayd started by `kray start` must not be picked up: the tests make their own.
os.environ.pop("KRAY_ADDRESS", None)

import kray  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("KRAY_BUILD", os.path.join(ROOT, "build"))


def pytest_runtest_logreport(report):
    """Each skipped test, with its reason, goes to $KRAY_SKIP_LOG (`make test` lists them
    at the end, beside the Criterion suites' skips: tests/skiplog.c)."""
    path = os.environ.get("KRAY_SKIP_LOG")
    if not path or not report.skipped:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    with open(path, "a") as f:
        f.write(f"{report.nodeid}: {reason.removeprefix('Skipped: ')}\n")


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


@pytest.fixture
def krayd_socket(tmp_path_factory):
    """A krayd of the test's own (as `kray start` runs one), on a private socket: several
    drivers can connect to it.  Stopped (SIGTERM to the pid started) at the end."""
    d = tempfile.mkdtemp(prefix="kray-pytest-")
    sock = os.path.join(d, "krayd.sock")
    r, w = os.pipe()
    p = subprocess.Popen([os.path.join(BUILD, "bin", "krayd"), "--socket", sock,
                          "--num-cpus", "2", "--ready-fd", str(w), "--log-level", "warn",
                          "--remove-dir", d], pass_fds=(w,))
    os.close(w)
    try:
        assert os.read(r, 1), "krayd did not start"
        yield sock
    finally:
        os.close(r)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def python_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env

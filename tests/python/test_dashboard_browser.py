# SPDX-License-Identifier: Apache-2.0
"""A real browser on the dashboard (docs/dashboard.md): headless Chromium (Debian's
`chromium`, installed by `make deps`) loads each view of the page from a live krayd that
has run tasks, holds an actor and has spilled an object, and the DOM it renders (after the
page's own fetches of /api/v1/) has the expected rows.  Screenshots go to
build/dashboard-screenshots/ for a person to look at.  Skips, saying so, without
chromium."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

from conftest import BUILD

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="no headless browser: Debian's chromium is not "
                                       "installed (make deps installs it)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live():
    """A krayd with the dashboard on loopback and a small store (so an object spills),
    which this module's driver fills; stopped by its pid at the end."""
    import kray
    if kray.is_initialized():
        kray.shutdown()
    d = tempfile.mkdtemp(prefix="kray-browser-")
    sock, port = os.path.join(d, "krayd.sock"), _free_port()
    r, w = os.pipe()
    p = subprocess.Popen([os.path.join(BUILD, "bin", "krayd"), "--socket", sock,
                          "--num-cpus", "2", "--ready-fd", str(w), "--log-level", "warn",
                          "--store-size", "8M", "--pool-size", "0",
                          "--dashboard", f"127.0.0.1:{port}"], pass_fds=(w,))
    os.close(w)
    try:
        assert os.read(r, 1), "krayd did not start"
        kray.init(address=sock)

        @kray.remote
        def browser_square(x):
            return x * x

        @kray.remote
        class BrowserCounter:
            def __init__(self):
                self.n = 0

            def incr(self):
                self.n += 1
                return self.n

        assert kray.get([browser_square.remote(i) for i in range(20)])[3] == 9
        c = BrowserCounter.remote()
        assert kray.get(c.incr.remote()) == 1
        big = [kray.put(bytes([i]) * (3 << 20)) for i in range(4)]  # 12 MiB in an 8M store
        from kray.util.state import list_objects
        assert any(o["location"] == "SPILLED" for o in list_objects()), list_objects()
        yield port, c, big
    finally:
        kray.shutdown()
        os.close(r)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def _browse(port, view):
    """The DOM after the page ran (virtual time lets its fetches finish), and a
    screenshot of the view."""
    shots = os.path.join(BUILD, "dashboard-screenshots")
    os.makedirs(shots, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="kray-chromium-")
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            "--virtual-time-budget=8000", "--window-size=1280,900"]
    url = f"http://127.0.0.1:{port}/#{view}"
    try:
        dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True,
                             timeout=120)
        assert dom.returncode == 0, dom.stderr[-2000:]
        subprocess.run(base + [f"--screenshot={os.path.join(shots, view + '.png')}", url],
                       capture_output=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert f'data-loaded="{view}"' in dom.stdout, dom.stdout[-3000:]
    return dom.stdout


def _rows(dom, table_id):
    m = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert m, f"no table {table_id}"
    return re.findall(r'<tr class="row">(.*?)</tr>', m.group(1), re.S)


def test_cluster_view(live):
    dom = _browse(live[0], "cluster")
    rows = _rows(dom, "nodes-table")
    assert len(rows) == 1 and "ALIVE" in rows[0]


def test_workers_view(live):
    rows = _rows(_browse(live[0], "workers"), "workers-table")
    assert len(rows) >= 2  # the pool, and the actor's worker
    assert any("IDLE" in r or "BUSY" in r for r in rows)


def test_tasks_view(live):
    dom = _browse(live[0], "tasks")
    fns = _rows(dom, "functions-table")
    assert any("browser_square" in r and "20" in r for r in fns), fns
    assert _rows(dom, "slow-table")


def test_actors_view(live):
    rows = _rows(_browse(live[0], "actors"), "actors-table")
    assert any("BrowserCounter" in r and "ALIVE" in r for r in rows), rows


def test_objects_view(live):
    rows = _rows(_browse(live[0], "objects"), "objects-table")
    assert any("SPILLED" in r for r in rows), rows
    assert any("3.0 MiB" in r for r in rows), rows


def test_timeline_view(live):
    dom = _browse(live[0], "timeline")
    assert '<svg id="timeline-svg"' in dom
    assert len(re.findall(r'<rect class="bar', dom)) >= 20

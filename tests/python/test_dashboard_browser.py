# SPDX-License-Identifier: Apache-2.0
"""A real browser on the dashboard (docs/dashboard.md): headless Chromium (Debian's
`chromium`, installed by `make deps`) loads each view of the page from a live krayd that
has run tasks (one raised), runs and queues more, holds an actor and a pending one, and has
spilled an object; the DOM it renders (after the page's own fetches of /api/v1/) has the
expected rows, and the charts (Chart.js, Debian's libjs-chart.js, served as /chart.js)
painted their canvases.  Screenshots go to
build/dashboard-screenshots/ for a person to look at.  Skips, saying so, without
chromium."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from test_cluster import _free_port, _krayd  # one way to start a node, shared
from conftest import BUILD

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="no headless browser: Debian's chromium is not "
                                       "installed (make deps installs it)")


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

        @kray.remote
        def browser_fail():
            raise ValueError("browser boom")

        @kray.remote
        def browser_sleep(s):
            import time
            time.sleep(s)
            return s

        @kray.remote
        class BrowserWaiting:
            def __init__(self, x):
                self.x = x

        assert kray.get([browser_square.remote(i) for i in range(20)])[3] == 9
        failing = browser_fail.remote()
        kray.wait([failing], timeout=30)  # through krayd: its lists have no fast calls
        with pytest.raises(Exception, match="browser boom"):
            kray.get(failing)
        c = BrowserCounter.remote()
        assert kray.get(c.incr.remote()) == 1
        big = [kray.put(bytes([i]) * (3 << 20)) for i in range(4)]  # 12 MiB in an 8M store
        from kray.util.state import list_objects
        assert any(o["location"] == "SPILLED" for o in list_objects()), list_objects()
        # Two tasks that run (2 CPUs) and one queued behind them, and an actor waiting for
        # a constructor argument one of them makes; all still so while the browser looks.
        sleepers = [browser_sleep.remote(300) for _ in range(3)]
        waiting = BrowserWaiting.remote(sleepers[0])
        import time
        time.sleep(2)  # the history's samples: a second each
        yield port, c, big, sleepers, waiting
    finally:
        kray.shutdown()
        os.close(r)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def _browse(port, view, shot=None):
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
        subprocess.run(base + [f"--screenshot={os.path.join(shots, (shot or view) + '.png')}", url],
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


def _painted(dom, canvas_id):
    m = re.search(rf'<canvas id="{canvas_id}"[^>]*data-painted="(\d+)"', dom)
    assert m, f"no chart {canvas_id} drawn"
    return int(m.group(1))


def test_tasks_view(live):
    dom = _browse(live[0], "tasks")
    fns = _rows(dom, "functions-table")
    assert any("browser_square" in r and "20" in r for r in fns), fns
    assert _rows(dom, "slow-table")
    live_rows = _rows(dom, "live-table")
    assert sum("browser_sleep" in r and "RUNNING" in r for r in live_rows) == 2, live_rows
    assert any("browser_sleep" in r and "PENDING_NODE_ASSIGNMENT" in r
               for r in live_rows), live_rows
    assert any("browser_fail" in r for r in _rows(dom, "failed-table"))
    assert _painted(dom, "tasks-chart") > 1000
    assert '<div id="view"><p id="chart-missing"' not in dom


def test_actors_view(live):
    rows = _rows(_browse(live[0], "actors"), "actors-table")
    assert any("BrowserCounter" in r and "ALIVE" in r for r in rows), rows
    assert any("BrowserWaiting" in r and "PENDING_CREATION" in r and
               "waiting for 1 constructor argument" in r for r in rows), rows


def test_objects_view(live):
    rows = _rows(_browse(live[0], "objects"), "objects-table")
    assert any("SPILLED" in r for r in rows), rows
    assert any("3.0 MiB" in r for r in rows), rows
    assert _painted(_browse(live[0], "objects"), "store-chart") > 1000


def test_timeline_view(live):
    dom = _browse(live[0], "timeline")
    assert _painted(dom, "timeline-chart") > 1000
    assert '<div id="view"><p id="chart-missing"' not in dom


def test_without_chart_library(tmp_path):
    """Without the charting library the page still works, draws its timeline by hand and
    says the library is missing."""
    sock, port = str(tmp_path / "krayd.sock"), _free_port()
    r, w = os.pipe()
    env = dict(os.environ, KRAY_DASHBOARD_CHARTJS=str(tmp_path / "none.js"))
    p = subprocess.Popen([os.path.join(BUILD, "bin", "krayd"), "--socket", sock,
                          "--num-cpus", "1", "--ready-fd", str(w), "--log-level", "warn",
                          "--dashboard", f"127.0.0.1:{port}"], pass_fds=(w,), env=env)
    os.close(w)
    try:
        assert os.read(r, 1), "krayd did not start"
        dom = _browse(port, "objects")
        assert '<div id="view"><p id="chart-missing"' in dom
        assert _rows(dom, "objects-table") == []
    finally:
        os.close(r)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)


def test_cluster_on_the_heads_dashboard(tmp_path):
    """Two nodes on this machine: the head's page shows each node's workers (asked over
    the node link) and one timeline with both nodes' rows."""
    d, port, dport = str(tmp_path), _free_port(), _free_port()
    procs = []
    try:
        head, head_sock = _krayd(d, "head", "--head", "--node-listen", f"127.0.0.1:{port}",
                                 "--resources", "n1:1", "--dashboard", f"127.0.0.1:{dport}")
        procs.append(head)
        node, _ = _krayd(d, "node", "--address", f"127.0.0.1:{port}", "--token-file",
                         head_sock + ".token", "--node-listen", "127.0.0.1:0",
                         "--resources", "n2:1")
        procs.append(node)
        driver = f"""
import time, kray
kray.init(address={head_sock!r})
deadline = time.monotonic() + 20
while len([n for n in kray.nodes() if n["Alive"]]) < 2:
    assert time.monotonic() < deadline
    time.sleep(0.1)
@kray.remote
def cluster_square(x):
    return x * x
for r in ("n1", "n2"):
    assert kray.get([cluster_square.options(resources={{r: 1}}).remote(i)
                     for i in range(5)]) == [i * i for i in range(5)]
"""
        env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
        run = subprocess.run([sys.executable, "-c", driver], env=env, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        time.sleep(1)
        dom = _browse(dport, "cluster", "cluster-2-nodes")
        sections = re.findall(r'<table id="node-workers-([0-9a-f]{8})">', dom)
        assert len(set(sections)) == 2, dom[-3000:]
        assert '<p class="err node-error">it did' not in dom
        dom = _browse(dport, "timeline", "timeline-2-nodes")
        m = re.search(r'<canvas id="timeline-chart"[^>]*data-rows="([^"]*)"', dom)
        assert m, "no timeline chart"
        nodes = {row.split()[1] for row in m.group(1).split("|") if row.startswith("node ")}
        assert nodes == set(sections), (m.group(1), sections)
    finally:
        for p in procs:  # the pids started here, nothing else
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)

# SPDX-License-Identifier: Apache-2.0
"""kray.util.metrics (Ray's ray.util.metrics): recorded by a driver, a task and an
actor, merged by the node's krayd, scraped from its Prometheus endpoint; and every
check a metric makes of its arguments."""
import math
import re
import socket
import time
import urllib.request

import pytest

import kray
from kray.util import metrics
from kray.util.metrics import Counter, Gauge, Histogram


@pytest.fixture(scope="module")
def port():
    kray.shutdown()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
    kray.init(num_cpus=2, _metrics_export_port=p)
    yield p
    kray.shutdown()


def scrape(port):
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                  timeout=10).read().decode()


def samples(text):
    """{(name, frozenset of (label, value)): value} of a scrape."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                      m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def wait_for(port, name, labels, want, timeout=10):
    """The sample's value once it is want (krayd hears of workers' updates a little
    after their call ends)."""
    key = (name, frozenset(labels.items()))
    deadline = time.monotonic() + timeout
    while True:
        got = samples(scrape(port)).get(key)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_driver_counter_gauge_histogram(port):
    c = Counter("drv_requests", description="Requests served.", tag_keys=("route",))
    c.set_default_tags({"route": "/"})
    c.inc()
    c.inc(2.0, tags={"route": "/x"})
    c.inc(0.5)
    g = Gauge("drv_curr", description="Current count.", tag_keys=("actor",))
    g.set(3, tags={"actor": "a"})
    g.set(7, tags={"actor": "a"})
    g.set(None, tags={"actor": "a"})  # a no-op, as Ray's
    h = Histogram("drv_latency_ms", description="Latency.", boundaries=[10, 100, 1000])
    for v in (5, 42, 42, 5000):
        h.observe(v)
    assert metrics._flush()
    text = scrape(port)
    s = samples(text)
    assert s[("ray_drv_requests_total", frozenset({("route", "/")}))] == 1.5
    assert s[("ray_drv_requests_total", frozenset({("route", "/x")}))] == 2.0
    assert s[("ray_drv_curr", frozenset({("actor", "a")}))] == 7
    le = lambda b: frozenset({("le", b)})  # noqa: E731
    assert s[("ray_drv_latency_ms_bucket", le("10"))] == 1
    assert s[("ray_drv_latency_ms_bucket", le("100"))] == 3  # cumulative
    assert s[("ray_drv_latency_ms_bucket", le("1000"))] == 3
    assert s[("ray_drv_latency_ms_bucket", le("+Inf"))] == 4
    assert s[("ray_drv_latency_ms_count", frozenset())] == 4
    assert s[("ray_drv_latency_ms_sum", frozenset())] == 5089
    assert "# HELP ray_drv_requests_total Requests served.\n" in text
    assert "# TYPE ray_drv_requests_total counter\n" in text
    assert "# TYPE ray_drv_curr gauge\n" in text
    assert "# TYPE ray_drv_latency_ms histogram\n" in text
    # Counters add up over sends.
    c.inc(3, tags={"route": "/x"})
    assert metrics._flush()
    assert samples(scrape(port))[("ray_drv_requests_total",
                                  frozenset({("route", "/x")}))] == 5.0


def test_escaped_label_values_and_help(port):
    c = Counter("esc_total_x", description='a "quoted"\\ help\nline two', tag_keys=("v",))
    c.inc(tags={"v": 'say "hi"\\\n'})
    assert metrics._flush()
    text = scrape(port)
    assert '# HELP ray_esc_total_x_total a "quoted"\\\\ help\\nline two\n' in text
    assert 'ray_esc_total_x_total{v="say \\"hi\\"\\\\\\n"} 1\n' in text


def test_task_and_actor_merge_with_driver(port):
    @kray.remote
    def work(n):
        c = Counter("merged_calls", description="Calls.", tag_keys=("who",))
        for _ in range(n):
            c.inc(tags={"who": "any"})
        Histogram("merged_size", boundaries=[1, 10]).observe(n)
        return n

    @kray.remote
    class Meter:
        def __init__(self):
            self.g = Gauge("actor_level", description="Level.", tag_keys=("actor",))
            self.g.set(1, tags={"actor": "m"})
            self.c = Counter("merged_calls", description="Calls.", tag_keys=("who",))

        def bump(self, v):
            self.g.set(v, tags={"actor": "m"})
            self.c.inc(10, tags={"who": "any"})
            return v

    assert kray.get([work.remote(3), work.remote(4)]) == [3, 4]
    m = Meter.remote()
    assert kray.get(m.bump.remote(42)) == 42
    Counter("merged_calls", description="Calls.", tag_keys=("who",)).inc(
        100, tags={"who": "any"})
    assert metrics._flush()
    assert wait_for(port, "ray_merged_calls_total", {"who": "any"}, 117) == 117
    assert wait_for(port, "ray_actor_level", {"actor": "m"}, 42) == 42
    assert wait_for(port, "ray_merged_size_count", {}, 2) == 2
    s = samples(scrape(port))
    assert s[("ray_merged_size_bucket", frozenset({("le", "1")}))] == 0
    assert s[("ray_merged_size_bucket", frozenset({("le", "10")}))] == 2
    assert s[("ray_merged_size_sum", frozenset())] == 7


def test_type_conflict_is_an_error(port):
    Gauge("conflict_g")
    with pytest.raises(ValueError, match="is a Gauge already"):
        Counter("conflict_g")
    Histogram("conflict_h", boundaries=[1, 2])
    with pytest.raises(ValueError, match="other boundaries"):
        Histogram("conflict_h", boundaries=[1, 3])
    Histogram("conflict_h", boundaries=[1, 2])  # the same again is fine

    @kray.remote
    def other_type():
        try:
            Counter("conflict_remote")
        except ValueError as e:
            return str(e)
        return None

    Gauge("conflict_remote").set(1)
    assert metrics._flush()
    why = kray.get(other_type.remote())
    assert why and "is a Gauge already" in why, why


def test_validation_errors():
    with pytest.raises(ValueError, match="Empty name"):
        Counter("")
    with pytest.raises(TypeError, match="tag_keys should be a tuple"):
        Counter("v1", tag_keys=["a"])
    with pytest.raises(TypeError, match="Tag keys must be str"):
        Counter("v2", tag_keys=(1,))
    with pytest.raises(ValueError, match="reserved"):
        Counter("v3", tag_keys=("le",))
    with pytest.raises(ValueError, match="reserved"):
        Gauge("v4", tag_keys=("__name",))
    with pytest.raises(ValueError, match="label name"):
        Gauge("v5", tag_keys=("a-b",))
    c = Counter("v6", tag_keys=("a",))
    with pytest.raises(ValueError, match="Unrecognized tag key b"):
        c.set_default_tags({"b": "x"})
    with pytest.raises(TypeError, match="Tag values must be str"):
        c.set_default_tags({"a": 1})
    with pytest.raises(ValueError, match="Missing value for tag key"):
        c.inc()
    with pytest.raises(ValueError, match="Unrecognized tag key"):
        c.inc(tags={"a": "x", "zz": "y"})
    with pytest.raises(TypeError, match="Tag values must be str"):
        c.inc(tags={"a": 3})
    with pytest.raises(ValueError, match="value must be >0"):
        c.inc(0, tags={"a": "x"})
    with pytest.raises(ValueError, match="value must be >0"):
        c.inc(-1, tags={"a": "x"})
    with pytest.raises(ValueError, match="finite"):
        c.inc(math.inf, tags={"a": "x"})
    with pytest.raises(TypeError, match="value must be int or float"):
        c.inc("1", tags={"a": "x"})
    with pytest.raises(ValueError, match="boundaries argument should be provided"):
        Histogram("v7")
    with pytest.raises(ValueError, match="boundaries argument should be provided"):
        Histogram("v7", boundaries=[])
    with pytest.raises(ValueError, match="Use positive values"):
        Histogram("v8", boundaries=[0, 1])
    with pytest.raises(ValueError, match="Use positive values"):
        Histogram("v8", boundaries=[1, -2])
    with pytest.raises(ValueError, match="strictly ascending"):
        Histogram("v9", boundaries=[10, 5])
    with pytest.raises(ValueError, match="at most 64"):
        Histogram("v10", boundaries=list(range(1, 70)))
    with pytest.raises(ValueError, match="NaN"):
        Histogram("v11", boundaries=[1]).observe(math.nan)
    with pytest.raises(TypeError, match="value must be int or float"):
        Gauge("v12").set("x")
    with pytest.raises(ValueError, match="over 256 bytes"):
        Gauge("v13", tag_keys=("a",)).set(1, tags={"a": "x" * 300})
    with pytest.warns(UserWarning, match="Invalid metric name"):
        bad = Counter("1bad")
    bad.inc()  # discarded, as Ray does
    assert not any(k[0] == "1bad" for k in metrics._pending)


def test_info_default_tags_and_pickle():
    import pickle
    c = Counter("info_c", description="desc")
    assert c.info == {"name": "info_c", "description": "desc", "tag_keys": (),
                      "default_tags": {}}
    c2 = Counter("info_d", tag_keys=("a",))
    assert c2.set_default_tags({"a": "b"}) is c2
    assert c2.info["default_tags"] == {"a": "b"}
    h = Histogram("info_h", boundaries=[1.0, 2.0])
    assert h.info["boundaries"] == [1.0, 2.0]
    h2 = pickle.loads(pickle.dumps(h))
    assert isinstance(h2, Histogram) and h2.boundaries == [1.0, 2.0]


def test_kray_own_metrics_count_updates(port):
    Counter("own_updates").inc()
    assert metrics._flush()
    s = samples(scrape(port))
    assert s[("kray_app_metric_updates_total", frozenset())] >= 1
    assert s[("kray_app_metric_series", frozenset())] >= 1


def test_series_name_clash_is_an_error(port):
    Histogram("clash_x", boundaries=[1])
    with pytest.raises(ValueError, match="exports"):
        Gauge("clash_x_count")


def test_async_and_threaded_actors(port):
    @kray.remote
    class Async:
        async def hit(self):
            Counter("async_hits").inc()
            return 1

    @kray.remote(max_concurrency=2)
    class Threaded:
        def hit(self):
            Counter("threaded_hits").inc()
            return 1

    a = Async.remote()
    assert kray.get([a.hit.remote() for _ in range(3)]) == [1, 1, 1]
    t = Threaded.remote()
    assert kray.get([t.hit.remote() for _ in range(3)]) == [1, 1, 1]
    assert wait_for(port, "ray_async_hits_total", {}, 3) == 3
    # A threaded actor's methods run on threads without the worker's connection: their
    # updates go with a later call's result (the loop thread's).
    kray.get(t.hit.remote())
    kray.get(t.hit.remote())
    got = wait_for(port, "ray_threaded_hits_total", {}, 5)
    assert got is not None and got >= 4, got


def test_reporting_does_not_stall_other_threads(port, monkeypatch):
    """The driver's reporting thread waits for the connection (held by a long get) without
    the GIL: a thread of the program that records goes on meanwhile."""
    import threading

    @kray.remote
    def slow():
        time.sleep(2)
        return 1

    monkeypatch.setattr(metrics, "REPORT_INTERVAL_S", 0.1)
    c = Counter("stall_ticks")
    stop = threading.Event()
    gaps = []

    def ticker():
        last = time.monotonic()
        while not stop.is_set():
            c.inc()
            time.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ref = slow.remote()
    time.sleep(0.3)  # the task runs; the get below holds the connection while it waits
    t = threading.Thread(target=ticker)
    t.start()
    assert kray.get(ref) == 1
    stop.set()
    t.join()
    assert gaps and max(gaps) < 0.5, max(gaps)
    assert metrics._flush()
    assert wait_for(port, "ray_stall_ticks_total", {}, float(len(gaps))) == len(gaps)


def test_system_config_report_interval(monkeypatch):
    """Ray's _system_config={"metrics_report_interval_ms": N} sets how often updates go."""
    import warnings
    from kray import _compat
    monkeypatch.setattr(metrics, "REPORT_INTERVAL_S", metrics.REPORT_INTERVAL_S)
    monkeypatch.setenv("KRAY_METRICS_REPORT_INTERVAL_MS", "1000")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing else in it: no "has no effect" warning
        _compat.init_options({"_system_config": {"metrics_report_interval_ms": 250}})
    assert metrics.REPORT_INTERVAL_S == 0.25
    with pytest.warns(RuntimeWarning, match="no effect"):
        _compat.init_options({"_system_config": {"metrics_report_interval_ms": 100,
                                                 "object_timeout_milliseconds": 5}})
    assert metrics.REPORT_INTERVAL_S == 0.1
    with pytest.raises(ValueError, match="must be > 0"):
        _compat.init_options({"_system_config": {"metrics_report_interval_ms": 0}})

# SPDX-License-Identifier: Apache-2.0
"""kray.timeline() as Ray's ray.timeline(): Chrome trace events of the tasks krayd's
workers ran, returned as a list or written to a file that chrome://tracing and Perfetto
open (docs/timeline.md)."""
import json

import pytest


def test_every_task_and_actor_call_is_an_event(ray_start):
    kray = ray_start

    @kray.remote
    def tl_square(x):
        return x * x

    @kray.remote
    def tl_boom():
        raise ValueError("boom")

    @kray.remote
    class TlCounter:
        def __init__(self):
            self.n = 0

        def incr(self):
            self.n += 1
            return self.n

    refs = [tl_square.remote(i) for i in range(25)]
    assert kray.get(refs) == [i * i for i in range(25)]
    # Waited on first, so that it runs through krayd: a call got at once may take the
    # fast path, which the timeline does not see (docs/timeline.md).
    ref = tl_boom.remote()
    kray.wait([ref], timeout=30)
    with pytest.raises(ValueError):
        kray.get(ref)
    c = TlCounter.remote()
    assert kray.get([c.incr.remote() for _ in range(5)]) == [1, 2, 3, 4, 5]

    events = kray.timeline()
    tasks = [e for e in events if e["ph"] == "X"]
    squares = [e for e in tasks if e["name"].endswith("tl_square")]
    assert len(squares) == 25
    ids = {e["args"]["task_id"] for e in squares}
    assert len(ids) == 25
    for e in squares:
        assert e["cat"] == "task" and e["args"]["state"] == "FINISHED"
        assert e["dur"] >= 0 and e["ts"] > 0
        assert e["args"]["submit_ts"] <= e["args"]["dispatch_ts"] <= e["args"]["end_ts"]
        assert e["ts"] + e["dur"] == pytest.approx(e["args"]["end_ts"], abs=1.0)
        assert e["pid"] == int(kray.get_runtime_context().get_node_id(), 16)
    # A Python exception travels as a pickled value krayd does not open, so the task is
    # recorded (state FAILED is for errors krayd sees: C tasks, dead workers, cancels).
    boom = [e for e in tasks if e["name"].endswith("tl_boom")]
    assert len(boom) == 1
    calls = [e for e in tasks if e["name"].endswith("incr")]
    assert len(calls) == 5
    assert all(e["cat"] == "actor_task" and len(e["args"]["actor_id"]) == 32 for e in calls)
    assert len({e["tid"] for e in calls}) == 1, "an actor's calls run on its one worker"
    # Every task's submit, dispatch and end are in order and close together (an actor's
    # constructor too, which is made by its creation rather than submitted).
    for e in tasks:
        assert 0 <= e["args"]["queue_us"] < 60e6, e
        assert e["args"]["submit_ts"] <= e["args"]["dispatch_ts"] <= e["args"]["end_ts"], e
    named = {e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {e["tid"] for e in tasks} <= named


def test_timeline_to_file(ray_start, tmp_path):
    kray = ray_start

    @kray.remote
    def tl_one():
        return 1

    ref = tl_one.remote()
    kray.wait([ref], timeout=30)  # through krayd: the timeline has no fast calls
    assert kray.get(ref) == 1
    path = tmp_path / "trace.json"
    assert kray.timeline(filename=str(path)) is None
    trace = json.loads(path.read_text())
    assert any(e["ph"] == "X" and e["name"].endswith("tl_one") for e in trace["traceEvents"])
    assert trace["otherData"]["timeline_events"] == 10000


def test_timeline_needs_init(fresh):
    with pytest.raises(RuntimeError):
        fresh.timeline()

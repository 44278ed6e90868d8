# SPDX-License-Identifier: Apache-2.0
"""Ray's names and options, old and new (issue 17, parts 6 and 7): programs written for any
Ray version start; errors keep the user's whole message."""
import os
import pickle
import socket
import urllib.request
import warnings

import pytest


def test_old_and_new_init_options_are_accepted(fresh):
    ray = fresh
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ray.init(num_cpus=1, include_webui=False, include_dashboard=False,
                 log_to_driver=True, logging_level=20, configure_logging=True,
                 local_mode=False, _system_config={"object_timeout_milliseconds": 200},
                 redis_max_clients=None, huge_pages=False)
    msgs = [str(x.message) for x in w]
    assert any("'include_webui' is Ray's old name for 'include_dashboard'" in m for m in msgs)
    assert any("_system_config" in m and "no effect" in m for m in msgs), msgs
    # Ray's defaults ask for nothing: no warning for them.
    assert not any("log_to_driver" in m or "local_mode" in m or "huge_pages" in m
                   for m in msgs), msgs
    assert ray.get(ray.put(3)) == 3


def test_option_that_asks_for_something_warns(fresh):
    ray = fresh
    with pytest.warns(RuntimeWarning, match="local_mode=True has no effect"):
        ray.init(num_cpus=1, local_mode=True)
    assert ray.get(ray.put(1)) == 1


def test_unknown_init_option_raises_as_in_ray(fresh):
    with pytest.raises(RuntimeError, match="Unknown keyword argument"):
        fresh.init(num_cpus=1, no_such_option=3)
    assert not fresh.is_initialized()


def test_redis_address_is_the_old_address(fresh, krayd_socket):
    ray = fresh
    with pytest.warns(DeprecationWarning, match="redis_address"):
        ray.init(redis_address=krayd_socket)
    assert ray.get(ray.put("x")) == "x"


def test_job_config_code_search_path_and_namespace(fresh):
    ray = fresh
    from kray.job_config import JobConfig
    build = os.environ.get("KRAY_BUILD", os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "build"))
    cfg = JobConfig(code_search_path=[os.path.join(build, "tests")], ray_namespace="jc")
    ray.init(num_cpus=1, job_config=cfg)
    assert ray.get_runtime_context().namespace == "jc"
    assert ray.get(ray.cfunction("add").remote(2, 3)) == 5


def test_metrics_export_port_serves_prometheus(fresh):
    ray = fresh
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(num_cpus=1, _metrics_export_port=port)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    assert b"kray_" in body


def test_wait_on_nothing(ray_start):
    assert ray_start.wait([]) == ([], [])
    assert ray_start.wait([], num_returns=1, timeout=0) == ([], [])


def test_old_names(ray_start):
    ray = ray_start
    assert ray.ObjectID is ray.ObjectRef
    assert isinstance(ray.put(1), ray.ObjectID)
    assert ray.get_dashboard_url() is None and ray.get_webui_url() is None
    ray.show_in_dashboard("hello")
    assert ray.LOCAL_MODE != ray.SCRIPT_MODE != ray.WORKER_MODE
    assert ray.Language.PYTHON == 0
    from kray.actor import ActorClass, ActorHandle, exit_actor  # noqa: F401
    from kray.remote_function import RemoteFunction  # noqa: F401
    from kray.runtime_context import get_runtime_context
    assert get_runtime_context().get_job_id() == ray.get_runtime_context().get_job_id()
    with pytest.raises(ray.exceptions.CrossLanguageError):
        ray.java_function("io.ray.Foo", "bar")


def test_id_types(ray_start):
    ray = ray_start
    a = ray.ActorID.from_hex("ab" * 16)
    assert a.hex() == "ab" * 16 and a.binary() == b"\xab" * 16 and ray.ActorID.size() == 16
    assert a == ray.ActorID(b"\xab" * 16) and hash(a) == hash(ray.ActorID(b"\xab" * 16))
    assert ray.JobID.nil().is_nil() and not a.is_nil()
    assert pickle.loads(pickle.dumps(a)) == a
    assert ray.JobID.from_hex(ray.get_runtime_context().get_job_id()).size() == 4
    with pytest.raises(ValueError):
        ray.TaskID(b"short")


def test_get_gpu_ids_follows_cuda_visible_devices(ray_start, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert ray_start.get_gpu_ids() == [0, 2]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert ray_start.get_gpu_ids() == []


def test_temporary_handle_answers_its_calls(ray_start):
    ray = ray_start

    @ray.remote
    class Counter:
        def __init__(self, n):
            self.n = n

        def add(self, k):
            self.n += k
            return self.n

    # The handle is gone as soon as the call is made: Ray still answers it.
    assert ray.get(Counter.remote(5).add.remote(2)) == 7
    refs = [Counter.remote(i).add.remote(1) for i in range(5)]
    assert ray.get(refs) == [1, 2, 3, 4, 5]


def test_exit_actor(ray_start):
    ray = ray_start

    @ray.remote
    class Quitter:
        def ping(self):
            return "pong"

        def quit(self):
            ray.actor.exit_actor()

    q = Quitter.options(max_restarts=2).remote()
    assert ray.get(q.ping.remote()) == "pong"
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(q.quit.remote())
    with pytest.raises(ray.exceptions.RayActorError):  # not restarted
        ray.get(q.ping.remote())

    @ray.remote
    def not_an_actor():
        ray.actor.exit_actor()
    with pytest.raises(TypeError, match="non-actor"):
        ray.get(not_an_actor.remote())


def test_constructor_error_keeps_the_whole_message(ray_start):
    ray = ray_start

    @ray.remote
    class Broken:
        def __init__(self):
            raise ValueError("HEAD " + "x" * 20000 + " TAIL")

        def f(self):
            return 1

    b = Broken.remote()
    with pytest.raises(ray.exceptions.ActorDiedError) as e:
        ray.get(b.f.remote())
    text = str(e.value)
    assert "error raised in its creation task" in text
    assert "ValueError: HEAD " in text and text.rstrip().endswith("TAIL")
    assert "x" * 20000 in text


def test_task_error_keeps_a_long_message(ray_start):
    ray = ray_start

    @ray.remote
    def fails():
        raise KeyError("K" * 200000 + "END")

    with pytest.raises(KeyError) as e:
        ray.get(fails.remote())
    assert "K" * 200000 + "END" in str(e.value)


def test_util_helpers(ray_start):
    ray = ray_start
    import threading
    from kray.util import (deregister_serializer, get_node_ip_address,
                           inspect_serializability, register_serializer)
    from kray.util.scheduling_strategies import (NodeAffinitySchedulingStrategy,
                                                 PlacementGroupSchedulingStrategy)

    assert get_node_ip_address().count(".") == 3

    lock = threading.Lock()

    def uses_lock():
        return lock

    ok, bad = inspect_serializability(uses_lock, name="uses_lock")
    assert not ok and any("lock" in label for label, _ in bad), bad
    assert inspect_serializability(lambda: 1)[0]

    class Point:
        def __init__(self, x):
            self.x = x

        def __reduce__(self):
            raise TypeError("not this way")

    register_serializer(Point, serializer=lambda p: p.x, deserializer=lambda x: ("P", x))
    try:
        assert ray.get(ray.put(Point(4))) == ("P", 4)
    finally:
        deregister_serializer(Point)

    @ray.remote
    def here():
        return 1

    node = ray.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
    assert ray.get(here.options(scheduling_strategy=strategy).remote()) == 1
    assert ray.get(here.options(scheduling_strategy="SPREAD").remote()) == 1
    assert PlacementGroupSchedulingStrategy(None).placement_group_bundle_index == -1


def test_list_named_actors(fresh):
    ray = fresh
    ray.init(num_cpus=1, namespace="here")
    from kray.util import list_named_actors

    @ray.remote
    class Named:
        def ping(self):
            return 1

    a = Named.options(name="alpha").remote()
    b = Named.options(name="beta", namespace="elsewhere").remote()
    ray.get([a.ping.remote(), b.ping.remote()])
    Named.remote()  # unnamed: never listed
    assert list_named_actors() == ["alpha"]
    both = list_named_actors(all_namespaces=True)
    assert {"name": "alpha", "namespace": "here"} in both
    assert {"name": "beta", "namespace": "elsewhere"} in both
    ray.kill(a)
    assert list_named_actors() == []

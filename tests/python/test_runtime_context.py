# SPDX-License-Identifier: Apache-2.0
"""get_runtime_context(): job, task, actor and node ids."""
import time


def test_driver_context(ray_start):
    ray = ray_start
    ctx = ray.get_runtime_context()
    assert len(ctx.get_job_id()) == 8 and len(ctx.get_node_id()) == 8
    assert ctx.get_task_id() is None and ctx.get_actor_id() is None
    assert ctx.job_id == ctx.get_job_id()


def test_task_context(ray_start):
    ray = ray_start

    @ray.remote
    def ids():
        c = ray.get_runtime_context()
        return c.get_job_id(), c.get_node_id(), c.get_task_id(), c.get_actor_id()

    ctx = ray.get_runtime_context()
    r1, r2 = ids.remote(), ids.remote()
    (job, node, task, actor), (_, _, task2, _) = ray.get([r1, r2])
    assert job == ctx.get_job_id() and node == ctx.get_node_id()
    assert actor is None
    assert task and task2 and task != task2
    assert task == r1.task_id()  # the task id is the one its return ref names


def test_actor_context(ray_start):
    ray = ray_start

    @ray.remote
    class Who:
        def ids(self):
            c = ray.get_runtime_context()
            return c.get_actor_id(), c.get_task_id()

    w = Who.remote()
    actor, task = ray.get(w.ids.remote())
    assert actor == w._actor_id
    assert task is not None


def test_task_names(ray_start):
    """get_task_name(): the function's name, "Class.method", or .options(name=...);
    get_task_function_name(): "module.qualname", as Ray's; None in a driver."""
    ray = ray_start

    @ray.remote
    def rc_named():
        c = ray.get_runtime_context()
        return c.get_task_name(), c.get_task_function_name()

    @ray.remote
    class RcActor:
        def m(self):
            c = ray.get_runtime_context()
            return c.get_task_name(), c.get_task_function_name()

        async def am(self):
            c = ray.get_runtime_context()
            return c.get_task_name(), c.get_task_function_name()

    @ray.remote
    class RcAsync:
        async def am(self):
            c = ray.get_runtime_context()
            return c.get_task_name(), c.get_task_function_name()

    @ray.remote(max_concurrency=2)
    class RcThreaded:
        def m(self):
            return ray.get_runtime_context().get_task_name()

    ctx = ray.get_runtime_context()
    assert ctx.get_task_name() is None and ctx.get_task_function_name() is None
    mod = __name__
    assert ray.get(rc_named.remote()) == ("rc_named", f"{mod}.test_task_names.<locals>."
                                          "rc_named")
    assert ray.get(rc_named.options(name="custom").remote())[0] == "custom"
    assert ray.get(rc_named.remote())[0] == "rc_named"  # the name was for that call only
    a = RcActor.remote()
    assert ray.get(a.m.remote()) == ("RcActor.m", f"{mod}.RcActor.m")
    assert ray.get(a.m.options(name="renamed").remote())[0] == "renamed"
    assert ray.get(a.m.remote())[0] == "RcActor.m"
    b = RcAsync.remote()
    assert ray.get(b.am.remote()) == ("RcAsync.am", f"{mod}.RcAsync.am")
    assert ray.get(b.am.options(name="aname").remote())[0] == "aname"
    t = RcThreaded.remote()
    assert ray.get(t.m.remote()) == "RcThreaded.m"


def test_actor_name_and_handle(ray_start):
    """get_actor_name(): the name, "" when unnamed, None outside an actor; current_actor
    is the actor's own handle (RuntimeError outside an actor)."""
    import pytest
    ray = ray_start

    @ray.remote
    class RcSelf:
        def name(self):
            return ray.get_runtime_context().get_actor_name()

        def me(self):
            return ray.get_runtime_context().current_actor

        def by_name(self):
            t0 = time.monotonic()
            h = ray.get_actor("rc-self")  # itself: its methods known without asking it
            return h, time.monotonic() - t0

        def ping(self):
            return "pong"

    @ray.remote
    def rc_task():
        return ray.get_runtime_context().get_actor_name()

    ctx = ray.get_runtime_context()
    assert ctx.get_actor_name() is None
    with pytest.raises(RuntimeError):
        ctx.current_actor
    assert ray.get(rc_task.remote()) is None
    named = RcSelf.options(name="rc-self").remote()
    assert ray.get(named.name.remote()) == "rc-self"
    h = ray.get(named.me.remote())
    assert ray.get(h.ping.remote()) == "pong"
    assert h._ref.hex() == named._ref.hex()
    with pytest.raises(AttributeError):
        h.no_such_method  # its methods are known, as a handle from .remote()
    h2, took = ray.get(named.by_name.remote())
    assert took < 1.0, f"get_actor() of itself took {took:.2f} s"
    assert h2._ref.hex() == named._ref.hex() and ray.get(h2.ping.remote()) == "pong"
    with pytest.raises(AttributeError):
        h2.no_such_method
    other = RcSelf.options(name="rc-self", namespace="rc-ns").remote()
    assert ray.get(other.name.remote()) == "rc-self"
    assert ray.get(other.me.remote())._ref.hex() == other._ref.hex()
    plain = RcSelf.remote()
    assert ray.get(plain.name.remote()) == ""
    ph = ray.get(plain.me.remote())  # an unnamed actor's own handle too
    assert ph._ref.hex() == plain._ref.hex() and ray.get(ph.ping.remote()) == "pong"

    @ray.remote
    def rc_call(h):
        return ray.get(h.ping.remote())

    assert ray.get(rc_call.remote(ph)) == "pong"  # passed on like any handle


def test_context_properties(ray_start):
    import warnings
    from kray.util.placement_group import placement_group, remove_placement_group
    ray = ray_start
    ctx = ray.get_runtime_context()
    assert ctx.current_placement_group_id is None
    assert isinstance(ctx.gcs_address, str) and ctx.gcs_address
    assert ctx.get_node_labels() == {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = ctx.get()
    assert set(d) == {"job_id", "node_id", "namespace"}

    @ray.remote
    def rc_in_pg():
        c = ray.get_runtime_context()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return c.current_placement_group_id, sorted(c.get())

    pg = placement_group([{"CPU": 1}])
    assert pg.wait(10)
    from kray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
    pid, keys = ray.get(rc_in_pg.options(
        scheduling_strategy=PlacementGroupSchedulingStrategy(pg)).remote())
    assert pid == pg.id and keys == ["job_id", "namespace", "node_id", "task_id"]
    remove_placement_group(pg)


def test_actor_method_type(ray_start):
    """kray.actor.ActorMethod is the type of handle.method, as Ray's."""
    from kray.actor import ActorMethod
    ray = ray_start

    @ray.remote
    class RcM:
        def f(self):
            return 1

    h = RcM.remote()
    assert isinstance(h.f, ActorMethod)
    assert ray.get(h.f.remote()) == 1

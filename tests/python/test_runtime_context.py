# SPDX-License-Identifier: Apache-2.0
"""get_runtime_context(): job, task, actor and node ids."""


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

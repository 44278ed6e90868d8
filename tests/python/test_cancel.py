# SPDX-License-Identifier: Apache-2.0
"""cancel(force=, recursive=): queued tasks never run, running ones are killed (force) or
have their result replaced; get raises TaskCancelledError."""
import os
import time

import pytest


def wait_file(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_cancel_queued_task_never_runs(fresh, tmp_path):
    ray = fresh
    ray.init(num_cpus=1)

    @ray.remote
    def block(path):
        open(path, "w").close()
        time.sleep(1.5)
        return "blocker"

    @ray.remote
    def mark(path):
        open(path, "w").close()
        return "ran"

    first = block.remote(str(tmp_path / "started"))
    wait_file(tmp_path / "started")
    queued = mark.remote(str(tmp_path / "queued-ran"))  # the one CPU is busy
    ray.cancel(queued)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(queued, timeout=30)
    assert ray.get(first) == "blocker"
    assert not (tmp_path / "queued-ran").exists()


def test_cancel_waiting_for_arguments(ray_start):
    ray = ray_start

    @ray.remote
    def slow():
        time.sleep(1)
        return 1

    @ray.remote
    def after(x):
        return x + 1

    dep = slow.remote()
    waiting = after.remote(dep)
    ray.cancel(waiting)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(waiting, timeout=30)
    assert ray.get(dep) == 1


def test_force_cancel_kills_running_task(ray_start, tmp_path):
    ray = ray_start

    @ray.remote(max_retries=3)
    def forever(path):
        open(path, "w").close()
        time.sleep(120)

    ref = forever.remote(str(tmp_path / "running"))
    wait_file(tmp_path / "running")
    t = time.monotonic()
    ray.cancel(ref, force=True)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=30)
    assert time.monotonic() - t < 20  # killed, not retried


def test_cancel_running_without_force_interrupts(ray_start, tmp_path):
    ray = ray_start

    @ray.remote
    def sleeper(path):
        open(path, "w").close()
        try:
            time.sleep(60)
        except KeyboardInterrupt:  # what Ray raises in a task cancelled without force
            open(path + ".interrupted", "w").close()
            raise
        return "result"

    before = ray._kray.status()["workers_died"]
    ref = sleeper.remote(str(tmp_path / "running"))
    wait_file(tmp_path / "running")
    t = time.monotonic()
    ray.cancel(ref, force=False)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=30)
    assert time.monotonic() - t < 20, "the task was not interrupted"
    assert (tmp_path / "running.interrupted").exists()
    assert ray._kray.status()["workers_died"] == before  # the worker lives on

    @ray.remote
    def after():
        return "next task runs normally"

    assert ray.get([after.remote() for _ in range(4)]) == ["next task runs normally"] * 4


def test_recursive_cancel(ray_start, tmp_path):
    ray = ray_start

    @ray.remote
    def child(path):
        open(path, "w").close()
        time.sleep(120)

    @ray.remote
    def parent(path):
        c = child.remote(path)
        return ray.get(c)

    ref = parent.remote(str(tmp_path / "child"))
    wait_file(tmp_path / "child")
    ray.cancel(ref, force=True, recursive=True)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=30)
    # The child was killed too: a new task gets a CPU within the test's time.
    @ray.remote
    def quick():
        return "ok"

    assert ray.get([quick.remote() for _ in range(2)], timeout=30) == ["ok", "ok"]


def test_cancel_finished_task_and_bad_input(ray_start):
    ray = ray_start

    @ray.remote
    def done():
        return 5

    ref = done.remote()
    assert ray.get(ref) == 5
    ray.cancel(ref)  # too late: nothing happens
    assert ray.get(ref) == 5
    with pytest.raises(TypeError):
        ray.cancel("not a ref")


def _signal_actor(ray):
    @ray.remote
    class Signal:
        """Ray's test SignalActor: wait() returns once send() was called."""

        def __init__(self):
            import threading
            self.ev = threading.Event()

        def send(self):
            self.ev.set()

        def wait(self):
            self.ev.wait()
            return True

    return Signal.options(max_concurrency=4).remote()


def test_cancel_task_waiting_on_never_ready_argument(ray_start):
    ray = ray_start
    signal = _signal_actor(ray)

    @ray.remote
    def use(x):
        return x

    never = signal.wait.remote()
    t = use.remote(never)
    ray.cancel(t)
    started = time.monotonic()
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(t, timeout=10)
    assert time.monotonic() - started < 5
    ray.get(signal.send.remote())
    assert ray.get(never) is True


def test_cancel_task_blocked_in_get_on_a_signal(ray_start, tmp_path):
    ray = ray_start
    signal = _signal_actor(ray)

    @ray.remote
    def blocked(s, path):
        open(path, "w").close()
        ray.get(s.wait.remote())  # never returns by itself
        return "finished"

    @ray.remote
    def blocked_wait(s, path):
        open(path, "w").close()
        ray.wait([s.wait.remote()])
        return "finished"

    for fn, name in ((blocked, "get"), (blocked_wait, "wait")):
        t = fn.remote(signal, str(tmp_path / name))
        wait_file(tmp_path / name)
        time.sleep(0.2)  # in its get or wait
        ray.cancel(t)
        with pytest.raises(ray.exceptions.TaskCancelledError):
            ray.get(t, timeout=10)
    ray.get(signal.send.remote())


def test_cancel_queued_actor_call(ray_start, tmp_path):
    ray = ray_start

    @ray.remote
    class Worker:
        def __init__(self):
            self.calls = []

        def slow(self, path):
            open(path, "w").close()
            time.sleep(1)
            self.calls.append("slow")
            return "slow"

        def quick(self, tag):
            self.calls.append(tag)
            return tag

        def log(self):
            return self.calls

    w = Worker.remote()
    first = w.slow.remote(str(tmp_path / "slow"))
    wait_file(tmp_path / "slow")
    queued = [w.quick.remote(i) for i in range(3)]
    ray.cancel(queued[1])
    assert ray.get(first) == "slow"
    assert ray.get(queued[0]) == 0 and ray.get(queued[2]) == 2
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(queued[1], timeout=10)
    assert ray.get(w.log.remote()) == ["slow", 0, 2]  # the cancelled call never ran


def test_force_cancel_of_an_actor_call_is_refused(ray_start):
    ray = ray_start

    @ray.remote
    class A:
        def f(self):
            return 1

    a = A.remote()
    r = a.f.remote()
    with pytest.raises(ValueError, match="force=True is not supported for actor tasks"):
        ray.cancel(r, force=True)
    assert ray.get(r) == 1


def test_cancel_started_async_actor_call_cancels_its_coroutine(ray_start):
    """As Ray: cancel of an async actor's running call cancels its coroutine
    (asyncio.CancelledError inside it) and get raises TaskCancelledError; the actor
    lives on, and its other calls are not touched."""
    import asyncio
    ray = ray_start

    @ray.remote
    class Sleeper:
        def __init__(self):
            self.cancelled = 0

        async def sleep(self, s):
            try:
                await asyncio.sleep(s)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            return "slept"

        async def count(self):
            return self.cancelled

    a = Sleeper.remote()
    assert ray.get(a.count.remote()) == 0  # constructed: the next calls start at once
    victim = a.sleep.remote(60)
    other = a.sleep.remote(1)
    deadline = time.time() + 10
    while time.time() < deadline:  # started: the coroutine is sleeping
        time.sleep(0.1)
        if ray.wait([victim], timeout=0)[1]:
            break
    time.sleep(0.3)
    t0 = time.time()
    ray.cancel(victim)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(victim, timeout=20)
    assert time.time() - t0 < 10
    assert ray.get(other, timeout=20) == "slept"
    assert ray.get(a.count.remote()) == 1  # the coroutine saw CancelledError
    assert ray.get(a.sleep.remote(0)) == "slept"


def test_cancel_running_sync_actor_call_lets_it_finish(ray_start):
    """As Ray: a sync actor's running call is not interrupted by cancel; it runs to its
    end (the actor's state shows it), and its caller gets TaskCancelledError."""
    ray = ray_start

    @ray.remote
    class Slow:
        def __init__(self):
            self.done = 0

        def work(self, s):
            time.sleep(s)
            self.done += 1
            return "finished"

        def count(self):
            return self.done

    a = Slow.remote()
    assert ray.get(a.work.remote(0)) == "finished"
    ref = a.work.remote(1)
    time.sleep(0.4)
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=20)
    assert ray.get(a.count.remote()) == 2


def _polling_actor(ray, **options):
    @ray.remote
    class Poller:
        def __init__(self):
            self.seen = []

        def run(self, path):
            ctx = ray.get_runtime_context()
            seen = ctx.is_canceled()
            open(path, "w").close()
            deadline = time.time() + 30
            while not ctx.is_canceled():
                if time.time() > deadline:
                    return "never told"
                time.sleep(0.01)
            self.seen.append(seen)  # the flag was off until the cancel
            return "cleaned up"

        def seen_list(self):
            return self.seen

    return Poller.options(**options).remote()


@pytest.mark.parametrize("options", [{}, {"max_concurrency": 2}],
                         ids=["regular", "threaded"])
def test_is_canceled_in_a_running_actor_call(ray_start, tmp_path, options):
    """As Ray: a regular or threaded actor's running call polls
    get_runtime_context().is_canceled(), ends itself, and get raises TaskCancelledError;
    the actor goes on."""
    ray = ray_start
    a = _polling_actor(ray, **options)
    ref = a.run.remote(str(tmp_path / "started"))
    wait_file(tmp_path / "started")
    t0 = time.time()
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=30)
    assert time.time() - t0 < 10
    assert ray.get(a.seen_list.remote()) == [False]


def test_is_canceled_after_a_tasks_keyboard_interrupt(ray_start, tmp_path):
    """As Ray: a task that catches the KeyboardInterrupt of its cancel sees
    is_canceled() true; one that is not cancelled sees it false."""
    ray = ray_start

    @ray.remote
    def task(path, out):
        flags = [ray.get_runtime_context().is_canceled()]
        open(path, "w").close()
        try:
            time.sleep(30)
        except KeyboardInterrupt:
            flags.append(ray.get_runtime_context().is_canceled())
        with open(out, "w") as f:
            f.write(repr(flags))
        return flags

    @ray.remote
    def plain():
        return ray.get_runtime_context().is_canceled()

    assert ray.get(plain.remote()) is False
    out = tmp_path / "flags"
    ref = task.remote(str(tmp_path / "started"), str(out))
    wait_file(tmp_path / "started")
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=30)
    wait_file(out)
    assert out.read_text() == "[False, True]"


def test_is_canceled_refused_in_a_driver_and_an_async_actor(ray_start):
    ray = ray_start
    with pytest.raises(RuntimeError, match="driver"):
        ray.get_runtime_context().is_canceled()

    @ray.remote
    class Async:
        async def check(self):
            try:
                ray.get_runtime_context().is_canceled()
            except RuntimeError as e:
                return str(e)
            return "no error"

    assert "async actor" in ray.get(Async.remote().check.remote())

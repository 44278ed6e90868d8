# SPDX-License-Identifier: Apache-2.0
"""Borrowed refs (issue 17, part 1): a ref received inside an argument stays valid as long
as the task or actor that got it keeps it, wherever it keeps it; the object lives until
every holder has let it go."""
import gc
import time

import numpy as np


def objects(ray):
    return ray._kray.status()["objects"]


def settle(ray, want, timeout=20):
    """Waits until the store holds want objects (releases are batched)."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        n = objects(ray)
        if n <= want or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def test_actor_keeps_refs_from_1000_callers(ray_start):
    ray = ray_start

    @ray.remote
    class Mailbox:
        def __init__(self):
            self.mail = []

        def post(self, letter):
            self.mail.append(letter[0])  # the ref inside the argument, kept
            return len(self.mail)

        def read_all(self):
            return self.mail

        def total(self):
            return sum(ray.get(self.mail))

        def clear(self):
            self.mail = []

    @ray.remote
    def caller(box, i):
        return ray.get(box.post.remote([ray.put(i)]))

    box = Mailbox.remote()
    base = objects(ray)
    ray.get([caller.remote(box, i) for i in range(1000)])  # the callers are gone
    gc.collect()
    assert ray.get(box.total.remote()) == sum(range(1000))
    mail = ray.get(box.read_all.remote())  # returned later, to the driver
    assert sorted(ray.get(mail)) == list(range(1000))
    del mail
    gc.collect()
    assert objects(ray) >= base + 1000  # the actor holds them
    ray.get(box.clear.remote())
    ray.get(box.total.remote())  # the actor's next call sends the releases
    # A few results of the last calls may still be in flight; the 1,000 letters are gone.
    left = settle(ray, base + 5)
    assert left <= base + 5, f"{left - base} objects outlived every holder"


def test_borrowed_large_object_outlives_its_owner(ray_start):
    ray = ray_start

    @ray.remote
    class Keeper:
        def keep(self, refs):
            self.ref = refs[0]

        def first(self):
            return ray.get(self.ref)[:3].tolist()

    k = Keeper.remote()
    ref = ray.put(np.arange(1 << 20))
    ray.get(k.keep.remote([ref]))
    del ref
    gc.collect()
    time.sleep(0.2)
    assert ray.get(k.first.remote()) == [0, 1, 2]


def test_task_returns_a_borrowed_ref(ray_start):
    ray = ray_start

    @ray.remote
    def unwrap(box):
        return box[0]  # a ref the task was lent, returned as its result

    inner = ray.put("inside")
    outer = unwrap.remote([inner])
    del inner
    gc.collect()
    assert ray.get(ray.get(outer)) == "inside"

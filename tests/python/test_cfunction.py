# SPDX-License-Identifier: Apache-2.0
"""C and Python tasks on one krayd: C remote functions called by name from Python."""
import os

import pytest

from conftest import BUILD

SQUARE = os.path.join(BUILD, "examples", "libsquare_fns.so")


@pytest.mark.skipif(not os.path.exists(SQUARE), reason="build/examples/libsquare_fns.so "
                    "is not built (run make)")
def test_c_function_by_name(fresh):
    ray = fresh
    ray.init(num_cpus=2, code_path=SQUARE)
    square = ray.cfunction("square")
    refs = [square.remote(i) for i in range(4)]
    assert ray.get(refs) == [0, 1, 4, 9]

    @ray.remote
    def add(*xs):
        return sum(xs)

    # C results feed a Python task, and a Python value a C task (an int put from Python
    # is a Python object: C sees bytes, so pass plain ints to C).
    assert ray.get(add.remote(*refs)) == 14
    assert ray.get(square.remote(ray.get(add.remote(1, 2)))) == 9
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(square.remote(1, 2))  # arity checked by the C worker
    with pytest.raises(ray.exceptions.CrossLanguageError):
        ray.get(ray.cfunction("no_such_c_function").remote(1))
    with pytest.raises(TypeError):
        square.remote([1])  # not a C value


def test_python_and_c_share_workers(fresh):
    ray = fresh
    ray.init(num_cpus=1, code_path=SQUARE)

    @ray.remote
    def pid():
        return os.getpid()

    before = ray._kray.status()["workers"]
    pids = set(ray.get([pid.remote() for _ in range(20)]))
    assert ray.get(ray.cfunction("square").remote(5)) == 25
    assert len(pids) <= max(before, 1) + 1  # one pool: no Python-only workers

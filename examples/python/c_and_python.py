# SPDX-License-Identifier: Apache-2.0
"""Python and C tasks on one krayd: call the C remote function `square`
(examples/square_fns.c) by name from Python, and feed its results to a Python task.

Run (after `make`): PYTHONPATH=build/python python3 examples/python/c_and_python.py
"""
import os

import kray

here = os.path.dirname(os.path.abspath(__file__))
kray.init(code_path=os.path.join(here, "..", "..", "build", "examples", "libsquare_fns.so"))

square = kray.cfunction("square")  # KRAY_REMOTE(square, 1) in C


@kray.remote
def add(*xs):
    return sum(xs)


squares = [square.remote(i) for i in range(4)]  # C tasks
print("C squares:", kray.get(squares))  # [0, 1, 4, 9]
print("summed by a Python task:", kray.get(add.remote(*squares)))  # 14
kray.shutdown()

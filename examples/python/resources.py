# SPDX-License-Identifier: Apache-2.0
# Task resources, as in Ray: a task holds its num_cpus and custom resources while it
# runs, and waits while they are taken.  Here the node has 2 CPUs and one "disk": the two
# disk tasks run one after the other, the 2-CPU task alone, and the 0-CPU task beside
# anything.
# Run: PYTHONPATH=build/python python3 examples/python/resources.py
import time

import kray as ray

ray.init(num_cpus=2, resources={"disk": 1})
print("cluster:", ray.cluster_resources())


@ray.remote
def work(name, seconds):
    start = time.monotonic()
    time.sleep(seconds)
    return name, round(start - t0, 1)


t0 = time.monotonic()
runs = [work.options(resources={"disk": 1}).remote("disk-1", 0.5),
        work.options(resources={"disk": 1}).remote("disk-2", 0.5),
        work.options(num_cpus=2).remote("two-cpus", 0.5),
        work.options(num_cpus=0).remote("no-cpu", 0.1)]
for name, started in ray.get(runs):
    print(f"{name:>8} started at {started} s")
ray.shutdown()

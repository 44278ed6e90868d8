# SPDX-License-Identifier: Apache-2.0
# A task timeline, as with Ray's ray.timeline(): run a few tasks and an actor, one task
# that raises and one still running, then write the last tasks krayd ran (and those not
# ended) as Chrome trace JSON; open the file in chrome://tracing or
# https://ui.perfetto.dev (one row per worker).  docs/timeline.md has more.
# Run: PYTHONPATH=build/python python3 examples/python/timeline.py [FILE]
#      (prints how many tasks it wrote and where, and how many in each state)
import sys
import time

import kray as ray

ray.init(num_cpus=2)


@ray.remote
def work(ms):
    time.sleep(ms / 1000)
    return ms


@ray.remote
class Accumulator:
    def __init__(self):
        self.total = 0

    def add(self, x):
        self.total += x
        return self.total


@ray.remote
def broken():
    raise ValueError("on purpose")


acc = Accumulator.remote()
done = ray.get([work.remote(10 + i % 3 * 10) for i in range(12)])
ray.get([acc.add.remote(x) for x in done])
# A call got at once would go through krayd's fast path, which the timeline does not
# see (docs/timeline.md); this one is submitted with another, so krayd runs both.
failing = broken.remote()
slow = work.remote(500)  # still RUNNING when the timeline is taken
try:
    ray.get(failing)
except ValueError:
    pass  # it shows as FAILED
time.sleep(0.2)

path = sys.argv[1] if len(sys.argv) > 1 else "timeline.json"
ray.timeline(filename=path)
events = [e for e in ray.timeline() if e["ph"] == "X"]
print(f"{len(events)} tasks written to {path}")
states = {}
for e in events:
    states[e["args"]["state"]] = states.get(e["args"]["state"], 0) + 1
print(dict(sorted(states.items())))
ray.get(slow)

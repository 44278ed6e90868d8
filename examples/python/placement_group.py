# SPDX-License-Identifier: Apache-2.0
# Placement groups, as in Ray: reserve bundles of resources, run tasks and actors in
# them, remove the group to free them.  The node has 2 CPUs and 2 "accel"; the group
# takes 1 CPU and both accel, so a task outside it that wants an accel waits for the
# group's removal.
# Run: PYTHONPATH=build/python python3 examples/python/placement_group.py
import kray as ray
from kray.util import placement_group, placement_group_table, remove_placement_group
from kray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

ray.init(num_cpus=2, resources={"accel": 2})


@ray.remote(num_cpus=1)
def train(shard):
    return f"shard {shard} trained"


@ray.remote
class Server:
    def ping(self):
        return "pong"


pg = placement_group([{"CPU": 1, "accel": 1}, {"accel": 1}], strategy="PACK")
ray.get(pg.ready())
print("group:", placement_group_table(pg)["state"])

print(ray.get(train.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
    pg, placement_group_bundle_index=0), resources={"accel": 1}).remote(0)))
server = Server.options(resources={"accel": 1}, placement_group=pg,
                        placement_group_bundle_index=1).remote()
print("server:", ray.get(server.ping.remote()))

outside = train.options(resources={"accel": 1}).remote(1)
ready, _ = ray.wait([outside], timeout=0.5)
print("outside the group, while it holds the accels:", "ran" if ready else "waits")
remove_placement_group(pg)
print("after removal:", ray.get(outside))

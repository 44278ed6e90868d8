# SPDX-License-Identifier: Apache-2.0
"""``ray.util.scheduling_strategies``: the strategy objects Ray programs pass as
``scheduling_strategy=``.  Placement groups and node affinity place work as in Ray, as
does the string "SPREAD" (docs/cluster.md, "Where work runs"); node labels are ignored:
kray nodes have none."""


class PlacementGroupSchedulingStrategy:
    def __init__(self, placement_group, placement_group_bundle_index=-1,
                 placement_group_capture_child_tasks=None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks


class NodeAffinitySchedulingStrategy:
    def __init__(self, node_id, soft, _spill_on_unavailable=False, _fail_on_unavailable=False):
        if not isinstance(node_id, str):
            node_id = node_id.hex()
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable


class NodeLabelSchedulingStrategy:
    def __init__(self, hard, *, soft=None):
        self.hard = hard
        self.soft = soft


class In:
    def __init__(self, *values):
        self.values = list(values)


class NotIn:
    def __init__(self, *values):
        self.values = list(values)


class Exists:
    pass


class DoesNotExist:
    pass


SCHEDULING_STRATEGIES = ("DEFAULT", "SPREAD")

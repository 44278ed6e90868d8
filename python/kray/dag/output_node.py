# SPDX-License-Identifier: Apache-2.0
"""MultiOutputNode: several results of a task graph as one (a list of them)."""
from .dag_node import DAGNode


class MultiOutputNode(DAGNode):
    """``MultiOutputNode([a, b])``: execute() gives ``[a's result, b's result]``."""

    def __init__(self, args, other_args_to_resolve=None, *, returns_multiple_refs=False):
        if isinstance(args, tuple):
            args = list(args)
        if not isinstance(args, list):
            raise ValueError(f"Invalid input type for `args`, {type(args)}.")
        self._returns_multiple_refs = returns_multiple_refs
        super().__init__(args, {}, {}, other_args_to_resolve)

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        return MultiOutputNode(new_args, new_other_args_to_resolve,
                               returns_multiple_refs=self._returns_multiple_refs)

    def _execute_impl(self, args, kwargs, other, input_args, input_kwargs):
        return args

    @property
    def returns_multiple_refs(self):
        return self._returns_multiple_refs

    def _label(self):
        return "__MultiOutputNode__"

# SPDX-License-Identifier: Apache-2.0
"""FunctionNode: a remote function's call in a task graph (``f.bind(...)``)."""
from .dag_node import DAGNode


class FunctionNode(DAGNode):
    """``f.bind(*args, **kwargs)`` or ``f.options(...).bind(...)``: executes as
    ``f.options(...).remote(*args, **kwargs)``, its result an ObjectRef (a list of them
    for num_returns > 1)."""

    def __init__(self, func_body, func_args, func_kwargs, func_options,
                 other_args_to_resolve=None):
        self._body = func_body  # the RemoteFunction
        super().__init__(func_args, func_kwargs, func_options, other_args_to_resolve)

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        return FunctionNode(self._body, new_args, new_kwargs, new_options,
                            new_other_args_to_resolve)

    def _execute_impl(self, args, kwargs, other, input_args, input_kwargs):
        f = self._body
        if self._bound_options != f._options:  # .options(...).bind(...)
            f = f.options(**self._bound_options)
        return f.remote(*args, **kwargs)

    def _label(self):
        return self._body.__qualname__

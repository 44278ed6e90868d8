# SPDX-License-Identifier: Apache-2.0
"""InputNode: what execute() is given, in a task graph; InputAttributeNode: a part of
it (``inp[0]``, ``inp["key"]``, ``inp.key``); DAGInputData: several inputs as one."""
from .dag_node import DAGNode

IN_CONTEXT_MANAGER = "__in_context_manager__"
# The node's own attributes: never parts of the input (while __init__ has not set them).
_OWN = {"input_attribute_nodes", "input_type", "_bound_args", "_bound_kwargs",
        "_bound_options", "_bound_other_args_to_resolve", "_stable_uuid",
        "_downstream_nodes", "_upstream_nodes", "cache_from_last_execute"}


class InputNode(DAGNode):
    """The graph's input, built in a ``with`` block (one per graph):

        with InputNode() as inp:
            dag = add.bind(inp[0], inp.y)
        dag.execute(1, y=2)

    One argument to execute() (and no keywords) is the input itself; otherwise a
    DAGInputData whose ``[i]`` is the i-th argument and ``["k"]`` / ``.k`` keyword k."""

    def __init__(self, *args, input_type=None, _other_args_to_resolve=None, **kwargs):
        if args or kwargs:
            raise ValueError("InputNode should not take any args or kwargs.")
        self.input_attribute_nodes = {}
        self.input_type = input_type
        super().__init__([], {}, {}, _other_args_to_resolve)

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        return InputNode(_other_args_to_resolve=new_other_args_to_resolve)

    def _execute_impl(self, args, kwargs, other, input_args, input_kwargs):
        assert self._in_context_manager(), (
            "InputNode is a singleton instance that should be only used in context "
            "manager for dag building and execution. See the docstring of class "
            "InputNode for examples.")
        if len(input_args) == 1 and not input_kwargs:
            return input_args[0]
        return DAGInputData(*input_args, **input_kwargs)

    def _in_context_manager(self):
        return bool(self._bound_other_args_to_resolve.get(IN_CONTEXT_MANAGER))

    def set_context(self, key, val):
        self._bound_other_args_to_resolve[key] = val

    def __enter__(self):
        self.set_context(IN_CONTEXT_MANAGER, True)
        return self

    def __exit__(self, *exc):
        return False

    def __getattr__(self, key):
        if key.startswith("__") or key in _OWN:
            raise AttributeError(key)  # not set yet (unpickling), or Python's protocols
        return self._attribute(key, "__getattr__")

    def __getitem__(self, key):
        assert isinstance(key, (str, int)), (
            "Please only use int index or str as first-level key to access fields of dag "
            "input.")
        return self._attribute(key, "__getitem__")

    def _attribute(self, key, accessor):
        nodes = self.input_attribute_nodes
        if (key, accessor) not in nodes:
            nodes[(key, accessor)] = InputAttributeNode(self, key, accessor)
        return nodes[(key, accessor)]

    def _label(self):
        return "__InputNode__"


class InputAttributeNode(DAGNode):
    """A part of the graph's input: ``inp[0]``, ``inp["key"]`` or ``inp.key``."""

    def __init__(self, dag_input_node, key, accessor_method, input_type=None):
        self._dag_input_node = dag_input_node
        self._key = key
        self._accessor_method = accessor_method
        super().__init__([], {}, {}, {"dag_input_node": dag_input_node, "key": key,
                                      "accessor_method": accessor_method,
                                      "result_type_string": input_type})

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        o = new_other_args_to_resolve
        return InputAttributeNode(o["dag_input_node"], o["key"], o["accessor_method"],
                                  o["result_type_string"])

    def _execute_impl(self, args, kwargs, other, input_args, input_kwargs):
        value = other["dag_input_node"]
        if isinstance(value, DAGInputData):
            return value.part(self._key)
        if isinstance(self._key, str) and self._accessor_method == "__getattr__":
            return getattr(value, self._key)
        return value[self._key]

    @property
    def key(self):
        return self._key

    def _label(self):
        return f'["{self._key}"]'


class DAGInputData:
    """execute()'s arguments when there are several (or keywords): ``[i]`` the i-th
    argument, ``["k"]`` keyword k."""

    def __init__(self, *args, **kwargs):
        self._args = list(args)
        self._kwargs = kwargs

    def __getitem__(self, key):
        if isinstance(key, int):
            return self._args[key]
        if isinstance(key, str):
            return self._kwargs[key]
        raise ValueError("Please only use int index or str as first-level key to access "
                         "fields of dag input.")

    def part(self, key):
        """self[key], with an error that says what execute() was given when it lacks
        what the graph reads (IndexError, KeyError as indexing would raise)."""
        try:
            return self[key]
        except IndexError:
            raise IndexError(f"the graph reads input [{key}], but execute() was given "
                             f"{len(self._args)} positional argument(s)") from None
        except KeyError:
            raise KeyError(f"the graph reads input '{key}', but execute() was given no "
                           f"such keyword (it was given: "
                           f"{', '.join(self._kwargs) or 'none'})") from None

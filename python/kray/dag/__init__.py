# SPDX-License-Identifier: Apache-2.0
"""``ray.dag``: task graphs built with ``.bind()`` and run with ``.execute()``.

    with InputNode() as inp:
        dag = combine.bind(Model.bind(2).forward.bind(inp), double.bind(inp))
    ray.get(dag.execute(3))

``f.bind(...)`` gives a FunctionNode, ``Cls.bind(...)`` a ClassNode whose methods'
``.bind(...)`` give ClassMethodNodes (so does ``handle.method.bind(...)`` on an actor
that exists), ``InputNode()`` stands for execute()'s arguments and ``MultiOutputNode``
for several results.  ``execute()`` submits each node once (a node used twice runs once
per execute) and returns what ``.remote()`` would: an ObjectRef, a list of them, or an
actor handle.  docs/python.md, "Task graphs (ray.dag)"; examples/python/dag.py.
"""
from .constants import (BIND_INDEX_KEY, DAGNODE_TYPE_KEY, IS_CLASS_METHOD_OUTPUT_KEY,
                        PARENT_CLASS_NODE_KEY, PREV_CLASS_METHOD_CALL_KEY)
from .dag_node import DAGNode
from .function_node import FunctionNode
from .class_node import ClassMethodNode, ClassNode
from .input_node import DAGInputData, InputAttributeNode, InputNode
from .output_node import MultiOutputNode

__all__ = ["ClassNode", "ClassMethodNode", "DAGNode", "FunctionNode", "InputNode",
           "InputAttributeNode", "DAGInputData", "MultiOutputNode",
           "PARENT_CLASS_NODE_KEY", "PREV_CLASS_METHOD_CALL_KEY", "BIND_INDEX_KEY",
           "IS_CLASS_METHOD_OUTPUT_KEY", "DAGNODE_TYPE_KEY"]

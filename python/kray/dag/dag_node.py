# SPDX-License-Identifier: Apache-2.0
"""DAGNode: a node of a task graph (``ray.dag.DAGNode``), its children and execute().

A node holds what was bound: its arguments, keyword arguments, options, and other
arguments to resolve (a method call's actor and the call bound before it on that actor).
Nodes found in these, at the top or inside lists, tuples and dicts, are its children.
execute() runs the graph bottom-up, each child before the node that uses it, every node
once (results kept by the node's stable id for this execute), and replaces each child by
its result: an ObjectRef (passed as the argument of the next ``.remote()``, so the
next task starts when it is ready, as Ray does), an actor handle, or the input.
"""
import uuid


def _walk(obj, found):
    """Appends the DAG nodes in obj (itself, or inside lists, tuples, dicts) to found."""
    if isinstance(obj, DAGNode):
        found.append(obj)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _walk(x, found)
    elif isinstance(obj, dict):
        for x in obj.values():
            _walk(x, found)


def _replace(obj, results):
    """obj with each DAG node in it replaced by its result (results: stable id ->)."""
    if isinstance(obj, DAGNode):
        return results.get(obj._stable_uuid, obj)
    if isinstance(obj, list):
        return [_replace(x, results) for x in obj]
    if isinstance(obj, tuple):
        items = [_replace(x, results) for x in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, dict):
        return type(obj)((k, _replace(v, results)) for k, v in obj.items()) \
            if type(obj) is dict else {k: _replace(v, results) for k, v in obj.items()}
    return obj


class DAGNode:
    """A node of a task graph: bound arguments, options, and the nodes they hold."""

    def __init__(self, args, kwargs, options, other_args_to_resolve):
        self._bound_args = args or []  # as bound: a tuple from .bind()
        self._bound_kwargs = dict(kwargs or {})
        self._bound_options = dict(options or {})
        self._bound_other_args_to_resolve = dict(other_args_to_resolve or {})
        self._stable_uuid = uuid.uuid4().hex
        self.cache_from_last_execute = {}
        # The nodes this one uses, and those that use it (traverse_and_apply).
        self._downstream_nodes = []
        self._upstream_nodes = self._get_all_child_nodes()
        for node in self._upstream_nodes:
            node._downstream_nodes.append(self)

    # ---- what was bound ---------------------------------------------------------------

    def get_args(self):
        return self._bound_args

    def get_kwargs(self):
        return self._bound_kwargs.copy()

    def get_options(self):
        return self._bound_options.copy()

    def get_other_args_to_resolve(self):
        return self._bound_other_args_to_resolve.copy()

    def get_stable_uuid(self):
        """An id of this node, the same for its whole life."""
        return self._stable_uuid

    def _get_toplevel_child_nodes(self):
        """The nodes given as top-level arguments (not inside containers), once each."""
        out = []
        for a in (*self._bound_args, *self._bound_kwargs.values(),
                  *self._bound_other_args_to_resolve.values()):
            if isinstance(a, DAGNode) and a not in out:
                out.append(a)
        return out

    def _get_all_child_nodes(self):
        """Every node this one uses, at the top or inside lists, tuples and dicts."""
        found = []
        _walk([self._bound_args, self._bound_kwargs, self._bound_other_args_to_resolve],
              found)
        out = []
        seen = set()
        for n in found:
            if id(n) not in seen:
                seen.add(id(n))
                out.append(n)
        return out

    # ---- running ---------------------------------------------------------------------

    def execute(self, *args, _ray_cache_refs=False, **kwargs):
        """Runs the graph this node ends, with args and kwargs as its InputNode's value;
        returns this node's result (an ObjectRef, a list, an actor handle)."""
        results = self._run_graph(args, kwargs)
        if _ray_cache_refs:
            self.cache_from_last_execute = results
        return results[self._stable_uuid]

    def _run_graph(self, args, kwargs):
        """Each node under this one run once, children first, in the order they were
        bound (iteratively: a chain of any length).  -> {stable id: result}."""
        from .input_node import InputNode
        results = {}
        expanding = set()
        input_node = None
        stack = [(self, False)]
        while stack:
            node, ready = stack.pop()
            key = node._stable_uuid
            if ready:
                expanding.discard(key)
                results[key] = node._execute_impl(
                    _replace(node._bound_args, results),
                    _replace(node._bound_kwargs, results),
                    _replace(node._bound_other_args_to_resolve, results), args, kwargs)
                continue
            if key in results:
                continue
            if key in expanding:
                raise ValueError(f"the task graph has a cycle through {node}")
            if isinstance(node, InputNode):
                if input_node is None:
                    input_node = key
                elif input_node != key:
                    raise AssertionError("Each DAG should only have one unique InputNode.")
            expanding.add(key)
            stack.append((node, True))
            for child in reversed(node._get_all_child_nodes()):
                if child._stable_uuid not in results:
                    stack.append((child, False))
        return results

    def _execute_impl(self, args, kwargs, other, input_args, input_kwargs):
        """This node's result, its children replaced by theirs in args, kwargs, other."""
        raise NotImplementedError

    # ---- transforming a graph (Ray's DeveloperAPI) ---------------------------------------

    def apply_recursive(self, fn):
        """fn applied to each node of the graph bottom-up, once per node: each node is
        given to fn as a copy whose children are replaced by what fn returned for them.
        Returns what fn returned for this node."""
        if type(fn).__name__ != "_CachingFn":
            fn = _CachingFn(fn)
        elif self._stable_uuid in fn.cache:
            return fn.cache[self._stable_uuid]
        return fn(self._apply_and_replace_all_child_nodes(
            lambda node: node.apply_recursive(fn)))

    def _apply_and_replace_all_child_nodes(self, fn):
        """A copy of this node with each child replaced by fn(child) (fn called once per
        child)."""
        table = {}
        for node in self._get_all_child_nodes():
            if node._stable_uuid not in table:
                table[node._stable_uuid] = fn(node)
        return self._copy(_replace(self._bound_args, table),
                          _replace(self._bound_kwargs, table), self.get_options(),
                          _replace(self._bound_other_args_to_resolve, table))

    def _copy(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        """A copy of this node with these bound values, under the same stable id."""
        node = self._copy_impl(new_args, new_kwargs, new_options,
                               new_other_args_to_resolve)
        node._stable_uuid = self._stable_uuid
        return node

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        raise NotImplementedError

    async def get_object_refs_from_last_execute(self):
        """{stable id: result} of each node at the last execute(_ray_cache_refs=True)."""
        return dict(self.cache_from_last_execute)

    def traverse_and_apply(self, fn):
        """fn applied once to each node connected to this one (users and used)."""
        seen = set()
        queue = [self]
        while queue:
            node = queue.pop(0)
            if id(node) in seen:
                continue
            seen.add(id(node))
            fn(node)
            queue.extend(n for n in (*node._downstream_nodes, *node._upstream_nodes)
                         if id(n) not in seen)

    def apply_functional(self, source_input_list, predictate_fn, apply_fn):
        """source_input_list with each node in it (at the top or inside lists, tuples,
        dicts) for which predictate_fn is true replaced by apply_fn(node); nothing is
        copied or changed."""
        found = []
        _walk(source_input_list, found)
        table = {}
        for node in found:
            if node._stable_uuid not in table and predictate_fn(node):
                table[node._stable_uuid] = apply_fn(node)
        return _replace(source_input_list, table)

    def experimental_compile(self, *args, **kwargs):
        raise NotImplementedError(
            "kray has no compiled graphs (Ray's experimental_compile): run the graph with "
            ".execute(), which submits its tasks as .remote() does")

    def clear_cache(self):
        self.cache_from_last_execute = {}

    # ---- what Ray refuses on a node ---------------------------------------------------

    def __getattr__(self, attr):
        if attr == "bind":
            raise AttributeError(f".bind() cannot be used again on {type(self)} ")
        if attr == "remote":
            raise AttributeError(f".remote() cannot be used on {type(self)}. To execute "
                                 "the task graph for this node, use .execute().")
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{attr}'")

    def __reduce__(self):
        # As Ray: a node is not sent anywhere (a task that captured one by mistake fails
        # here, clearly); execute() the graph and pass its results instead.
        raise ValueError(f"DAGNode cannot be serialized. DAGNode: {self}")

    def _label(self):
        return type(self).__name__

    def __str__(self):
        return f"({type(self).__name__}, {self._label()}, {self._stable_uuid[:8]})"

    __repr__ = __str__


class _CachingFn:
    """fn with its results kept by node (apply_recursive); one InputNode per graph."""

    def __init__(self, fn):
        self.cache = {}
        self.fn = fn
        self.input_node_uuid = None

    def __call__(self, node):
        from .input_node import InputNode
        key = node._stable_uuid
        if key not in self.cache:
            self.cache[key] = self.fn(node)
        if isinstance(node, InputNode):
            if self.input_node_uuid is None:
                self.input_node_uuid = key
            elif self.input_node_uuid != key:
                raise AssertionError("Each DAG should only have one unique InputNode.")
        return self.cache[key]

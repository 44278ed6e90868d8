# SPDX-License-Identifier: Apache-2.0
"""ClassNode: an actor's creation in a task graph (``Cls.bind(...)``); ClassMethodNode:
a call of one of its methods (``node.method.bind(...)``, or ``handle.method.bind(...)``
on an actor that exists)."""
from .constants import PARENT_CLASS_NODE_KEY, PREV_CLASS_METHOD_CALL_KEY
from .dag_node import DAGNode


class ClassNode(DAGNode):
    """``Cls.bind(*args, **kwargs)``: executes as ``Cls.options(...).remote(...)``, its
    result an actor handle.  Each execute() creates the actor anew, as in Ray; calls
    bound on it run after the calls bound on it before them."""

    def __init__(self, cls, cls_args, cls_kwargs, cls_options, other_args_to_resolve=None):
        self._body = cls  # the ActorClass
        self._last_call = None
        super().__init__(cls_args, cls_kwargs, cls_options, other_args_to_resolve)
        from .input_node import InputNode
        if any(isinstance(c, InputNode) for c in self._get_all_child_nodes()):
            raise ValueError(
                "InputNode handles user dynamic input the DAG, and cannot be used as args, "
                "kwargs, or other_args_to_resolve in ClassNode constructor because it is "
                "not available at class construction or binding time.")

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        return ClassNode(self._body, new_args, new_kwargs, new_options,
                         new_other_args_to_resolve)

    def _execute_impl(self, args, kwargs, other, input_args, input_kwargs):
        cls = self._body
        if self._bound_options != cls._options:  # .options(...).bind(...)
            cls = cls.options(**self._bound_options)
        return cls.remote(*args, **kwargs)

    def __getattr__(self, method_name):
        if method_name.startswith("__") or method_name in ("_body", "_last_call"):
            raise AttributeError(method_name)
        meta = self._body._meta
        if method_name == "bind" and "bind" not in meta:
            return DAGNode.__getattr__(self, method_name)
        if method_name not in meta:
            raise AttributeError(f"type object '{self._body.__name__}' has no attribute "
                                 f"'{method_name}' (the actor's methods: "
                                 f"{', '.join(sorted(meta)) or 'none'})")
        return _UnboundClassMethodNode(self, method_name, {})

    def _label(self):
        return self._body.__qualname__


class _UnboundClassMethodNode:
    """``class_node.method``: .bind() it (or .options(...).bind())."""

    def __init__(self, actor, method_name, options):
        self._actor = actor
        self._method_name = method_name
        self._options = options

    def bind(self, *args, **kwargs):
        node = ClassMethodNode(self._method_name, args, kwargs, self._options,
                               {PARENT_CLASS_NODE_KEY: self._actor,
                                PREV_CLASS_METHOD_CALL_KEY: self._actor._last_call})
        self._actor._last_call = node
        return node

    def options(self, **options):
        self._options = options
        return self

    def __getattr__(self, attr):
        if attr == "remote":
            raise AttributeError(".remote() cannot be used on ClassMethodNodes. Use "
                                 ".bind() instead to express an symbolic actor call.")
        raise AttributeError(attr)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Use "
                        f"'{self._method_name}.bind()' to express a call in the graph.")


class ClassMethodNode(DAGNode):
    """A method call of a ClassNode's actor (or of an actor handle): executes as
    ``handle.method.options(...).remote(...)``, its result an ObjectRef."""

    def __init__(self, method_name, method_args, method_kwargs, method_options,
                 other_args_to_resolve):
        self._method_name = method_name
        self._parent_class_node = other_args_to_resolve.get(PARENT_CLASS_NODE_KEY)
        self._prev_class_method_call = other_args_to_resolve.get(PREV_CLASS_METHOD_CALL_KEY)
        super().__init__(method_args, method_kwargs, method_options, other_args_to_resolve)

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        return ClassMethodNode(self._method_name, new_args, new_kwargs, new_options,
                               new_other_args_to_resolve)

    def _execute_impl(self, args, kwargs, other, input_args, input_kwargs):
        method = getattr(other[PARENT_CLASS_NODE_KEY], self._method_name)
        if self._bound_options:
            method = method.options(**self._bound_options)
        return method.remote(*args, **kwargs)

    def get_method_name(self):
        return self._method_name

    @property
    def num_returns(self):
        """The call's num_returns: its options', else the method's own."""
        n = self._bound_options.get("num_returns")
        if n is not None:
            return n
        parent = self._parent_class_node
        meta = parent._body._meta if isinstance(parent, ClassNode) else parent._meta
        return meta[self._method_name][0] if meta and self._method_name in meta else 1

    @property
    def is_class_method_call(self):
        return True

    @property
    def is_class_method_output(self):
        return False

    def _label(self):
        return f"{self._method_name}()"

# SPDX-License-Identifier: Apache-2.0
"""kray.dag (Ray's DAG API): f.bind / Cls.bind / node.method.bind / handle.method.bind,
InputNode and its parts, MultiOutputNode, execute() running each node once, options, and
the errors Ray gives."""
import pickle

import pytest

import kray
from kray.dag import (PARENT_CLASS_NODE_KEY, PREV_CLASS_METHOD_CALL_KEY, ClassMethodNode,
                      ClassNode, DAGInputData, DAGNode, FunctionNode, InputAttributeNode,
                      InputNode, MultiOutputNode)


@kray.remote
class Counter:
    def __init__(self, start=0):
        self.n = start

    def inc(self, k=1):
        self.n += k
        return self.n

    def get(self):
        return self.n


@kray.remote
def add(a, b):
    return a + b


@kray.remote
def double(x):
    return 2 * x


def test_function_chain_and_inputs(ray_start):
    ray = ray_start
    with InputNode() as inp:
        dag = add.bind(double.bind(inp), 1)
    assert isinstance(dag, FunctionNode)
    ref = dag.execute(3)
    assert isinstance(ref, ray.ObjectRef)
    assert ray.get(ref) == 7
    assert ray.get(dag.execute(10)) == 21  # a graph runs again with new input

    # Several arguments and keywords: inp[i] and inp.k / inp["k"].
    with InputNode() as inp:
        a = inp[0]
        assert isinstance(a, InputAttributeNode) and a.key == 0
        dag = MultiOutputNode([add.bind(inp[0], inp[1]), add.bind(inp.x, inp["y"])])
    assert ray.get(dag.execute(1, 2, x=10, y=20)) == [3, 30]

    # One argument: indexed, keyed or read as an attribute as it is.
    class Obj:
        x = 5
    with InputNode() as inp:
        by_index, by_key, by_attr = add.bind(inp[0], inp[1]), double.bind(inp["k"]), \
            double.bind(inp.x)
    assert ray.get(by_index.execute([4, 5])) == 9
    assert ray.get(by_key.execute({"k": 6})) == 12
    assert ray.get(by_attr.execute(Obj())) == 10


def test_shared_node_runs_once_per_execute(ray_start):
    ray = ray_start
    ct = Counter.remote()

    @ray.remote
    def counted(x, counter):
        ray.get(counter.inc.remote())
        return x

    with InputNode() as inp:
        shared = counted.bind(inp, ct)
        left = add.bind(shared, 1)
        right = add.bind(shared, 2)
        dag = add.bind(add.bind(left, right), shared)
    assert ray.get(dag.execute(10)) == 10 + 1 + 10 + 2 + 10
    assert ray.get(ct.get.remote()) == 1  # `shared` ran once, though used three times
    ray.get(dag.execute(0))
    assert ray.get(ct.get.remote()) == 2  # and once more per execute


def test_ray_diamond_sums(ray_start):
    """Ray's test_func_dag: a graph where nodes are reused at several depths."""
    ray = ray_start

    @ray.remote
    def a(v):
        return v

    @ray.remote
    def b(x):
        return x * 2

    @ray.remote
    def c(x):
        return x + 1

    with InputNode() as inp:
        a_ref = a.bind(inp)
        d_ref = add.bind(b.bind(a_ref), c.bind(a_ref))
        d1 = add.bind(d_ref, d_ref)
        dag = add.bind(add.bind(d1, d_ref), d_ref)
    assert ray.get(dag.execute(2)) == 28
    assert ray.get(dag.execute(3)) == 40


def test_nested_nodes_pass_refs(ray_start):
    ray = ray_start

    @ray.remote
    def total(nested, items):
        # Nodes inside containers arrive as ObjectRefs, as refs inside containers do.
        return ray.get(nested["x"]) + sum(ray.get(items))

    with InputNode() as inp:
        dag = total.bind({"x": double.bind(inp)}, [double.bind(1), double.bind(2)])
    assert ray.get(dag.execute(5)) == 10 + 2 + 4


def test_num_returns_gives_a_list(ray_start):
    ray = ray_start

    @ray.remote(num_returns=2)
    def pair(x):
        return x, -x

    refs = pair.bind(4).execute()
    assert isinstance(refs, list) and ray.get(refs) == [4, -4]

    @ray.remote
    class Two:
        @ray.method(num_returns=2)
        def split(self, x):
            return x, x + 1

        def one(self):
            return 1

    t = Two.bind()
    node = t.split.bind(1)
    assert node.num_returns == 2 and t.one.bind().num_returns == 1
    assert t.one.options(num_returns=1).bind().num_returns == 1
    assert ray.get(node.execute()) == [1, 2]
    h = Two.remote()
    assert h.split.bind(5).num_returns == 2
    assert ray.get(h.split.bind(5).execute()) == [5, 6]


def test_actor_graph(ray_start):
    ray = ray_start
    c = Counter.bind(10)
    assert isinstance(c, ClassNode)
    c.inc.bind(2)
    c.inc.bind(4)
    got = c.get.bind()
    assert isinstance(got, ClassMethodNode)
    # The calls bound before `get` run before it, in order.
    assert ray.get(got.execute()) == 16
    # Each execute creates the actor anew.
    assert ray.get(got.execute()) == 16
    # A ClassNode executes to an actor handle.
    h = Counter.bind(7).execute()
    assert isinstance(h, ray.actor.ActorHandle)
    assert ray.get(h.get.remote()) == 7


def test_actor_handles_as_arguments(ray_start):
    ray = ray_start

    @ray.remote
    def read(handle):
        assert isinstance(handle, ray.actor.ActorHandle)
        return ray.get(handle.get.remote())

    @ray.remote
    class Outer:
        def __init__(self, inner):
            self.inner = inner

        def get(self):
            return ray.get(self.inner.get.remote()) + 1

    assert ray.get(read.bind(Counter.bind(3)).execute()) == 3
    assert ray.get(Outer.bind(Counter.bind(5)).get.bind().execute()) == 6


def test_existing_actor_methods_bind(ray_start):
    ray = ray_start
    h = Counter.remote(0)
    with InputNode() as inp:
        dag = h.inc.bind(inp)
    assert isinstance(dag, ClassMethodNode)
    assert ray.get(dag.execute(5)) == 5
    assert ray.get(dag.execute(2)) == 7  # the same actor: state carries over
    assert dag.get_other_args_to_resolve()[PARENT_CLASS_NODE_KEY] == h
    node = h.get.options(name="read").bind()
    assert node.get_options() == {"name": "read"}
    assert ray.get(node.execute()) == 7


def test_model_pipeline(ray_start):
    """Ray's InputNode docstring example: a broadcast input, two models, a combiner."""
    ray = ray_start

    @ray.remote
    class Model:
        def __init__(self, weight):
            self.weight = weight

        def forward(self, x):
            return self.weight * x

    with InputNode() as inp:
        m1, m2 = Model.bind(2), Model.bind(3)
        dag = add.bind(m1.forward.bind(inp[0]), m2.forward.bind(inp.x))
    assert ray.get(dag.execute(1, x=2)) == 2 * 1 + 3 * 2


def test_options(ray_start):
    ray = ray_start

    @ray.remote(num_gpus=0)
    def f():
        return ray.get_runtime_context().get_task_name()

    assert f.bind().get_options() == {"num_gpus": 0}
    node = f.options(name="named", num_cpus=1).bind()
    assert node.get_options() == {"num_gpus": 0, "name": "named", "num_cpus": 1}
    assert ray.get(node.execute()) == "named"

    a = Counter.options(name="dag_counter", namespace="dagtest").bind(1)
    assert a.get_options() == {"name": "dag_counter", "namespace": "dagtest"}
    h = a.execute()
    assert ray.get_actor("dag_counter", namespace="dagtest") == h
    ray.kill(h)

    c = Counter.bind(0)
    c.inc.options(name="first").bind(1)
    last = c.get.bind()
    prev = last.get_other_args_to_resolve()[PREV_CLASS_METHOD_CALL_KEY]
    assert prev.get_options() == {"name": "first"}
    assert last.get_other_args_to_resolve()[PARENT_CLASS_NODE_KEY] is c
    assert last.get_options() == {}
    assert ray.get(last.execute()) == 1

    with pytest.raises(ValueError, match="only accepts None, 0 or a positive number"):
        add.options(num_cpus=-1).bind(1, 2)
    with pytest.raises(ValueError, match="cannot be negative"):
        Counter.options(num_cpus=-1).bind()


def test_node_accessors_and_apply_recursive(ray_start):
    @kray.remote
    def a(*args, **kwargs):
        return None

    t1, t2, t3 = a.bind(), a.bind(), a.bind()
    node = a.bind(1, t1, x=t2, y={"foo": t3})
    assert node.get_args() == (1, t1)
    assert node.get_kwargs() == {"x": t2, "y": {"foo": t3}}
    assert node._get_toplevel_child_nodes() == [t1, t2]
    assert node._get_all_child_nodes() == [t1, t2, t3]
    t4, t5 = a.bind(), a.bind()
    table = {t1: t4, t2: t4, t3: t5}
    n2 = node._apply_and_replace_all_child_nodes(lambda x: table[x])
    assert n2._get_all_child_nodes() == [t4, t5]
    assert n2.get_stable_uuid() == node.get_stable_uuid()

    # apply_recursive visits each node once (Ray's test_apply_recursive_caching).
    inp = InputNode()
    x, y = inp, a.bind(inp)
    for _ in range(10):
        x, y = a.bind(x, y), a.bind(x, y)
    calls = []
    original = DAGNode.apply_recursive

    def counting(self, fn):
        calls.append(self)
        return original(self, fn)

    DAGNode.apply_recursive = counting
    try:
        x.apply_recursive(lambda n: n)
    finally:
        DAGNode.apply_recursive = original
    assert len(calls) == 40


def test_long_chain(ray_start):
    """A chain deeper than Python's recursion limit executes (iteratively)."""
    ray = ray_start

    @ray.remote
    def inc(x):
        return x + 1

    with InputNode() as inp:
        node = inp
        for _ in range(1200):
            node = inc.bind(node)
    assert ray.get(node.execute(0)) == 1200


def test_errors(ray_start):
    ray = ray_start
    with pytest.raises(ValueError, match="InputNode should not take any args or kwargs"):
        InputNode(0)
    with pytest.raises(ValueError, match="InputNode should not take any args or kwargs"):
        InputNode(key=1)

    # Outside a with block.
    with pytest.raises(AssertionError, match="should be only used in context manager"):
        double.bind(InputNode()).execute(1)

    # Two InputNodes in one graph.
    with InputNode() as i1:
        a = double.bind(i1)
    with InputNode() as i2:
        dag = add.bind(a, double.bind(i2))
    with pytest.raises(AssertionError, match="Each DAG should only have one unique InputNode"):
        dag.execute(1)

    # The input is not there at an actor's creation.
    with pytest.raises(ValueError, match="cannot be used as args, kwargs, or "
                                         "other_args_to_resolve in ClassNode constructor"):
        with InputNode() as inp:
            Counter.bind(inp)

    with pytest.raises(AssertionError, match="Please only use int index or str"):
        with InputNode() as inp:
            inp[(1, 2)]

    # Too few inputs: the missing one fails as indexing would.
    with InputNode() as inp:
        dag = add.bind(inp[0], inp[1])
    with pytest.raises(IndexError, match=r"reads input \[1\], but execute\(\) was given 1 "):
        dag.execute(1, x=2)
    with pytest.raises(IndexError, match="was given 0 positional"):
        dag.execute()
    with pytest.raises(TypeError, match="not subscriptable"):
        dag.execute(1)  # one input is the input itself, as in Ray
    with InputNode() as inp:
        dag = double.bind(inp.missing)
    with pytest.raises(KeyError, match="missing"):
        dag.execute(1, other=2)

    # Arguments that do not fit the function fail at execute(), as .remote() does.
    with pytest.raises(TypeError, match="double"):
        double.bind(1, 2).execute()

    with pytest.raises(AttributeError, match=r"\.bind\(\) cannot be used again on"):
        Counter.bind().bind()
    with pytest.raises(AttributeError, match=r"\.bind\(\) cannot be used again on"):
        double.bind(1).bind()
    with pytest.raises(AttributeError, match=r"\.remote\(\) cannot be used on"):
        double.bind(1).remote()
    with pytest.raises(AttributeError, match=r"\.remote\(\) cannot be used on ClassMethodNodes"):
        Counter.bind().get.remote()
    with pytest.raises(AttributeError, match="'Counter' has no attribute 'remote'"):
        Counter.bind().remote()
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        Counter.bind().nope

    with pytest.raises(ValueError, match="Invalid input type for `args`"):
        MultiOutputNode(double.bind(1))
    with pytest.raises(ValueError, match="DAGNode cannot be serialized"):
        pickle.dumps(DAGNode([], {}, {}, {}))
    with pytest.raises(ValueError, match="DAGNode cannot be serialized"):
        double.remote(double.bind(1))  # a node is not an argument: execute() it
    with pytest.raises(NotImplementedError, match="compiled graphs"):
        double.bind(1).experimental_compile()

    # A failing task fails its ref, not execute().
    @ray.remote
    def boom(x):
        raise ValueError("boom")

    ref = add.bind(boom.bind(1), 1).execute()
    with pytest.raises(ray.exceptions.RayTaskError, match="boom"):
        ray.get(ref)


def test_dag_input_data():
    d = DAGInputData(1, 2, k=3)
    assert (d[0], d[1], d["k"]) == (1, 2, 3)
    with pytest.raises(ValueError, match="int index or str"):
        d[1.5]


def test_module_is_rays_name(ray_start):
    import kray.dag as dag
    assert kray.dag is dag
    assert {"InputNode", "MultiOutputNode", "FunctionNode", "ClassNode",
            "ClassMethodNode", "DAGNode", "InputAttributeNode"} <= set(dag.__all__)


def test_graph_walks_and_cached_refs(ray_start):
    ray = ray_start
    with InputNode() as inp:
        a = double.bind(inp)
        b = add.bind(a, 1)
        dag = MultiOutputNode([b, a])
    seen = []
    b.traverse_and_apply(seen.append)  # the whole connected graph, once each
    assert set(map(id, seen)) == {id(inp), id(a), id(b), id(dag)} and len(seen) == 4
    swapped = dag.apply_functional([b, {"k": a}], lambda n: n is a, lambda n: "A")
    assert swapped == [b, {"k": "A"}]

    refs = dag.execute(2, _ray_cache_refs=True)
    assert ray.get(refs) == [5, 4]
    import asyncio
    cache = asyncio.run(dag.get_object_refs_from_last_execute())
    assert cache[inp.get_stable_uuid()] == 2
    assert ray.get(cache[a.get_stable_uuid()]) == 4


def test_rays_task_dag_with_captured_counter(ray_start):
    """Ray's test_basic_task_dag: tasks that reach an actor handle through their closure
    (it travels as a ref of the function's blob)."""
    ray = ray_start
    ct = Counter.remote()

    @ray.remote
    def a():
        ray.get(ct.inc.remote())
        return 2

    @ray.remote
    def b(x):
        ray.get(ct.inc.remote())
        return x * 2

    @ray.remote
    def c(x):
        ray.get(ct.inc.remote())
        return x + 1

    @ray.remote
    def d(x, y):
        ray.get(ct.inc.remote())
        return x + y

    a_ref = a.bind()
    d_ref = d.bind(b.bind(a_ref), c.bind(a_ref))
    d1_ref = d.bind(d_ref, d_ref)
    dag = d.bind(d.bind(d1_ref, d_ref), d_ref)
    assert ray.get(dag.execute()) == 28
    assert ray.get(ct.get.remote()) == 7  # seven nodes, each run once

    held = ray.put("captured")

    @ray.remote
    def read():
        return ray.get(held)

    assert ray.get(read.bind().execute()) == "captured"

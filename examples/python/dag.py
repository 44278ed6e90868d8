# SPDX-License-Identifier: Apache-2.0
# Ray's DAG API on kray (kray.dag, docs/python.md "Task graphs"): a graph built once with
# .bind() and run with .execute() for each input.  Two models (actors) see the same
# input, a task combines their outputs, and a preprocessing task used by both runs once
# per execute().
# Run: PYTHONPATH=build/python python3 examples/python/dag.py
#   prints: 23 / [23, 4] / 41
import kray as ray
from kray.dag import InputNode, MultiOutputNode

ray.init()


@ray.remote
def preprocess(x):
    return x + 1


@ray.remote
class Model:
    def __init__(self, weight):
        self.weight = weight

    def forward(self, x):
        return self.weight * x


@ray.remote
def combine(a, b, bias=0):
    return a + b + bias


with InputNode() as inp:
    features = preprocess.bind(inp[0])             # used twice, runs once per execute
    m1, m2 = Model.bind(2), Model.bind(3)           # actors, created by execute()
    out = combine.bind(m1.forward.bind(features), m2.forward.bind(features),
                       bias=inp.bias)               # a keyword of execute()
    both = MultiOutputNode([out, features])

print(ray.get(out.execute(3, bias=3)))              # (3+1)*2 + (3+1)*3 + 3 = 23
print(ray.get(both.execute(3, bias=3)))             # [23, 4]: the output and features
print(ray.get(out.execute(7, bias=1)))              # 8*2 + 8*3 + 1 = 41

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""callgraph.py - the file-level call graph of a set of object files, from their symbol tables.

File A depends on file B when A's object leaves a symbol undefined that B's object defines
(a call or a reference to B's data). The graph says how the parts of krayd or libkray are
layered: pairs of files that depend on each other, cycles (strongly connected components),
and, with --core/--outer, every edge from a core file to an outer part (the cluster, BPF or
kmod glue), which the layering forbids.

  tools/callgraph.py build/daemon                  # counts, pairs, cycles
  tools/callgraph.py build/daemon --check --max-pairs 9 --core core --outer cluster,bpf,kmod
      --allow-cycle task,sched,actor   # exit 1 when a rule is broken (make test runs it)

Names are the object's path below the root without .o (core/store, cluster/net, ...).
"""
import argparse
import json
import os
import subprocess
import sys


def symbols(obj):
    out = subprocess.run(["nm", "--defined-only", "-g", obj], capture_output=True, text=True,
                         check=True).stdout
    defined = {line.split()[-1] for line in out.splitlines() if len(line.split()) == 3}
    out = subprocess.run(["nm", "-u", obj], capture_output=True, text=True, check=True).stdout
    undef = {line.split()[-1] for line in out.splitlines() if line.strip()}
    return defined, undef


def graph(root):
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith(".o"):
                p = os.path.join(d, n)
                files[os.path.relpath(p, root)[:-2]] = symbols(p)
    owner = {}
    for f, (defined, _) in files.items():
        for s in defined:
            owner[s] = f
    edges = {}
    for f, (_, undef) in files.items():
        for s in undef:
            g = owner.get(s)
            if g and g != f:
                edges.setdefault(f, {}).setdefault(g, []).append(s)
    return sorted(files), edges


def sccs(nodes, edges):
    """Tarjan's algorithm: the cycles, each a sorted list of files (only those of 2 or more)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def part(f):
    return f.split("/", 1)[0] if "/" in f else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", help="folder of object files (build/daemon)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a rule is broken")
    ap.add_argument("--max-pairs", type=int, default=None)
    ap.add_argument("--core", default=None, help="the core's folder under root")
    ap.add_argument("--outer", default="", help="comma-separated outer folders")
    ap.add_argument("--allow-cycle", default="", help="file stems allowed in one cycle")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="list pairs and core edges")
    a = ap.parse_args()

    nodes, edges = graph(a.root)
    nedges = sum(len(v) for v in edges.values())
    pairs = sorted({tuple(sorted((f, g))) for f in edges for g in edges[f]
                    if f in edges.get(g, {})})
    cycles = sccs(nodes, edges)
    outer = [o for o in a.outer.split(",") if o]
    core_out = sorted((f, g, sorted(edges[f][g])) for f in edges for g in edges[f]
                      if a.core and part(f) == a.core and part(g) in outer)
    allowed = {s for s in a.allow_cycle.split(",") if s}
    bad_cycles = [c for c in cycles
                  if not {os.path.basename(f) for f in c} <= allowed]

    if a.json:
        print(json.dumps({"files": len(nodes), "edges": nedges, "mutual_pairs": len(pairs),
                          "cycles": cycles, "core_to_outer": len(core_out)}))
    else:
        print(f"callgraph {a.root}: {len(nodes)} files, {nedges} edges, {len(pairs)} mutual "
              f"pairs, {len(cycles)} cycles (largest {max((len(c) for c in cycles), default=0)})"
              + (f", {len(core_out)} core->outer edges" if a.core else ""))
        if a.verbose or a.check:
            for p in pairs if a.verbose else []:
                print(f"  pair  {p[0]} <-> {p[1]}")
            for c in cycles if a.verbose else bad_cycles:
                print(f"  cycle {' '.join(c)}")
            for f, g, syms in core_out:
                print(f"  core->outer {f} -> {g}: {', '.join(syms)}")

    if a.check:
        fail = []
        if a.max_pairs is not None and len(pairs) > a.max_pairs:
            fail.append(f"{len(pairs)} mutual pairs (at most {a.max_pairs})")
        if core_out:
            fail.append(f"{len(core_out)} core->outer edges")
        if bad_cycles:
            fail.append(f"{len(bad_cycles)} cycles beyond {a.allow_cycle or 'none'}")
        if fail:
            print("callgraph: FAILED: " + "; ".join(fail), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

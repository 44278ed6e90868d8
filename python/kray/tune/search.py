# SPDX-License-Identifier: Apache-2.0
"""Search spaces (tune.grid_search, choice, uniform, loguniform, randint, ...) and the
basic variant generator: every combination of the grid_search values, num_samples times,
with the random domains drawn by a generator that can be seeded (random_state)."""
import copy
import itertools
import math
import random


class Domain:
    """A random value: .sample(rng) draws one."""

    def sample(self, rng=None):
        raise NotImplementedError

    def is_grid(self):
        return False


class Categorical(Domain):
    def __init__(self, categories):
        self.categories = list(categories)
        if not self.categories:
            raise ValueError("tune.choice() needs at least one category")

    def sample(self, rng=None):
        rng = rng or random
        c = self.categories[rng.randrange(len(self.categories))]
        return resolve_nested(c, rng) if isinstance(c, (dict, list, Domain)) else c

    def __repr__(self):
        return f"choice({self.categories!r})"


class Float(Domain):
    def __init__(self, lower, upper, kind="uniform", base=10, q=None, mean=None, sd=None):
        self.lower, self.upper, self.kind, self.base, self.q = lower, upper, kind, base, q
        self.mean, self.sd = mean, sd
        if kind in ("uniform", "loguniform") and not lower < upper:
            raise ValueError(f"tune.{kind}() needs lower < upper, got {lower} and {upper}")
        if kind == "loguniform" and lower <= 0:
            raise ValueError("LogUniform requires a lower bound greater than 0. Got: "
                             f"{lower}. Did you pass a variable that has been log-transformed?")

    def sample(self, rng=None):
        rng = rng or random
        if self.kind == "uniform":
            v = rng.uniform(self.lower, self.upper)
        elif self.kind == "loguniform":
            lo, hi = math.log(self.lower, self.base), math.log(self.upper, self.base)
            v = self.base ** rng.uniform(lo, hi)
        else:  # normal
            v = rng.gauss(self.mean, self.sd)
        if self.q is not None:
            v = round(v / self.q) * self.q
        return v

    def __repr__(self):
        if self.kind == "normal":
            return f"randn({self.mean}, {self.sd})"
        return f"{self.kind}({self.lower}, {self.upper})"


class Integer(Domain):
    def __init__(self, lower, upper, log=False, q=None):
        if not isinstance(lower, int) or not isinstance(upper, int):
            raise TypeError("tune.randint() takes integer bounds")
        if not lower < upper:
            raise ValueError(f"tune.randint() needs lower < upper (upper is exclusive), got "
                             f"{lower} and {upper}")
        if log and lower <= 0:
            raise ValueError("tune.lograndint() needs a lower bound greater than 0")
        self.lower, self.upper, self.log, self.q = lower, upper, log, q

    def sample(self, rng=None):
        rng = rng or random
        if self.log:
            v = int(math.exp(rng.uniform(math.log(self.lower), math.log(self.upper))))
            v = min(max(v, self.lower), self.upper - 1)
        else:
            v = rng.randrange(self.lower, self.upper)
        if self.q is not None:
            v = int(round(v / self.q) * self.q)
        return v

    def __repr__(self):
        return f"randint({self.lower}, {self.upper})"


class Function(Domain):
    """sample_from(fn): fn(spec) with spec.config the rest of the resolved config."""

    def __init__(self, func):
        if not callable(func):
            raise TypeError("tune.sample_from() takes a callable")
        self.func = func

    def sample(self, rng=None, spec=None):
        try:
            return self.func(spec)
        except TypeError:
            return self.func()


def uniform(lower, upper):
    return Float(lower, upper)


def quniform(lower, upper, q):
    return Float(lower, upper, q=q)


def loguniform(lower, upper, base=10):
    return Float(lower, upper, kind="loguniform", base=base)


def qloguniform(lower, upper, q, base=10):
    return Float(lower, upper, kind="loguniform", base=base, q=q)


def randn(mean=0.0, sd=1.0):
    return Float(None, None, kind="normal", mean=mean, sd=sd)


def qrandn(mean, sd, q):
    return Float(None, None, kind="normal", mean=mean, sd=sd, q=q)


def randint(lower, upper):
    return Integer(lower, upper)


def qrandint(lower, upper, q=1):
    return Integer(lower, upper + 1, q=q)


def lograndint(lower, upper, base=10):
    return Integer(lower, upper, log=True)


def choice(categories):
    return Categorical(categories)


def sample_from(func):
    return Function(func)


def grid_search(values):
    """Every value is tried (a grid axis): {"grid_search": values}, as Ray's."""
    values = list(values)
    if not values:
        raise ValueError("tune.grid_search() needs at least one value")
    return {"grid_search": values}


def _is_grid(v):
    return isinstance(v, dict) and len(v) == 1 and "grid_search" in v


class _Spec(dict):
    """What sample_from functions get: spec.config (attribute access works too)."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None


def _attr(d):
    if isinstance(d, dict):
        return _Spec({k: _attr(v) for k, v in d.items()})
    return d


def _paths(cfg, prefix=()):
    """(path, value) of every leaf that is a grid or a Domain, depth first."""
    if _is_grid(cfg) or isinstance(cfg, Domain):
        yield prefix, cfg
    elif isinstance(cfg, dict):
        for k, v in cfg.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(cfg, list):
        for i, v in enumerate(cfg):
            yield from _paths(v, prefix + (i,))


def _assign(cfg, path, value):
    for p in path[:-1]:
        cfg = cfg[p]
    cfg[path[-1]] = value


def resolve_nested(cfg, rng):
    cfg = copy.deepcopy(cfg)
    if isinstance(cfg, Domain):
        return cfg.sample(rng)
    for path, dom in list(_paths(cfg)):
        if isinstance(dom, Domain) and not isinstance(dom, Function):
            _assign(cfg, path, dom.sample(rng))
    return cfg


def _without_grids(cfg):
    """cfg with each grid axis replaced by None (the variants fill it in)."""
    if _is_grid(cfg):
        return None
    if isinstance(cfg, dict):
        return {k: _without_grids(v) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [_without_grids(v) for v in cfg]
    return cfg


def generate_variants(space, num_samples, rng):
    """The resolved configs, in order: num_samples times every grid combination (the
    last grid axis varies fastest)."""
    if not isinstance(space, dict):
        raise TypeError(f"config/param_space must be a dict, got {type(space).__name__}")
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError("num_samples must be a positive integer")
    grids = [(p, v["grid_search"]) for p, v in _paths(space) if _is_grid(v)]
    # Each variant copies the space without its grids' values (copying them too made a
    # grid of n values cost n^2: 1.5 ms a trial at 1,000).
    bare = _without_grids(space)
    out = []
    for _ in range(num_samples):
        for combo in itertools.product(*[vals for _, vals in grids]):
            cfg = copy.deepcopy(bare)
            for (path, _), val in zip(grids, combo):
                _assign(cfg, path, copy.deepcopy(val))
            funcs = []
            for path, dom in list(_paths(cfg)):
                if isinstance(dom, Function):
                    funcs.append(path)
                elif isinstance(dom, Domain):
                    _assign(cfg, path, dom.sample(rng))
            for path in funcs:
                dom = cfg
                for p in path:
                    dom = dom[p]
                _assign(cfg, path, dom.sample(rng, _Spec(config=_attr(cfg))))
            out.append(cfg)
    return out


class Searcher:
    """Base of search algorithms (kray has the basic variant generator only)."""


class BasicVariantGenerator(Searcher):
    """Grid search and random search: the configs of generate_variants(), drawn with
    random.Random(random_state)."""

    def __init__(self, points_to_evaluate=None, max_concurrent=0, random_state=None,
                 constant_grid_search=False):
        self.points_to_evaluate = list(points_to_evaluate or [])
        self.max_concurrent = max_concurrent
        self.random_state = random_state

    def variants(self, space, num_samples):
        rng = random.Random(self.random_state)
        first = []
        for p in self.points_to_evaluate:
            cfg = copy.deepcopy(space)
            _merge(cfg, p)
            first.extend(generate_variants(cfg, 1, rng))
        return first + generate_variants(space, num_samples, rng)


def _merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict) and not _is_grid(base[k]):
            _merge(base[k], v)
        else:
            base[k] = v


class ConcurrencyLimiter(Searcher):
    """Wraps a searcher and caps the trials running at once (max_concurrent)."""

    def __init__(self, searcher, max_concurrent):
        if not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError("max_concurrent must be a positive integer")
        self.searcher = searcher
        self.max_concurrent = max_concurrent

    def variants(self, space, num_samples):
        return self.searcher.variants(space, num_samples)

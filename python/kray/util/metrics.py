# SPDX-License-Identifier: Apache-2.0
"""kray.util.metrics: Ray's application metrics (ray.util.metrics) on kray
(docs/observability.md).

    Counter(name, description="", tag_keys=None)                    .inc(value=1.0, tags=None)
    Gauge(name, description="", tag_keys=None)                      .set(value, tags=None)
    Histogram(name, description="", boundaries=None, tag_keys=None) .observe(value, tags=None)

    each also has set_default_tags(dict) (returns the metric) and .info

A driver, task or actor records; the process sums its updates here (one entry per metric
and tag set) and sends them to its node's krayd in batches, one METRIC frame per series
that changed (kray_metric_record()): a driver every REPORT_INTERVAL_S from a thread and at
kray.shutdown(), a worker with the result of each call (and during a long call, once the
interval has passed since its last send).  krayd merges the node's processes and serves
the series on its Prometheus endpoint (`metrics = HOST:PORT`) under Ray's names:
ray_<name>_total (counter), ray_<name> (gauge), ray_<name>_bucket/_sum/_count (histogram).

Where kray differs from Ray (Ray accepts these and the exporter breaks or drops them):
a tag key must be a Prometheus label name and not reserved ("le", "__*"); a histogram's
boundaries must be strictly ascending; at most 16 tag keys and 64 boundaries; a name
already used by a metric of another type (in this process, or on this node's krayd) is a
ValueError.
"""
import atexit
import logging
import math
import os
import re
import threading
import time
import warnings
from typing import Any, Dict, List, Optional, Tuple, Union

logger = logging.getLogger(__name__)

# Prometheus' metric name rule (Ray's _VALID_METRIC_NAME_RE): other names are discarded
# with a warning, as Ray does.
_VALID_METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_VALID_TAG_KEY_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
NAME_MAX = 128  # bytes (KRAY_METRIC_NAME_MAX)
DESCRIPTION_MAX = 1024  # bytes kept of a description
TAG_KEYS_MAX = 16
TAG_KEY_MAX = 64  # bytes
TAG_VALUE_MAX = 256  # bytes
BOUNDARIES_MAX = 64
RESERVED_TAG_KEYS = ("le",)  # and any key starting with "__" (Prometheus')

# How often a process sends what it recorded (Ray's metrics_report_interval_ms is 10 s;
# kray's is shorter, the updates being small frames to the local krayd).
REPORT_INTERVAL_S = int(os.environ.get("KRAY_METRICS_REPORT_INTERVAL_MS", "1000")) / 1000.0

_COUNTER, _GAUGE, _HISTOGRAM = 1, 2, 3
_TYPE_NAMES = {_COUNTER: "Counter", _GAUGE: "Gauge", _HISTOGRAM: "Histogram"}

_lock = threading.Lock()
# (name, ((key, value), ...) sorted) -> [meta, value, buckets or None]; meta is
# (type, name, description, boundaries or None).  Counter: the increment since the last
# send; gauge: the last value; histogram: the sum of the new observations, and their
# per-bucket counts.
_pending = {}
# name -> (type, boundaries or None): the metrics this process made, for the type check.
_types = {}
_undeclared = set()  # names krayd has not been asked about yet (no connection then)
_last_send = [0.0]
_thread = [None]


def _kray():
    from .. import _kray
    return _kray


def _declare(type_, name, description, boundaries):
    """Asks krayd whether it takes the metric; a ValueError when the name has another type
    there.  Left for the first send when this thread cannot reach krayd now."""
    try:
        why = _kray().metric_define(type_, name, description, boundaries)
    except (RuntimeError, ConnectionError):  # not connected, or not in a call
        _undeclared.add(name)
        return
    if why:
        raise ValueError(f"{why}: pick another name (krayd keeps one type per metric "
                         f"name on a node)")


class Metric:
    """The parent class of custom metrics (Ray's ray.util.metrics.Metric)."""

    _type = 0

    def __init__(self, name: str, description: str = "",
                 tag_keys: Optional[Tuple[str, ...]] = None):
        self._discard_metric = self._is_invalid_metric_name(name)
        self._name = name
        self._description = description
        self._default_tags = {}
        self._tag_keys = tag_keys or tuple()
        if not isinstance(self._tag_keys, tuple):
            raise TypeError("tag_keys should be a tuple type, got: "
                            f"{type(self._tag_keys)}")
        for key in self._tag_keys:
            if not isinstance(key, str):
                raise TypeError(f"Tag keys must be str, got {type(key)}.")
        for key in self._tag_keys:
            if (not _VALID_TAG_KEY_RE.match(key) or len(key.encode()) > TAG_KEY_MAX
                    or key in RESERVED_TAG_KEYS or key.startswith("__")):
                raise ValueError(
                    f"Invalid tag key {key!r}: a tag key is a Prometheus label name "
                    f"([a-zA-Z_][a-zA-Z0-9_]*, up to {TAG_KEY_MAX} bytes), and 'le' and "
                    f"keys starting with '__' are reserved.")
        if len(set(self._tag_keys)) != len(self._tag_keys):
            raise ValueError(f"Tag keys repeat: {self._tag_keys}.")
        if len(self._tag_keys) > TAG_KEYS_MAX:
            raise ValueError(f"A metric has at most {TAG_KEYS_MAX} tag keys, got "
                             f"{len(self._tag_keys)}.")
        desc = description.encode() if isinstance(description, str) else b""
        # The description krayd serves (HELP): cut at a character's end.
        self._help = desc[:DESCRIPTION_MAX].decode(errors="ignore")

    def _register(self, boundaries=None):
        """The type check: one type (and one set of boundaries) per name, in this process
        and on the node's krayd."""
        if self._discard_metric:
            return
        bounds = tuple(float(b) for b in boundaries) if boundaries else None
        with _lock:
            known = _types.get(self._name)
            if known is not None and known != (self._type, bounds):
                what = _TYPE_NAMES[known[0]]
                raise ValueError(
                    f"Metric '{self._name}' is a {what} already"
                    + (" with other boundaries" if known[0] == self._type else "")
                    + f": a {type(self).__name__} cannot use its name.")
            first = known is None
            _types[self._name] = (self._type, bounds)
        if first:
            try:
                _declare(self._type, self._name, self._help, bounds)
            except ValueError:
                with _lock:
                    _types.pop(self._name, None)
                raise

    def _is_invalid_metric_name(self, name: str) -> bool:
        if len(name) == 0:
            raise ValueError("Empty name is not allowed. Please provide a metric name.")
        if not _VALID_METRIC_NAME_RE.match(name):
            warnings.warn(
                f"Invalid metric name: {name}. Metric will be discarded "
                "and data will not be collected or published. "
                "Metric names can only contain letters, numbers, _, and :. "
                "Metric names cannot start with numbers.",
                UserWarning,
            )
            return True
        if len(name) > NAME_MAX:
            raise ValueError(f"Metric name {name[:32]}...: at most {NAME_MAX} characters.")
        return False

    def set_default_tags(self, default_tags: Dict[str, str]):
        """Sets the tags used by every record call that does not give them; returns the
        metric itself."""
        for key, val in default_tags.items():
            if key not in self._tag_keys:
                raise ValueError(f"Unrecognized tag key {key}.")
            if not isinstance(val, str):
                raise TypeError(f"Tag values must be str, got {type(val)}.")
        self._default_tags = default_tags
        return self

    def _get_final_tags(self, tags):
        if not tags:
            return self._default_tags
        for val in tags.values():
            if not isinstance(val, str):
                raise TypeError(f"Tag values must be str, got {type(val)}.")
        return {**self._default_tags, **tags}

    def _validate_tags(self, final_tags):
        missing = [k for k in self._tag_keys if k not in final_tags]
        if missing:
            raise ValueError(f"Missing value for tag key(s): {','.join(missing)}.")
        unknown = [k for k in final_tags if k not in self._tag_keys]
        if unknown:
            raise ValueError(f"Unrecognized tag key(s): {','.join(unknown)} (the metric's "
                             f"tag_keys are {self._tag_keys}).")
        for key, val in final_tags.items():
            if len(val) > TAG_VALUE_MAX // 4 and len(val.encode()) > TAG_VALUE_MAX:
                raise ValueError(f"Tag {key}'s value is over {TAG_VALUE_MAX} bytes.")

    def _record(self, value, tags=None):
        if self._discard_metric:
            return
        final = self._get_final_tags(tags)
        self._validate_tags(final)
        key = (self._name, tuple(sorted(final.items())))
        with _lock:
            entry = _pending.get(key)
            if entry is None:
                entry = _pending[key] = [self._meta(), 0.0, self._no_buckets()]
            self._merge(entry, value)
        _after_record()

    def _meta(self):
        return (self._type, self._name, self._help, None)

    def _no_buckets(self):
        return None

    @property
    def info(self) -> Dict[str, Any]:
        """The metric's name, description, tag keys and default tags (Ray's)."""
        return {
            "name": self._name,
            "description": self._description,
            "tag_keys": self._tag_keys,
            "default_tags": self._default_tags,
        }


def _number(value):
    if not isinstance(value, (int, float)):
        raise TypeError(f"value must be int or float, got {type(value)}.")


class Counter(Metric):
    """A cumulative metric that only goes up: Prometheus' counter, served as
    ray_<name>_total (as Ray since 2.10)."""

    _type = _COUNTER

    def __init__(self, name: str, description: str = "",
                 tag_keys: Optional[Tuple[str, ...]] = None):
        super().__init__(name, description, tag_keys)
        self._register()

    def __reduce__(self):
        return self.__class__, (self._name, self._description, self._tag_keys)

    def inc(self, value: Union[int, float] = 1.0, tags: Dict[str, str] = None):
        """Increments the counter by value (default 1); tags override the defaults."""
        _number(value)
        if value <= 0:
            raise ValueError(f"value must be >0, got {value}")
        if math.isinf(value):
            raise ValueError(f"value must be finite, got {value}")
        self._record(value, tags=tags)

    @staticmethod
    def _merge(entry, value):
        entry[1] += value


class Gauge(Metric):
    """The last value set: Prometheus' gauge, served as ray_<name>.  Processes of a node
    that set the same tag set share one series: the last value krayd heard wins."""

    _type = _GAUGE

    def __init__(self, name: str, description: str = "",
                 tag_keys: Optional[Tuple[str, ...]] = None):
        super().__init__(name, description, tag_keys)
        self._register()

    def __reduce__(self):
        return Gauge, (self._name, self._description, self._tag_keys)

    def set(self, value: Optional[Union[int, float]], tags: Dict[str, str] = None):
        """Sets the gauge to value (None: nothing happens); tags override the defaults."""
        if value is None:
            return
        _number(value)
        self._record(value, tags)

    @staticmethod
    def _merge(entry, value):
        entry[1] = float(value)


class Histogram(Metric):
    """Observations counted in buckets: Prometheus' histogram, served as
    ray_<name>_bucket{le=...} (cumulative, with +Inf), ray_<name>_sum and _count."""

    _type = _HISTOGRAM

    def __init__(self, name: str, description: str = "", boundaries: List[float] = None,
                 tag_keys: Optional[Tuple[str, ...]] = None):
        super().__init__(name, description, tag_keys)
        if boundaries is None or len(boundaries) == 0:
            raise ValueError(
                "boundaries argument should be provided when using "
                "the Histogram class. e.g., "
                'Histogram("name", boundaries=[1.0, 2.0])'
            )
        for i, boundary in enumerate(boundaries):
            if not isinstance(boundary, (int, float)) or boundary <= 0:
                raise ValueError(
                    "Invalid `boundaries` argument at index "
                    f"{i}, {boundaries}. Use positive values for the arguments.")
            if math.isinf(boundary):
                raise ValueError(f"Invalid `boundaries` argument at index {i}, "
                                 f"{boundaries}: boundaries are finite (+Inf is implied).")
            if i and not boundary > boundaries[i - 1]:
                raise ValueError(f"Invalid `boundaries` argument at index {i}, "
                                 f"{boundaries}: boundaries must be strictly ascending.")
        if len(boundaries) > BOUNDARIES_MAX:
            raise ValueError(f"A histogram has at most {BOUNDARIES_MAX} boundaries, got "
                             f"{len(boundaries)}.")
        self.boundaries = boundaries
        self._bounds = tuple(float(b) for b in boundaries)
        self._register(boundaries)

    def observe(self, value: Union[int, float], tags: Dict[str, str] = None):
        """Adds value to its bucket (the first whose boundary is >= value)."""
        _number(value)
        if value != value:
            raise ValueError("value must not be NaN")
        self._record(value, tags)

    def __reduce__(self):
        return Histogram, (self._name, self._description, self.boundaries, self._tag_keys)

    def _meta(self):
        return (self._type, self._name, self._help, self._bounds)

    def _no_buckets(self):
        return [0] * (len(self._bounds) + 1)

    def _merge(self, entry, value):
        bounds, i = self._bounds, 0
        while i < len(bounds) and not value <= bounds[i]:
            i += 1
        entry[2][i] += 1
        entry[1] += value

    @property
    def info(self):
        info = super().info
        info.update({"boundaries": self.boundaries})
        return info


def _merge_back(batch):
    """Puts back updates a send could not deliver, merged with what came since."""
    with _lock:
        for key, old in batch.items():
            new = _pending.get(key)
            if new is None:
                _pending[key] = old
            elif old[0][0] == _COUNTER:
                new[1] += old[1]
            elif old[0][0] == _HISTOGRAM:
                new[1] += old[1]
                new[2] = [a + b for a, b in zip(new[2], old[2])]
            # a gauge: the newer value stays


def _flush(flush=True):
    """Sends what this process recorded since its last send; False when it could not
    (no connection on this thread now: the updates are kept for the next try).  flush
    False leaves the frames queued to go with the connection's next write (a worker's
    result)."""
    k = _kray()
    with _lock:
        if not _pending:
            return True
        batch = dict(_pending)
        _pending.clear()
        undeclared = [n for n in _undeclared]
    try:
        for name in undeclared:  # made before this thread could reach krayd
            meta = next((e[0] for e in batch.values() if e[0][1] == name), None)
            if meta is None:
                continue
            why = k.metric_define(*meta)
            with _lock:
                _undeclared.discard(name)
            if why:
                logger.warning("kray.util.metrics: %s: its updates are dropped", why)
                batch = {key: e for key, e in batch.items() if e[0][1] != name}
        records = []
        for (name, tags), (meta, value, buckets) in batch.items():
            records.append((meta[0], meta[1], meta[2], meta[3],
                            tuple(t[0] for t in tags), tuple(t[1] for t in tags),
                            float(value), tuple(buckets) if buckets is not None else None))
        k.metric_send(records, flush)
    except (RuntimeError, ConnectionError):
        _merge_back(batch)
        return False
    except Exception as e:  # noqa: BLE001 (a bug: say it, never fail the caller's record)
        logger.warning("kray.util.metrics: %d updates dropped: %s", len(batch), e)
        return False
    _last_send[0] = time.monotonic()
    return True


def _after_record():
    """A driver's updates go from its reporting thread; a worker's with its call's result,
    or here once the interval has passed (a long call)."""
    if _thread[0] is not None:
        return  # a driver: its reporting thread sends
    if _kray().in_worker():
        if time.monotonic() - _last_send[0] >= REPORT_INTERVAL_S:
            _flush(True)
        return
    if _thread[0] is None:
        with _lock:
            if _thread[0] is not None:
                return
            t = _thread[0] = threading.Thread(target=_reporter, name="kray-metrics",
                                              daemon=True)
        t.start()


def _reporter():
    while True:
        time.sleep(REPORT_INTERVAL_S)
        if _pending:
            _flush(True)


def _after_call():
    """Run by the worker at the end of each call (kray/_worker.py): the call's updates are
    queued to go with its result."""
    if _pending:
        _flush(False)


def _before_shutdown():
    """kray.shutdown(): the driver's last updates go before its connection closes."""
    if _pending:
        try:
            _flush(True)
        except Exception:  # noqa: BLE001 (shutdown goes on)
            pass
    with _lock:
        _undeclared.update(_types)  # a later kray.init() may reach another krayd


def _install():
    from .. import _worker
    import kray
    _worker.after_call_hooks.append(_after_call)
    kray.before_shutdown_hooks.append(_before_shutdown)


_install()
atexit.register(_before_shutdown)

__all__ = ["Counter", "Histogram", "Gauge"]

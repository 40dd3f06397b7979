"""Metric points as the SDK and the REST API hand them in, checked and normalised.

Store-free, so the HTTP client checks a batch exactly as the service will (a NaN fails with
the same error in both modes, rather than as unencodable JSON). This is the hot path of
``log_metric``: the common case costs a handful of type comparisons.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from shipyard.errors import InvalidArgument
from shipyard.tracking.models import MetricPoint
from shipyard.validation import check_key

__all__ = ["MAX_BATCH_METRICS", "MAX_STEP", "Metric", "clean_metrics"]

MAX_BATCH_METRICS = 10_000
MAX_STEP = 2**62

Metric = tuple[str, float, int, int]  # key, value, step, timestamp (ms)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# Metric keys this process has already found valid. A training loop logs the same few keys
# call after call, and checking one (a regular expression, and the field name formatted for
# its error) was a third of the cost of validating a point. Bounded, so a stream of
# distinct keys cannot grow it without limit; set operations are atomic, so threads share it.
_valid_keys: set[str] = set()
_MAX_VALID_KEYS = 1024


def clean_metrics(metrics: Iterable[Any], default_ts: int | None = None) -> list[Metric]:
    """Validate metric points given as MetricPoint, dicts or (key, value, step, ts) tuples."""
    now = default_ts if default_ts is not None else now_ms()
    out: list[Metric] = []
    for i, item in enumerate(metrics):
        size = len(item) if type(item) is tuple or type(item) is list else 0
        if size == 3:  # (key, value, step): what the SDK sends; unpacked first, cheaply
            key, value, step = item
            ts = now
        elif size == 4:
            key, value, step, ts = item
        elif size == 2:
            key, value = item
            step, ts = 0, now
        elif isinstance(item, MetricPoint):
            key, value, step, ts = item.key, item.value, item.step, item.timestamp
        elif isinstance(item, Mapping):
            key, value = item.get("key"), item.get("value")
            step, ts = item.get("step", 0), item.get("timestamp", now)
        elif isinstance(item, tuple | list) and len(item) in (2, 3, 4):  # subclasses
            key, value = item[0], item[1]
            step = item[2] if len(item) > 2 else 0
            ts = item[3] if len(item) > 3 else now
        else:
            raise InvalidArgument(f"metrics[{i}] must be a metric point", field=f"metrics[{i}]")
        if type(key) is not str or key not in _valid_keys:
            check_key(key, f"metrics[{i}].key")
            if len(_valid_keys) >= _MAX_VALID_KEYS:
                _valid_keys.clear()
            _valid_keys.add(key)
        # Exact-type checks first: the common case (a float value, int step and timestamp)
        # costs three comparisons; anything else takes the careful path below.
        if type(value) is not float:
            value = _metric_value(key, value)
        if value - value != 0.0:  # NaN and +-inf, without a function call
            raise InvalidArgument(
                f"metric {key!r} must be a finite number, got {value}", field=f"metrics.{key}"
            )
        if type(step) is not int or not 0 <= step < MAX_STEP:
            raise InvalidArgument(f"step of metric {key!r} must be a non-negative integer",
                                  field=f"metrics.{key}.step")
        if type(ts) is not int or not 0 <= ts < MAX_STEP:
            raise InvalidArgument(
                f"timestamp of metric {key!r} must be milliseconds since the epoch",
                field=f"metrics.{key}.timestamp",
            )
        out.append((key, value, step, ts))
    return out


def _metric_value(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"metric {key!r} must be a number", field=f"metrics.{key}"
            ) from None
    return float(value)

"""Request rate, latency percentiles and error rate of each endpoint over time.

The serving metrics (``serving.metrics.ServingMetrics``, what ``GET /metrics`` shows) are
counters and a latency histogram since the server started: Prometheus keeps their history
when one scrapes the server, the server itself does not. For the console's charts the server
keeps a small ring in memory: every ``INTERVAL`` seconds ``History.sample`` copies each
deployment's counters (requests, errors, the histogram's buckets), and ``KEEP`` samples are
kept (an hour). A point of a chart is the difference between two samples: requests per
second, errors as a share of requests, and the 50th, 95th and 99th percentiles of latency
interpolated within the histogram's buckets (as PromQL's ``histogram_quantile``). The ring
starts empty with each server and is not shared between a server's processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from shipyard.serving.metrics import ServingMetrics

__all__ = ["INTERVAL", "KEEP", "History", "charts", "install"]

INTERVAL = 10.0  # seconds between samples
KEEP = 360  # samples kept: an hour at INTERVAL
MAX_SERIES = 10_000  # deployments per sample, whatever names callers sent
QUANTILES = (0.5, 0.95, 0.99)
MIN_LIVE_GAP = 1.0  # seconds: a page adds "now" as a point when the last sample is older

Key = tuple[str, str, str]  # project, endpoint, deployed model id ('' when refused before)


@dataclass(frozen=True)
class Counts:
    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), +Inf last


@dataclass(frozen=True)
class Sample:
    at: float  # time.time()
    counts: Mapping[Key, Counts]


class History:
    """The ring of samples of one server's serving metrics."""

    def __init__(self, metrics: Callable[[], ServingMetrics], keep: int = KEEP) -> None:
        self.metrics = metrics
        self.samples: deque[Sample] = deque(maxlen=keep)

    def snapshot(self, now: float | None = None) -> Sample:
        requests: dict[Key, float] = {}
        errors: dict[Key, float] = {}
        buckets: dict[Key, dict[float, float]] = {}
        for family in self.metrics().registry.collect():
            for s in family.samples:
                labels = s.labels
                key = (labels.get("project", ""), labels.get("endpoint", ""),
                       labels.get("deployed_model_id", ""))
                if s.name == "shipyard_prediction_requests_total":
                    requests[key] = requests.get(key, 0.0) + s.value
                elif s.name == "shipyard_prediction_errors_total":
                    errors[key] = errors.get(key, 0.0) + s.value
                elif s.name == "shipyard_prediction_latency_seconds_bucket":
                    bound = float(labels.get("le", "inf"))
                    found = buckets.setdefault(key, {})
                    found[bound] = found.get(bound, 0.0) + s.value
        counts = {key: Counts(value, errors.get(key, 0.0),
                              tuple(sorted(buckets.get(key, {}).items())))
                  for key, value in list(requests.items())[:MAX_SERIES]}
        return Sample(time.time() if now is None else now, counts)

    def sample(self, now: float | None = None) -> None:
        """Add a sample of the counters as they are now."""
        self.samples.append(self.snapshot(now))

    def points(self, project: str, endpoint: str, *, live: bool = True) -> list[Sample]:
        """The kept samples (and, with ``live``, the counters now as the last one), each
        narrowed to the endpoint's series."""
        chosen = list(self.samples)
        if live and (not chosen or time.time() - chosen[-1].at >= MIN_LIVE_GAP):
            chosen.append(self.snapshot())
        return [Sample(s.at, {k: c for k, c in s.counts.items()
                              if k[0] == project and k[1] == endpoint}) for s in chosen]

    async def run(self, interval: float = INTERVAL) -> None:
        """Sample every ``interval`` seconds, unless a sample was taken less than half an
        interval ago (by hand: tests) or is dated ahead."""
        while True:
            await asyncio.sleep(interval)
            if not self.samples or time.time() - self.samples[-1].at >= interval / 2:
                self.sample()


def install(app: FastAPI) -> History:
    """Keep a ``History`` of the app's serving metrics in ``app.state.console_history``,
    sampled while the app runs (its lifespan, wrapped)."""
    history = History(lambda: app.state.serving.metrics)
    app.state.console_history = history
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Any) -> AsyncIterator[Any]:
        async with inner(started) as value:
            history.sample()
            task = asyncio.create_task(history.run(), name="shipyard-console-history")
            try:
                yield value
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan
    return history


# -- charts ----------------------------------------------------------------------------------


def charts(samples: list[Sample]) -> list[dict[str, Any]]:
    """Three chart specs (``console.js``'s shape) from consecutive samples of one endpoint:
    requests per second by deployment, latency percentiles, errors as a share of requests.
    Empty when there are fewer than two samples (no interval to measure)."""
    if len(samples) < 2:
        return []
    times: list[str] = []
    deployments = sorted({k[2] for s in samples for k in s.counts})
    rates: dict[str, list[float | None]] = {d: [] for d in deployments}
    quantiles: dict[float, list[float | None]] = {q: [] for q in QUANTILES}
    error_share: list[float | None] = []
    for before, after in itertools.pairwise(samples):
        seconds = after.at - before.at
        if seconds <= 0:
            continue
        times.append(_iso(after.at))
        total_requests = total_errors = 0.0
        merged: dict[float, float] = {}
        now = {k[2]: c for k, c in after.counts.items()}
        then = {k[2]: c for k, c in before.counts.items()}
        for deployed in deployments:
            key_after, key_before = now.get(deployed), then.get(deployed)
            requests = _delta(key_after.requests if key_after else 0.0,
                              key_before.requests if key_before else 0.0)
            rates[deployed].append(round(requests / seconds, 4))
            total_requests += requests
            total_errors += _delta(key_after.errors if key_after else 0.0,
                                   key_before.errors if key_before else 0.0)
            old = dict(key_before.buckets) if key_before else {}
            for bound, count in (key_after.buckets if key_after else ()):
                merged[bound] = merged.get(bound, 0.0) + _delta(count, old.get(bound, 0.0))
        buckets = sorted(merged.items())
        for q in QUANTILES:
            value = quantile(q, buckets)
            quantiles[q].append(None if value is None else round(value * 1000, 3))
        error_share.append(round(100 * total_errors / total_requests, 2)
                           if total_requests else None)
    total = [round(sum(rates[d][n] or 0.0 for d in deployments), 4)
             for n in range(len(times))]
    # The whole kept window on the x axis (a single point would get a millisecond scale).
    pad = max(1.0, (samples[-1].at - samples[0].at) * 0.03)  # room for the edge's markers
    window = {"xaxis": {"type": "date", "range": [_iso(samples[0].at - pad),
                                                  _iso(samples[-1].at + pad)],
                        "tickformat": "%H:%M:%S", "hoverformat": "%H:%M:%S"}}
    return [
        {"title": "Requests per second (UTC times)", "y_title": "requests/s",
         "layout": {**window, "yaxis": {"title": {"text": "requests/s"},
                                        "rangemode": "tozero"}},
         "traces": [*({"x": times, "y": rates[d], "name": d or "refused before a model",
                       "type": "scatter", "mode": "lines+markers"} for d in deployments),
                    {"x": times, "y": total, "name": "total", "type": "scatter",
                     "mode": "lines+markers", "marker": {"symbol": "x"},
                     "line": {"dash": "dot", "color": "#5b6573"}}]},
        {"title": "Latency percentiles", "y_title": "ms",
         "layout": {**window, "yaxis": {"title": {"text": "ms"}, "rangemode": "tozero"}},
         "traces": [{"x": times, "y": quantiles[q], "name": f"p{round(q * 100)}",
                     "type": "scatter", "mode": "lines+markers", "connectgaps": False}
                    for q in QUANTILES]},
        {"title": "Errors (status 400 and up)", "y_title": "% of requests",
         "traces": [{"x": times, "y": error_share, "name": "errors",
                     "type": "scatter", "mode": "lines+markers", "connectgaps": False}],
         "layout": {**window, "yaxis": {"title": {"text": "% of requests"},
                                        "rangemode": "tozero"}}},
    ]


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a histogram given as (upper bound, cumulative count), +Inf
    last, interpolated linearly within its bucket; None when it counts nothing. In the
    +Inf bucket: the highest finite bound."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _delta(after: float, before: float) -> float:
    # Counters only grow within a server; a smaller value means it restarted its count.
    return after - before if after >= before else after

"""A monitor page's distribution and performance charts.

**Reference against current**: for each feature, the baseline profile kept with the monitor
against the profile of the newest judged window, overlaid in one chart: numeric features as
shares of rows in equal-width bins over both ranges (read from each profile's quantile
sketch; whole numbers over a range shorter than ``BINS``, one bar per value), categorical
ones as the shares of their most frequent values (and the rest as ``other``). A run keeps
its scores, not the window's profile, so the window is profiled again from the endpoint's
request log, as the run judged it (``monitoring.windows``).

**Performance over time**: the metrics each window measured from the ground truth that came
back through the feedback API (accuracy and ROC AUC, or RMSE and MAE), and, for a monitor
that estimates performance without labels, each window's estimate inside its band (the
estimate of an unreliable window marked), with the monitor's objectives as dashed lines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select

from shipyard.config import Settings
from shipyard.errors import ShipyardError
from shipyard.monitoring.models import Monitor, MonitorRun
from shipyard.monitoring.profiles import DataProfile, FeatureProfile, profile
from shipyard.monitoring.windows import read_window, request_log_root
from shipyard.server.console.rendering import when
from shipyard.store import Store
from shipyard.store.schema import monitors

__all__ = ["BINS", "CATEGORIES", "distribution_charts", "performance_chart"]

BINS = 20  # equal-width bins of a numeric feature's histogram
CATEGORIES = 12  # values of a categorical feature shown (the rest count as 'other')
REFERENCE, CURRENT = "#2b59c3", "#d9822b"
BAND, BAND_FILL = "#7a4fb5", "rgba(122, 79, 181, 0.18)"  # the estimate and its band
# Each metric's actual line and its objective share a colour (never the estimate's).
METRIC_COLOURS = {"accuracy": "#2b59c3", "roc_auc": "#d9822b", "rmse": "#c0392b",
                  "mae": "#2e8b57"}
PERFORMANCE = ("accuracy", "roc_auc", "rmse", "mae")


def baseline_of(store: Store, project: str, name: str) -> DataProfile:
    """The monitor's stored baseline profile."""
    with store.read() as conn:
        data = conn.execute(select(monitors.c.baseline_profile).where(
            monitors.c.project == project, monitors.c.name == name)).scalar_one()
    return DataProfile.from_bytes(bytes(data))


def window_profile(settings: Settings, monitor: Monitor, baseline: DataProfile,
                   run: MonitorRun) -> tuple[DataProfile | None, str]:
    """The profile of ``run``'s window read again from the request log, or None and why
    not."""
    root = request_log_root(settings.artifacts)
    if root is None:
        return None, "the request log is in an object store, which this page does not read"
    import duckdb

    columns = [(name, feature.kind) for name, feature in baseline.features.items()]
    rate = float(monitor.config.get("sampling_rate", 1.0))
    try:
        window = read_window(root, monitor.project, monitor.endpoint, run.window_start,
                             run.window_end, columns, sampling_rate=rate,
                             with_feedback=False)
    except (ShipyardError, OSError, ValueError, duckdb.Error) as exc:
        return None, f"the request log of that window could not be read: {exc}"[:300]
    if window.rows == 0:
        return None, "the request log holds no requests for that window any more"
    categorical = [n for n, f in baseline.features.items() if f.kind == "categorical"]
    return profile(window.features, categorical_features=categorical), ""


def distribution_charts(baseline: DataProfile, current: DataProfile | None,
                        features: list[str]) -> list[dict[str, Any]]:
    """One chart per feature of ``features`` (in that order) that the baseline holds."""
    charts = []
    for n, name in enumerate(f for f in features if f in baseline.features):
        reference = baseline.features[name]
        now = current.features.get(name) if current is not None else None
        if now is not None and now.kind != reference.kind:
            now = None
        traces = (_categorical(reference, now) if reference.kind == "categorical"
                  else _numeric(reference, now))
        charts.append({"id": f"distribution-{n}", "feature": name, "spec": {
            "title": f"{name}: reference and current", "y_title": "share of rows",
            "traces": traces,
            # Side by side, never overlaid: overlapping translucent bars blend into a
            # colour the legend does not show.
            "layout": {"barmode": "group", "showlegend": True,
                       "bargap": 0.05 if reference.kind == "numeric" else 0.2,
                       "yaxis": {"rangemode": "tozero", "tickformat": ".0%",
                                 "title": {"text": "share of rows"}}}}})
    return charts


def _numeric(reference: FeatureProfile, current: FeatureProfile | None
             ) -> list[dict[str, Any]]:
    sides = [(reference, "reference (baseline)", REFERENCE)]
    if current is not None and current.present:
        sides.append((current, "current (latest window)", CURRENT))
    sides = [s for s in sides if s[0].present]
    if not sides:
        return []
    low = min(f.minimum for f, _, _ in sides)
    high = max(f.maximum for f, _, _ in sides)
    whole = _whole(sides) and high - low < BINS
    if whole:
        # Whole numbers over a short range (counts, levels): one bar per value.
        edges = np.arange(low - 0.5, high + 1.0, 1.0)
    else:
        if not high > low:
            high = low + 1.0
        edges = np.linspace(low, high, BINS + 1)
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()
    traces: list[dict[str, Any]] = []
    for feature, label, colour in sides:
        below = feature.sketch.cdf(edges)
        below[0] = 0.0  # the lowest value falls in the first bin
        y = [round(float(s), 6) for s in np.clip(np.diff(below), 0.0, 1.0)]
        if whole or not traces:
            # A bar per value (grouped), or the reference's bins touching each other.
            bar = {"type": "bar", "x": centres, "y": y, "name": label,
                   "marker": {"color": colour}}
            if not whole:
                bar["width"] = float(edges[1] - edges[0])
            traces.append(bar)
        else:
            # The current window's bins as a step outline over the reference's bars, so
            # both stay visible where they overlap.
            traces.append({"type": "scatter", "mode": "lines", "x": centres, "y": y,
                           "name": label, "line": {"shape": "hvh", "color": colour,
                                                   "width": 2.5}})
    return traces


def _whole(sides: list[tuple[FeatureProfile, str, str]]) -> bool:
    """Whether every value the sides' sketches keep is a whole number."""
    for feature, _, _ in sides:
        values, _ = feature.sketch.weighted()
        if values.size and not np.all(np.equal(np.mod(values, 1.0), 0.0)):
            return False
    return True


def _categorical(reference: FeatureProfile, current: FeatureProfile | None
                 ) -> list[dict[str, Any]]:
    def shares(feature: FeatureProfile) -> tuple[dict[str, float], float]:
        items, parts, other = feature.shares()
        return {str(k): float(v) for k, v in zip(items, parts, strict=True)}, float(other)

    ref, ref_other = shares(reference)
    now, now_other = shares(current) if current is not None and current.present else ({}, 0.0)
    ranked = sorted(set(ref) | set(now), key=lambda k: (-max(ref.get(k, 0.0),
                                                             now.get(k, 0.0)), k))
    shown, rest = ranked[:CATEGORIES], ranked[CATEGORIES:]
    traces = []
    sides = [(ref, ref_other, "reference (baseline)", REFERENCE)]
    if current is not None and current.present:
        sides.append((now, now_other, "current (latest window)", CURRENT))
    for values, other, label, colour in sides:
        other += sum(values.get(k, 0.0) for k in rest)
        x = [*shown, *(["other"] if other > 0 or rest else [])]
        y = [round(values.get(k, 0.0), 6) for k in shown]
        if len(x) > len(shown):
            y.append(round(other, 6))
        traces.append({"type": "bar", "x": x, "y": y, "name": label,
                       "marker": {"color": colour}})
    return traces


def performance_chart(monitor: Monitor, runs: list[MonitorRun]) -> dict[str, Any] | None:
    """Each window's performance (oldest first): measured from ground truth (``actual``) and,
    where the monitor estimates it, estimated without labels with its band (an unreliable
    estimate's marker is an open cross), against the monitor's objectives; None when no
    window measured or estimated any."""
    x: list[str] = []
    series: dict[str, list[float | None]] = {m: [] for m in PERFORMANCE}
    estimated: dict[str, dict[str, list[Any]]] = {
        m: {"estimate": [], "lower": [], "upper": [], "reliable": []} for m in PERFORMANCE}
    for run in runs:
        ok = run.state == "succeeded"
        found = run.result.get("performance") if ok else None
        guessed = run.result.get("estimated_performance") if ok else None
        found = found if isinstance(found, dict) else {}
        metrics = guessed.get("metrics") if isinstance(guessed, dict) else None
        metrics = metrics if isinstance(metrics, dict) else {}
        if not found and not metrics:
            continue
        x.append(axis_time(run.window_end))
        for metric in PERFORMANCE:
            series[metric].append(_number(found.get(metric)))
            entry = metrics.get(metric)
            entry = entry if isinstance(entry, dict) else {}
            for key in ("estimate", "lower", "upper"):
                estimated[metric][key].append(_number(entry.get(key)))
            estimated[metric]["reliable"].append(entry.get("reliable") is not False)
    measured = [m for m in PERFORMANCE if any(v is not None for v in series[m])]
    guessed_metrics = [m for m in PERFORMANCE
                       if any(v is not None for v in estimated[m]["estimate"])]
    shown = [m for m in PERFORMANCE if m in measured or m in guessed_metrics]
    if not shown:
        return None
    objectives = dict(monitor.config.get("objectives") or {})
    traces: list[dict[str, Any]] = []
    for metric in shown:
        if metric in guessed_metrics:
            band = estimated[metric]
            traces.append({"x": x, "y": band["lower"], "name": f"{metric} band (lower)",
                           "type": "scatter", "mode": "lines", "showlegend": False,
                           "line": {"width": 0, "color": BAND}, "hoverinfo": "skip"})
            traces.append({"x": x, "y": band["upper"], "name": f"{metric} estimate band",
                           "type": "scatter", "mode": "lines", "fill": "tonexty",
                           "fillcolor": BAND_FILL, "line": {"width": 0, "color": BAND}})
            traces.append({"x": x, "y": band["estimate"], "name": f"{metric} (estimated)",
                           "type": "scatter", "mode": "lines+markers",
                           "line": {"dash": "dot", "color": BAND},
                           "marker": {"symbol": ["circle" if ok else "x-open"
                                                 for ok in band["reliable"]],
                                      "size": [7 if ok else 12 for ok in band["reliable"]],
                                      "line": {"width": 2, "color": BAND}}})
        colour = METRIC_COLOURS[metric]
        if metric in measured:
            traces.append({"x": x, "y": series[metric], "name": f"{metric} (actual)",
                           "type": "scatter", "mode": "lines+markers",
                           "line": {"color": colour}})
        limit = objectives.get(metric)
        if isinstance(limit, int | float) and not isinstance(limit, bool):
            traces.append({"x": [x[0], x[-1]], "y": [float(limit)] * 2,
                           "name": f"{metric} objective", "type": "scatter", "mode": "lines",
                           "line": {"dash": "dash", "color": colour}})
    title = "Performance: estimated (band) and from ground truth (UTC times)" \
        if guessed_metrics else "Performance from ground truth (UTC times)"
    return {"id": "performance", "metrics": measured, "estimated": guessed_metrics,
            "spec": {"title": title, "y_title": "value", "traces": traces}}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def axis_time(value: datetime) -> str:
    """A UTC time as plotly reads it on a date axis (no zone suffix)."""
    return when(value).replace("T", " ").removesuffix("Z")

"""Drift reports: per-feature results, and their table, JSON and HTML forms.

The HTML report is one self-contained file: plotly.js is embedded from the installed plotly
package (no CDN), so it opens offline; each feature gets a plot of the reference and current
distributions.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from shipyard.monitoring._files import write_atomic

__all__ = ["DriftReport", "FeatureDrift"]


@dataclass
class FeatureDrift:
    """One feature's result. ``metric``/``value``/``threshold`` are the rule's decision
    (``drifted`` when the value reaches the threshold; for the calibrated rule on a
    categorical feature, also a share change of at least two points); ``p_value`` is the
    test's where the rule is a test; ``scores`` holds every metric; ``signals`` the
    missing-rate change, out-of-range share, new-category share and type change."""

    name: str
    kind: str
    metric: str | None
    value: float | None
    threshold: float | None
    p_value: float | None
    drifted: bool
    reference_rows: int = 0
    current_rows: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    signals: dict[str, float] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    distribution: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _clean_dict({
            "name": self.name, "kind": self.kind, "metric": self.metric, "value": self.value,
            "threshold": self.threshold, "p_value": self.p_value, "drifted": self.drifted,
            "reference_rows": self.reference_rows, "current_rows": self.current_rows,
            "scores": self.scores, "signals": self.signals, "findings": self.findings,
            "distribution": self.distribution})


@dataclass
class DriftReport:
    """What ``detect_drift`` found: ``features`` by name, ``drifted_features`` (names, in
    column order), ``findings`` (bad input and schema changes, one sentence each)."""

    reference_rows: int
    current_rows: int
    features: dict[str, FeatureDrift] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    false_alarm_rate: float = 0.005
    test_level: float = 0.0

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, feature in self.features.items() if feature.drifted]

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_features)

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: kind, metric, value, threshold, p_value, drifted, and the
        other scores and signals as columns."""
        rows = []
        for feature in self.features.values():
            rows.append({"feature": feature.name, "kind": feature.kind,
                         "metric": feature.metric, "value": feature.value,
                         "threshold": feature.threshold, "p_value": feature.p_value,
                         "drifted": feature.drifted, **feature.scores,
                         **{f"signal_{key}": value for key, value in feature.signals.items()},
                         "findings": "; ".join(feature.findings)})
        columns = ["feature", "kind", "metric", "value", "threshold", "p_value", "drifted"]
        return pd.DataFrame(rows, columns=None if rows else columns).set_index("feature") \
            if rows else pd.DataFrame(columns=columns).set_index("feature")

    def to_dict(self) -> dict[str, Any]:
        return _clean_dict({
            "reference_rows": self.reference_rows, "current_rows": self.current_rows,
            "false_alarm_rate": self.false_alarm_rate, "test_level": self.test_level,
            "drifted_features": self.drifted_features, "findings": self.findings,
            "features": [feature.to_dict() for feature in self.features.values()]})

    def to_json(self) -> str:
        """The report as JSON (non-finite numbers as null)."""
        return json.dumps(self.to_dict(), allow_nan=False)

    def metrics(self) -> dict[str, float]:
        """Flat numbers for a pipeline's metrics: the count of drifted features and each
        feature's decision value and drift flag."""
        out = {"drifted_features": float(len(self.drifted_features))}
        for feature in self.features.values():
            if feature.value is not None and math.isfinite(feature.value):
                out[f"{feature.name}.{feature.metric}"] = float(feature.value)
            out[f"{feature.name}.drifted"] = float(feature.drifted)
        return out

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as one HTML page (plotly.js embedded; opens offline). Written to
        ``path`` atomically when given; the page's text is returned either way."""
        page = _render_html(self)
        if path is not None:
            write_atomic(path, page.encode())
        return page


def _clean_dict(value: dict[str, Any]) -> dict[str, Any]:
    return {key: _clean(item) for key, item in value.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _figure(feature: FeatureDrift) -> str:
    import plotly.graph_objects as go

    dist = feature.distribution
    if not dist:
        return ""
    if "edges" in dist:
        edges = dist["edges"]
        bounds = ["-inf", *(f"{e:.4g}" for e in edges), "inf"]
        labels = [f"({bounds[i]}, {bounds[i + 1]}]" for i in range(len(bounds) - 1)]
    else:
        labels = [str(name) for name in dist["categories"]]
    figure = go.Figure([go.Bar(name="reference", x=labels, y=dist["reference"]),
                        go.Bar(name="current", x=labels, y=dist["current"])])
    figure.update_layout(barmode="group", height=320, margin={"l": 40, "r": 10, "t": 30,
                                                              "b": 80},
                         title=f"{feature.name}: share of rows", yaxis_tickformat=".0%")
    return str(figure.to_html(full_html=False, include_plotlyjs=False))


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "inf" if value > 0 else "-"
    return f"{value:.4g}"


def _render_html(report: DriftReport) -> str:
    from plotly.offline import get_plotlyjs

    rows = []
    for feature in report.features.values():
        status = "drifted" if feature.drifted else "ok"
        rows.append(
            f"<tr class='{status}'><td>{html.escape(feature.name)}</td>"
            f"<td>{html.escape(feature.kind)}</td><td>{html.escape(feature.metric or '-')}</td>"
            f"<td>{_fmt(feature.value)}</td><td>{_fmt(feature.threshold)}</td>"
            f"<td>{_fmt(feature.p_value)}</td><td>{status}</td>"
            f"<td>{html.escape('; '.join(feature.findings))}</td></tr>")
    findings = "".join(f"<li>{html.escape(text)}</li>" for text in report.findings)
    plots = "".join(f"<section>{_figure(feature)}</section>"
                    for feature in report.features.values())
    drifted = ", ".join(report.drifted_features) or "none"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drift report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}tr.drifted{{background:#fde2e2}}</style>
<script>{get_plotlyjs()}</script></head><body>
<h1>Drift report</h1>
<p>Reference: {report.reference_rows} rows. Current: {report.current_rows} rows.
False-alarm rate {report.false_alarm_rate:g} across all features.</p>
<p>Drifted features: {html.escape(drifted)}</p>
<table><tr><th>feature</th><th>kind</th><th>metric</th><th>value</th><th>threshold</th>
<th>p-value</th><th>result</th><th>findings</th></tr>{"".join(rows)}</table>
<h2>Findings</h2><ul>{findings or "<li>none</li>"}</ul>
<h2>Distributions</h2>{plots}
</body></html>
"""

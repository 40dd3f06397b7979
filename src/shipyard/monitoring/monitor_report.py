"""A monitor's report over time: one self-contained HTML page (plotly.js embedded from the
installed package, so it opens offline) with, per feature, its score against the baseline
in each window and the threshold it is judged by, and the prediction drift, latency and
performance over the same windows."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from typing import Any

from shipyard.monitoring._files import write_atomic
from shipyard.monitoring.models import Monitor, MonitorRun

__all__ = ["render_history", "write_page"]


def _line(title: str, times: list[str], series: dict[str, list[Any]], y_title: str) -> str:
    import plotly.graph_objects as go

    figure = go.Figure()
    for name, values in series.items():
        dash = "dash" if name.startswith("threshold") or name.startswith("limit") else None
        figure.add_trace(go.Scatter(x=times, y=values, name=name, mode="lines+markers",
                                    line={"dash": dash} if dash else None))
    figure.update_layout(title=title, height=300, yaxis_title=y_title,
                         margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return str(figure.to_html(full_html=False, include_plotlyjs=False))


def render_history(monitor: Monitor, runs: Sequence[MonitorRun]) -> str:
    """The page for ``runs`` (any order; plotted oldest first)."""
    from plotly.offline import get_plotlyjs

    done = sorted((r for r in runs if r.state == "succeeded"), key=lambda r: r.window_end)
    times = [r.window_end.isoformat() for r in done]
    plots: list[str] = []
    for feature in monitor.features:
        entries = [(r.result.get("features") or {}).get(feature) or {} for r in done]
        metric = next((e.get("metric") for e in reversed(entries) if e.get("metric")), "")
        series = {"skew (vs baseline)": [e.get("drift_score") for e in entries],
                  "threshold": [e.get("threshold") for e in entries],
                  "drift (vs earlier windows)": [(e.get("drift") or {}).get("value")
                                                 for e in entries]}
        plots.append(_line(f"{feature}: {metric} by window", times, series, metric or "score"))
    prediction = [r.result.get("prediction") or {} for r in done]
    if any(p.get("value") is not None for p in prediction):
        plots.append(_line("prediction drift", times,
                           {"prediction": [p.get("value") for p in prediction],
                            "threshold": [p.get("threshold") for p in prediction]}, "score"))
    latency = [r.result.get("latency_ms") or {} for r in done]
    plots.append(_line("latency per request (ms)", times,
                       {key: [entry.get(key) for entry in latency]
                        for key in ("p50", "p95", "p99")}, "ms"))
    performance = [r.result.get("performance") or {} for r in done]
    measured = sorted({k for p in performance for k in p if k not in ("rows", "task")})
    if measured:
        plots.append(_line("performance (ground truth from feedback)", times,
                           {k: [p.get(k) for p in performance] for k in measured}, "value"))
    rows = "".join(
        f"<tr class='{'breached' if r.breached else 'ok'}'><td>{r.window_start.isoformat()}"
        f"</td><td>{r.window_end.isoformat()}</td><td>{html.escape(r.trigger)}</td>"
        f"<td>{html.escape(r.state)}</td><td>{r.result.get('rows', 0)}</td>"
        f"<td>{html.escape(', '.join(r.result.get('breaches', [])) or '-')}</td>"
        f"<td>{html.escape('; '.join(r.result.get('findings', [])) or (r.error or ''))}</td>"
        "</tr>" for r in sorted(runs, key=lambda r: r.window_end, reverse=True))
    title = f"Monitor {monitor.name} on endpoint {monitor.endpoint}"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}tr.breached{{background:#fde2e2}}</style>
<script>{get_plotlyjs()}</script></head><body>
<h1>{html.escape(title)}</h1>
<p>Baseline: {html.escape(monitor.baseline_uri or "(a profile)")}. Every
{monitor.interval_seconds} s, windows of {monitor.config.get("window_seconds")} s.
{len(runs)} runs.</p>
<h2>Features</h2>{"".join(f"<section>{p}</section>" for p in plots)}
<h2>Runs</h2>
<table><tr><th>window start</th><th>window end</th><th>trigger</th><th>state</th>
<th>rows</th><th>breaches</th><th>findings</th></tr>{rows}</table>
</body></html>
"""


def write_page(path: str | os.PathLike[str], page: str) -> None:
    """Write ``page`` to ``path`` whole or not at all (temporary file, fsync, rename)."""
    write_atomic(path, page.encode())

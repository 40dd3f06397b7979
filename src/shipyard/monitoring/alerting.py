"""Alerts: what a recorded run decides (inside the run's transaction), and reading alerts.

One kind alerts once k of the last n windows breached, stays open (never sent again) while
windows go on breaching, and is resolved by the first window that no longer does. A new alert
with an event channel is announced on the ``monitor-alert-raised`` topic in the same
transaction; the other channels are sent after the commit (``channels.deliver_pending``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument
from shipyard.events.builtin import ALERT_RAISED, announce
from shipyard.ids import new_id
from shipyard.monitoring.judging import _clean_list
from shipyard.monitoring.models import Alert
from shipyard.monitoring.monitor_definitions import MAX_HISTORY, _row
from shipyard.store import Store
from shipyard.store.schema import (
    endpoint_deployments,
    endpoints,
    monitor_alerts,
    monitor_runs,
    monitors,
)
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = ["KINDS", "alert_of", "list_alerts"]

KINDS = ("skew", "drift", "prediction_drift", "attribution_drift", "latency", "error_rate",
         "performance")


def _decide_alerts(conn: Connection, monitor: Any, run_id: str, result: Mapping[str, Any],
                   start: datetime, end: datetime) -> list[str]:
    """Open an alert for each kind that breached in k of the last n windows and has no open
    alert; resolve the open alerts of kinds this window does not breach."""
    k, n = (int(v) for v in monitor.config.get("alert_after", [1, 1]))
    recent = conn.execute(
        select(monitor_runs.c.result).where(monitor_runs.c.monitor_id == monitor.id,
                                            monitor_runs.c.state == "succeeded")
        .order_by(monitor_runs.c.window_end.desc(), monitor_runs.c.finished_at.desc())
        .limit(n)).all()  # this run included: it was written first
    counts: dict[str, int] = {}
    for (past,) in recent:
        for kind in set((past or {}).get("breaches", [])):
            counts[kind] = counts.get(kind, 0) + 1
    open_alerts = {row.kind: row for row in conn.execute(
        select(monitor_alerts).where(monitor_alerts.c.monitor_id == monitor.id,
                                     monitor_alerts.c.state == "open"))}
    now = utcnow()
    breaches = set(result.get("breaches", []))
    for kind, row in open_alerts.items():
        if kind not in breaches:
            conn.execute(update(monitor_alerts).where(monitor_alerts.c.id == row.id)
                         .values(state="resolved", resolved_at=now))
    raised: list[str] = []
    model, version = _served_model(conn, monitor, result)
    for kind in KINDS:
        if kind not in breaches or counts.get(kind, 0) < k or kind in open_alerts:
            continue
        features = _ranked(result, kind)
        severity = _severity(kind, features, result, k, n)
        message = _message(monitor, kind, features, result, k, n)
        channels = list(monitor.config.get("alert", [{"type": "log"}]))
        deliveries = [{**c, "state": "sent" if c["type"] == "event" else "pending",
                       "attempts": 0} for c in channels]
        alert_id = new_id()
        conn.execute(insert(monitor_alerts).values(
            id=alert_id, project=monitor.project, monitor_id=monitor.id, run_id=run_id,
            kind=kind, severity=severity, state="open", message=message[:2000],
            features=features, model=model, model_version=version,
            baseline_uri=monitor.baseline_uri, deliveries=deliveries, created_at=now,
            resolved_at=None))
        if any(c["type"] == "event" for c in channels):
            ctx = RequestContext(project=monitor.project, actor=monitor.created_by)
            announce(conn, ctx, ALERT_RAISED, monitor=monitor.name,
                     endpoint=monitor.endpoint, alert_id=alert_id, severity=severity,
                     kind=kind, features=[f["name"] for f in features], model=model,
                     version=version, window_start=start.isoformat(),
                     window_end=end.isoformat())
        raised.append(alert_id)
    return raised


def _served_model(conn: Connection, monitor: Any, result: Mapping[str, Any]
                  ) -> tuple[str | None, int | None]:
    """The model version that answered most of the window's requests, and its model's name
    (from the endpoint's deployments)."""
    versions = result.get("model_versions") or {}
    if not versions:
        return None, None
    version = int(max(versions, key=lambda v: versions[v]))
    name = conn.execute(
        select(endpoint_deployments.c.model_name).join(
            endpoints, endpoint_deployments.c.endpoint_id == endpoints.c.id)
        .where(endpoints.c.project == monitor.project, endpoints.c.name == monitor.endpoint,
               endpoint_deployments.c.version == version).limit(1)).scalar()
    return name, version


def _ranked(result: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = []
    if kind in ("skew", "drift"):
        for name, entry in (result.get("features") or {}).items():
            judged = entry if kind == "skew" else (entry.get("drift") or {})
            if not judged.get("drifted"):
                continue
            distance = judged.get("distance")
            weight = entry.get("importance")
            score = (distance or 0.0) * (1.0 if weight is None else weight)
            features.append({"name": name, "metric": judged.get("metric"),
                             "value": judged.get("value" if kind == "drift"
                                                 else "drift_score"),
                             "threshold": judged.get("threshold"), "distance": distance,
                             "importance": weight, "score": score})
        features.sort(key=lambda f: (-f["score"], f["name"]))
    elif kind == "prediction_drift":
        found = result.get("prediction") or {}
        features.append({"name": "prediction", "metric": found.get("metric"),
                         "value": found.get("value"), "threshold": found.get("threshold"),
                         "distance": found.get("distance"), "importance": None,
                         "score": found.get("distance") or 0.0})
    elif kind == "attribution_drift":
        found = result.get("attributions") or {}
        for name, moved in (found.get("drift") or {}).items():
            if moved["drifted"]:
                features.append({"name": name, "metric": "attribution_share",
                                 "value": moved["current"], "threshold": moved["threshold"],
                                 "distance": abs(moved["change"]), "importance": None,
                                 "score": abs(moved["change"])})
        features.sort(key=lambda f: (-f["score"], f["name"]))
    else:
        for name, objective in (result.get("objectives") or {}).items():
            if objective["breached"] and _objective_kind(name) == kind:
                features.append({"name": name, "metric": name, "value": objective["value"],
                                 "threshold": objective["limit"], "distance": None,
                                 "importance": None, "score": 0.0})
    return _clean_list(features)


def _objective_kind(objective: str) -> str:
    """The alert kind an objective's breach raises."""
    if objective.startswith("latency"):
        return "latency"
    return "error_rate" if objective == "error_rate" else "performance"


def _severity(kind: str, features: list[dict[str, Any]], result: Mapping[str, Any], k: int,
              n: int) -> str:
    """critical: an objective missed, most monitored features drifted, or every one of
    n > 1 windows breached; warning otherwise."""
    if kind in ("latency", "error_rate", "performance"):
        return "critical"
    monitored = len(result.get("features") or {}) or 1
    if kind in ("skew", "drift") and len(features) * 2 > monitored:
        return "critical"
    return "critical" if n > 1 and k == n else "warning"


def _message(monitor: Any, kind: str, features: list[dict[str, Any]],
             result: Mapping[str, Any], k: int, n: int) -> str:
    what = {"skew": "skew from the baseline", "drift": "drift from earlier windows",
            "prediction_drift": "prediction drift", "latency": "latency objective missed",
            "attribution_drift": "feature attribution drift",
            "error_rate": "error-rate objective missed",
            "performance": "performance objective missed"}[kind]
    names = ", ".join(f"{f['name']} ({_fmt(f['value'])} vs {_fmt(f['threshold'])})"
                      for f in features[:10])
    after = f" in {k} of the last {n} windows" if n > 1 else ""
    return (f"monitor {monitor.name!r} on endpoint {monitor.endpoint!r}: {what}{after} "
            f"(window {result['window_start']} to {result['window_end']}): {names}")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def list_alerts(store: Store, project: str, *, monitor: str | None = None,
                state: str | None = None, limit: int = 100) -> list[Alert]:
    """Alerts, newest first."""
    if state is not None and state not in ("open", "resolved"):
        raise InvalidArgument("state is open or resolved", field="state")
    if isinstance(limit, bool) or not 1 <= limit <= MAX_HISTORY:
        raise InvalidArgument(f"limit must be from 1 to {MAX_HISTORY}", field="limit")
    query = select(monitor_alerts, monitors.c.name.label("monitor_name"),
                   monitors.c.endpoint).join(monitors,
                                             monitors.c.id == monitor_alerts.c.monitor_id) \
        .where(monitor_alerts.c.project == project)
    with store.read() as conn:
        if monitor is not None:
            _row(conn, project, check_name(monitor, "monitor"))
            query = query.where(monitors.c.name == monitor)
        if state is not None:
            query = query.where(monitor_alerts.c.state == state)
        rows = conn.execute(query.order_by(monitor_alerts.c.created_at.desc())
                            .limit(limit)).all()
    return [alert_of(row) for row in rows]


def alert_of(row: Any) -> Alert:
    return Alert(id=row.id, project=row.project, monitor=row.monitor_name,
                 endpoint=row.endpoint, run_id=row.run_id, kind=row.kind,
                 severity=row.severity, state=row.state, message=row.message,
                 features=list(row.features), model=row.model, model_version=row.model_version,
                 baseline_uri=row.baseline_uri, deliveries=list(row.deliveries),
                 created_at=row.created_at, resolved_at=row.resolved_at)


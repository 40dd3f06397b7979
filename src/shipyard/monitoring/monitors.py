"""Monitors on endpoints: plain functions over ``(store, ctx or project, ...)``.

A monitor judges windows of an endpoint's request log:

- **skew**: the window against the baseline (the training data's profile, kept with the
  monitor), feature by feature, with ``detect_drift``'s calibrated rule or fixed thresholds;
- **drift**: the window against the ``drift_windows`` windows before it;
- **prediction drift**: the window's predictions against the earlier windows' predictions;
- **objectives**: latency percentiles per request, and, where ground truth came back through
  the feedback API, accuracy and ROC AUC (classifiers) or RMSE and MAE (regressors).

A run computes first and writes once: the run, the alerts it raises (each announced on the
``monitor-alert-raised`` topic in the same transaction) and the monitor's next run time go in
one transaction, so a run killed midway leaves nothing behind, and its window is judged again
when its lease runs out. Alerts: one kind alerts once k of the last n windows breached, stays
open (never sent again) while windows go on breaching, and is resolved by the first window
that no longer does. Channels are sent after the commit (``channels.deliver_pending``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, Row, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from shipyard import audit
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from shipyard.events.builtin import ALERT_RAISED, announce
from shipyard.ids import new_id
from shipyard.monitoring.drift import compare_profiles
from shipyard.monitoring.models import Alert, Monitor, MonitorRun
from shipyard.monitoring.profiles import DataProfile, profile
from shipyard.monitoring.report import DriftReport
from shipyard.monitoring.rules import DefaultRule, FixedThresholds
from shipyard.monitoring.windows import Window, read_window, request_log_root
from shipyard.store import Store
from shipyard.store.dialect import claim_next
from shipyard.store.projects import ensure_project
from shipyard.store.schema import (
    endpoint_deployments,
    endpoints,
    monitor_alerts,
    monitor_runs,
    monitors,
)
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = [
    "MAX_BASELINE_BYTES", "create_monitor", "delete_monitor", "get_monitor", "history",
    "list_alerts", "list_monitors", "monitoring_stats", "run_due", "run_monitor",
]

MAX_BASELINE_BYTES = 16 << 20
MAX_HISTORY = 1000
LEASE_SECONDS = 300
KINDS = ("skew", "drift", "prediction_drift", "latency", "performance")


# -- configuration -------------------------------------------------------------------------

def create_monitor(store: Store, ctx: RequestContext, name: str, *, endpoint: str,
                   baseline_profile: bytes, config: Mapping[str, Any],
                   baseline_uri: str | None = None, start_at: datetime | None = None
                   ) -> Monitor:
    """A new monitor on ``endpoint`` (which must exist). ``config`` is what
    ``config.check_config`` returns; ``baseline_profile`` a ``DataProfile``'s bytes. The first
    scheduled run judges the window ending one interval after ``start_at`` (now)."""
    check_name(name, "name")
    check_name(endpoint, "endpoint")
    if len(baseline_profile) > MAX_BASELINE_BYTES:
        raise InvalidArgument(f"the baseline profile is over {MAX_BASELINE_BYTES} bytes",
                              field="baseline")
    try:
        baseline = DataProfile.from_bytes(baseline_profile)
    except (InvalidArgument, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"the baseline is not a profile: {exc}"[:300],
                              field="baseline") from None
    if not baseline.features:
        raise InvalidArgument("the baseline has no columns", field="baseline")
    if baseline.rows == 0:
        raise InvalidArgument("the baseline has no rows", field="baseline")
    features = config.get("features")
    for feature in features or ():
        if feature not in baseline.features:
            raise InvalidArgument(f"feature {feature!r} is not in the baseline",
                                  field="features")
    thresholds = config.get("thresholds")
    if isinstance(thresholds, Mapping):
        for feature in thresholds:
            if feature not in baseline.features:
                raise InvalidArgument(f"thresholds names {feature!r}, which is not in the "
                                      "baseline", field="thresholds")
    if baseline_uri is not None and len(baseline_uri) > 1024:
        raise InvalidArgument("baseline_uri is at most 1024 characters", field="baseline_uri")
    interval = int(config["interval_seconds"])

    def work(conn: Connection) -> Monitor:
        ensure_project(conn, ctx.project)
        if _row(conn, ctx.project, name, missing_ok=True) is not None:
            raise AlreadyExists(f"monitor {name!r} already exists in project "
                                f"{ctx.project!r}", field="name")
        now = utcnow()
        conn.execute(insert(monitors).values(
            id=new_id(), project=ctx.project, name=name, endpoint=endpoint,
            baseline_uri=baseline_uri, baseline_profile=baseline_profile, config=dict(config),
            state="active", interval_seconds=interval,
            next_run_at=(start_at or now) + timedelta(seconds=interval),
            created_at=now, created_by=ctx.actor, updated_at=now))
        audit.record(conn, ctx, "monitor.create", f"monitors/{name}")
        return _monitor(_row(conn, ctx.project, name), baseline)

    _check_endpoint(store, ctx.project, endpoint)
    return store.retry_write(work)


def _check_endpoint(store: Store, project: str, endpoint: str) -> Any:
    from shipyard.serving import service as serving

    try:
        return serving.get_endpoint(store, project, endpoint)
    except NotFound:
        raise NotFound(f"endpoint {endpoint!r} does not exist in project {project!r}",
                       field="endpoint") from None


def _row(conn: Connection, project: str, name: str, *, missing_ok: bool = False,
         lock: bool = False) -> Row[Any] | None:
    query = select(monitors).where(monitors.c.project == project, monitors.c.name == name)
    if lock and conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None and not missing_ok:
        raise NotFound(f"monitor {name!r} does not exist in project {project!r}",
                       field="name")
    return row


def _monitor(row: Any, baseline: DataProfile | None = None) -> Monitor:
    config = dict(row.config)
    if baseline is None:
        baseline = DataProfile.from_bytes(row.baseline_profile)
    return Monitor(id=row.id, project=row.project, name=row.name, endpoint=row.endpoint,
                   baseline_uri=row.baseline_uri, state=row.state,
                   interval_seconds=row.interval_seconds, next_run_at=row.next_run_at,
                   config=config, features=_features(config, baseline),
                   created_at=row.created_at, created_by=row.created_by,
                   updated_at=row.updated_at)


def _features(config: Mapping[str, Any], baseline: DataProfile) -> list[str]:
    return list(config.get("features") or baseline.features)


def get_monitor(store: Store, project: str, name: str) -> Monitor:
    check_name(name, "name")
    with store.read() as conn:
        row = _row(conn, project, name)
        return _monitor(row)


def list_monitors(store: Store, project: str, endpoint: str | None = None) -> list[Monitor]:
    query = select(monitors).where(monitors.c.project == project)
    if endpoint is not None:
        query = query.where(monitors.c.endpoint == check_name(endpoint, "endpoint"))
    with store.read() as conn:
        return [_monitor(row) for row in conn.execute(query.order_by(monitors.c.name))]


def delete_monitor(store: Store, ctx: RequestContext, name: str) -> None:
    """Delete a monitor with its runs and alerts."""
    check_name(name, "name")

    def work(conn: Connection) -> None:
        row = _row(conn, ctx.project, name, lock=True)
        assert row is not None
        conn.execute(delete(monitor_alerts).where(monitor_alerts.c.monitor_id == row.id))
        conn.execute(delete(monitor_runs).where(monitor_runs.c.monitor_id == row.id))
        conn.execute(delete(monitors).where(monitors.c.id == row.id))
        audit.record(conn, ctx, "monitor.delete", f"monitors/{name}")

    store.retry_write(work)


# -- runs ----------------------------------------------------------------------------------

def run_monitor(store: Store, settings: Settings, project: str, name: str, *,
                now: datetime | None = None, worker: str | None = None) -> MonitorRun:
    """Judge the window ending ``now`` (a manual run; the schedule is left as it is)."""
    check_name(name, "name")
    with store.read() as conn:
        row = _row(conn, project, name)
    end = now or utcnow()
    run = _judge_and_record(store, settings, row, end, "manual", worker, owner=None)
    if run is None:  # the same window was recorded meanwhile
        raise FailedPrecondition(f"monitor {name!r} already has a manual run ending at "
                                 f"{end.isoformat()}")
    _deliver(store, settings, run)
    return run


def run_due(store: Store, settings: Settings, worker: str, *,
            lease_seconds: float = LEASE_SECONDS, now: datetime | None = None) -> bool:
    """Claim one monitor whose next run is due, judge that window and record it; False when
    none is due. A claim is a lease: if this process dies before recording, the window is
    judged again by whoever claims the monitor after the lease ran out."""
    moment = now or utcnow()

    def claim(conn: Connection) -> Row[Any] | None:
        free = or_(monitors.c.lease_until.is_(None), monitors.c.lease_until < moment)
        return claim_next(
            conn, monitors,
            and_(monitors.c.state == "active", monitors.c.next_run_at <= moment, free),
            [monitors.c.next_run_at],
            {"lease_owner": worker,
             "lease_until": moment + timedelta(seconds=lease_seconds)})

    row = store.retry_write(claim)
    if row is None:
        return False
    run = _judge_and_record(store, settings, row, row.next_run_at, "schedule", worker,
                            owner=worker)
    if run is not None:
        _deliver(store, settings, run)
    return True


def _deliver(store: Store, settings: Settings, run: MonitorRun) -> None:
    if run.alerts:
        from shipyard.monitoring.channels import deliver_pending

        deliver_pending(store, settings, alert_ids=run.alerts)


def _judge_and_record(store: Store, settings: Settings, row: Any, end: datetime,
                      trigger: str, worker: str | None, *, owner: str | None
                      ) -> MonitorRun | None:
    started = utcnow()
    config = dict(row.config)
    start = end - timedelta(seconds=int(config["window_seconds"]))
    try:
        result = judge(settings, row, start, end)
        state, error = "succeeded", None
    except Exception as exc:  # recorded on the run: the next window is still judged
        result = {"breaches": [], "findings": []}
        state, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
    return record_run(store, row, start, end, trigger, worker, owner, started, result,
                      state, error)


def record_run(store: Store, row: Any, start: datetime, end: datetime, trigger: str,
               worker: str | None, owner: str | None, started: datetime,
               result: dict[str, Any], state: str, error: str | None) -> MonitorRun | None:
    """Write a run, its alerts and (for a scheduled run) the next run time: one
    transaction. None when the window was recorded already (another worker took over)."""
    run_id = new_id()

    def work(conn: Connection) -> MonitorRun | None:
        # The monitor's row is locked (PostgreSQL; SQLite's write transaction excludes the
        # others): runs of one monitor record one at a time, so two never open the same alert.
        query = select(monitors).where(monitors.c.id == row.id)
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        current = conn.execute(query).first()
        if current is None:
            return None  # deleted meanwhile
        if owner is not None and current.lease_owner != owner:
            return None  # our lease ran out and someone else has the monitor now
        finished = utcnow()
        conn.execute(insert(monitor_runs).values(
            id=run_id, monitor_id=row.id, project=row.project, window_start=start,
            window_end=end, trigger=trigger, state=state,
            breached=bool(result.get("breaches")), result=_clean(result), error=error,
            started_at=started, finished_at=finished, worker=worker))
        alerts = _decide_alerts(conn, current, run_id, result, start, end) \
            if state == "succeeded" else []
        if owner is not None:
            conn.execute(update(monitors).where(monitors.c.id == row.id).values(
                next_run_at=current.next_run_at + timedelta(seconds=current.interval_seconds),
                lease_owner=None, lease_until=None))
        run = conn.execute(select(monitor_runs).where(monitor_runs.c.id == run_id)).one()
        return _run(run, current.name, alerts)

    try:
        return store.retry_write(work)
    except IntegrityError:
        return None


def _run(row: Any, monitor: str, alerts: list[str]) -> MonitorRun:
    return MonitorRun(id=row.id, monitor=monitor, window_start=row.window_start,
                      window_end=row.window_end, trigger=row.trigger, state=row.state,
                      breached=row.breached, result=dict(row.result), error=row.error,
                      started_at=row.started_at, finished_at=row.finished_at, alerts=alerts)


def history(store: Store, project: str, name: str, limit: int = 100) -> list[MonitorRun]:
    """The monitor's runs, newest window first."""
    if isinstance(limit, bool) or not 1 <= limit <= MAX_HISTORY:
        raise InvalidArgument(f"limit must be from 1 to {MAX_HISTORY}", field="limit")
    with store.read() as conn:
        row = _row(conn, project, check_name(name, "name"))
        assert row is not None
        runs = conn.execute(
            select(monitor_runs).where(monitor_runs.c.monitor_id == row.id)
            .order_by(monitor_runs.c.window_end.desc(), monitor_runs.c.finished_at.desc())
            .limit(limit)).all()
        raised: dict[str, list[str]] = {}
        for alert in conn.execute(
                select(monitor_alerts.c.id, monitor_alerts.c.run_id)
                .where(monitor_alerts.c.run_id.in_([r.id for r in runs]))):
            raised.setdefault(alert.run_id, []).append(alert.id)
        return [_run(run, name, raised.get(run.id, [])) for run in runs]


# -- judging a window ----------------------------------------------------------------------

def judge(settings: Settings, row: Any, start: datetime, end: datetime) -> dict[str, Any]:
    """The result of one window (no writes)."""
    config = dict(row.config)
    baseline = DataProfile.from_bytes(row.baseline_profile)
    names = _features(config, baseline)
    root = request_log_root(settings.artifacts)
    if root is None:
        raise FailedPrecondition("monitors read the request log, which needs a local "
                                 "artifact store")
    columns = [(name, baseline.features[name].kind) for name in baseline.features]
    rate = float(config.get("sampling_rate", 1.0))
    window = read_window(root, row.project, row.endpoint, start, end, columns,
                         sampling_rate=rate)
    span = timedelta(seconds=int(config["window_seconds"]) * int(config["drift_windows"]))
    earlier = read_window(root, row.project, row.endpoint, start - span, start, columns,
                          sampling_rate=rate, with_feedback=False)
    findings: list[str] = []
    result: dict[str, Any] = {"rows": window.rows, "window_start": start.isoformat(),
                              "window_end": end.isoformat(), "findings": findings}
    rule, fixed, for_all = _rule(config)
    current = _profile(window, baseline)
    skew = compare_profiles(baseline, current, rule, fixed, fixed_for_all=for_all,
                            features=names)
    drift: DriftReport | None = None
    if earlier.rows and window.rows:
        previous = _profile(earlier, baseline)
        drift = compare_profiles(previous, current, rule, fixed, fixed_for_all=for_all,
                                 features=[n for n in names if n in previous.features])
    elif window.rows:
        findings.append("no earlier window holds requests: drift over time is not judged")
    if window.rows == 0:
        findings.append(f"the window from {start.isoformat()} to {end.isoformat()} holds no "
                        "logged requests: nothing was compared")
    else:
        findings.extend(skew.findings)
    importance = dict(config.get("feature_importance") or {})
    result["features"] = {name: _feature(skew, drift, name, importance) for name in names}
    result["prediction"] = _prediction_drift(window, earlier, rule) if window.rows else None
    result["latency_ms"] = _latency(window.latency_ms)
    result["performance"] = _performance(window, findings)
    result["model_versions"] = {str(k): v for k, v in window.model_versions.items()}
    result["objectives"] = _objectives(config, result, findings)
    breaches = []
    if window.rows and skew.drifted_features:
        breaches.append("skew")
    if drift is not None and drift.drifted_features:
        breaches.append("drift")
    if result["prediction"] and result["prediction"].get("drifted"):
        breaches.append("prediction_drift")
    objectives = result["objectives"]
    if any(v["breached"] for k, v in objectives.items() if k.startswith("latency")):
        breaches.append("latency")
    if any(v["breached"] for k, v in objectives.items()
           if k in ("accuracy", "roc_auc", "rmse", "mae")):
        breaches.append("performance")
    result["breaches"] = breaches
    return result


def _rule(config: Mapping[str, Any]) -> tuple[DefaultRule, FixedThresholds | None, bool]:
    thresholds = config.get("thresholds")
    if thresholds is None:
        return DefaultRule(), None, False
    if isinstance(thresholds, Mapping):
        return DefaultRule(), FixedThresholds(dict(thresholds)), False
    return DefaultRule(), FixedThresholds({}, default=float(thresholds)), True


def _profile(window: Window, baseline: DataProfile) -> DataProfile:
    categorical = [n for n, f in baseline.features.items() if f.kind == "categorical"]
    current = profile(window.features, categorical_features=categorical)
    for name, feature in current.features.items():
        reference = baseline.features.get(name)
        if reference is not None and reference.kind == feature.kind:
            feature.dtype = reference.dtype  # the log is JSON: its types are the baseline's
    return current


def _feature(skew: DriftReport, drift: DriftReport | None, name: str,
             importance: Mapping[str, float]) -> dict[str, Any]:
    found = skew.features[name]
    distance = found.scores.get("jensen_shannon_distance")
    weight = importance.get(name)
    entry: dict[str, Any] = {
        "kind": found.kind, "metric": found.metric, "drift_score": found.value,
        "threshold": found.threshold, "p_value": found.p_value, "drifted": found.drifted,
        "distance": distance, "importance": weight,
        "rank_score": None if distance is None else distance * (1.0 if weight is None
                                                                else weight),
        "missing_rate": found.signals.get("missing_rate_current"),
        "findings": found.findings, "drift": None}
    if drift is not None and name in drift.features:
        later = drift.features[name]
        entry["drift"] = {"metric": later.metric, "value": later.value,
                          "threshold": later.threshold, "p_value": later.p_value,
                          "drifted": later.drifted,
                          "distance": later.scores.get("jensen_shannon_distance")}
    return entry


def _prediction_drift(window: Window, earlier: Window, rule: DefaultRule
                      ) -> dict[str, Any] | None:
    current = profile(window.predictions)
    if earlier.rows == 0 or current["prediction"].present == 0:
        return {"drifted": False, "metric": None, "value": None, "threshold": None,
                "findings": ["no earlier predictions to compare with" if earlier.rows == 0
                             else "no scalar predictions in the window"]}
    previous_table = earlier.predictions
    if previous_table.schema.field("prediction").type != \
            window.predictions.schema.field("prediction").type:
        previous_table = pa.table({"prediction": previous_table.column("prediction").cast(
            window.predictions.schema.field("prediction").type, safe=False)})
    previous = profile(previous_table)
    report = compare_profiles(previous, current, rule)
    found = report.features["prediction"]
    return {"drifted": found.drifted, "metric": found.metric, "value": found.value,
            "threshold": found.threshold, "p_value": found.p_value,
            "distance": found.scores.get("jensen_shannon_distance"),
            "findings": found.findings}


def _latency(values: np.ndarray[Any, Any]) -> dict[str, float | None]:
    if values.size == 0:
        return {"requests": 0, "p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"requests": int(values.size), "p50": float(p50), "p95": float(p95),
            "p99": float(p99)}


def _performance(window: Window, findings: list[str]) -> dict[str, Any] | None:
    """Accuracy and ROC AUC (classifiers: ground truth of two values or labels) or RMSE and
    MAE (regressors: numeric ground truth of more values), over the rows whose ground
    truth came back."""
    if window.truth is None or window.predicted is None:
        return None
    import pandas as pd

    truth = window.truth
    predicted = window.predicted
    keep = pd.notna(truth) & pd.notna(predicted)
    truth, predicted = truth[keep], predicted[keep]
    if truth.size == 0:
        return None
    t_num = pd.to_numeric(pd.Series(truth), errors="coerce").to_numpy(dtype=np.float64)
    p_num = pd.to_numeric(pd.Series(predicted), errors="coerce").to_numpy(dtype=np.float64)
    out: dict[str, Any] = {"rows": int(truth.size)}
    numeric = not np.isnan(t_num).any() and not np.isnan(p_num).any()
    binary = numeric and set(np.unique(t_num)) <= {0.0, 1.0}
    if binary and ((p_num >= 0) & (p_num <= 1)).all():
        out["task"] = "classification"
        out["accuracy"] = float(np.mean((p_num >= 0.5) == (t_num == 1.0)))
        if np.unique(t_num).size == 2:
            from sklearn.metrics import roc_auc_score

            out["roc_auc"] = float(roc_auc_score(t_num, p_num))
        else:
            findings.append("ground truth holds one class only: ROC AUC is not defined")
    elif numeric and np.unique(t_num).size > 2:
        out["task"] = "regression"
        error = p_num - t_num
        out["rmse"] = float(np.sqrt(np.mean(error * error)))
        out["mae"] = float(np.mean(np.abs(error)))
    else:
        out["task"] = "classification"
        out["accuracy"] = float(np.mean(truth.astype(str) == predicted.astype(str)))
    return out


def _objectives(config: Mapping[str, Any], result: Mapping[str, Any], findings: list[str]
                ) -> dict[str, Any]:
    from shipyard.monitoring.config import OBJECTIVES

    out: dict[str, Any] = {}
    latency = result["latency_ms"]
    performance = result["performance"] or {}
    for name, limit in dict(config.get("objectives") or {}).items():
        if name.startswith("latency_"):
            value = latency.get(name.removeprefix("latency_").removesuffix("_ms"))
        elif name == "error_rate":
            value = None
            findings.append("error_rate: the request log holds answered predictions only, "
                            "so the error rate is not measured (see the server's "
                            "shipyard_prediction_errors_total metric)")
        else:
            value = performance.get(name)
        breached = value is not None and (value > limit if OBJECTIVES[name] == "max"
                                          else value < limit)
        out[name] = {"value": value, "limit": limit, "breached": bool(breached)}
    return out


# -- alerts --------------------------------------------------------------------------------

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
    else:
        for name, objective in (result.get("objectives") or {}).items():
            if objective["breached"] and (name.startswith("latency") == (kind == "latency")):
                features.append({"name": name, "metric": name, "value": objective["value"],
                                 "threshold": objective["limit"], "distance": None,
                                 "importance": None, "score": 0.0})
    return _clean_list(features)


def _severity(kind: str, features: list[dict[str, Any]], result: Mapping[str, Any], k: int,
              n: int) -> str:
    """critical: an objective missed, most monitored features drifted, or every one of
    n > 1 windows breached; warning otherwise."""
    if kind in ("latency", "performance"):
        return "critical"
    monitored = len(result.get("features") or {}) or 1
    if kind in ("skew", "drift") and len(features) * 2 > monitored:
        return "critical"
    return "critical" if n > 1 and k == n else "warning"


def _message(monitor: Any, kind: str, features: list[dict[str, Any]],
             result: Mapping[str, Any], k: int, n: int) -> str:
    what = {"skew": "skew from the baseline", "drift": "drift from earlier windows",
            "prediction_drift": "prediction drift", "latency": "latency objective missed",
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


# -- what seed 002 reads -------------------------------------------------------------------

def monitoring_stats(store: Store, project: str, endpoint: str, monitor: str | None = None
                     ) -> dict[str, Any]:
    """The newest successful run of the endpoint's monitors (or of ``monitor``), in the
    shape seed 002 reads: ``["feature_metrics"][feature]["drift_score"]`` (the rule's value
    against the baseline; ``threshold`` and ``drifted`` beside it), and the run's prediction
    drift, latency, performance, objectives and findings."""
    check_name(endpoint, "endpoint")
    with store.read() as conn:
        query = select(monitor_runs, monitors.c.name.label("monitor_name")).join(
            monitors, monitors.c.id == monitor_runs.c.monitor_id).where(
            monitors.c.project == project, monitors.c.endpoint == endpoint,
            monitor_runs.c.state == "succeeded")
        if monitor is not None:
            query = query.where(monitors.c.name == check_name(monitor, "monitor"))
        run = conn.execute(query.order_by(monitor_runs.c.window_end.desc(),
                                          monitor_runs.c.finished_at.desc()).limit(1)).first()
        if run is None:
            has = conn.execute(select(monitors.c.id).where(
                monitors.c.project == project, monitors.c.endpoint == endpoint)).first()
    if run is None:
        if has is None:
            raise NotFound(f"endpoint {endpoint!r} has no monitor", field="endpoint")
        raise FailedPrecondition(f"the monitors of endpoint {endpoint!r} have not run yet: "
                                 "run one (monitor.run_now()) or wait for its schedule")
    result = dict(run.result)
    return {"endpoint": endpoint, "monitor": run.monitor_name, "run_id": run.id,
            "window_start": run.window_start.isoformat(),
            "window_end": run.window_end.isoformat(), "rows": result.get("rows", 0),
            "feature_metrics": result.get("features", {}),
            "prediction_metrics": result.get("prediction"),
            "latency_ms": result.get("latency_ms"), "performance": result.get("performance"),
            "objectives": result.get("objectives", {}),
            "breaches": result.get("breaches", []), "findings": result.get("findings", [])}


# -- helpers -------------------------------------------------------------------------------

def _clean(value: Any) -> Any:
    """JSON-ready: non-finite numbers as None, NumPy scalars as Python's."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean_list(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned: list[dict[str, Any]] = _clean(values)
    return cleaned

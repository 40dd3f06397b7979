"""Running monitors and recording their runs, and reading the runs back (``history``, and
``monitoring_stats``: the newest run in the shape seed 002 reads).

A run computes first and writes once: the run, the alerts it raises and the monitor's next
run time go in one transaction, so a run killed midway leaves nothing behind, and its window
is judged again when its lease runs out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from shipyard.config import Settings
from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.ids import new_id
from shipyard.monitoring.alerting import _decide_alerts
from shipyard.monitoring.judging import _clean, judge
from shipyard.monitoring.models import MonitorRun
from shipyard.monitoring.monitor_definitions import MAX_HISTORY, _row
from shipyard.store import Store
from shipyard.store.dialect import claim_next
from shipyard.store.schema import monitor_alerts, monitor_runs, monitors
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = ["LEASE_SECONDS", "history", "monitoring_stats", "record_run", "run_due",
           "run_monitor"]

LEASE_SECONDS = 300


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
        result = judge(settings, row, start, end, store)
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
            "latency_ms": result.get("latency_ms"), "errors": result.get("errors"),
            "performance": result.get("performance"),
            "estimated_performance": result.get("estimated_performance"),
            "objectives": result.get("objectives", {}),
            "attributions": result.get("attributions"),
            "breaches": result.get("breaches", []), "findings": result.get("findings", [])}


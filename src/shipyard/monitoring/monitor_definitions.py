"""Monitor definitions: creating, reading, listing and deleting monitors (the rows that say
what to judge: an endpoint, the baseline profile kept with the monitor, the checked config,
and when the next scheduled window ends), with the row lookups the other monitor modules share.

Creating and deleting are audited; deleting takes the monitor's runs and alerts with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, InvalidArgument, NotFound
from shipyard.ids import new_id
from shipyard.monitoring.models import Monitor
from shipyard.monitoring.profiles import DataProfile
from shipyard.store import Store
from shipyard.store.projects import ensure_project
from shipyard.store.schema import monitor_alerts, monitor_runs, monitors
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = [
    "MAX_BASELINE_BYTES", "MAX_HISTORY", "create_monitor", "delete_monitor", "get_monitor",
    "list_monitors", "pause_monitor", "resume_monitor",
]

MAX_BASELINE_BYTES = 16 << 20
MAX_HISTORY = 1000


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
    if config.get("performance_estimator") is not None:
        from shipyard.monitoring.monitor_estimation import check_estimator

        check_estimator(config["performance_estimator"], baseline)
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
    estimator = config.pop("performance_estimator", None)
    if estimator is not None:  # shown as its outline: the fitted models stay in the store
        from shipyard.monitoring.monitor_estimation import summary

        config["performance_estimation"] = summary(estimator)
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


def pause_monitor(store: Store, ctx: RequestContext, name: str) -> Monitor:
    """Stop judging windows on the schedule (a manual run still runs); audited."""
    return _set_state(store, ctx, name, "paused", None)


def resume_monitor(store: Store, ctx: RequestContext, name: str, *,
                   now: datetime | None = None) -> Monitor:
    """Judge windows on the schedule again, from the first window ending after now (the
    windows that ended while paused are not caught up); audited."""
    return _set_state(store, ctx, name, "active", now or utcnow())


def _set_state(store: Store, ctx: RequestContext, name: str, state: str,
               now: datetime | None) -> Monitor:
    check_name(name, "name")

    def work(conn: Connection) -> Monitor:
        row = _row(conn, ctx.project, name, lock=True)
        assert row is not None
        values: dict[str, Any] = {"state": state, "updated_at": utcnow()}
        if now is not None and row.state != "active" and row.next_run_at <= now:
            # The schedule's next window end after now, on the monitor's own grid.
            missed = (now - row.next_run_at) // timedelta(seconds=row.interval_seconds) + 1
            values["next_run_at"] = row.next_run_at + missed * timedelta(
                seconds=row.interval_seconds)
        conn.execute(update(monitors).where(monitors.c.id == row.id).values(**values))
        audit.record(conn, ctx, f"monitor.{'resume' if state == 'active' else 'pause'}",
                     f"monitors/{name}")
        return _monitor(_row(conn, ctx.project, name))

    return store.retry_write(work)

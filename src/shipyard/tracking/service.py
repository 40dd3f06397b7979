"""Tracking writes and single-run reads.

``log_batch`` is the one write primitive for params, metrics and tags: one transaction per
call, bulk inserts, and the latest value per metric kept current in the same transaction
(so ``search_runs`` never scans series).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, or_, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, TooLarge
from shipyard.ids import check_id, new_id
from shipyard.lineage import records as lineage
from shipyard.store import Store
from shipyard.store.dialect import upsert
from shipyard.store.projects import ensure_project
from shipyard.store.schema import (
    experiments,
    run_artifacts,
    run_metrics,
    run_params,
    run_tags,
    runs,
)
from shipyard.store.types import utcnow
from shipyard.tracking.models import (
    TERMINAL,
    Experiment,
    MetricPoint,
    RunArtifact,
    RunData,
)
from shipyard.tracking.points import MAX_BATCH_METRICS, Metric, clean_metrics
from shipyard.validation import (
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
    check_key,
    check_name,
    check_text,
)

MAX_BATCH_PARAMS = 1_000
MAX_BATCH_TAGS = 1_000


def get_or_create_experiment(store: Store, ctx: RequestContext, name: str) -> Experiment:
    check_name(name, "experiment")
    found = _find_experiment(store, ctx.project, name)
    if found is not None:
        return found

    def create(conn: Connection) -> Experiment:
        ensure_project(conn, ctx.project)
        row = conn.execute(
            select(experiments).where(
                experiments.c.project == ctx.project, experiments.c.name == name
            )
        ).first()
        if row is not None:  # created by someone else since our first look
            return Experiment.model_validate(dict(row._mapping))
        exp_id = new_id()
        context_id = lineage.get_or_create_context(conn, ctx.project, "experiment", name)
        now = utcnow()
        conn.execute(
            insert(experiments).values(
                id=exp_id, project=ctx.project, name=name, created_at=now, context_id=context_id
            )
        )
        audit.record(conn, ctx, "experiments.create", f"experiments/{name}")
        return Experiment(id=exp_id, project=ctx.project, name=name, created_at=now)

    return store.retry_write(create)


def _find_experiment(store: Store, project: str, name: str) -> Experiment | None:
    with store.read() as conn:
        row = conn.execute(
            select(experiments.c.id, experiments.c.project, experiments.c.name,
                   experiments.c.created_at).where(
                experiments.c.project == project, experiments.c.name == name
            )
        ).first()
    return None if row is None else Experiment.model_validate(dict(row._mapping))


def list_experiments(store: Store, project: str) -> list[Experiment]:
    with store.read() as conn:
        rows = conn.execute(
            select(experiments.c.id, experiments.c.project, experiments.c.name,
                   experiments.c.created_at)
            .where(experiments.c.project == project)
            .order_by(experiments.c.name)
        )
        return [Experiment.model_validate(dict(r._mapping)) for r in rows]


def create_run(
    store: Store,
    ctx: RequestContext,
    experiment: str,
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> RunData:
    exp = get_or_create_experiment(store, ctx, experiment)
    run_id = new_id()
    run_name = check_name(name, "name") if name is not None else _default_name(run_id)
    clean_tags = _clean_mapping(tags, "tags", MAX_TAG_VALUE, MAX_BATCH_TAGS)
    clean_params = _clean_mapping(params, "params", MAX_PARAM_VALUE, MAX_BATCH_PARAMS)
    start = utcnow()

    def create(conn: Connection) -> None:
        execution_id = lineage.create_execution(
            conn, ctx.project, "run", run_name, properties={"run_id": run_id}
        )
        context_id = conn.execute(
            select(experiments.c.context_id).where(experiments.c.id == exp.id)
        ).scalar()
        if context_id:
            lineage.associate(conn, str(context_id), execution_id)
        conn.execute(
            insert(runs).values(
                id=run_id,
                project=ctx.project,
                experiment_id=exp.id,
                name=run_name,
                status="RUNNING",
                start_time=start,
                execution_id=execution_id,
                created_by=ctx.actor,
            )
        )
        if clean_tags:
            conn.execute(
                insert(run_tags), [{"run_id": run_id, "key": k, "value": v}
                                   for k, v in clean_tags.items()]
            )
        if clean_params:
            conn.execute(
                insert(run_params), [{"run_id": run_id, "key": k, "value": v}
                                     for k, v in clean_params.items()]
            )
        audit.record(conn, ctx, "runs.create", f"runs/{run_id}")

    store.retry_write(create)
    return get_run(store, ctx.project, run_id)


def _default_name(run_id: str) -> str:
    return f"run-{utcnow():%Y%m%d-%H%M%S}-{run_id[-4:]}"


def _clean_mapping(
    values: Mapping[str, Any] | None, field: str, limit: int, max_items: int
) -> dict[str, str]:
    if values is None:
        return {}
    if type(values) is not dict and not isinstance(values, Mapping):
        raise InvalidArgument(f"{field} must be a mapping of names to values", field=field)
    if len(values) > max_items:
        raise TooLarge(f"{field} has {len(values)} entries; the limit is {max_items}", field=field)
    clean: dict[str, str] = {}
    key_field = f"{field}.key"
    for key, value in values.items():
        check_key(key, key_field)
        # A str within the limit and without NUL, the usual value, is clean as it is: no
        # call and no formatted field name (this runs once per logged param or tag).
        if type(value) is str and len(value) <= limit and "\x00" not in value:
            clean[key] = value
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidArgument(f"{field}.{key} must be finite, got {value}",
                                  field=f"{field}.{key}")
        clean[key] = check_text(value, f"{field}.{key}", limit=limit)
    return clean


def log_batch(
    store: Store,
    ctx: RequestContext,
    run_id: str,
    *,
    metrics: Iterable[Any] = (),
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> None:
    """Record params, metrics and tags of a running run in one transaction, committed
    before this returns. ``NotFound`` when the project has no such run and
    ``FailedPrecondition`` when the run has ended; nothing is written then."""
    check_id(run_id, "run_id")
    points = clean_metrics(metrics)
    if len(points) > MAX_BATCH_METRICS:
        raise TooLarge(
            f"a batch holds at most {MAX_BATCH_METRICS} metric points; got {len(points)}",
            field="metrics",
        )
    clean_params = (None if params is None
                    else _clean_mapping(params, "params", MAX_PARAM_VALUE, MAX_BATCH_PARAMS))
    clean_tags = (None if tags is None
                  else _clean_mapping(tags, "tags", MAX_TAG_VALUE, MAX_BATCH_TAGS))
    if not points and not clean_params and not clean_tags:
        return

    sql = _SQL[store.placeholder]
    run = (run_id, ctx.project)

    def write(cursor: Any) -> None:
        # Only the first statement checks that the run accepts data: on SQLite the
        # transaction holds the write lock from BEGIN IMMEDIATE on, so the run cannot end
        # in between (on PostgreSQL it is the read-committed check a SELECT first was).
        check: tuple[str, str] | None = run
        if clean_params:
            _insert_params(cursor, sql, run, clean_params)
            check = None
        if clean_tags:
            _upsert_tags(cursor, sql, run_id, clean_tags, check)
            check = None
        if points:
            _insert_points(cursor, sql, run_id, points, check)

    store.driver_write(write)


# ``log_batch`` is the hot loop of every training script, so it runs on the driver's cursor:
# fixed statements in the driver's parameter style, formatted once (``_SQL``), executed with
# tuples, no SQL construction per call. Each statement is standard enough for SQLite and
# PostgreSQL. A "checked" form writes its row only while the run accepts data, so that a
# one-point call is two statements, not three: ``rowcount`` 0 is the cue to look up why.
# (SQLite parses ``INSERT ... SELECT ... ON CONFLICT`` only when the SELECT has a WHERE
# clause, which the checked forms always have.)
_ACCEPTING = (
    "WHERE EXISTS (SELECT 1 FROM runs WHERE id = {p} AND project = {p} AND status NOT IN ("
    + ", ".join(f"'{status}'" for status in TERMINAL) + "))"
)
_INSERT_POINT = 'INSERT INTO run_metrics (run_id, key, value, step, "timestamp") {values}'
_UPSERT_LATEST = (
    'INSERT INTO run_latest_metrics AS cur (run_id, key, value, step, "timestamp") '
    "VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (run_id, key) DO UPDATE SET "
    'value = excluded.value, step = excluded.step, "timestamp" = excluded."timestamp" '
    "WHERE excluded.step > cur.step OR "
    '(excluded.step = cur.step AND excluded."timestamp" >= cur."timestamp")'
)
_UPSERT_TAG = (
    "INSERT INTO run_tags (run_id, key, value) {values} "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
)
_INSERT_PARAM = (
    "INSERT INTO run_params (run_id, key, value) {values} ON CONFLICT (run_id, key) DO NOTHING"
)


class _Sql(NamedTuple):
    """``log_batch``'s statements in one parameter style (``p``)."""

    p: str
    select_status: str
    insert_point: str
    insert_point_checked: str  # parameters: the row, then (run_id, project)
    upsert_latest: str
    upsert_tag: str
    upsert_tag_checked: str
    insert_param: str
    insert_param_checked: str

    @classmethod
    def build(cls, p: str) -> _Sql:
        def forms(template: str, columns: int) -> tuple[str, str]:
            marks = ", ".join([p] * columns)
            return (template.format(values=f"VALUES ({marks})"),
                    template.format(values=f"SELECT {marks} {_ACCEPTING.format(p=p)}"))

        return cls(p, f"SELECT status FROM runs WHERE id = {p} AND project = {p}",
                   *forms(_INSERT_POINT, 5), _UPSERT_LATEST.format(p=p),
                   *forms(_UPSERT_TAG, 3), *forms(_INSERT_PARAM, 3))


_SQL = {p: _Sql.build(p) for p in ("?", "%s")}
Row = tuple[Any, ...]  # one row's parameters


def _write_checked(cursor: Any, sql: _Sql, statement: str, row: Row,
                   run: tuple[str, str]) -> int:
    """Write ``row`` with a checked statement; ``NotFound`` or ``FailedPrecondition`` (and
    nothing written) when ``run``, (run_id, project), does not accept data. Returns the
    rowcount: 0 when the run accepts data but the row was not written (a param's ON
    CONFLICT DO NOTHING)."""
    cursor.execute(statement, row + run)
    if cursor.rowcount == 1:
        return 1
    _require_running(cursor, sql, *run)
    return 0


def _insert_points(cursor: Any, sql: _Sql, run_id: str, points: list[Metric],
                   check: tuple[str, str] | None) -> None:
    rows = [(run_id, key, value, step, ts) for key, value, step, ts in points]
    if check is None:
        cursor.executemany(sql.insert_point, rows)
    else:
        if not _write_checked(cursor, sql, sql.insert_point_checked, rows[0], check):
            cursor.execute(sql.insert_point, rows[0])  # the run accepts data after all
        if len(rows) > 1:
            cursor.executemany(sql.insert_point, rows[1:])
    if len(rows) == 1:
        cursor.execute(sql.upsert_latest, rows[0])
        return
    # Only the newest point per key (by step, then timestamp) can move the latest value.
    latest: dict[str, tuple[str, str, float, int, int]] = {}
    for row in rows:
        current = latest.get(row[1])
        if current is None or row[3] > current[3] or (row[3] == current[3]
                                                       and row[4] >= current[4]):
            latest[row[1]] = row
    cursor.executemany(sql.upsert_latest, list(latest.values()))


def _upsert_tags(cursor: Any, sql: _Sql, run_id: str, tags: dict[str, str],
                 check: tuple[str, str] | None) -> None:
    rows = [(run_id, k, v) for k, v in tags.items()]
    if check is not None:
        if not _write_checked(cursor, sql, sql.upsert_tag_checked, rows[0], check):
            cursor.execute(sql.upsert_tag, rows[0])
        rows = rows[1:]
    if rows:
        cursor.executemany(sql.upsert_tag, rows)


def _require_running(cursor: Any, sql: _Sql, run_id: str, project: str) -> None:
    cursor.execute(sql.select_status, (run_id, project))
    row = cursor.fetchone()
    if row is None:
        raise NotFound(f"run {run_id} not found in project {project!r}", field="run_id")
    if row[0] in TERMINAL:
        raise FailedPrecondition(f"run {run_id} is {row[0]}; it no longer accepts data")


def _insert_params(cursor: Any, sql: _Sql, run: tuple[str, str],
                   params: dict[str, str]) -> None:
    # Insert first and look only when a key was already there: the common case (new keys)
    # is one statement. Logging the same value again is allowed; a different one is not.
    run_id = run[0]
    rows = [(run_id, k, v) for k, v in params.items()]
    inserted = _write_checked(cursor, sql, sql.insert_param_checked, rows[0], run)
    if len(rows) > 1:
        cursor.executemany(sql.insert_param, rows[1:])
        inserted += cursor.rowcount
    if inserted == len(params):
        return
    p, keys = sql.p, list(params)
    cursor.execute(
        f"SELECT key, value FROM run_params WHERE run_id = {p} AND key IN "
        f"({', '.join([p] * len(keys))})",
        (run_id, *keys),
    )
    for key, old in cursor.fetchall():
        if old != params[key]:
            raise Conflict(
                f"param {key!r} was already logged as {old[:60]!r}; params cannot change "
                "within a run (log a metric or a tag instead)",
                field=f"params.{key}",
            )


def set_terminated(
    store: Store,
    ctx: RequestContext,
    run_id: str,
    status: str = "FINISHED",
    end_time: datetime | None = None,
) -> RunData:
    check_id(run_id, "run_id")
    if status not in TERMINAL:
        raise InvalidArgument(f"status must be one of {', '.join(TERMINAL)}", field="status")

    def write(conn: Connection) -> None:
        row = conn.execute(
            select(runs.c.status, runs.c.execution_id).where(
                runs.c.id == run_id, runs.c.project == ctx.project
            )
        ).first()
        if row is None:
            raise NotFound(f"run {run_id} not found in project {ctx.project!r}", field="run_id")
        conn.execute(
            update(runs).where(runs.c.id == run_id)
            .values(status=status, end_time=end_time or utcnow())
        )
        if row.execution_id:
            state = "COMPLETE" if status == "FINISHED" else "FAILED"
            lineage.set_execution_state(conn, row.execution_id, state)
        audit.record(conn, ctx, "runs.update", f"runs/{run_id}", detail={"status": status})

    store.retry_write(write)
    return get_run(store, ctx.project, run_id)


def record_artifact(
    conn: Connection,
    ctx: RequestContext,
    run_id: str,
    *,
    name: str,
    digest: str,
    size: int,
    kind: str,
    type: str = "Artifact",
) -> RunArtifact:
    """Attach a stored blob or tree to a run and to the run's lineage execution."""
    row = conn.execute(
        select(runs.c.execution_id).where(runs.c.id == run_id, runs.c.project == ctx.project)
    ).first()
    if row is None:
        raise NotFound(f"run {run_id} not found in project {ctx.project!r}", field="run_id")
    artifact_id = lineage.create_artifact(
        conn, ctx.project, type, name, f"sha256:{digest}", digest=digest, size=size,
        properties={"run_id": run_id, "kind": kind},
    )
    if row.execution_id:
        lineage.add_event(conn, row.execution_id, artifact_id, "output", name)
    now = utcnow()
    upsert(
        conn, run_artifacts,
        [{"run_id": run_id, "name": name, "digest": digest, "size": size, "kind": kind,
          "artifact_id": artifact_id, "created_at": now}],
        keys=["run_id", "name"],
        update_columns=["digest", "size", "kind", "artifact_id", "created_at"],
    )
    audit.record(conn, ctx, "runs.log_artifact", f"runs/{run_id}/artifacts/{name}")
    return RunArtifact(name=name, digest=digest, size=size, kind=kind,  # type: ignore[arg-type]
                       artifact_id=artifact_id, created_at=now)


def get_run(store: Store, project: str, run_id: str) -> RunData:
    check_id(run_id, "run_id")
    from shipyard.tracking.search import load_runs

    with store.read() as conn:
        found = load_runs(conn, [run_id], project=project, with_artifacts=True)
    if not found:
        raise NotFound(f"run {run_id} not found in project {project!r}", field="run_id")
    return found[0]


def get_run_artifact(store: Store, project: str, run_id: str, name: str) -> RunArtifact:
    run = get_run(store, project, run_id)
    for art in run.artifacts:
        if art.name == name:
            return art
    raise NotFound(f"run {run_id} has no artifact {name!r}", field="name")


def require_run(store: Store, project: str, run_id: str) -> None:
    check_id(run_id, "run_id")
    with store.read() as conn:
        if not run_ids_exist(conn, project, [run_id]):
            raise NotFound(f"run {run_id} not found in project {project!r}", field="run_id")


def metric_history(store: Store, project: str, run_id: str, key: str) -> list[MetricPoint]:
    check_id(run_id, "run_id")
    check_key(key, "key")
    with store.read() as conn:
        if conn.execute(
            select(runs.c.id).where(runs.c.id == run_id, runs.c.project == project)
        ).first() is None:
            raise NotFound(f"run {run_id} not found in project {project!r}", field="run_id")
        rows = conn.execute(
            select(run_metrics.c.key, run_metrics.c.value, run_metrics.c.step,
                   run_metrics.c.timestamp)
            .where(run_metrics.c.run_id == run_id, run_metrics.c.key == key)
            .order_by(run_metrics.c.step, run_metrics.c.timestamp, run_metrics.c.id)
        )
        return [MetricPoint(key=r.key, value=r.value, step=r.step, timestamp=r.timestamp)
                for r in rows]


def run_ids_exist(conn: Connection, project: str, run_ids: Sequence[str]) -> set[str]:
    return set(
        conn.execute(
            select(runs.c.id).where(runs.c.project == project, runs.c.id.in_(list(run_ids)))
        ).scalars()
    )


def run_execution_id(conn: Connection, project: str, run_id: str) -> str | None:
    """The lineage execution that records run ``run_id`` (None for a run without one), in
    the caller's transaction: how other services link their artifacts to a run.

    Raises ``NotFound(field="run_id")`` when ``project`` has no such run.
    """
    row = conn.execute(
        select(runs.c.execution_id).where(runs.c.id == run_id, runs.c.project == project)
    ).first()
    if row is None:
        raise NotFound(f"no run {run_id!r} in project {project!r}", field="run_id")
    return None if row.execution_id is None else str(row.execution_id)


SOURCE_TAG_PREFIXES = ("git.", "source.")


def run_source_tags(conn: Connection, run_id: str) -> dict[str, str]:
    """The tags of run ``run_id`` that say where its code came from (``git.*`` and
    ``source.*``, see ``tracking.source``), in the caller's transaction: how the registry
    carries them onto a model version registered from the run."""
    rows = conn.execute(
        select(run_tags.c.key, run_tags.c.value).where(
            run_tags.c.run_id == run_id,
            or_(*(run_tags.c.key.startswith(prefix, autoescape=True)
                  for prefix in SOURCE_TAG_PREFIXES)),
        )
    ).all()
    return {str(key): str(value) for key, value in sorted(rows)}


MIN_LEASE_SECONDS = 1.0
MAX_LEASE_SECONDS = 86_400.0


def heartbeat(store: Store, ctx: RequestContext, run_id: str, lease_seconds: float) -> str:
    """The run's client is alive: it vouches for the run for ``lease_seconds`` more. Returns
    the run's status (a client whose run was ended, by itself or for silence, stops)."""
    check_id(run_id, "run_id")
    if (isinstance(lease_seconds, bool) or not isinstance(lease_seconds, int | float)
            or not MIN_LEASE_SECONDS <= lease_seconds <= MAX_LEASE_SECONDS):
        raise InvalidArgument(f"lease_seconds must be from {MIN_LEASE_SECONDS:g} to "
                              f"{MAX_LEASE_SECONDS:g}", field="lease_seconds")

    def write(conn: Connection) -> str:
        status = conn.execute(
            select(runs.c.status).where(runs.c.id == run_id, runs.c.project == ctx.project)
        ).scalar()
        if status is None:
            raise NotFound(f"run {run_id} not found in project {ctx.project!r}", field="run_id")
        if status == "RUNNING":
            until = utcnow() + timedelta(seconds=float(lease_seconds))
            conn.execute(update(runs).where(runs.c.id == run_id).values(lease_until=until))
        return str(status)

    result: str = store.retry_write(write)
    return result


def end_silent_runs(store: Store, now: datetime | None = None) -> list[str]:
    """End as KILLED every RUNNING run whose client stopped heartbeating (its lease ran
    out), as of its lease's end; returns their ids. Runs that never heartbeat are left."""
    cutoff = now or utcnow()
    with store.read() as conn:
        silent = conn.execute(
            select(runs.c.id, runs.c.project).where(
                runs.c.status == "RUNNING", runs.c.lease_until < cutoff)
        ).all()
    ended: list[str] = []
    for run_id, project in silent:
        ctx = RequestContext(project=str(project), actor="shipyard-worker")

        def write(conn: Connection, run_id: str = str(run_id),
                  ctx: RequestContext = ctx) -> bool:
            row = conn.execute(
                select(runs.c.lease_until, runs.c.execution_id).where(
                    runs.c.id == run_id, runs.c.status == "RUNNING",
                    runs.c.lease_until < cutoff)
            ).first()
            if row is None:  # it beat again, or ended, since it was read
                return False
            conn.execute(update(runs).where(runs.c.id == run_id)
                         .values(status="KILLED", end_time=row.lease_until))
            if row.execution_id:
                lineage.set_execution_state(conn, row.execution_id, "FAILED")
            audit.record(conn, ctx, "runs.update", f"runs/{run_id}",
                         detail={"status": "KILLED", "why": "its client stopped heartbeating"})
            return True

        if store.retry_write(write):
            ended.append(str(run_id))
    return ended

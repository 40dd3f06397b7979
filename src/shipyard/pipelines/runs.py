"""Run records: ``pipeline_runs`` and ``pipeline_tasks`` rows, read and written.

Each function that writes takes the caller's connection, so a state change and its audit
row (or lineage rows) commit together. The public readers (``get_pipeline_run``,
``list_pipeline_runs``, ``get_task_log``) and ``cancel_pipeline_run`` open their own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.events import builtin as events
from shipyard.pipelines import _lineage
from shipyard.pipelines.models import (
    RUN_STATES,
    TERMINAL_RUN_STATES,
    ArtifactOutput,
    PipelineRun,
    TaskInfo,
)
from shipyard.store import Store
from shipyard.store.schema import pipeline_runs, pipeline_tasks
from shipyard.store.types import utcnow

_TASK_COLUMNS = (
    "state", "cached", "cache_key", "execution_id", "outputs", "error", "log_digest",
    "attempts", "started_at", "finished_at",
)  # fmt: skip


def insert_run(conn: Connection, run: PipelineRun, spec: dict[str, Any]) -> None:
    conn.execute(
        insert(pipeline_runs).values(
            id=run.id,
            project=run.project,
            pipeline_name=run.pipeline_name,
            state=run.state,
            spec=spec,
            arguments=run.arguments,
            options=run.options,
            context_id=run.context_id,
            error=None,
            created_at=run.created_at or utcnow(),
            started_at=run.started_at,
            retry_of=run.retry_of,
            principal=run.principal,
            source=run.source or None,
        )
    )


def update_run(conn: Connection, run_id: str, **values: Any) -> None:
    conn.execute(update(pipeline_runs).where(pipeline_runs.c.id == run_id).values(**values))


# Runs a worker is handing back (it is stopping): their engine ends them CANCELLED only
# for the worker to queue them again, which is no "finished" (PIPELINE_RUN_FINISHED);
# and the runs this process's worker is executing, whose runner failing (not their code)
# hands them back too. The hand-back announces the end when it leaves a run ended.
handing_back: set[str] = set()
worker_held: set[str] = set()


def announce_finished(conn: Connection, run_id: str, actor: str) -> None:
    """Publish PIPELINE_RUN_FINISHED for a run that has just ended, inside the transaction
    that ended it (its state and error as written)."""
    row = conn.execute(select(pipeline_runs.c.project, pipeline_runs.c.pipeline_name,
                              pipeline_runs.c.state, pipeline_runs.c.error)
                       .where(pipeline_runs.c.id == run_id)).first()
    if row is None or row.state not in TERMINAL_RUN_STATES:
        return
    events.announce(conn, RequestContext(project=row.project, actor=actor),
                    events.PIPELINE_RUN_FINISHED, pipeline=row.pipeline_name, run_id=run_id,
                    state=row.state, error=row.error)


def run_state(conn: Connection, run_id: str) -> str:
    state = conn.execute(select(pipeline_runs.c.state).where(pipeline_runs.c.id == run_id)).scalar()
    return str(state)


def _task_values(task: TaskInfo) -> dict[str, Any]:
    return {
        "state": task.state,
        "cached": task.cached,
        "cache_key": task.cache_key,
        "execution_id": task.execution_id,
        "outputs": dump_outputs(task.outputs),
        "error": task.error,
        "log_digest": task.log_digest,
        "attempts": task.attempts,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
    }


def save_task(conn: Connection, run_id: str, task: TaskInfo) -> None:
    """Insert or replace the row of one task."""
    where = (pipeline_tasks.c.run_id == run_id) & (pipeline_tasks.c.name == task.name)
    exists = conn.execute(select(pipeline_tasks.c.name).where(where)).first() is not None
    save_tasks(conn, run_id, [(task, exists)])


# Built once: constructing a statement with ``.values()`` costs more than running it.
_INSERT_TASK = insert(pipeline_tasks)
_UPDATE_TASK = (
    update(pipeline_tasks)
    .where(
        pipeline_tasks.c.run_id == bindparam("key_run_id"),
        pipeline_tasks.c.name == bindparam("key_name"),
    )
    .values({c: bindparam(c) for c in _TASK_COLUMNS})
)


def save_tasks(conn: Connection, run_id: str, tasks: list[tuple[TaskInfo, bool]]) -> None:
    """Write task rows, each with whether its row exists already: one batched INSERT for
    the new ones, one batched UPDATE for the others."""
    inserts = [
        {"run_id": run_id, "name": t.name, **_task_values(t)} for t, exists in tasks if not exists
    ]
    updates = [
        {"key_run_id": run_id, "key_name": t.name, **_task_values(t)}
        for t, exists in tasks
        if exists
    ]
    if inserts:
        conn.execute(_INSERT_TASK, inserts)
    if updates:
        conn.execute(_UPDATE_TASK, updates)


def dump_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"artifact": v.model_dump(mode="json")}
        if isinstance(v, ArtifactOutput)
        else {"value": v}
        for name, v in outputs.items()
    }


def load_outputs(stored: dict[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, entry in (stored or {}).items():
        if "artifact" in entry:
            result[name] = ArtifactOutput.model_validate(entry["artifact"])
        else:
            result[name] = entry.get("value")
    return result


def _task(row: Row[Any]) -> TaskInfo:
    return TaskInfo(
        name=row.name,
        state=row.state,
        cached=row.cached,
        outputs=load_outputs(row.outputs),
        error=row.error,
        execution_id=row.execution_id,
        cache_key=row.cache_key,
        log_digest=row.log_digest,
        attempts=row.attempts,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _run(row: Row[Any], tasks: dict[str, TaskInfo]) -> PipelineRun:
    return PipelineRun(
        id=row.id,
        project=row.project,
        pipeline_name=row.pipeline_name,
        state=row.state,
        arguments=row.arguments or {},
        options=row.options or {},
        tasks=tasks,
        error=row.error,
        context_id=row.context_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        claimed_by=row.claimed_by,
        retry_of=row.retry_of,
        principal=row.principal,
        source=row.source or {},
    )


def read_run(conn: Connection, project: str | None, run_id: str) -> PipelineRun:
    stmt = select(pipeline_runs).where(pipeline_runs.c.id == run_id)
    if project is not None:
        stmt = stmt.where(pipeline_runs.c.project == project)
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"pipeline run {run_id!r} not found", field="run_id")
    rows = conn.execute(select(pipeline_tasks).where(pipeline_tasks.c.run_id == run_id)).fetchall()
    return _run(row, {r.name: _task(r) for r in rows})


def read_spec(conn: Connection, run_id: str) -> dict[str, Any]:
    spec = conn.execute(select(pipeline_runs.c.spec).where(pipeline_runs.c.id == run_id)).scalar()
    if spec is None:
        raise NotFound(f"pipeline run {run_id!r} not found", field="run_id")
    return dict(spec)


def get_pipeline_run(store: Store, project: str, run_id: str) -> PipelineRun:
    """A run with every task's state, outputs and error."""
    with store.read() as conn:
        return read_run(conn, project, run_id)


def list_pipeline_runs(
    store: Store,
    project: str,
    *,
    pipeline_name: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[PipelineRun]:
    """Runs of a project, newest first (without their tasks: use ``get_pipeline_run``)."""
    if not 0 < limit <= 10_000:
        raise InvalidArgument("limit must be between 1 and 10000", field="limit")
    if state is not None and state not in RUN_STATES:
        raise InvalidArgument(
            f"state {str(state)[:40]!r} is not a run state: use one of {', '.join(RUN_STATES)}",
            field="state",
        )
    stmt = (
        select(pipeline_runs)
        .where(pipeline_runs.c.project == project)
        .order_by(pipeline_runs.c.created_at.desc(), pipeline_runs.c.id.desc())
        .limit(limit)
    )
    if pipeline_name is not None:
        stmt = stmt.where(pipeline_runs.c.pipeline_name == pipeline_name)
    if state is not None:
        stmt = stmt.where(pipeline_runs.c.state == state)
    with store.read() as conn:
        return [_run(row, {}) for row in conn.execute(stmt)]


def get_task_log(store: Store, artifacts: Any, project: str, run_id: str, task: str) -> str:
    """The captured stdout and stderr of a finished task ("" if it wrote nothing)."""
    with store.read() as conn:
        run = read_run(conn, project, run_id)
    info = run.tasks.get(task)
    if info is None:
        raise NotFound(
            f"run {run_id!r} has no task {task!r}; tasks are {sorted(run.tasks)}", field="task"
        )
    if info.log_digest is None:
        return ""
    data: bytes = artifacts.get_bytes(info.log_digest)
    return data.decode("utf-8", errors="replace")


def cancel_pipeline_run(
    store: Store, ctx: RequestContext, run_id: str, *, force: bool = False
) -> PipelineRun:
    """Cancel a run: a queued one at once, a running one as soon as its runner notices
    (within a second; its running steps are killed). ``force=True`` marks a running run
    and its unfinished tasks CANCELLED at once, for a run whose runner died (a killed
    process cannot record its own end). Cancelling a finished run fails."""

    def work(conn: Connection) -> PipelineRun:
        run = read_run(conn, ctx.project, run_id)
        if run.state in TERMINAL_RUN_STATES:
            raise FailedPrecondition(f"pipeline run {run_id} already ended {run.state}")
        now = utcnow()
        if run.state == "QUEUED" or force:
            update_run(conn, run_id, state="CANCELLED", finished_at=now, error="cancelled")
            for task in run.tasks.values():
                if task.state in ("PENDING", "RUNNING"):
                    save_task(conn, run_id, task.model_copy(update={"state": "CANCELLED"}))
                    if task.execution_id:  # its lineage must not show it running forever
                        _lineage.set_state(conn, task.execution_id, "CANCELED", None)
            announce_finished(conn, run_id, ctx.actor)
        else:
            update_run(conn, run_id, state="CANCELLING")
        audit.record(
            conn, ctx, "pipelines.run.cancel", f"pipeline_runs/{run_id}", detail={"force": force}
        )
        return read_run(conn, ctx.project, run_id)

    return store.retry_write(work)

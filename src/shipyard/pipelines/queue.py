"""Queued runs: ``run_pipeline(..., submit=True)`` records them; a worker calls
``claim_and_run_next`` in a loop to take the oldest one and run it.

Claiming is one conditional UPDATE (``state = 'QUEUED'`` in the WHERE clause), so two
workers can never both run the same run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.pipelines import runs
from shipyard.pipelines._state import RunOptions
from shipyard.pipelines.models import PipelineRun
from shipyard.pipelines.runner import execute_run
from shipyard.pipelines.spec import PipelineSpec
from shipyard.store import Store
from shipyard.store.schema import pipeline_runs
from shipyard.store.types import utcnow


def _claim(store: Store, worker_name: str, project: str | None) -> tuple[str, str] | None:
    def work(conn: Connection) -> tuple[str, str] | None:
        stmt = (
            select(pipeline_runs.c.id, pipeline_runs.c.project)
            .where(pipeline_runs.c.state == "QUEUED")
            .order_by(pipeline_runs.c.created_at, pipeline_runs.c.id)
            .limit(1)
        )
        if project is not None:
            stmt = stmt.where(pipeline_runs.c.project == project)
        row = conn.execute(stmt).first()
        if row is None:
            return None
        now = utcnow()
        claimed = conn.execute(
            update(pipeline_runs)
            .where(pipeline_runs.c.id == row.id, pipeline_runs.c.state == "QUEUED")
            .values(state="RUNNING", claimed_by=worker_name, started_at=now, heartbeat_at=now)
        )
        return (str(row.id), str(row.project)) if claimed.rowcount == 1 else None

    return store.retry_write(work)


def claim_and_run_next(
    store: Store,
    artifacts: Any,
    worker_name: str,
    *,
    project: str | None = None,
    settings: Settings | None = None,
) -> PipelineRun | None:
    """Run the oldest QUEUED run (of ``project``, or any) to its end and return it;
    ``None`` when the queue is empty. A failed run is returned, not raised."""
    claimed = _claim(store, worker_name, project)
    if claimed is None:
        return None
    run_id, run_project = claimed
    with store.read() as conn:
        run = runs.read_run(conn, run_project, run_id)
        spec = PipelineSpec.model_validate(runs.read_spec(conn, run_id))
    ctx = RequestContext(project=run_project, actor=worker_name)
    return execute_run(
        store, artifacts, ctx, spec, run, RunOptions.from_json(run.options),
        settings=settings, raise_on_error=False,
    )  # fmt: skip

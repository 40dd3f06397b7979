"""Queued runs: ``run_pipeline(..., submit=True)`` records them; a worker calls
``claim_and_run_next`` in a loop to take the oldest one and run it.

Claiming is the store's ``claim_next`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write
lock on SQLite), so two workers never both run the same run, and on PostgreSQL a worker does
not wait for another's claim: it takes the next queued run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_

from shipyard.config import DEFAULT_HOST, DEFAULT_PORT, Settings
from shipyard.context import RequestContext
from shipyard.errors import ShipyardError
from shipyard.pipelines import runs
from shipyard.pipelines._isolation import StepIsolation, resolve_user
from shipyard.pipelines._state import RunOptions
from shipyard.pipelines.models import PipelineRun
from shipyard.pipelines.runner import execute_run
from shipyard.pipelines.spec import PipelineSpec
from shipyard.security import service as security
from shipyard.store import Store
from shipyard.store.dialect import claim_next
from shipyard.store.schema import pipeline_runs
from shipyard.store.types import utcnow


def _claim(store: Store, worker_name: str, project: str | None) -> tuple[str, str] | None:
    def work(conn: Connection) -> tuple[str, str] | None:
        queued = pipeline_runs.c.state == "QUEUED"
        if project is not None:
            queued = and_(queued, pipeline_runs.c.project == project)
        now = utcnow()
        row = claim_next(
            conn, pipeline_runs, queued,
            order_by=[pipeline_runs.c.created_at, pipeline_runs.c.id],
            set_values={"state": "RUNNING", "claimed_by": worker_name, "started_at": now,
                        "heartbeat_at": now},
        )  # fmt: skip
        return None if row is None else (str(row.id), str(row.project))

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
    options = RunOptions.from_json(run.options)
    if run.principal is None:  # queued in local mode: its submitter had the store already
        return execute_run(store, artifacts, ctx, spec, run, options, settings=settings,
                           raise_on_error=False, prior=run.tasks or None)
    try:
        token = security.issue_run_token(
            store, ctx, run.principal, run_project, name=f"pipeline-run-{run_id[:12]}"
        )
        isolation = _isolation_for(settings, token.plaintext)
    except ShipyardError as exc:
        _fail_unstarted(store, run_id, f"the run could not start: {exc.message}")
        with store.read() as conn:
            return runs.read_run(conn, run_project, run_id)
    try:
        return execute_run(store, artifacts, ctx, spec, run, options, settings=settings,
                           raise_on_error=False, prior=run.tasks or None, isolation=isolation)
    finally:
        security.revoke_token(store, ctx, token.id)


def _isolation_for(settings: Settings | None, token: str) -> StepIsolation:
    """How this worker starts the steps of server-side runs (its settings say where the
    server is and which OS user steps run as)."""
    server_url = (settings.server_url if settings else None) or (
        f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    )
    step_user = settings.step_user if settings else None
    user = resolve_user(step_user) if step_user else None
    return StepIsolation(server_url=server_url, token=token, user=user)


def _fail_unstarted(store: Store, run_id: str, error: str) -> None:
    def work(conn: Connection) -> None:
        runs.update_run(conn, run_id, state="FAILED", error=error, finished_at=utcnow())

    store.retry_write(work)

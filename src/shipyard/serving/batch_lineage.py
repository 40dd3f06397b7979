"""A finished batch prediction job in the lineage graph: the source file (a ``Dataset``
artifact) and the model version go into a ``batch_prediction`` execution, which puts out
the predictions (a ``Predictions`` artifact). One transaction, with its audit row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.lineage import records
from shipyard.store import Store
from shipyard.store.projects import ensure_project

EXECUTION_TYPE = "batch_prediction"
SOURCE_TYPE = "Dataset"
OUTPUT_TYPE = "Predictions"

__all__ = ["EXECUTION_TYPE", "OUTPUT_TYPE", "SOURCE_TYPE", "record"]


def record(store: Store, ctx: RequestContext, job: dict[str, Any]) -> str:
    """Record a finished job (``BatchRecord`` fields) and return its execution's id."""

    def work(conn: Connection) -> str:
        ensure_project(conn, ctx.project)
        model = f"{job['model']}:{job['model_version']}"
        source = records.create_artifact(
            conn, ctx.project, SOURCE_TYPE, job["source_name"], job["source_uri"],
            digest=job["source_digest"], size=job["source_size"],
            properties={"format": job["source_format"]})
        execution = records.create_execution(
            conn, ctx.project, EXECUTION_TYPE, f"batch-predict {model}", state="COMPLETE",
            properties={key: job[key] for key in (
                "job", "model", "model_version", "rows", "chunks", "skipped_chunks",
                "chunk_rows", "seconds", "output_format")})
        records.add_event(conn, execution, source, "input", "source")
        if job.get("model_artifact_id"):
            records.add_event(conn, execution, job["model_artifact_id"], "input", "model")
        output = records.create_artifact(
            conn, ctx.project, OUTPUT_TYPE, job["destination_name"], job["destination_uri"],
            digest=job["destination_digest"], size=job["destination_size"],
            properties={"format": job["output_format"], "rows": job["rows"], "model": model})
        records.add_event(conn, execution, output, "output", "predictions")
        context = records.get_or_create_context(conn, ctx.project, "model", job["model"])
        records.associate(conn, context, execution)
        audit.record(conn, ctx, "batch_prediction.record", f"executions/{execution}",
                     detail={"model": model, "rows": job["rows"]})
        return execution

    return store.retry_write(work)

"""A finished batch prediction job (a value type: what ``sy.batch_predict`` returns and
what a session records in lineage)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class BatchPredictionJob(BaseModel):
    """What went in (``source``, the model version), what came out (``destination``,
    ``rows`` predictions), and how: ``chunks`` of ``chunk_rows`` rows, ``skipped_chunks``
    of them done by an earlier, interrupted run of the same job. ``execution_id`` is the
    job's execution in the lineage graph (None where it was not recorded)."""

    model_config = ConfigDict(frozen=True)

    job: str
    model: str
    model_version: int
    model_version_id: str
    model_artifact_id: str | None
    source: str
    source_name: str
    source_uri: str
    source_format: str
    source_digest: str
    source_size: int
    destination: str
    destination_name: str
    destination_uri: str
    output_format: str
    destination_digest: str
    destination_size: int
    rows: int
    chunks: int
    skipped_chunks: int
    chunk_rows: int
    seconds: float
    columns: list[str]
    execution_id: str | None = None

"""Batch prediction from the SDK (re-exported as ``shipyard.batch_predict``).

The model runs in this process in both modes: the registry sends the version's files (the
shared model cache keeps them), as MLflow's batch scoring does, so a large table never
travels through the server. Local mode records the job in lineage; through a server it is
not recorded yet (the REST API has no route for it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from shipyard.errors import InvalidArgument
from shipyard.registry.refs import parse_ref
from shipyard.sdk import session
from shipyard.serving import batch
from shipyard.serving.batch_job import BatchPredictionJob

__all__ = ["batch_predict"]

log = logging.getLogger(__name__)


def batch_predict(
    model: str,
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    version: int | None = None,
    alias: str | None = None,
    chunk_rows: int = batch.DEFAULT_CHUNK_ROWS,
    output_format: str | None = None,
    input_format: str | None = None,
    trusted_digests: Iterable[str] | None = None,
    on_progress: Callable[[batch.Progress], None] | None = None,
    executor: str = "local",
) -> BatchPredictionJob:
    """Predict every row of ``source`` (CSV, Parquet or JSON Lines, by its suffix or
    ``input_format``) with ``model`` (``name``, ``name:3``, ``name@alias``,
    ``models:/name@alias``, or a name with ``version=`` or ``alias=``) into
    ``destination`` (Parquet or CSV, by its suffix or ``output_format``): the input
    columns, ``prediction``, ``model_name`` and ``model_version``.

    Streams ``chunk_rows`` rows at a time; an interrupted job run again with the same
    arguments skips the chunks it finished (see ``shipyard.serving.batch``).
    ``on_progress`` is called after each chunk with a ``Progress``.

    ``executor="ray"`` predicts the chunks as Ray tasks on the cluster ``RAY_ADDRESS``
    names (a local one without it; ``pip install 'shipyard[ray]'``): the same output,
    resuming and lineage (``shipyard.serving.batch_ray``).
    """
    ref = _reference(model, version, alias)
    current = session.current()
    loaded = current.registry.load_model(ref, trusted_digests=trusted_digests)
    options = None
    if executor == "ray":  # the Ray workers load the model as this process did
        from shipyard.registry import flavors
        from shipyard.registry.flavors.pickle import trust_list

        settings = current.settings
        options = flavors.LoadOptions(
            trusted_types=tuple(settings.trusted_types), allow_pickle=True,
            trusted_digests=trust_list(settings.trusted_digests, trusted_digests))
    outcome = batch.run(loaded, source, destination, chunk_rows=chunk_rows,
                        output_format=output_format, input_format=input_format,
                        on_progress=on_progress, executor=executor, load_options=options)
    job = BatchPredictionJob(
        job=outcome.job, model=outcome.model, model_version=outcome.model_version,
        model_version_id=outcome.model_version_id,
        model_artifact_id=outcome.model_artifact_id, source=str(outcome.source),
        source_name=outcome.source.name, source_uri=outcome.source.as_uri(),
        source_format=outcome.source_format, source_digest=outcome.source_digest,
        source_size=outcome.source_size, destination=str(outcome.destination),
        destination_name=outcome.destination.name,
        destination_uri=outcome.destination.as_uri(), output_format=outcome.output_format,
        destination_digest=outcome.destination_digest,
        destination_size=outcome.destination_size, rows=outcome.rows, chunks=outcome.chunks,
        skipped_chunks=outcome.skipped_chunks, chunk_rows=outcome.chunk_rows,
        seconds=round(outcome.seconds, 3), columns=outcome.columns)
    execution_id = current.serving.record_batch_prediction(job)
    if execution_id is None:
        log.info("batch prediction of %s:%s not recorded in lineage (through a server)",
                 job.model, job.model_version)
    return job.model_copy(update={"execution_id": execution_id})


def _reference(model: str, version: int | None, alias: str | None) -> str:
    if version is not None and alias is not None:
        raise InvalidArgument("give version or alias, not both", field="version")
    ref = parse_ref(model)
    if version is None and alias is None:
        return model
    if ref.version is not None or ref.alias is not None:
        raise InvalidArgument(f"{model!r} already names a version; pass the model's name "
                              "with version= or alias=", field="version" if version else "alias")
    return f"{ref.name}:{version}" if version is not None else f"{ref.name}@{alias}"

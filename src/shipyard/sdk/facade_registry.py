"""SDK functions for the model registry and pipelines (re-exported as ``shipyard.*``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.sdk import session

if TYPE_CHECKING:
    from shipyard.pipelines.models import PipelineRun
    from shipyard.pipelines.spec import PipelineSpec
    from shipyard.registry.loading import LoadedModel
    from shipyard.registry.models import (
        AliasChange,
        ModelVersion,
        PromotionDecision,
        RegisteredModel,
    )


def _api() -> Any:
    return session.current()


# -- registry ------------------------------------------------------------------------------------
def register_model(
    name: str,
    model_or_path: Any,
    *,
    input_example: Any = None,
    signature: Any = None,
    semver: str | None = None,
    description: str = "",
    labels: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    aliases: Sequence[str] | None = None,
    run: Any = None,
    trusted_digest: str | None = None,
) -> ModelVersion:
    """Register a new version of ``name`` (created on first use): a model object, a model
    file or a packaged directory, saved in a safe format with its signature.

    ``run`` (an ``ActiveRun`` or a run id) links the version to the run in the lineage graph;
    inside a pipeline step, the step's own run is used when none is given.
    """
    run_id = getattr(run, "id", run)
    # Inside a pipeline step, the step's execution produced the model (DESIGN.md 4).
    execution_id = os.environ.get("SHIPYARD_EXECUTION_ID") or None
    return _api().register_model(  # type: ignore[no-any-return]
        name, model_or_path, input_example=input_example, signature=signature,
        semver=semver, description=description, labels=dict(labels) if labels else None,
        metadata=dict(metadata) if metadata else None,
        metrics=dict(metrics) if metrics else None,
        aliases=list(aliases) if aliases else None, run_id=run_id,
        trusted_digest=trusted_digest, execution_id=execution_id,
    )


def get_model(name: str) -> RegisteredModel:
    return _api().get_model(name)  # type: ignore[no-any-return]


def get_model_version(name: str, version: int | None = None, alias: str | None = None
                      ) -> ModelVersion:
    """A version by number or alias; with neither, the newest version not retired."""
    return _api().get_model_version(name, version, alias)  # type: ignore[no-any-return]


def resolve_model(ref: str) -> ModelVersion:
    """``name``, ``name:3``, ``name@alias`` or ``models:/name@alias`` -> the version."""
    return _api().resolve_model(ref)  # type: ignore[no-any-return]


def list_models(filter: str | None = None) -> list[RegisteredModel]:
    """Models with a version matching ``filter`` (e.g. ``labels.team = 'sales' and
    metrics.rmse < 0.2``)."""
    return _api().list_models(filter)  # type: ignore[no-any-return]


def list_model_versions(name: str, filter: str | None = None) -> list[ModelVersion]:
    return _api().list_model_versions(name, filter)  # type: ignore[no-any-return]


def set_alias(name: str, alias: str, version: int, reason: str = "") -> ModelVersion:
    return _api().set_alias(name, alias, version, reason)  # type: ignore[no-any-return]


def delete_alias(name: str, alias: str, reason: str = "") -> None:
    _api().delete_alias(name, alias, reason)


def alias_history(name: str, alias: str | None = None) -> list[AliasChange]:
    """Every alias move of ``name``: who, when, why, from and to, and promotion figures."""
    return _api().alias_history(name, alias)  # type: ignore[no-any-return]


def rollback_alias(name: str, alias: str, reason: str = "") -> ModelVersion:
    """Move ``alias`` back to the version it pointed at before its last move."""
    return _api().rollback_alias(name, alias, reason)  # type: ignore[no-any-return]


def set_model_status(name: str, version: int, status: str, reason: str = "") -> ModelVersion:
    return _api().set_model_status(name, version, status, reason)  # type: ignore[no-any-return]


def promote_if_better(
    name: str,
    version: int,
    metric: str = "rmse",
    mode: Literal["min", "max"] = "min",
    alias: str = "production",
    min_delta: float = 0.0,
    bump: Literal["major", "minor", "patch"] = "patch",
    *,
    data: Any = None,
    target: Any = None,
) -> PromotionDecision:
    """Move ``alias`` to ``version`` only if it beats the alias's current holder on
    ``metric`` (by more than ``min_delta``), bumping the semantic version; the decision and
    both figures are recorded in the alias history. With ``data`` and ``target``, both
    versions are evaluated on that dataset instead of their registered metrics."""
    options = {"metric": metric, "mode": mode, "alias": alias, "min_delta": min_delta,
               "bump": bump}
    if data is not None or target is not None:
        return _api().promote_if_better_on_data(  # type: ignore[no-any-return]
            name, version, data, target, **options)
    return _api().promote_if_better(name, version, **options)  # type: ignore[no-any-return]


def load_model(ref: str, *, trusted_digests: Iterable[str] | None = None) -> LoadedModel:
    """Load ``models:/name@alias`` (or ``name:3``...) in this process: an object with
    ``.predict(DataFrame)`` that checks its input against the signature.

    A pickle runs whatever code it holds, so one loads only if the sha256 of its file is in
    ``trusted_digests`` or ``SHIPYARD_TRUSTED_DIGESTS``: your decision, never that of whoever
    registered it. Otherwise ``UnsafeModel`` names the digest to trust.
    """
    return _api().load_model(ref, trusted_digests=trusted_digests)  # type: ignore[no-any-return]


def download_model(ref: str, dest: str | os.PathLike[str]) -> Path:
    """Write a version's packaged directory (manifest and files) to ``dest``."""
    return _api().download_model(ref, dest)  # type: ignore[no-any-return]


# -- pipelines -----------------------------------------------------------------------------------
def run_pipeline(
    pipeline_or_yaml: Any,
    arguments: Mapping[str, Any] | None = None,
    *,
    enable_caching: bool = True,
    parallelism: int | None = None,
    inline: bool = False,
    raise_on_error: bool = True,
    submit: bool = False,
    max_cache_age: float | None = None,
    executor: Literal["process", "ray"] = "process",
) -> PipelineRun:
    """Run a ``@dsl.pipeline`` function or a compiled YAML file; returns the finished run.

    A failed run raises ``PipelineRunFailed`` (carrying the run) unless
    ``raise_on_error=False``. ``submit=True`` queues the run for a worker and returns at
    once; against a server (``SHIPYARD_URI=http://...``) runs always execute on its worker.
    ``inline=True`` runs the steps in this process, for debugging with breakpoints.
    ``executor="ray"`` runs each step as a Ray task (``RAY_ADDRESS`` picks the cluster;
    without it a local one is started).
    """
    return _api().run_pipeline(  # type: ignore[no-any-return]
        pipeline_or_yaml, dict(arguments) if arguments else None,
        enable_caching=enable_caching, parallelism=parallelism, inline=inline,
        raise_on_error=raise_on_error, submit=submit, max_cache_age=max_cache_age,
        executor=executor,
    )


def compile_pipeline(pipeline: Any, path: str | os.PathLike[str]) -> PipelineSpec:
    """Write the pipeline's versioned YAML spec to ``path``."""
    from shipyard.pipelines import compile_pipeline as compile_

    return compile_(pipeline, path)


def get_pipeline_run(run_id: str) -> PipelineRun:
    return _api().get_pipeline_run(run_id)  # type: ignore[no-any-return]


def list_pipeline_runs(pipeline_name: str | None = None, state: str | None = None,
                       limit: int = 100) -> list[PipelineRun]:
    return _api().list_pipeline_runs(  # type: ignore[no-any-return]
        pipeline_name=pipeline_name, state=state, limit=limit)


def retry_pipeline_run(run_id: str, *, raise_on_error: bool = True) -> PipelineRun:
    """Rerun what did not succeed in a FAILED or CANCELLED run; finished steps are kept."""
    return _api().retry_pipeline_run(  # type: ignore[no-any-return]
        run_id, raise_on_error=raise_on_error)


def cancel_pipeline_run(run_id: str, force: bool = False) -> PipelineRun:
    return _api().cancel_pipeline_run(run_id, force=force)  # type: ignore[no-any-return]


def get_task_log(run_id: str, task: str) -> str:
    """The captured stdout and stderr of one step of a run."""
    return _api().get_task_log(run_id, task)  # type: ignore[no-any-return]

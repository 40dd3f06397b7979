"""Pipelines from the SDK (re-exported as ``shipyard.*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from shipyard.pipelines.models import PipelineRun
from shipyard.pipelines.port import Executor, PipelinesPort
from shipyard.pipelines.spec import PipelineSpec
from shipyard.sdk import session
from shipyard.tracking import source as code_source


def _pipelines() -> PipelinesPort:
    return session.current().pipelines


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
    executor: Executor = "process",
) -> PipelineRun:
    """Run a ``@dsl.pipeline`` function or a compiled YAML file; returns the finished run.

    A failed run raises ``PipelineRunFailed`` (carrying the run) unless
    ``raise_on_error=False``. ``submit=True`` queues the run for a worker and returns at
    once; against a server (``SHIPYARD_URI=http://...``) runs always execute on its worker.
    ``inline=True`` runs the steps in this process, for debugging with breakpoints.
    ``executor="ray"`` runs each step as a Ray task (``RAY_ADDRESS`` picks the cluster;
    without it a local one is started).
    """
    return _pipelines().run_pipeline(
        pipeline_or_yaml, arguments,
        enable_caching=enable_caching, parallelism=parallelism, inline=inline,
        raise_on_error=raise_on_error, submit=submit, max_cache_age=max_cache_age,
        executor=executor, source=_code_source(),
    )


def _code_source() -> dict[str, str]:
    """Where the code starting the run came from, as runs record it (``tracking.source``):
    git commit, branch, remote, dirty tree, entry point, Python and imported packages."""
    tags = code_source.source_tags()
    packages = code_source.packages_tag()
    if packages is not None:
        tags["source.packages"] = packages
    return tags


def compile_pipeline(pipeline: Any, path: str | os.PathLike[str]) -> PipelineSpec:
    """Write the pipeline's versioned YAML spec to ``path``."""
    from shipyard.pipelines.compiler import compile_pipeline as compile_

    return compile_(pipeline, path)


def get_pipeline_run(run_id: str) -> PipelineRun:
    return _pipelines().get_pipeline_run(run_id)


def list_pipeline_runs(pipeline_name: str | None = None, state: str | None = None,
                       limit: int = 100) -> list[PipelineRun]:
    return _pipelines().list_pipeline_runs(
        pipeline_name=pipeline_name, state=state, limit=limit)


def retry_pipeline_run(run_id: str, *, raise_on_error: bool = True) -> PipelineRun:
    """Rerun what did not succeed in a FAILED or CANCELLED run; finished steps are kept."""
    return _pipelines().retry_pipeline_run(
        run_id, raise_on_error=raise_on_error)


def cancel_pipeline_run(run_id: str, force: bool = False) -> PipelineRun:
    return _pipelines().cancel_pipeline_run(run_id, force=force)


def get_task_log(run_id: str, task: str) -> str:
    """The captured stdout and stderr of one step of a run."""
    return _pipelines().get_task_log(run_id, task)

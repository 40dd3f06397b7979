"""Pipelines: compile ``@dsl.pipeline`` functions to a versioned spec and run them.

Running records everything: a run row and one row per task (``pipeline_runs`` and
``pipeline_tasks``), a lineage context per run with an execution per task and events to
every artifact it read or wrote, and cache entries that let unchanged steps be skipped.

Attributes are imported on first use, so the DSL (which needs only ``spec``) and step
processes do not load the runner.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.pipelines.compiler import compile_pipeline, load_spec, to_spec
    from shipyard.pipelines.errors import PipelineRunFailed
    from shipyard.pipelines.models import ArtifactOutput, PipelineRun, TaskInfo
    from shipyard.pipelines.queue import claim_and_run_next
    from shipyard.pipelines.runner import retry_pipeline_run, run_pipeline
    from shipyard.pipelines.runs import (
        cancel_pipeline_run,
        get_pipeline_run,
        get_task_log,
        list_pipeline_runs,
    )

_EXPORTS = {
    "compile_pipeline": "compiler",
    "load_spec": "compiler",
    "to_spec": "compiler",
    "PipelineRunFailed": "errors",
    "ArtifactOutput": "models",
    "PipelineRun": "models",
    "TaskInfo": "models",
    "claim_and_run_next": "queue",
    "retry_pipeline_run": "runner",
    "run_pipeline": "runner",
    "cancel_pipeline_run": "runs",
    "get_pipeline_run": "runs",
    "get_task_log": "runs",
    "list_pipeline_runs": "runs",
}
__all__ = [
    "ArtifactOutput",
    "PipelineRun",
    "PipelineRunFailed",
    "TaskInfo",
    "cancel_pipeline_run",
    "claim_and_run_next",
    "compile_pipeline",
    "get_pipeline_run",
    "get_task_log",
    "list_pipeline_runs",
    "load_spec",
    "retry_pipeline_run",
    "run_pipeline",
    "to_spec",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(f"shipyard.pipelines.{module}"), name)

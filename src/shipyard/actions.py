"""Actions for schedules and triggers: ``sy.actions.RunPipeline(...)``, ``Deploy``,
``SetTraffic``, ``Promote``, ``Rollback``, ``Webhook``, ``CallFunction``, ``Publish``,
``StartCanary``.

String fields may hold templates filled when the action runs: ``{{ event.version }}`` (a
trigger's message data), ``{{ tick }}`` (a schedule's tick time). See docs/events.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.events.actions import (
    Action,
    CallFunction,
    Deploy,
    Promote,
    Publish,
    Rollback,
    RunPipeline,
    SetTraffic,
    StartCanary,
    Webhook,
)

__all__ = ["Action", "CallFunction", "Deploy", "Promote", "Publish", "Rollback",
           "RunPipeline", "SetTraffic", "StartCanary", "Webhook", "run_pipeline"]


def run_pipeline(pipeline: Any, arguments: Mapping[str, Any] | None = None, *,
                 enable_caching: bool = True) -> RunPipeline:
    """A ``RunPipeline`` action for a ``@dsl.pipeline`` (compiled now and kept with the
    action), a compiled pipeline YAML file, or the name of a pipeline that has run in the
    project (its latest run's spec is run again)."""
    from pathlib import Path

    from shipyard.pipelines.compiler import dump_spec, to_spec

    if isinstance(pipeline, str) and not pipeline.endswith((".yaml", ".yml")):
        return RunPipeline(pipeline=pipeline, arguments=dict(arguments or {}),
                           enable_caching=enable_caching)
    spec, _ = to_spec(Path(pipeline) if isinstance(pipeline, str) else pipeline)
    return RunPipeline(pipeline=spec.name, spec=dump_spec(spec),
                       arguments=dict(arguments or {}), enable_caching=enable_caching)

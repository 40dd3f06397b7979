"""The pipeline DSL, with the Kubeflow Pipelines v2 surface.

Component code written for Vertex AI or Kubeflow runs unchanged after replacing
``from kfp.dsl import ...`` with ``from shipyard.dsl import ...``::

    from shipyard import dsl

    @dsl.component(packages_to_install=["pandas"])
    def train(data: dsl.Input[dsl.Dataset], model: dsl.Output[dsl.Model], depth: int = 6) -> float:
        ...

    @dsl.pipeline(name="lead-scoring")
    def lead_pipeline(rows: int = 5000):
        ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shipyard.dsl._artifacts import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    InputPath,
    Markdown,
    Metrics,
    Model,
    Output,
    OutputPath,
    SlicedClassificationMetrics,
    get_uri,
)
from shipyard.dsl._placeholders import (
    PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER,
    PIPELINE_JOB_ID_PLACEHOLDER,
    PIPELINE_JOB_NAME_PLACEHOLDER,
    PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER,
    PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
    PIPELINE_ROOT_PLACEHOLDER,
    PIPELINE_TASK_ID_PLACEHOLDER,
    PIPELINE_TASK_NAME_PLACEHOLDER,
)
from shipyard.dsl._types import PipelineTaskFinalStatus

if TYPE_CHECKING:
    from shipyard.dsl._channels import Collected, OneOf
    from shipyard.dsl._component import PythonComponent, component
    from shipyard.dsl._container import (
        ConcatPlaceholder,
        ContainerSpec,
        IfPresentPlaceholder,
        container_component,
    )
    from shipyard.dsl._control import Condition, Elif, Else, ExitHandler, If, ParallelFor
    from shipyard.dsl._importer import importer
    from shipyard.dsl._pipeline import Pipeline, SubPipelineTask, pipeline
    from shipyard.dsl._task import PipelineTask

# What defines pipelines is imported on first use: it needs the spec models (pydantic), and
# a step process, which needs only the artifact types, starts faster and smaller without.
_LAZY = {
    "Collected": "_channels",
    "OneOf": "_channels",
    "PythonComponent": "_component",
    "component": "_component",
    "Condition": "_control",
    "Elif": "_control",
    "Else": "_control",
    "ExitHandler": "_control",
    "If": "_control",
    "ParallelFor": "_control",
    "Pipeline": "_pipeline",
    "SubPipelineTask": "_pipeline",
    "pipeline": "_pipeline",
    "PipelineTask": "_task",
    "importer": "_importer",
    "ConcatPlaceholder": "_container",
    "ContainerSpec": "_container",
    "IfPresentPlaceholder": "_container",
    "container_component": "_container",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "HTML",
    "PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER",
    "PIPELINE_JOB_ID_PLACEHOLDER",
    "PIPELINE_JOB_NAME_PLACEHOLDER",
    "PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER",
    "PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER",
    "PIPELINE_ROOT_PLACEHOLDER",
    "PIPELINE_TASK_ID_PLACEHOLDER",
    "PIPELINE_TASK_NAME_PLACEHOLDER",
    "Artifact",
    "ClassificationMetrics",
    "Collected",
    "ConcatPlaceholder",
    "Condition",
    "ContainerSpec",
    "Dataset",
    "Elif",
    "Else",
    "ExitHandler",
    "If",
    "IfPresentPlaceholder",
    "Input",
    "InputPath",
    "Markdown",
    "Metrics",
    "Model",
    "OneOf",
    "Output",
    "OutputPath",
    "ParallelFor",
    "Pipeline",
    "PipelineTask",
    "PipelineTaskFinalStatus",
    "PythonComponent",
    "SlicedClassificationMetrics",
    "SubPipelineTask",
    "component",
    "container_component",
    "get_uri",
    "importer",
    "pipeline",
]

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

from shipyard.dsl._artifacts import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
    SlicedClassificationMetrics,
)
from shipyard.dsl._channels import Collected
from shipyard.dsl._component import PythonComponent, component
from shipyard.dsl._control import Condition, Elif, Else, ExitHandler, If, ParallelFor
from shipyard.dsl._pipeline import Pipeline, SubPipelineTask, pipeline
from shipyard.dsl._task import PipelineTask
from shipyard.dsl._types import PipelineTaskFinalStatus

__all__ = [
    "HTML",
    "Artifact",
    "ClassificationMetrics",
    "Collected",
    "Condition",
    "Dataset",
    "Elif",
    "Else",
    "ExitHandler",
    "If",
    "Input",
    "Markdown",
    "Metrics",
    "Model",
    "Output",
    "ParallelFor",
    "Pipeline",
    "PipelineTask",
    "PipelineTaskFinalStatus",
    "PythonComponent",
    "SlicedClassificationMetrics",
    "SubPipelineTask",
    "component",
    "pipeline",
]

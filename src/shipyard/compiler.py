"""Kubeflow's compiler interface: ``from shipyard import compiler`` in place of
``from kfp import compiler``::

    compiler.Compiler().compile(my_pipeline, "pipeline.yaml", pipeline_parameters={"rows": 10})

writes Shipyard's pipeline spec (every component's source, the DAG, inputs with defaults),
which ``shipyard.run_pipeline("pipeline.yaml")`` and ``shipyard pipelines run`` run. A path
ending in ``.json`` gets the same document as JSON. A single component compiles to a
pipeline of one task whose inputs are the component's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidArgument

if TYPE_CHECKING:
    from shipyard.pipelines.spec import PipelineSpec

__all__ = ["Compiler"]


class Compiler:
    """Compiles a ``@dsl.pipeline`` (or a ``@dsl.component``) to a file, as kfp's does."""

    def compile(
        self,
        pipeline_func: Any,
        package_path: str | os.PathLike[str],
        pipeline_name: str | None = None,
        pipeline_parameters: Mapping[str, Any] | None = None,
        type_check: bool = True,
    ) -> None:
        """Write ``pipeline_func`` to ``package_path``.

        ``pipeline_name`` replaces the pipeline's name; ``pipeline_parameters`` replaces
        the defaults of its parameters (each must be one of them and of its type).
        ``type_check`` is accepted for kfp's sake: Shipyard checks types when the pipeline
        is defined, whatever it says.
        """
        from shipyard.pipelines.compiler import dump_spec, spec_document

        spec = _with_overrides(_spec_of(pipeline_func), pipeline_name, pipeline_parameters)
        target = Path(package_path)
        if target.suffix.lower() == ".json":
            text = json.dumps(spec_document(spec), indent=2, sort_keys=False) + "\n"
        elif target.suffix.lower() in (".yaml", ".yml"):
            text = dump_spec(spec, target.name)
        else:
            raise InvalidArgument(
                f"package_path {str(target)!r} must end with .yaml, .yml or .json",
                field="package_path",
            )
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument(
                f"cannot write {target}: {exc.strerror}", field="package_path"
            ) from None


def _spec_of(pipeline_func: Any) -> PipelineSpec:
    from shipyard.dsl._component import PythonComponent
    from shipyard.dsl._pipeline import Pipeline

    if isinstance(pipeline_func, Pipeline):
        return pipeline_func.spec
    if isinstance(pipeline_func, PythonComponent):
        return _component_pipeline(pipeline_func)
    raise InvalidArgument(
        "Compiler.compile takes a @dsl.pipeline or a @dsl.component, "
        f"got {type(pipeline_func).__name__}",
        field="pipeline_func",
    )


def _component_pipeline(component: Any) -> PipelineSpec:
    """A pipeline of one task running ``component``, taking the component's inputs."""
    from shipyard.pipelines.spec import PipelineSpec, TaskSpec, ValueSource

    spec = component.component_spec
    inputs = {
        name: definition.model_copy(update={"path": False})
        for name, definition in spec.inputs.items()
        if definition.type != "TASK_FINAL_STATUS"
    }
    task = TaskSpec(
        name=spec.name,
        component=spec.name,
        inputs={name: ValueSource(kind="param", param=name) for name in inputs},
    )
    outputs = {
        name: ValueSource(kind="task", task=spec.name, output=name) for name in spec.outputs
    }
    return PipelineSpec(
        name=spec.name,
        description=spec.description,
        inputs=inputs,
        outputs=outputs,
        components={spec.name: spec},
        tasks={spec.name: task},
    )


def _with_overrides(
    spec: PipelineSpec, name: str | None, parameters: Mapping[str, Any] | None
) -> PipelineSpec:
    from shipyard.dsl._types import value_fits

    inputs = dict(spec.inputs)
    for key, value in (parameters or {}).items():
        where = f"pipeline_parameters.{key}"
        definition = inputs.get(key)
        if definition is None:
            raise InvalidArgument(
                f"pipeline {spec.name!r} has no parameter {key!r}; it takes {sorted(inputs)}",
                field=where,
            )
        if definition.kind != "parameter":
            raise InvalidArgument(
                f"pipeline parameter {key!r} is an artifact: it takes no default", field=where
            )
        if value is not None and not value_fits(value, definition.type):
            raise InvalidArgument(
                f"pipeline parameter {key!r} expects {definition.type}, got {value!r}",
                field=where,
            )
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"pipeline parameter {key!r} must be JSON data, got {value!r}", field=where
            ) from None
        inputs[key] = definition.model_copy(update={"default": value, "optional": True})
    update: dict[str, Any] = {"inputs": inputs}
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgument("pipeline_name must be a non-empty string",
                                  field="pipeline_name")
        update["name"] = name
    return spec.model_copy(update=update)

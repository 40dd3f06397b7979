"""Compiling a ``@dsl.pipeline`` to a YAML file, and reading one back.

The file is the whole pipeline: every component's source and sha256, the DAG, inputs with
defaults, outputs, loops and conditions. Running the file runs exactly what running the
function runs (steps always execute the recorded source).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from shipyard.errors import InvalidArgument
from shipyard.pipelines.spec import SCHEMA_VERSION, PipelineSpec, find_cycle, source_tasks

_HEADER = """\
# Shipyard pipeline spec ({version}), written by shipyard.compile_pipeline.
# Run it with shipyard.run_pipeline("{file}", arguments={{...}}) or `shipyard pipelines run`.
#
# inputs:      pipeline parameters (type, default); arguments override defaults
# outputs:     pipeline outputs, each pointing at a task output
# components:  each step's Python source, interface and sha256 (source + interface); the
#              sha256 is part of every cache key, so editing a source re-runs that step
# tasks:       the DAG: which component each task runs, where each input comes from
#              (constant, param, task output, loop item, collected), dependsOn (.after),
#              conditions (dsl.If/Elif/Else, all must hold), loops (dsl.ParallelFor) and
#              exitFor (dsl.ExitHandler: runs after these tasks whatever their outcome)
# loops:       ParallelFor item sources and parallelism
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def spec_document(spec: PipelineSpec) -> dict[str, Any]:
    doc = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    doc = {"schemaVersion": spec.schema_version, **doc}
    for key, component in spec.components.items():
        doc["components"][key]["sha256"] = component.hash
    return doc


def dump_spec(spec: PipelineSpec, file_name: str = "pipeline.yaml") -> str:
    body = yaml.dump(spec_document(spec), Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    return _HEADER.format(version=spec.schema_version, file=file_name) + body


def compile_pipeline(pipeline: Any, path: str | os.PathLike[str]) -> PipelineSpec:
    """Write ``pipeline`` (a ``@dsl.pipeline``) to ``path`` as YAML; return its spec."""
    spec, _ = to_spec(pipeline)
    target = Path(path)
    target.write_text(dump_spec(spec, target.name), encoding="utf-8")
    return spec


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases: a spec never needs them, and a few lines of
    nested aliases expand to gigabytes once the spec is hashed or written back out."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not allowed in a pipeline spec", event.start_mark)
        return super().compose_node(parent, index)


def parse_spec(text: str, origin: str = "pipeline spec") -> PipelineSpec:
    try:
        # A SafeLoader: no Python objects. kfp may add a second document (platforms).
        documents = list(yaml.load_all(text, Loader=_NoAliasLoader))
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"{origin} is not valid YAML: {exc}", field="spec") from None
    except RecursionError:
        raise InvalidArgument(f"{origin} is nested too deeply", field="spec") from None
    doc = documents[0] if documents else None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{origin} is not a pipeline spec", field="spec")
    if "pipelineInfo" in doc and "root" in doc:  # written by kfp's compiler
        return _kfp_spec(documents, origin)
    if len(documents) > 1:
        raise InvalidArgument(f"{origin} holds {len(documents)} YAML documents; a pipeline "
                              "spec is one", field="spec")  # fmt: skip
    version = doc.get("schemaVersion")
    if version != SCHEMA_VERSION:
        raise InvalidArgument(
            f"{origin} has schemaVersion {version!r}; this Shipyard reads {SCHEMA_VERSION!r}",
            field="schemaVersion",
        )
    for component in (doc.get("components") or {}).values():
        if isinstance(component, dict):
            component.pop("sha256", None)  # derived; recomputed from the source
    try:
        spec = PipelineSpec.model_validate(doc)
    except RecursionError:
        raise InvalidArgument(f"{origin} is nested too deeply", field="spec") from None
    except ValueError as exc:
        raise InvalidArgument(
            f"{origin} is not a valid pipeline spec: {exc}", field="spec"
        ) from None
    check_spec(spec)
    return spec


def _kfp_spec(documents: list[Any], origin: str) -> PipelineSpec:
    """A pipeline spec written by kfp's compiler, as Shipyard's (``_kfp``)."""
    from shipyard.pipelines import _kfp

    try:
        spec = _kfp.from_kfp(documents, origin)
    except RecursionError:
        raise InvalidArgument(f"{origin} is nested too deeply", field="spec") from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise InvalidArgument(
            f"{origin} is not a pipeline spec kfp's compiler writes: {exc!r}", field="spec"
        ) from None
    check_spec(spec)
    return spec


def check_spec(spec: PipelineSpec) -> None:
    """Refer only to known components, tasks and loops, and contain no cycle."""
    for task in spec.tasks.values():
        if task.component not in spec.components:
            raise InvalidArgument(
                f"task {task.name!r} runs unknown component {task.component!r}",
                field=f"tasks.{task.name}.component",
            )
        for loop in task.loops:
            if loop not in spec.loops:
                raise InvalidArgument(f"task {task.name!r} is in unknown loop {loop!r}")
        for other in [*task.depends_on, *task.exit_for]:
            if other not in spec.tasks:
                raise InvalidArgument(f"task {task.name!r} refers to unknown task {other!r}")
        for name, source in task.inputs.items():
            for other in source_tasks(source):
                if other not in spec.tasks:
                    raise InvalidArgument(
                        f"task {task.name!r} argument {name!r} reads unknown task {other!r}",
                        field=f"tasks.{task.name}.inputs.{name}",
                    )
    cycle = find_cycle(spec)
    if cycle:
        raise InvalidArgument(
            f"pipeline {spec.name!r} has a dependency cycle: {' -> '.join(cycle)}"
        )


def load_spec(path: str | os.PathLike[str]) -> PipelineSpec:
    """Read a compiled pipeline from a YAML file."""
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read pipeline file {target}: {exc.strerror}") from None
    return parse_spec(text, str(target))


def to_spec(pipeline_or_yaml: Any) -> tuple[PipelineSpec, dict[str, Callable[..., Any]]]:
    """A spec and, when the pipeline object is at hand, its components' Python functions."""
    from shipyard.dsl import Pipeline

    if isinstance(pipeline_or_yaml, Pipeline):
        return pipeline_or_yaml.spec, dict(pipeline_or_yaml.functions)
    if isinstance(pipeline_or_yaml, PipelineSpec):
        return pipeline_or_yaml, {}
    if isinstance(pipeline_or_yaml, str | os.PathLike):
        return load_spec(pipeline_or_yaml), {}
    raise InvalidArgument(
        "run a @dsl.pipeline function, a PipelineSpec or the path of a compiled YAML file; "
        f"got {type(pipeline_or_yaml).__name__}",
        field="pipeline",
    )

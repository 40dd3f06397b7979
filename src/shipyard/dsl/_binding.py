"""Checking a task's arguments against its component's interface, at definition time.

Every error names the task and the argument, so the line that wires a Model into a Dataset
input (or forgets an argument) is found from the message alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.dsl._channels import Channel, Collected, LoopArgument, OneOf, TaskOutput
from shipyard.dsl._types import types_fit, value_fits
from shipyard.errors import InvalidArgument
from shipyard.pipelines.spec import InputDef, OutputDef

if TYPE_CHECKING:
    from shipyard.dsl._builder import Builder
    from shipyard.dsl._task import PipelineTask


def _describe(channel: Channel) -> str:
    if isinstance(channel, TaskOutput):
        return f"output {channel.name!r} of task {channel.task.name!r}"
    if isinstance(channel, Collected):
        return f"dsl.Collected({_describe(channel.output)})"
    return repr(channel)


def check_scope(channel: Channel, builder: Builder, where: str) -> None:
    """A loop's per-iteration outputs are only visible inside that loop, or collected."""
    here = builder.loop_stack
    if isinstance(channel, OneOf):
        for option in channel.channels:
            check_scope(option, builder, where)
    elif isinstance(channel, TaskOutput):
        there = channel.task.loops
        if there != here[: len(there)]:
            raise InvalidArgument(
                f"{where}: {_describe(channel)} comes from inside a dsl.ParallelFor; "
                "use it inside that loop or wrap it in dsl.Collected(...)",
                field=where,
            )
    elif isinstance(channel, Collected):
        there = channel.output.task.loops
        if len(there) <= len(here) or there[: len(here)] != here:
            raise InvalidArgument(
                f"{where}: dsl.Collected takes an output of a task inside a dsl.ParallelFor "
                "that does not enclose this task",
                field=where,
            )


def check_value(value: Any, spec: InputDef, where: str, builder: Builder) -> None:
    if isinstance(value, Channel):
        check_scope(value, builder, where)
        if isinstance(value, LoopArgument):
            if value.kind != "artifact":
                if spec.kind == "artifact":
                    raise InvalidArgument(
                        f"{where} is an artifact: a loop item over values cannot feed it "
                        "(loop over a list of artifacts for that)", field=where)
                return
            if spec.kind != "artifact" or spec.is_list:
                want = "a list of artifacts" if spec.is_list else f"a parameter {spec.type}"
                raise InvalidArgument(
                    f"{where} expects {want} but got a loop item, one artifact of type "
                    f"{value.type}", field=where)
            if not types_fit(("artifact", value.type), (spec.kind, spec.type)):
                raise InvalidArgument(
                    f"{where} expects artifact {spec.type} but got a loop item of type "
                    f"{value.type}", field=where)
            return
        produced = (value.kind, value.type)
        if value.is_list != spec.is_list and spec.kind == "artifact":
            want = "a list of artifacts" if spec.is_list else "one artifact"
            raise InvalidArgument(
                f"{where} expects {want} of type {spec.type} but got {_describe(value)}",
                field=where,
            )
        if isinstance(value, Collected) and spec.kind == "parameter":
            produced = ("parameter", "LIST")
        if not types_fit(produced, (spec.kind, spec.type)):
            raise InvalidArgument(
                f"{where} expects {spec.kind} {spec.type} but got {_describe(value)} "
                f"({value.kind} {value.type})",
                field=where,
            )
        return
    if value is None and spec.optional:
        return
    if spec.kind == "artifact":
        raise InvalidArgument(
            f"{where} is an artifact input ({spec.type}): pass an upstream task's output, "
            f"not {type(value).__name__} {value!r}",
            field=where,
        )
    if not value_fits(value, spec.type):
        raise InvalidArgument(
            f"{where} expects {spec.type} but got {type(value).__name__} {value!r}", field=where
        )
    from shipyard.dsl._component import _json_value

    _json_value(value, where)


def bind_arguments(
    task: PipelineTask,
    inputs: Mapping[str, InputDef],
    outputs: Mapping[str, OutputDef],
    kwargs: Mapping[str, Any],
    builder: Builder,
) -> None:
    """Check ``kwargs`` against the interface and record them as the task's input sources."""
    from shipyard.dsl._channels import to_source

    for arg in kwargs:
        if arg in outputs and arg not in inputs:
            raise InvalidArgument(
                f"task {task.name!r}: {arg!r} is an output of the component; do not pass it",
                field=f"{task.name}.{arg}",
            )
        if arg not in inputs:
            raise InvalidArgument(
                f"task {task.name!r}: unknown argument {arg!r}; the component takes "
                f"{sorted(inputs)}",
                field=f"{task.name}.{arg}",
            )
    for name, spec in inputs.items():
        where = f"task {task.name!r} argument {name!r}"
        if name not in kwargs:
            if spec.optional or spec.type == "TASK_FINAL_STATUS":
                continue
            raise InvalidArgument(
                f"{where} is missing: the component needs it ({spec.kind} {spec.type})",
                field=f"{task.name}.{name}",
            )
        value = kwargs[name]
        check_value(value, spec, where, builder)
        if value is None and spec.optional and spec.kind == "artifact":
            continue  # as if left out (an optional artifact input of a nested pipeline)
        task.inputs[name] = to_source(value)

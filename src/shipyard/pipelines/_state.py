"""The state of a run being executed: options, task instances, and value helpers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shipyard.errors import InvalidArgument
from shipyard.pipelines import _launch
from shipyard.pipelines.models import ArtifactOutput, TaskInfo
from shipyard.pipelines.spec import InputDef, PipelineSpec, TaskSpec

DONE = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"})
BAD = frozenset({"FAILED", "SKIPPED", "CANCELLED"})
Status = Literal["ok", "wait", "skip", "fail"]


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; stored with the run so a worker or a retry runs it the same way."""

    enable_caching: bool = True
    parallelism: int | None = None
    inline: bool = False
    max_cache_age: float | None = None
    backend: str = "process"

    def to_json(self) -> dict[str, Any]:
        return {
            "enable_caching": self.enable_caching,
            "parallelism": self.parallelism,
            "inline": self.inline,
            "max_cache_age": self.max_cache_age,
            "backend": self.backend,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOptions:
        return cls(
            **{
                k: data[k]
                for k in ("enable_caching", "parallelism", "inline", "max_cache_age", "backend")
                if k in data
            }
        )


@dataclass
class Inst:
    name: str
    task: TaskSpec
    index: tuple[int, ...]
    info: TaskInfo
    not_before: float = 0.0
    handle: _launch.Handle | None = None
    deadline: float | None = None
    dir: Path | None = None
    log: Path | None = None
    artifacts_in: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    prepared: bool = False  # its inputs are resolved (``params``, ``artifacts_in``)
    looked_up: bool = False  # its cache key was looked up (a miss is not looked up again)
    # What it waited for when last resolved (an instance, or a task whose instances were not
    # all known yet): until that is done it is not resolved again, so a pass costs O(tasks).
    waits_on: Inst | str | None = None


class MissingOutput(Exception):
    """A step finished without writing one of its declared output artifacts."""


class Unresolved(Exception):
    def __init__(self, status: Status, why: str = "", on: Inst | str | None = None) -> None:
        super().__init__(why)
        self.status = status
        self.why = why
        self.on = on  # for "wait": what it waits for, when known


def instance_name(task: str, index: tuple[int, ...]) -> str:
    return task + "".join(f"[{i}]" for i in index)


def select(value: Any, key: str | int | None) -> Any:
    if key is None:
        return value
    try:
        return value[key]
    except (KeyError, IndexError, TypeError):
        raise Unresolved("skip", f"value has no field {key!r}") from None


def artifact_value(value: Any, own: Callable[[Any], ArtifactOutput]) -> Any:
    """An artifact input's value. One this run produced (or took from the cache) is an
    ``ArtifactOutput`` already; anything else (a constant, an argument, a loop item) is a
    reference that ``own`` checks against the run's project (item 4 of the security review:
    a digest alone would copy any project's bytes into the step)."""
    if value is None or isinstance(value, ArtifactOutput):
        return value
    if isinstance(value, list):
        return [artifact_value(v, own) for v in value]
    if isinstance(value, dict):
        return own(value)
    raise Unresolved("skip", f"expected an artifact, got {value!r}")


def compare(left: Any, op: str, right: Any) -> bool:
    if op == "truthy":
        return bool(left)
    try:
        if op == "==":
            return bool(left == right)
        if op == "!=":
            return bool(left != right)
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


def check_arguments(spec: PipelineSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments with defaults filled in, typed as KFP types them; unknown, missing or
    mistyped ones are refused."""
    for name in arguments:
        if name not in spec.inputs:
            raise InvalidArgument(
                f"pipeline {spec.name!r} has no parameter {name!r}; it takes {sorted(spec.inputs)}",
                field=f"arguments.{name}",
            )
    resolved: dict[str, Any] = {}
    for name, definition in spec.inputs.items():
        value = _argument(spec.name, name, definition, arguments)
        if value is not None and definition.kind == "parameter":
            value = _typed(name, definition, value)
        resolved[name] = value
    return resolved


def _typed(name: str, definition: InputDef, value: Any) -> Any:
    """An argument as KFP's driver passes it on (a number for a ``str`` parameter becomes
    its text, an integral double an int); one of another kind is refused."""
    from shipyard.pipelines import _values

    try:
        typed = _values.to_input(value, definition.type, optional=definition.optional)
    except _values.ParameterTypeError:
        typed = None
    if typed is None or (definition.type == "NUMBER_INTEGER" and isinstance(typed, float)):
        raise InvalidArgument(
            f"pipeline argument {name!r} expects {definition.type}, got {value!r}",
            field=f"arguments.{name}",
        )
    return typed


def _argument(pipeline: str, name: str, definition: InputDef, arguments: dict[str, Any]) -> Any:
    if name in arguments:
        return arguments[name]
    if definition.optional:
        return definition.default
    raise InvalidArgument(
        f"pipeline {pipeline!r} needs argument {name!r} ({definition.type})",
        field=f"arguments.{name}",
    )

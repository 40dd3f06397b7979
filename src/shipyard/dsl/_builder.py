"""The pipeline under construction: tasks, loops and the scopes (conditions, loops, exit
handlers, nested pipelines) that a task created right now belongs to.

A ``ContextVar`` holds the active builder, so calling a component anywhere inside a
``@dsl.pipeline`` function (including helper functions it calls) adds a task to it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidArgument
from shipyard.pipelines.spec import ComponentSpec, ConditionSpec, LoopSpec

if TYPE_CHECKING:
    from shipyard.dsl._task import PipelineTask


@dataclass
class Builder:
    """Collects what one ``@dsl.pipeline`` function call creates."""

    pipeline_name: str
    tasks: dict[str, PipelineTask] = field(default_factory=dict)
    components: dict[str, ComponentSpec] = field(default_factory=dict)
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    loops: dict[str, LoopSpec] = field(default_factory=dict)
    conditions: list[ConditionSpec] = field(default_factory=list)
    loop_stack: list[str] = field(default_factory=list)
    exit_groups: list[list[str]] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    # Per nesting level, the conditions of the If/Elif branches seen so far, for Elif/Else.
    branch_history: list[list[ConditionSpec]] = field(default_factory=lambda: [[]])
    # Names of pipeline calls: they prefix their tasks' names, so must be unique too.
    group_names: set[str] = field(default_factory=set)

    def task_name(self, base: str, *, group: bool = False) -> str:
        name = ".".join([*self.prefixes, base])
        taken = self.tasks.keys() | self.group_names
        n = 2
        unique = name
        while unique in taken:
            unique = f"{name}-{n}"
            n += 1
        if group:
            self.group_names.add(unique)
        return unique

    def loop_name(self) -> str:
        return f"for-loop-{len(self.loops) + 1}"

    def add_component(self, spec: ComponentSpec, func: Callable[..., Any] | None) -> str:
        """Register a component and return its key; the same component is stored once."""
        key = spec.name
        n = 2
        while key in self.components and self.components[key] != spec:
            key = f"{spec.name}-{n}"
            n += 1
        self.components[key] = spec
        if func is not None:
            self.functions[key] = func
        return key

    def add_task(self, task: PipelineTask) -> None:
        task.conditions = list(self.conditions)
        task.loops = list(self.loop_stack)
        self.tasks[task.name] = task
        for group in self.exit_groups:
            group.append(task.name)

    @contextlib.contextmanager
    def prefixed(self, prefix: str) -> Iterator[None]:
        self.prefixes.append(prefix)
        try:
            yield
        finally:
            self.prefixes.pop()


_current: ContextVar[Builder | None] = ContextVar("shipyard_dsl_builder", default=None)


def current_builder(what: str) -> Builder:
    builder = _current.get()
    if builder is None:
        raise InvalidArgument(
            f"{what} can only be used inside a function decorated with @dsl.pipeline"
        )
    return builder


@contextlib.contextmanager
def building(builder: Builder) -> Iterator[Builder]:
    token = _current.set(builder)
    try:
        yield builder
    finally:
        _current.reset(token)


def active_builder() -> Builder | None:
    return _current.get()


def kfp_name(function_name: str) -> str:
    """KFP's task naming: ``train_model`` becomes ``train-model``."""
    return re.sub(r"[^a-z0-9-]+", "-", function_name.lower()).strip("-") or "task"

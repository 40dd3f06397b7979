"""Placeholders for values known only at run time: pipeline parameters, task outputs, loop
items and collected fan-ins. Comparing one builds a condition for ``dsl.If``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidArgument
from shipyard.pipelines.spec import ConditionOp, ConditionSpec, ValueSource

if TYPE_CHECKING:
    from shipyard.dsl._task import PipelineTask


def to_source(value: Any) -> ValueSource:
    if isinstance(value, Channel):
        return value.source()
    return ValueSource(kind="constant", value=value)


class Channel:
    """A value a task will see at run time. ``kind`` and ``type`` say what it carries."""

    kind: str = "parameter"
    type: str = "ANY"
    is_list: bool = False

    def source(self) -> ValueSource:
        raise NotImplementedError

    def _compare(self, op: ConditionOp, other: Any) -> ConditionSpec:
        return ConditionSpec(left=self.source(), op=op, right=to_source(other))

    def __eq__(self, other: object) -> ConditionSpec:  # type: ignore[override]
        return self._compare("==", other)

    def __ne__(self, other: object) -> ConditionSpec:  # type: ignore[override]
        return self._compare("!=", other)

    def __lt__(self, other: Any) -> ConditionSpec:
        return self._compare("<", other)

    def __le__(self, other: Any) -> ConditionSpec:
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> ConditionSpec:
        return self._compare(">", other)

    def __ge__(self, other: Any) -> ConditionSpec:
        return self._compare(">=", other)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError(
            "a pipeline value is only known at run time: use dsl.If(value == ...) "
            "instead of if/and/or on it"
        )


class PipelineParameter(Channel):
    def __init__(
        self, name: str, type_: str, kind: str = "parameter", is_list: bool = False
    ) -> None:
        self.name = name
        self.type = type_
        self.kind = kind
        self.is_list = is_list  # an Input[List[...]] of the pipeline

    def source(self) -> ValueSource:
        return ValueSource(kind="param", param=self.name)

    def __repr__(self) -> str:
        return f"PipelineParameter({self.name!r})"


class TaskOutput(Channel):
    """An output of a task; ``key`` selects one field of a dict (or list) output."""

    def __init__(
        self,
        task: PipelineTask,
        name: str,
        kind: str,
        type_: str,
        key: str | int | None = None,
    ) -> None:
        self.task = task
        self.name = name
        self.kind = kind
        self.type = type_ if key is None else "ANY"
        self.key = key

    def source(self) -> ValueSource:
        return ValueSource(kind="task", task=self.task.name, output=self.name, key=self.key)

    def __getitem__(self, key: str | int) -> TaskOutput:
        if self.kind != "parameter" or self.key is not None:
            raise TypeError(f"cannot index output {self.name!r} of task {self.task.name!r}")
        return TaskOutput(self.task, self.name, self.kind, self.type, key)

    def __repr__(self) -> str:
        key = "" if self.key is None else f"[{self.key!r}]"
        return f"TaskOutput({self.task.name!r}, {self.name!r}){key}"


class LoopArgument(Channel):
    """The current item of a ``dsl.ParallelFor``; ``item.field`` selects a field of a dict.
    In a loop over a list of artifacts (``dsl.Collected`` of an artifact output, or a
    pipeline input ``Input[List[Dataset]]``) the item is one artifact of ``type``."""

    def __init__(self, loop: str, key: str | None = None, *, artifact: str | None = None) -> None:
        self.loop = loop
        self.key = key
        if artifact is not None:
            self.kind = "artifact"
            self.type = artifact

    def source(self) -> ValueSource:
        return ValueSource(kind="loop_item", loop=self.loop, key=self.key)

    def __getattr__(self, name: str) -> LoopArgument:
        if name.startswith("_") or self.key is not None or self.kind == "artifact":
            raise AttributeError(name)
        return LoopArgument(self.loop, name)

    def __repr__(self) -> str:
        return f"LoopArgument({self.loop!r}, {self.key!r})"


class Collected(Channel):
    """Fan-in: ``dsl.Collected(task.output)`` outside a ``ParallelFor`` is the list of that
    output over every iteration (a list of values, or of artifacts for ``Input[List[...]]``)."""

    def __init__(self, output: TaskOutput) -> None:
        if not isinstance(output, TaskOutput):
            raise TypeError("dsl.Collected takes an output of a task inside a dsl.ParallelFor")
        self.output = output
        self.kind = output.kind
        self.type = "LIST" if output.kind == "parameter" else output.type
        self.is_list = True

    def source(self) -> ValueSource:
        out = self.output
        return ValueSource(kind="collected", task=out.task.name, output=out.name, key=out.key)


class OneOf(Channel):
    """``dsl.OneOf(a.output, b.output)``: the output of whichever branch of a
    ``dsl.If``/``Elif``/``Else`` chain ran (the first of them whose task ran). Every
    option is a task output of the same kind and type."""

    def __init__(self, *channels: Any) -> None:
        if len(channels) < 2 or not all(isinstance(c, TaskOutput) for c in channels):
            raise InvalidArgument(
                "dsl.OneOf takes two or more task outputs, one from each branch of a "
                "dsl.If/Elif/Else chain",
                field="OneOf",
            )
        first = channels[0]
        for other in channels[1:]:
            if (other.kind, other.type) != (first.kind, first.type):
                raise InvalidArgument(
                    f"dsl.OneOf options must have one type: {first!r} is {first.kind} "
                    f"{first.type}, {other!r} is {other.kind} {other.type}",
                    field="OneOf",
                )
        for channel in channels:
            if not channel.task.conditions:
                raise InvalidArgument(
                    f"dsl.OneOf option {channel!r} is not inside a dsl.If/Elif/Else branch",
                    field="OneOf",
                )
        self.channels = list(channels)
        self.kind = first.kind
        self.type = first.type

    def source(self) -> ValueSource:
        return ValueSource(kind="oneof", options=[c.source() for c in self.channels])

    def __repr__(self) -> str:
        return f"OneOf({', '.join(repr(c) for c in self.channels)})"

"""Control flow inside a pipeline: ``If``/``Elif``/``Else`` (and the older ``Condition``),
``ParallelFor`` and ``ExitHandler``, as context managers like Kubeflow's.

They record scope only: a task created inside ``with dsl.If(...)`` carries the condition,
one created inside ``with dsl.ParallelFor(...)`` runs once per item. The runner evaluates
both when the values are known.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from shipyard.dsl._binding import check_scope
from shipyard.dsl._builder import Builder, current_builder
from shipyard.dsl._channels import Channel, LoopArgument, to_source
from shipyard.dsl._pipeline import SubPipelineTask
from shipyard.dsl._task import PipelineTask
from shipyard.errors import InvalidArgument
from shipyard.pipelines.spec import ConditionSpec, LoopSpec


def _as_condition(condition: Any) -> ConditionSpec:
    if isinstance(condition, ConditionSpec):
        return condition
    if isinstance(condition, Channel):
        return ConditionSpec(left=condition.source(), op="truthy")
    raise InvalidArgument(
        "dsl.If takes a comparison of a pipeline value, like dsl.If(task.output > 0.5); "
        f"got {condition!r}",
        field="condition",
    )


def _negate(condition: ConditionSpec) -> ConditionSpec:
    return condition.model_copy(update={"negate": not condition.negate})


class _Branch:
    """One branch of an If/Elif/Else chain; subclasses say which conditions guard it."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._builder: Builder | None = None
        self._added: list[ConditionSpec] = []

    def _guards(self, builder: Builder) -> list[ConditionSpec]:
        raise NotImplementedError

    def __enter__(self) -> _Branch:
        builder = current_builder(type(self).__name__)
        self._builder = builder
        self._added = self._guards(builder)
        builder.conditions.extend(self._added)
        builder.branch_history.append([])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        builder = self._builder
        if builder is None:
            return
        builder.branch_history.pop()
        del builder.conditions[len(builder.conditions) - len(self._added) :]


class If(_Branch):
    """``with dsl.If(task.output == "yes"):`` tasks inside run only when it holds."""

    def __init__(self, condition: Any, name: str | None = None) -> None:
        super().__init__(name)
        self.condition = _as_condition(condition)

    def _guards(self, builder: Builder) -> list[ConditionSpec]:
        builder.branch_history[-1][:] = [self.condition]
        return [self.condition]


Condition = If


class Elif(_Branch):
    """Runs when no earlier branch of the chain held and this condition does."""

    def __init__(self, condition: Any, name: str | None = None) -> None:
        super().__init__(name)
        self.condition = _as_condition(condition)

    def _guards(self, builder: Builder) -> list[ConditionSpec]:
        chain = builder.branch_history[-1]
        if not chain:
            raise InvalidArgument("dsl.Elif must directly follow a dsl.If or dsl.Elif block")
        guards = [_negate(c) for c in chain] + [self.condition]
        chain.append(self.condition)
        return guards


class Else(_Branch):
    """Runs when no branch of the preceding If/Elif chain held."""

    def _guards(self, builder: Builder) -> list[ConditionSpec]:
        chain = builder.branch_history[-1]
        if not chain:
            raise InvalidArgument("dsl.Else must directly follow a dsl.If or dsl.Elif block")
        guards = [_negate(c) for c in chain]
        chain.clear()
        return guards


class ParallelFor:
    """``with dsl.ParallelFor(items, parallelism=2) as item:`` runs the body once per item.

    ``items`` is a literal list, a pipeline parameter or a task output holding a list, or
    a list of artifacts (``dsl.Collected`` of an artifact output inside another loop, or a
    pipeline input ``Input[List[Dataset]]``), whose item is then one artifact.
    ``parallelism`` caps how many iterations run at once (0: no cap beyond the run's).
    """

    def __init__(self, items: Any, parallelism: int = 0, name: str | None = None) -> None:
        if not isinstance(parallelism, int) or parallelism < 0:
            raise InvalidArgument("parallelism must be an int >= 0", field="parallelism")
        if not isinstance(items, Channel | list | tuple):
            raise InvalidArgument(
                f"dsl.ParallelFor takes a list or a pipeline value, got {items!r}", field="items"
            )
        self.items = list(items) if isinstance(items, tuple) else items
        self.parallelism = parallelism
        self.name = name
        self._builder: Builder | None = None

    def __enter__(self) -> LoopArgument:
        builder = current_builder("dsl.ParallelFor")
        if isinstance(self.items, Channel):
            check_scope(self.items, builder, "dsl.ParallelFor items")
        loop = builder.loop_name()
        builder.loops[loop] = LoopSpec(
            name=loop,
            items=to_source(self.items),
            parallelism=self.parallelism,
            parent=builder.loop_stack[-1] if builder.loop_stack else None,
        )
        builder.loop_stack.append(loop)
        builder.branch_history.append([])
        self._builder = builder
        items = self.items
        if isinstance(items, Channel) and items.kind == "artifact":
            if not items.is_list:
                raise InvalidArgument(
                    f"dsl.ParallelFor items: {items!r} is one artifact, not a list of them "
                    "(loop over dsl.Collected(...) or an Input[List[...]] pipeline input)",
                    field="items")
            return LoopArgument(loop, artifact=items.type)
        return LoopArgument(loop)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._builder is not None:
            self._builder.loop_stack.pop()
            self._builder.branch_history.pop()


class ExitHandler:
    """``with dsl.ExitHandler(exit_task=cleanup):`` runs ``cleanup`` after every task in the
    block has finished, whether they succeeded or failed. ``cleanup`` is created before the
    block (a task, or a nested pipeline: then all its tasks); a
    ``dsl.PipelineTaskFinalStatus`` parameter of it receives the outcome."""

    def __init__(self, exit_task: PipelineTask | SubPipelineTask, name: str | None = None
                 ) -> None:
        if not isinstance(exit_task, PipelineTask | SubPipelineTask):
            raise InvalidArgument(
                "dsl.ExitHandler takes the task (or the nested pipeline) to run on exit",
                field="exit_task")
        self.exit_task = exit_task
        self.name = name
        self._builder: Builder | None = None

    def __enter__(self) -> ExitHandler:
        builder = current_builder("dsl.ExitHandler")
        builder.exit_groups.append([])
        self._builder = builder
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._builder is None:
            return
        group = self._builder.exit_groups.pop()
        exit_task = self.exit_task
        # A nested pipeline on exit: each of its tasks runs once the guarded ones ended
        # (its own tasks still wait for each other as their data says).
        on_exit = ([self._builder.tasks[n] for n in exit_task.task_names]
                   if isinstance(exit_task, SubPipelineTask) else [exit_task])
        names = {task.name for task in on_exit}
        guarded = [name for name in group if name not in names]
        if exc_type is None and not guarded:
            raise InvalidArgument("dsl.ExitHandler guards no task: create tasks inside its block")
        for task in on_exit:
            task.exit_for.extend(guarded)

"""``@dsl.pipeline``: a function wiring components together becomes a ``Pipeline``.

The function runs once, at decoration time, with placeholders for its parameters (as in
Kubeflow v2), so wiring errors surface where the pipeline is defined. A pipeline called
inside another pipeline adds its tasks there (names prefixed with its own) and answers
``.output`` / ``.outputs`` / ``.after()`` like a task.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, overload

from shipyard.dsl._binding import check_value
from shipyard.dsl._builder import Builder, active_builder, building, kfp_name
from shipyard.dsl._channels import Channel, PipelineParameter
from shipyard.dsl._component import _json_value, type_hints
from shipyard.dsl._types import HintError, read_hint
from shipyard.errors import InvalidArgument
from shipyard.pipelines.spec import InputDef, PipelineSpec, find_cycle


def _inputs(func: Callable[..., Any], name: str) -> dict[str, InputDef]:
    hints = type_hints(func)
    inputs: dict[str, InputDef] = {}
    for pname, param in inspect.signature(func).parameters.items():
        where = f"pipeline {name!r} parameter {pname!r}"
        try:
            hint = read_hint(hints.get(pname, Any))
        except HintError as exc:
            raise InvalidArgument(f"{where}: {exc}", field=pname) from None
        if hint.direction == "out":
            raise InvalidArgument(f"{where}: a pipeline has no Output[...] parameters")
        has_default = param.default is not inspect.Parameter.empty
        inputs[pname] = InputDef(
            kind="parameter" if hint.kind == "parameter" else "artifact",
            type=hint.type,
            is_list=hint.is_list,
            optional=has_default or hint.optional,
            default=_json_value(param.default, where) if has_default else None,
        )
    return inputs


def _outputs(returned: Any, name: str) -> dict[str, Channel]:
    if returned is None:
        return {}
    if isinstance(returned, Channel):
        return {"Output": returned}
    if isinstance(returned, tuple) and hasattr(returned, "_fields"):
        return _outputs(dict(zip(returned._fields, returned, strict=True)), name)
    if isinstance(returned, Mapping) and all(isinstance(v, Channel) for v in returned.values()):
        return {str(k): v for k, v in returned.items()}
    raise InvalidArgument(
        f"pipeline {name!r} returns {returned!r}: return a task output, a NamedTuple or a dict "
        "of task outputs, or nothing"
    )


class SubPipelineTask:
    """A pipeline called inside another pipeline: its outputs, and ``after``/``set_*``
    applied to every task it added."""

    def __init__(
        self, name: str, builder: Builder, task_names: list[str], outputs: dict[str, Channel]
    ) -> None:
        self.name = name
        self._builder = builder
        self.task_names = task_names
        self.outputs: dict[str, Channel] = outputs

    @property
    def output(self) -> Channel:
        if len(self.outputs) != 1:
            raise InvalidArgument(
                f"pipeline task {self.name!r} has {len(self.outputs)} outputs: use .outputs[name]"
            )
        return next(iter(self.outputs.values()))

    def _each(self) -> Iterator[Any]:
        for task_name in self.task_names:
            yield self._builder.tasks[task_name]

    def after(self, *tasks: Any) -> SubPipelineTask:
        for task in self._each():
            task.after(*tasks)
        return self

    def __getattr__(self, attr: str) -> Callable[..., SubPipelineTask]:
        if not attr.startswith("set_") and attr != "ignore_upstream_failure":
            raise AttributeError(attr)

        def apply(*args: Any, **kwargs: Any) -> SubPipelineTask:
            for task in self._each():
                getattr(task, attr)(*args, **kwargs)
            return self

        return apply


class Pipeline:
    """A pipeline definition: ``spec`` is its compiled form (``PipelineSpec``)."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        pipeline_root: str | None = None,
        display_name: str | None = None,
    ) -> None:
        self.python_func = func
        self.name = name or kfp_name(func.__name__)
        self.description = description or inspect.getdoc(func) or ""
        self.pipeline_root = pipeline_root
        self.display_name = display_name or self.name
        self.inputs = _inputs(func, self.name)
        functools.update_wrapper(self, func)
        self.spec, self.functions = self._build()

    def _build(self) -> tuple[PipelineSpec, dict[str, Callable[..., Any]]]:
        builder = Builder(self.name)
        params = {
            pname: PipelineParameter(pname, spec.type, spec.kind, spec.is_list)
            for pname, spec in self.inputs.items()
        }
        with building(builder):
            returned = self.python_func(**params)
        outputs = {k: v.source() for k, v in _outputs(returned, self.name).items()}
        tasks = {name: task.to_spec() for name, task in builder.tasks.items()}
        spec = PipelineSpec(
            name=self.name,
            description=self.description,
            pipeline_root=self.pipeline_root,
            inputs=self.inputs,
            outputs=outputs,
            components=builder.components,
            tasks=tasks,
            loops=builder.loops,
        )
        cycle = find_cycle(spec)
        if cycle:
            raise InvalidArgument(
                f"pipeline {self.name!r} has a dependency cycle: {' -> '.join(cycle)}",
                field=cycle[0],
            )
        return spec, builder.functions

    def __call__(self, *args: Any, **kwargs: Any) -> SubPipelineTask:
        builder = active_builder()
        if builder is None:
            raise InvalidArgument(
                f"pipeline {self.name!r} can be called only inside another @dsl.pipeline; run "
                "it with shipyard.run_pipeline or compile it with shipyard.compile_pipeline"
            )
        if args:
            raise InvalidArgument(f"pipeline {self.name!r} takes keyword arguments only")
        call_name = builder.task_name(self.name, group=True)
        for arg in kwargs:
            if arg not in self.inputs:
                raise InvalidArgument(
                    f"task {call_name!r}: unknown argument {arg!r}; the pipeline takes "
                    f"{sorted(self.inputs)}",
                    field=f"{call_name}.{arg}",
                )
        bound: dict[str, Any] = {}
        for pname, spec in self.inputs.items():
            where = f"task {call_name!r} argument {pname!r}"
            if pname in kwargs:
                check_value(kwargs[pname], spec, where, builder)
                bound[pname] = kwargs[pname]
            elif spec.optional:
                bound[pname] = spec.default
            else:
                raise InvalidArgument(f"{where} is missing", field=f"{call_name}.{pname}")
        before = set(builder.tasks)
        with builder.prefixed(call_name.rsplit(".", 1)[-1]):
            returned = self.python_func(**bound)
        added = [name for name in builder.tasks if name not in before]
        return SubPipelineTask(call_name, builder, added, _outputs(returned, self.name))

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r})"


@overload
def pipeline(func: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(
    func: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    pipeline_root: str | None = None,
    display_name: str | None = None,
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    pipeline_root: str | None = None,
    display_name: str | None = None,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Define a pipeline. ``pipeline_root`` is recorded (artifacts always go to the
    configured artifact store, addressed by content)."""

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(
            f,
            name=name,
            description=description,
            pipeline_root=pipeline_root,
            display_name=display_name,
        )

    return wrap(func) if func is not None else wrap

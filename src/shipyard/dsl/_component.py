"""``@dsl.component``: a typed Python function becomes a reusable pipeline step.

The component's interface is read from its type hints once, at decoration time, so a bad
hint fails where the component is defined. Its source is recorded: a step runs that source
in a fresh process, as on Kubeflow, so imports belong inside the function.
"""

from __future__ import annotations

import functools
import inspect
import json
import textwrap
import typing
from collections.abc import Callable
from typing import Any, overload

from shipyard.dsl import _artifacts
from shipyard.dsl._binding import bind_arguments
from shipyard.dsl._builder import current_builder, kfp_name
from shipyard.dsl._task import PipelineTask
from shipyard.dsl._types import HintError, PipelineTaskFinalStatus, read_hint, return_outputs
from shipyard.errors import InvalidArgument
from shipyard.pipelines.spec import ComponentSpec, InputDef, OutputDef


def hint_namespace(func: Callable[..., Any]) -> dict[str, Any]:
    """Names type hints may use: typing's, the DSL's, then the function's own globals."""
    names: dict[str, Any] = {n: getattr(typing, n) for n in typing.__all__}
    names.update({n: getattr(_artifacts, n) for n in _artifacts.__all__})
    names["PipelineTaskFinalStatus"] = PipelineTaskFinalStatus
    names.update(getattr(func, "__globals__", {}))
    return names


def type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, globalns=hint_namespace(func), include_extras=True)
    except NameError as exc:
        raise InvalidArgument(
            f"cannot read the type hints of {func.__name__!r}: {exc}", field=func.__name__
        ) from None


def _json_value(value: Any, where: str) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{where} must be JSON-serialisable, got {value!r}") from None
    return value


def parameter_interface(
    func: Callable[..., Any], name: str, hints: dict[str, Any]
) -> tuple[dict[str, InputDef], dict[str, OutputDef]]:
    """The inputs and outputs a function's parameters declare."""
    inputs: dict[str, InputDef] = {}
    outputs: dict[str, OutputDef] = {}
    for pname, param in inspect.signature(func).parameters.items():
        where = f"component {name!r} parameter {pname!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InvalidArgument(f"{where}: *args and **kwargs are not supported", field=pname)
        if pname not in hints:
            raise InvalidArgument(f"{where} needs a type hint", field=pname)
        try:
            hint = read_hint(hints[pname])
        except HintError as exc:
            raise InvalidArgument(f"{where}: {exc}", field=pname) from None
        if hint.direction == "out":
            if hint.is_list:
                raise InvalidArgument(f"{where}: an output cannot be a list", field=pname)
            if param.default is not inspect.Parameter.empty:
                raise InvalidArgument(f"{where}: an output takes no default", field=pname)
            outputs[pname] = OutputDef(kind=hint.kind, type=hint.type, path=hint.path)  # type: ignore[arg-type]
            continue
        has_default = param.default is not inspect.Parameter.empty
        if has_default and hint.kind == "artifact" and param.default is not None:
            raise InvalidArgument(f"{where}: an artifact input can only default to None")
        inputs[pname] = InputDef(
            kind="parameter" if hint.kind == "parameter" else "artifact",
            type=hint.type,
            is_list=hint.is_list,
            optional=has_default or hint.optional,
            default=_json_value(param.default, where) if has_default else None,
            path=hint.path,
        )
    return inputs, outputs


def component_spec(func: Callable[..., Any], options: dict[str, Any]) -> ComponentSpec:
    name = kfp_name(func.__name__)
    hints = type_hints(func)
    inputs, outputs = parameter_interface(func, name, hints)
    try:
        returns, ret_types = return_outputs(hints.get("return"))
    except HintError as exc:
        raise InvalidArgument(f"component {name!r} return type: {exc}") from None
    for out, ret in ret_types.items():
        if out in outputs or out in inputs:
            raise InvalidArgument(f"component {name!r}: output {out!r} is also a parameter name")
        outputs[out] = OutputDef(kind=ret.kind, type=ret.type, optional=ret.optional)  # type: ignore[arg-type]
    source, filename, lineno = _source(func)
    return ComponentSpec(
        name=name,
        function=func.__name__,
        source=source,
        inputs=inputs,
        outputs=outputs,
        returns=returns,  # type: ignore[arg-type]
        return_names=list(ret_types),
        options=_json_value(options, f"options of component {name!r}"),
        description=inspect.getdoc(func) or "",
        filename=filename,
        lineno=lineno,
    )


def _source(func: Callable[..., Any]) -> tuple[str, str, int]:
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise InvalidArgument(
            f"cannot read the source of {func.__name__!r} ({exc}): define components in a "
            "file, not in an interactive prompt"
        ) from None
    filename = inspect.getsourcefile(func) or ""
    return source, filename, func.__code__.co_firstlineno


class PythonComponent:
    """A component: call it inside a ``@dsl.pipeline`` function to add a task.

    ``python_func`` is the undecorated function (call it directly in unit tests);
    ``component_spec`` its compiled interface and source.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        options: dict[str, Any],
        helpers: list[Callable[..., Any]] | None = None,
    ) -> None:
        self.python_func = func
        spec = self._spec(func, options)
        if helpers:
            # Kubeflow's additional_funcs: their source goes with the component's, so the
            # step defines them too (line numbers then count from the first helper).
            sources = [_source(h)[0] for h in helpers]
            spec = spec.model_copy(update={
                "source": "\n\n".join([*sources, spec.source]), "lineno": 1,
                "filename": f"<component {spec.name}>",
            })  # fmt: skip
        self.component_spec = spec
        self.name = self.component_spec.name
        functools.update_wrapper(self, func)

    def _spec(self, func: Callable[..., Any], options: dict[str, Any]) -> ComponentSpec:
        return component_spec(func, options)

    def _function(self) -> Callable[..., Any] | None:
        """The function an inline step may call (``None``: run from the spec)."""
        return self.python_func

    def __call__(self, *args: Any, **kwargs: Any) -> PipelineTask:
        if args:
            raise InvalidArgument(
                f"component {self.name!r} takes keyword arguments only "
                f"(got {len(args)} positional)",
                field=self.name,
            )
        builder = current_builder(f"component {self.name!r}")
        key = builder.add_component(self.component_spec, self._function())
        task = PipelineTask(builder.task_name(self.name), self.component_spec, key)
        bind_arguments(
            task, self.component_spec.inputs, self.component_spec.outputs, kwargs, builder
        )
        builder.add_task(task)
        return task

    def __repr__(self) -> str:
        return f"PythonComponent({self.name!r})"


@overload
def component(func: Callable[..., Any], /) -> PythonComponent: ...
@overload
def component(
    func: None = None,
    /,
    *,
    base_image: str | None = None,
    target_image: str | None = None,
    packages_to_install: list[str] | None = None,
    pip_index_urls: list[str] | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], PythonComponent]: ...


def component(
    func: Callable[..., Any] | None = None,
    /,
    *,
    base_image: str | None = None,
    target_image: str | None = None,
    packages_to_install: list[str] | None = None,
    pip_index_urls: list[str] | None = None,
    **options: Any,
) -> PythonComponent | Callable[[Callable[..., Any]], PythonComponent]:
    """Turn a typed function into a component, with or without arguments.

    ``base_image``, ``packages_to_install`` and any other Kubeflow build option are recorded
    in the compiled spec (steps run in the current Python environment: install what they
    import there).
    """
    recorded: dict[str, Any] = {
        k: v
        for k, v in {
            "base_image": base_image,
            "target_image": target_image,
            "packages_to_install": list(packages_to_install or []) or None,
            "pip_index_urls": list(pip_index_urls or []) or None,
            **options,
        }.items()
        if v is not None
    }

    # Kubeflow's additional_funcs: helper functions defined beside the component's code.
    helpers = recorded.pop("additional_funcs", None) or []
    if not isinstance(helpers, list | tuple) or not all(callable(h) for h in helpers):
        raise InvalidArgument("additional_funcs takes a list of functions",
                              field="additional_funcs")  # fmt: skip
    if helpers:
        recorded["additional_funcs"] = [h.__name__ for h in helpers]

    def wrap(f: Callable[..., Any]) -> PythonComponent:
        return PythonComponent(f, recorded, helpers=list(helpers))

    return wrap(func) if func is not None else wrap

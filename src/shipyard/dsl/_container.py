"""Container components: ``@dsl.container_component`` returning a ``dsl.ContainerSpec``,
as Kubeflow's. The function runs once, when it is decorated, with placeholders for its
inputs and outputs; the image, command and arguments it returns are the component. Its
steps run through docker or podman (``pipelines._containers``); a run that has container
components is refused up front where neither is available.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from shipyard.dsl._builder import kfp_name
from shipyard.dsl._component import PythonComponent, parameter_interface, type_hints
from shipyard.errors import InvalidArgument
from shipyard.pipelines.spec import ComponentSpec, ContainerDef, InputDef, OutputDef


class ContainerSpec:
    """What a container component runs: ``image``, ``command`` (its entrypoint, or the
    image's when empty) and ``args``."""

    def __init__(
        self, image: str, command: Sequence[Any] | None = None, args: Sequence[Any] | None = None
    ) -> None:
        self.image = image
        self.command = list(command or [])
        self.args = list(args or [])


class IfPresentPlaceholder:
    """``then`` when input ``input_name`` was given a value, ``else_`` otherwise."""

    def __init__(self, input_name: str, then: Any, else_: Any = None) -> None:
        self.input_name = input_name
        self.then = then if isinstance(then, list) else [then]
        self.else_ = [] if else_ is None else else_ if isinstance(else_, list) else [else_]


class ConcatPlaceholder:
    """The items (strings and placeholders) joined into one argument."""

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = list(items)


def _param(name: str) -> str:
    return "{{$.inputs.parameters['%s']}}" % name  # noqa: UP031 - braces everywhere


class _ArtifactPlaceholder:
    """An artifact while the component is defined: its ``path``, ``uri`` and ``metadata``
    are placeholders for the task's."""

    def __init__(self, side: str, name: str) -> None:
        self._where = f"{{{{$.{side}.artifacts['{name}']"
        self.name = name

    @property
    def path(self) -> str:
        return self._where + ".path}}"

    @property
    def uri(self) -> str:
        return self._where + ".uri}}"

    @property
    def metadata(self) -> str:
        return self._where + ".metadata}}"


def _placeholder_for(name: str, definition: InputDef | OutputDef, side: str) -> Any:
    if definition.kind == "parameter":
        if side == "inputs":
            return _param(name)
        return "{{$.outputs.parameters['%s'].output_file}}" % name  # noqa: UP031
    artifact = _ArtifactPlaceholder(side, name)
    return artifact.path if definition.path else artifact


def _element(value: Any, where: str, inputs: dict[str, InputDef]) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, ConcatPlaceholder):
        return {"Concat": [_element(v, where, inputs) for v in value.items]}
    if isinstance(value, IfPresentPlaceholder):
        if value.input_name not in inputs:
            raise InvalidArgument(
                f"{where}: IfPresentPlaceholder names unknown input {value.input_name!r}",
                field=where,
            )
        return {"IfPresent": {
            "InputName": value.input_name,
            "Then": [_element(v, where, inputs) for v in value.then],
            "Else": [_element(v, where, inputs) for v in value.else_],
        }}  # fmt: skip
    if isinstance(value, _ArtifactPlaceholder):
        raise InvalidArgument(
            f"{where}: pass the artifact's .path (or .uri) to the container, not {value.name!r}",
            field=where,
        )
    raise InvalidArgument(f"{where}: cannot pass {value!r} to a container", field=where)


def container_component_spec(func: Callable[..., Any]) -> ComponentSpec:
    name = kfp_name(func.__name__)
    hints = type_hints(func)
    returned = hints.get("return")
    if returned not in (None, type(None), ContainerSpec):
        raise InvalidArgument(
            f"container component {name!r} returns a dsl.ContainerSpec (annotate it so, or "
            "not at all); its outputs are Output[...] or OutputPath(...) parameters",
            field=name,
        )
    inputs, outputs = parameter_interface(func, name, hints)
    for pname, definition in inputs.items():
        if definition.path and definition.kind == "parameter":
            raise InvalidArgument(
                f"container component {name!r} parameter {pname!r}: InputPath takes an "
                "artifact type here; pass parameters by value",
                field=pname,
            )
        if definition.is_list:
            raise InvalidArgument(
                f"container component {name!r} parameter {pname!r}: lists of artifacts "
                "cannot be passed to a container",
                field=pname,
            )
    arguments = {n: _placeholder_for(n, d, "inputs") for n, d in inputs.items()}
    arguments.update({n: _placeholder_for(n, d, "outputs") for n, d in outputs.items()})
    spec = func(**arguments)
    if not isinstance(spec, ContainerSpec):
        raise InvalidArgument(
            f"container component {name!r} must return dsl.ContainerSpec(image=..., "
            f"command=[...], args=[...]), got {spec!r}",
            field=name,
        )
    if not isinstance(spec.image, str) or not spec.image.strip():
        raise InvalidArgument(f"container component {name!r} needs an image", field="image")
    container = ContainerDef(
        image=spec.image,
        command=[_element(v, f"{name}.command", inputs) for v in spec.command],
        args=[_element(v, f"{name}.args", inputs) for v in spec.args],
    )
    return ComponentSpec(
        name=name,
        function=func.__name__,
        source="",
        inputs=inputs,
        outputs=outputs,
        description=inspect.getdoc(func) or "",
        container=container,
    )


class ContainerComponent(PythonComponent):
    """A container component: call it inside a ``@dsl.pipeline`` to add a task."""

    def _spec(self, func: Callable[..., Any], options: dict[str, Any]) -> ComponentSpec:
        return container_component_spec(func)

    def _function(self) -> Callable[..., Any] | None:
        return None

    def __repr__(self) -> str:
        return f"ContainerComponent({self.name!r})"


def container_component(func: Callable[..., Any]) -> ContainerComponent:
    """Turn a function returning a ``dsl.ContainerSpec`` into a component."""
    return ContainerComponent(func, {})


class YamlComponent(PythonComponent):
    """A component loaded from a component YAML file (``shipyard.components``)."""

    def __init__(self, spec: ComponentSpec) -> None:
        # Nothing to read from a function: the spec is the component.
        self.python_func = None  # type: ignore[assignment]
        self.component_spec = spec
        self.name = spec.name

    def _function(self) -> Callable[..., Any] | None:
        return None

    def __repr__(self) -> str:
        return f"YamlComponent({self.name!r})"


__all__ = [
    "ConcatPlaceholder",
    "ContainerComponent",
    "ContainerSpec",
    "IfPresentPlaceholder",
    "YamlComponent",
    "container_component",
]

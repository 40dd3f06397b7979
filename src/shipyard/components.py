"""Kubeflow's component loaders: ``from shipyard import components`` in place of
``from kfp import components``::

    echo = components.load_component_from_file("echo/component.yaml")

reads a component YAML file: one kfp's compiler wrote for a component, or one in Kubeflow's
component format (``name``, ``inputs``,
``outputs`` and ``implementation.container`` with ``inputValue``, ``inputPath``,
``outputPath``, ``inputUri``, ``outputUri``, ``concat`` and ``if``/``isPresent``
placeholders). The component is a container component: its steps run with docker or
podman, and a run that uses it is refused up front where neither is available. Input
names become Python names as on Kubeflow (``Input data`` is ``input_data``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidArgument

if TYPE_CHECKING:
    from shipyard.dsl._container import YamlComponent
    from shipyard.pipelines.spec import InputDef, OutputDef

__all__ = ["load_component_from_file", "load_component_from_text"]

_PARAM_TYPES = {
    "string": "STRING", "str": "STRING", "text": "STRING", "integer": "NUMBER_INTEGER",
    "int": "NUMBER_INTEGER", "float": "NUMBER_DOUBLE", "double": "NUMBER_DOUBLE",
    "boolean": "BOOLEAN", "bool": "BOOLEAN", "jsonobject": "STRUCT", "dict": "STRUCT",
    "jsonarray": "LIST", "list": "LIST",
}  # fmt: skip


def load_component_from_file(path: str | os.PathLike[str]) -> YamlComponent:
    """The component described by the YAML file at ``path``."""
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read component file {target}: {exc.strerror}",
                              field="path") from None  # fmt: skip
    return load_component_from_text(text, origin=str(target))


def load_component_from_text(text: str, origin: str = "component text") -> YamlComponent:
    """The component described by ``text`` (component YAML)."""
    import yaml

    from shipyard.dsl._container import YamlComponent

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"{origin} is not valid YAML: {exc}", field="text") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{origin} is not a component description", field="text")
    if "pipelineInfo" in doc and "root" in doc:
        return YamlComponent(_compiled_component(doc, origin))
    return YamlComponent(_component(doc, origin))


def _compiled_component(doc: dict[str, Any], origin: str) -> Any:
    """The component of a spec kfp's compiler wrote for one component (``Compiler().compile``
    of a ``@dsl.component``): a Python component with its source, or a container."""
    from shipyard.pipelines._kfp import component_of

    tasks = ((doc.get("root") or {}).get("dag") or {}).get("tasks") or {}
    if len(tasks) != 1:
        raise InvalidArgument(
            f"{origin} is a compiled pipeline of {len(tasks)} tasks, not a component: run it "
            "with shipyard.run_pipeline",
            field="text",
        )
    return component_of(doc, next(iter(tasks.values())))


def python_name(name: str) -> str:
    """Kubeflow's Python name for an input or output: lower case, ``_`` between words."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "_"


def _param_type(type_: Any) -> str | None:
    if type_ is None:
        return None
    name = next(iter(type_)) if isinstance(type_, dict) and type_ else type_
    return _PARAM_TYPES.get(str(name).lower())


def _artifact_type(type_: Any) -> str:
    from shipyard.dsl._types import _ARTIFACT_NAMES

    name = next(iter(type_)) if isinstance(type_, dict) and type_ else type_
    return _ARTIFACT_NAMES.get(str(name or "").lower(), "system.Artifact")


def _default(value: Any, param_type: str, where: str) -> Any:
    """A default as Kubeflow's component files write them (text) as a typed value."""
    if value is None or not isinstance(value, str) or param_type == "STRING":
        return value
    from shipyard.pipelines import _values

    try:
        return _values.from_text(value, param_type)
    except _values.ParameterTypeError as exc:
        raise InvalidArgument(f"{where}: default {exc}", field=where) from None


class _Reader:
    """Reads one component document, noting how each input and output is used."""

    def __init__(self, doc: dict[str, Any], origin: str) -> None:
        self.origin = origin
        self.inputs = {self._name(i, "inputs"): i for i in doc.get("inputs") or []}
        self.outputs = {self._name(o, "outputs"): o for o in doc.get("outputs") or []}
        self.by_path: set[str] = set()

    def _name(self, entry: Any, section: str) -> str:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidArgument(f"{self.origin}: every entry of {section} needs a name",
                                  field=section)  # fmt: skip
        return str(entry["name"])

    def _known(self, name: Any, section: str, key: str) -> str:
        table = self.inputs if section == "inputs" else self.outputs
        if not isinstance(name, str) or name not in table:
            raise InvalidArgument(
                f"{self.origin}: {{{key}: {name}}} names no entry of {section} "
                f"(they are {sorted(table)})",
                field=f"implementation.container.{key}",
            )
        return python_name(name)

    def _output_is_parameter(self, name: str) -> bool:
        return _param_type(self.outputs[name].get("type")) is not None

    def element(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "inputValue":
                return "{{$.inputs.parameters['%s']}}" % self._known(arg, "inputs", key)  # noqa: UP031
            if key in ("inputPath", "inputUri"):
                name = self._known(arg, "inputs", key)
                self.by_path.add(arg)
                return "{{$.inputs.artifacts['%s'].%s}}" % (  # noqa: UP031
                    name, "path" if key == "inputPath" else "uri")
            if key in ("outputPath", "outputUri"):
                name = self._known(arg, "outputs", key)
                if key == "outputPath" and self._output_is_parameter(arg):
                    return "{{$.outputs.parameters['%s'].output_file}}" % name  # noqa: UP031
                return "{{$.outputs.artifacts['%s'].%s}}" % (  # noqa: UP031
                    name, "path" if key == "outputPath" else "uri")
            if key == "concat" and isinstance(arg, list):
                return {"Concat": [self.element(v) for v in arg]}
            if key == "if" and isinstance(arg, dict):
                cond = arg.get("cond")
                if not (isinstance(cond, dict) and "isPresent" in cond):
                    raise InvalidArgument(f"{self.origin}: only {{if: {{cond: {{isPresent: "
                                          "...}}}} conditions are supported", field="if")
                then, otherwise = arg.get("then") or [], arg.get("else") or []
                return {"IfPresent": {
                    "InputName": self._known(cond["isPresent"], "inputs", "isPresent"),
                    "Then": [self.element(v) for v in _as_list(then)],
                    "Else": [self.element(v) for v in _as_list(otherwise)],
                }}  # fmt: skip
        raise InvalidArgument(f"{self.origin}: unsupported command-line element {value!r}",
                              field="implementation.container")  # fmt: skip

    def input_defs(self) -> dict[str, InputDef]:
        from shipyard.pipelines.spec import InputDef

        found: dict[str, InputDef] = {}
        for name, entry in self.inputs.items():
            where = f"inputs.{name}"
            optional = bool(entry.get("optional")) or "default" in entry
            param = _param_type(entry.get("type"))
            if name in self.by_path or (param is None and entry.get("type") is not None):
                found[python_name(name)] = InputDef(
                    kind="artifact", type=_artifact_type(entry.get("type")), optional=optional)
                continue
            param = param or "STRING"
            found[python_name(name)] = InputDef(
                kind="parameter", type=param, optional=optional,
                default=_default(entry.get("default"), param, where),
            )  # fmt: skip
        return found

    def output_defs(self) -> dict[str, OutputDef]:
        from shipyard.pipelines.spec import OutputDef

        found: dict[str, OutputDef] = {}
        for name, entry in self.outputs.items():
            param = _param_type(entry.get("type"))
            if param is not None:
                found[python_name(name)] = OutputDef(kind="parameter", type=param, path=True)
            else:
                found[python_name(name)] = OutputDef(
                    kind="artifact", type=_artifact_type(entry.get("type")), path=True)
        return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _component(doc: dict[str, Any], origin: str) -> Any:
    from shipyard.dsl._builder import kfp_name
    from shipyard.pipelines.spec import ComponentSpec, ContainerDef

    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"{origin}: a component needs a name", field="name")
    container = (doc.get("implementation") or {}).get("container")
    if not isinstance(container, dict):
        raise InvalidArgument(
            f"{origin}: only container implementations (implementation.container) are "
            "supported",
            field="implementation",
        )
    image = container.get("image")
    if not isinstance(image, str) or not image.strip():
        raise InvalidArgument(f"{origin}: implementation.container needs an image",
                              field="implementation.container.image")  # fmt: skip
    reader = _Reader(doc, origin)
    command = [reader.element(v) for v in _as_list(container.get("command") or [])]
    args = [reader.element(v) for v in _as_list(container.get("args") or [])]
    return ComponentSpec(
        name=kfp_name(name),
        function=python_name(name),
        source="",
        inputs=reader.input_defs(),
        outputs=reader.output_defs(),
        description=str(doc.get("description") or ""),
        container=ContainerDef(image=image, command=command, args=args),
    )

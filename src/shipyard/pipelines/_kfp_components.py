"""Components of a pipeline spec written by kfp's compiler, as Shipyard's ``ComponentSpec``
(``_kfp`` reads the rest): a lightweight Python component from the source and function its
container command carries, with its interface from the component's input and output
definitions (and ``InputPath``/``OutputPath``, ``Optional`` returns and a NamedTuple's field
order from the source, read without running it); an importer; or a container component,
whose placeholders are already those Shipyard uses. Google Cloud pipeline components, Python
components built into their own image and the whole executor input (``{{$}}``) are refused.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from shipyard.dsl._importer import importer_spec
from shipyard.errors import InvalidArgument
from shipyard.pipelines import _values
from shipyard.pipelines.spec import ComponentSpec, ContainerDef, InputDef, OutputDef

_PYTHON_EXECUTOR = "kfp.dsl.executor_main"


def refuse(what: str, field: str = "spec") -> InvalidArgument:
    """The error for a feature of kfp's spec that Shipyard does not run, naming it."""
    return InvalidArgument(f"this kfp pipeline uses {what}, which Shipyard does not run",
                           field=field)  # fmt: skip


def kfp_number(value: Any) -> Any:
    """A value of kfp's spec as its steps see it: every number there is a double, and an
    integral one reaches a step (through JSON) as an int."""
    return _values.json_number(value)


def input_defs(definitions: dict[str, Any]) -> dict[str, InputDef]:
    found: dict[str, InputDef] = {}
    for name, spec in (definitions.get("parameters") or {}).items():
        type_ = spec.get("parameterType", "STRING")
        default = kfp_number(spec.get("defaultValue"))
        found[name] = InputDef(
            kind="parameter", type=type_,
            optional=bool(spec.get("isOptional")) or "defaultValue" in spec, default=default,
        )  # fmt: skip
    for name, spec in (definitions.get("artifacts") or {}).items():
        found[name] = InputDef(
            kind="artifact", type=_schema_title(spec), is_list=bool(spec.get("isArtifactList")),
            optional=bool(spec.get("isOptional")),
        )  # fmt: skip
    return found


def _schema_title(spec: dict[str, Any]) -> str:
    return str((spec.get("artifactType") or {}).get("schemaTitle") or "system.Artifact")


def importer_component(importer: dict[str, Any], component: dict[str, Any]) -> ComponentSpec:
    from shipyard.dsl._artifacts import ARTIFACT_TYPES, Artifact

    title = (importer.get("typeSchema") or {}).get("schemaTitle", "system.Artifact")
    metadata = kfp_number(importer.get("metadata") or {})
    if "{{$" in json.dumps(metadata):
        raise refuse("importer metadata taken from pipeline values")
    spec = importer_spec(ARTIFACT_TYPES.get(title, Artifact))
    spec = spec.model_copy(update={"outputs": {
        "artifact": OutputDef(kind="artifact", type=title)}})  # fmt: skip
    inputs = dict(spec.inputs)
    inputs["metadata"] = inputs["metadata"].model_copy(update={"default": metadata})
    return spec.model_copy(update={"inputs": inputs})


def container_component(
    name: str, component: dict[str, Any], container: dict[str, Any]
) -> ComponentSpec:
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    image = str(container.get("image", ""))
    if "google-cloud-pipeline-components" in image or any(
        "google_cloud_pipeline_components" in part for part in command + args
    ):
        raise refuse(f"a Google Cloud pipeline component (component {name!r}), which calls "
                     "Vertex AI and other GCP services", field=f"components.{name}")
    if any(_PYTHON_EXECUTOR in part for part in command):
        return _python_component(name, component, container, command, args)
    if any("{{$}}" in part for part in command + args):
        raise refuse(f"the executor input placeholder {{{{$}}}} (component {name!r})")
    inputs = input_defs(component.get("inputDefinitions") or {})
    outputs: dict[str, OutputDef] = {}
    out_defs = component.get("outputDefinitions") or {}
    for out, spec in (out_defs.get("parameters") or {}).items():
        outputs[out] = OutputDef(kind="parameter", type=spec.get("parameterType", "STRING"),
                                 path=True)  # fmt: skip
    for out, spec in (out_defs.get("artifacts") or {}).items():
        outputs[out] = OutputDef(kind="artifact", type=_schema_title(spec), path=True)
    return ComponentSpec(
        name=name, function=name.replace("-", "_"), source="", inputs=inputs, outputs=outputs,
        container=ContainerDef(image=str(container.get("image", "")),
                               command=[_structure(c) for c in command],
                               args=[_structure(a) for a in args]),
    )  # fmt: skip


def _structure(element: str) -> Any:
    """Kubeflow writes Concat and IfPresent placeholders as JSON text."""
    if element.startswith(('{"Concat"', '{"IfPresent"')):
        try:
            return json.loads(element)
        except ValueError:
            return element
    return element


def _python_component(name: str, component: dict[str, Any], container: dict[str, Any],
                      command: list[str], args: list[str]) -> ComponentSpec:  # fmt: skip
    if "--function_to_execute" not in args:
        raise refuse(f"a Python component built into its own image (component {name!r})")
    function = args[args.index("--function_to_execute") + 1]
    source = next((c for c in reversed(command) if f"def {function}(" in c), None)
    if source is None:
        raise refuse(f"a Python component without its source (component {name!r})")
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        raise InvalidArgument(f"the source of component {name!r} does not parse: {exc}",
                              field=f"deploymentSpec.{name}") from None  # fmt: skip
    node = next((n for n in module.body
                 if isinstance(n, ast.FunctionDef) and n.name == function), None)  # fmt: skip
    if node is None:
        raise refuse(f"a component whose source defines no {function!r}")
    annotations = {a.arg: a.annotation for a in [*node.args.args, *node.args.kwonlyargs]}
    inputs = input_defs(component.get("inputDefinitions") or {})
    for arg, definition in list(inputs.items()):
        if _marker(annotations.get(arg)) == "InputPath":
            inputs[arg] = definition.model_copy(update={"path": True})
    outputs: dict[str, OutputDef] = {}
    out_defs = component.get("outputDefinitions") or {}
    returned: list[str] = []
    for kind, section in (("parameter", "parameters"), ("artifact", "artifacts")):
        for out, spec in (out_defs.get(section) or {}).items():
            type_ = spec.get("parameterType", "STRING") if kind == "parameter" else \
                _schema_title(spec)  # fmt: skip
            if out in annotations:
                path = _marker(annotations[out]) == "OutputPath"
                outputs[out] = OutputDef(kind=kind, type=type_, path=path)  # type: ignore[arg-type]
            else:
                returned.append(out)
                outputs[out] = OutputDef(kind=kind, type=type_,  # type: ignore[arg-type]
                                         optional=_is_optional(node.returns))  # fmt: skip
    fields = _namedtuple_fields(node.returns, module)
    if not returned:
        returns, names = "none", []
    elif fields is None and returned == ["Output"]:
        returns, names = "single", ["Output"]
    else:
        names = [f for f in fields or returned if f in returned]
        returns = "namedtuple"
    packages = _packages(command)
    return ComponentSpec(
        name=name, function=function, source=source, inputs=inputs, outputs=outputs,
        returns=returns, return_names=names,  # type: ignore[arg-type]
        options={k: v for k, v in {"base_image": container.get("image"),
                                   "packages_to_install": packages}.items() if v},
        filename=f"<kfp component {name}>",
    )  # fmt: skip


def _marker(annotation: ast.expr | None) -> str | None:
    if isinstance(annotation, ast.Call):
        func = annotation.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        return name if name in ("InputPath", "OutputPath") else None
    return None


def _is_optional(annotation: ast.expr | None) -> bool:
    if isinstance(annotation, ast.Subscript):
        base = annotation.value
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        return name == "Optional"
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return any(isinstance(s, ast.Constant) and s.value is None
                   for s in (annotation.left, annotation.right))  # fmt: skip
    return False


def _namedtuple_fields(annotation: ast.expr | None, module: ast.Module) -> list[str] | None:
    """A NamedTuple return's field names in order, read from the source."""
    if isinstance(annotation, ast.Call) and len(annotation.args) >= 2:
        items = annotation.args[1]
        if isinstance(items, ast.List | ast.Tuple):
            return [str(e.elts[0].value) for e in items.elts if isinstance(e, ast.Tuple)
                    and isinstance(e.elts[0], ast.Constant)]  # fmt: skip
    if isinstance(annotation, ast.Name):
        for node in module.body:
            if isinstance(node, ast.ClassDef) and node.name == annotation.id:
                return [s.target.id for s in node.body
                        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
    return None


def _packages(command: list[str]) -> list[str]:
    for part in command:
        match = re.search(r"pip install [^\n]*?--no-warn-script-location (.*?) &&", part)
        if match:
            return re.findall(r"'([^']+)'", match.group(1))
    return []

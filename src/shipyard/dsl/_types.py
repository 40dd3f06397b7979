"""Reading component signatures: which hints are parameters, which are artifacts, and
whether a value or an upstream output fits an input."""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from typing import Any

from shipyard.dsl._artifacts import (
    ARTIFACT_TYPES,
    Artifact,
    InputPath,
    _InputMarker,
    _OutputMarker,
    _PathMarker,
)

_PARAM_TYPES: dict[Any, str] = {
    str: "STRING",
    int: "NUMBER_INTEGER",
    float: "NUMBER_DOUBLE",
    bool: "BOOLEAN",
    list: "LIST",
    dict: "STRUCT",
    Any: "ANY",
}
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (float, int),
    "BOOLEAN": (bool,),
    "LIST": (list, tuple),
    "STRUCT": (dict,),
}


@dataclasses.dataclass
class PipelineTaskFinalStatus:
    """What an exit handler task receives about the tasks it guarded (KFP's shape)."""

    state: str
    pipeline_job_resource_name: str
    pipeline_task_name: str
    error_code: int | None
    error_message: str | None


@dataclasses.dataclass(frozen=True)
class Hint:
    """One parameter's meaning: ``direction`` is ``in`` or ``out``, ``kind`` is ``parameter``
    or ``artifact``, ``type`` a ``ParamType`` or an artifact schema title."""

    direction: str
    kind: str
    type: str
    is_list: bool = False
    optional: bool = False
    path: bool = False


# Type names InputPath/OutputPath take, as Kubeflow spells them (case does not matter).
_PARAM_NAMES = {
    "integer": "NUMBER_INTEGER", "int": "NUMBER_INTEGER", "double": "NUMBER_DOUBLE",
    "float": "NUMBER_DOUBLE", "string": "STRING", "str": "STRING", "text": "STRING",
    "bool": "BOOLEAN", "boolean": "BOOLEAN", "dict": "STRUCT", "list": "LIST",
    "jsonobject": "STRUCT", "jsonarray": "LIST",
}  # fmt: skip
_ARTIFACT_NAMES = {cls.__name__.lower(): title for title, cls in ARTIFACT_TYPES.items()}


def _path_hint(marker: _PathMarker) -> Hint:
    """What ``InputPath(t)`` / ``OutputPath(t)`` declares (see ``_PathMarker``)."""
    direction = "in" if isinstance(marker, InputPath) else "out"
    tp = marker.type
    if isinstance(tp, type) and issubclass(tp, Artifact):
        return Hint(direction, "artifact", tp.schema_title, path=True)
    if isinstance(tp, str):
        name = tp.lower()
        if name in _ARTIFACT_NAMES:
            return Hint(direction, "artifact", _ARTIFACT_NAMES[name], path=True)
        if name in _PARAM_NAMES:
            return Hint(direction, "parameter", _PARAM_NAMES[name], path=True)
    elif tp is not None:
        param = _param_type(tp)
        if param is not None and param[0] not in ("ANY", "TASK_FINAL_STATUS"):
            return Hint(direction, "parameter", param[0], path=True)
    # Kubeflow's rule for any other type: a generic artifact.
    return Hint(direction, "artifact", Artifact.schema_title, path=True)


class HintError(TypeError):
    pass


def _artifact_title(tp: Any) -> tuple[str, bool] | None:
    origin = typing.get_origin(tp)
    if origin in (list, typing.List):  # noqa: UP006 - both spellings occur in user code
        (inner,) = typing.get_args(tp) or (Any,)
        found = _artifact_title(inner)
        return (found[0], True) if found and not found[1] else None
    if isinstance(tp, type) and issubclass(tp, Artifact):
        return tp.schema_title, False
    return None


def _param_type(tp: Any) -> tuple[str, bool] | None:
    """The parameter type of a hint and whether it is optional."""
    if tp is PipelineTaskFinalStatus:
        return "TASK_FINAL_STATUS", False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            inner = _param_type(args[0])
            return (inner[0], True) if inner else None
        return "ANY", True
    base = origin if origin is not None else tp
    if base in _PARAM_TYPES:
        return _PARAM_TYPES[base], False
    if base in (typing.List, collections.abc.Sequence):  # noqa: UP006
        return "LIST", False
    if base in (typing.Dict, collections.abc.Mapping):  # noqa: UP006
        return "STRUCT", False
    return None


def read_hint(tp: Any) -> Hint:
    """Classify a parameter's type hint; raise ``HintError`` for unsupported ones."""
    if isinstance(tp, _PathMarker):
        return _path_hint(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and typing.get_origin(args[0]) is typing.Annotated:
            # Optional[Input[Artifact]], as kfp allows: an optional artifact input.
            return dataclasses.replace(read_hint(args[0]), optional=True)
    if typing.get_origin(tp) is typing.Annotated:
        inner, *marks = typing.get_args(tp)
        direction = "in" if _InputMarker in marks else "out" if _OutputMarker in marks else ""
        found = _artifact_title(inner)
        if direction and found:
            return Hint(direction, "artifact", found[0], is_list=found[1])
        if direction:
            raise HintError(f"Input[...]/Output[...] takes an artifact type, got {inner!r}")
        return read_hint(inner)
    found = _artifact_title(tp)
    if found:  # a bare artifact type is an input, as in KFP
        return Hint("in", "artifact", found[0], is_list=found[1])
    param = _param_type(tp)
    if param is None:
        raise HintError(
            f"unsupported type {tp!r}: use str, int, float, bool, list, dict, "
            "Input[...] or Output[...] of an artifact type"
        )
    return Hint("in", "parameter", param[0], optional=param[1])


def _return_hint(tp: Any) -> Hint:
    """A returned value: a parameter, or an artifact (``-> Dataset``: the step returns an
    artifact object, or data written to the artifact's file as text)."""
    if isinstance(tp, _PathMarker) or typing.get_origin(tp) is typing.Annotated:
        raise HintError(f"{tp!r} describes a parameter, not a return value")
    hint = read_hint(tp)
    if hint.is_list:
        raise HintError(
            "a component cannot return a list of artifacts (neither can Kubeflow's); "
            "return one artifact per output"
        )
    return Hint("out", hint.kind, hint.type, optional=hint.optional)


def return_outputs(tp: Any) -> tuple[str, dict[str, Hint]]:
    """Return kind (``none``/``single``/``namedtuple``) and the outputs it declares."""
    if tp is None or tp is type(None):
        return "none", {}
    fields = getattr(tp, "_fields", None)
    if isinstance(tp, type) and issubclass(tp, tuple) and fields is not None:
        hints = typing.get_type_hints(tp)
        return "namedtuple", {name: _return_hint(hints.get(name, Any)) for name in fields}
    return "single", {"Output": _return_hint(tp)}


def value_fits(value: Any, param_type: str) -> bool:
    """Whether a constant can be passed to a parameter of ``param_type``."""
    if param_type in ("ANY", "TASK_FINAL_STATUS"):
        return True
    if param_type != "BOOLEAN" and isinstance(value, bool):
        return False
    return isinstance(value, PYTHON_TYPES[param_type])


def types_fit(producer: tuple[str, str], consumer: tuple[str, str]) -> bool:
    """Whether an upstream output of (kind, type) may feed an input of (kind, type)."""
    if producer[0] != consumer[0]:
        return False
    if producer[0] == "artifact":
        generic = "system.Artifact"
        return generic in (producer[1], consumer[1]) or producer[1] == consumer[1]
    if "ANY" in (producer[1], consumer[1]) or producer[1] == consumer[1]:
        return True
    return (producer[1], consumer[1]) == ("NUMBER_INTEGER", "NUMBER_DOUBLE")


def artifact_class(schema_title: str) -> type[Artifact]:
    return ARTIFACT_TYPES.get(schema_title, Artifact)

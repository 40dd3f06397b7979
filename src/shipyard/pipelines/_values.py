"""Parameter values crossing a step's boundary, under Kubeflow Pipelines v2's type rules.

A value reaching a parameter input (from a constant, a pipeline argument, a loop item or an
upstream output) is checked and converted as KFP's driver does:

- a ``STRING`` input takes any value; one that is not a string arrives as its text (a number
  in plain decimal, ``1.0`` as ``"1"``; ``true``/``false``; lists and dicts as compact JSON);
- ``NUMBER_INTEGER`` and ``NUMBER_DOUBLE`` take numbers, not booleans (every number is a
  double on KFP, so an integral ``2.0`` reaches an ``int`` input as ``2``);
- ``BOOLEAN`` takes booleans, ``LIST`` lists, ``STRUCT`` objects; anything else fails the
  task, naming the input, rather than reaching the function with the wrong type.

A returned value is checked as KFP's executor does: it must be an instance of the declared
type (an ``int`` is also a ``float``), and ``None`` only for an ``Optional[...]`` return. A
value an ``OutputPath`` parameter wrote to its file is read back from text as KFP's launcher
reads it (``int`` and ``float`` parsed, ``bool`` as Go's ``strconv.ParseBool``, lists and
dicts as JSON).

This module imports only the standard library: step processes use it.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any


class ParameterTypeError(ValueError):
    """A value that a parameter of the declared type does not take."""


_NAMES = {
    "STRING": "str",
    "NUMBER_INTEGER": "int",
    "NUMBER_DOUBLE": "float",
    "BOOLEAN": "bool",
    "LIST": "list",
    "STRUCT": "dict",
}
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "struct"
    return type(value).__name__


def number_text(value: float) -> str:
    """A number as KFP writes it into a string: plain decimal, no exponent, no ``.0``."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)).normalize(), "f")
    return "0" if text == "-0" else text


def json_number(value: Any) -> Any:
    """Integral floats as ints, as KFP's JSON (every number a double) writes them."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list | tuple):
        return [json_number(v) for v in value]
    if isinstance(value, dict):
        return {k: json_number(v) for k, v in value.items()}
    return value


def as_text(value: Any) -> str:
    """A value as a ``STRING`` input receives it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    return json.dumps(json_number(value), separators=(",", ":"), sort_keys=True)


def to_input(value: Any, param_type: str, *, optional: bool = False) -> Any:
    """``value`` as an input parameter of ``param_type`` receives it (module docstring);
    ``ParameterTypeError`` when that type does not take it."""
    if param_type in ("ANY", "TASK_FINAL_STATUS") or param_type not in _NAMES:
        return value
    if value is None:
        if optional:
            return None
        if param_type == "STRING":
            return ""
        raise ParameterTypeError(f"got null, expected {_NAMES[param_type]}")
    if param_type == "STRING":
        return as_text(value)
    kind = _kind(value)
    if param_type == "NUMBER_INTEGER" and kind == "number":
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if param_type == "NUMBER_DOUBLE" and kind == "number":
        return value
    if param_type == "BOOLEAN" and kind == "bool":
        return value
    if param_type == "LIST" and kind == "list":
        return list(value)
    if param_type == "STRUCT" and kind == "struct":
        return value
    raise ParameterTypeError(f"expected {_NAMES[param_type]}, got {kind} {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_RETURN_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
    "LIST": (list,),
    "STRUCT": (dict,),
}


def _numpy_plain(value: Any) -> Any:
    """A numpy scalar or array as the Python value it holds (without importing numpy)."""
    if type(value).__module__ == "numpy":
        for attr in ("tolist", "item"):
            convert = getattr(value, attr, None)
            if callable(convert):
                return convert()
    return value


def check_return(value: Any, param_type: str, *, optional: bool = False) -> Any:
    """A returned value for an output parameter of ``param_type`` (module docstring);
    ``ParameterTypeError`` when it is not of that type."""
    value = _numpy_plain(value)
    if value is None:
        if optional or param_type == "ANY":
            return None
        raise ParameterTypeError(f"returned None, want {_NAMES.get(param_type, param_type)}")
    wanted = _RETURN_TYPES.get(param_type)
    if wanted is not None and not isinstance(value, wanted):
        raise ParameterTypeError(
            f"returned {type(value).__name__} {_short(value)}, want {_NAMES[param_type]}"
        )
    return value


def from_text(text: str, param_type: str) -> Any:
    """What an ``OutputPath`` parameter of ``param_type`` wrote to its file, as a value."""
    if param_type in ("STRING", "ANY"):
        return text
    stripped = text.strip()
    if param_type in ("NUMBER_INTEGER", "NUMBER_DOUBLE"):
        parse = int if param_type == "NUMBER_INTEGER" else float
        try:
            # Python reads 1_000 as a number; KFP's launcher does not.
            return parse(stripped.replace("_", " "))
        except ValueError:
            raise ParameterTypeError(
                f"wrote {_short(text)}, which is not {_NAMES[param_type]}"
            ) from None
    if param_type == "BOOLEAN":
        if stripped in _TRUE:
            return True
        if stripped in _FALSE:
            return False
        raise ParameterTypeError(f"wrote {_short(text)}, which is not a bool (true or false)")
    try:
        value = json.loads(text)
    except ValueError:
        raise ParameterTypeError(f"wrote {_short(text)}, which is not JSON") from None
    if _kind(value) != ("list" if param_type == "LIST" else "struct"):
        raise ParameterTypeError(
            f"wrote {_short(text)}, which is not a JSON {_NAMES.get(param_type, param_type)}"
        )
    return value

"""Request instances to model input, and model output to JSON.

Store-free and pandas-free: the replica, local mode and the server's checks share it.
Instances are objects keyed by feature name or arrays in signature order (as Vertex and
KServe V1 accept them), all of one kind; the model's signature then checks types and
names the column and row of a bad value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.errors import InvalidArgument, ShipyardError, TooLarge

MAX_INSTANCES = 10_000


def signature_names(signature: Mapping[str, Any] | None) -> list[str] | None:
    """The input column names of a version's stored signature, in order (None: none)."""
    if not signature:
        return None
    columns = signature.get("columns") or signature.get("inputs") or []
    return [str(column["name"]) for column in columns if isinstance(column, Mapping)]


def to_records(instances: object, names: Sequence[str] | None) -> list[dict[str, Any]]:
    """``instances`` as one dict per row. ``InvalidArgument`` naming ``instances[i]`` (and
    the feature) for a malformed row, an unknown feature or a row of the wrong length."""
    if not isinstance(instances, list) or not instances:
        raise InvalidArgument("instances must be a non-empty list of rows", field="instances")
    if len(instances) > MAX_INSTANCES:
        raise TooLarge(f"{len(instances)} instances in one request; the limit is "
                       f"{MAX_INSTANCES}", field="instances")
    first = instances[0]
    if isinstance(first, Mapping):
        return _from_objects(instances, names)
    if isinstance(first, list):
        return _from_arrays(instances, names)
    raise InvalidArgument(
        "instances[0] must be an object keyed by feature name or an array of values in "
        f"signature order, got {type(first).__name__}", field="instances[0]")


def _from_objects(instances: list[Any], names: Sequence[str] | None) -> list[dict[str, Any]]:
    known = None if names is None else set(names)
    for row, instance in enumerate(instances):
        if not isinstance(instance, Mapping):
            raise InvalidArgument(f"instances[{row}] must be an object like instances[0], "
                                  f"got {type(instance).__name__}", field=f"instances[{row}]")
        if known is not None:
            unknown = [key for key in instance if key not in known]
            if unknown:
                raise InvalidArgument(
                    f"instances[{row}] has feature {str(unknown[0])[:128]!r}, which the model "
                    f"does not take: its features are {list(names or ())}",
                    field=f"instances[{row}].{str(unknown[0])[:128]}")
            missing = [name for name in names or () if name not in instance]
            if missing:
                raise InvalidArgument(f"instances[{row}] lacks feature {missing[0]!r}",
                                      field=f"instances[{row}].{missing[0]}")
    return [dict(instance) for instance in instances]


def _from_arrays(instances: list[Any], names: Sequence[str] | None) -> list[dict[str, Any]]:
    if names is None:
        raise InvalidArgument("this model has no signature, so its instances must be "
                              "objects keyed by feature name", field="instances[0]")
    for row, instance in enumerate(instances):
        if not isinstance(instance, list):
            raise InvalidArgument(f"instances[{row}] must be an array like instances[0], "
                                  f"got {type(instance).__name__}", field=f"instances[{row}]")
        if len(instance) != len(names):
            raise InvalidArgument(
                f"instances[{row}] has {len(instance)} values; the model takes "
                f"{len(names)}, in signature order {list(names)}", field=f"instances[{row}]")
    return [dict(zip(names, instance, strict=True)) for instance in instances]


def as_rows(instances: Any) -> Any:
    """What a caller passed as instances, as JSON values: a DataFrame as records, a numpy
    array as nested lists, numpy numbers as Python numbers. Anything else is left for
    ``to_records`` to judge."""
    to_dict = getattr(instances, "to_dict", None)
    if callable(to_dict) and hasattr(instances, "columns"):  # a pandas DataFrame
        instances = to_dict(orient="records")
    tolist = getattr(instances, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(instances, list | tuple):
        return [_plain(row) for row in instances]
    return instances


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str | bytes) else value


def predict(model: Any, instances: object, names: Sequence[str] | None) -> list[Any]:
    """``model.predict`` (a ``LoadedModel``: it checks the signature) on ``instances``, as
    JSON values. The model's own failure on an input that passed the signature is that
    input's fault as far as the caller can tell: ``InvalidArgument`` with what it said."""
    records = to_records(instances, names)
    try:
        output = model.predict(records)
    except ShipyardError:
        raise
    except Exception as exc:
        raise InvalidArgument(
            f"the model failed on these instances: {type(exc).__name__}: {exc}"[:1000],
            field="instances") from None
    return to_json(output)


def to_json(output: Any) -> list[Any]:
    """A model's output as a JSON list: numpy arrays and scalars as Python numbers,
    NaN and infinities as null."""
    values = output.tolist() if hasattr(output, "tolist") else list(output)
    return [_clean(value) for value in values]


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if hasattr(value, "item"):  # a numpy scalar inside an object array
        return _clean(value.item())
    return value

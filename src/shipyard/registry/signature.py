"""Input signatures: which columns a model takes, of which kind, and whether they may be null.

A ``Signature`` is inferred from an input example, stored in the model manifest as JSON and
used to check every prediction request before it reaches the model, so that bad input fails
with a message naming the column and the first offending row instead of a framework
traceback. All checks are vectorised pandas operations; no Python loop runs per row.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from shipyard.errors import InvalidArgument

Kind = Literal["integer", "float", "bool", "string", "categorical", "datetime"]
KINDS: tuple[Kind, ...] = get_args(Kind)
# Levels are recorded only for low-cardinality columns: a free-text or id column would make
# the manifest huge and its "unknown level" reports meaningless.
MAX_LEVELS = 100


@dataclass(frozen=True)
class ColumnSpec:
    """One input column. ``levels`` is ``None`` when unknown or over ``MAX_LEVELS``."""

    name: str
    kind: Kind
    nullable: bool = False
    levels: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "nullable": self.nullable,
            "levels": None if self.levels is None else list(self.levels),
        }


@dataclass(frozen=True)
class CheckedInput:
    """The validated frame, in signature order, and what was accepted but looks unusual."""

    frame: pd.DataFrame
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signature:
    """The ordered input columns of a model."""

    columns: tuple[ColumnSpec, ...]
    _by_name: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidArgument(f"duplicate column names in signature: {duplicates}")
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> ColumnSpec:
        return self._by_name[name]

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Rebuild a signature, rejecting anything malformed (manifests can be hand-edited)."""
        try:
            specs = []
            for col in data["columns"]:
                kind = col["kind"]
                if kind not in KINDS:
                    raise InvalidArgument(f"unknown column kind {kind!r}: use one of {KINDS}")
                levels = col.get("levels")
                specs.append(
                    ColumnSpec(
                        name=str(col["name"]),
                        kind=kind,
                        nullable=bool(col.get("nullable", False)),
                        levels=None if levels is None else tuple(str(v) for v in levels),
                    )
                )
        except (KeyError, TypeError) as exc:
            raise InvalidArgument(f"malformed signature: missing or bad {exc}") from None
        return cls(tuple(specs))

    @classmethod
    def from_json(cls, text: str) -> Signature:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"signature is not valid JSON: {exc}") from None

    def validate(self, data: Any) -> pd.DataFrame:
        """Return ``data`` as a DataFrame in signature order, or raise ``InvalidArgument``."""
        return self.check(data).frame

    def check(self, data: Any) -> CheckedInput:
        """Like ``validate``, also reporting unknown categorical levels and ignored columns.

        Accepts a DataFrame, a list of dicts (records), a dict of columns, or a 2-D list or
        array whose columns are in signature order. Coerces only where no value changes
        (integers to float, integral floats to integers, ISO strings to datetimes).
        """
        frame = to_frame(data, self.names)
        if not frame.columns.is_unique:
            dup = str(frame.columns[frame.columns.duplicated()][0])
            raise InvalidArgument(f"column {dup!r} appears more than once", field=dup)
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise InvalidArgument(
                f"missing column {missing[0]!r} (expected columns: {self.names})",
                field=missing[0],
            )
        notes: list[str] = []
        extra = [str(c) for c in frame.columns if c not in self._by_name]
        if extra:
            notes.append(f"ignored columns not in the signature: {extra}")
        out = {}
        for spec in self.columns:
            out[spec.name], note = _check_column(spec, frame[spec.name])
            if note:
                notes.append(note)
        return CheckedInput(pd.DataFrame(out, index=frame.index), tuple(notes))


def infer_signature(
    example: Any,
    *,
    nullable: bool | Iterable[str] | None = None,
    max_levels: int = MAX_LEVELS,
) -> Signature:
    """Infer a signature from an input example (a DataFrame or list of records).

    ``nullable=None`` marks a column nullable only if the example has a null in it, so pass
    an example with missing values (or ``nullable=True`` / a list of column names) when the
    model is meant to accept them.
    """
    frame = to_frame(example, None)
    bad = [c for c in frame.columns if not isinstance(c, str)]
    if bad:
        raise InvalidArgument(f"column names must be strings, got {bad[:5]}")
    specs = []
    for name in frame.columns:
        series = frame[name]
        if nullable is None:
            is_nullable = bool(series.isna().any())
        elif isinstance(nullable, bool):
            is_nullable = nullable
        else:
            # A single column name is a str, which is itself an iterable of characters.
            names = {nullable} if isinstance(nullable, str) else set(nullable)
            is_nullable = name in names
        kind = _infer_kind(name, series)
        levels = None
        if kind in ("string", "categorical"):
            values = series.cat.categories if kind == "categorical" else series.dropna().unique()
            if len(values) <= max_levels:
                levels = tuple(sorted(str(v) for v in values))
        specs.append(ColumnSpec(name, kind, is_nullable, levels))
    return Signature(tuple(specs))


def to_frame(data: Any, names: Sequence[str] | None) -> pd.DataFrame:
    """Turn records, a dict of columns or a 2-D list/array into a DataFrame."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame(dict(data))
    if isinstance(data, np.ndarray) or (
        isinstance(data, Sequence) and data and not isinstance(data[0], Mapping)
    ):
        array = np.asarray(data, dtype=object)
        if array.ndim != 2:
            raise InvalidArgument(f"expected a 2-D table of rows, got {array.ndim} dimension(s)")
        if names is not None and array.shape[1] != len(names):
            raise InvalidArgument(
                f"each row must have {len(names)} values in signature order {list(names)}, "
                f"got {array.shape[1]}"
            )
        # Per-column inference restores numeric dtypes the object array erased.
        return pd.DataFrame(array, columns=None if names is None else list(names)).infer_objects()
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        return pd.DataFrame.from_records(list(data))
    raise InvalidArgument(
        f"unsupported input type {type(data).__name__}: pass a pandas DataFrame, "
        "a list of dicts or a 2-D list"
    )


def _infer_kind(name: str, series: pd.Series[Any]) -> Kind:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    kinds: dict[str, Kind] = {
        "string": "string",
        "empty": "string",
        "boolean": "bool",
        "integer": "integer",
        "floating": "float",
        "mixed-integer-float": "float",
        "datetime": "datetime",
        "datetime64": "datetime",
    }
    if inferred not in kinds:
        raise InvalidArgument(
            f"column {name!r} holds {inferred} values; use one type per column "
            f"(supported kinds: {', '.join(KINDS)})",
            field=name,
        )
    return kinds[inferred]


def _fail(spec: ColumnSpec, bad: pd.Series[bool], series: pd.Series[Any], why: str) -> None:
    if bool(bad.any()):
        # Positional lookup: the index may hold duplicate labels, so series[label] could
        # return several values.
        position = int(np.flatnonzero(bad.to_numpy(dtype=bool))[0])
        row: Hashable = series.index[position]
        value = series.iloc[position]
        if isinstance(value, np.generic):
            value = value.item()
        got = "" if why.startswith("null") else f", got {value!r}"
        raise InvalidArgument(f"column {spec.name!r}, row {row}: {why}{got}", field=spec.name)


def _check_column(spec: ColumnSpec, series: pd.Series[Any]) -> tuple[pd.Series[Any], str]:
    nulls = series.isna()
    if not spec.nullable:
        _fail(spec, nulls, series, "null in a column that is not nullable")
    present = ~nulls
    kind = spec.kind
    if kind in ("integer", "float"):
        if pd.api.types.is_bool_dtype(series.dtype):
            _fail(spec, present, series, f"expected {kind}")
        if kind == "integer" and pd.api.types.is_integer_dtype(series.dtype):
            # Already integers: a round trip through float64 would lose digits past 2**53.
            return series.astype("int64"), ""
        if pd.api.types.is_numeric_dtype(series.dtype):
            numbers = series.astype("float64")
        else:
            # to_numeric would read True as 1: refuse booleans hidden in an object column.
            # infer_dtype is one C pass; the element-wise test runs only on mixed columns.
            inferred = pd.api.types.infer_dtype(series, skipna=True)
            if inferred == "boolean" or inferred.startswith("mixed"):
                is_bool = series.astype(object).map(lambda v: isinstance(v, bool | np.bool_))
                _fail(spec, present & is_bool.astype(bool), series, f"expected {kind}")
            numbers = pd.to_numeric(series, errors="coerce").astype("float64")
            _fail(spec, numbers.isna() & present, series, f"expected {kind}")
        if kind == "float":
            return numbers, ""
        integral = np.isfinite(numbers) & (numbers == np.floor(numbers))
        _fail(spec, present & ~integral, series, "expected integer")
        # Integers with nulls stay float64 (NaN), as pandas itself would load them.
        return (numbers if bool(nulls.any()) else numbers.astype("int64")), ""
    if kind == "bool":
        if pd.api.types.is_bool_dtype(series.dtype):
            return series, ""
        as_text = series.astype(str)
        _fail(spec, present & ~as_text.isin(["True", "False"]), series, "expected bool")
        return (as_text == "True").where(present, None), ""
    if kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            return series, ""
        stamps = pd.to_datetime(series, errors="coerce", format="ISO8601")
        _fail(spec, stamps.isna() & present, series, "expected an ISO 8601 datetime")
        return stamps, ""
    # string and categorical: every present value must be a str. infer_dtype is one C pass;
    # the element-wise type test runs only when it has already found something else.
    if not isinstance(series.dtype, pd.CategoricalDtype) and pd.api.types.infer_dtype(
        series, skipna=True
    ) not in ("string", "empty"):
        is_str = series.astype(object).map(lambda v: isinstance(v, str)).astype(bool)
        _fail(spec, present & ~is_str, series, "expected string")
    note = ""
    if spec.levels is not None:
        unknown = present & ~series.astype(object).isin(spec.levels)
        if bool(unknown.any()):
            values = sorted({str(v) for v in series[unknown].unique()[:5]})
            note = (
                f"column {spec.name!r}: unknown levels {values} (first at row "
                f"{unknown.idxmax()}); the model sees them as unseen categories"
            )
    if kind == "categorical":
        known = list(spec.levels or ())
        extra = sorted({str(v) for v in series[present].unique()} - set(known))
        # Keep the training category order so category codes mean what they meant in fit.
        series = pd.Series(
            pd.Categorical(series.astype(object), categories=known + extra), index=series.index
        )
    return series, note

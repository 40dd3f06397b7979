"""Input handling for performance estimation: columns out of tables, and the training support.

``columns`` reads named columns out of a pandas DataFrame, a pyarrow Table or RecordBatch, or
anything that exports the Arrow C stream (polars, DuckDB relations), without copying the
whole table. Every problem is an ``InvalidArgument`` naming the column.

``Support`` records where the reference data lives (per-feature quantile ranges, the known
categories, a Mahalanobis radius over the numeric features) so that an estimate made on rows
outside it can be flagged as unreliable: the loss and calibration models are only checked
on the reference, and trees extrapolate flat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import InvalidArgument

Floats = npt.NDArray[np.float64]

# Reference quantiles that bound each numeric feature's support: 0.1% of reference rows fall
# outside on each side, so in-distribution data has about 0.2% per feature out of range.
SUPPORT_QUANTILES = (0.001, 0.999)
# The Mahalanobis radius: the reference's own 99.9th percentile of squared distance.
RADIUS_QUANTILE = 0.999
# Categorical features keep at most this many reference categories (by frequency); rarer
# and unseen ones share one code and count as outside the support.
MAX_CATEGORIES = 1000


def _table(data: Any, field: str) -> Any:
    """``data`` as a pandas DataFrame or a pyarrow Table (no copy for either)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    if hasattr(data, "arrow") and callable(data.arrow):  # DuckDB relations before the C stream
        return data.arrow()
    raise InvalidArgument(
        f"{field} must be a pandas DataFrame or an Arrow table, not {type(data).__name__}",
        field=field)


class Columns:
    """Named columns of one table, read on demand."""

    def __init__(self, data: Any, field: str) -> None:
        self.field = field
        self.table = _table(data, field)
        if hasattr(self.table, "column_names"):  # Arrow
            self.names = [str(name) for name in self.table.column_names]
            self.rows = int(self.table.num_rows)
        else:
            self.names = [str(name) for name in self.table.columns]
            self.rows = len(self.table)

    def require(self, names: Sequence[str], role: str) -> None:
        missing = [name for name in names if name not in self.names]
        if missing:
            raise InvalidArgument(
                f"{self.field} has no column {missing[0]!r} (the {role}); "
                f"its columns are {self.names[:20]}",
                field=missing[0])

    def raw(self, name: str) -> npt.NDArray[Any]:
        import pandas as pd

        if isinstance(self.table, pd.DataFrame):
            series = self.table[name]
            if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object or (
                    pd.api.types.is_string_dtype(series.dtype)):
                return np.asarray(series.astype(object).to_numpy())
            if pd.api.types.is_bool_dtype(series.dtype):
                return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
            return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self.table.column(name)
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
        if pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind):
            return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False),
                              dtype=np.float64)
        raise InvalidArgument(
            f"column {name!r} of {self.field} has type {kind}; use numbers, booleans or "
            "strings", field=name)

    def numbers(self, name: str, role: str, *, allow_nan: bool = False) -> Floats:
        """A numeric column as float64; NaN (or null) only where ``allow_nan``."""
        values = self.raw(name)
        if values.dtype == object:
            raise InvalidArgument(
                f"column {name!r} of {self.field} (the {role}) must be numeric", field=name)
        if not allow_nan:
            bad = ~np.isfinite(values)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise InvalidArgument(
                    f"column {name!r} of {self.field} (the {role}) has {int(bad.sum())} "
                    f"missing or infinite values (first at row {first})", field=name)
        return values


def is_categorical(values: npt.NDArray[Any]) -> bool:
    return values.dtype == object


def encode_categories(values: npt.NDArray[Any], categories: list[str]) -> Floats:
    """Codes 0..k-1 for the known categories, NaN for missing and unseen ones."""
    text = np.asarray(values, dtype=object)
    keys = np.asarray(categories, dtype=object)
    order = np.argsort(keys)
    sorted_keys = keys[order].astype(str)
    as_text = np.where(_notnull(text), text, "\x00").astype(str)
    position = np.searchsorted(sorted_keys, as_text)
    position = np.clip(position, 0, max(len(sorted_keys) - 1, 0))
    found = (sorted_keys[position] == as_text) & _notnull(text) if len(sorted_keys) else (
        np.zeros(len(text), dtype=bool))
    codes = np.full(len(text), np.nan)
    codes[found] = order[position[found]]
    return codes


def _notnull(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    import pandas as pd

    return np.asarray(pd.notna(values), dtype=bool)


def top_categories(values: npt.NDArray[Any]) -> list[str]:
    import pandas as pd

    counts = pd.Series(values[_notnull(values)].astype(str)).value_counts(sort=True)
    return [str(key) for key in counts.index[:MAX_CATEGORIES]]


@dataclass(frozen=True)
class Support:
    """Where the reference data lives, to tell when current rows leave it.

    A row is outside when a numeric feature lies beyond the reference's 0.1%/99.9% quantiles,
    a categorical feature holds a category the reference did not have, or its squared
    Mahalanobis distance over the numeric features exceeds the reference's 99.9th
    percentile. ``baseline`` is the share of reference rows outside by that rule (about
    0.2% per numeric feature), the level an unshifted chunk shows.
    """

    low: list[float]
    high: list[float]
    numeric: list[int]
    categorical: list[int]
    mean: list[float]
    precision: list[list[float]]
    radius: float
    baseline: float

    @classmethod
    def fit(cls, matrix: Floats, categorical: list[int]) -> Support:
        numeric = [j for j in range(matrix.shape[1]) if j not in categorical]
        low: list[float] = []
        high: list[float] = []
        for j in range(matrix.shape[1]):
            finite = matrix[:, j][np.isfinite(matrix[:, j])]
            if j in categorical or finite.size == 0:
                low.append(float("nan"))
                high.append(float("nan"))
                continue
            lo, hi = np.quantile(finite, SUPPORT_QUANTILES)
            low.append(float(lo))
            high.append(float(hi))
        mean: list[float] = []
        precision: list[list[float]] = []
        radius = float("inf")
        dense = matrix[:, numeric] if numeric else np.empty((matrix.shape[0], 0))
        dense = dense[np.isfinite(dense).all(axis=1)]
        if numeric and dense.shape[0] > len(numeric) + 1:
            centre = dense.mean(axis=0)
            covariance = np.atleast_2d(np.cov(dense, rowvar=False))
            inverse = np.asarray(np.linalg.pinv(covariance), dtype=np.float64)
            distances = _squared_distance(dense, centre, inverse)
            radius = float(np.quantile(distances, RADIUS_QUANTILE))
            mean = [float(value) for value in centre]
            precision = [[float(value) for value in row] for row in inverse]
        support = cls(low, high, numeric, categorical, mean, precision, radius, 0.0)
        baseline = float(support.outside(matrix).mean()) if matrix.shape[0] else 0.0
        return cls(low, high, numeric, categorical, mean, precision, radius, baseline)

    def outside(self, matrix: Floats) -> npt.NDArray[np.bool_]:
        """Per row: does it lie outside the reference support?"""
        out = np.zeros(matrix.shape[0], dtype=bool)
        for j in range(matrix.shape[1]):
            column = matrix[:, j]
            if j in self.categorical:
                out |= np.isnan(column)
            elif np.isfinite(self.low[j]):
                with np.errstate(invalid="ignore"):
                    out |= (column < self.low[j]) | (column > self.high[j])
        if self.mean:
            dense = matrix[:, self.numeric]
            finite = np.isfinite(dense).all(axis=1)
            distances = np.zeros(matrix.shape[0])
            distances[finite] = _squared_distance(
                dense[finite], np.asarray(self.mean), np.asarray(self.precision))
            out |= distances > self.radius
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"low": _nan_to_none(self.low), "high": _nan_to_none(self.high),
                "numeric": self.numeric, "categorical": self.categorical, "mean": self.mean,
                "precision": self.precision,
                "radius": None if not np.isfinite(self.radius) else self.radius,
                "baseline": self.baseline}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Support:
        radius = data["radius"]
        return cls([float("nan") if v is None else float(v) for v in data["low"]],
                   [float("nan") if v is None else float(v) for v in data["high"]],
                   [int(v) for v in data["numeric"]], [int(v) for v in data["categorical"]],
                   [float(v) for v in data["mean"]],
                   [[float(v) for v in row] for row in data["precision"]],
                   float("inf") if radius is None else float(radius), float(data["baseline"]))


def _squared_distance(points: Floats, centre: Floats, precision: Floats) -> Floats:
    centred = points - centre
    return np.asarray(np.einsum("ij,jk,ik->i", centred, precision, centred), dtype=np.float64)


def _nan_to_none(values: list[float]) -> list[float | None]:
    return [None if not np.isfinite(value) else value for value in values]

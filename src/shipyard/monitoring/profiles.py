"""Profiles: per-feature statistics that merge.

``profile(data)`` reads a pandas DataFrame, an Arrow table or record batch reader, a Parquet
file or directory or a CSV file (streamed in record batches, so a dataset larger than memory
is profiled in bounded memory), a DuckDB relation (or anything with ``__arrow_c_stream__``).
Per feature it keeps: rows, missing values (null or NaN), infinities, the Arrow type, and either

- numeric: a KLL quantile sketch of the finite values, their sum, sum of squares, minimum
  and maximum; or
- categorical (strings, booleans, dictionaries, and any column named in
  ``categorical_features``): counts of the most frequent values and an ``other`` count;

and a HyperLogLog distinct count. ``a.merge(b)`` combines two profiles of disjoint rows
(minutes into hours, replica with replica, partition with partition, Ray task with Ray
task); the result does not depend on the order beyond the sketches' stated error.
``to_bytes()``/``from_bytes()`` store a profile compactly (JSON header and raw arrays, no
pickle); a feature takes at most 32 KB whatever the number of rows.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import InvalidArgument
from shipyard.monitoring._sketches import (
    ITEMS_BYTES,
    ITEMS_CAPACITY,
    FrequentItems,
    HyperLogLog,
    QuantileSketch,
    hash_floats,
    hash_strings,
)

__all__ = ["DataProfile", "FeatureProfile", "profile"]

Kind = Literal["numeric", "categorical"]
BATCH_ROWS = 65_536
_MAX_WORKERS = 8  # threads profiling columns side by side
_MAGIC = b"SYPROF1\n"


@dataclass
class FeatureProfile:
    """Mergeable statistics of one feature (column)."""

    name: str
    kind: Kind
    dtype: str
    rows: int = 0
    missing: int = 0  # null or NaN
    pos_inf: int = 0
    neg_inf: int = 0
    total: float = 0.0  # sum of the finite values (numeric)
    total_sq: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    sketch: QuantileSketch = field(default_factory=QuantileSketch)
    items: FrequentItems = field(default_factory=FrequentItems)
    hll: HyperLogLog = field(default_factory=HyperLogLog)

    @property
    def present(self) -> int:
        """Rows with a value (numeric: a finite value; categorical: not null)."""
        if self.kind == "numeric":
            return self.rows - self.missing - self.pos_inf - self.neg_inf
        return self.rows - self.missing

    @property
    def missing_rate(self) -> float:
        return self.missing / self.rows if self.rows else 0.0

    @property
    def mean(self) -> float:
        return self.total / self.present if self.present else float("nan")

    @property
    def std(self) -> float:
        if self.present < 2:
            return float("nan")
        variance = (self.total_sq - self.total**2 / self.present) / (self.present - 1)
        return float(np.sqrt(max(variance, 0.0)))

    @property
    def distinct(self) -> float:
        """Estimated number of distinct values (HyperLogLog, about 2% error); NaN when the
        profile was built without distinct counts (``profile(..., distinct=False)``)."""
        if not self.present:
            return 0.0
        return self.hll.estimate() if self.hll.registers.any() else float("nan")

    def shares(self) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float64], float]:
        """Categorical: the kept values, their shares of the present rows, other's share."""
        present = max(self.present, 1)
        return self.items.items, self.items.counts / present, self.items.other / present

    # -- building -----------------------------------------------------------------------

    def add_numeric(self, values: npt.NDArray[np.float64], missing: int,
                    distinct: bool = True) -> None:
        """Add a batch of float values (NaN counts as missing) and ``missing`` nulls;
        ``distinct=False`` leaves the distinct count out (a fifth of the work)."""
        self.rows += int(values.size) + missing
        self.missing += missing
        finite = values
        with np.errstate(invalid="ignore", over="ignore"):
            total = values.sum()
        if not np.isfinite(total):  # one pass when every value is finite
            nan = np.isnan(values)
            infinite = np.isinf(values)
            finite = values[~(nan | infinite)]
            self.missing += int(nan.sum())
            self.pos_inf += int(np.count_nonzero(values[infinite] > 0))
            self.neg_inf += int(np.count_nonzero(values[infinite] < 0))
        if finite.size:
            self.total += float(total) if finite is values else float(finite.sum())
            self.total_sq += float(np.dot(finite, finite))
            self.minimum = min(self.minimum, float(finite.min()))
            self.maximum = max(self.maximum, float(finite.max()))
            self.sketch.update(finite)
            if distinct:
                self.hll.add_hashes(hash_floats(finite))

    def add_counts(self, items: npt.NDArray[np.object_], counts: npt.NDArray[np.int64],
                   missing: int) -> None:
        """Add a batch's value counts (names as strings) and its missing rows."""
        self.rows += int(counts.sum()) + missing
        self.missing += missing
        if items.size:
            self.items.add_counts(items, counts)
            self.hll.add_hashes(hash_strings(items))

    # -- combining ----------------------------------------------------------------------

    def merge(self, other: FeatureProfile) -> FeatureProfile:
        """Statistics of both profiles' rows together."""
        if other.kind != self.kind:
            raise InvalidArgument(
                f"feature {self.name!r} is {self.kind} in one profile and {other.kind} in the "
                "other; profiles merge only when each feature has one kind", field="profile")
        dtype = self.dtype if self.dtype == other.dtype else f"{self.dtype}|{other.dtype}"
        return FeatureProfile(
            name=self.name, kind=self.kind, dtype=dtype, rows=self.rows + other.rows,
            missing=self.missing + other.missing, pos_inf=self.pos_inf + other.pos_inf,
            neg_inf=self.neg_inf + other.neg_inf, total=self.total + other.total,
            total_sq=self.total_sq + other.total_sq,
            minimum=min(self.minimum, other.minimum), maximum=max(self.maximum, other.maximum),
            sketch=self.sketch.merge(other.sketch), items=self.items.merge(other.items),
            hll=self.hll.merge(other.hll))

    def compacted(self) -> FeatureProfile:
        """The profile as stored: frequent items cut to their capacity and byte budget."""
        return replace(self, items=self.items.truncated(ITEMS_CAPACITY, ITEMS_BYTES))

    # -- storing ------------------------------------------------------------------------

    def _header(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "dtype": self.dtype, "rows": self.rows,
                "missing": self.missing, "pos_inf": self.pos_inf, "neg_inf": self.neg_inf,
                "total": self.total, "total_sq": self.total_sq,
                "minimum": _finite_or_none(self.minimum),
                "maximum": _finite_or_none(self.maximum),
                "sketch": {"n": self.sketch.n, "coin": self.sketch.coin, "k": self.sketch.k,
                           "levels": [int(level.size) for level in self.sketch.levels]},
                "items": [str(item) for item in self.items.items],
                "other": self.items.other}

    def _arrays(self) -> list[bytes]:
        return [np.concatenate(self.sketch.levels).astype("<f8").tobytes(),
                self.items.counts.astype("<i8").tobytes(), self.hll.registers.tobytes()]

    @classmethod
    def _from_parts(cls, header: Mapping[str, Any], arrays: Sequence[bytes]) -> FeatureProfile:
        values = np.frombuffer(arrays[0], dtype="<f8").astype(np.float64)
        bounds = np.cumsum([0, *header["sketch"]["levels"]])
        levels = [values[bounds[i]:bounds[i + 1]].copy() for i in range(len(bounds) - 1)]
        sketch = QuantileSketch(levels=levels or [np.empty(0)], n=int(header["sketch"]["n"]),
                                coin=int(header["sketch"]["coin"]), k=int(header["sketch"]["k"]))
        items = FrequentItems(np.array(header["items"], dtype=object),
                              np.frombuffer(arrays[1], dtype="<i8").astype(np.int64),
                              int(header["other"]))
        minimum, maximum = header["minimum"], header["maximum"]
        return cls(name=header["name"], kind=header["kind"], dtype=header["dtype"],
                   rows=int(header["rows"]), missing=int(header["missing"]),
                   pos_inf=int(header["pos_inf"]), neg_inf=int(header["neg_inf"]),
                   total=float(header["total"]), total_sq=float(header["total_sq"]),
                   minimum=float("inf") if minimum is None else float(minimum),
                   maximum=float("-inf") if maximum is None else float(maximum),
                   sketch=sketch, items=items,
                   hll=HyperLogLog(np.frombuffer(arrays[2], dtype=np.uint8).copy()))

    def to_bytes(self) -> bytes:
        """This feature alone, stored (what the 32 KB bound is about)."""
        return DataProfile({self.name: self}).to_bytes()


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


@dataclass
class DataProfile:
    """Profiles of every feature of a dataset, by feature name (in column order)."""

    features: dict[str, FeatureProfile] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return max((feature.rows for feature in self.features.values()), default=0)

    def __getitem__(self, name: str) -> FeatureProfile:
        return self.features[name]

    def merge(self, other: DataProfile) -> DataProfile:
        """A profile of both datasets' rows. A feature only one side has keeps its own
        statistics (its rows count only the side that had it)."""
        merged = dict(self.features)
        for name, feature in other.features.items():
            merged[name] = merged[name].merge(feature) if name in merged else feature
        return DataProfile(merged)

    def to_bytes(self) -> bytes:
        """Compact storage: a JSON header, then each feature's raw little-endian arrays."""
        headers, blobs = [], []
        for feature in self.features.values():
            stored = feature.compacted()
            arrays = stored._arrays()
            headers.append({**stored._header(), "arrays": [len(array) for array in arrays]})
            blobs.extend(arrays)
        header = json.dumps({"version": 1, "features": headers}, allow_nan=False).encode()
        return b"".join([_MAGIC, struct.pack("<Q", len(header)), header, *blobs])

    @classmethod
    def from_bytes(cls, data: bytes) -> DataProfile:
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 8:
            raise InvalidArgument("not a stored Shipyard profile", field="profile")
        (length,) = struct.unpack_from("<Q", data, len(_MAGIC))
        start = len(_MAGIC) + 8
        try:
            header = json.loads(data[start:start + length])
            offset = start + length
            features = {}
            for entry in header["features"]:
                arrays = []
                for size in entry["arrays"]:
                    arrays.append(data[offset:offset + size])
                    offset += size
                features[entry["name"]] = FeatureProfile._from_parts(entry, arrays)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise InvalidArgument(f"stored profile is damaged: {exc}", field="profile") from None
        return cls(features)

    def to_json(self) -> str:
        """The same content as JSON text (arrays as lists), for APIs and inspection."""
        features = []
        for feature in self.features.values():
            stored = feature.compacted()
            features.append({**stored._header(),
                             "sketch_values": [level.tolist() for level in stored.sketch.levels],
                             "counts": stored.items.counts.tolist(),
                             "hll": stored.hll.registers.tolist()})
        return json.dumps({"version": 1, "features": features}, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> DataProfile:
        try:
            doc = json.loads(text)
            features = {}
            for entry in doc["features"]:
                levels = entry["sketch_values"]
                entry = {**entry, "sketch": {**entry["sketch"],
                                             "levels": [len(level) for level in levels]}}
                arrays = [np.array([v for level in levels for v in level], "<f8").tobytes(),
                          np.array(entry["counts"], "<i8").tobytes(),
                          np.array(entry["hll"], np.uint8).tobytes()]
                features[entry["name"]] = FeatureProfile._from_parts(entry, arrays)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"profile JSON is damaged: {exc}", field="profile") from None
        return cls(features)


# -- reading data -------------------------------------------------------------------------

def _is_categorical_type(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
                or pa.types.is_string_view(dtype) or pa.types.is_boolean(dtype)
                or pa.types.is_dictionary(dtype) or pa.types.is_binary(dtype)
                or pa.types.is_large_binary(dtype))


def _is_numeric_type(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
                or pa.types.is_decimal(dtype) or pa.types.is_temporal(dtype))


def _kind(dtype: pa.DataType, name: str, categorical: set[str]) -> Kind:
    if name in categorical or _is_categorical_type(dtype) or not _is_numeric_type(dtype):
        return "categorical"
    return "numeric"


def _add_arrow_column(feature: FeatureProfile, column: pa.Array | pa.ChunkedArray,
                      distinct: bool = True) -> None:
    missing = int(column.null_count)
    if feature.kind == "numeric":
        if pa.types.is_temporal(column.type):
            column = pc.cast(column, pa.int64()) if not pa.types.is_date32(column.type) \
                else pc.cast(column, pa.int32())
        values = pc.cast(column, pa.float64(), safe=False).drop_null()  # int64 past 2^53: rounded
        array = values.to_numpy() if isinstance(values, pa.Array) else \
            values.to_numpy() if values.num_chunks else np.empty(0)
        feature.add_numeric(np.asarray(array, dtype=np.float64), missing, distinct)
        return
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    counted = pc.value_counts(column)
    values = counted.field("values")
    keep = pc.is_valid(values)
    items = np.asarray(pc.filter(values, keep).to_numpy(zero_copy_only=False), dtype=object)
    counts = np.asarray(pc.filter(counted.field("counts"), keep).to_numpy(), dtype=np.int64)
    feature.add_counts(items, counts, missing)


def _add_pandas_column(feature: FeatureProfile, series: pd.Series[Any],
                       distinct: bool = True) -> None:
    missing = int(series.isna().sum())
    if feature.kind == "numeric":
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        feature.add_numeric(values[~np.isnan(values)] if missing else values, missing,
                            distinct)
        return
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts.to_numpy() > 0]  # a categorical dtype lists unused categories
    items = counts.index.to_numpy()
    if items.dtype != object or pd.api.types.infer_dtype(items, skipna=False) != "string":
        items = _names(counts.index)
    feature.add_counts(np.asarray(items, dtype=object),
                       np.asarray(counts.to_numpy(), dtype=np.int64), missing)


def _names(index: pd.Index[Any]) -> npt.NDArray[np.object_]:
    """Values as the names Arrow's cast to string gives them (true, 1.5, 2024-01-01), so a
    profile of a DataFrame and one of the same data in Parquet name categories alike."""
    try:
        names = pc.cast(pa.array(index.to_numpy()), pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        return np.asarray(index.astype(str), dtype=object)  # mixed types: Python's str
    return np.asarray(names.to_numpy(zero_copy_only=False), dtype=object)


def _pandas_kind(series: pd.Series[Any], name: str, categorical: set[str]) -> tuple[Kind, str]:
    dtype = series.dtype
    if name in categorical:
        return "categorical", str(dtype)
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical", "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric", str(dtype)
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "numeric", str(dtype)
    return "categorical", str(dtype)


def _batches(data: Any, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    if isinstance(data, pa.Table):
        table = data.select(list(columns)) if columns is not None else data
        yield from table.to_batches(max_chunksize=BATCH_ROWS * 16)
    elif isinstance(data, pa.RecordBatch):
        yield data.select(list(columns)) if columns is not None else data
    elif isinstance(data, (str, os.PathLike)):
        yield from _parquet_batches(Path(data), columns)
    elif isinstance(data, pa.RecordBatchReader):
        for batch in data:
            yield batch.select(list(columns)) if columns is not None else batch
    elif hasattr(data, "__arrow_c_stream__"):  # DuckDB relations, Polars, ...
        if hasattr(data, "to_arrow_reader"):  # DuckDB 1.4+: batches of a bounded size
            reader = data.to_arrow_reader(BATCH_ROWS * 16)
        elif hasattr(data, "fetch_record_batch"):  # older DuckDB
            reader = data.fetch_record_batch(BATCH_ROWS * 16)
        else:
            reader = pa.RecordBatchReader.from_stream(data)
        yield from _batches(reader, columns)
    elif isinstance(data, Iterable):
        for batch in data:
            if not isinstance(batch, pa.RecordBatch):
                raise InvalidArgument(
                    f"cannot profile an iterable of {type(batch).__name__}: pass a pandas "
                    "DataFrame, a pyarrow Table, RecordBatchReader or iterable of "
                    "RecordBatches, a Parquet path, a DuckDB relation or a DataProfile",
                    field="data")
            yield batch.select(list(columns)) if columns is not None else batch
    else:
        raise InvalidArgument(
            f"cannot profile a {type(data).__name__}: pass a pandas DataFrame, a pyarrow Table "
            "or RecordBatchReader, a Parquet path, a DuckDB relation or a DataProfile",
            field="data")


def _parquet_batches(path: Path, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    """Record batches of a Parquet file or directory, or of a CSV file (``.csv``)."""
    import pyarrow.dataset as ds

    if not path.exists():
        raise InvalidArgument(f"no such file or directory: {path}", field="data")
    if path.suffix.lower() == ".csv":
        import pyarrow.csv as csv

        reader = csv.open_csv(path, read_options=csv.ReadOptions(block_size=1 << 24))
        for batch in reader:
            yield batch.select(list(columns)) if columns is not None else batch
        return
    dataset = ds.dataset(str(path), format="parquet")
    # Little read-ahead (Arrow's defaults keep 16 batches of 4 files in flight, hundreds of
    # MB for a wide table): memory stays a few batches whatever the dataset's size. No
    # pre-buffering either: it reads a row group's every column chunk at once (a local file
    # gains nothing from it; on a 50M-row dataset of 5M-row files it added about 90 MB).
    yield from dataset.to_batches(
        columns=list(columns) if columns is not None else None, batch_size=BATCH_ROWS * 4,
        batch_readahead=2, fragment_readahead=1,
        fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False))


def profile(data: Any, categorical_features: Iterable[str] | None = None,
            columns: Sequence[str] | None = None, *, distinct: bool = True) -> DataProfile:
    """Profile ``data`` (see the module docstring for what it accepts).

    ``categorical_features`` names columns to treat as categorical whatever their type
    (integer codes, say); strings and booleans are categorical anyway. ``columns`` limits
    the profile to those columns. ``distinct=False`` leaves out the numeric features'
    distinct counts (a fifth of the work; ``distinct`` is then NaN), for a profile made only
    to be compared, as ``detect_drift`` does; categorical features keep theirs.

    Columns are profiled side by side in threads (one per core, up to 8)."""
    if isinstance(data, DataProfile):
        return data
    categorical = set(categorical_features or ())
    if isinstance(data, pd.DataFrame):
        return _profile_pandas(data, categorical, columns, distinct)
    if isinstance(data, (str, os.PathLike)) and Path(data).exists() \
            and Path(data).suffix.lower() != ".csv":
        return _profile_parquet(Path(data), categorical, columns, distinct)
    result = DataProfile()
    schema_seen = False
    with _column_pool() as pool:
        for batch in _batches(data, columns):
            if not schema_seen:
                for name, dtype in zip(batch.schema.names, batch.schema.types, strict=True):
                    result.features[name] = FeatureProfile(
                        name=name, kind=_kind(dtype, name, categorical), dtype=str(dtype))
                schema_seen = True
            work = [(result.features[name], column) for name, column
                    in zip(batch.schema.names, batch.columns, strict=True)
                    if name in result.features]
            _run_each(pool, partial(_add_arrow_column, distinct=distinct), work)
    if not schema_seen:
        schema = _schema_of(data)
        for name, dtype in zip(schema.names, schema.types, strict=True) if schema else ():
            if columns is None or name in columns:
                result.features[name] = FeatureProfile(
                    name=name, kind=_kind(dtype, name, categorical), dtype=str(dtype))
    return result


def _profile_parquet(path: Path, categorical: set[str], columns: Sequence[str] | None,
                     distinct: bool) -> DataProfile:
    """A Parquet file or folder, a few columns at a time (as many as there are threads):
    Parquet stores each column apart, so each pass reads only its columns' chunks, and
    memory holds a row group of those few columns rather than of every column (a
    1M-row group of 25 columns is about 300 MB decoded)."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet")
    schema = dataset.schema
    names = list(columns) if columns is not None else list(schema.names)
    result = DataProfile()
    for name in names:
        if schema.get_field_index(name) < 0:
            raise InvalidArgument(f"column {name!r} is not in {path}", field="columns")
        dtype = schema.field(name).type
        result.features[name] = FeatureProfile(name=name, kind=_kind(dtype, name, categorical),
                                               dtype=str(dtype))
    step = _workers()
    with _column_pool() as pool:
        for first in range(0, len(names), step):
            group = names[first:first + step]
            for batch in _parquet_batches(path, group):
                _run_each(pool, partial(_add_arrow_column, distinct=distinct),
                          [(result.features[n], batch.column(n)) for n in group])
    return result


def _schema_of(data: Any) -> pa.Schema | None:
    if isinstance(data, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        return data.schema
    return None


def _profile_pandas(frame: pd.DataFrame, categorical: set[str],
                    columns: Sequence[str] | None, distinct: bool = True) -> DataProfile:
    result = DataProfile()
    names = list(columns) if columns is not None else [str(c) for c in frame.columns]
    work: list[tuple[FeatureProfile, pd.Series[Any]]] = []
    for name in names:
        series = frame[name]
        if isinstance(series, pd.DataFrame):
            raise InvalidArgument(f"column {name!r} appears more than once", field="data")
        kind, dtype = _pandas_kind(series, name, categorical)
        feature = FeatureProfile(name=name, kind=kind, dtype=dtype)
        result.features[name] = feature
        work.append((feature, series))
    with _column_pool() as pool:
        _run_each(pool, partial(_add_pandas_series, distinct=distinct), work)
    return result


def _add_pandas_series(feature: FeatureProfile, series: pd.Series[Any],
                       distinct: bool = True) -> None:
    if feature.kind == "numeric" and not pd.api.types.is_numeric_dtype(series.dtype):
        _add_arrow_column(feature, pa.array(series), distinct)  # datetimes: Arrow's casts
        return
    step = BATCH_ROWS * 16
    for start in range(0, max(len(series), 1), step):
        _add_pandas_column(feature, series.iloc[start:start + step], distinct)


# -- columns in parallel ------------------------------------------------------------------
# Each column's statistics are built by one thread (a FeatureProfile is never shared
# between threads); the heavy parts (sorting for the quantile sketch, hashing, Arrow's
# value counts) run in NumPy and Arrow without the GIL, so columns profile side by side.

def _workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_WORKERS))


@contextmanager
def _column_pool() -> Iterator[ThreadPoolExecutor | None]:
    workers = _workers()
    if workers == 1:
        yield None
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="profile") as pool:
        yield pool


def _run_each(pool: ThreadPoolExecutor | None, task: Callable[[FeatureProfile, Any], None],
              work: Sequence[tuple[FeatureProfile, Any]]) -> None:
    """``task(feature, column)`` for every pair, in the pool when there is one; the first
    error is raised once every task is done."""
    if pool is None or len(work) < 2:
        for feature, column in work:
            task(feature, column)
        return
    futures = [pool.submit(task, feature, column) for feature, column in work]
    for future in futures:
        future.result()

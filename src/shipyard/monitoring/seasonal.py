"""Seasonal references: compare a window with the same time one period earlier.

Traffic with a weekly cycle (Monday mornings unlike Saturday nights) makes every window
differ from the whole reference, so a plain check alarms on the cycle itself. A seasonal
reference keeps only the reference rows at the same point of the cycle: for a window from
Tuesday 09:00 to 10:00, the rows from 09:00 to 10:00 on the Tuesdays before (one period
back, two periods back, ... up to ``seasons``). Then the cycle alone raises no alarm and a
real change still does.

Two forms:

- ``seasonal_rows(reference, current, time_column, period)``: from raw data with a time
  column (pandas, Arrow, Parquet paths, DuckDB relations), the matching reference rows and
  the current rows, as Arrow tables without the time column. The reference is streamed in
  record batches and filtered batch by batch (vectorised), so a long history of Parquet
  files is read in bounded memory. ``detect_drift(..., season="weekly",
  time_column="ts")`` runs it first.
- ``seasonal_reference(profiles, start, period)``: from stored profiles of earlier windows
  (by their start time), the merge of those that start whole periods before ``start``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import InvalidArgument
from shipyard.monitoring.profiles import DataProfile, _batches

__all__ = ["PERIODS", "period_of", "seasonal_reference", "seasonal_rows"]

PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(weeks=1)}


def period_of(season: str | timedelta) -> timedelta:
    """``"weekly"``, ``"daily"`` or a ``timedelta`` as a positive period."""
    if isinstance(season, str):
        if season not in PERIODS:
            raise InvalidArgument(
                f"season must be one of {', '.join(PERIODS)} or a timedelta, not {season!r}",
                field="season")
        return PERIODS[season]
    if not isinstance(season, timedelta) or season <= timedelta(0):
        raise InvalidArgument("season must be a positive timedelta", field="season")
    return season


def seasonal_reference(profiles: Mapping[datetime, DataProfile], start: datetime,
                       period: str | timedelta = "weekly",
                       seasons: int | None = None) -> DataProfile:
    """The merged profiles of the windows starting ``k`` periods before ``start``
    (k = 1 .. ``seasons``, or every earlier period when None). Windows at other times of
    the cycle are left out; an empty profile when there is none."""
    step = period_of(period)
    _check_seasons(seasons)
    merged = DataProfile()
    for moment, stored in sorted(profiles.items()):
        back = start - moment
        whole, rest = divmod(back, step)
        if rest == timedelta(0) and whole >= 1 and (seasons is None or whole <= seasons):
            merged = merged.merge(stored)
    return merged


def seasonal_rows(reference: Any, current: Any, time_column: str,
                  period: str | timedelta = "weekly",
                  seasons: int | None = None) -> tuple[pa.Table, pa.Table]:
    """The reference rows at the same time of the cycle as the current window (from one to
    ``seasons`` periods earlier; every earlier period when None) and the current rows, both
    without ``time_column``. The current window must span less than one period."""
    step = _micros(period_of(period))
    _check_seasons(seasons)
    current_table = pa.Table.from_batches(list(_batches(_arrow_ready(current), None)))
    if time_column not in current_table.column_names:
        raise InvalidArgument(f"time_column {time_column!r} is not in the current data",
                              field="time_column")
    times = _times(current_table.column(time_column), "current")
    current_table = current_table.drop_columns([time_column])
    if times.size == 0:
        return _empty_like(reference, time_column), current_table
    first, last = int(times.min()), int(times.max())
    if last - first >= step:
        raise InvalidArgument(
            "the current window spans a whole season or more: a seasonal reference needs a "
            "window shorter than the period", field="season")
    kept = [batch for batch in _matching(reference, time_column, first, last, step, seasons)]
    if kept:
        return pa.Table.from_batches(kept), current_table
    return _empty_like(reference, time_column), current_table


def _matching(reference: Any, time_column: str, first: int, last: int, step: int,
              seasons: int | None) -> Iterator[pa.RecordBatch]:
    for batch in _batches(_arrow_ready(reference), None):
        if time_column not in batch.schema.names:
            raise InvalidArgument(f"time_column {time_column!r} is not in the reference data",
                                  field="time_column")
        times = _times(batch.column(time_column), "reference")
        # The smallest k with t + k * step >= first; the row matches when that lands in the
        # window and k is within the seasons asked for.
        k = -((times - first) // step)
        landed = times + k * step
        keep = (k >= 1) & (landed <= last)
        if seasons is not None:
            keep &= k <= seasons
        if keep.any():
            index = schema_index(batch, time_column)
            yield batch.filter(pa.array(keep)).remove_column(index)


def schema_index(batch: pa.RecordBatch, name: str) -> int:
    return int(batch.schema.get_field_index(name))


def _times(column: pa.Array | pa.ChunkedArray, side: str) -> npt.NDArray[np.int64]:
    """Microseconds since the epoch (UTC for zoned times); missing times are refused."""
    kind = column.type
    if column.null_count:
        raise InvalidArgument(f"the time column of the {side} data has missing values",
                              field="time_column")
    if pa.types.is_timestamp(kind):
        micros = pc.cast(column, pa.timestamp("us", tz=kind.tz), safe=False)
    elif pa.types.is_date(kind):
        micros = pc.cast(pc.cast(column, pa.timestamp("s")), pa.timestamp("us"))
    else:
        raise InvalidArgument(
            f"the time column of the {side} data must hold timestamps or dates, not {kind}",
            field="time_column")
    values = pc.cast(micros, pa.int64())
    if isinstance(values, pa.ChunkedArray):
        return np.asarray(values.to_numpy(), dtype=np.int64) if values.num_chunks \
            else np.empty(0, dtype=np.int64)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _arrow_ready(data: Any) -> Any:
    if isinstance(data, DataProfile):
        raise InvalidArgument(
            "a seasonal reference needs rows with their times, not a profile: pass data, or "
            "pick stored profiles with seasonal_reference", field="reference")
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    return data


def _empty_like(reference: Any, time_column: str) -> pa.Table:
    """No reference row matched: an empty table with the reference's columns."""
    for batch in _batches(_arrow_ready(reference), None):
        table = pa.Table.from_batches([batch.slice(0, 0)])
        return table.drop_columns([time_column]) if time_column in table.column_names \
            else table
    return pa.table({})


def _check_seasons(seasons: int | None) -> None:
    if seasons is not None and (isinstance(seasons, bool) or not isinstance(seasons, int)
                                or seasons < 1):
        raise InvalidArgument("seasons must be a positive integer or None", field="seasons")

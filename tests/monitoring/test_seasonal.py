"""Seasonal reference (issue 19): a weekly cycle alone does not alarm, a real shift does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import shipyard as sy
from shipyard.errors import InvalidArgument
from shipyard.monitoring.profiles import DataProfile, profile
from shipyard.monitoring.seasonal import seasonal_reference

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
ROWS_PER_HOUR = 200


def traffic(first_hour: int, hours: int, seed: int, shift: float = 0.0,
            mobile_shift: float = 0.0) -> pd.DataFrame:
    """Requests with a weekly cycle: load follows the hour of day and drops at weekends;
    the mobile share rises at weekends. ``shift``/``mobile_shift`` plant a real change."""
    rng = np.random.default_rng(seed)
    hour = np.repeat(np.arange(first_hour, first_hour + hours), ROWS_PER_HOUR)
    minute = rng.uniform(0, 60, hour.size)
    ts = pd.to_datetime(START) + pd.to_timedelta(hour * 60 + minute, unit="min")
    of_day, weekend = hour % 24, (hour // 24) % 7 >= 5
    load = (50 + 20 * np.sin(2 * np.pi * (of_day - 6) / 24) - 15 * weekend
            + rng.normal(0, 5, hour.size) + shift)
    mobile = np.where(weekend, 0.6, 0.3) + mobile_shift
    channel = np.where(rng.random(hour.size) < mobile, "mobile", "web")
    return pd.DataFrame({"ts": ts, "load": load, "channel": channel})


WEEK = 168
HISTORY = traffic(0, 4 * WEEK, seed=1)  # four weeks


def test_weekly_cycle_alone_does_not_alarm_but_a_real_shift_does() -> None:
    plain_alarms = seasonal_alarms = 0
    hours = range(4 * WEEK, 5 * WEEK, 7)  # 24 windows of 3 hours across the fifth week
    for i, first in enumerate(hours):
        window = traffic(first, 3, seed=100 + i)
        plain = sy.detect_drift(HISTORY.drop(columns="ts"), window.drop(columns="ts"))
        plain_alarms += plain.drifted
        seasonal = sy.detect_drift(HISTORY, window, season="weekly", time_column="ts")
        # The same three hours of each of the four weeks before (from the window's first to
        # its last time, a few minutes short of the whole hours), and nothing else.
        assert 0.97 * 4 * 3 * ROWS_PER_HOUR <= seasonal.reference_rows <= 4 * 3 * ROWS_PER_HOUR
        assert set(seasonal.features) == {"load", "channel"}
        seasonal_alarms += seasonal.drifted
    assert plain_alarms >= 20  # against the whole history, the cycle itself alarms
    assert seasonal_alarms == 0

    tuesday_morning = 4 * WEEK + 24 + 9
    shifted = traffic(tuesday_morning, 3, seed=7, shift=4.0)  # 0.8 sd of the noise
    assert sy.detect_drift(HISTORY, shifted, season="weekly",
                           time_column="ts").drifted_features == ["load"]
    moved = traffic(tuesday_morning, 3, seed=8, mobile_shift=0.15)
    assert sy.detect_drift(HISTORY, moved, season="weekly",
                           time_column="ts").drifted_features == ["channel"]


def test_seasons_limits_the_weeks_and_parquet_history_streams(tmp_path: Path) -> None:
    path = tmp_path / "history.parquet"
    pq.write_table(pa_table(HISTORY), path, row_group_size=10_000)
    window = traffic(4 * WEEK + 50, 2, seed=3)
    report = sy.detect_drift(str(path), window, season=timedelta(weeks=1), time_column="ts",
                             seasons=2)
    assert 0.97 * 2 * 2 * ROWS_PER_HOUR <= report.reference_rows <= 2 * 2 * ROWS_PER_HOUR
    assert not report.drifted
    monday = traffic(4 * WEEK, 2, seed=4)  # the history ends the day before
    daily = sy.detect_drift(HISTORY, monday, season="daily", time_column="ts", seasons=1)
    # The same hours the day before.
    assert 0.97 * 2 * ROWS_PER_HOUR <= daily.reference_rows <= 2 * ROWS_PER_HOUR


def test_seasonal_reference_merges_stored_profiles_of_the_same_hour() -> None:
    hourly = {START + timedelta(hours=h): profile(traffic(h, 1, seed=h))
              for h in range(0, 4 * WEEK, 1) if h % 24 in (9, 10)}
    at = START + timedelta(hours=4 * WEEK + 9)
    reference = seasonal_reference(hourly, at, "weekly")
    assert reference.rows == 4 * ROWS_PER_HOUR
    assert seasonal_reference(hourly, at, "weekly", seasons=1).rows == ROWS_PER_HOUR
    assert seasonal_reference(hourly, at, "daily", seasons=3).rows == 3 * ROWS_PER_HOUR
    now = traffic(4 * WEEK + 9, 1, seed=99)
    assert not sy.detect_drift(reference, now.drop(columns="ts")).drifted
    assert seasonal_reference({}, at).rows == 0


def test_bad_seasonal_input_says_what_is_wrong() -> None:
    window = traffic(4 * WEEK, 1, seed=5)
    cases = [
        ({"season": "weekly"}, "time_column"),
        ({"time_column": "ts"}, "season"),
        ({"season": "monthly", "time_column": "ts"}, "season"),
        ({"season": timedelta(0), "time_column": "ts"}, "season"),
        ({"season": "weekly", "time_column": "when"}, "time_column"),
        ({"season": "weekly", "time_column": "channel"}, "time_column"),
        ({"season": "weekly", "time_column": "ts", "seasons": 0}, "seasons"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidArgument) as caught:
            sy.detect_drift(HISTORY, window, **kwargs)
        assert caught.value.field == field, kwargs
    long = traffic(4 * WEEK, WEEK + 1, seed=6)
    with pytest.raises(InvalidArgument, match="spans a whole season"):
        sy.detect_drift(HISTORY, long, season="weekly", time_column="ts")
    with pytest.raises(InvalidArgument, match="not a profile"):
        sy.detect_drift(profile(HISTORY.drop(columns="ts")), window, season="weekly",
                        time_column="ts")
    # Nothing a week earlier (the history starts later): the report says the reference is
    # empty instead of failing.
    early = sy.detect_drift(HISTORY[HISTORY["ts"] >= START + timedelta(weeks=3)],
                            traffic(3 * WEEK + 5, 1, seed=9), season="weekly",
                            time_column="ts")
    assert early.reference_rows == 0 and early.findings[0].startswith("the reference window")
    assert isinstance(profile(HISTORY), DataProfile)


def pa_table(frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)

"""The rendering helpers: JSON conversion, local times, sparklines."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest

from shipyard.cli import output


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_times_are_shown_in_the_local_zone(tokyo: None) -> None:
    assert os.environ["TZ"] == "Asia/Tokyo"
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert output.local_time(moment) == "2026-01-02 12:04:05"
    assert output.local_time(pd.Timestamp(moment)) == "2026-01-02 12:04:05"
    assert output.local_time(None) == ""


def test_frames_become_records_without_nan() -> None:
    frame = pd.DataFrame({"run_id": ["a", "b"], "metrics.rmse": [0.1234567890123, math.nan],
                          "start_time": [pd.Timestamp("2026-01-01", tz="UTC"), pd.NaT]})
    rows = output.jsonable(frame)
    assert rows[0]["metrics.rmse"] == 0.1234567890123  # full precision
    assert rows[1]["metrics.rmse"] is None
    assert rows[0]["start_time"].startswith("2026-01-01T00:00:00")
    assert rows[1]["start_time"] is None


def test_sets_enums_and_non_finite_floats() -> None:
    assert output.jsonable({"s": frozenset({"b", "a"}), "f": math.inf,
                            "o": output.Format.json}) == {"s": ["a", "b"], "f": None, "o": "json"}


def test_sparkline_spans_min_to_max() -> None:
    line = output.sparkline([3.0, 2.0, 1.0])
    assert line[0] == "█" and line[-1] == "▁"
    assert output.sparkline([1.0, 1.0]) == "▅▅"
    assert output.sparkline([]) == ""
    assert len(output.downsample([float(i) for i in range(1000)], 40)) == 40


def test_cells_escape_markup() -> None:
    assert output.cell("[red]x[/red]") == "\\[red]x\\[/red]"
    assert output.cell(True) == "yes"
    assert output.cell(None) == ""


def test_mapping_cells_put_one_compact_pair_per_line() -> None:
    cell = output.cell({"rmse": 0.07314297796890205, "n": 3, "team": "[sales]"})
    assert cell == "rmse=0.073143\nn=3\nteam=\\[sales]"
    assert output.cell({"x": float("nan")}) == "x=nan"

"""Local mode logs its predictions to the same request log as the server (so a monitor on
an endpoint sees traffic scored in a notebook or in the quick start), written before
``predict`` returns."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import shipyard as sy
from tests.serving.conftest import frame, linear


def _logged(home: Path) -> list[tuple[object, ...]]:
    files = sorted((home / "artifacts" / "request-logs").rglob("*.parquet"))
    if not files:
        return []
    glob = f"{home}/artifacts/request-logs/predictions/**/*.parquet"
    return duckdb.sql(
        f"select endpoint, project, protocol, model_version, deployed_model_id, "
        f"json_extract(features, '$.visits')::int, prediction::double, instance "
        f"from read_parquet('{glob}', hive_partitioning=true) order by time, instance"
    ).fetchall()


def _deployed(home: Path) -> sy.Endpoint:
    sy.init(home=home, project="p1")
    sy.register_model("lead", linear(3.0), input_example=frame(5))
    endpoint = sy.create_endpoint("lead-ep")
    endpoint.deploy("lead", version=1)
    return endpoint


def test_local_predictions_are_logged_when_predict_returns(tmp_path: Path) -> None:
    endpoint = _deployed(tmp_path)
    endpoint.predict([{"visits": 2, "time_on_site": 100.0}, {"visits": 5, "time_on_site": 90.0}])
    endpoint.predict([[7, 80.0]])  # in signature order
    rows = _logged(tmp_path)
    # One row per instance, each with its features keyed by name and its answer (3 x visits).
    assert [(r[5], round(float(r[6]), 6), r[7]) for r in rows] == [
        (2, 6.0, 0), (5, 15.0, 1), (7, 21.0, 0)]
    assert {r[:5] for r in rows} == {("lead-ep", "p1", "sdk", 1, "lead:1")}


def test_a_zero_log_rate_logs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_SERVING_LOG_RATE", "0")
    endpoint = _deployed(tmp_path)
    assert endpoint.predict([[1, 10.0]]).predictions == pytest.approx([3.0])
    assert _logged(tmp_path) == []

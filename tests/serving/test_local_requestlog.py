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


class NoAnswer:
    """A custom predictor whose output is not a list of values (a model error, 500)."""

    def load(self, artifacts_dir: str) -> None:
        return None

    def predict(self, instances: object) -> object:
        return None


def _failures(home: Path) -> list[tuple[object, ...]]:
    glob = f"{home}/artifacts/request-logs/predictions/**/*.parquet"
    return duckdb.sql(
        f"select endpoint, deployed_model_id, protocol, instance, features, prediction, "
        f"status, error from read_parquet('{glob}', hive_partitioning=true, "
        f"union_by_name=true) where status <> 200 order by time, instance").fetchall()


def test_failed_local_requests_are_logged_with_their_status_and_error(tmp_path: Path
                                                                      ) -> None:
    import json

    from shipyard.errors import FailedPrecondition, InvalidArgument, ShipyardError
    from shipyard.registry import CustomPredictor

    endpoint = _deployed(tmp_path)
    endpoint.predict([[2, 10.0]])
    with pytest.raises(InvalidArgument) as bad:  # refused by the signature: 400
        endpoint.predict([{"visits": 4, "time_on_site": 1.0}, {"visits": "many"}])
    with pytest.raises(InvalidArgument) as refused:  # the model raises on a missing value
        endpoint.predict([[None, 2.0]])
    sy.register_model("broken", CustomPredictor(NoAnswer), input_example=frame(5))
    broken = sy.create_endpoint("broken-ep")
    broken.deploy("broken", version=1)
    with pytest.raises(Exception) as failed:  # any failure of the model's
        broken.predict([[1, 1.0]])
    assert not isinstance(failed.value, ShipyardError)
    empty = sy.create_endpoint("empty-ep")
    with pytest.raises(FailedPrecondition):  # refused before routing: not logged
        empty.predict([[1, 1.0]])

    rows = _failures(tmp_path)
    assert [r[:4] for r in rows] == [
        ("lead-ep", "lead:1", "sdk", 0), ("lead-ep", "lead:1", "sdk", 1),
        ("lead-ep", "lead:1", "sdk", 0), ("broken-ep", "broken:1", "sdk", 0)]
    assert [json.loads(str(r[4])) for r in rows] == [
        {"visits": 4, "time_on_site": 1.0}, {"visits": "many"},
        {"visits": None, "time_on_site": 2.0}, {"visits": 1, "time_on_site": 1.0}]
    assert [(r[5], r[6]) for r in rows] == [(None, 400)] * 3 + [(None, 500)]
    assert rows[0][7] == rows[1][7] == f"invalid_argument: {bad.value.message}"[:256]
    assert rows[2][7] == f"invalid_argument: {refused.value.message}"[:256]
    assert rows[3][7] == f"internal: {type(failed.value).__name__}"
    # The answered request is logged as before, with status 200 and no error.
    glob = f"{tmp_path}/artifacts/request-logs/predictions/**/*.parquet"
    assert duckdb.sql(f"select count(*), min(status), max(error) from read_parquet('{glob}', "
                      f"union_by_name=true) where status = 200").fetchall() == [(1, 200, None)]

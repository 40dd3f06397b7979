"""Feature-attribution drift in monitor runs: the run explains a bounded sample of its
window with the deployment that answered it, and finds a shift in which feature drives the
predictions (a new model version leaning on another feature; inputs whose spread moved from
one feature to another). Real store, registry and request log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from shipyard.artifacts import open_artifact_store
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.monitoring import monitors as service
from shipyard.monitoring.attributions import MIN_CHANGE, baseline_rows, shares_of
from shipyard.monitoring.config import check_config
from shipyard.monitoring.profiles import profile
from shipyard.registry import service as registry
from shipyard.serving import service as serving
from shipyard.serving.requestlog import Logged, RequestLog
from shipyard.store import open_store

T0 = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
CTX = RequestContext(project="default", actor="alice")


def inputs(rows: int, seed: int, spread: tuple[float, float] = (3.0, 1.0)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x1": rng.normal(0, spread[0], rows),
                         "x2": rng.normal(0, spread[1], rows)})


def fitted(w1: float, w2: float) -> LinearRegression:
    data = inputs(200, seed=99)
    return LinearRegression().fit(data, w1 * data["x1"] + w2 * data["x2"])


def log(root: Path, start: datetime, data: pd.DataFrame, model: LinearRegression,
        version: int) -> None:
    predictions = model.predict(data)
    per = len(data) // 10
    RequestLog(root=root).write([
        Logged(request_id=f"{start:%H}-{i}", time=(start + i * HOUR / 10).timestamp(),
               project="default", endpoint="leads", deployed_model_id=f"lead:{version}",
               model_version=version, protocol="vertex", latency_ms=5.0,
               rows=data.iloc[i * per:(i + 1) * per].to_dict("records"),
               predictions=[float(p) for p in predictions[i * per:(i + 1) * per]], names=None)
        for i in range(10)])


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path}/shipyard.db", cached=False)
    settings = Settings(home=tmp_path, uri="sqlite://", artifacts=str(tmp_path / "artifacts"))
    artifacts = open_artifact_store(settings.artifacts, cached=False)
    serving.create_endpoint(store, CTX, "leads")
    yield store, settings, artifacts, tmp_path / "artifacts"
    store.dispose()


def test_a_shift_in_which_feature_drives_the_predictions_is_found(setup: Any) -> None:
    store, settings, artifacts, root = setup
    # Version 1 leans on x1 (x1 + x2, x1 three times as spread): x1 has about 3/4 of the
    # attribution. Version 2 (x1/3 + 3*x2) has the same output spread but leans on x2.
    v1, v2 = fitted(1.0, 1.0), fitted(1 / 3, 3.0)
    for model in (v1, v2):
        registry.register_model(store, artifacts, CTX, "lead", model,
                                input_example=inputs(5, seed=7))
    service.create_monitor(store, CTX, "m", endpoint="leads",
                           baseline_profile=profile(inputs(5000, seed=0)).to_bytes(),
                           config=check_config(
                               interval="1h", window=None, sampling_rate=1.0,
                               thresholds=None, objectives=None, alert=["log"],
                               alert_after=None, drift_windows=1, features=None,
                               categorical_features=None, feature_importance=None),
                           start_at=T0)
    log(root, T0, inputs(2000, seed=1), v1, 1)
    log(root, T0 + HOUR, inputs(2000, seed=2), v2, 2)  # same inputs, new model
    log(root, T0 + 2 * HOUR, inputs(2000, seed=3, spread=(1.0, 3.0)), v2, 2)  # x2 spreads

    runs = [service.run_monitor(store, settings, "default", "m", now=T0 + (i + 1) * HOUR)
            for i in range(3)]
    first = runs[0].result["attributions"]
    assert first["deployed_model_id"] == "lead:1" and first["rows"] == 200
    assert first["shares"]["x1"] == pytest.approx(0.75, abs=0.05)
    assert first["drift"] is None and not first["drifted"]  # nothing earlier
    assert not any(e["drifted"] for e in first["skew"].values())
    assert runs[0].result["breaches"] == []

    second = runs[1].result["attributions"]  # the inputs did not move; the model did
    assert second["shares"]["x2"] == pytest.approx(0.75, abs=0.05)
    assert second["drift"]["x2"]["drifted"] and second["drift"]["x1"]["drifted"]
    assert second["drift"]["x2"]["change"] == pytest.approx(0.5, abs=0.08)
    assert not any(e["drifted"] for e in second["skew"].values())  # v2 on the baseline too
    assert runs[1].result["breaches"] == ["attribution_drift"]  # no feature moved
    (alert,) = [a for a in service.list_alerts(store, "default")
                if a.kind == "attribution_drift"]  # raised by the second window
    assert (alert.run_id, alert.model_version) == (runs[1].id, 2)
    assert {f["name"] for f in alert.features} == {"x1", "x2"}

    # The same model, x2 now three times as spread as x1: |3 x2| against |x1 / 3|, 27/28.
    third = runs[2].result["attributions"]
    assert third["shares"]["x2"] == pytest.approx(27 / 28, abs=0.03)
    assert third["skew"]["x2"]["drifted"] and third["skew"]["x2"]["change"] > MIN_CHANGE
    assert third["skew_drifted"]  # against the baseline: shown, not alerted on its own
    assert third["drift"]["x2"]["drifted"]  # against the second window (0.75 -> 0.95)
    assert "attribution_drift" in runs[2].result["breaches"]
    # Still breaching: the open alert is not sent again.
    assert [a.state for a in service.list_alerts(store, "default")
            if a.kind == "attribution_drift"] == ["open"]
    assert service.monitoring_stats(store, "default", "leads")["attributions"]["shares"] \
        == third["shares"]


def test_shares_and_baseline_rows() -> None:
    # Mean |attribution| 3 and 1: shares 0.75 and 0.25, with a small bootstrap error.
    rng = np.random.default_rng(0)
    matrix = np.column_stack([rng.normal(0, 3, 400), rng.normal(0, 1, 400)])
    found = shares_of(matrix, ["a", "b"])
    assert found is not None and found["rows"] == 400
    assert found["shares"]["a"] == pytest.approx(0.75, abs=0.03)
    assert 0.0 < found["standard_errors"]["a"] < 0.03
    assert shares_of(np.zeros((5, 2)), ["a", "b"]) is None
    data = pd.DataFrame({"n": rng.normal(10, 2, 5000),
                         "c": rng.choice(["x", "y"], 5000, p=[0.8, 0.2])})
    drawn = baseline_rows(profile(data), ["n", "c"], 200)
    assert len(drawn) == 200 and (drawn["c"] == "x").sum() == 160
    assert drawn["n"].mean() == pytest.approx(10, abs=0.2)
    assert drawn["n"].std() == pytest.approx(2, abs=0.2)

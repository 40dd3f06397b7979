"""Model registry through the public SDK, in local and remote mode."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.errors import InvalidArgument, NotFound


def _data(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"pages": rng.integers(1, 50, 200).astype("int64"),
                          "industry": rng.choice(["tech", "retail"], 200)})
    y = frame["pages"] * 0.02 + (frame["industry"] == "tech") * 0.3 + rng.normal(0, 0.01, 200)
    return frame, y.to_numpy()


def _model(frame: pd.DataFrame, y: np.ndarray) -> Pipeline:
    pre = ColumnTransformer([("num", StandardScaler(), ["pages"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["industry"])])
    return Pipeline([("pre", pre), ("reg", LinearRegression())]).fit(frame, y)


def test_register_promote_load_and_rollback(sy: ModuleType, tmp_path: Path) -> None:
    frame, y = _data(0)
    model = _model(frame, y)
    with sy.start_run(experiment="lead") as run:
        run.log_metric("rmse", 0.2)
    v1 = sy.register_model("lead", model, input_example=frame.head(5), metrics={"rmse": 0.2},
                           labels={"team": "sales"}, run=run)
    assert (v1.version, v1.uri) == (1, "models:/lead/1")
    first = sy.promote_if_better("lead", 1)
    assert first.promoted and first.semver == "1.0.0"
    v2 = sy.register_model("lead", model, input_example=frame.head(5), metrics={"rmse": 0.3})
    lost = sy.promote_if_better("lead", v2.version)
    assert not lost.promoted and lost.incumbent_version == 1
    v3 = sy.register_model("lead", model, input_example=frame.head(5), metrics={"rmse": 0.1})
    won = sy.promote_if_better("lead", v3.version)
    assert won.promoted and won.semver == "1.0.1"
    assert sy.get_model_version("lead", alias="production").version == 3

    loaded = sy.load_model("models:/lead@production")
    np.testing.assert_allclose(loaded.predict(frame.head(10)), model.predict(frame.head(10)))
    with pytest.raises(InvalidArgument) as info:
        loaded.predict(frame.drop(columns=["industry"]))
    assert "industry" in str(info.value)

    history = sy.alias_history("lead", "production")
    assert [(h.from_version, h.to_version) for h in history if h.from_version != h.to_version] \
        == [(None, 1), (1, 3)]
    back = sy.rollback_alias("lead", "production", reason="bad canary")
    assert back.version == 1
    assert [m.name for m in sy.list_models("labels.team = 'sales'")] == ["lead"]
    assert [v.version for v in sy.list_model_versions("lead", "metrics.rmse < 0.25")] == [3, 1]
    out = sy.download_model("lead:3", tmp_path / "lead3")
    assert (out / "shipyard-model.json").is_file()


def test_registry_errors_are_clear(sy: ModuleType) -> None:
    with pytest.raises(NotFound):
        sy.get_model_version("missing", version=1)
    with pytest.raises(InvalidArgument) as info:
        sy.register_model("../evil", LinearRegression())
    assert info.value.field == "name"
    with pytest.raises(InvalidArgument):
        sy.register_model("odd", object())
    frame, y = _data(1)
    sy.register_model("m", _model(frame, y))
    with pytest.raises(NotFound):
        sy.get_model_version("m", alias="production")
    with pytest.raises(InvalidArgument):
        sy.resolve_model("m@@bad")

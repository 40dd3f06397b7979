"""The register step registers a packaged model once, however often it runs."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import shipyard as sy
from shipyard.quickstart.registration import Outcome, register_and_promote
from shipyard.registry import flavors


def _packaged(tmp_path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"pages": rng.integers(1, 30, 200), "source": rng.choice(["a", "b"], 200)})
    y = X["pages"] / 30 + rng.normal(0, 0.05, 200)
    pre = ColumnTransformer([("cat", OneHotEncoder(), ["source"])], remainder="passthrough")
    model = Pipeline([("pre", pre), ("xgb", xgboost.XGBRegressor(n_estimators=5))]).fit(X, y)
    out = tmp_path / f"model-{seed}"
    out.mkdir()
    flavors.save(model, out, input_example=X.head())
    return out


def test_same_package_registers_once_and_keeps_production(home: Path, tmp_path: Path) -> None:
    model = _packaged(tmp_path, 1)
    first = register_and_promote(model, "leads", run_id=None, metrics={"rmse": 0.2})
    again = register_and_promote(model, "leads", run_id=None, metrics={"rmse": 0.2})
    assert first == Outcome(1, "1.0.0", True, first.reason, 1)
    assert again.version == 1 and again.promoted and "already holds" in again.reason
    assert [v.version for v in sy.list_model_versions("leads")] == [1]


def test_racing_registrations_of_one_package_make_one_version(home: Path, tmp_path: Path) -> None:
    model = _packaged(tmp_path, 2)
    outcomes: list[Outcome] = []
    barrier = threading.Barrier(3)

    def register() -> None:
        barrier.wait()
        outcomes.append(register_and_promote(model, "leads", run_id=None, metrics={"rmse": 0.3}))

    threads = [threading.Thread(target=register) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [o.version for o in outcomes] == [1, 1, 1]
    assert [v.version for v in sy.list_model_versions("leads")] == [1]


def test_a_worse_model_is_registered_but_not_promoted(home: Path, tmp_path: Path) -> None:
    register_and_promote(_packaged(tmp_path, 3), "leads", run_id=None, metrics={"rmse": 0.1})
    worse = register_and_promote(_packaged(tmp_path, 4), "leads", run_id=None,
                                 metrics={"rmse": 0.2})  # fmt: skip
    assert worse.version == 2 and not worse.promoted and worse.production_version == 1
    better = register_and_promote(_packaged(tmp_path, 5), "leads", run_id=None,
                                  metrics={"rmse": 0.05})  # fmt: skip
    assert better.version == 3 and better.promoted and better.semver == "1.0.1"

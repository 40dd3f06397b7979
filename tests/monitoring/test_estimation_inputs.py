"""Performance estimation: inputs (pandas, Arrow), results, saving without pickle, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shipyard.errors import InvalidArgument
from shipyard.monitoring.estimation import (
    PerformanceEstimator,
    fit_estimator,
    load_estimator,
)
from tests.monitoring.test_estimation import (
    FEATURES,
    classification_data,
    fit_classifier,
    regression_data,
)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return classification_data(5_000, 1_000, [0.0, 0.5, 1.0], seed=7)


@pytest.fixture(scope="module")
def fitted(data: tuple[pd.DataFrame, pd.DataFrame]) -> PerformanceEstimator:
    return fit_classifier(data[0])


def test_result_has_one_row_per_chunk_and_metric(
        fitted: PerformanceEstimator, data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    current = data[1].drop(columns=["y"])          # production data: no labels
    result = fitted.estimate(current, chunk_size=1_200)
    frame = result.to_frame()
    # 3,000 rows in chunks of 1,200: two full chunks and a last one of 600.
    assert frame["chunk"].tolist() == [0, 0, 1, 1, 2, 2]
    assert frame["metric"].tolist() == ["accuracy", "roc_auc"] * 3
    assert frame["rows"].tolist() == [1_200, 1_200, 1_200, 1_200, 600, 600]
    assert frame["realised"].isna().all()
    assert ((frame["lower"] <= frame["estimate"]) & (frame["estimate"] <= frame["upper"])).all()
    assert ((frame["lower"] >= 0) & (frame["upper"] <= 1)).all()
    document = json.loads(result.to_json())
    assert document["task"] == "classification"
    assert document["confidence"] == 0.95
    assert len(document["chunks"]) == 6
    assert document["chunks"][0]["realised"] is None
    assert result.metric("roc_auc")[2].rows == 600
    with pytest.raises(InvalidArgument, match="no metric 'mae'"):
        result.metric("mae")


def test_arrow_tables_give_the_same_estimates_as_pandas(
        fitted: PerformanceEstimator, data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = data
    from_pandas = fitted.estimate(current, chunk_size=1_000).to_frame()
    from_arrow = fitted.estimate(pa.Table.from_pandas(current), chunk_size=1_000).to_frame()
    pd.testing.assert_frame_equal(from_pandas, from_arrow)
    refit = fit_classifier(pa.Table.from_pandas(reference))
    assert refit.estimate(current).to_frame()["estimate"].tolist() == pytest.approx(
        fitted.estimate(current).to_frame()["estimate"].tolist())


def test_saved_estimator_is_json_and_estimates_the_same(
        fitted: PerformanceEstimator, data: tuple[pd.DataFrame, pd.DataFrame],
        tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "estimator.json")
    document = json.loads(path.read_text())           # plain JSON, nothing pickled
    assert document["format"] == "shipyard.performance-estimator"
    assert len(document["models"]["probability"]) == 5
    assert json.loads(document["models"]["probability"][0])["learner"]  # XGBoost's JSON
    loaded = load_estimator(path)
    before = fitted.estimate(data[1], chunk_size=1_000).to_frame()
    after = loaded.estimate(data[1], chunk_size=1_000).to_frame()
    pd.testing.assert_frame_equal(before, after)
    assert list(tmp_path.iterdir()) == [path]         # no temporary file left behind


def test_saved_regression_estimator_round_trips(tmp_path: Path) -> None:
    reference, current = regression_data(3_000, 1_000, [0.0, 1.0], seed=2)
    estimator = fit_estimator(reference, task="regression", target="y", prediction="pred",
                              features=FEATURES)
    loaded = PerformanceEstimator.from_dict(json.loads(estimator.to_json()))
    assert loaded.dispersion == estimator.dispersion
    pd.testing.assert_frame_equal(estimator.estimate(current, chunk_size=1_000).to_frame(),
                                  loaded.estimate(current, chunk_size=1_000).to_frame())


def test_categorical_features_and_unseen_categories() -> None:
    reference, current = regression_data(4_000, 1_000, [0.0, 0.0], seed=4)
    reference["region"] = np.where(reference["x0"] > 0, "north", "south")
    current["region"] = ["north", "south"] * 500 + ["atlantis"] * 1_000
    estimator = fit_estimator(reference, task="regression", target="y", prediction="pred",
                              features=[*FEATURES, "region"])
    assert sorted(estimator.categories["region"]) == ["north", "south"]
    mae = estimator.estimate(current, chunk_size=1_000).metric("mae")
    assert mae[0].reliable and mae[0].outside_share < 0.05
    assert not mae[1].reliable and mae[1].outside_share == 1.0   # a region never seen
    with pytest.raises(InvalidArgument, match="'region'") as raised:
        fit_estimator(reference.assign(region=1.0), task="regression", target="y",
                      prediction="pred", features=[*FEATURES, "region"]).estimate(
            current.assign(region="north"))
    assert raised.value.field == "region"


def _raises(field: str, match: str, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(InvalidArgument, match=match) as raised:
        call(*args, **kwargs)
    assert raised.value.field == field


def test_bad_reference_names_the_field(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference = data[0]
    options: dict[str, Any] = {"task": "classification", "target": "y", "score": "score",
                               "prediction": "label", "features": FEATURES}
    _raises("proba", "no column 'proba'", fit_estimator, reference,
            **{**options, "score": "proba"})
    _raises("x9", "no column 'x9' .*feature", fit_estimator, reference,
            **{**options, "features": [*FEATURES, "x9"]})
    _raises("y", "one class only", fit_estimator, reference.assign(y=1), **options)
    _raises("y", "must hold 0/1", fit_estimator, reference.assign(y=reference["y"] * 2),
            **options)
    with_nan = reference.assign(score=reference["score"].where(reference.index != 17))
    _raises("score", "missing or infinite values .*row 17", fit_estimator, with_nan, **options)
    _raises("y", "missing", fit_estimator,
            reference.assign(y=reference["y"].where(reference.index != 3)), **options)
    _raises("reference", "at least 400", fit_estimator, reference.head(100), **options)
    _raises("reference", "DataFrame or an Arrow table", fit_estimator, [1, 2, 3], **options)
    _raises("task", "classification' or 'regression'", fit_estimator, reference,
            **{**options, "task": "ranking"})
    _raises("score", "needs its score", fit_estimator, reference,
            **{**options, "score": None})
    _raises("prediction", "needs its prediction", fit_estimator, reference,
            task="regression", target="y")
    _raises("score", "not a feature", fit_estimator, reference,
            **{**options, "features": ["score"]})
    _raises("confidence", "between 0 and 1", fit_estimator, reference,
            **{**options, "confidence": 1.5})


def test_bad_current_data_names_the_field(
        fitted: PerformanceEstimator, data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    current = data[1]
    _raises("x2", "current has no column 'x2'", fitted.estimate, current.drop(columns=["x2"]))
    _raises("score", "current has no column 'score'", fitted.estimate,
            current.drop(columns=["score"]))
    _raises("current", "no rows", fitted.estimate, current.head(0))
    _raises("current", "no rows", fitted.estimate, pa.Table.from_pandas(current.head(0)))
    _raises("chunk_size", "positive integer", fitted.estimate, current, chunk_size=0)
    _raises("chunk_size", "positive integer", fitted.estimate, current, chunk_size=2.5)
    nan_score = current.assign(score=np.where(current.index == 5, np.nan, current["score"]))
    _raises("score", "row 5", fitted.estimate, nan_score)
    _raises("label", "must hold 0/1", fitted.estimate, current.assign(label=3))
    _raises("x1", "holds text", fitted.estimate, current.assign(x1="a"))


def test_missing_feature_values_are_estimated_not_refused(
        fitted: PerformanceEstimator, data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    current = data[1].copy()
    current.loc[::10, "x4"] = np.nan      # a sensor that drops out now and then
    [accuracy, auc] = fitted.estimate(current).chunks
    assert 0.5 < accuracy.estimate < 1 and 0.5 < auc.estimate < 1
    assert accuracy.realised is not None


def test_one_row_chunks_and_single_row_current(
        fitted: PerformanceEstimator, data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    one = data[1].head(1)
    [accuracy, auc] = fitted.estimate(one).chunks
    assert 0 <= accuracy.lower <= accuracy.estimate <= accuracy.upper <= 1
    # One row has no positive-negative pair: no AUC to estimate, and it says so.
    assert np.isnan(auc.estimate) and not auc.reliable and auc.realised is None
    assert json.loads(fitted.estimate(one).to_json())["chunks"][1]["estimate"] is None


def test_load_refuses_what_is_not_a_saved_estimator(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    _raises("path", "not a saved performance estimator", load_estimator, bad)
    bad.write_text('{"format": "something else"}')
    _raises("estimator", "not a saved performance estimator", load_estimator, bad)
    bad.write_text('{"format": "shipyard.performance-estimator", "version": 99}')
    _raises("version", "version 99", load_estimator, bad)

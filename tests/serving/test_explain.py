"""Feature attributions (serving.explain): they add up, they are the Shapley values where
those are known in closed form or by enumeration, and bad requests name their field."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import shipyard
from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.sdk import session
from shipyard.serving.explain import Explainer, explain_instances

FEATURES = ["a", "b", "c", "d"]


def data(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)


def target(x: pd.DataFrame) -> pd.Series:
    return 2 * x["a"] - x["b"] + x["c"] * x["d"]


def adds_up(answer: dict[str, Any], tolerance: float = 1e-5) -> bool:
    total = answer["baselineOutputValue"] + sum(answer["featureAttributions"].values())
    return abs(total - answer["instanceOutputValue"]) <= tolerance * max(
        1.0, abs(answer["instanceOutputValue"]))


class Interaction:
    """f = a*b + c**2 - d: small enough to enumerate every feature order."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame["a"] * frame["b"] + frame["c"] ** 2 - frame["d"])


def exact_shapley(model: Any, x: pd.Series, base: pd.Series) -> dict[str, float]:
    """Shapley values by enumerating all orders (the definition, no sampling)."""
    shares = dict.fromkeys(FEATURES, 0.0)
    orders = list(itertools.permutations(FEATURES))
    for order in orders:
        current = base.copy()
        before = float(model.predict(current.to_frame().T.astype(float))[0])
        for name in order:
            current[name] = x[name]
            after = float(model.predict(current.to_frame().T.astype(float))[0])
            shares[name] += (after - before) / len(orders)
            before = after
    return shares


def test_linear_model_sampled_shapley_is_exact() -> None:
    x = data()
    model = LinearRegression().fit(x, target(x))
    base = pd.DataFrame([{"a": 0.5, "b": -1.0, "c": 0.0, "d": 2.0}])
    answers = explain_instances(model, x.head(4), method="sampled_shapley", path_count=3,
                                baseline=base)
    assert len(answers) == 4
    for row, answer in enumerate(answers):
        # A linear model's Shapley value of feature j is w_j * (x_j - baseline_j).
        expected = model.coef_ * (x.iloc[row].to_numpy() - base.iloc[0].to_numpy())
        got = [answer["featureAttributions"][name] for name in FEATURES]
        assert np.allclose(got, expected, atol=1e-9)
        assert answer["baselineOutputValue"] == pytest.approx(model.predict(base)[0])
        assert answer["instanceOutputValue"] == pytest.approx(model.predict(x.iloc[[row]])[0])
        assert answer["outputIndex"] == [0]
        assert answer["approximationError"] == pytest.approx(0.0, abs=1e-9)
        assert adds_up(answer, 1e-9)


def test_sampled_shapley_converges_to_the_enumerated_values() -> None:
    model = Interaction()
    x = pd.DataFrame([{"a": 1.5, "b": 2.0, "c": -1.0, "d": 0.5},
                      {"a": -0.5, "b": 1.0, "c": 3.0, "d": -2.0}])
    base = pd.DataFrame([{"a": 0.0, "b": 0.5, "c": 1.0, "d": 0.0}])
    answers = explain_instances(model, x, method="sampled_shapley", path_count=50,
                                baseline=base)
    for row, answer in enumerate(answers):
        exact = exact_shapley(model, x.iloc[row], base.iloc[0])
        error = answer["approximationError"]
        assert 0 < error < 1.0
        for name in FEATURES:
            assert abs(answer["featureAttributions"][name] - exact[name]) <= 4 * error + 1e-9
        assert adds_up(answer, 1e-9)  # along every sampled order, not only on average


def test_tree_shap_matches_enumeration_and_adds_up() -> None:
    x = data()
    model = xgboost.XGBRegressor(n_estimators=40, max_depth=4, n_jobs=1).fit(x, target(x))
    base = x.median().to_frame().T
    answers = explain_instances(model, x.head(3), baseline=base)  # auto: TreeSHAP
    for row, answer in enumerate(answers):
        assert answer["approximationError"] == 0.0
        assert adds_up(answer)
        exact = exact_shapley(model, x.iloc[row], base.iloc[0])
        for name in FEATURES:
            assert answer["featureAttributions"][name] == pytest.approx(exact[name], abs=1e-4)
        assert answer["instanceOutputValue"] == pytest.approx(
            float(model.predict(x.iloc[[row]])[0]), abs=1e-6)
    sampled = explain_instances(model, x.head(3), baseline=base, method="sampled_shapley",
                                path_count=50)
    for tree, approx in zip(answers, sampled, strict=True):
        assert adds_up(approx)
        for name in FEATURES:
            gap = abs(tree["featureAttributions"][name] - approx["featureAttributions"][name])
            assert gap <= 4 * approx["approximationError"] + 1e-6


def test_forest_and_classifier_explain_the_positive_class_probability() -> None:
    x = data()
    forest = RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0).fit(
        x, target(x))
    assert all(adds_up(a) for a in explain_instances(forest, x.head(2), method="tree_shap",
                                                     baseline=x.head(5)))
    labels = (target(x) > 0).astype(int)
    classifier = xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(x, labels)
    probability = classifier.predict_proba(x.head(3))[:, 1]
    for method in ("tree_shap", "sampled_shapley"):
        answers = explain_instances(classifier, x.head(3), method=method,
                                    baseline=x.median().to_frame().T)
        for row, answer in enumerate(answers):
            assert answer["instanceOutputValue"] == pytest.approx(probability[row], abs=1e-6)
            assert 0 <= answer["baselineOutputValue"] <= 1
            assert answer["outputIndex"] == [1]
            assert adds_up(answer)


def test_zero_baseline_by_default_for_a_bare_numeric_model() -> None:
    x = data()
    model = LinearRegression().fit(x, target(x))
    (answer,) = explain_instances(model, x.head(1))
    assert answer["baselineOutputValue"] == pytest.approx(float(model.intercept_))
    assert answer["featureAttributions"]["a"] == pytest.approx(
        model.coef_[0] * x["a"].iloc[0])


def leads(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "company_size": rng.integers(5, 500, rows).astype("int64"),
        "industry": rng.choice(["technology", "retail", "finance"], rows),
        "pages_visited": rng.integers(1, 30, rows).astype("int64"),
    })


def lead_model(frame: pd.DataFrame) -> Pipeline:
    """Seed 002's shape: a ColumnTransformer then XGBoost."""
    prep = ColumnTransformer([("num", StandardScaler(), ["company_size", "pages_visited"]),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), ["industry"])])
    y = frame["pages_visited"] / 30 + (frame["industry"] == "technology") * 0.5
    return Pipeline([("prep", prep), ("model", xgboost.XGBRegressor(
        n_estimators=20, max_depth=3, n_jobs=1))]).fit(frame, y)


def test_loaded_composite_model_with_categories(home: Path, tmp_path: Path) -> None:
    train = leads(200)
    shipyard.init(home=home, uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                  artifacts=str(tmp_path / "blobs"), project="explain")
    try:
        shipyard.register_model("leads", lead_model(train), input_example=train.head(20))
        loaded = shipyard.load_model("leads:1")
        lead = pd.DataFrame([{"company_size": 152, "industry": "technology",
                              "pages_visited": 15}])
        (answer,) = explain_instances(loaded, lead)  # auto: sampled Shapley (a category)
        assert set(answer["featureAttributions"]) == {"company_size", "industry",
                                                      "pages_visited"}
        assert answer["instanceOutputValue"] == pytest.approx(
            float(loaded.predict(lead)[0]), abs=1e-6)
        # The baseline is the input example's typical row: the median and the mode.
        example = train.head(20)
        typical = pd.DataFrame([{"company_size": round(example["company_size"].median()),
                                 "industry": example["industry"].mode().iloc[0],
                                 "pages_visited": round(example["pages_visited"].median())}])
        assert answer["baselineOutputValue"] == pytest.approx(
            float(loaded.predict(typical)[0]), abs=1e-6)
        assert answer["featureAttributions"]["industry"] != 0.0
        assert adds_up(answer)
        with pytest.raises(FailedPrecondition) as tree:
            explain_instances(loaded, lead, method="tree_shap")
        assert tree.value.field == "method"
        with pytest.raises(InvalidArgument) as bad:
            explain_instances(loaded, lead.assign(company_size="big"))
        assert bad.value.field == "instances.company_size"
    finally:
        session.reset()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"method": "integrated_gradients"}, "method"),
    ({"path_count": 0}, "path_count"),
    ({"path_count": 51}, "path_count"),
    ({"path_count": True}, "path_count"),
    ({"path_count": 2.5}, "path_count"),
    ({"baseline": pd.DataFrame({"a": [0.0]})}, "baseline.b"),
    ({"baseline": pd.DataFrame(columns=FEATURES)}, "baseline"),
])
def test_bad_requests_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    x = data(50)
    model = LinearRegression().fit(x, target(x))
    with pytest.raises(InvalidArgument) as bad:
        explain_instances(model, x.head(2), **kwargs)
    assert bad.value.field == field


def test_other_bad_inputs() -> None:
    x = data(50)
    model = LinearRegression().fit(x, target(x))
    with pytest.raises(InvalidArgument) as empty:
        explain_instances(model, x.head(0))
    assert empty.value.field == "instances"
    with pytest.raises(InvalidArgument) as no_predict:
        explain_instances(object(), x.head(1))
    assert no_predict.value.field == "model"
    texts = pd.DataFrame({"a": [1.0], "kind": ["x"]})
    with pytest.raises(InvalidArgument) as no_baseline:
        explain_instances(Interaction(), texts)
    assert no_baseline.value.field == "baseline" and "'kind'" in no_baseline.value.message
    with pytest.raises(FailedPrecondition) as not_trees:
        explain_instances(model, x.head(1), method="tree_shap")
    assert not_trees.value.field == "method"


def test_many_instances_are_batched_not_predicted_row_by_row() -> None:
    calls: list[int] = []

    class Counting(Interaction):
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            calls.append(len(frame))
            return super().predict(frame)

    x = data(200)
    answers = explain_instances(Counting(), x, method="sampled_shapley", path_count=10,
                                baseline=x.head(1))
    assert len(answers) == 200 and all(adds_up(a, 1e-9) for a in answers)
    # The instances' outputs, the baseline's, then one call for every coalition.
    assert len(calls) == 3 and calls[-1] == 200 * 10 * (len(FEATURES) + 1)
    assert not any(math.isnan(a["approximationError"]) for a in answers)


def test_an_explainer_builds_treeshap_once_for_many_requests(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shap

    built: list[int] = []
    real = shap.TreeExplainer

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(shap, "TreeExplainer", counting)
    x = data()
    model = xgboost.XGBRegressor(n_estimators=20, max_depth=3, n_jobs=1).fit(x, target(x))
    explainer = Explainer(model, baseline=x.median().to_frame().T)
    first = explainer.explain(x.head(2))
    second = explainer.explain(x.iloc[5:8])
    assert len(built) == 1
    assert len(first) == 2 and len(second) == 3 and all(map(adds_up, first + second))
    assert first == explain_instances(model, x.head(2), baseline=x.median().to_frame().T)
    with pytest.raises(InvalidArgument) as bad:
        Explainer(model, path_count=99)
    assert bad.value.field == "path_count"

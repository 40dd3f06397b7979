"""Each flavor saves and loads back a model that predicts exactly what the original did."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.errors import DataCorruption, InvalidArgument, MissingDependency, UnsafeModel
from shipyard.registry import flavors
from shipyard.registry.flavors import CustomPredictor, LoadOptions
from shipyard.registry.flavors._manifest import MANIFEST_NAME, Manifest

NUMERIC = ["visits", "time_on_site"]
CATEGORICAL = ["source", "industry"]


def preprocessor() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )


def round_trip(model: Any, directory: Path, options: LoadOptions | None = None) -> Any:
    model_dir = directory / "model"
    model_dir.mkdir()
    flavors.save(model, model_dir)
    _, loaded = flavors.load(model_dir, options or LoadOptions())
    return loaded


def test_sklearn_pipeline_with_column_transformer(
    tmp_path: Path, leads: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = leads
    model = Pipeline([("pre", preprocessor()), ("lr", LinearRegression())]).fit(X, y)
    loaded = round_trip(model, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_sklearn_classifier(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = np.where(X[:, 0] > 0, "hot", "cold")
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    loaded = round_trip(model, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_seed_002_pipeline_column_transformer_and_xgboost(
    tmp_path: Path, leads: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = leads
    model = Pipeline(
        [("pre", preprocessor()), ("xgb", xgboost.XGBRegressor(n_estimators=20, max_depth=3))]
    ).fit(X, y)
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    manifest = flavors.save(model, model_dir)
    assert manifest.flavor == "sklearn-composite"
    # The booster is in XGBoost's own format, the preprocessing in skops: no pickle anywhere.
    assert sorted(manifest.files) == ["model.ubj", "preprocessor.skops"]
    assert manifest.packages["xgboost"] == xgboost.__version__
    _, loaded = flavors.load(model_dir, LoadOptions())
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_pipeline_ending_in_lightgbm_classifier(
    tmp_path: Path, leads: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = leads
    labels = np.where(y > np.median(y), "hot", "cold")
    clf = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1)
    model = Pipeline([("pre", preprocessor()), ("lgbm", clf)]).fit(X, labels)
    loaded = round_trip(model, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("kind", ["regressor", "classifier", "booster"])
def test_xgboost_native(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(100, 4)), columns=list("abcd"))
    y = (X["a"] > 0).astype(int).to_numpy()
    model: Any
    if kind == "regressor":
        model = xgboost.XGBRegressor(n_estimators=10).fit(X, X["b"])
        expected = model.predict(X)
    elif kind == "classifier":
        model = xgboost.XGBClassifier(n_estimators=10).fit(X, y)
        expected = model.predict_proba(X)
    else:
        model = xgboost.train({"max_depth": 2}, xgboost.DMatrix(X, label=y), 5)
        expected = model.predict(xgboost.DMatrix(X))
    loaded = round_trip(model, tmp_path)
    got = loaded.predict_proba(X) if kind == "classifier" else loaded.predict(X)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kind", ["regressor", "classifier", "booster"])
def test_lightgbm_native(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    model: Any
    if kind == "regressor":
        model = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, X["a"] * 2)
    elif kind == "classifier":
        labels = np.where(X["a"] > 0, "yes", "no")
        model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, labels)
    else:
        data = lightgbm.Dataset(X, label=X["b"], params={"verbose": -1})
        model = lightgbm.train({"verbose": -1}, data, num_boost_round=5)
    loaded = round_trip(model, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_custom_predictor_with_artifacts(tmp_path: Path) -> None:
    from tests.registry.registry_predictors import ScalePredictor

    art = tmp_path / "art"
    art.mkdir()
    (art / "params.json").write_text(json.dumps({"factor": 2.5}))
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    manifest = flavors.save(CustomPredictor(ScalePredictor, artifacts=art), model_dir)
    assert manifest.options["class"] == "tests.registry.registry_predictors:ScalePredictor"
    assert "artifacts/params.json" in manifest.files
    _, loaded = flavors.load(model_dir, LoadOptions())
    assert loaded.predict(pd.DataFrame({"x": [1.0, 2.0]})) == [2.5, 5.0]


def test_seed_002_custom_predictor_without_pickles(
    tmp_path: Path, leads: tuple[pd.DataFrame, np.ndarray]
) -> None:
    import skops.io as sio

    from tests.registry.registry_predictors import LeadScoringPredictor

    X, y = leads
    pre = preprocessor().fit(X)
    booster = xgboost.XGBRegressor(n_estimators=10).fit(pre.transform(X), y)
    art = tmp_path / "art"
    art.mkdir()
    sio.dump(pre, art / "preprocessor.skops")
    booster.save_model(str(art / "model.ubj"))
    loaded = round_trip(CustomPredictor(LeadScoringPredictor, artifacts=art), tmp_path)
    expected = booster.predict(pre.transform(X))
    np.testing.assert_allclose(loaded.predict(X), expected, rtol=1e-6)


def test_custom_predictor_must_be_importable(tmp_path: Path) -> None:
    class Local:
        def load(self, path: str) -> None: ...

        def predict(self, rows: Any) -> Any: ...

    with pytest.raises(InvalidArgument, match="importable"):
        flavors.save(CustomPredictor(Local), tmp_path)


def test_unsupported_object_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"cannot register a builtins\.dict") as info:
        flavors.save({"weights": [1, 2]}, tmp_path)
    assert info.value.field == "model"


def test_files_from_paths(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(50, 2)), columns=["a", "b"])
    booster = xgboost.train({}, xgboost.DMatrix(X, label=X["a"]), 3)
    booster.save_model(str(tmp_path / "m.json"))
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    assert flavors.save(tmp_path / "m.json", model_dir).flavor == "xgboost"
    _, loaded = flavors.load(model_dir, LoadOptions())
    np.testing.assert_array_equal(loaded.predict(X), booster.predict(xgboost.DMatrix(X)))
    (tmp_path / "bogus.json").write_text('{"not": "a model"}')
    other = tmp_path / "o"
    other.mkdir()
    with pytest.raises(InvalidArgument, match="not an XGBoost model"):
        flavors.save(tmp_path / "bogus.json", other)


def test_onnx_without_runtime_is_missing_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes "import onnxruntime" fail as if it were absent.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")  # stored as bytes, parsed only on load
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    assert flavors.save(tmp_path / "m.onnx", model_dir).flavor == "onnx"
    with pytest.raises(MissingDependency, match=r"shipyard\[onnx\]"):
        flavors.load(model_dir, LoadOptions())


def test_onnx_round_trip(tmp_path: Path) -> None:
    import onnx
    helper = onnx.helper
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 2])
    out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 1])
    weights = helper.make_tensor("w", onnx.TensorProto.FLOAT, [2, 1], [2.0, 3.0])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [out], [weights]
    )
    model = helper.make_model(graph)
    loaded = round_trip(model, tmp_path)
    got = loaded.predict(pd.DataFrame({"a": [1.0], "b": [1.0]}))
    np.testing.assert_allclose(got, [[5.0]])


def test_tampered_file_is_data_corruption(tmp_path: Path) -> None:
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    flavors.save(model, model_dir)
    with (model_dir / "model.skops").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(DataCorruption, match=r"model\.skops") as info:
        flavors.load(model_dir, LoadOptions())
    assert info.value.details["file"] == "model.skops"


def test_extra_file_and_unsafe_manifest_path_are_refused(tmp_path: Path) -> None:
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    flavors.save(model, model_dir)
    (model_dir / "planted.py").write_text("print('hi')")
    with pytest.raises(DataCorruption, match=r"planted\.py"):
        flavors.load(model_dir, LoadOptions())
    (model_dir / "planted.py").unlink()
    data = json.loads((model_dir / MANIFEST_NAME).read_text())
    data["files"]["../escape"] = {"sha256": "0" * 64, "size": 1}
    (model_dir / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(DataCorruption, match="unsafe path"):
        Manifest.read(model_dir)


class _Canary:
    """Unpickling this creates the canary file: the attack a pickle can carry."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.path),))


def test_pickle_is_refused_without_trust_and_never_unpickled(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(_Canary(str(canary))))
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    with pytest.raises(UnsafeModel, match="trusted_digest=") as info:
        flavors.save(evil, model_dir)
    digest = info.value.details["digest"]
    with pytest.raises(UnsafeModel, match="not the trusted digest"):
        flavors.save(evil, model_dir, trusted_digest="0" * 64)
    # Trusted: stored, but still not unpickled until a load that allows it.
    manifest = flavors.save(evil, model_dir, trusted_digest=digest)
    assert manifest.flavor == "pickle"
    with pytest.raises(UnsafeModel, match="only load_model"):
        flavors.load(model_dir, LoadOptions())
    assert not canary.exists()


def test_pickle_detected_by_content_whatever_the_name(tmp_path: Path) -> None:
    disguised = tmp_path / "model.txt"
    disguised.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(UnsafeModel):
        flavors.save(disguised, tmp_path / "m")


def test_skops_type_outside_trust_list_is_refused(tmp_path: Path) -> None:
    import operator

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    # A FunctionTransformer holding a plain function: skops records _operator.neg, which is
    # not on the built-in list (any function could be named the same way).
    model = FunctionTransformer(operator.neg).fit([[1.0]])
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    flavors.save(model, model_dir)
    untrusted = sio.get_untrusted_types(file=model_dir / "model.skops")
    with pytest.raises(UnsafeModel, match="SHIPYARD_TRUSTED_TYPES") as info:
        flavors.load(model_dir, LoadOptions())
    assert info.value.details["types"] == sorted(untrusted)
    # Trust comes from configuration only, and then the load succeeds.
    _, loaded = flavors.load(model_dir, LoadOptions(trusted_types=tuple(untrusted)))
    assert untrusted == ["_operator.neg"]
    np.testing.assert_allclose(loaded.transform(np.array([[1.0]])), [[-1.0]])

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


def _booster_file(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    import xgboost

    frame, y = _data(3)
    numeric = frame[["pages"]].astype("float64")
    booster = xgboost.train({"max_depth": 3}, xgboost.DMatrix(numeric, label=y), 10)
    path = tmp_path / "booster.ubj"
    booster.save_model(str(path))
    return path, numeric


def _blob_path(tmp_path: Path, sy: ModuleType, model: str, file: str) -> Path:
    """Where the artifact store (the same directory in both modes) keeps ``file`` of
    ``model``'s version 1."""
    from shipyard.artifacts import open_artifact_store
    from shipyard.artifacts.paths import blob_key

    store = open_artifact_store(str(tmp_path / "blobs"), cached=False)
    tree = store.read_tree_manifest(sy.get_model_version(model, version=1).tree_digest)
    return tmp_path / "blobs" / blob_key(tree[file].digest)


def test_model_file_round_trip_and_damaged_cache(sy: ModuleType, tmp_path: Path) -> None:
    import xgboost

    path, numeric = _booster_file(tmp_path)
    original = path.read_bytes()
    expected = xgboost.Booster(model_file=str(path)).inplace_predict(numeric)
    mv = sy.register_model("booster", path)
    assert path.read_bytes() == original  # the caller's file is only read
    assert _blob_path(tmp_path, sy, "booster", "model.ubj").read_bytes() == original
    first = sy.load_model(mv.uri)
    np.testing.assert_array_equal(first.predict(numeric), expected)
    cached = first.path / "model.ubj"
    damaged = bytearray(cached.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    cached.write_bytes(bytes(damaged))
    again = sy.load_model(mv.uri)  # the damaged entry is fetched again, never parsed
    np.testing.assert_array_equal(again.predict(numeric), expected)
    assert (again.path / "model.ubj").read_bytes() == original
    manifest = again.path / "shipyard-model.json"
    stored_manifest = manifest.read_bytes()
    edited = stored_manifest.replace(b'"metadata": {}', b'"metadata": {"x": 1}')
    assert edited != stored_manifest
    manifest.write_bytes(edited)
    assert sy.load_model(mv.uri).manifest.metadata == {}
    assert manifest.read_bytes() == stored_manifest


def test_damaged_stored_model_is_data_corruption(sy: ModuleType, tmp_path: Path) -> None:
    from shipyard.errors import DataCorruption

    path, _ = _booster_file(tmp_path)
    mv = sy.register_model("booster", path)
    blob = _blob_path(tmp_path, sy, "booster", "model.ubj")
    data = bytearray(blob.read_bytes())
    data[len(data) // 3] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(DataCorruption):
        sy.load_model(mv.uri)
    with pytest.raises(DataCorruption):
        sy.download_model(mv.uri, tmp_path / "out")
    assert not (tmp_path / "out").exists()

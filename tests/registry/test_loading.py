"""load_model: references, signature checks on predict, digest checks, pickle trust."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.artifacts import ArtifactStore
from shipyard.artifacts.paths import blob_key
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import DataCorruption, InvalidArgument, NotFound, UnsafeModel
from shipyard.registry import (
    CustomPredictor,
    get_model,
    load_model,
    promote_if_better_on_data,
    register_model,
)
from shipyard.store import Store
from tests.registry.registry_predictors import ScalePredictor


def lead_pipeline(X: pd.DataFrame, y: np.ndarray) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["visits", "time_on_site"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["source", "industry"]),
        ]
    )
    return Pipeline([("pre", pre), ("xgb", xgboost.XGBRegressor(n_estimators=10))]).fit(X, y)


def test_seed_002_register_promote_load_predict(
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    settings: Settings,
    leads: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = leads
    model = lead_pipeline(X, y)
    mv = register_model(
        store,
        artifacts,
        ctx,
        "lead-scoring",
        model,
        input_example=X.head(),
        metrics={"rmse": 0.1},
        aliases=["production"],
    )
    loaded = load_model(store, artifacts, "p1", "models:/lead-scoring@production", settings)
    assert loaded.version == mv and loaded.flavor == "sklearn-composite"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # Records and columns in another order are accepted and put in signature order.
    records = X.head(3)[["industry", "source", "time_on_site", "visits"]].to_dict("records")
    np.testing.assert_array_equal(loaded.predict(records), model.predict(X.head(3)))
    example = loaded.input_example()
    assert list(example.columns) == list(X.columns) and len(example) == 5
    for ref in ["lead-scoring", "lead-scoring:1", "lead-scoring@production"]:
        assert load_model(store, artifacts, "p1", ref, settings).version.version == 1


def test_signature_mismatch_names_column_and_row(
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    settings: Settings,
    leads: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = leads
    register_model(store, artifacts, ctx, "lead", lead_pipeline(X, y), input_example=X)
    loaded = load_model(store, artifacts, "p1", "lead", settings)
    bad = X.head(4).copy()
    bad["visits"] = bad["visits"].astype(object)
    bad.loc[2, "visits"] = "many"
    with pytest.raises(InvalidArgument, match=r"column 'visits', row 2: expected integer") as info:
        loaded.predict(bad)
    assert info.value.field == "visits"
    with pytest.raises(InvalidArgument, match="missing column 'industry'") as info:
        loaded.predict(X.drop(columns=["industry"]))
    assert info.value.field == "industry"
    nulls = X.head(3).copy()
    nulls["source"] = nulls["source"].astype(object)
    nulls.loc[1, "source"] = None
    with pytest.raises(InvalidArgument, match=r"column 'source', row 1: null"):
        loaded.predict(nulls)
    floats = X.head(3).copy()
    floats["visits"] = floats["visits"] + 0.5
    with pytest.raises(InvalidArgument, match=r"column 'visits', row 0: expected integer"):
        loaded.predict(floats)


def test_custom_predictor_registered_and_loaded(
    tmp_path: Path,
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    settings: Settings,
) -> None:
    art = tmp_path / "art"
    art.mkdir()
    (art / "params.json").write_text('{"factor": 3}')
    mv = register_model(
        store,
        artifacts,
        ctx,
        "scaler",
        CustomPredictor(ScalePredictor, artifacts=art),
        input_example=pd.DataFrame({"x": [1.0]}),
    )
    assert mv.flavor == "custom"
    loaded = load_model(store, artifacts, "p1", "scaler:1", settings)
    assert loaded.predict([{"x": 2.0}, {"x": 0.5}]) == [6.0, 1.5]


def _tamper_blob(artifacts: ArtifactStore, tree_digest: str, name: str) -> None:
    digest = artifacts.read_tree_manifest(tree_digest)[name].digest
    path = Path(artifacts.location) / blob_key(digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_tampered_stored_file_is_data_corruption(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext, settings: Settings
) -> None:
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    mv = register_model(store, artifacts, ctx, "lin", model)
    _tamper_blob(artifacts, mv.tree_digest, "model.skops")
    with pytest.raises(DataCorruption):
        load_model(store, artifacts, "p1", "lin", settings)


def test_tampered_cache_is_replaced_from_the_store(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext, settings: Settings
) -> None:
    model = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0]}), [0.0, 1.0])
    mv = register_model(store, artifacts, ctx, "lin", model)
    loaded = load_model(store, artifacts, "p1", "lin", settings)
    original = (loaded.path / "model.skops").read_bytes()
    with (loaded.path / "model.skops").open("ab") as f:
        f.write(b"junk")
    # The manifest still matches the store, so the per-file check catches the edit, and
    # the entry is fetched again from the verified store.
    again = load_model(store, artifacts, "p1", "lin", settings)
    assert (again.path / "model.skops").read_bytes() == original
    assert again.predict(pd.DataFrame({"x": [2.0]})) == pytest.approx([2.0])
    assert mv.tree_digest == again.path.name
    (again.path / "shipyard-model.json").write_text("{}")
    shutil.rmtree(again.path / "artifacts", ignore_errors=True)
    assert load_model(store, artifacts, "p1", "lin", settings).version.version == 1


class _Canary:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.path),))


def test_malicious_pickle_is_refused_and_never_run(
    tmp_path: Path, store: Store, artifacts: ArtifactStore, ctx: RequestContext
) -> None:
    canary = tmp_path / "canary"
    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(_Canary(str(canary))))
    with pytest.raises(UnsafeModel, match="trusted_digest"):
        register_model(store, artifacts, ctx, "evil", evil)
    with pytest.raises(UnsafeModel, match="not the trusted digest"):
        register_model(store, artifacts, ctx, "evil", evil, trusted_digest="ab" * 32)
    assert not canary.exists()
    with pytest.raises(NotFound, match="no model named"):
        get_model(store, "p1", "evil")


def test_trusted_pickle_loads_only_in_load_model(
    tmp_path: Path,
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    settings: Settings,
) -> None:
    import hashlib

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    model = LinearRegression().fit(X, [0.0, 2.0, 4.0])
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    mv = register_model(
        store, artifacts, ctx, "legacy", path, trusted_digest=digest, input_example=X
    )
    assert mv.flavor == "pickle"
    # The registrant's trusted_digest is not the loader's trust: the loader names it.
    with pytest.raises(UnsafeModel, match=re.escape(f'trusted_digests=["{digest}"]')):
        load_model(store, artifacts, "p1", "legacy", settings)
    loaded = load_model(store, artifacts, "p1", "legacy", settings, trusted_digests=[digest])
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))
    # Evaluation inside Shipyard (possibly the server) never unpickles, even where the
    # configuration trusts the digest.
    import dataclasses

    trusting = dataclasses.replace(settings, trusted_digests=(digest,))
    assert load_model(store, artifacts, "p1", "legacy", trusting).flavor == "pickle"
    with pytest.raises(UnsafeModel, match="only load_model"):
        promote_if_better_on_data(
            store, artifacts, ctx, "legacy", 1, X, [0.0, 2.0, 4.0], settings=trusting
        )


def test_untrusted_skops_type_is_refused_on_load(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext, settings: Settings
) -> None:
    import dataclasses
    import operator

    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(operator.neg).fit(np.array([[1.0]]))
    register_model(store, artifacts, ctx, "neg", model)
    with pytest.raises(UnsafeModel, match=r"_operator\.neg"):
        load_model(store, artifacts, "p1", "neg", settings)
    trusting = dataclasses.replace(settings, trusted_types=("_operator.neg",))
    assert load_model(store, artifacts, "p1", "neg", trusting).model.transform(
        np.array([[2.0]])
    ).tolist() == [[-2.0]]


def test_seed_002_flow_promotes_only_the_better_model(
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    settings: Settings,
    leads: tuple[pd.DataFrame, np.ndarray],
) -> None:
    from shipyard.registry import promote_if_better

    X, y = leads
    train, test = slice(0, 150), slice(150, None)
    decisions = []
    models = {}
    for depth in (1, 4, 2):
        model = lead_pipeline(X.iloc[train], y[train])
        model.set_params(xgb__max_depth=depth).fit(X.iloc[train], y[train])
        rmse = float(np.sqrt(np.mean((model.predict(X.iloc[test]) - y[test]) ** 2)))
        mv = register_model(
            store,
            artifacts,
            ctx,
            "lead-scoring",
            model,
            input_example=X.head(),
            metrics={"rmse": rmse},
        )
        models[mv.version] = (model, rmse)
        decisions.append(promote_if_better(store, artifacts, ctx, "lead-scoring", mv.version))
    assert decisions[0].promoted and decisions[0].semver == "1.0.0"
    best = min(models, key=lambda v: models[v][1])
    production = load_model(store, artifacts, "p1", "lead-scoring@production", settings)
    assert production.version.version == best
    np.testing.assert_array_equal(
        production.predict(X.iloc[test]), models[best][0].predict(X.iloc[test])
    )
    promoted = [d for d in decisions if d.promoted]
    assert [d.semver for d in promoted] == [f"1.0.{i}" for i in range(len(promoted))]

"""Registering model files by path and loading them back on the fast path: the file is read
once into the store (in the kernel when large), checked cheaply rather than parsed at
registration, and verified before every parse."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost

from shipyard.artifacts import ArtifactStore, kernel_copy
from shipyard.artifacts.paths import blob_key
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import DataCorruption, InvalidArgument, NotFound
from shipyard.registry import flavors, get_model, load_model, register_model
from shipyard.registry.models import ModelVersion
from shipyard.store import Store


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(rng.normal(size=(300, 4)), columns=["a", "b", "c", "d"])


@pytest.fixture
def booster_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    booster = xgboost.train({"max_depth": 4}, xgboost.DMatrix(frame, label=frame["a"]), 20)
    path = tmp_path / "model.ubj"
    booster.save_model(str(path))
    return path


@pytest.fixture
def kernel_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every file through the large-file path (kernel copy, hashing beside it)."""
    monkeypatch.setattr(kernel_copy, "MIN_SIZE", 1)


def _expected(booster_file: Path, frame: pd.DataFrame) -> np.ndarray:
    return xgboost.Booster(model_file=str(booster_file)).inplace_predict(frame)


@pytest.mark.parametrize("large", [False, True])
def test_registered_file_is_stored_as_is_and_loads(
    request: pytest.FixtureRequest,
    large: bool,
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    settings: Settings,
    booster_file: Path,
    frame: pd.DataFrame,
) -> None:
    if large:
        request.getfixturevalue("kernel_path")
    original = booster_file.read_bytes()
    mv = register_model(store, artifacts, ctx, "xgb", booster_file)
    assert booster_file.read_bytes() == original  # the user's file is only read
    tree = artifacts.read_tree_manifest(mv.tree_digest)
    assert sorted(tree) == ["model.ubj", "shipyard-model.json"]
    assert artifacts.get_bytes(tree["model.ubj"].digest) == original
    cold = load_model(store, artifacts, "p1", "xgb", settings)
    warm = load_model(store, artifacts, "p1", "xgb", settings)
    for loaded in (cold, warm):
        np.testing.assert_array_equal(loaded.predict(frame), _expected(booster_file, frame))
    assert cold.manifest.files["model.ubj"].sha256 == tree["model.ubj"].digest


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda data: data[: len(data) // 2], "cut short"),
        (lambda data: b'{"not": "a model"}', "not an XGBoost model"),
        (lambda data: b"", "not an XGBoost model"),
        (lambda data: b"\x00" * 100, "not an XGBoost model"),
    ],
    ids=["truncated", "other-json", "empty", "binary-junk"],
)
def test_bad_xgboost_files_are_refused_and_nothing_is_registered(
    content: object,
    message: str,
    tmp_path: Path,
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    booster_file: Path,
) -> None:
    bad = tmp_path / "bad.ubj"
    bad.write_bytes(content(booster_file.read_bytes()))  # type: ignore[operator]
    with pytest.raises(InvalidArgument, match=message) as caught:
        register_model(store, artifacts, ctx, "xgb", bad)
    assert caught.value.field == "model"
    with pytest.raises(NotFound):
        get_model(store, "p1", "xgb")


@pytest.mark.usefixtures("kernel_path")
@pytest.mark.parametrize("damage", ["flip", "truncate", "delete-manifest-file"])
def test_damaged_cache_is_fetched_again(
    damage: str,
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    settings: Settings,
    booster_file: Path,
    frame: pd.DataFrame,
) -> None:
    register_model(store, artifacts, ctx, "xgb", booster_file)
    first = load_model(store, artifacts, "p1", "xgb", settings)
    cached = first.path / "model.ubj"
    data = bytearray(cached.read_bytes())
    if damage == "flip":
        # Same size: only the hash can tell, and it must tell before XGBoost parses (its
        # parser crashes the process on some damaged files).
        data[len(data) // 2] ^= 0x01
        cached.write_bytes(bytes(data))
    elif damage == "truncate":
        cached.write_bytes(bytes(data[:100]))
    else:
        cached.unlink()
    again = load_model(store, artifacts, "p1", "xgb", settings)
    np.testing.assert_array_equal(again.predict(frame), _expected(booster_file, frame))
    assert (again.path / "model.ubj").read_bytes() == booster_file.read_bytes()


@pytest.mark.usefixtures("kernel_path")
def test_damaged_store_blob_is_data_corruption(
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    settings: Settings,
    booster_file: Path,
) -> None:
    mv = register_model(store, artifacts, ctx, "xgb", booster_file)
    digest = artifacts.read_tree_manifest(mv.tree_digest)["model.ubj"].digest
    blob = Path(artifacts.location) / blob_key(digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 3] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(DataCorruption, match="corrupt"):
        load_model(store, artifacts, "p1", "xgb", settings)
    cache = settings.home / "cache" / "models"
    assert not (cache / mv.tree_digest).exists()  # no unverified copy left to be trusted


def _packaged(directory: Path, booster_file: Path) -> Path:
    """``booster_file`` packaged by ``flavors.save`` into the new ``directory``."""
    directory.mkdir()
    flavors.save(booster_file, directory)
    return directory


def test_packaged_directory_changed_after_saving_is_refused(
    tmp_path: Path,
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    booster_file: Path,
) -> None:
    packaged = _packaged(tmp_path / "packaged", booster_file)
    with (packaged / "model.ubj").open("r+b") as f:
        f.seek(10)
        f.write(b"X")
    with pytest.raises(DataCorruption, match=r"model\.ubj"):
        register_model(store, artifacts, ctx, "xgb", packaged)
    with pytest.raises(NotFound):
        get_model(store, "p1", "xgb")
    shutil.rmtree(packaged)
    packaged = _packaged(packaged, booster_file)
    (packaged / "extra.txt").write_text("not in the manifest")
    with pytest.raises(DataCorruption, match=r"extra\.txt"):
        register_model(store, artifacts, ctx, "xgb", packaged)


def test_packaged_directory_with_a_wrong_size_stores_nothing(
    tmp_path: Path,
    store: Store,
    artifacts: ArtifactStore,
    ctx: RequestContext,
    booster_file: Path,
) -> None:
    packaged = _packaged(tmp_path / "packaged", booster_file)
    with (packaged / "model.ubj").open("ab") as f:
        f.write(b"more")
    before = sorted(artifacts.iter_digests())
    with pytest.raises(DataCorruption, match="size"):
        register_model(store, artifacts, ctx, "xgb", packaged)
    assert sorted(artifacts.iter_digests()) == before


def test_the_model_cache_refuses_a_tree_digest_that_is_not_one(
    store: Store, artifacts: ArtifactStore, ctx: RequestContext, booster_file: Path,
    tmp_path: Path,
) -> None:
    from shipyard.registry.cache import cached_tree

    fetched: list[str] = []

    def fetch(version: ModelVersion, target: Path) -> None:
        fetched.append(version.tree_digest)
        artifacts.get_tree(version.tree_digest, target)

    root = tmp_path / "cache"
    mv = register_model(store, artifacts, ctx, "xgb", booster_file)
    path, _ = cached_tree(mv, root, fetch)
    assert path == root / mv.tree_digest and fetched == [mv.tree_digest]
    for hostile in ("../../etc", "/home/user", mv.tree_digest.upper(), ""):
        with pytest.raises(DataCorruption, match="invalid tree digest"):
            cached_tree(mv.model_copy(update={"tree_digest": hostile}), root, fetch)
    assert fetched == [mv.tree_digest]  # nothing was fetched for a hostile digest
    assert sorted(p.name for p in root.iterdir()) == [mv.tree_digest]

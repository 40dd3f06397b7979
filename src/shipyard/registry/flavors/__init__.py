"""Model packaging: detect an object's flavor, save it in a safe format, load it back.

A packaged model is a directory holding the flavor's files and ``shipyard-model.json`` (the
manifest: flavor, framework, Python and package versions, signature, every file's sha256).
``save`` writes one; ``load`` verifies every file against the manifest before the flavor
parses a byte.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.errors import DataCorruption, FailedPrecondition, InvalidArgument
from shipyard.registry.flavors._base import Flavor, LoadOptions, Saved
from shipyard.registry.flavors._manifest import (
    MANIFEST_NAME,
    Manifest,
    hash_file,
    hash_tree,
    package_versions,
    verify_tree,
)
from shipyard.registry.flavors.composite import CompositeFlavor
from shipyard.registry.flavors.custom import CustomFlavor, CustomPredictor
from shipyard.registry.flavors.lightgbm import LightGBMFlavor
from shipyard.registry.flavors.onnx import OnnxFlavor
from shipyard.registry.flavors.onnx import save_file as save_onnx_file
from shipyard.registry.flavors.pickle import PickleFlavor, looks_like_pickle, save_trusted
from shipyard.registry.flavors.sklearn import SklearnFlavor
from shipyard.registry.flavors.xgboost import XGBoostFlavor
from shipyard.registry.signature import Signature, infer_signature, to_frame

__all__ = [
    "FLAVORS",
    "MANIFEST_NAME",
    "CustomPredictor",
    "LoadOptions",
    "Manifest",
    "load",
    "save",
]

# Detection order matters: a Pipeline ending in a booster is also an sklearn estimator.
FLAVORS: tuple[Flavor, ...] = (
    CompositeFlavor(),
    SklearnFlavor(),
    XGBoostFlavor(),
    LightGBMFlavor(),
    OnnxFlavor(),
    CustomFlavor(),
    PickleFlavor(),
)
_BY_NAME = {f.name: f for f in FLAVORS}
INPUT_EXAMPLE = "input_example.json"
MAX_EXAMPLE_ROWS = 20
_ACCEPTED = (
    "a scikit-learn estimator or Pipeline, an XGBoost or LightGBM model, an ONNX ModelProto, "
    "a CustomPredictor, or a path to a .skops, .ubj/.json (XGBoost), .txt (LightGBM), .onnx "
    "or packaged model directory"
)


def save(
    model_or_path: Any,
    model_dir: Path,
    *,
    signature: Signature | Mapping[str, Any] | None = None,
    input_example: Any = None,
    metadata: Mapping[str, Any] | None = None,
    trusted_digest: str | None = None,
) -> Manifest:
    """Package ``model_or_path`` into the empty directory ``model_dir``; return its manifest.

    Raises ``InvalidArgument`` for an unsupported object, ``UnsafeModel`` for a pickle file
    without a matching ``trusted_digest``.
    """
    sig = _signature(signature, input_example)
    if isinstance(model_or_path, str | Path):
        source = Path(model_or_path)
        if source.is_dir():
            return _adopt_directory(source, model_dir, trusted_digest)
        flavor_name, saved = _save_file(source, model_dir, trusted_digest)
    else:
        flavor = next((f for f in FLAVORS if f.matches(model_or_path)), None)
        if flavor is None:
            raise InvalidArgument(
                f"cannot register a {type(model_or_path).__module__}."
                f"{type(model_or_path).__qualname__}: pass {_ACCEPTED}",
                field="model",
            )
        flavor_name, saved = flavor.name, flavor.save(model_or_path, model_dir)
    example_file = None
    if input_example is not None:
        example_file = INPUT_EXAMPLE
        frame = to_frame(input_example, None).head(MAX_EXAMPLE_ROWS)
        text = frame.to_json(orient="split", date_format="iso", index=False)
        (model_dir / INPUT_EXAMPLE).write_text(text, encoding="utf-8")
    manifest = Manifest(
        flavor=flavor_name,
        framework=saved.framework,
        framework_version=saved.framework_version,
        files=hash_tree(model_dir),
        packages=package_versions(saved.packages),
        signature=sig,
        options=saved.options,
        metadata=dict(metadata or {}),
        input_example=example_file,
    )
    _check_json(manifest)
    manifest.write(model_dir)
    return manifest


def load(model_dir: Path, options: LoadOptions) -> tuple[Manifest, Any]:
    """Verify a packaged model directory and load it; ``DataCorruption`` on any mismatch."""
    manifest = Manifest.read(model_dir)
    verify_tree(model_dir, manifest)
    flavor = _BY_NAME.get(manifest.flavor)
    if flavor is None:
        raise FailedPrecondition(
            f"unknown model flavor {manifest.flavor!r}: it needs a newer Shipyard "
            f"(this one knows {sorted(_BY_NAME)})"
        )
    return manifest, flavor.load(model_dir, manifest, options)


def read_input_example(model_dir: Path, manifest: Manifest) -> Any:
    import pandas as pd

    if manifest.input_example is None or manifest.input_example not in manifest.files:
        return None
    data = json.loads((model_dir / manifest.input_example).read_text(encoding="utf-8"))
    return pd.DataFrame(data["data"], columns=data["columns"])


def _signature(
    signature: Signature | Mapping[str, Any] | None, input_example: Any
) -> Signature | None:
    if isinstance(signature, Signature):
        return signature
    if signature is not None:
        return Signature.from_dict(signature)
    if input_example is not None:
        return infer_signature(input_example)
    return None


def _save_file(source: Path, model_dir: Path, trusted: str | None) -> tuple[str, Saved]:
    if not source.is_file():
        raise InvalidArgument(f"no such model file: {source}", field="model")
    suffix = source.suffix.lower()
    if looks_like_pickle(source):
        return "pickle", save_trusted(source, model_dir, trusted)
    if suffix == ".skops":
        import sklearn

        shutil.copyfile(source, model_dir / "model.skops")
        return "sklearn", Saved(
            "scikit-learn", sklearn.__version__, ("scikit-learn", "skops"), {"file": "model.skops"}
        )
    if suffix in (".ubj", ".json"):
        import xgboost

        name = "model" + suffix
        shutil.copyfile(source, model_dir / name)
        # Parsing the file proves it is an XGBoost model before it is registered as one.
        try:
            xgboost.Booster(model_file=str(model_dir / name))
        except xgboost.core.XGBoostError as exc:
            raise InvalidArgument(
                f"{source.name} is not an XGBoost model: {str(exc).splitlines()[0]}",
                field="model",
            ) from None
        return "xgboost", Saved(
            "xgboost", xgboost.__version__, ("xgboost",), {"file": name, "estimator": "Booster"}
        )
    if suffix == ".txt":
        import lightgbm

        shutil.copyfile(source, model_dir / "model.txt")
        try:
            lightgbm.Booster(model_file=str(model_dir / "model.txt"))
        except lightgbm.basic.LightGBMError as exc:
            raise InvalidArgument(
                f"{source.name} is not a LightGBM model: {exc}", field="model"
            ) from None
        return "lightgbm", Saved(
            "lightgbm",
            lightgbm.__version__,
            ("lightgbm",),
            {"file": "model.txt", "kind": "booster"},
        )
    if suffix == ".onnx":
        return "onnx", save_onnx_file(source, model_dir)
    raise InvalidArgument(f"unsupported model file {source.name}: pass {_ACCEPTED}", field="model")


def _adopt_directory(source: Path, model_dir: Path, trusted: str | None) -> Manifest:
    """Register a directory packaged earlier (by the SDK, before an upload)."""
    if not (source / MANIFEST_NAME).is_file():
        raise InvalidArgument(
            f"{source} has no {MANIFEST_NAME}: pass a model file or object instead",
            field="model",
        )
    manifest = Manifest.read(source)
    verify_tree(source, manifest)
    if manifest.flavor not in _BY_NAME:
        raise InvalidArgument(f"unknown model flavor {manifest.flavor!r}", field="model")
    if manifest.flavor == "pickle":
        from shipyard.registry.flavors.pickle import FILE, check_trust

        name = str(manifest.options.get("file", FILE))
        if name not in manifest.files:
            raise DataCorruption(f"the manifest names {name!r} but does not list it")
        check_trust(hash_file(source / name).sha256, trusted, name)
    shutil.copytree(source, model_dir, dirs_exist_ok=True, symlinks=False)
    return manifest


def _check_json(manifest: Manifest) -> None:
    try:
        json.dumps(manifest.to_dict(), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"model metadata must be JSON (strings, numbers, lists, objects): {exc}",
            field="metadata",
        ) from None

"""Registering a model file (rather than an object): which flavor a file is, checked cheaply.

Native formats (XGBoost, LightGBM, skops, ONNX) are stored as the user's file, read once
while it is hashed into the store, so a 50 MB model is not first copied to a scratch
directory. A pickle is the exception: it is copied before it is hashed against the digest
the user trusted, so the bytes checked are the bytes stored.
"""

from __future__ import annotations

from pathlib import Path

from shipyard.errors import InvalidArgument
from shipyard.registry.flavors._base import Saved
from shipyard.registry.flavors.onnx import save_file as save_onnx_file
from shipyard.registry.flavors.pickle import looks_like_pickle, save_trusted

ACCEPTED = (
    "a scikit-learn estimator or Pipeline, an XGBoost or LightGBM model, an ONNX ModelProto, "
    "a CustomPredictor, or a path to a .skops, .ubj/.json (XGBoost), .txt (LightGBM), .onnx "
    "or packaged model directory"
)
# XGBoost writes its "learner" section first, in both UBJSON and JSON.
_HEAD_BYTES = 4096


def save_file(
    source: Path, model_dir: Path, trusted: str | None
) -> tuple[str, Saved, dict[str, Path]]:
    """Return ``(flavor, saved, files kept in place)`` for the model file ``source``.

    Files the flavor writes go to ``model_dir``; the third item maps a name in the model
    directory to a file that stays where it is until the caller stores it.
    """
    if not source.is_file():
        raise InvalidArgument(f"no such model file: {source}", field="model")
    suffix = source.suffix.lower()
    if looks_like_pickle(source):
        return "pickle", save_trusted(source, model_dir, trusted), {}
    if suffix == ".skops":
        import sklearn

        saved = Saved(
            "scikit-learn", sklearn.__version__, ("scikit-learn", "skops"), {"file": "model.skops"}
        )
        return "sklearn", saved, {"model.skops": source}
    if suffix in (".ubj", ".json"):
        import xgboost

        check_xgboost_file(source)
        name = "model" + suffix
        saved = Saved(
            "xgboost", xgboost.__version__, ("xgboost",), {"file": name, "estimator": "Booster"}
        )
        return "xgboost", saved, {name: source}
    if suffix == ".txt":
        return "lightgbm", _lightgbm_saved(source), {"model.txt": source}
    if suffix == ".onnx":
        return "onnx", save_onnx_file(source, model_dir), {}
    raise InvalidArgument(f"unsupported model file {source.name}: pass {ACCEPTED}", field="model")


def check_xgboost_file(source: Path) -> None:
    """Refuse a file that is not an XGBoost model, or that was cut short, without parsing it.

    Parsing a 50 MB booster costs several times copying it; the full parse happens on the
    first load, which reports a damaged file as clearly. This check catches the usual
    mistakes at registration: another JSON file, a truncated upload or copy.
    """
    with source.open("rb") as file:
        head = file.read(_HEAD_BYTES)
        end = file.seek(0, 2)
        file.seek(max(0, end - 64))
        tail = file.read()
    if not head.lstrip().startswith(b"{") or b"learner" not in head:
        raise InvalidArgument(
            f"{source.name} is not an XGBoost model: an XGBoost .ubj or .json model starts "
            "with its 'learner' section (save one with booster.save_model)",
            field="model",
        )
    if not tail.rstrip().endswith(b"}"):
        raise InvalidArgument(
            f"{source.name} is not an XGBoost model: it ends before its closing '}}', so the "
            "file was probably cut short; save or copy it again",
            field="model",
        )


def _lightgbm_saved(source: Path) -> Saved:
    import lightgbm

    # LightGBM text models are small next to boosters of the same quality; parsing proves
    # the file is one before it is registered as one.
    try:
        lightgbm.Booster(model_file=str(source))
    except lightgbm.basic.LightGBMError as exc:
        raise InvalidArgument(
            f"{source.name} is not a LightGBM model: {exc}", field="model"
        ) from None
    options = {"file": "model.txt", "kind": "booster"}
    return Saved("lightgbm", lightgbm.__version__, ("lightgbm",), options)

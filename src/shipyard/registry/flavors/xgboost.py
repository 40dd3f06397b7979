"""XGBoost boosters and scikit-learn wrappers, in XGBoost's own UBJSON (or JSON) format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.errors import DataCorruption
from shipyard.registry.flavors._base import LoadOptions, Saved, model_file, module_of
from shipyard.registry.flavors._manifest import Manifest

FILE = "model.ubj"
# The classes a manifest may ask for. The name in the manifest selects from this table; it
# is never used to import anything.
ESTIMATORS = (
    "Booster",
    "XGBRegressor",
    "XGBClassifier",
    "XGBRanker",
    "XGBRFRegressor",
    "XGBRFClassifier",
)


def is_xgboost(obj: object) -> bool:
    if module_of(obj) != "xgboost":
        return False
    import xgboost

    return isinstance(obj, xgboost.Booster | xgboost.XGBModel)


def save_native(obj: Any, model_dir: Path, file: str = FILE) -> Saved:
    import xgboost

    kind = type(obj).__name__
    if kind not in ESTIMATORS:
        # A user subclass: save the nearest class we know; its extra behaviour is not kept.
        kind = next((c.__name__ for c in type(obj).__mro__ if c.__name__ in ESTIMATORS), "Booster")
        if kind == "Booster" and not isinstance(obj, xgboost.Booster):
            obj = obj.get_booster()
    obj.save_model(str(model_dir / file))
    return Saved("xgboost", xgboost.__version__, ("xgboost",), {"file": file, "estimator": kind})


def load_native(path: Path, estimator: str) -> Any:
    import xgboost

    if estimator not in ESTIMATORS:
        raise DataCorruption(f"unknown XGBoost estimator {estimator!r} in the manifest")
    if estimator == "Booster":
        return BoosterPredictor(xgboost.Booster(model_file=str(path)))
    model = getattr(xgboost, estimator)()
    model.load_model(str(path))
    return model


class BoosterPredictor:
    """A raw ``xgboost.Booster`` with the ``predict(frame)`` every loaded model has."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, data: Any) -> Any:
        # inplace_predict takes a DataFrame directly (no DMatrix copy) and honours
        # categorical columns the booster was trained with.
        return self.booster.inplace_predict(data)


class XGBoostFlavor:
    name = "xgboost"

    def matches(self, obj: object) -> bool:
        return is_xgboost(obj)

    def save(self, obj: Any, model_dir: Path) -> Saved:
        return save_native(obj, model_dir)

    def load(self, model_dir: Path, manifest: Manifest, options: LoadOptions) -> Any:
        path = model_file(model_dir, manifest, FILE)
        return load_native(path, str(manifest.options.get("estimator", "Booster")))

"""LightGBM boosters and scikit-learn wrappers, in LightGBM's native text format.

LightGBM cannot rebuild its scikit-learn wrapper from the text file, so a loaded model is a
``LightGBMPredictor``: the booster plus what the wrapper knew (its kind and, for a
classifier, its classes), with ``predict`` and ``predict_proba`` behaving as the wrapper's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import InvalidArgument, MissingDependency
from shipyard.registry.flavors._base import LoadOptions, Saved, model_file, module_of
from shipyard.registry.flavors._manifest import Manifest

FILE = "model.txt"


def is_lightgbm(obj: object) -> bool:
    if module_of(obj) != "lightgbm":
        return False
    import lightgbm

    return isinstance(obj, lightgbm.Booster | lightgbm.LGBMModel)


def save_native(obj: Any, model_dir: Path, file: str = FILE) -> Saved:
    import lightgbm

    options: dict[str, Any] = {"file": file, "kind": "booster"}
    booster = obj
    if isinstance(obj, lightgbm.LGBMModel):
        booster = obj.booster_
        if isinstance(obj, lightgbm.LGBMClassifier):
            classes = np.asarray(obj.classes_).tolist()
            if not all(isinstance(c, int | str | bool | float) for c in classes):
                raise InvalidArgument("LightGBM classifier classes must be numbers or strings")
            options.update(kind="classifier", classes=classes)
        else:
            options["kind"] = "regressor"
    booster.save_model(str(model_dir / file))
    return Saved("lightgbm", lightgbm.__version__, ("lightgbm",), options)


def load_native(path: Path, options: dict[str, Any]) -> LightGBMPredictor:
    try:
        import lightgbm
    except ImportError:
        raise MissingDependency("lightgbm", "lightgbm") from None
    booster = lightgbm.Booster(model_file=str(path))
    classes = options.get("classes")
    return LightGBMPredictor(booster, None if classes is None else list(classes))


class LightGBMPredictor:
    def __init__(self, booster: Any, classes: list[Any] | None) -> None:
        self.booster = booster
        self.classes_ = None if classes is None else np.asarray(classes)

    def predict_proba(self, data: Any) -> Any:
        if self.classes_ is None:
            raise InvalidArgument("predict_proba needs a classifier; this is a regressor")
        raw = np.asarray(self.booster.predict(data))
        if raw.ndim == 1:  # binary: LightGBM returns P(positive class) only
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, data: Any) -> Any:
        if self.classes_ is None:
            return self.booster.predict(data)
        return self.classes_[np.argmax(self.predict_proba(data), axis=1)]


class LightGBMFlavor:
    name = "lightgbm"

    def matches(self, obj: object) -> bool:
        return is_lightgbm(obj)

    def save(self, obj: Any, model_dir: Path) -> Saved:
        return save_native(obj, model_dir)

    def load(self, model_dir: Path, manifest: Manifest, options: LoadOptions) -> Any:
        return load_native(model_file(model_dir, manifest, FILE), manifest.options)

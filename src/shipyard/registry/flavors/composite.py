"""A scikit-learn Pipeline ending in an XGBoost or LightGBM model (seed 002's shape).

skops would have to trust the booster's own classes to save the whole pipeline, so the
preprocessing steps go to skops and the final model to its native format; loading joins
them again in a ``ComposedModel``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.errors import DataCorruption
from shipyard.registry.flavors import lightgbm as lgb_flavor
from shipyard.registry.flavors import sklearn as sk_flavor
from shipyard.registry.flavors import xgboost as xgb_flavor
from shipyard.registry.flavors._base import LoadOptions, Saved, module_of
from shipyard.registry.flavors._manifest import Manifest

PREPROCESSOR = "preprocessor.skops"


def _final_kind(obj: object) -> str | None:
    """``"xgboost"`` or ``"lightgbm"`` for a Pipeline ending in such a model, else None."""
    if not _is_pipeline(obj):
        return None
    steps = getattr(obj, "steps", None)
    if not steps:
        return None
    final = steps[-1][1]
    if xgb_flavor.is_xgboost(final):
        return "xgboost"
    if lgb_flavor.is_lightgbm(final):
        return "lightgbm"
    return None


def _is_pipeline(obj: object) -> bool:
    if module_of(obj) != "sklearn":
        return False
    from sklearn.pipeline import Pipeline

    return isinstance(obj, Pipeline)


class ComposedModel:
    """``preprocessor.transform`` then the booster: what the pipeline's predict did."""

    def __init__(self, preprocessor: Any, model: Any, final_step: str) -> None:
        self.preprocessor = preprocessor
        self.model = model
        self.final_step = final_step

    def predict(self, data: Any) -> Any:
        return self.model.predict(self.preprocessor.transform(data))

    def predict_proba(self, data: Any) -> Any:
        return self.model.predict_proba(self.preprocessor.transform(data))


class CompositeFlavor:
    name = "sklearn-composite"

    def matches(self, obj: object) -> bool:
        return _final_kind(obj) is not None

    def save(self, obj: Any, model_dir: Path) -> Saved:
        import sklearn

        kind = _final_kind(obj)
        final_name, final = obj.steps[-1]
        sk_flavor.dump(obj[:-1], model_dir / PREPROCESSOR)
        if kind == "xgboost":
            booster = xgb_flavor.save_native(final, model_dir, xgb_flavor.FILE)
        else:
            booster = lgb_flavor.save_native(final, model_dir, lgb_flavor.FILE)
        options = {
            "preprocessor": PREPROCESSOR,
            "final_step": str(final_name),
            "final_flavor": kind,
            "final": booster.options,
        }
        return Saved(
            "scikit-learn",
            sklearn.__version__,
            ("scikit-learn", "skops", *booster.packages),
            options,
        )

    def load(self, model_dir: Path, manifest: Manifest, options: LoadOptions) -> Any:
        opts = manifest.options
        names = (opts.get("preprocessor"), opts.get("final", {}).get("file"))
        for name in names:
            if name not in manifest.files:
                raise DataCorruption(f"the manifest names {name!r} but does not list it")
        pre_name, final_name = (str(n) for n in names)
        preprocessor = sk_flavor.safe_load(model_dir / pre_name, options)
        final_opts = dict(opts["final"])
        if opts.get("final_flavor") == "xgboost":
            model = xgb_flavor.load_native(
                model_dir / final_name, str(final_opts.get("estimator", "Booster"))
            )
        elif opts.get("final_flavor") == "lightgbm":
            model = lgb_flavor.load_native(model_dir / final_name, final_opts)
        else:
            raise DataCorruption(f"unknown final flavor {opts.get('final_flavor')!r}")
        return ComposedModel(preprocessor, model, str(opts.get("final_step", "model")))

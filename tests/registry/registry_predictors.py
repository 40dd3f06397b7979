"""Importable predictor classes for the custom-flavor tests (a model's code must be
importable wherever it is loaded, so these cannot live inside a test function)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


class ScalePredictor:
    """Multiplies one column by a factor read from its artifacts directory."""

    def __init__(self) -> None:
        self.factor = 0.0

    def load(self, artifacts_dir: str) -> None:
        self.factor = json.loads(Path(artifacts_dir, "params.json").read_text())["factor"]

    def preprocess(self, instances: Any) -> pd.DataFrame:
        return pd.DataFrame(instances)

    def predict(self, instances: pd.DataFrame) -> list[float]:
        return [float(v) * self.factor for v in instances["x"]]

    def postprocess(self, predictions: list[float]) -> list[float]:
        return [round(p, 6) for p in predictions]


class LeadScoringPredictor:
    """Seed 002's predictor, minus the pickles: skops preprocessor + XGBoost native model."""

    def __init__(self) -> None:
        self.model: Any = None
        self.preprocessor: Any = None

    def load(self, artifacts_dir: str) -> LeadScoringPredictor:
        import skops.io as sio
        import xgboost

        path = Path(artifacts_dir, "preprocessor.skops")
        self.preprocessor = sio.load(path, trusted=sio.get_untrusted_types(file=path))
        self.model = xgboost.XGBRegressor()
        self.model.load_model(str(Path(artifacts_dir, "model.ubj")))
        return self

    def predict(self, instances: Any) -> list[float]:
        frame = pd.DataFrame(instances)
        return [float(v) for v in self.model.predict(self.preprocessor.transform(frame))]

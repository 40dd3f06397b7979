"""Saving and loading a performance estimator: one JSON document of numbers, with the
boosted models in XGBoost's own JSON format. Nothing is pickled; a document of another
format or version is refused with a clear message."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import InvalidArgument
from shipyard.monitoring._files import write_atomic
from shipyard.monitoring.estimation_data import Support
from shipyard.monitoring.estimation_model import PerformanceEstimator

__all__ = ["FORMAT", "FORMAT_VERSION", "estimator_from_dict", "estimator_to_dict",
           "estimator_to_json", "load_estimator", "save_estimator"]

FORMAT = "shipyard.performance-estimator"
FORMAT_VERSION = 1


def estimator_to_dict(estimator: PerformanceEstimator) -> dict[str, Any]:
    """The fitted parameters as plain JSON values (the models in XGBoost's JSON)."""
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "task": estimator.task,
        "target": estimator.target, "prediction": estimator.prediction, "score": estimator.score,
        "features": estimator.features, "categories": estimator.categories,
        "threshold": estimator.threshold, "confidence": estimator.confidence,
        "outside_tolerance": estimator.outside_tolerance,
        "calibrations": [[knots.tolist(), values.tolist()]
                         for knots, values in estimator.calibrations],
        "models": {kind: [bytes(model.save_raw("json")).decode() for model in models]
                   for kind, models in estimator.models.items()},
        "support": estimator.support.to_dict() if estimator.support is not None else None,
        "reference_metrics": estimator.reference_metrics,
        "reference_rows": estimator.reference_rows, "dispersion": estimator.dispersion,
    }


def estimator_from_dict(data: dict[str, Any]) -> PerformanceEstimator:
    """A fitted estimator from ``estimator_to_dict``'s document."""
    import xgboost

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidArgument("not a saved performance estimator", field="estimator")
    if data.get("version") != FORMAT_VERSION:
        raise InvalidArgument(
            f"performance estimator format version {data.get('version')!r} is not "
            f"supported (this Shipyard reads version {FORMAT_VERSION})", field="version")
    models: dict[str, list[xgboost.Booster]] = {}
    for kind, texts in data["models"].items():
        models[kind] = []
        for text in texts:
            booster = xgboost.Booster()
            booster.load_model(bytearray(text.encode()))
            models[kind].append(booster)
    return PerformanceEstimator(
        task=data["task"], target=data["target"], prediction=data["prediction"],
        score=data["score"], features=list(data["features"]),
        categories={key: list(value) for key, value in data["categories"].items()},
        threshold=float(data["threshold"]), confidence=float(data["confidence"]),
        outside_tolerance=float(data["outside_tolerance"]),
        calibrations=[(np.asarray(k, dtype=np.float64), np.asarray(v, dtype=np.float64))
                      for k, v in data["calibrations"]],
        models=models,
        support=Support.from_dict(data["support"]) if data["support"] else None,
        reference_metrics={k: float(v) for k, v in data["reference_metrics"].items()},
        reference_rows=int(data["reference_rows"]), dispersion=float(data["dispersion"]))


def estimator_to_json(estimator: PerformanceEstimator) -> str:
    return json.dumps(estimator_to_dict(estimator), allow_nan=False)


def save_estimator(estimator: PerformanceEstimator, path: str | os.PathLike[str]) -> Path:
    """Write the estimator as one JSON file, atomically (temp, fsync, rename)."""
    return write_atomic(path, estimator_to_json(estimator).encode())


def load_estimator(path: str | os.PathLike[str]) -> PerformanceEstimator:
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise InvalidArgument(f"{path} is not a saved performance estimator: {error}",
                              field="path") from None
    return PerformanceEstimator.from_dict(data)

"""The fitted performance estimator: what ``fit_estimator`` returns and ``estimate`` runs.

For each chunk of current rows it computes every metric with each of the ``n_models``
independent fits (the spread between them is the estimation error) and the chunk's own
sampling variance, and joins them into a band (see ``shipyard.monitoring.estimation``).
Saving and loading are in ``estimation_store``; fitting in ``estimation_fit``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shipyard.errors import InvalidArgument
from shipyard.monitoring import estimation_metrics as em
from shipyard.monitoring.estimation_data import (
    Columns,
    Floats,
    Support,
    encode_categories,
    is_categorical,
)
from shipyard.monitoring.estimation_results import ChunkEstimate, EstimationResult

if TYPE_CHECKING:
    import xgboost

__all__ = ["METRICS", "PerformanceEstimator", "Task"]

Task = Literal["classification", "regression"]
METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "roc_auc"),
    "regression": ("mae", "rmse"),
}


@dataclass
class PerformanceEstimator:
    """A fitted estimator; make one with ``fit_estimator`` or ``load_estimator``."""

    task: Task
    target: str
    prediction: str | None
    score: str | None
    features: list[str]
    categories: dict[str, list[str]]
    threshold: float
    confidence: float
    outside_tolerance: float
    calibrations: list[tuple[Floats, Floats]]
    models: dict[str, list[xgboost.Booster]]
    support: Support | None
    reference_metrics: dict[str, float]
    reference_rows: int
    dispersion: float = 2.0
    _z: float = field(init=False, repr=False, default=0.0)

    def __post_init__(self) -> None:
        from scipy.stats import norm

        self._z = float(norm.ppf(0.5 + self.confidence / 2))

    @property
    def metrics(self) -> tuple[str, ...]:
        return METRICS[self.task]

    # -- estimation ------------------------------------------------------------------------

    def estimate(self, current: Any, *, chunk_size: int | None = None) -> EstimationResult:
        """Estimate the metrics on ``current`` (no labels needed) per chunk of rows.

        ``chunk_size`` rows per chunk in order (the last may be smaller); None for a single
        chunk. When ``current`` has the target column, each chunk also carries the
        realised value.
        """
        columns = Columns(current, "current")
        needed = [name for name in (self.score, self.prediction) if name is not None]
        columns.require(needed, "model output")
        columns.require(self.features, "feature")
        if columns.rows == 0:
            raise InvalidArgument("current has no rows to estimate on", field="current")
        size = columns.rows if chunk_size is None else _chunk_size(chunk_size)
        bounds = [(start, min(start + size, columns.rows))
                  for start in range(0, columns.rows, size)]
        matrix = self._features(columns)
        labels = None
        if self.target in columns.names:
            labels = columns.numbers(self.target, "target")
            if self.task == "classification":
                _check_binary(labels, self.target, "current")
        outside = self.support.outside(matrix) if self.support is not None else None
        if self.task == "classification":
            parts = self._classify(columns, matrix, labels, bounds)
        else:
            parts = self._regress(columns, matrix, labels, bounds)
        chunks: list[ChunkEstimate] = []
        for number, (start, end) in enumerate(bounds):
            share = float(outside[start:end].mean()) if outside is not None else 0.0
            baseline = self.support.baseline if self.support is not None else 0.0
            in_support = share <= baseline + self.outside_tolerance
            for metric in self.metrics:
                estimates, sampling_var, realised = parts[metric][number]
                chunks.append(self._chunk(number, start, end, metric, estimates, sampling_var,
                                          realised, in_support, share))
        return EstimationResult(self.task, self.confidence, tuple(chunks))

    def _chunk(self, number: int, start: int, end: int, metric: str, estimates: Floats,
               sampling_var: float, realised: float | None, in_support: bool,
               share: float) -> ChunkEstimate:
        from scipy.stats import t

        estimate = float(np.mean(estimates))
        count = estimates.size
        model_var = float(np.var(estimates, ddof=1) / count) if count > 1 else 0.0
        # The spread between a handful of fits is itself uncertain: widen it as Student's t
        # with count - 1 degrees of freedom would, so that part keeps its coverage too.
        widen = (float(t.ppf(0.5 + self.confidence / 2, count - 1)) / self._z) ** 2 if (
            count > 1) else 1.0
        half = self._z * math.sqrt(max(sampling_var, 0.0) + widen * model_var)
        low, high = (0.0, 1.0) if self.task == "classification" else (0.0, math.inf)
        finite = math.isfinite(estimate) and math.isfinite(half)
        return ChunkEstimate(
            chunk=number, start=start, end=end, metric=metric, estimate=estimate,
            lower=max(low, estimate - half) if finite else math.nan,
            upper=min(high, estimate + half) if finite else math.nan,
            realised=realised, reference=self.reference_metrics[metric],
            reliable=in_support and finite, outside_share=share,
            sampling_std=math.sqrt(max(sampling_var, 0.0)), model_std=math.sqrt(model_var))

    def _features(self, columns: Columns) -> Floats:
        matrix = np.empty((columns.rows, len(self.features)), dtype=np.float64)
        for j, name in enumerate(self.features):
            values = columns.raw(name)
            if name in self.categories:
                matrix[:, j] = encode_categories(values, self.categories[name])
            elif is_categorical(values):
                raise InvalidArgument(
                    f"column {name!r} of {columns.field} holds text but was numeric in the "
                    "reference", field=name)
            else:
                matrix[:, j] = values
        return matrix

    def _classify(self, columns: Columns, matrix: Floats, labels: Floats | None,
                  bounds: list[tuple[int, int]]) -> dict[str, list[tuple[Floats, float,
                                                                           float | None]]]:
        scores = columns.numbers(str(self.score), "score")   # set for every classifier
        predicted = self._predicted(columns, scores)
        probabilities = self._probabilities(matrix, scores)
        out: dict[str, list[tuple[Floats, float, float | None]]] = {
            "accuracy": [], "roc_auc": []}
        for start, end in bounds:
            p = probabilities[:, start:end]
            hit = predicted[start:end]
            correct = np.where(hit, p, 1.0 - p)
            accuracy = correct.mean(axis=1)
            mean_correct = correct.mean(axis=0)
            rows = end - start
            accuracy_var = float(np.sum(mean_correct * (1 - mean_correct)) / rows ** 2)
            chunk_scores = scores[start:end]
            aucs = em.pairwise_auc(chunk_scores, p)
            mean_p = p.mean(axis=0)
            auc_var = em.auc_variance(float(np.mean(aucs)), float(mean_p.sum()),
                                      float((1 - mean_p).sum()))
            realised_accuracy = realised_auc = None
            if labels is not None:
                truth = labels[start:end]
                realised_accuracy = float(np.mean(hit == (truth == 1)))
                auc = float(em.pairwise_auc(chunk_scores, truth)[0])
                realised_auc = auc if math.isfinite(auc) else None
            out["accuracy"].append((accuracy, accuracy_var, realised_accuracy))
            out["roc_auc"].append((aucs, auc_var, realised_auc))
        return out

    def _predicted(self, columns: Columns, scores: Floats) -> np.ndarray[Any, np.dtype[np.bool_]]:
        if self.prediction is None:
            return np.asarray(scores >= self.threshold)
        values = columns.numbers(self.prediction, "prediction")
        _check_binary(values, self.prediction, columns.field)
        return np.asarray(values == 1)

    def _probabilities(self, matrix: Floats, scores: Floats) -> Floats:
        """P(label = 1) per model (rows) and row (columns)."""
        out = np.empty((len(self.calibrations), scores.size))
        boosters = self.models.get("probability", [])
        inputs = np.column_stack([matrix, em.logit(scores)]).astype(np.float32)
        for k, knots in enumerate(self.calibrations):
            base = em.calibrate(knots, scores)
            if boosters:
                out[k] = boosters[k].inplace_predict(inputs, base_margin=em.logit(base))
            else:
                out[k] = base
        return out

    def _regress(self, columns: Columns, matrix: Floats, labels: Floats | None,
                 bounds: list[tuple[int, int]]) -> dict[str, list[tuple[Floats, float,
                                                                          float | None]]]:
        predicted = columns.numbers(str(self.prediction), "prediction")  # set for regressors
        inputs = np.column_stack([matrix, predicted]).astype(np.float32)
        absolute = np.stack([np.maximum(model.inplace_predict(inputs), 0.0)
                             for model in self.models["absolute_error"]])
        squared = np.stack([model.inplace_predict(inputs)
                            for model in self.models["squared_error"]])
        squared = np.maximum(squared, absolute ** 2)
        out: dict[str, list[tuple[Floats, float, float | None]]] = {"mae": [], "rmse": []}
        for start, end in bounds:
            a = absolute[:, start:end]
            s = squared[:, start:end]
            rows = end - start
            mean_a, mean_s = a.mean(axis=0), s.mean(axis=0)
            mae_var = float(np.sum(mean_s - mean_a ** 2) / rows ** 2)
            mse = float(mean_s.mean())
            mse_var = float(self.dispersion * np.sum(mean_s ** 2) / rows ** 2)
            rmse_var = mse_var / (4 * mse) if mse > 0 else 0.0
            realised_mae = realised_rmse = None
            if labels is not None:
                error = labels[start:end] - predicted[start:end]
                realised_mae = float(np.mean(np.abs(error)))
                realised_rmse = float(np.sqrt(np.mean(error ** 2)))
            out["mae"].append((a.mean(axis=1), mae_var, realised_mae))
            out["rmse"].append((np.sqrt(s.mean(axis=1)), rmse_var, realised_rmse))
        return out

    # -- persistence (``estimation_store``) ------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The fitted parameters as plain JSON values (the models in XGBoost's JSON)."""
        from shipyard.monitoring.estimation_store import estimator_to_dict

        return estimator_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerformanceEstimator:
        from shipyard.monitoring.estimation_store import estimator_from_dict

        return estimator_from_dict(data)

    def to_json(self) -> str:
        from shipyard.monitoring.estimation_store import estimator_to_json

        return estimator_to_json(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the estimator as one JSON file, atomically (temp, fsync, rename)."""
        from shipyard.monitoring.estimation_store import save_estimator

        return save_estimator(self, path)


def _check_binary(values: Floats, name: str, where: str) -> None:
    bad = (values != 0) & (values != 1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidArgument(
            f"column {name!r} of {where} must hold 0/1 (or booleans); row {first} holds "
            f"{values[first]!r}", field=name)


def _chunk_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"chunk_size must be a positive integer, not {value!r}",
                              field="chunk_size")
    return value

"""Performance without labels: estimated accuracy and ROC AUC, or MAE and RMSE, per chunk.

``fit_estimator`` learns, on reference data that has labels, how good the model's outputs
are; ``PerformanceEstimator.estimate`` then says, for production data without labels, what
the metrics probably are, chunk by chunk, with a confidence band::

    estimator = fit_estimator(reference, task="classification", target="converted",
                              score="proba", prediction="label", features=["a", "b"])
    result = estimator.estimate(current, chunk_size=5_000)
    result.to_frame()      # chunk, metric, estimate, lower, upper, realised, reliable, ...

Classifiers (confidence-based performance estimation). The scores are calibrated on the
reference with an isotonic map; when features are given, a small gradient-boosted model on
top of the calibrated log-odds learns where, in feature space, the score says more or less
than it should (the part of P(label | features) that the score misses, which is what moves
under covariate shift and what biases a score-only estimate). The expected accuracy and
ROC AUC follow from the calibrated probabilities.

Regressors (direct loss estimation). Gradient-boosted models of the absolute and squared
error, given the features and the prediction, are fitted on the reference; their means over
a chunk estimate its MAE and RMSE.

The band. Each estimate is made by ``n_models`` independent fits on disjoint parts of the
reference, so the spread between them measures the estimation error (of the calibration and
of the loss models) on this very chunk; the chunk's own sampling variance of the realised
metric given the estimated probabilities (or loss distributions) is added to it. A band
from sampling noise alone shrinks with the chunk while the estimation error does not, and
so covers the realised value less and less often as chunks grow.

Reliability. An estimate is ``reliable`` while the share of the chunk's rows outside the
reference support (see ``estimation_data.Support``) stays within ``outside_tolerance`` of
the reference's own share: the fitted models were only ever checked inside it.

A fitted estimator is saved as JSON (``save``/``load_estimator``, ``to_dict``/``from_dict``):
numbers, and the boosted models in XGBoost's JSON format. Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
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
    top_categories,
)

if TYPE_CHECKING:
    import pandas as pd
    import xgboost

Task = Literal["classification", "regression"]
FORMAT = "shipyard.performance-estimator"
FORMAT_VERSION = 1
METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "roc_auc"),
    "regression": ("mae", "rmse"),
}
# Rows given to each boosted model at most: more barely moves the estimates (the models are
# small) and costs fit time linearly.
ROWS_PER_MODEL = 40_000
# The loss models see more: squared errors are heavy-tailed, and with 40k rows each the RMSE
# estimate ran about 1% low on shifted chunks (100k: about a third of that, in twice the time).
LOSS_ROWS_PER_MODEL = 100_000
MIN_ROWS_PER_MODEL = 200
SUPPORT_ROWS = 200_000
BOOST_ROUNDS = 60
# One thread per model: the models are small, and on a busy machine xgboost's threads spin
# waiting for each other (two threads on two shared cores ran ten times slower than one).
BOOST_PARAMS = {"eta": 0.15, "min_child_weight": 20.0, "lambda": 10.0, "tree_method": "hist",
                "max_bin": 64, "verbosity": 0, "nthread": 1}
CLASSIFIER_PARAMS = {**BOOST_PARAMS, "objective": "binary:logistic", "max_depth": 3}
# The loss models need more room than the calibration correction: errors grow in the tails
# of the features, where a shallow, strongly regularised model underestimates them.
REGRESSOR_PARAMS = {**BOOST_PARAMS, "objective": "reg:squarederror", "max_depth": 5,
                    "eta": 0.2, "lambda": 1.0, "min_child_weight": 5.0}
REGRESSOR_ROUNDS = 100


@dataclass(frozen=True)
class ChunkEstimate:
    """One metric's estimate for one chunk of rows ``start`` to ``end`` (exclusive).

    ``lower``/``upper`` bound the band at the estimator's confidence level; ``realised`` is
    the metric computed from labels when the current data had them; ``reference`` is the
    metric realised on the reference data (the naive estimate). ``sampling_std`` and
    ``model_std`` are the band's two parts: the chunk's sampling noise and the estimation
    error between independently fitted models.
    """

    chunk: int
    start: int
    end: int
    metric: str
    estimate: float
    lower: float
    upper: float
    realised: float | None
    reference: float
    reliable: bool
    outside_share: float
    sampling_std: float
    model_std: float

    @property
    def rows(self) -> int:
        return self.end - self.start

    @property
    def covered(self) -> bool | None:
        """Whether the band holds the realised value (None without labels)."""
        if self.realised is None:
            return None
        return self.lower <= self.realised <= self.upper


@dataclass(frozen=True)
class EstimationResult:
    task: str
    confidence: float
    chunks: tuple[ChunkEstimate, ...]

    def metric(self, name: str) -> list[ChunkEstimate]:
        found = [chunk for chunk in self.chunks if chunk.metric == name]
        if not found:
            raise InvalidArgument(
                f"no metric {name!r}; this result has {sorted({c.metric for c in self.chunks})}",
                field="metric")
        return found

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{**asdict(chunk), "rows": chunk.rows} for chunk in self.chunks]
        return pd.DataFrame(rows, columns=[
            "chunk", "start", "end", "rows", "metric", "estimate", "lower", "upper",
            "realised", "reference", "reliable", "outside_share", "sampling_std",
            "model_std"])

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "confidence": self.confidence,
                "chunks": [{key: _finite_or_none(value) for key, value in asdict(c).items()}
                           for c in self.chunks]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)


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

    # -- persistence -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The fitted parameters as plain JSON values (the models in XGBoost's JSON)."""
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "task": self.task,
            "target": self.target, "prediction": self.prediction, "score": self.score,
            "features": self.features, "categories": self.categories,
            "threshold": self.threshold, "confidence": self.confidence,
            "outside_tolerance": self.outside_tolerance,
            "calibrations": [[knots.tolist(), values.tolist()]
                             for knots, values in self.calibrations],
            "models": {kind: [bytes(model.save_raw("json")).decode() for model in models]
                       for kind, models in self.models.items()},
            "support": self.support.to_dict() if self.support is not None else None,
            "reference_metrics": self.reference_metrics,
            "reference_rows": self.reference_rows, "dispersion": self.dispersion,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerformanceEstimator:
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
        return cls(
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

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the estimator as one JSON file, atomically (temp, fsync, rename)."""
        target = Path(path)
        payload = self.to_json().encode()
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target


def load_estimator(path: str | os.PathLike[str]) -> PerformanceEstimator:
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise InvalidArgument(f"{path} is not a saved performance estimator: {error}",
                              field="path") from None
    return PerformanceEstimator.from_dict(data)


def fit_estimator(
    reference: Any,
    *,
    task: Task,
    target: str,
    prediction: str | None = None,
    score: str | None = None,
    features: Sequence[str] | None = None,
    threshold: float = 0.5,
    confidence: float = 0.95,
    outside_tolerance: float = 0.05,
    n_models: int = 5,
    seed: int = 0,
) -> PerformanceEstimator:
    """Fit a performance estimator on ``reference`` data that has labels.

    Classification: ``score`` is the model's score for the positive class (any monotone
    score; it is calibrated here), ``prediction`` its 0/1 decision (default: score >=
    ``threshold``), ``target`` the 0/1 label. Regression: ``prediction`` and ``target`` are
    numbers. ``features`` (numeric or text columns) let the estimate follow covariate shift;
    without them a classifier's estimate rests on the score alone. ``n_models``
    independent fits on disjoint parts of the reference measure the estimation error.
    """
    if task not in METRICS:
        raise InvalidArgument(f"task must be 'classification' or 'regression', not {task!r}",
                              field="task")
    if not 0 < confidence < 1:
        raise InvalidArgument("confidence must lie between 0 and 1", field="confidence")
    if not isinstance(n_models, int) or n_models < 2:
        raise InvalidArgument("n_models must be an integer of at least 2", field="n_models")
    names = list(features or [])
    columns = Columns(reference, "reference")
    columns.require([target], "target")
    if task == "classification":
        if score is None:
            raise InvalidArgument("a classifier's estimate needs its score column",
                                  field="score")
        columns.require([score], "score")
    elif prediction is None:
        raise InvalidArgument("a regressor's estimate needs its prediction column",
                              field="prediction")
    if prediction is not None:
        columns.require([prediction], "prediction")
    columns.require(names, "feature")
    used = {target, prediction, score} - {None}
    clash = [name for name in names if name in used]
    if clash:
        raise InvalidArgument(f"{clash[0]!r} is the target or a model output, not a feature",
                              field=clash[0])
    if columns.rows < 2 * MIN_ROWS_PER_MODEL:
        raise InvalidArgument(
            f"reference has {columns.rows} rows; estimation needs at least "
            f"{2 * MIN_ROWS_PER_MODEL} labelled rows", field="reference")
    labels = columns.numbers(target, "target")
    rng = np.random.default_rng(seed)
    folds = min(n_models, columns.rows // MIN_ROWS_PER_MODEL)
    # Disjoint parts of the reference, one per model, in random order.
    order = rng.permutation(columns.rows)
    parts = np.array_split(order, folds)
    cap = ROWS_PER_MODEL if task == "classification" else LOSS_ROWS_PER_MODEL
    take = min(cap, min(part.size for part in parts))
    sample = np.concatenate([part[:take] for part in parts])
    matrix, categories = _reference_features(columns, names, sample)
    # The support's quantiles and covariance need far fewer rows than the loss models (the
    # sample is in random order, so its head is a random sample too).
    support = Support.fit(matrix[:SUPPORT_ROWS], [names.index(name) for name in categories]
                          ) if names else None
    common = {"target": target, "prediction": prediction, "score": score, "features": names,
              "categories": categories, "threshold": float(threshold),
              "confidence": float(confidence), "outside_tolerance": float(outside_tolerance),
              "support": support, "reference_rows": columns.rows}
    if task == "classification":
        return _fit_classifier(columns, labels, parts, sample, matrix, take, common)
    return _fit_regressor(columns, labels, sample, matrix, take, folds, common)


def _fit_classifier(columns: Columns, labels: Floats, parts: list[np.ndarray[Any, Any]],
                    sample: np.ndarray[Any, Any], matrix: Floats, take: int,
                    common: dict[str, Any]) -> PerformanceEstimator:
    import xgboost

    target, score = common["target"], common["score"]
    _check_binary(labels, target, "reference")
    if labels.min() == labels.max():
        raise InvalidArgument(
            f"column {target!r} of reference holds one class only ({int(labels[0])}); "
            "estimation needs labelled examples of both", field=target)
    scores = columns.numbers(score, "score")
    calibrations = [em.calibration_knots(scores[part], labels[part]) for part in parts]
    boosters: list[xgboost.Booster] = []
    if common["features"]:
        inputs = np.column_stack([matrix, em.logit(scores[sample])]).astype(np.float32)
        for k, knots in enumerate(calibrations):
            rows = slice(k * take, (k + 1) * take)
            base = em.calibrate(knots, scores[sample[rows]])
            data = xgboost.QuantileDMatrix(inputs[rows], label=labels[sample[rows]],
                                           base_margin=em.logit(base), max_bin=64,
                                           nthread=1)
            boosters.append(xgboost.train(CLASSIFIER_PARAMS, data, BOOST_ROUNDS))
    estimator = PerformanceEstimator(task="classification", calibrations=calibrations,
                                     models={"probability": boosters} if boosters else {},
                                     reference_metrics={}, **common)
    predicted = estimator._predicted(columns, scores)
    estimator.reference_metrics = {
        "accuracy": float(np.mean(predicted == (labels == 1))),
        "roc_auc": float(em.pairwise_auc(scores, labels)[0])}
    return estimator


def _fit_regressor(columns: Columns, labels: Floats, sample: np.ndarray[Any, Any],
                   matrix: Floats, take: int, folds: int,
                   common: dict[str, Any]) -> PerformanceEstimator:
    import xgboost

    predicted = columns.numbers(common["prediction"], "prediction")
    error = labels - predicted
    inputs = np.column_stack([matrix, predicted[sample]]).astype(np.float32)
    absolute, squared = np.abs(error[sample]), error[sample] ** 2
    models: dict[str, list[xgboost.Booster]] = {"absolute_error": [], "squared_error": []}
    for k in range(folds):
        rows = slice(k * take, (k + 1) * take)
        data = xgboost.QuantileDMatrix(inputs[rows], label=absolute[rows], max_bin=64,
                                      nthread=1)
        params = {**REGRESSOR_PARAMS, "base_score": float(absolute[rows].mean())}
        models["absolute_error"].append(xgboost.train(params, data, REGRESSOR_ROUNDS))
        data.set_label(squared[rows])
        params = {**REGRESSOR_PARAMS, "base_score": float(squared[rows].mean())}
        models["squared_error"].append(xgboost.train(params, data, REGRESSOR_ROUNDS))
    # The spread of the squared errors, for the sampling variance of a chunk's realised MSE:
    # Var(e^2 | x) is taken as dispersion * E[e^2 | x]^2, with the dispersion measured out
    # of fold (part 0 scored by model 1) as Var(e^2) / mean(E[e^2 | x]^2). The unconditional
    # variance errs on the wide side (it also holds the variance of E[e^2 | x] itself).
    held = slice(0, take)
    expected = np.maximum(models["squared_error"][1].predict(
        xgboost.DMatrix(inputs[held], nthread=1)), 0.0)
    dispersion = float(np.var(squared[held]) / max(float(np.mean(expected ** 2)), 1e-300))
    return PerformanceEstimator(
        task="regression", calibrations=[], models=models, dispersion=dispersion,
        reference_metrics={"mae": float(np.mean(np.abs(error))),
                           "rmse": float(np.sqrt(np.mean(error ** 2)))}, **common)


def _reference_features(columns: Columns, names: list[str], rows: np.ndarray[Any, Any]
                        ) -> tuple[Floats, dict[str, list[str]]]:
    matrix = np.empty((rows.size, len(names)), dtype=np.float64)
    categories: dict[str, list[str]] = {}
    for j, name in enumerate(names):
        values = columns.raw(name)[rows]
        if is_categorical(values):
            categories[name] = top_categories(values)
            matrix[:, j] = encode_categories(values, categories[name])
        else:
            matrix[:, j] = values
    return matrix, categories


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


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

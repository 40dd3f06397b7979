"""Fitting a performance estimator on labelled reference data (``fit_estimator``).

Classifiers: an isotonic calibration of the score per part of the reference and, when
features are given, a small boosted model of what the calibrated score misses. Regressors:
boosted models of the absolute and squared error. Each of ``n_models`` fits sees its own
disjoint part of the reference, so the spread between them measures the estimation error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from shipyard.monitoring.estimation_model import METRICS, PerformanceEstimator, Task, _check_binary

__all__ = ["fit_estimator"]

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

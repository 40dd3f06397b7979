"""Per-instance feature attributions, in Vertex AI's explanation shape.

``explain_instances(model, frame)`` answers one dict per row of ``frame``::

    {"baselineOutputValue": 0.31, "instanceOutputValue": 0.74,
     "featureAttributions": {"pages_visited": 0.25, ...}, "outputIndex": [0],
     "approximationError": 0.004}

Two methods:

- ``"tree_shap"``: TreeSHAP through the ``shap`` package (interventional, against the
  baseline rows) for XGBoost, LightGBM and scikit-learn trees and forests on numeric input.
  Exact: ``approximationError`` is 0.
- ``"sampled_shapley"``: Vertex's sampled Shapley for any model. ``path_count`` random
  feature orders per instance; along each order the features switch from the baseline's
  value to the instance's one at a time, and each switch's change of the output is that
  feature's share. All the orders of a batch of instances go to the model as one
  DataFrame (one ``predict`` call per batch, never one per row). ``approximationError`` is
  the sampling error of the attributions: the standard error of their mean over the paths
  (root of the sum over features of each one's variance over the paths / ``path_count``);
  0 when every path agrees, as for a linear model.

Both add up: ``baselineOutputValue + sum(featureAttributions) == instanceOutputValue`` to
within ``ADDITIVITY_TOLERANCE`` (relative to the output's size) — for sampled Shapley
along every path by construction, for TreeSHAP by the method (checked; a model whose tree
output space is not its prediction's, such as a margin, falls back to sampled Shapley
under ``"auto"``).

``baselineOutputValue`` is the model's output on the baseline (the mean over its rows).
The baseline is ``baseline`` when given (a DataFrame of 1 to ``MAX_BASELINE_ROWS`` rows
with the model's features); otherwise one row from the version's input example (the
median of numeric columns, the most frequent value of the others); otherwise zeros, which
only numeric features have.

``Explainer(model, method=, path_count=, baseline=)`` keeps the baseline and TreeSHAP's
explainer between calls (``.explain(frame)``): what a replica holds per loaded model.

``model`` is a ``LoadedModel`` (what ``sy.load_model`` and a replica hold: its signature
puts the columns in order and checks them, its input example gives the baseline) or any
object with ``predict`` (and ``predict_proba`` for a classifier) taking a DataFrame.
Classifiers (an estimator with ``classes_``): the probability of the positive class
(``classes_[1]``) for two classes, of the predicted class for more (``outputIndex`` names
it); other models: their prediction (the first output column of a 2-D one).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import FailedPrecondition, InvalidArgument, ShipyardError
from shipyard.serving.explanation import MAX_PATHS, METHODS, MIN_PATHS, check_settings

MAX_BASELINE_ROWS = 100
MAX_FEATURES = 1_000
ADDITIVITY_TOLERANCE = 1e-6
# Rows sent to the model in one call while sampling (instances are taken in groups whose
# coalitions fit).
MAX_BATCH_ROWS = 200_000
SEED = 20240901

__all__ = ["ADDITIVITY_TOLERANCE", "MAX_PATHS", "METHODS", "MIN_PATHS", "Explainer",
           "explain_instances"]

Output = Callable[[pd.DataFrame], np.ndarray]


def explain_instances(model: Any, frame: pd.DataFrame, *, method: str = "auto",
                      path_count: int = 10, baseline: pd.DataFrame | None = None
                      ) -> list[dict[str, Any]]:
    """Feature attributions for each row of ``frame`` (see the module's docstring).

    One-off: a server answering many requests for one model keeps an ``Explainer``."""
    return Explainer(model, method=method, path_count=path_count,
                     baseline=baseline).explain(frame)


class Explainer:
    """Explanations of one model with fixed settings, for many requests: the baseline and
    TreeSHAP's explainer are built once per set of feature columns and reused (building
    shap's explainer for a 100-tree model takes about 0.2 s; using it, under 1 ms).
    Thread-safe. Arguments as ``explain_instances``'s; bad ones raise here."""

    def __init__(self, model: Any, *, method: str = "auto", path_count: int = 10,
                 baseline: pd.DataFrame | None = None) -> None:
        check_settings(method, path_count)
        self.method = method
        self.path_count = path_count
        self._target = _Target.of(model)
        self._given = baseline
        self._bases: dict[tuple[str, ...], pd.DataFrame] = {}
        self._trees: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()

    def explain(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """One Vertex attribution dict per row of ``frame``."""
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            raise InvalidArgument("instances must be a non-empty table of rows",
                                  field="instances")
        target = self._target
        instances = target.prepare(frame, "instances")
        if instances.shape[1] > MAX_FEATURES:
            raise InvalidArgument(f"{instances.shape[1]} features; at most {MAX_FEATURES} "
                                  "can be explained", field="instances")
        key = tuple(f"{c}:{instances[c].dtype}" for c in instances.columns)
        with self._lock:
            base = self._bases.get(key)
            if base is None:
                base = target.prepare(_baseline(target, instances, self._given), "baseline")
                self._bases[key] = base
        index = target.output_index(target.output_matrix(instances))
        if self.method in ("auto", "tree_shap"):
            with self._lock:
                if key not in self._trees:
                    self._trees[key] = _tree_explainer(target, instances, base)
            explained = _tree_shap(target, self._trees[key], instances, base, index,
                                   strict=self.method == "tree_shap")
            if explained is not None:
                return explained
        return _sampled_shapley(target, instances, base, index, self.path_count)


# -- the model as an output function ----------------------------------------------------------


class _Target:
    """What is explained: the frame preparation (signature order and checks), the model's
    output and, for TreeSHAP, the tree model inside."""

    def __init__(self, framework: Any, prepare: Callable[[Any], pd.DataFrame] | None,
                 example: Any) -> None:
        self.framework = framework
        self._prepare = prepare
        self.example = example
        final = getattr(framework, "model", framework)  # a ComposedModel's booster
        self.classifier = getattr(final, "classes_", None) is not None \
            and callable(getattr(framework, "predict_proba", None))

    @classmethod
    def of(cls, model: Any) -> _Target:
        if hasattr(model, "manifest") and callable(getattr(model, "prepare", None)):
            return cls(model.model, model.prepare, model.input_example)  # a LoadedModel
        if not callable(getattr(model, "predict", None)):
            raise InvalidArgument(f"cannot explain a {type(model).__name__}: it has no "
                                  "predict method", field="model")
        return cls(model, None, None)

    def prepare(self, data: pd.DataFrame, field: str) -> pd.DataFrame:
        if self._prepare is None:
            return data.reset_index(drop=True)
        try:
            return self._prepare(data).reset_index(drop=True)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{field}: {exc.message}",
                                  field=f"{field}.{exc.field}" if exc.field else field
                                  ) from None

    def output_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's outputs on ``frame``, one row each: class probabilities for a
        classifier, else the prediction as a column (or its columns)."""
        try:
            raw = self.framework.predict_proba(frame) if self.classifier \
                else self.framework.predict(frame)
        except ShipyardError:
            raise
        except Exception as exc:
            raise InvalidArgument(f"the model failed on these instances: "
                                  f"{type(exc).__name__}: {exc}"[:1000],
                                  field="instances") from None
        out: np.ndarray = np.asarray(raw, dtype=float).reshape(len(frame), -1)
        return out

    def output_index(self, matrix: np.ndarray) -> np.ndarray:
        """The output column explained for each instance: the positive class of a binary
        classifier, the predicted class of a multi-class one, else the first column."""
        if self.classifier and matrix.shape[1] > 2:
            return np.asarray(np.argmax(matrix, axis=1), dtype=np.int64)
        column = 1 if self.classifier and matrix.shape[1] == 2 else 0
        return np.full(len(matrix), column, dtype=np.int64)

    def outputs(self, frame: pd.DataFrame, index: np.ndarray) -> np.ndarray:
        matrix = self.output_matrix(frame)
        picked: np.ndarray = matrix[np.arange(len(frame)), index]
        return picked


def _baseline(target: _Target, instances: pd.DataFrame, given: pd.DataFrame | None
              ) -> pd.DataFrame:
    if given is not None:
        if not isinstance(given, pd.DataFrame) or given.empty \
                or len(given) > MAX_BASELINE_ROWS:
            raise InvalidArgument(f"baseline must be a DataFrame of 1 to {MAX_BASELINE_ROWS} "
                                  "rows with the model's features", field="baseline")
        missing = [c for c in instances.columns if c not in given.columns]
        if missing:
            raise InvalidArgument(f"baseline lacks feature {missing[0]!r}",
                                  field=f"baseline.{missing[0]}")
        return given[list(instances.columns)]
    example = target.example() if target.example is not None else None
    if isinstance(example, pd.DataFrame) and not example.empty \
            and all(c in example.columns for c in instances.columns):
        return _typical_row(example[list(instances.columns)])
    numeric = [c for c in instances.columns if pd.api.types.is_numeric_dtype(instances[c])]
    other = [c for c in instances.columns if c not in numeric]
    if other:
        raise InvalidArgument(
            f"feature {str(other[0])!r} is not numeric and the model has no input example "
            "to take a baseline from: pass a baseline", field="baseline")
    return pd.DataFrame({c: pd.Series([0], dtype=instances[c].dtype) for c in numeric})


def _typical_row(example: pd.DataFrame) -> pd.DataFrame:
    """One row: the median of each numeric column, the most frequent value of the others
    (an integer column's median rounded, so it stays an integer)."""
    row: dict[str, Any] = {}
    for name in example.columns:
        series = example[name].dropna()
        if series.empty:
            row[name] = [example[name].iloc[0]]
        elif pd.api.types.is_bool_dtype(series.dtype) \
                or not pd.api.types.is_numeric_dtype(series.dtype):
            row[name] = [series.mode().iloc[0]]
        elif pd.api.types.is_integer_dtype(series.dtype):
            row[name] = pd.Series([round(float(series.median()))], dtype=series.dtype)
        else:
            row[name] = pd.Series([series.median()], dtype=series.dtype)
    return pd.DataFrame(row)


# -- TreeSHAP ------------------------------------------------------------------------------


def _tree_model(framework: Any) -> Any:
    booster = getattr(framework, "booster", None)  # our BoosterPredictor/LightGBMPredictor
    return booster if booster is not None else framework


def _tree_explainer(target: _Target, instances: pd.DataFrame, base: pd.DataFrame) -> Any:
    """shap's TreeExplainer against ``base``, or why TreeSHAP does not apply (a str)."""
    numeric = all(pd.api.types.is_numeric_dtype(instances[c])
                  and not pd.api.types.is_bool_dtype(instances[c]) for c in instances.columns)
    if not numeric:
        return "TreeSHAP needs numeric features; use sampled_shapley"
    try:
        import shap
    except ImportError:  # pragma: no cover - shap is a dependency
        return "TreeSHAP needs the shap package"
    try:
        return shap.TreeExplainer(
            _tree_model(target.framework), data=base.to_numpy(dtype=float),
            feature_perturbation="interventional",
            model_output="probability" if target.classifier else "raw")
    except Exception as exc:  # shap's own kinds: not a tree model, unsupported objective
        return f"TreeSHAP cannot explain this model: {type(exc).__name__}: {str(exc)[:300]}"


def _tree_shap(target: _Target, explainer: Any, instances: pd.DataFrame, base: pd.DataFrame,
               index: np.ndarray, *, strict: bool) -> list[dict[str, Any]] | None:
    """TreeSHAP's answers, or None (``strict``: an error) when it does not apply."""
    if isinstance(explainer, str):
        return _refuse(strict, explainer)
    if target.classifier and len(np.unique(index)) > 1:
        return _refuse(strict, "TreeSHAP explains one output; use sampled_shapley for a "
                       "multi-class model")
    x = instances.to_numpy(dtype=float)
    try:
        values = np.asarray(explainer.shap_values(x, check_additivity=False), dtype=float)
    except Exception as exc:
        return _refuse(strict, f"TreeSHAP failed on these instances: {type(exc).__name__}: "
                       f"{str(exc)[:300]}")
    if values.ndim == 3:  # one slice per class
        values = values[..., int(index[0])] if values.shape[-1] != x.shape[1] \
            else values[int(index[0])]
    observed = target.outputs(instances, index)
    expected = float(np.mean(target.outputs(base, index[:1].repeat(len(base)))))
    gap = np.abs(expected + values.sum(axis=1) - observed)
    if bool(np.any(gap > ADDITIVITY_TOLERANCE * np.maximum(1.0, np.abs(observed)) * 10)):
        return _refuse(strict, "TreeSHAP's tree output is not this model's prediction (a "
                       "margin or a transformed target); use sampled_shapley")
    errors = np.zeros(len(x))
    return _answers(instances.columns, values, observed, expected, index, errors)


def _refuse(strict: bool, why: str) -> list[dict[str, Any]] | None:
    if strict:
        raise FailedPrecondition(why, field="method")
    return None


# -- sampled Shapley -------------------------------------------------------------------------


def _sampled_shapley(target: _Target, instances: pd.DataFrame, base: pd.DataFrame,
                     index: np.ndarray, paths: int) -> list[dict[str, Any]]:
    n, d = instances.shape
    b = len(base)
    rng = np.random.default_rng(SEED)
    per_instance = paths * (d + 1) * b
    group = max(1, MAX_BATCH_ROWS // per_instance)
    values = np.empty((n, d))
    errors = np.empty(n)
    observed = np.empty(n)
    expected = float(np.mean(target.outputs(base, np.repeat(index[:1], b))))
    for start in range(0, n, group):
        stop = min(n, start + group)
        phi, err, out = _sample_group(target, instances.iloc[start:stop], base,
                                      index[start:stop], paths, rng)
        values[start:stop], errors[start:stop], observed[start:stop] = phi, err, out
    if target.classifier and len(np.unique(index)) > 1:
        # Each instance's own class: its baseline is that class's probability on the baseline.
        baselines = np.array([np.mean(target.outputs(base, np.repeat(k, b))) for k in index])
        return _answers(instances.columns, values, observed, baselines, index, errors)
    return _answers(instances.columns, values, observed, expected, index, errors)


def _sample_group(target: _Target, group: pd.DataFrame, base: pd.DataFrame,
                  index: np.ndarray, paths: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d = group.shape
    b = len(base)
    # One random order of the features per (instance, path).
    order = rng.permuted(np.tile(np.arange(d), (n * paths, 1)), axis=1)  # (n*p, d)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(d)[None, :].repeat(n * paths, 0), axis=1)
    # Step s of a path takes the features ranked below s from the instance.
    steps = np.arange(d + 1)
    take = rank[:, None, :] < steps[None, :, None]  # (n*p, d+1, d)
    # Every coalition against every baseline row: rows ordered (instance, path, step, base).
    take = np.repeat(take[:, :, None, :], b, axis=2).reshape(-1, d)
    rows = take.shape[0]
    instance_of = np.repeat(np.arange(n), paths * (d + 1) * b)
    base_of = np.tile(np.arange(b), n * paths * (d + 1))
    columns = {}
    for j, name in enumerate(group.columns):
        columns[name] = _mix(group[name], base[name], take[:, j], instance_of, base_of)
    coalitions = pd.DataFrame(columns, index=pd.RangeIndex(rows))
    out = target.outputs(coalitions, np.repeat(index, paths * (d + 1) * b))
    out = out.reshape(n, paths, d + 1, b)
    steps_gain = np.diff(out, axis=2)  # (n, p, d, b): the gain of the feature added at step s
    gain = steps_gain.mean(axis=3).reshape(n * paths, d)
    phi_paths = np.empty_like(gain)
    np.put_along_axis(phi_paths, order, gain, axis=1)  # back to feature order
    phi_paths = phi_paths.reshape(n, paths, d)
    phi = phi_paths.mean(axis=1)
    if paths > 1:
        variance = phi_paths.var(axis=1, ddof=1) / paths
        error = np.sqrt(variance.sum(axis=1))
    else:
        error = np.full(n, math.nan)
    observed = out[:, 0, d, :].mean(axis=1)  # every step d is the instance itself
    return phi, error, observed


def _mix(instance: pd.Series, baseline: pd.Series, take: np.ndarray,
         instance_of: np.ndarray, base_of: np.ndarray) -> Any:
    """The column of the coalitions: the instance's value where ``take``, else the
    baseline's; a categorical column stays categorical with its categories."""
    if isinstance(instance.dtype, pd.CategoricalDtype):
        cats = instance.cat.categories
        base_cat = pd.Categorical(baseline.astype(object), categories=cats)
        codes = np.where(take, instance.cat.codes.to_numpy()[instance_of],
                         np.asarray(base_cat.codes)[base_of])
        return pd.Categorical.from_codes(codes, categories=cats,
                                         ordered=instance.cat.ordered)
    left = instance.to_numpy()[instance_of]
    right = baseline.to_numpy()[base_of]
    if left.dtype != right.dtype and not (left.dtype.kind in "iuf" and right.dtype.kind in "iuf"):
        left, right = left.astype(object), right.astype(object)
    return np.where(take, left, right)


# -- the answer ----------------------------------------------------------------------------


def _answers(names: pd.Index, values: np.ndarray, observed: np.ndarray,
             expected: float | np.ndarray, index: np.ndarray, errors: np.ndarray
             ) -> list[dict[str, Any]]:
    base = np.broadcast_to(np.asarray(expected, dtype=float), observed.shape)
    keys = [str(name) for name in names]
    out = []
    for row in range(len(observed)):
        error = float(errors[row])
        out.append({
            "baselineOutputValue": float(base[row]),
            "instanceOutputValue": float(observed[row]),
            "featureAttributions": dict(zip(keys, values[row].tolist(), strict=True)),
            "outputIndex": [int(index[row])],
            "approximationError": error if math.isfinite(error) else 0.0,
        })
    return out

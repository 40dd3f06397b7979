"""A replica's fast path: numeric instances straight to a NumPy matrix, and XGBoost tree
ensembles compiled to NumPy arrays for small batches.

Why: one row through the general path costs about 13 ms (a pandas DataFrame for the
signature check, then XGBoost's DataFrame path) and even ``Booster.inplace_predict`` on a
NumPy row costs 0.3-0.4 ms of Python around a few microseconds of tree walking. Walking the
trees as arrays (every tree advanced one level per NumPy step, ``depth`` steps) costs about
60 us for one row.

Both parts only ever *accept or decline*:

* ``FastInput.matrix`` returns ``None`` for anything that is not plainly numeric and
  complete (a string, a boolean, a null, a non-integral value for an integer column, an
  unknown or missing feature); the caller then takes the general path, which accepts what
  it accepts and names the field and row of what it refuses. So the fast path changes no
  answer and no error message.
* ``compile_xgboost`` returns ``None`` for a model it cannot reproduce exactly (categorical
  splits, several targets or parallel trees, early stopping's best iteration, a link other
  than the identity), and checks itself at load against XGBoost on probe rows (every split
  threshold, missing values, the input example): the compiled ensemble adds the leaves in
  XGBoost's order in float32, so its answers are bit-identical or it is not used.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

NUMERIC_KINDS = ("integer", "float")
# Batches up to this many rows walk the compiled arrays; larger ones go to XGBoost, whose
# C++ loop wins once its fixed cost is shared by enough rows.
COMPILED_MAX_ROWS = 32
IDENTITY_OBJECTIVES = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror")
_NUMBER_TYPES = frozenset({int, float})


@dataclass(frozen=True)
class FastInput:
    """Turns plainly numeric instances into a float64 matrix in signature order."""

    names: tuple[str, ...]
    integer_columns: tuple[int, ...]

    @classmethod
    def from_signature(cls, signature: Mapping[str, Any] | None) -> FastInput | None:
        """For a signature of integer and float columns only (else None: no fast path)."""
        if not signature:
            return None
        columns = signature.get("columns") or []
        if not columns or not all(isinstance(c, Mapping) for c in columns):
            return None
        if any(c.get("kind") not in NUMERIC_KINDS or c.get("levels") for c in columns):
            return None
        names = tuple(str(c["name"]) for c in columns)
        integers = tuple(i for i, c in enumerate(columns) if c.get("kind") == "integer")
        return cls(names, integers)

    def matrix(self, instances: object) -> np.ndarray | None:
        """``instances`` (arrays in signature order, or objects keyed by exactly the
        signature's features) as an ``(n, features)`` float64 array; None to decline."""
        if not isinstance(instances, list) or not instances:
            return None
        first = instances[0]
        width = len(self.names)
        if isinstance(first, list):
            rows = instances
            # One C-level pass: every row a list of the right length.
            if set(map(type, rows)) != {list} or set(map(len, rows)) != {width}:
                return None
        elif isinstance(first, dict):
            if set(map(type, instances)) != {dict} or set(map(len, instances)) != {width}:
                return None
            try:
                rows = [[row[name] for name in self.names] for row in instances]
            except KeyError:
                return None
        else:
            return None
        # Booleans and strings would pass numpy's float conversion: refuse any type but
        # int and float (one C-level pass over the values).
        if not set(map(type, itertools.chain.from_iterable(rows))) <= _NUMBER_TYPES:
            return None
        try:
            out = np.array(rows, dtype=np.float64)
        except (ValueError, OverflowError):
            return None
        if not np.isfinite(out).all():
            return None
        if self.integer_columns:
            ints = out[:, self.integer_columns]
            if not (ints == np.floor(ints)).all():
                return None
        return out


class CompiledTrees:
    """An XGBoost regressor's trees as flat arrays, walked level by level with NumPy."""

    def __init__(self, booster: Any, trees: list[dict[str, Any]], base: float,
                 features: int) -> None:
        self.booster = booster
        self.features = features
        count = len(trees)
        width = max(len(t["left_children"]) for t in trees)
        self.offsets = np.arange(count, dtype=np.int64) * width
        left = np.zeros((count, width), np.int64)
        right = np.zeros((count, width), np.int64)
        feature = np.zeros((count, width), np.int64)
        value = np.zeros((count, width), np.float32)
        default_left = np.zeros((count, width), bool)
        depth = 0
        for i, tree in enumerate(trees):
            n = len(tree["left_children"])
            lc = np.asarray(tree["left_children"], np.int64)
            rc = np.asarray(tree["right_children"], np.int64)
            here = np.arange(n, dtype=np.int64)
            leaf = lc == -1
            # A leaf points at itself, so extra steps leave a shallow tree where it is.
            left[i, :n] = np.where(leaf, here, lc) + self.offsets[i]
            right[i, :n] = np.where(leaf, here, rc) + self.offsets[i]
            feature[i, :n] = np.where(leaf, 0, np.asarray(tree["split_indices"], np.int64))
            value[i, :n] = np.asarray(tree["split_conditions"], np.float32)
            default_left[i, :n] = np.asarray(tree["default_left"], bool)
            depth = max(depth, _depth(lc, rc))
        self.left, self.right = left.ravel(), right.ravel()
        self.feature, self.value = feature.ravel(), value.ravel()
        self.default_left = default_left.ravel()
        self.depth = depth
        self.base = np.float32(base)

    def walk(self, x: np.ndarray) -> np.ndarray:
        """XGBoost's prediction for the float32 rows ``x``: base score, then each tree's
        leaf in order, added in float32 as XGBoost adds them."""
        n = x.shape[0]
        node = np.broadcast_to(self.offsets, (n, len(self.offsets)))
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            v = x[rows, self.feature[node]]
            go_left = np.where(np.isnan(v), self.default_left[node], v < self.value[node])
            node = np.where(go_left, self.left[node], self.right[node])
        leaves = self.value[node]
        terms = np.concatenate([np.full((n, 1), self.base, np.float32), leaves], axis=1)
        out: np.ndarray = np.cumsum(terms, axis=1, dtype=np.float32)[:, -1]
        return out

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(matrix, dtype=np.float32)
        if x.shape[0] <= COMPILED_MAX_ROWS:
            return self.walk(x)
        out: np.ndarray = self.booster.inplace_predict(x, validate_features=False)
        return out


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    deepest, level, frontier = 0, 0, np.array([0])
    while frontier.size:
        deepest = level
        inner = frontier[left[frontier] != -1]
        frontier = np.concatenate([left[inner], right[inner]])
        level += 1
    return deepest


def compile_xgboost(model: Any, names: Sequence[str], example: np.ndarray | None = None
                    ) -> CompiledTrees | None:
    """``model`` (an ``XGBRegressor`` or the flavor's Booster wrapper) compiled, or None
    when it is not an identity-link single-target gbtree model this module reproduces, or
    when the compiled answers differ from XGBoost's on the probe rows."""
    try:
        import xgboost
    except ImportError:  # pragma: no cover - the flavor loaded it, so it is installed
        return None
    booster = getattr(model, "booster", None)
    if isinstance(model, xgboost.XGBModel):
        if type(model).__name__ not in ("XGBRegressor", "XGBModel"):
            return None  # classifiers answer labels; rankers and forests differ too
        if getattr(model, "best_iteration", None) is not None:
            return None  # predict stops at the best iteration
        booster = model.get_booster()
    if not isinstance(booster, xgboost.Booster):
        return None
    try:
        compiled = _compile(booster, len(names))
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        log.info("serving: XGBoost model not compiled (%s)", exc)
        return None
    if compiled is None:
        return None
    probe = _probe_rows(compiled, example)
    try:
        expected = booster.inplace_predict(probe, validate_features=False)
    except Exception as exc:  # XGBoost refused the probe: stay on its own path
        log.info("serving: XGBoost model not compiled (probe failed: %s)", exc)
        return None
    if not np.array_equal(np.asarray(expected, np.float32).ravel(), compiled.walk(probe)):
        log.warning("serving: compiled trees differ from XGBoost; not using them")
        return None
    return compiled


def _compile(booster: Any, features: int) -> CompiledTrees | None:
    if booster.num_features() != features:
        return None
    if booster.attr("best_iteration") is not None:
        return None
    config = json.loads(booster.save_raw("json"))
    learner = config["learner"]
    if learner["objective"]["name"] not in IDENTITY_OBJECTIVES:
        return None
    if int(learner["learner_model_param"].get("num_target", "1")) != 1:
        return None
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree":
        return None
    model = gbm["model"]
    params = model["gbtree_model_param"]
    if int(params.get("num_parallel_tree", "1")) != 1:
        return None
    trees = model["trees"]
    if not trees or any(t.get("categories_nodes") or any(t.get("split_type", []))
                        for t in trees):
        return None
    base_text = str(learner["learner_model_param"]["base_score"]).strip("[]")
    bases = [float(v) for v in base_text.split(",") if v.strip()]
    if len(bases) != 1:
        return None
    return CompiledTrees(booster, trees, bases[0], features)


def _probe_rows(compiled: CompiledTrees, example: np.ndarray | None) -> np.ndarray:
    """Rows that take every branch: each split's threshold (and the float just below it)
    on its feature, missing values, and the input example."""
    rng = np.random.default_rng(0)
    inner = compiled.left != np.arange(len(compiled.left))
    thresholds = compiled.value[inner]
    columns = compiled.feature[inner]
    rows = []
    for variant in (thresholds, np.nextafter(thresholds, np.float32(-np.inf))):
        block = rng.normal(size=(len(variant), compiled.features)).astype(np.float32)
        block[np.arange(len(variant)), columns] = variant
        rows.append(block)
    missing = rng.normal(size=(64, compiled.features)).astype(np.float32)
    missing[rng.random(missing.shape) < 0.3] = np.nan
    rows.append(missing)
    if example is not None and example.size:
        rows.append(np.asarray(example, np.float32).reshape(-1, compiled.features))
    return np.ascontiguousarray(np.concatenate(rows)[:4096])

"""Feature-attribution drift: whether the features that drive the model's predictions
changed, as Vertex AI Model Monitoring judges it where an endpoint explains.

The request log keeps features and predictions, not attributions (``:explain`` answers are
logged as predictions), so a run explains a bounded sample of its window itself: at most
``MAX_ROWS`` answered rows, taken evenly through the window, with the deployment that
answered most of the window's requests (loaded as the server loads it, the same trust
settings; ``serving.explain.Explainer``: TreeSHAP for trees, sampled Shapley otherwise).
Each feature's attribution score is its mean absolute attribution over those rows; its
**share** is that score over the sum of all features' scores, so a share says how much of
the model's output moves with the feature, whatever the output's scale.

Two comparisons, feature by feature:

- against the baseline: the same model explains ``MAX_ROWS`` rows drawn from the baseline
  profile (the profile keeps no rows: each numeric feature's values are its quantiles at
  evenly spaced ranks, each categorical one's its categories in their shares, the columns
  shuffled apart with a fixed seed, so correlations between features are not kept);
- against the previous window: the shares its run recorded (with whatever model answered
  then, so a new model version that leans on other features is caught too).

A feature's share drifted when it moved by at least ``MIN_CHANGE`` (10 points) and by more
than ``Z`` standard errors of the difference (each side's standard error from a seeded
bootstrap over its rows), so sampling noise in 200 rows does not alarm. The comparison with
the previous window breaches (``attribution_drift``); the one with the baseline is shown
(``skew``, ``skew_drifted``) but raises no alert, its rows being drawn from marginals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from shipyard.monitoring.profiles import DataProfile

__all__ = ["MAX_ROWS", "MIN_CHANGE", "Z", "baseline_rows", "compare_shares", "sample_rows",
           "shares_of"]

MAX_ROWS = 200
MIN_CHANGE = 0.1
Z = 4.0
BOOTSTRAP = 200
SEED = 20261203

F64 = npt.NDArray[np.float64]


def sample_rows(rows: int, limit: int = MAX_ROWS) -> npt.NDArray[np.int64]:
    """At most ``limit`` row positions taken evenly through ``rows`` rows."""
    if rows <= limit:
        return np.arange(rows, dtype=np.int64)
    return np.unique(np.linspace(0, rows - 1, limit).round().astype(np.int64))


def baseline_rows(baseline: DataProfile, names: Sequence[str], rows: int = MAX_ROWS
                  ) -> pd.DataFrame:
    """``rows`` rows drawn from the profile's marginal distributions (deterministic)."""
    rng = np.random.default_rng(SEED)
    columns: dict[str, Any] = {}
    ranks = (np.arange(rows) + 0.5) / rows
    for name in names:
        feature = baseline.features[name]
        if feature.kind == "numeric":
            values: Any = feature.sketch.quantiles(ranks)
        else:
            items, shares, _ = feature.shares()
            counts = np.floor(shares / max(shares.sum(), 1e-12) * rows).astype(np.int64)
            short = rows - int(counts.sum())  # largest remainders get the rows left
            if short > 0 and counts.size:
                order = np.argsort(-(shares * rows - counts), kind="stable")[:short]
                counts[order] += 1
            values = np.repeat(items, counts)
        columns[name] = rng.permutation(values)
    return pd.DataFrame(columns)


def shares_of(attributions: F64, names: Sequence[str]) -> dict[str, Any] | None:
    """Each feature's share of the mean absolute attribution (rows x features), with its
    bootstrap standard error; None when every attribution is zero."""
    magnitude = np.abs(np.asarray(attributions, dtype=np.float64))
    means = magnitude.mean(axis=0)
    total = float(means.sum())
    if magnitude.shape[0] == 0 or not np.isfinite(total) or total <= 0:
        return None
    rng = np.random.default_rng(SEED)
    draws = rng.integers(0, magnitude.shape[0], (BOOTSTRAP, magnitude.shape[0]))
    resampled = magnitude[draws].mean(axis=1)  # (bootstrap, features)
    sums = resampled.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.nanstd(resampled / np.where(sums > 0, sums, np.nan), axis=0)
    shares = means / total
    return {"rows": int(magnitude.shape[0]),
            "shares": {n: float(s) for n, s in zip(names, shares, strict=True)},
            "standard_errors": {n: float(e) for n, e in zip(names, spread, strict=True)},
            "scores": {n: float(m) for n, m in zip(names, means, strict=True)}}


def compare_shares(reference: Mapping[str, Any], current: Mapping[str, Any]
                   ) -> dict[str, dict[str, Any]]:
    """Per feature of ``current``: the reference share, the current one, the change and
    whether it drifted (at least ``MIN_CHANGE`` and more than ``Z`` standard errors)."""
    out: dict[str, dict[str, Any]] = {}
    ref_shares, ref_errors = reference["shares"], reference["standard_errors"]
    for name, share in current["shares"].items():
        before = float(ref_shares.get(name, 0.0))
        error = float(np.hypot(ref_errors.get(name, 0.0) or 0.0,
                               current["standard_errors"].get(name, 0.0) or 0.0))
        change = share - before
        threshold = max(MIN_CHANGE, Z * error)
        out[name] = {"reference": before, "current": share, "change": change,
                     "threshold": threshold, "drifted": bool(abs(change) >= threshold)}
    return out


def judge_attributions(store: Any, settings: Any, project: str, window: Any,
                       baseline: DataProfile, previous: Mapping[str, Any] | None,
                       max_rows: int = MAX_ROWS) -> dict[str, Any] | None:
    """The window's attribution shares and their comparisons with the baseline and with
    ``previous`` (the previous window's ``attributions`` result); None when no deployment
    answered in the window. What could not be explained is a finding, never an error."""
    if not window.rows or not window.deployments or max_rows <= 0:
        return None
    deployed = max(sorted(window.deployments), key=lambda d: window.deployments[d])
    name, _, version = deployed.rpartition(":")
    out: dict[str, Any] = {"deployed_model_id": deployed, "findings": [], "drifted": False}
    findings: list[str] = out["findings"]
    from shipyard.errors import NotFound

    try:
        from shipyard.artifacts import open_artifact_store
        from shipyard.registry.loading import load_model
        from shipyard.registry.refs import ModelRef
        from shipyard.serving.explain import Explainer

        try:
            model = load_model(store, open_artifact_store(settings.artifacts, cached=False),
                               project, ModelRef(name, version=int(version)), settings)
        except (NotFound, ValueError):
            return None  # not a registered version (any more): nothing explains the window
        explainer = Explainer(model, method="auto")
        frame = window.features.take(sample_rows(window.rows, max_rows)).to_pandas()
        current = _shares(explainer, frame)
    except Exception as exc:  # a model that cannot be loaded or explained: a finding
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        findings.append(f"attributions: {deployed} could not explain the window: "
                        f"{message}"[:500])
        return out
    if current is None:
        findings.append(f"attributions: every attribution of {deployed} is zero")
        return out
    out.update(current)
    kept = (previous or {}).get("baseline")
    if kept and (previous or {}).get("deployed_model_id") == deployed:
        reference = kept  # the same model on the same baseline: computed once
    else:
        names = [n for n in current["shares"] if n in baseline.features]
        lacking = [n for n in current["shares"] if n not in baseline.features]
        reference = None
        if lacking:
            findings.append(f"attributions: the baseline lacks {', '.join(lacking[:10])}: "
                            "attribution skew is not judged")
        else:
            try:
                reference = _shares(explainer, baseline_rows(baseline, names,
                                                             min(max_rows, MAX_ROWS)))
            except Exception as exc:
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                findings.append(f"attributions: the baseline could not be explained: "
                                f"{message}"[:500])
    out["baseline"] = reference
    out["skew"] = None if reference is None else compare_shares(reference, current)
    earlier = previous if previous and previous.get("shares") else None
    out["drift"] = None if earlier is None else compare_shares(earlier, current)
    # Only the comparison with the previous window (both sides explained rows of the log)
    # breaches; the baseline's rows are drawn from marginals, so its comparison is shown,
    # feature by feature, without raising alerts of its own.
    out["drifted"] = any(entry["drifted"] for entry in (out["drift"] or {}).values())
    out["skew_drifted"] = any(entry["drifted"] for entry in (out["skew"] or {}).values())
    return out


def _shares(explainer: Any, frame: pd.DataFrame) -> dict[str, Any] | None:
    explained = explainer.explain(frame)
    names = list(explained[0]["featureAttributions"])
    matrix = np.asarray([[row["featureAttributions"][n] for n in names] for row in explained],
                        dtype=np.float64)
    return shares_of(matrix, names)

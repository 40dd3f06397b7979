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

The code, one module per part (each readable in one sitting): ``estimation_fit`` (fitting),
``estimation_model`` (the estimator and its bands), ``estimation_results`` (what
``estimate`` returns), ``estimation_store`` (saving and loading), ``estimation_data``
(reading columns, the support check) and ``estimation_metrics`` (calibration, AUC).
"""

from shipyard.monitoring.estimation_fit import fit_estimator
from shipyard.monitoring.estimation_model import METRICS, PerformanceEstimator, Task
from shipyard.monitoring.estimation_results import ChunkEstimate, EstimationResult
from shipyard.monitoring.estimation_store import FORMAT, FORMAT_VERSION, load_estimator

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METRICS",
    "ChunkEstimate",
    "EstimationResult",
    "PerformanceEstimator",
    "Task",
    "fit_estimator",
    "load_estimator",
]

"""Performance estimation without labels, on seeded synthetic covariate-shift data.

The monitored models are deliberately misspecified (a logistic regression, a linear
regression) on data whose true relationship is not linear, so that shifting the features
changes both the realised performance and how well the score alone predicts it. The
targets are issue 19's: accuracy within 0.005 of the realised value on average, a band that
covers the realised value near its nominal rate at small and large chunks, a ROC AUC estimate
no worse than assuming the reference performance, MAE and RMSE within 2%, and an estimate
flagged unreliable when the inputs leave the reference support.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from shipyard.monitoring.estimation import EstimationResult, PerformanceEstimator, fit_estimator

FEATURES = [f"x{i}" for i in range(6)]


def true_logit(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.2 * x[:, 0] - 0.9 * x[:, 1] + 0.6 * x[:, 2] + 0.5 * x[:, 0] * x[:, 1]
                      + 0.8 * (x[:, 3] ** 2 - 1) + 0.5 * np.sin(2 * x[:, 4]) + 0.3 * x[:, 5])


def true_value(x: np.ndarray) -> np.ndarray:
    return np.asarray(2 * x[:, 0] + np.sin(2 * x[:, 1]) + 0.5 * x[:, 2] * x[:, 3])


def draw(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    """Features; ``shift`` moves x3 by that many standard deviations and x0 by half."""
    x = rng.normal(size=(rows, len(FEATURES)))
    x[:, 3] += shift
    x[:, 0] += 0.5 * shift
    return x


def classification_data(reference_rows: int, chunk_rows: int, shifts: Sequence[float],
                        seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames: features, ``score``, ``label`` (the decision), ``y``."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    train = draw(rng, 20_000)
    model = LogisticRegression().fit(
        train, rng.random(len(train)) < 1 / (1 + np.exp(-true_logit(train))))

    def frame(x: np.ndarray) -> pd.DataFrame:
        out = pd.DataFrame(x, columns=FEATURES)
        out["score"] = model.predict_proba(x)[:, 1]
        out["label"] = (out["score"] >= 0.5).astype(np.int64)
        out["y"] = (rng.random(len(x)) < 1 / (1 + np.exp(-true_logit(x)))).astype(np.int64)
        return out

    current = pd.concat([frame(draw(rng, chunk_rows, shift)) for shift in shifts],
                        ignore_index=True)
    return frame(draw(rng, reference_rows)), current


def regression_data(reference_rows: int, chunk_rows: int, shifts: Sequence[float],
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames: features, ``pred`` and ``y``; the noise grows with |x3|."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(seed)

    def target(x: np.ndarray) -> np.ndarray:
        return np.asarray(true_value(x) + rng.normal(size=len(x)) * (0.5 + 0.5 * np.abs(x[:, 3])))

    train = draw(rng, 20_000)
    model = LinearRegression().fit(train, target(train))

    def frame(x: np.ndarray) -> pd.DataFrame:
        out = pd.DataFrame(x, columns=FEATURES)
        out["pred"] = model.predict(x)
        out["y"] = target(x)
        return out

    current = pd.concat([frame(draw(rng, chunk_rows, shift)) for shift in shifts],
                        ignore_index=True)
    return frame(draw(rng, reference_rows)), current


def fit_classifier(reference: pd.DataFrame, **options: object) -> PerformanceEstimator:
    return fit_estimator(reference, task="classification", target="y", score="score",
                         prediction="label", features=FEATURES, **options)  # type: ignore[arg-type]


def frame_of(result: EstimationResult, metric: str) -> pd.DataFrame:
    frame = result.to_frame()
    return frame[frame["metric"] == metric].reset_index(drop=True)


SHIFTS = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 0.0, 0.75, 1.5]


@pytest.fixture(scope="module")
def shifted() -> tuple[PerformanceEstimator, pd.DataFrame]:
    reference, current = classification_data(100_000, 20_000, SHIFTS)
    return fit_classifier(reference), current


def test_accuracy_estimate_tracks_covariate_shift(
        shifted: tuple[PerformanceEstimator, pd.DataFrame]) -> None:
    estimator, current = shifted
    accuracy = frame_of(estimator.estimate(current, chunk_size=20_000), "accuracy")
    assert len(accuracy) == len(SHIFTS)
    error = accuracy["estimate"] - accuracy["realised"]
    # The shift moves the realised accuracy well away from the reference's...
    assert (accuracy["reference"] - accuracy["realised"]).abs().max() > 0.02
    # ...and the estimate follows it: within 0.005 on average (issue 19).
    assert error.abs().mean() <= 0.005, error.tolist()
    # A 1.5 sigma shift puts about 7% of rows beyond the reference's 99.9th percentile of
    # x3: outside its support by more than the 5-point tolerance.
    shifts = np.array(SHIFTS)
    assert accuracy["reliable"][shifts <= 1.0].all()
    assert not accuracy["reliable"][shifts == 1.5].any()


def test_band_covers_the_realised_value_near_its_nominal_rate_on_small_chunks(
        shifted: tuple[PerformanceEstimator, pd.DataFrame]) -> None:
    estimator, current = shifted
    result = estimator.estimate(current, chunk_size=2_000)     # 100 chunks
    for metric in ("accuracy", "roc_auc"):
        chunks = frame_of(result, metric)
        covered = (chunks["lower"] <= chunks["realised"]) & (
            chunks["realised"] <= chunks["upper"])
        # 95% nominal: 100 chunks covering at 95% fall below 88 with probability < 0.5%.
        assert covered.mean() >= 0.88, (metric, covered.mean())
        # Not by being vacuous: about 1.96 sampling standard deviations each side.
        half = (chunks["upper"] - chunks["lower"]) / 2
        assert (half <= 3 * chunks["sampling_std"] + 0.01).all(), metric


def test_band_keeps_covering_on_large_chunks() -> None:
    # A band made of sampling noise alone shrinks as 1/sqrt(rows) while the estimation error
    # does not; at 100k rows it is the estimation error that decides the coverage.
    reference, current = classification_data(120_000, 100_000, [0.0, 0.5, 1.0, 1.5], seed=3)
    result = fit_classifier(reference).estimate(current, chunk_size=100_000)
    for metric in ("accuracy", "roc_auc"):
        chunks = frame_of(result, metric)
        covered = (chunks["lower"] <= chunks["realised"]) & (
            chunks["realised"] <= chunks["upper"])
        assert covered.sum() >= 3, (metric, chunks.to_dict("records"))
        assert (chunks["model_std"] > 0).all()
        assert (chunks["upper"] - chunks["lower"]).max() < 0.03


def test_roc_auc_estimate_is_no_worse_than_assuming_the_reference_value(
        shifted: tuple[PerformanceEstimator, pd.DataFrame]) -> None:
    estimator, current = shifted
    auc = frame_of(estimator.estimate(current, chunk_size=20_000), "roc_auc")
    estimated = (auc["estimate"] - auc["realised"]).abs().mean()
    naive = (auc["reference"] - auc["realised"]).abs().mean()
    assert estimated <= naive, (estimated, naive)
    assert estimated <= 0.01


def test_realised_values_are_the_textbook_metrics(
        shifted: tuple[PerformanceEstimator, pd.DataFrame]) -> None:
    from sklearn.metrics import accuracy_score, roc_auc_score

    estimator, current = shifted
    result = estimator.estimate(current.iloc[:20_000], chunk_size=None)
    first = current.iloc[:20_000]
    assert result.metric("accuracy")[0].realised == pytest.approx(
        accuracy_score(first["y"], first["label"]))
    assert result.metric("roc_auc")[0].realised == pytest.approx(
        roc_auc_score(first["y"], first["score"]))


def test_score_only_estimation_without_features() -> None:
    reference, current = classification_data(50_000, 10_000, [0.0, 0.0, 0.0], seed=5)
    estimator = fit_estimator(reference, task="classification", target="y", score="score")
    accuracy = frame_of(estimator.estimate(current, chunk_size=10_000), "accuracy")
    # No shift: the calibrated score alone estimates accuracy (the decision defaults to
    # score >= 0.5, the same as the 'label' column).
    assert (accuracy["estimate"] - accuracy["realised"]).abs().mean() <= 0.01
    assert accuracy["reliable"].all()


def test_direct_loss_estimation_within_two_percent() -> None:
    shifts = [0.0, 0.5, 1.0, 1.5, 0.25]
    reference, current = regression_data(100_000, 20_000, shifts)
    estimator = fit_estimator(reference, task="regression", target="y", prediction="pred",
                              features=FEATURES)
    result = estimator.estimate(current, chunk_size=20_000)
    for metric in ("mae", "rmse"):
        chunks = frame_of(result, metric)
        relative = (chunks["estimate"] - chunks["realised"]) / chunks["realised"]
        naive = (chunks["reference"] - chunks["realised"]) / chunks["realised"]
        assert naive.abs().max() > 0.05, metric          # the shift matters
        assert relative.abs().mean() <= 0.02, (metric, relative.tolist())
        # Each chunk inside the support is within 2%; the 1.5 sigma shift takes x3, on
        # which the noise grows, beyond the reference, where the loss models extrapolate
        # flat: that chunk is flagged.
        assert chunks["reliable"].tolist() == [True, True, True, False, True]
        assert (relative.abs()[chunks["reliable"]] <= 0.02).all(), (metric, relative.tolist())
        # The band: a few percent wide, and holding the realised value on most reliable
        # chunks (95% nominal; the bench counts coverage over 60 chunks).
        half = (chunks["upper"] - chunks["lower"]) / 2
        assert (half < 0.05 * chunks["estimate"]).all(), (metric, half.tolist())
        covered = (chunks["lower"] <= chunks["realised"]) & (
            chunks["realised"] <= chunks["upper"])
        assert covered[chunks["reliable"]].sum() >= 3, (metric, chunks.to_dict("records"))


def test_inputs_outside_the_reference_support_are_flagged_unreliable() -> None:
    reference, current = regression_data(20_000, 5_000, [0.0, 4.0])
    estimator = fit_estimator(reference, task="regression", target="y", prediction="pred",
                              features=FEATURES)
    mae = frame_of(estimator.estimate(current, chunk_size=5_000), "mae")
    assert mae["reliable"].tolist() == [True, False]
    assert mae["outside_share"][0] < 0.05
    assert mae["outside_share"][1] > 0.5


def test_jointly_unusual_rows_count_as_outside_the_support() -> None:
    # Every value lies inside its feature's reference range, but x0 and x1 are strongly
    # correlated in the reference and anti-correlated here: the Mahalanobis check sees it.
    rng = np.random.default_rng(11)
    base = rng.normal(size=20_000)
    reference = pd.DataFrame({"x0": base, "x1": base + 0.1 * rng.normal(size=20_000)})
    reference["pred"] = reference["x0"]
    reference["y"] = reference["x0"] + rng.normal(size=20_000)
    estimator = fit_estimator(reference, task="regression", target="y", prediction="pred",
                              features=["x0", "x1"])
    values = rng.uniform(-1.5, 1.5, size=2_000)
    current = pd.DataFrame({"x0": values, "x1": -values, "pred": values})
    [mae, _] = estimator.estimate(current).chunks
    assert mae.outside_share > 0.5
    assert not mae.reliable

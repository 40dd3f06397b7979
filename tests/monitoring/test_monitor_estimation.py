"""A monitor that estimates performance without labels: a classifier endpoint whose inputs
shift window by window, a fitted estimator kept with the monitor (as JSON, never a pickle),
each run recording the estimate with its band and reliable flag, and, where ground truth
came back through the feedback API, the measured value beside it. Real SQLite and
PostgreSQL, the request log written by serving's own writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument
from shipyard.monitoring import monitors as service
from shipyard.monitoring.config import check_config
from shipyard.monitoring.estimation import fit_estimator
from shipyard.monitoring.profiles import profile
from shipyard.serving import service as serving
from shipyard.serving.requestlog import Logged, RequestLog
from shipyard.store import Store, open_store
from shipyard.store.schema import monitors as monitor_table

T0 = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
CTX = RequestContext(project="default", actor="alice")
NAMES = ["age", "plan"]
SHIFTS = (0.0, 1.0, 2.0)  # the windows' 'age' moves up by 0, 1 and 2 standard deviations


def truth_logit(age: np.ndarray[Any, Any], plan: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The real log-odds: not linear in age (the model below misses the curve)."""
    return 1.2 * age + 0.8 * (age ** 2 - 1) - 0.5 * (plan == "pro")


def model_score(age: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The deployed model: a logistic score on age alone."""
    return 1 / (1 + np.exp(-1.2 * age))


def leads(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    age = rng.normal(size=rows) + shift
    plan = rng.choice(["free", "pro"], rows)
    p = 1 / (1 + np.exp(-truth_logit(age, plan)))
    return pd.DataFrame({"age": age, "plan": plan, "prediction": model_score(age),
                         "p": p, "label": (rng.random(rows) < p).astype(int)})


def expected_accuracy(frame: pd.DataFrame) -> float:
    """The spec's accuracy of a window: each row is right with probability p where the model
    says 1 (score >= 0.5), 1 - p where it says 0."""
    says_one = frame["prediction"].to_numpy() >= 0.5
    p = frame["p"].to_numpy()
    return float(np.mean(np.where(says_one, p, 1 - p)))


def write_window(root: Path, start: datetime, frame: pd.DataFrame, *, truth: bool) -> None:
    per = len(frame) // 10
    entries = [Logged(
        request_id=f"{start:%H}-{i}", time=(start + i * HOUR / 10).timestamp(),
        project="default", endpoint="leads", deployed_model_id="leads:1", model_version=1,
        protocol="vertex", latency_ms=5.0, names=None,
        rows=frame[NAMES].iloc[i * per:(i + 1) * per].to_dict("records"),
        predictions=frame["prediction"].iloc[i * per:(i + 1) * per].tolist())
        for i in range(10)]
    log = RequestLog(root=root)
    log.write(entries)
    if truth:
        labels = frame["label"].to_numpy()
        log.feedback("default", "leads", [(f"{start:%H}-{i}", j, int(labels[i * per + j]))
                                          for i in range(10) for j in range(per)])


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, pd.DataFrame]:
    rng = np.random.default_rng(7)
    reference = leads(rng, 6000)
    estimator = fit_estimator(reference, task="classification", target="label",
                              score="prediction", features=NAMES, n_models=3)
    return estimator, reference


def config(**extra: Any) -> dict[str, Any]:
    return check_config(interval="1h", window=None, sampling_rate=1.0, thresholds=None,
                        objectives=None, alert=["log"], alert_after=None, drift_windows=1,
                        features=None, categorical_features=None, feature_importance=None,
                        **extra)


def test_each_window_records_the_estimate_and_actual_within_its_band(
        store: Store, tmp_path: Path, fitted: tuple[Any, pd.DataFrame]) -> None:
    estimator, reference = fitted
    settings = Settings(home=tmp_path, uri="sqlite://", artifacts=str(tmp_path / "artifacts"))
    root = tmp_path / "artifacts"
    serving.create_endpoint(store, CTX, "leads")
    monitor = service.create_monitor(
        store, CTX, "leads-monitor", endpoint="leads",
        baseline_profile=profile(reference[NAMES]).to_bytes(),
        config=config(performance_estimator=estimator), start_at=T0)
    # Shown as its outline; the fitted models stay in the stored config, as JSON.
    outline = monitor.config["performance_estimation"]
    assert "performance_estimator" not in monitor.config
    assert outline["task"] == "classification" and outline["metrics"] == ["accuracy",
                                                                         "roc_auc"]
    with store.read() as conn:
        stored = conn.execute(select(monitor_table.c.config)).scalar_one()
    assert stored["performance_estimator"]["format"] == "shipyard.performance-estimator"

    rng = np.random.default_rng(11)
    windows = [leads(rng, 4000, shift) for shift in SHIFTS]
    for n, frame in enumerate(windows):  # ground truth for the first two windows only
        write_window(root, T0 + n * HOUR, frame, truth=n < 2)
    runs = [service.run_monitor(store, settings, "default", "leads-monitor",
                                now=T0 + (n + 1) * HOUR) for n in range(len(windows))]
    for n, (run, frame) in enumerate(zip(runs, windows, strict=True)):
        assert run.state == "succeeded", run.error
        estimated = run.result["estimated_performance"]
        assert estimated["task"] == "classification" and estimated["rows"] == 4000
        accuracy = estimated["metrics"]["accuracy"]
        assert accuracy["lower"] <= accuracy["estimate"] <= accuracy["upper"]
        # The estimate follows the shift: within 0.03 of the window's expected accuracy.
        assert abs(accuracy["estimate"] - expected_accuracy(frame)) < 0.03, n
        assert "roc_auc" in estimated["metrics"]
        if n < 2:  # measured from feedback, beside the estimate, inside the 95% band
            measured = run.result["performance"]["accuracy"]
            assert measured == pytest.approx(float(np.mean(
                (frame["prediction"] >= 0.5) == (frame["label"] == 1))))
            assert accuracy["actual"] == measured and accuracy["covered"] is True
        else:  # no ground truth: the estimate alone
            assert run.result["performance"] is None
            assert accuracy["actual"] is None and accuracy["covered"] is None
    # As 'age' moves up, most rows lie where both the model and the truth say 1: the
    # accuracy rises far from the reference's (about 0.66 against 0.90 two deviations up),
    # and the estimate follows without any label instead of staying at the reference's.
    estimates = [r.result["estimated_performance"]["metrics"]["accuracy"]["estimate"]
                 for r in runs]
    assert expected_accuracy(windows[2]) > expected_accuracy(windows[0]) + 0.15
    assert estimates[2] > estimates[0] + 0.15
    assert runs[2].result["estimated_performance"]["metrics"]["accuracy"]["reference"] \
        == pytest.approx(estimates[0], abs=0.03)
    stats = service.monitoring_stats(store, "default", "leads")
    assert stats["estimated_performance"]["metrics"]["accuracy"]["estimate"] == estimates[2]


def test_a_bad_estimator_names_the_field(sqlite_store_setup: Any,
                                         fitted: tuple[Any, pd.DataFrame]) -> None:
    store = sqlite_store_setup
    estimator, reference = fitted
    for bad in ("{not json", "[" * 100_000, {"format": "something else"}, 42,
                {**estimator.to_dict(), "task": "ranking"}):
        with pytest.raises(InvalidArgument) as error:
            config(performance_estimator=bad)
        assert error.value.field == "performance_estimator"
    broken = {**estimator.to_dict(), "calibrations": "nonsense"}
    with pytest.raises(InvalidArgument) as error:
        service.create_monitor(store, CTX, "m1", endpoint="leads",
                               baseline_profile=profile(reference[NAMES]).to_bytes(),
                               config=config(performance_estimator=broken))
    assert error.value.field == "performance_estimator"
    # Features the baseline lacks: the request log is read by the baseline's columns.
    with pytest.raises(InvalidArgument) as error:
        service.create_monitor(store, CTX, "m2", endpoint="leads",
                               baseline_profile=profile(reference[["age"]]).to_bytes(),
                               config=config(performance_estimator=estimator))
    assert error.value.field == "performance_estimator" and "plan" in str(error.value)


@pytest.fixture
def sqlite_store_setup(tmp_path: Path) -> Any:
    store: Store = open_store(f"sqlite:///{tmp_path}/shipyard.db", cached=False)
    serving.create_endpoint(store, CTX, "leads")
    yield store
    store.dispose()

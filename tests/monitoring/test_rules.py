"""The calibrated default rule: false alarms and detection, measured over many seeded trials
(issue 19: at most 1% of windows without drift raise any alarm, for windows of 30 to 1M rows
and 2 to 10,000 categories; a 0.2 sigma shift and a 10-point share change at 10k rows are
caught in at least 95% of trials). Trials are vectorised: each test takes a few seconds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidArgument
from shipyard.monitoring import metrics
from shipyard.monitoring.drift import detect_drift
from shipyard.monitoring.profiles import profile
from shipyard.monitoring.rules import DefaultRule, FixedThresholds, ks_threshold

RULE = DefaultRule()
FEATURES = 25  # 20 numeric and 5 categorical, as in the benchmark
LEVEL = RULE.level(2 * FEATURES)  # each feature has a distribution and a missing-rate test
LEVELS = (2, 10, 100, 1_000, 10_000)


def ks_statistics(rng: np.random.Generator, trials: int, n: int, m: int,
                  shift: float = 0.0) -> np.ndarray:
    """Two-sample KS statistics of ``trials`` pairs of normal samples, computed together."""
    out = []
    for start in range(0, trials, 500):
        t = min(500, trials - start)
        both = np.concatenate([rng.normal(size=(t, n)), rng.normal(shift, 1.0, (t, m))], 1)
        steps = np.concatenate([np.full((t, n), 1.0 / n), np.full((t, m), -1.0 / m)], 1)
        order = np.argsort(both, axis=1)
        out.append(np.abs(np.cumsum(np.take_along_axis(steps, order, 1), 1)).max(1))
    return np.concatenate(out)


def one_sample_ks_statistics(rng: np.random.Generator, trials: int, m: int) -> np.ndarray:
    """KS statistics of ``trials`` samples of m uniform values against the uniform CDF: the
    two-sample statistic when the reference is much larger than the window."""
    u = np.sort(rng.random((trials, m)), axis=1)
    i = np.arange(1, m + 1) / m
    return np.asarray(np.maximum((i - u).max(1), (u - (i - 1 / m)).max(1)))


def zipf(levels: int) -> np.ndarray:
    p = 1.0 / np.arange(1, levels + 1) ** 1.1
    return np.asarray(p / p.sum())


def categorical_alarms(rng: np.random.Generator, trials: int, levels: int, n: int, m: int,
                       moved: np.ndarray | None = None) -> np.ndarray:
    p = zipf(levels)
    reference = rng.multinomial(n, p, size=trials).astype(float)
    current = rng.multinomial(m, p if moved is None else moved, size=trials).astype(float)
    alarms = np.zeros(trials, dtype=bool)
    for i in range(trials):  # each test is vectorised over the categories
        _, p_value, _ = metrics.chi_square(reference[i], current[i])
        change = metrics.l_infinity(reference[i], current[i])
        alarms[i] = p_value <= LEVEL and change >= RULE.min_share_change
    return alarms


@pytest.mark.parametrize(("n", "m", "trials"), [(30, 30, 60_000), (30, 1_000, 10_000),
                                                (300, 300, 20_000), (2_000, 2_000, 4_000)])
def test_the_ks_threshold_holds_its_level(n: int, m: int, trials: int) -> None:
    rng = np.random.default_rng(n * 7 + m)
    statistics = ks_statistics(rng, trials, n, m)
    for alpha in (0.01, 0.001):
        rate = float(np.mean(statistics >= ks_threshold(n, m, alpha)))
        # The level, with three binomial standard deviations of slack for the simulation.
        assert rate <= alpha + 3 * np.sqrt(alpha / trials), (alpha, rate)


@pytest.mark.parametrize(("reference_rows", "rows", "windows"), [
    (30, 30, 2_000), (100_000, 30, 1_000), (1_000, 1_000, 400), (1_000_000, 1_000, 400),
    (100_000, 100_000, 200), (1_000_000, 1_000_000, 200)])
def test_without_drift_at_most_1_percent_of_windows_raise_any_alarm(
        reference_rows: int, rows: int, windows: int) -> None:
    rng = np.random.default_rng(reference_rows + rows)
    alarms = np.zeros(windows, dtype=bool)
    # 20 numeric features. KS statistics are simulated with at most 2,000 values a side and
    # scaled to the real sizes (D scales as sqrt((n + m) / nm)); past a few thousand rows
    # the minimum effect decides anyway (the threshold is at least min_ks = 0.025 while D
    # without drift stays below 0.008 at 100k rows: its 99.99th percentile is
    # 2.2 sqrt((n + m) / nm)).
    n, m = min(reference_rows, 2_000), min(rows, 2_000)
    if reference_rows >= 50 * rows:  # a window against a far larger reference: one-sample
        statistics = one_sample_ks_statistics(rng, windows * 20, m).reshape(windows, 20)
        statistics *= np.sqrt(m * (reference_rows + rows) / (reference_rows * rows))
    else:
        statistics = ks_statistics(rng, windows * 20, n, m).reshape(windows, 20)
        statistics *= np.sqrt(n * m / (n + m) * (reference_rows + rows)
                              / (reference_rows * rows))
    alarms |= (statistics >= ks_threshold(reference_rows, rows, LEVEL, 0.0,
                                          RULE.min_ks)).any(1)
    # 5 categorical features of 2 to 10,000 categories (Zipf shares: many rare ones). A
    # chi-square test without pooling would fire in about 30% of 30-row windows against a
    # 100k-row reference with 1,000 categories.
    categorical_windows = min(windows, 300)
    for levels in LEVELS:
        alarms[:categorical_windows] |= categorical_alarms(rng, categorical_windows, levels,
                                                           reference_rows, rows)
    assert alarms.mean() <= 0.01, alarms.mean()


def test_without_drift_profiles_of_real_windows_stay_quiet() -> None:
    # End to end through profiles (sketch error included), from 30 to 1M rows.
    rng = np.random.default_rng(7)
    names = {levels: np.array([f"v{i}" for i in range(levels)], dtype=object)
             for levels in LEVELS}

    def window(rows: int, numeric: int, categorical: bool) -> pd.DataFrame:
        data = {f"x{i}": rng.normal(size=rows) for i in range(numeric)}
        for levels in LEVELS if categorical else ():
            data[f"c{levels}"] = names[levels][rng.choice(levels, rows, p=zipf(levels))]
        return pd.DataFrame(data)

    alarms = 0
    runs = [(30, 20, 20), (1_000, 20, 8), (100_000, 20, 2), (1_000_000, 3, 1)]
    for rows, numeric, trials in runs:
        for _ in range(trials):
            categorical = rows < 1_000_000  # the test above covers them at 1M rows
            report = detect_drift(window(rows, numeric, categorical),
                                  window(rows, numeric, categorical))
            alarms += bool(report.drifted_features)
            assert all(f.p_value is None or 0 <= f.p_value <= 1
                       for f in report.features.values())
    assert alarms <= 1, alarms  # of 31 windows: 0.5% expected, 1 allowed


def test_a_0_2_sigma_shift_at_10k_rows_is_caught_in_95_percent_of_trials() -> None:
    rng = np.random.default_rng(8)
    rows = 10_000
    statistics = ks_statistics(rng, 300, rows, rows, shift=0.2)
    # The threshold a profile of 10k rows gets (its sketch's rank-error margin included).
    built = profile(pd.DataFrame({"x": rng.normal(size=rows)}))["x"]
    margin = 2 * metrics.sketch_rank_error(built)
    caught = statistics >= ks_threshold(rows, rows, LEVEL, margin, RULE.min_ks)
    assert caught.mean() >= 0.95, caught.mean()
    # Vertex's fixed rule (Jensen-Shannon 0.3) does not see it at all.
    assert FixedThresholds().default == 0.3


def test_a_10_point_category_share_change_at_10k_rows_is_caught() -> None:
    rng = np.random.default_rng(9)
    for levels in (2, 5, 50):
        p = zipf(levels)
        moved = p.copy()
        moved[0] -= 0.1
        moved[1] += 0.1
        pool = rng.multinomial(10_000, p, size=300).astype(float)
        current = rng.multinomial(10_000, moved, size=300).astype(float)
        caught = [metrics.chi_square(pool[i], current[i])[1] <= LEVEL
                  and metrics.l_infinity(pool[i], current[i]) >= RULE.min_share_change
                  for i in range(300)]
        assert np.mean(caught) >= 0.95, (levels, np.mean(caught))


def test_planted_drift_is_found_end_to_end_and_nothing_else() -> None:
    rng = np.random.default_rng(10)
    rows = 10_000
    colours = np.array(["red", "green", "blue", "grey"], dtype=object)

    def window(shift: float, shares: list[float]) -> pd.DataFrame:
        data = {f"x{i}": rng.normal(shift if i == 0 else 0.0, 1.0, rows) for i in range(20)}
        data["colour"] = colours[rng.choice(4, rows, p=shares)]
        return pd.DataFrame(data)

    found = []
    for _ in range(10):
        report = detect_drift(window(0.0, [0.4, 0.3, 0.2, 0.1]),
                              window(0.2, [0.3, 0.4, 0.2, 0.1]))
        found.append(report.drifted_features)
    assert sum(f == ["x0", "colour"] for f in found) >= 9, found


def test_fixed_thresholds_follow_vertex() -> None:
    rng = np.random.default_rng(11)
    reference = pd.DataFrame({"age": rng.normal(40, 10, 5_000), "income": rng.normal(size=5_000),
                              "plan": rng.choice(["a", "b"], 5_000, p=[0.5, 0.5])})
    current = pd.DataFrame({"age": rng.normal(45, 10, 5_000), "income": rng.normal(size=5_000),
                            "plan": rng.choice(["a", "b"], 5_000, p=[0.3, 0.7])})
    vertex = detect_drift(reference, current, thresholds=0.3)
    assert vertex.drifted_features == []  # 0.5 sigma and 20 points: under Vertex's 0.3
    assert vertex.features["age"].metric == "jensen_shannon"
    assert vertex.features["plan"].metric == "l_infinity"
    assert vertex.features["plan"].value == pytest.approx(0.2, abs=0.03)
    age = vertex.features["age"].value
    assert age is not None and 0.01 < age < 0.05
    tuned = detect_drift(reference, current, thresholds={"age": 0.01, "plan": 0.1})
    assert tuned.drifted_features == ["age", "plan"]
    assert tuned.features["age"].threshold == 0.01
    assert tuned.features["income"].metric == "ks"  # not named: the calibrated rule
    by_psi = detect_drift(reference, current, thresholds={"age": 0.1}, numeric_metric="psi")
    assert by_psi.features["age"].metric == "psi"
    with pytest.raises(InvalidArgument, match="numeric_metric must be one of"):
        detect_drift(reference, current, thresholds=0.1, numeric_metric="kl")
    with pytest.raises(InvalidArgument, match="must be a number"):
        detect_drift(reference, current, thresholds={"age": -1.0})

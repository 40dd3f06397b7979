"""detect_drift: its report on every kind of input, bad data as findings, HTML/JSON/table."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shipyard as sy
from shipyard.errors import InvalidArgument
from shipyard.monitoring.profiles import DataProfile, profile


def frames(seed: int = 0, rows: int = 20_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({
        "age": rng.normal(40, 10, rows), "income": rng.lognormal(10, 1, rows),
        "visits": rng.poisson(3, rows), "plan": rng.choice(["free", "pro", "team"], rows),
        "region": rng.choice([1, 2, 3, 4], rows)})
    current = pd.DataFrame({
        "age": rng.normal(42, 10, rows),  # 0.2 sigma
        "income": rng.lognormal(10, 1, rows), "visits": rng.poisson(3, rows),
        "plan": rng.choice(["free", "pro", "team"], rows, p=[0.2, 0.5, 0.3]),  # 1/3 -> 1/2
        "region": rng.choice([1, 2, 3, 4], rows)})
    return reference, current


def test_detect_drift_names_the_drifted_features_with_their_evidence() -> None:
    reference, current = frames()
    report = sy.detect_drift(reference, current, categorical_features=["region"])
    assert report.drifted_features == ["age", "plan"]
    age, plan, region = (report.features[name] for name in ("age", "plan", "region"))
    assert (age.kind, age.metric, age.drifted) == ("numeric", "ks", True)
    assert age.value is not None and age.threshold is not None and age.value >= age.threshold
    assert age.p_value is not None and age.p_value < 1e-10
    assert age.scores["wasserstein"] == pytest.approx(0.2, abs=0.04)
    assert (plan.kind, plan.metric) == ("categorical", "chi_square")
    assert plan.scores["l_infinity"] == pytest.approx(1 / 6, abs=0.02)
    assert region.kind == "categorical" and not region.drifted
    frame = report.to_frame()
    assert list(frame.index) == ["age", "income", "visits", "plan", "region"]
    assert frame.loc["age", "drifted"] and not frame.loc["income", "drifted"]
    assert {"kind", "metric", "value", "threshold", "p_value", "jensen_shannon", "psi"} <= \
        set(frame.columns)
    doc = json.loads(report.to_json())
    assert doc["drifted_features"] == ["age", "plan"]
    assert doc["features"][0]["name"] == "age" and doc["features"][0]["drifted"] is True


def test_every_kind_of_input_gives_the_same_report(tmp_path: Path) -> None:
    reference, current = frames(1)
    expected = sy.detect_drift(reference, current).to_frame()
    pq.write_table(pa.Table.from_pandas(reference), tmp_path / "ref.parquet")
    pq.write_table(pa.Table.from_pandas(current), tmp_path / "cur.parquet")
    connection = duckdb.connect()
    inputs = {
        "arrow": (pa.Table.from_pandas(reference), pa.Table.from_pandas(current)),
        "parquet": (tmp_path / "ref.parquet", str(tmp_path / "cur.parquet")),
        "duckdb": (connection.sql(f"select * from '{tmp_path / 'ref.parquet'}'"),
                   connection.sql(f"select * from '{tmp_path / 'cur.parquet'}'")),
        "stored profile": (DataProfile.from_bytes(profile(reference).to_bytes()), current),
        "csv": (tmp_path / "ref.csv", tmp_path / "cur.csv"),
    }
    reference.to_csv(tmp_path / "ref.csv", index=False)
    current.to_csv(tmp_path / "cur.csv", index=False)
    for source, (ref, cur) in inputs.items():
        got = sy.detect_drift(ref, cur).to_frame()
        assert list(got.index) == list(expected.index), source
        assert got["drifted"].tolist() == expected["drifted"].tolist(), source
        assert np.allclose(got["value"].astype(float), expected["value"].astype(float),
                           atol=0.005), source


def test_bad_data_becomes_findings_not_errors() -> None:
    rng = np.random.default_rng(2)
    reference = pd.DataFrame({"x": rng.normal(size=500), "gone": rng.normal(size=500),
                              "nan": rng.normal(size=500), "const": np.ones(500),
                              "kind": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    current = pd.DataFrame({"x": rng.normal(size=500), "nan": np.full(500, np.nan),
                            "const": np.ones(500), "kind": rng.choice(["u", "v"], 500),
                            "c": rng.choice(["a", "b"], 500), "extra": np.arange(500)})
    report = sy.detect_drift(reference, current)
    text = " | ".join(report.findings)
    assert "column 'gone' is missing from the current data" in text
    assert "column 'extra' is new" in text
    assert "nan: current has no values (all missing)" in text
    assert "kind: kind changed from numeric to categorical" in text
    assert report.features["gone"].metric is None and not report.features["gone"].drifted
    assert report.features["const"].value == 0.0 and not report.features["const"].drifted
    # A column gone all-missing and a type change are drift in their own right.
    assert report.features["nan"].signals["missing_rate_alarm"] == 1.0
    assert set(report.drifted_features) == {"nan", "kind"}
    json.loads(report.to_json())  # non-finite numbers are written as null


@pytest.mark.parametrize("current_rows", [0, 1])
def test_empty_and_one_row_windows_are_reported(current_rows: int, tmp_path: Path) -> None:
    reference, current = frames(3, rows=1_000)
    report = sy.detect_drift(reference, current.iloc[:current_rows])
    assert report.current_rows == current_rows
    assert report.drifted_features == []
    if current_rows == 0:
        assert "the current window is empty: nothing can be compared" in report.findings
    else:
        assert any("too few values to test" in finding for finding in report.findings)
    assert sy.detect_drift(reference.iloc[:0], current).findings[0] == \
        "the reference window is empty: nothing can be compared"
    report.to_html(tmp_path / "report.html")
    assert report.to_frame().shape[0] == 5


def test_html_report_opens_offline_with_a_plot_per_feature(tmp_path: Path) -> None:
    reference, current = frames(4, rows=5_000)
    report = sy.detect_drift(reference, current)
    path = tmp_path / "reports" / "drift.html"
    page = report.to_html(path)
    assert path.read_text() == page
    assert "<script src=" not in page and 'src="http' not in page  # plotly.js is embedded
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs()[:2_000] in page
    assert "Plotly.newPlot" in page or "Plotly.react" in page
    assert page.count('class="plotly-graph-div"') == 5
    assert "age: share of rows" in page
    assert not list(path.parent.glob(".drift.html.*"))  # the temporary file is gone


def test_unsupported_arguments_are_refused_with_what_to_pass() -> None:
    reference, current = frames(5, rows=100)
    with pytest.raises(InvalidArgument, match="pass a pandas DataFrame"):
        sy.detect_drift([1, 2, 3], current)
    with pytest.raises(InvalidArgument, match="not in the reference"):
        sy.detect_drift(reference, current, features=["nope"])
    with pytest.raises(InvalidArgument, match="false_alarm_rate"):
        sy.detect_drift(reference, current, false_alarm_rate=2.0)
    only = sy.detect_drift(reference, current, features=["age"])
    assert list(only.features) == ["age"]

"""Profiles: rank error, size, merging, sources, storage (issue 19's profile targets)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.errors import InvalidArgument
from shipyard.monitoring.profiles import DataProfile, profile

PROBABILITIES = np.linspace(0.001, 0.999, 999)


def max_rank_error(sorted_values: np.ndarray, estimates: np.ndarray) -> float:
    """The worst distance between a probability and the true rank of its estimate (the
    estimate's rank range, for tied values)."""
    n = sorted_values.size
    low = np.searchsorted(sorted_values, estimates, side="left") / n
    high = np.searchsorted(sorted_values, estimates, side="right") / n
    return float(np.max(np.maximum(low - PROBABILITIES, PROBABILITIES - high).clip(0)))


def test_rank_error_at_most_0_2_percent_on_a_million_rows_and_after_merging() -> None:
    rng = np.random.default_rng(1)
    n = 1_000_000
    columns = {"normal": rng.normal(size=n), "lognormal": rng.lognormal(0, 2, size=n),
               "ties": rng.integers(0, 50, size=n).astype(float),
               "bimodal": np.concatenate([rng.normal(-5, 1, n // 2), rng.normal(9, 0.1, n // 2)])}
    frame = pd.DataFrame(columns)
    whole = profile(frame)
    # minute -> hour -> day: 40 small profiles merged in a tree, as a monitor would.
    parts = [profile(frame.iloc[i:i + 25_000]) for i in range(0, n, 25_000)]
    while len(parts) > 1:
        parts = [parts[i].merge(parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    for name, values in columns.items():
        ordered = np.sort(values)
        for built in (whole, parts[0]):
            error = max_rank_error(ordered, built[name].sketch.quantiles(PROBABILITIES))
            assert error <= 0.002, (name, error)


def test_a_feature_takes_at_most_32_kb_whatever_the_rows() -> None:
    rng = np.random.default_rng(2)
    n = 1_000_000
    names = np.array([f"customer-segment-{i:05d}-with-a-long-name" for i in range(10_000)],
                     dtype=object)
    frame = pd.DataFrame({"x": rng.standard_cauchy(n), "c": names[rng.integers(0, 10_000, n)]})
    built = profile(frame)
    for name in ("x", "c"):
        size = len(built[name].to_bytes())
        assert size <= 32 * 1024, (name, size)
    small = profile(frame.iloc[:1000])
    assert len(small["x"].to_bytes()) < len(built["x"].to_bytes())


def test_merge_gives_the_statistics_of_all_rows() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(10, 2, 20_000)
    values[::97] = np.nan
    values[5] = np.inf
    values[6] = -np.inf
    labels = np.array(["a", "b", None], dtype=object)
    frame = pd.DataFrame({"x": values, "c": labels[rng.integers(0, 3, 20_000)]})
    whole = profile(frame)
    merged = profile(frame.iloc[:7_000]).merge(profile(frame.iloc[7_000:]))
    for built in (whole, merged):
        x = built["x"]
        assert x.rows == 20_000
        assert x.missing == int(np.isnan(values).sum())
        assert (x.pos_inf, x.neg_inf) == (1, 1)
        finite = values[np.isfinite(values)]
        assert x.mean == pytest.approx(finite.mean(), rel=1e-12)
        assert x.std == pytest.approx(finite.std(ddof=1), rel=1e-9)
        assert (x.minimum, x.maximum) == (finite.min(), finite.max())
        assert x.distinct == pytest.approx(finite.size, rel=0.06)
        c = built["c"]
        expected = frame["c"].value_counts()
        assert c.missing == int(frame["c"].isna().sum())
        assert dict(zip(c.items.items, c.items.counts, strict=True)) == expected.to_dict()
        assert c.items.other == 0
        assert c.distinct == pytest.approx(2, abs=0.1)


def test_frequent_items_keep_the_most_frequent_and_count_the_rest_as_other() -> None:
    counts = np.concatenate([[5_000], np.arange(1_500, 0, -1)])
    frame = pd.DataFrame({"c": np.repeat([f"v{i}" for i in range(counts.size)], counts)})
    stored = DataProfile.from_bytes(profile(frame).to_bytes())["c"]
    assert stored.items.items.size == 1_000
    assert stored.items.items[0] == "v0" and stored.items.counts[0] == 5_000
    assert stored.items.other == counts[1_000:].sum()
    assert stored.items.counts.tolist() == counts[:1_000].tolist()
    assert stored.rows == counts.sum()


def test_pandas_arrow_parquet_and_duckdb_give_the_same_profile(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x": rng.normal(size=300_000),
                          "n": rng.integers(0, 1_000, 300_000),
                          "c": rng.choice(["red", "green", "blue"], 300_000)})
    path = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=50_000)
    connection = duckdb.connect()
    relation = connection.sql(f"select * from read_parquet('{path}')")
    built = {"pandas": profile(frame), "arrow": profile(pa.Table.from_pandas(frame)),
             "parquet": profile(path), "parquet-str": profile(str(path)),
             "duckdb": profile(relation)}
    ordered = np.sort(frame["x"].to_numpy())
    for source, result in built.items():
        assert list(result.features) == ["x", "n", "c"], source
        assert result["x"].kind == "numeric" and result["n"].kind == "numeric", source
        assert result["c"].kind == "categorical", source
        assert result["x"].rows == 300_000, source
        assert result["x"].mean == pytest.approx(frame["x"].mean(), rel=1e-9), source
        assert max_rank_error(ordered, result["x"].sketch.quantiles(PROBABILITIES)) <= 0.002
        counts = dict(zip(result["c"].items.items, result["c"].items.counts, strict=True))
        assert counts == frame["c"].value_counts().to_dict(), source
    # A column named as categorical is counted by value whatever its type.
    coded = profile(frame, categorical_features=["n"])["n"]
    assert coded.kind == "categorical" and coded.items.items.size == 1_000


def test_categories_have_the_same_names_from_pandas_and_arrow() -> None:
    frame = pd.DataFrame({"flag": [True, False, True], "code": [1.5, 2.0, 1.5],
                          "n": [1, 2, 1], "mixed": ["a", 1, "a"]})
    from_pandas = profile(frame, categorical_features=["code", "n"])
    from_arrow = profile(pa.table({"flag": [True, False, True], "code": [1.5, 2.0, 1.5],
                                   "n": [1, 2, 1]}), categorical_features=["code", "n"])
    for name in ("flag", "code", "n"):
        assert sorted(from_pandas[name].items.items) == sorted(from_arrow[name].items.items)
    assert sorted(from_pandas["flag"].items.items) == ["false", "true"]
    assert sorted(from_pandas["mixed"].items.items) == ["1", "a"]


def test_parquet_is_profiled_in_bounded_memory(tmp_path: Path) -> None:
    # Peak memory of a fresh process profiling 200k rows, then 2.4M rows (35 MB of decoded
    # columns more): record batches stream, so the peak barely moves.
    rng = np.random.default_rng(5)
    for rows in (200_000, 2_400_000):
        table = pa.table({"x": rng.normal(size=rows), "y": rng.normal(size=rows)})
        pq.write_table(table, tmp_path / f"{rows}.parquet", row_group_size=100_000)
    script = ("import resource, sys\nfrom shipyard.monitoring.profiles import profile\n"
              "p = profile(sys.argv[1])\nassert p['x'].rows == int(sys.argv[2])\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    peaks = [int(subprocess.run([sys.executable, "-c", script, str(tmp_path / f"{rows}.parquet"),
                                 str(rows)], check=True, capture_output=True, text=True)
                 .stdout) for rows in (200_000, 2_400_000)]
    assert peaks[1] - peaks[0] < 15_000, peaks  # KB: well below the 35 MB more of data


def test_stored_profiles_round_trip_without_pickle() -> None:
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"x": rng.exponential(size=50_000), "c": rng.choice(["a", "b"], 50_000),
                          "empty": np.full(50_000, np.nan)})
    built = profile(frame)
    data = built.to_bytes()
    assert data == profile(frame).to_bytes()  # deterministic
    assert b"pickle" not in data and data.startswith(b"SYPROF1\n")
    for restored in (DataProfile.from_bytes(data), DataProfile.from_json(built.to_json())):
        assert restored.to_bytes() == data
        assert np.array_equal(restored["x"].sketch.quantiles(PROBABILITIES),
                              built["x"].sketch.quantiles(PROBABILITIES))
        assert restored["empty"].missing == 50_000 and restored["empty"].present == 0
    json.loads(built.to_json())
    with pytest.raises(InvalidArgument, match="not a stored Shipyard profile"):
        DataProfile.from_bytes(b"garbage")
    with pytest.raises(InvalidArgument, match="damaged"):
        DataProfile.from_bytes(data[:200])


def test_bad_inputs_profile_or_say_what_to_pass() -> None:
    empty = profile(pd.DataFrame({"x": pd.Series([], dtype=float), "c": pd.Series([], dtype=str)}))
    assert empty["x"].rows == 0 and empty["c"].rows == 0
    assert profile(pa.table({"x": pa.array([], pa.float64())}))["x"].rows == 0
    with pytest.raises(InvalidArgument, match="pass a pandas DataFrame"):
        profile(42)
    with pytest.raises(InvalidArgument, match="no such file"):
        profile("/nonexistent/data.parquet")
    x = profile(pd.DataFrame({"x": [1.0, 2.0]}))
    c = profile(pd.DataFrame({"x": ["a"]}))
    with pytest.raises(InvalidArgument, match="one kind"):
        x.merge(c)


def test_columns_profiled_in_threads_equal_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.monitoring import profiles

    rng = np.random.default_rng(7)
    frame = pd.DataFrame({f"x{i}": rng.normal(i, 1.0, 50_000) for i in range(4)})
    frame["plan"] = rng.choice(["free", "pro", "team"], 50_000)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    threaded = [profile(frame).to_bytes(), profile(table).to_bytes()]
    monkeypatch.setattr(profiles, "_MAX_WORKERS", 1)
    assert profiles._workers() == 1
    assert threaded == [profile(frame).to_bytes(), profile(table).to_bytes()]


def test_profiles_made_only_to_compare_skip_numeric_distinct_counts() -> None:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"x": rng.integers(0, 500, 20_000).astype(float),
                          "plan": rng.choice(["free", "pro", "team"], 20_000)})
    full, lean = profile(frame), profile(frame, distinct=False)
    assert abs(full["x"].distinct - 500) < 500 * 0.07  # HyperLogLog: about 2% error
    assert np.isnan(lean["x"].distinct)
    assert lean["plan"].distinct == full["plan"].distinct and round(full["plan"].distinct) == 3
    assert lean["x"].sketch.quantiles(PROBABILITIES).tolist() == \
        full["x"].sketch.quantiles(PROBABILITIES).tolist()

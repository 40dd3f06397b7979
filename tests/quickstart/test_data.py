"""The generated lead data: reproducible, realistic enough to learn from, quick to make."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from shipyard.quickstart.data import CATEGORICAL, FEATURES, MISSING, TARGET, generate_leads


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b = generate_leads(2_000, seed=7), generate_leads(2_000, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not generate_leads(2_000, seed=8).equals(a)


def test_columns_types_levels_and_gaps() -> None:
    frame = generate_leads(20_000, seed=1)
    assert list(frame.columns) == [*FEATURES, TARGET]
    assert frame[TARGET].between(0, 1).all() and frame[TARGET].notna().all()
    for column in CATEGORICAL:
        assert 4 <= frame[column].nunique() <= 10, column
    for column, share in MISSING.items():
        assert abs(frame[column].isna().mean() - share) < 0.01, column
    # Columns without configured gaps have none.
    complete = [c for c in FEATURES if c not in MISSING]
    assert frame[complete].notna().all().all()
    assert frame["pages_visited"].dtype == np.int64 and frame["pages_visited"].min() >= 1


def test_the_target_carries_signal_a_model_can_learn() -> None:
    frame = generate_leads(20_000, seed=3)
    by_product = frame.groupby("product_interest")[TARGET].mean()
    assert by_product["enterprise"] > by_product["starter"] + 0.1
    assert frame[TARGET].corr(frame["pages_visited"]) > 0.2
    assert 0.1 < frame[TARGET].std() < 0.35  # neither constant nor pure noise


def test_generation_is_vectorised() -> None:
    start = time.perf_counter()
    frame = generate_leads(200_000, seed=0)
    # Per-row Python would take tens of seconds; a loaded shared machine still does this
    # in well under a second or two.
    assert time.perf_counter() - start < 5.0
    assert len(frame) == 200_000


@pytest.mark.parametrize("rows", [0, -1, 10_000_000])
def test_bad_row_counts_are_refused(rows: int) -> None:
    with pytest.raises(ValueError, match="rows must be between"):
        generate_leads(rows)

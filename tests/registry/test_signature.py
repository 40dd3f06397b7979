"""Signature inference and validation: errors name the column and the first bad row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import InvalidArgument
from shipyard.registry.signature import Signature, infer_signature

EXAMPLE = pd.DataFrame(
    {
        "visits": [1, 2, 3],
        "score": [0.5, np.nan, 1.5],
        "source": ["ads", "organic", "ads"],
        "active": [True, False, True],
        "seen": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        "tier": pd.Categorical(["a", "b", "a"]),
    }
)


def test_infer_kinds_nullability_and_levels() -> None:
    sig = infer_signature(EXAMPLE)
    kinds = {c.name: (c.kind, c.nullable) for c in sig.columns}
    assert kinds == {
        "visits": ("integer", False),
        "score": ("float", True),
        "source": ("string", False),
        "active": ("bool", False),
        "seen": ("datetime", False),
        "tier": ("categorical", False),
    }
    assert sig["source"].levels == ("ads", "organic")
    assert Signature.from_json(sig.to_json()) == sig
    assert infer_signature(EXAMPLE, nullable="visits")["visits"].nullable


def test_validation_coerces_only_lossless_values() -> None:
    sig = infer_signature(EXAMPLE)
    rows = [
        {
            "visits": 4.0,
            "score": 1,
            "source": "ads",
            "active": "True",
            "seen": "2024-05-01T10:00:00",
            "tier": "c",
            "extra": 1,
        },
    ]
    checked = sig.check(rows)
    frame = checked.frame
    assert list(frame.columns) == sig.names
    assert frame["visits"].dtype == np.int64 and frame["visits"].iloc[0] == 4
    assert frame["seen"].iloc[0] == pd.Timestamp("2024-05-01T10:00:00")
    assert list(frame["tier"].cat.categories) == ["a", "b", "c"]
    assert any("ignored columns" in w for w in checked.warnings)
    # A 2-D list in signature order is accepted too.
    values = [[1, 0.1, "ads", True, "2024-01-01", "a"]]
    assert sig.validate(values)["source"].iloc[0] == "ads"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("visits", "x", "expected integer"),
        ("visits", 1.5, "expected integer"),
        ("visits", True, "expected integer"),
        ("score", "high", "expected float"),
        ("source", 3, "expected string"),
        ("active", "yes", "expected bool"),
        ("seen", "not a date", "expected an ISO 8601 datetime"),
        ("visits", None, "null in a column that is not nullable"),
    ],
)
def test_errors_name_column_and_row(column: str, value: object, message: str) -> None:
    sig = infer_signature(EXAMPLE)
    frame = EXAMPLE.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = value  # type: ignore[call-overload]
    with pytest.raises(InvalidArgument, match=f"column '{column}', row 1: {message}") as info:
        sig.validate(frame)
    assert info.value.field == column


def test_row_is_reported_by_label_with_duplicate_index() -> None:
    sig = infer_signature(pd.DataFrame({"x": [1, 2]}))
    frame = pd.DataFrame({"x": [1, 2, "bad"]}, index=[7, 7, 9])
    with pytest.raises(InvalidArgument, match=r"row 9: expected integer, got 'bad'"):
        sig.validate(frame)


def test_structural_errors() -> None:
    sig = infer_signature(pd.DataFrame({"a": [1], "b": [2]}))
    with pytest.raises(InvalidArgument, match="each row must have 2 values"):
        sig.validate([[1, 2, 3]])
    with pytest.raises(InvalidArgument, match="more than once"):
        sig.validate(pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"]))
    with pytest.raises(InvalidArgument, match="unsupported input type"):
        sig.validate(42)
    with pytest.raises(InvalidArgument, match="duplicate column names"):
        Signature.from_dict({"columns": [{"name": "a", "kind": "float"}] * 2})
    with pytest.raises(InvalidArgument, match="unknown column kind"):
        Signature.from_dict({"columns": [{"name": "a", "kind": "tensor"}]})


def test_large_integers_keep_their_digits() -> None:
    big = 2**60 + 1
    sig = infer_signature(pd.DataFrame({"id": [big]}))
    assert int(sig.validate(pd.DataFrame({"id": [big]}))["id"].iloc[0]) == big


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(10**6), 10**6), st.floats(allow_nan=False, width=32)),
        min_size=1,
        max_size=20,
    )
)
def test_an_example_always_validates_against_its_own_signature(
    rows: list[tuple[int, float]],
) -> None:
    frame = pd.DataFrame(rows, columns=["i", "f"])
    out = infer_signature(frame).validate(frame)
    pd.testing.assert_frame_equal(out, frame.astype({"i": "int64", "f": "float64"}))

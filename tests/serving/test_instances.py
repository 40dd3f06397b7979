"""Instances to model input: objects or arrays, and the errors naming row and feature."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidArgument, TooLarge
from shipyard.serving.instances import MAX_INSTANCES, as_rows, signature_names, to_json, to_records

NAMES = ["visits", "time_on_site"]


def test_objects_and_arrays() -> None:
    assert to_records([{"visits": 1, "time_on_site": 2.0}], NAMES) == [
        {"visits": 1, "time_on_site": 2.0}]
    assert to_records([[1, 2.0], [3, 4.0]], NAMES) == [
        {"visits": 1, "time_on_site": 2.0}, {"visits": 3, "time_on_site": 4.0}]
    assert to_records([{"anything": 1}], None) == [{"anything": 1}]


@pytest.mark.parametrize(("instances", "field"), [
    ([], "instances"),
    ({"visits": 1}, "instances"),
    ("rows", "instances"),
    (None, "instances"),
    ([1, 2], "instances[0]"),
    (["a"], "instances[0]"),
    ([{"visits": 1, "time_on_site": 2.0}, [1, 2.0]], "instances[1]"),
    ([[1, 2.0], {"visits": 1}], "instances[1]"),
    ([[1, 2.0], [1]], "instances[1]"),
    ([[1, 2.0, 3]], "instances[0]"),
    ([{"visits": 1}], "instances[0].time_on_site"),
    ([{"visits": 1, "time_on_site": 2, "<script>": 1}], "instances[0].<script>"),
])
def test_malformed_instances_name_the_row(instances: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        to_records(instances, NAMES)
    assert info.value.field == field


def test_arrays_need_a_signature_and_a_limit_holds() -> None:
    with pytest.raises(InvalidArgument) as info:
        to_records([[1, 2]], None)
    assert info.value.field == "instances[0]"
    with pytest.raises(TooLarge):
        to_records([[1, 2.0]] * (MAX_INSTANCES + 1), NAMES)


def test_output_and_input_conversions() -> None:
    assert to_json(np.array([1.5, np.nan, np.inf])) == [1.5, None, None]
    assert to_json(np.array([[1, 2]])) == [[1, 2]]
    assert to_json(pd.Series(["a", "b"])) == ["a", "b"]
    assert to_json([np.float32(0.5), (1.0, math.nan)]) == [0.5, [1.0, None]]
    frame = pd.DataFrame({"visits": np.array([1], dtype="int64"), "time_on_site": [2.5]})
    assert as_rows(frame) == [{"visits": 1, "time_on_site": 2.5}]
    assert as_rows(np.array([[1, 2]])) == [[1, 2]]
    assert as_rows([{"visits": np.int64(3)}]) == [{"visits": 3}]
    assert type(as_rows([{"visits": np.int64(3)}])[0]["visits"]) is int
    assert signature_names({"columns": [{"name": "a"}, {"name": "b"}]}) == ["a", "b"]
    assert signature_names(None) is None

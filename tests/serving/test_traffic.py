"""Traffic splits: rescaling, checking, and the router's accuracy."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from shipyard.errors import InvalidArgument
from shipyard.serving.traffic import Router, check_split, rescale


def test_rescale_keeps_proportions_and_the_total() -> None:
    assert rescale({"a:1": 100}, 90) == {"a:1": 90}
    assert rescale({"a:1": 90, "a:2": 10}, 50) == {"a:1": 45, "a:2": 5}
    assert rescale({"a:1": 1, "a:2": 1, "a:3": 1}, 100) == {"a:1": 34, "a:2": 33, "a:3": 33}
    assert rescale({"a:1": 0, "a:2": 0}, 100) == {"a:1": 50, "a:2": 50}
    assert rescale({}, 100) == {}
    for total in range(101):
        assert sum(rescale({"a": 33, "b": 33, "c": 34}, total).values()) == total


def test_check_split_fills_in_zeros() -> None:
    assert check_split({"a:1": 100}, ["a:1", "a:2"]) == {"a:1": 100, "a:2": 0}
    with pytest.raises(InvalidArgument) as info:
        check_split({}, ["a:1"])
    assert info.value.field == "traffic"


@pytest.mark.parametrize("split", [
    {"lead:3": 90, "lead:4": 10},
    {"a:1": 50, "a:2": 30, "a:3": 20},
    {"a:1": 1, "a:2": 99},
    {"a:1": 0, "a:2": 100},
])
def test_router_honours_the_split_within_two_points(split: dict[str, int]) -> None:
    router = Router(split)
    draws = random.Random(18)
    counts = Counter(router.choose(draws.random()) for _ in range(10_000))
    for key, percent in split.items():
        assert abs(100 * counts[key] / 10_000 - percent) <= 2, (key, counts)
    assert all(counts[key] == 0 for key, percent in split.items() if percent == 0)


def test_router_edges() -> None:
    router = Router({"a:1": 90, "a:2": 10})
    assert router.choose(0.0) == "a:1"
    assert router.choose(0.8999) == "a:1"
    assert router.choose(0.9) == "a:2"
    assert router.choose(0.999999) == "a:2"
    with pytest.raises(InvalidArgument):
        Router({"a:1": 0}).choose(0.5)

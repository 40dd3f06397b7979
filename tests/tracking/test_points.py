"""``clean_metrics``: the checks hold for every point, whichever keys were seen before."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidArgument
from shipyard.tracking import points
from shipyard.tracking.points import clean_metrics
from shipyard.validation import check_key


class _Key(str):
    pass


@pytest.mark.parametrize("bad", ["", "a..b", " loss", "loss\n", "x" * 251, 3, None])
def test_a_bad_key_fails_every_time_even_next_to_good_ones(bad: object) -> None:
    for _ in range(2):  # the second time after "loss" is known to be valid
        with pytest.raises(InvalidArgument) as failed:
            clean_metrics([("loss", 1.0, 0), (bad, 1.0, 0)])
        assert failed.value.field == "metrics[1].key"


def test_a_key_found_valid_is_remembered_and_the_memory_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(points, "_valid_keys", set())
    monkeypatch.setattr(points, "_MAX_VALID_KEYS", 3)
    checked: list[object] = []
    def counting_check(value: object, field: str) -> str:
        checked.append(value)
        return check_key(value, field)

    monkeypatch.setattr(points, "check_key", counting_check)
    clean_metrics([("loss", 1.0, 0), ("loss", 0.5, 1)])
    clean_metrics([("loss", 0.25, 2)])
    assert checked == ["loss"]
    clean_metrics([(f"k{i}", 1.0, 0) for i in range(5)])
    assert len(points._valid_keys) <= 3
    # A subclass of str is checked every time (its comparisons are its own).
    clean_metrics([(_Key("loss"), 1.0, 3), (_Key("loss"), 1.0, 4)])
    assert checked.count("loss") == 3

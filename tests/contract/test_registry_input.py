"""Bad registry input gets the same answer in local and remote mode (issue 16)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from shipyard.errors import InvalidArgument, NotFound, ShipyardError
from tests.contract.test_registry import _data, _model

HUGE = 99999999999999999999999
TOO_BIG = "version: Input should be less than or equal to 2147483647"
TOO_SMALL = "version: Input should be greater than or equal to 1"


@pytest.fixture
def model(sy: ModuleType) -> str:
    frame, y = _data(3)
    sy.register_model("m", _model(frame, y), metrics={"rmse": 0.2}, aliases=["production"])
    sy.register_model("m", _model(frame, y), metrics={"rmse": 0.3})
    return "m"


def _error(call: Callable[[], Any]) -> ShipyardError:
    with pytest.raises(ShipyardError) as info:
        call()
    return info.value


@pytest.mark.parametrize("version, message", [(HUGE, TOO_BIG), (2**31, TOO_BIG),
                                              (0, TOO_SMALL), (-3, TOO_SMALL)])
def test_a_version_out_of_range_is_the_same_error_in_both_modes(
        sy: ModuleType, model: str, version: int, message: str) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: sy.get_model_version(model, version=version),
        lambda: sy.set_alias(model, "staging", version),
        lambda: sy.set_model_status(model, version, "retired"),
        lambda: sy.promote_if_better(model, version),
    ]
    for call in calls:
        error = _error(call)
        assert isinstance(error, InvalidArgument), error
        assert (error.message, error.field) == (message, "version")


def test_a_version_out_of_range_in_a_reference(sy: ModuleType, model: str) -> None:
    error = _error(lambda: sy.resolve_model(f"{model}:{HUGE}"))
    assert isinstance(error, InvalidArgument)
    assert (error.message, error.field) == (TOO_BIG, "version")


def test_history_of_a_malformed_alias_is_refused(sy: ModuleType, model: str) -> None:
    error = _error(lambda: sy.alias_history(model, "../x"))
    assert isinstance(error, InvalidArgument)
    assert error.field == "alias" and "../x" in error.message
    assert [c.to_version for c in sy.alias_history(model, "production")] == [1]


def test_rollback_of_a_missing_alias_says_it_is_missing(sy: ModuleType, model: str) -> None:
    error = _error(lambda: sy.rollback_alias(model, "nosuch"))
    assert isinstance(error, NotFound), error
    assert error.field == "alias"
    assert "nosuch" in error.message and "production" in error.message  # the ones it has
    assert "earlier version" not in error.message
    # An alias that exists but never moved still has nothing to roll back to.
    kept = _error(lambda: sy.rollback_alias(model, "production"))
    assert "earlier version" in kept.message

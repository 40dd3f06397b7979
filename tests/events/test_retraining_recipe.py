"""``sy.enable_retraining`` checks both actions before creating anything: bad input names
the recipe's argument (no session is needed to refuse it)."""

from __future__ import annotations

import pytest

import shipyard as sy
from shipyard.errors import InvalidArgument


@pytest.mark.parametrize(("given", "field"), [
    ({"canary_percent": 0}, "canary_percent"), ({"canary_percent": 100}, "canary_percent"),
    ({"after_requests": -1}, "after_requests"), ({"model": "a b"}, "model"),
    ({"pipeline": ""}, "pipeline"), ({"max_latency_ratio": 0}, "max_latency_ratio"),
    ({"promote_alias": "a/b"}, "promote_alias")])
def test_enable_retraining_names_the_bad_argument(given: dict[str, object], field: str
                                                  ) -> None:
    values: dict[str, object] = {"endpoint": "leads", "monitor": "m", "pipeline": "p",
                                 "model": "lead-scorer", **given}
    with pytest.raises(InvalidArgument) as caught:
        sy.enable_retraining(**values)
    assert caught.value.field == field
    assert "action." not in caught.value.message

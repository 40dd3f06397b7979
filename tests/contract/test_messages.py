"""One source of messages: the same mistake gets the same error, word for word, in local
and remote mode (issue 16). Each case is the service's own check; the HTTP client makes it
before sending, where the server's schema would otherwise word it its own way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shipyard.errors import InvalidArgument

NAME_RULE = "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
KEY_RULE = "use 1-250 letters, digits, '_', '.', '-', '/', ':' or spaces"


def _invalid(call: Callable[[], Any]) -> tuple[str, str | None]:
    with pytest.raises(InvalidArgument) as info:
        call()
    return info.value.message, info.value.field


def test_tracking_mistakes(sy: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with sy.start_run(experiment="e") as run:
        run.log_artifact(tmp_path / "f.txt")
    assert _invalid(lambda: sy.start_run(experiment="../x")) == (
        f"experiment '../x' is not a valid name: {NAME_RULE}", "experiment")
    assert _invalid(lambda: sy.start_run(experiment="e", name="a b")) == (
        f"name 'a b' is not a valid name: {NAME_RULE}", "name")
    assert _invalid(lambda: sy.get_metric_history(run.id, "../x")) == (
        f"key '../x' is not a valid key: {KEY_RULE}", "key")
    assert _invalid(lambda: sy.download_artifact(run.id, "../x", tmp_path / "out")) == (
        f"name '../x' is not a valid name: {NAME_RULE}", "name")


def test_lineage_mistakes(sy: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with sy.start_run(experiment="e") as run:
        artifact_id = run.log_artifact(tmp_path / "f.txt").artifact_id
    assert _invalid(lambda: sy.get_lineage(artifact_id, direction="sideways")) == (
        "direction must be one of upstream, downstream, both", "direction")
    for depth in (0, 1001):
        assert _invalid(lambda d=depth: sy.get_lineage(artifact_id, depth=d)) == (
            "depth must be an integer from 1 to 1000", "depth")

"""The predictive maintenance example (seed 000): a classifier trained and registered by a
pipeline, and a drifting vibration sensor caught by the drift check, on small data."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import shipyard as sy
from shipyard.sdk import session

EXAMPLE = (Path(__file__).parents[2] / "examples" / "predictive_maintenance"
           / "predictive_maintenance.py")


@pytest.fixture
def example(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.chdir(tmp_path)
    session.reset()
    spec = importlib.util.spec_from_file_location("predictive_maintenance_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # components read their source through the module
    spec.loader.exec_module(module)
    yield module
    session.reset()
    sys.modules.pop(spec.name, None)


def test_drifting_sensor_is_caught_and_healthy_days_are_quiet(example: ModuleType,
                                                               home: Path) -> None:
    result = example.main(["--rows", "4000", "--days", "3", "--rows-per-day", "2000"])

    # The pipeline trained and registered one version, linked to its training run.
    assert result["version"] == 1
    assert 0.7 < result["roc_auc"] <= 1.0
    version = sy.get_model_version("pump-failure", 1)
    assert version.run_id is not None and version.metrics["roc_auc"] == result["roc_auc"]
    baseline = example.baseline_of()
    assert baseline.rows == 3_000  # the training split, 75% of the readings
    assert set(baseline.features) == set(example.FEATURES)

    # Days 1-2 healthy, day 3 line B's vibration sensors read 40% high: only it drifts.
    assert result["drifted"] == {1: [], 2: [], 3: ["vibration"]}
    assert (home / "reports" / "predictive-maintenance" / "day-3.html").stat().st_size > 0


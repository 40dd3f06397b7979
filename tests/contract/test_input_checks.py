"""Bad search and listing input is refused naming the field and the valid choices, with the
same message in local and remote mode (issue 16)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

import shipyard
from shipyard.errors import InvalidArgument


def test_order_by_with_an_unknown_direction(sy: ModuleType) -> None:
    with sy.start_run(experiment="e") as run:
        run.log_metric("rmse", 0.1)
    with pytest.raises(InvalidArgument) as info:
        sy.search_runs(order_by=["metrics.rmse SIDEWAYS"])
    assert info.value.field == "order_by[0]"
    assert info.value.message == (
        "order_by: 'metrics.rmse SIDEWAYS': the direction must be ASC or DESC (a key with "
        "spaces goes in backticks: metrics.`my key` DESC)")
    assert list(sy.search_runs(order_by=["metrics.rmse desc"])["run_id"]) == [run.id]


def test_pipeline_runs_in_an_unknown_state(sy: ModuleType) -> None:
    with pytest.raises(InvalidArgument) as info:
        sy.list_pipeline_runs(state="NOSUCH")
    assert info.value.field == "state"
    assert info.value.message == (
        "state 'NOSUCH' is not a run state: use one of QUEUED, RUNNING, CANCELLING, "
        "SUCCEEDED, FAILED, CANCELLED")
    assert sy.list_pipeline_runs(state="FAILED") == []


def test_an_empty_project_is_refused(home: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        shipyard.init(home=home, project="")
    assert info.value.field == "project"


def test_a_sqlite_store_in_a_missing_folder_is_refused(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    with pytest.raises(InvalidArgument) as info:
        shipyard.init(home=home, uri=f"sqlite:///{missing / 'x.db'}")
    assert info.value.field == "uri" and str(missing) in info.value.message
    assert not missing.parent.exists()

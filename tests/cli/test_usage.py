"""Bad option values are usage errors (exit 2) naming the option and the valid choices, not
a run that answers 0 (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli, LoggedRuns


def test_order_by_with_an_unknown_direction(cli: Cli, runs: LoggedRuns) -> None:
    result = cli("runs", "list", "--order-by", "metrics.rmse SIDEWAYS")
    result.assert_one_error_line("--order-by", "SIDEWAYS", "ASC", "DESC", exit_code=2)
    # Keys with spaces still sort when they are quoted in backticks.
    ordered = cli("runs", "list", "--order-by", "metrics.`rmse` DESC", "-o", "json")
    assert [r["run_id"] for r in ordered.json()] == [runs.shallow, runs.deep]


def test_pipelines_list_with_an_unknown_state(cli: Cli, home: Path) -> None:
    result = cli("pipelines", "list", "--state", "NOSUCH")
    result.assert_one_error_line("--state", "NOSUCH", "SUCCEEDED", "FAILED", exit_code=2)
    assert cli("pipelines", "list", "--state", "failed", "-o", "json").json() == []


def test_compare_needs_two_runs(cli: Cli, runs: LoggedRuns) -> None:
    cli("runs", "compare", runs.shallow).assert_one_error_line(
        "RUN_IDS", "two or more", exit_code=2)


@pytest.mark.parametrize("where", ["root", "command"])
def test_an_empty_project_is_a_usage_error(cli: Cli, runs: LoggedRuns, where: str) -> None:
    args = ["--project", "", "runs", "list"] if where == "root" else \
        ["runs", "list", "--project", ""]
    cli(*args).assert_one_error_line("--project", "not a valid name", exit_code=2)


def test_a_store_in_a_missing_folder_is_refused(cli: Cli, home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    result = cli("--uri", f"sqlite:///{missing / 'x.db'}", "runs", "list")
    result.assert_one_error_line("--uri", str(missing), "does not exist", exit_code=2)
    assert not missing.parent.exists()
    # The home is made on first use, with the database in it.
    fresh = tmp_path / "fresh-home"
    made = cli("--home", str(fresh), "--uri", f"sqlite:///{fresh / 'x.db'}", "runs", "list")
    assert made.exit_code == 0, made.stderr
    assert (fresh / "x.db").is_file()


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_quickstart_seed_out_of_range_is_a_usage_error(cli: Cli, home: Path,
                                                       seed: str) -> None:
    result = cli("quickstart", "--home", str(home), "--seed", seed)
    result.assert_one_error_line("--seed", exit_code=2)
    assert not home.exists()  # refused before anything was set up

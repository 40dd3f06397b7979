"""``shipyard lineage show`` and ``shipyard audit``."""

from __future__ import annotations

import pytest

import shipyard as sy
from tests.cli.conftest import Cli, LoggedRuns


def test_lineage_tree_of_a_run_artifact(cli: Cli, runs: LoggedRuns) -> None:
    result = cli("lineage", "show", runs.artifact_id)
    assert result.exit_code == 0, result.stderr
    assert "train.csv" in result.stdout
    assert "depth-3" in result.stdout  # the run's execution that produced it
    assert "└──" in result.stdout


def test_lineage_both_directions(cli: Cli, runs: LoggedRuns) -> None:
    result = cli("lineage", "show", runs.artifact_id, "--direction", "both", "--depth", "2")
    assert result.exit_code == 0, result.stderr
    assert "upstream" in result.stdout and "downstream" in result.stdout


def test_lineage_json(cli: Cli, runs: LoggedRuns) -> None:
    graph = cli("lineage", "show", runs.artifact_id, "-o", "json").json()
    assert graph["root"] == runs.artifact_id
    assert any(e["kind"] == "output" for e in graph["events"])
    assert runs.artifact_id in {a["id"] for a in graph["artifacts"]}


def test_lineage_of_an_unknown_artifact(cli: Cli, runs: LoggedRuns) -> None:
    cli("lineage", "show", "0" * 32).assert_one_error_line()


def test_lineage_bad_direction_is_a_usage_error(cli: Cli, runs: LoggedRuns) -> None:
    cli("lineage", "show", runs.artifact_id, "--direction", "sideways").assert_one_error_line(
        "sideways", exit_code=2)


@pytest.mark.skipif(not hasattr(sy, "list_audit_events"),
                    reason="sy.list_audit_events is not in the SDK yet")
def test_audit_lists_entries(cli: Cli, runs: LoggedRuns) -> None:
    result = cli("audit", "--limit", "5", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert isinstance(result.json(), list)
    assert cli("audit").exit_code == 0

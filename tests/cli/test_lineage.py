"""``shipyard lineage show`` and ``shipyard audit``."""

from __future__ import annotations

from pathlib import Path

import shipyard as sy
from shipyard import (
    dsl,
    list_audit_events,  # noqa: F401  (what `shipyard audit` calls)
)
from shipyard.sdk import session
from tests.cli.conftest import Cli, LoggedRuns
from tests.pipelines import steps


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


def test_audit_lists_entries(cli: Cli, runs: LoggedRuns) -> None:
    result = cli("audit", "--limit", "5", "-o", "json")
    assert result.exit_code == 0, result.stderr
    # The two runs' trail, newest first, cut at --limit (the experiment's row is the sixth).
    assert [(e["action"], e["resource"], e["outcome"]) for e in result.json()] == [
        ("runs.update", f"runs/{runs.deep}", "ok"),
        ("runs.create", f"runs/{runs.deep}", "ok"),
        ("runs.update", f"runs/{runs.shallow}", "ok"),
        ("runs.log_artifact", f"runs/{runs.shallow}/artifacts/train.csv", "ok"),
        ("runs.create", f"runs/{runs.shallow}", "ok"),
    ]
    table = cli("audit")
    assert table.exit_code == 0, table.stderr
    assert "runs.create" in table.stdout


# -- issue 16: a tree that stays bounded under cached reruns -----------------------------------

@dsl.component
def _merge(first: dsl.Input[dsl.Dataset], second: dsl.Input[dsl.Dataset],
           out: dsl.Output[dsl.Model]) -> None:
    with open(first.path) as a, open(second.path) as b, open(out.path, "w") as f:
        f.write(a.read() + b.read())


@dsl.pipeline(name="diamond")
def _diamond(ledger: str, text: str = "hello") -> None:
    made = steps.produce(ledger=ledger, text=text)
    once = steps.transform(ledger=ledger, data=made.outputs["out"])
    twice = steps.transform(ledger=ledger, data=once.outputs["out"])
    _merge(first=made.outputs["out"], second=twice.outputs["out"])


def _run_diamond(tmp_path: Path, times: int) -> str:
    """Run the diamond ``times`` times (every rerun served from the cache); the id of the
    model it ends in."""
    sy.init()
    artifact_id = ""
    for _ in range(times):
        job = sy.run_pipeline(_diamond, arguments={"ledger": str(tmp_path / "ledger")},
                              inline=True)
        artifact_id = job.tasks["merge"].outputs["out"].artifact_id
    session.reset()
    return artifact_id


def test_lineage_tree_stays_bounded_under_cached_reruns(cli: Cli, home: Path,
                                                        tmp_path: Path) -> None:
    artifact_id = _run_diamond(tmp_path, 1)
    once = cli("lineage", "show", artifact_id)
    assert once.exit_code == 0, once.stderr
    artifact_id = _run_diamond(tmp_path, 5)  # six runs in all: five served from the cache
    sixth = cli("lineage", "show", artifact_id)
    assert sixth.exit_code == 0, sixth.stderr
    # The issue: 59 lines after one quick start, 11,959 after six. The tree now grows by at
    # most one line per cached step, never multiplies.
    assert len(sixth.stdout.splitlines()) <= len(once.stdout.splitlines()) + 8, sixth.stdout
    assert "cached" in sixth.stdout


def test_lineage_tree_shows_each_node_of_the_graph_once(cli: Cli, home: Path,
                                                        tmp_path: Path) -> None:
    artifact_id = _run_diamond(tmp_path, 3)
    graph = cli("lineage", "show", artifact_id, "-o", "json").json()
    tree = cli("lineage", "show", artifact_id).stdout
    flat = tree.replace("\n", " ")
    originals = [e for e in graph["executions"] if e["state"] != "CACHED"]
    for node in [*graph["artifacts"], *originals]:
        assert node["id"][-12:] in flat, (node, tree)
    # The input shared by two branches is expanded once, then referred to.
    produced = next(a for a in graph["artifacts"] if a["name"] == "produce.out")
    assert tree.count(produced["id"][-12:]) == 2, tree
    assert "shown above" in tree


def test_lineage_tree_takes_a_depth(cli: Cli, home: Path, tmp_path: Path) -> None:
    artifact_id = _run_diamond(tmp_path, 2)
    shallow = cli("lineage", "show", artifact_id, "--depth", "1")
    assert shallow.exit_code == 0, shallow.stderr
    assert "merge" in shallow.stdout
    assert "produce.out" in shallow.stdout and "transform-2.out" in shallow.stdout
    assert "diamond/produce" not in shallow.stdout
    assert "diamond/transform-2" not in shallow.stdout
    deep = cli("lineage", "show", artifact_id)
    assert "diamond/produce" in deep.stdout and "diamond/transform-2" in deep.stdout
    cli("lineage", "show", artifact_id, "--depth", "0").assert_one_error_line(
        "--depth", exit_code=2)

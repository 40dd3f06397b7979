"""``shipyard models ...`` on versions registered through the SDK in local mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import shipyard as sy
from shipyard import (  # noqa: F401  (what the commands call: a missing one fails here)
    alias_history,
    download_model,
    list_model_versions,
    list_models,
    promote_if_better,
    register_model,
    resolve_model,
    rollback_alias,
    set_alias,
)
from shipyard.sdk import session
from tests.cli.conftest import Cli


@dataclass
class Registered:
    name: str


@pytest.fixture
def model(home: Path) -> Registered:
    """Versions 1 (rmse 0.30, production) and 2 (rmse 0.20) of a small scikit-learn model."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    sy.init()
    frame = pd.DataFrame({"visits": [1.0, 2.0, 3.0, 4.0], "pages": [3.0, 1.0, 2.0, 5.0]})
    fitted = LinearRegression().fit(frame, np.array([1.0, 2.0, 3.0, 4.0]))
    sy.register_model("lead-scoring", fitted, input_example=frame.head(2),
                      metrics={"rmse": 0.30}, labels={"team": "sales"}, aliases=["production"])
    sy.register_model("lead-scoring", fitted, input_example=frame.head(2),
                      metrics={"rmse": 0.20}, labels={"team": "sales"})
    session.reset()
    return Registered("lead-scoring")


def test_list_and_show(cli: Cli, model: Registered) -> None:
    listed = cli("models", "list")
    assert listed.exit_code == 0, listed.stderr
    assert model.name in listed.stdout
    data = cli("models", "list", "--filter", "labels.team = 'sales'", "-o", "json").json()
    assert [m["name"] for m in data] == [model.name]
    shown = cli("models", "show", f"{model.name}@production", "-o", "json").json()
    assert shown["version"] == 1
    assert "production" in cli("models", "show", f"{model.name}:1").stdout


def test_versions(cli: Cli, model: Registered) -> None:
    data = cli("models", "versions", model.name, "-o", "json").json()
    assert sorted(v["version"] for v in data) == [1, 2]
    assert cli("models", "versions", model.name).exit_code == 0


def test_alias_history_and_rollback(cli: Cli, model: Registered) -> None:
    moved = cli("models", "alias", model.name, "production", "2", "--reason", "better")
    assert moved.exit_code == 0, moved.stderr
    history = cli("models", "history", model.name, "--alias", "production", "-o", "json").json()
    assert history[-1]["to_version"] == 2
    assert history[-1]["reason"] == "better"
    assert cli("models", "history", model.name).exit_code == 0
    back = cli("models", "rollback", model.name, "production", "-o", "json").json()
    assert back["version"] == 1


def test_promote_moves_the_alias_only_for_a_better_version(cli: Cli, model: Registered) -> None:
    decision = cli("models", "promote", model.name, "2", "--metric", "rmse", "--mode", "min",
                   "-o", "json").json()
    assert decision["promoted"] is True
    assert decision["incumbent_version"] == 1
    again = cli("models", "promote", model.name, "1")
    assert again.exit_code == 0, again.stderr
    assert "kept" in again.stdout


def test_download(cli: Cli, model: Registered, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    result = cli("models", "download", f"{model.name}@production", str(dest))
    assert result.exit_code == 0, result.stderr
    assert any(dest.iterdir())


def test_unknown_model_and_bad_ref_are_one_clear_line(cli: Cli, model: Registered) -> None:
    cli("models", "show", "no-such-model").assert_one_error_line()
    cli("models", "show", "../../etc/passwd").assert_one_error_line()
    cli("models", "show", f"{model.name}@nowhere").assert_one_error_line()


# -- issue 16 ------------------------------------------------------------------------------------

def test_history_shows_a_rejected_candidate_as_kept(cli: Cli, model: Registered,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per row
    assert cli("models", "promote", model.name, "2").exit_code == 0  # 0.20 beats 0.30
    assert cli("models", "promote", model.name, "1").exit_code == 0  # rejected: 2 stays
    result = cli("models", "history", model.name)
    assert result.exit_code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "│" in line]
    rejected = [line for line in rows if "rejected" in line]
    assert len(rejected) == 1, result.stdout
    assert "kept 2" in rejected[0] and "rejected 1: rmse 0.3 vs 0.2" in rejected[0]
    assert any("1 → 2" in line for line in rows), result.stdout
    assert not any("2 → 2" in line for line in rows), result.stdout


def test_rollback_of_a_missing_alias_names_the_aliases(cli: Cli, model: Registered) -> None:
    result = cli("models", "rollback", model.name, "nosuch")
    result.assert_one_error_line("no alias 'nosuch'", "production")
    assert "earlier version" not in result.stderr


def test_history_of_a_malformed_alias_is_a_usage_error(cli: Cli, model: Registered) -> None:
    cli("models", "history", model.name, "--alias", "../x").assert_one_error_line(
        "--alias", "../x", exit_code=2)


@pytest.mark.parametrize("args, bound", [
    (["alias", "lead-scoring", "staging", "99999999999999999999999"], "2147483647"),
    (["promote", "lead-scoring", "99999999999999999999999"], "2147483647"),
    (["alias", "lead-scoring", "staging", "0"], "1"),
])
def test_a_version_out_of_range_is_a_usage_error(cli: Cli, model: Registered,
                                                 args: list[str], bound: str) -> None:
    result = cli("models", *args)
    result.assert_one_error_line("version", bound, exit_code=2)
    assert "Overflow" not in result.stderr


def test_show_names_the_source_of_a_version_from_a_run(cli: Cli, home: Path) -> None:
    from sklearn.linear_model import LinearRegression

    sy.init()
    commit = "89abcdef" * 5
    with sy.start_run("train", tags={"git.commit": commit, "git.branch": "release"}) as run:
        sy.register_model("churn", LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]),
                          run=run)
    session.reset()
    shown = cli("models", "show", "churn:1")
    assert shown.exit_code == 0, shown.stderr
    assert "Source" in shown.stdout and commit in shown.stdout and "release" in shown.stdout
    data = cli("models", "show", "churn:1", "-o", "json").json()
    assert data["metadata"]["source"]["git.commit"] == commit

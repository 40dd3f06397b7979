"""``shipyard runs list|show|compare`` on runs logged through the SDK in local mode."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard as sy
from shipyard.sdk import session
from tests.cli.conftest import Cli, LoggedRuns


def test_list_shows_every_run(cli: Cli, runs: LoggedRuns) -> None:
    result = cli("runs", "list")
    assert result.exit_code == 0, result.stderr
    assert runs.shallow in result.stdout
    assert runs.deep in result.stdout


def test_list_json_parses_with_mlflow_columns(cli: Cli, runs: LoggedRuns) -> None:
    rows = cli("runs", "list", "--output", "json").json()
    assert {r["run_id"] for r in rows} == {runs.shallow, runs.deep}
    row = next(r for r in rows if r["run_id"] == runs.shallow)
    assert row["params.max_depth"] == "3"
    assert row["metrics.rmse"] == 1.0 / 7
    assert row["tags.team"] == "sales"


def test_global_options_work_before_the_command(cli: Cli, runs: LoggedRuns) -> None:
    rows = cli("--output", "json", "runs", "list", "--max", "1").json()
    assert len(rows) == 1


def test_list_filter_and_order(cli: Cli, runs: LoggedRuns) -> None:
    result = cli("runs", "list", "-o", "json", "--filter", "params.max_depth = '6'")
    assert [r["run_id"] for r in result.json()] == [runs.deep]
    ordered = cli("runs", "list", "-o", "json", "--order-by", "metrics.rmse ASC").json()
    assert [r["run_id"] for r in ordered] == [runs.deep, runs.shallow]


def test_list_of_an_unknown_experiment_is_empty(cli: Cli, runs: LoggedRuns) -> None:
    result = cli("runs", "list", "--experiment", "nothing-here", "-o", "json")
    assert result.exit_code == 0
    assert result.json() == []


def test_show_has_params_metrics_history_and_artifacts(cli: Cli, runs: LoggedRuns) -> None:
    result = cli("runs", "show", runs.shallow)
    assert result.exit_code == 0, result.stderr
    for text in ("max_depth", "rmse", "team", "train.csv", runs.artifact_id, "depth-3"):
        assert text in result.stdout
    assert "█" in result.stdout and "▁" in result.stdout  # the history sparkline


def test_show_json(cli: Cli, runs: LoggedRuns) -> None:
    data = cli("runs", "show", runs.shallow, "-o", "json").json()
    assert data["id"] == runs.shallow
    assert data["params"] == {"max_depth": "3"}
    assert [p["step"] for p in data["metric_history"]["rmse"]] == [0, 1, 2, 3, 4]


def test_compare(cli: Cli, runs: LoggedRuns) -> None:
    table = cli("runs", "compare", runs.shallow, runs.deep)
    assert table.exit_code == 0, table.stderr
    assert "params.max_depth" in table.stdout
    data = cli("runs", "compare", runs.shallow, runs.deep, "-o", "json").json()
    assert data[runs.shallow]["params.max_depth"] == "3"
    assert data[runs.deep]["params.max_depth"] == "6"


def test_unknown_run_is_one_clear_line(cli: Cli, runs: LoggedRuns) -> None:
    cli("runs", "show", "0" * 32).assert_one_error_line("not found")


def test_malformed_run_id_is_one_clear_line(cli: Cli, runs: LoggedRuns) -> None:
    cli("runs", "show", "../../etc/passwd").assert_one_error_line("run_id")


def test_malformed_filter_is_one_clear_line(cli: Cli, runs: LoggedRuns) -> None:
    cli("runs", "list", "--filter", "metrics.rmse <<< 2").assert_one_error_line("filter")


def test_project_option_selects_another_namespace(cli: Cli, runs: LoggedRuns) -> None:
    assert cli("runs", "list", "--project", "elsewhere", "-o", "json").json() == []
    assert cli("--project", "elsewhere", "runs", "list", "-o", "json").json() == []
    # A value on the command wins over the root one.
    rows = cli("--project", "elsewhere", "runs", "list", "--project", "default",
               "-o", "json").json()
    assert len(rows) == 2


def test_interrupt_exits_130(cli: Cli, runs: LoggedRuns,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.sdk import tracking

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tracking, "search_runs", interrupted)
    assert cli("runs", "list").exit_code == 130


# -- issue 16: a runs table that fits the terminal --------------------------------------------

@pytest.fixture
def evaluations(home: Path) -> list[str]:
    """Five runs shaped like the quick start's: three params, three metrics, five tags."""
    sy.init()
    ids = []
    for n in range(5):
        with sy.start_run(experiment="lead-scoring-quickstart", name="evaluate") as run:
            run.log_params({"n_estimators": 300 + n, "max_depth": 6, "learning_rate": 0.08})
            run.log_metrics({"rmse": 0.0731429 + n / 1000, "mae": 0.0573, "r2": 0.862})
            run.set_tags({"subsample": "0.9", "colsample_bytree": "0.9", "test_rows": "8000",
                          "objective": "reg:squarederror", "tree_method": "hist"})
        ids.append(run.id)
    session.reset()
    return ids


@pytest.mark.parametrize("width", [80, 120])
def test_list_fits_the_terminal(cli: Cli, evaluations: list[str], width: int,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    result = cli("runs", "list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    # The issue: five runs took 124 lines, the headers wrapping a letter per line.
    assert len(lines) <= 5 + 4, result.stdout
    assert all(len(line) <= width for line in lines), result.stdout
    for run_id in evaluations:  # ids are whole, to copy
        assert run_id in result.stdout
    for header in ("run id", "name", "status", "started"):
        assert header in lines[1], result.stdout
    if width == 120:
        assert "metrics.mae" in lines[1] and "0.0573" in result.stdout
    assert "more columns" in result.stderr and "--columns" in result.stderr


def test_list_shows_the_metric_it_is_sorted_by(cli: Cli, evaluations: list[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("runs", "list", "--order-by", "metrics.`rmse` ASC")
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[1]
    assert "metrics.rmse" in header and "run id" in header, result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert result.stdout.index(evaluations[0]) < result.stdout.index(evaluations[-1])


def test_less_important_columns_never_take_the_place_of_one_left_out(
        cli: Cli, evaluations: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    header = cli("runs", "list").stdout.splitlines()[1]
    assert "metrics.mae" in header and "metrics.r2" in header
    assert "experiment" not in header and "params." not in header


def test_list_columns_option_picks_the_columns(cli: Cli, evaluations: list[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("runs", "list", "--columns", "run_id,metrics.r2", "--columns", "tags.test_rows")
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[1]
    assert "run id" in header and "metrics.r2" in header and "tags.test_rows" in header
    assert "status" not in header and "metrics.rmse" not in header
    assert "8000" in result.stdout and "0.862" in result.stdout
    rows = cli("runs", "list", "--columns", "run_id,metrics.r2", "-o", "json").json()
    assert [set(r) for r in rows] == [{"run_id", "metrics.r2"}] * 5


def test_list_unknown_column_is_a_usage_error(cli: Cli, evaluations: list[str]) -> None:
    result = cli("runs", "list", "--columns", "run_id,metrics.nosuch")
    result.assert_one_error_line("--columns", "metrics.nosuch", "metrics.rmse", exit_code=2)


def test_long_values_are_cut_with_an_ellipsis(cli: Cli, home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sy.init()
    with sy.start_run(experiment="e" * 60, name="n" * 100) as run:
        run.log_params({"p": "v" * 300})
    session.reset()
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("runs", "list")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) <= 1 + 4, result.stdout
    assert "…" in result.stdout and run.id in result.stdout

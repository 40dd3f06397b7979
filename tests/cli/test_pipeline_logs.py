"""``shipyard pipelines logs`` of a task served from the cache says which run produced it
(issue 16: it printed nothing)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli
from tests.cli.test_pipelines import flow

__all__ = ["flow"]


def test_logs_of_a_cached_task_name_the_run_that_produced_it(cli: Cli, flow: Path) -> None:
    first = cli("pipelines", "run", f"{flow}:tiny", "--arg", "text=abc", "--inline", "-o", "json")
    assert first.exit_code == 0, first.stderr
    again = cli("pipelines", "run", f"{flow}:tiny", "--arg", "text=abc", "--inline",
                "-o", "json").json()
    assert again["tasks"]["make"]["cached"]
    original, rerun = first.json()["id"], again["id"]

    one = cli("pipelines", "logs", rerun, "--task", "make")
    assert one.exit_code == 0, one.stderr
    assert "served from the cache" in one.stdout
    assert f"shipyard pipelines logs {original} --task make" in one.stdout

    every = cli("pipelines", "logs", rerun)
    assert "===== make =====" in every.stdout and original in every.stdout

    data = cli("pipelines", "logs", rerun, "-o", "json").json()
    assert data["logs"]["make"] == ""
    assert data["cached_from"]["make"] == {"run_id": original, "task": "make"}

    # The original run's log is the step's own output, with no note.
    own = cli("pipelines", "logs", original, "--task", "make")
    assert "making abc" in own.stdout and "cache" not in own.stdout

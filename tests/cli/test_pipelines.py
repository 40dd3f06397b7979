"""``shipyard pipelines ...`` on a small pipeline file run locally."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from shipyard import (  # noqa: F401  (what the commands call: a missing one fails here)
    cancel_pipeline_run,
    compile_pipeline,
    get_pipeline_run,
    get_task_log,
    list_pipeline_runs,
    retry_pipeline_run,
    run_pipeline,
)
from tests.cli.conftest import Cli

SOURCE = '''
from shipyard import dsl


@dsl.component
def make(text: str, out: dsl.Output[dsl.Dataset]) -> int:
    print("making", text)
    with open(out.path, "w") as f:
        f.write(text)
    return len(text)


@dsl.component
def shout(data: dsl.Input[dsl.Dataset]) -> str:
    with open(data.path) as f:
        return f.read().upper()


@dsl.component
def boom(n: int) -> int:
    raise ValueError(f"boom {n}")


@dsl.pipeline(name="tiny")
def tiny(text: str = "hello"):
    made = make(text=text)
    shout(data=made.outputs["out"])


@dsl.pipeline(name="broken")
def broken(n: int = 1):
    boom(n=n)
'''


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    # A unique module name per test: the CLI imports the file as a module.
    path = tmp_path / f"flow_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(SOURCE))
    return path


def test_compile_then_run_the_spec(cli: Cli, flow: Path, tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    compiled = cli("pipelines", "compile", f"{flow}:tiny", str(spec))
    assert compiled.exit_code == 0, compiled.stderr
    assert spec.is_file()
    result = cli("pipelines", "run", str(spec), "--arg", "text=abc", "--inline", "-o", "json")
    assert result.exit_code == 0, result.stderr
    run = result.json()
    assert run["state"] == "SUCCEEDED"
    assert run["tasks"]["shout"]["outputs"]["Output"] == "ABC"


def test_run_list_show_logs(cli: Cli, flow: Path) -> None:
    ran = cli("pipelines", "run", f"{flow}:tiny", "--arg", "text=xyz")
    assert ran.exit_code == 0, ran.stderr
    assert "SUCCEEDED" in ran.stdout
    runs = cli("pipelines", "list", "-o", "json").json()
    run_id = runs[0]["id"]
    assert run_id in cli("pipelines", "list").stdout
    shown = cli("pipelines", "show", run_id)
    assert "make" in shown.stdout and "shout" in shown.stdout
    logs = cli("pipelines", "logs", run_id, "--task", "make")
    assert "making xyz" in logs.stdout
    assert "===== make =====" in cli("pipelines", "logs", run_id).stdout


def test_cached_rerun_is_marked(cli: Cli, flow: Path) -> None:
    cli("pipelines", "run", f"{flow}:tiny", "--inline")
    again = cli("pipelines", "run", f"{flow}:tiny", "--inline", "-o", "json").json()
    assert all(task["cached"] for task in again["tasks"].values())
    fresh = cli("pipelines", "run", f"{flow}:tiny", "--inline", "--no-cache", "-o", "json")
    assert not any(task["cached"] for task in fresh.json()["tasks"].values())


def test_failed_run_exits_1_naming_the_task(cli: Cli, flow: Path) -> None:
    result = cli("pipelines", "run", f"{flow}:broken", "--arg", "n=7", "--inline")
    assert result.exit_code == 1
    assert "boom 7" in result.stderr  # the step's traceback
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "boom" in last
    run_id = cli("pipelines", "list", "-o", "json").json()[0]["id"]
    retried = cli("pipelines", "retry", run_id)
    assert retried.exit_code == 1


def test_submit_queues_and_cancel(cli: Cli, flow: Path) -> None:
    queued = cli("pipelines", "run", f"{flow}:tiny", "--submit", "-o", "json")
    run = queued.json()
    assert run["state"] == "QUEUED"
    cancelled = cli("pipelines", "cancel", run["id"], "-o", "json")
    assert cancelled.exit_code == 0, cancelled.stderr
    assert cancelled.json()["state"] in ("CANCELLED", "CANCELLING")


def test_bad_targets_are_one_clear_line(cli: Cli, flow: Path, tmp_path: Path) -> None:
    cli("pipelines", "run", str(tmp_path / "missing.yaml")).assert_one_error_line("no such file")
    cli("pipelines", "run", f"{flow}:nothing").assert_one_error_line("nothing")
    cli("pipelines", "compile", "flow:tiny", "x.yaml").assert_one_error_line("FILE.py")
    cli("pipelines", "show", "0" * 32).assert_one_error_line()
    cli("pipelines", "run", f"{flow}:tiny", "--arg", "novalue").assert_one_error_line(
        "NAME=VALUE", exit_code=2)


def test_lineage_of_a_step_output(cli: Cli, flow: Path) -> None:
    run = cli("pipelines", "run", f"{flow}:tiny", "--inline", "-o", "json").json()
    artifact_id = run["tasks"]["make"]["outputs"]["out"]["artifact_id"]
    tree = cli("lineage", "show", artifact_id, "--direction", "both")
    assert tree.exit_code == 0, tree.stderr
    upstream, downstream = tree.stdout.split("downstream")
    assert "make" in upstream
    assert "shout" in downstream

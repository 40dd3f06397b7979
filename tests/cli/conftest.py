"""Fixtures for the CLI tests: the Typer app run in-process on an isolated home."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import shipyard as sy
from shipyard.cli.main import app
from shipyard.sdk import session


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def assert_one_error_line(self, *fragments: str, exit_code: int = 1) -> None:
        """Failed with ``exit_code`` and a single ``error:`` line naming ``fragments``."""
        assert self.exit_code == exit_code, (self.stdout, self.stderr)
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("error: "), lines[0]
        assert "Traceback" not in self.stdout + self.stderr
        for fragment in fragments:
            assert fragment in lines[0], lines[0]


class Cli:
    """Runs ``shipyard ARGS`` through Typer's test runner."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        result = self.runner.invoke(app, list(args), input=input, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(autouse=True)
def _fresh_sdk(home: Path) -> Iterator[None]:
    # Each command re-inits the SDK from the environment; drop it after the test so no
    # store stays open across tests.
    session.reset()
    yield
    session.reset()


@pytest.fixture
def cli() -> Cli:
    return Cli()


@dataclass
class LoggedRuns:
    shallow: str
    deep: str
    artifact_id: str


@pytest.fixture
def runs(home: Path, tmp_path: Path) -> LoggedRuns:
    """Two finished runs logged through the SDK in local mode; the first has an artifact."""
    sy.init()
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    ids = []
    for depth in (3, 6):
        with sy.start_run(experiment="lead-scoring", name=f"depth-{depth}") as run:
            run.log_params({"max_depth": depth})
            for step in range(5):
                run.log_metrics({"rmse": 1.0 / (step + depth)}, step=step)
            run.set_tags({"team": "sales"})
            if depth == 3:
                run.log_artifact(str(data), name="train.csv")
        ids.append(run.id)
    first = sy.get_run(ids[0])
    artifact_id = first.artifacts[0].artifact_id
    assert artifact_id is not None
    session.reset()
    return LoggedRuns(shallow=ids[0], deep=ids[1], artifact_id=artifact_id)

"""Bad input and faults give one clear ``error:`` line and exit 1 (usage errors exit 2)."""

from __future__ import annotations

import fcntl
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli


@pytest.fixture
def cli() -> Cli:
    return Cli()


def test_unwritable_home(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = cli("quickstart", "--home", str(blocker / "home"))
    result.assert_one_error_line("cannot write to the Shipyard home", "--home")


def test_missing_package_names_the_install_command(
    cli: Cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "xgboost" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    result = cli("quickstart", "--home", str(home))
    result.assert_one_error_line("xgboost is not installed", "pip install xgboost")
    assert not (home / "shipyard.db").exists()  # checked before anything is written


def test_remote_uri_is_refused(cli: Cli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_URI", "http://127.0.0.1:9")
    cli("quickstart", "--home", str(home)).assert_one_error_line("embedded SQLite store")


def test_a_second_quickstart_in_the_same_home_is_refused(cli: Cli, home: Path) -> None:
    lock = home / "locks" / "quickstart.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = cli("quickstart", "--home", str(home))
    result.assert_one_error_line("another quickstart is running")


@pytest.mark.parametrize("rows", ["5", "many"])
def test_bad_rows_is_a_usage_error(cli: Cli, home: Path, rows: str) -> None:
    result = cli("quickstart", "--home", str(home), "--rows", rows)
    assert result.exit_code == 2 and "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("requests", ["0", "10001", "some"])
def test_bad_canary_requests_is_a_usage_error_naming_it(cli: Cli, home: Path,
                                                       requests: str) -> None:
    result = cli("quickstart", "--home", str(home), "--canary-requests", requests)
    assert result.exit_code == 2 and "--canary-requests" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (home / "shipyard.db").exists()  # refused before anything was made


def test_root_home_option_is_honoured(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli("--home", str(blocker / "home"), "quickstart")
    result.assert_one_error_line(str(blocker / "home"))


def test_a_failing_step_is_one_line_naming_the_step_and_its_log(home: Path, tmp_path: Path
                                                                 ) -> None:  # fmt: skip
    import os
    import subprocess
    import sys

    # An xgboost that cannot be imported, for the step processes only: the check before
    # the run finds the module, the train step then fails importing it.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "xgboost.py").write_text("raise ImportError('xgboost is broken here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "quickstart", "--home", str(home),
         "--rows", "500"],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith("error: step train-model failed: ImportError: xgboost is broken")
    assert "shipyard pipelines logs" in lines[0] and "--task train-model" in lines[0]

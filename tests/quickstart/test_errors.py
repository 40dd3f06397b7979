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


def test_root_home_option_is_honoured(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli("--home", str(blocker / "home"), "quickstart")
    result.assert_one_error_line(str(blocker / "home"))

"""Usage errors exit 2, failures print one red line and exit 1, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipyard.cli import state
from tests.cli.conftest import Cli

GROUPS = ["runs", "lineage", "models", "pipelines", "users", "tokens", "grants"]


def test_root_help(cli: Cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for name in [*GROUPS, "server", "audit", "login", "--home", "--uri", "--project",
                 "--output"]:
        assert name in result.stdout


@pytest.mark.parametrize("group", GROUPS)
def test_group_help(cli: Cli, group: str, home: Path) -> None:
    result = cli(group, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.stdout
    assert not home.exists()  # help never sets anything up


def test_bad_output_value_is_a_usage_error(cli: Cli) -> None:
    cli("runs", "list", "--output", "xml").assert_one_error_line(
        "xml", "shipyard runs list --help", exit_code=2)


def test_missing_argument_is_a_usage_error(cli: Cli) -> None:
    cli("runs", "show").assert_one_error_line("Missing argument", exit_code=2)


def test_unknown_command_and_option_are_usage_errors(cli: Cli) -> None:
    cli("runs", "frobnicate").assert_one_error_line("frobnicate", exit_code=2)
    cli("--bogus").assert_one_error_line("--bogus", exit_code=2)


def test_group_without_a_command_shows_its_help(cli: Cli) -> None:
    result = cli("runs")
    assert result.exit_code == 2
    assert "list" in result.stdout + result.stderr


def test_unwritable_home_is_one_clear_line(cli: Cli, tmp_path: Path) -> None:
    # A regular file as the parent: not writable even for root.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli("--home", str(blocker / "home"), "runs", "list")
    result.assert_one_error_line("cannot write to the Shipyard home")


def test_server_on_a_busy_port_is_one_clear_line(cli: Cli) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("server", "--port", str(port))
    result.assert_one_error_line("already in use", str(port))


def test_server_refuses_a_remote_uri(cli: Cli) -> None:
    cli("server", "--uri", "http://localhost:1").assert_one_error_line("--uri", exit_code=2)


def test_console_script_exit_codes(home: Path) -> None:
    # The real entry point in a child process: what a shell sees.
    run = [sys.executable, "-c", "from shipyard.cli.main import main; main()"]
    ok = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0
    usage = subprocess.run([*run, "runs", "show"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2
    assert usage.stderr.count("\n") == 1 and usage.stderr.startswith("error: ")
    failed = subprocess.run([*run, "runs", "show", "f" * 32], capture_output=True, text=True,
                            timeout=60)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: ")
    assert "Traceback" not in failed.stderr


def test_server_starts_and_answers(home: Path) -> None:
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "from shipyard.cli.main import main; main()",
               "server", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        for _ in range(100):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    pytest.fail(f"server exited: {server.stderr.read() if server.stderr else ''}")
                time.sleep(0.2)
        else:
            pytest.fail("server did not answer within 20 s")
        assert response.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
        for stream in (server.stdout, server.stderr):
            if stream is not None:
                stream.close()
    assert (home / "credentials").is_file()  # the admin token of the first start


def test_guarded_plain_function_gets_the_error_handling() -> None:
    # How main.py registers the Typer-free quickstart command.
    import typer
    from typer.testing import CliRunner

    from shipyard.errors import NotFound

    def demo(rows: int = 10) -> None:
        raise NotFound(f"nothing for {rows} rows")

    demo_app = typer.Typer()
    demo_app.command("demo")(state.guarded(demo))
    demo_app.command("other")(lambda: None)
    result = CliRunner().invoke(demo_app, ["demo", "--rows", "3"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: nothing for 3 rows"

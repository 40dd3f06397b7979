"""``shipyard users enable`` undoes ``users disable`` (issue 16: it was missing)."""

from __future__ import annotations

from tests.cli.conftest import Cli


def test_a_disabled_user_can_be_enabled_again(cli: Cli) -> None:
    assert cli("users", "create", "dana").exit_code == 0
    assert cli("users", "disable", "dana", "-o", "json").json()["disabled"] is True
    enabled = cli("users", "enable", "dana", "-o", "json")
    assert enabled.exit_code == 0, enabled.stderr
    assert enabled.json()["disabled"] is False
    table = cli("users", "enable", "dana")
    assert table.exit_code == 0 and "dana" in table.stdout
    listed = {u["name"]: u["disabled"] for u in cli("users", "list", "-o", "json").json()}
    assert listed["dana"] is False


def test_enabling_an_unknown_user_is_one_clear_line(cli: Cli) -> None:
    cli("users", "enable", "nobody").assert_one_error_line("nobody")


def test_users_help_lists_enable(cli: Cli) -> None:
    assert "enable" in cli("users", "--help").stdout

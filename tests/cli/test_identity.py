"""``shipyard users|tokens|grants`` in local mode (the OS is the boundary there)."""

from __future__ import annotations

import shipyard.sdk.identity  # noqa: F401  (what the commands call: if missing, fail here)
from tests.cli.conftest import Cli


def test_users(cli: Cli) -> None:
    created = cli("users", "create", "alice", "-o", "json")
    assert created.exit_code == 0, created.stderr
    assert created.json()["name"] == "alice"
    assert cli("users", "create", "ci-bot", "--service").exit_code == 0
    names = {u["name"] for u in cli("users", "list", "-o", "json").json()}
    assert {"alice", "ci-bot"} <= names
    assert "alice" in cli("users", "list").stdout
    disabled = cli("users", "disable", "alice", "-o", "json").json()
    assert disabled["disabled"] is True


def test_user_with_a_prompted_password(cli: Cli) -> None:
    secret = "correct horse battery staple"
    result = cli("users", "create", "bob", "--password", input=f"{secret}\n{secret}\n")
    assert result.exit_code == 0, result.stderr
    assert secret not in result.stdout


def test_duplicate_user_is_one_clear_line(cli: Cli) -> None:
    cli("users", "create", "carol")
    cli("users", "create", "carol").assert_one_error_line("already exists")


def test_tokens_are_shown_once_and_revocable(cli: Cli) -> None:
    cli("users", "create", "ci-bot", "--service")
    created = cli("tokens", "create", "ci-bot", "--name", "deploy", "--scope", "write",
                  "--expires-in-days", "30", "-o", "json").json()
    assert created["plaintext"].startswith("sy_")
    listed = cli("tokens", "list", "--principal", "ci-bot", "-o", "json").json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert created["plaintext"] not in cli("tokens", "list").stdout
    revoked = cli("tokens", "revoke", created["id"])
    assert revoked.exit_code == 0, revoked.stderr
    again = cli("tokens", "list", "-o", "json").json()
    assert again[0]["revoked_at"] is not None


def test_token_for_an_unknown_principal(cli: Cli) -> None:
    cli("tokens", "create", "nobody").assert_one_error_line()


def test_grants(cli: Cli) -> None:
    cli("users", "create", "dave")
    added = cli("grants", "add", "dave", "editor", "--project", "lead-scoring")
    assert added.exit_code == 0, added.stderr
    listed = cli("grants", "list", "--project", "lead-scoring", "-o", "json").json()
    assert [(g["principal"], g["role"]) for g in listed] == [("dave", "editor")]
    assert cli("grants", "revoke", "dave", "--project", "lead-scoring").exit_code == 0
    assert cli("grants", "list", "--project", "lead-scoring", "-o", "json").json() == []
    cli("grants", "add", "dave", "emperor").assert_one_error_line()


def test_login_needs_a_server(cli: Cli) -> None:
    cli("login", "--user", "x", "--password", "y" * 12).assert_one_error_line("server")

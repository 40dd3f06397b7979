"""docs/cli.md is generated from the Typer app and must not go stale."""

from __future__ import annotations

from pathlib import Path

from shipyard.cli import docs

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_is_up_to_date() -> None:
    assert DOC.read_text() == docs.render(), (
        "docs/cli.md is stale: run  python -m shipyard.cli.docs > docs/cli.md")


def test_every_command_is_documented() -> None:
    text = docs.render()
    for command in ("shipyard runs list", "shipyard lineage show", "shipyard models promote",
                    "shipyard pipelines run", "shipyard tokens create", "shipyard server"):
        assert f"`{command}`" in text

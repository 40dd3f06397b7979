"""The guides' code runs as written, and the REST reference matches the routes."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from shipyard.sdk import session

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDES = ["tracking.md", "registry.md", "pipelines.md"]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_code_runs(guide: str, home: Path, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks((DOCS / guide).read_text())
    assert blocks, f"{guide} has no python blocks"
    monkeypatch.chdir(tmp_path)
    session.reset()
    # Run as a file, as a reader would: components need their source on disk.
    script = tmp_path / f"{guide[:-3]}_guide.py"
    script.write_text("\n\n".join(blocks))
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        session.reset()


def test_rest_reference_is_current() -> None:
    from shipyard.server.reference import render

    assert (DOCS / "rest.md").read_text() == render(), (
        "docs/rest.md is stale: python -m shipyard.server.reference > docs/rest.md")

"""The code in docs/quickstart.md and docs/concepts.md runs as written, in a fresh home."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from shipyard.sdk import session

DOCS = Path(__file__).resolve().parents[2] / "docs"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("page", ["quickstart.md", "concepts.md"])
def test_page_code_runs(page: str, home: Path, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    blocks = python_blocks((DOCS / page).read_text())
    assert blocks, f"{page} has no python blocks"
    monkeypatch.chdir(tmp_path)
    session.reset()
    # As a reader would run it: one file, so that components have their source on disk.
    script = tmp_path / f"{page[:-3]}_page.py"
    script.write_text("\n\n".join(blocks))
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        session.reset()
    assert (home / "shipyard.db").exists()  # it ran in the isolated home

"""The guides' code runs as written, and the REST reference matches the routes."""

from __future__ import annotations

import ast
import re
import runpy
from pathlib import Path

import pytest

from shipyard.sdk import session

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDES = ["tracking.md", "registry.md", "pipelines.md", "runtime.md", "serving.md",
          "batch-and-explain.md", "monitoring.md", "events.md"]


# Pages whose python blocks some test runs: the guides here, the others in
# tests/quickstart/test_docs.py and tests/monitoring/test_estimation_docs.py.
RUN_BY_TESTS = {*GUIDES, "quickstart.md", "concepts.md",
                # tests/monitoring/test_estimation_docs.py (it fits on generated data)
                "monitoring-estimation.md"}
# Pages whose blocks do not assert yet, with why. The check below fails once they all do, so
# an entry cannot outlive its reason.
PENDING: dict[str, str] = {}


def python_blocks(text: str) -> list[str]:
    """The blocks a reader would run; a block fenced as ```python not-run is not run."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_every_python_block_is_run_and_asserts_something() -> None:
    # A block that only prints passes whatever it prints: each one states what must hold.
    silent, unrun = [], []
    for page in sorted(DOCS.glob("*.md")):
        blocks = python_blocks(page.read_text())
        if blocks and page.name not in RUN_BY_TESTS:
            unrun.append(page.name)
        for number, code in enumerate(blocks, 1):
            if not any(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(code))):
                silent.append(f"{page.name} block {number}")
    assert not unrun, f"python blocks no test runs (add the page to a test): {unrun}"
    unexcused = [where for where in silent if where.split()[0] not in PENDING]
    assert not unexcused, (
        "python blocks that assert nothing (assert what the reader should see, or fence "
        f"the block as ```python not-run): {unexcused}")
    done = set(PENDING) - {where.split()[0] for where in silent}
    assert not done, f"every block of {sorted(done)} asserts now: remove it from PENDING"


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
